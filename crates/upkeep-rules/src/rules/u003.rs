use std::collections::BTreeMap;

use upkeep_diag::{Applicability, Finding, Fix, Severity};
use upkeep_model::{BlockId, Protocol, RouteId};

use crate::context::Ctx;
use crate::edits;
use crate::registry::RuleInfo;

pub const INFO: RuleInfo = RuleInfo {
    id: "U003",
    name: "connection-close-sent",
    severity: Severity::Error,
    fixable: true,
    summary: "nginx sends `Connection: close` to a keepalive upstream.",
    doc: r#"## What it finds
A `proxy_pass` route to an upstream with an idle pool where nginx sends
`Connection: close` to the backend:

* on nginx before 1.29.7, the effective `proxy_set_header` list has no
  `Connection` entry, so nginx's built-in default `Connection: close` is sent
  (up to 1.29.3 the literal `close`; 1.29.4–1.29.6 `$proxy_internal_connection`,
  which is `close` for HTTP/1.x);
* on any version, `proxy_set_header Connection close;` (or a value containing
  `close`) is written explicitly. nginx sends every non-empty `Connection`
  line of the level, so one `close` line is enough even when another line
  of the same level sets `""`.

When a parent level did set `Connection` but the route's own level dropped it
by defining other headers, U004 reports it instead.

## Why it breaks reuse
`ngx_http_proxy_headers[]` holds the headers nginx adds to every proxied
request; before 1.29.7 it contained `Connection: close`. A backend receiving
`Connection: close` closes the connection after its response, so the
connection can never go back to the pool. Since 1.29.7 the default entry is
`Connection: ""`, which means the header is not sent at all (an empty value is
skipped in `ngx_http_proxy_create_request`). Verified on 1.28.3: the backend
received `Connection: close`.

## Example
```nginx
upstream app { server 127.0.0.1:8000; keepalive 32; }
server {
    proxy_http_version 1.1;
    location / { proxy_pass http://app; }   # nginx 1.28 sends Connection: close
}
```

## Fix
Add `proxy_set_header Connection "";` to the level whose `proxy_set_header`
list the route uses (an empty value means "do not send"), or to the narrowest
block covering the routes when no level sets any header; replace an explicit
`close` with `""`, or delete the `close` line when its list already has a
`Connection ""` line. Remember that a level with any `proxy_set_header`
inherits none from above (U004).

## References
- https://nginx.org/en/docs/http/ngx_http_proxy_module.html#proxy_set_header, https://nginx.org/en/docs/http/ngx_http_upstream_module.html#keepalive ("For HTTP, the proxy_http_version directive should be set to 1.1 and the Connection header field should be cleared")
- nginx source: src/http/modules/ngx_http_proxy_module.c, `ngx_http_proxy_headers[]` (the default `Connection` value by version)
"#,
};

/// A `Connection close` entry, the level holding its list, whether another
/// `Connection` line of that list has an empty value, and the routes it
/// reaches.
type ExplicitClose<'a> = (
    &'a upkeep_syntax::Directive,
    Option<BlockId>,
    bool,
    Vec<RouteId>,
);

pub fn check(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    // Routes missing a Connection entry, grouped by the level that holds
    // their proxy_set_header list (None: no level has any).
    let mut missing: BTreeMap<Option<BlockId>, Vec<RouteId>> = BTreeMap::new();
    let mut explicit: BTreeMap<(u32, u32), ExplicitClose> = BTreeMap::new();
    for r in ctx.keepalive_routes() {
        let route = ctx.model.route(r);
        if route.protocol != Protocol::Http {
            continue;
        }
        // HTTP/2 to the backend (1.29.4+) has no Connection header
        // (ngx_http_proxy_v2_module never sends connection-specific headers).
        if ctx.model.wire(r) == upkeep_model::Wire::Http2 {
            continue;
        }
        let list = ctx.headers(r);
        let connection = list.entries_for("Connection");
        match connection.first() {
            None => {
                if !ctx.model.target.sends_connection_close() {
                    continue;
                }
                if let Some(level) = list.level {
                    // A parent set it and this level lost it: U004's case.
                    if ctx
                        .model
                        .inherited_array(level, "proxy_set_header")
                        .entry("Connection")
                        .is_some()
                    {
                        continue;
                    }
                }
                missing.entry(list.level).or_default().push(r);
            }
            // nginx sends every entry's line, so one `close` is enough,
            // wherever it stands among the others.
            Some(_) => {
                for &d in &connection {
                    let Some(value) = d.args().get(1) else { continue };
                    if value.value().contains(&b'$') {
                        continue; // a variable: U005 evaluates maps
                    }
                    if value.text().to_ascii_lowercase().contains("close") {
                        explicit
                            .entry((d.span().file.0, d.span().start))
                            .or_insert_with(|| {
                                let empty_sibling = connection.iter().any(|e| {
                                    !std::ptr::eq(*e, d)
                                        && e.args().get(1).is_some_and(|v| v.value().is_empty())
                                });
                                (d, list.level, empty_sibling, Vec::new())
                            })
                            .3
                            .push(r);
                    }
                }
            }
        }
    }

    for (d, level, empty_sibling, routes) in explicit.into_values() {
        // Naming the level keeps the same line at two levels two distinct
        // findings for the fix loop (a copy made by U004's fix is not the
        // original coming back).
        let place = level
            .map(|l| format!(" (set in {})", ctx.describe(l)))
            .unwrap_or_default();
        let mut f = INFO
            .finding(format!(
                "`Connection: close` is sent to keepalive upstream(s) on {} route(s){place}: the backend closes the connection after every response",
                routes.len()
            ))
            .at(d.span())
            .with_label("asks the backend to close");
        for &r in routes.iter().take(3) {
            let route = ctx.model.route(r);
            f = f.related(
                route.pass.span(),
                format!("used by {}", ctx.describe(route.block)),
            );
        }
        // Another `Connection` line of the same list with an empty value
        // already sends no header (nginx skips a header whose value is
        // empty), so the `close` line goes rather than becoming a second
        // such line. The level keeps that line, so what it inherits is
        // unchanged.
        if empty_sibling {
            f = f
                .help("delete this line: the `proxy_set_header Connection \"\";` of the same list already sends no Connection header")
                .with_fix(Fix {
                    applicability: Applicability::Safe,
                    description: "delete the `Connection close` line (the list's empty `Connection` line remains)".into(),
                    edits: vec![edits::delete_directive(ctx, d)],
                });
        } else if let Some(edit) = edits::replace_arg(d, 1, "\"\"") {
            f = f
                .help("send no Connection header: `proxy_set_header Connection \"\";`")
                .with_fix(Fix {
                    applicability: Applicability::Safe,
                    description: "replace `close` with \"\" (no Connection header)".into(),
                    edits: vec![edit],
                });
        }
        out.push(f);
    }

    for (level, routes) in missing {
        // The list in effect gets the entry next to its other headers;
        // with no list, the covering level gets it next to the proxy_ settings.
        let prefer_headers = level.is_some();
        let prefer = |d: &upkeep_syntax::Directive| {
            if prefer_headers {
                d.name_is("proxy_set_header")
            } else {
                d.name().value().starts_with(b"proxy_")
            }
        };
        const ENTRY: &str = "proxy_set_header Connection \"\";";
        let fix = match level {
            Some(l) => edits::SharedInsert::in_block(ctx, l, ENTRY, prefer),
            None => edits::SharedInsert::covering_routes(ctx, &routes, ENTRY, prefer),
        };
        for &r in &routes {
            let route = ctx.model.route(r);
            let ups = ctx.keepalive_upstream_names(r);
            let mut f = INFO
                .finding(format!(
                    "{} sends `Connection: close` to keepalive upstream `{}` ({}): the backend closes after every response",
                    ctx.describe(route.block),
                    ups,
                    ctx.default_of_target("nginx's default before 1.29.7")
                ))
                .at(route.pass.span())
                .with_label("no `proxy_set_header Connection` in effect here");
            if let Some(l) = level {
                let first = ctx.headers(r).entries[0];
                f = f.related(
                    first.span(),
                    format!("the proxy_set_header list in effect ({})", ctx.describe(l)),
                );
            }
            if let Some(fix) = &fix {
                f = fix.offer(ctx, f);
            }
            out.push(ctx.with_version_note(f));
        }
    }
    out
}
