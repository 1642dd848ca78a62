use upkeep_diag::{Applicability, Finding, Fix, Severity};

use upkeep_model::OVERWRITING_BALANCERS;

use crate::context::Ctx;
use crate::edits;
use crate::registry::RuleInfo;

pub const INFO: RuleInfo = RuleInfo {
    id: "U006",
    name: "keepalive-before-balancer",
    severity: Severity::Error,
    fixable: true,
    summary: "`keepalive` written before the load-balancing method: the pool is silently lost (nginx < 1.29.7).",
    doc: r#"## What it finds
An `upstream{}` block where `keepalive` comes before `ip_hash`, `least_conn`,
`hash`, `random` (or another balancer such as `least_time`, `sticky`) on an
nginx version where the order matters: every version up to and including
1.29.6, so 1.28.x and 1.26.x stable too.

## Why it breaks reuse
Up to 1.29.6, `ngx_http_upstream_keepalive()` runs while the directive is
parsed: it saves the current `peer.init_upstream` (round robin) and installs
`ngx_http_upstream_init_keepalive` in its place. Every balancer directive
handler (`ngx_http_upstream_ip_hash`, `least_conn`, `hash`, `random`) then
overwrites `uscf->peer.init_upstream` with its own function, after logging
`[warn] load balancing method redefined`. So `ngx_http_upstream_init_keepalive`
never runs and the keep-alive cache is silently gone: `nginx -t` prints the
warning and still says "test is successful", and every request opens a new
connection (verified on 1.28.3). Since 1.29.7 (commit 4fbe4b627) the keepalive
module wraps `peer.init` in `init_main_conf` instead, so the order no longer
matters.

## Example
```nginx
upstream app {
    keepalive 32;
    least_conn;          # nginx: [warn] load balancing method redefined
    server 10.0.0.1:8000;
    server 10.0.0.2:8000;
}
```

## Fix
Move `keepalive` after the balancing method (the fix moves the line).

## References
- https://nginx.org/en/docs/http/ngx_http_upstream_module.html#keepalive ("When using load balancer methods other than the default round-robin method, it is necessary to activate them before the keepalive directive", before 1.29.7)
- nginx source: src/http/modules/ngx_http_upstream_keepalive_module.c, `ngx_http_upstream_keepalive()`; src/http/modules/ngx_http_upstream_ip_hash_module.c, `ngx_http_upstream_ip_hash()` (and the other balancers: "load balancing method redefined")
"#,
};

pub fn check(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    for up in &ctx.model.upstreams {
        let Some(balancer) = up.balancer_after_keepalive(ctx.version) else {
            continue;
        };
        let Some(keepalive) = up.directives.iter().find(|d| d.name_is("keepalive")) else {
            continue;
        };
        let mut f = INFO
            .finding(format!(
                "`{}` comes after `keepalive` in upstream `{}`: it replaces the keep-alive module's initialisation and the idle pool is silently lost (nginx -t only warns \"load balancing method redefined\")",
                balancer.name().text(),
                up.name
            ))
            .at(keepalive.span())
            .with_label("pool set up here")
            .related(balancer.span(), "this balancing method overwrites it")
            .help(format!("move `{}` after `{}`", ctx.text(keepalive.span()), ctx.text(balancer.span())));
        // Every balancer line after `keepalive` replaces its initialisation
        // (`ip_hash; ip_hash;` only warns twice), so `keepalive` must land
        // after the last of them, or the fix would need a second run.
        let last_balancer = up
            .directives
            .iter()
            .rev()
            .find(|d| OVERWRITING_BALANCERS.contains(&d.name().text().as_ref()))
            .copied()
            .unwrap_or(balancer);
        // Moving is only safe when both lines are in the same file.
        if keepalive.span().file == last_balancer.span().file {
            let text = ctx.text(keepalive.span());
            f = f.with_fix(Fix {
                applicability: Applicability::Safe,
                description: format!("move `{text}` after `{}`", last_balancer.name().text()),
                edits: vec![
                    edits::delete_directive(ctx, keepalive),
                    edits::insert_after(ctx, last_balancer, &text),
                ],
            });
        }
        out.push(ctx.with_version_note(f));
    }
    out
}
