//! Rendering an [`Analysis`] for people (text with a histogram over time)
//! and as JSON (schema 1, the SPEC.md fields and more).

use crate::analysis::{Analysis, InputReport};
use crate::join::{AccessReport, Outcomes};
use crate::signature::Signature;
use crate::time::LogTime;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::{json, Map, Value};
use std::fmt::Write as _;

/// The JSON document for `upkeep logs --format json`, built in memory.
pub fn to_json(a: &Analysis) -> Value {
    serde_json::to_value(JsonReport(a)).expect("plain data serializes")
}

/// The JSON document as a serializable value: `serde_json::to_writer(w,
/// &JsonReport(&analysis))` streams it, so the per-minute rows (one per
/// minute, signature and upstream: the largest part for long logs) are
/// never held as JSON in memory.
pub struct JsonReport<'a>(pub &'a Analysis);

impl Serialize for JsonReport<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Value::Object(head) = summary_json(self.0) else {
            unreachable!("summary_json builds an object")
        };
        let mut m = s.serialize_map(None)?;
        for (k, v) in &head {
            m.serialize_entry(k, v)?;
        }
        m.serialize_entry("per_minute", &PerMinute(self.0))?;
        m.end()
    }
}

struct PerMinute<'a>(&'a Analysis);

impl Serialize for PerMinute<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let a = self.0;
        let mut keys = a.per_minute.totals();
        keys.sort_by(|(x, _), (y, _)| {
            (x.minute, x.signature)
                .cmp(&(y.minute, y.signature))
                .then_with(|| {
                    a.upstream_bytes(x.upstream)
                        .cmp(a.upstream_bytes(y.upstream))
                })
        });
        let mut seq = s.serialize_seq(Some(keys.len()))?;
        for (k, n) in keys {
            seq.serialize_element(&json!({
                "minute": LogTime::minute_label(k.minute),
                "signature": k.signature.id(),
                "upstream": k.upstream.map(|u| a.upstreams.name(u)),
                "count": n,
            }))?;
        }
        seq.end()
    }
}

/// Everything but the per-minute rows.
fn summary_json(a: &Analysis) -> Value {
    let total = a.total_stats();
    let access = a.access.as_ref();
    let signatures: Vec<Value> = seen_signatures(a)
        .into_iter()
        .map(|sig| {
            let info = sig.info();
            let by_upstream: Map<String, Value> = a
                .upstreams_of(sig)
                .into_iter()
                .map(|(up, n)| (up, json!(n)))
                .collect();
            let phases: Map<String, Value> = a
                .phases_of(sig)
                .into_iter()
                .map(|(p, n)| (p, json!(n)))
                .collect();
            let joined = access.filter(|r| r.joined && sig.is_request_failure());
            let o = joined.map(|r| &r.per_signature[sig.index()]);
            json!({
                "id": info.id,
                "count": a.count(sig),
                "level": info.level,
                "by_upstream": by_upstream,
                "phases": phases,
                "client_visible": o.map(|o| o.client_visible),
                "retried": o.map(|o| o.retried),
                "truncated": o.map(|o| o.truncated),
                "client_aborted": o.map(|o| o.client_aborted),
                "unmatched": o.map(|o| o.unmatched),
                "connect_time_zero": o.map(|o| o.connect_time_zero),
                "client_visible_by_method": o.map(|o| &o.visible_by_method),
                "client_visible_by_status": o.map(|o| o.visible_by_status.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<Map<_, _>>()),
                "meaning": info.meaning,
                "rules": info.rules,
            })
        })
        .collect();
    let top: Vec<Value> = a
        .top_upstreams(10)
        .into_iter()
        .map(|t| {
            let sigs: Map<String, Value> = t
                .signatures
                .into_iter()
                .map(|(s, n)| (s.id().to_string(), json!(n)))
                .collect();
            json!({"upstream": t.upstream, "count": t.count, "count_error": t.error, "signatures": sigs})
        })
        .collect();
    let table = &a.upstreams;
    let pooled: u64 = table.pooled().iter().sum();
    json!({
        "schema": 1,
        "lines": total.lines,
        "unparsed": total.unparsed,
        "overlong": total.overlong,
        "outside_window": total.outside_window,
        "inputs": a.inputs.iter().map(input_json).collect::<Vec<_>>(),
        "time_range": a.first_time.zip(a.last_time).map(|(f, l)| json!({
            "first": f.display().to_string(), "last": l.display().to_string()
        })),
        "signatures": signatures,
        "other_upstream": {"count": a.other_upstream, "samples": a.other_samples},
        "top_upstreams": top,
        "upstream_addresses": {
            "limit": table.capacity(),
            "tracked": table.len(),
            "limit_reached": table.evictions() > 0,
            "evictions": table.evictions(),
            "pooled_failures": pooled,
            "listed_above": table.listed_above(),
        },
        "per_minute_bucket_minutes": a.per_minute.bucket_minutes(),
        "per_minute_row_limit": a.per_minute.max_rows(),
        "access": access.map(access_json),
    })
}

fn input_json(i: &InputReport) -> Value {
    json!({
        "name": i.name,
        "gzip": i.gzip,
        "lines": i.stats.lines,
        "unparsed": i.stats.unparsed,
        "first_unparsed_line": i.stats.first_unparsed,
        "overlong": i.stats.overlong,
        "first_overlong_line": i.stats.first_overlong,
        "binary_lines": i.stats.binary,
        "error": i.error,
    })
}

fn access_json(r: &AccessReport) -> Value {
    json!({
        "inputs": r.inputs.iter().map(input_json).collect::<Vec<_>>(),
        "format": r.format,
        "records": r.records,
        "unparsed": r.unparsed,
        "joined": r.joined,
        "notes": r.notes,
        "status_5xx": r.status_5xx.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<Map<_, _>>(),
        "requests_retried": r.requests_retried,
        "retries_recovered": r.retries_recovered,
        "unexplained_5xx": r.with_error_log.then_some(r.unexplained_5xx),
        "requests_per_connection": r.reuse.map(|u| json!({
            "requests": u.requests, "connections": u.connections, "mean": u.mean(), "max": u.max
        })),
    })
}

/// Signatures with a non-zero count, most frequent first.
fn seen_signatures(a: &Analysis) -> Vec<Signature> {
    let mut sigs: Vec<Signature> = Signature::ALL
        .into_iter()
        .filter(|s| a.count(*s) > 0)
        .collect();
    sigs.sort_by(|x, y| a.count(*y).cmp(&a.count(*x)).then(x.cmp(y)));
    sigs
}

/// Human-readable messages about the inputs themselves (unreadable files,
/// truncated gzip, lines of unknown shape, overlong lines), one per line,
/// each starting with the input name. Meant for stderr.
pub fn input_messages(a: &Analysis) -> Vec<String> {
    let mut out = Vec::new();
    let access_inputs = a.access.iter().flat_map(|r| r.inputs.iter());
    for i in a.inputs.iter().chain(access_inputs) {
        if let Some(e) = &i.error {
            out.push(format!("error: {}: {e}", i.name));
        }
        let s = &i.stats;
        if s.overlong > 0 {
            out.push(format!(
                "warning: {}:{}:1: {} line{} longer than {} bytes skipped",
                i.name,
                s.first_overlong.unwrap_or(0),
                s.overlong,
                plural(s.overlong),
                crate::scan::MAX_LINE
            ));
        }
        if s.unparsed > 0 {
            let what = if s.binary * 2 > s.unparsed {
                "binary data (NUL bytes)"
            } else {
                "unknown shape"
            };
            out.push(format!(
                "warning: {}:{}:1: {} line{} of {what}, counted and skipped",
                i.name,
                s.first_unparsed.unwrap_or(0),
                s.unparsed,
                plural(s.unparsed),
            ));
        }
    }
    if let Some(r) = &a.access {
        for n in &r.notes {
            out.push(format!("note: {n}"));
        }
    }
    out
}

fn plural(n: u64) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Thousands separators for counts people read.
fn num(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The text report.
pub fn to_human(a: &Analysis) -> String {
    let mut o = String::new();
    let total = a.total_stats();
    let events = a.total_events();
    let sigs = seen_signatures(a);
    let _ = writeln!(
        o,
        "upkeep logs: {} lines in {} input{}, {} upstream/keep-alive failure line{} in {} signature{}, {} line{} of unknown shape",
        num(total.lines),
        a.inputs.len(),
        plural(a.inputs.len() as u64),
        num(events),
        plural(events),
        sigs.len(),
        plural(sigs.len() as u64),
        num(total.unparsed),
        plural(total.unparsed),
    );
    if let (Some(f), Some(l)) = (a.first_time, a.last_time) {
        let _ = writeln!(
            o,
            "time range: {} .. {} (the log's local time)",
            f.display(),
            l.display()
        );
    }
    if total.outside_window > 0 {
        let _ = writeln!(
            o,
            "{} lines outside --since/--until were skipped",
            num(total.outside_window)
        );
    }
    if sigs.is_empty() {
        let _ = writeln!(o, "\nno upstream or keep-alive failure signatures found");
    } else {
        write_table(&mut o, a, &sigs);
        for &sig in &sigs {
            write_signature(&mut o, a, sig);
        }
        write_top_upstreams(&mut o, a);
        write_histogram(&mut o, a);
    }
    if a.other_upstream > 0 {
        let _ = writeln!(
            o,
            "\n{} other upstream error line{} matched no signature, e.g.:",
            num(a.other_upstream),
            plural(a.other_upstream)
        );
        for s in &a.other_samples {
            let _ = writeln!(o, "  {s}");
        }
    }
    if let Some(r) = &a.access {
        write_access(&mut o, r);
    }
    o
}

fn write_table(o: &mut String, a: &Analysis, sigs: &[Signature]) {
    let joined = a.access.as_ref().filter(|r| r.joined);
    let _ = writeln!(o);
    if joined.is_some() {
        let _ = writeln!(
            o,
            "{:<34} {:>10} {:>15} {:>9} {:>10}  rules",
            "signature", "count", "client-visible", "retried", "unmatched"
        );
    } else {
        let _ = writeln!(o, "{:<34} {:>10}  rules", "signature", "count");
    }
    for &sig in sigs {
        let rules = sig.info().rules.join(" ");
        match joined.filter(|_| sig.is_request_failure()) {
            Some(r) => {
                let oc: &Outcomes = &r.per_signature[sig.index()];
                let _ = writeln!(
                    o,
                    "{:<34} {:>10} {:>15} {:>9} {:>10}  {rules}",
                    sig.id(),
                    num(a.count(sig)),
                    num(oc.client_visible),
                    num(oc.retried),
                    num(oc.unmatched)
                );
            }
            None if joined.is_some() => {
                let _ = writeln!(
                    o,
                    "{:<34} {:>10} {:>15} {:>9} {:>10}  {rules}",
                    sig.id(),
                    num(a.count(sig)),
                    "-",
                    "-",
                    "-"
                );
            }
            None => {
                let _ = writeln!(o, "{:<34} {:>10}  {rules}", sig.id(), num(a.count(sig)));
            }
        }
    }
}

fn write_signature(o: &mut String, a: &Analysis, sig: Signature) {
    let info = sig.info();
    let _ = writeln!(o, "\n{} ({})", info.id, num(a.count(sig)));
    let _ = writeln!(o, "  {}", info.meaning);
    let _ = writeln!(
        o,
        "  rules: {} (see `upkeep explain {}`)",
        info.rules.join(", "),
        info.rules[0]
    );
    let phases = a.phases_of(sig);
    if phases.len() > 1 || phases.first().is_some_and(|(p, _)| !p.is_empty()) {
        let list: Vec<String> = phases
            .iter()
            .map(|(p, n)| format!("while {p} ({})", num(*n)))
            .collect();
        let _ = writeln!(o, "  phases: {}", list.join(", "));
    }
    let ups = a.upstreams_of(sig);
    if !ups.is_empty() {
        let shown: Vec<String> = ups
            .iter()
            .take(5)
            .map(|(u, n)| format!("{u} ({})", num(*n)))
            .collect();
        let more = if ups.len() > 5 {
            format!(", and {} more", ups.len() - 5)
        } else {
            String::new()
        };
        let _ = writeln!(o, "  upstreams: {}{more}", shown.join(", "));
    }
    if let Some(r) = a
        .access
        .as_ref()
        .filter(|r| r.joined && sig.is_request_failure())
    {
        let oc = &r.per_signature[sig.index()];
        let methods: Vec<String> = oc
            .visible_by_method
            .iter()
            .map(|(m, n)| format!("{m} {}", num(*n)))
            .collect();
        let statuses: Vec<String> = oc
            .visible_by_status
            .iter()
            .map(|(s, n)| format!("{s} {}", num(*n)))
            .collect();
        let detail = if methods.is_empty() {
            String::new()
        } else {
            format!(" ({}; {})", methods.join(", "), statuses.join(", "))
        };
        let _ = writeln!(
            o,
            "  clients saw {} as 5xx{detail}; {} cut off a response already under way; nginx retried {} away; clients gave up on {}; {} without an access record",
            num(oc.client_visible),
            num(oc.truncated),
            num(oc.retried),
            num(oc.client_aborted),
            num(oc.unmatched)
        );
        if oc.connect_time_zero > 0 {
            let _ = writeln!(
                o,
                "  {} failed attempt{} logged $upstream_connect_time 0.000, as a reused keep-alive connection does",
                num(oc.connect_time_zero),
                plural(oc.connect_time_zero)
            );
        }
    }
}

fn write_top_upstreams(o: &mut String, a: &Analysis) {
    let top = a.top_upstreams(10);
    if top.is_empty() {
        return;
    }
    let _ = writeln!(o, "\ntop upstreams:");
    for t in &top {
        let list: Vec<String> = t
            .signatures
            .iter()
            .map(|(s, n)| format!("{} {}", s.id(), num(*n)))
            .collect();
        let count = if t.error > 0 {
            format!("{} (+{} at most)", num(t.count), num(t.error))
        } else {
            num(t.count)
        };
        let _ = writeln!(o, "  {:<28} {count:>10}  {}", t.upstream, list.join(", "));
    }
    let table = &a.upstreams;
    if table.evictions() > 0 {
        let pooled: u64 = table.pooled().iter().sum();
        let _ = writeln!(
            o,
            "note: more than {} distinct upstream addresses: {} failure{} of the least frequent ones are counted under \"{}\". Every address with more than {} failure{} is listed; a count shown with \"+N at most\" may miss up to N failures counted there before the address was tracked.",
            num(table.capacity() as u64),
            num(pooled),
            plural(pooled),
            crate::analysis::OVERFLOW_UPSTREAM,
            num(table.listed_above()),
            plural(table.listed_above()),
        );
    }
}

const BUCKET_MINUTES: [i64; 14] = [
    1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 10_080, 43_200,
];
const MAX_ROWS: i64 = 30;
const BAR: usize = 40;

fn write_histogram(o: &mut String, a: &Analysis) {
    let minutes = a.minutes();
    let (Some(first), Some(last)) = (minutes.first().map(|m| m.0), minutes.last().map(|m| m.0))
    else {
        return;
    };
    // Rows are whole buckets of the per-minute table.
    let res = a.per_minute.bucket_minutes();
    let span = last - first + res;
    let width = BUCKET_MINUTES
        .into_iter()
        .filter(|w| w % res == 0)
        .find(|w| (span + w - 1) / w <= MAX_ROWS)
        .unwrap_or_else(|| {
            let w = (span + MAX_ROWS - 1) / MAX_ROWS;
            (w + res - 1) / res * res
        });
    let start = first - first.rem_euclid(width);
    let rows = ((last - start) / width + 1) as usize;
    let mut buckets = vec![[0u64; Signature::COUNT]; rows];
    for (m, counts) in &minutes {
        let b = ((m - start) / width) as usize;
        for (acc, c) in buckets[b].iter_mut().zip(counts) {
            *acc += c;
        }
    }
    let totals: Vec<u64> = buckets.iter().map(|b| b.iter().sum()).collect();
    let max = totals.iter().copied().max().unwrap_or(0).max(1);
    let same_day = LogTime(start * 60).civil().2 == LogTime(last * 60).civil().2 && span < 1440;
    let unit = match width {
        w if w % 1440 == 0 => format!("{} day{}", w / 1440, plural((w / 1440) as u64)),
        w if w % 60 == 0 => format!("{} hour{}", w / 60, plural((w / 60) as u64)),
        w => format!("{w} minute{}", plural(w as u64)),
    };
    let _ = writeln!(o, "\nfailures over time ({unit} per row):");
    if res > 1 {
        let _ = writeln!(
            o,
            "note: the per-minute counts were merged into {res}-minute buckets to stay within {} rows (--max-minute-rows); totals are exact",
            num(a.per_minute.max_rows() as u64)
        );
    }
    for (i, (b, total)) in buckets.iter().zip(&totals).enumerate() {
        let t = LogTime((start + i as i64 * width) * 60);
        let (_, mo, d, h, mi, _) = t.civil();
        let label = if same_day {
            format!("{h:02}:{mi:02}")
        } else {
            format!("{mo:02}-{d:02} {h:02}:{mi:02}")
        };
        let len = ((*total as f64 / max as f64) * BAR as f64).ceil() as usize;
        let top = Signature::ALL
            .into_iter()
            .filter(|s| b[s.index()] > 0)
            .max_by_key(|s| (b[s.index()], std::cmp::Reverse(*s)));
        let note = top.map(|s| format!("  {}", s.id())).unwrap_or_default();
        let _ = writeln!(
            o,
            "  {label} {:<BAR$} {:>8}{note}",
            "█".repeat(len),
            num(*total)
        );
    }
}

fn write_access(o: &mut String, r: &AccessReport) {
    let _ = writeln!(
        o,
        "\naccess log: {} requests, {} line{} not in the format",
        num(r.records),
        num(r.unparsed),
        plural(r.unparsed)
    );
    if !r.status_5xx.is_empty() {
        let list: Vec<String> = r
            .status_5xx
            .iter()
            .map(|(s, n)| format!("{s}: {}", num(*n)))
            .collect();
        let _ = writeln!(o, "  5xx answers: {}", list.join(", "));
    }
    if r.requests_retried > 0 {
        let _ = writeln!(
            o,
            "  {} request{} needed more than one upstream attempt; {} of them ended without a 5xx",
            num(r.requests_retried),
            plural(r.requests_retried),
            num(r.retries_recovered)
        );
    }
    if r.with_error_log && r.unexplained_5xx > 0 {
        let _ = writeln!(
            o,
            "  {} 502/504 answer{} had no matching error-log line (error_log level above \"error\", or logs from different times)",
            num(r.unexplained_5xx),
            plural(r.unexplained_5xx)
        );
    }
    if let Some(u) = r.reuse {
        match u.mean() {
            Some(mean) => {
                let _ = writeln!(
                    o,
                    "  requests per client connection: {mean:.1} on average ({} requests on {} connections opened in the log; at most {})",
                    num(u.requests),
                    num(u.connections),
                    num(u.max)
                );
            }
            None => {
                let _ = writeln!(
                    o,
                    "  requests per client connection: no connection started inside the log (at most {})",
                    num(u.max)
                );
            }
        }
    }
}
