//! Client traffic per interval, from consecutive stub_status samples.
//!
//! stub_status counters only grow, for the life of the master
//! (facts/behaviors.md §f), so the difference of two samples is the traffic
//! between them. Each sample is one request on one new connection of our
//! own, and the page counts the request that fetches it: one request and
//! one connection of every difference are ours and are left out
//! ([`StatusDelta`]). The counters go back only when nginx was restarted
//! (or its binary upgraded); that interval has no rates.

use std::time::{Duration, Instant};

use crate::sampling::StatusDelta;
use crate::stub_status::StubStatus;

/// The client traffic of one interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClientInterval {
    /// The two samples (the later one also gives the current gauges).
    pub delta: StatusDelta,
    /// Time between the two samples.
    pub span: Duration,
}

impl ClientInterval {
    /// Client requests, ours left out.
    pub fn requests(&self) -> u64 {
        self.delta.requests()
    }

    /// Client connections accepted, ours left out.
    pub fn accepts(&self) -> u64 {
        self.delta
            .end
            .accepts
            .saturating_sub(self.delta.start.accepts)
            .saturating_sub(1)
    }

    /// Accepted connections that got a connection slot, ours left out.
    pub fn handled(&self) -> u64 {
        self.delta.connections()
    }

    /// Accepted but closed at once for lack of a connection slot.
    pub fn dropped(&self) -> u64 {
        self.delta.dropped()
    }

    pub fn requests_per_second(&self) -> f64 {
        per_second(self.requests(), self.span)
    }

    pub fn accepts_per_second(&self) -> f64 {
        per_second(self.accepts(), self.span)
    }

    /// Requests per handled connection in the interval; `None` without
    /// connections. With keep-alive clients a connection opened in one
    /// interval serves requests in later ones, so the since-start ratio
    /// ([`super::Totals::requests_per_connection`]) is the steadier number.
    pub fn requests_per_connection(&self) -> Option<f64> {
        ratio(self.requests(), self.handled())
    }
}

pub fn per_second(count: u64, span: Duration) -> f64 {
    let s = span.as_secs_f64();
    if s > 0.0 {
        count as f64 / s
    } else {
        0.0
    }
}

pub fn ratio(numerator: u64, denominator: u64) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

/// What one new sample says.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientSample {
    /// Traffic since the previous successful sample.
    Interval(ClientInterval),
    /// The first sample, or the first after a failure or a restart: the
    /// baseline for the next interval.
    Baseline { reason: Option<String> },
}

/// The last good sample.
#[derive(Clone, Debug, Default)]
pub struct ClientCounter {
    last: Option<(StubStatus, Instant)>,
}

impl ClientCounter {
    /// Takes a sample made at `at`.
    pub fn observe(&mut self, status: StubStatus, at: Instant) -> ClientSample {
        let previous = self.last.replace((status, at));
        let Some((start, then)) = previous else {
            return ClientSample::Baseline { reason: None };
        };
        let went_back = status.accepts < start.accepts
            || status.handled < start.handled
            || status.requests < start.requests;
        if went_back {
            return ClientSample::Baseline {
                reason: Some(format!(
                    "stub_status counters went back (requests {} -> {}): nginx was restarted; counting again from here",
                    start.requests, status.requests
                )),
            };
        }
        ClientSample::Interval(ClientInterval {
            delta: StatusDelta { start, end: status },
            span: at.saturating_duration_since(then),
        })
    }

    /// A failed sample: the next good one only sets the baseline again, so
    /// an interval never silently spans a gap.
    pub fn lost(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(accepts: u64, handled: u64, requests: u64) -> StubStatus {
        StubStatus {
            accepts,
            handled,
            requests,
            ..StubStatus::default()
        }
    }

    #[test]
    fn rates_leave_out_our_own_request() {
        let t0 = Instant::now();
        let mut c = ClientCounter::default();
        assert_eq!(
            c.observe(status(10, 10, 50), t0),
            ClientSample::Baseline { reason: None }
        );
        // 20 connections (one dropped) and 200 requests of traffic, plus
        // our second sample.
        let ClientSample::Interval(i) =
            c.observe(status(31, 30, 251), t0 + Duration::from_millis(500))
        else {
            panic!("an interval");
        };
        assert_eq!((i.requests(), i.accepts(), i.handled()), (200, 20, 19));
        assert_eq!(i.dropped(), 1);
        assert_eq!(i.requests_per_second(), 400.0);
        assert_eq!(i.accepts_per_second(), 40.0);
        assert_eq!(i.requests_per_connection(), Some(200.0 / 19.0));

        // Only our own sample: nothing.
        let ClientSample::Interval(idle) =
            c.observe(status(32, 31, 252), t0 + Duration::from_secs(1))
        else {
            panic!("an interval");
        };
        assert_eq!((idle.requests(), idle.accepts()), (0, 0));
        assert_eq!(idle.requests_per_connection(), None);
    }

    #[test]
    fn a_restart_or_a_failure_starts_over() {
        let t0 = Instant::now();
        let mut c = ClientCounter::default();
        c.observe(status(100, 100, 500), t0);
        let ClientSample::Baseline { reason: Some(r) } = c.observe(status(2, 2, 2), t0) else {
            panic!("a restart");
        };
        assert!(r.contains("restarted"), "{r}");
        assert!(matches!(
            c.observe(status(5, 5, 9), t0),
            ClientSample::Interval(_)
        ));
        c.lost();
        assert_eq!(
            c.observe(status(9, 9, 20), t0),
            ClientSample::Baseline { reason: None }
        );
    }
}
