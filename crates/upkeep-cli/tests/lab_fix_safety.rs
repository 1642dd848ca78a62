//! No fix makes things worse: for every fixable rule, a positive fixture
//! runs through `upkeep lab` on a real nginx with backends that close idle
//! connections after 2 s (Gunicorn's default, the shortest common one) and
//! traffic timed to reuse connections as they close (the lab's stale-idle
//! timing), before and after `upkeep fix`. After may not have more 5xx,
//! more failed client requests, or a p99 latency beyond noise. Where the
//! rule's own fix changes behaviour (`--unsafe-fixes`), the same fixture
//! runs again with it, under the same condition. Every fixable rule
//! must have had its own fix applied in one of its runs, except those the
//! lab's plain-HTTP backends cannot stand in for ([`NOT_IN_LAB`]): FastCGI
//! (U011, proven against a real PHP-FPM in fastcgi_capacity.rs), upstream
//! TLS (U013, U014) and HTTP/2 or gRPC upstreams (U018).
//!
//! Bounded: one fixture per rule, at most two runs of it, 4 s of traffic
//! per phase.

mod common;

use common::text;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../upkeep-rules/tests/fixtures")
}

/// Single-file positive fixtures nginx 1.22 runs as written (no version or
/// skip header), first by name.
fn runnable_fixtures(rule: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(fixtures_dir().join(rule)) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("bad") && name.ends_with(".conf")
        })
        .filter(|p| {
            let t = std::fs::read_to_string(p).unwrap_or_default();
            !t.contains("upkeep-test: version") && !t.contains("nginx-t skip")
        })
        .collect();
    out.sort();
    out
}

fn upstream_names(conf: &str) -> Vec<String> {
    let mut names = Vec::new();
    let words: Vec<&str> = conf.split_whitespace().collect();
    for w in words.windows(2) {
        if w[0] == "upstream" {
            let name = w[1].trim_end_matches('{');
            if !name.is_empty() && !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
    }
    names
}

/// The `--front`/`--front-idle` a fixture declares (`# upkeep-test: front
/// aws-alb`), which the rules need to see C003's problem.
fn front_args(conf: &str) -> Vec<String> {
    let mut args = Vec::new();
    for line in conf.lines() {
        let Some(rest) = line.trim().strip_prefix("# upkeep-test:") else {
            continue;
        };
        let (key, value) = rest
            .trim()
            .split_once(char::is_whitespace)
            .unwrap_or((rest.trim(), ""));
        match key {
            "front" => args.extend(["--front".to_string(), value.trim().to_string()]),
            "front-idle" => args.extend(["--front-idle".to_string(), value.trim().to_string()]),
            _ => {}
        }
    }
    args
}

/// The backends a fixture declares (`# upkeep-test: backend app=SPEC`), as
/// (upstream, spec): the lab's emulated backend then does what the rule is
/// about (a silent close after N requests, say).
fn declared_backends(conf: &str) -> Vec<(String, String)> {
    conf.lines()
        .filter_map(|l| l.trim().strip_prefix("# upkeep-test: backend "))
        .filter_map(|spec| {
            let (name, what) = spec.trim().split_once('=')?;
            Some((name.to_string(), what.to_string()))
        })
        .collect()
}

/// Rules whose fixes the lab cannot run, and why; each is either proven
/// elsewhere or reported as not run.
const NOT_IN_LAB: &[(&str, &str)] = &[
    (
        "U011",
        "FastCGI: proven in fastcgi_capacity.rs, with a real PHP-FPM behind a real nginx",
    ),
    (
        "U013",
        "upstream TLS: the lab's emulated backends speak plain HTTP, so the config it runs has no TLS name to fix",
    ),
    (
        "U014",
        "upstream TLS: the lab's emulated backends speak plain HTTP, so the config it runs has no TLS session setting to fix",
    ),
    (
        "U018",
        "HTTP/2 and gRPC upstreams: the lab's emulated backends speak HTTP/1.x only",
    ),
];

/// How the lab's fix summary notes a fix left for `--unsafe-fixes`
/// (upkeep-lab fix.rs UNSAFE_NOT_APPLIED).
const UNSAFE_NOT_APPLIED: &str = "not applied without --unsafe-fixes:";

struct Phase {
    requests: u64,
    server_errors: u64,
    client_errors: u64,
    p99_ms: f64,
}

fn phase(run: &Value) -> Phase {
    let server_errors = run["status"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(code, _)| code.starts_with('5'))
                .map(|(_, n)| n.as_u64().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0);
    let client_errors = run["client_errors"]
        .as_object()
        .map(|m| m.values().map(|n| n.as_u64().unwrap_or(0)).sum())
        .unwrap_or(0);
    Phase {
        requests: run["requests"].as_u64().unwrap_or(0),
        server_errors,
        client_errors,
        p99_ms: run["latency_ms"]["p99"].as_f64().unwrap_or(0.0),
    }
}

/// One lab run of a fixture, before and after the fix.
struct Run {
    before: Phase,
    after: Phase,
    /// Rules whose fixes were applied.
    applied: Vec<String>,
    notes: Vec<String>,
}

/// `upkeep lab` on `fixture`; `Ok(None)` when the lab cannot run it here
/// (exit 2: TLS, sockets…) or applied no fix.
fn lab(fixture: &Path, unsafe_fixes: bool) -> Result<Option<Run>, String> {
    let conf = std::fs::read_to_string(fixture).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_upkeep"));
    cmd.args(["lab", "--config"])
        .arg(fixture)
        .args(["--duration", "4s", "--format", "json", "-q"]);
    let declared = declared_backends(&conf);
    for name in upstream_names(&conf) {
        match declared.iter().find(|(n, _)| *n == name) {
            Some((_, spec)) => cmd.args(["--backend", &format!("{name}={spec}")]),
            None => cmd.args(["--backend", &format!("{name}=gunicorn")]),
        };
    }
    cmd.args(front_args(&conf));
    if unsafe_fixes {
        cmd.arg("--unsafe-fixes");
    }
    let out = cmd.output().unwrap();
    if out.status.code() == Some(2) {
        return Ok(None);
    }
    let report = serde_json::from_slice::<Value>(&out.stdout).map_err(|_| {
        format!(
            "{}: no JSON report: {}",
            fixture.display(),
            text(&out.stderr)
        )
    })?;
    let runs = report["runs"].as_array().cloned().unwrap_or_default();
    let (Some(before), Some(after)) = (
        runs.iter().find(|r| r["phase"] == "before"),
        runs.iter().find(|r| r["phase"] == "after"),
    ) else {
        return Ok(None);
    };
    let strings = |v: &Value, key: Option<&str>| -> Vec<String> {
        v.as_array()
            .map(|l| {
                l.iter()
                    .filter_map(|x| match key {
                        Some(k) => x[k].as_str().map(String::from),
                        None => x.as_str().map(String::from),
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(Some(Run {
        before: phase(before),
        after: phase(after),
        applied: strings(&report["fix"]["applied"], Some("rule")),
        notes: strings(&report["fix"]["notes"], None),
    }))
}

#[test]
fn no_fix_of_the_catalogue_increases_errors_or_latency_under_stale_idle_traffic() {
    if !Path::new("/usr/sbin/nginx").exists() {
        eprintln!("skipped: no /usr/sbin/nginx");
        return;
    }
    let mut exercised = Vec::new();
    let mut unsafe_exercised = Vec::new();
    let mut not_exercised = Vec::new();
    let mut failures = Vec::new();
    for rule in upkeep_rules::rules().iter().filter(|r| r.fixable) {
        let mut applied_own = false;
        for fixture in runnable_fixtures(rule.id) {
            let safe = match lab(&fixture, false) {
                Ok(Some(run)) => run,
                Ok(None) => continue,
                Err(e) => {
                    failures.push(e);
                    break;
                }
            };
            // The rule's own fix changes behaviour: run it too. (Other
            // rules' unsafe fixes run with their own fixtures.)
            let own_unsafe = format!("{UNSAFE_NOT_APPLIED} {} ", rule.id);
            let left_unsafe = safe.notes.iter().any(|n| n.starts_with(&own_unsafe));
            let mut runs = vec![("upkeep fix", safe)];
            if left_unsafe {
                match lab(&fixture, true) {
                    Ok(Some(run)) => runs.push(("upkeep fix --unsafe-fixes", run)),
                    Ok(None) => {}
                    Err(e) => failures.push(e),
                }
            }
            for (how, run) in &runs {
                let (b, a) = (&run.before, &run.after);
                let line = format!(
                    "{} {} ({how}): requests {}/{}, 5xx {}/{}, client errors {}/{}, p99 {:.0}/{:.0} ms (before/after; fixes {})",
                    rule.id,
                    fixture.file_name().unwrap().to_string_lossy(),
                    b.requests,
                    a.requests,
                    b.server_errors,
                    a.server_errors,
                    b.client_errors,
                    a.client_errors,
                    b.p99_ms,
                    a.p99_ms,
                    run.applied.join(",")
                );
                eprintln!("{line}");
                // Noise: one request either way; latency on a shared,
                // loaded machine: three times before plus 250 ms.
                if a.server_errors > b.server_errors + 1
                    || a.client_errors > b.client_errors + 1
                    || a.p99_ms > b.p99_ms * 3.0 + 250.0
                    || a.requests == 0
                {
                    failures.push(line.clone());
                }
                if run.applied.iter().any(|r| r == rule.id) {
                    applied_own = true;
                    if how.ends_with("--unsafe-fixes") {
                        unsafe_exercised.push(rule.id);
                    }
                }
            }
            break;
        }
        if applied_own {
            exercised.push(rule.id);
        } else if !NOT_IN_LAB.iter().any(|(id, _)| *id == rule.id) {
            not_exercised.push(rule.id);
        }
    }
    eprintln!(
        "lab before/after: the fixes of {} fixable rules applied and run ({} of them with --unsafe-fixes: {}); not in the lab: {}",
        exercised.len(),
        unsafe_exercised.len(),
        unsafe_exercised.join(", "),
        NOT_IN_LAB
            .iter()
            .map(|(id, how)| format!("{id} ({how})"))
            .collect::<Vec<_>>()
            .join("; ")
    );
    assert!(
        failures.is_empty(),
        "fixes that made things worse:\n{}",
        failures.join("\n")
    );
    assert!(
        not_exercised.is_empty(),
        "fixable rules whose fix no lab-runnable fixture applied: {}",
        not_exercised.join(", ")
    );
    assert!(
        !unsafe_exercised.is_empty(),
        "no rule's unsafe fix was run in the lab"
    );
}
