use upkeep_diag::{Applicability, Finding, Fix, Severity};
use upkeep_facts::landmarks;

use crate::context::Ctx;
use crate::edits;
use crate::registry::RuleInfo;

pub const INFO: RuleInfo = RuleInfo {
    id: "U008",
    name: "backend-request-cap",
    severity: Severity::Info,
    fixable: true,
    summary: "The backend closes a connection after N requests, fewer than nginx's upstream `keepalive_requests`.",
    doc: r#"## What it finds
An upstream with an idle pool whose backend closes a connection after N
requests (declared inline, in upkeep.toml, by a profile such as Tomcat's
`maxKeepAliveRequests` 100 or Apache's `MaxKeepAliveRequests` 100, or
measured by `upkeep probe`) where N is below the upstream's effective
`keepalive_requests` (1000 since nginx 1.19.10, 100 from 1.15.3; no limit
before 1.15.3).

## Why it breaks reuse
Reuse is capped at N requests per connection, whatever nginx allows. That is
harmless when the backend announces the close: a response carrying
`Connection: close` makes nginx close instead of caching the connection
(`ngx_http_upstream_process_connection`). Tomcat,
Apache httpd, Puma and Hypercorn do. A backend that closes WITHOUT announcing
it leaves nginx with a cached connection that is already dead, and the next
request on it fails like a stale idle connection (U007): in
that case, found by `probe`, the severity is error.

## Example
```nginx
upstream tomcat {
    # upkeep: backend tomcat      (maxKeepAliveRequests 100)
    server 127.0.0.1:8080;
    keepalive 32;
}
```

## Fix
When the backend announces the close, nothing is needed (raise the backend's
limit for more reuse). When it does not, set `keepalive_requests N-1;` in the
upstream (available since nginx 1.15.3) so nginx retires the connection first.

## References
- https://nginx.org/en/docs/http/ngx_http_upstream_module.html#keepalive_requests
- nginx source: src/http/ngx_http_upstream.c, `ngx_http_upstream_process_connection()` (`Connection: close` from the upstream); src/http/modules/ngx_http_upstream_keepalive_module.c, `ngx_http_upstream_free_keepalive_peer()`
- `upkeep profiles` (request caps of backend servers)
"#,
};

pub fn check(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    for (uid, up) in ctx.model.upstreams.iter().enumerate() {
        if !up.is_keepalive(ctx.version) {
            continue;
        }
        let Some(facts) = ctx.backend(uid) else {
            continue;
        };
        let Some(cap) = facts.max_requests.filter(|n| *n > 0) else {
            continue;
        };
        let nginx_cap = up.keepalive_requests(ctx.version);
        if nginx_cap.is_some_and(|k| cap >= k) {
            continue;
        }
        let nginx_text = match (nginx_cap, up.keepalive_requests) {
            (Some(k), Some(_)) => format!("keepalive_requests {k}"),
            (Some(k), None) => format!("keepalive_requests {k} (default)"),
            (None, _) => "no request limit (nginx before 1.15.3)".into(),
        };
        let silent = facts.announces_close == Some(false);
        let head = ctx.head(up.directive);
        let what = if cap == 1 {
            "closes the connection after every request: nginx never reuses a connection to it"
                .to_string()
        } else {
            format!("closes a connection after {cap} requests, so reuse is capped at {cap}")
        };
        let mut f = INFO
            .finding(format!(
                "the backend of upstream `{}` {what} ({}; nginx allows {nginx_text})",
                up.name, facts.source
            ))
            .at(up.keepalive_requests.map(|d| d.span()).unwrap_or(head))
            .with_label(nginx_text.clone());
        if silent {
            f.severity = Severity::Error;
            f = f.note("the backend closes without sending `Connection: close` on the last response, so nginx keeps a dead connection in its pool and the next request on it fails");
            if ctx.version >= landmarks::UPSTREAM_KEEPALIVE_TIMEOUT && cap > 1 {
                let text = format!("keepalive_requests {};", cap - 1);
                let edit = match up.keepalive_requests {
                    Some(d) => Some(edits::replace_args(d, &(cap - 1).to_string())),
                    None => edits::insert_in_block(ctx, up.block, &text, |d| {
                        d.name_is("keepalive") || d.name_is("keepalive_timeout")
                    }),
                };
                f = f.help(format!(
                    "set `{text}` in upstream `{}` so nginx retires connections first",
                    up.name
                ));
                if let Some(edit) = edit {
                    f = f.with_fix(Fix {
                        applicability: Applicability::Safe,
                        description: format!("set `{text}` in upstream `{}`", up.name),
                        edits: vec![edit],
                    });
                }
            } else {
                f = f.help("make the backend announce the close (`Connection: close`) or lift its limit; nginx before 1.15.3 cannot cap requests per upstream connection");
            }
        } else {
            f = f.note(if facts.announces_close == Some(true) {
                "the backend announces the close with `Connection: close`, so nginx does not reuse the closing connection: no errors, only less reuse"
            } else {
                "backends that announce the close (`Connection: close` on the last response) cause no errors; if `upkeep probe` finds this one closes silently, this becomes an error"
            })
            .help("raise the backend's per-connection request limit for more reuse");
        }
        out.push(ctx.with_version_note(f));
    }
    out
}
