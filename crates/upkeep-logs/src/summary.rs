//! The small counting API other crates use (`upkeep lab`, `upkeep watch`,
//! `upkeep doctor`): how many lines carried each signature.

use crate::classify::{verdict, Classified, Verdict};
use crate::error_line::{has_error_log_shape, ContextFields, ErrorLine};
use crate::input::Input;
use crate::reader::scan_stream;
use crate::scan::{EventSink, Scanner, TimeWindow, MAX_LINE};
use crate::signature::Signature;
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::Path;

/// Signature counts of an error log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// All lines read.
    pub lines: u64,
    /// Lines without the error-log shape.
    pub unparsed: u64,
    /// Errors about an upstream that no signature describes.
    pub other_upstream: u64,
    counts: [u64; Signature::COUNT],
}

impl Summary {
    /// Counts the signatures in a plain-text error log.
    pub fn from_reader<R: Read>(reader: R) -> io::Result<Summary> {
        let mut scanner = Scanner::new(TimeWindow::default());
        let mut summary = Summary::default();
        let result = scan_stream(reader, &mut scanner, &mut summary);
        summary.lines = scanner.stats.lines;
        summary.unparsed = scanner.stats.unparsed;
        result.map(|()| summary)
    }

    /// Counts the signatures in an error-log file, plain or gzip.
    pub fn from_path(path: &Path) -> io::Result<Summary> {
        Summary::from_reader(Input::file(path).open(None)?.reader)
    }

    /// Adds one line (for callers that see lines one at a time, e.g. while
    /// tailing a log). Overlong lines count as unparsed here.
    pub fn add_line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        self.lines += 1;
        if line.is_empty() {
            return;
        }
        if line.len() > MAX_LINE || !has_error_log_shape(line) {
            self.unparsed += 1;
            return;
        }
        match ErrorLine::parse(line) {
            None => self.unparsed += 1,
            Some(parsed) => match verdict(&parsed) {
                Verdict::Signature(sig) => self.counts[sig.index()] += 1,
                Verdict::OtherUpstream => self.other_upstream += 1,
                Verdict::Noise => {}
            },
        }
    }

    pub fn count(&self, signature: Signature) -> u64 {
        self.counts[signature.index()]
    }

    /// Lines that carried any signature.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Non-zero counts keyed by signature ID (facts/signatures.tsv).
    pub fn by_id(&self) -> BTreeMap<&'static str, u64> {
        Signature::ALL
            .into_iter()
            .filter(|s| self.count(*s) > 0)
            .map(|s| (s.id(), self.count(s)))
            .collect()
    }
}

impl EventSink for Summary {
    fn context_fields(&self) -> ContextFields {
        ContextFields::UpstreamOnly
    }

    fn on_signature(&mut self, event: &Classified<'_>) {
        self.counts[event.signature.index()] += 1;
    }

    fn on_other_upstream(&mut self, _line: &ErrorLine<'_>) {
        self.other_upstream += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_a_reader_and_line_by_line() {
        let log = "2026/11/23 14:26:24 [error] 1#0: *7 upstream prematurely closed connection while reading response header from upstream, client: 127.0.0.1, server: , request: \"GET /fin/b HTTP/1.1\", upstream: \"http://127.0.0.1:9101/fin/b\", host: \"h\"\n\
                   2026/11/23 14:26:24 [info] 1#0: *7 client 127.0.0.1 closed keepalive connection\n\
                   not a log line\n";
        let s = Summary::from_reader(log.as_bytes()).unwrap();
        assert_eq!(s.lines, 3);
        assert_eq!(s.unparsed, 1);
        assert_eq!(s.count(Signature::UpstreamPrematurelyClosed), 1);
        assert_eq!(s.total(), 1);
        assert_eq!(s.by_id().get("upstream-prematurely-closed"), Some(&1));

        let mut t = Summary::default();
        for line in log.lines() {
            t.add_line(line.as_bytes());
        }
        assert_eq!(t, s);
    }
}
