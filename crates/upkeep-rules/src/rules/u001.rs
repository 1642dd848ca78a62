use upkeep_diag::{Applicability, Edit, Finding, Fix, Severity};
use upkeep_facts::landmarks;
use upkeep_model::{Pool, Protocol, UpstreamId, BALANCER_DIRECTIVES};

use crate::context::Ctx;
use crate::edits;
use crate::pool_safety;
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
The pool the fix creates is never worse than no pool: it comes with an
upstream `keepalive_timeout` below the backend's idle timeout (declared,
profile or probed), or below the shortest common backend default when the
backend is unknown (`1800ms`, under Gunicorn's 2 s), with the reason in a
comment; before nginx 1.15.3 there is no such directive and the fix is
unsafe. A FastCGI pool is sized like U011's. Otherwise:
add `keepalive 32;` to the upstream block, after any load-balancing method
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
        // Every `Connection` line is sent: all of them must say `upgrade`.
        let connection = ctx.headers(r).entries_for("Connection");
        if !connection.is_empty()
            && connection.iter().all(|c| {
                c.args()
                    .get(1)
                    .is_some_and(|v| v.text().eq_ignore_ascii_case("upgrade"))
            })
        {
            return Some("WebSocket-only");
        }
    }
    let location = ctx.model.block(route.block).directive?;
    let path = location.args().last()?.text().to_ascii_lowercase();
    path.contains("metrics").then_some("a metrics scrape")
}

pub fn check(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    for (uid, up) in ctx.model.upstreams.iter().enumerate() {
        let pool = up.pool(ctx.version);
        // A count nginx refuses is not `keepalive 0`: the configuration
        // does not load (upkeep_model::first_refused_value).
        if pool.size() > 0 || matches!(pool, Pool::Refused { .. }) {
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
                .at(directive.span())
                .with_label("pool disabled here")
                .related(ctx.head(up.directive), "in this upstream"),
            _ => INFO
                .finding(format!(
                    "upstream `{}` has no `keepalive`: {cost}",
                    up.name
                ))
                .at(ctx.head(up.directive))
                .with_label(match ctx.model.target.flavor {
                    upkeep_facts::Flavor::Nginx => {
                        format!("no idle pool before nginx {}", landmarks::KEEPALIVE_BY_DEFAULT)
                    }
                    _ => format!(
                        "no idle pool without `keepalive` on {}",
                        ctx.model.target.flavor
                    ),
                }),
        };
        for &r in routes.iter().take(3) {
            let route = ctx.model.route(r);
            finding = finding.related(
                route.pass.span(),
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
        let fix = match pool_fix(ctx, uid, pool) {
            Some(fix) => fix,
            None => {
                out.push(finding);
                continue;
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
            // gRPC and HTTP/2 routes send neither an HTTP/1 version nor a
            // Connection header: a pool is all they need.
            let needs_more = routes.iter().any(|&r| {
                ctx.model.wire(r) == upkeep_model::Wire::Http1
                    && (ctx.http_version(r).is("1.0")
                        || (ctx.headers(r).entry("Connection").is_none()
                            && ctx.model.target.sends_connection_close()))
            });
            if needs_more {
                finding = finding.note(format!(
                    "its HTTP routes also need `proxy_http_version 1.1;` and `proxy_set_header Connection \"\";` {} (U002, U003)",
                    match ctx.model.target.flavor {
                        upkeep_facts::Flavor::Nginx => "before nginx 1.29.7".to_string(),
                        _ => format!("on {}", ctx.model.target),
                    }
                ));
            }
        }
        if let pool_safety::PoolTimeout::Unavailable { why } = pool_safety::timeout_for(ctx, Some(uid)) {
            finding = finding.note(why);
        }
        finding = finding.help(help).with_fix(fix);
        out.push(ctx.with_version_note(finding));
    }
    out
}

/// The fix that gives upstream `uid` a pool that cannot do worse than no
/// pool: with an idle timeout below the backend's (pool_safety::timeout_for)
/// and, for FastCGI, no more idle connections per worker than the
/// application's children can hold. `None` when no such pool exists (a
/// FastCGI backend with too few children) or the text cannot be placed.
fn pool_fix(ctx: &Ctx, uid: UpstreamId, pool: Pool) -> Option<Fix> {
    let up = ctx.model.upstream(uid);
    let timeout = pool_safety::timeout_for(ctx, Some(uid));
    let fastcgi = pool_safety::serves_fastcgi(ctx, uid).then(|| pool_safety::fastcgi_capacity(ctx, uid));
    let size = match &fastcgi {
        Some(cap) if cap.per_worker == 0 => return None,
        Some(cap) => cap.per_worker.min(32),
        None => 32,
    };
    // A pool toward a backend that closes idle connections, on an nginx
    // that cannot time them out first, can be worse than no pool; so can a
    // FastCGI pool sized on assumed capacity.
    let unsafe_reason = match (&timeout, &fastcgi) {
        (pool_safety::PoolTimeout::Unavailable { why }, _) => Some(why.clone()),
        (_, Some(cap)) if !cap.known => Some(format!(
            "FastCGI pool sized on {}: declare `# upkeep: backend php-fpm max-children=N`",
            cap.why
        )),
        _ => None,
    };
    let sized = match &fastcgi {
        Some(cap) => format!(" ({})", cap.why),
        None => String::new(),
    };
    let mut edit_list: Vec<Edit> = Vec::new();
    let description = match pool {
        // Since 1.29.7 no `keepalive` line means 32: only FastCGI needs a size.
        Pool::Disabled { directive }
            if ctx.version >= landmarks::KEEPALIVE_BY_DEFAULT && fastcgi.is_none() =>
        {
            edit_list.push(edits::delete_directive(ctx, directive));
            edit_list.extend(pool_safety::timeout_edit(ctx, uid, &timeout));
            format!(
                "delete `keepalive 0;` so upstream `{}` pools connections (32 per worker by default){}",
                up.name,
                pool_safety::describe_timeout(&timeout)
            )
        }
        Pool::Disabled { directive } => {
            edit_list.push(edits::replace_args(directive, &size.to_string()));
            edit_list.extend(pool_safety::timeout_edit(ctx, uid, &timeout));
            format!(
                "keep up to {size} idle connections per worker to upstream `{}`{sized}{}",
                up.name,
                pool_safety::describe_timeout(&timeout)
            )
        }
        _ => {
            let keepalive = format!("keepalive {size};");
            let mut lines = vec![keepalive.clone()];
            let timeout_line = timeout.directive();
            if let Some(t) = &timeout_line {
                // An explicit `keepalive_timeout` already in the block is
                // changed in place rather than repeated.
                match up.keepalive_timeout {
                    Some(_) => edit_list.extend(pool_safety::timeout_edit(ctx, uid, &timeout)),
                    None => lines.push(t.clone()),
                }
            }
            let mut edit = edits::insert_lines_in_block(ctx, up.block, &lines, |d| {
                d.name_is("server") || BALANCER_DIRECTIVES.iter().any(|b| d.name_is(b))
            })?;
            if let (Some(t), Some(c), None) = (&timeout_line, timeout.comment(), up.keepalive_timeout) {
                edit = pool_safety::attach_comment(edit, t, &c);
            }
            edit_list.push(edit);
            format!(
                "add `{keepalive}` to upstream `{}`{sized}{}",
                up.name,
                pool_safety::describe_timeout(&timeout)
            )
        }
    };
    edit_list.sort();
    Some(Fix {
        applicability: if unsafe_reason.is_some() {
            Applicability::Unsafe
        } else {
            Applicability::Safe
        },
        description: match unsafe_reason {
            Some(why) => format!("{description}; unsafe: {why}"),
            None => description,
        },
        edits: edit_list,
    })
}
