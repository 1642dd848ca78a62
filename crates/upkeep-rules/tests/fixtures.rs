//! Per-rule fixtures: configs that must trigger a rule and configs that must
//! not, each accepted by a real `nginx -t`, with the expected findings
//! asserted exactly (rule, line, column) and the fix checked (snapshot and
//! convergence).
//!
//! Layout: `tests/fixtures/<RULE>/<name>.conf` (one file) or
//! `tests/fixtures/<RULE>/<name>/nginx.conf` (with includes). Header comments
//! in the main file configure the case:
//!
//! ```text
//! # upkeep-test: version 1.28.0        target nginx version (default 1.28.0)
//! # upkeep-test: flavor angie          like --flavor (version is then Angie's)
//! # upkeep-test: expect U003 12:13     an expected finding (file:line:col for other files)
//! # upkeep-test: backend app=gunicorn  like --backend
//! # upkeep-test: front aws-alb         like --front
//! # upkeep-test: also U003              assert U003 too (no expect: none)
//! # upkeep-test: nginx-t skip: REASON  syntax Debian's nginx 1.22 lacks
//! ```
//!
//! Findings of the fixture's rule and of every rule named in an `expect`
//! line must match the expectations exactly. A `<name>.fixed` file next to a
//! one-file fixture is the expected text after applying that rule's fixes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use upkeep_config::{ConfigSet, FsLoader, LoadOptions, MemoryLoader};
use upkeep_diag::Finding;
use upkeep_rules::{check, settings, CheckOptions, NginxVersion, VersionSource};

struct Case {
    rule: String,
    name: String,
    /// The main config file.
    main: PathBuf,
    /// Directory holding all files of the case (for includes).
    root: PathBuf,
    opts: CheckOptions,
    expects: Vec<String>,
    rules_checked: Vec<String>,
    nginx_t_skip: Option<String>,
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    let mut rule_dirs: Vec<_> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    rule_dirs.sort();
    for dir in rule_dirs {
        let rule = dir.file_name().unwrap().to_string_lossy().into_owned();
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            let (main, root, name) = if p.is_dir() {
                (
                    p.join("nginx.conf"),
                    p.clone(),
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                )
            } else if p.extension().is_some_and(|e| e == "conf") {
                (
                    p.clone(),
                    dir.clone(),
                    p.file_stem().unwrap().to_string_lossy().into_owned(),
                )
            } else {
                continue;
            };
            out.push(parse_case(rule.clone(), name, main, root));
        }
    }
    out
}

fn parse_case(rule: String, name: String, main: PathBuf, root: PathBuf) -> Case {
    let text = std::fs::read_to_string(&main).unwrap();
    let mut opts = CheckOptions {
        nginx_version: Some(NginxVersion::new(1, 28, 0)),
        version_source: VersionSource::Given,
        ..Default::default()
    };
    let mut expects = Vec::new();
    let mut rules_checked = vec![rule.clone()];
    let mut nginx_t_skip = None;
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("# upkeep-test:") else {
            continue;
        };
        let rest = rest.trim();
        let (key, value) = rest.split_once(' ').unwrap_or((rest, ""));
        let value = value.trim();
        match key {
            "version" => opts.nginx_version = Some(NginxVersion::parse(value).unwrap()),
            "flavor" => opts.flavor = upkeep_facts::Flavor::parse(value).unwrap(),
            "assume-version" => {
                opts.nginx_version = None;
                opts.version_source = VersionSource::Assumed;
            }
            "expect" => {
                let id = value.split_whitespace().next().unwrap().to_string();
                if !rules_checked.contains(&id) {
                    rules_checked.push(id);
                }
                expects.push(value.to_string());
            }
            // Also assert this rule's findings exactly (usually: none).
            "also" => {
                if !rules_checked.iter().any(|r| r == value) {
                    rules_checked.push(value.to_string());
                }
            }
            "backend" => {
                let (n, f) = settings::parse_backend_spec(value).unwrap();
                opts.backends.insert(n, f);
            }
            "front" => opts.front_name = Some(value.to_string()),
            "front-idle" => opts.front_idle_ms = Some(upkeep_facts::parse_duration(value).unwrap()),
            "cpus" => opts.cpus = Some(value.parse().unwrap()),
            "nginx-t" => nginx_t_skip = Some(value.to_string()),
            other => panic!("{}: unknown upkeep-test key {other}", main.display()),
        }
    }
    Case {
        rule,
        name,
        main,
        root,
        opts,
        expects,
        rules_checked,
        nginx_t_skip,
    }
}

fn load_fs(case: &Case) -> ConfigSet {
    ConfigSet::load(
        case.main.to_str().unwrap(),
        &FsLoader,
        &LoadOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{}: {}", case.main.display(), e))
}

/// `RULE line:col`, or `RULE file:line:col` outside the main file.
fn describe(config: &ConfigSet, case: &Case, f: &Finding) -> String {
    let p = f.primary.expect("rule findings have a place");
    let file = config.file(p.file);
    let lc = file.line_col(p.start);
    if Path::new(&file.path) == case.main {
        format!("{} {}:{}", f.rule, lc.line, lc.col)
    } else {
        let rel = Path::new(&file.path)
            .strip_prefix(&case.root)
            .unwrap_or(Path::new(&file.path));
        format!("{} {}:{}:{}", f.rule, rel.display(), lc.line, lc.col)
    }
}

/// Applies every fix of `rule`'s findings; overlapping edits are skipped as a
/// fix engine would, and the re-check below catches what is left.
fn apply_fixes(config: &ConfigSet, findings: &[Finding], rule: &str) -> BTreeMap<u32, Vec<u8>> {
    let mut edits: Vec<upkeep_diag::Edit> = findings
        .iter()
        .filter(|f| f.rule == rule)
        .filter_map(|f| f.fix.as_ref())
        .flat_map(|fix| fix.edits.clone())
        .collect();
    edits.sort();
    edits.dedup();
    let mut files: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    let mut by_file: BTreeMap<u32, Vec<upkeep_diag::Edit>> = BTreeMap::new();
    for e in edits {
        by_file.entry(e.span.file.0).or_default().push(e);
    }
    for (file, list) in by_file {
        let mut text = config.files[file as usize].text.to_vec();
        // From the end, so earlier offsets stay valid; skip overlaps.
        let mut applied_from = u32::MAX;
        for e in list.iter().rev() {
            if e.span.end > applied_from {
                continue;
            }
            text.splice(e.span.range(), e.content.bytes());
            applied_from = e.span.start;
        }
        files.insert(file, text);
    }
    files
}

fn nginx() -> Option<upkeep_nginx::NginxBinary> {
    upkeep_nginx::NginxBinary::find(None)
}

/// Runs `nginx -t` on the case's files (with `replaced` file contents
/// swapped in), in a private prefix with temp paths inside it.
fn nginx_t(
    case: &Case,
    config: &ConfigSet,
    replaced: &BTreeMap<u32, Vec<u8>>,
) -> Result<(), String> {
    let Some(bin) = nginx() else {
        if std::env::var_os("CI").is_some() {
            return Err("no nginx binary found (CI must install Debian's nginx)".into());
        }
        eprintln!(
            "warning: no nginx binary; skipping nginx -t for {}",
            case.main.display()
        );
        return Ok(());
    };
    let prefix = upkeep_nginx::Prefix::new().map_err(|e| e.to_string())?;
    let mut main_path = None;
    for (i, f) in config.files.iter().enumerate() {
        let rel = Path::new(&f.path)
            .strip_prefix(&case.root)
            .unwrap()
            .to_path_buf();
        let mut text = replaced
            .get(&(i as u32))
            .cloned()
            .unwrap_or_else(|| f.text.to_vec());
        if i == config.main.0 as usize {
            // Keep nginx's temp files inside the prefix.
            let s = String::from_utf8(text).unwrap();
            let at = s.find("http {").expect("fixtures have an http block") + "http {".len();
            text =
                format!("{}\n    {}{}", &s[..at], prefix.http_temp_paths(), &s[at..]).into_bytes();
        }
        let path = prefix
            .write(
                &format!("conf/{}", rel.display()),
                &String::from_utf8_lossy(&text),
            )
            .unwrap();
        if i == config.main.0 as usize {
            main_path = Some(path);
        }
    }
    let main_path = main_path.unwrap();
    let out = bin
        .test_config(&main_path, &prefix.path().join("conf"), prefix.path())
        .map_err(|e| e.to_string())?;
    if out.ok {
        Ok(())
    } else {
        Err(out.output)
    }
}

#[test]
fn every_rule_fixture() {
    // UPKEEP_FIXTURE=U003 runs one rule's fixtures (while writing them).
    let filter = std::env::var("UPKEEP_FIXTURE").ok();
    let cases: Vec<Case> = cases()
        .into_iter()
        .filter(|c| {
            filter
                .as_ref()
                .is_none_or(|f| c.rule == *f || format!("{}/{}", c.rule, c.name) == *f)
        })
        .collect();
    if filter.is_none() {
        assert!(cases.len() >= 40, "fixtures missing: found {}", cases.len());
    }
    let mut failures = Vec::new();
    for case in &cases {
        let label = format!("{}/{}", case.rule, case.name);
        let config = load_fs(case);
        let report = check(&config, &case.opts);
        let mut got: Vec<String> = report
            .findings
            .iter()
            .filter(|f| case.rules_checked.iter().any(|r| r == f.rule))
            .map(|f| describe(&config, case, f))
            .collect();
        got.sort();
        let mut want = case.expects.clone();
        want.sort();
        if got != want {
            let detail: Vec<String> = report
                .findings
                .iter()
                .filter(|f| case.rules_checked.iter().any(|r| r == f.rule))
                .map(|f| format!("  {}: {}", describe(&config, case, f), f.message))
                .collect();
            failures.push(format!(
                "{label}: expected {want:?}, got {got:?}\n{}",
                detail.join("\n")
            ));
            continue;
        }
        if case.name.starts_with("bad") && want.is_empty() {
            failures.push(format!("{label}: a bad_ fixture must expect findings"));
        }
        if case.name.starts_with("ok") && want.iter().any(|w| w.starts_with(&case.rule)) {
            failures.push(format!(
                "{label}: an ok_ fixture must not expect {} findings",
                case.rule
            ));
        }
        // nginx accepts the config.
        match &case.nginx_t_skip {
            Some(reason) => eprintln!("{label}: nginx -t skipped: {reason}"),
            None => {
                if let Err(e) = nginx_t(case, &config, &BTreeMap::new()) {
                    failures.push(format!("{label}: nginx -t failed:\n{e}"));
                }
            }
        }
        // The fix: snapshot, convergence, and nginx -t on the result.
        let fixed = apply_fixes(&config, &report.findings, &case.rule);
        if fixed.is_empty() {
            continue;
        }
        let snapshot = case.main.with_extension("fixed");
        if case.main.parent() == Some(case.root.as_path())
            && case.main.extension().is_some_and(|e| e == "conf")
            && case.root.ends_with(&case.rule)
        {
            let main_fixed = fixed
                .get(&config.main.0)
                .cloned()
                .unwrap_or_else(|| config.file(config.main).text.to_vec());
            match std::fs::read(&snapshot) {
                Ok(expected) if expected == main_fixed => {}
                Ok(_) => failures.push(format!(
                    "{label}: fix differs from {}:\n{}",
                    snapshot.display(),
                    String::from_utf8_lossy(&main_fixed)
                )),
                Err(_) => {
                    if std::env::var_os("UPKEEP_BLESS").is_some() {
                        std::fs::write(&snapshot, &main_fixed).unwrap();
                    } else {
                        failures.push(format!(
                            "{label}: missing snapshot {} (run with UPKEEP_BLESS=1 to write it); fixed text:\n{}",
                            snapshot.display(),
                            String::from_utf8_lossy(&main_fixed)
                        ));
                    }
                }
            }
        }
        let mut loader = MemoryLoader::new();
        for (i, f) in config.files.iter().enumerate() {
            loader.insert(
                f.path.clone(),
                fixed
                    .get(&(i as u32))
                    .cloned()
                    .unwrap_or_else(|| f.text.to_vec()),
            );
        }
        let refixed = ConfigSet::load(
            &config.file(config.main).path,
            &loader,
            &LoadOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{label}: fixed config does not parse: {e}"));
        let again = check(&refixed, &case.opts);
        let left: Vec<String> = again
            .findings
            .iter()
            .filter(|f| f.rule == case.rule && f.fix.is_some())
            .map(|f| format!("{} {}", f.rule, f.message))
            .collect();
        if !left.is_empty() {
            failures.push(format!(
                "{label}: fixable findings left after the fix: {left:?}"
            ));
        }
        if case.nginx_t_skip.is_none() {
            if let Err(e) = nginx_t(case, &config, &fixed) {
                failures.push(format!(
                    "{label}: nginx -t failed on the fixed config:\n{e}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixture failure(s):\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
