//! Cleanup on cancellation (what Ctrl-C does: the signal handler cancels the
//! run's token) and on failure: nginx stopped, namespace gone, a report of
//! what was measured until then.

mod common;

use common::{nginx, ONE_AT_A_TIME};
use std::time::{Duration, Instant};
use upkeep_lab::plan::LabPlan;
use upkeep_lab::scenario::user::{build, UserOptions};
use upkeep_lab::{scenario, Cancel, LabError, LabReport, RunOptions};

/// Runs `plan`, cancelling it after `after` (as Ctrl-C would) unless it
/// ended before.
fn run_cancelled_after(plan: &LabPlan, after: Duration) -> Result<LabReport, LabError> {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let nginx = nginx();
    let cancel = Cancel::new();
    let done = Cancel::new();
    let (trigger, finished) = (cancel.clone(), done.clone());
    let timer = std::thread::spawn(move || {
        if finished.sleep(after) {
            trigger.cancel();
        }
    });
    let quiet = |_: &str| {};
    let report = upkeep_lab::run(
        plan,
        &nginx,
        &RunOptions {
            cancel: &cancel,
            log: &quiet,
            keep_dir: None,
        },
    );
    done.cancel();
    timer.join().unwrap();
    report
}

fn version() -> upkeep_lab::scenario::NginxVersion {
    upkeep_lab::nginx_version(&nginx()).unwrap()
}

/// Running, not a zombie waiting to be reaped (nginx's daemonized master
/// is reaped by init, sometimes a second or more after it exits).
fn alive(pid: i32) -> bool {
    upkeep_nginx::process_is_running(pid)
}

#[test]
fn cancelling_mid_phase_stops_nginx_and_keeps_what_was_measured() {
    let mut plan = (scenario::find("no-pool").unwrap().build)(version());
    plan.traffic.duration = Duration::from_secs(60);
    let started = Instant::now();
    let report = run_cancelled_after(&plan, Duration::from_secs(2)).unwrap();
    // Far sooner than the 60 s the phase would have run.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    assert!(report.interrupted);
    assert_eq!(report.runs.len(), 1, "no after phase once cancelled");
    let before = &report.runs[0];
    assert!(before.requests > 0);
    assert!(
        !alive(before.nginx_pid),
        "nginx {} still running",
        before.nginx_pid
    );
}

#[test]
fn the_namespace_is_removed_when_cancelled() {
    let mut plan = (scenario::find("port-exhaustion").unwrap().build)(version());
    plan.traffic.duration = Duration::from_secs(60);
    let report = match run_cancelled_after(&plan, Duration::from_secs(2)) {
        Err(LabError::Skipped(why)) => {
            eprintln!("skipped: {why}");
            return;
        }
        other => other.unwrap(),
    };
    let before = &report.runs[0];
    let name = before.namespace.clone().expect("ran in a namespace");
    let list = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(
        !list
            .lines()
            .any(|l| l.split_whitespace().next() == Some(name.as_str())),
        "{name} left behind:\n{list}"
    );
    assert!(!alive(before.nginx_pid));
}

#[test]
fn a_config_nginx_rejects_is_reported_with_nginx_s_words() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("nginx.conf");
    std::fs::write(
        &conf,
        "events {}\nhttp {\n    upstream app {\n        server 10.0.0.1:80;\n    }\n    server {\n        listen 80;\n        no_such_directive on;\n        location / {\n            proxy_pass http://app;\n        }\n    }\n}\n",
    )
    .unwrap();
    let plan = build(&UserOptions {
        config: conf.clone(),
        backend_specs: vec![],
        backend_facts_json: None,
        host: None,
        nginx_prefix: None,
    })
    .unwrap();
    match run_cancelled_after(&plan, Duration::from_secs(60)) {
        Err(LabError::ConfigRejected { phase, output }) => {
            assert_eq!(phase, "before");
            // Said of the user's file and line, not of the lab's copy
            // (whose http block has the lab's lines added at the top).
            assert!(
                output.contains(&format!(
                    "unknown directive \"no_such_directive\" in {}:8",
                    conf.display()
                )),
                "{output}"
            );
            assert!(!output.contains("upkeep-lab-"), "{output}");
        }
        other => panic!("expected nginx -t to reject the config, got {other:?}"),
    }
}

#[test]
fn an_error_in_an_included_file_names_that_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("nginx.conf");
    std::fs::create_dir(dir.path().join("conf.d")).unwrap();
    let app = dir.path().join("conf.d/app.conf");
    std::fs::write(
        &app,
        "# app settings\nproxy_read_timeout 30s;\nproxy_buffers 8;\n",
    )
    .unwrap();
    std::fs::write(
        &conf,
        "events {}\nhttp {\n    upstream app {\n        server 10.0.0.1:80;\n    }\n    include conf.d/app.conf;\n    server {\n        listen 80;\n        location / {\n            proxy_pass http://app;\n        }\n    }\n}\n",
    )
    .unwrap();
    let plan = build(&UserOptions {
        config: conf,
        backend_specs: vec![],
        backend_facts_json: None,
        host: None,
        nginx_prefix: None,
    })
    .unwrap();
    match run_cancelled_after(&plan, Duration::from_secs(60)) {
        Err(LabError::ConfigRejected { output, .. }) => {
            assert!(
                output.contains(&format!(
                    "invalid number of arguments in \"proxy_buffers\" directive in {}:3",
                    app.display()
                )),
                "{output}"
            );
            assert!(!output.contains("upkeep-lab-"), "{output}");
        }
        other => panic!("expected nginx -t to reject the config, got {other:?}"),
    }
}
