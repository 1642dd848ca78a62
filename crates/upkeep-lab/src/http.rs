//! Just enough HTTP/1.x to play both ends of nginx: the emulated backends read
//! requests and write responses, the traffic generator writes requests and
//! reads responses. Message framing follows RFC 9112 (Content-Length, chunked,
//! or until close for responses); anything else is an error, never a hang,
//! because every read has a deadline.

use std::io;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

/// Largest head (start line + headers) either side accepts.
const MAX_HEAD: usize = 64 * 1024;
/// Largest body either side accepts; the lab only sends small bodies.
const MAX_BODY: usize = 8 * 1024 * 1024;

#[derive(Debug)]
pub enum ReadError {
    /// The peer closed before sending a single byte of the message.
    ClosedBeforeMessage,
    /// The peer closed or reset in the middle of a message.
    Truncated,
    Timeout,
    Malformed(String),
    Io(io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::ClosedBeforeMessage => write!(f, "connection closed before a message"),
            ReadError::Truncated => write!(f, "connection closed in the middle of a message"),
            ReadError::Timeout => write!(f, "timed out"),
            ReadError::Malformed(m) => write!(f, "malformed message: {m}"),
            ReadError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// A parsed start line plus headers.
#[derive(Debug, Clone)]
pub struct Head {
    /// Request: method; response: "HTTP/1.x".
    pub first: String,
    /// Request: target; response: status code.
    pub second: String,
    /// Request: "HTTP/1.x"; response: reason phrase.
    pub third: String,
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// True if a `Connection` header lists `token` (case-insensitive).
    pub fn connection_has(&self, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    fn is_chunked(&self) -> bool {
        self.header("transfer-encoding")
            .map(|v| {
                v.rsplit(',')
                    .next()
                    .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
            })
            .unwrap_or(false)
    }

    fn content_length(&self) -> Result<Option<usize>, ReadError> {
        match self.header("content-length") {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<usize>()
                .map(Some)
                .map_err(|_| ReadError::Malformed(format!("bad Content-Length {v:?}"))),
        }
    }
}

/// A TCP connection with a read buffer, used for one side of HTTP exchanges.
pub struct HttpConn {
    pub stream: TcpStream,
    buf: Vec<u8>,
    /// Bytes received on this connection, ever; lets callers tell "nothing
    /// came back" from "something came back".
    pub received: u64,
}

impl HttpConn {
    pub fn new(stream: TcpStream) -> HttpConn {
        HttpConn {
            stream,
            buf: Vec::with_capacity(4096),
            received: 0,
        }
    }

    pub async fn write_all(&mut self, bytes: &[u8], deadline: Instant) -> Result<(), ReadError> {
        match timeout_at(deadline, self.stream.write_all(bytes)).await {
            Err(_) => Err(ReadError::Timeout),
            Ok(Err(e)) => Err(ReadError::Io(e)),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Reads more bytes into the buffer; Ok(0) on EOF.
    async fn fill(&mut self, deadline: Instant) -> Result<usize, ReadError> {
        let mut chunk = [0u8; 16 * 1024];
        match timeout_at(deadline, self.stream.read(&mut chunk)).await {
            Err(_) => Err(ReadError::Timeout),
            Ok(Err(e)) => Err(ReadError::Io(e)),
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                self.received += n as u64;
                Ok(n)
            }
        }
    }

    /// Reads one message head. `ClosedBeforeMessage` if the peer closed (or
    /// reset) before sending anything of it.
    pub async fn read_head(&mut self, deadline: Instant) -> Result<Head, ReadError> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head_bytes: Vec<u8> = self.buf.drain(..end + 4).collect();
                return parse_head(&head_bytes[..end]);
            }
            if self.buf.len() > MAX_HEAD {
                return Err(ReadError::Malformed("head too large".into()));
            }
            let was_empty = self.buf.is_empty();
            match self.fill(deadline).await {
                Ok(0) if was_empty => return Err(ReadError::ClosedBeforeMessage),
                Ok(0) => return Err(ReadError::Truncated),
                Ok(_) => {}
                Err(ReadError::Io(e)) if was_empty && is_reset(&e) => {
                    return Err(ReadError::ClosedBeforeMessage)
                }
                Err(ReadError::Io(e)) if is_reset(&e) => return Err(ReadError::Truncated),
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads a request body as framed by `head`.
    pub async fn read_request_body(
        &mut self,
        head: &Head,
        deadline: Instant,
    ) -> Result<Vec<u8>, ReadError> {
        if head.is_chunked() {
            self.read_chunked(deadline).await
        } else {
            let len = head.content_length()?.unwrap_or(0);
            self.read_exact_body(len, deadline).await
        }
    }

    /// Reads a response body for a request with `method`. Returns the body and
    /// whether the connection must be closed afterwards (close-delimited).
    pub async fn read_response_body(
        &mut self,
        method: &str,
        head: &Head,
        deadline: Instant,
    ) -> Result<(Vec<u8>, bool), ReadError> {
        let status: u16 = head.second.parse().unwrap_or(0);
        if method == "HEAD" || status == 204 || status == 304 || (100..200).contains(&status) {
            return Ok((Vec::new(), false));
        }
        if head.is_chunked() {
            return Ok((self.read_chunked(deadline).await?, false));
        }
        if let Some(len) = head.content_length()? {
            return Ok((self.read_exact_body(len, deadline).await?, false));
        }
        // Close-delimited.
        loop {
            if self.buf.len() > MAX_BODY {
                return Err(ReadError::Malformed("body too large".into()));
            }
            match self.fill(deadline).await {
                Ok(0) => return Ok((std::mem::take(&mut self.buf), true)),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
    }

    async fn read_exact_body(
        &mut self,
        len: usize,
        deadline: Instant,
    ) -> Result<Vec<u8>, ReadError> {
        if len > MAX_BODY {
            return Err(ReadError::Malformed(format!("body of {len} bytes")));
        }
        while self.buf.len() < len {
            match self.fill(deadline).await {
                Ok(0) => return Err(ReadError::Truncated),
                Ok(_) => {}
                Err(ReadError::Io(e)) if is_reset(&e) => return Err(ReadError::Truncated),
                Err(e) => return Err(e),
            }
        }
        Ok(self.buf.drain(..len).collect())
    }

    async fn read_line(&mut self, deadline: Instant) -> Result<Vec<u8>, ReadError> {
        loop {
            if let Some(end) = find(&self.buf, b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..end + 2).collect();
                return Ok(line[..end].to_vec());
            }
            if self.buf.len() > MAX_HEAD {
                return Err(ReadError::Malformed("line too long".into()));
            }
            match self.fill(deadline).await {
                Ok(0) => return Err(ReadError::Truncated),
                Ok(_) => {}
                Err(ReadError::Io(e)) if is_reset(&e) => return Err(ReadError::Truncated),
                Err(e) => return Err(e),
            }
        }
    }

    async fn read_chunked(&mut self, deadline: Instant) -> Result<Vec<u8>, ReadError> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line(deadline).await?;
            let text = String::from_utf8_lossy(&line);
            let size_text = text.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| ReadError::Malformed(format!("bad chunk size {size_text:?}")))?;
            if size == 0 {
                // Trailers, up to the empty line.
                while !self.read_line(deadline).await?.is_empty() {}
                return Ok(body);
            }
            if body.len() + size > MAX_BODY {
                return Err(ReadError::Malformed("body too large".into()));
            }
            let chunk = self.read_exact_body(size + 2, deadline).await?;
            body.extend_from_slice(&chunk[..size]);
        }
    }
}

pub fn is_reset(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn parse_head(bytes: &[u8]) -> Result<Head, ReadError> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| ReadError::Malformed("head is not UTF-8".into()))?;
    let mut lines = text.split("\r\n");
    let start = lines.next().unwrap_or("");
    let mut parts = start.splitn(3, ' ');
    let first = parts.next().unwrap_or("").to_string();
    let second = parts.next().unwrap_or("").to_string();
    let third = parts.next().unwrap_or("").to_string();
    if first.is_empty() || second.is_empty() {
        return Err(ReadError::Malformed(format!("bad start line {start:?}")));
    }
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| ReadError::Malformed(format!("bad header line {line:?}")))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    Ok(Head {
        first,
        second,
        third,
        headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_request_and_response_heads() {
        let h =
            parse_head(b"POST /x HTTP/1.0\r\nContent-Length: 3\r\nConnection: keep-alive, Upgrade")
                .unwrap();
        assert_eq!(h.first, "POST");
        assert_eq!(h.second, "/x");
        assert_eq!(h.third, "HTTP/1.0");
        assert_eq!(h.content_length().unwrap(), Some(3));
        assert!(h.connection_has("upgrade"));
        assert!(!h.connection_has("close"));
        let r =
            parse_head(b"HTTP/1.1 502 Bad Gateway\r\nTransfer-Encoding: gzip, chunked").unwrap();
        assert_eq!(r.second, "502");
        assert_eq!(r.third, "Bad Gateway");
        assert!(r.is_chunked());
    }

    #[test]
    fn rejects_garbage_heads() {
        assert!(parse_head(b"").is_err());
        assert!(parse_head(b"GET / HTTP/1.1\r\nno colon here").is_err());
        assert!(parse_head(&[0xff, 0xfe, b' ', b'x']).is_err());
    }
}
