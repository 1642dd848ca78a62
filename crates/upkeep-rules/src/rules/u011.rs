use std::collections::BTreeMap;

use upkeep_diag::{Applicability, Finding, Fix, Severity};
use upkeep_model::{Pool, Protocol, RouteId, Value};

use crate::context::Ctx;
use crate::edits;
use crate::registry::RuleInfo;

pub const INFO: RuleInfo = RuleInfo {
    id: "U011",
    name: "fastcgi-keep-conn-off",
    severity: Severity::Error,
    fixable: true,
    summary: "`fastcgi_pass` to a keepalive upstream without `fastcgi_keep_conn on`.",
    doc: r#"## What it finds
A `fastcgi_pass` route to an upstream with an idle pool whose effective
`fastcgi_keep_conn` is `off` (the default). Also, as an info note: a uwsgi or
SCGI route to an upstream with an explicit `keepalive`, which can never work.

## Why it breaks reuse
FastCGI connections are cached only when nginx asks the application to keep
the connection open: with `fastcgi_keep_conn on` nginx sets the
`FCGI_KEEP_CONN` flag and only then sets `u->keepalive`; without it the
application closes after each request and the keepalive module has nothing to
cache. Since 1.29.7 the upstream pool exists by default, but FastCGI
connections are still not cached without `fastcgi_keep_conn on`. The uwsgi and SCGI protocols have no keep-alive:
their modules never set `u->keepalive`, so their connections are never cached.

## Example
```nginx
upstream php { server unix:/run/php/php-fpm.sock; keepalive 8; }
location ~ \.php$ {
    include fastcgi_params;
    fastcgi_pass php;            # fastcgi_keep_conn defaults to off
}
```

## Fix
`fastcgi_keep_conn on;` in the narrowest block covering the affected routes
(or change an explicit `off`). For uwsgi/SCGI, drop the useless `keepalive`
or switch the backend to HTTP.

## References
- https://nginx.org/en/docs/http/ngx_http_fastcgi_module.html#fastcgi_keep_conn, https://nginx.org/en/docs/http/ngx_http_upstream_module.html#keepalive
- nginx source: src/http/modules/ngx_http_fastcgi_module.c, `ngx_http_fastcgi_merge_loc_conf()` (`keep_conn` defaults to off); uwsgi and SCGI never mark a connection reusable
- `upkeep profiles`
"#,
};

pub fn check(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut explicit: BTreeMap<(u32, u32), (&upkeep_syntax::Directive, Vec<RouteId>)> =
        BTreeMap::new();
    let mut defaulted = Vec::new();
    for r in ctx.keepalive_routes() {
        let route = ctx.model.route(r);
        if route.protocol != Protocol::FastCgi {
            continue;
        }
        match ctx.model.value(route.block, "fastcgi_keep_conn") {
            Value::Set(s) if s.arg(0).as_deref() != Some("on") => {
                explicit
                    .entry((s.directive.span.file.0, s.directive.span.start))
                    .or_insert((s.directive, Vec::new()))
                    .1
                    .push(r);
            }
            Value::Default(_) | Value::Absent => defaulted.push(r),
            Value::Set(_) => {}
        }
    }
    for (d, routes) in explicit.into_values() {
        let mut f = INFO
            .finding(format!(
                "`fastcgi_keep_conn off` applies to {} FastCGI route(s) to keepalive upstreams: the application closes after every request",
                routes.len()
            ))
            .at(d.span)
            .with_label("FastCGI connections not kept");
        for &r in routes.iter().take(3) {
            let route = ctx.model.route(r);
            f = f.related(
                route.pass.span,
                format!("used by {}", ctx.describe(route.block)),
            );
        }
        f = f.help("use `fastcgi_keep_conn on;`").with_fix(Fix {
            applicability: Applicability::Safe,
            description: "set `fastcgi_keep_conn on`".into(),
            edits: vec![edits::replace_args(d, "on")],
        });
        out.push(f);
    }
    if !defaulted.is_empty() {
        let writable = ctx.available("fastcgi_keep_conn", false);
        let fix = if writable {
            edits::SharedInsert::covering_routes(ctx, &defaulted, "fastcgi_keep_conn on;", |d| {
                d.name.value.starts_with(b"fastcgi_") && !d.name_is("fastcgi_param")
            })
        } else {
            None
        };
        for &r in &defaulted {
            let route = ctx.model.route(r);
            let ups = ctx.keepalive_upstream_names(r);
            let mut f = INFO
                .finding(format!(
                    "{} passes FastCGI requests to keepalive upstream `{}` without `fastcgi_keep_conn on`: the application closes after every request and the pool stays empty",
                    ctx.describe(route.block),
                    ups
                ))
                .at(route.pass.span)
                .with_label("fastcgi_keep_conn is off (default)");
            if let Some(fix) = &fix {
                f = fix.offer(ctx, f);
            }
            out.push(f);
        }
    }
    // uwsgi / SCGI upstreams with an explicit pool.
    for (uid, up) in ctx.model.upstreams.iter().enumerate() {
        let Pool::Explicit { directive, .. } = up.pool(ctx.version) else {
            continue;
        };
        let protocols: Vec<Protocol> = ctx
            .model
            .routes_to(uid)
            .map(|r| ctx.model.route(r).protocol)
            .collect();
        let Some(p) = protocols
            .iter()
            .find(|p| matches!(p, Protocol::Uwsgi | Protocol::Scgi))
        else {
            continue;
        };
        if protocols.iter().any(|p| p.can_keep_alive()) {
            continue;
        }
        let mut f = INFO
            .finding(format!(
                "upstream `{}` is only used by {}_pass, and {} connections are never kept alive: its `keepalive` does nothing",
                up.name,
                p.prefix(),
                p.prefix()
            ))
            .at(directive.span)
            .with_label("no effect")
            .help("remove `keepalive` here, or talk HTTP to the backend to reuse connections");
        f.severity = Severity::Info;
        out.push(f);
    }
    out
}
