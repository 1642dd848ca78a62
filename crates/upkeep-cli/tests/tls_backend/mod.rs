//! A real nginx serving HTTPS behind a real front nginx, for the fixtures
//! whose fixes are about upstream TLS (the lab's emulated backends speak
//! plain HTTP). Each phase starts both nginx afresh in private prefixes,
//! sends stale-idle traffic through the front, and reads what reached the
//! backend from its access log: `$connection` (new upstream connections)
//! and `$ssl_session_reused` (full or resumed TLS handshakes); handshakes
//! the backend refused are counted in the front's error log.
//!
//! Fixture convention: the front listens on `127.0.0.1:8080` and the TLS
//! backend is `localhost:8443` or `127.0.0.1:8443`; both ports are replaced
//! with free ones.

use crate::common::{free_port, text, Nginx};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The backend's idle timeout (nginx `keepalive_timeout`): Gunicorn's
/// default, the shortest common one, as in the lab runs.
const BACKEND_IDLE_MS: u64 = 2000;
/// Clients sending together, each burst just over the backend's idle
/// timeout after the previous one (the lab's stale-idle timing).
const CLIENTS: usize = 8;
const GAP_MIN_MS: u64 = BACKEND_IDLE_MS + 10;
const GAP_MAX_MS: u64 = BACKEND_IDLE_MS + 30;
/// Bounds of a phase: at most this many bursts, none started after
/// `PHASE`.
const BURSTS: usize = 3;
const PHASE: Duration = Duration::from_secs(5);
/// The longest a client waits for one response.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the TLS backend does with the server name a handshake carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Serves its certificate only to the name `localhost` and rejects
    /// any other handshake, with or without SNI (`ssl_reject_handshake
    /// on` in the default server), as name-based TLS hosting does.
    NameBased,
    /// Serves one certificate to every handshake, whatever the name.
    SingleCertificate,
}

impl Backend {
    pub fn describe(self) -> &'static str {
        match self {
            Backend::NameBased => "name-based TLS backend",
            Backend::SingleCertificate => "single-certificate TLS backend",
        }
    }
}

/// One phase, seen by the clients and by the backend.
#[derive(Debug, Default)]
pub struct Measured {
    pub requests: u64,
    /// Responses by status.
    pub statuses: BTreeMap<u16, u64>,
    pub ok: u64,
    pub server_errors: u64,
    /// Requests that got no HTTP response.
    pub client_errors: u64,
    pub p99_ms: f64,
    /// Upstream TLS connections that carried at least one request.
    pub connections: u64,
    pub full_handshakes: u64,
    pub resumed_handshakes: u64,
    /// Upstream handshakes that failed (front error log).
    pub failed_handshakes: u64,
}

/// A fixture run against a TLS backend, before and after `upkeep fix`.
pub struct TlsRun {
    pub before: Measured,
    pub after: Measured,
    /// Rules whose fixes `upkeep fix` applied.
    pub applied: Vec<String>,
}

/// The backends a fixture's TLS routes are run against: every fixture
/// against a single-certificate backend (a fix may not make things worse
/// where the name does not matter); fixtures that send to a host name also
/// against a name-based one (where the name does).
pub fn backends_for(conf: &str) -> Vec<Backend> {
    let mut out = vec![Backend::SingleCertificate];
    if conf.contains("localhost:8443") {
        out.push(Backend::NameBased);
    }
    out
}

/// Why TLS runs cannot happen here, if they cannot.
pub fn unavailable() -> Option<String> {
    if crate::common::installed("openssl", "openssl").is_none() {
        return Some("no openssl to make a test certificate".into());
    }
    None
}

/// A self-signed certificate for `localhost` (and 127.0.0.1) in `dir`.
fn certificate(dir: &Path) -> Result<(), String> {
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
        ])
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .output()
        .map_err(|e| format!("openssl: {e}"))?;
    if !out.status.success() {
        return Err(format!("openssl req: {}", text(&out.stderr)));
    }
    Ok(())
}

fn ipv6_loopback() -> bool {
    TcpListener::bind("[::1]:0").is_ok()
}

/// The backend's nginx.conf: HTTPS on `port`, idle connections closed
/// after `BACKEND_IDLE_MS`, an access log of the connection, its request
/// number and whether its TLS session was resumed.
fn backend_config(dir: &Path, port: u16, kind: Backend) -> String {
    let d = dir.display();
    // A front that resolves `localhost` to ::1 as well tries both.
    let listen = |extra: &str| {
        let mut l = format!("        listen 127.0.0.1:{port} ssl{extra};\n");
        if ipv6_loopback() {
            l += &format!("        listen [::1]:{port} ssl{extra};\n");
        }
        l
    };
    let servers = match kind {
        Backend::NameBased => format!(
            "    server {{\n{}        ssl_reject_handshake on;\n    }}\n    server {{\n{}        server_name localhost;\n        location / {{ return 200 \"ok\\n\"; }}\n    }}\n",
            listen(" default_server"),
            listen("")
        ),
        Backend::SingleCertificate => format!(
            "    server {{\n{}        location / {{ return 200 \"ok\\n\"; }}\n    }}\n",
            listen(" default_server")
        ),
    };
    format!(
        "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/logs/error.log;\nevents {{ worker_connections 256; }}\nhttp {{\n    log_format tls '$connection $connection_requests $ssl_session_reused $status';\n    access_log {d}/logs/access.log tls;\n    keepalive_timeout {BACKEND_IDLE_MS}ms;\n    ssl_certificate {d}/../cert.pem;\n    ssl_certificate_key {d}/../key.pem;\n{servers}}}\n"
    )
}

/// The fixture with its ports replaced, its pid file and logs in `front`.
fn front_config(
    fixture_text: &str,
    front: &Path,
    port: u16,
    backend: u16,
) -> Result<String, String> {
    if !fixture_text.contains("127.0.0.1:8080") || !fixture_text.contains(":8443") {
        return Err("a TLS fixture listens on 127.0.0.1:8080 and proxies to port 8443".into());
    }
    let d = front.display();
    let body = fixture_text
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
        .replace(":8443", &format!(":{backend}"))
        .replacen(
            "http {",
            &format!("http {{\n    access_log {d}/logs/access.log;"),
            1,
        );
    Ok(format!(
        "pid {d}/nginx.pid;\nerror_log {d}/logs/error.log;\n{body}"
    ))
}

/// `upkeep fix --write` on a copy of `conf`; the fixed text and the rules
/// whose fixes were applied.
fn fix(dir: &Path, conf: &str, unsafe_fixes: bool) -> Result<(String, Vec<String>), String> {
    let work = dir.join(if unsafe_fixes {
        "fix-unsafe"
    } else {
        "fix-safe"
    });
    std::fs::create_dir_all(&work).unwrap();
    let path = work.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_upkeep"));
    cmd.args([
        "fix",
        "--write",
        "--nginx-version",
        "1.22.1",
        "--color",
        "never",
    ])
    .arg(&path)
    .env("NO_COLOR", "1");
    if unsafe_fixes {
        cmd.arg("--unsafe-fixes");
    }
    let out = cmd.output().unwrap();
    let report = text(&out.stderr);
    if !out.status.success() {
        return Err(format!("upkeep fix --write failed: {report}"));
    }
    // "  U013 tls-upstream-without-sni: send SNI: …" for each fix applied.
    let applied = report
        .lines()
        .filter_map(|l| l.strip_prefix("  ")?.split_whitespace().next())
        .filter(|id| {
            id.len() == 4
                && id.as_bytes()[0].is_ascii_uppercase()
                && id[1..].bytes().all(|b| b.is_ascii_digit())
        })
        .map(String::from)
        .collect();
    Ok((std::fs::read_to_string(&path).unwrap(), applied))
}

/// `nginx -t` on `conf` in the front's prefix.
fn nginx_t(front: &Path, conf: &str) -> Result<(), String> {
    let path = front.join("nginx-t.conf");
    std::fs::write(&path, conf).unwrap();
    let out = Command::new("/usr/sbin/nginx")
        .arg("-t")
        .arg("-p")
        .arg(front)
        .arg("-c")
        .arg(&path)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(text(&out.stderr))
    }
}

/// A small deterministic generator for the jitter of the gaps.
struct Jitter(u64);

impl Jitter {
    fn gap(&mut self) -> Duration {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        Duration::from_millis(GAP_MIN_MS + (self.0 >> 33) % (GAP_MAX_MS - GAP_MIN_MS + 1))
    }
}

/// One request on a new client connection: the status (None when no HTTP
/// response came) and how long it took.
fn request(port: u16, post: bool, path: &str) -> (Option<u16>, Duration) {
    let t0 = Instant::now();
    let send = || -> Option<u16> {
        let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.set_read_timeout(Some(CLIENT_TIMEOUT)).ok()?;
        s.set_write_timeout(Some(CLIENT_TIMEOUT)).ok()?;
        let req = if post {
            format!("POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\nx=1")
        } else {
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        };
        s.write_all(req.as_bytes()).ok()?;
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        let head = String::from_utf8_lossy(&buf);
        head.strip_prefix("HTTP/1.")?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let status = send();
    (status, t0.elapsed())
}

/// `CLIENTS` clients started together, each sending a request (GET and
/// POST in turn) every `GAP_MIN_MS`–`GAP_MAX_MS` whatever the responses
/// do, at most `BURSTS` each and none started after `PHASE`.
fn traffic(port: u16) -> Vec<(Option<u16>, Duration)> {
    let start = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            std::thread::spawn(move || {
                let mut jitter = Jitter(c as u64 + 1);
                let mut due = start;
                let mut out = Vec::new();
                for k in 0..BURSTS {
                    if due.duration_since(start) > PHASE {
                        break;
                    }
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    out.push(request(port, (c + k) % 2 == 1, &format!("/r/{c}-{k}")));
                    due += jitter.gap();
                }
                out
            })
        })
        .collect();
    clients
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect()
}

fn p99_ms(latencies: &mut [Duration]) -> f64 {
    if latencies.is_empty() {
        return 0.0;
    }
    latencies.sort();
    let i = ((latencies.len() as f64) * 0.99).ceil() as usize - 1;
    latencies[i.min(latencies.len() - 1)].as_secs_f64() * 1000.0
}

/// Both nginx started on their configs, the traffic, then what each saw.
fn phase(
    dir: &Path,
    name: &str,
    kind: Backend,
    front_conf: &str,
    ports: (u16, u16),
) -> Result<Measured, String> {
    let (front_port, backend_port) = ports;
    let backend = dir.join("backend");
    let front = dir.join("front");
    // Each phase starts with empty logs.
    for prefix in [&backend, &front] {
        let _ = std::fs::remove_dir_all(prefix.join("logs"));
        std::fs::create_dir_all(prefix.join("logs")).unwrap();
    }
    std::fs::write(
        backend.join("nginx.conf"),
        backend_config(&backend, backend_port, kind),
    )
    .unwrap();
    std::fs::write(front.join("nginx.conf"), front_conf).unwrap();
    let results = {
        let _backend = Nginx::start(&backend);
        let _front = Nginx::start(&front);
        traffic(front_port)
        // Both stopped here, so their logs are complete.
    };
    let mut m = Measured {
        requests: results.len() as u64,
        ..Measured::default()
    };
    let mut latencies = Vec::new();
    for (status, took) in results {
        if let Some(s) = status {
            *m.statuses.entry(s).or_default() += 1;
        }
        match status {
            Some(s) if (200..300).contains(&s) => m.ok += 1,
            Some(s) if s >= 500 => m.server_errors += 1,
            Some(_) => {}
            None => m.client_errors += 1,
        }
        latencies.push(took);
    }
    m.p99_ms = p99_ms(&mut latencies);
    // "$connection $connection_requests $ssl_session_reused $status"
    let log = std::fs::read_to_string(backend.join("logs/access.log")).unwrap_or_default();
    let (mut full, mut resumed) = (BTreeSet::new(), BTreeSet::new());
    for line in log.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            [conn, _, "r", _] => resumed.insert(conn.to_string()),
            [conn, _, _, _] => full.insert(conn.to_string()),
            _ => return Err(format!("{name}: unexpected backend log line {line:?}")),
        };
    }
    m.full_handshakes = full.len() as u64;
    m.resumed_handshakes = resumed.len() as u64;
    m.connections = m.full_handshakes + m.resumed_handshakes;
    let errors = std::fs::read_to_string(front.join("logs/error.log")).unwrap_or_default();
    m.failed_handshakes = errors
        .lines()
        .filter(|l| l.contains("SSL_do_handshake() failed"))
        .count() as u64;
    Ok(m)
}

/// `fixture` against a `kind` TLS backend: the config as written, then as
/// `upkeep fix --write` (with `--unsafe-fixes` when asked) leaves it.
/// `Ok(None)` when that fix does not include `rule`'s own, or, with
/// `--unsafe-fixes`, changes nothing more than `upkeep fix` does.
pub fn run(
    fixture: &Path,
    rule: &str,
    kind: Backend,
    unsafe_fixes: bool,
) -> Result<Option<TlsRun>, String> {
    let label = format!("{} ({})", fixture.display(), kind.describe());
    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = tmp.path().to_path_buf();
    certificate(&dir)?;
    let (front_port, backend_port) = (free_port(), free_port());
    let fixture_text = std::fs::read_to_string(fixture).unwrap();
    let front = dir.join("front");
    let before_conf = front_config(&fixture_text, &front, front_port, backend_port)
        .map_err(|e| format!("{label}: {e}"))?;
    // `fix --write` checks its result with `nginx -t`, which opens the logs.
    std::fs::create_dir_all(front.join("logs")).unwrap();
    let (after_conf, applied) =
        fix(&dir, &before_conf, unsafe_fixes).map_err(|e| format!("{label}: {e}"))?;
    if !applied.iter().any(|r| r == rule) {
        return Ok(None);
    }
    if unsafe_fixes {
        let (safe_conf, _) = fix(&dir, &before_conf, false).map_err(|e| format!("{label}: {e}"))?;
        if safe_conf == after_conf {
            return Ok(None);
        }
    }
    nginx_t(&front, &after_conf)
        .map_err(|e| format!("{label}: nginx -t fails on the fixed config: {e}"))?;
    let before = phase(
        &dir,
        "before",
        kind,
        &before_conf,
        (front_port, backend_port),
    )
    .map_err(|e| format!("{label}: {e}"))?;
    let after = phase(&dir, "after", kind, &after_conf, (front_port, backend_port))
        .map_err(|e| format!("{label}: {e}"))?;
    Ok(Some(TlsRun {
        before,
        after,
        applied,
    }))
}
