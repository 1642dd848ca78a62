//! `upkeep doctor` end to end: the binary against a real nginx that opens a
//! connection per request to a small backend. Skipped (loudly) without an
//! nginx binary.

mod common;

use common::answer_ok_until_closed;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

use upkeep_nginx::{free_port, NginxBinary, NginxInstance, Prefix};

fn upkeep() -> Command {
    Command::new(env!("CARGO_BIN_EXE_upkeep"))
}

/// Answers every request with a 2-byte body and waits for the client to
/// close, so nginx's end of each connection goes to TIME_WAIT.
fn backend() -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        for _ in 0..60 {
            let Ok((s, _)) = l.accept() else { return };
            answer_ok_until_closed(s);
        }
    });
    (addr, t)
}

#[test]
fn reports_time_wait_pileup_as_json_and_exits_1() {
    let Some(bin) = NginxBinary::find(None) else {
        eprintln!("SKIPPED: no nginx binary found (install Debian's nginx)");
        return;
    };
    let (backend, accepts) = backend();
    let prefix = Prefix::new().unwrap();
    let port = free_port().unwrap();
    let conf = prefix
        .write(
            "nginx.conf",
            &format!(
                "worker_processes 1;\nevents {{ worker_connections 128; }}\nhttp {{\n    {}    access_log off;\n    upstream app {{ server {backend}; }}\n    server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://app; }} location = /status {{ stub_status; }} }}\n}}\n",
                prefix.http_temp_paths()
            ),
        )
        .unwrap();
    let nginx = NginxInstance::start(&bin, &prefix, &conf).unwrap();
    // 60 requests on new connections: 60 TIME_WAIT sockets towards the
    // backend (at least 50 trips H001 with no established connection).
    for _ in 0..60 {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET / HTTP/1.0\r\nHost: t\r\n\r\n").unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    }
    accepts.join().unwrap();

    let out = upkeep()
        .args([
            "doctor", "--format", "json", "--sample", "300ms", "--config",
        ])
        .arg(&conf)
        .args(["--pid", &nginx.pid().to_string(), "--error-log"])
        .arg(prefix.error_log())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["schema"], 1);
    let b = &v["host"]["backends"][0];
    assert_eq!(b["address"], backend.to_string());
    // 60 unless the kernel already handed a TIME_WAIT port out again
    // (tcp_tw_reuse on loopback).
    let tw = b["time_wait"].as_u64().unwrap();
    assert!((50..=60).contains(&tw), "{b}");
    assert_eq!(
        v["host"]["stub_status"]["url"],
        format!("http://127.0.0.1:{port}/status")
    );
    assert_eq!(v["host"]["processes"]["master"], nginx.pid());
    // Measured findings first; H001 carries the count.
    assert_eq!(v["findings"][0]["rule"], "H001", "{stdout}");
    assert!(v["findings"][0]["message"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{tw} TIME_WAIT sockets towards upstream `app`")));
    assert_eq!(v["findings"][0]["line"], serde_json::Value::Null);
    assert!(v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["rule"] == "U001"));

    // Only the host rules, and none of them at error: --fail-on error exits 0.
    let out = upkeep()
        .args([
            "doctor",
            "--select",
            "H",
            "--fail-on",
            "error",
            "--sample",
            "100ms",
            "--config",
        ])
        .arg(&conf)
        .args(["--pid", &nginx.pid().to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("warning[H001]"), "{text}");
    assert!(!text.contains("[U001]"), "{text}");
}

#[test]
fn bad_input_exits_2_with_the_cause() {
    let run = |args: &[&str]| {
        let out = upkeep().arg("doctor").args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["--config", "/nonexistent/nginx.conf"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("/nonexistent/nginx.conf"), "{err}");
    let (code, err) = run(&["--config", "/dev/null", "--sample", "forever"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--sample"), "{err}");
    let (code, err) = run(&["--config", "/dev/null", "--status-url", "https://x/status"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("https is not supported"), "{err}");
    let (code, err) = run(&["--nginx", "/nonexistent/nginx"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--nginx /nonexistent/nginx"), "{err}");
    // A binary whose `-T` fails: the command is named once, with the exit
    // status when it printed nothing.
    let (code, err) = run(&["--nginx", "/bin/false"]);
    assert_eq!(code, Some(2));
    assert_eq!(err.matches("`/bin/false -T` failed").count(), 1, "{err}");
    assert!(err.contains("exit status: 1"), "{err}");
}

#[test]
fn explain_knows_the_host_rules() {
    for (id, name) in [
        ("H001", "time-wait-pileup"),
        ("H002", "ephemeral-ports-near-exhaustion"),
        ("H003", "reuse-ratio-low"),
        ("H004", "nofile-limit-low"),
        ("H005", "stale-connection-errors"),
    ] {
        let out = upkeep().args(["explain", id]).output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        let doc = String::from_utf8_lossy(&out.stdout);
        assert!(doc.starts_with(&format!("# {id} {name}")), "{doc}");
        for section in [
            "## What it finds",
            "## Why it breaks reuse",
            "## Example",
            "## Fix",
            "## References",
        ] {
            assert!(doc.contains(section), "{id}: missing {section}");
        }
    }
}
