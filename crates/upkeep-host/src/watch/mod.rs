//! `upkeep watch`: a running nginx, interval by interval.
//!
//! Each interval (1 s by default) yields an [`Interval`]:
//!
//! * client requests/s and accepted connections/s, and requests per
//!   connection, from two stub_status samples ([`client`]);
//! * per backend address, the connections opened towards it, from socket
//!   censuses polled several times per interval ([`new_connections`]), and
//!   its ESTABLISHED and TIME_WAIT sockets at the end of the interval (the
//!   census of [`crate::sockets`]);
//! * the failure signatures logged meanwhile, from following the error
//!   logs ([`error_signatures`]);
//! * the requests sent to each upstream peer and the 502s clients got,
//!   from following the access logs ([`access_log`]);
//! * the open-file headroom of the nginx master and workers
//!   ([`open_files`]);
//! * running totals since the watch started ([`Totals`]), which is what the
//!   Prometheus exposition ([`prometheus`], served by [`metrics_server`])
//!   publishes as counters.
//!
//! [`view`] renders an interval for people, [`json`] for programs; both show
//! what the Prometheus page publishes (with [`Sources`]: the static check,
//! which logs are followed).

pub mod access_log;
pub mod client;
pub mod error_signatures;
pub mod findings;
pub mod json;
pub mod metrics_server;
pub mod new_connections;
pub mod open_files;
pub mod peers;
pub mod prometheus;
pub mod view;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use crate::live_config::Backend;
use crate::sampling::STATUS_TIMEOUT;
use crate::sockets::{canonical, AddressCount, Census, CensusSource, SocketReader};
use crate::stub_status::{self, StatusUrl, StubStatus};

use access_log::{AccessCounts, AccessLogSource, AccessLogs};
use client::{per_second, ratio, ClientCounter, ClientInterval, ClientSample};
use error_signatures::{ErrorLogs, SignatureCounts};
use findings::StaticFindings;
use new_connections::NewConnections;
use open_files::OpenFiles;

/// `--interval` by default.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// `--max-peers` by default: as many addresses as `upkeep logs` tracks.
pub const DEFAULT_MAX_PEERS: usize = upkeep_logs::upstreams::MAX_UPSTREAMS;
/// The socket census is taken this often inside an interval (and at its
/// end): often enough to see connections that live shorter than an
/// interval, cheap enough for a busy host.
pub const CENSUS_EVERY: Duration = Duration::from_millis(200);

/// A backend address to watch, and what the configuration calls it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchedBackend {
    pub addr: SocketAddr,
    /// As written in the configuration (or on the command line).
    pub written: String,
    /// The `upstream{}` blocks that list it; empty for a `proxy_pass` to
    /// the address itself or an address given on the command line.
    pub upstreams: Vec<String>,
}

impl From<&Backend> for WatchedBackend {
    fn from(b: &Backend) -> WatchedBackend {
        WatchedBackend {
            addr: b.addr,
            written: b.written.clone(),
            upstreams: b.upstreams.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct WatchOptions {
    pub interval: Duration,
    pub census_every: Duration,
    /// stub_status to sample; without it there are no client rates.
    pub status: Option<StatusUrl>,
    pub reader: SocketReader,
    pub backends: Vec<WatchedBackend>,
    pub error_logs: Vec<PathBuf>,
    /// Access logs with `$upstream_addr` and `$status` in their format.
    pub access_logs: Vec<AccessLogSource>,
    /// `ip_local_port_range`, for the census's ephemeral-port count.
    pub port_range: Option<(u16, u16)>,
    /// The nginx master, for the open-file headroom of it and its workers.
    pub nginx_pid: Option<i32>,
    /// Peers (addresses the logs name) counted at once, per log kind; past
    /// it the busiest stay exact and the others are pooled (see
    /// [`PeerLimit`]).
    pub max_peers: usize,
    /// The `upkeep_build_info` labels.
    pub build: BuildLabels,
}

/// What `upkeep_build_info` says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildLabels {
    /// upkeep's version.
    pub version: String,
    /// The watched nginx's version (`nginx -v`), empty when unknown.
    pub nginx_version: String,
}

impl WatchOptions {
    pub fn new(status: Option<StatusUrl>, backends: Vec<WatchedBackend>) -> WatchOptions {
        WatchOptions {
            interval: DEFAULT_INTERVAL,
            census_every: CENSUS_EVERY,
            status,
            reader: SocketReader::OwnNamespace,
            backends,
            error_logs: Vec::new(),
            access_logs: Vec::new(),
            port_range: None,
            nginx_pid: None,
            max_peers: DEFAULT_MAX_PEERS,
            build: BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_string(),
                nginx_version: String::new(),
            },
        }
    }
}

/// What the watch follows besides its options, and the last static check:
/// what the Prometheus page and the views of an interval are made from.
pub struct Sources<'a> {
    pub opts: &'a WatchOptions,
    /// Whether any error log is followed (present or not yet).
    pub error_logs: bool,
    /// Whether any access log is followed (present or not yet).
    pub access_logs: bool,
    /// The static check of the running configuration, when run.
    pub findings: Option<&'a StaticFindings>,
}

/// Which log a [`LogState`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogKind {
    Error,
    Access,
}

impl LogKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LogKind::Error => "error",
            LogKind::Access => "access",
        }
    }
}

/// A followed log at the end of an interval: a log that does not exist
/// (yet, or any more) is still followed, and read from its start once it
/// appears; one that exists but is not a regular file (a FIFO, a
/// directory, a device) or cannot be opened is not read, and looked at
/// again in the next interval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogState {
    pub kind: LogKind,
    pub path: PathBuf,
    /// The path exists.
    pub present: bool,
    /// Why the log is not read although it is present.
    pub refused: Option<String>,
}

impl LogState {
    /// What `path` is now.
    pub fn of(kind: LogKind, path: &Path) -> LogState {
        let (present, refused) = match upkeep_logs::follow::path_state(path) {
            upkeep_logs::follow::PathState::Missing => (false, None),
            upkeep_logs::follow::PathState::Readable => (true, None),
            upkeep_logs::follow::PathState::Refused(why) => (true, Some(why)),
        };
        LogState {
            kind,
            path: path.to_path_buf(),
            present,
            refused,
        }
    }

    /// Present and read.
    pub fn readable(&self) -> bool {
        self.present && self.refused.is_none()
    }
}

/// One backend in one interval.
#[derive(Clone, Debug, PartialEq)]
pub struct BackendInterval {
    pub backend: WatchedBackend,
    /// Connections towards it that appeared in the interval (a lower bound,
    /// see [`new_connections`]).
    pub new_connections: u64,
    /// Its sockets at the last census of the interval; `None` when no census
    /// succeeded in the interval.
    pub sockets: Option<AddressCount>,
}

/// What one interval showed.
#[derive(Clone, Debug)]
pub struct Interval {
    /// 1 for the first interval.
    pub index: u64,
    /// When it ended.
    pub time: SystemTime,
    /// Since the watch started.
    pub elapsed: Duration,
    /// Its real length (rates are per second of this).
    pub duration: Duration,
    /// Client traffic; `None` without stub_status, when a sample failed, or
    /// right after a failure or a restart (a new baseline).
    pub client: Option<ClientInterval>,
    /// The last stub_status sample of the interval (its gauges: active,
    /// reading, writing, waiting), even when `client` is `None`.
    pub status: Option<StubStatus>,
    pub status_error: Option<String>,
    pub backends: Vec<BackendInterval>,
    pub census_source: Option<CensusSource>,
    pub census_polls: u32,
    pub census_error: Option<String>,
    /// Error-log lines of the interval.
    pub errors: SignatureCounts,
    /// Access-log lines of the interval.
    pub access: AccessCounts,
    /// Open files of nginx at the end of the interval; `None` without a
    /// master or when it could not be read.
    pub open_files: Option<OpenFiles>,
    /// The followed logs, and whether each exists now.
    pub logs: Vec<LogState>,
    /// Read errors of the error logs, restarts of nginx, …
    pub notes: Vec<String>,
    /// Since the watch started, this interval included.
    pub totals: Totals,
}

impl Interval {
    pub fn seconds(&self) -> f64 {
        self.duration.as_secs_f64()
    }

    /// New connections towards all backends.
    pub fn new_connections(&self) -> u64 {
        self.backends.iter().map(|b| b.new_connections).sum()
    }

    pub fn new_connections_per_second(&self) -> f64 {
        per_second(self.new_connections(), self.duration)
    }

    /// Client requests per new backend connection: an upper bound of the
    /// proxied requests per new connection, since the client count includes
    /// requests nginx answers itself. `None` without stub_status or new
    /// connections.
    pub fn requests_per_new_connection(&self) -> Option<f64> {
        ratio(self.client?.requests(), self.new_connections())
    }

    /// TIME_WAIT sockets towards all backends, at both ends.
    pub fn time_wait(&self) -> u64 {
        self.backends
            .iter()
            .filter_map(|b| b.sockets)
            .map(|s| s.time_wait_total())
            .sum()
    }

    /// ESTABLISHED sockets from nginx's side towards all backends.
    pub fn established(&self) -> u64 {
        self.backends
            .iter()
            .filter_map(|b| b.sockets)
            .map(|s| s.established)
            .sum()
    }

    pub fn signatures_per_second(&self, sig: upkeep_logs::Signature) -> f64 {
        per_second(self.errors.count(sig), self.duration)
    }
}

/// Running totals since the watch started.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Totals {
    pub intervals: u64,
    /// Sums of the client intervals (ours left out).
    pub client_requests: u64,
    pub client_accepts: u64,
    pub client_handled: u64,
    pub client_dropped: u64,
    pub status_failures: u64,
    /// New connections per backend address.
    pub new_connections: BTreeMap<SocketAddr, u64>,
    pub census_polls: u64,
    pub errors: SignatureCounts,
    pub access: AccessCounts,
}

/// How full one table of peers is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerTableUse {
    /// Peers counted now.
    pub tracked: usize,
    /// Times a peer lost its place to another (0: every count is exact).
    pub evictions: u64,
    /// Every peer with more lines (error log) or requests (access log) than
    /// this is counted on its own (0 while nothing was evicted).
    pub listed_above: u64,
}

/// The cap on the peers counted since the start (`--max-peers`): past it,
/// a new peer takes the place of the one with the least counted (the
/// space-saving sketch of `upkeep logs`), whose counts move to
/// `(other addresses)`; the busiest peers stay exact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerLimit {
    pub limit: usize,
    pub error_log: PeerTableUse,
    pub access_log: PeerTableUse,
}

impl PeerLimit {
    /// Some peer lost its place: counts of the others are pooled.
    pub fn reached(&self) -> bool {
        self.error_log.evictions > 0 || self.access_log.evictions > 0
    }
}

impl Totals {
    /// Empty totals that count at most `max_peers` peers per log kind.
    pub fn with_peer_limit(max_peers: usize) -> Totals {
        Totals {
            errors: SignatureCounts::with_peer_limit(max_peers),
            access: AccessCounts::with_peer_limit(max_peers),
            ..Totals::default()
        }
    }

    /// How full the peer tables are.
    pub fn peer_limit(&self) -> PeerLimit {
        let errors = &self.errors.peers;
        let access = &self.access.peers;
        PeerLimit {
            limit: errors.capacity(),
            error_log: PeerTableUse {
                tracked: errors.len(),
                evictions: errors.evictions(),
                listed_above: errors.listed_above(),
            },
            access_log: PeerTableUse {
                tracked: access.len(),
                evictions: access.evictions(),
                listed_above: access.listed_above(),
            },
        }
    }

    /// Requests per handled client connection since the start.
    pub fn requests_per_connection(&self) -> Option<f64> {
        ratio(self.client_requests, self.client_handled)
    }

    pub fn new_connections_total(&self) -> u64 {
        self.new_connections.values().sum()
    }
}

/// The sampler: keeps what the previous interval ended with.
pub struct Watcher {
    opts: WatchOptions,
    addresses: Vec<SocketAddr>,
    client: ClientCounter,
    connections: NewConnections,
    logs: ErrorLogs,
    access_logs: AccessLogs,
    totals: Totals,
    findings: Option<StaticFindings>,
    started: Instant,
    /// The end of the interval being sampled.
    deadline: Instant,
    previous_end: Instant,
    /// Problems found at the start (to tell the user once).
    pub problems: Vec<String>,
}

impl Watcher {
    /// Takes the baseline: a stub_status sample, a census, and the current
    /// end of each error log.
    pub fn start(opts: WatchOptions) -> Watcher {
        let addresses: Vec<SocketAddr> = opts.backends.iter().map(|b| b.addr).collect();
        let (logs, mut problems) = ErrorLogs::open(&opts.error_logs);
        let (access_logs, access_problems) = AccessLogs::open(&opts.access_logs);
        problems.extend(access_problems);
        let mut w = Watcher {
            connections: NewConnections::new(addresses.iter().copied()),
            addresses,
            client: ClientCounter::default(),
            logs,
            access_logs,
            totals: Totals::with_peer_limit(opts.max_peers),
            findings: None,
            started: Instant::now(),
            deadline: Instant::now(),
            previous_end: Instant::now(),
            problems: Vec::new(),
            opts,
        };
        if !w.addresses.is_empty() {
            if let Err(e) = w.census() {
                problems.push(format!("socket census failed: {e}"));
            }
        }
        if let Some(url) = w.opts.status.clone() {
            match stub_status::fetch(&url, STATUS_TIMEOUT) {
                Ok(s) => {
                    w.client.observe(s, Instant::now());
                }
                Err(e) => problems.push(format!("stub_status: {e}")),
            }
        }
        w.problems = problems;
        w.started = Instant::now();
        w.previous_end = w.started;
        w.deadline = w.started;
        w
    }

    pub fn options(&self) -> &WatchOptions {
        &self.opts
    }

    pub fn error_logs(&self) -> impl Iterator<Item = &Path> {
        self.logs.paths()
    }

    pub fn access_logs(&self) -> impl Iterator<Item = &Path> {
        self.access_logs.paths()
    }

    pub fn totals(&self) -> &Totals {
        &self.totals
    }

    /// The static check of the running configuration, for the
    /// `upkeep_findings` gauge (run by the caller, which can load and check
    /// a configuration; at the start and after each reload).
    pub fn findings_mut(&mut self) -> &mut StaticFindings {
        self.findings.get_or_insert_with(StaticFindings::default)
    }

    /// What the page and the views are made from besides an interval.
    pub fn sources(&self) -> Sources<'_> {
        Sources {
            opts: &self.opts,
            error_logs: !self.logs.is_empty(),
            access_logs: !self.access_logs.is_empty(),
            findings: self.findings.as_ref(),
        }
    }

    /// The Prometheus page after `last` (`None`: before the first interval).
    pub fn exposition(&self, last: Option<&Interval>) -> String {
        prometheus::exposition(&self.sources(), &self.totals, last)
    }

    /// Samples until the end of the next interval. `None` when `stop` was
    /// set meanwhile (checked at every census, so within
    /// [`WatchOptions::census_every`]).
    pub fn next(&mut self, stop: &AtomicBool) -> Option<Interval> {
        // Deadlines follow each other without drift; after a stall (a
        // stub_status request that waited for its timeout), start afresh.
        let now = Instant::now();
        self.deadline += self.opts.interval;
        if self.deadline < now {
            self.deadline = now + self.opts.interval;
        }
        let every = self.opts.census_every.max(Duration::from_millis(10));

        let mut new: BTreeMap<SocketAddr, u64> = BTreeMap::new();
        let mut census: Option<Census> = None;
        let mut source = None;
        let mut polls = 0u32;
        let mut census_error = None;
        let mut errors = SignatureCounts::with_peer_limit(self.opts.max_peers);
        let mut access = AccessCounts::with_peer_limit(self.opts.max_peers);
        let mut notes: Vec<String> = Vec::new();
        let mut next_census = Instant::now();
        loop {
            // Censuses on a fixed cadence, whatever each one costs.
            let now = Instant::now();
            next_census = (next_census + every).max(now);
            let wake = next_census.min(self.deadline);
            std::thread::sleep(wake.saturating_duration_since(now));
            if stop.load(Ordering::Relaxed) {
                return None;
            }
            if !self.addresses.is_empty() {
                match self.census() {
                    Ok((c, s, appeared)) => {
                        polls += 1;
                        source = Some(s);
                        census = Some(c);
                        for (addr, n) in appeared {
                            *new.entry(addr).or_insert(0) += n;
                        }
                    }
                    Err(e) => census_error = Some(e),
                }
            }
            let mut problems = self.logs.poll(&mut errors);
            problems.extend(self.access_logs.poll(&mut access));
            for p in problems {
                if !notes.contains(&p) {
                    notes.push(p);
                }
            }
            if Instant::now() >= self.deadline {
                break;
            }
        }

        let (client, status, status_error) = self.sample_status(&mut notes);
        let open_files = self
            .opts
            .nginx_pid
            .and_then(|pid| match open_files::read(pid) {
                Ok((files, problems)) => {
                    notes.extend(problems);
                    Some(files)
                }
                Err(e) => {
                    notes.push(format!("nginx master {pid}: {e}"));
                    None
                }
            });
        let logs: Vec<LogState> = (self.logs.paths().map(|p| (LogKind::Error, p)))
            .chain(self.access_logs.paths().map(|p| (LogKind::Access, p)))
            .map(|(kind, path)| LogState::of(kind, path))
            .collect();
        let end = Instant::now();
        let duration = end.saturating_duration_since(self.previous_end);
        self.previous_end = end;

        let t = &mut self.totals;
        t.intervals += 1;
        t.census_polls += u64::from(polls);
        if let Some(c) = &client {
            t.client_requests += c.requests();
            t.client_accepts += c.accepts();
            t.client_handled += c.handled();
            t.client_dropped += c.dropped();
        }
        if status_error.is_some() {
            t.status_failures += 1;
        }
        for b in &self.opts.backends {
            t.new_connections.entry(canonical(b.addr)).or_insert(0);
        }
        for (addr, n) in &new {
            *t.new_connections.entry(*addr).or_insert(0) += n;
        }
        t.errors.merge(&errors);
        t.access.merge(&access);
        let backends = self
            .opts
            .backends
            .iter()
            .map(|b| BackendInterval {
                backend: b.clone(),
                new_connections: new.get(&canonical(b.addr)).copied().unwrap_or(0),
                sockets: census.as_ref().map(|c| c.get(&b.addr)),
            })
            .collect();
        Some(Interval {
            index: t.intervals,
            time: SystemTime::now(),
            elapsed: end.saturating_duration_since(self.started),
            duration,
            client,
            status,
            status_error,
            backends,
            census_source: source,
            census_polls: polls,
            census_error,
            errors,
            access,
            open_files,
            logs,
            notes,
            totals: t.clone(),
        })
    }

    /// One census: the counts per backend, the source, and the connections
    /// new since the previous census.
    fn census(&mut self) -> Result<(Census, CensusSource, BTreeMap<SocketAddr, u64>), String> {
        let (sockets, source) = self.opts.reader.read().map_err(|e| e.to_string())?;
        let appeared = self.connections.observe(&sockets);
        let census = Census::count(&sockets, &self.addresses, self.opts.port_range);
        Ok((census, source, appeared))
    }

    fn sample_status(
        &mut self,
        notes: &mut Vec<String>,
    ) -> (Option<ClientInterval>, Option<StubStatus>, Option<String>) {
        let Some(url) = &self.opts.status else {
            return (None, None, None);
        };
        match stub_status::fetch(url, STATUS_TIMEOUT) {
            Ok(s) => match self.client.observe(s, Instant::now()) {
                ClientSample::Interval(c) => (Some(c), Some(s), None),
                ClientSample::Baseline { reason } => {
                    notes.extend(reason);
                    (None, Some(s), None)
                }
            },
            Err(e) => {
                self.client.lost();
                (None, None, Some(e))
            }
        }
    }
}
