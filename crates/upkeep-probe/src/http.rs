//! Just enough HTTP/1.x to send a request and read exactly one response off
//! a reused connection: status line and headers (httparse), then the body
//! framed by RFC 9112 §6.3: none for HEAD, 1xx, 204 and 304; chunked; a
//! Content-Length; or everything until the server closes.

use crate::transport::{CloseKind, Connection, Fill};
use crate::Cancel;
use std::time::Instant;

/// Longest status line + headers accepted (nginx's default
/// `proxy_buffer_size` is 4k/8k; this is generous).
const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 128;
const MAX_CHUNK_LINE: usize = 4096;

pub fn build_request(method: &str, path: &str, host: &str) -> Vec<u8> {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: upkeep-probe/{}\r\nAccept: */*\r\n",
        env!("CARGO_PKG_VERSION")
    );
    // A request without a body needs no length, except for methods whose
    // servers may insist on one.
    if matches!(method, "POST" | "PUT" | "PATCH") {
        req.push_str("Content-Length: 0\r\n");
    }
    req.push_str("\r\n");
    req.into_bytes()
}

/// How the body of a response was delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    NoBody,
    Length(u64),
    Chunked,
    /// HTTP/1.0 style: the body ends when the server closes.
    UntilClose,
}

/// A complete response.
#[derive(Clone, Debug)]
pub struct Response {
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    pub status: u16,
    /// `Connection: close` was sent.
    pub connection_close: bool,
    /// `Connection: keep-alive` was sent (what HTTP/1.0 needs for reuse).
    pub connection_keep_alive: bool,
    /// The `Keep-Alive` header's value, e.g. `timeout=5`.
    pub keep_alive: Option<String>,
    pub server: Option<String>,
    pub framing: Framing,
    pub body_bytes: u64,
    /// When the last byte of the response was read.
    pub done_at: Instant,
    /// For [`Framing::UntilClose`]: how the server ended the body.
    pub closed: Option<CloseKind>,
}

impl Response {
    /// Whether HTTP allows the connection to carry another request.
    pub fn reusable(&self) -> bool {
        if self.connection_close || self.framing == Framing::UntilClose {
            return false;
        }
        self.minor_version >= 1 || self.connection_keep_alive
    }
}

/// Why no response could be read.
#[derive(Debug)]
pub enum ReadError {
    /// The server closed before sending a single byte: on a reused
    /// connection, the sign of a silent close.
    ClosedBeforeResponse {
        kind: CloseKind,
        at: Instant,
    },
    /// Closed in the middle of a response.
    Truncated(String),
    Timeout,
    Cancelled,
    Malformed(String),
    /// The body is longer than the cap; the rest was not read.
    BodyTooLarge {
        cap: u64,
        /// The announced `Content-Length`, when there was one.
        length: Option<u64>,
    },
    Io(std::io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::ClosedBeforeResponse { kind, .. } => {
                write!(f, "connection closed ({kind:?}) before any response byte")
            }
            ReadError::Truncated(why) => write!(f, "response cut short: {why}"),
            ReadError::Timeout => write!(f, "no complete response before the timeout"),
            ReadError::Cancelled => write!(f, "interrupted"),
            ReadError::Malformed(why) => write!(f, "malformed response: {why}"),
            ReadError::BodyTooLarge { cap, length } => {
                let (size, read) = match length {
                    Some(n) => (format!(" ({n} bytes)"), "it was not read"),
                    None => (String::new(), "reading stopped there"),
                };
                write!(
                    f,
                    "the response body{size} is longer than the {cap}-byte cap (--max-body); {read}: probe a path with a small response (--path)"
                )
            }
            ReadError::Io(e) => write!(f, "read error: {e}"),
        }
    }
}

struct Reader<'a> {
    conn: &'a mut Connection,
    deadline: Instant,
    cancel: &'a Cancel,
    /// Most body bytes read off one response.
    max_body: u64,
}

impl Reader<'_> {
    /// Reads more bytes; `Ok(None)` means the server closed.
    fn more(&mut self) -> Result<Option<(CloseKind, Instant)>, ReadError> {
        match self.conn.fill(self.deadline, self.cancel) {
            Ok(Fill::Data(_)) => Ok(None),
            Ok(Fill::Closed { kind, at }) => Ok(Some((kind, at))),
            Ok(Fill::Deadline) => Err(ReadError::Timeout),
            Ok(Fill::Cancelled) => Err(ReadError::Cancelled),
            Err(e) => Err(ReadError::Io(e)),
        }
    }

    /// Fills until at least `n` bytes are buffered.
    fn need(&mut self, n: usize, what: &str) -> Result<(), ReadError> {
        while self.conn.buf.len() < n {
            if self.more()?.is_some() {
                return Err(ReadError::Truncated(format!("closed inside the {what}")));
            }
        }
        Ok(())
    }

    /// Returns one CRLF (or LF) terminated line, consumed, without its end.
    fn line(&mut self, what: &str) -> Result<Vec<u8>, ReadError> {
        let mut scanned = 0;
        loop {
            if let Some(i) = self.conn.buf[scanned..].iter().position(|&b| b == b'\n') {
                let end = scanned + i;
                let mut line: Vec<u8> = self.conn.buf.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(line);
            }
            scanned = self.conn.buf.len();
            if scanned > MAX_CHUNK_LINE {
                return Err(ReadError::Malformed(format!(
                    "{what} longer than {MAX_CHUNK_LINE} bytes"
                )));
            }
            if self.more()?.is_some() {
                return Err(ReadError::Truncated(format!("closed inside the {what}")));
            }
        }
    }

    /// Drops `n` body bytes as they arrive.
    fn skip(&mut self, mut n: u64, what: &str) -> Result<(), ReadError> {
        loop {
            let have = (self.conn.buf.len() as u64).min(n);
            self.conn.buf.drain(..have as usize);
            n -= have;
            if n == 0 {
                return Ok(());
            }
            if self.more()?.is_some() {
                return Err(ReadError::Truncated(format!(
                    "closed with {n} bytes of the {what} missing"
                )));
            }
        }
    }
}

/// Reads one response to a request sent with `method`. Interim 1xx
/// responses (100 Continue, 103 Early Hints) are skipped. A body longer
/// than `max_body` bytes is an error as soon as that is known (at once for
/// a `Content-Length`, at the cap otherwise): the connection is then
/// useless for reuse and the rest of the body is never read.
pub fn read_response(
    conn: &mut Connection,
    method: &str,
    deadline: Instant,
    cancel: &Cancel,
    max_body: u64,
) -> Result<Response, ReadError> {
    let mut r = Reader {
        conn,
        deadline,
        cancel,
        max_body,
    };
    let mut first = true;
    loop {
        let head = read_head(&mut r, first)?;
        first = false;
        if (100..200).contains(&head.status) {
            if head.status == 101 {
                return Err(ReadError::Malformed(
                    "101 Switching Protocols to a plain request".into(),
                ));
            }
            continue;
        }
        return read_body(&mut r, head, method);
    }
}

struct Head {
    minor_version: u8,
    status: u16,
    connection_close: bool,
    connection_keep_alive: bool,
    keep_alive: Option<String>,
    server: Option<String>,
    content_length: Option<u64>,
    chunked: bool,
    other_transfer_coding: bool,
}

fn read_head(r: &mut Reader<'_>, first: bool) -> Result<Head, ReadError> {
    loop {
        if r.conn.buf.is_empty() {
            if let Some((kind, at)) = r.more()? {
                return if first {
                    Err(ReadError::ClosedBeforeResponse { kind, at })
                } else {
                    Err(ReadError::Truncated(
                        "closed after an interim response".into(),
                    ))
                };
            }
            continue;
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&r.conn.buf) {
            Ok(httparse::Status::Complete(len)) => {
                let head = interpret_head(&resp)?;
                r.conn.buf.drain(..len);
                return Ok(head);
            }
            Ok(httparse::Status::Partial) => {
                if r.conn.buf.len() > MAX_HEAD {
                    return Err(ReadError::Malformed(format!(
                        "response headers longer than {MAX_HEAD} bytes"
                    )));
                }
                if r.more()?.is_some() {
                    return Err(ReadError::Truncated(
                        "closed inside the response headers".into(),
                    ));
                }
            }
            Err(e) => {
                let start = String::from_utf8_lossy(&r.conn.buf[..r.conn.buf.len().min(40)])
                    .escape_debug()
                    .to_string();
                return Err(ReadError::Malformed(format!(
                    "{e} (response starts with \"{start}\")"
                )));
            }
        }
    }
}

fn interpret_head(resp: &httparse::Response<'_, '_>) -> Result<Head, ReadError> {
    let mut head = Head {
        minor_version: resp.version.unwrap_or(1),
        status: resp.code.unwrap_or(0),
        connection_close: false,
        connection_keep_alive: false,
        keep_alive: None,
        server: None,
        content_length: None,
        chunked: false,
        other_transfer_coding: false,
    };
    for h in resp.headers.iter() {
        let value = String::from_utf8_lossy(h.value).trim().to_string();
        if h.name.eq_ignore_ascii_case("connection") {
            for token in value.split(',').map(str::trim) {
                if token.eq_ignore_ascii_case("close") {
                    head.connection_close = true;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    head.connection_keep_alive = true;
                }
            }
        } else if h.name.eq_ignore_ascii_case("keep-alive") {
            head.keep_alive = Some(value);
        } else if h.name.eq_ignore_ascii_case("server") {
            head.server = Some(value);
        } else if h.name.eq_ignore_ascii_case("content-length") {
            // Repeated identical values are allowed (RFC 9110 §8.6).
            for part in value.split(',').map(str::trim) {
                let n: u64 = part
                    .parse()
                    .map_err(|_| ReadError::Malformed(format!("Content-Length `{value}`")))?;
                if head.content_length.is_some_and(|m| m != n) {
                    return Err(ReadError::Malformed(
                        "conflicting Content-Length headers".into(),
                    ));
                }
                head.content_length = Some(n);
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // Only a final `chunked` delimits the body; anything else
            // (e.g. `gzip` alone) is read until close.
            let last = value.rsplit(',').next().unwrap_or("").trim();
            head.chunked = last.eq_ignore_ascii_case("chunked");
            head.other_transfer_coding = !head.chunked;
        }
    }
    Ok(head)
}

fn read_body(r: &mut Reader<'_>, head: Head, method: &str) -> Result<Response, ReadError> {
    let framing = if method.eq_ignore_ascii_case("HEAD") || head.status == 204 || head.status == 304
    {
        Framing::NoBody
    } else if head.chunked {
        Framing::Chunked
    } else if head.other_transfer_coding {
        Framing::UntilClose
    } else if let Some(n) = head.content_length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    let mut closed = None;
    let mut body_bytes = 0u64;
    let done_at = match framing {
        Framing::NoBody => Instant::now(),
        Framing::Length(n) => {
            if n > r.max_body {
                return Err(ReadError::BodyTooLarge {
                    cap: r.max_body,
                    length: Some(n),
                });
            }
            r.skip(n, "body")?;
            body_bytes = n;
            Instant::now()
        }
        Framing::Chunked => {
            loop {
                let line = r.line("chunk size line")?;
                let size_text = String::from_utf8_lossy(&line);
                let size_hex = size_text.split(';').next().unwrap_or("").trim();
                let size = u64::from_str_radix(size_hex, 16).map_err(|_| {
                    ReadError::Malformed(format!("chunk size `{}`", size_text.escape_debug()))
                })?;
                if size == 0 {
                    break;
                }
                if size > r.max_body - body_bytes {
                    return Err(ReadError::BodyTooLarge {
                        cap: r.max_body,
                        length: None,
                    });
                }
                r.skip(size, "chunk")?;
                body_bytes += size;
                r.need(1, "chunk end")?;
                if r.line("chunk end")?.is_empty() {
                    continue;
                }
                return Err(ReadError::Malformed(
                    "chunk data longer than its size".into(),
                ));
            }
            // Trailer fields, up to the empty line.
            while !r.line("trailer")?.is_empty() {}
            Instant::now()
        }
        Framing::UntilClose => loop {
            body_bytes += r.conn.buf.len() as u64;
            r.conn.buf.clear();
            if body_bytes > r.max_body {
                return Err(ReadError::BodyTooLarge {
                    cap: r.max_body,
                    length: None,
                });
            }
            if let Some((kind, at)) = r.more()? {
                closed = Some(kind);
                break at;
            }
        },
    };
    Ok(Response {
        minor_version: head.minor_version,
        status: head.status,
        connection_close: head.connection_close,
        connection_keep_alive: head.connection_keep_alive,
        keep_alive: head.keep_alive,
        server: head.server,
        framing,
        body_bytes,
        done_at,
        closed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    /// Feeds `wire` to the reader through a socket pair; the server side is
    /// closed after writing when `close` is true.
    fn read_all(
        wire: &[u8],
        method: &str,
        close: bool,
    ) -> (Vec<Result<Response, String>>, Vec<u8>) {
        let (client, mut server) = UnixStream::pair().unwrap();
        server.write_all(wire).unwrap();
        if close {
            drop(server);
        } else {
            std::mem::forget(server);
        }
        let mut conn = Connection::from_unix_stream(client);
        let cancel = Cancel::new();
        let mut out = Vec::new();
        loop {
            let deadline = Instant::now() + Duration::from_millis(300);
            match read_response(&mut conn, method, deadline, &cancel, 1 << 20) {
                Ok(r) => {
                    let until_close = r.framing == Framing::UntilClose;
                    out.push(Ok(r));
                    if until_close {
                        break;
                    }
                }
                Err(ReadError::ClosedBeforeResponse { .. }) | Err(ReadError::Timeout) => break,
                Err(e) => {
                    out.push(Err(e.to_string()));
                    break;
                }
            }
        }
        (out, conn.buf)
    }

    #[test]
    fn content_length_and_chunked_back_to_back() {
        let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nKeep-Alive: timeout=5\r\n\r\nhello\
HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nServer: t\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n\
HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
        let (rs, rest) = read_all(wire, "GET", true);
        assert!(rest.is_empty());
        let rs: Vec<Response> = rs.into_iter().map(Result::unwrap).collect();
        assert_eq!(rs.len(), 3);
        assert_eq!(rs[0].framing, Framing::Length(5));
        assert_eq!(rs[0].keep_alive.as_deref(), Some("timeout=5"));
        assert!(rs[0].reusable());
        assert_eq!(rs[1].framing, Framing::Chunked);
        assert_eq!(rs[1].body_bytes, 11);
        assert_eq!(rs[1].server.as_deref(), Some("t"));
        assert_eq!(rs[2].status, 204);
        assert!(rs[2].connection_close);
        assert!(!rs[2].reusable());
    }

    #[test]
    fn head_and_304_have_no_body_despite_length() {
        let wire = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
        let (rs, _) = read_all(wire, "HEAD", false);
        assert_eq!(rs[0].as_ref().unwrap().framing, Framing::NoBody);
        let wire = b"HTTP/1.1 304 Not Modified\r\nContent-Length: 1000\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        let (rs, _) = read_all(wire, "GET", false);
        assert_eq!(rs.len(), 2);
        assert_eq!(rs[0].as_ref().unwrap().framing, Framing::NoBody);
    }

    #[test]
    fn interim_responses_are_skipped() {
        let wire = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let (rs, _) = read_all(wire, "GET", false);
        assert_eq!(rs.len(), 1);
        assert_eq!(rs[0].as_ref().unwrap().status, 200);
    }

    #[test]
    fn close_delimited_and_http_1_0() {
        let wire = b"HTTP/1.0 200 OK\r\n\r\nbody until close";
        let (rs, _) = read_all(wire, "GET", true);
        let r = rs[0].as_ref().unwrap();
        assert_eq!(r.framing, Framing::UntilClose);
        assert_eq!(r.body_bytes, 16);
        assert_eq!(r.closed, Some(CloseKind::Fin));
        assert!(!r.reusable());

        let wire = b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n";
        let (rs, _) = read_all(wire, "GET", false);
        assert!(rs[0].as_ref().unwrap().reusable());
        let wire = b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";
        let (rs, _) = read_all(wire, "GET", false);
        assert!(!rs[0].as_ref().unwrap().reusable());
    }

    #[test]
    fn broken_responses_are_errors_not_panics() {
        for (wire, expect) in [
            (
                &b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"[..],
                "cut short",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
                "Content-Length",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                "conflicting",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                "chunk size",
            ),
            (b"SSH-2.0-OpenSSH_9.2\r\n", "malformed"),
            (b"HTTP/1.1 200 OK\r\nContent-Le", "cut short"),
        ] {
            let (rs, _) = read_all(wire, "GET", true);
            let err = rs[0].as_ref().unwrap_err();
            assert!(
                err.contains(expect),
                "{:?} -> {err}",
                String::from_utf8_lossy(wire)
            );
        }
    }

    #[test]
    fn closed_before_any_byte_is_its_own_outcome() {
        let (client, server) = UnixStream::pair().unwrap();
        drop(server);
        let mut conn = Connection::from_unix_stream(client);
        let r = read_response(
            &mut conn,
            "GET",
            Instant::now() + Duration::from_secs(1),
            &Cancel::new(),
            1 << 20,
        );
        assert!(matches!(
            r,
            Err(ReadError::ClosedBeforeResponse {
                kind: CloseKind::Fin,
                ..
            })
        ));
    }

    #[test]
    fn bodies_past_the_cap_are_refused_not_read() {
        let read_one = |wire: &[u8], cap: u64| {
            let (client, mut server) = UnixStream::pair().unwrap();
            server.write_all(wire).unwrap();
            let mut conn = Connection::from_unix_stream(client);
            let deadline = Instant::now() + Duration::from_millis(300);
            let r = read_response(&mut conn, "GET", deadline, &Cancel::new(), cap);
            (r, conn.buf.len())
        };
        // A Content-Length over the cap fails before any body byte is read.
        let (r, _) = read_one(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10737418240\r\n\r\nxx",
            100,
        );
        let err = r.unwrap_err();
        assert!(
            matches!(
                err,
                ReadError::BodyTooLarge {
                    cap: 100,
                    length: Some(10737418240)
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("--max-body"), "{err}");
        // Exactly at the cap is fine.
        let (r, _) = read_one(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcd", 4);
        assert_eq!(r.unwrap().body_bytes, 4);
        // Chunked: the chunk that would cross the cap is refused.
        let (r, _) = read_one(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\nabc\r\n0\r\n\r\n",
            5,
        );
        assert!(matches!(
            r,
            Err(ReadError::BodyTooLarge { length: None, .. })
        ));
        // Until close: stops once past the cap.
        let mut wire = b"HTTP/1.0 200 OK\r\n\r\n".to_vec();
        wire.extend(std::iter::repeat_n(b'x', 50_000));
        let (r, _) = read_one(&wire, 1000);
        assert!(matches!(r, Err(ReadError::BodyTooLarge { .. })));
    }

    #[test]
    fn request_shape() {
        let r = String::from_utf8(build_request("POST", "/x", "h:81")).unwrap();
        assert!(r.starts_with("POST /x HTTP/1.1\r\nHost: h:81\r\n"));
        assert!(r.ends_with("Content-Length: 0\r\n\r\n"));
        assert!(!r.to_ascii_lowercase().contains("connection:"));
    }
}
