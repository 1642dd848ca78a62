use upkeep_diag::{Finding, Severity};
use upkeep_model::BlockKind;

use crate::context::Ctx;
use crate::registry::RuleInfo;

pub const INFO: RuleInfo = RuleInfo {
    id: "U009",
    name: "pool-exceeds-backend-capacity",
    severity: Severity::Warning,
    fixable: false,
    summary: "`keepalive` × worker processes exceeds the backend's declared maximum connections.",
    doc: r#"## What it finds
An upstream whose idle pool, multiplied by the number of worker processes,
is larger than the maximum number of connections its backend accepts
(declared with `max-connections=N` inline, in upkeep.toml or `--backend`).
`worker_processes auto` is resolved with `--cpus` (the CLI passes this
host's core count by default).

## Why it breaks reuse
`keepalive N` is per worker process and per upstream block: with W workers nginx may keep N × W idle
connections open to the backend, on top of the ones in use. A backend that
caps its connections refuses or queues the surplus, and idle connections
held by one worker are not available to another.

## Example
```nginx
worker_processes 8;
http {
    upstream app {
        # upkeep: backend max-connections=100
        server 127.0.0.1:8000;
        keepalive 32;            # 8 × 32 = 256 idle connections
    }
}
```

## Fix
Lower `keepalive` to at most the backend's capacity divided by the number of
workers, or raise the backend's limit.

## References
- https://nginx.org/en/docs/http/ngx_http_upstream_module.html#keepalive ("sets the maximum number of idle keepalive connections to upstream servers that are preserved in the cache of each worker process")
- https://nginx.org/en/docs/ngx_core_module.html#worker_processes
"#,
};

pub fn check(ctx: &Ctx) -> Vec<Finding> {
    if ctx.model.block(0).kind != BlockKind::Main {
        return Vec::new(); // worker_processes is unknown for a snippet
    }
    let workers: Option<u64> = match ctx.model.main.worker_processes {
        None => Some(1),
        Some(d) => match d.args().first().map(|a| a.text().into_owned()).as_deref() {
            Some("auto") => ctx.opts.cpus.map(u64::from),
            Some(n) => n.parse().ok(),
            None => None,
        },
    };
    let Some(workers) = workers else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (uid, up) in ctx.model.upstreams.iter().enumerate() {
        let size = up.pool(ctx.version).size();
        if size == 0 {
            continue;
        }
        let Some(cap) = ctx.backend(uid).and_then(|b| b.max_connections) else {
            continue;
        };
        if size * workers <= cap {
            continue;
        }
        let at = up
            .keepalive
            .map(|d| d.span())
            .unwrap_or_else(|| ctx.head(up.directive));
        let mut f = INFO
            .finding(format!(
                "upstream `{}` may keep {} idle connections ({} per worker × {} workers) but its backend accepts at most {} ({})",
                up.name,
                size * workers,
                size,
                workers,
                cap,
                ctx.backend(uid).map(|b| b.source.as_str()).unwrap_or("")
            ))
            .at(at)
            .with_label(format!("{size} per worker"))
            .help(format!("lower `keepalive` to {} or less, or raise the backend's connection limit", (cap / workers).max(1)));
        if let Some(wp) = ctx.model.main.worker_processes {
            f = f.related(wp.span(), "worker processes");
        }
        out.push(f);
    }
    out
}
