use upkeep_diag::{Finding, Severity};

use crate::context::Ctx;
use crate::registry::RuleInfo;

pub const INFO: RuleInfo = RuleInfo {
    id: "U016",
    name: "keepalive-timeout-without-pool",
    severity: Severity::Info,
    fixable: false,
    summary: "`keepalive_timeout`/`keepalive_requests`/`keepalive_time` in an upstream without a pool do nothing.",
    doc: r#"## What it finds
`keepalive_timeout`, `keepalive_requests` or `keepalive_time` inside an
`upstream{}` block that has no idle pool: no `keepalive` line on nginx before
1.29.7, or `keepalive 0`.

## Why it matters
These directives belong to `ngx_http_upstream_keepalive_module` and only
govern connections in its cache (`ngx_http_upstream_free_keepalive_peer`
checks `requests` and `time`; the idle timer is the `keepalive_timeout`).
Without the module installed for the upstream they have no effect, and the
configuration suggests a pool that does not exist.

## Example
```nginx
upstream app {
    server 127.0.0.1:8000;
    keepalive_timeout 30s;      # no keepalive: nothing is cached
}
```

## Fix
Add `keepalive N;` (see U001) or remove the lines.

## References
- https://nginx.org/en/docs/http/ngx_http_upstream_module.html#keepalive, https://nginx.org/en/docs/http/ngx_http_upstream_module.html#keepalive_timeout, https://nginx.org/en/docs/http/ngx_http_upstream_module.html#keepalive_requests, https://nginx.org/en/docs/http/ngx_http_upstream_module.html#keepalive_time
"#,
};

pub fn check(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    for up in &ctx.model.upstreams {
        if up.pool(ctx.version).size() > 0 {
            continue;
        }
        for d in [
            up.keepalive_timeout,
            up.keepalive_requests,
            up.keepalive_time,
        ]
        .into_iter()
        .flatten()
        {
            let f = INFO
                .finding(format!(
                    "`{}` does nothing: upstream `{}` has no idle connection pool",
                    d.name().text(),
                    up.name
                ))
                .at(d.span())
                .with_label("no effect without a pool")
                .related(ctx.head(up.directive), "this upstream has no `keepalive`")
                .help("add `keepalive 32;` to the upstream (U001), or remove this line");
            out.push(ctx.with_version_note(f));
        }
    }
    out
}
