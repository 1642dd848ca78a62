//! Running the `upkeep` binary (and `upkeep watch` as an exporter), small
//! HTTP backends and clients for the tests that put a real nginx in front of
//! one, and bounded waits.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

/// A copy of the upkeep binary that an unprivileged user (nobody) can run
/// even when the build directory is private (as under /root).
pub fn binary_for_nobody() -> (tempfile::TempDir, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.path().join("upkeep");
    std::fs::copy(env!("CARGO_BIN_EXE_upkeep"), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    (dir, bin)
}

/// `upkeep check --format json --nginx-version VERSION CONF`: its report.
pub fn check_report(conf: &Path, nginx_version: &str) -> serde_json::Value {
    let checked = Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(["check", "--format", "json", "--nginx-version"])
        .arg(nginx_version)
        .arg(conf)
        .output()
        .unwrap();
    serde_json::from_slice(&checked.stdout).unwrap()
}

/// `upkeep ARGS`, without colours; its status and output.
pub fn upkeep<S: AsRef<OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run upkeep")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Answers every request on `s` with `200 ok` (a 2-byte body) until the
/// peer closes or 5 s pass without a byte.
pub fn answer_ok_until_closed(s: TcpStream) {
    answer_ok_until_idle(s, Duration::from_secs(5));
}

/// Answers every request on `s` with `200 ok` (a 2-byte body) until the
/// peer closes or `idle` passes without a byte; the stream is then dropped,
/// which closes the connection.
pub fn answer_ok_until_idle(mut s: TcpStream, idle: Duration) {
    s.set_read_timeout(Some(idle)).unwrap();
    let mut buf = [0u8; 4096];
    let mut seen = Vec::new();
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
        if seen.windows(4).any(|w| w == b"\r\n\r\n") {
            seen.clear();
            if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .is_err()
            {
                break;
            }
        }
    }
}

/// A loopback backend that answers every request with `200 ok` (a 2-byte
/// body) and keeps each connection until the peer closes it, so nginx can
/// pool it. It accepts at most `connections` connections, each served on a
/// thread of its own.
pub fn keepalive_backend(connections: usize) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for _ in 0..connections {
            let Ok((s, _)) = l.accept() else { return };
            std::thread::spawn(move || answer_ok_until_closed(s));
        }
    });
    addr
}

/// A loopback backend that answers every request with `200 ok` and closes
/// a connection that has been idle for `idle`: a server with a known idle
/// timeout, for the tests that measure it. It accepts at most
/// `connections` connections.
pub fn idle_closing_backend(idle: Duration, connections: usize) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for _ in 0..connections {
            let Ok((s, _)) = l.accept() else { return };
            std::thread::spawn(move || answer_ok_until_idle(s, idle));
        }
    });
    addr
}

/// Writes `dir`/nginx.conf: one upstream pool of `backend` (keepalive 8)
/// behind a server on a free loopback port, with the proxy settings reuse
/// needs; its path.
pub fn write_pooled_proxy_config(dir: &Path, backend: SocketAddr) -> PathBuf {
    let conf = dir.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "events {{}}\nhttp {{\n    upstream app {{\n        server {backend};\n        keepalive 8;\n    }}\n    server {{\n        listen 127.0.0.1:{};\n        location / {{\n            proxy_http_version 1.1;\n            proxy_set_header Connection \"\";\n            proxy_pass http://app;\n        }}\n    }}\n}}\n",
            free_port()
        ),
    )
    .unwrap();
    conf
}

/// A loopback port nothing listens on (connect() is refused).
pub fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// `n` HTTP/1.0 GETs of `path` on 127.0.0.1:`port`, each on a client
/// connection of its own; the status codes.
pub fn get_statuses(port: u16, path: &str, n: usize) -> Vec<u16> {
    (0..n)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.write_all(format!("GET {path} HTTP/1.0\r\nHost: t\r\n\r\n").as_bytes())
                .unwrap();
            let mut resp = String::new();
            s.read_to_string(&mut resp).unwrap();
            resp.split_whitespace().nth(1).unwrap().parse().unwrap()
        })
        .collect()
}

/// Calls `check` every `every` until it gives a value, for at most `limit`
/// (with one last call once the limit has passed); `None` if it never did.
pub fn wait_until<T>(
    limit: Duration,
    every: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(every);
    }
}

/// [`wait_until`] for a condition: whether it came to hold within `limit`.
pub fn wait_for(limit: Duration, every: Duration, mut holds: impl FnMut() -> bool) -> bool {
    wait_until(limit, every, || holds().then_some(())).is_some()
}

/// A child process killed (and reaped) when dropped, however the test ends.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A server started in a process group of its own, so that the processes
/// it forks (PHP-FPM's pool children) end with it: on drop it is asked to
/// stop (SIGTERM, which a PHP-FPM master passes on to its children), and
/// after 5 s the whole group is killed. Killing only the master would
/// leave the children running, adopted by init.
pub struct GroupOnDrop(Child);

impl GroupOnDrop {
    pub fn spawn(cmd: &mut Command) -> std::io::Result<GroupOnDrop> {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0).spawn().map(GroupOnDrop)
    }
}

impl Drop for GroupOnDrop {
    fn drop(&mut self) {
        let pid = self.0.id() as i32;
        // SAFETY: signals to our own child and to the group it leads.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let exited = wait_for(Duration::from_secs(5), Duration::from_millis(20), || {
            matches!(self.0.try_wait(), Ok(Some(_)))
        });
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
        if !exited {
            let _ = self.0.wait();
        }
    }
}

/// A running `upkeep watch --listen` (killed when dropped), the address of
/// its Prometheus page, and the lines of its stderr after the one that
/// named that address.
pub struct Exporter {
    pub watch: KillOnDrop,
    pub addr: String,
    pub stderr: Receiver<String>,
}

/// `upkeep watch` on the running nginx of `conf` (master `pid`): JSON lines
/// every `interval` to `stdout`, the Prometheus page on a free loopback
/// port.
pub fn start_exporter(conf: &Path, pid: i32, interval: &str, stdout: Stdio) -> Exporter {
    let child = Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(["watch", "--config"])
        .arg(conf)
        .args(["--pid", &pid.to_string()])
        .args(["--interval", interval, "--format", "json"])
        .args(["--listen", "127.0.0.1:0"])
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start upkeep watch");
    let mut watch = KillOnDrop(child);
    let (addr, stderr) = serving_metrics(&mut watch.0);
    Exporter {
        watch,
        addr,
        stderr,
    }
}

/// The lines of a started `upkeep watch --listen`'s stderr, once its first
/// one has named where the Prometheus page is; that address too.
pub fn serving_metrics(watch: &mut Child) -> (String, Receiver<String>) {
    let stderr = lines_of(watch.stderr.take().unwrap());
    let addr = metrics_address(&next_line(&stderr, "metrics address"));
    (addr, stderr)
}

/// Lines of a child's stream, as they come.
pub fn lines_of(stream: impl Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

pub fn next_line(rx: &std::sync::mpsc::Receiver<String>, what: &str) -> String {
    rx.recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("no {what} within 10 s"))
}

/// The address in `upkeep watch --listen`'s "serving … on http://ADDR/metrics".
pub fn metrics_address(serving: &str) -> String {
    serving
        .strip_prefix("serving Prometheus metrics on http://")
        .and_then(|r| r.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("{serving}"))
        .to_string()
}

/// GET /metrics on `addr`; the body.
pub fn scrape(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 200 OK"), "{raw}");
    raw.split_once("\r\n\r\n").unwrap().1.to_string()
}

/// Scrapes `addr` every 100 ms until the page satisfies `ok`, for at most
/// `limit`; the last page.
pub fn scrape_until(addr: &str, limit: Duration, ok: impl Fn(&str) -> bool) -> String {
    let mut page = String::new();
    wait_for(limit, Duration::from_millis(100), || {
        page = scrape(addr);
        ok(&page)
    });
    page
}

/// The value of the sample line that starts with `sample` (name and
/// labels exactly as written), if any.
pub fn sample(page: &str, sample: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

/// `program` when it is installed. Missing: skipped loudly, except in CI
/// (`CI` set), whose setup installs it, where that is a failure.
pub fn installed(program: &str, package: &str) -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{program} not installed in CI (.ci/setup installs Debian's {package})"
        );
        eprintln!("SKIPPED: no {program} (install Debian's {package})");
    }
    found
}

/// Whether the tests run as root (mount namespaces, other users, nginx
/// masters that switch users need it).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A loopback port free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nginx in a private prefix, stopped through its own pid file on drop.
pub struct Nginx {
    prefix: PathBuf,
}

impl Nginx {
    /// Starts nginx on `prefix`/nginx.conf, which sets its own `pid`.
    pub fn start(prefix: &Path) -> Nginx {
        std::fs::create_dir_all(prefix.join("logs")).unwrap();
        let out = Command::new("/usr/sbin/nginx")
            .arg("-p")
            .arg(prefix)
            .arg("-c")
            .arg(prefix.join("nginx.conf"))
            .output()
            .expect("start nginx");
        assert!(out.status.success(), "nginx: {}", text(&out.stderr));
        Nginx {
            prefix: prefix.to_path_buf(),
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("/usr/sbin/nginx")
            .arg("-p")
            .arg(&self.prefix)
            .arg("-c")
            .arg(self.prefix.join("nginx.conf"))
            .args(["-s", "stop"])
            .output();
        // Wait for the pid file to go so the next start can bind.
        wait_for(Duration::from_secs(10), Duration::from_millis(50), || {
            !self.prefix.join("nginx.pid").exists()
        });
    }
}
