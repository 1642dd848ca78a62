use upkeep_diag::{Applicability, Finding, Fix, Severity};
use upkeep_facts::landmarks;
use upkeep_model::{Pool, Protocol, BALANCER_DIRECTIVES};

use crate::context::Ctx;
use crate::edits;
use crate::registry::RuleInfo;

pub const INFO: RuleInfo = RuleInfo {
    id: "U001",
    name: "upstream-without-keepalive",
    severity: Severity::Warning,
    fixable: true,
    summary: "An upstream reached by HTTP, FastCGI or gRPC routes has no idle connection pool.",
    doc: r#"## What it finds
An `upstream{}` block that HTTP (`proxy_pass`), FastCGI (`fastcgi_pass`) or gRPC
(`grpc_pass`) routes send requests to, but that has no effective idle pool:
no `keepalive` directive on nginx before 1.29.7, or `keepalive 0` on any
version.

## Why it breaks reuse
The pool of idle upstream connections is kept by
`ngx_http_upstream_keepalive_module`. Up to nginx 1.29.6 it is installed for an
upstream only when the block has a `keepalive N` line; since 1.29.7
(commit 4fbe4b627) every explicit `upstream{}` gets `keepalive 32 local` by
default, and `keepalive 0` switches the module off for that block
(`ngx_http_upstream_keepalive_init_main_conf` skips it). Without the module, nginx closes the upstream
connection after every response: each request pays a TCP (and TLS) handshake,
and the closed sockets sit in TIME_WAIT on the nginx host until the ephemeral
ports run out under load. Toward a unix socket there is no TIME_WAIT and no
port to run out of; the cost is a `connect()` by nginx and an `accept()` by the
backend for every request.

Two kinds of routes gain next to nothing from a pool, and an upstream that
only they reach is reported as an info: WebSocket-only locations (they send
`Connection: upgrade`; an upgraded connection is never returned to a pool)
and metrics scrapes (a location named like `/metrics`, asked every few
seconds by one scraper).

## Example
```nginx
upstream app {
    server 127.0.0.1:8000;
}
server {
    location / { proxy_pass http://app; }
}
```

## Fix
Add `keepalive 32;` to the upstream block, after any load-balancing method
directive (`ip_hash`, `least_conn`, `hash`, `random`: before 1.29.7 the method
must come first, see U006), or delete `keepalive 0;`. `keepalive N` is per
worker process and does not limit the number of connections; it is the number
of idle ones kept. HTTP routes on nginx before 1.29.7 also
need `proxy_http_version 1.1;` and `proxy_set_header Connection "";` (U002,
U003); FastCGI routes need `fastcgi_keep_conn on;` (U011).

## References
- https://nginx.org/en/docs/http/ngx_http_upstream_module.html#keepalive
- nginx source: src/http/modules/ngx_http_upstream_keepalive_module.c, `ngx_http_upstream_keepalive_init_main_conf()`, `ngx_http_upstream_free_keepalive_peer()`
- nginx CHANGES 1.29.7: "now the keepalive directive in the upstream block is enabled by default"
"#,
};

/// Why a route would gain nothing from a pool, if so: it only carries
/// WebSocket upgrades (its effective `Connection` header is the literal
/// `upgrade`), or it serves a metrics scrape.
fn low_value_route(ctx: &Ctx, r: upkeep_model::RouteId) -> Option<&'static str> {
    let route = ctx.model.route(r);
    if route.protocol == Protocol::Http {
        if let Some(conn) = ctx.headers(r).entry("Connection") {
            if conn.args.get(1).is_some_and(|v| v.text().eq_ignore_ascii_case("upgrade")) {
                return Some("WebSocket-only");
            }
        }
    }
    let location = ctx.model.block(route.block).directive?;
    let path = location.args.last()?.text().to_ascii_lowercase();
    path.contains("metrics").then_some("a metrics scrape")
}

pub fn check(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    for (uid, up) in ctx.model.upstreams.iter().enumerate() {
        let pool = up.pool(ctx.version);
        if pool.size() > 0 {
            continue;
        }
        let routes: Vec<_> = ctx
            .model
            .routes_to(uid)
            .filter(|&r| ctx.model.route(r).protocol.can_keep_alive())
            .collect();
        if routes.is_empty() {
            continue;
        }
        let low_value: Vec<&'static str> = routes
            .iter()
            .filter_map(|&r| low_value_route(ctx, r))
            .collect();
        let all_low_value = low_value.len() == routes.len();
        // Unix sockets have no TIME_WAIT: say what a new connection costs there.
        let unix_only = !up.servers.is_empty()
            && up.servers.iter().all(|s| s.address.starts_with("unix:"));
        let cost = if unix_only {
            "every request opens and closes a connection to its unix socket (a connect by nginx and an accept by the backend per request; unix sockets leave no TIME_WAIT)"
        } else {
            "every request opens and closes a TCP connection (TIME_WAIT piles up on the nginx host)"
        };
        let mut finding = match pool {
            Pool::Disabled { directive } => INFO
                .finding(format!(
                    "`keepalive 0` turns off the idle connection pool of upstream `{}`: {cost}",
                    up.name
                ))
                .at(directive.span)
                .with_label("pool disabled here")
                .related(ctx.head(up.directive), "in this upstream"),
            _ => INFO
                .finding(format!(
                    "upstream `{}` has no `keepalive`: {cost}",
                    up.name
                ))
                .at(ctx.head(up.directive))
                .with_label(format!("no idle pool before nginx {}", landmarks::KEEPALIVE_BY_DEFAULT)),
        };
        for &r in routes.iter().take(3) {
            let route = ctx.model.route(r);
            finding = finding.related(
                route.pass.span,
                format!("requests reach it from {}", ctx.describe(route.block)),
            );
        }
        if routes.len() > 3 {
            finding = finding.note(format!("and {} more routes", routes.len() - 3));
        }
        if all_low_value {
            let mut kinds = low_value.clone();
            kinds.sort_unstable();
            kinds.dedup();
            finding.severity = Severity::Info;
            finding = finding.note(format!(
                "info only: every route to it is {}, where a pool saves little (upgraded connections are never pooled; a scrape comes every few seconds)",
                kinds.join(" or ")
            ));
        }
        let fix = match pool {
            Pool::Disabled { directive } if ctx.version >= landmarks::KEEPALIVE_BY_DEFAULT => Fix {
                applicability: Applicability::Safe,
                description: format!("delete `keepalive 0;` so upstream `{}` pools connections (32 per worker by default)", up.name),
                edits: vec![edits::delete_directive(ctx, directive)],
            },
            Pool::Disabled { directive } => Fix {
                applicability: Applicability::Safe,
                description: format!("keep up to 32 idle connections per worker to upstream `{}`", up.name),
                edits: vec![edits::replace_args(directive, "32")],
            },
            _ => {
                let Some(edit) = edits::insert_in_block(ctx, up.block, "keepalive 32;", |d| {
                    d.name_is("server") || BALANCER_DIRECTIVES.iter().any(|b| d.name_is(b))
                }) else {
                    out.push(finding);
                    continue;
                };
                Fix {
                    applicability: Applicability::Safe,
                    description: format!("add `keepalive 32;` to upstream `{}`", up.name),
                    edits: vec![edit],
                }
            }
        };
        let help = match pool {
            Pool::Disabled { .. } if ctx.version >= landmarks::KEEPALIVE_BY_DEFAULT => {
                "delete `keepalive 0;` (nginx then keeps 32 idle connections per worker)"
                    .to_string()
            }
            _ => "add `keepalive 32;` after the balancing method and server lines".to_string(),
        };
        // Before 1.29.7 a pool alone is not enough for HTTP routes: say so now
        // rather than after the fix.
        if ctx.version < landmarks::KEEPALIVE_BY_DEFAULT {
            let needs_more = routes.iter().any(|&r| {
                let route = ctx.model.route(r);
                route.protocol == Protocol::Http
                    && (ctx.http_version(r).is("1.0")
                        || ctx.headers(r).entry("Connection").is_none())
            });
            if needs_more {
                finding = finding.note(
                    "its HTTP routes also need `proxy_http_version 1.1;` and `proxy_set_header Connection \"\";` before nginx 1.29.7 (U002, U003)",
                );
            }
        }
        finding = finding.help(help).with_fix(fix);
        out.push(ctx.with_version_note(finding));
    }
    out
}
