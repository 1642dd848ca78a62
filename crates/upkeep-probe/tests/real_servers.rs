//! The probe against real servers: nginx (plain and TLS), gunicorn (gthread
//! and sync workers), Node.js http, Python's http.server, plus small
//! in-process servers for the behaviours no common server shows by default
//! (a silent close after N requests, an idle close by RST, a server that never
//! closes, garbage instead of HTTP).
//!
//! Every server is probed in ONE parallel batch so the test takes about as
//! long as the slowest backend. A server whose binary is missing is skipped
//! with a loud message; everything else must match its configuration within
//! the tolerance (±50 ms or 5 %, whichever is larger).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use upkeep_nginx::{free_port, NginxBinary, NginxInstance, Prefix};
use upkeep_probe::transport::CloseKind;
use upkeep_probe::{probe_all, Cancel, ProbeOptions, RequestDefaults, Target, TargetReport, Trust};

// ---------------------------------------------------------------- helpers

fn tolerance(expected_ms: u64) -> u64 {
    (expected_ms * 5 / 100).max(50)
}

fn target(spec: &str) -> Target {
    Target::parse(spec, &RequestDefaults::default()).unwrap()
}

/// Checks collected across all servers so one failure does not hide others.
#[derive(Default)]
struct Checks(Vec<String>);

impl Checks {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(what());
        }
    }

    fn idle_near(&mut self, r: &TargetReport, expected_ms: u64) {
        let tol = tolerance(expected_ms);
        self.check(
            r.idle_timeout_ms
                .is_some_and(|m| m.abs_diff(expected_ms) <= tol),
            || {
                format!(
                    "{}: idle timeout {:?} ms, expected {expected_ms} ± {tol} ms ({r:?})",
                    r.target, r.idle_timeout_ms
                )
            },
        );
    }

    fn field<T: PartialEq + std::fmt::Debug>(
        &mut self,
        r: &TargetReport,
        name: &str,
        got: T,
        want: T,
    ) {
        self.check(got == want, || {
            format!("{}: {name} = {got:?}, expected {want:?} ({r:?})", r.target)
        });
    }
}

/// A server process, stopped on drop (SIGINT: a quick shutdown for gunicorn,
/// the default action for the others), killed if it lingers.
struct Proc {
    child: std::process::Child,
    name: &'static str,
}

impl Proc {
    fn spawn(name: &'static str, cmd: &mut Command, ports: &[u16]) -> Proc {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        let mut p = Proc { child, name };
        for port in ports {
            p.wait_listening(*port);
        }
        p
    }

    fn wait_listening(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited before listening on {port}: {status}", self.name);
            }
            assert!(
                Instant::now() < deadline,
                "{} not listening on {port} after 20 s",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // SAFETY: plain syscall on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGINT);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn have(program: &str, args: &[&str], what: &str) -> bool {
    let ok = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!(
            "\n*** SKIPPED {what}: `{program} {}` failed: install it ***\n",
            args.join(" ")
        );
    }
    ok
}

// ------------------------------------------------------ in-process servers

#[derive(Clone, Copy)]
enum Behaviour {
    /// Answers `requests` requests per connection with no `Connection:
    /// close`, then closes; closes idle connections after `idle` with a
    /// reset (SO_LINGER 0).
    SilentCapResetIdle { requests: u32, idle: Duration },
    /// Answers every request and never closes.
    NeverCloses,
    /// Sends a non-HTTP greeting and closes.
    Garbage,
}

struct Fixture {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn fixture(behaviour: Behaviour) -> Fixture {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    std::thread::spawn(move || {
        while !stop2.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((s, _)) => {
                    let stop3 = stop2.clone();
                    std::thread::spawn(move || serve(s, behaviour, &stop3));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    Fixture { port, stop }
}

fn serve(mut s: TcpStream, behaviour: Behaviour, stop: &AtomicBool) {
    s.set_nonblocking(false).unwrap();
    if let Behaviour::Garbage = behaviour {
        let _ = s.write_all(b"SSH-2.0-OpenSSH_9.2p1\r\n");
        // Close only after the request came, so the reader sees the bytes.
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let _ = s.read(&mut [0u8; 1024]);
        return;
    }
    let mut answered = 0;
    let mut buf = Vec::new();
    loop {
        let idle_limit = match behaviour {
            Behaviour::SilentCapResetIdle { idle, .. } => Some(Instant::now() + idle),
            _ => None,
        };
        // Read one request head.
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            let slice = match idle_limit {
                Some(limit) => match limit.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left.min(Duration::from_millis(100)),
                    _ => {
                        reset(s);
                        return;
                    }
                },
                None => Duration::from_millis(100),
            };
            s.set_read_timeout(Some(slice)).unwrap();
            let mut chunk = [0u8; 4096];
            match s.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => return,
            }
        }
        let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        buf.drain(..end);
        if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
            .is_err()
        {
            return;
        }
        answered += 1;
        if let Behaviour::SilentCapResetIdle { requests, .. } = behaviour {
            if answered >= requests {
                return; // plain close: FIN, and no `Connection: close` was sent
            }
        }
    }
}

fn reset(s: TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket we own, with a correctly sized struct.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(s);
}

// ---------------------------------------------------------------- servers

struct TlsFiles {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

/// A CA and a certificate it signed for `localhost` and 127.0.0.1.
fn tls_files() -> TlsFiles {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "upkeep test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    TlsFiles {
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

struct NginxBackend {
    _instance: NginxInstance,
    _prefix: Prefix,
    plain: u16,
    tls: u16,
    ca_file: std::path::PathBuf,
}

/// nginx as a backend: `keepalive_timeout 3s; keepalive_requests 7;` on a
/// plain port, `2s`/`5` on a TLS port.
fn nginx_backend() -> Option<NginxBackend> {
    let Some(bin) = NginxBinary::find(None) else {
        eprintln!("\n*** SKIPPED nginx backend: no nginx binary (apt-get install nginx) ***\n");
        return None;
    };
    let prefix = Prefix::new().unwrap();
    let files = tls_files();
    let cert = prefix.write("tls/cert.pem", &files.cert_pem).unwrap();
    let key = prefix.write("tls/key.pem", &files.key_pem).unwrap();
    let ca_file = prefix.write("tls/ca.pem", &files.ca_pem).unwrap();
    let (plain, tls) = (free_port().unwrap(), free_port().unwrap());
    let conf = format!(
        "worker_processes 1;\nevents {{ worker_connections 64; }}\nhttp {{\n    {temps}    access_log off;\n\
         server {{\n        listen 127.0.0.1:{plain};\n        keepalive_timeout 3s;\n        keepalive_requests 7;\n        location / {{ return 200 \"ok\\n\"; }}\n    }}\n\
         server {{\n        listen 127.0.0.1:{tls} ssl;\n        ssl_certificate {cert};\n        ssl_certificate_key {key};\n        keepalive_timeout 2s;\n        keepalive_requests 5;\n        location / {{ return 200 \"ok\\n\"; }}\n    }}\n}}\n",
        temps = prefix.http_temp_paths(),
        cert = cert.display(),
        key = key.display(),
    );
    let conf_path = prefix.write("nginx.conf", &conf).unwrap();
    let instance = NginxInstance::start(&bin, &prefix, &conf_path).unwrap();
    for port in [plain, tls] {
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nginx not listening on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Some(NginxBackend {
        _instance: instance,
        _prefix: prefix,
        plain,
        tls,
        ca_file,
    })
}

const WSGI_APP: &str = "def app(environ, start_response):\n    body = b'ok\\n'\n    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])\n    return [body]\n";

fn gunicorn(dir: &Path, port: u16, worker_args: &[&str]) -> Proc {
    let mut cmd = Command::new("python3");
    cmd.current_dir(dir)
        .args(["-m", "gunicorn", "--chdir"])
        .arg(dir)
        .args(["-b", &format!("127.0.0.1:{port}"), "-w", "1"])
        .args(worker_args)
        .arg("app:app");
    Proc::spawn("gunicorn", &mut cmd, &[port])
}

/// keepAliveTimeout 1500 on the first port; 1000 with maxRequestsPerSocket 4
/// on the second.
const NODE_SERVER: &str = "const http = require('http');\n\
function make(port, keepAliveTimeout, maxRequests) {\n\
  const s = http.createServer((req, res) => { res.writeHead(200, {'Content-Length': 3}); res.end('ok\\n'); });\n\
  s.keepAliveTimeout = keepAliveTimeout;\n\
  if (maxRequests) s.maxRequestsPerSocket = maxRequests;\n\
  s.listen(port, '127.0.0.1');\n\
}\n\
make(+process.argv[2], 1500, 0);\n\
make(+process.argv[3], 1000, 4);\n";

/// How much later than `keepAliveTimeout` this Node.js destroys an idle
/// socket: `server.keepAliveTimeoutBuffer` where it exists (v22.19+/v24.6+),
/// else the constant HTTP_SERVER_KEEP_ALIVE_TIMEOUT_BUFFER that some older
/// lines (v20.20 among them) add to the socket timeout, else 0.
fn node_keep_alive_buffer_ms() -> u64 {
    let script = "const h = require('http'); const s = h.createServer();\n\
        if (typeof s.keepAliveTimeoutBuffer === 'number') { console.log(s.keepAliveTimeoutBuffer); }\n\
        else { let src = ''; try { src = process.binding('natives')._http_server; } catch (e) {}\n\
        const m = /HTTP_SERVER_KEEP_ALIVE_TIMEOUT_BUFFER = (\\d+)/.exec(src);\n\
        const uses = /setTimeout\\(server\\.keepAliveTimeout \\+ HTTP_SERVER_KEEP_ALIVE_TIMEOUT_BUFFER\\)/.test(src);\n\
        console.log(m && uses ? m[1] : 0); }";
    let out = Command::new("node").args(["-e", script]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

// ------------------------------------------------------------------ tests

#[test]
fn measures_real_backends() {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("app.py"), WSGI_APP).unwrap();
    std::fs::write(work.path().join("server.js"), NODE_SERVER).unwrap();

    let nginx = nginx_backend();
    let gunicorn_ok = have(
        "python3",
        &["-m", "gunicorn", "--version"],
        "gunicorn (pip install gunicorn)",
    );
    let (gthread_port, sync_port) = (free_port().unwrap(), free_port().unwrap());
    let _gthread = gunicorn_ok.then(|| {
        gunicorn(
            work.path(),
            gthread_port,
            &["-k", "gthread", "--threads", "4", "--keep-alive", "2"],
        )
    });
    let _sync = gunicorn_ok.then(|| gunicorn(work.path(), sync_port, &[]));
    let node_ok = have("node", &["--version"], "Node.js");
    let (node_port, node_capped_port) = (free_port().unwrap(), free_port().unwrap());
    let _node = node_ok.then(|| {
        let mut cmd = Command::new("node");
        cmd.arg(work.path().join("server.js"))
            .arg(node_port.to_string())
            .arg(node_capped_port.to_string());
        Proc::spawn("node", &mut cmd, &[node_port, node_capped_port])
    });
    let python_port = free_port().unwrap();
    let _python = have("python3", &["--version"], "Python http.server").then(|| {
        let mut cmd = Command::new("python3");
        cmd.current_dir(work.path())
            .args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(python_port.to_string());
        Proc::spawn("python http.server", &mut cmd, &[python_port])
    });
    let silent = fixture(Behaviour::SilentCapResetIdle {
        requests: 3,
        idle: Duration::from_millis(800),
    });

    let mut targets = vec![target(&format!("127.0.0.1:{}", silent.port))];
    if let Some(n) = &nginx {
        targets.push(target(&format!("127.0.0.1:{}", n.plain)));
        targets.push(target(&format!("https://127.0.0.1:{}/", n.tls)));
        // HEAD: a Content-Length but no body; a reader that waited for the
        // body would time out.
        let head = RequestDefaults {
            method: Some("HEAD".into()),
            ..Default::default()
        };
        targets.push(Target::parse(&format!("http://127.0.0.1:{}/head", n.plain), &head).unwrap());
    }
    if gunicorn_ok {
        targets.push(target(&format!("127.0.0.1:{gthread_port}")));
        targets.push(target(&format!("127.0.0.1:{sync_port}")));
    }
    if node_ok {
        targets.push(target(&format!("http://127.0.0.1:{node_port}/")));
        targets.push(target(&format!("127.0.0.1:{node_capped_port}")));
    }
    if _python.is_some() {
        targets.push(target(&format!("127.0.0.1:{python_port}")));
    }

    let opts = ProbeOptions {
        max_wait: Duration::from_secs(30),
        max_requests: 40,
        rate_per_sec: 400.0,
        io_timeout: Duration::from_secs(5),
        idle_samples: 2,
        trust: Trust::Insecure,
        ..ProbeOptions::default()
    };
    let cancel = Cancel::new();
    // The TLS trust variants run alongside the main batch.
    let (reports, with_ca, untrusted) = std::thread::scope(|s| {
        let tls_variant = |trust: Trust, host: Option<&str>| {
            let nginx = nginx.as_ref()?;
            let defaults = RequestDefaults {
                host: host.map(String::from),
                ..Default::default()
            };
            let t = Target::parse(&format!("https://127.0.0.1:{}", nginx.tls), &defaults).unwrap();
            let o = ProbeOptions {
                trust,
                max_requests: 3,
                idle_samples: 1,
                ..opts.clone()
            };
            Some(probe_all(&[t], &o, &cancel, &|_| {}).remove(0))
        };
        let ca_trust = nginx.as_ref().map(|n| Trust::ExtraCa(n.ca_file.clone()));
        let with_ca = s.spawn(move || ca_trust.and_then(|t| tls_variant(t, Some("localhost"))));
        let untrusted = s.spawn(move || tls_variant(Trust::System, None));
        let reports = probe_all(&targets, &opts, &cancel, &|_| {});
        (reports, with_ca.join().unwrap(), untrusted.join().unwrap())
    });
    for r in &reports {
        eprintln!(
            "{}: idle {:?} {:?} samples {:?}, max {:?} announced {:?}, keepalive {:?}, {} ms, error {:?}, notes {:?}",
            r.target, r.idle_timeout_ms, r.close_kind, r.idle_samples_ms, r.max_requests,
            r.announces_close, r.keepalive, r.elapsed_ms, r.error, r.notes
        );
    }
    let find = |port: u16| {
        reports
            .iter()
            .find(|r| {
                r.target == format!("127.0.0.1:{port}")
                    || r.target == format!("http://127.0.0.1:{port}/")
                    || r.target == format!("https://127.0.0.1:{port}/")
            })
            .unwrap_or_else(|| panic!("no report for port {port}: {reports:?}"))
    };
    let mut c = Checks::default();
    for r in &reports {
        c.field(r, "error", &r.error, &None);
    }

    // The silent-close server: 3 requests, no announcement; idle close by RST.
    let r = find(silent.port);
    c.field(r, "max_requests", r.max_requests, Some(3));
    c.field(r, "announces_close", r.announces_close, Some(false));
    c.idle_near(r, 800);
    c.field(r, "close_kind", r.close_kind, Some(CloseKind::Rst));

    if let Some(n) = &nginx {
        let r = find(n.plain);
        c.field(r, "http_version", r.http_version.as_deref(), Some("1.1"));
        c.field(r, "keepalive", r.keepalive, Some(true));
        c.idle_near(r, 3000);
        c.field(r, "close_kind", r.close_kind, Some(CloseKind::Fin));
        c.field(r, "max_requests", r.max_requests, Some(7));
        c.field(r, "announces_close", r.announces_close, Some(true));
        c.field(
            r,
            "close_announced_on_request",
            r.close_announced_on_request,
            Some(7),
        );
        c.check(
            r.server.as_deref().is_some_and(|s| s.starts_with("nginx")),
            || format!("nginx Server header: {:?}", r.server),
        );

        let r = reports
            .iter()
            .find(|r| r.target.ends_with("/head"))
            .unwrap();
        c.field(r, "error (HEAD)", &r.error, &None);
        c.idle_near(r, 3000);
        c.field(r, "max_requests (HEAD)", r.max_requests, Some(7));

        let r = find(n.tls);
        c.field(r, "scheme", r.scheme, upkeep_probe::Scheme::Https);
        c.idle_near(r, 2000);
        c.field(r, "max_requests", r.max_requests, Some(5));
        c.field(r, "announces_close", r.announces_close, Some(true));

        let r = with_ca.as_ref().unwrap();
        c.field(r, "error (trusted CA)", &r.error, &None);
        c.field(r, "keepalive (trusted CA)", r.keepalive, Some(true));
        let r = untrusted.as_ref().unwrap();
        c.check(
            r.error
                .as_deref()
                .is_some_and(|e| e.contains("certificate")),
            || format!("untrusted certificate must fail: {r:?}"),
        );
    }

    if gunicorn_ok {
        // gthread: --keep-alive 2, but its idle sweep runs once per pass of a
        // 1 s select loop, so the close comes 2-3 s after the response.
        let r = find(gthread_port);
        c.field(r, "keepalive", r.keepalive, Some(true));
        c.check(
            r.idle_timeout_ms
                .is_some_and(|m| (1950..=3150).contains(&m)),
            || {
                format!(
                    "gthread idle timeout {:?}, expected 2000-3000 ms (± tolerance)",
                    r.idle_timeout_ms
                )
            },
        );
        c.field(r, "max_requests", r.max_requests, None);
        c.field(r, "requests_sent", r.requests_sent, 40);

        // sync: `Connection: close` on every response.
        let r = find(sync_port);
        c.field(r, "keepalive", r.keepalive, Some(false));
        c.field(
            r,
            "closes_after_response",
            r.closes_after_response,
            Some(true),
        );
        c.field(r, "announces_close", r.announces_close, Some(true));
        c.field(
            r,
            "close_announced_on_request",
            r.close_announced_on_request,
            Some(1),
        );
        c.field(r, "max_requests", r.max_requests, Some(1));
        c.field(r, "idle_timeout_ms", r.idle_timeout_ms, None);
    }

    if node_ok {
        let buffer = node_keep_alive_buffer_ms();
        c.check(buffer == 0 || buffer == 1000, || {
            format!("unexpected Node.js keep-alive buffer {buffer}")
        });
        let r = find(node_port);
        c.idle_near(r, 1500 + buffer);
        c.field(r, "max_requests", r.max_requests, None);
        let r = find(node_capped_port);
        c.idle_near(r, 1000 + buffer);
        c.field(r, "max_requests", r.max_requests, Some(4));
        c.field(r, "announces_close", r.announces_close, Some(true));
    }

    if _python.is_some() {
        let r = find(python_port);
        c.field(r, "http_version", r.http_version.as_deref(), Some("1.0"));
        c.field(r, "keepalive", r.keepalive, Some(false));
        c.field(
            r,
            "closes_after_response",
            r.closes_after_response,
            Some(true),
        );
    }

    assert!(
        c.0.is_empty(),
        "{} mismatches:\n{}",
        c.0.len(),
        c.0.join("\n")
    );
}

#[test]
fn ctrl_c_and_max_wait_end_the_idle_wait_with_partial_results() {
    let server = fixture(Behaviour::NeverCloses);
    let t = target(&format!("127.0.0.1:{}", server.port));
    let opts = ProbeOptions {
        max_wait: Duration::from_secs(60),
        max_requests: 5,
        rate_per_sec: 100.0,
        io_timeout: Duration::from_secs(5),
        idle_samples: 1,
        trust: Trust::System,
        ..ProbeOptions::default()
    };
    // Cancelled after 600 ms: back well before the 60 s max wait.
    let cancel = Cancel::new();
    let started = Instant::now();
    let report = std::thread::scope(|s| {
        let c = cancel.clone();
        s.spawn(move || {
            std::thread::sleep(Duration::from_millis(600));
            c.cancel();
        });
        probe_all(std::slice::from_ref(&t), &opts, &cancel, &|_| {}).remove(0)
    });
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(report.idle_timeout_ms, None);
    assert!(report.idle_waited_ms >= 500, "{report:?}");
    assert_eq!(report.keepalive, Some(true));
    assert_eq!(report.max_requests, None);
    assert!(
        report.notes.iter().any(|n| n.contains("interrupted")),
        "{report:?}"
    );

    // The max wait bounds a backend that never closes.
    let opts = ProbeOptions {
        max_wait: Duration::from_millis(1200),
        ..opts
    };
    let report = probe_all(&[t], &opts, &Cancel::new(), &|_| {}).remove(0);
    assert_eq!(report.idle_timeout_ms, None);
    assert!(
        report.idle_waited_ms >= 1000 && report.idle_waited_ms <= 1300,
        "{report:?}"
    );
    assert!(
        report.notes.iter().any(|n| n.contains("--max-wait")),
        "{report:?}"
    );
    assert_eq!(report.max_requests, None, "{report:?}");
    assert_eq!(report.requests_sent, 5);
}

#[test]
fn unreachable_and_non_http_targets_are_reported_not_fatal() {
    let garbage = fixture(Behaviour::Garbage);
    let closed_port = free_port().unwrap();
    let targets = [
        target(&format!("127.0.0.1:{}", garbage.port)),
        target(&format!("127.0.0.1:{closed_port}")),
        target("unix:/nonexistent/upkeep-probe.sock"),
    ];
    let reports = probe_all(&targets, &ProbeOptions::default(), &Cancel::new(), &|_| {});
    let err = |i: usize| reports[i].error.clone().unwrap_or_default();
    assert!(err(0).contains("malformed response"), "{:?}", reports[0]);
    assert!(err(1).contains("Connection refused"), "{:?}", reports[1]);
    assert!(
        err(2).contains("unix:/nonexistent/upkeep-probe.sock"),
        "{:?}",
        reports[2]
    );
}

// ------------------------------------------------- bounds on the backends

/// What the counting server saw.
#[derive(Default)]
struct Counters {
    requests: std::sync::atomic::AtomicU64,
    open: std::sync::atomic::AtomicI64,
    peak_open: std::sync::atomic::AtomicI64,
}

/// Answers every request (keep-alive, never closes), counts the requests
/// and the connections open at the same time.
fn counting_server() -> (Fixture, Arc<Counters>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(Counters::default());
    let (stop2, counters2) = (stop.clone(), counters.clone());
    std::thread::spawn(move || {
        while !stop2.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((s, _)) => {
                    let open = counters2.open.fetch_add(1, Ordering::SeqCst) + 1;
                    counters2.peak_open.fetch_max(open, Ordering::SeqCst);
                    let (stop3, c) = (stop2.clone(), counters2.clone());
                    std::thread::spawn(move || {
                        count_requests(s, &stop3, &c);
                        c.open.fetch_sub(1, Ordering::SeqCst);
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(2)),
            }
        }
    });
    (Fixture { port, stop }, counters)
}

fn count_requests(mut s: TcpStream, stop: &AtomicBool, c: &Counters) {
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        match s.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.drain(..end + 4);
            c.requests.fetch_add(1, Ordering::SeqCst);
            if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
                .is_err()
            {
                return;
            }
        }
    }
}

#[test]
fn rate_holds_per_backend_address_over_all_targets() {
    let (server, counters) = counting_server();
    // Twenty upstreams naming the same server, written three ways.
    let targets: Vec<Target> = (0..20)
        .map(|i| {
            let spec = match i % 3 {
                0 => format!("127.0.0.1:{}", server.port),
                1 => format!("http://127.0.0.1:{}/u{i}", server.port),
                _ => format!("http://127.0.0.1:{}/?n={i}", server.port),
            };
            let mut t = target(&spec);
            t.upstream = Some(format!("up{i}"));
            t
        })
        .collect();
    let rate = 20.0;
    let opts = ProbeOptions {
        max_wait: Duration::from_secs(3),
        max_requests: 1000,
        rate_per_sec: rate,
        io_timeout: Duration::from_secs(5),
        idle_samples: 1,
        trust: Trust::System,
        ..ProbeOptions::default()
    };
    let started = Instant::now();
    let reports = probe_all(&targets, &opts, &Cancel::new(), &|_| {});
    let elapsed = started.elapsed().as_secs_f64();
    let sent = counters.requests.load(Ordering::SeqCst);
    eprintln!(
        "{} targets, one backend: {sent} requests in {elapsed:.2} s = {:.1}/s (--rate {rate})",
        targets.len(),
        sent as f64 / elapsed
    );
    for r in &reports {
        assert_eq!(r.error, None, "{r:?}");
    }
    // The token bucket allows a burst of 5, then `rate` per second. Every
    // target got its first request through (it waits its turn in line).
    let allowed = 5.0 + rate * elapsed;
    assert!(
        (sent as f64) <= allowed * 1.1 + 2.0,
        "{sent} requests in {elapsed:.2} s to one backend: more than --rate {rate}/s allows ({allowed:.0})"
    );
    assert!(sent >= targets.len() as u64, "{sent}");
    assert!(reports.iter().all(|r| r.requests_sent >= 1), "{reports:?}");
}

/// What the huge-body server sends after the head.
#[derive(Clone, Copy, Debug)]
enum HugeBody {
    /// `Content-Length: 10737418240` (10 GiB), then bytes.
    Length,
    /// Chunked, 64 KiB chunks without end.
    Chunked,
    /// HTTP/1.0, delimited by the close, without end.
    UntilClose,
}

/// Streams one huge body per connection, for at most 20 s, and counts the
/// body bytes the kernel accepted.
fn huge_body_server(kind: HugeBody) -> (Fixture, Arc<std::sync::atomic::AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (stop2, written2) = (stop.clone(), written.clone());
    std::thread::spawn(move || {
        while !stop2.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((mut s, _)) => {
                    let (stop3, written3) = (stop2.clone(), written2.clone());
                    std::thread::spawn(move || {
                        s.set_nonblocking(false).unwrap();
                        s.set_write_timeout(Some(Duration::from_millis(200)))
                            .unwrap();
                        let _ = s.read(&mut [0u8; 4096]);
                        let head: &[u8] = match kind {
                            HugeBody::Length => {
                                b"HTTP/1.1 200 OK\r\nContent-Length: 10737418240\r\n\r\n"
                            }
                            HugeBody::Chunked => {
                                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                            }
                            HugeBody::UntilClose => b"HTTP/1.0 200 OK\r\n\r\n",
                        };
                        if s.write_all(head).is_err() {
                            return;
                        }
                        let data = vec![b'x'; 64 * 1024];
                        let mut chunk = Vec::new();
                        if let HugeBody::Chunked = kind {
                            chunk.extend_from_slice(b"10000\r\n");
                        }
                        chunk.extend_from_slice(&data);
                        if let HugeBody::Chunked = kind {
                            chunk.extend_from_slice(b"\r\n");
                        }
                        let until = Instant::now() + Duration::from_secs(20);
                        while !stop3.load(Ordering::SeqCst) && Instant::now() < until {
                            match s.write(&chunk) {
                                Ok(n) => {
                                    written3.fetch_add(n as u64, Ordering::SeqCst);
                                }
                                Err(e)
                                    if matches!(
                                        e.kind(),
                                        std::io::ErrorKind::WouldBlock
                                            | std::io::ErrorKind::TimedOut
                                    ) => {}
                                Err(_) => return,
                            }
                        }
                    });
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    (Fixture { port, stop }, written)
}

#[test]
fn huge_response_bodies_are_capped_not_read() {
    let servers: Vec<_> = [HugeBody::Length, HugeBody::Chunked, HugeBody::UntilClose]
        .into_iter()
        .map(|k| (k, huge_body_server(k)))
        .collect();
    let targets: Vec<Target> = servers
        .iter()
        .map(|(_, (f, _))| target(&format!("127.0.0.1:{}", f.port)))
        .collect();
    let opts = ProbeOptions {
        max_wait: Duration::from_secs(15),
        io_timeout: Duration::from_secs(10),
        max_body: 256 * 1024,
        ..ProbeOptions::default()
    };
    let started = Instant::now();
    let reports = probe_all(&targets, &opts, &Cancel::new(), &|_| {});
    let elapsed = started.elapsed();
    // Let the servers notice the close.
    std::thread::sleep(Duration::from_millis(500));
    for ((kind, (_, written)), r) in servers.iter().zip(&reports) {
        let written = written.load(Ordering::SeqCst);
        eprintln!(
            "{kind:?}: server wrote {written} body bytes; error {:?}",
            r.error
        );
        assert!(
            r.error.as_deref().is_some_and(|e| e.contains("--max-body")),
            "{kind:?}: {r:?}"
        );
        assert_eq!(r.keepalive, None, "{kind:?}: {r:?}");
        // One connection, closed at the cap: what the server got out is the
        // cap plus what the two sockets' buffers hold, nowhere near 10 GiB.
        assert!(
            written < 48 << 20,
            "{kind:?}: the server wrote {written} bytes for a 256 KiB cap"
        );
    }
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
}

#[test]
fn targets_run_at_most_max_parallel_at_a_time() {
    let (server, counters) = counting_server();
    let targets: Vec<Target> = (0..40)
        .map(|i| target(&format!("http://127.0.0.1:{}/t{i}", server.port)))
        .collect();
    let opts = ProbeOptions {
        max_wait: Duration::from_millis(300),
        max_requests: 3,
        rate_per_sec: 10_000.0,
        idle_samples: 1,
        max_parallel: 4,
        ..ProbeOptions::default()
    };
    assert_eq!(upkeep_probe::parallelism(&opts, targets.len()).workers, 4);
    let began = Instant::now();
    let reports = probe_all(&targets, &opts, &Cancel::new(), &|_| {});
    let took = began.elapsed();
    let peak = counters.peak_open.load(Ordering::SeqCst);
    eprintln!("40 targets, --parallel 4: peak {peak} connections open, {took:?}");
    assert_eq!(reports.len(), 40);
    for r in &reports {
        assert_eq!(r.error, None, "{r:?}");
        assert_eq!(r.keepalive, Some(true), "{r:?}");
    }
    // Two connections per target (idle sample + request cap), four targets
    // at a time; a closing connection may overlap the next target's by a
    // moment.
    assert!(peak <= 4 * 2 + 2, "peak {peak} open connections");
    // 40 targets of about 300 ms each, 4 at a time: at least 10 rounds.
    assert!(took >= Duration::from_millis(2800), "{took:?}");
}
