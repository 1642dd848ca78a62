use std::collections::BTreeMap;

use upkeep_diag::{Applicability, Edit, Finding, Fix, Severity};
use upkeep_model::RouteId;
use upkeep_syntax::{Directive, Span};

use crate::context::Ctx;
use crate::edits;
use crate::registry::RuleInfo;

pub const INFO: RuleInfo = RuleInfo {
    id: "U012",
    name: "stale-retry-disabled",
    severity: Severity::Warning,
    fixable: true,
    summary: "`proxy_next_upstream` without `error` on a keepalive route: a stale pooled connection becomes a client-visible 502.",
    doc: r#"## What it finds
A route to a keepalive upstream whose effective `proxy_next_upstream` (or
`fastcgi_`/`grpc_next_upstream`) lacks `error`, typically
`proxy_next_upstream off;`. nginx joins every line of the directive at one
level into one mask, and `off` on any of them clears it; the keywords are
read in any case (`Error`, `OFF`), as nginx reads them.

## Why it breaks reuse
A pooled connection can turn out to be closed by the backend when nginx sends
the next request on it (U007). nginx then calls `ngx_http_upstream_next` with
`NGX_HTTP_UPSTREAM_FT_ERROR`; since 1.9.13 a failure on a cached connection
follows `proxy_next_upstream` like any other (commit 5a76856dc). With `error`
in the mask (the default `error timeout`), idempotent requests are retried
transparently, and the failed try is given back (`u->peer.tries++` for cached
connections), so even `proxy_next_upstream_tries 1` still retries (verified).
Without `error` (`off` overrides everything), the request is finalised with
502 at once: every stale connection becomes an error the client sees.

## Example
```nginx
location / {
    proxy_next_upstream off;
    proxy_pass http://app;      # upstream app has keepalive
}
```

## Fix
Put `error` back: `proxy_next_upstream error timeout;` instead of `off`, or
add `error` to the list. POST/LOCK/PATCH stay unretried unless you also add
`non_idempotent`.

## References
- https://nginx.org/en/docs/http/ngx_http_proxy_module.html#proxy_next_upstream, https://nginx.org/en/docs/http/ngx_http_proxy_module.html#proxy_next_upstream_tries
- nginx source: src/http/ngx_http_upstream.c, `ngx_http_upstream_next()` (a failure on a cached connection gives its try back)
"#,
};

/// A `*_next_upstream` line without `error`, its level, and the routes it
/// reaches.
type RetryOff<'a> = (&'a upkeep_syntax::Directive, upkeep_model::BlockId, Vec<RouteId>);

pub fn check(ctx: &Ctx) -> Vec<Finding> {
    let mut by_directive: BTreeMap<(u32, u32), RetryOff> = BTreeMap::new();
    for r in ctx.keepalive_routes() {
        let route = ctx.model.route(r);
        let name = route.protocol.next_upstream_directive();
        let Some(s) = ctx.model.setting(route.block, name) else {
            continue; // default `error timeout`
        };
        // nginx joins every line of the level into one set
        // (`ngx_conf_set_bitmask_slot`), and `off` among them wins.
        let lines: Vec<&Directive> = ctx.model.block(s.block).directives_named(name).collect();
        let has = |k: &str| lines.iter().any(|d| d.args().iter().any(|a| a.is_keyword(k)));
        let (has_error, off) = (has("error"), has("off"));
        if has_error && !off {
            continue;
        }
        // The line to point at: the first `off`, else the last line.
        let primary = lines
            .iter()
            .find(|d| d.args().iter().any(|a| a.is_keyword("off")))
            .copied()
            .unwrap_or(s.directive);
        by_directive
            .entry((primary.span().file.0, primary.span().start))
            .or_insert((primary, s.block, Vec::new()))
            .2
            .push(r);
    }
    let mut out = Vec::new();
    for (d, level, routes) in by_directive.into_values() {
        let name = d.name().text().into_owned();
        let off = d.args().iter().any(|a| a.is_keyword("off"));
        let joined = ctx.model.block(level).directives_named(&name).count() > 1;
        // The message names the level: the same line at two levels (a
        // location's `off` hiding the server's) must stay two findings, or
        // the fix loop takes the second for the first one coming back.
        let mut f = INFO
            .finding(format!(
                "`{}` in {}{} disables the retry after a stale keep-alive connection for {} route(s): a connection the backend just closed becomes a 502 for the client, even for GET",
                ctx.text(d.span()).trim_end_matches(';'),
                ctx.describe(level),
                if joined {
                    format!(" (joined with the level's other `{name}` lines, as nginx joins them)")
                } else {
                    String::new()
                },
                routes.len()
            ))
            .at(d.span())
            .with_label("no `error` here");
        for &r in routes.iter().take(3) {
            let route = ctx.model.route(r);
            f = f.related(
                route.pass.span(),
                format!("{} inherits it", ctx.describe(route.block)),
            );
        }
        let (edits, help) = if off {
            // Every `off` line of the level, or the joined set stays off.
            let off_lines = ctx
                .model
                .block(level)
                .directives_named(&name)
                .filter(|l| l.args().iter().any(|a| a.is_keyword("off")))
                .map(|l| edits::replace_args(l, "error timeout"))
                .collect();
            (off_lines, format!("use `{name} error timeout;` (the default)"))
        } else {
            // Before the first argument; after the name of a line
            // without any (which nginx refuses, but the edit stays exact).
            let edit = match d.args().first() {
                Some(first) => {
                    let at = first.span();
                    Edit::insert(Span::new(at.file, at.start, at.start), "error ")
                }
                None => {
                    let at = d.name().span();
                    Edit::insert(Span::new(at.file, at.end, at.end), " error")
                }
            };
            (
                vec![edit],
                format!("add `error` to `{name}`"),
            )
        };
        f = f.help(help.clone()).with_fix(Fix {
            applicability: Applicability::Safe,
            description: help,
            edits,
        });
        out.push(f);
    }
    out
}
