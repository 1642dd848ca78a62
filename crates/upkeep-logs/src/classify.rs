//! Which signature an error-log line carries.
//!
//! The rules follow the message catalogue (facts/errors.tsv): the message
//! text, the errno and the `while` phase together decide. A line that is
//! about an upstream but matches no signature is "other upstream"; the rest
//! (client-side info, file-not-found, …) is noise.

use crate::error_line::{ErrorLine, Level};
use crate::signature::Signature;
use memchr::memmem;

/// A line that carries a signature, with all its fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Classified<'a> {
    pub signature: Signature,
    pub line: ErrorLine<'a>,
}

/// What one well-formed error-log line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Signature(Signature),
    /// An error (or worse) about an upstream that no signature describes.
    OtherUpstream,
    Noise,
}

/// Classifies one error-log line (with or without its trailing newline).
/// `None` for lines that are not error-log lines or carry no signature.
pub fn classify_line(line: &[u8]) -> Option<Classified<'_>> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let parsed = ErrorLine::parse(line)?;
    match verdict(&parsed) {
        Verdict::Signature(signature) => Some(Classified {
            signature,
            line: parsed,
        }),
        _ => None,
    }
}

/// The prefilter. Every signature about an upstream has "upstream" in its
/// line (in the message, the ` while … upstream` phase or the `upstream:`
/// field). The others (worker_connections, accept4() with EMFILE,
/// load balancing method redefined) are logged at warn, alert or crit
/// (facts/errors.tsv). Lines passing neither test are skipped unparsed:
/// most of a real error log.
pub(crate) const NEEDLE: &str = "upstream";

/// Whether the level of a line with the error-log shape is one that
/// signatures without "upstream" are logged at (or the line is `nginx:
/// [level] …` output). A byte test at the fixed offset of the level.
#[inline]
pub(crate) fn level_may_carry_signature(line: &[u8]) -> bool {
    match line.get(21) {
        Some(b'a' | b'c' | b'w') => true,
        Some(b'e') => line.get(22) == Some(&b'm'),
        // An nginx backend's own report of HTTP/1 bytes on an HTTP/2
        // connection, logged at info (h2-frame-unknown-type).
        Some(b'i') => memmem::find(line, CLIENT_UNKNOWN_FRAME).is_some(),
        _ => line.starts_with(b"nginx: ["),
    }
}

/// Whether a message (the text after `*<conn> `, not yet split) begins the
/// way one of [`signature_of`]'s messages does. A cheap first test that
/// lets the scanner drop most lines below error level unsplit; it must
/// hold for every message that `signature_of` maps to a signature (tested
/// on the whole catalogue below).
#[inline]
pub(crate) fn message_may_carry_signature(m: &[u8]) -> bool {
    match m.first() {
        Some(b'u') => m.starts_with(b"upstream "),
        Some(b'n') => m.starts_with(b"no live upstreams") || m.starts_with(NO_H2_CONNECTION_DATA),
        Some(b'c') => m.starts_with(b"connect() ") || m.starts_with(CLIENT_UNKNOWN_FRAME),
        Some(b'k') => m.starts_with(b"kevent() "),
        Some(b'b') => m.starts_with(b"bind("),
        Some(b'r') => m.starts_with(b"recv() ") || m.starts_with(b"readv() "),
        Some(b'S') => m.starts_with(b"SSL_"),
        Some(b'w') => m.starts_with(b"writev() "),
        Some(b's') => m.starts_with(b"send") || m.starts_with(b"socket() "),
        Some(b'p') => m.starts_with(b"peer closed connection in SSL handshake"),
        Some(b'a') => m.starts_with(b"accept"),
        Some(b'l') => m.starts_with(b"load balancing method redefined"),
        Some(c) => c.is_ascii_digit(),
        None => false,
    }
}

/// ngx_http_proxy_v2_module.c:4237 and ngx_http_grpc_module.c:4399.
const NO_H2_CONNECTION_DATA: &[u8] = b"no connection data found for keepalive http2 connection";
/// ngx_http_v2.c:911 (`"client sent frame with unknown type %ui"`, info).
const CLIENT_UNKNOWN_FRAME: &[u8] = b"client sent frame with unknown type ";
/// The frame types an HTTP/1 request line yields when read as an HTTP/2
/// frame header: the type is its 4th byte, `GET ` and `PUT ` give the space
/// (32), `POST` 'T', `HEAD` 'D', `DELETE` 'E', `PATCH` 'C', `OPTIONS` 'I'.
/// Other unknown types are extension frames a client may send legitimately.
const HTTP1_REQUEST_LINE_TYPES: &[u64] = &[32, 84, 68, 69, 67, 73];

const PHASE_CONNECT: &[u8] = b"connecting to upstream";
const PHASE_SSL: &[u8] = b"SSL handshaking to upstream";
const PHASE_SEND: &[u8] = b"sending request to upstream";

// errno values: Linux first, then the BSD/macOS numbers nginx prints there.
const ECONNREFUSED: [u16; 2] = [111, 61];
const EADDRNOTAVAIL: [u16; 2] = [99, 49];
const EADDRINUSE: [u16; 2] = [98, 48];
const ETIMEDOUT: [u16; 2] = [110, 60];
const ECONNRESET: [u16; 2] = [104, 54];
const EPIPE: u16 = 32;
const EMFILE: u16 = 24;
const ENFILE: u16 = 23;

pub fn verdict(l: &ErrorLine<'_>) -> Verdict {
    match signature_of(l) {
        Some(sig) => Verdict::Signature(sig),
        None if is_about_upstream(l) && l.level <= Level::Error => Verdict::OtherUpstream,
        None => Verdict::Noise,
    }
}

fn is_about_upstream(l: &ErrorLine<'_>) -> bool {
    l.upstream.is_some() || l.phase.is_some_and(|p| p.ends_with(b"upstream"))
}

/// The signature of a line; needs only the head (message, errno, phase).
pub(crate) fn signature_of(l: &ErrorLine<'_>) -> Option<Signature> {
    let m = l.message;
    let phase = l.phase.unwrap_or(b"");
    let errno = l.errno.unwrap_or(0);
    let to_upstream = phase.ends_with(b"upstream");

    if let Some(rest) = m.strip_prefix(b"upstream ") {
        return upstream_message(rest, phase, l.level);
    }
    if m.starts_with(b"no live upstreams") {
        return Some(Signature::NoLiveUpstreams);
    }
    if m.starts_with(NO_H2_CONNECTION_DATA) {
        return Some(Signature::H2CachedConnectionMismatch);
    }
    if let Some(n) = m.strip_prefix(CLIENT_UNKNOWN_FRAME) {
        let digits = n.iter().take_while(|b| b.is_ascii_digit()).count();
        let ty = std::str::from_utf8(&n[..digits])
            .ok()
            .and_then(|t| t.parse::<u64>().ok());
        return ty
            .filter(|t| l.level == Level::Info && HTTP1_REQUEST_LINE_TYPES.contains(t))
            .map(|_| Signature::H2FrameUnknownType);
    }
    if m.starts_with(b"connect() failed")
        || m.starts_with(b"connect() to ")
        || m.starts_with(b"kevent() reported that connect() failed")
    {
        // nginx connects to OCSP responders (ngx_event_openssl_stapling.c)
        // and the mail module's auth_http server with the same function
        // and message; only the phase tells an upstream apart.
        return if to_upstream {
            connect_errno(errno)
        } else {
            None
        };
    }
    if m.starts_with(b"bind(") && phase == PHASE_CONNECT {
        // proxy_bind: with a fixed source address, EADDRINUSE means its
        // ports are used up (facts/errors.tsv, bind(%V) failed).
        return (EADDRNOTAVAIL.contains(&errno) || EADDRINUSE.contains(&errno))
            .then_some(Signature::ConnectAddrUnavailable);
    }
    if starts_with_any(
        m,
        &[
            b"recv() failed",
            b"readv() failed",
            b"SSL_read() failed",
            b"kevent() reported about an closed connection",
        ],
    ) && to_upstream
    {
        if ECONNRESET.contains(&errno) {
            return Some(Signature::UpstreamReset);
        }
        if ETIMEDOUT.contains(&errno) {
            return Some(Signature::ReadTimeout);
        }
        return None;
    }
    if starts_with_any(
        m,
        &[
            b"writev() failed",
            b"send() failed",
            b"sendfile() failed",
            b"SSL_write() failed",
        ],
    ) && phase == PHASE_SEND
    {
        return (ECONNRESET.contains(&errno) || errno == EPIPE)
            .then_some(Signature::UpstreamSendFailed);
    }
    if (m.starts_with(b"SSL_do_handshake() failed")
        || m.starts_with(b"peer closed connection in SSL handshake"))
        && phase == PHASE_SSL
    {
        return Some(Signature::UpstreamSslHandshake);
    }
    // The rest are not about one upstream request. nginx logs them at
    // fixed levels, never at error or below (facts/errors.tsv); the
    // scanner reads lines without "upstream" only at those levels, so a
    // line at another level is not one of them.
    if !to_upstream && !context_free_level(l.level) {
        return None;
    }
    if starts_with_any(
        m,
        &[b"accept4() failed", b"accept() failed", b"socket() failed"],
    ) {
        return (errno == EMFILE || errno == ENFILE).then_some(Signature::TooManyOpenFiles);
    }
    if m.starts_with(b"load balancing method redefined") {
        return Some(Signature::LbMethodRedefined);
    }
    if m.first().is_some_and(u8::is_ascii_digit) {
        let digits = m.iter().take_while(|b| b.is_ascii_digit()).count();
        let rest = &m[digits..];
        if rest == b" worker_connections are not enough"
            || rest == b" worker_connections are not enough, reusing connections"
        {
            return Some(Signature::WorkerConnectionsNotEnough);
        }
        if rest.starts_with(b" worker_connections exceed open file resource limit") {
            return Some(Signature::WorkerConnectionsExceedNofile);
        }
    }
    None
}

/// The levels nginx logs the signatures without an upstream at: accept4()
/// and socket() failures (crit, alert), worker_connections (alert, warn),
/// "load balancing method redefined" (warn). The same levels as
/// [`level_may_carry_signature`] tests on the raw line.
fn context_free_level(level: Level) -> bool {
    matches!(
        level,
        Level::Emerg | Level::Alert | Level::Crit | Level::Warn
    )
}

/// Messages that begin with `upstream `.
fn upstream_message(rest: &[u8], phase: &[u8], level: Level) -> Option<Signature> {
    if rest.starts_with(b"prematurely closed connection") {
        return Some(Signature::UpstreamPrematurelyClosed);
    }
    if rest.starts_with(b"timed out") {
        // The connect timeout also covers the TLS handshake.
        return Some(if phase == PHASE_CONNECT || phase == PHASE_SSL {
            Signature::ConnectTimeout
        } else {
            Signature::ReadTimeout
        });
    }
    if rest.starts_with(b"server temporarily disabled") {
        return Some(Signature::ServerTemporarilyDisabled);
    }
    if rest.starts_with(b"SSL certificate ") {
        return Some(Signature::UpstreamSslHandshake);
    }
    if let Some(sent) = rest.strip_prefix(b"sent ") {
        if sent.starts_with(b"goaway with error ") {
            return Some(Signature::UpstreamH2Goaway);
        }
        // Framing and header errors that make nginx reject the response
        // (facts/errors.tsv: invalid header -> 502). The duplicate-header
        // warning that ends in ", ignored" is harmless and not counted.
        let rejected = starts_with_any(
            sent,
            &[
                b"invalid header",
                b"no valid HTTP/1.0 header",
                b"invalid \"Content-Length\" header",
                b"unknown \"Transfer-Encoding\"",
                b"\"Content-Length\" and \"Transfer-Encoding\" headers at the same time",
                b"HTTP/1.0 response with early hints",
                b"invalid chunked response",
            ],
        ) || (sent.starts_with(b"duplicate header line")
            && level <= Level::Error
            && !sent.ends_with(b", ignored"));
        return rejected.then_some(Signature::UpstreamInvalidHeader);
    }
    None
}

fn connect_errno(errno: u16) -> Option<Signature> {
    if ECONNREFUSED.contains(&errno) {
        Some(Signature::ConnectRefused)
    } else if EADDRNOTAVAIL.contains(&errno) {
        Some(Signature::ConnectAddrUnavailable)
    } else if ETIMEDOUT.contains(&errno) {
        Some(Signature::ConnectTimeout)
    } else if ECONNRESET.contains(&errno) {
        // A reset pending on a cached connection is reported by
        // ngx_http_upstream_test_connect as "connect() failed (104: …)"
        // although no connect() happened (facts/behaviors.md (a)).
        Some(Signature::UpstreamReset)
    } else {
        None
    }
}

fn starts_with_any(m: &[u8], prefixes: &[&[u8]]) -> bool {
    prefixes.iter().any(|p| m.starts_with(p))
}

/// Whether a line passes the prefilter (see [`NEEDLE`]).
pub(crate) fn may_carry_signature(line: &[u8]) -> bool {
    level_may_carry_signature(line) || memmem::find(line, NEEDLE.as_bytes()).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The signature of a line; also checks that the scanner's first test
    /// on the unsplit message lets every signature line through.
    fn sig(line: &str) -> Option<Signature> {
        let found = classify_line(line.as_bytes()).map(|c| c.signature);
        if found.is_some() {
            let prefix = ErrorLine::parse_prefix(line.as_bytes()).unwrap();
            assert!(message_may_carry_signature(prefix.message), "{line}");
        }
        found
    }

    const CTX: &str = r#", client: 127.0.0.1, server: , request: "GET /a HTTP/1.1", upstream: "http://127.0.0.1:9101/a", host: "h""#;

    fn err(msg: &str) -> String {
        format!("2026/11/23 14:26:24 [error] 1#0: *7 {msg}{CTX}")
    }

    #[test]
    fn each_catalogue_message_maps_to_its_signature() {
        use Signature::*;
        let cases: &[(&str, Option<Signature>)] = &[
            ("connect() failed (111: Connection refused) while connecting to upstream", Some(ConnectRefused)),
            ("connect() to 127.0.0.1:1 failed (111: Connection refused) while connecting to upstream", Some(ConnectRefused)),
            ("connect() to 10.0.0.1:80 failed (99: Cannot assign requested address) while connecting to upstream", Some(ConnectAddrUnavailable)),
            ("bind(10.0.0.5) failed (98: Address already in use) while connecting to upstream", Some(ConnectAddrUnavailable)),
            ("upstream timed out (110: Connection timed out) while connecting to upstream", Some(ConnectTimeout)),
            ("connect() failed (110: Connection timed out) while connecting to upstream", Some(ConnectTimeout)),
            ("upstream timed out (110: Connection timed out) while SSL handshaking to upstream", Some(ConnectTimeout)),
            ("upstream prematurely closed connection while reading response header from upstream", Some(UpstreamPrematurelyClosed)),
            ("upstream prematurely closed connection while reading upstream", Some(UpstreamPrematurelyClosed)),
            ("recv() failed (104: Connection reset by peer) while reading response header from upstream", Some(UpstreamReset)),
            ("readv() failed (104: Connection reset by peer) while reading upstream", Some(UpstreamReset)),
            ("connect() failed (104: Connection reset by peer) while connecting to upstream", Some(UpstreamReset)),
            ("writev() failed (32: Broken pipe) while sending request to upstream", Some(UpstreamSendFailed)),
            ("send() failed (104: Connection reset by peer) while sending request to upstream", Some(UpstreamSendFailed)),
            ("upstream timed out (110: Connection timed out) while reading response header from upstream", Some(ReadTimeout)),
            ("upstream timed out (110: Connection timed out) while reading upstream", Some(ReadTimeout)),
            ("recv() failed (110: Connection timed out) while reading response header from upstream", Some(ReadTimeout)),
            ("no live upstreams while connecting to upstream", Some(NoLiveUpstreams)),
            ("socket() failed (24: Too many open files) while connecting to upstream", Some(TooManyOpenFiles)),
            ("SSL_do_handshake() failed (SSL: error:0A00010B:SSL routines::wrong version number) while SSL handshaking to upstream", Some(UpstreamSslHandshake)),
            ("peer closed connection in SSL handshake (104: Connection reset by peer) while SSL handshaking to upstream", Some(UpstreamSslHandshake)),
            ("upstream SSL certificate verify error: (10:certificate has expired) while SSL handshaking to upstream", Some(UpstreamSslHandshake)),
            ("upstream sent invalid header: \"x\\x01...\" while reading response header from upstream", Some(UpstreamInvalidHeader)),
            ("upstream sent no valid HTTP/1.0 header while reading response header from upstream", Some(UpstreamInvalidHeader)),
            ("upstream sent too big header while reading response header from upstream", None),
            // Client-side failures are not upstream signatures.
            ("recv() failed (104: Connection reset by peer) while reading client request line", None),
            ("SSL_do_handshake() failed (SSL: error:0A00006C:SSL routines::bad key share) while SSL handshaking", None),
            ("client prematurely closed connection, so upstream connection is closed too while reading upstream", None),
            ("open() \"/srv/x\" failed (2: No such file or directory)", None),
        ];
        for (msg, want) in cases {
            assert_eq!(sig(&err(msg)), *want, "{msg}");
        }
    }

    #[test]
    fn context_free_lines() {
        use Signature::*;
        assert_eq!(
            sig("2026/11/23 14:27:30 [alert] 7198#0: 8 worker_connections are not enough"),
            Some(WorkerConnectionsNotEnough)
        );
        assert_eq!(sig("2026/11/23 14:27:30 [warn] 7198#0: 8 worker_connections are not enough, reusing connections"), Some(WorkerConnectionsNotEnough));
        assert_eq!(sig("2026/11/23 14:27:30 [emerg] 7198#0: 8 worker_connections are not enough for 9 listening sockets"), None);
        assert_eq!(sig("2026/11/23 14:27:30 [warn] 7198#0: 4096 worker_connections exceed open file resource limit: 1024"), Some(WorkerConnectionsExceedNofile));
        assert_eq!(
            sig("2026/11/23 14:27:30 [crit] 7198#0: accept4() failed (24: Too many open files)"),
            Some(TooManyOpenFiles)
        );
        assert_eq!(sig("2026/11/23 14:27:30 [error] 7198#0: accept4() failed (103: Software caused connection abort)"), None);
        // The levels nginx never logs these at.
        assert_eq!(
            sig("2026/11/23 14:27:30 [error] 7198#0: accept4() failed (24: Too many open files)"),
            None
        );
        assert_eq!(
            sig("2026/11/23 14:27:30 [info] 7198#0: 8 worker_connections are not enough"),
            None
        );
        // The same connect() message for an OCSP responder.
        assert_eq!(sig("2026/11/23 14:27:30 [error] 7198#0: *3 connect() to 192.0.2.1:80 failed (111: Connection refused) while requesting certificate status, responder: ocsp.example, peer: 192.0.2.1:80, certificate: \"/etc/ssl/a.pem\""), None);
        assert_eq!(
            sig("nginx: [warn] load balancing method redefined in /x/t3.conf:10"),
            Some(LbMethodRedefined)
        );
        assert_eq!(sig("2026/11/23 14:26:33 [warn] 1#0: *38 upstream server temporarily disabled while reading response header from upstream, client: 127.0.0.1"), Some(ServerTemporarilyDisabled));
    }

    /// HTTP/2 upstream lines as nginx prints them (formats from
    /// ngx_http_proxy_v2_module.c:2026, :4237, ngx_http_grpc_module.c:1845,
    /// :4399 and ngx_http_v2.c:911; the proxy-side lines carry the request
    /// context of `ngx_http_log_error`).
    #[test]
    fn http2_upstream_lines() {
        use Signature::*;
        let h2_ctx = r#", client: 127.0.0.1, server: , request: "GET /h2 HTTP/1.1", upstream: "http://127.0.0.1:8081/h2", host: "127.0.0.1:8080""#;
        let mismatch = format!(
            "2026/12/05 13:10:02 [error] 4711#4711: *12 no connection data found for keepalive http2 connection while sending request to upstream{h2_ctx}"
        );
        assert_eq!(sig(&mismatch), Some(H2CachedConnectionMismatch));
        let grpc = r#"2026/12/05 13:10:02 [error] 4711#4711: *14 no connection data found for keepalive http2 connection while sending request to upstream, client: 127.0.0.1, server: , request: "POST /api.Greeter/Hello HTTP/2.0", upstream: "grpc://127.0.0.1:50051", host: "127.0.0.1:8080""#;
        assert_eq!(sig(grpc), Some(H2CachedConnectionMismatch));
        let goaway = format!(
            "2026/12/05 13:10:03 [error] 4711#4711: *15 upstream sent goaway with error 0 while reading response header from upstream{h2_ctx}"
        );
        assert_eq!(sig(&goaway), Some(UpstreamH2Goaway));
        let parsed = classify_line(goaway.as_bytes()).unwrap();
        assert_eq!(parsed.line.upstream, Some(&b"http://127.0.0.1:8081/h2"[..]));

        // The backend's side: an HTTP/1 request line read as a frame header.
        let backend = "2026/12/05 13:10:04 [info] 5120#5120: *3 client sent frame with unknown type 32 while processing HTTP/2 connection, client: 127.0.0.1, server: 127.0.0.1:8081";
        assert_eq!(sig(backend), Some(H2FrameUnknownType));
        assert!(may_carry_signature(backend.as_bytes()));
        let post = backend.replace("type 32", "type 84");
        assert_eq!(sig(&post), Some(H2FrameUnknownType));
        // An extension frame type is what clients may send legitimately.
        let extension = backend.replace("type 32", "type 16");
        assert_eq!(sig(&extension), None);
        // Only at info, where ngx_http_v2.c logs it.
        let other_level = backend.replace("[info]", "[error]");
        assert_eq!(sig(&other_level), None);
        // A plain info line stays out of the parser.
        assert!(!may_carry_signature(
            b"2026/12/05 13:10:04 [info] 5120#5120: *3 client closed connection while waiting for request"
        ));
        assert!(!H2FrameUnknownType.is_request_failure());
        assert!(H2CachedConnectionMismatch.is_request_failure());
    }

    #[test]
    fn other_upstream_and_noise() {
        let l = err("upstream sent too big header while reading response header from upstream");
        assert_eq!(
            verdict(&ErrorLine::parse(l.as_bytes()).unwrap()),
            Verdict::OtherUpstream
        );
        let l = "2026/11/23 14:26:24 [warn] 1#0: *9 an upstream response is buffered to a temporary file /x/1 while reading upstream, client: 1.1.1.1";
        assert_eq!(
            verdict(&ErrorLine::parse(l.as_bytes()).unwrap()),
            Verdict::Noise
        );
        let l =
            "2026/11/23 14:26:24 [info] 30381#0: *1 client 127.0.0.1 closed keepalive connection";
        assert_eq!(
            verdict(&ErrorLine::parse(l.as_bytes()).unwrap()),
            Verdict::Noise
        );
    }

    #[test]
    fn every_signature_line_contains_a_needle() {
        for line in [
            err("connect() failed (111: Connection refused) while connecting to upstream"),
            "2026/11/23 14:27:30 [crit] 7198#0: accept4() failed (24: Too many open files)".into(),
            "2026/11/23 14:27:30 [alert] 7198#0: 8 worker_connections are not enough".into(),
            "nginx: [warn] load balancing method redefined in /x/t3.conf:10".into(),
        ] {
            assert!(may_carry_signature(line.as_bytes()));
        }
    }
}
