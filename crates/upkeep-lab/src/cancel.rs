//! Cooperative cancellation shared by every part of a lab run.
//!
//! A Ctrl-C must stop the traffic, the relays and the backends, and then let the
//! normal cleanup path stop nginx through its pid file. The flag is a plain
//! atomic so a signal handler may set it; async code notices it by polling at a
//! short interval, which keeps the handler async-signal-safe.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often async waiters look at the flag.
const POLL: Duration = Duration::from_millis(20);

/// A cancellation token. A child token is cancelled with its parent, and can
/// also be cancelled on its own (a phase ends without ending the run).
#[derive(Clone, Debug)]
pub struct Cancel {
    /// This token's own flag is the last; the others are its ancestors'.
    flags: Vec<Arc<AtomicBool>>,
}

impl Default for Cancel {
    fn default() -> Cancel {
        Cancel {
            flags: vec![Arc::new(AtomicBool::new(false))],
        }
    }
}

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// A token that is cancelled when `self` is, or when cancelled itself.
    pub fn child(&self) -> Cancel {
        let mut flags = self.flags.clone();
        flags.push(Arc::new(AtomicBool::new(false)));
        Cancel { flags }
    }

    pub fn cancel(&self) {
        if let Some(own) = self.flags.last() {
            own.store(true, Ordering::SeqCst);
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.flags.iter().any(|f| f.load(Ordering::SeqCst))
    }

    /// Resolves once the token is cancelled.
    pub async fn cancelled(&self) {
        while !self.is_cancelled() {
            tokio::time::sleep(POLL).await;
        }
    }

    /// Blocking sleep that wakes early on cancellation; returns false if it did.
    pub fn sleep(&self, total: Duration) -> bool {
        let deadline = std::time::Instant::now() + total;
        loop {
            if self.is_cancelled() {
                return false;
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return true;
            }
            std::thread::sleep((deadline - now).min(POLL));
        }
    }
}

/// Cancel `token` on SIGINT and SIGTERM. The lab then cleans up (stops nginx
/// through its pid file, removes its namespace) and returns.
pub fn cancel_on_signals(token: &Cancel) -> std::io::Result<()> {
    if let Some(own) = token.flags.last() {
        for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            signal_hook::flag::register(signal, own.clone())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_follows_parent_but_not_the_reverse() {
        let parent = Cancel::new();
        let a = parent.child();
        let b = parent.child();
        a.cancel();
        assert!(a.is_cancelled());
        assert!(!parent.is_cancelled());
        assert!(!b.is_cancelled());
        parent.cancel();
        assert!(b.is_cancelled());
    }
}
