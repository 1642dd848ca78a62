//! `upkeep lab` through the binary: usage errors, the JSON document SPEC.md
//! promises, the HTML report, and the user scenario from flags.

mod common;

use common::{text, upkeep};
use serde_json::Value;

#[test]
fn lists_scenarios_and_refuses_bad_usage() {
    let out = upkeep(&["lab", "--list"]);
    assert_eq!(out.status.code(), Some(0));
    let list = text(&out.stdout);
    for s in [
        "stale-idle",
        "no-pool",
        "port-exhaustion",
        "connection-close",
        "client-churn",
        "user",
    ] {
        assert!(list.contains(s), "{list}");
    }
    let out = upkeep(&["lab"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--scenario"),
        "{}",
        text(&out.stderr)
    );
    let out = upkeep(&["lab", "--scenario", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unknown scenario \"nope\""));
    let out = upkeep(&["lab", "--scenario", "no-pool", "--gap", "5x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--gap"), "{}", text(&out.stderr));
    let out = upkeep(&["lab", "--scenario", "no-pool", "--backend", "app=gunicorn"]);
    assert_eq!(out.status.code(), Some(2));
    let out = upkeep(&["lab", "--config", "/nonexistent/nginx.conf"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("/nonexistent/nginx.conf"),
        "{}",
        text(&out.stderr)
    );
    // The after phase's fix options are checked like `upkeep fix`'s.
    let out = upkeep(&["lab", "--scenario", "no-pool", "--front", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--front: unknown load balancer profile \"nope\""),
        "{}",
        text(&out.stderr)
    );
    let out = upkeep(&["lab", "--scenario", "no-pool", "--front-idle", "5x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--front-idle"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn json_and_html_report_of_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("lab.html");
    let out = upkeep(&[
        "lab",
        "--scenario",
        "connection-close",
        "--duration",
        "1s",
        "--format",
        "json",
        "--quiet",
        "--report",
        html.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(doc["schema"], 1);
    assert_eq!(doc["scenario"], "connection-close");
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    for (run, phase) in runs.iter().zip(["before", "after"]) {
        assert_eq!(run["phase"], phase);
        let requests = run["requests"].as_u64().unwrap();
        assert!(requests > 0);
        assert_eq!(run["status"]["200"].as_u64(), Some(requests), "{run}");
        assert!(run["upstream_connections_opened"].as_u64().is_some());
        assert!(run["time_wait_peak"].as_u64().is_some());
        assert!(run["latency_ms"]["p50"].as_f64().is_some());
        assert!(run["latency_ms"]["p99"].as_f64().is_some());
        assert!(run["error_signatures"].is_object());
    }
    let per_request = |r: &Value| r["upstream_connections_per_request"].as_f64().unwrap();
    assert!(per_request(&runs[0]) > per_request(&runs[1]));

    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert_eq!(page.matches("<svg").count(), 4, "four charts");
    assert!(
        !page.contains("<script") && !page.contains("http-equiv"),
        "self-contained, no script"
    );
    assert!(!page.contains("src=\"http"), "nothing fetched");
}

#[test]
fn a_user_config_from_flags() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("nginx.conf");
    std::fs::write(
        &conf,
        "events {}\nhttp {\n    upstream api {\n        server 192.0.2.10:8080;\n    }\n    server {\n        listen 80;\n        server_name api.example.com;\n        location /v1/ {\n            proxy_pass http://api;\n        }\n    }\n}\n",
    )
    .unwrap();
    let out = upkeep(&[
        "lab",
        "--config",
        conf.to_str().unwrap(),
        "--backend",
        "api=idle=75s,latency=2ms",
        "--duration",
        "1s",
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.contains("upkeep lab: user"), "{table}");
    assert!(
        table.contains("backend for upstream api (was 192.0.2.10:8080)"),
        "{table}"
    );
    assert!(table.contains("U001"), "{table}");
}
