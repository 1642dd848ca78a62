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

use crate::short_search::{find_byte, rfind_byte};
use crate::time::{parse_error_log_time, LogTime};

/// Finds `needle` in a short haystack (one log line) by jumping to its byte
/// at `anchor`, a byte that is rare in log lines. On haystacks this short
/// that beats a general substring searcher, whose setup costs more than
/// the search. The needle's length is a constant so that comparing it
/// compiles to a few loads rather than a call to memcmp.
fn find_anchored<const N: usize>(hay: &[u8], needle: &[u8; N], anchor: usize) -> Option<usize> {
    let mut from = anchor;
    while from < hay.len() {
        let at = from + find_byte(needle[anchor], &hay[from..])?;
        let start = at - anchor;
        if hay.get(start..start + N) == Some(&needle[..]) {
            return Some(start);
        }
        from = at + 1;
    }
    None
}

/// The last occurrence, as [`find_anchored`].
fn rfind_anchored<const N: usize>(hay: &[u8], needle: &[u8; N], anchor: usize) -> Option<usize> {
    let mut end = hay.len();
    while end > anchor {
        let at = rfind_byte(needle[anchor], &hay[anchor..end])? + anchor;
        let start = at - anchor;
        if hay.get(start..start + N) == Some(&needle[..]) {
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

/// Which fields of a line's context (`client: …, upstream: "…", …`) a
/// reader needs. Splitting the context is a large part of the cost of a
/// signature line, and counting failures needs only the upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContextFields {
    /// client, server, request, upstream and host.
    All,
    /// request and upstream; client, server and host stay `None`.
    UpstreamOnly,
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
    /// Splits a line (without its `\n`; a `\r` before it is dropped).
    /// `None` if it does not have the error-log shape.
    pub fn parse(line: &'a [u8]) -> Option<ErrorLine<'a>> {
        let mut parsed = ErrorLine::parse_prefix(strip_cr(line))?;
        if let Some(ctx) = parsed.split_text() {
            parsed.split_context(ctx, ContextFields::All);
        }
        Some(parsed)
    }

    /// Time, level, pid and connection. `message` is left holding the
    /// whole rest of the line, unsplit: the scanner looks at how it starts
    /// before deciding whether to split it ([`ErrorLine::split_text`]).
    /// The line comes without its line end (`\n` and one `\r`).
    pub(crate) fn parse_prefix(line: &'a [u8]) -> Option<ErrorLine<'a>> {
        let (time, rest) = if let Some(rest) = line.strip_prefix(b"nginx: ") {
            (None, rest)
        } else {
            let time = parse_error_log_time(line)?;
            // The space before `[level]`, as `has_timestamp_shape` expects.
            (Some(time), line.get(19..)?.strip_prefix(b" ")?)
        };
        let rest = rest.strip_prefix(b"[")?;
        let close = rest.iter().take(8).position(|&c| c == b']')?;
        let level = Level::parse(&rest[..close])?;
        let mut rest = rest.get(close + 1..)?;
        rest = rest.strip_prefix(b" ").unwrap_or(rest);

        let mut pid = None;
        if time.is_some() {
            // `<pid>#<tid>: `
            let (n, digits) = leading_number(rest)?;
            rest = rest[digits..].strip_prefix(b"#")?;
            pid = Some(u32::try_from(n).ok()?);
            let (_, digits) = leading_number(rest)?;
            rest = rest[digits..].strip_prefix(b":")?;
            rest = rest.strip_prefix(b" ").unwrap_or(rest);
        }

        let mut connection = None;
        if let Some(after_star) = rest.strip_prefix(b"*") {
            if let Some((n, digits)) = leading_number(after_star) {
                connection = Some(n);
                rest = &after_star[digits..];
                rest = rest.strip_prefix(b" ").unwrap_or(rest);
            }
        }

        Some(ErrorLine {
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
        })
    }

    /// Splits the rest of the line left in `message` by
    /// [`ErrorLine::parse_prefix`] into message, errno and phase; returns
    /// the context (`client: …`), unsplit.
    pub(crate) fn split_text(&mut self) -> Option<&'a [u8]> {
        let text = self.message;
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
            if let Some(open) = rfind_byte(b'(', before).filter(|&i| i > 0 && before[i - 1] == b' ')
            {
                let open = open - 1;
                let inner = &before[open + 2..before.len() - 1];
                // `(<errno>: <strerror>)`: digits, then the colon.
                if let Some((n, digits)) = leading_number(inner) {
                    if inner.get(digits) == Some(&b':') {
                        self.errno = u16::try_from(n).ok();
                        self.message = &before[..open];
                    }
                }
            }
        }
        ctx
    }

    /// Splits the context (which starts with `client: `) into the fields
    /// `fields` asks for.
    pub(crate) fn split_context(&mut self, ctx: &'a [u8], fields: ContextFields) {
        const REQUEST: &[u8; 12] = b", request: \"";
        let mut rest = &ctx[b"client: ".len()..];
        if fields == ContextFields::UpstreamOnly {
            // The client and server values end at the first ", ", so the
            // first `, request: "` is where the full split below would
            // start the quoted fields too. Without one, that split settles
            // the line.
            if let Some(at) = find_anchored(rest, REQUEST, 11) {
                self.split_quoted_fields(&rest[at..], fields);
                return;
            }
        }
        let (client, r) = plain_value(rest);
        self.client = Some(client);
        rest = r;
        if let Some(r) = rest.strip_prefix(b", server: ") {
            let (server, r) = plain_value(r);
            self.server = Some(server);
            rest = r;
        }
        // A field other than the server before the request (a damaged line,
        // or one nginx might add) is skipped to the request.
        if !rest.starts_with(REQUEST) {
            if let Some(at) = find_anchored(rest, REQUEST, 11) {
                rest = &rest[at..];
            }
        }
        self.split_quoted_fields(rest, ContextFields::All);
    }

    /// The quoted fields, from `, request: "` (or whichever comes first)
    /// on; the host (and referrer) only for [`ContextFields::All`].
    fn split_quoted_fields(&mut self, mut rest: &'a [u8], fields: ContextFields) {
        if let Some(r) = rest.strip_prefix(b", request: \"") {
            let (v, r) = quoted_value(r, ContextKey::Subrequest);
            self.request = Some(v);
            rest = r;
        }
        if let Some(r) = rest.strip_prefix(b", subrequest: \"") {
            let (_, r) = quoted_value(r, ContextKey::Upstream);
            rest = r;
        }
        if let Some(r) = rest.strip_prefix(b", upstream: \"") {
            let (v, r) = quoted_value(r, ContextKey::Host);
            self.upstream = Some(v);
            rest = r;
        }
        if fields == ContextFields::UpstreamOnly {
            return;
        }
        if let Some(r) = rest.strip_prefix(b", host: \"") {
            let (v, _) = quoted_value(r, ContextKey::Referrer);
            self.host = Some(v);
        }
    }

    /// The request method, from the request line.
    pub fn method(&self) -> Option<&'a [u8]> {
        let req = self.request?;
        let sp = find_byte(b' ', req).unwrap_or(req.len());
        Some(&req[..sp])
    }

    /// The request URI, from the request line.
    pub fn uri(&self) -> Option<&'a [u8]> {
        let req = self.request?;
        let sp = find_byte(b' ', req)?;
        let rest = &req[sp + 1..];
        let end = rfind_byte(b' ', rest).unwrap_or(rest.len());
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

/// The number at the start of `b` and how many digits it has; `None`
/// without a digit or with more than 19 (beyond any pid or connection).
#[inline]
fn leading_number(b: &[u8]) -> Option<(u64, usize)> {
    let mut n = 0u64;
    let mut len = 0;
    while len < b.len() && len < 20 {
        let digit = b[len].wrapping_sub(b'0');
        if digit > 9 {
            break;
        }
        n = n.wrapping_mul(10).wrapping_add(u64::from(digit));
        len += 1;
    }
    (1..=19).contains(&len).then_some((n, len))
}

/// An unquoted context value: up to the next `, ` or the end.
fn plain_value(b: &[u8]) -> (&[u8], &[u8]) {
    match find_anchored(b, b", ", 0) {
        Some(i) => (&b[..i], &b[i..]),
        None => (b, &b[b.len()..]),
    }
}

/// The quoted keys of the context, in the order nginx writes them
/// (`ngx_http_log_error`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum ContextKey {
    Subrequest,
    Upstream,
    Host,
    Referrer,
}

impl ContextKey {
    /// The key that `after` (the text after `", "`) starts with.
    fn at_start_of(after: &[u8]) -> Option<ContextKey> {
        // Each arm compares with a literal, so the comparison is inlined.
        match after.first()? {
            b's' if after.starts_with(b"subrequest: \"") => Some(ContextKey::Subrequest),
            b'u' if after.starts_with(b"upstream: \"") => Some(ContextKey::Upstream),
            b'h' if after.starts_with(b"host: \"") => Some(ContextKey::Host),
            b'r' if after.starts_with(b"referrer: \"") => Some(ContextKey::Referrer),
            _ => None,
        }
    }
}

/// A quoted value (the opening quote already consumed): up to the `"` that
/// is followed by `, <key>` for a key at or after `first_next` in the
/// context's order, or that ends the line. Request lines and Host headers
/// come from clients and may themselves contain quotes.
fn quoted_value(b: &[u8], first_next: ContextKey) -> (&[u8], &[u8]) {
    let mut from = 0;
    while let Some(i) = find_byte(b'"', &b[from..]) {
        let at = from + i;
        let after = &b[at + 1..];
        if after.len() > 2
            && after[0] == b','
            && after[1] == b' '
            && ContextKey::at_start_of(&after[2..]).is_some_and(|k| k >= first_next)
        {
            return (&b[..at], after);
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
        let end = find_byte(b':', path).map_or(rest.len(), |i| i + 5);
        return &rest[..end];
    }
    let end = find_byte(b'/', rest).unwrap_or(rest.len());
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
    fn upstream_only_split_finds_what_the_full_split_finds() {
        let contexts: &[&[u8]] = &[
            br#"client: 127.0.0.1, server: a, request: "GET /x HTTP/1.1", upstream: "http://127.0.0.1:9101/x", host: "h""#,
            br#"client: ::1, server: , request: "GET /x HTTP/1.1", subrequest: "/auth", upstream: "http://unix:/run/a.sock:/auth", host: "h", referrer: "r""#,
            // Quotes and field-like text inside the client's request line.
            br#"client: 10.0.0.1, server: b, request: "GET /a", host: "x" HTTP/1.1", upstream: "http://10.0.0.9:80/a", host: "h""#,
            br#"client: 10.0.0.1, server: b, request: "GET /"quoted" HTTP/1.1", upstream: "http://10.0.0.9:80/q", host: "h""#,
            // A damaged or unknown field before the request.
            br#"client: 10.2.45.141, snrver: shop.example, request: "GET /a HTTP/1.1", upstream: "http://10.8.0.16:8080/a", host: "h""#,
            br#"client: 10.2.45.141, server: a, extra: b, request: "GET /a HTTP/1.1", upstream: "http://10.8.0.16:8080/a""#,
            // No request: no upstream either.
            br#"client: 10.0.0.1, server: 0.0.0.0:443"#,
            br#"client: 10.0.0.1, server: b, upstream: "http://10.0.0.9:80/""#,
        ];
        for ctx in contexts {
            let head = ErrorLine::parse_prefix(b"2026/11/23 14:26:24 [error] 1#0: *7 x").unwrap();
            let (mut all, mut upstream_only) = (head, head);
            all.split_context(ctx, ContextFields::All);
            upstream_only.split_context(ctx, ContextFields::UpstreamOnly);
            let shown = String::from_utf8_lossy(ctx);
            assert_eq!(upstream_only.upstream, all.upstream, "{shown}");
            assert_eq!(upstream_only.request, all.request, "{shown}");
            if shown.contains("10.8.0.16") {
                assert_eq!(all.upstream_addr(), Some(&b"10.8.0.16:8080"[..]), "{shown}");
            }
        }
    }

    #[test]
    fn only_one_carriage_return_is_a_line_end() {
        let l = b"2026/11/23 14:26:24 [error] 1#0: *7 upstream prematurely closed connection, client: 1.1.1.1, server: a, request: \"GET / HTTP/1.1\", upstream: \"x\r\r";
        assert_eq!(ErrorLine::parse(l).unwrap().upstream, Some(&b"x\r"[..]));
    }

    #[test]
    fn timestamp_shape_checks_every_fixed_byte() {
        let good = b"2026/11/23 14:26:24 [error] 1#0: x".to_vec();
        assert!(has_timestamp_shape(&good));
        assert!(!has_timestamp_shape(&good[..21]));
        assert!(has_timestamp_shape(&good[..22]));
        for at in [0, 4, 7, 10, 13, 16, 19, 20] {
            let mut bad = good.clone();
            bad[at] = b'x';
            assert!(!has_timestamp_shape(&bad), "byte {at}");
        }
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
        assert!(ErrorLine::parse(b"2026/11/23 14:27:29\xff[error] 1#0: x").is_none());
        assert!(!has_error_log_shape(
            b"127.0.0.1 - - [23/Nov/2026:14:26:24 +0000] \"GET / HTTP/1.1\""
        ));
    }
}
