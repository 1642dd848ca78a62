use std::collections::{BTreeMap, BTreeSet};

use upkeep_diag::{Applicability, Edit, Finding, Fix, Severity};
use upkeep_model::{BlockId, BlockKind, DynamicTarget, PassTarget, Protocol, RouteId};
use upkeep_syntax::{QuoteStyle, Span};

use crate::context::Ctx;
use crate::edits;
use crate::pool_safety;
use crate::registry::RuleInfo;

pub const INFO: RuleInfo = RuleInfo {
    id: "U010",
    name: "proxy-pass-bypasses-pool",
    severity: Severity::Warning,
    fixable: true,
    summary: "`proxy_pass` (or `grpc_pass`, `fastcgi_pass`) names an address or a variable that is not an upstream block: nginx keeps no idle pool for it.",
    doc: r#"## What it finds
A `proxy_pass`, `grpc_pass` or `fastcgi_pass` whose target is a literal
`host:port` (or `unix:` socket) that is not the name of an `upstream{}` block,
or a `proxy_pass` to a variable whose values are not upstream block names (for example `proxy_pass http://$host$request_uri;`).
A variable whose `set`/`map` values name upstream blocks is fine: nginx looks
the evaluated host up among the `upstream{}` blocks.

## Why it breaks reuse
For such targets nginx creates an implicit upstream (a literal address) or
resolves the address per request (a variable). Implicit upstreams have no
`srv_conf`, and `ngx_http_upstream_keepalive_init_main_conf` skips them, so
the keep-alive module is never installed: not even nginx 1.29.7's default
pool applies. Every
request opens and closes a connection.

## Example
```nginx
location /api/ {
    proxy_pass http://127.0.0.1:8080;
}
```

## Fix
For a literal target, the fix adds an `upstream` block with the address and
`keepalive 32;` and points `proxy_pass` at it. The new pool gets a
`keepalive_timeout` below the shortest common backend idle timeout (the
backend is unknown), on nginx >= 1.15.3; before that the fix is unsafe.
Because `$proxy_host` (the default `Host` header, and the TLS name) would
become the upstream's name, the fix writes what nginx sent before:
`proxy_set_header Host <host[:port]>` where no `Host` is in effect (with the
level's inherited `proxy_set_header` lines repeated, since a level with one
line of its own inherits none) and, for `https://`, `proxy_ssl_name <host>`
and `proxy_ssl_server_name on`. Variable targets need a `map` to upstream names
or an upstream per backend, written by hand. For `grpc_pass` and
`fastcgi_pass` the diagnostic says what to write (a FastCGI pool also needs
`fastcgi_keep_conn on` and must fit the FastCGI server's capacity); there is
no automatic fix.

In a snippet (a conf.d file checked without its nginx.conf), a bare name
such as `proxy_pass http://app/` is taken to be an upstream block defined in
another file, and the output says so among its assumptions.

## References
- https://nginx.org/en/docs/http/ngx_http_proxy_module.html#proxy_pass, https://nginx.org/en/docs/http/ngx_http_grpc_module.html#grpc_pass, https://nginx.org/en/docs/http/ngx_http_fastcgi_module.html#fastcgi_pass, https://nginx.org/en/docs/http/ngx_http_upstream_module.html#keepalive
- nginx source: src/http/modules/ngx_http_upstream_keepalive_module.c, `ngx_http_upstream_keepalive_init_main_conf()` (upstreams without `srv_conf`, the implicit ones, are skipped)
"#,
};

/// Request-derived variables: a target built from them never names an
/// upstream block the config controls.
const REQUEST_VARIABLES: &[&str] = &[
    "host",
    "http_host",
    "server_name",
    "scheme",
    "request_uri",
    "uri",
    "args",
    "remote_addr",
    "server_addr",
    "hostname",
];

pub fn check(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut literal: BTreeMap<(String, String, Option<u16>), Vec<RouteId>> = BTreeMap::new();
    let full_config = ctx.model.block(0).kind == BlockKind::Main;
    for (r, route) in ctx.model.routes.iter().enumerate() {
        if !matches!(
            route.protocol,
            Protocol::Http | Protocol::Grpc | Protocol::FastCgi
        ) {
            continue; // uwsgi and SCGI connections are never pooled anyway
        }
        match &route.target {
            PassTarget::Direct { host, port } => {
                // In a partial config (a conf.d snippet) a bare name such as
                // `backend` may be an upstream block defined in another file:
                // say so, since nginx would otherwise resolve it as a host
                // and keep no pool for it.
                if !full_config && is_bare_name(host) && port.is_none() {
                    ctx.assume(format!(
                        "snippet: `{} {}` is taken to name an upstream block defined in another file; if no file defines `upstream {host}`, nginx resolves `{host}` as a host name and keeps no idle connections for it (U010)",
                        route.pass.name().text(),
                        route.pass.args().first().map(|a| a.text()).unwrap_or_default()
                    ));
                    continue;
                }
                if route.protocol != Protocol::Http {
                    out.push(other_protocol_finding(ctx, route.protocol, host, *port, r));
                    continue;
                }
                let scheme = route.scheme.clone().unwrap_or_else(|| "http".into());
                literal
                    .entry((scheme, host.clone(), *port))
                    .or_default()
                    .push(r);
            }
            PassTarget::Dynamic(_) if route.protocol != Protocol::Http => {}
            PassTarget::Dynamic(target) => {
                let DynamicTarget {
                    host,
                    upstreams,
                    other_values,
                    fully_known,
                } = &**target;
                if !upstreams.is_empty() {
                    continue;
                }
                let var = host.trim_start_matches('$').trim_start_matches('{');
                let var: String = var
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let request_derived = REQUEST_VARIABLES.contains(&var.as_str())
                    || var.starts_with("http_")
                    || var.starts_with("arg_")
                    || var.starts_with("cookie_");
                if !(request_derived || (*fully_known && !other_values.is_empty())) {
                    continue;
                }
                let why = if request_derived {
                    format!("`${var}` comes from the request")
                } else {
                    format!("`${var}` can be {}", quote_list(other_values))
                };
                let f = INFO
                    .finding(format!(
                        "`proxy_pass` to `{host}` never reaches an upstream block ({why}): nginx keeps no idle connections for it and opens a new one for every request"
                    ))
                    .at(route.pass.span())
                    .with_label("no connection pool for this target")
                    .help("map the variable to names of upstream blocks that have `keepalive`, or proxy to an upstream block");
                out.push(f);
            }
            PassTarget::Upstream(_) => {}
        }
    }
    for ((scheme, host, port), routes) in literal {
        out.push(literal_finding(ctx, &scheme, &host, port, &routes));
    }
    out
}

/// A single-label host name (`backend`, `app_servers`): what upstream blocks
/// are usually called.
fn is_bare_name(host: &str) -> bool {
    !host.contains('.')
        && !host.contains(':')
        && !host.starts_with('[')
        && host != "localhost"
        && !host.contains('$')
}

/// A literal `grpc_pass` or `fastcgi_pass` target: the same implicit,
/// never-pooled upstream as a literal `proxy_pass`. No automatic fix: a gRPC
/// pool needs its TLS name kept, and a FastCGI pool needs
/// `fastcgi_keep_conn on` and a size within the FastCGI server's capacity.
fn other_protocol_finding(
    ctx: &Ctx,
    protocol: Protocol,
    host: &str,
    port: Option<u16>,
    r: RouteId,
) -> Finding {
    let route = ctx.model.route(r);
    let shown = match port {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let directive = route.pass.name().text();
    let (cost, help) = match protocol {
        Protocol::Grpc => (
            "every gRPC call opens a new HTTP/2 connection to it",
            format!("define `upstream NAME {{ server {shown}; keepalive 32; }}` and use `grpc_pass grpc://NAME` (with `grpc_ssl_name` for grpcs)"),
        ),
        _ => (
            "every request opens and closes a FastCGI connection to it",
            format!("define `upstream NAME {{ server {shown}; keepalive N; }}` with N at most the FastCGI server's children per nginx worker (php-fpm: pm.max_children / worker_processes), `fastcgi_pass NAME` and `fastcgi_keep_conn on`"),
        ),
    };
    INFO.finding(format!(
        "`{directive} {shown}` is not an upstream block: nginx keeps no idle connections to it; {cost}"
    ))
    .at(route.pass.span())
    .with_label("implicit upstream, never pooled")
    .help(help)
}

fn quote_list(values: &[String]) -> String {
    let shown: Vec<String> = values.iter().take(3).map(|v| format!("`{v}`")).collect();
    let mut s = shown.join(", ");
    if values.len() > 3 {
        s.push_str(", …");
    }
    s
}

fn literal_finding(
    ctx: &Ctx,
    scheme: &str,
    host: &str,
    port: Option<u16>,
    routes: &[RouteId],
) -> Finding {
    let first = ctx.model.route(routes[0]);
    let shown = match port {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let mut f = INFO
        .finding(format!(
            "`proxy_pass {scheme}://{shown}` is not an upstream block: nginx keeps no idle connections to it and opens a new one for every request"
        ))
        .at(first.pass.span())
        .with_label("implicit upstream, never pooled");
    for &r in &routes[1..routes.len().min(4)] {
        let route = ctx.model.route(r);
        f = f.related(
            route.pass.span(),
            format!("also proxied to from {}", ctx.describe(route.block)),
        );
    }
    let name = upstream_name(ctx, host, port);
    f = f.help(format!(
        "define `upstream {name} {{ server {}; keepalive 32; }}` and proxy to `{scheme}://{name}`",
        server_address(scheme, host, port)
    ));
    match literal_fix(ctx, scheme, host, port, routes, &name) {
        Some(fix) => f.with_fix(fix),
        None => f,
    }
}

fn upstream_name(ctx: &Ctx, host: &str, port: Option<u16>) -> String {
    let mut base: String = host
        .trim_start_matches("unix:")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    base = base.trim_matches('_').to_string();
    if let Some(p) = port {
        base = format!("{base}_{p}");
    }
    if base.is_empty() || base.starts_with(|c: char| c.is_ascii_digit()) {
        base = format!("backend_{base}");
    }
    let mut name = base.clone();
    let mut n = 2;
    while ctx.model.upstream_named(&name).is_some() {
        name = format!("{base}_{n}");
        n += 1;
    }
    name
}

/// The `Host` header nginx sends for `proxy_pass scheme://host[:port]`
/// (`$proxy_host`): the port only when it is not the scheme's default
/// (checked against nginx 1.22: `http://h:80` sends `Host: h`), and
/// `localhost` for a unix socket.
fn original_host_header(scheme: &str, host: &str, port: Option<u16>) -> String {
    if host.starts_with("unix:") {
        return "localhost".to_string();
    }
    let default = if scheme == "https" { 443 } else { 80 };
    match port {
        Some(p) if p != default => format!("{host}:{p}"),
        _ => host.to_string(),
    }
}

fn server_address(scheme: &str, host: &str, port: Option<u16>) -> String {
    if host.starts_with("unix:") {
        return host.to_string();
    }
    let port = port.unwrap_or(if scheme == "https" { 443 } else { 80 });
    format!("{host}:{port}")
}

fn literal_fix(
    ctx: &Ctx,
    scheme: &str,
    host: &str,
    port: Option<u16>,
    routes: &[RouteId],
    name: &str,
) -> Option<Fix> {
    // The upstream goes before the server block of the first route, which
    // must sit in the http context.
    let first = ctx.model.route(routes[0]);
    let server = ctx
        .model
        .ancestors(first.block)
        .find(|&b| ctx.model.block(b).kind == BlockKind::Server)?;
    let server_block = ctx.model.block(server);
    let server_dir = server_block.directive?;
    let parent = server_block.parent()?;
    if ctx.model.block(parent).kind != BlockKind::Http {
        return None;
    }
    let file = ctx.file(server_dir.span());
    let line = file.line_col(server_dir.span().start).line;
    let line_start = file.line_start(line);
    let indent = edits::indent_at(file, server_dir.span().start);
    if line_start + indent.len() as u32 != server_dir.span().start {
        return None;
    }
    let unit = edits::indent_unit(file);
    let eol = edits::eol(file);
    // The new pool must not keep idle connections longer than the backend,
    // which nothing describes yet: the conservative timeout, with its reason
    // written next to it.
    let timeout = pool_safety::timeout_for(ctx, None);
    let timeout_line = match (timeout.directive(), timeout.comment()) {
        (Some(d), Some(c)) => format!("{indent}{unit}{d}  {c}{eol}"),
        _ => String::new(),
    };
    let block = format!(
        "{indent}upstream {name} {{{eol}{indent}{unit}server {};{eol}{indent}{unit}keepalive 32;{eol}{timeout_line}{indent}}}{eol}{eol}",
        server_address(scheme, host, port)
    );
    let mut edit_list = vec![Edit::insert(
        Span::new(server_dir.span().file, line_start, line_start),
        block,
    )];
    for &r in routes {
        let route = ctx.model.route(r);
        let word = route.pass.args().first()?;
        let value = word.text();
        let host_port = match port {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        let at = value.find(&host_port)?;
        let offset = match word.quote() {
            QuoteStyle::Bare => 0,
            QuoteStyle::Single | QuoteStyle::Double => 1,
        };
        // Escapes inside the word would shift offsets: only plain words.
        if ctx.text(word.span()).len() != value.len() + 2 * offset as usize {
            return None;
        }
        let start = word.span().start + offset + at as u32;
        let mut end = start + host_port.len() as u32;
        // `http://unix:/run/app.sock:/uri`: the `:` that ends the socket
        // path goes too.
        if host.starts_with("unix:") && value[at + host_port.len()..].starts_with(':') {
            end += 1;
        }
        edit_list.push(Edit::replace(Span::new(word.span().file, start, end), name));
    }
    // What nginx sent before the rewrite: `Host: $proxy_host` (the host,
    // with the port unless it is the scheme's default; `localhost` for a
    // unix socket) and, for https, that host as the TLS name. After the
    // rewrite `$proxy_host` is the upstream's name, so both are written
    // out at each route's level.
    let levels: BTreeSet<BlockId> = routes
        .iter()
        .filter_map(|&r| edits::writable_level(ctx, ctx.model.route(r).block))
        .collect();
    if levels.len() != routes.len() {
        return None; // two routes share a level, or one has none: by hand
    }
    let host_header = original_host_header(scheme, host, port);
    let mut kept = Vec::new();
    for &r in routes {
        let route = ctx.model.route(r);
        let level = edits::writable_level(ctx, route.block)?;
        let mut lines: Vec<String> = Vec::new();
        let list = ctx.headers(r);
        if list.entry("Host").is_none() {
            // proxy_set_header is all-or-nothing per level: a level with no
            // line of its own inherits its parent's list, and a first line
            // here would drop that list. Copy it along.
            if list.level != Some(level) {
                for d in &list.entries {
                    lines.push(ctx.text(d.span()));
                }
            }
            lines.push(format!("proxy_set_header Host {host_header};"));
            kept.push(format!("`Host: {host_header}`"));
        }
        if scheme == "https" && !host.starts_with("unix:") {
            if ctx.model.value(route.block, "proxy_ssl_name").setting().is_none() {
                lines.push(format!("proxy_ssl_name {host};"));
            }
            if ctx.model.value(route.block, "proxy_ssl_server_name").setting().is_none() {
                // Written exactly as U013's fix writes it, so that when both
                // fixes run together the engine makes the line once.
                edit_list.push(edits::insert_in_block(
                    ctx,
                    level,
                    "proxy_ssl_server_name on;",
                    |d| d.name().value().starts_with(b"proxy_"),
                )?);
            }
            kept.push(format!("TLS name `{host}`"));
        }
        if lines.is_empty() {
            continue;
        }
        let edit = edits::insert_lines_in_block(ctx, level, &lines, |d| {
            d.name_is("proxy_set_header")
        })?;
        edit_list.push(edit);
    }
    kept.dedup();
    edit_list.sort();
    let unsafe_reason = match &timeout {
        pool_safety::PoolTimeout::Unavailable { why } => Some(why.clone()),
        _ => None,
    };
    let mut description = format!(
        "add upstream `{name}` with keepalive{} and proxy to it",
        pool_safety::describe_timeout(&timeout)
    );
    if !kept.is_empty() {
        description.push_str(&format!("; keep {} as before", kept.join(" and ")));
    }
    if let Some(why) = &unsafe_reason {
        description.push_str(&format!("; unsafe: {why}"));
    }
    Some(Fix {
        applicability: if unsafe_reason.is_some() {
            Applicability::Unsafe
        } else {
            Applicability::Safe
        },
        description,
        edits: edit_list,
    })
}
