//! Test backends and a tiny HTTP/1.1 client, all on 127.0.0.1, every wait
//! bounded.

#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What a backend does with each connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Answers every request, keeps the connection open.
    Ok,
    /// Reads the request, then resets the connection (SO_LINGER 0).
    ResetAfterRequest,
    /// Reads the request, then closes without answering (FIN).
    CloseAfterRequest,
    /// Sends the header and part of the announced body, then closes.
    CloseMidBody,
    /// Reads the request and never answers (until the test ends).
    Stall,
    /// Answers the first request of a connection; closes (FIN) when the
    /// second one arrives: the stale keep-alive race, made deterministic.
    CloseOnSecondRequest,
}

pub struct Backend {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Backend {
    pub fn start(behaviour: Behaviour) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind backend");
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut workers = Vec::new();
            while !flag.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let flag = flag.clone();
                        workers.push(std::thread::spawn(move || {
                            let _ = serve(conn, behaviour, &flag);
                        }));
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => break,
                }
            }
            for w in workers {
                let _ = w.join();
            }
        });
        Backend {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request (header and Content-Length body). `None` at EOF.
fn read_request(conn: &mut TcpStream, stop: &AtomicBool) -> io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1024];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return Ok(Some(buf));
            }
        }
        if stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        match conn.read(&mut byte) {
            Ok(0) => return Ok(None),
            Ok(n) => buf.extend_from_slice(&byte[..n]),
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut => {
            }
            Err(e) => return Err(e),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn serve(mut conn: TcpStream, behaviour: Behaviour, stop: &AtomicBool) -> io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_millis(100)))?;
    let mut served = 0;
    while read_request(&mut conn, stop)?.is_some() {
        served += 1;
        match behaviour {
            Behaviour::Ok => respond_ok(&mut conn)?,
            Behaviour::CloseOnSecondRequest if served == 1 => respond_ok(&mut conn)?,
            Behaviour::CloseOnSecondRequest | Behaviour::CloseAfterRequest => {
                conn.shutdown(Shutdown::Both)?;
                return Ok(());
            }
            Behaviour::ResetAfterRequest => {
                set_linger_zero(&conn);
                return Ok(()); // dropping the socket sends RST
            }
            Behaviour::CloseMidBody => {
                conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nContent-Type: text/plain\r\n\r\npartial")?;
                conn.flush()?;
                std::thread::sleep(Duration::from_millis(50));
                conn.shutdown(Shutdown::Both)?;
                return Ok(());
            }
            Behaviour::Stall => {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                return Ok(());
            }
        }
    }
    Ok(())
}

fn respond_ok(conn: &mut TcpStream) -> io::Result<()> {
    conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok")?;
    conn.flush()
}

fn set_linger_zero(conn: &TcpStream) {
    use std::os::unix::io::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket we own, with a correctly sized struct.
    unsafe {
        libc::setsockopt(
            conn.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// A client connection to nginx that can send several requests.
pub struct Client {
    conn: TcpStream,
}

impl Client {
    pub fn connect(port: u16) -> Client {
        let conn = TcpStream::connect(("127.0.0.1", port)).expect("connect to nginx");
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Client { conn }
    }

    /// Sends one request and returns the status (0 if the connection broke
    /// before a status line). Reads the body by Content-Length; a body cut
    /// short ends at EOF.
    pub fn request(&mut self, method: &str, path: &str, close: bool) -> u16 {
        let body = if method == "POST" { "abc" } else { "" };
        let conn_header = if close { "close" } else { "keep-alive" };
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: {conn_header}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if self.conn.write_all(req.as_bytes()).is_err() {
            return 0;
        }
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut want: Option<usize> = None;
        while Instant::now() < deadline {
            if want.is_none() {
                if let Some(end) = find(&buf, b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    want = Some(end + 4 + len);
                }
            }
            if want.is_some_and(|w| buf.len() >= w) {
                break;
            }
            match self.conn.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let text = String::from_utf8_lossy(&buf);
        text.split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }
}

/// One request on its own client connection.
pub fn request(port: u16, method: &str, path: &str) -> u16 {
    Client::connect(port).request(method, path, true)
}
