//! `upkeep doctor` end to end: the binary against a real nginx that opens a
//! connection per request to a small backend. Skipped (loudly) without an
//! nginx binary.

mod common;

use common::{answer_ok_until_closed, wait_for, wait_until};
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

/// An nginx started by hand with a prefix and a configuration file relative
/// to it (`nginx -p DIR -c site.conf`), as an operator runs a second
/// instance; stopped through its pid file on drop.
struct PrefixedNginx {
    pid: i32,
}

impl PrefixedNginx {
    fn start(bin: &NginxBinary, prefix: &Prefix) -> PrefixedNginx {
        let out = Command::new(&bin.path)
            .arg("-p")
            .arg(prefix.path())
            .args(["-c", "site.conf", "-e"])
            .arg(prefix.error_log())
            .args(["-g", "pid nginx.pid;"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pid_file = prefix.pid_file();
        // nginx writes its pid file before it names itself the master: wait
        // for both.
        let pid = wait_until(Duration::from_secs(5), Duration::from_millis(10), || {
            let pid = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|t| t.trim().parse::<i32>().ok())?;
            let title = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            title.starts_with(b"nginx: master process").then_some(pid)
        })
        .unwrap_or_else(|| panic!("nginx wrote no pid file at {}", pid_file.display()));
        PrefixedNginx { pid }
    }

    fn worker(&self) -> i32 {
        let children =
            std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", self.pid)).unwrap();
        children.split_whitespace().next().unwrap().parse().unwrap()
    }
}

impl Drop for PrefixedNginx {
    fn drop(&mut self) {
        // SAFETY: plain syscalls on the pid nginx wrote into our prefix.
        unsafe { libc::kill(self.pid, libc::SIGTERM) };
        let gone = wait_for(Duration::from_secs(5), Duration::from_millis(10), || {
            !upkeep_nginx::process_is_running(self.pid)
        });
        if !gone {
            unsafe { libc::kill(-self.pid, libc::SIGKILL) };
        }
    }
}

#[test]
fn pid_reads_the_configuration_the_master_was_started_with() {
    let Some(bin) = NginxBinary::find(None) else {
        eprintln!("SKIPPED: no nginx binary found (install Debian's nginx)");
        return;
    };
    let prefix = Prefix::new().unwrap();
    let port = free_port().unwrap();
    // A backend address nothing listens on: the census only needs it named.
    let backend = format!("127.0.0.1:{}", free_port().unwrap());
    prefix
        .write(
            "site.conf",
            &format!(
                "worker_processes 1;\nevents {{ worker_connections 64; }}\nhttp {{\n    {}    access_log off;\n    upstream private_app {{ server {backend}; keepalive 4; }}\n    server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://private_app; proxy_http_version 1.1; proxy_set_header Connection \"\"; }} location = /private_status {{ stub_status; }} }}\n}}\n",
                prefix.http_temp_paths()
            ),
        )
        .unwrap();
    let nginx = PrefixedNginx::start(&bin, &prefix);

    let out = upkeep()
        .args(["doctor", "--format", "json", "--sample", "100ms", "--pid"])
        .arg(nginx.pid.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{stdout}\n{stderr}"
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["host"]["processes"]["master"], nginx.pid, "{stdout}");
    assert_eq!(
        v["host"]["stub_status"]["url"],
        format!("http://127.0.0.1:{port}/private_status"),
        "{stdout}"
    );
    let backends = v["host"]["backends"].as_array().unwrap();
    assert_eq!(backends.len(), 1, "{stdout}");
    assert_eq!(backends[0]["address"], backend);
    // The error log of the private prefix, not /var/log/nginx.
    let error_log = prefix.error_log().display().to_string();
    assert!(stdout.contains(&error_log), "{stdout}");

    // A worker is not the master: refused, naming the master.
    let worker = nginx.worker();
    let out = upkeep()
        .args(["doctor", "--sample", "100ms", "--pid"])
        .arg(worker.to_string())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "--pid {worker}: process {worker} is an nginx worker process, not an nginx master process; its master is {}",
            nginx.pid
        )),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn pid_of_a_process_that_is_not_nginx_is_refused() {
    let me = std::process::id();
    let out = upkeep()
        .args([
            "doctor",
            "--config",
            "/dev/null",
            "--sample",
            "100ms",
            "--pid",
        ])
        .arg(me.to_string())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("--pid {me}: process {me} is `"))
            && stderr.contains("not an nginx master process"),
        "{stderr}"
    );
    let out = upkeep()
        .args(["doctor", "--config", "/dev/null", "--pid", "2147483647"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--pid 2147483647: no process 2147483647 is running"),
        "{stderr}"
    );
}

#[test]
fn a_status_page_that_never_answers_is_reported_as_timed_out() {
    let Some(bin) = NginxBinary::find(None) else {
        eprintln!("SKIPPED: no nginx binary found (install Debian's nginx)");
        return;
    };
    // Accepts and never answers: nginx waits on it for the status page.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let prefix = Prefix::new().unwrap();
    let port = free_port().unwrap();
    let conf = prefix
        .write(
            "nginx.conf",
            &format!(
                "worker_processes 1;\nevents {{ worker_connections 64; }}\nhttp {{\n    {}    access_log off;\n    server {{ listen 127.0.0.1:{port}; location = /status {{ proxy_pass http://{silent_addr}; proxy_read_timeout 60s; }} }}\n}}\n",
                prefix.http_temp_paths()
            ),
        )
        .unwrap();
    let nginx = NginxInstance::start(&bin, &prefix, &conf).unwrap();
    let url = format!("http://127.0.0.1:{port}/status");
    let out = upkeep()
        .args([
            "doctor", "--format", "json", "--sample", "100ms", "--config",
        ])
        .arg(&conf)
        .args(["--pid", &nginx.pid().to_string(), "--status-url", &url])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "stub_status: {url}: timed out after 3 s waiting for the answer"
        )),
        "{stdout}"
    );
    assert!(!stdout.contains("os error 11"), "{stdout}");
    drop(silent);
}

/// `doctor --probe` measures a backend it cannot read on the host: here
/// one with a 1 s idle timeout, served by this test process (not a server
/// upkeep recognises), found through the configuration's upstream.
#[test]
fn probe_measures_the_idle_timeout_of_an_unrecognised_backend() {
    let backend = common::idle_closing_backend(Duration::from_secs(1), 64);
    let dir = tempfile::tempdir().unwrap();
    let conf = common::write_pooled_proxy_config(dir.path(), backend);
    let out = upkeep()
        .args(["doctor", "--format", "json", "--sample", "200ms"])
        .args([
            "--nginx-version",
            "1.22.1",
            "--probe",
            "--probe-max-wait",
            "10s",
        ])
        .arg("--config")
        .arg(&conf)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    let backends = report["host"]["discovered_backends"]
        .as_array()
        .unwrap_or_else(|| panic!("no discovered_backends: {report:#}"));
    let ours = backends
        .iter()
        .find(|b| b["address"] == backend.to_string())
        .unwrap_or_else(|| panic!("{backend} not among {backends:#?}"));
    let idle = ours["probed"]["idle_timeout_ms"]
        .as_u64()
        .unwrap_or_else(|| panic!("not probed: {ours:#}\n{stderr}"));
    assert!(
        (900..=2500).contains(&idle),
        "measured {idle} ms for a 1 s idle timeout: {ours:#}"
    );
    assert!(stderr.contains("probing the backends"), "{stderr}");
    assert_eq!(
        ours["used_by_rules"], true,
        "the measured value feeds the rules: {ours:#}"
    );
}
