//! The Prometheus text exposition (format 0.0.4) of a watch.
//!
//! Names follow Prometheus' conventions: an `upkeep_` prefix, base units
//! (seconds, ratios from 0 to 1), `_total` on counters, `_info` on the
//! constant-1 gauges whose labels are the information. Counters run from the
//! start of the watch and only grow (a restarted watch is a counter reset,
//! which `rate()` handles); gauges are the last interval's. Families appear
//! only when their source is watched (no stub_status: no client metrics),
//! so a missing source never reads as zero traffic.
//!
//! Per-backend series carry `backend` (the address) and `upstream` (the
//! `upstream{}` blocks that list it, comma-separated; empty for a
//! `proxy_pass` to the address), so alerts can name both.
//!
//! [`METRICS`] lists every family with its type and labels; the README and
//! the examples' tests are checked against it.

use std::fmt::Write;
use std::time::UNIX_EPOCH;

use upkeep_logs::Signature;

use super::peers::{peer_totals, upstream_label};
pub use super::Sources;
use super::{Interval, Totals, WatchedBackend};
use crate::sockets::canonical;

/// The `Content-Type` of [`exposition`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

/// One metric family: name, type, labels, help.
#[derive(Clone, Copy, Debug)]
pub struct Family {
    pub name: &'static str,
    pub kind: Kind,
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

const fn f(
    name: &'static str,
    kind: Kind,
    labels: &'static [&'static str],
    help: &'static str,
) -> Family {
    Family {
        name,
        kind,
        labels,
        help,
    }
}

use Kind::{Counter, Gauge};

const BACKEND: &[&str] = &["backend", "upstream"];

pub const BUILD_INFO: Family = f("upkeep_build_info", Gauge, &["version", "nginx_version"], "Always 1: the upkeep version serving these metrics and the version of the nginx binary it watches (empty when unknown).");
pub const WATCH_INTERVAL: Family = f(
    "upkeep_watch_interval_seconds",
    Gauge,
    &[],
    "Length of a watch interval (--interval), in seconds.",
);
pub const WATCH_INTERVALS: Family = f(
    "upkeep_watch_intervals_total",
    Counter,
    &[],
    "Intervals sampled since the watch started.",
);
pub const CLIENT_REQUESTS: Family = f("upkeep_client_requests_total", Counter, &[], "Client requests nginx received since the watch started (stub_status requests; the watch's own left out).");
pub const CLIENT_ACCEPTED: Family = f("upkeep_client_connections_accepted_total", Counter, &[], "Client connections nginx accepted since the watch started (stub_status accepts; the watch's own left out).");
pub const CLIENT_HANDLED: Family = f("upkeep_client_connections_handled_total", Counter, &[], "Accepted client connections that got a connection slot (stub_status handled; accepted minus handled were dropped).");
pub const CLIENT_ACTIVE: Family = f(
    "upkeep_client_connections_active",
    Gauge,
    &[],
    "Open client connections, idle ones included (stub_status Active connections).",
);
pub const CLIENT_BY_STATE: Family = f(
    "upkeep_client_connections",
    Gauge,
    &["state"],
    "Client connections by state (stub_status Reading, Writing, Waiting).",
);
pub const STUB_STATUS_UP: Family = f(
    "upkeep_stub_status_up",
    Gauge,
    &[],
    "1 if the last stub_status sample succeeded.",
);
pub const BACKEND_INFO: Family = f("upkeep_backend_info", Gauge, &["backend", "upstream"], "Always 1: a watched backend address and one upstream block that lists it (empty: a proxy_pass to the address).");
pub const OPENED: Family = f("upkeep_upstream_connections_opened_total", Counter, BACKEND, "Connections nginx opened to the backend since the watch started, seen appearing in the socket census (a lower bound).");
pub const SOCKETS: Family = f("upkeep_upstream_sockets", Gauge, &["backend", "upstream", "end", "state"], "TCP sockets of connections to the backend at the last census, by end (nginx: remote is the backend; backend: local is the backend, when it runs on this host) and state (established, time_wait, other).");
pub const EPHEMERAL_PORTS: Family = f("upkeep_upstream_ephemeral_ports", Gauge, BACKEND, "Sockets towards the backend whose local port is in net.ipv4.ip_local_port_range, at the last census: local ports used up towards this address.");
pub const EPHEMERAL_RATIO: Family = f("upkeep_upstream_ephemeral_ports_used_ratio", Gauge, BACKEND, "Ephemeral ports used towards the backend as a fraction of net.ipv4.ip_local_port_range (connect() fails with 99: Cannot assign requested address at 1).");
pub const PORT_RANGE: Family = f(
    "upkeep_ephemeral_port_range_size",
    Gauge,
    &[],
    "Ports in net.ipv4.ip_local_port_range of nginx's network namespace.",
);
pub const CENSUS_POLLS: Family = f(
    "upkeep_socket_census_polls_total",
    Counter,
    &[],
    "Socket censuses taken since the watch started.",
);
pub const SIGNATURES: Family = f(
    "upkeep_error_signatures_total",
    Counter,
    &["signature"],
    "Error-log lines per failure signature (the IDs of `upkeep logs`) since the watch started.",
);
pub const UPSTREAM_SIGNATURES: Family = f("upkeep_upstream_error_signatures_total", Counter, &["backend", "upstream", "signature"], "Error-log lines per failure signature and the upstream peer they name, since the watch started (the stale keep-alive race: upstream-prematurely-closed, upstream-reset, upstream-send-failed).");
pub const ERROR_LOG_LINES: Family = f(
    "upkeep_error_log_lines_total",
    Counter,
    &[],
    "Error-log lines read since the watch started.",
);
pub const UPSTREAM_REQUESTS: Family = f("upkeep_upstream_requests_total", Counter, BACKEND, "Requests sent to the upstream peer since the watch started, one per $upstream_addr entry of the access log (retries included).");
pub const BAD_GATEWAY: Family = f("upkeep_upstream_bad_gateway_responses_total", Counter, BACKEND, "Requests that ended in a 502 to the client with this peer tried last, from the access log, since the watch started.");
pub const ACCESS_LOG_LINES: Family = f(
    "upkeep_access_log_lines_total",
    Counter,
    &[],
    "Access-log lines read since the watch started.",
);
pub const ACCESS_LOG_UNPARSED: Family = f(
    "upkeep_access_log_unparsed_lines_total",
    Counter,
    &[],
    "Access-log lines that did not fit their log_format, since the watch started.",
);
pub const OPEN_FILES: Family = f(
    "upkeep_nginx_open_files",
    Gauge,
    &["process"],
    "File descriptors open in the nginx master, and in the worker with the least headroom.",
);
pub const OPEN_FILES_LIMIT: Family = f("upkeep_nginx_open_files_limit", Gauge, &["process"], "Soft RLIMIT_NOFILE of the nginx master, and of the worker with the least headroom (absent when unlimited).");
pub const OPEN_FILES_HEADROOM: Family = f("upkeep_nginx_open_files_headroom", Gauge, &["process"], "Descriptors left before the soft RLIMIT_NOFILE (limit minus open), of the master and of the worker with the least.");
pub const WORKERS: Family = f(
    "upkeep_nginx_workers",
    Gauge,
    &[],
    "Current nginx worker processes (those shutting down after a reload left out).",
);
pub const FINDINGS: Family = f("upkeep_findings", Gauge, &["rule", "severity"], "Findings of `upkeep check` on the running configuration, by rule and severity, at the last check (run at the start and when nginx reloads).");
pub const CONFIG_CHECKS: Family = f("upkeep_config_checks_total", Counter, &[], "Static checks of the running configuration since the watch started (one at the start, one per reload seen).");
pub const CONFIG_CHECK_SUCCESS: Family = f("upkeep_config_check_success", Gauge, &[], "1 if the last static check loaded the configuration; 0 if it failed (upkeep_findings then keeps the check before).");
pub const CONFIG_CHECK_TIME: Family = f(
    "upkeep_config_last_check_timestamp_seconds",
    Gauge,
    &[],
    "When the last successful static check ran, in seconds since the Unix epoch.",
);

/// Every family the watch can export.
pub const PEER_LIMIT: Family = f("upkeep_peer_addresses_limit", Gauge, &[], "Peer addresses counted at once per log (--max-peers). Past it a new address takes the place of the one with the least counted, whose counts move to backend=\"(other addresses)\"; the busiest stay exact.");
pub const PEERS_TRACKED: Family = f(
    "upkeep_peer_addresses_tracked",
    Gauge,
    &["log"],
    "Peer addresses counted now, per followed log (error, access).",
);
pub const PEER_EVICTIONS: Family = f("upkeep_peer_address_evictions_total", Counter, &["log"], "Times a peer address lost its place to another since the watch started, per followed log (error, access): above 0, the --max-peers limit was reached and the series of the addresses that lost their place stop.");
pub const METRICS: &[Family] = &[
    BUILD_INFO,
    WATCH_INTERVAL,
    WATCH_INTERVALS,
    CLIENT_REQUESTS,
    CLIENT_ACCEPTED,
    CLIENT_HANDLED,
    CLIENT_ACTIVE,
    CLIENT_BY_STATE,
    STUB_STATUS_UP,
    BACKEND_INFO,
    OPENED,
    SOCKETS,
    EPHEMERAL_PORTS,
    EPHEMERAL_RATIO,
    PORT_RANGE,
    CENSUS_POLLS,
    SIGNATURES,
    UPSTREAM_SIGNATURES,
    ERROR_LOG_LINES,
    UPSTREAM_REQUESTS,
    BAD_GATEWAY,
    ACCESS_LOG_LINES,
    ACCESS_LOG_UNPARSED,
    PEER_LIMIT,
    PEERS_TRACKED,
    PEER_EVICTIONS,
    OPEN_FILES,
    OPEN_FILES_LIMIT,
    OPEN_FILES_HEADROOM,
    WORKERS,
    FINDINGS,
    CONFIG_CHECKS,
    CONFIG_CHECK_SUCCESS,
    CONFIG_CHECK_TIME,
];

/// The signatures of the stale keep-alive race (facts/signatures.tsv):
/// exported at 0 for every watched backend from the start, so the first
/// failure is an increase `rate()` sees rather than a new series.
pub const STALE_REUSE: [Signature; 3] = [
    Signature::UpstreamPrematurelyClosed,
    Signature::UpstreamReset,
    Signature::UpstreamSendFailed,
];

type Labels = Vec<(&'static str, String)>;

/// The page being written.
struct Page {
    out: String,
}

impl Page {
    /// Writes one family: HELP, TYPE, then its samples (labels in the
    /// order the family declares them).
    fn family(&mut self, family: &Family, samples: &[(Labels, f64)]) {
        let out = &mut self.out;
        let _ = writeln!(out, "# HELP {} {}", family.name, escape_help(family.help));
        let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind.as_str());
        for (labels, value) in samples {
            debug_assert_eq!(
                labels.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
                family.labels,
                "{}",
                family.name
            );
            out.push_str(family.name);
            if !labels.is_empty() {
                out.push('{');
                for (i, (k, v)) in labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{k}=\"{}\"", escape_label(v));
                }
                out.push('}');
            }
            let _ = writeln!(out, " {}", number(*value));
        }
    }

    fn one(&mut self, family: &Family, value: f64) {
        self.family(family, &[(Labels::new(), value)]);
    }
}

/// A sample value: integers without a fraction, `NaN`/`+Inf` as Prometheus
/// spells them.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn backend_labels(b: &WatchedBackend) -> Labels {
    vec![
        ("backend", b.addr.to_string()),
        ("upstream", upstream_label(b)),
    ]
}

/// The page.
pub fn exposition(src: &Sources<'_>, totals: &Totals, last: Option<&Interval>) -> String {
    let opts = src.opts;
    let mut page = Page { out: String::new() };
    let n = |v: u64| v as f64;
    let peers = peer_totals(src, totals);

    page.family(
        &BUILD_INFO,
        &[(
            vec![
                ("version", opts.build.version.clone()),
                ("nginx_version", opts.build.nginx_version.clone()),
            ],
            1.0,
        )],
    );
    page.one(&WATCH_INTERVAL, opts.interval.as_secs_f64());
    page.one(&WATCH_INTERVALS, n(totals.intervals));

    if opts.status.is_some() {
        page.one(&CLIENT_REQUESTS, n(totals.client_requests));
        page.one(&CLIENT_ACCEPTED, n(totals.client_accepts));
        page.one(&CLIENT_HANDLED, n(totals.client_handled));
        if let Some(s) = last.and_then(|i| i.status) {
            page.one(&CLIENT_ACTIVE, n(s.active));
            page.family(
                &CLIENT_BY_STATE,
                &[
                    (vec![("state", "reading".into())], n(s.reading)),
                    (vec![("state", "writing".into())], n(s.writing)),
                    (vec![("state", "waiting".into())], n(s.waiting)),
                ],
            );
        }
        let up = last.map_or(0, |i| u64::from(i.status.is_some()));
        page.one(&STUB_STATUS_UP, n(up));
    }

    if !opts.backends.is_empty() {
        let mut info = Vec::new();
        for b in &opts.backends {
            let addr = b.addr.to_string();
            if b.upstreams.is_empty() {
                info.push((
                    vec![("backend", addr.clone()), ("upstream", String::new())],
                    1.0,
                ));
            }
            for u in &b.upstreams {
                info.push((
                    vec![("backend", addr.clone()), ("upstream", u.clone())],
                    1.0,
                ));
            }
        }
        page.family(&BACKEND_INFO, &info);
        let opened: Vec<(Labels, f64)> = opts
            .backends
            .iter()
            .map(|b| {
                let count = totals.new_connections.get(&canonical(b.addr)).copied();
                (backend_labels(b), n(count.unwrap_or(0)))
            })
            .collect();
        page.family(&OPENED, &opened);

        let mut sockets = Vec::new();
        let mut ports = Vec::new();
        let mut ratios = Vec::new();
        let range = opts
            .port_range
            .map(|(lo, hi)| u64::from(hi.saturating_sub(lo)) + 1);
        if let Some(i) = last {
            for b in &i.backends {
                let Some(s) = b.sockets else { continue };
                for (end, state, count) in [
                    ("nginx", "established", s.established),
                    ("nginx", "time_wait", s.time_wait),
                    ("nginx", "other", s.other),
                    ("backend", "established", s.backend_end_established),
                    ("backend", "time_wait", s.backend_end_time_wait),
                ] {
                    let mut labels = backend_labels(&b.backend);
                    labels.push(("end", end.into()));
                    labels.push(("state", state.into()));
                    sockets.push((labels, n(count)));
                }
                if let Some(size) = range {
                    ports.push((backend_labels(&b.backend), n(s.in_port_range)));
                    ratios.push((
                        backend_labels(&b.backend),
                        s.in_port_range as f64 / size as f64,
                    ));
                }
            }
        }
        if !sockets.is_empty() {
            page.family(&SOCKETS, &sockets);
        }
        if let Some(size) = range {
            if !ports.is_empty() {
                page.family(&EPHEMERAL_PORTS, &ports);
                page.family(&EPHEMERAL_RATIO, &ratios);
            }
            page.one(&PORT_RANGE, n(size));
        }
        page.one(&CENSUS_POLLS, n(totals.census_polls));
    }

    if src.error_logs {
        let by_sig: Vec<(Labels, f64)> = Signature::ALL
            .iter()
            .map(|s| {
                (
                    vec![("signature", s.id().to_string())],
                    n(totals.errors.count(*s)),
                )
            })
            .collect();
        page.family(&SIGNATURES, &by_sig);
        // Logged peers, plus the stale-reuse signatures of every watched
        // backend at 0 until they are logged.
        let samples: Vec<(Labels, f64)> = peers
            .iter()
            .flat_map(|p| {
                p.signatures.iter().map(|(sig, count)| {
                    (
                        vec![
                            ("backend", p.peer.clone()),
                            ("upstream", p.upstream.clone()),
                            ("signature", sig.id().to_string()),
                        ],
                        n(*count),
                    )
                })
            })
            .collect();
        page.family(&UPSTREAM_SIGNATURES, &samples);
        page.one(&ERROR_LOG_LINES, n(totals.errors.lines));
    }

    if src.access_logs {
        let labels = |p: &super::peers::PeerTotals| {
            vec![
                ("backend", p.peer.clone()),
                ("upstream", p.upstream.clone()),
            ]
        };
        let requests: Vec<(Labels, f64)> = peers
            .iter()
            .filter_map(|p| Some((labels(p), n(p.requests?))))
            .collect();
        page.family(&UPSTREAM_REQUESTS, &requests);
        let bad: Vec<(Labels, f64)> = peers
            .iter()
            .filter_map(|p| Some((labels(p), n(p.bad_gateway?))))
            .collect();
        page.family(&BAD_GATEWAY, &bad);
        page.one(&ACCESS_LOG_LINES, n(totals.access.lines));
        page.one(&ACCESS_LOG_UNPARSED, n(totals.access.unparsed));
    }

    if src.error_logs || src.access_logs {
        let limit = totals.peer_limit();
        let logs: Vec<(&str, super::PeerTableUse)> = [
            (src.error_logs, "error", limit.error_log),
            (src.access_logs, "access", limit.access_log),
        ]
        .into_iter()
        .filter_map(|(followed, log, usage)| followed.then_some((log, usage)))
        .collect();
        let sample = |log: &str, v: f64| (vec![("log", log.to_string())], v);
        page.one(&PEER_LIMIT, limit.limit as f64);
        page.family(
            &PEERS_TRACKED,
            &logs
                .iter()
                .map(|(log, u)| sample(log, u.tracked as f64))
                .collect::<Vec<_>>(),
        );
        page.family(
            &PEER_EVICTIONS,
            &logs
                .iter()
                .map(|(log, u)| sample(log, n(u.evictions)))
                .collect::<Vec<_>>(),
        );
    }

    if let Some(files) = last.and_then(|i| i.open_files.as_ref()) {
        let procs: Vec<(&str, _)> = [("master", files.master), ("worker", files.tightest_worker)]
            .into_iter()
            .filter_map(|(role, p)| Some((role, p?)))
            .collect();
        let sample = |role: &str, v: u64| (vec![("process", role.to_string())], n(v));
        page.family(
            &OPEN_FILES,
            &procs
                .iter()
                .map(|(r, p)| sample(r, p.open))
                .collect::<Vec<_>>(),
        );
        let limits: Vec<_> = procs
            .iter()
            .filter_map(|(r, p)| Some(sample(r, p.soft_limit?)))
            .collect();
        if !limits.is_empty() {
            page.family(&OPEN_FILES_LIMIT, &limits);
            let room: Vec<_> = procs
                .iter()
                .filter_map(|(r, p)| Some(sample(r, p.headroom()?)))
                .collect();
            page.family(&OPEN_FILES_HEADROOM, &room);
        }
        page.one(&WORKERS, n(files.workers));
    }

    if let Some(found) = src.findings {
        let samples: Vec<(Labels, f64)> = found
            .counts
            .iter()
            .map(|((rule, severity), count)| {
                (
                    vec![("rule", rule.clone()), ("severity", severity.clone())],
                    n(*count),
                )
            })
            .collect();
        page.family(&FINDINGS, &samples);
        page.one(&CONFIG_CHECKS, n(found.checks));
        page.one(
            &CONFIG_CHECK_SUCCESS,
            if found.last_error.is_none() && found.last_success.is_some() {
                1.0
            } else {
                0.0
            },
        );
        if let Some(t) = found.last_success {
            let secs = t
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            page.one(&CONFIG_CHECK_TIME, secs);
        }
    }
    page.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::access_log::AccessCounts;
    use crate::watch::findings::StaticFindings;
    use crate::watch::{WatchOptions, WatchedBackend};

    fn watched() -> WatchOptions {
        let mut opts = WatchOptions::new(
            None,
            vec![WatchedBackend {
                addr: "127.0.0.1:8080".parse().unwrap(),
                written: "app:8080".into(),
                upstreams: vec!["app".into(), "b\"ad".into()],
            }],
        );
        opts.error_logs = vec!["/x".into()];
        opts.build.nginx_version = "1.22.1".into();
        opts
    }

    /// Past `--max-peers` the page says so, and the lines of the peers that
    /// lost their place are under "(other addresses)".
    #[test]
    fn the_peer_limit_and_its_evictions_are_published() {
        let opts = watched();
        let mut totals = Totals::with_peer_limit(2);
        for peer in ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"] {
            totals.errors.add_line(format!(r#"2026/11/23 14:26:25 [error] 1#0: *15 connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: , request: "GET / HTTP/1.1", upstream: "http://{peer}/", host: "t""#).as_bytes());
        }
        let src = Sources {
            opts: &opts,
            error_logs: true,
            access_logs: false,
            findings: None,
        };
        let page = exposition(&src, &totals, None);
        for line in [
            "upkeep_peer_addresses_limit 2\n",
            "upkeep_peer_addresses_tracked{log=\"error\"} 2\n",
            "upkeep_peer_address_evictions_total{log=\"error\"} 1\n",
            "upkeep_upstream_error_signatures_total{backend=\"(other addresses)\",upstream=\"\",signature=\"connect-refused\"} 1\n",
        ] {
            assert!(page.contains(line), "{line}{page}");
        }
        assert!(!page.contains("log=\"access\""), "{page}");
        assert!(totals.peer_limit().reached());
    }

    #[test]
    fn families_have_help_and_type_and_escaped_labels() {
        let opts = watched();
        let mut totals = Totals::default();
        totals
            .new_connections
            .insert("127.0.0.1:8080".parse().unwrap(), 7);
        totals.errors.add_line(br#"2026/11/23 14:26:25 [error] 1#0: *15 connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: , request: "GET / HTTP/1.1", upstream: "http://127.0.0.1:8080/", host: "t""#);
        let mut found = StaticFindings::default();
        found.record([("U007", "error")]);
        let src = Sources {
            opts: &opts,
            error_logs: true,
            access_logs: false,
            findings: Some(&found),
        };
        let page = exposition(&src, &totals, None);

        assert!(
            !page.contains("upkeep_client_"),
            "no stub_status, no client metrics"
        );
        assert!(
            !page.contains("upkeep_upstream_requests_total"),
            "no access log, no requests per upstream"
        );
        let upstream = r#"upstream="app,b\"ad""#;
        assert!(page.contains(&format!("# TYPE upkeep_upstream_connections_opened_total counter\nupkeep_upstream_connections_opened_total{{backend=\"127.0.0.1:8080\",{upstream}}} 7\n")), "{page}");
        assert!(
            page.contains(
                "upkeep_backend_info{backend=\"127.0.0.1:8080\",upstream=\"b\\\"ad\"} 1\n"
            ),
            "{page}"
        );
        assert!(page.contains(&format!(
            "upkeep_build_info{{version=\"{}\",nginx_version=\"1.22.1\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        )));
        assert!(page.contains("upkeep_watch_interval_seconds 1\n"));
        assert!(page.contains("upkeep_error_signatures_total{signature=\"connect-refused\"} 1\n"));
        assert!(page.contains("upkeep_error_signatures_total{signature=\"upstream-reset\"} 0\n"));
        assert!(page.contains(&format!("upkeep_upstream_error_signatures_total{{backend=\"127.0.0.1:8080\",{upstream},signature=\"connect-refused\"}} 1\n")));
        // The stale-reuse signatures start at 0, before any is logged.
        assert!(page.contains(&format!("upkeep_upstream_error_signatures_total{{backend=\"127.0.0.1:8080\",{upstream},signature=\"upstream-prematurely-closed\"}} 0\n")), "{page}");
        assert!(page.contains("upkeep_findings{rule=\"U007\",severity=\"error\"} 1\n"));
        assert!(page.contains("upkeep_config_check_success 1\n"));
        // Every sample line belongs to the family announced just before it,
        // and every family is one of METRICS, with its type.
        let mut current = "";
        for line in page.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                let family = METRICS.iter().find(|f| f.name == name).unwrap();
                assert_eq!(family.kind.as_str(), kind);
                current = name;
            } else if !line.starts_with('#') {
                assert!(line.starts_with(current), "{line} outside {current}");
            }
        }
    }

    #[test]
    fn names_follow_the_conventions() {
        for f in METRICS {
            assert!(f.name.starts_with("upkeep_"), "{}", f.name);
            assert_eq!(
                f.kind == Kind::Counter,
                f.name.ends_with("_total"),
                "{}: counters and only counters end in _total",
                f.name
            );
            if f.name.ends_with("_info") {
                assert_eq!(f.kind, Kind::Gauge, "{}", f.name);
            }
            for unit in ["_ms", "_milliseconds", "_minutes", "_kb", "_mb", "_percent"] {
                assert!(!f.name.contains(unit), "{}: base units only", f.name);
            }
            assert!(f.help.len() > 10 && !f.help.contains('\n'), "{}", f.name);
        }
        let mut names: Vec<&str> = METRICS.iter().map(|f| f.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), METRICS.len(), "no family twice");
    }

    #[test]
    fn access_log_counts_name_the_upstream_of_the_peer() {
        let mut opts = watched();
        opts.error_logs.clear();
        let mut totals = Totals::default();
        let mut access = AccessCounts::default();
        let format =
            upkeep_logs::access_format::LogFormat::parse("$status $upstream_addr").unwrap();
        access.add_line(&format, b"502 127.0.0.1:8080");
        access.add_line(&format, b"200 127.0.0.1:8080");
        access.add_line(&format, b"502 unix:/run/app.sock");
        totals.access = access;
        let src = Sources {
            opts: &opts,
            error_logs: false,
            access_logs: true,
            findings: None,
        };
        let page = exposition(&src, &totals, None);
        assert!(page.contains("upkeep_upstream_requests_total{backend=\"127.0.0.1:8080\",upstream=\"app,b\\\"ad\"} 2\n"), "{page}");
        assert!(page.contains("upkeep_upstream_bad_gateway_responses_total{backend=\"127.0.0.1:8080\",upstream=\"app,b\\\"ad\"} 1\n"), "{page}");
        assert!(page.contains("upkeep_upstream_bad_gateway_responses_total{backend=\"unix:/run/app.sock\",upstream=\"\"} 1\n"), "{page}");
        assert!(page.contains("upkeep_access_log_lines_total 3\n"));
        assert!(!page.contains("upkeep_findings"));
    }

    #[test]
    fn numbers_as_prometheus_reads_them() {
        assert_eq!(number(7.0), "7");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(f64::INFINITY), "+Inf");
    }
}
