//! A small HTTP/1.1 server for the Prometheus page: `GET /metrics` returns
//! the latest exposition, everything else a short 404 or 405. Every
//! response closes its connection.
//!
//! Slow or idle clients must never keep a scrape out. So:
//!
//! * one thread runs a single-threaded tokio event loop: an idle or
//!   dripping connection costs a socket and a small buffer, not a thread,
//!   so the connection cap ([`Limits::max_connections`]) can be generous;
//! * the whole request head must arrive within [`Limits::head_timeout`]
//!   from the accept (a deadline for the head, not a timeout per read, so
//!   a byte every few seconds does not extend it), and the answer must be
//!   written within [`Limits::write_timeout`];
//! * at the cap, the connection that has waited longest for its head is
//!   closed to make room for the new one; only when every connection is
//!   already being answered is the new one closed unanswered.
//!
//! A scrape therefore gets in as long as it sends its head faster than the
//! others open new connections, whatever they hold open.
//!
//! Why not a thread per connection: each stalled client would hold a
//! thread, and a cap low enough to bound threads is low enough for a few
//! idle clients to fill. Why not hyper: the server answers one page on one
//! path, one request per connection, no body; a head reader with a deadline
//! is all of HTTP it needs, and tokio is already part of the workspace.

use std::collections::BTreeMap;
use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

use super::prometheus::CONTENT_TYPE;

/// Largest request head read.
const MAX_HEAD: usize = 8 * 1024;

/// How long clients may take, and how many may be connected at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Open connections at once (those reading their head and those being
    /// answered).
    pub max_connections: usize,
    /// From the accept to the blank line that ends the request head.
    pub head_timeout: Duration,
    /// To write the answer.
    pub write_timeout: Duration,
}

impl Default for Limits {
    /// 256 connections (an idle one costs a file descriptor and a few
    /// hundred bytes; watch is meant to be scraped by a handful); 5 s for a
    /// head, less than Prometheus' default scrape timeout of 10 s; 10 s to
    /// write the answer.
    fn default() -> Limits {
        Limits {
            max_connections: 256,
            head_timeout: Duration::from_secs(5),
            write_timeout: Duration::from_secs(10),
        }
    }
}

/// The page served; the watch replaces it after every interval.
pub type Page = Arc<Mutex<String>>;

pub struct MetricsServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Listens on `addr` and serves `page` until dropped.
    pub fn start(addr: SocketAddr, page: Page) -> io::Result<MetricsServer> {
        MetricsServer::start_with(addr, page, Limits::default())
    }

    pub fn start_with(addr: SocketAddr, page: Page, limits: Limits) -> io::Result<MetricsServer> {
        let listener = StdListener::bind(addr)?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let Ok(listener) = TcpListener::from_std(listener) else {
                        return;
                    };
                    tokio::select! {
                        _ = accept_loop(listener, page, limits) => {}
                        _ = stopped => {}
                    }
                });
                // Dropping the runtime cancels the connections still open.
            })?;
        Ok(MetricsServer {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The open connections: how many, and those still waiting for their
/// head, oldest first (the ones to close at the cap).
#[derive(Default)]
struct Connections {
    open: AtomicUsize,
    waiting_for_head: Mutex<BTreeMap<u64, AbortHandle>>,
}

/// Counts a connection out when its task ends, however it ends (answered,
/// timed out, or aborted to make room).
struct Held {
    id: u64,
    connections: Arc<Connections>,
}

impl Held {
    fn head_read(&self) {
        if let Ok(mut w) = self.connections.waiting_for_head.lock() {
            w.remove(&self.id);
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.head_read();
        self.connections.open.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn accept_loop(listener: TcpListener, page: Page, limits: Limits) {
    let connections = Arc::new(Connections::default());
    let mut next_id = 0u64;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of file descriptors, most likely: back off.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if connections.open.load(Ordering::Acquire) >= limits.max_connections {
            let oldest = connections
                .waiting_for_head
                .lock()
                .ok()
                .and_then(|mut w| w.pop_first());
            match oldest {
                // Its task ends at its next poll; its count goes then.
                Some((_, task)) => task.abort(),
                // Everyone is being answered: this one waits its turn
                // by reconnecting.
                None => continue,
            }
        }
        next_id += 1;
        let id = next_id;
        connections.open.fetch_add(1, Ordering::AcqRel);
        let held = Held {
            id,
            connections: connections.clone(),
        };
        // Registered before the task can run (this runtime has one
        // thread), so the task's own removal always comes after.
        let page = page.clone();
        let task = tokio::spawn(async move {
            let _ = serve(stream, &page, limits, &held).await;
            drop(held);
        });
        if let Ok(mut w) = connections.waiting_for_head.lock() {
            w.insert(id, task.abort_handle());
        }
    }
}

/// Answers one request.
async fn serve(mut stream: TcpStream, page: &Page, limits: Limits, held: &Held) -> io::Result<()> {
    let head = tokio::time::timeout(limits.head_timeout, read_head(&mut stream))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "request head too slow"))??;
    held.head_read();
    let response = respond(&head, page);
    tokio::time::timeout(limits.write_timeout, async {
        stream.write_all(response.as_bytes()).await?;
        stream.flush().await?;
        stream.shutdown().await
    })
    .await
    .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "answer not taken in time"))?
}

/// The whole response to a request head.
fn respond(head: &str, page: &Page) -> String {
    let request_line = head.lines().next().unwrap_or("");
    let mut words = request_line.split(' ');
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, content_type, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") => (
            "200 OK",
            CONTENT_TYPE,
            page.lock().map(|p| p.clone()).unwrap_or_default(),
        ),
        ("GET" | "HEAD", "/") => (
            "200 OK",
            "text/plain; charset=utf-8",
            "upkeep watch: Prometheus metrics at /metrics\n".to_string(),
        ),
        ("GET" | "HEAD", _) => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found; the metrics are at /metrics\n".to_string(),
        ),
        _ => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "only GET and HEAD\n".to_string(),
        ),
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if status.starts_with("405") {
        response.push_str("Allow: GET, HEAD\r\n");
    }
    response.push_str("\r\n");
    if method != "HEAD" {
        response.push_str(&body);
    }
    response
}

/// Reads up to the blank line that ends the request head.
async fn read_head(stream: &mut TcpStream) -> io::Result<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_HEAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request head too long",
            ));
        }
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Instant;

    fn get(addr: SocketAddr, request: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn serves_the_current_page_and_refuses_the_rest() {
        let page: Page = Arc::new(Mutex::new("first 1\n".into()));
        let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), page.clone()).unwrap();
        let addr = server.local_addr();

        let r = get(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(r.contains(&format!("Content-Type: {CONTENT_TYPE}\r\n")));
        assert!(r.ends_with("\r\n\r\nfirst 1\n"), "{r}");

        *page.lock().unwrap() = "second 2\n".into();
        let r = get(addr, "GET /metrics?x=1 HTTP/1.0\r\n\r\n");
        assert!(r.ends_with("\r\n\r\nsecond 2\n"), "{r}");
        let r = get(addr, "HEAD /metrics HTTP/1.1\r\n\r\n");
        assert!(
            r.contains("Content-Length: 9\r\n") && r.ends_with("\r\n\r\n"),
            "{r}"
        );
        assert!(get(addr, "GET /other HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
        let r = get(addr, "POST /metrics HTTP/1.1\r\n\r\n");
        assert!(
            r.starts_with("HTTP/1.1 405") && r.contains("Allow: GET, HEAD"),
            "{r}"
        );

        drop(server);
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "stopped on drop"
        );
    }

    /// Clients that send a byte now and then and never end their head.
    fn drip(
        addr: SocketAddr,
        clients: usize,
        stop: Arc<std::sync::atomic::AtomicBool>,
    ) -> JoinHandle<()> {
        let mut streams: Vec<TcpStream> = (0..clients)
            .filter_map(|_| TcpStream::connect(addr).ok())
            .collect();
        std::thread::spawn(move || {
            // Bounded: at most 30 s of dripping, a byte per client every 100 ms.
            for _ in 0..300 {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                for s in &mut streams {
                    let _ = s.write_all(b"G");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    }

    #[test]
    fn the_connection_that_waited_longest_for_its_head_makes_room() {
        let page: Page = Arc::new(Mutex::new("up 1\n".into()));
        let limits = Limits {
            max_connections: 8,
            head_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(10),
        };
        let server =
            MetricsServer::start_with("127.0.0.1:0".parse().unwrap(), page, limits).unwrap();
        let addr = server.local_addr();
        let idle: Vec<TcpStream> = (0..30).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let dripping = drip(addr, 20, stop.clone());
        // 50 clients hold connections open with a cap of 8 and a head
        // timeout of a minute: the scrape still gets in.
        let r = get(addr, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(r.ends_with("\r\n\r\nup 1\n"), "{r}");
        stop.store(true, Ordering::Relaxed);
        dripping.join().unwrap();
        // The oldest idle ones were closed to make room.
        let mut first = &idle[0];
        first
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 16];
        assert!(matches!(first.read(&mut buf), Ok(0) | Err(_)));
    }

    #[test]
    fn a_head_that_drips_in_is_cut_off_at_the_deadline() {
        let page: Page = Arc::new(Mutex::new("up 1\n".into()));
        let limits = Limits {
            head_timeout: Duration::from_millis(500),
            ..Limits::default()
        };
        let server =
            MetricsServer::start_with("127.0.0.1:0".parse().unwrap(), page, limits).unwrap();
        let mut s = TcpStream::connect(server.local_addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let start = Instant::now();
        let mut buf = [0u8; 16];
        // A byte every 100 ms would keep a per-read timeout from firing.
        let closed = loop {
            if s.write_all(b"G").is_err() {
                break true;
            }
            match s.read(&mut buf) {
                Ok(0) => break true,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => break true,
                Ok(_) => panic!("an answer to an unfinished head"),
            }
            if start.elapsed() > Duration::from_secs(20) {
                break false;
            }
        };
        assert!(closed, "still open after {:?}", start.elapsed());
    }
}
