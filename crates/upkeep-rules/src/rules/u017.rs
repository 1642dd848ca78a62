use upkeep_diag::{Finding, Severity};
use upkeep_facts::Flavor;

use crate::context::Ctx;
use crate::registry::RuleInfo;

pub const INFO: RuleInfo = RuleInfo {
    id: "U017",
    name: "proxy-http-version-unsupported",
    severity: Severity::Error,
    fixable: false,
    summary: "`proxy_http_version` has a value the target server does not accept (`2` before nginx 1.29.4): nginx refuses to start.",
    doc: r#"## What it finds
A `proxy_http_version` value the target server rejects. nginx accepts `1.0`
and `1.1`, and `2` (HTTP/2 to the backend) since 1.29.4; Angie accepts `2`
since 1.12.0 and `3` since 1.4.0; freenginx (up to 1.29.7 at least) accepts
only `1.0` and `1.1`.

## Why it matters
`proxy_http_version` is an enumerated directive: any other value stops
`nginx -t` and a reload with `[emerg] invalid value "2" in FILE:LINE`
(`ngx_conf_set_enum_slot`; checked with nginx 1.22). A configuration written for a newer
nginx, or a fork, fails to load on an older one; on the version that
accepts it, what `2` means for connection reuse is in U018 and U019.

## Example
```nginx
location / {
    proxy_http_version 2;        # nginx 1.28: invalid value
    proxy_pass http://app;
}
```

## Fix
Upgrade nginx (1.29.4 or later for `2`), or use `proxy_http_version 1.1;`
if the backend speaks HTTP/1.1. No automatic fix: which protocol the backend
speaks is not in the configuration.

## References
- https://nginx.org/en/docs/http/ngx_http_proxy_module.html#proxy_http_version
- nginx source: src/http/modules/ngx_http_proxy_module.c, `ngx_http_proxy_http_version[]` (`2` added with ngx_http_proxy_v2_module, commit 9bf758ea4, release 1.29.4); Angie: commit 40c393a9b (1.12.0); freenginx 1.29.7: src/http/modules/ngx_http_proxy_module.c accepts 1.0 and 1.1 only
"#,
};

/// The values the target accepts, and a phrase saying since when the
/// rejected one would be.
fn accepted(ctx: &Ctx, value: &str) -> Result<(), String> {
    let target = ctx.model.target;
    match value {
        "1.0" | "1.1" => Ok(()),
        "2" if target.has_proxy_http2() => Ok(()),
        "2" => Err(match target.flavor {
            Flavor::Nginx => "HTTP/2 to backends came in nginx 1.29.4".to_string(),
            Flavor::Angie => "HTTP/2 to backends came in Angie 1.12.0".to_string(),
            Flavor::Freenginx => "freenginx has no HTTP/2 to backends".to_string(),
        }),
        "3" if target.flavor == Flavor::Angie
            && target.version >= upkeep_facts::NginxVersion::new(1, 4, 0) =>
        {
            Ok(())
        }
        "3" => Err("only Angie 1.4.0 and later proxy over HTTP/3".to_string()),
        _ => Err("accepted values are 1.0, 1.1 and, on recent versions, 2".to_string()),
    }
}

pub fn check(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    for block in &ctx.model.blocks {
        if !block.kind.is_http_level() {
            continue;
        }
        for d in block.directives_named("proxy_http_version") {
            let Some(arg) = d.args().first() else { continue };
            if arg.value().contains(&b'$') {
                continue;
            }
            let value = arg.text();
            if let Err(why) = accepted(ctx, &value) {
                let f = INFO
                    .finding(format!(
                        "{} does not accept `proxy_http_version {value}` ({why}): nginx refuses the configuration with `invalid value \"{value}\"`",
                        ctx.model.target
                    ))
                    .at(d.span())
                    .with_label("rejected by the target version")
                    .help("upgrade the server, or use `proxy_http_version 1.1;` if the backend speaks HTTP/1.1");
                out.push(ctx.with_version_note(f));
            }
        }
    }
    out
}
