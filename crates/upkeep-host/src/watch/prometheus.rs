//! The Prometheus text exposition (format 0.0.4) of a watch.
//!
//! Counters run from the start of the watch (a restarted watch is a counter
//! reset, which `rate()` handles); gauges are the last interval's. Families
//! appear only when their source is watched (no stub_status: no client
//! metrics), so a missing source never reads as zero traffic.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `upkeep_client_requests_total` | counter | |
//! | `upkeep_client_connections_accepted_total` | counter | |
//! | `upkeep_client_connections_handled_total` | counter | |
//! | `upkeep_client_connections_active` | gauge | |
//! | `upkeep_client_connections` | gauge | `state`: reading, writing, waiting |
//! | `upkeep_stub_status_up` | gauge | |
//! | `upkeep_backend_info` | gauge (1) | `backend`, `upstream` |
//! | `upkeep_upstream_connections_opened_total` | counter | `backend` |
//! | `upkeep_upstream_sockets` | gauge | `backend`, `end`: nginx, backend; `state`: established, time_wait, other |
//! | `upkeep_error_signatures_total` | counter | `signature` |
//! | `upkeep_upstream_error_signatures_total` | counter | `backend`, `signature` |
//! | `upkeep_error_log_lines_total` | counter | |
//! | `upkeep_socket_census_polls_total` | counter | |
//! | `upkeep_watch_intervals_total` | counter | |

use std::fmt::Write;

use upkeep_logs::Signature;

use super::{Interval, Totals, WatchOptions};
use crate::sockets::canonical;

/// The `Content-Type` of [`exposition`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
}

type Labels<'a> = Vec<(&'static str, &'a str)>;

/// Writes one family: HELP, TYPE, then its samples.
fn family(out: &mut String, name: &str, kind: Kind, help: &str, samples: &[(Labels<'_>, u64)]) {
    let kind = match kind {
        Kind::Counter => "counter",
        Kind::Gauge => "gauge",
    };
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        out.push_str(name);
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
        let _ = writeln!(out, " {value}");
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

/// The page. `logs_followed`: whether any error log is followed.
pub fn exposition(
    opts: &WatchOptions,
    logs_followed: bool,
    totals: &Totals,
    last: Option<&Interval>,
) -> String {
    let mut out = String::new();
    let one = |v: u64| vec![(Labels::new(), v)];

    if opts.status.is_some() {
        family(
            &mut out,
            "upkeep_client_requests_total",
            Kind::Counter,
            "Client requests nginx received since the watch started (stub_status requests; the watch's own left out).",
            &one(totals.client_requests),
        );
        family(
            &mut out,
            "upkeep_client_connections_accepted_total",
            Kind::Counter,
            "Client connections nginx accepted since the watch started (stub_status accepts; the watch's own left out).",
            &one(totals.client_accepts),
        );
        family(
            &mut out,
            "upkeep_client_connections_handled_total",
            Kind::Counter,
            "Accepted client connections that got a connection slot (stub_status handled; accepted minus handled were dropped).",
            &one(totals.client_handled),
        );
        if let Some(s) = last.and_then(|i| i.status) {
            family(
                &mut out,
                "upkeep_client_connections_active",
                Kind::Gauge,
                "Open client connections, idle ones included (stub_status Active connections).",
                &one(s.active),
            );
            family(
                &mut out,
                "upkeep_client_connections",
                Kind::Gauge,
                "Client connections by state (stub_status Reading, Writing, Waiting).",
                &[
                    (vec![("state", "reading")], s.reading),
                    (vec![("state", "writing")], s.writing),
                    (vec![("state", "waiting")], s.waiting),
                ],
            );
        }
        let up = last.map_or(0, |i| u64::from(i.status.is_some()));
        family(
            &mut out,
            "upkeep_stub_status_up",
            Kind::Gauge,
            "1 if the last stub_status sample succeeded.",
            &one(up),
        );
    }

    if !opts.backends.is_empty() {
        let addrs: Vec<String> = opts.backends.iter().map(|b| b.addr.to_string()).collect();
        let mut info = Vec::new();
        for (b, addr) in opts.backends.iter().zip(&addrs) {
            if b.upstreams.is_empty() {
                info.push((vec![("backend", addr.as_str()), ("upstream", "")], 1));
            }
            for u in &b.upstreams {
                info.push((
                    vec![("backend", addr.as_str()), ("upstream", u.as_str())],
                    1,
                ));
            }
        }
        family(
            &mut out,
            "upkeep_backend_info",
            Kind::Gauge,
            "A watched backend address and the upstream block that lists it (empty: a proxy_pass to the address).",
            &info,
        );
        let opened: Vec<(Labels<'_>, u64)> = opts
            .backends
            .iter()
            .zip(&addrs)
            .map(|(b, addr)| {
                let n = totals
                    .new_connections
                    .get(&canonical(b.addr))
                    .copied()
                    .unwrap_or(0);
                (vec![("backend", addr.as_str())], n)
            })
            .collect();
        family(
            &mut out,
            "upkeep_upstream_connections_opened_total",
            Kind::Counter,
            "Connections towards the backend seen appearing in the socket census since the watch started (a lower bound).",
            &opened,
        );
        let mut sockets = Vec::new();
        if let Some(i) = last {
            for (b, addr) in i.backends.iter().zip(&addrs) {
                let Some(s) = b.sockets else { continue };
                let a = addr.as_str();
                for (end, state, n) in [
                    ("nginx", "established", s.established),
                    ("nginx", "time_wait", s.time_wait),
                    ("nginx", "other", s.other),
                    ("backend", "established", s.backend_end_established),
                    ("backend", "time_wait", s.backend_end_time_wait),
                ] {
                    sockets.push((vec![("backend", a), ("end", end), ("state", state)], n));
                }
            }
        }
        if !sockets.is_empty() {
            family(
                &mut out,
                "upkeep_upstream_sockets",
                Kind::Gauge,
                "TCP sockets of connections to the backend at the last census, by end (nginx: remote is the backend; backend: local is the backend, when it runs on this host) and state.",
                &sockets,
            );
        }
        family(
            &mut out,
            "upkeep_socket_census_polls_total",
            Kind::Counter,
            "Socket censuses taken since the watch started.",
            &one(totals.census_polls),
        );
    }

    if logs_followed {
        let by_sig: Vec<(Labels<'_>, u64)> = Signature::ALL
            .iter()
            .map(|s| (vec![("signature", s.id())], totals.errors.count(*s)))
            .collect();
        family(
            &mut out,
            "upkeep_error_signatures_total",
            Kind::Counter,
            "Error-log lines per failure signature (the IDs of `upkeep logs`) since the watch started.",
            &by_sig,
        );
        let by_backend: Vec<(Labels<'_>, u64)> = totals
            .errors
            .by_backend
            .iter()
            .map(|((sig, peer), n)| {
                (
                    vec![("backend", peer.as_str()), ("signature", sig.id())],
                    *n,
                )
            })
            .collect();
        family(
            &mut out,
            "upkeep_upstream_error_signatures_total",
            Kind::Counter,
            "Error-log lines per failure signature and the upstream peer they name, since the watch started.",
            &by_backend,
        );
        family(
            &mut out,
            "upkeep_error_log_lines_total",
            Kind::Counter,
            "Error-log lines read since the watch started.",
            &one(totals.errors.lines),
        );
    }

    family(
        &mut out,
        "upkeep_watch_intervals_total",
        Kind::Counter,
        "Intervals sampled since the watch started.",
        &one(totals.intervals),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::WatchedBackend;

    #[test]
    fn families_have_help_and_type_and_escaped_labels() {
        let mut opts = WatchOptions::new(
            None,
            vec![WatchedBackend {
                addr: "127.0.0.1:8080".parse().unwrap(),
                written: "app:8080".into(),
                upstreams: vec!["app".into(), "b\"ad".into()],
            }],
        );
        opts.error_logs = vec!["/x".into()];
        let mut totals = Totals::default();
        totals
            .new_connections
            .insert("127.0.0.1:8080".parse().unwrap(), 7);
        totals.errors.add_line(br#"2026/11/23 14:26:25 [error] 1#0: *15 connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: , request: "GET / HTTP/1.1", upstream: "http://127.0.0.1:8080/", host: "t""#);
        let page = exposition(&opts, true, &totals, None);

        assert!(
            !page.contains("upkeep_client_"),
            "no stub_status, no client metrics"
        );
        assert!(page.contains("# TYPE upkeep_upstream_connections_opened_total counter\nupkeep_upstream_connections_opened_total{backend=\"127.0.0.1:8080\"} 7\n"), "{page}");
        assert!(
            page.contains(
                "upkeep_backend_info{backend=\"127.0.0.1:8080\",upstream=\"b\\\"ad\"} 1\n"
            ),
            "{page}"
        );
        assert!(page.contains("upkeep_error_signatures_total{signature=\"connect-refused\"} 1\n"));
        assert!(page.contains("upkeep_error_signatures_total{signature=\"upstream-reset\"} 0\n"));
        assert!(page.contains("upkeep_upstream_error_signatures_total{backend=\"127.0.0.1:8080\",signature=\"connect-refused\"} 1\n"));
        // Every sample line belongs to the family announced just before it.
        let mut current = "";
        for line in page.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                current = rest.split(' ').next().unwrap();
            } else if !line.starts_with('#') {
                assert!(line.starts_with(current), "{line} outside {current}");
            }
        }
    }
}
