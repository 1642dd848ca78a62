//! End to end, through the `upkeep` binary: for every positive fixture of
//! every fixable rule (crates/upkeep-rules/tests/fixtures/<RULE>/bad_*):
//! `fix` prints a diff (snapshot) → `fix --write` writes it and a real
//! `nginx -t` accepts it → `check` no longer reports the rule → a second
//! `fix` has nothing to do.
//!
//! The diffs are snapshots (tests/snapshots/fix_fixtures__RULE__NAME.snap):
//! after changing a fixture or a rule's fix, review the new diffs with
//! `INSTA_UPDATE=always cargo test -p upkeep-cli --test fix_fixtures` and
//! `git diff`.

mod common;

use common::{text, upkeep};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../upkeep-rules/tests/fixtures")
}

struct Case {
    rule: String,
    name: String,
    /// Where the fixture lives: one file, or a directory with nginx.conf.
    source: PathBuf,
    /// Flags that give `upkeep` what the fixture header declares.
    flags: Vec<String>,
    nginx_t_skip: Option<String>,
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("rule fixtures")
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let rule = dir.file_name().unwrap().to_string_lossy().into_owned();
        if !upkeep_rules::rule(&rule).is_some_and(|r| r.fixable) {
            continue;
        }
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            let main = if p.is_dir() {
                p.join("nginx.conf")
            } else if name.ends_with(".conf") {
                p.clone()
            } else {
                continue;
            };
            if !name.starts_with("bad") {
                continue;
            }
            let (flags, nginx_t_skip) = header_flags(&std::fs::read_to_string(&main).unwrap());
            out.push(Case {
                rule: rule.clone(),
                name: name.trim_end_matches(".conf").to_string(),
                source: p,
                flags,
                nginx_t_skip,
            });
        }
    }
    out
}

/// `# upkeep-test:` header lines as command-line flags.
fn header_flags(text: &str) -> (Vec<String>, Option<String>) {
    let mut flags = Vec::new();
    let mut version = Some("1.28.0".to_string());
    let mut skip = None;
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("# upkeep-test:") else {
            continue;
        };
        let (key, value) = rest.trim().split_once(' ').unwrap_or((rest.trim(), ""));
        let value = value.trim().to_string();
        match key {
            "version" => version = Some(value),
            // The fixture's verdicts are for the default version, 1.28.0.
            "assume-version" => version = Some("1.28.0".into()),
            "backend" => flags.extend(["--backend".to_string(), value]),
            "front" => flags.extend(["--front".to_string(), value]),
            "front-idle" => flags.extend(["--front-idle".to_string(), value]),
            "cpus" => flags.extend(["--cpus".to_string(), value]),
            "flavor" => flags.extend(["--flavor".to_string(), value]),
            "nginx-t" => skip = Some(value),
            _ => {}
        }
    }
    if let Some(v) = version {
        flags.extend(["--nginx-version".to_string(), v]);
    }
    (flags, skip)
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_tree(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// The rule's findings in `check --format json` output: the applicability
/// of each one's fix (`None` without a fix).
fn findings_of(rule: &str, main: &str, flags: &[String]) -> Vec<Option<String>> {
    let mut args = vec![
        "check".to_string(),
        "--format".into(),
        "json".into(),
        "--fail-on".into(),
        "never".into(),
    ];
    args.extend(flags.iter().cloned());
    args.push(main.to_string());
    let out = upkeep(&args);
    assert!(out.status.success(), "check failed: {}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == rule)
        .map(|f| f["fix"]["applicability"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn every_positive_fixture_of_every_fixable_rule() {
    let nginx = upkeep_nginx::NginxBinary::find(None)
        .expect("these tests need an nginx binary (Debian package nginx)");
    let cases = cases();
    assert!(cases.len() >= 10, "too few fixtures found: {}", cases.len());
    let mut failures = Vec::new();
    let mut fixed = 0;
    for case in &cases {
        let tmp = tempfile::tempdir().unwrap();
        let main = if case.source.is_dir() {
            copy_tree(&case.source, tmp.path());
            tmp.path().join("nginx.conf")
        } else {
            let dest = tmp.path().join("nginx.conf");
            std::fs::copy(&case.source, &dest).unwrap();
            dest
        };
        let main_s = main.to_str().unwrap().to_string();
        let id = format!("{}/{}", case.rule, case.name);

        let before = findings_of(&case.rule, &main_s, &case.flags);
        if before.is_empty() {
            failures.push(format!("{id}: the positive fixture is not reported"));
            continue;
        }
        let offers_fix = before.iter().any(Option::is_some);
        // Fixes that change behaviour someone may rely on are applied only
        // when asked; the fixture is about them, so ask.
        let mut flags = case.flags.clone();
        if before.iter().any(|a| a.as_deref() == Some("unsafe")) {
            flags.push("--unsafe-fixes".into());
        }

        // 1. The diff.
        let mut args = vec!["fix".to_string()];
        args.extend(flags.iter().cloned());
        args.push(main_s.clone());
        let diff = upkeep(&args);
        let diff_text = text(&diff.stdout);
        insta::assert_snapshot!(format!("{}__{}", case.rule, case.name), diff_text);
        if offers_fix && diff_text.is_empty() {
            failures.push(format!(
                "{id}: a fix is offered but the diff is empty: {}",
                text(&diff.stderr)
            ));
            continue;
        }
        if !offers_fix {
            // The finding explains a remedy outside nginx's config; nothing
            // of this rule may be written.
            continue;
        }

        // 2. Write it; the binary runs `nginx -t` itself unless the fixture
        // uses syntax this nginx lacks.
        let mut args = vec!["fix".to_string(), "--write".into()];
        if case.nginx_t_skip.is_some() {
            args.push("--no-nginx-test".into());
        }
        args.extend(flags.iter().cloned());
        args.push(main_s.clone());
        let written = upkeep(&args);
        if !written.status.success() {
            failures.push(format!(
                "{id}: fix --write failed ({}): {}",
                written.status,
                text(&written.stderr)
            ));
            continue;
        }

        // 3. An independent `nginx -t` of the result.
        if case.nginx_t_skip.is_none() {
            let prefix = upkeep_nginx::Prefix::new().unwrap();
            let outcome = nginx
                .test_config(&main, prefix.path(), prefix.path())
                .unwrap();
            if !outcome.ok {
                failures.push(format!(
                    "{id}: nginx -t rejects the fixed config: {}",
                    outcome.output
                ));
            }
        }

        // 4. The rule no longer fires.
        let after = findings_of(&case.rule, &main_s, &case.flags);
        if !after.is_empty() {
            failures.push(format!(
                "{id}: still reported after the fix ({} findings)",
                after.len()
            ));
        }

        // 5. A second fix has nothing to do.
        let mut args = vec!["fix".to_string()];
        args.extend(flags.iter().cloned());
        args.push(main_s.clone());
        let again = upkeep(&args);
        if !again.stdout.is_empty() || again.status.code() != Some(0) {
            failures.push(format!(
                "{id}: a second fix is not a no-op:\n{}",
                text(&again.stdout)
            ));
        }
        fixed += 1;
    }
    eprintln!(
        "{} positive fixtures, {fixed} fixed end to end",
        cases.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
