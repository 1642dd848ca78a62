//! Failure signatures as they are logged: the error logs followed like
//! `tail -F` (upkeep-logs' [`Follower`], rotation-safe) and every new line
//! classified with [`classify_line`] into the signature IDs of
//! facts/signatures.tsv.
//!
//! The peers the lines name are counted in upkeep-logs' [`UpstreamTable`],
//! as `upkeep logs` counts them: at most `--max-peers` at once, the
//! busiest exactly, the rest pooled under [`OVERFLOW_UPSTREAM`]; so
//! Kubernetes pods that come and go do not grow a long watch's memory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use upkeep_logs::follow::Follower;
use upkeep_logs::upstreams::{UpstreamTable, OVERFLOW_UPSTREAM};
use upkeep_logs::{classify_line, Signature};

/// Signature lines counted over some time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SignatureCounts {
    /// Lines read (all of them, with or without a signature).
    pub lines: u64,
    /// Lines per signature, indexed by [`Signature::index`].
    pub by_signature: [u64; Signature::COUNT],
    /// Lines that name an upstream peer, per peer as logged: `127.0.0.1:8080`,
    /// `unix:/path`, or the upstream's name when nginx could not choose a
    /// server ("no live upstreams"). See [`Self::by_backend`].
    pub peers: UpstreamTable,
}

impl SignatureCounts {
    /// Counts that track at most `max_peers` peers at once.
    pub fn with_peer_limit(max_peers: usize) -> SignatureCounts {
        SignatureCounts {
            peers: UpstreamTable::with_capacity(max_peers),
            ..SignatureCounts::default()
        }
    }

    /// Lines that name an upstream peer: (signature, peer) → lines, the
    /// lines of peers that lost their place in the table under
    /// [`OVERFLOW_UPSTREAM`].
    pub fn by_backend(&self) -> BTreeMap<(Signature, String), u64> {
        let t = &self.peers;
        let mut out = BTreeMap::new();
        let tracked = (0..t.len() as u32).map(|id| (t.name(id), t.counts(id)));
        let pooled = std::iter::once((OVERFLOW_UPSTREAM.to_string(), t.pooled()));
        for (peer, counts) in tracked.chain(pooled) {
            for sig in Signature::ALL {
                let n = counts[sig.index()];
                if n > 0 {
                    *out.entry((sig, peer.clone())).or_insert(0) += n;
                }
            }
        }
        out
    }

    pub fn count(&self, sig: Signature) -> u64 {
        self.by_signature[sig.index()]
    }

    /// Lines with any signature.
    pub fn total(&self) -> u64 {
        self.by_signature.iter().sum()
    }

    /// Counts one line.
    pub fn add_line(&mut self, line: &[u8]) {
        self.lines += 1;
        let Some(c) = classify_line(line) else {
            return;
        };
        self.by_signature[c.signature.index()] += 1;
        if let Some(peer) = c.line.upstream_addr() {
            let (id, _) = self.peers.intern(peer);
            self.peers.add(id, c.signature, 1);
        }
    }

    pub fn merge(&mut self, other: &SignatureCounts) {
        self.lines += other.lines;
        for (a, b) in self.by_signature.iter_mut().zip(other.by_signature) {
            *a += b;
        }
        self.peers.merge(&other.peers);
    }
}

/// The followed error logs.
pub struct ErrorLogs {
    followers: Vec<Follower>,
}

impl ErrorLogs {
    /// Follows each of `paths` from its current end (what was logged
    /// before the watch started is not counted). A path that does not exist
    /// yet is waited for. Returns the paths that cannot be followed, with why.
    pub fn open(paths: &[PathBuf]) -> (ErrorLogs, Vec<String>) {
        let mut followers = Vec::new();
        let mut problems = Vec::new();
        for p in paths {
            match Follower::new(p, false) {
                Ok(f) => followers.push(f),
                Err(e) => problems.push(format!("error log {}: {e}", p.display())),
            }
        }
        (ErrorLogs { followers }, problems)
    }

    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.followers.iter().map(|f| f.path())
    }

    pub fn is_empty(&self) -> bool {
        self.followers.is_empty()
    }

    /// Reads what was appended since the last call into `counts`. Returns
    /// the read errors (the followers stay; a log that comes back is read
    /// again).
    pub fn poll(&mut self, counts: &mut SignatureCounts) -> Vec<String> {
        let mut problems = Vec::new();
        for f in &mut self.followers {
            if let Err(e) = f.poll(&mut |line| counts.add_line(line)) {
                problems.push(format!("error log {}: {e}", f.path().display()));
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const RESET: &str = r#"2026/11/23 14:26:24 [error] 30381#0: *14 recv() failed (104: Connection reset by peer) while reading response header from upstream, client: 127.0.0.1, server: , request: "GET /rst/b HTTP/1.1", upstream: "http://127.0.0.1:9102/rst/b", host: "127.0.0.1:8088""#;
    const REFUSED: &str = r#"2026/11/23 14:26:25 [error] 30381#0: *15 connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: , request: "GET /down HTTP/1.1", upstream: "http://127.0.0.1:9103/down", host: "t""#;
    const NOISE: &str = r#"2026/11/23 14:26:26 [notice] 30380#0: signal process started"#;
    const NOT_ENOUGH: &str =
        "2026/11/23 14:26:27 [alert] 30381#0: 8 worker_connections are not enough";

    #[test]
    fn counts_signatures_and_their_peers_from_appended_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("error.log");
        std::fs::write(&path, format!("{RESET}\n")).unwrap();
        let (mut logs, problems) = ErrorLogs::open(std::slice::from_ref(&path));
        assert!(problems.is_empty(), "{problems:?}");
        let mut counts = SignatureCounts::default();
        assert!(logs.poll(&mut counts).is_empty());
        assert_eq!(
            counts,
            SignatureCounts::default(),
            "the old line is skipped"
        );

        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        for line in [RESET, REFUSED, REFUSED, NOISE, NOT_ENOUGH] {
            writeln!(f, "{line}").unwrap();
        }
        logs.poll(&mut counts);
        assert_eq!(counts.lines, 5);
        assert_eq!(counts.total(), 4);
        assert_eq!(counts.count(Signature::UpstreamReset), 1);
        assert_eq!(counts.count(Signature::ConnectRefused), 2);
        assert_eq!(counts.count(Signature::WorkerConnectionsNotEnough), 1);
        assert_eq!(
            counts.by_backend(),
            BTreeMap::from([
                ((Signature::ConnectRefused, "127.0.0.1:9103".to_string()), 2),
                ((Signature::UpstreamReset, "127.0.0.1:9102".to_string()), 1),
            ])
        );

        let mut sum = SignatureCounts::default();
        sum.merge(&counts);
        sum.merge(&counts);
        assert_eq!(sum.count(Signature::ConnectRefused), 4);
        assert_eq!(sum.lines, 10);
    }

    #[test]
    fn a_directory_is_refused_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let (logs, problems) = ErrorLogs::open(&[dir.path().to_path_buf()]);
        assert!(logs.is_empty());
        assert!(problems[0].contains("directory"), "{problems:?}");
    }
}
