//! Measures what HTTP backends really do with idle and reused connections:
//! HTTP/1.1 keep-alive or not, `Connection: close` and on which response, the
//! idle timeout (how long an idle connection stays open, FIN or RST), the
//! number of requests one connection may carry, and whether the backend
//! closes *silently* — without announcing it — which is what makes nginx
//! send a request on a dead connection.
//!
//! Probes are polite and bounded: all targets run in parallel, each with at
//! most `idle_samples + 1` connections, a request rate limit, a cap on the
//! number of requests and a maximum wait; a [`Cancel`] flag (Ctrl-C) stops
//! everything and keeps what was measured so far.
//!
//! The JSON written by `upkeep probe --format json` is documented in
//! [`report`]; [`verdict`] compares the measurements with an nginx upstream.

pub mod config;
pub mod http;
mod measure;
mod pace;
pub mod render;
pub mod report;
pub mod target;
pub mod tls;
pub mod transport;
pub mod verdict;

pub use report::{ProbeReport, TargetReport, SCHEMA};
pub use target::{RequestDefaults, Scheme, Target};
pub use tls::Trust;
pub use upkeep_facts::NginxVersion;
pub use verdict::{judge, UpstreamConfig, UpstreamVerdict};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A shared stop flag: set it (from a Ctrl-C handler) and every probe ends
/// within about 100 ms, reporting what it measured.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// The bounds of a probe.
#[derive(Clone, Debug)]
pub struct ProbeOptions {
    /// Longest time spent on one target (the idle wait included).
    pub max_wait: Duration,
    /// Most requests sent on the request-cap connection.
    pub max_requests: u32,
    /// Requests per second per target, over all its connections.
    pub rate_per_sec: f64,
    /// Connect, TLS handshake and response timeout.
    pub io_timeout: Duration,
    /// Idle-timeout measurements per target, each on its own connection
    /// (1-4); the shortest is reported.
    pub idle_samples: u32,
    pub trust: Trust,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            max_wait: Duration::from_secs(120),
            max_requests: 1000,
            rate_per_sec: 100.0,
            io_timeout: Duration::from_secs(10),
            idle_samples: 2,
            trust: Trust::System,
        }
    }
}

/// Probes every target in parallel (one thread each, plus one per extra
/// connection) and returns the reports in the order of `targets`.
/// `on_done` is called from the probing threads as each target finishes.
pub fn probe_all(
    targets: &[Target],
    opts: &ProbeOptions,
    cancel: &Cancel,
    on_done: &(dyn Fn(&TargetReport) + Sync),
) -> Vec<TargetReport> {
    let tls = if targets.iter().any(|t| t.scheme == Scheme::Https) {
        Some(tls::client_config(&opts.trust))
    } else {
        None
    };
    std::thread::scope(|s| {
        let handles: Vec<_> = targets
            .iter()
            .map(|t| {
                let tls = tls.clone();
                s.spawn(move || {
                    let rep = match (t.scheme, tls) {
                        (Scheme::Https, Some(Err(e))) => {
                            let mut rep =
                                TargetReport::new(t.spec.clone(), t.upstream.clone(), t.scheme);
                            rep.error = Some(e);
                            rep
                        }
                        (Scheme::Https, Some(Ok(config))) => {
                            measure::probe_target(t, Some(config), opts, cancel)
                        }
                        _ => measure::probe_target(t, None, opts, cancel),
                    };
                    on_done(&rep);
                    rep
                })
            })
            .collect();
        handles
            .into_iter()
            .zip(targets)
            .map(|(h, t)| {
                h.join().unwrap_or_else(|_| {
                    let mut rep = TargetReport::new(t.spec.clone(), t.upstream.clone(), t.scheme);
                    rep.error = Some("internal error: the probe thread panicked".into());
                    rep
                })
            })
            .collect()
    })
}
