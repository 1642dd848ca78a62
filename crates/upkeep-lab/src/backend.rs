//! Emulated backends: small HTTP/1.x servers whose keep-alive behaviour is set
//! by a [`BackendProfile`], each counting the TCP connections it accepts. The
//! accept counter is the lab's ground truth for "upstream connections opened".

use crate::cancel::Cancel;
use crate::http::{HttpConn, ReadError};
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How an emulated backend treats connections.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BackendProfile {
    /// Where the profile came from: a server name from backends.tsv, a
    /// scenario, or "custom".
    pub name: String,
    /// Close a connection that stays idle (no new request) this long. `None`:
    /// keep idle connections until the phase ends.
    #[serde(serialize_with = "ser_opt_ms")]
    pub idle_timeout: Option<Duration>,
    /// Close a connection after this many responses.
    pub max_requests: Option<u64>,
    /// With `max_requests`: say `Connection: close` on the last response (as
    /// Tomcat, httpd, Puma do) instead of closing silently after it.
    pub announce_close: bool,
    /// Time between reading a request and answering it.
    #[serde(serialize_with = "ser_ms")]
    pub latency: Duration,
    /// Answer `HTTP/1.0` without keep-alive and close after every response.
    pub http10_only: bool,
    /// Answer `Connection: close` on every response and close (e.g. Unicorn,
    /// gunicorn's default sync worker).
    pub always_close: bool,
}

impl BackendProfile {
    /// An HTTP/1.1 keep-alive server with the given idle timeout and no other limit.
    pub fn keepalive(name: &str, idle_timeout: Option<Duration>) -> BackendProfile {
        BackendProfile {
            name: name.to_string(),
            idle_timeout,
            max_requests: None,
            announce_close: true,
            latency: Duration::ZERO,
            http10_only: false,
            always_close: false,
        }
    }

    /// One line for tables: "idle 1s, max 100 requests (silent), latency 5ms".
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.http10_only {
            parts.push("HTTP/1.0 only".to_string());
        }
        if self.always_close {
            parts.push("Connection: close always".to_string());
        }
        match self.idle_timeout {
            Some(d) => parts.push(format!("idle {}", crate::duration::format(d))),
            None => parts.push("no idle timeout".to_string()),
        }
        if let Some(n) = self.max_requests {
            let how = if self.announce_close {
                "announced"
            } else {
                "silent"
            };
            parts.push(format!("max {n} requests/connection ({how})"));
        }
        if !self.latency.is_zero() {
            parts.push(format!("latency {}", crate::duration::format(self.latency)));
        }
        format!("{}: {}", self.name, parts.join(", "))
    }
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

fn ser_opt_ms<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&(d.as_millis() as u64)),
        None => s.serialize_none(),
    }
}

/// What a backend saw during a phase.
#[derive(Default, Debug)]
pub struct BackendCounters {
    pub accepted: AtomicU64,
    pub requests: AtomicU64,
    pub idle_closes: AtomicU64,
    pub cap_closes: AtomicU64,
    /// When each connection was accepted, for the time series.
    pub accept_times: Mutex<Vec<std::time::Instant>>,
}

/// A running emulated backend.
pub struct Backend {
    pub addr: SocketAddr,
    pub profile: BackendProfile,
    pub counters: Arc<BackendCounters>,
}

/// How long a backend waits for the rest of a request that has started.
const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle limit for profiles without an idle timeout, so nothing lingers forever.
const UNBOUNDED_IDLE: Duration = Duration::from_secs(3600);

impl Backend {
    /// Binds `bind` and serves until `stop` is cancelled. Tasks go into `tasks`.
    pub async fn start(
        bind: SocketAddr,
        profile: BackendProfile,
        stop: Cancel,
        tasks: &mut JoinSet<()>,
    ) -> std::io::Result<Backend> {
        let listener = TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let counters = Arc::new(BackendCounters::default());
        let (c, p) = (counters.clone(), profile.clone());
        tasks.spawn(async move { accept_loop(listener, p, c, stop).await });
        Ok(Backend {
            addr,
            profile,
            counters,
        })
    }
}

async fn accept_loop(
    listener: TcpListener,
    profile: BackendProfile,
    counters: Arc<BackendCounters>,
    stop: Cancel,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Out of descriptors or similar: do not spin on it.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                };
                counters.accepted.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut times) = counters.accept_times.lock() {
                    times.push(std::time::Instant::now());
                }
                let _ = stream.set_nodelay(true);
                let (p, c) = (profile.clone(), counters.clone());
                conns.spawn(serve_connection(HttpConn::new(stream), p, c));
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

async fn serve_connection(
    mut conn: HttpConn,
    profile: BackendProfile,
    counters: Arc<BackendCounters>,
) {
    let mut served: u64 = 0;
    loop {
        // Between requests only the idle timeout applies; once bytes of the
        // next request are buffered the read goes on with the request timeout.
        let idle = profile.idle_timeout.unwrap_or(UNBOUNDED_IDLE);
        let head = match conn.read_head(Instant::now() + idle).await {
            Ok(head) => head,
            Err(ReadError::Timeout) if profile.idle_timeout.is_some() => {
                counters.idle_closes.fetch_add(1, Ordering::Relaxed);
                return; // drop = FIN, like a server's idle timer firing
            }
            Err(_) => return,
        };
        let body_deadline = Instant::now() + REQUEST_READ_TIMEOUT;
        let Ok(body) = conn.read_request_body(&head, body_deadline).await else {
            return;
        };
        served += 1;
        counters.requests.fetch_add(1, Ordering::Relaxed);
        if !profile.latency.is_zero() {
            tokio::time::sleep(profile.latency).await;
        }

        let request_is_http10 = head.third.trim() == "HTTP/1.0";
        let client_wants_close = if request_is_http10 {
            !head.connection_has("keep-alive")
        } else {
            head.connection_has("close")
        };
        let cap_reached = profile.max_requests.is_some_and(|max| served >= max);
        let close_after =
            client_wants_close || profile.always_close || profile.http10_only || cap_reached;
        let announce = client_wants_close
            || profile.always_close
            || profile.http10_only
            || (cap_reached && profile.announce_close);

        let payload = format!(
            "ok {} request {served} on this connection, {} body bytes\n",
            head.first,
            body.len()
        );
        let version = if profile.http10_only || request_is_http10 {
            "HTTP/1.0"
        } else {
            "HTTP/1.1"
        };
        let mut response = format!(
            "{version} 200 OK\r\nServer: upkeep-lab\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n",
            payload.len()
        );
        if announce && version == "HTTP/1.1" {
            response.push_str("Connection: close\r\n");
        } else if !close_after && version == "HTTP/1.0" {
            response.push_str("Connection: keep-alive\r\n");
        }
        response.push_str("\r\n");
        response.push_str(&payload);
        if conn
            .write_all(response.as_bytes(), Instant::now() + REQUEST_READ_TIMEOUT)
            .await
            .is_err()
        {
            return;
        }
        if close_after {
            if cap_reached && !client_wants_close {
                counters.cap_closes.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{rt, start_backend};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// Sends one request and returns the raw response head and whether the
    /// backend closed the connection right after it.
    async fn exchange(c: &mut TcpStream, request: &str) -> (String, bool) {
        c.write_all(request.as_bytes()).await.unwrap();
        let mut conn = HttpConn::new(c.try_clone_for_test());
        let deadline = Instant::now() + Duration::from_secs(5);
        let head = conn.read_head(deadline).await.unwrap();
        conn.read_response_body("GET", &head, deadline)
            .await
            .unwrap();
        let closed = matches!(
            tokio::time::timeout(Duration::from_millis(100), c.read(&mut [0u8; 1])).await,
            Ok(Ok(0))
        );
        let mut text = format!("{} {} {}", head.first, head.second, head.third);
        for (n, v) in &head.headers {
            text.push_str(&format!("\n{n}: {v}"));
        }
        (text, closed)
    }

    trait CloneForTest {
        fn try_clone_for_test(&self) -> TcpStream;
    }

    impl CloneForTest for TcpStream {
        fn try_clone_for_test(&self) -> TcpStream {
            let std = socket2::SockRef::from(self).try_clone().unwrap();
            let std: std::net::TcpStream = std.into();
            std.set_nonblocking(true).unwrap();
            TcpStream::from_std(std).unwrap()
        }
    }

    const GET: &str = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

    #[test]
    fn request_cap_closes_with_or_without_saying_so() {
        rt().block_on(async {
            for announce in [true, false] {
                let profile = BackendProfile {
                    max_requests: Some(2),
                    announce_close: announce,
                    ..BackendProfile::keepalive("cap", None)
                };
                let (b, stop, _tasks) = start_backend(profile).await;
                let mut c = TcpStream::connect(b.addr).await.unwrap();
                let (first, closed) = exchange(&mut c, GET).await;
                assert!(!first.contains("Connection: close") && !closed, "{first}");
                let (second, closed) = exchange(&mut c, GET).await;
                assert_eq!(second.contains("Connection: close"), announce, "{second}");
                assert!(closed, "closed after the cap");
                assert_eq!(b.counters.accepted.load(Ordering::Relaxed), 1);
                assert_eq!(b.counters.cap_closes.load(Ordering::Relaxed), 1);
                stop.cancel();
            }
        });
    }

    #[test]
    fn idle_timeout_closes_an_idle_connection() {
        rt().block_on(async {
            let profile = BackendProfile::keepalive("idle", Some(Duration::from_millis(200)));
            let (b, stop, _tasks) = start_backend(profile).await;
            let mut c = TcpStream::connect(b.addr).await.unwrap();
            let (_, closed) = exchange(&mut c, GET).await;
            assert!(!closed);
            let started = Instant::now();
            let n = c.read(&mut [0u8; 1]).await.unwrap();
            assert_eq!(n, 0, "FIN after the idle timeout");
            assert!(started.elapsed() >= Duration::from_millis(90));
            assert_eq!(b.counters.idle_closes.load(Ordering::Relaxed), 1);
            stop.cancel();
        });
    }

    #[test]
    fn http10_only_and_close_always_close_after_every_response() {
        rt().block_on(async {
            let http10 = BackendProfile {
                http10_only: true,
                ..BackendProfile::keepalive("1.0", None)
            };
            let (b, stop, _tasks) = start_backend(http10).await;
            let mut c = TcpStream::connect(b.addr).await.unwrap();
            let (head, closed) = exchange(&mut c, GET).await;
            assert!(head.starts_with("HTTP/1.0 200"), "{head}");
            assert!(closed);
            stop.cancel();

            let close = BackendProfile {
                always_close: true,
                ..BackendProfile::keepalive("close", None)
            };
            let (b, stop, _tasks) = start_backend(close).await;
            let mut c = TcpStream::connect(b.addr).await.unwrap();
            let (head, closed) = exchange(&mut c, GET).await;
            assert!(
                head.starts_with("HTTP/1.1 200") && head.contains("Connection: close"),
                "{head}"
            );
            assert!(closed);
            stop.cancel();
        });
    }

    #[test]
    fn honours_the_request_s_connection_header_and_reads_bodies() {
        rt().block_on(async {
            let (b, stop, _tasks) = start_backend(BackendProfile::keepalive("k", None)).await;
            let mut c = TcpStream::connect(b.addr).await.unwrap();
            // HTTP/1.0 without keep-alive, as nginx sends by default: close.
            let (head, closed) =
                exchange(&mut c, "POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc").await;
            assert!(head.starts_with("HTTP/1.0 200") && closed, "{head}");
            let mut c = TcpStream::connect(b.addr).await.unwrap();
            let chunked =
                "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
            let (head, closed) = exchange(&mut c, chunked).await;
            assert!(!closed, "{head}");
            let (head, closed) =
                exchange(&mut c, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n").await;
            assert!(head.contains("Connection: close") && closed, "{head}");
            assert_eq!(b.counters.accepted.load(Ordering::Relaxed), 2);
            assert_eq!(b.counters.requests.load(Ordering::Relaxed), 3);
            stop.cancel();
        });
    }
}
