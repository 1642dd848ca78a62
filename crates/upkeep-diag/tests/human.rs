mod common;

use common::Files;
use upkeep_diag::render::human::{self, HumanOptions};
use upkeep_diag::{Finding, Report, Severity};
use upkeep_syntax::{FileId, SourceFile, Span};

const PLAIN: HumanOptions = HumanOptions { color: false };

fn report<'a>(findings: &'a [Finding], files: &'a Files, assumptions: &'a [String]) -> Report<'a> {
    let mut r = Report::new(findings, files);
    r.base_dir = Some("/etc/nginx");
    r.nginx_version = Some("1.28.0");
    r.version_source = Some("assumed");
    r.assumptions = assumptions;
    r
}

#[test]
fn full_report() {
    let files = common::files();
    let findings = common::findings(&files);
    let assumptions =
        vec!["assuming nginx 1.28.0 (no --nginx-version, no nginx binary found)".to_string()];
    insta::assert_snapshot!(human::render(
        &report(&findings, &files, &assumptions),
        PLAIN
    ));
}

#[test]
fn findings_come_out_grouped_by_file_then_by_position() {
    let files = common::files();
    let mut findings = common::findings(&files);
    findings.reverse();
    let text = human::render(&report(&findings, &files, &[]), PLAIN);
    let r003 = text.find("info[R003]").unwrap();
    let u001 = text.find("warning[U001]").unwrap();
    let u004 = text.find("error[U004]").unwrap();
    assert!(r003 < u001 && u001 < u004, "{text}");
}

#[test]
fn clean_report_is_one_line() {
    let files = common::files();
    let text = human::render(&report(&[], &files, &[]), PLAIN);
    assert_eq!(
        text,
        "0 errors, 0 warnings, 0 infos (nginx 1.28.0, assumed)\n"
    );
}

#[test]
fn colours_only_when_asked() {
    let files = common::files();
    let findings = common::findings(&files);
    let plain = human::render(&report(&findings, &files, &[]), PLAIN);
    let coloured = human::render(
        &report(&findings, &files, &[]),
        HumanOptions { color: true },
    );
    assert!(!plain.contains('\u{1b}'));
    assert!(coloured.contains("\u{1b}["));
    assert_eq!(strip_ansi(&coloured), plain);
}

#[test]
fn odd_bytes_tabs_and_crlf() {
    // Non-UTF-8 byte in a comment, a tab before the directive, CRLF endings.
    let text = b"http {\r\n\t# caf\xe9\r\n\tkeepalive_timeout 0;\r\n}\r\n".to_vec();
    let files = Files(vec![SourceFile::new(
        FileId(0),
        "/etc/nginx/nginx.conf",
        text,
    )]);
    let start = files[0]
        .text
        .windows(17)
        .position(|w| w == b"keepalive_timeout")
        .unwrap() as u32;
    let finding = Finding::new(
        "C002",
        "client-keepalive-disabled",
        Severity::Warning,
        "client keep-alive is off",
    )
    .at(Span::new(FileId(0), start, start + 20))
    .with_label("every client connection closes after one response");
    insta::assert_snapshot!(human::render(&report(&[finding], &files, &[]), PLAIN));
}

#[test]
fn insertion_point_and_end_of_file() {
    let files = Files(vec![SourceFile::new(
        FileId(0),
        "/etc/nginx/nginx.conf",
        b"events {}\nhttp {\n}".to_vec(),
    )]);
    let eof = files[0].text.len() as u32;
    let findings = vec![
        Finding::new(
            "R003",
            "no-worker-shutdown-timeout",
            Severity::Info,
            "no `worker_shutdown_timeout`",
        )
        .at(Span::new(FileId(0), 0, 0))
        .with_label("main context starts here"),
        Finding::new(
            "X000",
            "at-end",
            Severity::Info,
            "something at the very end",
        )
        .at(Span::new(FileId(0), eof, eof)),
    ];
    insta::assert_snapshot!(human::render(&report(&findings, &files, &[]), PLAIN));
}

#[test]
fn long_block_is_elided_and_invalid_utf8_is_replaced() {
    let mut text = b"upstream big {\n    # \xff\xfe odd bytes\n".to_vec();
    for i in 0..40 {
        text.extend_from_slice(format!("    server 10.0.0.{i}:80;\n").as_bytes());
    }
    text.extend_from_slice(b"}\n");
    let end = text.len() as u32 - 1;
    let files = Files(vec![SourceFile::new(FileId(0), "/srv/big.conf", text)]);
    let finding = Finding::new(
        "U001",
        "upstream-without-keepalive",
        Severity::Warning,
        "no pool",
    )
    .at(Span::new(FileId(0), 0, end))
    .with_label("this upstream")
    .related(Span::new(FileId(0), 19, 21), "odd bytes here");
    insta::assert_snapshot!(human::render(&report(&[finding], &files, &[]), PLAIN));
}

#[test]
fn finding_without_a_place() {
    let files = common::files();
    let finding = Finding::new(
        "H004",
        "nofile-limit-low",
        Severity::Warning,
        "the nginx master's RLIMIT_NOFILE is 1024",
    )
    .note("worker_connections 4096 needs at least 8192")
    .help("raise LimitNOFILE in the nginx unit");
    insta::assert_snapshot!(human::render(&report(&[finding], &files, &[]), PLAIN));
}

#[test]
fn syntax_error() {
    let files = Files(vec![SourceFile::new(
        FileId(0),
        "/etc/nginx/nginx.conf",
        b"http {\n    server {\n        listen 80\n    }\n}\n".to_vec(),
    )]);
    let at = files[0].text.iter().position(|b| *b == b'}').unwrap() as u32;
    let text = human::render_error(
        &files,
        Some("/etc/nginx"),
        Span::new(FileId(0), at, at + 1),
        "unexpected \"}\"",
        "expected \";\" or \"{\" before this",
        PLAIN,
    );
    insta::assert_snapshot!(text);
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
