//! `upkeep watch --format json`: one JSON object per interval, one per line.
//!
//! Schema 1 (fields may be added, never changed; the JSON Schema is
//! [`JSON_SCHEMA`], `interval.schema.json` next to this file):
//!
//! ```text
//! {"schema": 1, "interval": 3, "time": "2026-11-23T14:26:24.120Z",
//!  "elapsed_ms": 3004, "duration_ms": 1001,
//!  "clients": {"requests", "requests_per_s", "accepts", "accepts_per_s",
//!              "handled", "dropped", "requests_per_connection",
//!              "active", "reading", "writing", "waiting"} | null,
//!  "stub_status": {"url", "error": null | "why"} | null,
//!  "upstream": {"new_connections", "new_connections_per_s",
//!               "requests_per_new_connection", "established", "time_wait"},
//!  "backends": [{"address", "written", "upstreams": [..],
//!                "new_connections", "new_connections_per_s",
//!                "established", "time_wait", "time_wait_backend_end",
//!                "other"}],
//!  "census": {"source": "netlink sock_diag" | "/proc/net/tcp{,6}" | null,
//!             "polls", "error": null | "why"},
//!  "errors": {"lines", "signatures": {"connect-refused": {"count", "per_s",
//!             "by_backend": {"127.0.0.1:8080": n}}}},
//!  "totals": {"intervals", "client_requests", "client_accepts",
//!             "client_handled", "client_dropped", "requests_per_connection",
//!             "new_connections": {"127.0.0.1:8080": n},
//!             "error_lines", "signatures": {"connect-refused": n}},
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
//! * `signatures` hold the non-zero signature IDs of facts/signatures.tsv;
//!   `by_backend` the peers named by the lines (`upstream: "…"`).
//! * `totals` run from the start of the watch; rates are per second of
//!   `duration_ms`; rates and ratios are rounded to 3 decimals.

use serde_json::{json, Map, Value};
use upkeep_logs::Signature;

use super::client::{per_second, ClientInterval};
use super::error_signatures::SignatureCounts;
use super::{BackendInterval, Interval, Totals};
use crate::stub_status::StubStatus;

/// Bumped only on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// The JSON Schema (draft 7) of one interval's object.
pub const JSON_SCHEMA: &str = include_str!("interval.schema.json");

pub fn interval(i: &Interval, status_url: Option<&str>) -> Value {
    json!({
        "schema": SCHEMA_VERSION,
        "interval": i.index,
        "time": rfc3339_utc(i.time),
        "elapsed_ms": i.elapsed.as_millis() as u64,
        "duration_ms": i.duration.as_millis() as u64,
        "clients": i.status.map(|s| clients(i.client.as_ref(), &s)),
        "stub_status": status_url.map(|url| json!({"url": url, "error": i.status_error})),
        "upstream": {
            "new_connections": i.new_connections(),
            "new_connections_per_s": rounded(i.new_connections_per_second()),
            "requests_per_new_connection": i.requests_per_new_connection().map(rounded),
            "established": i.established(),
            "time_wait": i.time_wait(),
        },
        "backends": i.backends.iter().map(|b| backend(b, i)).collect::<Vec<_>>(),
        "census": {
            "source": i.census_source.map(|s| s.as_str()),
            "polls": i.census_polls,
            "error": i.census_error,
        },
        "errors": errors(&i.errors, i),
        "totals": totals(&i.totals),
        "notes": i.notes,
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

fn backend(b: &BackendInterval, i: &Interval) -> Value {
    let s = b.sockets;
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
    })
}

fn errors(e: &SignatureCounts, i: &Interval) -> Value {
    let mut signatures = Map::new();
    for sig in Signature::ALL {
        let count = e.count(sig);
        if count == 0 {
            continue;
        }
        let by_backend: Map<String, Value> = e
            .by_backend
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

fn totals(t: &Totals) -> Value {
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
    json!({
        "intervals": t.intervals,
        "client_requests": t.client_requests,
        "client_accepts": t.client_accepts,
        "client_handled": t.client_handled,
        "client_dropped": t.client_dropped,
        "requests_per_connection": t.requests_per_connection().map(rounded),
        "new_connections": new,
        "error_lines": t.errors.lines,
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
            open_files: None,
            notes: Vec::new(),
            totals,
        };
        let v = interval(&i, Some("http://127.0.0.1/status"));
        let p = &schema["properties"];
        assert_eq!(keys(&v), required(&schema));
        for key in [
            "clients",
            "stub_status",
            "upstream",
            "census",
            "errors",
            "totals",
        ] {
            assert_eq!(keys(&v[key]), required(&p[key]), "{key}");
        }
        assert_eq!(keys(&v["backends"][0]), required(&p["backends"]["items"]));
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
