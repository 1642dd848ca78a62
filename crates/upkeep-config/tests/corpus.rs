//! Every file of the shared corpus: parsed and printed back byte for byte,
//! or refused exactly where nginx refuses it; and `upkeep parse
//! --format crossplane` equal to crossplane's own output except where the
//! table in `common/mod.rs` says why crossplane is wrong.

mod common;

use common::{corpus_configs, corpus_dir, disagreement, Verdict, DISAGREEMENTS};
use upkeep_config::crossplane::{crossplane_json, CrossplaneOptions};
use upkeep_config::{ConfigSet, LoadErrorKind, LoadOptions, MemoryLoader};
use upkeep_syntax::{for_each_token, parse, print, FileId, SourceFile};

/// The bytes between tokens must be whitespace only: the tree accounts for
/// every other byte.
fn assert_trivia_is_whitespace(file: &SourceFile, tree: &upkeep_syntax::SyntaxTree) {
    let mut cursor = 0usize;
    let check = |start: usize, end: usize| {
        let gap = &file.text[start..end];
        assert!(
            gap.iter()
                .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n')),
            "{}: non-whitespace trivia at byte {start}: {:?}",
            file.path,
            String::from_utf8_lossy(gap)
        );
    };
    for_each_token(tree, |span| {
        check(cursor, span.start as usize);
        cursor = span.end as usize;
    });
    check(cursor, file.text.len());
}

#[test]
fn every_corpus_file_round_trips_or_is_refused_where_nginx_refuses_it() {
    let Some(dir) = corpus_dir() else {
        return;
    };
    let files = corpus_configs(&dir);
    assert!(files.len() > 400, "only {} corpus files found", files.len());
    let mut refused = Vec::new();
    for rel in &files {
        let text = std::fs::read(dir.join(rel)).unwrap();
        let file = SourceFile::new(FileId(0), rel.clone(), text.clone());
        match parse(&file) {
            Ok(tree) => {
                assert_eq!(print(&tree, &file), text, "{rel} does not round-trip");
                assert_trivia_is_whitespace(&file, &tree);
                if let Some(d) = disagreement(rel) {
                    assert!(
                        !matches!(d.nginx, Verdict::Rejects { .. }),
                        "{rel}: nginx refuses it, upkeep accepted it"
                    );
                }
            }
            Err(err) => {
                let Some(Verdict::Rejects { line, message }) = disagreement(rel).map(|d| d.nginx)
                else {
                    panic!("{rel}: unexpected syntax error\n{}", err.render(&file));
                };
                let pos = file.line_col(err.span.start);
                assert_eq!(pos.line, line, "{rel}: nginx stops at line {line}: {err}");
                assert!(
                    err.to_string().starts_with(message),
                    "{rel}: nginx says {message:?}, upkeep {:?}",
                    err.to_string()
                );
                refused.push(rel.clone());
            }
        }
    }
    let expected: Vec<&str> = DISAGREEMENTS
        .iter()
        .filter(|d| matches!(d.nginx, Verdict::Rejects { .. }))
        .map(|d| d.file)
        .collect();
    assert_eq!(refused, {
        let mut e = expected.clone();
        e.sort();
        e
    });
}

/// crossplane's own "errors" that `upkeep parse` does not reproduce: its
/// directive-table checks (contexts, argument counts, block or not).
fn is_directive_table_error(message: &str) -> bool {
    message.contains("directive is not allowed here")
        || message.starts_with("invalid number of arguments in")
        || message.contains("is not terminated by")
}

#[test]
fn crossplane_format_matches_crossplane_on_the_corpus() {
    let Some(dir) = corpus_dir() else {
        return;
    };
    let opts = CrossplaneOptions {
        single_file: true,
        include_comments: false,
        indent: Some(2),
    };
    let mut compared = 0;
    let mut differing = Vec::new();
    for rel in corpus_configs(&dir) {
        let with_ctx = dir.join(format!("{rel}.crossplane.json"));
        let noctx = dir.join(format!("{rel}.crossplane.noctx.json"));
        if !with_ctx.is_file() {
            continue;
        }
        // Where crossplane reported errors, its run without context and
        // argument checks shows the plain syntax tree: that is what upkeep
        // prints. The errors dropped that way must all be such checks.
        let expected_path = if noctx.is_file() {
            let ctx: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&with_ctx).unwrap()).unwrap();
            let noctx_json: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&noctx).unwrap()).unwrap();
            if noctx_json["status"] == "ok" {
                for e in ctx["errors"].as_array().unwrap() {
                    let m = e["error"].as_str().unwrap();
                    assert!(is_directive_table_error(m), "{rel}: crossplane error {m:?}");
                }
            }
            noctx
        } else {
            with_ctx
        };
        let expected = std::fs::read_to_string(&expected_path).unwrap();
        let mut loader = MemoryLoader::new();
        loader.insert(rel.clone(), std::fs::read(dir.join(&rel)).unwrap());
        let result = ConfigSet::load_single(&rel, &loader, &LoadOptions::default());
        let ours = crossplane_json(&result, &opts) + "\n";
        compared += 1;
        if ours != expected {
            differing.push(rel.clone());
            assert!(
                disagreement(&rel).is_some(),
                "{rel}: upkeep's crossplane output differs from crossplane's and the \
                 disagreement table does not explain it:\n{}",
                first_difference(&ours, &expected)
            );
        } else {
            assert!(
                disagreement(&rel).is_none(),
                "{rel} is listed as a disagreement but the outputs are equal"
            );
        }
        if let Err(e) = &result {
            assert!(matches!(e.kind, LoadErrorKind::Syntax(_)));
        }
    }
    assert!(
        compared > 400,
        "only {compared} crossplane outputs compared"
    );
    let mut listed: Vec<&str> = DISAGREEMENTS.iter().map(|d| d.file).collect();
    listed.sort();
    assert_eq!(differing, listed);
}

fn first_difference(ours: &str, theirs: &str) -> String {
    for (i, (a, b)) in ours.lines().zip(theirs.lines()).enumerate() {
        if a != b {
            return format!("line {}:\n  upkeep:     {a}\n  crossplane: {b}", i + 1);
        }
    }
    format!(
        "lengths differ: upkeep {} lines, crossplane {}",
        ours.lines().count(),
        theirs.lines().count()
    )
}
