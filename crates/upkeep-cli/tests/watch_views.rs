//! `upkeep watch`'s own views carry what its Prometheus page publishes:
//! against a real nginx with a pooled upstream, one whose port refuses
//! connections and one whose backend closes without answering, the JSON
//! lines give the requests and client-visible 502s per peer (access log),
//! the stale-reuse signatures per backend (error log), the ephemeral ports
//! in use, the open-file headroom and the static check's findings, equal
//! to the page's samples. And an error log that does not exist when the
//! watch starts is said to be missing, then read once nginx creates it.
//! Skipped (loudly) without an nginx binary.

mod common;

use common::{
    check_report, closed_port, get_statuses, keepalive_backend, lines_of, next_line, sample,
    scrape, start_exporter, wait_for, KillOnDrop,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use upkeep_nginx::{free_port, NginxBinary, NginxInstance, Prefix};

/// Reads each request head and closes without answering: nginx logs
/// "upstream prematurely closed connection" and the client gets a 502.
fn closes_without_answer() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for _ in 0..50 {
            let Ok((mut s, _)) = l.accept() else { return };
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 1024];
            while let Ok(n) = s.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
                if seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
        }
    });
    addr
}

/// JSON lines until one satisfies `done` (at most `limit`); all of them.
fn json_until(
    lines: &Receiver<String>,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + limit;
    let mut all = Vec::new();
    while Instant::now() < deadline {
        let Ok(line) = lines.recv_timeout(Duration::from_millis(500)) else {
            continue;
        };
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let finished = done(&v);
        all.push(v);
        if finished {
            break;
        }
    }
    all
}

/// `net.ipv4.ip_local_port_range` of this network namespace: its size.
fn port_range_size() -> u64 {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let ports: Vec<u64> = text
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    ports[1] - ports[0] + 1
}

#[test]
fn json_view_carries_what_the_prometheus_page_publishes() {
    let Some(bin) = NginxBinary::find(None) else {
        eprintln!("SKIPPED: no nginx binary found (install Debian's nginx)");
        return;
    };
    let (app, down, rude) = (
        keepalive_backend(200),
        closed_port(),
        closes_without_answer(),
    );
    let prefix = Prefix::new().unwrap();
    let port = free_port().unwrap();
    let conf = prefix
        .write(
            "nginx.conf",
            &format!(
                "worker_processes 1;\nerror_log {};\nevents {{ worker_connections 128; }}\nhttp {{\n    {}\n    log_format up '$remote_addr \"$request\" $status ua=\"$upstream_addr\"';\n    access_log {} up;\n    upstream app {{ server {app}; keepalive 8; }}\n    upstream down {{ server {down}; }}\n    upstream rude {{ server {rude}; }}\n    server {{\n        listen 127.0.0.1:{port};\n        location / {{ proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection \"\"; }}\n        location /down {{ proxy_pass http://down; }}\n        location /rude {{ proxy_pass http://rude; }}\n        location = /status {{ stub_status; access_log off; }}\n    }}\n}}\n",
                prefix.error_log().display(),
                prefix.http_temp_paths(),
                prefix.access_log().display(),
            ),
        )
        .unwrap();
    std::fs::write(prefix.access_log(), "").unwrap();
    let nginx = NginxInstance::start(&bin, &prefix, &conf).unwrap();

    let mut watch = start_exporter(&conf, nginx.pid(), "200ms", Stdio::piped());
    let stdout = lines_of(watch.watch.0.stdout.take().unwrap());
    next_line(&watch.stderr, "sources");

    // Bounded traffic: 20 proxied, 3 refused, 2 closed without an answer.
    assert_eq!(get_statuses(port, "/", 20), vec![200; 20]);
    assert_eq!(get_statuses(port, "/down", 3), vec![502; 3]);
    assert_eq!(get_statuses(port, "/rude", 2), vec![502; 2]);

    let peer = |v: &Value, a: SocketAddr| v["totals"]["peers"][a.to_string()].clone();
    let lines = json_until(&stdout, Duration::from_secs(15), |v| {
        peer(v, app)["requests"] == 20
            && peer(v, down)["bad_gateway"] == 3
            && peer(v, rude)["stale_reuse"] == 2
            && v["totals"]["signatures"]["connect-refused"] == 3
    });
    // One more interval, wholly after the traffic: the page is written
    // before each line, so it now holds the same totals.
    let last: Value = serde_json::from_str(&next_line(&stdout, "an interval")).unwrap();
    let page = scrape(&watch.addr);
    let summary = format!("{last:#}");

    // Per peer since the start: access-log requests and client 502s,
    // error-log signatures and the stale-reuse sum.
    let app_p = peer(&last, app);
    assert_eq!(app_p["upstream"], "app", "{summary}");
    assert_eq!(app_p["requests"], 20, "{summary}");
    assert_eq!(app_p["bad_gateway"], 0, "{summary}");
    assert_eq!(app_p["stale_reuse"], 0, "{summary}");
    assert_eq!(app_p["signatures"]["upstream-prematurely-closed"], 0);
    let down_p = peer(&last, down);
    assert_eq!(down_p["requests"], 3, "{summary}");
    assert_eq!(down_p["bad_gateway"], 3, "{summary}");
    assert_eq!(down_p["signatures"]["connect-refused"], 3, "{summary}");
    assert_eq!(down_p["stale_reuse"], 0, "{summary}");
    let rude_p = peer(&last, rude);
    assert_eq!(rude_p["requests"], 2, "{summary}");
    assert_eq!(rude_p["bad_gateway"], 2, "{summary}");
    assert_eq!(
        rude_p["signatures"]["upstream-prematurely-closed"], 2,
        "{summary}"
    );
    assert_eq!(rude_p["stale_reuse"], 2, "{summary}");
    assert_eq!(last["totals"]["access_log_lines"], 25, "{summary}");
    assert_eq!(last["totals"]["access_log_unparsed"], 0, "{summary}");

    // The intervals' per-backend counts add up to the totals.
    let backend_sum = |a: SocketAddr, field: &str, sub: Option<&str>| -> u64 {
        lines
            .iter()
            .chain(std::iter::once(&last))
            .flat_map(|l| l["backends"].as_array().unwrap().clone())
            .filter(|b| b["address"] == a.to_string())
            .map(|b| match sub {
                Some(k) => b[field][k].as_u64().unwrap(),
                None => b[field].as_u64().unwrap(),
            })
            .sum()
    };
    assert_eq!(backend_sum(app, "requests", None), 20);
    assert_eq!(backend_sum(down, "bad_gateway", None), 3);
    assert_eq!(
        backend_sum(rude, "stale_reuse", Some("upstream-prematurely-closed")),
        2
    );

    // Ephemeral ports: the pooled connection to app holds one.
    let size = port_range_size();
    assert_eq!(last["census"]["port_range_size"], size, "{summary}");
    let app_b = last["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["address"] == app.to_string())
        .unwrap()
        .clone();
    let used = app_b["ephemeral_ports"].as_u64().unwrap();
    assert!(used >= 1, "the pooled connection: {app_b}");
    assert_eq!(
        app_b["ephemeral_ports_used_ratio"].as_f64().unwrap(),
        used as f64 / size as f64
    );

    // Open files of the master and the worker.
    let files = &last["open_files"];
    assert_eq!(files["workers"], 1, "{summary}");
    let worker = &files["worker"];
    assert_eq!(
        worker["headroom"].as_u64().unwrap(),
        worker["limit"].as_u64().unwrap() - worker["open"].as_u64().unwrap()
    );
    assert!(files["master"]["open"].as_u64().unwrap() >= 3);

    // The findings are `upkeep check` on the running configuration.
    let findings = &last["findings"];
    assert_eq!(findings["checks"], 1, "{summary}");
    assert_eq!(findings["success"], true, "{summary}");
    let report = check_report(&conf, &bin.version().unwrap());
    let mut expected: BTreeMap<(String, String), u64> = BTreeMap::new();
    for f in report["findings"].as_array().unwrap() {
        let key = (
            f["rule"].as_str().unwrap().to_string(),
            f["severity"].as_str().unwrap().to_string(),
        );
        *expected.entry(key).or_default() += 1;
    }
    assert!(!expected.is_empty(), "the test config has findings");
    let shown: BTreeMap<(String, String), u64> = findings["by_rule"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                (
                    r["rule"].as_str().unwrap().to_string(),
                    r["severity"].as_str().unwrap().to_string(),
                ),
                r["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(shown, expected);

    assert_eq!(last["build"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(last["build"]["nginx_version"], bin.version().unwrap());
    let logs = last["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 2, "{summary}");
    assert!(logs.iter().all(|l| l["present"] == true), "{summary}");

    // The same numbers as the Prometheus page.
    let labels =
        |a: SocketAddr, upstream: &str| format!("{{backend=\"{a}\",upstream=\"{upstream}\"}}");
    for (a, up) in [(app, "app"), (down, "down"), (rude, "rude")] {
        let p = peer(&last, a);
        assert_eq!(
            sample(
                &page,
                &format!("upkeep_upstream_requests_total{}", labels(a, up))
            ),
            p["requests"].as_f64(),
            "{a}: {page}"
        );
        assert_eq!(
            sample(
                &page,
                &format!(
                    "upkeep_upstream_bad_gateway_responses_total{}",
                    labels(a, up)
                )
            ),
            p["bad_gateway"].as_f64(),
            "{a}: {page}"
        );
        for (sig, n) in p["signatures"].as_object().unwrap() {
            assert_eq!(
                sample(
                    &page,
                    &format!(
                        "upkeep_upstream_error_signatures_total{{backend=\"{a}\",upstream=\"{up}\",signature=\"{sig}\"}}"
                    )
                ),
                n.as_f64(),
                "{a} {sig}: {page}"
            );
        }
    }
    assert_eq!(
        sample(
            &page,
            &format!("upkeep_upstream_ephemeral_ports{}", labels(app, "app"))
        ),
        Some(used as f64),
        "{page}"
    );
    assert_eq!(
        sample(
            &page,
            "upkeep_nginx_open_files_headroom{process=\"worker\"}"
        ),
        worker["headroom"].as_f64(),
        "{page}"
    );
    for ((rule, severity), n) in &expected {
        assert_eq!(
            sample(
                &page,
                &format!("upkeep_findings{{rule=\"{rule}\",severity=\"{severity}\"}}")
            ),
            Some(*n as f64),
            "{page}"
        );
    }
}

#[test]
fn an_error_log_created_after_the_start_is_followed() {
    let Some(bin) = NginxBinary::find(None) else {
        eprintln!("SKIPPED: no nginx binary found (install Debian's nginx)");
        return;
    };
    let down = closed_port();
    let prefix = Prefix::new().unwrap();
    let port = free_port().unwrap();
    let log_dir = prefix.path().join("logs-late");
    std::fs::create_dir_all(&log_dir).unwrap();
    let error_log = log_dir.join("error.log");
    let conf = prefix
        .write(
            "nginx.conf",
            &format!(
                "worker_processes 1;\nerror_log {};\nevents {{ worker_connections 64; }}\nhttp {{\n    {}    access_log off;\n    upstream down {{ server {down}; }}\n    server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://down; }} location = /status {{ stub_status; }} }}\n}}\n",
                error_log.display(),
                prefix.http_temp_paths()
            ),
        )
        .unwrap();
    let nginx = NginxInstance::start(&bin, &prefix, &conf).unwrap();
    // Rotated away: nginx writes into the moved file until it reopens.
    std::fs::rename(&error_log, log_dir.join("error.log.1")).unwrap();
    assert!(!error_log.exists());

    // The JSON view and the line view, side by side.
    let start = |format: &str| {
        let child = Command::new(env!("CARGO_BIN_EXE_upkeep"))
            .args(["watch", "--config"])
            .arg(&conf)
            .args(["--pid", &nginx.pid().to_string()])
            .args(["--interval", "200ms", "--format", format])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut w = KillOnDrop(child);
        let out = lines_of(w.0.stdout.take().unwrap());
        let err = lines_of(w.0.stderr.take().unwrap());
        (w, out, err)
    };
    let (_json_watch, json_out, json_err) = start("json");
    let (_line_watch, line_out, _line_err) = start("human");
    let watching = next_line(&json_err, "sources");
    assert!(
        watching.contains(&error_log.display().to_string()),
        "the missing log is followed: {watching}"
    );
    let expected_note = format!(
        "note: error_log {} does not exist yet: followed once it appears",
        error_log.display()
    );
    let mut notes = Vec::new();
    while let Ok(l) = json_err.recv_timeout(Duration::from_secs(2)) {
        let found = l == expected_note;
        notes.push(l);
        if found {
            break;
        }
    }
    assert!(notes.contains(&expected_note), "{notes:?}");

    // Before nginx reopens its log: said to be missing in both views.
    let first: Value = serde_json::from_str(&next_line(&json_out, "an interval")).unwrap();
    assert_eq!(
        first["logs"],
        serde_json::json!([{"kind": "error", "path": error_log.display().to_string(), "present": false, "readable": false, "refused": null}])
    );
    let first_line = next_line(&line_out, "a line");
    assert!(
        first_line.contains(&format!(
            "missing_error_log={:?}",
            error_log.display().to_string()
        )),
        "{first_line}"
    );

    // nginx reopens its logs (SIGUSR1, what logrotate's postrotate sends):
    // the file appears; then three refused connections are logged in it.
    // SAFETY: signalling the nginx this test started.
    assert_eq!(unsafe { libc::kill(nginx.pid(), libc::SIGUSR1) }, 0);
    assert!(
        wait_for(Duration::from_secs(10), Duration::from_millis(50), || {
            error_log.exists()
        }),
        "nginx did not reopen its error log"
    );
    // Workers reopen after the master: wait until a worker's line lands in
    // the new file (at most 10 s, one request every 200 ms).
    let mut statuses = Vec::new();
    wait_for(Duration::from_secs(10), Duration::from_millis(200), || {
        statuses.extend(get_statuses(port, "/", 1));
        let text = std::fs::read_to_string(&error_log).unwrap_or_default();
        text.contains("Connection refused")
    });
    statuses.extend(get_statuses(port, "/", 3));
    assert!(statuses.iter().all(|s| *s == 502), "{statuses:?}");
    let in_new_log = std::fs::read_to_string(&error_log)
        .unwrap()
        .matches("(111: Connection refused)")
        .count() as u64;
    assert!(in_new_log >= 3, "{in_new_log} lines in the reopened log");

    let lines = json_until(&json_out, Duration::from_secs(15), |v| {
        v["totals"]["signatures"]["connect-refused"] == in_new_log
    });
    let last = lines.last().unwrap();
    assert_eq!(
        last["totals"]["signatures"]["connect-refused"], in_new_log,
        "every refused connection logged in the new file is counted: {last:#}"
    );
    assert_eq!(last["logs"][0]["present"], true, "{last:#}");
    assert_eq!(
        last["totals"]["peers"][down.to_string()]["signatures"]["connect-refused"],
        in_new_log
    );

    // The line view: no longer missing, and the refused connections seen.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen = 0u64;
    let mut line = String::new();
    while Instant::now() < deadline && seen < in_new_log {
        let Ok(l) = line_out.recv_timeout(Duration::from_millis(500)) else {
            continue;
        };
        seen += l
            .split_whitespace()
            .find_map(|w| w.strip_prefix("connect-refused="))
            .map_or(0, |n| n.parse::<u64>().unwrap());
        line = l;
    }
    assert_eq!(seen, in_new_log, "{line}");
    assert!(!line.contains("missing_error_log"), "{line}");
}

/// The README's table of JSON fields names every exported metric family,
/// so a family added to the page is added to the views' documentation too.
#[test]
fn the_readme_maps_every_metric_to_its_json_field() {
    let readme = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"),
    )
    .unwrap();
    let table = readme
        .split("| JSON field | metric |\n")
        .nth(1)
        .and_then(|s| s.split("\n\n").next())
        .expect("the JSON field table of the Many hosts section");
    for family in upkeep_host::watch::prometheus::METRICS {
        assert!(
            table.contains(&format!("`{}`", family.name)),
            "{} is not in the README's JSON field table",
            family.name
        );
    }
}

/// The static check of the running configuration takes the nginx version
/// from upkeep.toml beside it when it names one, as `upkeep check` does,
/// not from the binary on this host: an upstream without `keepalive` is
/// U001 for Debian's 1.22 and fine for 1.30.0 (pooled by default).
#[test]
fn the_running_check_takes_the_version_upkeep_toml_names() {
    let Some(bin) = NginxBinary::find(None) else {
        eprintln!("SKIPPED: no nginx binary found (install Debian's nginx)");
        return;
    };
    let version = bin.version().unwrap();
    if !version.starts_with("1.22.") {
        eprintln!("SKIPPED: the test needs nginx before 1.29.7, found {version}");
        return;
    }
    let app = keepalive_backend(200);
    let prefix = Prefix::new().unwrap();
    let port = free_port().unwrap();
    let conf = prefix
        .write(
            "nginx.conf",
            &format!(
                "worker_processes 1;\nworker_shutdown_timeout 30s;\nerror_log {};\nevents {{}}\nhttp {{\n    {}\n    access_log off;\n    upstream app {{ server {app}; }}\n    server {{\n        listen 127.0.0.1:{port};\n        location / {{ proxy_pass http://app; }}\n    }}\n}}\n",
                prefix.error_log().display(),
                prefix.http_temp_paths(),
            ),
        )
        .unwrap();
    let nginx = NginxInstance::start(&bin, &prefix, &conf).unwrap();
    let rules_seen = |toml: Option<&str>| -> Vec<String> {
        let settings = conf.parent().unwrap().join("upkeep.toml");
        match toml {
            Some(t) => std::fs::write(&settings, t).unwrap(),
            None => {
                let _ = std::fs::remove_file(&settings);
            }
        }
        let out = Command::new(env!("CARGO_BIN_EXE_upkeep"))
            .args(["watch", "--config"])
            .arg(&conf)
            .args(["--pid", &nginx.pid().to_string()])
            .args(["--interval", "100ms", "--count", "1", "--format", "json"])
            .output()
            .unwrap();
        let line = String::from_utf8_lossy(&out.stdout);
        let last: Value = serde_json::from_str(line.lines().last().unwrap_or("{}"))
            .unwrap_or_else(|e| panic!("{e}: {line}"));
        last["findings"]["by_rule"]
            .as_array()
            .unwrap_or_else(|| panic!("{last:#}"))
            .iter()
            .map(|r| r["rule"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(rules_seen(None).contains(&"U001".to_string()));
    let with_toml = rules_seen(Some("nginx_version = \"1.30.0\"\n"));
    assert!(!with_toml.contains(&"U001".to_string()), "{with_toml:?}");
}
