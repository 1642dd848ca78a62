//! upkeep in CI: the `github`, `gitlab` and `junit` formats from the binary,
//! the pre-commit hooks run by pre-commit itself (`pre-commit try-repo` on a
//! sample repository), and the GitHub Action's check script with its SARIF
//! checked against the official schema. All offline.

mod common;

use common::{text, upkeep};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BROKEN_POOL: &str = "\
events {}
http {
    upstream app {
        server 127.0.0.1:8000;
    }
    server {
        listen 127.0.0.1:8080;
        location / {
            proxy_pass http://app;
        }
    }
}
";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn shop_args(format: &str) -> Vec<String> {
    [
        "check",
        "--format",
        format,
        "--nginx-version",
        "1.28.0",
        "examples/shop/nginx.conf",
    ]
    .map(String::from)
    .to_vec()
}

/// `upkeep ARGS` run from the repository root, as CI runs it.
fn upkeep_at_root(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(args)
        .current_dir(repo_root())
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn json_findings() -> Vec<Value> {
    let out = upkeep_at_root(&shop_args("json"));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["findings"].as_array().unwrap().clone()
}

fn sarif_errors(log: &Value) -> Vec<String> {
    let schema_path = repo_root().join("crates/upkeep-diag/tests/sarif/sarif-schema-2.1.0.json");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    validator
        .iter_errors(log)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect()
}

/// Checks one `::level k=v,…::message` line the way the Actions runner
/// splits it, and returns (level, file property).
fn annotation_parts(line: &str) -> (String, Option<String>) {
    let rest = line.strip_prefix("::").unwrap_or_else(|| panic!("{line}"));
    let end = rest.find("::").unwrap_or_else(|| panic!("{line}"));
    let head = &rest[..end];
    let (level, props) = head.split_once(' ').unwrap_or((head, ""));
    assert!(["error", "warning", "notice"].contains(&level), "{line}");
    let mut file = None;
    for p in props.split(',') {
        let (k, v) = p.split_once('=').unwrap_or_else(|| panic!("{p} in {line}"));
        assert!(
            ["file", "line", "col", "endLine", "endColumn", "title"].contains(&k),
            "{line}"
        );
        if k == "file" {
            file = Some(v.to_string());
        }
    }
    (level.to_string(), file)
}

#[test]
fn github_format_annotates_every_finding_with_repository_paths() {
    let findings = json_findings();
    let out = upkeep_at_root(&shop_args("github"));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), findings.len(), "{stdout}");
    for line in &lines {
        let (_, file) = annotation_parts(line);
        let file = file.expect("every shop finding has a place");
        // Relative to the working directory (the checkout), so GitHub can
        // place it on the diff.
        assert!(file.starts_with("examples/shop/"), "{line}");
        assert!(repo_root().join(&file).is_file(), "{file}");
    }
    let errors = findings.iter().filter(|f| f["severity"] == "error").count();
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("::error ")).count(),
        errors
    );
}

#[test]
fn gitlab_format_is_a_code_quality_report() {
    let findings = json_findings();
    let out = upkeep_at_root(&shop_args("gitlab"));
    assert_eq!(out.status.code(), Some(1));
    let issues: Value = serde_json::from_slice(&out.stdout).unwrap();
    let issues = issues.as_array().unwrap();
    assert_eq!(issues.len(), findings.len());
    for (issue, finding) in issues.iter().zip(&findings) {
        assert_eq!(issue["check_name"], finding["rule"]);
        assert_eq!(issue["location"]["lines"]["begin"], finding["line"]);
        let path = issue["location"]["path"].as_str().unwrap();
        assert!(repo_root().join(path).is_file(), "{path}");
        assert!(issue["fingerprint"].as_str().unwrap().len() >= 16);
    }
}

#[test]
fn junit_format_has_one_failing_case_per_finding() {
    let findings = json_findings();
    let out = upkeep_at_root(&shop_args("junit"));
    assert_eq!(out.status.code(), Some(1));
    let xml = text(&out.stdout);
    let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
    let failures = doc
        .descendants()
        .filter(|n| n.has_tag_name("failure"))
        .count();
    assert_eq!(failures, findings.len());
    assert_eq!(
        doc.root_element().attribute("failures"),
        Some(findings.len().to_string().as_str())
    );
}

fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
}

/// A git repository holding `nginx.conf` with `config`, committed.
fn sample_repo(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("nginx.conf"), config).unwrap();
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["config", "user.email", "ci@example.invalid"]);
    git(dir.path(), &["config", "user.name", "ci"]);
    git(dir.path(), &["add", "nginx.conf"]);
    git(dir.path(), &["commit", "-q", "-m", "config"]);
    dir
}

/// `pre-commit try-repo <this repository> HOOK --all-files` in `repo`, with
/// pre-commit's cache in `home` and the hook running the test's binary.
fn try_repo(repo: &Path, home: &Path, hook: &str) -> Output {
    Command::new("pre-commit")
        .args([
            "try-repo",
            repo_root().to_str().unwrap(),
            hook,
            "--all-files",
        ])
        .current_dir(repo)
        .env("PRE_COMMIT_HOME", home)
        .env("UPKEEP_BIN", env!("CARGO_BIN_EXE_upkeep"))
        .env("NO_COLOR", "1")
        .env("PRE_COMMIT_COLOR", "never")
        .output()
        .unwrap()
}

#[test]
fn pre_commit_hooks_check_and_fix_a_sample_repository() {
    if !have("pre-commit") {
        eprintln!("SKIPPED: pre-commit is not installed (.ci/setup installs it from PyPI)");
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let repo = sample_repo(BROKEN_POOL);

    let check = try_repo(repo.path(), home.path(), "upkeep-check");
    let log = format!("{}{}", text(&check.stdout), text(&check.stderr));
    assert_eq!(check.status.code(), Some(1), "{log}");
    assert!(log.contains("upkeep check (nginx keep-alive)"), "{log}");
    assert!(log.contains("Failed"), "{log}");
    assert!(log.contains("warning[U001]"), "{log}");
    assert!(log.contains("nginx.conf:3:5"), "{log}");

    // The fixer rewrites the file; pre-commit fails the run because a file
    // changed, and a second run finds nothing left to change.
    let fix = try_repo(repo.path(), home.path(), "upkeep-fix");
    let log = format!("{}{}", text(&fix.stdout), text(&fix.stderr));
    assert_eq!(fix.status.code(), Some(1), "{log}");
    assert!(log.contains("files were modified by this hook"), "{log}");
    let fixed = std::fs::read_to_string(repo.path().join("nginx.conf")).unwrap();
    assert!(fixed.contains("keepalive "), "{fixed}");
    assert!(fixed.contains("proxy_http_version 1.1;"), "{fixed}");

    let again = try_repo(repo.path(), home.path(), "upkeep-fix");
    let log = format!("{}{}", text(&again.stdout), text(&again.stderr));
    assert_eq!(again.status.code(), Some(0), "{log}");
    assert!(log.contains("Passed"), "{log}");
}

#[test]
fn github_action_script_writes_valid_sarif_annotations_and_outputs() {
    let work = tempfile::tempdir().unwrap();
    let sarif = work.path().join("upkeep.sarif");
    let outputs = work.path().join("github_output");
    let run = |config: &str| {
        std::fs::write(&outputs, "").unwrap();
        Command::new(repo_root().join("integrations/github-action/run.sh"))
            .current_dir(repo_root())
            .env("UPKEEP_CONFIG", config)
            .env("UPKEEP_ARGS", "--nginx-version 1.26.3  --ignore U001")
            .env("UPKEEP_FAIL_ON", "warning")
            .env("UPKEEP_ANNOTATIONS", "true")
            .env("UPKEEP_SARIF", &sarif)
            .env("UPKEEP_BIN", env!("CARGO_BIN_EXE_upkeep"))
            .env("GITHUB_OUTPUT", &outputs)
            .output()
            .unwrap()
    };

    let out = run("examples/shop/nginx.conf");
    // The step itself succeeds: the action's last step fails the job, after
    // the upload.
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let recorded = std::fs::read_to_string(&outputs).unwrap();
    assert!(recorded.contains("exit-code=1\n"), "{recorded}");
    assert!(
        recorded.contains(&format!("sarif={}\n", sarif.display())),
        "{recorded}"
    );

    let log: Value = serde_json::from_str(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    let errors = sarif_errors(&log);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    let results = log["runs"][0]["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for r in results {
        let loc = &r["locations"][0]["physicalLocation"]["artifactLocation"];
        assert_eq!(loc["uriBaseId"], "%SRCROOT%");
        assert!(repo_root().join(loc["uri"].as_str().unwrap()).is_file());
    }
    // Both extra arguments reached upkeep, split on whitespace.
    assert_eq!(log["runs"][0]["properties"]["nginxVersion"], "1.26.3");
    assert_eq!(log["runs"][0]["properties"]["nginxVersionSource"], "given");
    assert!(json_findings().iter().any(|f| f["rule"] == "U001"));
    assert!(results.iter().all(|r| r["ruleId"] != "U001"));

    let stdout = text(&out.stdout);
    let annotations: Vec<&str> = stdout.lines().filter(|l| l.starts_with("::")).collect();
    assert_eq!(annotations.len(), results.len(), "{stdout}");
    for a in annotations {
        annotation_parts(a);
    }

    // An unreadable config: exit code 2 recorded, an error annotation, no
    // findings.
    let out = run("examples/shop/missing.conf");
    assert_eq!(out.status.code(), Some(0));
    let recorded = std::fs::read_to_string(&outputs).unwrap();
    assert!(recorded.contains("exit-code=2\n"), "{recorded}");
    assert!(text(&out.stdout).contains("::error title=upkeep::"));
}

/// action.yml as JSON, through PyYAML (a dependency of pre-commit, which
/// .ci/setup installs).
fn action_yml() -> Option<Value> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(repo_root().join("action.yml"))
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn action_yml_runs_the_script_and_uploads_its_sarif() {
    let Some(action) = action_yml() else {
        eprintln!("SKIPPED: python3 with PyYAML is not available (.ci/setup installs pre-commit, which brings it)");
        return;
    };
    assert_eq!(action["runs"]["using"], "composite");
    let steps = action["runs"]["steps"].as_array().unwrap();
    let check = steps.iter().find(|s| s["id"] == "check").unwrap();
    assert_eq!(check["shell"], "bash");
    let script = check["run"].as_str().unwrap();
    let path = script
        .trim_matches('"')
        .strip_prefix("$GITHUB_ACTION_PATH/")
        .unwrap_or_else(|| panic!("{script}"));
    let path = repo_root().join(path);
    use std::os::unix::fs::PermissionsExt;
    assert!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o111 != 0,
        "{} is not executable",
        path.display()
    );
    // Every variable the script reads is set by the step.
    let script_text = std::fs::read_to_string(&path).unwrap();
    for (name, _) in check["env"].as_object().unwrap() {
        assert!(script_text.contains(name.as_str()), "{name} unused");
    }

    let upload = steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("github/codeql-action/upload-sarif@"))
        })
        .expect("an upload-sarif step");
    assert_eq!(
        upload["with"]["sarif_file"],
        "${{ steps.check.outputs.sarif }}"
    );
    // The job fails last, with upkeep's status.
    let last = steps.last().unwrap();
    assert!(last["run"]
        .as_str()
        .unwrap()
        .contains("exit \"$UPKEEP_EXIT\""));
    assert_eq!(
        last["env"]["UPKEEP_EXIT"],
        "${{ steps.check.outputs.exit-code }}"
    );

    // Every `inputs.X` the action uses is declared.
    let raw = std::fs::read_to_string(repo_root().join("action.yml")).unwrap();
    let declared = action["inputs"].as_object().unwrap();
    for part in raw.split("inputs.").skip(1) {
        let name: String = part
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        assert!(
            declared.contains_key(&name),
            "inputs.{name} is not declared"
        );
    }
}

#[test]
fn check_help_lists_the_ci_formats() {
    let out = upkeep(&["check", "--help"]);
    let help = text(&out.stdout);
    for format in ["github", "gitlab", "junit", "sarif"] {
        assert!(help.contains(format), "{help}");
    }
}
