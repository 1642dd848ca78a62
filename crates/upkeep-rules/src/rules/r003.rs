use upkeep_diag::{Applicability, Finding, Fix, Severity};
use upkeep_facts::{describe_duration, format_duration, parse_duration, NginxVersion};
use upkeep_model::{BlockKind, Value};

use crate::context::Ctx;
use crate::edits;
use crate::registry::RuleInfo;

pub const INFO: RuleInfo = RuleInfo {
    id: "R003",
    name: "no-worker-shutdown-timeout",
    severity: Severity::Info,
    fixable: true,
    summary: "No `worker_shutdown_timeout`: after a reload, old workers live as long as their busiest connection.",
    doc: r#"## What it finds
A complete nginx.conf (main context) without `worker_shutdown_timeout`
(available since nginx 1.11.11; the default is none, so old workers wait
forever).

## Why it matters
On reload, old workers stop caching upstream connections and close their
idle client and upstream keep-alive connections at once
(`ngx_close_idle_connections`). Connections still in use —
long polls, WebSockets, slow downloads, a client that keeps its keep-alive
connection busy — keep the old worker alive with its share of
`worker_connections` and its memory, for as long as they last. Frequent
reloads then pile up old workers.

## Example
```nginx
worker_processes auto;
events { worker_connections 1024; }
```

## Fix
`worker_shutdown_timeout` above the longest legitimate request. When it
expires, the old worker closes whatever is still open: a WebSocket, a long
poll, an upload in progress. So the fix is unsafe (`fix --unsafe-fixes`):
the value is a trade-off only the operator can make. upkeep suggests the
longest timeout the configuration itself allows a request to stay quiet
(`proxy_read_timeout`, `grpc_read_timeout`, `fastcgi_read_timeout`,
`client_body_timeout`, `send_timeout`, and the effective
`proxy_read_timeout` of every WebSocket location, 60 s by default), and
30 s when none is longer.

## References
- https://nginx.org/en/docs/ngx_core_module.html#worker_shutdown_timeout
- nginx source: src/core/ngx_connection.c, `ngx_close_idle_connections()` (idle connections closed on reload)
"#,
};

/// Timeouts after which nginx gives up on a quiet request: the longest one
/// is how long a legitimate request can take between two reads or writes.
const REQUEST_TIMEOUTS: &[&str] = &[
    "proxy_read_timeout",
    "proxy_send_timeout",
    "grpc_read_timeout",
    "fastcgi_read_timeout",
    "uwsgi_read_timeout",
    "scgi_read_timeout",
    "client_body_timeout",
    "send_timeout",
];

/// Suggested when the configuration sets no longer timeout (the value most
/// guides give).
const FLOOR_MS: u64 = 30_000;

/// The longest request timeout of the configuration, and where it is set:
/// explicit timeouts anywhere, and the effective `proxy_read_timeout` of
/// WebSocket locations (those that pass `Upgrade`), default included.
fn longest_request_timeout(ctx: &Ctx) -> Option<(u64, String)> {
    let mut best: Option<(u64, String)> = None;
    let mut consider = |ms: u64, why: String| {
        if best.as_ref().is_none_or(|b| ms > b.0) {
            best = Some((ms, why));
        }
    };
    // WebSocket locations first: at equal values they say more.
    for (r, route) in ctx.model.routes.iter().enumerate() {
        if ctx.headers(r).entry("Upgrade").is_none() {
            continue;
        }
        let read = ctx.model.value(route.block, "proxy_read_timeout");
        let Some(ms) = read.text().and_then(|t| parse_duration(&t).ok()) else {
            continue;
        };
        let why = match read {
            Value::Set(s) => format!(
                "the WebSocket {} (`{}` at {})",
                ctx.describe(route.block),
                ctx.text(s.directive.span()),
                ctx.place(s.directive.span())
            ),
            _ => format!(
                "the WebSocket {} (`proxy_read_timeout` default {})",
                ctx.describe(route.block),
                describe_duration(ms)
            ),
        };
        consider(ms, why);
    }
    for block in &ctx.model.blocks {
        for d in block.directives() {
            let name = d.name().text();
            let (Some(value), 1) = (d.args().first(), d.args().len()) else {
                continue;
            };
            if !REQUEST_TIMEOUTS.contains(&name.as_ref()) {
                continue;
            }
            if let Ok(ms) = parse_duration(&value.text()) {
                consider(ms, format!("`{}` at {}", ctx.text(d.span()), ctx.place(d.span())));
            }
        }
    }
    best
}

pub fn check(ctx: &Ctx) -> Vec<Finding> {
    if ctx.model.block(0).kind != BlockKind::Main
        || ctx.model.main.worker_shutdown_timeout.is_some()
        || ctx.version < NginxVersion::new(1, 11, 11)
        || ctx.model.http.is_none()
    {
        return Vec::new();
    }
    let anchor = ctx.model.main.worker_processes.or_else(|| {
        edits::own_directives(ctx, 0)
            .into_iter()
            .find(|d| d.block().is_none())
    });
    let primary = match (
        ctx.model.main.worker_processes,
        ctx.model.http.and_then(|h| ctx.model.block(h).directive),
    ) {
        (Some(wp), _) => wp.span(),
        (None, Some(http)) => ctx.head(http),
        (None, None) => return Vec::new(),
    };
    let (value_ms, basis) = match longest_request_timeout(ctx) {
        Some((ms, why)) if ms > FLOOR_MS => (
            ms,
            format!("the longest request timeout in this configuration: {why}"),
        ),
        _ => (
            FLOOR_MS,
            "no request timeout in this configuration is longer than 30s".to_string(),
        ),
    };
    let value = format_duration(value_ms);
    let line = format!("worker_shutdown_timeout {value};");
    let mut f = INFO
        .finding("no `worker_shutdown_timeout`: after a reload, old workers keep running until their last busy connection ends")
        .at(primary)
        .with_label("no worker_shutdown_timeout in the main context")
        .note(format!("suggested {value}: {basis}"))
        .help(format!(
            "add `{line}` if no legitimate request (WebSocket, long poll, upload) lasts longer: when it expires, old workers close what is still open"
        ));
    let edit = match anchor {
        Some(a) if a.span().file == ctx.model.source.trees()[0].0.id => {
            Some(edits::insert_after(ctx, a, &line))
        }
        _ => edits::insert_in_block(ctx, 0, &line, |_| false),
    };
    if let Some(edit) = edit {
        // Unsafe: the timeout closes WebSockets and long uploads still open
        // at a reload; only the operator knows how long those may last.
        f = f.with_fix(Fix {
            applicability: Applicability::Unsafe,
            description: format!(
                "add `{line}` (closes connections still open {value} after a reload)"
            ),
            edits: vec![edit],
        });
    }
    vec![f]
}
