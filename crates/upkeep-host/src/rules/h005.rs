use upkeep_diag::Severity;
use upkeep_logs::Signature;
use upkeep_rules::RuleInfo;

use super::{count, Measured, Ranked};
use crate::log_tail::STALE_SIGNATURES;

pub const INFO: RuleInfo = RuleInfo {
    id: "H005",
    name: "stale-connection-errors",
    severity: Severity::Warning,
    fixable: false,
    summary:
        "The error log shows stale keep-alive failures; an error when clients saw 502s for them.",
    doc: r#"## What it finds
Measured by `upkeep doctor` on the end of the error log (the last 8 MiB by
default): lines with the signatures of a pooled connection the backend had
already closed (`upkeep logs` signatures):

* `upstream-prematurely-closed`: "upstream prematurely closed connection
  while reading response header from upstream";
* `upstream-reset`: "recv() failed (104: Connection reset by peer) while
  reading response header from upstream";
* `upstream-send-failed`: "writev() failed (32: Broken pipe) while sending
  request to upstream" and the 104 variants.

A warning; an error when the access log (joined on `$connection` or the
client address and request) shows that clients got a 5xx for them.

## Why it breaks reuse
nginx does not probe a pooled connection before using it: when the backend
closes an idle connection while nginx is sending a request on it, the
request fails. nginx retries idempotent requests
transparently (the retry does not use up a try), so GETs only cost latency
and these log lines; POST, LOCK and PATCH (and bodies streamed with
`proxy_request_buffering off`) are not retried and the client gets a 502.
Each failure also counts towards the server's `max_fails` (default 1): with
several servers the race can mark them all down, and requests then fail with
"no live upstreams" for `fail_timeout`. The usual cause is an upstream
`keepalive_timeout` (default 60 s) that is not shorter than the backend's
idle timeout (rule U007), or a backend that closes after N requests without
saying so (U008).

## Example
gunicorn with the gthread worker (keep-alive idle timeout 2 s, `upkeep profiles`)
behind an upstream with `keepalive 32;` and the default `keepalive_timeout
60s`: a trickle of "upstream prematurely closed connection" lines, and 502s
for POSTs.

## Fix
Set the upstream's `keepalive_timeout` below the backend's idle timeout
(U007; measure it with `upkeep probe`), or raise the backend's idle timeout
above nginx's. `upkeep logs` gives the full breakdown per upstream and per
minute.

## References
- nginx source: src/http/ngx_http_upstream.c, `ngx_http_upstream_next()`; src/http/modules/ngx_http_upstream_keepalive_module.c, `ngx_http_upstream_keepalive_close_handler()`
- `upkeep logs` (the signatures of a stale pooled connection)
"#,
};

pub fn evaluate(m: &Measured<'_>) -> Vec<Ranked> {
    let Some(logs) = m.logs else {
        return Vec::new();
    };
    let lines = logs.stale_lines();
    if lines == 0 {
        return Vec::new();
    }
    let visible = logs.stale_client_visible();
    let span = match (&logs.first_time, &logs.last_time) {
        (Some(a), Some(b)) => format!(" between {a} and {b}"),
        _ => String::new(),
    };
    let mut f = INFO.finding(format!(
        "{} of stale keep-alive connections in the error log{span}{}",
        count(lines, "failure", "failures"),
        match visible {
            Some(v) if v > 0 => format!(
                ": {} got a 5xx",
                count(v, "client request", "client requests")
            ),
            Some(_) => ": nginx retried all of them away".to_string(),
            None => String::new(),
        }
    ));
    if visible.is_some_and(|v| v > 0) {
        f.severity = Severity::Error;
    }
    for sig in STALE_SIGNATURES {
        let n = logs.count(sig);
        if n == 0 {
            continue;
        }
        let peers: Vec<String> = logs
            .by_upstream
            .get(sig.id())
            .map(|rows| {
                rows.iter()
                    .take(5)
                    .map(|(peer, n)| format!("{peer} {n}"))
                    .collect()
            })
            .unwrap_or_default();
        let cv = logs
            .client_visible
            .as_ref()
            .map(|cv| {
                format!(
                    ", {} client-visible",
                    cv.get(sig.id()).copied().unwrap_or(0)
                )
            })
            .unwrap_or_default();
        f = f.note(format!(
            "{}: {n} lines{cv} ({})",
            sig.id(),
            if peers.is_empty() {
                "no upstream named".to_string()
            } else {
                peers.join(", ")
            }
        ));
    }
    for sig in [
        Signature::NoLiveUpstreams,
        Signature::ServerTemporarilyDisabled,
    ] {
        let n = logs.count(sig);
        if n > 0 {
            f = f.note(format!(
                "{}: {n} lines (failures count towards max_fails and can take whole upstreams out for fail_timeout)",
                sig.id()
            ));
        }
    }
    f = f.note(format!(
        "read the last {} of {}{}",
        human_bytes(logs.bytes_read),
        logs.path.display(),
        if logs.whole_file {
            " (the whole file)"
        } else {
            ""
        }
    ));
    match &logs.access_log {
        Some(a) if a.joined => {
            f = f.note(format!(
                "joined with {} records of {}",
                a.records,
                a.path.display()
            ))
        }
        Some(a) => {
            for n in &a.notes {
                f = f.note(format!("access log {}: {n}", a.path.display()));
            }
        }
        None => f = f.note(
            "no access log read: whether clients saw these failures is unknown (give --access-log)",
        ),
    }
    f = f.help("make nginx give up idle connections first: an upstream `keepalive_timeout` shorter than the backend's idle timeout (rule U007; `upkeep probe` measures it); `upkeep logs` breaks the failures down per upstream and minute");
    let evidence = visible.unwrap_or(0) * 1000 + lines;
    vec![Ranked {
        finding: f,
        evidence,
        measured: true,
    }]
}

pub(crate) fn human_bytes(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64)
    } else if n >= 1 << 10 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} bytes")
    }
}
