//! The measurements on one target.
//!
//! 1. **First exchange** on connection A: HTTP version, status, whether the
//!    response allows reuse (`Connection: close`, HTTP/1.0 without
//!    keep-alive, a body delimited by the close).
//! 2. **Idle timeout**, on A and on `idle_samples - 1` more connections
//!    opened a little later: after one complete response, send nothing and
//!    time how long until the backend closes (FIN or RST). Backends whose
//!    idle sweep runs on a coarse tick (gunicorn's gthread worker checks once
//!    a second) close anywhere in `[timeout, timeout + tick]`; staggered
//!    samples and taking the shortest get closer to the true lower bound,
//!    which is what matters for nginx's `keepalive_timeout`.
//! 3. **Request cap**, concurrently, on connection B: requests back to back
//!    (rate limited) until a response says `Connection: close` (announced),
//!    the backend closes before answering the next request (silent: the
//!    dangerous case, nginx would reuse that connection), or the bound.
//!
//! So a target costs at most `idle_samples + 1` connections at a time, and
//! its time is the longer of the idle wait and the request loop.

use crate::http::{build_request, read_response, ReadError, Response};
use crate::pace::{sleep_until, Pacer, Pacers};
use crate::report::TargetReport;
use crate::target::{ConnectAddr, Scheme, Target};
use crate::transport::{is_closed_error, CloseKind, Connection, Fill};
use crate::{Cancel, ProbeOptions};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Delay between the starts of successive idle samples.
const SAMPLE_STAGGER: Duration = Duration::from_millis(400);

/// Everything needed to open connections to one target.
struct Link<'a> {
    target: &'a Target,
    addr: ConnectAddr,
    tls: Option<Arc<rustls::ClientConfig>>,
    opts: &'a ProbeOptions,
    request: Vec<u8>,
    /// The rate limit of the backend address connected to, shared with
    /// every other target that reaches the same address.
    pacer: Arc<Pacer>,
    cancel: &'a Cancel,
    /// The target's overall end (start + max wait).
    deadline: Instant,
}

impl Link<'_> {
    /// Connects within `--timeout`, but never past the target's deadline.
    fn open(&self) -> Result<Connection, String> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "the max wait ({}) ran out before connecting",
                crate::render::seconds(self.opts.max_wait.as_millis() as u64)
            ));
        }
        let name = self.target.tls_name();
        let tls = self.tls.as_ref().map(|c| (c, name.as_str()));
        Connection::open(&self.addr, tls, self.opts.io_timeout.min(left))
    }

    /// Why an exchange stopped at the deadline, for the report: "no answer
    /// to the first request within 2.0 s (--max-wait)".
    fn stopped_reason(&self, sent: bool, which: &str) -> String {
        let wait = crate::render::seconds(self.opts.max_wait.as_millis() as u64);
        if sent {
            format!("no answer to the {which} request within {wait} (--max-wait)")
        } else {
            format!(
                "the {which} request was not sent within {wait} (--max-wait): held back by --rate"
            )
        }
    }

    /// Why an exchange ended at `--timeout`, before the target's max wait:
    /// "no answer to the first request within 1.0 s (--timeout)".
    fn timeout_reason(&self, which: &str) -> String {
        let timeout = crate::render::seconds(self.opts.io_timeout.as_millis() as u64);
        format!("no answer to the {which} request within {timeout} (--timeout)")
    }

    /// Sends the request and reads one response, waiting at most until
    /// `response_deadline`.
    fn exchange(&self, conn: &mut Connection, response_deadline: Instant) -> Exchange {
        if !self.pacer.take(self.deadline, self.cancel) {
            return Exchange::Stopped { sent: false };
        }
        if let Err(e) = conn.send(&self.request) {
            return if is_closed_error(&e) {
                Exchange::Closed {
                    kind: CloseKind::Rst,
                    at: Instant::now(),
                }
            } else {
                Exchange::Failed(format!("sending the request: {e}"))
            };
        }
        match read_response(
            conn,
            &self.target.method,
            response_deadline,
            self.cancel,
            self.opts.max_body,
        ) {
            Ok(resp) => Exchange::Response(resp),
            Err(ReadError::ClosedBeforeResponse { kind, at }) => Exchange::Closed { kind, at },
            Err(ReadError::Cancelled) => Exchange::Stopped { sent: true },
            Err(ReadError::Timeout) if Instant::now() >= self.deadline => {
                Exchange::Stopped { sent: true }
            }
            Err(ReadError::Timeout) => Exchange::TimedOut,
            Err(e) => Exchange::Failed(e.to_string()),
        }
    }
}

enum Exchange {
    Response(Response),
    /// The backend closed before any byte of a response.
    Closed {
        kind: CloseKind,
        at: Instant,
    },
    /// Deadline or Ctrl-C; `sent`: the request went out (else the rate
    /// limit held it back).
    Stopped {
        sent: bool,
    },
    /// No complete response within `--timeout` (the max wait not over).
    TimedOut,
    Failed(String),
}

/// Probes one target; never panics, every failure ends up in the report.
pub fn probe_target(
    target: &Target,
    tls: Option<Arc<rustls::ClientConfig>>,
    opts: &ProbeOptions,
    pacers: &Pacers,
    cancel: &Cancel,
) -> TargetReport {
    let started = Instant::now();
    let mut rep = TargetReport::new(target.spec.clone(), target.upstream.clone(), target.scheme);
    run(target, tls, opts, pacers, cancel, started, &mut rep);
    if cancel.is_cancelled() {
        rep.notes
            .push("interrupted: values are what was measured so far".into());
    }
    rep.elapsed_ms = started.elapsed().as_millis() as u64;
    rep
}

fn run(
    target: &Target,
    tls: Option<Arc<rustls::ClientConfig>>,
    opts: &ProbeOptions,
    pacers: &Pacers,
    cancel: &Cancel,
    started: Instant,
    rep: &mut TargetReport,
) {
    if target.scheme == Scheme::Https && tls.is_none() {
        rep.error = Some("no TLS configuration for an https target".into());
        return;
    }
    let addrs = match target.resolve() {
        Ok(a) => a,
        Err(e) => {
            rep.error = Some(e);
            return;
        }
    };
    let mut link = Link {
        target,
        addr: addrs[0].clone(),
        tls,
        opts,
        request: build_request(&target.method, &target.path, &target.host_header),
        pacer: pacers.for_addr(&addrs[0]),
        cancel,
        deadline: started + opts.max_wait,
    };

    // Connection A. With several addresses, the first that accepts.
    let mut conn = None;
    let mut errors = Vec::new();
    for addr in &addrs {
        link.addr = addr.clone();
        match link.open() {
            Ok(c) => {
                link.pacer = pacers.for_addr(addr);
                conn = Some(c);
                break;
            }
            Err(e) => errors.push(e),
        }
    }
    let Some(mut conn) = conn else {
        rep.error = Some(errors.join("; "));
        return;
    };
    rep.address = Some(link.addr.to_string());

    // `--timeout` bounds the wait for the answer, and so does the target's
    // max wait, whichever ends first.
    let first_deadline = (Instant::now() + opts.io_timeout).min(link.deadline);
    let first = match link.exchange(&mut conn, first_deadline) {
        Exchange::Response(r) => r,
        Exchange::Closed { kind, .. } => {
            rep.error = Some(format!(
                "the backend closed the connection ({}) without answering the first request",
                kind_name(kind)
            ));
            return;
        }
        Exchange::Stopped { sent } => {
            // After Ctrl-C the report says "interrupted"; otherwise the max
            // wait ran out, which must not pass for an empty success.
            if !cancel.is_cancelled() {
                rep.error = Some(link.stopped_reason(sent, "first"));
            }
            return;
        }
        Exchange::TimedOut => {
            rep.error = Some(link.timeout_reason("first"));
            return;
        }
        Exchange::Failed(e) => {
            rep.error = Some(format!("first request: {e}"));
            return;
        }
    };
    rep.http_version = Some(format!("1.{}", first.minor_version));
    rep.status = Some(first.status);
    rep.server = first.server.clone();
    rep.keep_alive_header = first.keep_alive.clone();
    rep.requests_sent = 1;
    if !(200..400).contains(&first.status) {
        rep.notes.push(format!(
            "the first response was {}: the backend may treat error responses differently; choose a path with --path",
            first.status
        ));
    }

    if !first.reusable() {
        record_close_after_first(&link, &mut conn, &first, rep);
        return;
    }
    rep.keepalive = Some(true);
    rep.closes_after_response = Some(false);

    let samples = opts.idle_samples.clamp(1, 4);
    let (idle, cap) = std::thread::scope(|s| {
        let link = &link;
        let cap = (opts.max_requests >= 2).then(|| s.spawn(move || request_cap(link)));
        let extra: Vec<_> = (1..samples)
            .map(|k| {
                s.spawn(move || {
                    if !sleep_until(Instant::now() + SAMPLE_STAGGER * k, link.cancel) {
                        return IdleResult::Stopped {
                            waited: Duration::ZERO,
                        };
                    }
                    idle_sample(link)
                })
            })
            .collect();
        let mut idle = vec![wait_idle(&mut conn, first.done_at, link)];
        idle.extend(extra.into_iter().map(|h| {
            h.join()
                .unwrap_or_else(|_| IdleResult::Failed("idle sample thread panicked".into()))
        }));
        let cap = cap.map(|h| {
            h.join().unwrap_or(CapResult {
                answered: 0,
                end: CapEnd::Failed("request-cap thread panicked".into()),
                last_gap: Duration::ZERO,
            })
        });
        (idle, cap)
    });
    record_idle(&idle, opts, rep);
    if let Some(cap) = cap {
        record_cap(&cap, opts, rep);
    } else {
        rep.notes
            .push("request cap not measured (--max-requests below 2)".into());
    }
    reconcile(rep);
}

/// The first response already rules out reuse.
fn record_close_after_first(
    link: &Link<'_>,
    conn: &mut Connection,
    first: &Response,
    rep: &mut TargetReport,
) {
    rep.keepalive = Some(false);
    rep.closes_after_response = Some(true);
    rep.max_requests = Some(1);
    rep.announces_close = Some(true);
    if first.connection_close {
        rep.close_announced_on_request = Some(1);
        rep.notes
            .push("every response says `Connection: close`: the backend allows no reuse".into());
    } else if first.framing == crate::http::Framing::UntilClose {
        rep.notes.push(
            "the response body is delimited by the close (no Content-Length, not chunked): no reuse possible"
                .into(),
        );
    } else {
        rep.notes.push(format!(
            "HTTP/1.{} response without `Connection: keep-alive`: no reuse",
            first.minor_version
        ));
    }
    // How the close comes (it should follow at once).
    rep.close_kind = match first.closed {
        Some(k) => Some(k),
        None => confirm_close(conn, link),
    };
}

fn kind_name(kind: CloseKind) -> &'static str {
    match kind {
        CloseKind::Fin => "FIN",
        CloseKind::Rst => "RST",
    }
}

#[derive(Debug)]
enum IdleResult {
    Closed {
        after: Duration,
        kind: CloseKind,
        /// Bytes the backend sent on the idle connection (e.g. a 408).
        unsolicited: usize,
        first_bytes: String,
    },
    /// Still open at the target's deadline.
    StillOpen {
        waited: Duration,
    },
    Stopped {
        waited: Duration,
    },
    /// The sample could not start (connect or request failed), or the first
    /// response did not allow reuse.
    Failed(String),
}

/// One extra idle sample on a new connection.
fn idle_sample(link: &Link<'_>) -> IdleResult {
    let mut conn = match link.open() {
        Ok(c) => c,
        Err(e) => return IdleResult::Failed(e),
    };
    // A backend that serves one connection at a time answers only once the
    // first idle connection is gone: allow up to the target's deadline.
    match link.exchange(&mut conn, link.deadline) {
        Exchange::Response(r) if r.reusable() => wait_idle(&mut conn, r.done_at, link),
        Exchange::Response(_) => IdleResult::Failed("a later response did not allow reuse".into()),
        Exchange::Closed { kind, .. } => {
            IdleResult::Failed(format!("closed ({}) before answering", kind_name(kind)))
        }
        Exchange::Stopped { sent } => {
            if link.cancel.is_cancelled() {
                IdleResult::Stopped {
                    waited: Duration::ZERO,
                }
            } else {
                IdleResult::Failed(link.stopped_reason(sent, "first"))
            }
        }
        Exchange::TimedOut => IdleResult::Failed(link.timeout_reason("first")),
        Exchange::Failed(e) => IdleResult::Failed(e),
    }
}

/// Sends nothing and waits for the backend to close, timing from `since`
/// (when the last response byte was read).
fn wait_idle(conn: &mut Connection, since: Instant, link: &Link<'_>) -> IdleResult {
    let mut unsolicited = conn.buf.len();
    let mut first_bytes = String::from_utf8_lossy(&conn.buf[..conn.buf.len().min(60)]).into_owned();
    conn.buf.clear();
    loop {
        match conn.fill(link.deadline, link.cancel) {
            Ok(Fill::Data(n)) => {
                if unsolicited == 0 {
                    first_bytes =
                        String::from_utf8_lossy(&conn.buf[..conn.buf.len().min(60)]).into_owned();
                }
                unsolicited += n;
                conn.buf.clear();
            }
            Ok(Fill::Closed { kind, at }) => {
                return IdleResult::Closed {
                    after: at.saturating_duration_since(since),
                    kind,
                    unsolicited,
                    first_bytes,
                }
            }
            Ok(Fill::Deadline) => {
                return IdleResult::StillOpen {
                    waited: since.elapsed(),
                }
            }
            Ok(Fill::Cancelled) => {
                return IdleResult::Stopped {
                    waited: since.elapsed(),
                }
            }
            Err(e) => return IdleResult::Failed(format!("while idle: {e}")),
        }
    }
}

struct CapResult {
    /// Complete responses received on the connection.
    answered: u32,
    end: CapEnd,
    /// Time between the last response and the close (silent closes only).
    last_gap: Duration,
}

enum CapEnd {
    /// Response number `answered` said `Connection: close` (or ended the
    /// body by closing).
    Announced {
        kind: Option<CloseKind>,
    },
    /// The backend closed after `answered` responses without saying so.
    Silent {
        kind: CloseKind,
    },
    /// `--max-requests` reached with the connection still open.
    Bound,
    Stopped,
    /// The max wait ran out before the first response on this connection
    /// (why, as a sentence).
    NoAnswer(String),
    Failed(String),
}

fn request_cap(link: &Link<'_>) -> CapResult {
    let mut result = CapResult {
        answered: 0,
        end: CapEnd::Stopped,
        last_gap: Duration::ZERO,
    };
    let mut conn = match link.open() {
        Ok(c) => c,
        Err(e) => {
            result.end = CapEnd::Failed(e);
            return result;
        }
    };
    let mut last_done = Instant::now();
    while result.answered < link.opts.max_requests {
        // The first request may wait behind our idle connection on a
        // backend that serves one connection at a time.
        let response_deadline = if result.answered == 0 {
            link.deadline
        } else {
            (Instant::now() + link.opts.io_timeout).min(link.deadline)
        };
        match link.exchange(&mut conn, response_deadline) {
            Exchange::Response(resp) => {
                result.answered += 1;
                last_done = resp.done_at;
                if !resp.reusable() {
                    let kind = match resp.closed {
                        Some(k) => Some(k),
                        None => confirm_close(&mut conn, link),
                    };
                    result.end = CapEnd::Announced { kind };
                    return result;
                }
            }
            Exchange::Closed { kind, at } => {
                result.last_gap = at.saturating_duration_since(last_done);
                result.end = if result.answered == 0 {
                    CapEnd::Failed(format!(
                        "closed ({}) without answering the first request",
                        kind_name(kind)
                    ))
                } else {
                    CapEnd::Silent { kind }
                };
                return result;
            }
            Exchange::Stopped { sent } => {
                result.end = if result.answered == 0 && !link.cancel.is_cancelled() {
                    // Not one answer on this connection: say so, or the
                    // cap would just be missing from the report.
                    CapEnd::NoAnswer(link.stopped_reason(sent, "first"))
                } else {
                    CapEnd::Stopped
                };
                return result;
            }
            Exchange::TimedOut => {
                let which = if result.answered == 0 {
                    "first"
                } else {
                    "next"
                };
                result.end = CapEnd::Failed(link.timeout_reason(which));
                return result;
            }
            Exchange::Failed(e) => {
                result.end = CapEnd::Failed(e);
                return result;
            }
        }
    }
    result.end = CapEnd::Bound;
    result
}

/// After an announced close: how does the close itself come?
fn confirm_close(conn: &mut Connection, link: &Link<'_>) -> Option<CloseKind> {
    let until = (Instant::now() + Duration::from_secs(2)).min(link.deadline);
    loop {
        match conn.fill(until, link.cancel) {
            Ok(Fill::Data(_)) => conn.buf.clear(),
            Ok(Fill::Closed { kind, .. }) => return Some(kind),
            _ => return None,
        }
    }
}

fn record_idle(idle: &[IdleResult], opts: &ProbeOptions, rep: &mut TargetReport) {
    let mut shortest: Option<(Duration, CloseKind)> = None;
    let mut open = 0;
    for (i, sample) in idle.iter().enumerate() {
        match sample {
            IdleResult::Closed {
                after,
                kind,
                unsolicited,
                first_bytes,
            } => {
                rep.idle_samples_ms.push(after.as_millis() as u64);
                rep.idle_waited_ms = rep.idle_waited_ms.max(after.as_millis() as u64);
                if shortest.is_none_or(|(d, _)| *after < d) {
                    shortest = Some((*after, *kind));
                }
                if *unsolicited > 0 {
                    rep.notes.push(format!(
                        "the backend sent {unsolicited} bytes on an idle connection before closing it (\"{}\")",
                        first_bytes.escape_debug()
                    ));
                }
            }
            IdleResult::StillOpen { waited } | IdleResult::Stopped { waited } => {
                rep.idle_waited_ms = rep.idle_waited_ms.max(waited.as_millis() as u64);
                if matches!(sample, IdleResult::StillOpen { .. }) {
                    open += 1;
                }
            }
            IdleResult::Failed(e) => rep.notes.push(format!("idle sample {}: {e}", i + 1)),
        }
    }
    if let Some((after, kind)) = shortest {
        rep.idle_timeout_ms = Some(after.as_millis() as u64);
        rep.close_kind = Some(kind);
        if open > 0 {
            rep.notes.push(format!(
                "{open} idle connection(s) were still open at the max wait while another closed after {}",
                crate::render::seconds(after.as_millis() as u64)
            ));
        }
    } else if open > 0 {
        rep.notes.push(format!(
            "idle connections were still open after {} (--max-wait): idle timeout longer, or none",
            crate::render::seconds(opts.max_wait.as_millis() as u64)
        ));
    }
}

fn record_cap(cap: &CapResult, opts: &ProbeOptions, rep: &mut TargetReport) {
    rep.requests_sent = rep.requests_sent.max(cap.answered);
    match &cap.end {
        CapEnd::Announced { kind } => {
            rep.max_requests = Some(cap.answered);
            rep.announces_close = Some(true);
            rep.close_announced_on_request = Some(cap.answered);
            if rep.close_kind.is_none() {
                rep.close_kind = *kind;
            }
        }
        CapEnd::Silent { kind } if idle_close_explains(cap, rep) => {
            // The idle connection stayed open for the idle timeout after
            // its response, and this one sat at least about that long
            // before the close: the idle timeout explains the close, so it
            // says nothing about a cap (and a cap of 1 would have closed
            // the idle connection right after its response too).
            rep.requests_sent = rep.requests_sent.max(cap.answered + 1);
            rep.cap_at_least = Some(cap.answered);
            rep.notes.push(format!(
                "request cap not measured: the request-cap connection was closed ({}) {} ms after response {}, no sooner than the idle timeout measured on another connection ({} ms), so that close may be the idle timeout; at least {} request(s) per connection were answered (a higher --rate sends requests closer together)",
                kind_name(*kind),
                cap.last_gap.as_millis(),
                cap.answered,
                rep.idle_timeout_ms.unwrap_or_default(),
                cap.answered
            ));
            if rep.close_kind.is_none() {
                rep.close_kind = Some(*kind);
            }
        }
        CapEnd::Silent { kind } => {
            rep.max_requests = Some(cap.answered);
            rep.announces_close = Some(false);
            rep.requests_sent = rep.requests_sent.max(cap.answered + 1);
            rep.notes.push(format!(
                "the backend closed ({}) after {} requests WITHOUT `Connection: close` on the last response: a client reusing the connection loses its next request",
                kind_name(*kind),
                cap.answered
            ));
            if rep.close_kind.is_none() {
                rep.close_kind = Some(*kind);
            }
        }
        CapEnd::Bound => rep.notes.push(format!(
            "no close after {} requests on one connection (--max-requests {})",
            cap.answered, opts.max_requests
        )),
        CapEnd::Stopped => {
            if cap.answered > 0 {
                rep.notes.push(format!(
                    "request cap: stopped after {} requests without a close (max wait or interrupt)",
                    cap.answered
                ));
            }
        }
        CapEnd::NoAnswer(why) => rep.notes.push(format!(
            "request cap not measured: {why} on a second connection (a backend that serves one connection at a time answers it only after the idle one closes)"
        )),
        CapEnd::Failed(e) => {
            let msg = format!("request cap: {e} (after {} responses)", cap.answered);
            rep.error.get_or_insert(msg);
        }
    }
}

/// An idle connection closed sooner than this after its response was
/// closed because of the response (no keep-alive), not by an idle timeout.
const IMMEDIATE_CLOSE: Duration = Duration::from_millis(100);

/// Whether the silent close on the request-cap connection may be the idle
/// timeout measured on the idle connection(s): the gap before it was at
/// least about that timeout (90 %, for the backend's timer granularity),
/// and that timeout is a real one, not a close right after the response.
fn idle_close_explains(cap: &CapResult, rep: &TargetReport) -> bool {
    let Some(idle_ms) = rep.idle_timeout_ms else {
        // The idle connections outlived the wait: not the idle timeout.
        return false;
    };
    let gap_ms = cap.last_gap.as_millis() as u64;
    idle_ms >= IMMEDIATE_CLOSE.as_millis() as u64 && gap_ms * 10 >= idle_ms * 9
}

/// Derived facts: a cap of one response means no reuse at all; an
/// advertised `Keep-Alive: timeout=` that disagrees with the measurement.
fn reconcile(rep: &mut TargetReport) {
    if rep.max_requests == Some(1) {
        rep.keepalive = Some(false);
        rep.closes_after_response = Some(true);
        // The "idle" close right after the response is the same close.
        rep.idle_timeout_ms = None;
    }
    if let (Some(header), Some(measured)) = (&rep.keep_alive_header, rep.idle_timeout_ms) {
        if let Some(advertised_ms) = advertised_timeout_ms(header) {
            let diff = measured.abs_diff(advertised_ms);
            if diff > 1000.max(advertised_ms / 10) {
                rep.notes.push(format!(
                    "advertises `Keep-Alive: {header}` but closed idle connections after {}",
                    crate::render::seconds(measured)
                ));
            }
        }
    }
}

fn advertised_timeout_ms(header: &str) -> Option<u64> {
    header.split(',').find_map(|part| {
        let (k, v) = part.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("timeout")
            .then(|| v.trim().parse::<u64>().ok().map(|s| s * 1000))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::advertised_timeout_ms;

    #[test]
    fn reads_keep_alive_header() {
        assert_eq!(advertised_timeout_ms("timeout=5"), Some(5000));
        assert_eq!(advertised_timeout_ms("max=100, timeout=15"), Some(15000));
        assert_eq!(advertised_timeout_ms("max=100"), None);
    }
}
