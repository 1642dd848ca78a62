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
//! (U011, proven against a real PHP-FPM in fastcgi_capacity.rs) and HTTP/2
//! or gRPC upstreams (U018).
//!
//! The upstream TLS rules ([`TLS_RULES`]) run every fixture against a real
//! nginx serving HTTPS instead (tests/tls_backend/mod.rs): same timing, same condition,
//! and the point of each fix measured on the backend: U013's SNI lets a
//! name-based backend accept the handshakes it refused, U014's session
//! reuse turns full handshakes into resumed ones.
//!
//! Bounded: one fixture per rule (every fixture for the TLS rules), at most
//! two runs of it (per TLS backend), 4 s of traffic per phase (at most 3
//! bursts in 5 s against a TLS backend).

mod common;
mod tls_backend;

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
        "U018",
        "HTTP/2 and gRPC upstreams: the lab's emulated backends speak HTTP/1.x only",
    ),
];

/// Rules about upstream TLS: the lab's emulated backends speak plain HTTP
/// (it runs `https://` upstreams as `http://`), so their fixtures run
/// against a real nginx serving HTTPS (tests/tls_backend/mod.rs).
const TLS_RULES: &[&str] = &["U013", "U014"];

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

/// After is worse than before beyond noise: one request either way for
/// errors; latency on a shared, loaded machine: three times before plus
/// 250 ms.
fn worse(b: &Phase, a: &Phase) -> bool {
    a.server_errors > b.server_errors + 1
        || a.client_errors > b.client_errors + 1
        || a.p99_ms > b.p99_ms * 3.0 + 250.0
        || a.requests == 0
}

/// Every fixture of a TLS rule against the TLS backends it needs, with
/// `upkeep fix` and, where it changes more, `--unsafe-fixes`: failures are
/// added to `failures`. The number of runs that applied the rule's own fix
/// and whether one of them needed `--unsafe-fixes` for it, or None when TLS
/// runs cannot happen here (said on stderr).
fn tls_runs(rule: &str, failures: &mut Vec<String>) -> Option<(usize, bool)> {
    if let Some(why) = tls_backend::unavailable() {
        eprintln!("{rule}: not run against a TLS backend: {why}");
        return None;
    }
    let mut runs = 0;
    let mut only_unsafe = false;
    for fixture in runnable_fixtures(rule) {
        let conf = std::fs::read_to_string(&fixture).unwrap();
        for backend in tls_backend::backends_for(&conf) {
            let mut safe_applied_own = false;
            for unsafe_fixes in [false, true] {
                let run = match tls_backend::run(&fixture, rule, backend, unsafe_fixes) {
                    Ok(Some(run)) => run,
                    Ok(None) => continue,
                    Err(e) => {
                        failures.push(e);
                        continue;
                    }
                };
                runs += 1;
                if unsafe_fixes {
                    only_unsafe |= !safe_applied_own;
                } else {
                    safe_applied_own = true;
                }
                let (b, a) = (&run.before, &run.after);
                let line = format!(
                    "{rule} {} ({}, {}): requests {}/{}, statuses {:?}/{:?}, 2xx {}/{}, 5xx {}/{}, client errors {}/{}, p99 {:.0}/{:.0} ms, upstream TLS connections {}/{} (full handshakes {}/{}, resumed {}/{}), failed handshakes {}/{} (before/after; fixes {})",
                    fixture.file_name().unwrap().to_string_lossy(),
                    if unsafe_fixes { "upkeep fix --unsafe-fixes" } else { "upkeep fix" },
                    backend.describe(),
                    b.requests,
                    a.requests,
                    b.statuses,
                    a.statuses,
                    b.ok,
                    a.ok,
                    b.server_errors,
                    a.server_errors,
                    b.client_errors,
                    a.client_errors,
                    b.p99_ms,
                    a.p99_ms,
                    b.connections,
                    a.connections,
                    b.full_handshakes,
                    a.full_handshakes,
                    b.resumed_handshakes,
                    a.resumed_handshakes,
                    b.failed_handshakes,
                    a.failed_handshakes,
                    run.applied.join(",")
                );
                eprintln!("{line}");
                let as_phase = |m: &tls_backend::Measured| Phase {
                    requests: m.requests,
                    server_errors: m.server_errors,
                    client_errors: m.client_errors,
                    p99_ms: m.p99_ms,
                };
                if worse(&as_phase(b), &as_phase(a)) {
                    failures.push(line.clone());
                }
                if let Some(missed) = tls_point_missed(rule, backend, &run) {
                    failures.push(format!("{missed}: {line}"));
                }
            }
        }
    }
    Some((runs, only_unsafe))
}

/// What the rule's fix is for, measured on the backend; the way it was
/// not achieved, if it was not.
fn tls_point_missed(
    rule: &str,
    backend: tls_backend::Backend,
    run: &tls_backend::TlsRun,
) -> Option<&'static str> {
    let (b, a) = (&run.before, &run.after);
    match (rule, backend) {
        // Without the right server name the name-based backend refuses
        // every handshake, so no connection reaches it, let alone a pooled
        // one; with it, requests are served over TLS connections.
        ("U013", tls_backend::Backend::NameBased) => {
            if b.connections != 0 || b.failed_handshakes == 0 || b.ok != 0 {
                Some("U013: before the fix the name-based backend should have refused every handshake")
            } else if a.failed_handshakes != 0 || a.connections == 0 || a.ok + 1 < a.requests {
                // One request either way, the noise allowed above.
                Some("U013: after the fix the name-based backend should have accepted every handshake and served every request")
            } else {
                None
            }
        }
        // Session reuse off: every new connection a full handshake; on:
        // new connections resume the session a previous one saved.
        ("U014", _) => {
            if b.resumed_handshakes != 0 || b.full_handshakes == 0 {
                Some("U014: before the fix every upstream TLS connection should have had a full handshake")
            } else if a.resumed_handshakes == 0 || a.full_handshakes >= b.full_handshakes {
                Some("U014: after the fix new upstream TLS connections should have resumed a session, with fewer full handshakes")
            } else {
                None
            }
        }
        _ => None,
    }
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
        if TLS_RULES.contains(&rule.id) {
            match tls_runs(rule.id, &mut failures) {
                Some((runs, only_unsafe)) if runs > 0 => {
                    exercised.push(rule.id);
                    if only_unsafe {
                        unsafe_exercised.push(rule.id);
                    }
                }
                Some(_) => not_exercised.push(rule.id),
                None => {}
            }
            continue;
        }
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
                if worse(b, a) {
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
