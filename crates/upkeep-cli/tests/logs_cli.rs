//! `upkeep logs` end to end: files, stdin, gzip, JSON, exit codes, the
//! access-log format read from a config, and `--follow` across a rotation.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn upkeep() -> Command {
    Command::new(env!("CARGO_BIN_EXE_upkeep"))
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../upkeep-logs/tests/fixtures")
        .join(name)
}

const DIAG: &str = r#"$remote_addr "$request" $status ua="$upstream_addr" us="$upstream_status" uct="$upstream_connect_time" uht="$upstream_header_time" urt="$upstream_response_time" rt=$request_time cr=$connection_requests c=$connection"#;

fn json_of(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn signature<'a>(doc: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    doc["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {doc}"))
}

#[test]
fn json_report_with_access_join_from_config() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "events {{}}\nhttp {{\n    log_format main '$remote_addr';\n    log_format diag '{DIAG}';\n    access_log /var/log/x.log diag;\n}}\n"
        ),
    )
    .unwrap();
    let out = upkeep()
        .args(["logs", "--format", "json"])
        .arg(fixture("t1_error.log"))
        .arg("--access-log")
        .arg(fixture("t1_access.log"))
        .arg("--config")
        .arg(&conf)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "signatures found: exit 1");
    let doc = json_of(&out);
    assert_eq!(doc["schema"], 1);
    assert_eq!(doc["lines"], 53);
    assert_eq!(doc["unparsed"], 0);
    let closed = signature(&doc, "upstream-prematurely-closed");
    assert_eq!(closed["count"], 5);
    assert_eq!(closed["by_upstream"]["127.0.0.1:9101"], 3);
    // /fin/b was retried away ("502, 200"); /fin/c (POST), /off/b
    // (proxy_next_upstream off) and /multi/3 (twice) reached the client.
    assert_eq!(closed["client_visible"], 4);
    assert_eq!(closed["retried"], 1);
    assert_eq!(closed["client_visible_by_method"]["POST"], 1);
    assert_eq!(closed["rules"], serde_json::json!(["U007", "U008", "H005"]));
    let reset = signature(&doc, "upstream-reset");
    assert_eq!(
        (reset["client_visible"].as_u64(), reset["retried"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(signature(&doc, "no-live-upstreams")["client_visible"], 4);
    assert_eq!(doc["access"]["records"], 27);
    assert_eq!(doc["access"]["requests_per_connection"]["connections"], 27);
    let per_minute = doc["per_minute"].as_array().unwrap();
    let total: u64 = per_minute
        .iter()
        .map(|r| r["count"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 13);
    assert!(per_minute.iter().any(|r| r["minute"] == "2026-11-23T14:26"
        && r["signature"] == "no-live-upstreams"
        && r["upstream"] == "multi_fin"
        && r["count"] == 4));

    // Without an access log the client-visible counts are unknown (null).
    let out = upkeep()
        .args(["logs", "--format", "json"])
        .arg(fixture("t1_error.log"))
        .output()
        .unwrap();
    let doc = json_of(&out);
    assert!(signature(&doc, "upstream-reset")["client_visible"].is_null());
}

#[test]
fn stdin_gzip_globs_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read(fixture("t5_error.log")).unwrap();
    let enc = gzip(&text);
    let gz = dir.path().join("error.log.1.gz");
    std::fs::write(&gz, &enc).unwrap();
    std::fs::copy(fixture("t2_error.log"), dir.path().join("error.log")).unwrap();

    // A glob over a plain file and a gzip file.
    let pattern = format!("{}/error.log*", dir.path().display());
    let out = upkeep()
        .args(["logs", &pattern, "--format", "json"])
        .output()
        .unwrap();
    let doc = json_of(&out);
    assert_eq!(doc["inputs"].as_array().unwrap().len(), 2);
    assert_eq!(signature(&doc, "worker-connections-not-enough")["count"], 8);
    assert_eq!(signature(&doc, "upstream-prematurely-closed")["count"], 10);

    // Standard input.
    let mut child = upkeep()
        .args(["logs", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&text).unwrap();
    let out = child.wait_with_output().unwrap();
    let human = String::from_utf8_lossy(&out.stdout);
    assert!(human.contains("worker-connections-not-enough"), "{human}");
    assert!(human.contains("failures over time"), "{human}");
    assert_eq!(out.status.code(), Some(1));

    // Noise only: exit 0.
    let quiet = dir.path().join("quiet.log");
    std::fs::write(
        &quiet,
        "2026/11/23 14:26:24 [info] 1#0: *1 client 127.0.0.1 closed keepalive connection\n",
    )
    .unwrap();
    let out = upkeep().arg("logs").arg(&quiet).output().unwrap();
    assert_eq!(out.status.code(), Some(0));

    // A missing file and a truncated gzip: exit 2 with the place, the rest
    // still reported.
    let out = upkeep()
        .arg("logs")
        .arg(dir.path().join("nope.log"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.log"));
    let cut = dir.path().join("cut.gz");
    std::fs::write(&cut, &enc[..enc.len() - 20]).unwrap();
    let out = upkeep()
        .arg("logs")
        .arg(&cut)
        .arg(fixture("t2_error.log"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cut.gz: gzip data is truncated"), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("upstream-prematurely-closed"));

    // Bad flags are usage errors.
    let out = upkeep()
        .args(["logs", "--since", "yesterday-ish"])
        .arg(&quiet)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--since"));
}

/// Compresses with the system's `gzip`, independent of the library's
/// decoder.
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip");
    let mut stdin = child.stdin.take().unwrap();
    let data = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out.stdout
}

#[test]
fn follow_survives_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("error.log");
    std::fs::write(&log, "2026/11/23 14:00:00 [error] 1#0: *1 no live upstreams while connecting to upstream, client: 1.1.1.1, server: a, request: \"GET /old HTTP/1.1\", upstream: \"http://app/old\", host: \"a\"\n").unwrap();
    let mut child = upkeep()
        .args(["logs", "--follow", "--format", "json"])
        .arg(&log)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let next = |what: &str| -> serde_json::Value {
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("no output for {what}"));
        serde_json::from_str(&line).unwrap()
    };
    let line = |n: u32| {
        format!("2026/11/23 14:00:0{n} [error] 1#0: *{n} upstream prematurely closed connection while reading response header from upstream, client: 1.1.1.1, server: a, request: \"GET /{n} HTTP/1.1\", upstream: \"http://10.0.0.1:80/{n}\", host: \"a\"\n")
    };
    let append = |text: &str| {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&log)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    };
    // The existing line is not reported; appended ones are.
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(500));
    append(&line(1));
    let e = next("the first appended line");
    assert_eq!(e["signature"], "upstream-prematurely-closed");
    assert_eq!(e["connection"], 1);
    assert_eq!(e["upstream"], "10.0.0.1:80");

    std::fs::rename(&log, dir.path().join("error.log.1")).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    append(&line(2));
    let e = next("a line in the new file after rotation");
    assert_eq!(e["connection"], 2);

    // Ctrl-C: the summary comes last.
    // SAFETY: signalling the child this test spawned, by its pid.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let summary = next("the summary");
    assert_eq!(summary["schema"], 1);
    assert_eq!(
        signature(&summary, "upstream-prematurely-closed")["count"],
        2
    );
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "failures were seen: {status:?}");
    assert!(started.elapsed() < Duration::from_secs(20));
}

/// Follows `log`, appends one failure, interrupts, and returns the exit
/// status and everything printed.
fn follow_one_failure(format: &str) -> (std::process::ExitStatus, String) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("error.log");
    std::fs::write(&log, "").unwrap();
    let mut child = upkeep()
        .args(["logs", "--follow", "--format", format])
        .arg(&log)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(&log, "2026/11/23 14:00:01 [error] 1#0: *1 upstream prematurely closed connection while reading response header from upstream, client: 1.1.1.1, server: a, request: \"GET /1 HTTP/1.1\", upstream: \"http://10.0.0.1:80/1\", host: \"a\"\n").unwrap();
    let mut printed = vec![rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the failure is printed")];
    // SAFETY: signalling the child this test spawned, by its pid.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let status = child.wait().unwrap();
    printed.extend(rx.try_iter());
    (status, printed.join("\n"))
}

#[test]
fn follow_exit_code_is_the_same_for_json_and_human() {
    for format in ["human", "json"] {
        let (status, printed) = follow_one_failure(format);
        assert!(printed.contains("upstream-prematurely-closed"), "{printed}");
        assert_eq!(
            status.code(),
            Some(1),
            "--format {format}: a failure was seen, exit 1: {printed}"
        );
    }
}

#[test]
fn since_after_until_is_a_usage_error() {
    for (since, until) in [
        ("2026-11-23 15:00", "2026-11-23 14:00"),
        ("2026-11-23 14:00", "2026-11-23 14:00:00"),
    ] {
        let out = upkeep()
            .args(["logs", "--since", since, "--until", until])
            .arg(fixture("t1_error.log"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{since} / {until}: {stderr}");
        assert!(
            stderr.contains("--since") && stderr.contains("not before --until"),
            "{stderr}"
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn log_format_by_name_is_read_from_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("nginx.conf");
    std::fs::write(&conf, "events {}\nhttp {\n    include formats.conf;\n}\n").unwrap();
    std::fs::write(
        dir.path().join("formats.conf"),
        format!("log_format short '$remote_addr';\nlog_format main '{DIAG}';\n"),
    )
    .unwrap();
    let run = |extra: &[&str]| {
        upkeep()
            .args(["logs", "--format", "json"])
            .arg(fixture("t1_error.log"))
            .arg("--access-log")
            .arg(fixture("t1_access.log"))
            .args(extra)
            .output()
            .unwrap()
    };
    // `main` comes from the config's log_format directive.
    let conf_arg = conf.to_str().unwrap();
    let out = run(&["--log-format", "main", "--config", conf_arg]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = json_of(&out);
    assert_eq!(doc["access"]["records"], 27);
    assert_eq!(
        signature(&doc, "upstream-prematurely-closed")["client_visible"],
        4
    );

    // A name the config does not define is named in the error.
    let out = run(&["--log-format", "mian", "--config", conf_arg]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no log_format named \"mian\"") && stderr.contains("short, main"),
        "{stderr}"
    );

    // Without --config the name is looked up in the config nginx -V names,
    // or the error says there is none; never "has no variables".
    let out = run(&["--log-format", "upkeep_no_such_format"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("upkeep_no_such_format"), "{stderr}");
    assert!(!stderr.contains("no variables"), "{stderr}");

    // `combined` is built in and needs no config.
    let out = run(&["--log-format", "combined"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("log_format"));
}

fn reset_line(minute: u32, conn: u32, addr: &str) -> String {
    format!(
        "2026/11/23 {:02}:{:02}:00 [error] 1#0: *{conn} recv() failed (104: Connection reset by peer) while reading response header from upstream, client: 1.1.1.1, server: a, request: \"GET / HTTP/1.1\", upstream: \"http://{addr}/\", host: \"a\"\n",
        minute / 60 % 24,
        minute % 60
    )
}

/// Pod churn: 10,000 addresses that fail once, then one backend that
/// resets 100,000 times. It must be listed with its exact count, and the
/// report must say that the address limit was reached.
#[test]
fn a_heavy_backend_after_address_churn_is_listed_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("error.log");
    let mut text = String::new();
    for n in 0..10_000u32 {
        text.push_str(&reset_line(
            n / 500,
            n,
            &format!("10.{}.{}.{}:8080", n / 65536, n / 256 % 256, n % 256),
        ));
    }
    for n in 0..100_000u32 {
        text.push_str(&reset_line(20 + n / 5000, n, "192.168.9.9:80"));
    }
    // More churn after it cannot push it out either.
    for n in 0..5_000u32 {
        text.push_str(&reset_line(
            40,
            n,
            &format!("10.200.{}.{}:8080", n / 256, n % 256),
        ));
    }
    std::fs::write(&log, text).unwrap();

    let out = upkeep()
        .args(["logs", "--format", "json"])
        .arg(&log)
        .output()
        .unwrap();
    let doc = json_of(&out);
    let top = &doc["top_upstreams"][0];
    assert_eq!(
        top["upstream"], "192.168.9.9:80",
        "{}",
        doc["top_upstreams"]
    );
    assert_eq!(top["count"], 100_000);
    // It took the slot of a one-off address (count 1): at most one earlier
    // failure of it could have been pooled.
    assert_eq!(top["count_error"], 1);
    let by = &signature(&doc, "upstream-reset")["by_upstream"];
    assert_eq!(by["192.168.9.9:80"], 100_000);
    let caps = &doc["upstream_addresses"];
    assert_eq!(caps["limit_reached"], true, "{caps}");
    assert_eq!(caps["limit"], 10_000);
    let tracked_total: u64 = by
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(tracked_total, 115_000, "every failure is counted somewhere");
    assert!(caps["listed_above"].as_u64().unwrap() < 100_000);
    // Per-minute rows add up to the same total, the backend's included.
    let rows = doc["per_minute"].as_array().unwrap();
    let backend: u64 = rows
        .iter()
        .filter(|r| r["upstream"] == "192.168.9.9:80")
        .map(|r| r["count"].as_u64().unwrap())
        .sum();
    assert_eq!(backend, 100_000);
    let all: u64 = rows.iter().map(|r| r["count"].as_u64().unwrap()).sum();
    assert_eq!(all, 115_000);

    // Split across threads, the same answer for the backend.
    let out = upkeep()
        .args(["logs", "--format", "json", "--threads", "3"])
        .arg(&log)
        .output()
        .unwrap();
    let par = json_of(&out);
    assert_eq!(par["top_upstreams"][0]["upstream"], "192.168.9.9:80");
    assert_eq!(par["top_upstreams"][0]["count"], 100_000);

    let out = upkeep().args(["logs"]).arg(&log).output().unwrap();
    let human = String::from_utf8_lossy(&out.stdout);
    assert!(
        human.contains("more than 10,000 distinct upstream addresses"),
        "{human}"
    );
    let first_top = human
        .lines()
        .skip_while(|l| !l.starts_with("top upstreams:"))
        .nth(1)
        .unwrap_or_default();
    assert!(
        first_top.contains("192.168.9.9:80") && first_top.contains("100,000"),
        "{first_top}"
    );
}

/// 12,000 minutes with three upstreams each: past --max-minute-rows the
/// minutes are merged into wider buckets, the report says so, and the
/// totals do not change.
#[test]
fn per_minute_rows_are_bounded_by_a_flag() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("error.log");
    let mut text = String::new();
    for minute in 0..12_000u32 {
        let day = minute / 1440;
        for up in 0..3 {
            let line = reset_line(minute % 1440, minute, &format!("10.0.0.{up}:80"));
            text.push_str(&line.replacen("2026/11/23", &format!("2026/11/{:02}", 1 + day), 1));
        }
    }
    std::fs::write(&log, text).unwrap();
    let out = upkeep()
        .args(["logs", "--format", "json", "--max-minute-rows", "10000"])
        .arg(&log)
        .output()
        .unwrap();
    let doc = json_of(&out);
    let rows = doc["per_minute"].as_array().unwrap();
    assert!(rows.len() <= 10_000, "{} rows", rows.len());
    let width = doc["per_minute_bucket_minutes"].as_u64().unwrap();
    assert!(width > 1, "{width}");
    let all: u64 = rows.iter().map(|r| r["count"].as_u64().unwrap()).sum();
    assert_eq!(all, 36_000);
    assert_eq!(signature(&doc, "upstream-reset")["count"], 36_000);

    let out = upkeep()
        .args(["logs", "--max-minute-rows", "10000"])
        .arg(&log)
        .output()
        .unwrap();
    let human = String::from_utf8_lossy(&out.stdout);
    assert!(
        human.contains(&format!("merged into {width}-minute buckets")),
        "{human}"
    );
    // Without the flag's pressure nothing is merged.
    let out = upkeep()
        .args(["logs", "--format", "json"])
        .arg(&log)
        .output()
        .unwrap();
    assert_eq!(json_of(&out)["per_minute_bucket_minutes"], 1);
}

/// The HTTP/2 upstream signatures, counted per upstream from lines in
/// nginx's format (crates/upkeep-facts/data/http2_upstream.tsv).
#[test]
fn http2_upstream_signatures() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("error.log");
    let ctx = r#", client: 127.0.0.1, server: , request: "GET /h2 HTTP/1.1", upstream: "http://127.0.0.1:8081/h2", host: "127.0.0.1:8080""#;
    let text = format!(
        "2026/12/05 13:10:02 [error] 4711#4711: *12 no connection data found for keepalive http2 connection while sending request to upstream{ctx}\n\
         2026/12/05 13:10:03 [error] 4711#4711: *15 upstream sent goaway with error 0 while reading response header from upstream{ctx}\n\
         2026/12/05 13:10:03 [error] 4711#4711: *16 upstream sent goaway with error 0 while reading response header from upstream{ctx}\n\
         2026/12/05 13:10:04 [info] 5120#5120: *3 client sent frame with unknown type 32 while processing HTTP/2 connection, client: 127.0.0.1, server: 127.0.0.1:8081\n\
         2026/12/05 13:10:04 [info] 5120#5120: *4 client sent frame with unknown type 16 while processing HTTP/2 connection, client: 127.0.0.1, server: 127.0.0.1:8081\n"
    );
    std::fs::write(&log, text).unwrap();
    let out = upkeep()
        .args(["logs", "--format", "json"])
        .arg(&log)
        .output()
        .unwrap();
    let doc = json_of(&out);
    assert_eq!(doc["lines"], 5, "{doc}");
    let mismatch = signature(&doc, "h2-cached-connection-mismatch");
    assert_eq!(mismatch["count"], 1, "{doc}");
    assert_eq!(mismatch["by_upstream"]["127.0.0.1:8081"], 1, "{doc}");
    let goaway = signature(&doc, "upstream-h2-goaway");
    assert_eq!(goaway["count"], 2, "{doc}");
    assert_eq!(
        signature(&doc, "h2-frame-unknown-type")["count"],
        1,
        "{doc}"
    );
}
