//! `upkeep probe` end to end: a real nginx as the backend, an nginx config
//! whose upstream points at it, human and JSON output, exit codes.

mod common;

use common::{wait_for, wait_until};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use upkeep_nginx::{free_port, NginxBinary, NginxInstance, Prefix};

fn upkeep(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(args)
        .output()
        .unwrap()
}

/// nginx as a backend that idles connections out after 2 s and closes them
/// (announced) after 3 requests.
fn backend() -> Option<(NginxInstance, Prefix, u16)> {
    let Some(bin) = NginxBinary::find(None) else {
        eprintln!("\n*** SKIPPED: no nginx binary (apt-get install nginx) ***\n");
        return None;
    };
    let prefix = Prefix::new().unwrap();
    let port = free_port().unwrap();
    let conf = format!(
        "events {{}}\nhttp {{\n    {}    access_log off;\n    server {{\n        listen 127.0.0.1:{port};\n        keepalive_timeout 2s;\n        keepalive_requests 3;\n        location / {{ return 200 \"ok\\n\"; }}\n    }}\n}}\n",
        prefix.http_temp_paths()
    );
    let conf = prefix.write("backend.conf", &conf).unwrap();
    let inst = NginxInstance::start(&bin, &prefix, &conf).unwrap();
    assert!(
        wait_for(Duration::from_secs(10), Duration::from_millis(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        }),
        "backend not listening"
    );
    Some((inst, prefix, port))
}

#[test]
fn judges_an_upstream_against_a_measured_backend() {
    let Some((_inst, _prefix, port)) = backend() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("conf.d")).unwrap();
    std::fs::write(
        dir.path().join("nginx.conf"),
        "events {}\nhttp {\n    include conf.d/*.conf;\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("conf.d/app.conf"),
        format!(
            "upstream app {{\n    server 127.0.0.1:{port};\n    keepalive 8;\n}}\nupstream other {{\n    server 127.0.0.1:1;\n}}\nserver {{\n    listen 80;\n    location / {{ proxy_pass http://app; }}\n    location /o {{ proxy_pass http://other; }}\n}}\n"
        ),
    )
    .unwrap();
    let conf = dir.path().join("nginx.conf");
    let conf = conf.to_str().unwrap();

    let out = upkeep(&[
        "probe",
        "--config",
        conf,
        "--only",
        "app",
        "--nginx-version",
        "1.22.1",
        "--format",
        "json",
        "--max-requests",
        "20",
        "--max-wait",
        "20s",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "U007 is an error: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["schema"], 1);
    assert_eq!(json["nginx_version"], "1.22.1");
    let targets = json["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 1, "--only app");
    let t = &targets[0];
    assert_eq!(t["target"], format!("127.0.0.1:{port}"));
    assert_eq!(t["upstream"], "app");
    assert_eq!(t["http_version"], "1.1");
    assert_eq!(t["keepalive"], true);
    assert_eq!(t["closes_after_response"], false);
    assert_eq!(t["max_requests"], 3);
    assert_eq!(t["announces_close"], true);
    assert_eq!(t["error"], serde_json::Value::Null);
    let idle = t["idle_timeout_ms"].as_u64().unwrap();
    assert!(idle.abs_diff(2000) <= 100, "idle {idle}");

    let verdict = &json["upstreams"][0];
    assert_eq!(verdict["upstream"], "app");
    assert_eq!(verdict["file"], "conf.d/app.conf");
    assert_eq!(verdict["line"], 1);
    assert_eq!(verdict["nginx_keepalive_timeout_ms"], 60_000);
    let rules: Vec<&str> = verdict["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["U007", "U008"]);
    let suggestion =
        upkeep_facts::format_duration(upkeep_probe::verdict::suggested_keepalive_timeout_ms(idle));
    assert_eq!(
        verdict["summary"],
        format!(
            "backend idles out after {}; nginx keeps idle connections 60 s → U007; set keepalive_timeout {suggestion}; backend closes after 3 requests and says so (U008, info)",
            upkeep_probe::render::seconds(idle)
        )
    );

    // The same JSON drives `check --backend-facts`: U007 is judged with the
    // measured idle timeout, not a guess, and `fix` sets a timeout below it.
    let facts = dir.path().join("facts.json");
    std::fs::write(&facts, stdout.as_bytes()).unwrap();
    let facts = facts.to_str().unwrap();
    let out = upkeep(&[
        "check",
        conf,
        "--nginx-version",
        "1.22.1",
        "--backend-facts",
        facts,
        "--select",
        "U007",
        "--format",
        "json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{report:#}");
    assert_eq!(findings[0]["rule"], "U007");
    assert_eq!(findings[0]["severity"], "error");
    assert_eq!(findings[0]["file"], "conf.d/app.conf");
    let message = findings[0]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("probed at 127.0.0.1:{port}")),
        "{message}"
    );
    let out = upkeep(&[
        "fix",
        conf,
        "--nginx-version",
        "1.22.1",
        "--backend-facts",
        facts,
        "--rule",
        "U007",
        "--color",
        "never",
    ]);
    let diff = String::from_utf8_lossy(&out.stdout);
    assert!(
        diff.contains(&format!("+    keepalive_timeout {suggestion};")),
        "expected the measured timeout minus the margin in the diff:\n{diff}"
    );
}

#[test]
fn human_output_and_exit_codes() {
    // An unreachable target: reported, exit 2.
    let port = free_port().unwrap();
    let out = upkeep(&["probe", &format!("127.0.0.1:{port}"), "--max-wait", "5s"]);
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("TARGET"), "{stdout}");
    assert!(stdout.contains("error: connect to 127.0.0.1"), "{stdout}");

    // Usage errors: one line with the cause, exit 2.
    for (args, expect) in [
        (vec!["probe"], "nothing to probe"),
        (vec!["probe", "ftp://x"], "unsupported scheme"),
        (
            vec!["probe", "h:1", "--max-wait", "soon"],
            "--max-wait soon",
        ),
        (
            vec!["probe", "--config", "/nonexistent/nginx.conf"],
            "/nonexistent/nginx.conf",
        ),
    ] {
        let out = upkeep(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
    }

    let Some((_inst, _prefix, port)) = backend() else {
        return;
    };
    let out = upkeep(&[
        "probe",
        &format!("http://127.0.0.1:{port}/"),
        "--max-requests",
        "10",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let row = stdout.lines().nth(1).unwrap();
    assert!(
        row.starts_with(&format!("http://127.0.0.1:{port}/ (127.0.0.1:{port})")),
        "{stdout}"
    );
    assert!(
        row.contains(" 1.1 ") && row.contains(" yes ") && row.contains("3 (announced)"),
        "{stdout}"
    );
}

/// What [`quick_backend`] hands the test.
struct QuickBackend {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The longest time, in ms, the backend waited for a request the probe
    /// then sent (after accepting the connection, or after a response).
    longest_wait_ms: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// The longest the backend waits for a request on a connection that is not
/// idling out; only a probe that never sends one meets it.
const REQUEST_WAIT: Duration = Duration::from_secs(30);
/// How long the backend keeps an idle keep-alive connection open.
const QUICK_IDLE: Duration = Duration::from_millis(200);

/// A backend for many targets: keep-alive responses, idle connections closed
/// after 200 ms, `Connection: close` on the second response of a connection.
///
/// The probe opens a target's idle-timeout connection first and its
/// request-cap connection only after the first response, so the backend
/// tells them apart by the request path: the first connection that asks
/// for a path is left idle and closed after 200 ms; a later one for the
/// same path carries the request cap. Waiting for a request is bounded by
/// [`REQUEST_WAIT`], not by the idle timeout: a backend that closed a
/// connection 200 ms after accepting it, or after its first response, would
/// race the probe's scheduling — on a loaded machine the probe can take
/// longer than that between connecting and sending, and the target would
/// fail ("closed without answering the first request") or measure a cap
/// of 1.
fn quick_backend() -> QuickBackend {
    use std::collections::HashSet;
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let longest_wait_ms = Arc::new(AtomicU64::new(0));
    let paths_seen: Arc<Mutex<HashSet<Vec<u8>>>> = Arc::default();
    let (stop2, longest2) = (stop.clone(), longest_wait_ms.clone());
    std::thread::spawn(move || {
        while !stop2.load(Ordering::SeqCst) {
            let Ok((mut s, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            };
            let (paths_seen, longest) = (paths_seen.clone(), longest2.clone());
            std::thread::spawn(move || {
                s.set_nonblocking(false).unwrap();
                let mut pending = Vec::new();
                let waited_for = |since: Instant, head: Option<Vec<u8>>| {
                    if head.is_some() {
                        longest.fetch_max(since.elapsed().as_millis() as u64, Ordering::SeqCst);
                    }
                    head
                };
                let since = Instant::now();
                let Some(head) =
                    waited_for(since, next_request(&mut s, &mut pending, REQUEST_WAIT))
                else {
                    return;
                };
                let path = head
                    .split(|&b| b == b' ')
                    .nth(1)
                    .unwrap_or_default()
                    .to_vec();
                let idle_connection = paths_seen.lock().unwrap().insert(path);
                let keep_alive = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                if s.write_all(keep_alive).is_err() {
                    return;
                }
                if idle_connection {
                    // Closed after 200 ms of silence (or at once if a request
                    // comes, which the probe does not send on this one).
                    let _ = next_request(&mut s, &mut pending, QUICK_IDLE);
                    return;
                }
                let since = Instant::now();
                if waited_for(since, next_request(&mut s, &mut pending, REQUEST_WAIT)).is_some() {
                    let _ = s.write_all(
                        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
                    );
                }
            });
        }
    });
    QuickBackend {
        port,
        stop,
        longest_wait_ms,
    }
}

/// The head of the next request on `s` (bytes read past it stay in
/// `pending`); `None` when the peer closes or nothing completes within `wait`.
fn next_request(
    s: &mut std::net::TcpStream,
    pending: &mut Vec<u8>,
    wait: Duration,
) -> Option<Vec<u8>> {
    use std::io::Read;
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(pending.drain(..end + 4).collect());
        }
        let left = deadline.checked_duration_since(Instant::now())?;
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .ok()?;
        match s.read(&mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Ok(0) | Err(_) => return None,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
        }
    }
}

/// 2,000 targets under `ulimit -n 256`: every target is probed (its idle
/// timeout and its request cap measured), none fails for lack of file
/// descriptors, the lowered parallelism is said, and memory stays small.
///
/// The max wait only bounds a target that hangs; it is generous because a
/// loaded machine may stall the probe for seconds, and a target cut short
/// by it would report no request cap.
#[test]
fn many_targets_fit_the_open_file_limit() {
    let backend = quick_backend();
    let port = backend.port;
    let targets: Vec<String> = (0..2000)
        .map(|i| format!("http://127.0.0.1:{port}/t{i}"))
        .collect();
    let mut child = Command::new("bash")
        .arg("-c")
        .arg("ulimit -n 256 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_upkeep"))
        .args(["probe", "--format", "json", "--idle-samples", "1"])
        .args([
            "--rate",
            "10000",
            "--max-wait",
            "60s",
            "--max-requests",
            "3",
        ])
        .args(&targets)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        std::io::Read::read_to_string(&mut { stdout }, &mut out).unwrap();
        out
    });
    // Peak resident memory (VmHWM) and open descriptors, sampled until exit.
    let (mut peak_kb, mut peak_fds) = (0u64, 0usize);
    let status = wait_until(Duration::from_secs(240), Duration::from_millis(50), || {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            if let Some(kb) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            {
                peak_kb = peak_kb.max(kb);
            }
        }
        if let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
            peak_fds = peak_fds.max(fds.count());
        }
        child.try_wait().unwrap()
    });
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("probe of 2000 targets still running after 240 s");
    };
    backend
        .stop
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let out = reader.join().unwrap();
    let longest_wait = backend
        .longest_wait_ms
        .load(std::sync::atomic::Ordering::SeqCst);
    eprintln!(
        "2000 targets, ulimit -n 256: peak RSS {peak_kb} kB, peak {peak_fds} fds; {status}; \
         longest wait of the backend for a request {longest_wait} ms"
    );
    assert!(
        stderr.contains("open-file limit"),
        "the lowered parallelism must be said: {stderr}"
    );
    let json: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| {
        panic!("{e}: {stderr}");
    });
    let reports = json["targets"].as_array().unwrap();
    assert_eq!(reports.len(), 2000);
    let failed: Vec<_> = reports.iter().filter(|r| !r["error"].is_null()).collect();
    assert!(
        failed.is_empty(),
        "{} targets failed, first: {}",
        failed.len(),
        failed[0]
    );
    // Every target measured in full: the cap (Connection: close on the
    // second response) and the idle close.
    let partial: Vec<_> = reports
        .iter()
        .filter(|r| r["max_requests"] != 2 || !r["idle_timeout_ms"].is_u64())
        .collect();
    assert!(
        partial.is_empty(),
        "{} targets not measured in full, first: {}",
        partial.len(),
        partial[0]
    );
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(peak_fds <= 256, "{peak_fds}");
    assert!(peak_kb < 200 * 1024, "peak RSS {peak_kb} kB");
}
