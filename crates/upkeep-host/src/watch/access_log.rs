//! What clients got from each upstream peer, from the access logs followed
//! like `tail -F` and split with the operator's own `log_format`.
//!
//! An access line is written when a request ends. `$upstream_addr` lists
//! the peer of every attempt (`10.0.0.1:80, 10.0.0.2:80` after a retry);
//! each attempt is a request sent to that peer. `$status` is what the
//! client got: a 502 is a failure the client saw (nginx gave up retrying),
//! and the peer it is charged to is the last one tried, whose failure ended
//! the request. Failures nginx retried away (facts/behaviors.md: a stale
//! pooled connection is retried for idempotent requests) end in a 200 and
//! are not counted here; the error-log signatures count those.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use upkeep_logs::access_format::{Field, LogFormat};
use upkeep_logs::follow::Follower;
use upkeep_logs::upstreams::{AddressTable, OVERFLOW_UPSTREAM};

/// Per peer: [`REQUESTS`] and [`BAD_GATEWAY`], for at most `--max-peers`
/// peers at once (the busiest; the rest pooled under
/// [`OVERFLOW_UPSTREAM`]), as `upkeep logs` counts failures per address.
pub type PeerTable = AddressTable<2>;
/// The slot of [`PeerRequests::requests`] in a [`PeerTable`].
pub const REQUESTS: usize = 0;
/// The slot of [`PeerRequests::bad_gateway`] in a [`PeerTable`].
pub const BAD_GATEWAY: usize = 1;

/// Requests and client-visible 502s of one peer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerRequests {
    /// Attempts sent to the peer (one per `$upstream_addr` entry).
    pub requests: u64,
    /// Requests that ended in a 502 to the client with this peer last.
    pub bad_gateway: u64,
}

/// Access-log lines counted over some time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessCounts {
    pub lines: u64,
    /// Lines that did not fit their `log_format`.
    pub unparsed: u64,
    /// Per peer as logged (`127.0.0.1:8080`, `unix:/path`, or the
    /// upstream's name when no server could be chosen). See
    /// [`Self::by_peer`].
    pub peers: PeerTable,
}

impl AccessCounts {
    /// Counts that track at most `max_peers` peers at once.
    pub fn with_peer_limit(max_peers: usize) -> AccessCounts {
        AccessCounts {
            peers: PeerTable::with_capacity(max_peers),
            ..AccessCounts::default()
        }
    }

    /// Peer → its counts, those of peers that lost their place in the
    /// table under [`OVERFLOW_UPSTREAM`].
    pub fn by_peer(&self) -> BTreeMap<String, PeerRequests> {
        let t = &self.peers;
        let of = |c: &[u64; 2]| PeerRequests {
            requests: c[REQUESTS],
            bad_gateway: c[BAD_GATEWAY],
        };
        let mut out: BTreeMap<String, PeerRequests> = (0..t.len() as u32)
            .map(|id| (t.name(id), of(t.counts(id))))
            .collect();
        if t.pooled().iter().any(|&n| n > 0) {
            let pooled = of(t.pooled());
            let e = out.entry(OVERFLOW_UPSTREAM.to_string()).or_default();
            e.requests += pooled.requests;
            e.bad_gateway += pooled.bad_gateway;
        }
        out
    }

    /// Counts one line of `format`.
    pub fn add_line(&mut self, format: &LogFormat, line: &[u8]) {
        self.lines += 1;
        let Some(rec) = format.parse_line(line, 0) else {
            self.unparsed += 1;
            return;
        };
        let mut last = None;
        for peer in rec.upstream_addrs() {
            let (id, _) = self.peers.intern(peer);
            self.peers.add_at(id, REQUESTS, 1);
            last = Some(peer);
        }
        if let (Some(502), Some(peer)) = (rec.status, last) {
            // Interned again: a later peer of the line may have taken its id.
            let (id, _) = self.peers.intern(peer);
            self.peers.add_at(id, BAD_GATEWAY, 1);
        }
    }

    pub fn merge(&mut self, other: &AccessCounts) {
        self.lines += other.lines;
        self.unparsed += other.unparsed;
        self.peers.merge(&other.peers);
    }
}

/// An access log to follow and the format its lines are in.
#[derive(Clone, Debug)]
pub struct AccessLogSource {
    pub path: PathBuf,
    /// The `log_format` text (or `combined`).
    pub format: String,
}

/// The followed access logs.
pub struct AccessLogs {
    followers: Vec<(Follower, LogFormat)>,
}

impl AccessLogs {
    /// Follows each log from its current end. Returns the ones that cannot
    /// be used, with why: an unreadable path, a format that does not
    /// compile, or one without `$upstream_addr` and `$status` (nothing
    /// here could be counted from it).
    pub fn open(sources: &[AccessLogSource]) -> (AccessLogs, Vec<String>) {
        let mut followers = Vec::new();
        let mut problems = Vec::new();
        for s in sources {
            let shown = s.path.display();
            let format = match LogFormat::parse(&s.format) {
                Ok(f) => f,
                Err(e) => {
                    problems.push(format!("access log {shown}: {e}"));
                    continue;
                }
            };
            if !format.has(Field::UpstreamAddr) || !format.has(Field::Status) {
                problems.push(format!(
                    "access log {shown}: its log_format has no $upstream_addr or no $status: no requests or 502s per upstream"
                ));
                continue;
            }
            match Follower::new(&s.path, false) {
                Ok(f) => followers.push((f, format)),
                Err(e) => problems.push(format!("access log {shown}: {e}")),
            }
        }
        (AccessLogs { followers }, problems)
    }

    pub fn is_empty(&self) -> bool {
        self.followers.is_empty()
    }

    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.followers.iter().map(|(f, _)| f.path())
    }

    /// Reads what was appended since the last call into `counts`; returns
    /// the read errors.
    pub fn poll(&mut self, counts: &mut AccessCounts) -> Vec<String> {
        let mut problems = Vec::new();
        for (f, format) in &mut self.followers {
            if let Err(e) = f.poll(&mut |line| counts.add_line(format, line)) {
                problems.push(format!("access log {}: {e}", f.path().display()));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const FORMAT: &str = r#"$remote_addr [$time_local] "$request" $status ua="$upstream_addr" us="$upstream_status""#;

    #[test]
    fn charges_attempts_to_each_peer_and_a_502_to_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        std::fs::write(&path, "old line\n").unwrap();
        let (mut logs, problems) = AccessLogs::open(&[AccessLogSource {
            path: path.clone(),
            format: FORMAT.into(),
        }]);
        assert!(problems.is_empty(), "{problems:?}");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        for line in [
            r#"127.0.0.1 [23/Nov/2026:14:26:24 +0000] "GET / HTTP/1.1" 200 ua="127.0.0.1:9102" us="200""#,
            // A stale connection retried away: two attempts, the client got 200.
            r#"127.0.0.1 [23/Nov/2026:14:26:24 +0000] "GET / HTTP/1.1" 200 ua="127.0.0.1:9102, 127.0.0.1:9102" us="502, 200""#,
            // A POST that failed: the client saw the 502.
            r#"127.0.0.1 [23/Nov/2026:14:26:25 +0000] "POST / HTTP/1.1" 502 ua="127.0.0.1:9103" us="502""#,
            // Answered by nginx itself: no upstream.
            r#"127.0.0.1 [23/Nov/2026:14:26:25 +0000] "GET /status HTTP/1.1" 200 ua="-" us="-""#,
            "garbage",
        ] {
            writeln!(f, "{line}").unwrap();
        }
        let mut counts = AccessCounts::default();
        assert!(logs.poll(&mut counts).is_empty());
        assert_eq!(counts.lines, 5, "the line before the start is skipped");
        assert_eq!(counts.unparsed, 1);
        assert_eq!(
            counts.by_peer(),
            BTreeMap::from([
                (
                    "127.0.0.1:9102".to_string(),
                    PeerRequests {
                        requests: 3,
                        bad_gateway: 0
                    }
                ),
                (
                    "127.0.0.1:9103".to_string(),
                    PeerRequests {
                        requests: 1,
                        bad_gateway: 1
                    }
                ),
            ])
        );
        let mut sum = AccessCounts::default();
        sum.merge(&counts);
        sum.merge(&counts);
        assert_eq!(sum.by_peer()["127.0.0.1:9103"].bad_gateway, 2);
    }

    #[test]
    fn a_format_without_upstream_addr_is_refused_with_why() {
        let (logs, problems) = AccessLogs::open(&[AccessLogSource {
            path: "/nonexistent/access.log".into(),
            format: "combined".into(),
        }]);
        assert!(logs.is_empty());
        assert!(problems[0].contains("$upstream_addr"), "{problems:?}");
    }
}
