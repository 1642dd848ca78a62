use std::collections::BTreeMap;

use upkeep_diag::{Applicability, Finding, Fix, Severity};
use upkeep_model::{Protocol, RequestKind};

use crate::context::Ctx;
use crate::registry::RuleInfo;

pub const INFO: RuleInfo = RuleInfo {
    id: "U005",
    name: "connection-upgrade-map-closes",
    severity: Severity::Warning,
    fixable: true,
    summary: "A `Connection` header set from a map sends `close` for every ordinary (non-upgrade) request.",
    doc: r#"## What it finds
A route to a keepalive upstream with `proxy_set_header Connection $var;` where
`$var` comes from a `map` that yields `close` for an ordinary request (no
`Upgrade` header). The widely copied WebSocket snippet does exactly that:

```nginx
map $http_upgrade $connection_upgrade {
    default upgrade;
    ''      close;
}
```

upkeep evaluates the map (chains of maps included) for an ordinary request
(`$http_upgrade` empty) and for a WebSocket handshake (`websocket`).

## Why it breaks reuse
For every non-WebSocket request the header becomes `Connection: close`, and
the backend closes the connection after its response, so the idle pool never
keeps anything (the same effect as U003). WebSocket
requests are not affected: an upgraded connection is never returned to the
pool anyway (`u->keepalive` stays 0 for upgraded connections).

## Example
The map above with
```nginx
location / {
    proxy_http_version 1.1;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection $connection_upgrade;
    proxy_pass http://app;        # upstream app has keepalive
}
```

## Fix
Map the empty value to an empty string, which makes nginx send no
`Connection` header for ordinary requests: `'' "";`. Upgrade requests still
get `Connection: upgrade`.

## References
- nginx source: src/http/modules/ngx_http_proxy_module.c, `ngx_http_proxy_create_request()` (an empty header value is not sent); `ngx_http_proxy_process_header()` (upgraded connections are never cached)
- https://nginx.org/en/docs/http/websocket.html ("WebSocket proxying", the map idiom)
"#,
};

pub fn check(ctx: &Ctx) -> Vec<Finding> {
    // One finding per map line that yields `close`, listing the routes.
    let mut by_entry: BTreeMap<(u32, u32), (Finding, usize)> = BTreeMap::new();
    for r in ctx.keepalive_routes() {
        let route = ctx.model.route(r);
        if route.protocol != Protocol::Http {
            continue;
        }
        if ctx.http_version(r).is("2") {
            continue; // HTTP/2 to the backend has no Connection header
        }
        let list = ctx.headers(r);
        // nginx sends every `Connection` line: the one set from a variable
        // counts even when another line follows it.
        for header in list.entries_for("Connection") {
        let Some(value) = header.args().get(1) else {
            continue;
        };
        let value_text = value.text();
        let Some(var) = value_text.strip_prefix('$') else {
            continue;
        };
        let var = var.trim_start_matches('{').trim_end_matches('}');
        let Some(map) = ctx.model.map_defining(var) else {
            continue;
        };
        let Some(ordinary) = ctx.model.evaluate(&value_text, RequestKind::Ordinary) else {
            continue;
        };
        if !ordinary.to_ascii_lowercase().contains("close") {
            continue;
        }
        // The map line responsible, when the map itself is the last step.
        let input = ctx.model.evaluate(&map.source, RequestKind::Ordinary);
        let entry = input.and_then(|i| map.lookup(&i)).and_then(|m| m.entry);
        let primary = entry
            .as_ref()
            .map(|e| e.directive.span())
            .unwrap_or(map.directive.span());
        let key = (primary.file.0, primary.start);
        if let Some((f, n)) = by_entry.get_mut(&key) {
            *n += 1;
            if *n <= 3 {
                *f = f.clone().related(
                    route.pass.span(),
                    format!("also used by {}", ctx.describe(route.block)),
                );
            }
            continue;
        }
        let upgrade = ctx
            .model
            .evaluate(&value_text, RequestKind::Upgrade)
            .unwrap_or_else(|| "?".into());
        let mut f = INFO
            .finding(format!(
                "`${var}` is `{ordinary}` for every ordinary (non-WebSocket) request, so {} sends `Connection: {ordinary}` to keepalive upstream(s) and the backend closes after each response",
                ctx.describe(route.block)
            ))
            .at(primary)
            .with_label(format!("ordinary requests get `{ordinary}` here"))
            .related(header.span(), format!("`Connection` is set from `${var}` (upgrade requests get `{upgrade}`)"))
            .related(route.pass.span(), format!("{} proxies to a keepalive upstream", ctx.describe(route.block)));
        if let Some(e) = &entry {
            if !e.value.contains('$') {
                f = f
                    .help("map the empty value to an empty string, e.g. `'' \"\";`: nginx then sends no Connection header for ordinary requests")
                    .with_fix(Fix {
                        applicability: Applicability::Safe,
                        description: format!("make `${var}` empty instead of `{ordinary}` for ordinary requests"),
                        edits: vec![upkeep_diag::Edit::replace(e.value_span(), "\"\"")],
                    });
            }
        }
        by_entry.insert(key, (f, 1));
        }
    }
    by_entry.into_values().map(|(f, _)| f).collect()
}
