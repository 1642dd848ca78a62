//! What the tests that run configs on a real nginx share: a recording
//! HTTP backend and a client, a deterministic generator, and upkeep's
//! `check` and `fix` (the same engine as `upkeep fix --unsafe-fixes`)
//! applied to configs written to disk.

// Each test crate uses its own part of this module.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use upkeep_config::{ConfigSet, FsLoader, LoadError, LoadOptions};
use upkeep_fix::{fix, FixOptions, Overlay, Round};
use upkeep_rules::{check, CheckOptions, CheckReport, NginxVersion, VersionSource};

use crate::common::Layered;

/// (backend connection number, path, value of the Connection header).
pub type Seen = Arc<Mutex<Vec<(usize, String, Option<String>)>>>;

pub struct Backend {
    pub port: u16,
    pub seen: Seen,
    stop: Arc<AtomicBool>,
}

impl Backend {
    /// An HTTP/1.1 backend that keeps connections open unless asked to close,
    /// recording every request. Runs at most 60 s.
    pub fn start() -> Backend {
        Backend::start_with(false)
    }

    /// With `close_second`, the backend closes every connection when the
    /// second request arrives on it, without answering: what a backend that
    /// closed an idle connection just as nginx reused it looks like
    /// (behaviors.md §a, "close2fin").
    pub fn start_with(close_second: bool) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen: Seen = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            let conns = AtomicUsize::new(0);
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stop2.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let id = conns.fetch_add(1, Ordering::Relaxed);
                        let seen = seen2.clone();
                        std::thread::spawn(move || serve(stream, id, seen, close_second));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Backend { port, seen, stop }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(mut stream: TcpStream, id: usize, seen: Seen, close_second: bool) {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    for n in 0..100 {
        // One request head at a time (GET, no body).
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end);
        let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
        let http_1_0 = head.split_whitespace().nth(2) == Some("HTTP/1.0");
        let connection = head
            .lines()
            .find_map(|l| {
                l.split_once(':')
                    .filter(|(k, _)| k.eq_ignore_ascii_case("connection"))
            })
            .map(|(_, v)| v.trim().to_ascii_lowercase());
        // As an HTTP/1.1 server must: an HTTP/1.0 request keeps its
        // connection only when it asks to.
        let close = connection.as_deref() == Some("close")
            || (http_1_0 && connection.as_deref() != Some("keep-alive"));
        seen.lock().unwrap().push((id, path, connection));
        if close_second && n == 1 {
            return; // FIN instead of a response
        }
        let reply: &[u8] = if close {
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
        } else {
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        };
        if stream.write_all(reply).is_err() || close {
            return;
        }
    }
}

/// One `GET` with `Connection: close`; the whole answer.
pub fn get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// A configuration level the generated configs place directives at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Http,
    Server,
    /// `location /p/`.
    Outer,
    /// `location /p/q/` nested in the outer one, or `location @app`
    /// (only in configs of those shapes).
    Inner,
}

/// A small deterministic generator (xorshift64*), so that every run
/// checks the same configs and a failure names a reproducible seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// Runs nginx with `conf`, sends two requests to `path`, and returns what the
/// backend saw for them.
pub fn observe(
    bin: &upkeep_nginx::NginxBinary,
    conf_text: &str,
    backend: &Backend,
    port: u16,
    path: &str,
) -> Vec<(usize, Option<String>)> {
    let prefix = upkeep_nginx::Prefix::new().unwrap();
    let conf = prefix.write("conf/nginx.conf", conf_text).unwrap();
    let mut nginx = upkeep_nginx::NginxInstance::start(bin, &prefix, &conf).unwrap();
    backend.seen.lock().unwrap().clear();
    for _ in 0..2 {
        let reply = get(port, path);
        assert!(reply.starts_with("HTTP/1.1 200"), "nginx answered: {reply}");
    }
    nginx.stop().unwrap();
    backend
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|(id, _, c)| (*id, c.clone()))
        .collect()
}

/// Runs nginx with `conf_text` and returns the status lines of two
/// requests to `path`.
pub fn observe_statuses(
    bin: &upkeep_nginx::NginxBinary,
    conf_text: &str,
    port: u16,
    path: &str,
) -> Vec<String> {
    let prefix = upkeep_nginx::Prefix::new().unwrap();
    let conf = prefix.write("conf/nginx.conf", conf_text).unwrap();
    let mut nginx = upkeep_nginx::NginxInstance::start(bin, &prefix, &conf).unwrap();
    let out = (0..2)
        .map(|_| get(port, path).lines().next().unwrap_or("").to_string())
        .collect();
    nginx.stop().unwrap();
    out
}

/// A generated case: the main config and the text of the snippet it
/// includes, if it includes one.
#[derive(Clone, PartialEq, Eq)]
pub struct Files {
    pub main: String,
    pub snippet: Option<String>,
}

impl std::fmt::Display for Files {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.main)?;
        if let Some(snippet) = &self.snippet {
            write!(f, "--- the included snippet:\n{snippet}")?;
        }
        Ok(())
    }
}

impl Files {
    /// A config of one file.
    pub fn one(main: &str) -> Files {
        Files {
            main: main.to_string(),
            snippet: None,
        }
    }
}

fn options(version: NginxVersion) -> CheckOptions {
    CheckOptions {
        nginx_version: Some(version),
        version_source: VersionSource::Detected,
        ..Default::default()
    }
}

/// Writes `files`, main as check/nginx.conf in `scratch` and the snippet at
/// `snippet_path` (the main config names it by that absolute path, so that
/// nginx reads the same file), and returns the main file's path.
fn write(scratch: &upkeep_nginx::Prefix, files: &Files, snippet_path: &Path) -> String {
    if let Some(snippet) = &files.snippet {
        std::fs::write(snippet_path, snippet).unwrap();
    }
    let main = scratch.write("check/nginx.conf", &files.main).unwrap();
    main.to_string_lossy().into_owned()
}

/// upkeep's findings on `files`.
pub fn check_files(
    scratch: &upkeep_nginx::Prefix,
    files: &Files,
    snippet_path: &Path,
    version: NginxVersion,
) -> CheckReport {
    let main = write(scratch, files, snippet_path);
    let set = ConfigSet::load(&main, &FsLoader, &LoadOptions::default()).unwrap();
    check(&set, &options(version))
}

/// upkeep's findings on a one-file config.
pub fn check_text(
    scratch: &upkeep_nginx::Prefix,
    text: &str,
    version: NginxVersion,
) -> CheckReport {
    check_files(
        scratch,
        &Files::one(text),
        &scratch.path().join("unused"),
        version,
    )
}

/// `files` after upkeep's fix engine has run on them with unsafe fixes
/// allowed, as `upkeep fix --unsafe-fixes` does (only `rules`' fixes when
/// given).
pub fn fix_files(
    scratch: &upkeep_nginx::Prefix,
    files: &Files,
    snippet_path: &Path,
    version: NginxVersion,
    rules: Option<&[&str]>,
) -> Files {
    let main = write(scratch, files, snippet_path);
    let opts = options(version);
    let mut checker = |overlay: &Overlay| -> Result<Round<ConfigSet>, LoadError> {
        let layered = Layered {
            top: overlay,
            base: &FsLoader,
        };
        let set = ConfigSet::load(&main, &layered, &LoadOptions::default())?;
        let findings = check(&set, &opts).findings;
        Ok(Round {
            sources: set,
            findings,
        })
    };
    let fix_options = FixOptions {
        rules: rules.map(|r| r.iter().map(|s| s.to_string()).collect()),
        unsafe_fixes: true,
        ..Default::default()
    };
    let run = fix(&mut checker, &fix_options).expect("the config loads");
    let text_of = |path: &str, old: &str| {
        run.overlay
            .get(path)
            .map(|t| String::from_utf8(t.to_vec()).unwrap())
            .unwrap_or_else(|| old.to_string())
    };
    Files {
        main: text_of(&main, &files.main),
        snippet: files
            .snippet
            .as_ref()
            .map(|s| text_of(&snippet_path.to_string_lossy(), s)),
    }
}

/// A one-file config after upkeep's fix engine (see [`fix_files`]).
pub fn fix_text(
    scratch: &upkeep_nginx::Prefix,
    text: &str,
    version: NginxVersion,
    rules: Option<&[&str]>,
) -> String {
    let unused = scratch.path().join("unused");
    fix_files(scratch, &Files::one(text), &unused, version, rules).main
}

/// How many of `n` requests to `path` nginx answers on one client
/// connection before it closes it (HTTP/1.1, keep-alive asked for).
pub fn answered_on_one_connection(port: u16, path: &str, n: usize) -> usize {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answered = 0;
    for _ in 0..n {
        if write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").is_err() {
            break;
        }
        // The head, then the body by its Content-Length.
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                _ => return answered,
            }
        }
        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        if stream.read_exact(&mut body).is_err() {
            return answered;
        }
        answered += 1;
        if head.lines().any(|l| l.trim() == "connection: close") {
            break;
        }
    }
    answered
}
