//! Over every config of ../shared/corpus (real configs written by others):
//! the fix loop with the real rules converges, every byte outside the edits
//! stays as it was, and fixing the result again changes nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use upkeep_config::{ConfigSet, FsLoader, LoadError, LoadOptions, Loader};
use upkeep_fix::{fix, FixOptions, FixRun, Overlay, Round};
use upkeep_rules::{check, CheckOptions, NginxVersion, VersionSource};

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus")
}

/// Top-level configs from `_trees` (so that includes resolve), snippets as
/// their flattened copies.
fn corpus_configs() -> Vec<PathBuf> {
    let dir = corpus_dir();
    let Ok(sources) = std::fs::read_to_string(dir.join("SOURCES.tsv")) else {
        eprintln!(
            "skipping: the config corpus is not at {} (no SOURCES.tsv)",
            dir.display()
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in sources.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (local, repo_path, kind) = (cols[0], cols[2], cols[6]);
        let flat = dir.join(local);
        if !flat.is_file() {
            continue; // a repository this copy of the corpus does not hold
        }
        let owner_repo = local.split('/').next().unwrap();
        let tree = dir.join("_trees").join(owner_repo).join(repo_path);
        out.push(if kind == "top-level" && tree.is_file() {
            tree
        } else {
            flat
        });
    }
    out
}

/// Reads `overlay` over `base` over the disk.
struct Layered<'a> {
    top: &'a Overlay,
    base: &'a Overlay,
}

impl Loader for Layered<'_> {
    fn read(&self, path: &str) -> std::io::Result<Vec<u8>> {
        match self.top.get(path).or_else(|| self.base.get(path)) {
            Some(t) => Ok(t.to_vec()),
            None => FsLoader.read(path),
        }
    }
    fn glob(&self, pattern: &str) -> std::io::Result<Vec<String>> {
        FsLoader.glob(pattern)
    }
}

fn run(main: &str, base: &Overlay, opts: &CheckOptions) -> Result<FixRun<ConfigSet>, LoadError> {
    let mut checker = |overlay: &Overlay| -> Result<Round<ConfigSet>, LoadError> {
        let set = ConfigSet::load(
            main,
            &Layered { top: overlay, base },
            &LoadOptions::default(),
        )?;
        let findings = check(&set, opts).findings;
        Ok(Round {
            sources: set,
            findings,
        })
    };
    fix(&mut checker, &FixOptions::default())
}

/// The default target (1.28.0), and a version after upstream keep-alive
/// became the default (1.29.7), where other rules fire.
#[test]
fn fix_twice_equals_fix_once_and_only_edits_change() {
    for version in ["1.28.0", "1.30.0"] {
        let opts = CheckOptions {
            nginx_version: Some(NginxVersion::parse(version).unwrap()),
            version_source: VersionSource::Given,
            ..CheckOptions::default()
        };
        corpus_round_trip(version, &opts);
    }
}

fn corpus_round_trip(version: &str, opts: &CheckOptions) {
    let configs = corpus_configs();
    if configs.is_empty() {
        return; // no corpus beside the repository (the reason is printed)
    }
    assert!(
        configs.len() > 100,
        "corpus not found or too small: {}",
        configs.len()
    );
    let mut loaded = 0;
    let mut fixed_files = 0;
    let mut applied: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for path in &configs {
        let main = path.to_str().unwrap();
        let first = match run(main, &Overlay::default(), opts) {
            Ok(r) => r,
            Err(_) => continue, // a syntax error in the input: nothing to fix
        };
        loaded += 1;
        for a in &first.applied {
            *applied.entry(a.rule).or_default() += 1;
        }
        match first.history() {
            Ok(history) => {
                for change in &history {
                    if let Err(e) = upkeep_fix::verify::only_edits_changed(change) {
                        failures.push(format!("{main}: {e}"));
                    }
                }
            }
            Err(e) => failures.push(format!("{main}: {e}")),
        }
        if !first.converged {
            failures.push(format!(
                "{main}: did not converge in {} rounds",
                first.rounds
            ));
        }
        if first.changes().next().is_none() {
            continue;
        }
        fixed_files += 1;
        let mut result = Overlay::default();
        for (p, _, new) in first.changes() {
            result.insert(p, new.to_vec());
        }
        match run(main, &result, opts) {
            Err(e) => failures.push(format!("{main}: the fixed config does not load: {e}")),
            Ok(second) => {
                if second.changes().next().is_some() || !second.applied.is_empty() {
                    let what: Vec<String> = second
                        .applied
                        .iter()
                        .map(|a| format!("{} {}", a.rule, a.description))
                        .collect();
                    failures.push(format!(
                        "{main}: a second fix changed more: {}",
                        what.join("; ")
                    ));
                }
            }
        }
    }
    eprintln!(
        "corpus, nginx {version}: {} configs, {loaded} loaded, {fixed_files} changed by fix; fixes applied per rule: {applied:?}",
        configs.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        fixed_files > 0,
        "no corpus config needed a fix: the test would prove nothing"
    );
}
