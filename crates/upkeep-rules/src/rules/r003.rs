use upkeep_diag::{Applicability, Finding, Fix, Severity};
use upkeep_facts::NginxVersion;
use upkeep_model::BlockKind;

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
`worker_shutdown_timeout 30s;` (the fix adds it to the main context; pick a
value above your longest legitimate request).

## References
- https://nginx.org/en/docs/ngx_core_module.html#worker_shutdown_timeout
- nginx source: src/core/ngx_connection.c, `ngx_close_idle_connections()` (idle connections closed on reload)
"#,
};

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
            .find(|d| d.block.is_none())
    });
    let primary = match (
        ctx.model.main.worker_processes,
        ctx.model.http.and_then(|h| ctx.model.block(h).directive),
    ) {
        (Some(wp), _) => wp.span,
        (None, Some(http)) => ctx.head(http),
        (None, None) => return Vec::new(),
    };
    let mut f = INFO
        .finding("no `worker_shutdown_timeout`: after a reload, old workers keep running until their last busy connection ends")
        .at(primary)
        .with_label("no worker_shutdown_timeout in the main context")
        .help("add `worker_shutdown_timeout 30s;` (above your longest legitimate request)");
    let edit = match anchor {
        Some(a) if a.span.file == ctx.model.source.trees()[0].0.id => {
            Some(edits::insert_after(ctx, a, "worker_shutdown_timeout 30s;"))
        }
        _ => edits::insert_in_block(ctx, 0, "worker_shutdown_timeout 30s;", |_| false),
    };
    if let Some(edit) = edit {
        f = f.with_fix(Fix {
            applicability: Applicability::Safe,
            description: "add `worker_shutdown_timeout 30s;`".into(),
            edits: vec![edit],
        });
    }
    vec![f]
}
