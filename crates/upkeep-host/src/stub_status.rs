//! nginx's stub_status page: fetching it and reading its counters.
//!
//! The format is exact (facts/behaviors.md §f, `ngx_http_stub_status_handler`):
//!
//! ```text
//! Active connections: 291
//! server accepts handled requests
//!  16630948 16630948 31070465
//! Reading: 6 Writing: 179 Waiting: 106
//! ```
//!
//! `accepts`, `handled` and `requests` only grow (shared by all workers,
//! kept across reloads, reset by a restart), so two samples give the
//! connections and requests of the time between them.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct StubStatus {
    /// Open client connections, idle ones included; upstream connections are
    /// not counted.
    pub active: u64,
    /// Client connections accepted since the master started.
    pub accepts: u64,
    /// … of which got a connection slot (`accepts - handled` were dropped).
    pub handled: u64,
    /// Client requests since the master started (every HTTP/1.x request,
    /// every HTTP/2 or HTTP/3 stream; not subrequests).
    pub requests: u64,
    pub reading: u64,
    pub writing: u64,
    pub waiting: u64,
}

impl StubStatus {
    /// Parses the body of a stub_status response.
    pub fn parse(body: &str) -> Result<StubStatus, String> {
        let mut lines = body.lines();
        let active = lines
            .next()
            .and_then(|l| l.strip_prefix("Active connections:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or("the first line is not \"Active connections: N\"")?;
        if lines.next().map(str::trim) != Some("server accepts handled requests") {
            return Err("the second line is not \"server accepts handled requests\"".into());
        }
        let counters = numbers(lines.next().unwrap_or(""));
        let [accepts, handled, requests] = counters[..] else {
            return Err("the third line does not hold three counters".into());
        };
        let rww = lines.next().unwrap_or("");
        let field = |name: &str| -> Option<u64> {
            let mut words = rww.split_whitespace();
            words.find(|w| *w == name)?;
            words.next()?.parse().ok()
        };
        let (Some(reading), Some(writing), Some(waiting)) =
            (field("Reading:"), field("Writing:"), field("Waiting:"))
        else {
            return Err("the fourth line is not \"Reading: N Writing: N Waiting: N\"".into());
        };
        Ok(StubStatus {
            active,
            accepts,
            handled,
            requests,
            reading,
            writing,
            waiting,
        })
    }
}

fn numbers(line: &str) -> Vec<u64> {
    line.split_whitespace()
        .map(|w| w.parse::<u64>())
        .collect::<Result<_, _>>()
        .unwrap_or_default()
}

/// An `http://host[:port]/path` URL, as far as a stub_status page needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusUrl {
    /// Host as written (what the `Host` header carries).
    pub host: String,
    pub port: u16,
    pub path: String,
    /// A `Host` header other than `host` (the `server_name` of the server
    /// that holds the location, when found in the configuration).
    pub host_header: Option<String>,
}

impl StatusUrl {
    pub fn parse(url: &str) -> Result<StatusUrl, String> {
        let rest = if let Some(r) = url.strip_prefix("http://") {
            r
        } else if url.starts_with("https://") {
            return Err(format!(
                "{url}: https is not supported for stub_status; give the plain-http address (stub_status is usually on a loopback listener)"
            ));
        } else {
            return Err(format!("{url}: expected http://HOST[:PORT]/PATH"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = split_authority(authority)
            .ok_or_else(|| format!("{url}: cannot read the host and port"))?;
        if host.is_empty() {
            return Err(format!("{url}: no host"));
        }
        Ok(StatusUrl {
            host,
            port,
            path: path.to_string(),
            host_header: None,
        })
    }

    fn address(&self) -> io::Result<SocketAddr> {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        (host, self.port).to_socket_addrs()?.next().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} has no address", self.host),
            )
        })
    }
}

impl std::fmt::Display for StatusUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}:{}{}", self.host, self.port, self.path)?;
        if let Some(h) = &self.host_header {
            write!(f, " (Host: {h})")?;
        }
        Ok(())
    }
}

fn split_authority(a: &str) -> Option<(String, u16)> {
    if let Some(rest) = a.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if after.is_empty() => 80,
            None => return None,
        };
        return Some((format!("[{host}]"), port));
    }
    match a.rsplit_once(':') {
        Some((h, p)) => Some((h.to_string(), p.parse().ok()?)),
        None => Some((a.to_string(), 80)),
    }
}

/// Largest response read; a stub_status page is about 100 bytes.
const MAX_RESPONSE: u64 = 64 * 1024;

/// GETs the page (HTTP/1.0, one connection) and parses it. `timeout`
/// bounds the whole exchange (connect, request, answer), not each read.
pub fn fetch(url: &StatusUrl, timeout: Duration) -> Result<StubStatus, String> {
    let body = get(url, timeout).map_err(|e| format!("{url}: {e}"))?;
    StubStatus::parse(&body).map_err(|e| format!("{url} is not a stub_status page: {e}"))
}

/// "3 s", "500 ms".
fn show(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// A socket timeout says "Resource temporarily unavailable" (EAGAIN):
/// say what timed out instead.
fn timed_out(e: io::Error, timeout: Duration, waiting_for: &str) -> io::Error {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => io::Error::new(
            io::ErrorKind::TimedOut,
            format!("timed out after {} {waiting_for}", show(timeout)),
        ),
        _ => e,
    }
}

fn get(url: &StatusUrl, timeout: Duration) -> io::Result<String> {
    let deadline = Instant::now() + timeout;
    let left = || {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(io::Error::from(io::ErrorKind::TimedOut))
        } else {
            Ok(left)
        }
    };
    let mut stream = TcpStream::connect_timeout(&url.address()?, timeout)
        .map_err(|e| timed_out(e, timeout, "connecting"))?;
    stream.set_write_timeout(Some(
        left().map_err(|e| timed_out(e, timeout, "connecting"))?,
    ))?;
    write!(
        stream,
        "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: upkeep-doctor\r\n\r\n",
        url.path,
        url.host_header.as_deref().unwrap_or(&url.host)
    )
    .map_err(|e| timed_out(e, timeout, "sending the request"))?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    while (raw.len() as u64) < MAX_RESPONSE {
        let waiting = left().map_err(|e| timed_out(e, timeout, "waiting for the answer"))?;
        stream.set_read_timeout(Some(waiting))?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(timed_out(e, timeout, "waiting for the answer")),
        }
    }
    raw.truncate(MAX_RESPONSE as usize);
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "incomplete HTTP response"))?;
    let status = head.lines().next().unwrap_or("");
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("answered \"{status}\""),
        ));
    }
    Ok(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from nginx 1.22.1 on its second request (trailing spaces
    // are nginx's; the page counts the request that fetches it).
    const PAGE: &str = "Active connections: 1 \nserver accepts handled requests\n 2 2 2 \nReading: 0 Writing: 1 Waiting: 0 \n";

    #[test]
    fn parses_the_exact_format() {
        let s = StubStatus::parse(PAGE).unwrap();
        assert_eq!(
            s,
            StubStatus {
                active: 1,
                accepts: 2,
                handled: 2,
                requests: 2,
                reading: 0,
                writing: 1,
                waiting: 0
            }
        );
    }

    #[test]
    fn rejects_other_pages_with_the_reason() {
        assert!(StubStatus::parse("<html>404</html>")
            .unwrap_err()
            .contains("Active connections"));
        let e = StubStatus::parse("Active connections: 1\nserver accepts handled requests\n 1 2\n")
            .unwrap_err();
        assert!(e.contains("three counters"), "{e}");
        let e = StubStatus::parse(
            "Active connections: 1\nserver accepts handled requests\n 1 2 3\nReading: x\n",
        )
        .unwrap_err();
        assert!(e.contains("Reading"), "{e}");
    }

    #[test]
    fn parses_urls() {
        let u = StatusUrl::parse("http://127.0.0.1:8080/nginx_status").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 8080, "/nginx_status")
        );
        let u = StatusUrl::parse("http://localhost").unwrap();
        assert_eq!((u.port, u.path.as_str()), (80, "/"));
        let u = StatusUrl::parse("http://[::1]:81/s").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("[::1]", 81));
        assert!(StatusUrl::parse("https://x/s")
            .unwrap_err()
            .contains("https"));
        assert!(StatusUrl::parse("x:80/s").is_err());
        assert!(StatusUrl::parse("http://x:port/s").is_err());
    }
}
