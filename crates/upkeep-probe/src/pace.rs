//! The request rate limit: one token bucket per backend address (resolved
//! `ip:port` or socket path), shared by every connection of every target
//! that reaches that address, so a probe never sends one backend more than
//! `rate` requests per second after a short initial burst, however many
//! upstreams or spellings name it.

use crate::target::ConnectAddr;
use crate::Cancel;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The pacers of one probe run, one per backend address.
pub struct Pacers {
    rate: f64,
    by_addr: Mutex<HashMap<ConnectAddr, Arc<Pacer>>>,
}

impl Pacers {
    pub fn new(rate: f64) -> Pacers {
        Pacers {
            rate,
            by_addr: Mutex::new(HashMap::new()),
        }
    }

    /// The pacer of `addr`, created on first use.
    pub fn for_addr(&self, addr: &ConnectAddr) -> Arc<Pacer> {
        let mut map = self.by_addr.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(addr.clone())
            .or_insert_with(|| Arc::new(Pacer::new(self.rate)))
            .clone()
    }
}

pub struct Pacer {
    state: Mutex<Bucket>,
    rate: f64,
    burst: f64,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Pacer {
    /// `rate` requests per second (> 0); the burst is up to 5 requests, so
    /// the first exchanges on a connection go back to back.
    pub fn new(rate: f64) -> Pacer {
        let rate = if rate.is_finite() && rate > 0.0 {
            rate
        } else {
            1.0
        };
        let burst = rate.clamp(1.0, 5.0);
        Pacer {
            state: Mutex::new(Bucket {
                tokens: burst,
                updated: Instant::now(),
            }),
            rate,
            burst,
        }
    }

    /// Takes one token, sleeping until it is due. Returns false (without
    /// sending) when `deadline` comes first or `cancel` is set.
    pub fn take(&self, deadline: Instant, cancel: &Cancel) -> bool {
        let due = {
            let mut b = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let refill = now.duration_since(b.updated).as_secs_f64() * self.rate;
            b.tokens = (b.tokens + refill).min(self.burst);
            b.updated = now;
            // Reserve the token even if it is in the future: concurrent
            // takers queue up behind each other instead of all waking at once.
            b.tokens -= 1.0;
            if b.tokens >= 0.0 {
                now
            } else {
                now + Duration::from_secs_f64(-b.tokens / self.rate)
            }
        };
        if due > deadline {
            return false;
        }
        sleep_until(due, cancel)
    }
}

/// Sleeps in short steps so that Ctrl-C is honoured; false if cancelled.
pub fn sleep_until(when: Instant, cancel: &Cancel) -> bool {
    loop {
        if cancel.is_cancelled() {
            return false;
        }
        let now = Instant::now();
        if now >= when {
            return true;
        }
        std::thread::sleep((when - now).min(Duration::from_millis(50)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spaces_requests_after_the_burst() {
        let cancel = Cancel::new();
        let pacer = Pacer::new(50.0);
        let start = Instant::now();
        let far = start + Duration::from_secs(10);
        for _ in 0..15 {
            assert!(pacer.take(far, &cancel));
        }
        // 5 free, then 10 at 20 ms each: at least ~200 ms.
        assert!(
            start.elapsed() >= Duration::from_millis(180),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn one_bucket_per_address() {
        let pacers = Pacers::new(1.0);
        let a = ConnectAddr::Inet("127.0.0.1:1".parse().unwrap());
        let b = ConnectAddr::Inet("127.0.0.1:2".parse().unwrap());
        assert!(Arc::ptr_eq(&pacers.for_addr(&a), &pacers.for_addr(&a)));
        assert!(!Arc::ptr_eq(&pacers.for_addr(&a), &pacers.for_addr(&b)));
    }

    #[test]
    fn refuses_past_the_deadline_and_when_cancelled() {
        let cancel = Cancel::new();
        let pacer = Pacer::new(1.0);
        let soon = Instant::now() + Duration::from_millis(100);
        assert!(pacer.take(soon, &cancel));
        assert!(!pacer.take(soon, &cancel));
        cancel.cancel();
        assert!(!pacer.take(Instant::now() + Duration::from_secs(5), &cancel));
    }
}
