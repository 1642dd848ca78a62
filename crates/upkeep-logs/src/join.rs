//! Joining error-log failures with the access log, to tell the failures
//! clients saw (a 5xx) from those nginx retried away.
//!
//! Both logs are streamed side by side in time order. nginx writes a
//! request's error lines when an attempt fails and its access line when the
//! request ends, so an access record at time T can only match failures
//! logged at or before T. Each failure waits in a small pending table until
//! the access stream passes its time; anything older than [`HORIZON`] is
//! given up as unmatched, so memory stays bounded by the failure rate, not by
//! the size of the logs.
//!
//! The join key is the client connection serial (`*N` in the error log,
//! `$connection` in the access log) plus the request method and URI; without
//! `$connection`, the client address plus method and URI. A request can log
//! several failures (one per failed attempt): the number of 5xx entries in
//! `$upstream_status` says how many belong to it.

use crate::access_format::{AccessRecord, Field, LogFormat};
use crate::analysis::InputReport;
use crate::classify::Classified;
use crate::error_line::ErrorLine;
use crate::fxhash::{hash_bytes, FxMap};
use crate::input::Input;
use crate::reader::LineBlocks;
use crate::scan::{LineStats, MAX_LINE};
use crate::signature::Signature;
use crate::time::LogTime;
use std::collections::{BTreeMap, VecDeque};
use std::io::Read;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// Seconds an access record may precede a failure it belongs to: workers
/// write with their own cached clocks, so lines can be a little out of order.
const SLACK: i64 = 2;
/// Failures with no access record this long after them are unmatched.
const HORIZON: i64 = 600;

/// What happened to the requests behind one signature.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcomes {
    /// The request ended in a 5xx: the client saw the failure.
    pub client_visible: u64,
    /// The request ended well (or with a non-5xx status from the backend):
    /// nginx retried the failure away.
    pub retried: u64,
    /// The failure hit the response body (`while reading upstream`): the
    /// status was already sent, the client got a cut-off response.
    pub truncated: u64,
    /// The client gave up first (499).
    pub client_aborted: u64,
    /// No access record was found for it.
    pub unmatched: u64,
    /// Matched failures whose attempt logged `$upstream_connect_time`
    /// `0.000`: what a reused keep-alive connection shows (nginx sends on a
    /// cached connection within the same event-loop tick), though a fast
    /// fresh connect on a LAN can show it too (facts/behaviors.md (g)).
    pub connect_time_zero: u64,
    pub visible_by_method: BTreeMap<String, u64>,
    pub visible_by_status: BTreeMap<u16, u64>,
}

/// Requests per client connection, from `$connection_requests`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectionReuse {
    pub requests: u64,
    /// Records with `$connection_requests` = 1: connections that started
    /// inside the log.
    pub connections: u64,
    pub max: u64,
}

impl ConnectionReuse {
    pub fn mean(&self) -> Option<f64> {
        (self.connections > 0).then(|| self.requests as f64 / self.connections as f64)
    }
}

#[derive(Clone, Debug, Default)]
pub struct AccessReport {
    pub inputs: Vec<InputReport>,
    pub format: String,
    pub records: u64,
    /// Lines that do not fit the format.
    pub unparsed: u64,
    /// Whether failures could be matched (the format needs a time).
    pub joined: bool,
    pub notes: Vec<String>,
    pub status_5xx: BTreeMap<u16, u64>,
    /// Requests with more than one upstream attempt.
    pub requests_retried: u64,
    /// … of which the client did not get a 5xx.
    pub retries_recovered: u64,
    /// 502/504 answers with upstream attempts but no matching error line
    /// (error_log level above `error`, or the logs cover different times).
    /// Meaningful only when error logs were read (`with_error_log`).
    pub unexplained_5xx: u64,
    pub with_error_log: bool,
    pub reuse: Option<ConnectionReuse>,
    pub per_signature: [Outcomes; Signature::COUNT],
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    time: LogTime,
    signature: Signature,
    /// Failed while reading the response body, after the header went out.
    in_body: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyKind {
    Connection,
    ClientAddr,
    None,
}

/// Streams access logs alongside the error-log scan.
pub struct Joiner {
    format: LogFormat,
    msec_offset: i64,
    key_kind: KeyKind,
    with_request: bool,
    stream: AccessStream,
    peeked: Option<Option<LogTime>>,
    pending: FxMap<u64, VecDeque<Pending>>,
    expiry: VecDeque<(LogTime, u64)>,
    report: AccessReport,
}

impl Joiner {
    /// `msec_offset`: the local zone's offset from UTC in seconds, used only
    /// when the format logs `$msec`.
    pub fn new(
        inputs: Vec<Input>,
        format: LogFormat,
        msec_offset: i64,
        progress: Option<Arc<AtomicU64>>,
    ) -> Joiner {
        let with_request = format.has(Field::Request)
            || (format.has(Field::RequestMethod) && format.has(Field::RequestUri));
        let key_kind = if format.has(Field::Connection) {
            KeyKind::Connection
        } else if format.has(Field::RemoteAddr) && with_request {
            KeyKind::ClientAddr
        } else {
            KeyKind::None
        };
        let mut report = AccessReport {
            format: format.source().to_string(),
            ..AccessReport::default()
        };
        report.joined = key_kind != KeyKind::None;
        if key_kind == KeyKind::None {
            report.notes.push(
                "the access log format has neither $connection nor $remote_addr with $request: failures cannot be matched with requests".into(),
            );
        } else if !format.has_time() {
            report.notes.push(
                "the access log format has no $time_local, $time_iso8601 or $msec: failures are matched after reading everything, holding every failure in memory".into(),
            );
        } else if !format.has(Field::UpstreamStatus) {
            report
                .notes
                .push("log $upstream_status to see how many attempts each request needed".into());
        }
        if !format.has(Field::ConnectionRequests) {
            report
                .notes
                .push("log $connection_requests to see requests per client connection".into());
        }
        Joiner {
            format,
            msec_offset,
            key_kind,
            with_request,
            stream: AccessStream::new(inputs, progress),
            peeked: None,
            pending: FxMap::default(),
            expiry: VecDeque::new(),
            report,
        }
    }

    /// Takes one error-log failure (in error-log order).
    pub fn on_event(&mut self, event: &Classified<'_>) {
        if !self.report.joined || !event.signature.is_request_failure() {
            return;
        }
        let Some(t) = event.line.time else { return };
        if self.format.has_time() {
            self.consume_until(Some(LogTime(t.0 - SLACK)));
        }
        match self.event_key(&event.line) {
            Some(key) => {
                self.pending.entry(key).or_default().push_back(Pending {
                    time: t,
                    signature: event.signature,
                    in_body: event.line.phase == Some(b"reading upstream"),
                });
                self.expiry.push_back((t, key));
            }
            None => self.report.per_signature[event.signature.index()].unmatched += 1,
        }
    }

    /// Reads the rest of the access logs and returns the report.
    pub fn finish(mut self) -> AccessReport {
        self.consume_until(None);
        for q in self.pending.values() {
            for p in q {
                self.report.per_signature[p.signature.index()].unmatched += 1;
            }
        }
        self.report.inputs = std::mem::take(&mut self.stream.reports);
        self.report
    }

    fn event_key(&self, l: &ErrorLine<'_>) -> Option<u64> {
        let (method, uri) = if self.with_request {
            (l.method()?, l.uri()?)
        } else {
            (&b""[..], &b""[..])
        };
        match self.key_kind {
            KeyKind::Connection => Some(hash_bytes(&[&l.connection?.to_le_bytes(), method, uri])),
            KeyKind::ClientAddr => Some(hash_bytes(&[l.client?, method, uri])),
            KeyKind::None => None,
        }
    }
}

fn record_key(key_kind: KeyKind, with_request: bool, r: &AccessRecord<'_>) -> Option<u64> {
    let (method, uri) = if with_request {
        (r.method?, r.uri?)
    } else {
        (&b""[..], &b""[..])
    };
    match key_kind {
        KeyKind::Connection => Some(hash_bytes(&[&r.connection?.to_le_bytes(), method, uri])),
        KeyKind::ClientAddr => Some(hash_bytes(&[r.remote_addr?, method, uri])),
        KeyKind::None => None,
    }
}

impl Joiner {
    /// Consumes access records with a time before `limit` (all, if `None`).
    fn consume_until(&mut self, limit: Option<LogTime>) {
        loop {
            if let (Some(limit), Some(Some(t))) = (limit, self.peeked) {
                if t >= limit {
                    return;
                }
            }
            let (key_kind, with_request) = (self.key_kind, self.with_request);
            let Some(line) = self.stream.current() else {
                return;
            };
            if line.len() > MAX_LINE {
                self.stream.note_overlong();
                self.stream.advance();
                self.peeked = None;
                continue;
            }
            let Some(rec) = self.format.parse_line(line, self.msec_offset) else {
                if !line.is_empty() {
                    self.report.unparsed += 1;
                    self.stream.note_unparsed();
                }
                self.stream.advance();
                self.peeked = None;
                continue;
            };
            if let (Some(limit), Some(t)) = (limit, rec.time) {
                if t >= limit {
                    self.peeked = Some(Some(t));
                    return;
                }
            }
            // Split borrows: the record borrows the stream's buffer.
            let key = record_key(key_kind, with_request, &rec);
            process_record(
                &rec,
                key,
                &mut self.report,
                &mut self.pending,
                &mut self.expiry,
            );
            self.stream.advance();
            self.peeked = None;
        }
    }
}

fn process_record(
    rec: &AccessRecord<'_>,
    key: Option<u64>,
    report: &mut AccessReport,
    pending: &mut FxMap<u64, VecDeque<Pending>>,
    expiry: &mut VecDeque<(LogTime, u64)>,
) {
    report.records += 1;
    let status = rec.status.unwrap_or(0);
    if status >= 500 {
        *report.status_5xx.entry(status).or_insert(0) += 1;
    }
    let attempts = rec.attempts();
    if attempts > 1 {
        report.requests_retried += 1;
        if status < 500 {
            report.retries_recovered += 1;
        }
    }
    if let Some(cr) = rec.connection_requests {
        let reuse = report.reuse.get_or_insert_with(ConnectionReuse::default);
        reuse.requests += 1;
        if cr == 1 {
            reuse.connections += 1;
        }
        reuse.max = reuse.max.max(cr);
    }

    // Give up on failures too old to still be waiting for their request.
    let horizon = LogTime(rec.time.map_or(i64::MIN, |t| t.0.saturating_sub(HORIZON)));
    while let Some(&(et, k)) = expiry.front() {
        if et >= horizon {
            break;
        }
        expiry.pop_front();
        if let Some(q) = pending.get_mut(&k) {
            while q.front().is_some_and(|p| p.time < horizon) {
                let p = q.pop_front().expect("front exists");
                report.per_signature[p.signature.index()].unmatched += 1;
            }
            if q.is_empty() {
                pending.remove(&k);
            }
        }
    }

    let mut matched = 0;
    if let Some(key) = key {
        if let Some(q) = pending.get_mut(&key) {
            let failed = rec.upstream_statuses().filter(|&s| s >= 500).count();
            let want = if failed > 0 { failed } else { usize::MAX };
            // The attempts that failed, in order: the n-th failure logged
            // for this request is the n-th 5xx attempt.
            let mut failed_attempts = rec
                .upstream_statuses()
                .enumerate()
                .filter(|&(_, s)| s >= 500)
                .map(|(i, _)| i);
            while matched < want {
                match q.front() {
                    Some(p) if rec.time.is_none_or(|t| p.time.0 <= t.0 + SLACK) => {
                        let p = q.pop_front().expect("front exists");
                        let o = &mut report.per_signature[p.signature.index()];
                        record_outcome(o, rec, status, p.in_body);
                        let attempt = failed_attempts.next();
                        if attempt.and_then(|i| rec.connect_time(i)) == Some(b"0.000") {
                            o.connect_time_zero += 1;
                        }
                        matched += 1;
                    }
                    _ => break,
                }
            }
            if q.is_empty() {
                pending.remove(&key);
            }
        }
    }
    if matched == 0 && (status == 502 || status == 504) && attempts > 0 {
        report.unexplained_5xx += 1;
    }
}

fn record_outcome(o: &mut Outcomes, rec: &AccessRecord<'_>, status: u16, in_body: bool) {
    if status >= 500 {
        o.client_visible += 1;
        let method = String::from_utf8_lossy(rec.method.unwrap_or(b"-")).into_owned();
        *o.visible_by_method.entry(method).or_insert(0) += 1;
        *o.visible_by_status.entry(status).or_insert(0) += 1;
    } else if status == 499 {
        o.client_aborted += 1;
    } else if in_body {
        o.truncated += 1;
    } else {
        o.retried += 1;
    }
}

/// The access-log inputs as one stream of lines, read a block at a time.
struct AccessStream {
    inputs: VecDeque<Input>,
    progress: Option<Arc<AtomicU64>>,
    current: Option<LineBlocks<Box<dyn Read + Send>>>,
    block: Vec<u8>,
    pos: usize,
    reports: Vec<InputReport>,
}

impl AccessStream {
    fn new(inputs: Vec<Input>, progress: Option<Arc<AtomicU64>>) -> AccessStream {
        AccessStream {
            inputs: inputs.into(),
            progress,
            current: None,
            block: Vec::new(),
            pos: 0,
            reports: Vec::new(),
        }
    }

    fn stats(&mut self) -> &mut LineStats {
        &mut self.reports.last_mut().expect("an input is open").stats
    }

    /// The current line (without `\n`), reading on as needed.
    fn current(&mut self) -> Option<&[u8]> {
        while self.pos >= self.block.len() {
            if !self.next_block() {
                return None;
            }
        }
        let rest = &self.block[self.pos..];
        let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        Some(&self.block[self.pos..self.pos + end])
    }

    fn advance(&mut self) {
        let rest = &self.block[self.pos..];
        let end = memchr::memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
        self.pos += end;
        self.stats().lines += 1;
    }

    fn note_unparsed(&mut self) {
        let s = self.stats();
        s.unparsed += 1;
        s.first_unparsed.get_or_insert(s.lines + 1);
    }

    fn note_overlong(&mut self) {
        let s = self.stats();
        s.overlong += 1;
        s.first_overlong.get_or_insert(s.lines + 1);
        // advance() counts the line itself.
    }

    fn next_block(&mut self) -> bool {
        loop {
            if self.current.is_none() {
                let Some(input) = self.inputs.pop_front() else {
                    return false;
                };
                let mut report = InputReport {
                    name: input.name.clone(),
                    ..InputReport::default()
                };
                match input.open(self.progress.clone()) {
                    Ok(opened) => {
                        report.gzip = opened.gzip;
                        self.current = Some(LineBlocks::new(opened.reader));
                    }
                    Err(e) => report.error = Some(e.to_string()),
                }
                self.reports.push(report);
                continue;
            }
            let lines = self.current.as_mut().expect("checked above");
            let (skipped, next) = lines.next_block_counted();
            let next = match next {
                Ok(Some(block)) => {
                    self.block.clear();
                    self.block.extend_from_slice(block);
                    self.pos = 0;
                    Ok(true)
                }
                Ok(None) => Ok(false),
                Err(e) => Err(e),
            };
            if skipped > 0 {
                let s = self.stats();
                s.first_overlong.get_or_insert(s.lines + 1);
                s.lines += skipped;
                s.overlong += skipped;
            }
            match next {
                Ok(true) => return true,
                Ok(false) => self.current = None,
                Err(e) => {
                    self.current = None;
                    let lines = self.stats().lines;
                    self.reports.last_mut().expect("open").error =
                        Some(format!("{e} (after {lines} lines)"));
                }
            }
        }
    }
}
