use upkeep_diag::{Finding, Severity};
use upkeep_model::BlockKind;

use crate::context::Ctx;
use crate::registry::RuleInfo;

pub const INFO: RuleInfo = RuleInfo {
    id: "R002",
    name: "worker-connections-too-few",
    severity: Severity::Warning,
    fixable: false,
    summary: "`worker_connections` cannot hold the idle upstream pools and the clients they serve.",
    doc: r#"## What it finds
A `worker_connections` (default 512) smaller than twice the sum of the idle
pools (`keepalive`, explicit or the implicit 32 of nginx 1.29.7+) of the
upstreams that routes use: the pools alone can take that many connections per
worker, and every request that uses a pooled connection also holds a client
connection.

## Why it breaks reuse
`worker_connections` counts client connections, upstream connections, the
idle connections cached in upstream pools and listening sockets. Cached upstream connections are not
"reusable" in nginx's sense: when free slots run low,
`ngx_drain_connections` closes idle CLIENT keep-alive connections (logging
"N worker_connections are not enough, reusing connections"), never the
upstream pool's; when no slot is left an upstream connect fails with
`[alert] worker_connections are not enough` and the request ends in 500.

## Example
```nginx
events { worker_connections 256; }
http {
    upstream a { server 10.0.0.1:80; keepalive 128; }
    upstream b { server 10.0.0.2:80; keepalive 128; }
}
```

## Fix
Raise `worker_connections` (and `worker_rlimit_nofile`, R001), or make the
pools smaller.

## References
- https://nginx.org/en/docs/ngx_core_module.html#worker_connections
- nginx source: src/core/ngx_connection.c, `ngx_drain_connections()` (only reusable client connections are drained, never cached upstream ones)
"#,
};

pub fn check(ctx: &Ctx) -> Vec<Finding> {
    if ctx.model.block(0).kind != BlockKind::Main {
        return Vec::new();
    }
    let wc = ctx.model.main.worker_connections;
    let conns: u64 = match wc {
        Some(d) => match d.args().first().and_then(|a| a.text().parse().ok()) {
            Some(n) => n,
            None => return Vec::new(),
        },
        None => 512,
    };
    // Sums in u128: `keepalive` takes any count nginx's integer parsing
    // takes (up to 2^63 - 1 per upstream), and twice their sum must not
    // overflow.
    let mut pooled = 0u128;
    let mut used = Vec::new();
    for (uid, up) in ctx.model.upstreams.iter().enumerate() {
        let size = up.pool(ctx.version).size();
        let reached = ctx
            .model
            .routes_to(uid)
            .any(|r| ctx.model.route(r).protocol.can_keep_alive());
        if size > 0 && reached {
            pooled += u128::from(size);
            used.push(up);
        }
    }
    let needed = pooled * 2;
    if pooled == 0 || u128::from(conns) >= needed {
        return Vec::new();
    }
    let primary = match wc {
        Some(d) => d.span(),
        None => match ctx
            .model
            .main
            .events
            .and_then(|e| ctx.model.block(e).directive)
        {
            Some(events) => ctx.head(events),
            None => return Vec::new(),
        },
    };
    let mut f = INFO
        .finding(format!(
            "worker_connections {conns}{} is less than twice the {pooled} idle upstream connections the pools may keep per worker ({needed} needed with their clients)",
            if wc.is_none() { " (default)" } else { "" }
        ))
        .at(primary)
        .with_label("too few for the pools")
        .help(if needed <= u128::from(upkeep_facts::NGX_MAX_INT) {
            format!("raise `worker_connections` to at least {needed}, or lower `keepalive`")
        } else {
            // nginx refuses a count above 9223372036854775807 ("invalid
            // number"; checked with nginx 1.22).
            format!(
                "lower `keepalive`: {needed} is more than nginx takes for `worker_connections` (at most {})",
                upkeep_facts::NGX_MAX_INT
            )
        });
    let implicit = used
        .iter()
        .filter(|u| matches!(u.pool(ctx.version), upkeep_model::Pool::Implicit { .. }))
        .count();
    if implicit > 0 {
        f = f.note(format!(
            "{implicit} of these upstreams have no `keepalive` line: since nginx 1.29.7 each gets a pool of 32 per worker by default"
        ));
    }
    for up in used.iter().take(3) {
        let at = up
            .keepalive
            .map(|d| d.span())
            .unwrap_or_else(|| ctx.head(up.directive));
        f = f.related(at, format!("pool of upstream `{}`", up.name));
    }
    vec![ctx.with_version_note(f)]
}
