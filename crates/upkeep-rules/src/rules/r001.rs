use upkeep_diag::{Applicability, Finding, Fix, Severity};
use upkeep_facts::NGX_MAX_INT;
use upkeep_model::BlockKind;

use crate::context::Ctx;
use crate::edits;
use crate::registry::RuleInfo;

pub const INFO: RuleInfo = RuleInfo {
    id: "R001",
    name: "worker-connections-over-nofile",
    severity: Severity::Warning,
    fixable: true,
    summary: "`worker_connections` exceeds `worker_rlimit_nofile`.",
    doc: r#"## What it finds
`worker_connections` larger than `worker_rlimit_nofile` in the main
configuration. Without `worker_rlimit_nofile`, nginx keeps the open-file
limit it inherits from whatever started it; `check` then assumes the soft
limit of a systemd service, 1024 unless the unit sets `LimitNOFILE=`, and
says so in the finding and among the report's assumptions. `upkeep doctor`
replaces that assumption with the running master's real limit.

## Why it breaks reuse
Every connection is a file descriptor: client connections, upstream
connections and the idle ones kept in upstream pools all count toward
`worker_connections`. nginx
warns at startup `worker_connections exceed open file resource limit`, and
under load `accept4() failed (24: Too many open files)` or `socket() failed
(24: …)`. Idle
pools are then the first thing to hurt: the descriptors they hold are gone
for new clients.

## Example
```nginx
worker_rlimit_nofile 1024;
events { worker_connections 4096; }
```

## Fix
`worker_rlimit_nofile` of at least twice `worker_connections` (each proxied
request holds a client and an upstream descriptor); the fix sets exactly that.

## References
- https://nginx.org/en/docs/ngx_core_module.html#worker_rlimit_nofile, https://nginx.org/en/docs/ngx_core_module.html#worker_connections
- nginx source: src/event/ngx_event.c, `ngx_event_module_init()` (the startup warning compares `worker_connections` with the soft RLIMIT_NOFILE)
- systemd: https://www.freedesktop.org/software/systemd/man/latest/systemd-system.conf.html (`DefaultLimitNOFILE=`, soft limit 1024)
"#,
};

/// The soft open-file limit a service inherits under systemd's default
/// (`DefaultLimitNOFILE=1024:524288`): what nginx runs with when
/// `worker_rlimit_nofile` is not set and the unit does not raise it.
pub const INHERITED_SOFT_NOFILE: u64 = 1024;

/// Starts the assumption text this rule adds to the report, so that
/// `upkeep doctor`, which reads the real limit, can replace it.
pub const ASSUMPTION_PREFIX: &str = "R001: no worker_rlimit_nofile";

pub fn check(ctx: &Ctx) -> Vec<Finding> {
    if ctx.model.block(0).kind != BlockKind::Main {
        return Vec::new();
    }
    let Some(wc) = ctx.model.main.worker_connections else {
        return Vec::new();
    };
    let Some(nofile) = ctx.model.main.worker_rlimit_nofile else {
        return inherited_limit(ctx, wc);
    };
    let (Some(conns), Some(limit)) = (
        wc.args().first().and_then(|a| a.text().parse::<u64>().ok()),
        nofile
            .args()
            .first()
            .and_then(|a| a.text().parse::<u64>().ok()),
    ) else {
        return Vec::new();
    };
    if conns <= limit {
        return Vec::new();
    }
    let (wanted, why) = wanted_nofile(conns);
    vec![INFO
        .finding(format!(
            "`worker_connections {conns}` exceeds `worker_rlimit_nofile {limit}`: under load workers fail with \"Too many open files\""
        ))
        .at(wc.span())
        .with_label("more connections than file descriptors")
        .related(nofile.span(), "the open-file limit of each worker")
        .help(format!("set `worker_rlimit_nofile {wanted};` ({why})"))
        .with_fix(Fix {
            applicability: Applicability::Safe,
            description: format!("set `worker_rlimit_nofile {wanted}`"),
            edits: vec![edits::replace_args(nofile, &wanted.to_string())],
        })]
}

/// The `worker_rlimit_nofile` to suggest for `conns` connections: twice
/// as many, but no more than nginx takes (`ngx_conf_set_num_slot` refuses
/// a count above 9223372036854775807 with "invalid number"; checked with
/// nginx 1.22), and why.
fn wanted_nofile(conns: u64) -> (u64, &'static str) {
    match conns.checked_mul(2).filter(|&n| n <= NGX_MAX_INT) {
        Some(n) => (n, "twice worker_connections"),
        None => (NGX_MAX_INT, "the largest count nginx takes"),
    }
}

/// No `worker_rlimit_nofile`: nginx runs with the limit it inherits. Judged
/// against systemd's default soft limit, stated as an assumption.
fn inherited_limit(ctx: &Ctx, wc: &upkeep_syntax::Directive) -> Vec<Finding> {
    let Some(conns) = wc.args().first().and_then(|a| a.text().parse::<u64>().ok()) else {
        return Vec::new();
    };
    let limit = INHERITED_SOFT_NOFILE;
    if conns <= limit {
        return Vec::new();
    }
    ctx.assume(format!(
        "{ASSUMPTION_PREFIX}: nginx keeps the open-file limit it was started with, taken to be {limit} (the soft limit of a systemd service without LimitNOFILE=); `upkeep doctor` reads the real one"
    ));
    let (wanted, why) = wanted_nofile(conns);
    let line = format!("worker_rlimit_nofile {wanted};");
    let mut f = INFO
        .finding(format!(
            "`worker_connections {conns}` exceeds the open-file limit nginx inherits without `worker_rlimit_nofile` (assumed {limit}): under load workers fail with \"Too many open files\""
        ))
        .at(wc.span())
        .with_label("more connections than file descriptors")
        .note(format!(
            "assuming the soft limit of a systemd service ({limit}); nginx then warns at start: \"{conns} worker_connections exceed open file resource limit: {limit}\""
        ))
        .help(format!(
            "set `{line}` ({why}) in the main context, or raise LimitNOFILE= of the service"
        ));
    if let Some(edit) = edits::insert_in_block(ctx, 0, &line, |d| d.block().is_none()) {
        f = f.with_fix(Fix {
            applicability: Applicability::Safe,
            description: format!("add `{line}`"),
            edits: vec![edit],
        });
    }
    vec![f]
}
