use upkeep_diag::{Applicability, Finding, Fix, Severity};
use upkeep_model::{PassTarget, Protocol, Route, RouteId, UpstreamId};

use crate::context::Ctx;
use crate::edits;
use crate::registry::RuleInfo;

pub const INFO: RuleInfo = RuleInfo {
    id: "U013",
    name: "tls-upstream-without-sni",
    severity: Severity::Warning,
    fixable: true,
    summary: "`proxy_pass https://NAME` without `proxy_ssl_server_name on`: no SNI in the upstream TLS handshake.",
    doc: r#"## What it finds
A route that proxies over TLS (`proxy_pass https://…`, `grpc_pass grpcs://…`)
to a host name, whose effective `proxy_ssl_server_name`
(`grpc_ssl_server_name`) is `off`, the default.

## Why it breaks reuse
Without SNI, backends that serve several names on one address cannot tell
which certificate to present: some reset the handshake, so the new upstream
connection fails before a request is sent and nothing can be pooled. `proxy_ssl_server_name` is off by default
(it sets SNI on new TLS upstream connections); the name sent is `proxy_ssl_name`, by default `$proxy_host`
(the host in `proxy_pass`, or the upstream block's name). Cached connections
are matched by peer address only, never by SNI.

## Example
```nginx
location / {
    proxy_pass https://api.example.com;
}
```

## Fix
`proxy_ssl_server_name on;` in the route's location (the fix adds it). When
`proxy_pass` names an `upstream{}` block (reported only when its servers are
written as host names), also set `proxy_ssl_name` to the backend's real host
name; that case has no automatic fix. With `proxy_ssl_server_name on` and no
`proxy_ssl_name`, a name with no dot (`avatars_discourse_org`) is the
upstream block's own name sent as SNI: reported, with an unsafe fix when all
servers share one host name: `proxy_ssl_name` set to it and, when no
`proxy_set_header Host` is in effect, the `Host` header too, since it is
`$proxy_host` as well and a backend that found its certificate by the TLS
name still picks its virtual host by `Host` (the level's inherited
`proxy_set_header` lines are repeated with it: a level with one line of its
own inherits none). Upstreams whose servers are all IP literals are not
reported.

## References
- https://nginx.org/en/docs/http/ngx_http_proxy_module.html#proxy_ssl_server_name, https://nginx.org/en/docs/http/ngx_http_proxy_module.html#proxy_ssl_name, https://nginx.org/en/docs/http/ngx_http_grpc_module.html#grpc_ssl_server_name
"#,
};

fn is_ip(host: &str) -> bool {
    host.starts_with('[') || host.parse::<std::net::IpAddr>().is_ok() || host.starts_with("unix:")
}

pub fn check(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    for (r, route) in ctx.model.routes.iter().enumerate() {
        let (directive, tls) = match route.protocol {
            Protocol::Http => (
                "proxy_ssl_server_name",
                route.scheme.as_deref() == Some("https"),
            ),
            Protocol::Grpc => (
                "grpc_ssl_server_name",
                route.scheme.as_deref() == Some("grpcs"),
            ),
            _ => continue,
        };
        if !tls {
            continue;
        }
        let (host, via_upstream) = match &route.target {
            PassTarget::Direct { host, .. } => (host.clone(), false),
            // An upstream block's name is rarely the backend's host name;
            // only servers written as host names suggest a backend that
            // needs SNI.
            PassTarget::Upstream(u) => {
                let up = ctx.model.upstream(*u);
                if route.protocol == Protocol::Http
                    && ctx.model.value(route.block, directive).is("on")
                {
                    out.extend(sni_is_upstream_name(ctx, r, route, *u));
                    continue;
                }
                if up.servers.is_empty() || up.servers.iter().any(|s| is_ip(&s.host)) {
                    continue;
                }
                (up.name.clone(), true)
            }
            PassTarget::Dynamic(_) => continue,
        };
        if is_ip(&host) {
            continue;
        }
        let value = ctx.model.value(route.block, directive);
        if value.is("on") {
            continue;
        }
        let mut f = INFO
            .finding(format!(
                "TLS to `{host}` without SNI: `{directive}` is off in {}, and backends that need SNI reset the handshake",
                ctx.describe(route.block)
            ))
            .at(route.pass.span())
            .with_label("no server name sent");
        if let Some(s) = value.setting() {
            f = f.related(s.directive.span(), "turned off here");
        }
        let help = if via_upstream && route.protocol == Protocol::Http {
            format!("add `{directive} on;` and `proxy_ssl_name <the backend's host name>;` (the default name is the upstream's name `{host}`)")
        } else {
            format!("add `{directive} on;`")
        };
        f = f.help(help);
        // Through an upstream block the right name is unknown: no automatic fix.
        let edit = if via_upstream || !ctx.available(directive, false) {
            None
        } else {
            match value.setting() {
                Some(s) => Some(edits::replace_args(s.directive, "on")),
                None => edits::writable_level(ctx, route.block).and_then(|level| {
                    edits::insert_in_block(ctx, level, &format!("{directive} on;"), |d| {
                        d.name().value().starts_with(route.protocol.prefix().as_bytes())
                    })
                }),
            }
        };
        if let Some(edit) = edit {
            f = f.with_fix(Fix {
                applicability: if via_upstream {
                    Applicability::Unsafe
                } else {
                    Applicability::Safe
                },
                description: format!("send SNI: `{directive} on;`"),
                edits: vec![edit],
            });
        }
        out.push(f);
    }
    out
}

/// `proxy_ssl_server_name on` through an upstream block with no
/// `proxy_ssl_name`: the name sent is `$proxy_host`, the block's own name.
/// A name with no dot (`avatars_discourse_org`, `backend`) is no host a
/// certificate or a CDN knows, so the handshake or the routing fails. Not
/// reported when every server is an IP literal: such internal TLS usually
/// has one certificate and needs no name.
fn sni_is_upstream_name(
    ctx: &Ctx,
    r: RouteId,
    route: &Route,
    u: UpstreamId,
) -> Option<Finding> {
    let up = ctx.model.upstream(u);
    if ctx.model.value(route.block, "proxy_ssl_name").setting().is_some() {
        return None;
    }
    if up.name.contains('.') || up.name == "localhost" || is_ip(&up.name) {
        return None;
    }
    if up.servers.is_empty() || up.servers.iter().all(|s| is_ip(&s.host)) {
        return None;
    }
    let mut f = INFO
        .finding(format!(
            "TLS to upstream `{}` sends the server name `{}`, the upstream block's own name: `proxy_ssl_name` is not set, so the name is `$proxy_host`, which no certificate or virtual host is likely to match",
            up.name, up.name
        ))
        .at(route.pass.span())
        .with_label("SNI is the upstream's name")
        .related(ctx.head(up.directive), "the name sent");
    // One host name behind every server: that is the name to send.
    let mut hosts: Vec<&str> = up.servers.iter().map(|s| &*s.host).collect();
    hosts.sort_unstable();
    hosts.dedup();
    let headers = ctx.headers(r);
    let host_unset = headers.entry("Host").is_none();
    let help = if host_unset {
        "set `proxy_ssl_name <the backend's host name>;` and `proxy_set_header Host <the backend's host name>;` (the `Host` header is `$proxy_host` too)"
    } else {
        "set `proxy_ssl_name <the backend's host name>;`"
    };
    f = f.help(help);
    let [host] = hosts.as_slice() else {
        return Some(f);
    };
    if is_ip(host) {
        return Some(f);
    }
    let Some(level) = edits::writable_level(ctx, route.block) else {
        return Some(f);
    };
    let mut lines = Vec::new();
    let mut description = format!("send `{host}` (the servers' host name) as the TLS name");
    // With no `Host` line in effect the header is `$proxy_host`, the
    // block's name as well: a backend that found its certificate by the
    // TLS name would still pick its virtual host by that header, and
    // serve the request from another one.
    if host_unset {
        let host_header = host_header(host, &up.servers);
        // proxy_set_header is all-or-nothing per level: a first line here
        // would drop the list this level inherits. Copy it along.
        if headers.level != Some(level) {
            lines.extend(headers.entries.iter().map(|d| ctx.text(d.span())));
        }
        lines.push(format!("proxy_set_header Host {host_header};"));
        description.push_str(&format!(" and `Host` header: `proxy_set_header Host {host_header};`,"));
    } else {
        description.push(':');
    }
    lines.push(format!("proxy_ssl_name {host};"));
    description.push_str(&format!(" `proxy_ssl_name {host};`"));
    if let Some(edit) = edits::insert_lines_in_block(ctx, level, &lines, |d| {
        d.name().value().starts_with(b"proxy_")
    }) {
        f = f.with_fix(Fix {
            applicability: Applicability::Unsafe,
            description,
            edits: vec![edit],
        });
    }
    Some(f)
}

/// The `Host` header for `host` behind these servers: with their port when
/// they all share one other than 443 (as a client writes it), else the
/// host alone.
fn host_header(host: &str, servers: &[upkeep_model::UpstreamServer]) -> String {
    let mut ports: Vec<Option<u16>> = servers.iter().map(|s| s.port).collect();
    ports.sort_unstable();
    ports.dedup();
    match ports.as_slice() {
        [Some(p)] if *p != 443 => format!("{host}:{p}"),
        _ => host.to_string(),
    }
}
