//! `upkeep doctor` against a real nginx: connections per request pile up
//! TIME_WAIT and H001/H003 fire with what was measured; with keep-alive on
//! both sides they do not. Skipped (loudly) without an nginx binary.

mod common;

use std::time::Duration;

use common::{
    get_each_on_new_connection, nginx, requests_on_kept_connections, wait_for_worker, Backend,
    Mode, Nginx,
};
use upkeep_diag::{Finding, Severity};
use upkeep_host::log_tail::STALE_SIGNATURES;
use upkeep_host::sockets::{Census, SocketReader};
use upkeep_host::stub_status::StatusUrl;
use upkeep_host::{DoctorInput, DoctorReport};
use upkeep_rules::{CheckOptions, NginxVersion, VersionSource};

fn check_options(n: &Nginx) -> CheckOptions {
    CheckOptions {
        nginx_version: Some(NginxVersion::parse(&n.binary.version().unwrap()).unwrap()),
        version_source: VersionSource::Detected,
        ..CheckOptions::default()
    }
}

fn status_url(n: &Nginx) -> StatusUrl {
    StatusUrl::parse(&format!("http://127.0.0.1:{}/status", n.port)).unwrap()
}

fn findings<'r>(report: &'r DoctorReport<'_>, rule: &str) -> Vec<&'r Finding> {
    report
        .findings
        .iter()
        .map(|r| &r.finding)
        .filter(|f| f.rule == rule)
        .collect()
}

fn text_of(f: &Finding) -> String {
    format!("{}\n{}", f.message, f.notes.join("\n"))
}

const MAIN: &str = "worker_processes 1;\nevents { worker_connections 256; }";

#[test]
fn requests_without_reuse_pile_up_time_wait_and_fire_h001_h003() {
    let Some(bin) = nginx() else { return };
    let backend = Backend::start(Mode::Serve);
    let n = Nginx::start(
        bin,
        MAIN,
        &format!(
            "    access_log off;
    upstream app {{ server {}; }}
    server {{
        listen 127.0.0.1:{{port}};
        location / {{ proxy_pass http://app; }}
        location = /status {{ stub_status; }}
    }}",
            backend.addr
        ),
    );
    let config = n.config();
    let port = n.port;
    // 300 requests, each on a new client connection, while doctor samples.
    let traffic = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        get_each_on_new_connection(port, 300)
    });
    let mut input = DoctorInput::new(&config);
    input.check = check_options(&n);
    input.pid = Some(n.instance.pid());
    input.status_url = Some(status_url(&n));
    input.error_log = Some(n.prefix.error_log());
    input.window = Duration::from_secs(3);
    let report = upkeep_host::run(input);
    let ok = traffic.join().unwrap();
    assert_eq!(ok, 300, "every request got a 200");
    let opened = backend.connections();
    assert!(
        opened >= 300,
        "one upstream connection per request: {opened}"
    );

    let c = report.sampling.census_end.get(&backend.addr);
    let delta = report.sampling.status.expect("stub_status was sampled");
    let new = report.sampling.new_connections[&backend.addr];
    eprintln!(
        "census {c:?}; stub_status {} requests / {} connections; {new} new upstream connections seen, {opened} opened",
        delta.requests(),
        delta.connections()
    );
    eprintln!("{}", report.to_human(false));

    // H001: the measured TIME_WAIT count, in the finding.
    let h001 = findings(&report, "H001");
    assert_eq!(h001.len(), 1, "{:#?}", report.findings);
    let tw = c.time_wait_total();
    assert!(tw >= 100 && tw > 10 * c.established, "{c:?}");
    assert!(
        h001[0]
            .message
            .starts_with(&format!("{tw} TIME_WAIT sockets towards upstream `app`")),
        "{}",
        h001[0].message
    );
    assert!(text_of(h001[0]).contains(&format!(
        "{}: {tw} TIME_WAIT ({} at nginx's end",
        backend.addr, c.time_wait
    )));
    assert!(
        h001[0].primary.is_none(),
        "host findings have no config span"
    );

    // H003, client side: one request per connection, with the counts.
    let h003 = findings(&report, "H003");
    let client = h003
        .iter()
        .find(|f| f.message.contains("per client connection"))
        .expect("client-side H003");
    assert!(delta.connections() >= 20, "{delta:?}");
    // One request per connection (a connection accepted just before the
    // end sample may not have sent its request yet).
    assert!(
        delta.requests() <= delta.connections() && delta.connections() <= delta.requests() + 1,
        "{delta:?}"
    );
    let ratio = delta.requests() as f64 / delta.connections() as f64;
    assert!(client
        .message
        .starts_with(&format!("{ratio:.2} requests per client connection")));
    assert!(text_of(client).contains(&format!(
        "stub_status: {} requests and {} handled connections",
        delta.requests(),
        delta.connections()
    )));
    // H003, upstream side: new connections seen against the requests.
    let upstream = h003
        .iter()
        .find(|f| f.message.contains("per new upstream connection"))
        .expect("upstream-side H003");
    assert!(new >= 10 && new <= opened, "{new} seen, {opened} opened");
    assert!(text_of(upstream).contains(&format!("{new} new connections towards backend addresses")));

    // The static rule agrees, and measured findings rank first.
    assert_eq!(findings(&report, "U001").len(), 1);
    let order: Vec<&str> = report.findings.iter().map(|r| r.finding.rule).collect();
    let pos = |id: &str| order.iter().position(|r| *r == id).unwrap();
    assert!(pos("H001") < pos("U001"), "{order:?}");
    // Enough descriptors in this test process: no H004.
    assert!(findings(&report, "H004").is_empty());

    // Both census sources see the same TIME_WAIT sockets.
    let addrs = [backend.addr];
    let by_netlink = Census::count(&SocketReader::read_netlink().unwrap(), &addrs, None);
    let by_proc = Census::count(&SocketReader::read_proc(None).unwrap(), &addrs, None);
    let (a, b) = (by_netlink.get(&backend.addr), by_proc.get(&backend.addr));
    assert!(a.time_wait >= 100, "{a:?}");
    assert!(
        a.time_wait.abs_diff(b.time_wait) <= 2,
        "netlink {a:?} vs /proc {b:?}"
    );

    // JSON: the same ranking and the measurements.
    let json = report.to_json();
    assert_eq!(json["schema"], 1);
    assert_eq!(json["findings"][0]["rule"], order[0]);
    assert_eq!(json["host"]["backends"][0]["time_wait"], c.time_wait);
    assert_eq!(json["host"]["stub_status"]["requests"], delta.requests());
}

#[test]
fn reused_connections_on_both_sides_fire_neither() {
    let Some(bin) = nginx() else { return };
    let backend = Backend::start(Mode::Serve);
    let n = Nginx::start(
        bin,
        MAIN,
        &format!(
            "    access_log off;
    upstream app {{ server {}; keepalive 8; }}
    server {{
        listen 127.0.0.1:{{port}};
        location / {{
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_pass http://app;
        }}
        location = /status {{ stub_status; }}
    }}",
            backend.addr
        ),
    );
    let config = n.config();
    let port = n.port;
    let traffic = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        requests_on_kept_connections(port, 3, 100, "GET")
    });
    let mut input = DoctorInput::new(&config);
    input.check = check_options(&n);
    input.pid = Some(n.instance.pid());
    // The stub_status location is found in the configuration.
    input.error_log = Some(n.prefix.error_log());
    input.window = Duration::from_secs(3);
    let report = upkeep_host::run(input);
    let statuses = traffic.join().unwrap();
    assert_eq!(statuses.len(), 300);
    assert!(statuses.iter().all(|s| *s == 200));
    eprintln!("{}", report.to_human(false));

    assert_eq!(
        report.status_url.as_ref().map(|u| u.to_string()),
        Some(status_url(&n).to_string())
    );
    let delta = report.sampling.status.expect("stub_status was sampled");
    let c = report.sampling.census_end.get(&backend.addr);
    let new = report.sampling.new_connections[&backend.addr];
    let opened = backend.connections();
    eprintln!(
        "census {c:?}; stub_status {} requests / {} connections; {new} new upstream connections seen, {opened} opened",
        delta.requests(),
        delta.connections()
    );
    assert!(opened <= 3, "the pool reused connections: {opened} opened");
    assert!(delta.requests() >= 100, "{delta:?}");
    assert!(delta.requests() >= 2 * delta.connections(), "{delta:?}");
    assert!(c.time_wait_total() < 10, "{c:?}");
    assert!(new <= opened);
    assert!(
        findings(&report, "H001").is_empty(),
        "{:#?}",
        report.findings
    );
    assert!(
        findings(&report, "H003").is_empty(),
        "{:#?}",
        report.findings
    );
    assert!(findings(&report, "U001").is_empty());
}

#[test]
fn master_nofile_below_twice_worker_connections_fires_h004_and_r001() {
    let Some(bin) = nginx() else { return };
    let n = Nginx::start(
        bin,
        "worker_processes 1;\nevents { worker_connections 400; }",
        "    access_log off;\n    server { listen 127.0.0.1:{port}; return 204; }",
    );
    let pid = n.instance.pid();
    assert!(wait_for_worker(pid, |_| true), "no worker started");
    // Lower the running master's soft limit, as if started with ulimit -n 300.
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    let new = libc::rlimit {
        rlim_cur: 300,
        rlim_max: 300,
    };
    // SAFETY: prlimit(2) on the nginx master this test started.
    assert_eq!(
        unsafe { libc::prlimit(pid, libc::RLIMIT_NOFILE, &new, &mut old) },
        0
    );
    let config = n.config();
    let mut input = DoctorInput::new(&config);
    input.check = check_options(&n);
    input.pid = Some(pid);
    input.error_log = Some(n.prefix.error_log());
    input.window = Duration::from_millis(100);
    let report = upkeep_host::run(input);
    eprintln!("{}", report.to_human(false));

    let p = report.processes.as_ref().unwrap();
    assert_eq!(p.master_nofile.unwrap().soft, Some(300));
    assert_eq!(p.workers.len(), 1);
    let h004 = findings(&report, "H004");
    assert_eq!(h004.len(), 1);
    assert!(
        h004[0].message.starts_with(
            "nginx workers may open 300 files (the master's soft limit 300), below 2 × worker_connections 400 = 800"
        ),
        "{}",
        h004[0].message
    );
    let r001 = findings(&report, "R001");
    assert_eq!(r001.len(), 1);
    assert!(
        r001[0].primary.is_some(),
        "R001 points at worker_connections"
    );
    let fix = r001[0].fix.as_ref().unwrap();
    assert_eq!(fix.edits[0].content, "worker_rlimit_nofile 800;\n");
}

/// Without `worker_rlimit_nofile`, `check` judges `worker_connections`
/// against an assumed inherited limit (1024); doctor reads the real one and
/// the assumption (finding and report line) gives way to the measurement.
#[test]
fn doctor_replaces_the_assumed_inherited_nofile_limit_with_the_real_one() {
    let Some(bin) = nginx() else { return };
    let n = Nginx::start(
        bin,
        "worker_processes 1;\nevents { worker_connections 2000; }",
        "    access_log off;\n    server { listen 127.0.0.1:{port}; return 204; }",
    );
    let pid = n.instance.pid();
    assert!(wait_for_worker(pid, |_| true), "no worker started");

    // The static check alone: the assumption, stated.
    let config = n.config();
    let static_report = upkeep_rules::check(&config, &check_options(&n));
    let assumed: Vec<_> = static_report
        .findings
        .iter()
        .filter(|f| f.rule == "R001")
        .collect();
    assert_eq!(assumed.len(), 1);
    assert!(
        assumed[0].message.contains("(assumed 1024)"),
        "{}",
        assumed[0].message
    );
    assert!(static_report
        .assumptions
        .iter()
        .any(|a| a.starts_with(upkeep_rules::R001_ASSUMPTION_PREFIX)));

    let mut input = DoctorInput::new(&config);
    input.check = check_options(&n);
    input.pid = Some(pid);
    input.error_log = Some(n.prefix.error_log());
    input.window = Duration::from_millis(100);
    let report = upkeep_host::run(input);
    let human = report.to_human(false);
    eprintln!("{human}");
    assert!(
        !human.contains("assumed 1024") && !human.contains(upkeep_rules::R001_ASSUMPTION_PREFIX),
        "the assumption is replaced by the measurement: {human}"
    );
    let p = report.processes.as_ref().unwrap();
    let real = p.master_nofile.unwrap().soft.unwrap();
    let r001 = findings(&report, "R001");
    let workers_hold = p
        .workers
        .iter()
        .all(|(_, l)| l.and_then(|l| l.soft).is_none_or(|s| s >= 2000));
    if real >= 2000 && workers_hold {
        assert!(
            r001.is_empty(),
            "real limit {real} holds 2000 connections: {r001:#?}"
        );
    } else {
        assert_eq!(r001.len(), 1, "{r001:#?}");
        assert!(
            r001[0]
                .message
                .contains("exceeds the open-file limit nginx runs with"),
            "{}",
            r001[0].message
        );
    }
}

#[test]
fn stale_pooled_connections_fire_h005_and_502s_make_it_an_error() {
    let Some(bin) = nginx() else { return };
    let backend = Backend::start(Mode::CloseOnSecond);
    let n = Nginx::start(
        bin,
        MAIN,
        &format!(
            "    log_format ka '$remote_addr [$time_local] \"$request\" $status c=$connection us=\"$upstream_status\"';
    access_log {{prefix}}/logs/access.log ka;
    upstream app {{ server {}; keepalive 8; }}
    server {{
        listen 127.0.0.1:{{port}};
        location / {{
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_pass http://app;
        }}
    }}",
            backend.addr
        ),
    );
    let config = n.config();
    let run = |config| {
        let mut input = DoctorInput::new(config);
        input.check = check_options(&n);
        input.pid = Some(n.instance.pid());
        input.error_log = Some(n.prefix.error_log());
        input.window = Duration::from_millis(100);
        upkeep_host::run(input)
    };

    // GETs: each reuse fails, nginx retries it on a new connection.
    let statuses = requests_on_kept_connections(n.port, 1, 4, "GET");
    assert_eq!(statuses, [200, 200, 200, 200]);
    let report = run(&config);
    eprintln!("{}", report.to_human(false));
    let logs = report.logs.as_ref().unwrap();
    let stale: u64 = STALE_SIGNATURES.iter().map(|s| logs.count(*s)).sum();
    assert_eq!(stale, 3, "{logs:?}");
    assert_eq!(logs.stale_client_visible(), Some(0), "{logs:?}");
    let h005 = findings(&report, "H005");
    assert_eq!(h005.len(), 1);
    assert_eq!(h005[0].severity, Severity::Warning);
    assert!(
        h005[0]
            .message
            .starts_with("3 failures of stale keep-alive connections"),
        "{}",
        h005[0].message
    );
    assert!(h005[0].message.ends_with("nginx retried all of them away"));

    // A POST on a pooled connection is not retried: the client gets a 502.
    let statuses = requests_on_kept_connections(n.port, 1, 1, "POST");
    assert_eq!(statuses, [502]);
    let report = run(&config);
    eprintln!("{}", report.to_human(false));
    let logs = report.logs.as_ref().unwrap();
    assert_eq!(logs.stale_client_visible(), Some(1), "{logs:?}");
    let h005 = findings(&report, "H005");
    assert_eq!(h005[0].severity, Severity::Error);
    assert!(
        h005[0].message.starts_with("4 failures")
            && h005[0].message.ends_with(": 1 client request got a 5xx"),
        "{}",
        h005[0].message
    );
    // Errors rank first.
    assert_eq!(report.findings[0].finding.rule, "H005");
}

#[test]
fn worker_rlimit_nofile_is_what_workers_get_and_what_h004_judges() {
    let Some(bin) = nginx() else { return };
    let n = Nginx::start(
        bin,
        "worker_processes 1;\nworker_rlimit_nofile 1000;\nevents { worker_connections 800; }",
        "    access_log off;\n    server { listen 127.0.0.1:{port}; return 204; }",
    );
    // The worker sets its own limit from worker_rlimit_nofile.
    let set = wait_for_worker(n.instance.pid(), |w| {
        upkeep_host::process::read_nofile(w).is_ok_and(|l| l.soft == Some(1000))
    });
    assert!(set, "no worker with RLIMIT_NOFILE 1000 within 5 s");
    let config = n.config();
    let mut input = DoctorInput::new(&config);
    input.check = check_options(&n);
    input.pid = Some(n.instance.pid());
    input.error_log = Some(n.prefix.error_log());
    input.window = Duration::from_millis(100);
    let report = upkeep_host::run(input);

    let p = report.processes.as_ref().unwrap();
    assert_eq!(p.worker_soft_nofile(), Some(Some(1000)), "{p:?}");
    let h004 = findings(&report, "H004");
    assert_eq!(h004.len(), 1);
    assert!(
        h004[0].message.starts_with(
            "nginx workers may open 1000 files (worker_rlimit_nofile 1000), below 2 × worker_connections 800 = 1600"
        ),
        "{}",
        h004[0].message
    );
    // Set explicitly, so the live R001 leaves it to the static rule (which
    // is quiet: 800 <= 1000).
    assert!(findings(&report, "R001").is_empty());
}
