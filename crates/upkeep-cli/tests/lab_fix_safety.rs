//! No fix makes things worse: for every fixable rule, a positive fixture
//! runs through `upkeep lab` on a real nginx with backends that close idle
//! connections after 2 s (Gunicorn's default, the shortest common one) and
//! traffic timed to reuse connections as they close (the lab's stale-idle
//! timing), before and after `upkeep fix`. After may not have more 5xx,
//! more failed client requests, or a p99 latency beyond noise.
//!
//! Bounded: one fixture per rule, 4 s of traffic per phase.

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

#[test]
fn no_fix_of_the_catalogue_increases_errors_or_latency_under_stale_idle_traffic() {
    if !Path::new("/usr/sbin/nginx").exists() {
        eprintln!("skipped: no /usr/sbin/nginx");
        return;
    }
    let mut ran = Vec::new();
    let mut not_run = Vec::new();
    let mut failures = Vec::new();
    for rule in upkeep_rules::rules().iter().filter(|r| r.fixable) {
        let mut done = false;
        for fixture in runnable_fixtures(rule.id) {
            let conf = std::fs::read_to_string(&fixture).unwrap();
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_upkeep"));
            cmd.args(["lab", "--config"]).arg(&fixture).args([
                "--duration",
                "4s",
                "--format",
                "json",
                "-q",
            ]);
            for name in upstream_names(&conf) {
                cmd.args(["--backend", &format!("{name}=gunicorn")]);
            }
            let out = cmd.output().unwrap();
            // 2: the lab cannot run this config here (TLS, sockets…).
            if out.status.code() == Some(2) {
                continue;
            }
            let Ok(report) = serde_json::from_slice::<Value>(&out.stdout) else {
                failures.push(format!(
                    "{}: no JSON report: {}",
                    fixture.display(),
                    text(&out.stderr)
                ));
                done = true;
                break;
            };
            let runs = report["runs"].as_array().cloned().unwrap_or_default();
            let (Some(before), Some(after)) = (
                runs.iter().find(|r| r["phase"] == "before"),
                runs.iter().find(|r| r["phase"] == "after"),
            ) else {
                continue; // no fix applied to this fixture in the lab
            };
            let (b, a) = (phase(before), phase(after));
            let applied: Vec<String> = report["fix"]["applied"]
                .as_array()
                .map(|l| {
                    l.iter()
                        .filter_map(|f| f["rule"].as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            let line = format!(
                "{} {}: requests {}/{}, 5xx {}/{}, client errors {}/{}, p99 {:.0}/{:.0} ms (before/after; fixes {})",
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
                applied.join(",")
            );
            eprintln!("{line}");
            // Noise: one request either way; latency on a shared, loaded
            // machine: three times before plus 250 ms.
            if a.server_errors > b.server_errors + 1
                || a.client_errors > b.client_errors + 1
                || a.p99_ms > b.p99_ms * 3.0 + 250.0
                || a.requests == 0
            {
                failures.push(line.clone());
            }
            ran.push(rule.id);
            done = true;
            break;
        }
        if !done {
            not_run.push(rule.id);
        }
    }
    eprintln!(
        "lab before/after over {} fixable rules; no runnable fixture for: {}",
        ran.len(),
        not_run.join(", ")
    );
    assert!(
        failures.is_empty(),
        "fixes that made things worse:\n{}",
        failures.join("\n")
    );
    assert!(
        ran.len() >= 10,
        "only {} rules could run in the lab: the test would prove little",
        ran.len()
    );
}
