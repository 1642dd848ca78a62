//! Runs a built-in scenario several times and prints the numbers that decide
//! whether a test of it is reliable: how the before-phase failure varies
//! between runs. Used to size the CI tests (see tests/scenarios.rs).
//!
//! cargo run -p upkeep-lab --example lab_runs -- SCENARIO RUNS DURATION [CONCURRENCY]
//!
//! Measured with the debug build (as `cargo test` runs it) on a 2-core
//! machine busy with other builds, nginx 1.22.1, stale-idle as built in
//! (8 clients in step every 1.01-1.03 s, backend idle 1 s, relay 20 ms):
//!
//! | phase length | runs | POST 502 before: min / median / max (mean, sd) | GET 502 before | any 502 after |
//! |---|---|---|---|---|
//! | 10 s | 20 | 10 / 15 / 19 (14.8, 2.1) of ~40 POSTs | 0 | 0 |
//! | 6 s  | 20 | 6 / 9 / 11 (9.0, 1.6) of ~24 POSTs | 0 | 0 |
//! | 8 s  | 12 | 8 / 10.5 / 15 (11.2, 2.1) of ~34 POSTs | 0 | 0 |
//!
//! (The 8 s row was measured after the relay's connect emulation changed
//! from "connect after 2d" to "d, connect, d"; the others before.)
//!
//! About 36% of POSTs fail before the fix. The test runs 8 s phases: even
//! treating every POST as an independent 36% chance, a before phase with no
//! POST 502 among ~32 POSTs has probability 0.64^32 ≈ 6e-7.

use upkeep_lab::{run, scenario, Cancel, RunOptions};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: lab_runs SCENARIO RUNS DURATION [CONCURRENCY] [--table]");
        std::process::exit(2);
    }
    let s = scenario::find(&args[1]).expect("unknown scenario");
    let runs: usize = args[2].parse().expect("RUNS");
    let duration = upkeep_lab::duration::parse(&args[3]).expect("DURATION");
    let table = args.iter().any(|a| a == "--table");
    let nginx = upkeep_nginx::NginxBinary::find(None).expect("nginx on PATH");
    let cancel = Cancel::new();
    upkeep_lab::cancel_on_signals(&cancel).unwrap();
    for i in 0..runs {
        let mut plan = (s.build)(upkeep_lab::nginx_version(&nginx).unwrap());
        plan.traffic.duration = duration;
        plan.traffic.seed = i as u64 + 1;
        if let Some(c) = args.get(4).and_then(|c| c.parse().ok()) {
            plan.traffic.concurrency = c;
        }
        // Sizing knobs: LAB_GAPS=960ms-1040ms LAB_MODE=open LAB_DELAY=20ms LAB_IDLE=1s
        if let Ok(g) = std::env::var("LAB_GAPS") {
            let (a, b) = g.split_once('-').expect("LAB_GAPS=MIN-MAX");
            plan.traffic.gap_min = upkeep_lab::duration::parse(a).unwrap();
            plan.traffic.gap_max = upkeep_lab::duration::parse(b).unwrap();
        }
        if std::env::var("LAB_MODE").as_deref() == Ok("open") {
            plan.traffic.mode = upkeep_lab::traffic::LoopMode::Open;
        }
        if let Ok(d) = std::env::var("LAB_DELAY") {
            plan.relay_delay = Some(upkeep_lab::duration::parse(&d).unwrap());
        }
        let quiet = |_: &str| {};
        let keep = std::env::var("LAB_KEEP")
            .ok()
            .map(|d| std::path::PathBuf::from(format!("{d}/{i}")));
        let opts = RunOptions {
            cancel: &cancel,
            log: &quiet,
            keep_dir: keep.as_deref(),
        };
        let report = run(&plan, &nginx, &opts).unwrap();
        if table {
            println!("{}", upkeep_lab::report::table::render(&report));
        }
        for r in &report.runs {
            println!(
                "run {i} {}: requests {} GET {}/{} POST 502 {}/{} upstream conns/request {:.3} TIME_WAIT peak {} p50 {:?} p99 {:?} signatures {:?}",
                r.phase.as_str(),
                r.requests,
                r.count("GET", "502"),
                r.method_total("GET"),
                r.count("POST", "502"),
                r.method_total("POST"),
                r.upstream_connections_per_request.unwrap_or(0.0),
                r.time_wait_peak,
                r.latency_ms.p50,
                r.latency_ms.p99,
                r.error_signatures,
            );
        }
        if cancel.is_cancelled() {
            break;
        }
    }
}
