//! One nginx error-log line, split into its fields without copying.
//!
//! The shape (facts/behaviors.md, "Error-log line format", from
//! `ngx_log_error_core` and `ngx_http_log_error`):
//!
//! ```text
//! <time> [<level>] <pid>#<tid>: *<conn> <message>[ (<errno>: <strerror>)][ while <action>]<context>
//! context: , client: X, server: X, request: "…", subrequest: "…", upstream: "…", host: "…", referrer: "…"
//! ```
//!
//! `nginx -t` and startup messages captured from stderr have the shape
//! `nginx: [warn] <message> in <file>:<line>`; they parse with no time.

use crate::time::{parse_error_log_time, LogTime};

/// Finds `needle` in a short haystack (one log line) by jumping with memchr
/// to its byte at `anchor`, a byte that is rare in log lines. On haystacks
/// this short that beats a general substring searcher, whose setup costs
/// more than the search.
fn find_anchored(hay: &[u8], needle: &[u8], anchor: usize) -> Option<usize> {
    let mut from = anchor;
    while from < hay.len() {
        let at = from + memchr::memchr(needle[anchor], &hay[from..])?;
        let start = at - anchor;
        if hay[start..].starts_with(needle) {
            return Some(start);
        }
        from = at + 1;
    }
    None
}

/// The last occurrence, as [`find_anchored`].
fn rfind_anchored(hay: &[u8], needle: &[u8], anchor: usize) -> Option<usize> {
    let mut end = hay.len();
    while end > anchor {
        let at = memchr::memrchr(needle[anchor], &hay[anchor..end])? + anchor;
        let start = at - anchor;
        if hay[start..].starts_with(needle) {
            return Some(start);
        }
        end = at;
    }
    None
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Emerg,
    Alert,
    Crit,
    Error,
    Warn,
    Notice,
    Info,
    Debug,
}

impl Level {
    pub fn parse(b: &[u8]) -> Option<Level> {
        Some(match b {
            b"emerg" => Level::Emerg,
            b"alert" => Level::Alert,
            b"crit" => Level::Crit,
            b"error" => Level::Error,
            b"warn" => Level::Warn,
            b"notice" => Level::Notice,
            b"info" => Level::Info,
            b"debug" => Level::Debug,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Emerg => "emerg",
            Level::Alert => "alert",
            Level::Crit => "crit",
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Notice => "notice",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }
}

/// The fields of one error-log line. Every slice borrows from the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorLine<'a> {
    /// `None` for `nginx: [level] …` lines (stderr of `nginx -t`).
    pub time: Option<LogTime>,
    pub level: Level,
    pub pid: Option<u32>,
    /// The `*N` connection serial: the client connection's `$connection`.
    pub connection: Option<u64>,
    /// The message text before the errno and the `while` phase.
    pub message: &'a [u8],
    pub errno: Option<u16>,
    /// The action after ` while `, e.g. `reading response header from upstream`.
    pub phase: Option<&'a [u8]>,
    pub client: Option<&'a [u8]>,
    pub server: Option<&'a [u8]>,
    /// The request line, e.g. `GET /x HTTP/1.1`.
    pub request: Option<&'a [u8]>,
    /// As logged: scheme, peer name (or upstream group name), URI.
    pub upstream: Option<&'a [u8]>,
    pub host: Option<&'a [u8]>,
}

/// Cheap test that a line looks like an error-log line at all: the fixed
/// date/time punctuation and the `[` of the level. Used on every line to
/// count lines of unknown shape without parsing them.
#[inline]
pub fn has_error_log_shape(line: &[u8]) -> bool {
    has_timestamp_shape(line) || line.starts_with(b"nginx: [")
}

/// [`has_error_log_shape`] for lines that start with a time.
#[inline]
pub fn has_timestamp_shape(line: &[u8]) -> bool {
    line.len() > 21
        && line[4] == b'/'
        && line[7] == b'/'
        && line[10] == b' '
        && line[13] == b':'
        && line[16] == b':'
        && line[19] == b' '
        && line[20] == b'['
        && line[0].is_ascii_digit()
}

impl<'a> ErrorLine<'a> {
    /// Splits a line (without its `\n`). `None` if it does not have the
    /// error-log shape.
    pub fn parse(line: &'a [u8]) -> Option<ErrorLine<'a>> {
        let (mut parsed, context) = ErrorLine::parse_head(line)?;
        if let Some(ctx) = context {
            parsed.split_context(ctx);
        }
        Some(parsed)
    }

    /// Everything up to the context (`, client: …`), which is returned
    /// unsplit: the scanner splits it only for lines that need it.
    pub(crate) fn parse_head(line: &'a [u8]) -> Option<(ErrorLine<'a>, Option<&'a [u8]>)> {
        let line = strip_cr(line);
        let (time, rest) = if let Some(rest) = line.strip_prefix(b"nginx: ") {
            (None, rest)
        } else {
            let time = parse_error_log_time(line)?;
            (Some(time), line.get(20..)?)
        };
        let rest = rest.strip_prefix(b"[")?;
        let close = rest.iter().take(8).position(|&c| c == b']')?;
        let level = Level::parse(&rest[..close])?;
        let mut rest = rest.get(close + 1..)?;
        rest = rest.strip_prefix(b" ").unwrap_or(rest);

        let mut pid = None;
        if time.is_some() {
            // `<pid>#<tid>: `
            let hash = rest.iter().take(12).position(|&c| c == b'#')?;
            pid = Some(parse_u64(&rest[..hash])? as u32);
            let colon = rest[hash..].iter().take(24).position(|&c| c == b':')? + hash;
            rest = rest.get(colon + 1..)?;
            rest = rest.strip_prefix(b" ").unwrap_or(rest);
        }

        let mut connection = None;
        if let Some(after_star) = rest.strip_prefix(b"*") {
            let end = after_star
                .iter()
                .position(|b| !b.is_ascii_digit())
                .unwrap_or(after_star.len());
            if end > 0 {
                connection = parse_u64(&after_star[..end]);
                rest = &after_star[end..];
                rest = rest.strip_prefix(b" ").unwrap_or(rest);
            }
        }

        let mut out = ErrorLine {
            time,
            level,
            pid,
            connection,
            message: rest,
            errno: None,
            phase: None,
            client: None,
            server: None,
            request: None,
            upstream: None,
            host: None,
        };
        let context = out.split_text(rest);
        Some((out, context))
    }

    /// Splits message, errno and phase; returns the context.
    fn split_text(&mut self, text: &'a [u8]) -> Option<&'a [u8]> {
        let (head, ctx) = match find_anchored(text, b", client: ", 0) {
            Some(i) => (&text[..i], Some(&text[i + 2..])),
            None => (text, None),
        };
        // The last ` while `: messages may quote text containing it
        // (OpenSSL's "unexpected eof while reading"), actions never do.
        let mut before = head;
        if let Some(w) = rfind_anchored(head, b" while ", 1) {
            self.phase = Some(&head[w + 7..]);
            before = &head[..w];
        }
        self.message = before;
        if before.last() == Some(&b')') {
            if let Some(open) =
                memchr::memrchr(b'(', before).filter(|&i| i > 0 && before[i - 1] == b' ')
            {
                let open = open - 1;
                let inner = &before[open + 2..before.len() - 1];
                if let Some(colon) = memchr::memchr(b':', inner) {
                    if let Some(n) = parse_u64(&inner[..colon]) {
                        self.errno = u16::try_from(n).ok();
                        self.message = &before[..open];
                    }
                }
            }
        }
        ctx
    }

    pub(crate) fn split_context(&mut self, ctx: &'a [u8]) {
        // ctx starts with "client: ".
        let mut rest = &ctx[b"client: ".len()..];
        let (client, r) = plain_value(rest);
        self.client = Some(client);
        rest = r;
        if let Some(r) = rest.strip_prefix(b", server: ") {
            let (server, r) = plain_value(r);
            self.server = Some(server);
            rest = r;
        }
        const AFTER_REQUEST: &[&[u8]] = &[
            b"subrequest: \"",
            b"upstream: \"",
            b"host: \"",
            b"referrer: \"",
        ];
        if let Some(r) = rest.strip_prefix(b", request: \"") {
            let (v, r) = quoted_value(r, AFTER_REQUEST);
            self.request = Some(v);
            rest = r;
        }
        if let Some(r) = rest.strip_prefix(b", subrequest: \"") {
            let (_, r) = quoted_value(r, &AFTER_REQUEST[1..]);
            rest = r;
        }
        if let Some(r) = rest.strip_prefix(b", upstream: \"") {
            let (v, r) = quoted_value(r, &AFTER_REQUEST[2..]);
            self.upstream = Some(v);
            rest = r;
        }
        if let Some(r) = rest.strip_prefix(b", host: \"") {
            let (v, _) = quoted_value(r, &AFTER_REQUEST[3..]);
            self.host = Some(v);
        }
    }

    /// The request method, from the request line.
    pub fn method(&self) -> Option<&'a [u8]> {
        let req = self.request?;
        let sp = memchr::memchr(b' ', req).unwrap_or(req.len());
        Some(&req[..sp])
    }

    /// The request URI, from the request line.
    pub fn uri(&self) -> Option<&'a [u8]> {
        let req = self.request?;
        let sp = memchr::memchr(b' ', req)?;
        let rest = &req[sp + 1..];
        let end = memchr::memrchr(b' ', rest).unwrap_or(rest.len());
        Some(&rest[..end])
    }

    /// The upstream peer: `127.0.0.1:8080`, `[::1]:8080`, `unix:/run/app.sock`,
    /// or the upstream group's name when no server could be chosen ("no live
    /// upstreams"). Taken from the `upstream: "…"` field, else from the
    /// message of `connect() to ADDR failed`.
    pub fn upstream_addr(&self) -> Option<&'a [u8]> {
        if let Some(up) = self.upstream {
            return Some(peer_of_upstream_field(up));
        }
        let rest = self.message.strip_prefix(b"connect() to ")?;
        let end = find_anchored(rest, b" failed", 1)?;
        Some(&rest[..end])
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 19 {
        return None;
    }
    let mut n = 0u64;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(c - b'0');
    }
    Some(n)
}

/// An unquoted context value: up to the next `, ` or the end.
fn plain_value(b: &[u8]) -> (&[u8], &[u8]) {
    match find_anchored(b, b", ", 0) {
        Some(i) => (&b[..i], &b[i..]),
        None => (b, &b[b.len()..]),
    }
}

/// A quoted value (the opening quote already consumed): up to the `"` that
/// is followed by `, <next key>` or ends the line. Request lines and Host
/// headers come from clients and may themselves contain quotes.
fn quoted_value<'a>(b: &'a [u8], next_keys: &[&[u8]]) -> (&'a [u8], &'a [u8]) {
    let mut from = 0;
    while let Some(i) = memchr::memchr(b'"', &b[from..]) {
        let at = from + i;
        let after = &b[at + 1..];
        if after.len() > 2 && after[0] == b',' && after[1] == b' ' {
            let key = &after[2..];
            if next_keys
                .iter()
                .any(|k| key[0] == k[0] && key.starts_with(k))
            {
                return (&b[..at], after);
            }
        }
        from = at + 1;
    }
    let end = if b.last() == Some(&b'"') {
        b.len() - 1
    } else {
        b.len()
    };
    (&b[..end], &b[b.len()..])
}

/// `http://127.0.0.1:9101/fin/b` → `127.0.0.1:9101`;
/// `http://unix:/run/app.sock:/x` → `unix:/run/app.sock`;
/// `http://backend/x` → `backend`.
pub fn peer_of_upstream_field(up: &[u8]) -> &[u8] {
    let rest = match find_anchored(up, b"://", 0) {
        Some(i) => &up[i + 3..],
        None => up,
    };
    if let Some(path) = rest.strip_prefix(b"unix:") {
        let end = memchr::memchr(b':', path).map_or(rest.len(), |i| i + 5);
        return &rest[..end];
    }
    let end = memchr::memchr(b'/', rest).unwrap_or(rest.len());
    &rest[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_upstream_line() {
        let l = br#"2026/11/23 14:26:24 [error] 30381#0: *7 upstream prematurely closed connection while reading response header from upstream, client: 127.0.0.1, server: , request: "GET /fin/b HTTP/1.1", upstream: "http://127.0.0.1:9101/fin/b", host: "127.0.0.1:8088""#;
        let p = ErrorLine::parse(l).unwrap();
        assert_eq!(p.level, Level::Error);
        assert_eq!(p.pid, Some(30381));
        assert_eq!(p.connection, Some(7));
        assert_eq!(p.message, b"upstream prematurely closed connection");
        assert_eq!(p.errno, None);
        assert_eq!(p.phase, Some(&b"reading response header from upstream"[..]));
        assert_eq!(p.client, Some(&b"127.0.0.1"[..]));
        assert_eq!(p.server, Some(&b""[..]));
        assert_eq!(p.request, Some(&b"GET /fin/b HTTP/1.1"[..]));
        assert_eq!(p.method(), Some(&b"GET"[..]));
        assert_eq!(p.uri(), Some(&b"/fin/b"[..]));
        assert_eq!(p.upstream_addr(), Some(&b"127.0.0.1:9101"[..]));
        assert_eq!(p.host, Some(&b"127.0.0.1:8088"[..]));
    }

    #[test]
    fn errno_referrer_and_no_connection() {
        let l = br#"2026/11/23 14:27:29 [error] 7198#0: *1 connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: example.test, request: "GET /refused/x HTTP/1.1", upstream: "http://127.0.0.1:9199/refused/x", host: "127.0.0.1:8092", referrer: "http://ref.example/""#;
        let p = ErrorLine::parse(l).unwrap();
        assert_eq!(p.message, b"connect() failed");
        assert_eq!(p.errno, Some(111));
        assert_eq!(p.server, Some(&b"example.test"[..]));
        assert_eq!(p.host, Some(&b"127.0.0.1:8092"[..]));

        let l = b"2026/11/23 14:27:30 [alert] 7198#0: 8 worker_connections are not enough";
        let p = ErrorLine::parse(l).unwrap();
        assert_eq!(p.connection, None);
        assert_eq!(p.message, b"8 worker_connections are not enough");
        assert_eq!(p.level, Level::Alert);
    }

    #[test]
    fn ssl_text_with_while_inside_and_errno() {
        let l = br#"2026/11/23 14:27:29 [error] 1#1: *3 SSL_do_handshake() failed (SSL: error:0A000126:SSL routines::unexpected eof while reading) while SSL handshaking to upstream, client: ::1, server: a, request: "GET / HTTP/2.0", upstream: "https://[::1]:8443/", host: "a""#;
        let p = ErrorLine::parse(l).unwrap();
        assert_eq!(p.phase, Some(&b"SSL handshaking to upstream"[..]));
        assert_eq!(p.errno, None);
        assert_eq!(p.upstream_addr(), Some(&b"[::1]:8443"[..]));
        assert_eq!(p.client, Some(&b"::1"[..]));
    }

    #[test]
    fn anchored_search() {
        assert_eq!(find_anchored(b"a while b while c", b" while ", 1), Some(1));
        assert_eq!(rfind_anchored(b"a while b while c", b" while ", 1), Some(9));
        assert_eq!(rfind_anchored(b" while", b" while ", 1), None);
        assert_eq!(find_anchored(b"xx, client: y", b", client: ", 0), Some(2));
        assert_eq!(find_anchored(b"", b", ", 0), None);
        assert_eq!(rfind_anchored(b"w", b" while ", 1), None);
    }

    #[test]
    fn peers() {
        assert_eq!(
            peer_of_upstream_field(b"http://unix:/run/a.sock:/x"),
            b"unix:/run/a.sock"
        );
        assert_eq!(
            peer_of_upstream_field(b"http://multi_fin/multi/3"),
            b"multi_fin"
        );
        assert_eq!(
            peer_of_upstream_field(b"fastcgi://127.0.0.1:9000"),
            b"127.0.0.1:9000"
        );
        let p = ErrorLine::parse(b"2026/11/23 14:27:29 [crit] 1#0: *5 connect() to 10.0.0.2:80 failed (99: Cannot assign requested address) while connecting to upstream, client: 1.2.3.4, server: x").unwrap();
        assert_eq!(p.upstream_addr(), Some(&b"10.0.0.2:80"[..]));
        assert_eq!(p.errno, Some(99));
    }

    #[test]
    fn stderr_shape_and_garbage() {
        let p = ErrorLine::parse(b"nginx: [warn] load balancing method redefined in /x/t3.conf:10")
            .unwrap();
        assert_eq!(p.time, None);
        assert_eq!(p.level, Level::Warn);
        assert_eq!(
            p.message,
            b"load balancing method redefined in /x/t3.conf:10"
        );
        assert!(ErrorLine::parse(b"\x00\x01garbage").is_none());
        assert!(ErrorLine::parse(b"2026/11/23 14:27:29 [bogus] 1#0: x").is_none());
        assert!(!has_error_log_shape(
            b"127.0.0.1 - - [23/Nov/2026:14:26:24 +0000] \"GET / HTTP/1.1\""
        ));
    }
}
