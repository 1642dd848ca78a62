//! A real nginx in a private prefix, a small backend, and bounded traffic.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use upkeep_config::{ConfigSet, LoadOptions};
use upkeep_nginx::{free_port, NginxBinary, NginxInstance, Prefix};

pub fn nginx() -> Option<NginxBinary> {
    let found = NginxBinary::find(None);
    if found.is_none() {
        eprintln!("SKIPPED: no nginx binary found (install Debian's nginx)");
    }
    found
}

/// What the backend does on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Answers every request (HTTP/1.1, Content-Length) and leaves closing
    /// to the client, so a connection nginx does not keep ends in TIME_WAIT
    /// at nginx's end, as on a host where nginx closes first.
    Serve,
    /// Answers the first request of a connection and closes it when the
    /// second arrives, without answering: a backend that dropped the
    /// connection just as nginx reused it (facts/behaviors.md §a,
    /// `close2fin`).
    CloseOnSecond,
}

pub struct Backend {
    pub addr: SocketAddr,
    connections: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Backend {
    pub fn start(mode: Mode) -> Backend {
        let listener = listen_on_a_port_without_time_wait();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, flag) = (connections.clone(), stop.clone());
        let accept = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        count.fetch_add(1, Ordering::Relaxed);
                        std::thread::spawn(move || serve(stream, mode));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Backend {
            addr,
            connections,
            stop,
            accept: Some(accept),
        }
    }

    /// Connections accepted so far: the ground truth for "new upstream
    /// connections".
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

fn serve(stream: TcpStream, mode: Mode) {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    for n in 1u32.. {
        let Some(body_len) = read_head(&mut reader) else {
            return;
        };
        let mut body = vec![0u8; body_len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if mode == Mode::CloseOnSecond && n == 2 {
            return; // FIN without an answer
        }
        if writer
            .write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok",
            )
            .is_err()
        {
            return;
        }
    }
}

/// Reads a request head; the Content-Length of its body. `None` at EOF.
fn read_head(r: &mut impl BufRead) -> Option<usize> {
    let mut len = 0;
    let mut first = true;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" || line == "\n" {
            if first {
                continue;
            }
            return Some(len);
        }
        first = false;
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
}

/// A listener on 127.0.0.1 at a port the kernel picks, bound without
/// `SO_REUSEADDR` (which `TcpListener::bind` sets): the kernel then skips
/// ports that a TIME_WAIT socket of an earlier test still holds. With the
/// option it may hand out such a port, and that old socket would be counted
/// as one of this backend's when the tests count its TIME_WAIT sockets.
fn listen_on_a_port_without_time_wait() -> TcpListener {
    use std::os::fd::FromRawFd;
    // SAFETY: plain socket calls on a descriptor this function owns until
    // it hands it to the TcpListener (closed on every error path).
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be(),
            },
            sin_zero: [0; 8],
        };
        let bound = libc::bind(
            fd,
            std::ptr::addr_of!(addr).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        ) == 0
            && libc::listen(fd, 128) == 0;
        if !bound {
            let e = std::io::Error::last_os_error();
            libc::close(fd);
            panic!("listening on 127.0.0.1: {e}");
        }
        TcpListener::from_raw_fd(fd)
    }
}

/// nginx running a config in its own prefix.
pub struct Nginx {
    pub prefix: Prefix,
    pub port: u16,
    pub conf: PathBuf,
    pub instance: NginxInstance,
    pub binary: NginxBinary,
}

impl Nginx {
    /// `http_body` goes inside `http {}`; `{port}` in it is replaced by the
    /// listening port, `{prefix}` by the prefix directory.
    pub fn start(binary: NginxBinary, main: &str, http_body: &str) -> Nginx {
        let prefix = Prefix::new().unwrap();
        let port = free_port().unwrap();
        let body = http_body
            .replace("{port}", &port.to_string())
            .replace("{prefix}", &prefix.path().display().to_string());
        let text = format!(
            "{main}\nhttp {{\n    {}\n{body}\n}}\n",
            prefix.http_temp_paths()
        );
        let conf = prefix.write("nginx.conf", &text).unwrap();
        let instance = NginxInstance::start(&binary, &prefix, &conf).unwrap();
        Nginx {
            prefix,
            port,
            conf,
            instance,
            binary,
        }
    }

    pub fn config(&self) -> ConfigSet {
        ConfigSet::load_path(&self.conf.display().to_string(), &LoadOptions::default()).unwrap()
    }
}

/// `n` GETs, each on a new client connection (HTTP/1.0: nginx closes).
/// Returns how many got a 200.
pub fn get_each_on_new_connection(port: u16, n: usize) -> usize {
    let mut ok = 0;
    for _ in 0..n {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
            continue;
        };
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        if s.write_all(b"GET /x HTTP/1.0\r\nHost: t\r\n\r\n").is_err() {
            continue;
        }
        let mut resp = String::new();
        let _ = s.read_to_string(&mut resp);
        if resp.starts_with("HTTP/1.1 200") {
            ok += 1;
        }
    }
    ok
}

/// `per_connection` requests on each of `connections` keep-alive client
/// connections, one after the other. Returns the status codes.
pub fn requests_on_kept_connections(
    port: u16,
    connections: usize,
    per_connection: usize,
    method: &str,
) -> Vec<u16> {
    let mut statuses = Vec::new();
    for _ in 0..connections {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut reader = BufReader::new(s.try_clone().unwrap());
        let mut writer = s;
        for _ in 0..per_connection {
            let body = if method == "POST" { "a=1" } else { "" };
            let req = format!(
                "{method} /x HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            if writer.write_all(req.as_bytes()).is_err() {
                break;
            }
            match read_response(&mut reader) {
                Some(status) => statuses.push(status),
                None => break,
            }
        }
    }
    statuses
}

fn read_response(r: &mut impl BufRead) -> Option<u16> {
    let mut status_line = String::new();
    r.read_line(&mut status_line).ok()?;
    let status: u16 = status_line.split_whitespace().nth(1)?.parse().ok()?;
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    Some(status)
}

/// Waits (up to 5 s) until a worker of `master` satisfies `ready`; nginx
/// writes its pid file before it forks the workers, and a new worker sets
/// its limits a moment after the fork.
pub fn wait_for_worker(master: i32, ready: impl Fn(i32) -> bool) -> bool {
    use upkeep_host::process::{children, cmdline, role_of_cmdline, Role};
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        let found = children(master)
            .into_iter()
            .any(|c| cmdline(c).is_ok_and(|l| role_of_cmdline(&l) == Role::Worker) && ready(c));
        if found {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
