use upkeep_diag::Severity;
use upkeep_logs::Signature;
use upkeep_rules::RuleInfo;

use super::{Measured, Ranked};
use crate::process::Processes;

pub const INFO: RuleInfo = RuleInfo {
    id: "H004",
    name: "nofile-limit-low",
    severity: Severity::Warning,
    fixable: false,
    summary: "The nginx master's RLIMIT_NOFILE is below 2 × worker_connections.",
    doc: r#"## What it finds
Measured by `upkeep doctor`: the open-file limit nginx's workers get is below
twice `worker_connections`. Without `worker_rlimit_nofile` the workers
inherit the master's RLIMIT_NOFILE (read from `/proc/PID/limits`, and the
running workers' own limits are checked too); with it, workers set their
limit to that value when they start.

## Why it breaks reuse
Every connection is a file descriptor: client connections, upstream
connections and idle pooled ones, and each proxied request holds two. With a limit
below 2 × `worker_connections` a busy worker runs out of descriptors before
it runs out of connection slots: `accept4() failed (24: Too many open
files)` or `socket() failed (24: …) while connecting to upstream`
(`upkeep logs` signature `too-many-open-files`). Below
`worker_connections` itself nginx also warns at start: `N
worker_connections exceed open file resource limit: M` (rule R001).

## Example
A master started with the common default soft limit of 1024 and
`worker_connections 768;`: 1024 < 1536.

## Fix
`worker_rlimit_nofile` of at least 2 × `worker_connections` in the main
context, or a higher limit for the nginx service (for systemd,
`LimitNOFILE=` in the unit).

## References
- https://nginx.org/en/docs/ngx_core_module.html#worker_rlimit_nofile, https://nginx.org/en/docs/ngx_core_module.html#worker_connections
- nginx source: src/event/ngx_event.c, `ngx_event_module_init()` (the startup warning); `accept4() failed (24: Too many open files)` at crit
- `upkeep logs` signature `too-many-open-files`
"#,
};

/// The open-file limit the workers run with or will get at the next
/// reload, and where it comes from. `None`: unlimited or unknown.
pub(crate) fn effective_limit(m: &Measured<'_>, p: &Processes) -> Option<(u64, String)> {
    let master = p.master_nofile.and_then(|l| l.soft);
    let workers = p.worker_soft_nofile().flatten();
    if let Some(set) = m.live.settings.worker_rlimit_nofile {
        return Some((set, format!("worker_rlimit_nofile {set}")));
    }
    match (master, workers) {
        (Some(a), Some(b)) if b < a => Some((b, format!("the workers' soft limit {b}"))),
        (Some(a), _) => Some((a, format!("the master's soft limit {a}"))),
        (None, Some(b)) => Some((b, format!("the workers' soft limit {b}"))),
        (None, None) => None,
    }
}

pub fn evaluate(m: &Measured<'_>) -> Vec<Ranked> {
    let Some(p) = m.processes else {
        return Vec::new();
    };
    let wc = m.live.settings.worker_connections;
    let Some((limit, from)) = effective_limit(m, p) else {
        return Vec::new();
    };
    let wanted = wc * 2;
    if limit >= wanted {
        return Vec::new();
    }
    let mut f = INFO
        .finding(format!(
            "nginx workers may open {limit} files ({from}), below 2 × worker_connections {wc} = {wanted}: under load they fail with \"Too many open files\""
        ))
        .note(limits_note(p));
    if let Some(logs) = m.logs {
        for sig in [
            Signature::TooManyOpenFiles,
            Signature::WorkerConnectionsExceedNofile,
        ] {
            let n = logs.count(sig);
            if n > 0 {
                f = f.note(format!(
                    "the error log shows {n} lines of signature {}",
                    sig.id()
                ));
            }
        }
    }
    if limit < wc {
        f = f.note(format!(
            "below worker_connections itself: nginx warns \"{wc} worker_connections exceed open file resource limit: {limit}\" at start (rule R001)"
        ));
    }
    f = f.note("threshold: the workers' open-file limit below 2 × worker_connections (a proxied request holds two descriptors)");
    f = f.help(format!(
        "set `worker_rlimit_nofile {wanted};` in the main context (workers set their limit to it when they start), or start nginx with a higher limit (systemd: LimitNOFILE= in its unit)"
    ));
    vec![Ranked {
        finding: f,
        evidence: wanted - limit,
        measured: true,
    }]
}

pub(crate) fn limits_note(p: &Processes) -> String {
    let show = |v: Option<u64>| v.map_or("unlimited".to_string(), |n| n.to_string());
    let master = match p.master_nofile {
        Some(l) => format!("soft {} hard {}", show(l.soft), show(l.hard)),
        None => "unreadable".into(),
    };
    let workers = match (p.workers.len(), p.worker_soft_nofile()) {
        (0, _) => "no worker processes found".to_string(),
        (n, Some(w)) => format!("{n} worker(s), lowest soft {}", show(w)),
        (n, None) => format!("{n} worker(s), limits unreadable"),
    };
    format!("master {} RLIMIT_NOFILE {master}; {workers}", p.master)
}
