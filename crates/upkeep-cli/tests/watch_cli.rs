//! `upkeep watch` end to end: the binary against a real nginx whose upstream
//! has no keep-alive, stopped with Ctrl-C (SIGINT); its JSON lines, its
//! Prometheus endpoint and its line output; and bad input. Skipped (loudly)
//! without an nginx binary.

mod common;

use common::{
    get_statuses, keepalive_backend, lines_of, next_line, sample, scrape, serving_metrics,
    start_exporter, wait_until,
};
use std::io::Write;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use upkeep_nginx::{free_port, NginxBinary, NginxInstance, Prefix};

fn upkeep() -> Command {
    Command::new(env!("CARGO_BIN_EXE_upkeep"))
}

fn wait_with_timeout(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    wait_until(limit, Duration::from_millis(20), || {
        child.try_wait().unwrap()
    })
    .unwrap_or_else(|| {
        let _ = child.kill();
        panic!("upkeep watch did not exit within {limit:?}");
    })
}

fn metric(page: &str, name: &str) -> f64 {
    sample(page, name).unwrap_or_else(|| panic!("{name} not in\n{page}"))
}

#[test]
fn json_lines_and_metrics_until_ctrl_c() {
    let Some(bin) = NginxBinary::find(None) else {
        eprintln!("SKIPPED: no nginx binary found (install Debian's nginx)");
        return;
    };
    let backend = keepalive_backend(200);
    let prefix = Prefix::new().unwrap();
    let port = free_port().unwrap();
    let error_log = prefix.error_log();
    let conf = prefix
        .write(
            "nginx.conf",
            &format!(
                "worker_processes 1;\nerror_log {};\nevents {{ worker_connections 128; }}\nhttp {{\n    {}    access_log off;\n    upstream app {{ server {backend}; }}\n    server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://app; }} location = /status {{ stub_status; }} }}\n}}\n",
                error_log.display(),
                prefix.http_temp_paths()
            ),
        )
        .unwrap();
    let nginx = NginxInstance::start(&bin, &prefix, &conf).unwrap();

    // Everything found from the configuration: backend, stub_status, log.
    let mut exporter = start_exporter(&conf, nginx.pid(), "200ms", Stdio::piped());
    let child = &mut exporter.watch.0;
    let stdout = lines_of(child.stdout.take().unwrap());
    let metrics_addr = exporter.addr.clone();
    let watching = next_line(&exporter.stderr, "sources");
    assert!(
        watching.contains(&format!("stub_status http://127.0.0.1:{port}/status"))
            && watching.contains(&backend.to_string())
            && watching.contains(&error_log.display().to_string()),
        "{watching}"
    );

    // The baseline is taken before "watching" is printed.
    let statuses = get_statuses(port, "/", 30);
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    // Lines printed meanwhile, then two more: the second is of an interval
    // wholly after the traffic (the page is updated before each line).
    let mut all: Vec<String> = stdout.try_iter().collect();
    for _ in 0..2 {
        all.push(next_line(&stdout, "an interval"));
    }
    let page = scrape(&metrics_addr);

    // Ctrl-C: a clean exit.
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = wait_with_timeout(child, Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "{status:?}");
    while let Ok(l) = stdout.recv_timeout(Duration::from_millis(200)) {
        all.push(l);
    }
    let last = all.last().unwrap().clone();

    // Every line is one object that the published JSON Schema accepts.
    let schema: serde_json::Value =
        serde_json::from_str(upkeep_host::watch::json::JSON_SCHEMA).unwrap();
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .build(&schema)
        .unwrap();
    for line in &all {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&v)
            .map(|e| format!("{e} at {}", e.instance_path))
            .collect();
        assert!(errors.is_empty(), "{line}\n{}", errors.join("\n"));
    }

    let j: serde_json::Value = serde_json::from_str(&last).unwrap();
    assert_eq!(j["schema"], 1);
    assert_eq!(j["totals"]["client_requests"], 30, "{j}");
    assert_eq!(j["totals"]["client_accepts"], 30, "{j}");
    assert_eq!(j["totals"]["requests_per_connection"], 1.0, "{j}");
    let seen = j["totals"]["new_connections"][backend.to_string()]
        .as_u64()
        .unwrap();
    assert!(
        (27..=30).contains(&seen),
        "one upstream connection per request: {j}"
    );
    assert_eq!(j["backends"][0]["address"], backend.to_string());
    assert_eq!(j["backends"][0]["upstreams"][0], "app");
    assert_eq!(j["census"]["error"], serde_json::Value::Null);
    assert!(j["clients"]["active"].as_u64().unwrap() >= 1, "{j}");

    // The endpoint, scraped before the last interval, already had it all.
    assert_eq!(metric(&page, "upkeep_client_requests_total"), 30.0);
    assert_eq!(
        metric(
            &page,
            &format!("upkeep_upstream_connections_opened_total{{backend=\"{backend}\",upstream=\"app\"}}")
        ),
        seen as f64
    );
    assert!(page.contains("# TYPE upkeep_client_requests_total counter\n"));
    assert!(page.contains("# TYPE upkeep_upstream_sockets gauge\n"));
    assert_eq!(
        metric(
            &page,
            "upkeep_error_signatures_total{signature=\"connect-refused\"}"
        ),
        0.0
    );

    // Piped human output: one line per interval.
    let out = upkeep()
        .args(["watch", "--quiet", "--count", "2", "--interval", "100ms"])
        .args(["--status-url", &format!("http://127.0.0.1:{port}/status")])
        .args(["--backend-address", &backend.to_string()])
        .args(["--error-log"])
        .arg(&error_log)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    for l in lines {
        assert!(
            l.contains(" req/s=0.0 conn/s=0.0 ") && l.contains(&format!("[{backend} new/s=0.0")),
            "{l}"
        );
        assert!(!l.contains('\x1b'), "no escape codes in a pipe: {l:?}");
    }
    assert!(
        out.stderr.is_empty(),
        "--quiet: {:?}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bad_input_exits_2_with_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("nginx.conf");
    std::fs::write(&broken, "http {\n    server {\n        listen 80\n    }\n").unwrap();
    let cases: [(&[&str], &str); 6] = [
        (
            &["--interval", "0s", "--status-url", "http://127.0.0.1:1/s"],
            "--interval",
        ),
        (&["--interval", "fast"], "--interval"),
        (
            &[
                "--listen",
                "nonsense",
                "--status-url",
                "http://127.0.0.1:1/s",
            ],
            "--listen",
        ),
        (&["--status-url", "ftp://x/s"], "--status-url"),
        (&["--backend-address", "no-port"], "--backend-address"),
        (&["--count", "0"], "--count"),
    ];
    for (args, needle) in cases {
        let out = upkeep().arg("watch").args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let out = upkeep()
        .args(["watch", "--config"])
        .arg(&broken)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("nginx.conf:4:"),
        "the place of the error: {err}"
    );

    let out = upkeep()
        .args(["watch", "--config"])
        .arg(dir.path().join("missing.conf"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("missing.conf"), "{err}");
}

#[test]
fn idle_and_dripping_clients_do_not_keep_a_scrape_out() {
    let Some(bin) = NginxBinary::find(None) else {
        eprintln!("SKIPPED: no nginx binary found (install Debian's nginx)");
        return;
    };
    let prefix = Prefix::new().unwrap();
    let port = free_port().unwrap();
    let conf = prefix
        .write(
            "nginx.conf",
            &format!(
                "worker_processes 1;\nevents {{ worker_connections 64; }}\nhttp {{\n    {}    access_log off;\n    server {{ listen 127.0.0.1:{port}; location = /status {{ stub_status; }} }}\n}}\n",
                prefix.http_temp_paths()
            ),
        )
        .unwrap();
    let _nginx = NginxInstance::start(&bin, &prefix, &conf).unwrap();
    let mut child = upkeep()
        .args(["watch", "--format", "json", "--interval", "200ms"])
        .args(["--status-url", &format!("http://127.0.0.1:{port}/status")])
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (metrics_addr, _stderr) = serving_metrics(&mut child);

    // 30 clients connect and say nothing; 20 send a byte every 100 ms and
    // never finish their request head (for at most 20 s).
    let idle: Vec<TcpStream> = (0..30)
        .map(|_| TcpStream::connect(&metrics_addr).unwrap())
        .collect();
    let mut dripping: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(&metrics_addr).unwrap())
        .collect();
    let (stop, stopped) = mpsc::channel::<()>();
    let drip = std::thread::spawn(move || {
        for _ in 0..200 {
            for s in &mut dripping {
                let _ = s.write_all(b"G");
            }
            if stopped.recv_timeout(Duration::from_millis(100)).is_ok() {
                return;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(500));

    // The scrape is answered, well within Prometheus' 10 s scrape timeout.
    let started = Instant::now();
    let page = scrape(&metrics_addr);
    let took = started.elapsed();
    assert!(page.contains("upkeep_client_requests_total "), "{page}");
    assert!(took < Duration::from_secs(10), "scrape took {took:?}");

    let _ = stop.send(());
    drip.join().unwrap();
    drop(idle);
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = wait_with_timeout(&mut child, Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "{status:?}");
}

/// An error log that is a FIFO when the watch starts, or that appears later
/// as a FIFO, a directory or a link to /dev/zero, is refused with a note:
/// opening a FIFO would wait for a writer and /dev/zero never ends, and
/// either would stop every interval after it. The JSON's `logs` says it is
/// present but not read, and why.
#[test]
fn error_logs_that_are_or_become_a_fifo_or_a_device_are_refused_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("nginx.conf");
    std::fs::write(
        &conf,
        "events {}\nhttp { server { listen 127.0.0.1:9; } }\n",
    )
    .unwrap();
    let mkfifo = |p: &std::path::Path| {
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "{p:?}");
    };
    let fifo_at_start = dir.path().join("fifo-now.log");
    mkfifo(&fifo_at_start);
    let fifo_later = dir.path().join("fifo-later.log");
    let zero_later = dir.path().join("zero-later.log");
    let dir_later = dir.path().join("dir-later.log");

    let mut watch = common::KillOnDrop(
        upkeep()
            .args(["watch", "--config"])
            .arg(&conf)
            .arg("--error-log")
            .arg(&fifo_at_start)
            .arg("--error-log")
            .arg(&fifo_later)
            .arg("--error-log")
            .arg(&zero_later)
            .arg("--error-log")
            .arg(&dir_later)
            .args(["--interval", "300ms", "--count", "6", "--format", "json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let out = lines_of(watch.0.stdout.take().unwrap());
    let err = lines_of(watch.0.stderr.take().unwrap());
    // Problems found when the watch starts are notes on stderr.
    let expected = format!(
        "note: error log {}: is a FIFO (named pipe), not a log file",
        fifo_at_start.display()
    );
    let mut start_notes = Vec::new();
    while let Ok(l) = err.recv_timeout(Duration::from_secs(10)) {
        let found = l == expected;
        start_notes.push(l);
        if found {
            break;
        }
    }
    assert!(start_notes.contains(&expected), "{start_notes:?}");
    next_line(&out, "a first interval");
    mkfifo(&fifo_later);
    std::os::unix::fs::symlink("/dev/zero", &zero_later).unwrap();
    std::fs::create_dir(&dir_later).unwrap();

    let status = wait_with_timeout(&mut watch.0, Duration::from_secs(60));
    assert!(status.success(), "{status:?}");
    let rest: Vec<serde_json::Value> = out
        .try_iter()
        .map(|l| serde_json::from_str(&l).unwrap())
        .collect();
    assert_eq!(rest.len(), 5, "every interval printed: {rest:?}");
    let last = rest.last().unwrap();
    let notes = last["notes"].to_string();
    for expected in [
        format!(
            "error log {}: is a FIFO (named pipe), not a log file",
            fifo_later.display()
        ),
        format!(
            "error log {}: is a character device, not a log file",
            zero_later.display()
        ),
        format!(
            "error log {}: is a directory, not a log file",
            dir_later.display()
        ),
    ] {
        assert!(notes.contains(&expected), "{expected}: {notes}");
    }
    // Present, not read, and why.
    let logs = last["logs"].as_array().unwrap();
    for (path, why) in [
        (&fifo_later, "is a FIFO (named pipe), not a log file"),
        (&zero_later, "is a character device, not a log file"),
        (&dir_later, "is a directory, not a log file"),
    ] {
        let path = path.display().to_string();
        let l = logs
            .iter()
            .find(|l| l["path"] == path.as_str())
            .unwrap_or_else(|| panic!("{path}: {logs:?}"));
        assert_eq!(
            l,
            &serde_json::json!({"kind": "error", "path": path, "present": true,
                                "readable": false, "refused": why}),
        );
    }
}

/// The resident memory of a process, in KiB (`VmRSS`).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS: {status}"))
}

/// Pods that come and go: an error log naming 80,000 distinct peers, in
/// four batches, and one busy peer in each. At most `--max-peers` peers are
/// counted (as `upkeep logs` counts addresses): the busy one stays exact,
/// the others' lines are under "(other addresses)", every line is counted
/// somewhere, the JSON says the limit was reached, and the watch's memory
/// does not grow with the peers after the first batch.
#[test]
fn peers_past_max_peers_are_pooled_and_memory_stays_flat() {
    const BATCHES: u32 = 4;
    const PER_BATCH: u32 = 20_000;
    const BUSY_PER_BATCH: u32 = 200;
    const LIMIT: usize = 500;
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("nginx.conf");
    std::fs::write(
        &conf,
        "events {}\nhttp { server { listen 127.0.0.1:9; } }\n",
    )
    .unwrap();
    let log = dir.path().join("error.log");
    std::fs::write(&log, "").unwrap();
    let line = |peer: &str| {
        format!(
            "2026/11/23 14:26:24 [error] 30381#0: *14 recv() failed (104: Connection reset by peer) while reading response header from upstream, client: 127.0.0.1, server: , request: \"GET / HTTP/1.1\", upstream: \"http://{peer}/\", host: \"t\"\n"
        )
    };
    let mut watch = common::KillOnDrop(
        upkeep()
            .args(["watch", "--config"])
            .arg(&conf)
            .arg("--error-log")
            .arg(&log)
            .args(["--max-peers", &LIMIT.to_string()])
            .args(["--interval", "300ms", "--format", "json", "--quiet"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = watch.0.id();
    let out = lines_of(watch.0.stdout.take().unwrap());
    next_line(&out, "a first interval");

    let mut written = 0u64;
    let mut rss = Vec::new();
    let mut last = serde_json::Value::Null;
    for batch in 0..BATCHES {
        let mut text = String::new();
        for _ in 0..BUSY_PER_BATCH {
            text.push_str(&line("192.168.9.9:80"));
        }
        for n in 0..PER_BATCH {
            text.push_str(&line(&format!("10.{batch}.{}.{}:8080", n / 256, n % 256)));
        }
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(text.as_bytes()).unwrap();
        drop(f);
        written += u64::from(BUSY_PER_BATCH + PER_BATCH);
        // Until an interval has read the whole batch (bounded by next_line).
        loop {
            last = serde_json::from_str(&next_line(&out, "an interval")).unwrap();
            if last["totals"]["error_lines"] == written {
                break;
            }
        }
        // One more interval, so the batch's peak is behind.
        next_line(&out, "an interval");
        rss.push(rss_kib(pid));
    }
    eprintln!("watch VmRSS after each batch of {PER_BATCH} peers (KiB): {rss:?}");

    let totals = &last["totals"];
    let limits = &totals["peer_addresses"];
    assert_eq!(limits["limit"], LIMIT, "{limits}");
    assert_eq!(limits["limit_reached"], true, "{limits}");
    assert!(limits["access_log"].is_null(), "{limits}");
    let tracked = limits["error_log"]["tracked"].as_u64().unwrap();
    assert!(tracked <= LIMIT as u64, "{limits}");
    assert!(limits["error_log"]["evictions"].as_u64().unwrap() > 0);
    let peers = totals["peers"].as_object().unwrap();
    assert!(peers.len() <= LIMIT + 1, "{} peers", peers.len());
    let busy = &peers["192.168.9.9:80"];
    assert_eq!(
        busy["signatures"]["upstream-reset"],
        BATCHES * BUSY_PER_BATCH,
        "{busy}"
    );
    assert!(peers.contains_key("(other addresses)"), "no pooled peer");
    let all: u64 = peers
        .values()
        .map(|p| p["signatures"]["upstream-reset"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(all, written, "every line is counted under some peer");
    // Flat: the last three batches (60,000 new peers) add at most a few MiB
    // to what the first left (allocator slack; no per-peer growth).
    let grown = rss.last().unwrap().saturating_sub(rss[0]);
    assert!(grown < 8 * 1024, "VmRSS grew {grown} KiB: {rss:?}");
}
