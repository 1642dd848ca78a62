//! `upkeep watch --listen` in front of a real nginx, scraped: the page
//! passes `promtool check metrics` (Debian's prometheus package), its
//! counters never go back between scrapes, the access-log, error-log,
//! open-file and static-check families carry what nginx did, and a reload
//! runs the static check again. Skipped (loudly) without nginx or promtool.

mod common;

use common::{
    check_report, closed_port, get_statuses, installed, keepalive_backend, next_line, sample,
    scrape, scrape_until, start_exporter,
};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use upkeep_host::watch::prometheus::METRICS;
use upkeep_nginx::{free_port, NginxBinary, NginxInstance, Prefix};

/// `promtool check metrics` on `page`: its exit status and what it said.
fn promtool_check(promtool: &std::path::Path, page: &str) -> (bool, String) {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Every sample of the page's counters: `name{labels}` → value.
fn counters(page: &str) -> BTreeMap<String, f64> {
    let kinds: BTreeMap<&str, &str> = page
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .collect();
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let name = series.split('{').next()?;
            if kinds.get(name) != Some(&"counter") {
                return None;
            }
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn config(
    prefix: &Prefix,
    port: u16,
    app: SocketAddr,
    down: SocketAddr,
    keepalive: &str,
) -> String {
    format!(
        "worker_processes 1;\nerror_log {};\nevents {{ worker_connections 128; }}\nhttp {{\n    {}\n    log_format up '$remote_addr [$time_local] \"$request\" $status ua=\"$upstream_addr\" us=\"$upstream_status\"';\n    access_log {} up;\n    upstream app {{ server {app}; {keepalive} }}\n    upstream down {{ server {down}; }}\n    server {{\n        listen 127.0.0.1:{port};\n        location / {{ proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection \"\"; }}\n        location /down {{ proxy_pass http://down; }}\n        location = /status {{ stub_status; access_log off; }}\n    }}\n}}\n",
        prefix.error_log().display(),
        prefix.http_temp_paths(),
        prefix.access_log().display(),
    )
}

#[test]
fn a_scrape_of_a_real_watch_passes_promtool_and_counters_never_go_back() {
    let Some(bin) = NginxBinary::find(None) else {
        eprintln!("SKIPPED: no nginx binary found (install Debian's nginx)");
        return;
    };
    let Some(promtool) = installed("promtool", "prometheus") else {
        return;
    };
    let (app, down) = (keepalive_backend(200), closed_port());
    let prefix = Prefix::new().unwrap();
    let port = free_port().unwrap();
    let conf = prefix
        .write(
            "nginx.conf",
            &config(&prefix, port, app, down, "keepalive 8;"),
        )
        .unwrap();
    // The log files exist before the watch starts following them.
    std::fs::write(prefix.access_log(), "").unwrap();
    let nginx = NginxInstance::start(&bin, &prefix, &conf).unwrap();

    let watch = start_exporter(&conf, nginx.pid(), "200ms", Stdio::null());
    let addr = watch.addr.clone();
    let watching = next_line(&watch.stderr, "sources");
    assert!(
        watching.contains(&format!("access log {}", prefix.access_log().display())),
        "{watching}"
    );

    let before = scrape(&addr);
    assert!(get_statuses(port, "/", 20).iter().all(|s| *s == 200));
    assert!(get_statuses(port, "/down", 3).iter().all(|s| *s == 502));

    let app_labels = format!("{{backend=\"{app}\",upstream=\"app\"}}");
    let down_labels = format!("{{backend=\"{down}\",upstream=\"down\"}}");
    let bad_gateway = format!("upkeep_upstream_bad_gateway_responses_total{down_labels}");
    let page = scrape_until(&addr, Duration::from_secs(10), |p| {
        sample(p, &bad_gateway) == Some(3.0)
    });

    let (ok, said) = promtool_check(&promtool, &page);
    assert!(ok, "promtool check metrics failed:\n{said}\n{page}");
    // With every source watched, the page has every family of the
    // exposition's list (the list the examples' tests check the rules and
    // the dashboard against), and no other.
    let families: BTreeSet<&str> = page
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let listed: BTreeSet<&str> = METRICS.iter().map(|f| f.name).collect();
    assert_eq!(families, listed, "{page}");
    assert_eq!(
        sample(
            &page,
            &format!("upkeep_upstream_requests_total{app_labels}")
        ),
        Some(20.0),
        "{page}"
    );
    assert_eq!(sample(&page, &bad_gateway), Some(3.0), "{page}");
    assert_eq!(
        sample(
            &page,
            &format!(
                "upkeep_upstream_error_signatures_total{{backend=\"{down}\",upstream=\"down\",signature=\"connect-refused\"}}"
            )
        ),
        Some(3.0),
        "{page}"
    );
    assert_eq!(
        sample(
            &page,
            &format!(
                "upkeep_upstream_error_signatures_total{{backend=\"{app}\",upstream=\"app\",signature=\"upstream-prematurely-closed\"}}"
            )
        ),
        Some(0.0),
        "a stale-reuse series exists at 0 before any failure: {page}"
    );
    // The pool kept the connections: 20 requests over a few connections.
    let opened = sample(
        &page,
        &format!("upkeep_upstream_connections_opened_total{app_labels}"),
    )
    .unwrap();
    assert!((1.0..=3.0).contains(&opened), "{opened}: {page}");
    let established = sample(
        &page,
        &format!(
            "upkeep_upstream_sockets{{backend=\"{app}\",upstream=\"app\",end=\"nginx\",state=\"established\"}}"
        ),
    )
    .unwrap();
    assert!(established >= 1.0, "the pooled connection: {page}");
    let ratio = sample(
        &page,
        &format!("upkeep_upstream_ephemeral_ports_used_ratio{app_labels}"),
    )
    .unwrap();
    assert!(ratio > 0.0 && ratio < 0.01, "{ratio}");
    let room = sample(
        &page,
        "upkeep_nginx_open_files_headroom{process=\"worker\"}",
    )
    .unwrap();
    let limit = sample(&page, "upkeep_nginx_open_files_limit{process=\"worker\"}").unwrap();
    let open = sample(&page, "upkeep_nginx_open_files{process=\"worker\"}").unwrap();
    assert!(open >= 5.0 && room == limit - open, "{open} {limit} {room}");
    assert_eq!(sample(&page, "upkeep_nginx_workers"), Some(1.0));
    assert!(page.contains(&format!(
        "upkeep_build_info{{version=\"{}\",nginx_version=\"{}\"}} 1\n",
        env!("CARGO_PKG_VERSION"),
        bin.version().unwrap()
    )));

    // The findings gauge is `upkeep check` on the running configuration.
    assert_eq!(sample(&page, "upkeep_config_checks_total"), Some(1.0));
    assert_eq!(sample(&page, "upkeep_config_check_success"), Some(1.0));
    let report = check_report(&conf, &bin.version().unwrap());
    let mut expected: BTreeMap<String, f64> = BTreeMap::new();
    for f in report["findings"].as_array().unwrap() {
        let key = format!(
            "upkeep_findings{{rule=\"{}\",severity=\"{}\"}}",
            f["rule"].as_str().unwrap(),
            f["severity"].as_str().unwrap()
        );
        *expected.entry(key).or_default() += 1.0;
    }
    assert!(!expected.is_empty(), "the test config has findings");
    for (series, n) in &expected {
        assert_eq!(sample(&page, series), Some(*n), "{series}: {page}");
    }

    // A reload with the pool removed: the check runs again.
    std::fs::write(&conf, config(&prefix, port, app, down, "")).unwrap();
    nginx.reload().unwrap();
    let reloaded = scrape_until(&addr, Duration::from_secs(15), |p| {
        sample(p, "upkeep_config_checks_total") >= Some(2.0)
    });
    assert!(
        sample(&reloaded, "upkeep_config_checks_total") >= Some(2.0),
        "no check after the reload: {reloaded}"
    );
    let (ok, said) = promtool_check(&promtool, &reloaded);
    assert!(ok, "promtool check metrics failed:\n{said}\n{reloaded}");

    // Counters never go back, and no counter series disappears.
    let mut previous = counters(&before);
    for later in [&page, &reloaded] {
        let now = counters(later);
        for (series, v) in &previous {
            let later_v = now.get(series).unwrap_or_else(|| panic!("{series} gone"));
            assert!(later_v >= v, "{series}: {v} then {later_v}");
        }
        previous = now;
    }
}
