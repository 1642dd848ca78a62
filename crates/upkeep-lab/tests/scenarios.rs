//! The built-in scenarios on a real nginx, asserting on what was measured.
//!
//! Sizes (durations, clients) are the shortest that showed the failure in
//! every one of many runs on a loaded 2-core machine; the figures are in the
//! crate's `examples/lab_runs.rs` doc and were measured with it. The tests
//! run one at a time (a lock), because the stale-connection race depends on
//! timing and must not compete with another lab for the CPU.

mod common;

use common::{applied_rules, nginx, run};
use std::time::Duration;
use upkeep_lab::plan::LabPlan;
use upkeep_lab::{scenario, LabError, LabReport, Phase};

fn built_in(name: &str, duration: Duration) -> LabPlan {
    let version = upkeep_lab::nginx_version(&nginx()).unwrap();
    let mut plan = (scenario::find(name).expect("scenario").build)(version);
    plan.traffic.duration = duration;
    plan
}

fn phases(
    report: &LabReport,
) -> (
    &upkeep_lab::report::PhaseResult,
    &upkeep_lab::report::PhaseResult,
) {
    let before = report.run(Phase::Before).expect("before phase");
    let after = report.run(Phase::After).expect("after phase");
    (before, after)
}

/// Both phases' key numbers, for assertion messages.
fn summary(report: &LabReport) -> String {
    report
        .runs
        .iter()
        .map(|r| {
            format!(
                "{}: requests {} status {:?} by method {:?} upstream conns {} TIME_WAIT peak {} signatures {:?} stub {:?}",
                r.phase.as_str(),
                r.requests,
                r.status,
                r.status_by_method,
                r.upstream_connections_opened,
                r.time_wait_peak,
                r.error_signatures,
                r.stub_status
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn stale_idle_posts_fail_before_the_fix_and_never_after() {
    let plan = built_in("stale-idle", Duration::from_secs(8));
    let report = run(&plan).unwrap();
    let (before, after) = phases(&report);
    let s = summary(&report);
    assert!(
        before.count("POST", "502") > 0,
        "no POST 502 before the fix\n{s}"
    );
    assert_eq!(after.count("POST", "502"), 0, "POST 502 after the fix\n{s}");
    // GETs are retried by nginx: the error log shows the race, the client does not.
    assert_eq!(before.count("GET", "502"), 0, "{s}");
    assert_eq!(after.count("GET", "502"), 0, "{s}");
    assert!(
        before.method_total("GET") > 0 && after.method_total("GET") > 0,
        "{s}"
    );
    let stale = |r: &upkeep_lab::report::PhaseResult| {
        r.error_signatures
            .get("upstream-prematurely-closed")
            .copied()
            .unwrap_or(0)
            + r.error_signatures
                .get("upstream-reset")
                .copied()
                .unwrap_or(0)
    };
    assert!(
        stale(before) > before.count("POST", "502"),
        "GET retries leave error-log lines too\n{s}"
    );
    assert_eq!(stale(after), 0, "{s}");
    assert!(before.nginx_retried.unwrap_or(0) > 0, "{s}");
    let fix = report.fix.as_ref().expect("fix summary");
    assert!(
        fix.applied.iter().any(|a| a.rule == "U007"),
        "{:?}",
        fix.applied
    );
    assert!(
        fix.diff.contains("+        keepalive_timeout 900ms;"),
        "{}",
        fix.diff
    );
}

#[test]
fn no_pool_opens_a_connection_per_request_until_fixed() {
    let report = run(&built_in("no-pool", Duration::from_secs(2))).unwrap();
    let (before, after) = phases(&report);
    let s = summary(&report);
    assert!(before.requests >= 100 && after.requests >= 100, "{s}");
    assert!(
        before.upstream_connections_per_request.unwrap() >= 0.9,
        "{s}"
    );
    assert!(
        after.upstream_connections_per_request.unwrap() <= 0.05,
        "{s}"
    );
    // Every closed connection leaves a TIME_WAIT socket; a pool leaves almost none.
    assert!(before.time_wait_peak >= before.requests / 2, "{s}");
    assert!(after.time_wait_peak < before.time_wait_peak / 10, "{s}");
    assert_eq!(
        before.status.get("200").copied(),
        Some(before.requests),
        "{s}"
    );
    assert_eq!(
        after.status.get("200").copied(),
        Some(after.requests),
        "{s}"
    );
    let rules = applied_rules(&report);
    for r in ["U001", "U002", "U003"] {
        assert!(rules.contains(&r), "{rules:?}");
    }
}

#[test]
fn connection_close_keeps_the_pool_empty_until_fixed() {
    let report = run(&built_in("connection-close", Duration::from_secs(2))).unwrap();
    let (before, after) = phases(&report);
    let s = summary(&report);
    assert!(before.requests >= 100 && after.requests >= 100, "{s}");
    assert!(
        before.upstream_connections_per_request.unwrap() >= 0.9,
        "{s}"
    );
    assert!(
        after.upstream_connections_per_request.unwrap() <= 0.05,
        "{s}"
    );
    let rules = applied_rules(&report);
    assert!(rules.contains(&"U003"), "{rules:?}");
}

#[test]
fn client_churn_accepts_about_every_request_until_fixed() {
    let report = run(&built_in("client-churn", Duration::from_secs(2))).unwrap();
    let (before, after) = phases(&report);
    let s = summary(&report);
    let (b, a) = (
        before.stub_status.expect("stub_status before"),
        after.stub_status.expect("stub_status after"),
    );
    // stub_status counts the lab's own status request and readiness check too.
    assert!(
        b.accepts + 5 >= b.requests && b.requests >= before.requests,
        "{s}"
    );
    assert!(a.accepts <= u64::from(plan_concurrency()) + 3, "{s}");
    assert!(before.client_connections_opened >= before.requests, "{s}");
}

fn plan_concurrency() -> u32 {
    let version = upkeep_lab::nginx_version(&nginx()).unwrap();
    (scenario::find("client-churn").unwrap().build)(version)
        .traffic
        .concurrency
}

#[test]
fn port_exhaustion_runs_out_of_ports_in_its_namespace_until_fixed() {
    let plan = built_in("port-exhaustion", Duration::from_secs(2));
    let report = match run(&plan) {
        Err(LabError::Skipped(why)) => {
            eprintln!("port-exhaustion skipped: {why}");
            return;
        }
        other => other.unwrap(),
    };
    let (before, after) = phases(&report);
    let s = summary(&report);
    let range = upkeep_lab::scenario::PORT_EXHAUSTION_RANGE;
    let ports = u64::from(range.1 - range.0) + 1;
    // Exactly the range's worth of connections, then connect() fails.
    assert!(before.upstream_connections_opened <= ports, "{s}");
    assert!(before.status.get("502").copied().unwrap_or(0) > 0, "{s}");
    assert!(
        before
            .error_signatures
            .get("connect-addr-unavailable")
            .copied()
            .unwrap_or(0)
            > 0,
        "{s}"
    );
    assert_eq!(after.status.get("502").copied().unwrap_or(0), 0, "{s}");
    assert!(after.error_signatures.is_empty(), "{s}");
    // The host's own range was not touched.
    let host_range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    assert_ne!(
        host_range.split_whitespace().collect::<Vec<_>>(),
        vec![range.0.to_string(), range.1.to_string()]
    );
}
