//! Measures what HTTP backends really do with idle and reused connections:
//! HTTP/1.1 keep-alive or not, `Connection: close` and on which response, the
//! idle timeout (how long an idle connection stays open, FIN or RST), the
//! number of requests one connection may carry, and whether the backend
//! closes *silently* — without announcing it — which is what makes nginx
//! send a request on a dead connection.
//!
//! Probes are polite and bounded: targets run in parallel, at most
//! [`ProbeOptions::max_parallel`] at a time (fewer when the open-file limit
//! would not allow that many), each with at most `idle_samples + 1`
//! connections, a cap on the number of requests, on the size of a response
//! body and on the time spent. The request rate limit holds per backend
//! address, over all targets that reach it. A [`Cancel`] flag (Ctrl-C)
//! stops everything and keeps what was measured so far.
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

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
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
    /// Requests per second per backend address (resolved `ip:port` or
    /// socket path), over all connections of all targets that reach it.
    pub rate_per_sec: f64,
    /// Connect, TLS handshake and response timeout.
    pub io_timeout: Duration,
    /// Idle-timeout measurements per target, each on its own connection
    /// (1-4); the shortest is reported.
    pub idle_samples: u32,
    pub trust: Trust,
    /// Most targets probed at the same time; lowered further so that their
    /// connections fit in the open-file limit (see [`parallelism`]).
    pub max_parallel: usize,
    /// Longest response body read, in bytes; a longer one ends the target
    /// with an error without being read.
    pub max_body: u64,
}

/// Default of [`ProbeOptions::max_parallel`].
pub const DEFAULT_MAX_PARALLEL: usize = 128;
/// Default of [`ProbeOptions::max_body`]: 1 MiB.
pub const DEFAULT_MAX_BODY: u64 = 1 << 20;
/// File descriptors left free for everything else (stdio, resolver,
/// certificate files).
const FD_RESERVE: u64 = 32;

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            max_wait: Duration::from_secs(120),
            max_requests: 1000,
            rate_per_sec: 100.0,
            io_timeout: Duration::from_secs(10),
            idle_samples: 2,
            trust: Trust::System,
            max_parallel: DEFAULT_MAX_PARALLEL,
            max_body: DEFAULT_MAX_BODY,
        }
    }
}

/// How many targets run at once, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parallelism {
    pub workers: usize,
    /// The open-file limit, not `max_parallel`, set `workers`.
    pub limited_by_fds: bool,
}

/// The number of targets probed at once: `max_parallel`, at most the number
/// of targets, and at most what the free file descriptors allow (each
/// target holds `idle_samples + 1` connections plus one for name
/// resolution).
pub fn parallelism(opts: &ProbeOptions, targets: usize) -> Parallelism {
    let wanted = opts.max_parallel.max(1).min(targets.max(1));
    let per_target = u64::from(opts.idle_samples.clamp(1, 4)) + 2;
    match free_fds() {
        Some(free) => {
            let fit = (free.saturating_sub(FD_RESERVE) / per_target).max(1) as usize;
            Parallelism {
                workers: wanted.min(fit),
                limited_by_fds: fit < wanted,
            }
        }
        None => Parallelism {
            workers: wanted,
            limited_by_fds: false,
        },
    }
}

/// File descriptors this process may still open: the soft RLIMIT_NOFILE
/// minus those open now. `None` when either is unknown.
fn free_fds() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return None;
    }
    if lim.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    let open = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    Some(lim.rlim_cur.saturating_sub(open))
}

/// Probes every target, [`parallelism`] of them at a time, and returns the
/// reports in the order of `targets`. `on_done` is called from the probing
/// threads as each target finishes.
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
    let pacers = pace::Pacers::new(opts.rate_per_sec);
    let workers = parallelism(opts, targets.len()).workers;
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<Option<TargetReport>>> = Mutex::new(vec![None; targets.len()]);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(t) = targets.get(i) else { break };
                let rep = probe_one(t, tls.as_ref(), opts, &pacers, cancel);
                on_done(&rep);
                done.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(rep);
            });
        }
    });
    done.into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .zip(targets)
        .map(|(rep, t)| {
            rep.unwrap_or_else(|| {
                failed(t, "internal error: the probe thread ended without a report")
            })
        })
        .collect()
}

/// One target; a panic becomes that target's error instead of ending the
/// worker.
fn probe_one(
    t: &Target,
    tls: Option<&Result<Arc<rustls::ClientConfig>, String>>,
    opts: &ProbeOptions,
    pacers: &pace::Pacers,
    cancel: &Cancel,
) -> TargetReport {
    if cancel.is_cancelled() {
        let mut rep = TargetReport::new(t.spec.clone(), t.upstream.clone(), t.scheme);
        rep.notes
            .push("interrupted before this target was probed".into());
        return rep;
    }
    let run = || match (t.scheme, tls) {
        (Scheme::Https, Some(Err(e))) => failed(t, e),
        (Scheme::Https, Some(Ok(config))) => {
            measure::probe_target(t, Some(config.clone()), opts, pacers, cancel)
        }
        _ => measure::probe_target(t, None, opts, pacers, cancel),
    };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
        .unwrap_or_else(|_| failed(t, "internal error: the probe thread panicked"))
}

fn failed(t: &Target, why: &str) -> TargetReport {
    let mut rep = TargetReport::new(t.spec.clone(), t.upstream.clone(), t.scheme);
    rep.error = Some(why.to_string());
    rep
}
