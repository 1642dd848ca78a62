//! Per upstream peer, since the watch started: the requests and
//! client-visible 502s of the access logs and the failure signatures of
//! the error logs, under the peer's name as nginx logs it. One list for
//! the Prometheus page and both views, so they cannot disagree.
//!
//! Every watched backend is listed from the start, at 0 (its stale-reuse
//! signatures, requests and 502s), so the first failure is an increase
//! rather than a new entry; peers that the logs name and the watch was not
//! told about (another address, or an upstream's name for "no live
//! upstreams") are listed as logged.

use std::collections::BTreeMap;

use upkeep_logs::Signature;

use super::prometheus::STALE_REUSE;
use super::{Sources, Totals, WatchOptions, WatchedBackend};
use crate::sockets::canonical;

/// One peer's counts since the start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerTotals {
    /// As logged: `127.0.0.1:8080`, `unix:/path`, or an upstream's name.
    pub peer: String,
    /// The `upstream{}` blocks of the watched backend with that address
    /// (comma-separated), the upstream itself when nginx logged its name,
    /// else empty.
    pub upstream: String,
    /// Attempts sent to it (access log); `None` when no access log is
    /// followed.
    pub requests: Option<u64>,
    /// Requests that ended in a 502 with it tried last (access log).
    pub bad_gateway: Option<u64>,
    /// Error-log lines per signature naming it; empty when no error log is
    /// followed. The stale-reuse signatures of a watched backend are there
    /// at 0 until logged.
    pub signatures: BTreeMap<Signature, u64>,
}

impl PeerTotals {
    /// Lines of the stale keep-alive race ([`STALE_REUSE`]).
    pub fn stale_reuse(&self) -> u64 {
        STALE_REUSE
            .iter()
            .map(|s| self.signatures.get(s).copied().unwrap_or(0))
            .sum()
    }
}

/// Every peer, ordered by name.
pub fn peer_totals(src: &Sources<'_>, totals: &Totals) -> Vec<PeerTotals> {
    let opts = src.opts;
    let mut by_peer: BTreeMap<String, PeerTotals> = BTreeMap::new();
    fn entry<'m>(
        by_peer: &'m mut BTreeMap<String, PeerTotals>,
        opts: &WatchOptions,
        peer: &str,
    ) -> &'m mut PeerTotals {
        by_peer
            .entry(peer.to_string())
            .or_insert_with(|| PeerTotals {
                peer: peer.to_string(),
                upstream: upstream_of_peer(opts, peer),
                requests: None,
                bad_gateway: None,
                signatures: BTreeMap::new(),
            })
    }
    if src.error_logs {
        for ((sig, peer), count) in &totals.errors.by_backend() {
            *entry(&mut by_peer, opts, peer)
                .signatures
                .entry(*sig)
                .or_insert(0) += count;
        }
        for b in &opts.backends {
            let e = entry(&mut by_peer, opts, &b.addr.to_string());
            for sig in STALE_REUSE {
                e.signatures.entry(sig).or_insert(0);
            }
        }
    }
    if src.access_logs {
        for (peer, c) in &totals.access.by_peer() {
            let e = entry(&mut by_peer, opts, peer);
            e.requests = Some(c.requests);
            e.bad_gateway = Some(c.bad_gateway);
        }
        for b in &opts.backends {
            let e = entry(&mut by_peer, opts, &b.addr.to_string());
            e.requests.get_or_insert(0);
            e.bad_gateway.get_or_insert(0);
        }
    }
    by_peer.into_values().collect()
}

/// The `upstream` label of a watched backend.
pub fn upstream_label(b: &WatchedBackend) -> String {
    b.upstreams.join(",")
}

/// The upstreams of a peer as nginx logs it: those of the watched backend
/// with that address; the upstream's own name when nginx logged it instead
/// of a peer ("no live upstreams"); else empty.
pub fn upstream_of_peer(opts: &WatchOptions, peer: &str) -> String {
    let parsed = peer.parse().ok().map(canonical);
    if let Some(b) = opts
        .backends
        .iter()
        .find(|b| Some(canonical(b.addr)) == parsed || b.written == peer)
    {
        return upstream_label(b);
    }
    if opts
        .backends
        .iter()
        .any(|b| b.upstreams.iter().any(|u| u == peer))
    {
        return peer.to_string();
    }
    String::new()
}
