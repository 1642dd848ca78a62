//! Watching the host for a short window: stub_status at both ends, the
//! socket census polled throughout, so connections that open and close
//! inside the window are seen too.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::sockets::{canonical, Census, CensusSource, Socket, SocketReader, TcpState};
use crate::stub_status::{self, StatusUrl, StubStatus};

/// How often the census is taken during the window.
pub const POLL_EVERY: Duration = Duration::from_millis(200);
/// Connect/read timeout of one stub_status request.
pub const STATUS_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Clone, Debug)]
pub struct SampleOptions {
    pub window: Duration,
    pub poll_every: Duration,
    pub status: Option<StatusUrl>,
    pub reader: SocketReader,
    /// The backend addresses to count.
    pub addresses: Vec<SocketAddr>,
    /// `ip_local_port_range`, to count the ephemeral ports in use.
    pub port_range: Option<(u16, u16)>,
}

/// The client traffic of the window, from two stub_status samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusDelta {
    pub start: StubStatus,
    pub end: StubStatus,
}

impl StatusDelta {
    /// Client connections nginx handled in the window, not counting the
    /// second stub_status request's own connection.
    pub fn connections(&self) -> u64 {
        self.end
            .handled
            .saturating_sub(self.start.handled)
            .saturating_sub(1)
    }

    /// Client requests in the window, not counting the second stub_status
    /// request (the page counts the request that fetches it).
    pub fn requests(&self) -> u64 {
        self.end
            .requests
            .saturating_sub(self.start.requests)
            .saturating_sub(1)
    }

    /// Connections accepted but dropped for lack of a connection slot.
    pub fn dropped(&self) -> u64 {
        let accepted = self.end.accepts.saturating_sub(self.start.accepts);
        let handled = self.end.handled.saturating_sub(self.start.handled);
        accepted.saturating_sub(handled)
    }
}

/// What the window showed.
#[derive(Clone, Debug)]
pub struct Sampling {
    pub elapsed: Duration,
    pub polls: u32,
    pub source: Option<CensusSource>,
    /// Why the census failed, if it did.
    pub census_error: Option<String>,
    pub census_start: Census,
    pub census_end: Census,
    /// Per address: the most TIME_WAIT sockets seen at once (both ends).
    pub peak_time_wait: BTreeMap<SocketAddr, u64>,
    /// Per address: connections towards it that appeared during the window
    /// (distinct local/remote pairs not present at its start). A lower
    /// bound: a connection shorter than one poll interval whose TIME_WAIT
    /// landed at the far end is not seen, and a reused TIME_WAIT port
    /// counts once.
    pub new_connections: BTreeMap<SocketAddr, u64>,
    pub status: Option<StatusDelta>,
    pub status_error: Option<String>,
}

impl Sampling {
    pub fn new_connections_total(&self) -> u64 {
        self.new_connections.values().sum()
    }
}

/// Samples for `opts.window` (at least one census at each end).
pub fn sample(opts: &SampleOptions) -> Sampling {
    let targets: HashSet<SocketAddr> = opts.addresses.iter().map(|a| canonical(*a)).collect();
    let started = Instant::now();
    let mut status_error = None;
    let status_start =
        opts.status
            .as_ref()
            .and_then(|url| match stub_status::fetch(url, STATUS_TIMEOUT) {
                Ok(s) => Some(s),
                Err(e) => {
                    status_error = Some(e);
                    None
                }
            });

    let mut out = Sampling {
        elapsed: Duration::ZERO,
        polls: 0,
        source: None,
        census_error: None,
        census_start: Census::default(),
        census_end: Census::default(),
        peak_time_wait: BTreeMap::new(),
        new_connections: BTreeMap::new(),
        status: None,
        status_error: None,
    };
    let mut baseline: Option<HashSet<(SocketAddr, SocketAddr)>> = None;
    let mut appeared: HashSet<(SocketAddr, SocketAddr)> = HashSet::new();
    loop {
        match opts.reader.read() {
            Ok((sockets, source)) => {
                out.source = Some(source);
                out.polls += 1;
                let census = Census::count(&sockets, &opts.addresses, opts.port_range);
                for (addr, c) in &census.by_address {
                    let peak = out.peak_time_wait.entry(*addr).or_default();
                    *peak = (*peak).max(c.time_wait_total());
                }
                let pairs = outgoing_pairs(&sockets, &targets);
                match &baseline {
                    None => {
                        out.census_start = census.clone();
                        baseline = Some(pairs);
                    }
                    Some(base) => appeared.extend(pairs.difference(base).copied()),
                }
                out.census_end = census;
            }
            Err(e) => {
                out.census_error = Some(e.to_string());
                break;
            }
        }
        let elapsed = started.elapsed();
        if elapsed >= opts.window {
            break;
        }
        std::thread::sleep(opts.poll_every.min(opts.window - elapsed));
    }
    for (_, remote) in &appeared {
        *out.new_connections.entry(*remote).or_default() += 1;
    }
    for a in &targets {
        out.new_connections.entry(*a).or_default();
    }

    if let Some(url) = &opts.status {
        match (status_start, stub_status::fetch(url, STATUS_TIMEOUT)) {
            (Some(start), Ok(end)) => out.status = Some(StatusDelta { start, end }),
            (None, _) => out.status_error = status_error,
            (_, Err(e)) => out.status_error = Some(e),
        }
    }
    out.elapsed = started.elapsed();
    out
}

/// (local, remote) of every non-listening socket towards a target.
fn outgoing_pairs(
    sockets: &[Socket],
    targets: &HashSet<SocketAddr>,
) -> HashSet<(SocketAddr, SocketAddr)> {
    sockets
        .iter()
        .filter(|s| s.state != TcpState::Listen)
        .map(|s| (canonical(s.local), canonical(s.remote)))
        .filter(|(_, remote)| targets.contains(remote))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_leave_out_the_second_status_request() {
        let start = StubStatus {
            accepts: 10,
            handled: 10,
            requests: 20,
            ..StubStatus::default()
        };
        let end = StubStatus {
            accepts: 112,
            handled: 111,
            requests: 221,
            ..StubStatus::default()
        };
        let d = StatusDelta { start, end };
        assert_eq!(d.connections(), 100);
        assert_eq!(d.requests(), 200);
        assert_eq!(d.dropped(), 1);
    }

    #[test]
    fn sees_connections_that_appear_during_the_window() {
        use std::net::{TcpListener, TcpStream};
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let opts = SampleOptions {
            window: Duration::from_millis(600),
            poll_every: Duration::from_millis(50),
            status: None,
            reader: SocketReader::OwnNamespace,
            addresses: vec![addr],
            port_range: None,
        };
        let _before = TcpStream::connect(addr).unwrap();
        let (_b, _) = l.accept().unwrap();
        let worker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            let c: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
            std::thread::sleep(Duration::from_millis(300));
            drop(c);
        });
        let s = sample(&opts);
        worker.join().unwrap();
        assert!(s.polls >= 2, "{s:?}");
        assert_eq!(s.census_start.get(&addr).established, 1);
        assert_eq!(s.new_connections[&addr], 3, "{s:?}");
    }
}
