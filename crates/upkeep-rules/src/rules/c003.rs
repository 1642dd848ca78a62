use std::collections::BTreeMap;

use upkeep_diag::{Applicability, Finding, Fix, Severity};
use upkeep_facts::{describe_duration, format_duration, parse_duration, NGX_MAX_INT};
use upkeep_model::{BlockKind, Value};

use crate::context::Ctx;
use crate::edits;
use crate::registry::RuleInfo;

pub const INFO: RuleInfo = RuleInfo {
    id: "C003",
    name: "client-idle-shorter-than-front",
    severity: Severity::Error,
    fixable: true,
    summary: "nginx's client `keepalive_timeout` is not longer than the idle timeout of the load balancer in front.",
    doc: r#"## What it finds
When a front proxy or load balancer is declared (`--front aws-alb`,
`gcp-alb`, `cloudflare`, `traefik`, `caddy`, `envoy`… from
`upkeep profiles`, or `--front-idle 60s`), a server (or location) whose
effective client `keepalive_timeout` (default 75s) is not longer than the
front's idle timeout toward nginx.

## Why it breaks reuse
The side that sends requests must give up an idle connection before the
side that serves them. Here the front sends and nginx serves: if nginx closes
an idle connection (its `keepalive_timeout` expired; the close is silent,
`ngx_http_set_keepalive`) while the front still considers it reusable, the
front's next request on it meets a closed socket and the front returns 502
to the client. AWS asks for "the idle timeout of your application to be
larger than the idle timeout configured for the load balancer". Fronts with
long idle timeouts trip nginx's 75s default: GCP 600 s, Cloudflare 900 s,
Envoy 1 h, Caddy 120 s, Traefik 90 s (`upkeep profiles`). Some popular
guides state this rule backwards; it is nginx that must wait longer.

## Example
With `--front gcp-alb` (600 s):
```nginx
http {
    keepalive_timeout 65;
}
```

## Fix
Set `keepalive_timeout` above the front's idle timeout: the fix writes the
front's idle timeout plus 10 % (at least 1 s, at most 20 s), e.g. `66s` for
an AWS ALB (60 s) and `620s` for GCP (Google suggests 620 s).

## References
- `upkeep profiles` (front idle timeouts, each with its source: AWS, GCP, Cloudflare… documentation)
- https://nginx.org/en/docs/http/ngx_http_core_module.html#keepalive_timeout
- "the side that sends requests must give up an idle connection first"
"#,
};

pub fn check(ctx: &Ctx) -> Vec<Finding> {
    let Some((front_ms, front_desc)) = ctx.opts.front() else {
        return Vec::new();
    };
    let margin = (front_ms / 10).clamp(1000, 20_000);
    // nginx takes at most 9223372036854775807ms for `keepalive_timeout`
    // (ngx_parse_time; checked with nginx 1.22): the margin is cut there,
    // and a front that idles at least that long cannot be outlasted.
    let wanted_ms = front_ms.saturating_add(margin).min(NGX_MAX_INT);
    let outlasted = wanted_ms > front_ms;
    let wanted = format_duration(wanted_ms);
    let help = |longer: &str| {
        if outlasted {
            format!("set `keepalive_timeout {wanted};`{longer}")
        } else {
            format!(
                "shorten the front's idle timeout: nginx takes at most {NGX_MAX_INT}ms for `keepalive_timeout`, not longer than the front's"
            )
        }
    };
    let mut out = Vec::new();
    let mut explicit: BTreeMap<(u32, u32), Vec<usize>> = BTreeMap::new();
    let mut defaulted: Vec<usize> = Vec::new();
    // Servers, and locations that set their own value.
    let scopes: Vec<usize> = (0..ctx.model.blocks.len())
        .filter(|&b| {
            let block = ctx.model.block(b);
            block.kind == BlockKind::Server
                || (block.kind.is_location_like() && block.last("keepalive_timeout").is_some())
        })
        .collect();
    for b in scopes {
        match ctx.model.value(b, "keepalive_timeout") {
            Value::Set(s) => {
                let Some(ms) = s.arg(0).and_then(|a| parse_duration(&a).ok()) else {
                    continue;
                };
                if ms == 0 || ms > front_ms {
                    continue; // 0 is C002's
                }
                explicit
                    .entry((s.directive.span().file.0, s.directive.span().start))
                    .or_default()
                    .push(b);
            }
            Value::Default(d) => {
                if parse_duration(d).is_ok_and(|ms| ms <= front_ms) {
                    defaulted.push(b);
                }
            }
            Value::Absent => {}
        }
    }
    for (_, blocks) in explicit {
        let s = ctx.model.setting(blocks[0], "keepalive_timeout").unwrap();
        let d = s.directive;
        let current = s.arg(0).unwrap_or_default();
        let mut f = INFO
            .finding(format!(
                "nginx closes idle client connections after {current}, not later than {front_desc}: the front reuses connections nginx is closing and answers 502"
            ))
            .at(d.span())
            .with_label(format!("not longer than the front's {}", describe_duration(front_ms)))
            .help(help(" (longer than the front's idle timeout)"));
        if let Some(edit) = edits::replace_arg(d, 0, &wanted).filter(|_| outlasted) {
            f = f.with_fix(Fix {
                applicability: Applicability::Safe,
                description: format!("set the client keepalive_timeout to {wanted}"),
                edits: vec![edit],
            });
        }
        out.push(f);
    }
    if !defaulted.is_empty() {
        let level = edits::covering_level(ctx, &defaulted);
        let edit = level.and_then(|l| {
            edits::insert_in_block(ctx, l, &format!("keepalive_timeout {wanted};"), |d| {
                d.name().value().starts_with(b"keepalive")
            })
        });
        for &b in &defaulted {
            let Some(d) = ctx.model.block(b).directive else {
                continue;
            };
            let mut f = INFO
                .finding(format!(
                    "{} closes idle client connections after 75s (the default), not later than {front_desc}: the front reuses connections nginx is closing and answers 502",
                    ctx.describe(b)
                ))
                .at(ctx.head(d))
                .with_label("keepalive_timeout 75s (default)")
                .help(help(""));
            if let (Some(l), Some(edit), true) = (level, &edit, outlasted) {
                f = f.with_fix(Fix {
                    applicability: Applicability::Safe,
                    description: format!(
                        "add `keepalive_timeout {wanted};` to {}",
                        ctx.describe(l)
                    ),
                    edits: vec![edit.clone()],
                });
            }
            out.push(f);
        }
    }
    out
}
