use upkeep_diag::{Applicability, Finding, Fix, Severity};
use upkeep_facts::parse_duration;

use crate::context::Ctx;
use crate::edits;
use crate::registry::RuleInfo;

pub const INFO: RuleInfo = RuleInfo {
    id: "C002",
    name: "client-keepalive-disabled",
    severity: Severity::Warning,
    fixable: true,
    summary: "`keepalive_timeout 0` turns off client keep-alive.",
    doc: r#"## What it finds
`keepalive_timeout 0` in an http, server or location block that serves
ordinary traffic. An http-level value that every server block replaces with
its own is not reported: no request is served with it. Nor is a server-level value that every
location of the server replaces, when every request reaches a location (the
server has a `location /` and answers nothing itself: no `if`, `return` or
`rewrite` at server level) and the server speaks only HTTP/1.x.

## Why it breaks reuse
`keepalive_timeout 0` makes nginx clear `r->keepalive` for every request
(`ngx_http_update_location_config`), answer with `Connection: close` and
close the client connection after each response (nginx docs: "A value of
zero disables keep-alive client connections"). Every request then pays a new TCP (and TLS) handshake, and a
load balancer in front of nginx cannot pool its connections to nginx.

## Example
```nginx
server {
    keepalive_timeout 0;
}
```

## Fix
Remove the line or set a real timeout; the fix writes the default `75s`.
Marked unsafe: a `0` is sometimes written on purpose.

## References
- https://nginx.org/en/docs/http/ngx_http_core_module.html#keepalive_timeout
- nginx source: src/http/ngx_http_core_module.c, `ngx_http_update_location_config()`
"#,
};

pub fn check(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    for (id, block) in ctx.model.blocks.iter().enumerate() {
        if !block.kind.is_http_level() {
            continue;
        }
        // A value every lower level replaces affects no request.
        if ctx.applies_to_no_request(id, "keepalive_timeout") {
            continue;
        }
        for d in block.directives_named("keepalive_timeout") {
            let Some(first) = d.args().first() else {
                continue;
            };
            if parse_duration(&first.text()) != Ok(0) {
                continue;
            }
            let f = INFO
                .finding(format!(
                    "`keepalive_timeout 0` turns off client keep-alive in {}: every response closes the connection",
                    ctx.describe(id)
                ))
                .at(d.span())
                .with_label("client keep-alive off")
                .help("remove the line or set a timeout such as `keepalive_timeout 75s;` (the default)")
                .with_fix(Fix {
                    applicability: Applicability::Unsafe,
                    description: "set `keepalive_timeout 75s` (nginx's default)".into(),
                    edits: vec![edits::replace_args(d, "75s")],
                });
            out.push(f);
        }
    }
    out
}
