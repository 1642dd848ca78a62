//! Two ways to count a log: the scanner with all its fast paths, and a
//! plain loop that splits on `\n` and classifies every line in full. Shared
//! by tests/differential.rs and the `logs` fuzz target, which check that
//! the two agree.

use std::collections::BTreeMap;
use upkeep_logs::analysis::Analysis;
use upkeep_logs::scan::{Scanner, TimeWindow, MAX_LINE};
use upkeep_logs::{classify_line, verdict, ErrorLine, Verdict};

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub by_signature: BTreeMap<&'static str, u64>,
    pub by_upstream: BTreeMap<(&'static str, String), u64>,
    pub other_upstream: u64,
    pub lines: u64,
}

/// The plain way: split, classify every line in full.
pub fn reference(log: &[u8]) -> Counts {
    let mut c = Counts::default();
    let mut lines: Vec<&[u8]> = log.split(|&b| b == b'\n').collect();
    if log.is_empty() || log.last() == Some(&b'\n') {
        lines.pop();
    }
    for line in lines {
        c.lines += 1;
        if line.len() > MAX_LINE {
            continue; // skipped and reported by the scanner
        }
        if let Some(found) = classify_line(line) {
            *c.by_signature.entry(found.signature.id()).or_default() += 1;
            if let Some(up) = found.line.upstream_addr() {
                let up = String::from_utf8_lossy(up).into_owned();
                *c.by_upstream.entry((found.signature.id(), up)).or_default() += 1;
            }
        } else if let Some(parsed) = ErrorLine::parse(line) {
            if verdict(&parsed) == Verdict::OtherUpstream {
                c.other_upstream += 1;
            }
        }
    }
    c
}

/// The scanner, fed blocks of whole lines of the sizes `cuts` picks.
pub fn scanned(log: &[u8], cuts: &mut impl FnMut() -> usize) -> Counts {
    let mut scanner = Scanner::new(TimeWindow::default());
    let mut analysis = Analysis::default();
    let mut at = 0;
    while at < log.len() {
        // Extend a block of the chosen size to the next line end.
        let want = (at + cuts()).min(log.len());
        let end = match log[want..].iter().position(|&b| b == b'\n') {
            Some(i) => want + i + 1,
            None => log.len(),
        };
        scanner.scan_block(&log[at..end], &mut analysis);
        at = end;
    }
    let mut c = Counts {
        lines: scanner.stats.lines,
        other_upstream: analysis.other_upstream,
        ..Counts::default()
    };
    for sig in upkeep_logs::Signature::ALL {
        if analysis.count(sig) > 0 {
            c.by_signature.insert(sig.id(), analysis.count(sig));
        }
        for (up, n) in analysis.upstreams_of(sig) {
            // Names are shown lossily, so distinct raw bytes may meet.
            *c.by_upstream.entry((sig.id(), up)).or_default() += n;
        }
    }
    c
}
