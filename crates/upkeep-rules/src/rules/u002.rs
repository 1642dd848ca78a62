use std::collections::BTreeMap;

use upkeep_diag::{Applicability, Finding, Fix, Severity};
use upkeep_model::{Protocol, RouteId, Value};

use crate::context::Ctx;
use crate::edits;
use crate::registry::RuleInfo;

pub const INFO: RuleInfo = RuleInfo {
    id: "U002",
    name: "proxy-http-version-1.0",
    severity: Severity::Error,
    fixable: true,
    summary: "A route proxies to a keepalive upstream over HTTP/1.0, so the pool stays empty.",
    doc: r#"## What it finds
A `proxy_pass` route to an upstream with an idle pool whose effective
`proxy_http_version` is `1.0`: set explicitly, or the default on nginx before
1.29.7 (1.1.4–1.29.6 default to 1.0; 1.29.7 changed it to 1.1, commit
6bb27a631).

## Why it breaks reuse
With `proxy_http_version 1.0` nginx writes `HTTP/1.0` in the request line
and, before 1.29.7, also `Connection: close`. An HTTP/1.0 request is not
persistent unless the backend goes out of its way, so a compliant backend
closes after the response; and whenever the backend answers with an HTTP/1.0
status line nginx itself marks the connection as closing
(`ngx_http_proxy_process_status_line` sets `connection_close`, verified). The
keepalive module only caches connections that are still usable
(`ngx_http_upstream_free_keepalive_peer`), so the pool you configured stays
empty and every request opens a new connection.

## Example
```nginx
upstream app { server 127.0.0.1:8000; keepalive 32; }
server {
    location / { proxy_pass http://app; }   # nginx 1.28: HTTP/1.0 by default
}
```

## Fix
`proxy_http_version 1.1;` in the narrowest block that covers every affected
route (or change the explicit `1.0`).

## References
- https://nginx.org/en/docs/http/ngx_http_proxy_module.html#proxy_http_version
- nginx source: src/http/modules/ngx_http_proxy_module.c, `ngx_http_proxy_create_request()` (request line, `Connection`), `ngx_http_proxy_process_status_line()` (an HTTP/1.0 status line closes)
"#,
};

pub fn check(ctx: &Ctx) -> Vec<Finding> {
    let mut explicit: BTreeMap<(u32, u32), (upkeep_model::Setting, Vec<RouteId>)> = BTreeMap::new();
    let mut defaulted: Vec<RouteId> = Vec::new();
    for r in ctx.keepalive_routes() {
        let route = ctx.model.route(r);
        if route.protocol != Protocol::Http {
            continue;
        }
        match ctx.http_version(r) {
            Value::Set(s) if s.arg(0).as_deref() == Some("1.0") => {
                let key = (s.directive.span.file.0, s.directive.span.start);
                explicit.entry(key).or_insert((s, Vec::new())).1.push(r);
            }
            Value::Default("1.0") => defaulted.push(r),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (setting, routes) in explicit.into_values() {
        let mut f = INFO
            .finding(format!(
                "`proxy_http_version 1.0` applies to {} route(s) that proxy to a keepalive upstream: nginx sends HTTP/1.0 and the backend closes the connection after each response",
                routes.len()
            ))
            .at(setting.directive.span)
            .with_label("HTTP/1.0 here");
        for &r in routes.iter().take(3) {
            let route = ctx.model.route(r);
            f = f.related(
                route.pass.span,
                format!("{} inherits it", ctx.describe(route.block)),
            );
        }
        f = f.help("use `proxy_http_version 1.1;`").with_fix(Fix {
            applicability: Applicability::Safe,
            description: "set `proxy_http_version 1.1`".into(),
            edits: vec![edits::replace_args(setting.directive, "1.1")],
        });
        out.push(f);
    }
    if defaulted.is_empty() {
        return out;
    }
    let fix = edits::SharedInsert::covering_routes(ctx, &defaulted, "proxy_http_version 1.1;", |d| {
        d.name.value.starts_with(b"proxy_")
    });
    for &r in &defaulted {
        let route = ctx.model.route(r);
        let ups = ctx.keepalive_upstream_names(r);
        let mut f = INFO
            .finding(format!(
                "{} proxies to keepalive upstream `{}` over HTTP/1.0 ({}): the idle pool stays empty",
                ctx.describe(route.block),
                ups,
                ctx.default_of_target("the default before nginx 1.29.7")
            ))
            .at(route.pass.span)
            .with_label("HTTP/1.0 request (default)");
        if let Some(fix) = &fix {
            f = fix.offer(ctx, f);
        }
        out.push(ctx.with_version_note(f));
    }
    out
}
