use std::collections::BTreeMap;

use upkeep_diag::{Applicability, Finding, Fix, Severity};
use upkeep_model::{Pool, RouteId, Wire};

use crate::context::Ctx;
use crate::edits;
use crate::registry::RuleInfo;

pub const INFO: RuleInfo = RuleInfo {
    id: "U018",
    name: "pool-mixes-http2-and-other-protocols",
    severity: Severity::Error,
    fixable: true,
    summary: "One shared idle pool serves HTTP/2 (or gRPC) routes and routes of another protocol: cached connections are handed across protocols.",
    doc: r#"## What it finds
An upstream whose idle pool is shared across locations (`keepalive N`
without `local`; on nginx before 1.29.7, Angie and freenginx every
`keepalive N`) and is used by routes that speak different protocols on their
connections, at least one of them HTTP/2: `proxy_http_version 2` (nginx
1.29.4+, Angie 1.12.0+) or `grpc_pass`, next to HTTP/1.x `proxy_pass`, or
`proxy_http_version 2` next to `grpc_pass` (two modules with their own
connection state).

## Why it breaks reuse
The keepalive cache gives a cached connection to the next request of the
upstream whose peer address matches; with `local` it also requires the same
location, but it never looks at the protocol
(`ngx_http_upstream_get_keepalive_peer`). So a connection opened by one
route can be handed to a route of the other protocol:

* an HTTP/2 connection to an HTTP/1.x request: the backend reads the
  request line as HTTP/2 frames (an nginx backend logs `client sent frame
  with unknown type 32` at info level) and the request hangs until
  `proxy_read_timeout`;
* an HTTP/1.x (or gRPC-module) connection to a `proxy_http_version 2`
  request, or the reverse for `grpc_pass`: nginx finds no HTTP/2 state on
  it, logs `no connection data found for keepalive http2 connection` and
  the request fails.

Reported on nginx 1.31.5 (nginx/nginx#1716); the cache code is the same in
every version with HTTP/2 upstreams, and gRPC has shared the cache with
HTTP/1.x routes the same way since its module appeared (1.13.10).

## Example
```nginx
upstream app { server 10.0.0.5:8080; keepalive 32; }   # shared across locations
server {
    location /api/  { proxy_pass http://app; }                           # HTTP/1.1
    location /feed/ { proxy_http_version 2; proxy_pass http://app; }     # HTTP/2
}
```

## Fix
On nginx 1.29.7 and later: `keepalive 32 local;`, so that each location
reuses only the connections it opened (the fix adds `local`; reuse then
stays within each location, it never mixes protocols). Elsewhere, give the
HTTP/2 routes their own `upstream` block with the same servers.

## References
- https://github.com/nginx/nginx/issues/1716
- nginx source: src/http/modules/ngx_http_upstream_keepalive_module.c, `ngx_http_upstream_get_keepalive_peer()` (the `local` tag check and the address comparison); src/http/modules/ngx_http_proxy_v2_module.c and ngx_http_grpc_module.c, `*_get_connection_data()`
- https://nginx.org/en/docs/http/ngx_http_upstream_module.html#keepalive (the `local` parameter)
"#,
};

/// The wire a route's connections can be cached under, `None` when they are
/// never cached (uwsgi, SCGI, FastCGI without `fastcgi_keep_conn on`).
fn cached_wire(ctx: &Ctx, r: RouteId) -> Option<Wire> {
    match ctx.model.wire(r) {
        Wire::NotCached => None,
        Wire::FastCgi => ctx
            .model
            .value(ctx.model.route(r).block, "fastcgi_keep_conn")
            .is("on")
            .then_some(Wire::FastCgi),
        w => Some(w),
    }
}

pub fn check(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    for (uid, up) in ctx.model.upstreams.iter().enumerate() {
        if !up.pool_works(ctx.version) || !up.pool_shared_across_locations(ctx.version) {
            continue;
        }
        let mut by_wire: BTreeMap<Wire, Vec<RouteId>> = BTreeMap::new();
        for r in ctx.model.routes_to(uid) {
            if let Some(w) = cached_wire(ctx, r) {
                by_wire.entry(w).or_default().push(r);
            }
        }
        if by_wire.len() < 2 || !by_wire.keys().any(|w| w.is_http2()) {
            continue;
        }
        let Pool::Explicit { size, directive } = up.pool(ctx.version) else {
            continue;
        };
        let wires: Vec<&str> = by_wire.keys().map(|w| w.describe()).collect();
        let mut f = INFO
            .finding(format!(
                "upstream `{}` shares one idle pool between {} routes: a cached connection can be handed to a request of the other protocol (the request hangs, or fails with \"no connection data found for keepalive http2 connection\")",
                up.name,
                wires.join(" and ")
            ))
            .at(directive.span())
            .with_label("shared by every location using this upstream");
        for (wire, routes) in &by_wire {
            let route = ctx.model.route(routes[0]);
            f = f.related(
                route.pass.span(),
                format!("{} speaks {}", ctx.describe(route.block), wire.describe()),
            );
        }
        if ctx.model.target.has_keepalive_local() {
            f = f
                .help(format!(
                    "add `local`: `keepalive {size} local;` keeps each location on the connections it opened"
                ))
                .with_fix(Fix {
                    applicability: Applicability::Safe,
                    description: format!(
                        "make the pool of upstream `{}` per location (`keepalive {size} local`)",
                        up.name
                    ),
                    edits: vec![edits::replace_args(directive, &format!("{size} local"))],
                });
        } else {
            f = f.help(format!(
                "give the HTTP/2 routes their own upstream block with the same servers ({} has no `keepalive … local`)",
                ctx.model.target
            ));
        }
        out.push(ctx.with_version_note(f));
    }
    out
}
