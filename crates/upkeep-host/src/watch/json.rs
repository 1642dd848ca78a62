//! `upkeep watch --format json`: one JSON object per interval, one per line.
//! It carries everything the Prometheus page (`--listen`) publishes.
//!
//! Schema 1 (fields may be added, never changed; the JSON Schema is
//! [`JSON_SCHEMA`], `interval.schema.json` next to this file):
//!
//! ```text
//! {"schema": 1, "interval": 3, "time": "2026-11-23T14:26:24.120Z",
//!  "elapsed_ms": 3004, "duration_ms": 1001,
//!  "build": {"version", "nginx_version": "1.22.1" | null},
//!  "clients": {"requests", "requests_per_s", "accepts", "accepts_per_s",
//!              "handled", "dropped", "requests_per_connection",
//!              "active", "reading", "writing", "waiting"} | null,
//!  "stub_status": {"url", "error": null | "why"} | null,
//!  "upstream": {"new_connections", "new_connections_per_s",
//!               "requests_per_new_connection", "established", "time_wait"},
//!  "backends": [{"address", "written", "upstreams": [..],
//!                "new_connections", "new_connections_per_s",
//!                "established", "time_wait", "time_wait_backend_end",
//!                "other", "ephemeral_ports", "ephemeral_ports_used_ratio",
//!                "requests", "bad_gateway",
//!                "stale_reuse": {"upstream-prematurely-closed": n,
//!                                "upstream-reset": n,
//!                                "upstream-send-failed": n} | null}],
//!  "census": {"source": "netlink sock_diag" | "/proc/net/tcp{,6}" | null,
//!             "polls", "error": null | "why", "port_range_size": n | null},
//!  "errors": {"lines", "signatures": {"connect-refused": {"count", "per_s",
//!             "by_backend": {"127.0.0.1:8080": n}}}},
//!  "access_log": {"lines", "unparsed"} | null,
//!  "open_files": {"workers", "master": {"pid", "open", "limit",
//!                 "headroom"} | null, "worker": {…} | null} | null,
//!  "findings": {"checks", "success", "last_check": time | null,
//!               "error": null | "why",
//!               "by_rule": [{"rule", "severity", "count"}]} | null,
//!  "logs": [{"kind": "error" | "access", "path", "present", "readable",
//!            "refused": null | "why"}],
//!  "totals": {"intervals", "client_requests", "client_accepts",
//!             "client_handled", "client_dropped", "requests_per_connection",
//!             "status_failures", "census_polls",
//!             "new_connections": {"127.0.0.1:8080": n},
//!             "error_lines", "signatures": {"connect-refused": n},
//!             "access_log_lines", "access_log_unparsed",
//!             "peers": {"127.0.0.1:8080": {"upstream", "requests",
//!                       "bad_gateway", "stale_reuse",
//!                       "signatures": {"upstream-reset": n}}},
//!             "peer_addresses": {"limit", "limit_reached",
//!                       "error_log": {"tracked", "evictions",
//!                                     "listed_above"} | null,
//!                       "access_log": {…} | null}},
//!  "notes": ["…"]}
//! ```
//!
//! * `clients` is `null` without stub_status or when the sample failed; its
//!   counts and rates are `null` for an interval that only set a new
//!   baseline (the first after a failure or an nginx restart), its gauges
//!   (`active` … `waiting`) are the sample's. Counts leave out the watch's
//!   own stub_status request. `requests_per_connection` is requests per
//!   handled connection, `null` without connections.
//! * `requests_per_new_connection`: client requests per new connection
//!   towards the backends, an upper bound of the proxied requests per
//!   new upstream connection; `null` without either.
//! * `new_connections` counts connections seen appearing in the socket
//!   census, polled every 200 ms: a lower bound, missing a connection that
//!   opens and closes between two polls when neither end's TIME_WAIT socket
//!   is visible on this host (a remote backend that closes first).
//! * Socket counts of a backend are `null` when no census succeeded in the
//!   interval. `time_wait` (per backend) is nginx's end; `time_wait_backend_end`
//!   the backend's end when it runs on this host; `upstream.time_wait` sums both.
//!   `ephemeral_ports` counts its sockets whose local port is in
//!   `net.ipv4.ip_local_port_range` (size: `census.port_range_size`, `null`
//!   when it could not be read), `ephemeral_ports_used_ratio` that over the
//!   range's size (not rounded).
//! * A backend's `requests` and `bad_gateway` (this interval) come from the
//!   access logs: attempts sent to it, and requests that ended in a 502 to
//!   the client with it tried last; `null` when no access log is followed.
//!   `stale_reuse` holds its lines of the stale keep-alive race this
//!   interval; `null` when no error log is followed.
//! * `signatures` hold the non-zero signature IDs of `upkeep logs`;
//!   `by_backend` the peers named by the lines (`upstream: "…"`).
//! * `open_files`: descriptors of the nginx master and of the worker with
//!   the least headroom, their soft RLIMIT_NOFILE (`limit`, `null`:
//!   unlimited) and what is left (`headroom`); `null` without a master.
//! * `findings`: `upkeep check` on the running configuration, run at the
//!   start and again when nginx reloads; `by_rule` counts its findings at
//!   the last check (a rule seen earlier stays, at 0); `success` is false
//!   when the last check could not load the configuration (`error` says
//!   why; the counts are then the check's before). `null` when no
//!   configuration was loaded.
//! * `logs`: the followed logs; a log that is not `present` (not created
//!   yet, or removed) is still followed and read from its start once it
//!   appears. `present` says the path exists, `readable` that it is read:
//!   a path that is not a regular file (a FIFO, a directory, a device) or
//!   cannot be opened is present but not readable, and `refused` says why
//!   (`null` otherwise); it is looked at again every interval.
//! * `totals` run from the start of the watch. `totals.peers` is per
//!   upstream peer as the logs name it (every watched backend included, at
//!   0): `requests` and `bad_gateway` (`null` without an access log),
//!   `stale_reuse` (the sum of the three stale-race signatures) and every
//!   signature logged for it (`null` and `{}` without an error log).
//!   `access_log_lines` and `access_log_unparsed` are `null` without an
//!   access log.
//! * `totals.peer_addresses`: at most `limit` peers (`--max-peers`) are
//!   counted per log at once. Past it (`limit_reached`) a new peer takes
//!   the place of the one with the least counted (`upkeep logs`'
//!   space-saving sketch): the busiest peers stay exact, the counts of
//!   those that lost their place (`evictions`) are under the peer
//!   `(other addresses)` in `peers` and `by_backend`, and a peer not listed
//!   has at most `listed_above` lines (error log) or requests (access log).
//!   `error_log` and `access_log` are `null` when no such log is followed.
//! * Rates are per second of `duration_ms`; rates and ratios are rounded to
//!   3 decimals.

use serde_json::{json, Map, Value};
use upkeep_logs::Signature;

use super::client::{per_second, ClientInterval};
use super::error_signatures::SignatureCounts;
use super::findings::StaticFindings;
use super::open_files::{OpenFiles, ProcessFiles};
use super::peers::{peer_totals, PeerTotals};
use super::prometheus::STALE_REUSE;
use super::{BackendInterval, Interval, PeerTableUse, Sources, Totals};
use crate::sockets::canonical;
use crate::stub_status::StubStatus;

/// Bumped only on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// The JSON Schema (draft 7) of one interval's object.
pub const JSON_SCHEMA: &str = include_str!("interval.schema.json");

/// The object of interval `i`; `src` is what the watch follows
/// ([`super::Watcher::sources`]), `status_url` the stub_status page.
pub fn interval(i: &Interval, src: &Sources<'_>, status_url: Option<&str>) -> Value {
    let opts = src.opts;
    let range = opts
        .port_range
        .map(|(lo, hi)| u64::from(hi.saturating_sub(lo)) + 1);
    json!({
        "schema": SCHEMA_VERSION,
        "interval": i.index,
        "time": rfc3339_utc(i.time),
        "elapsed_ms": i.elapsed.as_millis() as u64,
        "duration_ms": i.duration.as_millis() as u64,
        "build": {
            "version": opts.build.version,
            "nginx_version": Some(&opts.build.nginx_version).filter(|v| !v.is_empty()),
        },
        "clients": i.status.map(|s| clients(i.client.as_ref(), &s)),
        "stub_status": status_url.map(|url| json!({"url": url, "error": i.status_error})),
        "upstream": {
            "new_connections": i.new_connections(),
            "new_connections_per_s": rounded(i.new_connections_per_second()),
            "requests_per_new_connection": i.requests_per_new_connection().map(rounded),
            "established": i.established(),
            "time_wait": i.time_wait(),
        },
        "backends": i.backends.iter().map(|b| backend(b, i, src, range)).collect::<Vec<_>>(),
        "census": {
            "source": i.census_source.map(|s| s.as_str()),
            "polls": i.census_polls,
            "error": i.census_error,
            "port_range_size": range,
        },
        "errors": errors(&i.errors, i),
        "access_log": src.access_logs.then(|| json!({
            "lines": i.access.lines,
            "unparsed": i.access.unparsed,
        })),
        "open_files": i.open_files.as_ref().map(open_files),
        "findings": src.findings.map(findings),
        "logs": i.logs.iter().map(|l| json!({
            "kind": l.kind.as_str(),
            "path": l.path.display().to_string(),
            "present": l.present,
            "readable": l.readable(),
            "refused": l.refused,
        })).collect::<Vec<_>>(),
        "totals": totals(&i.totals, src),
        "notes": i.notes,
    })
}

fn open_files(o: &OpenFiles) -> Value {
    let process = |p: Option<ProcessFiles>| {
        p.map(|p| {
            json!({
                "pid": p.pid,
                "open": p.open,
                "limit": p.soft_limit,
                "headroom": p.headroom(),
            })
        })
    };
    json!({
        "workers": o.workers,
        "master": process(o.master),
        "worker": process(o.tightest_worker),
    })
}

fn findings(f: &StaticFindings) -> Value {
    json!({
        "checks": f.checks,
        "success": f.last_error.is_none() && f.last_success.is_some(),
        "last_check": f.last_success.map(rfc3339_utc),
        "error": f.last_error,
        "by_rule": f.counts.iter().map(|((rule, severity), count)| json!({
            "rule": rule,
            "severity": severity,
            "count": count,
        })).collect::<Vec<_>>(),
    })
}

fn clients(c: Option<&ClientInterval>, s: &StubStatus) -> Value {
    json!({
        "requests": c.map(|c| c.requests()),
        "requests_per_s": c.map(|c| rounded(c.requests_per_second())),
        "accepts": c.map(|c| c.accepts()),
        "accepts_per_s": c.map(|c| rounded(c.accepts_per_second())),
        "handled": c.map(|c| c.handled()),
        "dropped": c.map(|c| c.dropped()),
        "requests_per_connection": c.and_then(|c| c.requests_per_connection()).map(rounded),
        "active": s.active,
        "reading": s.reading,
        "writing": s.writing,
        "waiting": s.waiting,
    })
}

fn backend(b: &BackendInterval, i: &Interval, src: &Sources<'_>, range: Option<u64>) -> Value {
    let s = b.sockets;
    let addr = canonical(b.backend.addr);
    // This interval's access-log and error-log lines naming this address.
    let named = |peer: &str| peer.parse().ok().map(canonical) == Some(addr);
    let access = src.access_logs.then(|| {
        i.access
            .by_peer()
            .iter()
            .filter(|(peer, _)| named(peer))
            .fold((0, 0), |(r, b), (_, c)| (r + c.requests, b + c.bad_gateway))
    });
    let stale_reuse = src.error_logs.then(|| {
        let by_backend = i.errors.by_backend();
        let by_sig: Map<String, Value> = STALE_REUSE
            .iter()
            .map(|sig| {
                let count: u64 = by_backend
                    .iter()
                    .filter(|((s, peer), _)| s == sig && named(peer))
                    .map(|(_, n)| n)
                    .sum();
                (sig.id().to_string(), count.into())
            })
            .collect();
        by_sig
    });
    json!({
        "address": b.backend.addr.to_string(),
        "written": b.backend.written,
        "upstreams": b.backend.upstreams,
        "new_connections": b.new_connections,
        "new_connections_per_s": rounded(per_second(b.new_connections, i.duration)),
        "established": s.map(|s| s.established),
        "time_wait": s.map(|s| s.time_wait),
        "time_wait_backend_end": s.map(|s| s.backend_end_time_wait),
        "other": s.map(|s| s.other),
        "ephemeral_ports": s.filter(|_| range.is_some()).map(|s| s.in_port_range),
        // Not rounded: a few ports of a range of 28232 are well below 0.001.
        "ephemeral_ports_used_ratio": s
            .zip(range)
            .map(|(s, size)| s.in_port_range as f64 / size as f64),
        "requests": access.map(|(r, _)| r),
        "bad_gateway": access.map(|(_, b)| b),
        "stale_reuse": stale_reuse,
    })
}

fn errors(e: &SignatureCounts, i: &Interval) -> Value {
    let mut signatures = Map::new();
    let all_by_backend = e.by_backend();
    for sig in Signature::ALL {
        let count = e.count(sig);
        if count == 0 {
            continue;
        }
        let by_backend: Map<String, Value> = all_by_backend
            .iter()
            .filter(|((s, _), _)| *s == sig)
            .map(|((_, peer), n)| (peer.clone(), (*n).into()))
            .collect();
        signatures.insert(
            sig.id().to_string(),
            json!({
                "count": count,
                "per_s": rounded(per_second(count, i.duration)),
                "by_backend": by_backend,
            }),
        );
    }
    json!({"lines": e.lines, "signatures": signatures})
}

fn totals(t: &Totals, src: &Sources<'_>) -> Value {
    let new: Map<String, Value> = t
        .new_connections
        .iter()
        .map(|(a, n)| (a.to_string(), (*n).into()))
        .collect();
    let signatures: Map<String, Value> = Signature::ALL
        .iter()
        .filter(|s| t.errors.count(**s) > 0)
        .map(|s| (s.id().to_string(), t.errors.count(*s).into()))
        .collect();
    let peers: Map<String, Value> = peer_totals(src, t)
        .iter()
        .map(|p| (p.peer.clone(), peer(p, src)))
        .collect();
    json!({
        "intervals": t.intervals,
        "client_requests": t.client_requests,
        "client_accepts": t.client_accepts,
        "client_handled": t.client_handled,
        "client_dropped": t.client_dropped,
        "requests_per_connection": t.requests_per_connection().map(rounded),
        "status_failures": t.status_failures,
        "census_polls": t.census_polls,
        "new_connections": new,
        "error_lines": t.errors.lines,
        "signatures": signatures,
        "access_log_lines": src.access_logs.then_some(t.access.lines),
        "access_log_unparsed": src.access_logs.then_some(t.access.unparsed),
        "peers": peers,
        "peer_addresses": peer_addresses(t, src),
    })
}

fn peer_addresses(t: &Totals, src: &Sources<'_>) -> Value {
    let limit = t.peer_limit();
    let usage = |u: PeerTableUse| {
        json!({
            "tracked": u.tracked,
            "evictions": u.evictions,
            "listed_above": u.listed_above,
        })
    };
    json!({
        "limit": limit.limit,
        "limit_reached": limit.reached(),
        "error_log": src.error_logs.then(|| usage(limit.error_log)),
        "access_log": src.access_logs.then(|| usage(limit.access_log)),
    })
}

fn peer(p: &PeerTotals, src: &Sources<'_>) -> Value {
    let signatures: Map<String, Value> = p
        .signatures
        .iter()
        .map(|(s, n)| (s.id().to_string(), (*n).into()))
        .collect();
    json!({
        "upstream": p.upstream,
        "requests": p.requests,
        "bad_gateway": p.bad_gateway,
        "stale_reuse": src.error_logs.then(|| p.stale_reuse()),
        "signatures": signatures,
    })
}

/// Rates and ratios to 3 decimals: more digits only suggest a precision
/// the sampling does not have.
fn rounded(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// `2026-11-23T14:26:24.120Z`
pub fn rfc3339_utc(t: std::time::SystemTime) -> String {
    let since = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let (y, mo, d, h, mi, s) = upkeep_logs::LogTime(since.as_secs() as i64).civil();
    format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:03}Z",
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    use crate::sockets::AddressCount;
    use crate::watch::client::ClientInterval;
    use crate::watch::{BackendInterval, WatchedBackend};

    fn keys(v: &Value) -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    }

    fn required(schema: &Value) -> Vec<String> {
        let mut k: Vec<String> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        k.sort();
        k
    }

    #[test]
    fn output_and_schema_name_the_same_fields() {
        let schema: Value = serde_json::from_str(JSON_SCHEMA).unwrap();
        let status = StubStatus {
            active: 3,
            accepts: 12,
            handled: 12,
            requests: 40,
            reading: 0,
            writing: 1,
            waiting: 2,
        };
        let start = StubStatus {
            accepts: 2,
            handled: 2,
            requests: 10,
            ..status
        };
        let mut errors = SignatureCounts::default();
        errors.add_line(br#"2026/11/23 14:26:25 [error] 1#0: *15 connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: , request: "GET / HTTP/1.1", upstream: "http://127.0.0.1:8080/", host: "t""#);
        let backend = WatchedBackend {
            addr: "127.0.0.1:8080".parse().unwrap(),
            written: "127.0.0.1:8080".into(),
            upstreams: vec!["app".into()],
        };
        let mut totals = Totals::default();
        totals.errors.merge(&errors);
        totals.new_connections.insert(backend.addr, 4);
        let mut opts = crate::watch::WatchOptions::new(None, vec![backend.clone()]);
        opts.port_range = Some((32768, 60999));
        let mut found = StaticFindings::default();
        found.record([("U001", "warning")]);
        let src = Sources {
            opts: &opts,
            error_logs: true,
            access_logs: true,
            findings: Some(&found),
        };
        let i = Interval {
            index: 1,
            time: UNIX_EPOCH,
            elapsed: Duration::from_secs(1),
            duration: Duration::from_secs(1),
            client: Some(ClientInterval {
                delta: crate::sampling::StatusDelta { start, end: status },
                span: Duration::from_secs(1),
            }),
            status: Some(status),
            status_error: None,
            backends: vec![BackendInterval {
                backend,
                new_connections: 4,
                sockets: Some(AddressCount::default()),
            }],
            census_source: None,
            census_polls: 5,
            census_error: None,
            errors,
            access: Default::default(),
            open_files: Some(OpenFiles {
                master: Some(ProcessFiles {
                    pid: 1,
                    open: 10,
                    soft_limit: Some(1024),
                }),
                tightest_worker: None,
                workers: 1,
                worker_pids: vec![2],
            }),
            logs: vec![crate::watch::LogState {
                kind: crate::watch::LogKind::Error,
                path: "/var/log/nginx/error.log".into(),
                present: false,
                refused: None,
            }],
            notes: Vec::new(),
            totals,
        };
        let v = interval(&i, &src, Some("http://127.0.0.1/status"));
        let p = &schema["properties"];
        assert_eq!(keys(&v), required(&schema));
        for key in [
            "build",
            "clients",
            "stub_status",
            "upstream",
            "census",
            "errors",
            "access_log",
            "open_files",
            "findings",
            "totals",
        ] {
            assert_eq!(keys(&v[key]), required(&p[key]), "{key}");
        }
        assert_eq!(keys(&v["backends"][0]), required(&p["backends"]["items"]));
        assert_eq!(keys(&v["logs"][0]), required(&p["logs"]["items"]));
        assert_eq!(
            keys(&v["findings"]["by_rule"][0]),
            required(&p["findings"]["properties"]["by_rule"]["items"])
        );
        assert_eq!(
            keys(&v["open_files"]["master"]),
            required(&schema["definitions"]["process_files"])
        );
        let peer = &v["totals"]["peers"]["127.0.0.1:8080"];
        assert_eq!(
            keys(peer),
            required(&p["totals"]["properties"]["peers"]["additionalProperties"])
        );
        // The same numbers as the Prometheus page.
        assert_eq!(peer["signatures"]["connect-refused"], 1);
        assert_eq!(peer["signatures"]["upstream-reset"], 0, "stale race at 0");
        assert_eq!(peer["stale_reuse"], 0);
        assert_eq!(peer["requests"], 0);
        assert_eq!(peer["upstream"], "app");
        assert_eq!(v["backends"][0]["stale_reuse"]["upstream-reset"], 0);
        assert_eq!(v["backends"][0]["ephemeral_ports"], 0);
        assert_eq!(v["census"]["port_range_size"], 28232);
        assert_eq!(v["open_files"]["master"]["headroom"], 1014);
        assert_eq!(v["findings"]["by_rule"][0]["rule"], "U001");
        assert_eq!(v["logs"][0]["present"], false);
        let sig = &v["errors"]["signatures"]["connect-refused"];
        assert_eq!(
            keys(sig),
            required(&p["errors"]["properties"]["signatures"]["additionalProperties"])
        );
        assert_eq!(v["clients"]["requests"], 29, "ours left out");
        // Every signature ID of the catalogue is in the schema's list.
        let ids = schema["definitions"]["signature_id"]["enum"]
            .as_array()
            .unwrap();
        assert_eq!(ids.len(), Signature::COUNT);
        for s in Signature::ALL {
            assert!(ids.iter().any(|v| v == s.id()), "{s}");
        }
    }

    #[test]
    fn formats_utc_time() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_443_984_120);
        assert_eq!(rfc3339_utc(t), "2026-11-23T14:26:24.120Z");
    }
}
