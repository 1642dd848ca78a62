//! The stable signature IDs `upkeep logs` reports, with what each one means
//! for connection reuse and the rules it points to.
//!
//! Transcribed from `facts/signatures.tsv` (IDs, levels, rules) and
//! `facts/errors.tsv` (the message catalogue behind each ID). IDs never change
//! meaning; a new kind of failure gets a new ID.

use std::fmt;

/// One failure signature. The discriminants index fixed-size count arrays,
/// so the order here is also the order of every report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Signature {
    ConnectRefused,
    ConnectAddrUnavailable,
    ConnectTimeout,
    UpstreamPrematurelyClosed,
    UpstreamReset,
    UpstreamSendFailed,
    ReadTimeout,
    NoLiveUpstreams,
    ServerTemporarilyDisabled,
    WorkerConnectionsNotEnough,
    TooManyOpenFiles,
    WorkerConnectionsExceedNofile,
    UpstreamSslHandshake,
    UpstreamInvalidHeader,
    LbMethodRedefined,
    H2CachedConnectionMismatch,
    H2FrameUnknownType,
    UpstreamH2Goaway,
}

/// What a signature means, for people.
#[derive(Clone, Copy, Debug)]
pub struct SignatureInfo {
    pub id: &'static str,
    /// The level nginx logs it at (facts/signatures.tsv).
    pub level: &'static str,
    /// The messages it matches, as nginx prints them.
    pub matches: &'static str,
    /// Likely root causes, in one or two sentences.
    pub meaning: &'static str,
    /// RULES.md IDs to read (`upkeep explain ID`).
    pub rules: &'static [&'static str],
}

impl Signature {
    pub const COUNT: usize = 18;

    pub const ALL: [Signature; Signature::COUNT] = [
        Signature::ConnectRefused,
        Signature::ConnectAddrUnavailable,
        Signature::ConnectTimeout,
        Signature::UpstreamPrematurelyClosed,
        Signature::UpstreamReset,
        Signature::UpstreamSendFailed,
        Signature::ReadTimeout,
        Signature::NoLiveUpstreams,
        Signature::ServerTemporarilyDisabled,
        Signature::WorkerConnectionsNotEnough,
        Signature::TooManyOpenFiles,
        Signature::WorkerConnectionsExceedNofile,
        Signature::UpstreamSslHandshake,
        Signature::UpstreamInvalidHeader,
        Signature::LbMethodRedefined,
        Signature::H2CachedConnectionMismatch,
        Signature::H2FrameUnknownType,
        Signature::UpstreamH2Goaway,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn id(self) -> &'static str {
        self.info().id
    }

    pub fn from_id(id: &str) -> Option<Signature> {
        Signature::ALL.into_iter().find(|s| s.id() == id)
    }

    pub fn info(self) -> &'static SignatureInfo {
        &INFO[self.index()]
    }

    /// Failures that end one attempt of a proxied request, so the access log
    /// can tell whether the client saw them or nginx retried them away.
    pub fn is_request_failure(self) -> bool {
        !matches!(
            self,
            Signature::ServerTemporarilyDisabled
                | Signature::WorkerConnectionsExceedNofile
                | Signature::LbMethodRedefined
                | Signature::TooManyOpenFiles
                // Logged by the backend (an nginx serving HTTP/2), not by the
                // proxy whose requests the access log shows.
                | Signature::H2FrameUnknownType
        )
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

static INFO: [SignatureInfo; Signature::COUNT] = [
    SignatureInfo {
        id: "connect-refused",
        level: "error",
        matches: "connect() failed (111: Connection refused) while connecting to upstream; connect() to ADDR failed (111: …)",
        meaning: "Nothing listens on the backend address (down, restarting, wrong port) or its accept backlog is full. Never from a reused connection.",
        rules: &["H005"],
    },
    SignatureInfo {
        id: "connect-addr-unavailable",
        level: "crit",
        matches: "connect() to ADDR failed (99: Cannot assign requested address) while connecting to upstream",
        meaning: "No free local port towards that backend: ephemeral-port exhaustion, usually because upstream connections are not reused (TIME_WAIT pile-up).",
        rules: &["U001", "H001", "H002"],
    },
    SignatureInfo {
        id: "connect-timeout",
        level: "error",
        matches: "upstream timed out (110: Connection timed out) while connecting to upstream",
        meaning: "The backend did not answer the connection attempt within proxy_connect_timeout (overloaded, firewalled, accept queue full).",
        rules: &["H005"],
    },
    SignatureInfo {
        id: "upstream-prematurely-closed",
        level: "error",
        matches: "upstream prematurely closed connection while reading response header from upstream (also while reading upstream)",
        meaning: "The backend closed the connection before answering. On a reused connection the backend idled it out while nginx was sending (U007) or hit its request cap without saying so (U008). Logged even when nginx retried an idempotent request successfully.",
        rules: &["U007", "U008", "H005"],
    },
    SignatureInfo {
        id: "upstream-reset",
        level: "error",
        matches: "recv() failed (104: Connection reset by peer) while reading response header from upstream; readv()/SSL_read() with 104",
        meaning: "The same race as upstream-prematurely-closed, seen as a reset instead of a close; also backend crashes.",
        rules: &["U007", "H005"],
    },
    SignatureInfo {
        id: "upstream-send-failed",
        level: "error",
        matches: "writev()/send() failed (104: …) or (32: Broken pipe) while sending request to upstream",
        meaning: "The backend had closed the connection before nginx wrote the request: the stale keep-alive race at write time.",
        rules: &["U007", "H005"],
    },
    SignatureInfo {
        id: "read-timeout",
        level: "error",
        matches: "upstream timed out (110: Connection timed out) while reading response header from upstream (or while reading upstream, while sending request to upstream)",
        meaning: "The backend is slow, or a pooled connection whose peer vanished without FIN/RST (NAT/firewall idle drop) waited for proxy_read_timeout.",
        rules: &["H005"],
    },
    SignatureInfo {
        id: "no-live-upstreams",
        level: "error",
        matches: "no live upstreams while connecting to upstream",
        meaning: "Every server of the upstream is marked failed (max_fails within fail_timeout). Stale keep-alive failures count towards max_fails (default 1), so the race can take a whole upstream out for fail_timeout.",
        rules: &["U007", "H005"],
    },
    SignatureInfo {
        id: "server-temporarily-disabled",
        level: "warn",
        matches: "upstream server temporarily disabled while …",
        meaning: "A server reached max_fails and is skipped for fail_timeout. Hidden at the default error_log level.",
        rules: &["U007", "H005"],
    },
    SignatureInfo {
        id: "worker-connections-not-enough",
        level: "alert",
        matches: "N worker_connections are not enough (optionally \", reusing connections\")",
        meaning: "The worker's connection slots are exhausted; each proxied request holds two and idle upstream pools hold more. The upstream side answers 500.",
        rules: &["R002"],
    },
    SignatureInfo {
        id: "too-many-open-files",
        level: "crit",
        matches: "accept4() failed (24: Too many open files); socket() failed (24: …) while connecting to upstream",
        meaning: "The worker hit its open-file limit (RLIMIT_NOFILE).",
        rules: &["R001", "H004"],
    },
    SignatureInfo {
        id: "worker-connections-exceed-nofile",
        level: "warn",
        matches: "N worker_connections exceed open file resource limit: M",
        meaning: "Logged at start: the open-file limit is below worker_connections; expect \"Too many open files\" under load.",
        rules: &["R001", "H004"],
    },
    SignatureInfo {
        id: "upstream-ssl-handshake",
        level: "error",
        matches: "SSL_do_handshake() failed …; peer closed connection in SSL handshake … while SSL handshaking to upstream",
        meaning: "TLS to the backend fails: missing SNI (U013), protocol mismatch such as https:// to a plain port (U015), or a certificate problem.",
        rules: &["U013", "U015"],
    },
    SignatureInfo {
        id: "upstream-invalid-header",
        level: "error",
        matches: "upstream sent invalid header …; upstream sent no valid HTTP/1.0 header …",
        meaning: "Protocol mismatch (http:// to a TLS port: U015) or a broken backend.",
        rules: &["U015"],
    },
    SignatureInfo {
        id: "lb-method-redefined",
        level: "warn",
        matches: "load balancing method redefined",
        meaning: "keepalive precedes the balancer directive in an upstream block (before 1.29.7): the idle pool is silently lost.",
        rules: &["U006"],
    },
    // The three below come from the HTTP/2 upstream facts
    // (crates/upkeep-facts/data/http2_upstream.tsv), not from the shared
    // signature table.
    SignatureInfo {
        id: "h2-cached-connection-mismatch",
        level: "error",
        matches: "no connection data found for keepalive http2 connection (ngx_http_proxy_v2_module.c:4237, ngx_http_grpc_module.c:4399)",
        meaning: "The keepalive cache handed a connection opened by another protocol (HTTP/1.x, or the other HTTP/2 module) to a proxy_http_version 2 or grpc_pass request, which fails: one pool shared by routes of different protocols (U018).",
        rules: &["U018"],
    },
    SignatureInfo {
        id: "h2-frame-unknown-type",
        level: "info",
        matches: "client sent frame with unknown type N, N the 4th byte of an HTTP/1 request line (32 for GET/PUT, 84 POST, 68 HEAD, 69 DELETE, 67 PATCH, 73 OPTIONS), in the error log of an nginx backend (ngx_http_v2.c:911)",
        meaning: "The backend received an HTTP/1.x request on an HTTP/2 connection: the proxy in front reused a cached HTTP/2 connection for an HTTP/1.x route, and that request hangs until it times out (U018).",
        rules: &["U018"],
    },
    SignatureInfo {
        id: "upstream-h2-goaway",
        level: "error",
        matches: "upstream sent goaway with error N (ngx_http_proxy_v2_module.c:2026, ngx_http_grpc_module.c:1845, :2364)",
        meaning: "The HTTP/2 backend closed a cached connection (GOAWAY) while nginx was sending a request on it; that attempt fails: the stale keep-alive race over HTTP/2, as with upstream-prematurely-closed.",
        rules: &["U007", "H005"],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_indexes_match_order() {
        for (i, sig) in Signature::ALL.into_iter().enumerate() {
            assert_eq!(sig.index(), i);
            assert_eq!(Signature::from_id(sig.id()), Some(sig));
        }
        assert_eq!(Signature::from_id("nope"), None);
    }

    /// The IDs, levels and rules here are those of the signature table the
    /// project was written from (`../shared/facts/signatures.tsv` beside the
    /// repository); skipped, with the reason printed, when it is not there.
    #[test]
    fn matches_the_signature_facts() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/facts/signatures.tsv"
        );
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                eprintln!(
                    "skipping: {path}: {e} (the signature table is not beside the repository)"
                );
                return;
            }
        };
        let mut seen = 0;
        let own = [
            Signature::H2CachedConnectionMismatch,
            Signature::H2FrameUnknownType,
            Signature::UpstreamH2Goaway,
        ];
        for row in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
            let cols: Vec<&str> = row.split('\t').collect();
            let sig =
                Signature::from_id(cols[0]).unwrap_or_else(|| panic!("unknown id {}", cols[0]));
            assert_eq!(sig.info().level, cols[1], "{}", cols[0]);
            let rules: Vec<&str> = cols[4].split(',').map(str::trim).collect();
            assert_eq!(sig.info().rules, rules.as_slice(), "{}", cols[0]);
            seen += 1;
        }
        // The rest are this project's own (data/http2_upstream.tsv).
        assert_eq!(seen + own.len(), Signature::COUNT);
    }
}
