//! SARIF output checked against the official SARIF 2.1.0 schema (vendored in
//! tests/sarif/, see ORIGIN.md there) and against what GitHub code scanning
//! additionally requires of a result.

mod common;

use serde_json::Value;
use upkeep_diag::render::sarif::{self, RuleDescriptor, Tool};
use upkeep_diag::{Finding, Report, Severity};

fn rules() -> Vec<RuleDescriptor> {
    [
        (
            "U001",
            "upstream-without-keepalive",
            Severity::Warning,
            true,
        ),
        (
            "U004",
            "proxy-set-header-inheritance-lost",
            Severity::Error,
            true,
        ),
        ("R003", "no-worker-shutdown-timeout", Severity::Info, true),
        ("U008", "backend-request-cap", Severity::Info, false),
    ]
    .into_iter()
    .map(|(id, name, severity, fixable)| RuleDescriptor {
        id: id.into(),
        name: name.into(),
        severity,
        summary: format!("{name} summary"),
        doc: format!("## What it finds\n\n{name}.\n"),
        fixable,
    })
    .collect()
}

fn tool() -> Tool {
    Tool {
        name: "upkeep".into(),
        version: "0.1.0".into(),
        information_uri: None,
    }
}

fn render(findings: &[Finding], files: &common::Files, base: &str) -> Value {
    let mut report = Report::new(findings, files);
    report.base_dir = Some(base);
    report.nginx_version = Some("1.28.0");
    report.version_source = Some("assumed");
    serde_json::from_str(&sarif::render(&report, &tool(), &rules())).unwrap()
}

fn validate(log: &Value) {
    let schema: Value =
        serde_json::from_str(include_str!("sarif/sarif-schema-2.1.0.json")).unwrap();
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .should_validate_formats(true)
        .build(&schema)
        .expect("the vendored schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(log)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "SARIF schema violations:\n{}",
        errors.join("\n")
    );
}

#[test]
fn valid_against_the_official_schema() {
    let files = common::files();
    let log = render(&common::findings(&files), &files, "/etc/nginx");
    validate(&log);
    // Files outside the base directory get absolute file:// URIs; still valid.
    let log = render(&common::findings(&files), &files, "/srv");
    validate(&log);
    // An empty run.
    validate(&render(&[], &files, "/etc/nginx"));
}

#[test]
fn the_schema_check_does_reject_invalid_logs() {
    let files = common::files();
    let mut log = render(&common::findings(&files), &files, "/etc/nginx");
    log["runs"][0]["results"][0]["level"] = "fatal".into();
    let schema: Value =
        serde_json::from_str(include_str!("sarif/sarif-schema-2.1.0.json")).unwrap();
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .build(&schema)
        .unwrap();
    assert!(!validator.is_valid(&log));
}

#[test]
fn what_github_code_scanning_needs() {
    let files = common::files();
    let log = render(&common::findings(&files), &files, "/etc/nginx");
    let run = &log["runs"][0];
    assert_eq!(log["version"], "2.1.0");
    assert_eq!(run["tool"]["driver"]["name"], "upkeep");
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["U001", "U004", "R003", "U008"]);
    for result in run["results"].as_array().unwrap() {
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[index]["id"], result["ruleId"]);
        let loc = &result["locations"][0]["physicalLocation"];
        let uri = loc["artifactLocation"]["uri"].as_str().unwrap();
        assert!(!uri.starts_with('/'), "relative URI expected: {uri}");
        assert!(loc["region"]["startLine"].as_u64().unwrap() >= 1);
        assert!(result["message"]["text"]
            .as_str()
            .is_some_and(|t| !t.is_empty()));
        assert!(result["partialFingerprints"]["upkeep/v1"].is_string());
    }
    let u001 = &run["results"][1];
    assert_eq!(u001["ruleId"], "U001");
    assert_eq!(u001["level"], "warning");
    assert_eq!(
        u001["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "conf.d/app.conf"
    );
    assert_eq!(
        u001["locations"][0]["physicalLocation"]["artifactLocation"]["uriBaseId"],
        "%SRCROOT%"
    );
    let replacement = &u001["fixes"][0]["artifactChanges"][0]["replacements"][0];
    assert_eq!(
        replacement["insertedContent"]["text"],
        "\n    keepalive 32;"
    );
    assert_eq!(replacement["deletedRegion"]["startLine"], 2);
    assert_eq!(run["results"][0]["level"], "note");
}

#[test]
fn fingerprint_survives_lines_added_above() {
    let files = common::files();
    let before = render(&common::findings(&files), &files, "/etc/nginx");
    let mut shifted = common::files();
    let mut text = b"# a new comment\n\n".to_vec();
    text.extend_from_slice(&shifted.0[1].text);
    shifted.0[1] = upkeep_syntax::SourceFile::new(
        upkeep_syntax::FileId(1),
        "/etc/nginx/conf.d/app.conf",
        text,
    );
    let after = render(&common::findings(&shifted), &shifted, "/etc/nginx");
    let fp = |log: &Value, i: usize| {
        log["runs"][0]["results"][i]["partialFingerprints"]["upkeep/v1"].clone()
    };
    assert_eq!(fp(&before, 1), fp(&after, 1));
    assert_ne!(fp(&before, 1), fp(&before, 2));
}

#[test]
fn snapshot() {
    let files = common::files();
    let log = render(&common::findings(&files), &files, "/etc/nginx");
    insta::assert_snapshot!(serde_json::to_string_pretty(&log).unwrap());
}
