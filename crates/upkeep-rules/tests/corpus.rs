//! `check` over every configuration of the shared corpus of real-world
//! configs: no panic, and no load error other than a real syntax error (or an
//! include cycle, which nginx rejects too). The findings are written to
//! `$CARGO_TARGET_TMPDIR/corpus-findings.txt` for review. Skipped with a
//! message when the corpus is not beside the repository.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use upkeep_config::{ConfigSet, FsLoader, LoadErrorKind, LoadOptions};
use upkeep_rules::{check, CheckOptions, NginxVersion};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus")
}

/// (flat file, path to load): the `_trees` copy where nginx -t used one, so
/// relative includes resolve.
fn corpus_files(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut tree_path: HashMap<String, String> = HashMap::new();
    if let Ok(t) = std::fs::read_to_string(dir.join("nginx_t.tsv")) {
        for line in t.lines().skip(1) {
            let cols: Vec<&str> = line.split('\t').collect();
            if cols.len() > 1 && !cols[1].is_empty() {
                tree_path.insert(cols[0].to_string(), cols[1].to_string());
            }
        }
    }
    let sources = std::fs::read_to_string(dir.join("SOURCES.tsv")).unwrap();
    sources
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .map(|local| {
            let path = match tree_path.get(local) {
                Some(t) => dir.join(t),
                None => dir.join(local),
            };
            (local.to_string(), path)
        })
        .collect()
}

#[test]
fn check_every_corpus_config() {
    let dir = corpus_dir();
    if !dir.join("SOURCES.tsv").exists() {
        eprintln!("corpus not found at {}; skipping", dir.display());
        return;
    }
    let files = corpus_files(&dir);
    assert!(
        files.len() > 400,
        "corpus looks incomplete: {} files",
        files.len()
    );
    let mut report = String::new();
    let mut per_rule: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut checked = 0;
    let mut syntax_errors = 0;
    let mut unexpected = Vec::new();
    for (local, path) in &files {
        let config =
            match ConfigSet::load(path.to_str().unwrap(), &FsLoader, &LoadOptions::default()) {
                Ok(c) => c,
                Err(e) => {
                    match e.kind {
                        LoadErrorKind::Syntax(_) | LoadErrorKind::IncludeCycle => {
                            syntax_errors += 1
                        }
                        _ => unexpected.push(format!("{local}: {e}")),
                    }
                    continue;
                }
            };
        // Both sides of 1.29.7, and a version older than upstream
        // keepalive_timeout (1.15.3): none may panic.
        for v in [NginxVersion::new(1, 14, 2), NginxVersion::new(1, 30, 0)] {
            let o = CheckOptions {
                nginx_version: Some(v),
                ..Default::default()
            };
            if std::panic::catch_unwind(|| check(&config, &o)).is_err() {
                unexpected.push(format!("{local}: check panicked for nginx {v}"));
            }
        }
        let result = std::panic::catch_unwind(|| check(&config, &CheckOptions::default()));
        let Ok(result) = result else {
            unexpected.push(format!("{local}: check panicked"));
            continue;
        };
        checked += 1;
        for f in &result.findings {
            *per_rule.entry(f.rule).or_default() += 1;
            let place = f
                .primary
                .map(|p| {
                    let file = config.file(p.file);
                    let lc = file.line_col(p.start);
                    let rel = Path::new(&file.path)
                        .strip_prefix(&dir)
                        .unwrap_or(Path::new(&file.path));
                    format!("{}:{}:{}", rel.display(), lc.line, lc.col)
                })
                .unwrap_or_default();
            writeln!(
                report,
                "{} {} {place}: {}",
                f.rule,
                f.severity.as_str(),
                f.message
            )
            .unwrap();
        }
    }
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("corpus-findings.txt");
    std::fs::write(&out, &report).unwrap();
    eprintln!(
        "corpus: {} configs checked, {} rejected as syntax errors, findings per rule {:?}; details in {}",
        checked,
        syntax_errors,
        per_rule,
        out.display()
    );
    assert!(
        unexpected.is_empty(),
        "unexpected failures:\n{}",
        unexpected.join("\n")
    );
    assert!(checked > 400, "only {checked} configs could be checked");
}
