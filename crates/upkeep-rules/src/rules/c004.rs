use upkeep_diag::{Finding, Severity};
use upkeep_facts::parse_duration;

use crate::context::Ctx;
use crate::registry::RuleInfo;

pub const INFO: RuleInfo = RuleInfo {
    id: "C004",
    name: "client-header-advertised-mismatch",
    severity: Severity::Info,
    fixable: false,
    summary: "`keepalive_timeout` advertises (second argument) a longer timeout than nginx keeps.",
    doc: r#"## What it finds
`keepalive_timeout TIMEOUT HEADER_TIMEOUT;` where the second argument, sent
to clients as `Keep-Alive: timeout=N`, is larger than the first, the time
nginx really keeps an idle connection. An http-level value that every server
block replaces with its own is not reported: no request is served with it. Nor is a server-level value that every
location of the server replaces, when every request reaches a location (the
server has a `location /` and answers nothing itself: no `if`, `return` or
`rewrite` at server level) and the server speaks only HTTP/1.x.

## Why it breaks reuse
A client that honours the header keeps the connection for N seconds and
may send its next request on it after nginx has already closed it (silently,
`ngx_http_set_keepalive`); it then sees a reset or an empty reply and must retry
on a new connection. The header is emitted only when the second argument is
given ("Keep-Alive: timeout=time").

## Example
```nginx
keepalive_timeout 30s 60;
```

## Fix
Make the advertised value smaller than the real one (e.g. `75s 70`), or drop
the second argument.

## References
- https://nginx.org/en/docs/http/ngx_http_core_module.html#keepalive_timeout ("The optional second parameter sets a value in the Keep-Alive: timeout=time response header field")
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
            let (Some(a), Some(b)) = (d.args().first(), d.args().get(1)) else {
                continue;
            };
            let (Ok(real), Ok(told)) = (parse_duration(&a.text()), parse_duration(&b.text()))
            else {
                continue;
            };
            if told <= real || real == 0 {
                continue;
            }
            out.push(
                INFO.finding(format!(
                    "clients are told `Keep-Alive: timeout={}` but nginx closes idle connections after {}",
                    told / 1000,
                    a.text()
                ))
                .at(b.span())
                .with_label("advertised")
                .related(a.span(), "what nginx keeps")
                .help("advertise less than nginx keeps, or drop the second argument"),
            );
        }
    }
    out
}
