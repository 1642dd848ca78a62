//! What the tests that run generated configs on a real nginx share: a
//! client, a deterministic generator, and `check` and `fix` applied to a
//! config text the way `upkeep check` and `upkeep fix` do.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use upkeep_config::{ConfigSet, FsLoader, LoadOptions};
use upkeep_rules::{check, CheckOptions, NginxVersion, VersionSource};

/// One `GET` with `Connection: close`; the whole answer.
pub fn get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// A configuration level the generated configs place directives at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Http,
    Server,
    /// `location /p/`.
    Outer,
    /// `location /p/q/` nested in the outer one, or `location @app`
    /// (only in configs of those shapes).
    Inner,
}

/// A small deterministic generator (xorshift64*), so that every run
/// checks the same configs and a failure names a reproducible seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// `check` on `text`, written as check/nginx.conf in `scratch`.
pub fn check_text(
    scratch: &upkeep_nginx::Prefix,
    text: &str,
    version: NginxVersion,
) -> upkeep_rules::CheckReport {
    let path = scratch.write("check/nginx.conf", text).unwrap();
    let set = ConfigSet::load(path.to_str().unwrap(), &FsLoader, &LoadOptions::default()).unwrap();
    let opts = CheckOptions {
        nginx_version: Some(version),
        version_source: VersionSource::Detected,
        ..Default::default()
    };
    check(&set, &opts)
}

/// Applies every fix of the given rules, as `upkeep fix` would in one round.
pub fn apply(text: &str, report: &upkeep_rules::CheckReport, rules: &[&str]) -> String {
    apply_where(text, report, rules, |_| true)
}

/// Applies the edits of the given rules' fixes that go to a file `in_file`
/// accepts (`text` is that file's).
pub fn apply_where(
    text: &str,
    report: &upkeep_rules::CheckReport,
    rules: &[&str],
    in_file: impl Fn(upkeep_syntax::FileId) -> bool,
) -> String {
    let mut edits: Vec<_> = report
        .findings
        .iter()
        .filter(|f| rules.contains(&f.rule))
        .filter_map(|f| f.fix.as_ref())
        .flat_map(|f| f.edits.clone())
        .filter(|e| in_file(e.span.file))
        .collect();
    edits.sort();
    edits.dedup();
    let mut bytes = text.as_bytes().to_vec();
    let mut applied_from = u32::MAX;
    for e in edits.iter().rev() {
        if e.span.end > applied_from {
            continue; // overlaps an edit already applied; the next round redoes it
        }
        bytes.splice(e.span.range(), e.content.bytes());
        applied_from = e.span.start;
    }
    String::from_utf8(bytes).unwrap()
}

/// `text` with the fixes of every finding applied, round after round, until
/// a round changes nothing (at most 5 rounds).
pub fn fix_everything(scratch: &upkeep_nginx::Prefix, text: &str, version: NginxVersion) -> String {
    let mut fixed = text.to_string();
    for _round in 0..5 {
        let report = check_text(scratch, &fixed, version);
        let rules: Vec<&str> = report.findings.iter().map(|f| f.rule).collect();
        let next = apply(&fixed, &report, &rules);
        if next == fixed {
            break;
        }
        fixed = next;
    }
    fixed
}
