use upkeep_diag::{Applicability, Finding, Fix, Severity};
use upkeep_model::BlockKind;

use crate::context::Ctx;
use crate::edits;
use crate::registry::RuleInfo;

pub const INFO: RuleInfo = RuleInfo {
    id: "C001",
    name: "client-keepalive-requests-low",
    severity: Severity::Warning,
    fixable: true,
    summary:
        "Client `keepalive_requests` below 1000, including the implicit 100 before nginx 1.19.10.",
    doc: r#"## What it finds
An effective client `keepalive_requests` (http, server or location level)
below 1000, or below `--target-requests`: an explicit low value, or the
implicit default of 100 on nginx older than 1.19.10. An http-level value
that every server block replaces with its own is not reported: no request
is served with it. Nor is a server-level value that every
location of the server replaces, when every request reaches a location (the
server has a `location /` and answers nothing itself: no `if`, `return` or
`rewrite` at server level) and the server speaks only HTTP/1.x.

## Why it breaks reuse
After `keepalive_requests` requests on one client connection nginx answers
with `Connection: close` (HTTP/1.x) or a GOAWAY (HTTP/2) and the client must
open a new connection (`ngx_http_update_location_config` clears
`r->keepalive` when `c->requests >= keepalive_requests`). Busy clients (a load balancer in front of nginx, an HTTP/2 browser) then
reconnect every N requests and pay a new TCP and TLS handshake each time. The default went from 100 to 1000 in 1.19.10 (ticket
#2155); since 1.19.7 it also governs HTTP/2 connections.

## Example
```nginx
http {
    keepalive_requests 100;
}
```

## Fix
`keepalive_requests 1000;` (or `--target-requests`), replacing a low value
or added to the `http` block on old versions.

## References
- https://nginx.org/en/docs/http/ngx_http_core_module.html#keepalive_requests
- nginx source: src/http/ngx_http_core_module.c, `ngx_http_update_location_config()` (client keep-alive decision)
- nginx CHANGES 1.19.10
"#,
};

pub fn check(ctx: &Ctx) -> Vec<Finding> {
    let target = ctx.opts.target_requests.unwrap_or(1000);
    let mut out = Vec::new();
    // Explicit low values.
    for (id, block) in ctx.model.blocks.iter().enumerate() {
        if !block.kind.is_http_level() {
            continue;
        }
        // A value every lower level replaces affects no request.
        if ctx.applies_to_no_request(id, "keepalive_requests") {
            continue;
        }
        for d in block.directives_named("keepalive_requests") {
            let Some(n) = d.args().first().and_then(|a| a.text().parse::<u64>().ok()) else {
                continue;
            };
            if n >= target {
                continue;
            }
            let f = INFO
                .finding(format!(
                    "`keepalive_requests {n}` in {} makes clients reconnect after every {n} requests",
                    ctx.describe(id)
                ))
                .at(d.span())
                .with_label(format!("below {target}"))
                .help(format!("use `keepalive_requests {target};`"))
                .with_fix(Fix {
                    applicability: Applicability::Safe,
                    description: format!("set `keepalive_requests {target}`"),
                    edits: vec![edits::replace_args(d, &target.to_string())],
                });
            out.push(f);
        }
    }
    // The implicit default of old versions.
    let default: u64 = upkeep_facts::directive("keepalive_requests", false)
        .and_then(|f| f.default_in(ctx.version))
        .and_then(|d| d.parse().ok())
        .unwrap_or(1000);
    if default >= target {
        return out;
    }
    let servers: Vec<usize> = ctx
        .model
        .servers()
        .filter(|&s| ctx.model.setting(s, "keepalive_requests").is_none())
        .collect();
    if servers.is_empty() {
        return out;
    }
    let level = ctx
        .model
        .http
        .filter(|&h| ctx.model.block(h).kind == BlockKind::Http);
    let primary = match level.and_then(|h| ctx.model.block(h).directive) {
        Some(http) => ctx.head(http),
        None => match ctx.model.block(servers[0]).directive {
            Some(d) => ctx.head(d),
            None => return out,
        },
    };
    let mut f = INFO
        .finding(format!(
            "nginx {} closes every client connection after {default} requests (the default before 1.19.10)",
            ctx.version
        ))
        .at(primary)
        .with_label(format!("keepalive_requests {default} (default)"))
        .help(format!("add `keepalive_requests {target};` to the http block"));
    for &s in servers.iter().take(3) {
        if let Some(d) = ctx.model.block(s).directive {
            f = f.related(ctx.head(d), "uses the default");
        }
    }
    let target_block = level.or_else(|| edits::covering_level(ctx, &servers));
    if let Some(edit) = target_block.and_then(|b| {
        edits::insert_in_block(ctx, b, &format!("keepalive_requests {target};"), |d| {
            d.name().value().starts_with(b"keepalive")
        })
    }) {
        f = f.with_fix(Fix {
            applicability: Applicability::Safe,
            description: format!("add `keepalive_requests {target};`"),
            edits: vec![edit],
        });
    }
    out.push(ctx.with_version_note(f));
    out
}
