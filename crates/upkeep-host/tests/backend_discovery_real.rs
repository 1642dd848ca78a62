//! Backends known without being told: real gunicorn, uvicorn, Node.js and
//! php-fpm, each behind a real nginx in a private prefix, some with
//! non-default settings; doctor must find each process behind its upstream
//! address, read the setting from where the server takes it, say where it
//! came from, and the static rules (U007, U009) must use it. Each server
//! whose program is missing is skipped loudly; nginx is required for all.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{nginx, Nginx};
use upkeep_host::backend_discovery::{DiscoveredBackend, Listener};
use upkeep_host::{DoctorInput, DoctorReport};
use upkeep_nginx::free_port;
use upkeep_rules::{CheckOptions, NginxVersion, VersionSource};

/// A server process of this test, stopped on drop (SIGTERM, then SIGKILL).
struct Proc {
    child: Child,
    name: &'static str,
}

impl Proc {
    fn spawn(name: &'static str, cmd: &mut Command) -> Proc {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        Proc { child, name }
    }

    /// Waits up to 20 s for `ready`.
    fn wait(&mut self, what: &str, ready: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ready() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited before {what}: {status}", self.name);
            }
            assert!(
                Instant::now() < deadline,
                "{}: not {what} after 20 s",
                self.name
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn listening(mut self, port: u16) -> Proc {
        self.wait(&format!("listening on {port}"), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        self
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // SAFETY: plain syscall on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
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
            "\n*** SKIPPED {what}: `{program} {}` failed: install it (.ci/setup) ***\n",
            args.join(" ")
        );
    }
    ok
}

/// php-fpm's binary: `php-fpm` or Debian's versioned `php-fpmX.Y`.
fn php_fpm_binary() -> Option<PathBuf> {
    for dir in ["/usr/sbin", "/usr/local/sbin", "/usr/bin"] {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut found: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("php-fpm"))
            })
            .collect();
        found.sort();
        if let Some(p) = found.pop() {
            return Some(p);
        }
    }
    eprintln!(
        "\n*** SKIPPED php-fpm: no php-fpm binary (apt-get install php-fpm; .ci/setup) ***\n"
    );
    None
}

const WSGI_APP: &str = "def app(environ, start_response):\n    body = b'ok\\n'\n    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])\n    return [body]\n";
const ASGI_APP: &str = "async def app(scope, receive, send):\n    if scope['type'] != 'http':\n        return\n    await send({'type': 'http.response.start', 'status': 200, 'headers': [(b'content-length', b'3')]})\n    await send({'type': 'http.response.body', 'body': b'ok\\n'})\n";
/// No keepAliveTimeout set: Node.js's default applies.
const NODE_SERVER: &str = "require('http').createServer((req, res) => { res.writeHead(200, {'Content-Length': 3}); res.end('ok\\n'); }).listen(+process.argv[2], '127.0.0.1');\n";

fn gunicorn(dir: &Path, port: u16, extra: &[&str]) -> Proc {
    let mut cmd = Command::new("python3");
    cmd.current_dir(dir)
        .args(["-m", "gunicorn", "--chdir"])
        .arg(dir)
        .args([
            "-b",
            &format!("127.0.0.1:{port}"),
            "-w",
            "1",
            "-k",
            "gthread",
        ])
        .args(extra)
        .arg("app:app");
    Proc::spawn("gunicorn", &mut cmd).listening(port)
}

/// A GET through nginx; its status.
fn get(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: t\r\n\r\n").as_bytes())
        .ok()?;
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    resp.split_whitespace().nth(1)?.parse().ok()
}

fn behind<'r>(report: &'r DoctorReport<'_>, upstream: &str) -> &'r DiscoveredBackend {
    report
        .backends
        .backends
        .iter()
        .find(|b| b.target.upstreams.iter().any(|u| u == upstream))
        .unwrap_or_else(|| {
            panic!(
                "nothing discovered for upstream {upstream}: {:#?}",
                report.backends
            )
        })
}

fn finding_for<'r>(report: &'r DoctorReport<'_>, rule: &str, upstream: &str) -> Option<&'r str> {
    report
        .findings
        .iter()
        .map(|r| &r.finding)
        .find(|f| f.rule == rule && f.message.contains(&format!("`{upstream}`")))
        .map(|f| f.message.as_str())
}

#[test]
fn doctor_knows_gunicorn_uvicorn_node_and_php_fpm_behind_nginx() {
    let Some(bin) = nginx() else { return };
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    std::fs::write(dir.join("app.py"), WSGI_APP).unwrap();
    std::fs::write(dir.join("asgi.py"), ASGI_APP).unwrap();
    std::fs::write(dir.join("server.js"), NODE_SERVER).unwrap();

    let gunicorn_ok = have("python3", &["-m", "gunicorn", "--version"], "gunicorn");
    let uvicorn_ok = have("python3", &["-m", "uvicorn", "--version"], "uvicorn");
    let node_ok = have("node", &["--version"], "Node.js");
    let fpm = php_fpm_binary();

    let ports: Vec<u16> = (0..4).map(|_| free_port().unwrap()).collect();
    let (g7, g_default, uv, nd) = (ports[0], ports[1], ports[2], ports[3]);
    let mut servers: Vec<Proc> = Vec::new();
    if gunicorn_ok {
        servers.push(gunicorn(dir, g7, &["--keep-alive", "7"]));
        servers.push(gunicorn(dir, g_default, &[]));
    }
    if uvicorn_ok {
        let mut cmd = Command::new("python3");
        cmd.current_dir(dir).args([
            "-m",
            "uvicorn",
            "--host",
            "127.0.0.1",
            "--port",
            &uv.to_string(),
            "--timeout-keep-alive",
            "3",
            "asgi:app",
        ]);
        servers.push(Proc::spawn("uvicorn", &mut cmd).listening(uv));
    }
    if node_ok {
        let mut cmd = Command::new("node");
        cmd.arg(dir.join("server.js")).arg(nd.to_string());
        servers.push(Proc::spawn("node", &mut cmd).listening(nd));
    }
    // php-fpm as its own process: private configuration, pid file and
    // socket, a static pool of 4 children.
    let fpm_socket = dir.join("fpm.sock");
    let fpm_conf = dir.join("php-fpm.conf");
    let mut fpm_pid = None;
    if let Some(fpm) = &fpm {
        std::fs::create_dir_all(dir.join("pool.d")).unwrap();
        std::fs::write(
            &fpm_conf,
            format!(
                "[global]\npid = {d}/fpm.pid\nerror_log = {d}/fpm.log\ninclude = {d}/pool.d/*.conf\n",
                d = dir.display()
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("pool.d/www.conf"),
            format!(
                "[www]\nuser = nobody\ngroup = nogroup\nlisten = {}\nlisten.mode = 0666\npm = static\npm.max_children = 4\n",
                fpm_socket.display()
            ),
        )
        .unwrap();
        std::fs::write(dir.join("index.php"), "<?php echo \"ok\\n\";\n").unwrap();
        let mut cmd = Command::new(fpm);
        cmd.args(["--nodaemonize", "--fpm-config"]).arg(&fpm_conf);
        if unsafe { libc::geteuid() } == 0 {
            cmd.arg("--allow-to-run-as-root");
        }
        let mut p = Proc::spawn("php-fpm", &mut cmd);
        let sock = fpm_socket.clone();
        p.wait("listening on its socket", || sock.exists());
        fpm_pid = Some(p.pid());
        servers.push(p);
    }
    // The test's files must be readable by nginx's and php-fpm's workers.
    let _ = Command::new("chmod").args(["-R", "a+rX"]).arg(dir).status();
    let _ = Command::new("chmod").arg("755").arg(dir).status();

    let n = Nginx::start(
        bin,
        "worker_processes 1;\nevents { worker_connections 256; }",
        &format!(
            "    access_log off;
    upstream g7 {{ server 127.0.0.1:{g7}; keepalive 16; }}
    upstream gdefault {{ server 127.0.0.1:{g_default}; keepalive 16; }}
    upstream uv {{ server 127.0.0.1:{uv}; keepalive 16; }}
    upstream nd {{ server 127.0.0.1:{nd}; keepalive 16; }}
    upstream fpm {{ server unix:{sock}; keepalive 8; }}
    server {{
        listen 127.0.0.1:{{port}};
        proxy_http_version 1.1;
        proxy_set_header Connection \"\";
        location /g7/ {{ proxy_pass http://g7/; }}
        location /gd/ {{ proxy_pass http://gdefault/; }}
        location /uv/ {{ proxy_pass http://uv/; }}
        location /nd/ {{ proxy_pass http://nd/; }}
        location /php {{
            fastcgi_keep_conn on;
            fastcgi_param SCRIPT_FILENAME {dir}/index.php;
            fastcgi_param REQUEST_METHOD GET;
            fastcgi_pass fpm;
        }}
    }}",
            sock = fpm_socket.display(),
            dir = dir.display(),
        ),
    );
    // Each backend really answers through nginx.
    let routes = [
        (gunicorn_ok, "/g7/"),
        (gunicorn_ok, "/gd/"),
        (uvicorn_ok, "/uv/"),
        (node_ok, "/nd/"),
        (fpm.is_some(), "/php"),
    ];
    for (on, path) in routes {
        if on {
            assert_eq!(get(n.port, path), Some(200), "GET {path} through nginx");
        }
    }

    let config = n.config();
    let mut input = DoctorInput::new(&config);
    input.check = CheckOptions {
        nginx_version: Some(NginxVersion::parse(&n.binary.version().unwrap()).unwrap()),
        version_source: VersionSource::Detected,
        cpus: Some(1),
        ..CheckOptions::default()
    };
    input.pid = Some(n.instance.pid());
    input.error_log = Some(n.prefix.error_log());
    input.window = Duration::from_millis(200);
    let report = upkeep_host::run(input);
    let human = report.to_human(false);
    eprintln!("{human}");
    let json = report.to_json();

    let recognized = |b: &DiscoveredBackend| {
        let f = b
            .found()
            .unwrap_or_else(|| panic!("no process behind {}: {:?}", b.target.written, b.listener));
        (f.process.pid, f.recognition.clone().expect("recognized"))
    };

    if gunicorn_ok {
        let b = behind(&report, "g7");
        assert!(matches!(b.listener, Listener::Process(_)));
        let (pid, r) = recognized(b);
        assert_eq!(r.kind, "gunicorn");
        let idle = r.idle_timeout_ms.unwrap();
        assert_eq!(idle.value, Some(7000));
        assert_eq!(idle.source, "--keep-alive 7 from argv");
        // The gunicorn master holds the socket; its worker shares it.
        assert_eq!(pid, servers[0].pid());
        let u007 = finding_for(&report, "U007", "g7").expect("U007 on g7");
        assert!(
            u007.contains(&format!(
                "closes them after 7s (gunicorn pid {pid}: --keep-alive 7 from argv)"
            )),
            "{u007}"
        );

        let (_, r) = recognized(behind(&report, "gdefault"));
        let idle = r.idle_timeout_ms.unwrap();
        assert_eq!(idle.value, Some(2000));
        assert_eq!(idle.source, "gunicorn default 2s, profile gunicorn");
        let u007 = finding_for(&report, "U007", "gdefault").expect("U007 on gdefault");
        assert!(
            u007.contains("gunicorn default 2s, profile gunicorn"),
            "{u007}"
        );
    }
    if uvicorn_ok {
        let (_, r) = recognized(behind(&report, "uv"));
        assert_eq!(r.kind, "uvicorn");
        let idle = r.idle_timeout_ms.unwrap();
        assert_eq!(idle.value, Some(3000));
        assert_eq!(idle.source, "--timeout-keep-alive 3 from argv");
    }
    if node_ok {
        let (_, r) = recognized(behind(&report, "nd"));
        assert_eq!(r.kind, "node");
        // The row of the installed release: `node --version` here, read by
        // discovery from the process's own binary.
        let installed = Command::new("node").arg("--version").output().unwrap();
        let installed = String::from_utf8_lossy(&installed.stdout)
            .trim()
            .to_string();
        assert_eq!(r.version.as_deref(), Some(installed.as_str()));
        let row = upkeep_facts::backend_profile(&format!("node@{installed}")).unwrap();
        assert_eq!(r.profile, Some(row.name));
        let idle = r.idle_timeout_ms.unwrap();
        assert_eq!(idle.value, row.idle_timeout_ms);
        if upkeep_facts::node_has_keepalive_buffer(&installed) {
            // 20.20.2 and later: keepAliveTimeout 5 s + the 1 s buffer
            // (crates/upkeep-facts/tests/node_idle_close.rs measures it).
            assert_eq!(row.name, "node-buffered");
            assert_eq!(idle.value, Some(6000));
        } else {
            assert_eq!(row.name, "node");
            assert_eq!(idle.value, Some(5000));
        }
        assert!(
            idle.source.contains(&format!(
                "Node.js {installed} (from its binary's --version)"
            )),
            "{}",
            idle.source
        );
        assert!(
            idle.source.contains(&format!("profile {}", row.name)),
            "{}",
            idle.source
        );
        assert!(
            idle.source.contains("cannot be read from outside"),
            "{}",
            idle.source
        );
        let u007 = finding_for(&report, "U007", "nd").expect("U007 on nd");
        assert!(
            u007.contains(&format!(
                "closes them after {}",
                upkeep_facts::describe_duration(idle.value.unwrap())
            )),
            "{u007}"
        );
    }
    if fpm.is_some() {
        let b = behind(&report, "fpm");
        let (pid, r) = recognized(b);
        assert_eq!(r.kind, "php-fpm");
        assert_eq!(Some(pid), fpm_pid, "the master, not one of its children");
        let max = r.max_connections.unwrap();
        assert_eq!(max.value, 4);
        assert_eq!(
            max.source,
            format!(
                "pool [www] pm.max_children = 4 in {}:7",
                dir.join("pool.d/www.conf").display()
            )
        );
        // keepalive 8 × 1 worker > 4 children.
        let u009 = finding_for(&report, "U009", "fpm").expect("U009 on fpm");
        assert!(u009.contains("accepts at most 4"), "{u009}");
        assert!(u009.contains("pm.max_children = 4"), "{u009}");
    }

    // The same in the human report and the JSON.
    let list = json["host"]["discovered_backends"].as_array().unwrap();
    assert_eq!(list.len(), 5, "{list:#?}");
    if gunicorn_ok {
        assert!(human.contains("127.0.0.1:") && human.contains("--keep-alive 7 from argv"));
        let g7_json = list.iter().find(|b| b["upstreams"][0] == "g7").unwrap();
        assert_eq!(g7_json["kind"], "gunicorn");
        assert_eq!(g7_json["idle_timeout_ms"], 7000);
        assert_eq!(g7_json["idle_timeout_source"], "--keep-alive 7 from argv");
        assert_eq!(g7_json["used_by_rules"], true);
    }
    if fpm.is_some() {
        let f = list.iter().find(|b| b["upstreams"][0] == "fpm").unwrap();
        assert_eq!(f["max_connections"], 4);
        assert_eq!(f["endpoint"], format!("unix:{}", fpm_socket.display()));
    }
    drop(n);
    drop(servers);
}

/// A server upkeep does not know (this test's own thread): keep-alive
/// HTTP/1.1, idle connections closed after 1.5 s.
fn unknown_server() -> (u16, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::io::{BufRead, BufReader};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        while !flag.load(Ordering::Relaxed) {
            let Ok((s, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            std::thread::spawn(move || {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(Duration::from_millis(1500)))
                    .unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut w = s;
                loop {
                    let mut line = String::new();
                    match r.read_line(&mut line) {
                        Ok(0) | Err(_) => return, // idle too long, or closed
                        Ok(_) if line == "\r\n" => {
                            if w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
                                .is_err()
                            {
                                return;
                            }
                        }
                        Ok(_) => {}
                    }
                }
            });
        }
    });
    (port, stop)
}

#[test]
fn doctor_probe_measures_a_backend_it_cannot_read() {
    let Some(bin) = nginx() else { return };
    let (port, stop) = unknown_server();
    let n = Nginx::start(
        bin,
        "worker_processes 1;\nevents { worker_connections 64; }",
        &format!(
            "    access_log off;
    upstream mystery {{ server 127.0.0.1:{port}; keepalive 4; }}
    server {{ listen 127.0.0.1:{{port}}; location / {{ proxy_pass http://mystery; }} }}"
        ),
    );
    let config = n.config();
    let check = CheckOptions {
        nginx_version: Some(NginxVersion::parse(&n.binary.version().unwrap()).unwrap()),
        version_source: VersionSource::Detected,
        ..CheckOptions::default()
    };
    let mut found = upkeep_host::doctor::discover(&config, &check, Some(n.instance.pid()));
    let b = &found.backends[0];
    let Listener::Process(f) = &b.listener else {
        panic!("{:?}", b.listener)
    };
    assert_eq!(
        f.process.pid,
        std::process::id() as i32,
        "this test holds the socket"
    );
    assert!(f.recognition.is_none(), "{:?}", f.recognition);
    assert!(b.facts().is_none(), "nothing known before the probe");

    let opts = upkeep_probe::ProbeOptions {
        max_wait: Duration::from_secs(15),
        max_requests: 20,
        ..upkeep_probe::ProbeOptions::default()
    };
    upkeep_host::backend_discovery::probe::probe_unknown(
        &mut found,
        &opts,
        &upkeep_probe::Cancel::new(),
    );
    let probed = found.backends[0].probed.clone().expect("probed");
    assert_eq!(probed.error, None);
    let idle = probed.idle_timeout_ms.expect("idle timeout measured");
    assert!(
        (1300..=2500).contains(&idle),
        "measured {idle} ms for a 1.5 s timeout"
    );

    let mut input = DoctorInput::new(&config);
    input.check = check;
    input.pid = Some(n.instance.pid());
    input.window = Duration::from_millis(100);
    input.discovery = Some(found);
    let report = upkeep_host::run(input);
    let u007 = finding_for(&report, "U007", "mystery").expect("U007 from the measured timeout");
    assert!(u007.contains("probed at 127.0.0.1:"), "{u007}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
}
