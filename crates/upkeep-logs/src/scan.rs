//! The hot loop: walk a block of complete lines, count them, check their
//! shape, and parse only the few that can carry a signature.
//!
//! Most of an error log is noise. The block is walked once for line ends
//! and the prefilter needle together (line_walk.rs), and a line is parsed
//! only when the needle occurs in it or its level is one of the few that
//! other signatures use. Nothing is allocated per line.

use crate::classify::{
    level_may_carry_signature, message_may_carry_signature, signature_of, verdict, Classified,
    Verdict,
};
use crate::error_line::{
    has_error_log_shape, has_timestamp_shape, ContextFields, ErrorLine, Level,
};
use crate::line_walk::walk_lines;
use crate::time::{parse_error_log_time, LogTime};

/// Lines longer than this are skipped and reported. nginx itself cuts
/// error-log lines at 2048 bytes (NGX_MAX_ERROR_STR), so only foreign or
/// broken input gets near it.
pub const MAX_LINE: usize = 64 * 1024;

/// Receives what the scanner finds.
pub trait EventSink {
    /// The context fields this sink reads from the lines it is given.
    fn context_fields(&self) -> ContextFields {
        ContextFields::All
    }
    fn on_signature(&mut self, event: &Classified<'_>);
    /// An error about an upstream that no signature describes.
    fn on_other_upstream(&mut self, _line: &ErrorLine<'_>) {}
}

/// Only lines with a time in `[since, until)` count. Lines with no time
/// (`nginx: [warn] …`) are kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeWindow {
    pub since: Option<LogTime>,
    pub until: Option<LogTime>,
}

impl TimeWindow {
    pub fn is_open(&self) -> bool {
        self.since.is_none() && self.until.is_none()
    }

    pub fn contains(&self, t: LogTime) -> bool {
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t < u)
    }
}

/// Per-input line accounting. Line numbers start at 1.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LineStats {
    pub lines: u64,
    pub empty: u64,
    /// Lines without the error-log shape (binary garbage, foreign formats).
    pub unparsed: u64,
    pub first_unparsed: Option<u64>,
    /// Lines over [`MAX_LINE`], skipped.
    pub overlong: u64,
    pub first_overlong: Option<u64>,
    /// Lines outside `--since/--until`.
    pub outside_window: u64,
    /// Unparsed lines containing NUL bytes: the mark of binary data.
    pub binary: u64,
}

impl LineStats {
    pub fn merge(&mut self, other: &LineStats, line_offset: u64) {
        let first = |a: Option<u64>, b: Option<u64>| a.or(b.map(|n| n + line_offset));
        self.first_unparsed = first(self.first_unparsed, other.first_unparsed);
        self.first_overlong = first(self.first_overlong, other.first_overlong);
        self.lines += other.lines;
        self.empty += other.empty;
        self.unparsed += other.unparsed;
        self.overlong += other.overlong;
        self.outside_window += other.outside_window;
        self.binary += other.binary;
    }
}

pub struct Scanner {
    window_open: bool,
    window: TimeWindow,
    pub stats: LineStats,
}

impl Scanner {
    pub fn new(window: TimeWindow) -> Scanner {
        Scanner {
            window_open: window.is_open(),
            window,
            stats: LineStats::default(),
        }
    }

    /// Scans `block`, which must hold whole lines: every line ends with
    /// `\n` except possibly the last one of the input.
    pub fn scan_block<S: EventSink>(&mut self, block: &[u8], sink: &mut S) {
        walk_lines(block, |line, has_needle| self.line(line, has_needle, sink));
    }

    /// Accounts for a line too long to hold in memory, already skipped.
    pub fn skipped_overlong_line(&mut self) {
        self.stats.lines += 1;
        self.note_overlong();
    }

    fn note_overlong(&mut self) {
        self.stats.overlong += 1;
        self.stats.first_overlong.get_or_insert(self.stats.lines);
    }

    /// One line, with or without its `\n`, tested against the needles.
    pub fn scan_line<S: EventSink>(&mut self, line: &[u8], sink: &mut S) {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        self.line(line, crate::classify::may_carry_signature(line), sink);
    }

    /// `has_needle`: the prefilter needle occurs in this line.
    #[inline]
    fn line<S: EventSink>(&mut self, line: &[u8], has_needle: bool, sink: &mut S) {
        self.stats.lines += 1;
        // The common case, kept small so the loop stays tight: a
        // well-formed line of noise.
        if !has_needle
            && self.window_open
            && line.len() <= MAX_LINE
            && has_timestamp_shape(line)
            && !level_may_carry_signature(line)
        {
            return;
        }
        self.line_slow(line, has_needle, sink);
    }

    #[inline(never)]
    fn line_slow<S: EventSink>(&mut self, line: &[u8], has_needle: bool, sink: &mut S) {
        if line.len() > MAX_LINE {
            self.note_overlong();
            return;
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            self.stats.empty += 1;
            return;
        }
        if !has_error_log_shape(line) {
            self.stats.unparsed += 1;
            self.stats.first_unparsed.get_or_insert(self.stats.lines);
            if memchr::memchr(0, line).is_some() {
                self.stats.binary += 1;
            }
            return;
        }
        if !self.window_open {
            if let Some(t) = parse_error_log_time(line) {
                if !self.window.contains(t) {
                    self.stats.outside_window += 1;
                    return;
                }
            }
        }
        if !has_needle && !level_may_carry_signature(line) {
            return;
        }
        let Some(mut parsed) = ErrorLine::parse_prefix(line) else {
            // The cheap shape test passed but the fields did not parse
            // (bad level, bad date): unknown shape after all.
            self.stats.unparsed += 1;
            self.stats.first_unparsed.get_or_insert(self.stats.lines);
            return;
        };
        // Lines below error level without a signature are noise whatever
        // their context says. Most of them ("an upstream response is
        // buffered to a temporary file") already show it in their first
        // word; skip splitting those.
        if parsed.level > Level::Error && !message_may_carry_signature(parsed.message) {
            return;
        }
        let context = parsed.split_text();
        let signature = signature_of(&parsed);
        if signature.is_none() && parsed.level > Level::Error {
            return;
        }
        if let Some(ctx) = context {
            parsed.split_context(ctx, sink.context_fields());
        }
        match signature {
            Some(signature) => sink.on_signature(&Classified {
                signature,
                line: parsed,
            }),
            None => {
                if verdict(&parsed) == Verdict::OtherUpstream {
                    sink.on_other_upstream(&parsed);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::Signature;

    #[derive(Default)]
    struct Collect(Vec<(Signature, Option<u64>)>, u64);
    impl EventSink for Collect {
        fn on_signature(&mut self, e: &Classified<'_>) {
            self.0.push((e.signature, e.line.connection));
        }
        fn on_other_upstream(&mut self, _: &ErrorLine<'_>) {
            self.1 += 1;
        }
    }

    #[test]
    fn counts_lines_and_finds_signatures_at_block_edges() {
        let text = "2026/11/23 14:26:24 [error] 1#0: *3 no live upstreams while connecting to upstream, client: 1.1.1.1\n\
                    garbage\x00line\n\
                    \n\
                    2026/11/23 14:26:24 [info] 1#0: *1 client 127.0.0.1 closed keepalive connection\n\
                    2026/11/23 14:26:25 [error] 1#0: *4 upstream prematurely closed connection while reading upstream, client: 1.1.1.1";
        let mut s = Scanner::new(TimeWindow::default());
        let mut c = Collect::default();
        s.scan_block(text.as_bytes(), &mut c);
        assert_eq!(
            c.0,
            vec![
                (Signature::NoLiveUpstreams, Some(3)),
                (Signature::UpstreamPrematurelyClosed, Some(4))
            ]
        );
        assert_eq!(s.stats.lines, 5);
        assert_eq!(s.stats.empty, 1);
        assert_eq!(s.stats.unparsed, 1);
        assert_eq!(s.stats.binary, 1);
        assert_eq!(s.stats.first_unparsed, Some(2));
    }

    #[test]
    fn time_window_filters() {
        let text = "2026/11/23 14:26:24 [error] 1#0: *3 no live upstreams while connecting to upstream\n\
                    2026/11/23 14:30:00 [error] 1#0: *4 no live upstreams while connecting to upstream\n";
        let since = LogTime::from_civil(2026, 11, 23, 14, 27, 0);
        let mut s = Scanner::new(TimeWindow { since, until: None });
        let mut c = Collect::default();
        s.scan_block(text.as_bytes(), &mut c);
        assert_eq!(c.0, vec![(Signature::NoLiveUpstreams, Some(4))]);
        assert_eq!(s.stats.outside_window, 1);
    }
}
