use upkeep_diag::{Finding, Severity};
use upkeep_model::{PassTarget, Protocol};

use crate::context::Ctx;
use crate::registry::RuleInfo;

pub const INFO: RuleInfo = RuleInfo {
    id: "U015",
    name: "scheme-port-mismatch",
    severity: Severity::Error,
    fixable: false,
    summary: "`proxy_pass http://…:443` or `https://…:80`: the protocol does not match the port.",
    doc: r#"## What it finds
`proxy_pass http://HOST:443…`, an upstream whose servers all listen on 443
used with `http://`, or `proxy_pass https://` to port 80 (explicit, or an
upstream whose servers all use port 80, the default when no port is given).

## Why it breaks reuse
Plain HTTP sent to a TLS port (or a TLS ClientHello sent to a plain HTTP
port) is not understood: the backend answers with an error or closes at
once, so no connection ever becomes reusable and every request fails or
pays a new connection. `nginx -t` accepts such a configuration: it checks
syntax, not what the backend speaks.

## Example
```nginx
location / { proxy_pass http://api.example.com:443; }
```

## Fix
Use the scheme that matches the port: `https://` for 443, `http://` for 80
(or fix the port). Not automatic: only you know which side is wrong.

## References
- nginx source: src/http/ngx_http_request.c, `ngx_http_log_error_handler()` (the `upstream:` field of error-log lines shows the scheme and peer)
"#,
};

pub fn check(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    for route in &ctx.model.routes {
        if route.protocol != Protocol::Http {
            continue;
        }
        let scheme = route.scheme.as_deref().unwrap_or("http");
        let ports: Vec<u16> = match &route.target {
            PassTarget::Direct { host, port } if !host.starts_with("unix:") => {
                vec![port.unwrap_or(if scheme == "https" { 443 } else { 80 })]
            }
            // A Lua balancer's `server` lines are placeholders: the real
            // peers and their ports are chosen at request time.
            PassTarget::Upstream(u) if ctx.model.upstream(*u).lua_balancer.is_some() => continue,
            PassTarget::Upstream(u) => ctx
                .model
                .upstream(*u)
                .servers
                .iter()
                .filter(|s| !s.host.starts_with("unix:"))
                .map(|s| s.port.unwrap_or(80))
                .collect(),
            _ => continue,
        };
        if ports.is_empty() {
            continue;
        }
        let all = |p: u16| ports.iter().all(|x| *x == p);
        let mismatch = match scheme {
            "http" if all(443) => Some("plain HTTP to port 443 (TLS)"),
            "https" if all(80) => Some("TLS to port 80 (plain HTTP)"),
            _ => None,
        };
        let Some(what) = mismatch else { continue };
        let mut f = INFO
            .finding(format!(
                "{} sends {what}: the backend cannot understand the request and closes the connection",
                ctx.describe(route.block)
            ))
            .at(route.pass.span())
            .with_label(format!("{scheme}:// here"))
            .help(if scheme == "http" {
                "use `https://` for a TLS port, or the backend's plain HTTP port"
            } else {
                "use `http://` for port 80, or the backend's TLS port"
            });
        if let PassTarget::Upstream(u) = &route.target {
            if let Some(s) = ctx.model.upstream(*u).servers.first() {
                f = f.related(s.directive.span(), "the upstream's servers use this port");
            }
        }
        out.push(f);
    }
    out
}
