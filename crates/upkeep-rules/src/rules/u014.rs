use std::collections::BTreeMap;

use upkeep_diag::{Applicability, Finding, Fix, Severity};
use upkeep_model::Protocol;

use crate::context::Ctx;
use crate::edits;
use crate::registry::RuleInfo;

pub const INFO: RuleInfo = RuleInfo {
    id: "U014",
    name: "tls-session-reuse-off",
    severity: Severity::Info,
    fixable: true,
    summary: "`proxy_ssl_session_reuse off` on a TLS route: every new upstream connection pays a full handshake.",
    doc: r#"## What it finds
`proxy_ssl_session_reuse off` (or `grpc_ssl_session_reuse off`) in effect for
a route that proxies over TLS.

## Why it breaks reuse
TLS session resumption makes the handshake of a NEW upstream connection
cheap; it is independent of keep-alive, which avoids new connections
altogether (session resumption applies to new upstream connections only).
With it off, every connection nginx opens (after a backend closed an idle
one, after `keepalive_requests`, when the pool is empty or too small) pays a
full handshake. The default is `on`.

## Example
```nginx
location / {
    proxy_ssl_session_reuse off;
    proxy_pass https://backend;
}
```

## Fix
Remove the line or set it to `on` (the fix sets `on`).

## References
- https://nginx.org/en/docs/http/ngx_http_proxy_module.html#proxy_ssl_session_reuse, https://nginx.org/en/docs/http/ngx_http_grpc_module.html#grpc_ssl_session_reuse
"#,
};

pub fn check(ctx: &Ctx) -> Vec<Finding> {
    let mut found: BTreeMap<(u32, u32), (Finding, usize)> = BTreeMap::new();
    for route in &ctx.model.routes {
        let directive = match (route.protocol, route.scheme.as_deref()) {
            (Protocol::Http, Some("https")) => "proxy_ssl_session_reuse",
            (Protocol::Grpc, Some("grpcs")) => "grpc_ssl_session_reuse",
            _ => continue,
        };
        let Some(s) = ctx.model.setting(route.block, directive) else {
            continue;
        };
        if !s.arg_is(0, "off") {
            continue;
        }
        let key = (s.directive.span().file.0, s.directive.span().start);
        if let Some((_, n)) = found.get_mut(&key) {
            *n += 1;
            continue;
        }
        let f = INFO
            .finding(format!(
                "`{directive} off` applies to TLS {}: every new upstream connection needs a full handshake",
                ctx.describe(route.block)
            ))
            .at(s.directive.span())
            .with_label("TLS session resumption disabled")
            .related(route.pass.span(), "TLS route")
            .help(format!("use `{directive} on;` (the default)"))
            .with_fix(Fix {
                applicability: Applicability::Safe,
                description: format!("set `{directive} on`"),
                edits: vec![edits::replace_args(s.directive, "on")],
            });
        found.insert(key, (f, 1));
    }
    found.into_values().map(|(f, _)| f).collect()
}
