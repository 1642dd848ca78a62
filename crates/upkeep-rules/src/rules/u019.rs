use upkeep_diag::{Finding, Severity};
use upkeep_model::{RouteId, Wire};

use crate::context::Ctx;
use crate::registry::RuleInfo;

pub const INFO: RuleInfo = RuleInfo {
    id: "U019",
    name: "http2-bodiless-responses-not-pooled",
    severity: Severity::Warning,
    fixable: false,
    summary: "An HTTP/2 route that only sends HEAD requests never gets its connection back into the pool.",
    doc: r#"## What it finds
A `proxy_http_version 2` route to an upstream with an idle pool whose
requests all get responses without a body — `proxy_method HEAD` — where those
requests have the pool to themselves: the pool is per location (`local`,
the default since nginx 1.29.7), or every HTTP/2 route of the upstream is
HEAD-only.

## Why it breaks reuse
A bodiless HTTP/2 response ends its stream in the HEADERS frame (HEAD, 204,
304, `Content-Length: 0`). ngx_http_proxy_v2_module then finishes the
request at once and marks the connection reusable only when it has no
control-frame reply waiting to be sent (`ngx_http_proxy_v2_process_header`
requires `ctx->out == NULL`; `ngx_http_proxy_v2_filter_init` finishes
without marking it). On a new connection the acknowledgement of the
backend's SETTINGS is always waiting, so the connection is closed; the next
request opens a new one, which starts with SETTINGS again. A pool that only
serves such responses never reuses a connection, and nothing is logged.
Reported as nginx/nginx#1726 (affects 1.29.4 onward, still in 1.31.5; no fix
merged: PR #1731 open, PR #1754 closed); the same code is in Angie 1.12.

## Example
```nginx
location = /healthz {
    proxy_method HEAD;
    proxy_http_version 2;
    proxy_pass http://app;            # a new connection per check
}
```

## Fix
If the backend speaks HTTP/1.1, use `proxy_http_version 1.1;` for this
route; otherwise expect one connection per request here until nginx fixes
it. No automatic fix: whether the backend accepts HTTP/1.1 is not in the
configuration.

## References
- https://github.com/nginx/nginx/issues/1726, https://github.com/nginx/nginx/pull/1731, https://github.com/nginx/nginx/pull/1754, https://github.com/nginx/nginx-tests/pull/114
- nginx source: src/http/modules/ngx_http_proxy_v2_module.c, `ngx_http_proxy_v2_process_header()`, `ngx_http_proxy_v2_filter_init()`, `ngx_http_proxy_v2_send_settings_ack()`
"#,
};

/// Whether every request of route `r` is a HEAD request.
fn head_only(ctx: &Ctx, r: RouteId) -> bool {
    ctx.model
        .setting(ctx.model.route(r).block, "proxy_method")
        .and_then(|s| s.arg(0))
        .is_some_and(|m| m.eq_ignore_ascii_case("HEAD"))
}

pub fn check(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    for r in ctx.keepalive_routes() {
        if ctx.model.wire(r) != Wire::Http2 || !head_only(ctx, r) {
            continue;
        }
        // The route has its pool to itself when the pool is per location,
        // or when no HTTP/2 route with bodies shares it.
        let alone = ctx.keepalive_upstreams_of(r).into_iter().all(|u| {
            let up = ctx.model.upstream(u);
            !up.pool_shared_across_locations(ctx.version)
                || ctx
                    .model
                    .routes_to(u)
                    .filter(|&o| ctx.model.wire(o) == Wire::Http2)
                    .all(|o| head_only(ctx, o))
        });
        if !alone {
            continue;
        }
        let route = ctx.model.route(r);
        let f = INFO
            .finding(format!(
                "{} sends only HEAD requests over HTTP/2 to keepalive upstream `{}`: a bodiless HTTP/2 response does not return a new connection to the pool (nginx/nginx#1726), so every request opens a connection",
                ctx.describe(route.block),
                ctx.keepalive_upstream_names(r)
            ))
            .at(route.pass.span())
            .with_label("HTTP/2, HEAD only")
            .help("use `proxy_http_version 1.1;` here if the backend speaks HTTP/1.1");
        out.push(ctx.with_version_note(f));
    }
    out
}
