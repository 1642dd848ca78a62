//! Real logs (the runtime checks behind facts/behaviors.md, nginx 1.31.5),
//! and broken input: truncated gzip, binary garbage, 1 MB lines. Each gets a
//! clear message and the rest of the input is still processed.

use std::io::Write;
use std::path::{Path, PathBuf};
use upkeep_logs::analysis::Analysis;
use upkeep_logs::input::Input;
use upkeep_logs::report;
use upkeep_logs::run::{analyze, Options};
use upkeep_logs::scan::TimeWindow;
use upkeep_logs::{LogTime, Signature, Summary};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn run(paths: &[&Path]) -> Analysis {
    let inputs: Vec<Input> = paths.iter().copied().map(Input::file).collect();
    analyze(&inputs, &Options::default(), None)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[test]
fn verified_logs_classify_exactly() {
    // t1: 5 prematurely-closed (/fin/b, /fin/c, /off/b, /multi/3 twice),
    // 2 resets (/rst/b, /rst/c), 4 no-live-upstreams, 2 temporarily disabled.
    let s = Summary::from_path(&fixture("t1_error.log")).unwrap();
    let by_id = s.by_id();
    assert_eq!(by_id.get("upstream-prematurely-closed"), Some(&5));
    assert_eq!(by_id.get("upstream-reset"), Some(&2));
    assert_eq!(by_id.get("no-live-upstreams"), Some(&4));
    assert_eq!(by_id.get("server-temporarily-disabled"), Some(&2));
    assert_eq!(s.total(), 13);
    assert_eq!(s.lines, 53);
    assert_eq!(s.unparsed, 0);

    let s = Summary::from_path(&fixture("t2_error.log")).unwrap();
    assert_eq!(
        s.by_id().into_iter().collect::<Vec<_>>(),
        vec![("upstream-prematurely-closed", 10)]
    );

    // t5: one refused connect, 7 alerts and 1 warning about worker_connections.
    let s = Summary::from_path(&fixture("t5_error.log")).unwrap();
    assert_eq!(s.count(Signature::ConnectRefused), 1);
    assert_eq!(s.count(Signature::WorkerConnectionsNotEnough), 8);
    assert_eq!(s.total(), 9);

    let a = run(&[&fixture("t1_error.log")]);
    assert_eq!(
        a.upstreams_of(Signature::NoLiveUpstreams),
        vec![("multi_fin".to_string(), 4)]
    );
    assert_eq!(
        a.upstreams_of(Signature::UpstreamPrematurelyClosed),
        vec![
            ("127.0.0.1:9101".to_string(), 3),
            ("127.0.0.1:9106".to_string(), 1),
            ("127.0.0.1:9107".to_string(), 1)
        ]
    );
    let rows = a.per_minute_rows();
    assert!(rows.contains(&(
        LogTime::from_civil(2026, 11, 23, 14, 26, 0)
            .unwrap()
            .minute(),
        Signature::NoLiveUpstreams,
        Some("multi_fin".to_string()),
        4
    )));
}

#[test]
fn since_until_select_lines() {
    let since = LogTime::from_civil(2026, 11, 23, 14, 26, 30);
    let until = LogTime::from_civil(2026, 11, 23, 14, 27, 0);
    let opts = Options {
        window: TimeWindow { since, until },
        ..Options::default()
    };
    let a = analyze(&[Input::file(fixture("t1_error.log"))], &opts, None);
    // Only the /multi/ lines at 14:26:33 remain.
    assert_eq!(a.count(Signature::NoLiveUpstreams), 4);
    assert_eq!(a.count(Signature::UpstreamPrematurelyClosed), 2);
    assert_eq!(a.count(Signature::UpstreamReset), 0);
    assert!(a.total_stats().outside_window > 0);
}

#[test]
fn truncated_gzip_reports_and_keeps_what_was_read() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read(fixture("t1_error.log")).unwrap();
    // Repeat the log so the cut falls well after some complete lines.
    let big: Vec<u8> = text.repeat(200);
    let gz = gzip(&big);
    let cut = dir.path().join("error.log.2.gz");
    std::fs::write(&cut, &gz[..gz.len() / 2]).unwrap();
    let whole = dir.path().join("error.log");
    std::fs::write(&whole, &text).unwrap();

    let a = run(&[&cut, &whole]);
    let bad = &a.inputs[0];
    let err = bad.error.as_deref().expect("an error for the cut file");
    assert!(err.contains("gzip data is truncated"), "{err}");
    assert!(bad.gzip);
    assert!(bad.stats.lines > 1000, "lines before the cut are counted");
    // The second file is read in full after the broken one.
    assert_eq!(a.inputs[1].error, None);
    assert_eq!(a.inputs[1].stats.lines, 53);
    assert!(a.count(Signature::NoLiveUpstreams) > 4);
    let messages = report::input_messages(&a);
    assert!(
        messages[0].starts_with(&format!("error: {}: gzip data is truncated", cut.display())),
        "{messages:?}"
    );
}

#[test]
fn binary_garbage_and_huge_lines_are_counted_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.log");
    let mut data = Vec::new();
    data.extend_from_slice(&std::fs::read(fixture("t5_error.log")).unwrap());
    // Binary garbage: pseudo-random bytes with NULs and a few newlines.
    let mut x: u32 = 12345;
    for _ in 0..20_000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let b = (x >> 16) as u8;
        data.push(if b == b'\n' { 0 } else { b });
        if x.is_multiple_of(997) {
            data.push(b'\n');
        }
    }
    data.push(b'\n');
    // A 1 MB line, and one of 3 MB (longer than the read buffer).
    data.extend(std::iter::repeat_n(b'a', 1 << 20));
    data.push(b'\n');
    data.extend(std::iter::repeat_n(b'b', 3 << 20));
    data.push(b'\n');
    data.extend_from_slice(&std::fs::read(fixture("t1_error.log")).unwrap());
    std::fs::write(&path, &data).unwrap();

    let a = run(&[&path]);
    let i = &a.inputs[0];
    assert_eq!(i.error, None);
    assert_eq!(i.stats.overlong, 2);
    assert!(i.stats.unparsed > 0 && i.stats.binary > 0);
    // Everything from both real logs is still found.
    assert_eq!(a.count(Signature::WorkerConnectionsNotEnough), 8);
    assert_eq!(a.count(Signature::NoLiveUpstreams), 4);
    assert_eq!(a.count(Signature::ConnectRefused), 1);
    let t5_lines = std::fs::read_to_string(fixture("t5_error.log"))
        .unwrap()
        .lines()
        .count() as u64;
    assert_eq!(i.stats.first_unparsed, Some(t5_lines + 1));
    let messages = report::input_messages(&a).join("\n");
    assert!(
        messages.contains("2 lines longer than 65536 bytes skipped"),
        "{messages}"
    );
    assert!(
        messages.contains(&format!("{}:{}:1:", path.display(), t5_lines + 1)),
        "{messages}"
    );

    // The same through a gzip stream.
    let gz_path = dir.path().join("mixed.log.gz");
    std::fs::write(&gz_path, gzip(&data)).unwrap();
    let b = run(&[&gz_path]);
    assert_eq!(b.counts, a.counts);
    assert_eq!(b.inputs[0].stats, a.inputs[0].stats);
}

#[test]
fn empty_and_missing_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.log");
    std::fs::write(&empty, b"").unwrap();
    let missing = dir.path().join("missing.log");
    let a = run(&[&empty, &missing]);
    assert_eq!(a.inputs[0].stats.lines, 0);
    assert_eq!(a.inputs[0].error, None);
    assert!(a.inputs[1]
        .error
        .as_deref()
        .unwrap()
        .contains("No such file"));
}
