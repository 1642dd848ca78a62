use std::collections::BTreeMap;

use upkeep_diag::{Applicability, Edit, Finding, Fix, Severity};
use upkeep_facts::landmarks;
use upkeep_model::{Pool, Protocol, RouteId, UpstreamId, Value, BALANCER_DIRECTIVES};

use crate::context::Ctx;
use crate::edits;
use crate::pool_safety;
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
(or change an explicit `off`). A kept FastCGI connection holds a PHP-FPM
child even while idle, so the fix also sizes each pool to at most
(`pm.max_children` - 1) / `worker_processes` idle connections per worker,
which always leaves a child for a new connection. The children come from
`# upkeep: backend php-fpm max-children=N` (or upkeep.toml / `--backend`);
when they are not declared the fix assumes the shipped pool's 5 and is
unsafe. On nginx >= 1.29.7 with no `keepalive` line the finding is an info:
FastCGI without `fastcgi_keep_conn` behaves as before the default pool. For uwsgi/SCGI, drop the useless `keepalive`
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
            Value::Set(s) if !s.arg_is(0, "on") => {
                explicit
                    .entry((s.directive.span().file.0, s.directive.span().start))
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
            .at(d.span())
            .with_label("FastCGI connections not kept");
        for &r in routes.iter().take(3) {
            let route = ctx.model.route(r);
            f = f.related(
                route.pass.span(),
                format!("used by {}", ctx.describe(route.block)),
            );
        }
        f = f.help("use `fastcgi_keep_conn on;`");
        if routes.iter().all(|&r| only_implicit_pools(ctx, r)) {
            f.severity = Severity::Info;
        }
        let ups: Vec<UpstreamId> = routes
            .iter()
            .flat_map(|&r| ctx.keepalive_upstreams_of(r))
            .collect();
        match sized_pools(ctx, &ups) {
            Ok(sizing) => {
                f = f.with_fix(sizing.fix(
                    "set `fastcgi_keep_conn on`".into(),
                    vec![edits::replace_args(d, "on")],
                ));
            }
            Err(why) => f = f.note(why),
        }
        out.push(f);
    }
    if !defaulted.is_empty() {
        let writable = ctx.available("fastcgi_keep_conn", false);
        let fix = if writable {
            edits::SharedInsert::covering_routes(ctx, &defaulted, "fastcgi_keep_conn on;", |d| {
                d.name().value().starts_with(b"fastcgi_") && !d.name_is("fastcgi_param")
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
                .at(route.pass.span())
                .with_label("fastcgi_keep_conn is off (default)");
            if only_implicit_pools(ctx, r) {
                f.severity = Severity::Info;
                f = f.note(format!(
                    "nginx {} pools every upstream by default, but FastCGI connections are only kept with `fastcgi_keep_conn on`: nothing regresses here",
                    landmarks::KEEPALIVE_BY_DEFAULT
                ));
            }
            if let Some(fix) = &fix {
                f = fix.offer(ctx, f);
                // Keeping FastCGI connections pins an application child
                // per idle connection: size the pools first.
                match sized_pools(ctx, &ctx.keepalive_upstreams_of(r)) {
                    Ok(sizing) => {
                        if let Some(offered) = f.fix.take() {
                            f = f.with_fix(sizing.fix(offered.description, offered.edits));
                        }
                    }
                    Err(why) => {
                        f.fix = None;
                        f = f.note(why);
                    }
                }
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
            .at(directive.span())
            .with_label("no effect")
            .help("remove `keepalive` here, or talk HTTP to the backend to reuse connections");
        f.severity = Severity::Info;
        out.push(f);
    }
    out
}

/// Whether every keepalive upstream route `r` reaches pools only by
/// nginx >= 1.29.7's default (no `keepalive` line).
fn only_implicit_pools(ctx: &Ctx, r: RouteId) -> bool {
    let ups = ctx.keepalive_upstreams_of(r);
    !ups.is_empty()
        && ups
            .iter()
            .all(|&u| matches!(ctx.model.upstream(u).pool(ctx.version), Pool::Implicit { .. }))
}

/// The pool sizes that go with `fastcgi_keep_conn on`: each idle kept
/// connection holds an application child, so each upstream's pool must
/// leave a child free (pool_safety::fastcgi_capacity).
struct Sizing {
    edits: Vec<Edit>,
    notes: Vec<String>,
    known: bool,
}

impl Sizing {
    fn fix(self, description: String, mut edits: Vec<Edit>) -> Fix {
        edits.extend(self.edits);
        edits.sort();
        edits.dedup();
        let mut description = description;
        if !self.notes.is_empty() {
            description.push_str(&format!("; {}", self.notes.join("; ")));
        }
        if !self.known {
            description.push_str(
                "; unsafe: the application's capacity is assumed, declare it with `# upkeep: backend php-fpm max-children=N`",
            );
        }
        Fix {
            applicability: if self.known {
                Applicability::Safe
            } else {
                Applicability::Unsafe
            },
            description,
            edits,
        }
    }
}

fn sized_pools(ctx: &Ctx, ups: &[UpstreamId]) -> Result<Sizing, String> {
    let mut sizing = Sizing {
        edits: Vec::new(),
        notes: Vec::new(),
        known: true,
    };
    let mut seen = Vec::new();
    for &u in ups {
        if seen.contains(&u) {
            continue;
        }
        seen.push(u);
        let up = ctx.model.upstream(u);
        let cap = pool_safety::fastcgi_capacity(ctx, u);
        sizing.known &= cap.known;
        if cap.per_worker == 0 {
            return Err(format!(
                "keeping FastCGI connections to upstream `{}` would pin every application child ({}): leave `fastcgi_keep_conn` off or raise the children",
                up.name, cap.why
            ));
        }
        let keepalive = format!("keepalive {};", cap.per_worker);
        match up.pool(ctx.version) {
            Pool::Explicit { size, directive } if size > cap.per_worker => {
                sizing
                    .edits
                    .push(edits::replace_args(directive, &cap.per_worker.to_string()));
                sizing.notes.push(format!(
                    "lower upstream `{}`'s `keepalive {size}` to {} ({})",
                    up.name, cap.per_worker, cap.why
                ));
            }
            Pool::Implicit { size } if size > cap.per_worker => {
                let edit = edits::insert_in_block(ctx, up.block, &keepalive, |d| {
                    d.name_is("server") || BALANCER_DIRECTIVES.iter().any(|b| d.name_is(b))
                })
                .ok_or_else(|| format!("no place to write `{keepalive}` in upstream `{}`", up.name))?;
                sizing.edits.push(edit);
                sizing.notes.push(format!(
                    "add `{keepalive}` to upstream `{}` (the default pool of {size} is more than {})",
                    up.name, cap.why
                ));
            }
            _ => {}
        }
    }
    Ok(sizing)
}
