//! Following includes: every top-level corpus config loaded from its
//! original directory layout (`_trees/`) with all included files round
//! tripping, and the multi-file crossplane output equal to
//! `crossplane parse` (run in that directory with /etc/nginx hidden).

mod common;

use common::{corpus_dir, disagreement};
use std::io;
use std::path::PathBuf;
use upkeep_config::crossplane::{crossplane_json, CrossplaneOptions};
use upkeep_config::{ConfigSet, FsLoader, LoadErrorKind, LoadOptions, Loader};
use upkeep_syntax::{parse, print};

/// Relative paths are read inside one repository's tree (crossplane ran
/// with that directory as cwd); /etc/nginx does not exist, as in the runs
/// that produced the corpus's JSON.
struct TreeLoader {
    root: PathBuf,
}

impl TreeLoader {
    fn real(&self, path: &str) -> Option<String> {
        if path.starts_with("/etc/nginx") {
            return None;
        }
        Some(if path.starts_with('/') {
            path.to_string()
        } else {
            self.root.join(path).display().to_string()
        })
    }
}

impl Loader for TreeLoader {
    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        match self.real(path) {
            Some(p) => FsLoader.read(&p),
            None => Err(io::Error::new(io::ErrorKind::NotFound, "hidden")),
        }
    }

    fn glob(&self, pattern: &str) -> io::Result<Vec<String>> {
        let Some(real) = self.real(pattern) else {
            return Ok(Vec::new());
        };
        let root = format!("{}/", self.root.display());
        Ok(FsLoader
            .glob(&real)?
            .into_iter()
            .map(
                |p| match (pattern.starts_with('/'), p.strip_prefix(&root)) {
                    (false, Some(rel)) => rel.to_string(),
                    _ => p,
                },
            )
            .collect())
    }
}

/// (corpus file, repository, path of the main config inside the tree),
/// from nginx_t.tsv's `conf_path_used` column.
fn top_level_configs(dir: &std::path::Path) -> Vec<(String, String, String)> {
    let tsv = std::fs::read_to_string(dir.join("nginx_t.tsv")).unwrap();
    let mut out = Vec::new();
    for line in tsv.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (file, used) = (cols[0], cols[1]);
        let repo = file.split('/').next().unwrap();
        let Some(inner) = used.strip_prefix(&format!("_trees/{repo}/")) else {
            continue;
        };
        out.push((file.to_string(), repo.to_string(), inner.to_string()));
    }
    out
}

#[test]
fn top_level_configs_load_with_their_includes() {
    let Some(dir) = corpus_dir() else {
        return;
    };
    let configs = top_level_configs(&dir);
    assert!(configs.len() > 150, "{} configs", configs.len());
    let mut compared = 0;
    let mut skipped_table_errors = 0;
    let mut multi_file = 0;
    for (file, repo, main) in &configs {
        let loader = TreeLoader {
            root: dir.join("_trees").join(repo),
        };
        let result = ConfigSet::load(main, &loader, &LoadOptions::default());
        match &result {
            Ok(set) => {
                for (f, t) in set.files.iter().zip(&set.trees) {
                    assert_eq!(print(t, f), *f.text, "{}", f.path);
                    assert_eq!(&parse(f).unwrap(), t);
                }
                if set.files.len() > 1 {
                    multi_file += 1;
                }
            }
            Err(e) => match e.kind {
                LoadErrorKind::Syntax(_) | LoadErrorKind::IncludeCycle => {}
                _ => panic!("{file}: {e}"),
            },
        }
        let expected_path = dir.join(format!("{file}.crossplane.includes.json"));
        let Ok(expected) = std::fs::read_to_string(&expected_path) else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(&expected).unwrap();
        // crossplane's directive-table errors drop directives from its
        // output; such runs cannot be compared (the single-file test
        // compares those files through their no-context twin).
        let table_errors = v["errors"].as_array().unwrap().iter().any(|e| {
            let m = e["error"].as_str().unwrap_or("");
            !m.starts_with("[Errno ")
        });
        if table_errors {
            skipped_table_errors += 1;
            continue;
        }
        let opts = CrossplaneOptions {
            indent: Some(2),
            ..CrossplaneOptions::default()
        };
        let ours = crossplane_json(&result, &opts) + "\n";
        compared += 1;
        let cycle = matches!(&result, Err(e) if e.kind == LoadErrorKind::IncludeCycle);
        if ours != expected {
            assert!(
                disagreement(file).is_some() || cycle,
                "{file}: differs from crossplane with includes\n--- upkeep\n{ours}\n--- crossplane\n{expected}"
            );
        }
    }
    assert!(
        compared > 100,
        "compared {compared}, skipped {skipped_table_errors}"
    );
    assert!(multi_file >= 10, "{multi_file} configs with includes");
}
