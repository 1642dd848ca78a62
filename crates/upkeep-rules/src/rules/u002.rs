use std::collections::BTreeMap;

use upkeep_diag::{Applicability, Finding, Fix, Severity};
use upkeep_model::{Protocol, RouteId, Value};

use crate::context::Ctx;
use crate::edits;
use crate::registry::RuleInfo;

pub const INFO: RuleInfo = RuleInfo {
    id: "U002",
    name: "proxy-http-version-1.0",
    severity: Severity::Error,
    fixable: true,
    summary: "A route proxies to a keepalive upstream over HTTP/1.0, so the pool stays empty.",
    doc: r#"## What it finds
A `proxy_pass` route to an upstream with an idle pool whose effective
`proxy_http_version` is `1.0`: set explicitly, or the default on nginx before
1.29.7 (1.1.4–1.29.6 default to 1.0; 1.29.7 changed it to 1.1, commit
6bb27a631).

## Why it breaks reuse
With `proxy_http_version 1.0` nginx writes `HTTP/1.0` in the request line
and, before 1.29.7, also `Connection: close`. An HTTP/1.0 request is not
persistent unless the backend goes out of its way, so a compliant backend
closes after the response; and whenever the backend answers with an HTTP/1.0
status line nginx itself marks the connection as closing
(`ngx_http_proxy_process_status_line` sets `connection_close`, verified). The
keepalive module only caches connections that are still usable
(`ngx_http_upstream_free_keepalive_peer`), so the pool you configured stays
empty and every request opens a new connection.

The one exception is the workaround some guides give for HTTP/1.0:
`proxy_set_header Connection keep-alive;`. The connection is then kept only
when the backend answers with an HTTP/1.1 status line and leaves the
connection open (nginx as a backend does); a backend that answers
`HTTP/1.0 200` still loses it, even with `Connection: keep-alive` in its
answer, and so does one that ends its answer by closing. The finding says
so for such routes; HTTP/1.1 does not depend on the backend's choice.

## Example
```nginx
upstream app { server 127.0.0.1:8000; keepalive 32; }
server {
    location / { proxy_pass http://app; }   # nginx 1.28: HTTP/1.0 by default
}
```

## Fix
`proxy_http_version 1.1;` in the narrowest block that covers every affected
route (or change the explicit `1.0`).

## References
- https://nginx.org/en/docs/http/ngx_http_proxy_module.html#proxy_http_version
- nginx source: src/http/modules/ngx_http_proxy_module.c, `ngx_http_proxy_create_request()` (request line, `Connection`), `ngx_http_proxy_process_status_line()` (an HTTP/1.0 status line closes)
"#,
};

/// When an HTTP/1.0 request that asks for keep-alive keeps its connection.
const WHEN_KEPT: &str = "the backend answers with an HTTP/1.1 status line and leaves the connection open (an HTTP/1.0 answer makes nginx close it)";

/// The outcome for routes that send `Connection: keep-alive` over HTTP/1.0.
const BACKEND_DECIDES: &str = "the connection is reused only if the backend answers with an HTTP/1.1 status line and leaves the connection open (an HTTP/1.0 answer makes nginx close it)";

/// Whether route `r` sends a literal `Connection: keep-alive`: an HTTP/1.0
/// request that asks to be persistent, which a backend may honour.
/// (Every `Connection` line is sent, so a `close` or a variable beside it
/// leaves the request not asking.)
fn asks_for_keep_alive(ctx: &Ctx, r: RouteId) -> bool {
    let values: Vec<String> = ctx
        .headers(r)
        .entries_for("Connection")
        .iter()
        .filter_map(|d| d.args().get(1))
        .filter(|v| !v.value().is_empty())
        .map(|v| v.text().to_ascii_lowercase())
        .collect();
    !values.is_empty()
        && values
            .iter()
            .all(|v| !v.contains('$') && v.contains("keep-alive") && !v.contains("close"))
}

pub fn check(ctx: &Ctx) -> Vec<Finding> {
    let mut explicit: BTreeMap<(u32, u32), (upkeep_model::Setting, Vec<RouteId>)> = BTreeMap::new();
    let mut defaulted: Vec<RouteId> = Vec::new();
    for r in ctx.keepalive_routes() {
        let route = ctx.model.route(r);
        if route.protocol != Protocol::Http {
            continue;
        }
        match ctx.http_version(r) {
            Value::Set(s) if s.arg_is(0, "1.0") => {
                let key = (s.directive.span().file.0, s.directive.span().start);
                explicit.entry(key).or_insert((s, Vec::new())).1.push(r);
            }
            Value::Default("1.0") => defaulted.push(r),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (setting, routes) in explicit.into_values() {
        let asking = routes
            .iter()
            .filter(|&&r| asks_for_keep_alive(ctx, r))
            .count();
        let outcome = if asking == routes.len() {
            BACKEND_DECIDES.to_string()
        } else if asking > 0 {
            format!("the backend closes the connection after each response ({asking} of them send `Connection: keep-alive` and keep it only if {WHEN_KEPT})")
        } else {
            "the backend closes the connection after each response".to_string()
        };
        let mut f = INFO
            .finding(format!(
                "`proxy_http_version 1.0` applies to {} route(s) that proxy to a keepalive upstream: nginx sends HTTP/1.0 and {outcome}",
                routes.len()
            ))
            .at(setting.directive.span())
            .with_label("HTTP/1.0 here");
        for &r in routes.iter().take(3) {
            let route = ctx.model.route(r);
            f = f.related(
                route.pass.span(),
                format!("{} inherits it", ctx.describe(route.block)),
            );
        }
        f = f.help("use `proxy_http_version 1.1;`").with_fix(Fix {
            applicability: Applicability::Safe,
            description: "set `proxy_http_version 1.1`".into(),
            edits: vec![edits::replace_args(setting.directive, "1.1")],
        });
        out.push(f);
    }
    if defaulted.is_empty() {
        return out;
    }
    let fix = edits::SharedInsert::covering_routes(ctx, &defaulted, "proxy_http_version 1.1;", |d| {
        d.name().value().starts_with(b"proxy_")
    });
    for &r in &defaulted {
        let route = ctx.model.route(r);
        let ups = ctx.keepalive_upstream_names(r);
        let outcome = if asks_for_keep_alive(ctx, r) {
            format!("it sends `Connection: keep-alive`, so {BACKEND_DECIDES}")
        } else {
            "the idle pool stays empty".to_string()
        };
        let mut f = INFO
            .finding(format!(
                "{} proxies to keepalive upstream `{}` over HTTP/1.0 ({}): {outcome}",
                ctx.describe(route.block),
                ups,
                ctx.default_of_target("the default before nginx 1.29.7")
            ))
            .at(route.pass.span())
            .with_label("HTTP/1.0 request (default)");
        if let Some(fix) = &fix {
            f = fix.offer(ctx, f);
        }
        out.push(ctx.with_version_note(f));
    }
    out
}

#[cfg(test)]
mod tests {
    use upkeep_model::SingleFile;

    use crate::{check, CheckOptions};

    fn u002_messages(conf: &str) -> Vec<String> {
        let src = SingleFile::parse("nginx.conf", conf).unwrap();
        check(&src, &CheckOptions::default())
            .findings
            .into_iter()
            .filter(|f| f.rule == "U002")
            .map(|f| f.message)
            .collect()
    }

    fn conf(http_version: &str, connection: &str) -> String {
        format!(
            "events {{}}\nhttp {{\n{http_version}\nupstream app {{ server 127.0.0.1:8000; keepalive 8; }}\n\
             server {{ listen 8080;\nlocation /a/ {{ {connection} proxy_pass http://app; }}\n\
             location /b/ {{ proxy_set_header Connection \"\"; proxy_pass http://app; }} }}\n}}\n"
        )
    }

    #[test]
    fn a_route_that_asks_for_keep_alive_over_http_1_0_is_told_the_backend_decides() {
        let messages = u002_messages(&conf("", "proxy_set_header Connection keep-alive;"));
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(
            messages[0].starts_with("location /a/")
                && messages[0].contains("it sends `Connection: keep-alive`, so the connection is reused only if the backend answers with an HTTP/1.1 status line"),
            "{messages:?}"
        );
        assert!(
            messages[1].starts_with("location /b/")
                && messages[1].ends_with("the idle pool stays empty"),
            "{messages:?}"
        );
    }

    #[test]
    fn an_explicit_http_1_0_says_which_routes_ask_for_keep_alive() {
        let mixed = u002_messages(&conf(
            "proxy_http_version 1.0;",
            "proxy_set_header Connection \"Keep-Alive\";",
        ));
        assert_eq!(mixed.len(), 1, "{mixed:?}");
        assert!(
            mixed[0].contains("the backend closes the connection after each response (1 of them send `Connection: keep-alive` and keep it only if the backend answers with an HTTP/1.1 status line"),
            "{mixed:?}"
        );
        let none = u002_messages(&conf("proxy_http_version 1.0;", ""));
        assert!(
            none[0].ends_with("the backend closes the connection after each response"),
            "{none:?}"
        );
    }
}
