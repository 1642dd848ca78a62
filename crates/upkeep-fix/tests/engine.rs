//! The fix engine over in-memory files with toy rules (see common/).

mod common;

use common::{checker, final_texts, Files, Toys};
use upkeep_diag::{Applicability, Edit, Fix};
use upkeep_fix::{apply, fix, unified_diff, FixOptions, Outcome, Overlay};
use upkeep_syntax::{FileId, SourceFile, Span};

const UPSTREAMS: &[(&str, &str)] = &[(
    "nginx.conf",
    "http {\n  upstream app {\n    server 127.0.0.1:8080;\n  }\n\n  # two blocks, odd   spacing kept\n  upstream   api{server 127.0.0.1:9090;}\n}\n",
)];

const TWO_LOCATIONS: &[(&str, &str)] = &[(
    "nginx.conf",
    "http {\n\tserver {\n\t\tlisten 80;\n\t\tlocation /a/ {\n\t\t\tproxy_pass http://a;\n\t\t}\n\t\tlocation /b/ {\n\t\t\tproxy_pass http://b;\n\t\t}\n\t}\n}\n",
)];

/// Every round's change is exactly its edits, and the rounds chain up.
fn assert_history(run: &upkeep_fix::FixRun<Files>) {
    let history = run.history().unwrap();
    for c in &history {
        upkeep_fix::verify::only_edits_changed(c).unwrap();
    }
    for (path, old, new) in run.changes() {
        let steps: Vec<_> = history.iter().filter(|c| c.path == path).collect();
        assert_eq!(steps.first().unwrap().before.as_slice(), old);
        assert_eq!(steps.last().unwrap().after.as_slice(), new);
        for w in steps.windows(2) {
            assert_eq!(w[0].after, w[1].before);
        }
    }
}

fn diffs(run: &upkeep_fix::FixRun<Files>) -> String {
    assert_history(run);
    run.changes()
        .map(|(p, old, new)| unified_diff(p, old, new, false))
        .collect()
}

#[test]
fn insertions_into_one_block_merge_into_one_change() {
    let mut c = checker(
        UPSTREAMS,
        Toys {
            upstream: true,
            ..Toys::default()
        },
    );
    let run = fix(&mut c, &FixOptions::default()).unwrap();
    assert!(run.converged);
    assert_eq!(run.rounds, 1);
    assert_eq!(run.applied.len(), 4);
    assert!(run.last.findings.is_empty());
    insta::assert_snapshot!(diffs(&run));
}

#[test]
fn identical_edits_from_several_findings_are_made_once() {
    let mut c = checker(
        TWO_LOCATIONS,
        Toys {
            connection: true,
            ..Toys::default()
        },
    );
    let run = fix(&mut c, &FixOptions::default()).unwrap();
    let text = &final_texts(&run)["nginx.conf"];
    assert_eq!(
        text.matches("proxy_set_header Connection \"\";").count(),
        1,
        "{text}"
    );
    assert_eq!(
        run.applied.len(),
        2,
        "both findings are fixed by the one edit"
    );
    assert!(run.last.findings.is_empty());
    insta::assert_snapshot!(diffs(&run));
}

#[test]
fn overlapping_fix_is_skipped_whole_and_its_finding_rechecked() {
    const FILES: &[(&str, &str)] = &[("nginx.conf", "http {\n    keepalive_timeout 0;\n}\n")];
    let mut c = checker(
        FILES,
        Toys {
            overlap: true,
            ..Toys::default()
        },
    );
    let run = fix(&mut c, &FixOptions::default()).unwrap();
    assert_eq!(
        final_texts(&run)["nginx.conf"],
        "http {\n    keepalive_timeout 75s;\n}\n"
    );
    let rules: Vec<&str> = run.applied.iter().map(|a| a.rule).collect();
    assert_eq!(rules, ["T004"]);
    assert!(run.converged && run.last.findings.is_empty());
}

#[test]
fn a_fix_is_applied_whole_or_not_at_all() {
    let src = SourceFile::new(FileId(0), "f", b"0123456789".to_vec());
    let sp = |a, b| Span::new(FileId(0), a, b);
    let safe = |edits| Fix {
        applicability: Applicability::Safe,
        description: String::new(),
        edits,
    };
    let first = safe(vec![Edit::replace(sp(2, 4), "AB")]);
    // Its first edit is fine on its own, its second overlaps `first`.
    let second = safe(vec![
        Edit::insert(sp(0, 0), ">"),
        Edit::replace(sp(3, 5), "CD"),
    ]);
    let third = safe(vec![Edit::insert(sp(10, 10), "<")]);
    let out = apply(&src, &[&first, &second, &third]);
    assert_eq!(
        out.outcomes,
        [Outcome::Applied, Outcome::Overlaps, Outcome::Applied]
    );
    assert_eq!(out.changed[&FileId(0)], b"01AB456789<");
    // Out of range and self-overlapping fixes are rejected.
    let bad = safe(vec![Edit::insert(sp(11, 11), "x")]);
    let selfish = safe(vec![
        Edit::replace(sp(1, 3), "x"),
        Edit::replace(sp(2, 4), "y"),
    ]);
    let out = apply(&src, &[&bad, &selfish]);
    assert!(matches!(out.outcomes[0], Outcome::Invalid(_)));
    assert!(matches!(out.outcomes[1], Outcome::Invalid(_)));
    assert!(out.changed.is_empty());
}

#[test]
fn fixing_the_output_again_changes_nothing() {
    let toys = Toys {
        upstream: true,
        connection: true,
        overlap: true,
        ..Toys::default()
    };
    const FILES: &[(&str, &str)] = &[(
        "nginx.conf",
        "http {\n    upstream u { server 127.0.0.1:1; }\n    server {\n        keepalive_timeout 0;\n        location / { proxy_pass http://u; }\n    }\n}\n",
    )];
    let first = fix(&mut checker(FILES, toys), &FixOptions::default()).unwrap();
    assert_history(&first);
    assert_eq!(
        first.rounds, 1,
        "T004 and T005 overlap: T005's finding is gone after T004"
    );
    let once = final_texts(&first)["nginx.conf"].clone();
    let leaked: &'static str = Box::leak(once.clone().into_boxed_str());
    let again_files: &'static [(&'static str, &'static str)] =
        Box::leak(vec![("nginx.conf", leaked)].into_boxed_slice());
    let second = fix(&mut checker(again_files, toys), &FixOptions::default()).unwrap();
    assert_eq!(second.changes().count(), 0);
    assert!(second.applied.is_empty());
    assert_eq!(second.rounds, 0);
    assert!(second.last.findings.is_empty());
}

#[test]
fn bytes_outside_the_edits_stay_identical() {
    // Tabs, CRLF, comments, a byte that is not UTF-8 and no final newline.
    let original: &[u8] =
        b"# caf\xe9 \r\nhttp {\r\n\tupstream a {  # keep\r\n\t\tserver 127.0.0.1:1;\r\n\t}\r\n}";
    let files = [SourceFile::new(FileId(0), "nginx.conf", original.to_vec())];
    let mut c =
        |overlay: &Overlay| -> Result<upkeep_fix::Round<Files>, upkeep_syntax::SyntaxError> {
            let text = overlay
                .get("nginx.conf")
                .map(<[u8]>::to_vec)
                .unwrap_or_else(|| files[0].text.to_vec());
            let src = SourceFile::new(FileId(0), "nginx.conf", text);
            let tree = upkeep_syntax::parse(&src)?;
            let mut findings = Vec::new();
            let http = tree.directives().next().unwrap();
            let up = http.children().next().unwrap();
            if !up.children().any(|d| d.name_is("keepalive")) {
                let open = up.block().unwrap().open();
                findings.push(
                    upkeep_diag::Finding::new(
                        "T001",
                        "toy",
                        upkeep_diag::Severity::Warning,
                        "no pool",
                    )
                    .at(up.span())
                    .with_fix(Fix {
                        applicability: Applicability::Safe,
                        description: "add keepalive".into(),
                        edits: vec![Edit::insert(
                            Span::new(FileId(0), open.end, open.end),
                            "\r\n\t\tkeepalive 8;",
                        )],
                    }),
                );
            }
            Ok(upkeep_fix::Round {
                sources: Files(vec![src]),
                findings,
            })
        };
    let run = fix(&mut c, &FixOptions::default()).unwrap();
    assert_history(&run);
    let (_, old, new) = run.changes().next().unwrap();
    assert_eq!(old, original);
    let at = original
        .windows(11)
        .position(|w| w == b"upstream a ")
        .unwrap()
        + "upstream a {".len();
    let mut expected = original[..at].to_vec();
    expected.extend_from_slice(b"\r\n\t\tkeepalive 8;");
    expected.extend_from_slice(&original[at..]);
    assert_eq!(new, expected.as_slice());
}

#[test]
fn a_fix_that_breaks_the_parse_is_refused_and_the_others_kept() {
    let toys = Toys {
        upstream: true,
        breaks_parse: true,
        ..Toys::default()
    };
    let run = fix(&mut checker(UPSTREAMS, toys), &FixOptions::default()).unwrap();
    let text = &final_texts(&run)["nginx.conf"];
    assert!(!text.contains("location"), "{text}");
    assert_eq!(text.matches("keepalive 32;").count(), 2);
    assert!(run.refused.iter().all(|r| r.rule == "T009"));
    assert_eq!(run.refused.len(), 2);
    assert!(run.refused[0].reason.contains("no longer loads"));
}

#[test]
fn when_no_fix_loads_the_last_findings_are_those_of_the_original() {
    // The loop releases a round's findings while it checks a candidate
    // text; when every candidate is refused, the run must still end with
    // the original's findings, fixes included.
    let toys = Toys {
        breaks_parse: true,
        ..Toys::default()
    };
    let original = checker(UPSTREAMS, toys)(&Overlay::default()).unwrap();
    assert_eq!(original.findings.len(), 2);
    let run = fix(&mut checker(UPSTREAMS, toys), &FixOptions::default()).unwrap();
    assert_eq!(run.changes().count(), 0);
    assert_eq!(run.refused.len(), 2);
    assert!(run.applied.is_empty());
    assert_eq!(run.last.findings, original.findings);
    assert!(run.last.findings.iter().all(|f| f.fix.is_some()));
}

#[test]
fn a_fix_that_breaks_the_parse_in_a_later_round_goes_back_to_that_rounds_text() {
    // The loop keeps only the newest text while it checks a candidate, and
    // rebuilds the text the candidate was made from when the candidate
    // does not load. Here the breaking fixes only appear in round 2, on a
    // text round 1 already changed.
    let upstream_only = Toys {
        upstream: true,
        ..Toys::default()
    };
    let clean = fix(
        &mut checker(UPSTREAMS, upstream_only),
        &FixOptions::default(),
    )
    .unwrap();
    let after_round_one = final_texts(&clean)["nginx.conf"].clone();
    assert!(after_round_one.contains("keepalive 32;"));

    let mut breaks_later = |overlay: &Overlay| {
        let fixed_once = overlay
            .get("nginx.conf")
            .is_some_and(|t| String::from_utf8_lossy(t).contains("keepalive 32;"));
        let toys = Toys {
            upstream: true,
            breaks_parse: fixed_once,
            ..Toys::default()
        };
        common::check(UPSTREAMS, overlay, toys)
    };
    let run = fix(&mut breaks_later, &FixOptions::default()).unwrap();
    assert_eq!(run.rounds, 2);
    assert_eq!(final_texts(&run)["nginx.conf"], after_round_one);
    assert_eq!(run.applied.len(), clean.applied.len());
    assert!(run.applied.iter().all(|a| a.round == 1));
    assert_eq!(run.refused.len(), 2);
    assert!(run
        .refused
        .iter()
        .all(|r| r.rule == "T009" && r.reason.contains("no longer loads")));
    assert_history(&run);
    assert_eq!(run.history().unwrap().len(), 1);
    // The last findings are those of the round-1 text, loaded again.
    let expected = breaks_later(&run.overlay).unwrap();
    assert_eq!(run.last.findings, expected.findings);
}

#[test]
fn a_file_that_changes_on_disk_during_the_run_gets_no_fix_made_for_its_old_text() {
    // When a candidate does not load, the text it was made from is loaded
    // again to try the fixes one by one. If the file changed on disk in the
    // meantime, the fixes' places no longer fit it: all are refused.
    const EDITED: &[(&str, &str)] = &[(
        "nginx.conf",
        "# edited by someone else\nhttp {\n  upstream app {\n    server 127.0.0.1:8080;\n  }\n\n  # two blocks, odd   spacing kept\n  upstream   api{server 127.0.0.1:9090;}\n}\n",
    )];
    let toys = Toys {
        upstream: true,
        breaks_parse: true,
        ..Toys::default()
    };
    let mut calls = 0;
    let mut disk_changes = |overlay: &Overlay| {
        calls += 1;
        let files = if calls == 1 { UPSTREAMS } else { EDITED };
        common::check(files, overlay, toys)
    };
    let run = fix(&mut disk_changes, &FixOptions::default()).unwrap();
    assert_eq!(run.changes().count(), 0);
    assert!(run.applied.is_empty());
    // Every fix of the batch (the two identical T009 fixes are one).
    let rules: Vec<&str> = run.refused.iter().map(|r| r.rule).collect();
    assert_eq!(rules, ["T001", "T001", "T002", "T002", "T009"]);
    assert!(run
        .refused
        .iter()
        .all(|r| r.reason == "nginx.conf changed while it was being fixed"));
    assert!(run.history().unwrap().is_empty());
    // The last check is of the file as it now is.
    assert_eq!(
        run.last.sources.0[0].text.as_slice(),
        EDITED[0].1.as_bytes()
    );
}

#[test]
fn a_fix_that_does_not_fix_is_applied_once_then_refused() {
    const FILES: &[(&str, &str)] = &[(
        "nginx.conf",
        "upstream a {\n    server 127.0.0.1:1;\n}\nupstream b {\n    server 127.0.0.1:2;\n}\n",
    )];
    let toys = Toys {
        no_effect: true,
        ..Toys::default()
    };
    let run = fix(&mut checker(FILES, toys), &FixOptions::default()).unwrap();
    let text = &final_texts(&run)["nginx.conf"];
    assert_eq!(text.matches("# noted").count(), 2, "{text}");
    assert_eq!(run.rounds, 1);
    assert!(run
        .refused
        .iter()
        .all(|r| r.reason.contains("still reported")));
    assert_eq!(run.last.findings.len(), 2);
    // In `upstream api{server …;}` the same insertion would comment out the
    // rest of the line, and is refused because the file no longer parses.
    let run = fix(&mut checker(UPSTREAMS, toys), &FixOptions::default()).unwrap();
    let text = &final_texts(&run)["nginx.conf"];
    assert!(
        text.contains("upstream app { # noted") && text.contains("upstream   api{server"),
        "{text}"
    );
    assert!(run
        .refused
        .iter()
        .any(|r| r.reason.contains("no longer loads")));
}

#[test]
fn input_that_does_not_parse_is_an_error() {
    const BROKEN: &[(&str, &str)] = &[("nginx.conf", "http {\n")];
    let err = fix(
        &mut checker(
            BROKEN,
            Toys {
                upstream: true,
                ..Toys::default()
            },
        ),
        &FixOptions::default(),
    )
    .err()
    .unwrap();
    assert!(err.message.contains("unexpected end of file"), "{err}");
}

#[test]
fn rule_selection() {
    // The config after fixing with only the rules `selector` names.
    let fixed_with = |selector: &str| {
        let options = FixOptions {
            rules: Some(vec![selector.into()]),
            ..FixOptions::default()
        };
        let toys = Toys {
            upstream: true,
            ..Toys::default()
        };
        let run = fix(&mut checker(UPSTREAMS, toys), &options).unwrap();
        final_texts(&run)["nginx.conf"].clone()
    };
    let text = fixed_with("toy-keepalive-timeout");
    assert_eq!(text.matches("keepalive_timeout 4s;").count(), 2);
    assert!(!text.contains("keepalive 32;"));
    let text = fixed_with("t001");
    assert!(text.contains("keepalive 32;") && !text.contains("keepalive_timeout"));
}

#[test]
fn coloured_diff() {
    let d = unified_diff("a.conf", b"a;\n", b"a;\nb;\n", true);
    assert!(d.contains("\u{1b}[32m+b;"), "{d:?}");
    assert!(!unified_diff("a.conf", b"a;\n", b"a;\nb;\n", false).contains('\u{1b}'));
}
