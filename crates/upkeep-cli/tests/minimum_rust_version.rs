//! The workspace's `rust-version` is a promise to people building upkeep
//! from source: it must not be lower than what any dependency the binary is
//! built with (as locked in Cargo.lock) declares for itself. Clippy's
//! `incompatible_msrv` lint checks our own use of the standard library
//! against the same number.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// `1.89` or `1.88.0` as comparable numbers (missing parts are 0).
fn version(text: &str) -> (u64, u64, u64) {
    let mut parts = text.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

#[test]
fn rust_version_covers_every_locked_runtime_dependency() {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages: BTreeMap<&str, &serde_json::Value> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p))
        .collect();
    let cli = packages
        .values()
        .find(|p| p["name"] == "upkeep-cli")
        .expect("upkeep-cli in the workspace");
    let ours = cli["rust_version"]
        .as_str()
        .expect("upkeep-cli declares rust-version");

    // Everything reachable from upkeep-cli through normal (not dev, not
    // build-only) dependency edges, on any target.
    let nodes: BTreeMap<&str, &serde_json::Value> = meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n))
        .collect();
    let mut seen = BTreeSet::new();
    let mut todo = vec![cli["id"].as_str().unwrap()];
    while let Some(id) = todo.pop() {
        if !seen.insert(id) {
            continue;
        }
        for dep in nodes[id]["deps"].as_array().unwrap() {
            let normal = dep["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kind"].is_null());
            if normal {
                todo.push(dep["pkg"].as_str().unwrap());
            }
        }
    }
    assert!(seen.len() > 20, "the walk found the dependency graph");

    let too_new: Vec<String> = seen
        .iter()
        .filter_map(|id| {
            let p = packages[id];
            let needs = p["rust_version"].as_str()?;
            (version(needs) > version(ours))
                .then(|| format!("{} {} needs {needs}", p["name"], p["version"]))
        })
        .collect();
    assert!(
        too_new.is_empty(),
        "rust-version {ours} is below what these dependencies need: {too_new:?}"
    );
}
