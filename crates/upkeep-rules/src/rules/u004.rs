use upkeep_diag::{Applicability, Finding, Fix, Severity};
use upkeep_model::{BlockId, Protocol, RouteId};

use crate::context::Ctx;
use crate::edits;
use crate::registry::RuleInfo;

pub const INFO: RuleInfo = RuleInfo {
    id: "U004",
    name: "proxy-set-header-inheritance-lost",
    severity: Severity::Error,
    fixable: true,
    summary: "A block's own `proxy_set_header` (or `grpc_set_header`, `fastcgi_param`) lines drop every one its parents set, for a keepalive route.",
    doc: r#"## What it finds
A block (server, location, nested location) that has at least one
`proxy_set_header` and therefore inherits none of the `proxy_set_header`
lines of the levels above it, while a parent set headers that are now lost
for a route to a keepalive upstream. The same for `grpc_set_header` on gRPC
routes and `fastcgi_param` on FastCGI routes: both are all-or-nothing per
level in the same way (`ngx_http_grpc_merge_loc_conf`,
`ngx_http_fastcgi_merge_loc_conf` with `params_source`). The common FastCGI
case: `include fastcgi_params;` at server level and one `fastcgi_param
SCRIPT_FILENAME …;` in the PHP location, which then sends none of the
included parameters. The diagnostic names both places: the
block that resets the list and the parent lines that no longer apply.

## Why it breaks reuse
`proxy_set_header` is an array directive. `ngx_http_proxy_merge_loc_conf`
merges it with `ngx_conf_merge_ptr_value(headers_source, prev->headers_source,
NULL)`: a level that has any `proxy_set_header` keeps only its own array, and
all parent lines are dropped (nginx docs: "inherited from the previous
configuration level if and only if there are no proxy_set_header directives
defined on the current level"). nginx's built-in defaults are then added back
(`ngx_http_proxy_init_headers`), and before 1.29.7 that default is
`Connection: close`. The classic failure: `proxy_set_header Connection "";` at
server level, one `proxy_set_header X-Foo bar;` in a location, and that
location silently sends `Connection: close` again, so upstream keep-alive is
defeated for it alone (verified on 1.28.3). Since
1.29.7 the lost `Connection ""` no longer breaks keep-alive, but the other
lost lines still change what the backend receives (`Host`, `X-Forwarded-*`,
WebSocket `Upgrade`/`Connection`).

## Example
```nginx
server {
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    location /api/ {
        proxy_set_header X-Request-Id $request_id;   # drops Connection ""
        proxy_pass http://app;
    }
}
```

## Fix
Repeat the lost lines in the block that defines its own list (the fix does
this, after that block's last `proxy_set_header`), or move the common lines
into a file that every level `include`s.

## References
- https://nginx.org/en/docs/http/ngx_http_proxy_module.html#proxy_set_header ("inherited from the previous configuration level if and only if there are no proxy_set_header directives defined on the current level"); the same wording for https://nginx.org/en/docs/http/ngx_http_grpc_module.html#grpc_set_header and https://nginx.org/en/docs/http/ngx_http_fastcgi_module.html#fastcgi_param
- nginx source: src/http/modules/ngx_http_proxy_module.c, `ngx_http_proxy_merge_loc_conf()` (`headers_source`); ngx_http_grpc_module.c, `ngx_http_grpc_merge_loc_conf()`; ngx_http_fastcgi_module.c, `ngx_http_fastcgi_merge_loc_conf()` (`params_source`)
"#,
};

/// The all-or-nothing list each protocol's requests are built from.
fn list_directive(protocol: Protocol) -> Option<&'static str> {
    match protocol {
        Protocol::Http => Some("proxy_set_header"),
        Protocol::Grpc => Some("grpc_set_header"),
        Protocol::FastCgi => Some("fastcgi_param"),
        Protocol::Uwsgi | Protocol::Scgi => None,
    }
}

/// Whether two list keys name the same thing: header names are
/// case-insensitive, FastCGI parameter names are not.
fn same_key(directive: &str, a: &str, b: &str) -> bool {
    if directive == "fastcgi_param" {
        a == b
    } else {
        a.eq_ignore_ascii_case(b)
    }
}

pub fn check(ctx: &Ctx) -> Vec<Finding> {
    // The levels that reset a list, with the keepalive routes under them:
    // one (level, list, route) triple per route, sorted and read in runs of
    // one level (a map holding a list per level cost tens of megabytes on
    // configurations with hundreds of thousands of locations).
    let mut levels: Vec<(BlockId, &'static str, RouteId)> = Vec::new();
    for r in ctx.keepalive_routes() {
        let route = ctx.model.route(r);
        let Some(directive) = list_directive(route.protocol) else {
            continue;
        };
        let level = if directive == "proxy_set_header" {
            ctx.headers(r).level
        } else {
            ctx.model.array(route.block, directive).level
        };
        if let Some(level) = level {
            levels.push((level, directive, r));
        }
    }
    levels.sort_unstable();
    let mut out = Vec::new();
    for run in levels.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
        let (level, directive, _) = run[0];
        let routes = run.iter().map(|&(_, _, r)| r);
        let own = ctx.model.array(level, directive);
        let parent = ctx.model.inherited_array(level, directive);
        let mut lost: Vec<&upkeep_syntax::Directive> = Vec::new();
        for d in &parent.entries {
            let Some(name) = d.args().first() else { continue };
            let name = name.text();
            let already = lost
                .iter()
                .filter_map(|l| l.args().first())
                .any(|l| same_key(directive, &l.text(), &name));
            let kept = own.entries.iter().any(|o| {
                o.args()
                    .first()
                    .is_some_and(|k| same_key(directive, &k.text(), &name))
            });
            if !kept && !already {
                lost.push(d);
            }
        }
        if lost.is_empty() {
            continue;
        }
        let Some(parent_level) = parent.level else {
            continue;
        };
        let names: Vec<String> = lost
            .iter()
            .filter_map(|d| d.args().first())
            .map(|w| w.text().into_owned())
            .collect();
        let connection_lost = directive == "proxy_set_header"
            && names.iter().any(|n| n.eq_ignore_ascii_case("connection"));
        let what = if directive == "fastcgi_param" {
            "parameter(s)"
        } else {
            "header(s)"
        };
        let mut message = format!(
            "{} sets its own `{directive}` list, so the {what} set in {} are not inherited: {}",
            ctx.describe(level),
            ctx.describe(parent_level),
            names.join(", ")
        );
        if connection_lost && ctx.model.target.sends_connection_close() {
            message.push_str(
                "; without its `Connection` line nginx sends `Connection: close` and the upstream connection is not reused",
            );
        }
        let mut f = INFO
            .finding(message)
            .at(own.entries[0].span())
            .with_label(format!("a level with any {directive} inherits none"));
        for d in &lost {
            f = f.related(d.span(), format!("not inherited by {}", ctx.describe(level)));
        }
        for r in routes.take(2) {
            let route = ctx.model.route(r);
            f = f.related(route.pass.span(), "keepalive route affected");
        }
        let lines: Vec<String> = lost.iter().map(|d| ctx.text(d.span())).collect();
        if let Some(edit) =
            edits::insert_lines_in_block(ctx, level, &lines, |d| d.name_is(directive))
        {
            f = f
                .help(format!(
                    "repeat the lost line(s) in {}: {}",
                    ctx.describe(level),
                    lines.join(" ")
                ))
                .with_fix(Fix {
                    applicability: Applicability::Safe,
                    description: format!("repeat {} in {}", names.join(", "), ctx.describe(level)),
                    edits: vec![edit],
                });
        }
        if connection_lost {
            f = ctx.with_version_note(f);
        }
        out.push(f);
    }
    out
}
