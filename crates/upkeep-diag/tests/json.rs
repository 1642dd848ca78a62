mod common;

use serde_json::Value;
use upkeep_diag::render::json;
use upkeep_diag::{Finding, Report, Severity};

fn render(findings: &[Finding], files: &common::Files) -> String {
    let mut report = Report::new(findings, files);
    report.base_dir = Some("/etc/nginx/");
    report.nginx_version = Some("1.28.0");
    report.version_source = Some("assumed");
    let assumptions = ["assuming nginx 1.28.0".to_string()];
    report.assumptions = &assumptions;
    json::render(&report)
}

#[test]
fn snapshot() {
    let files = common::files();
    insta::assert_snapshot!(render(&common::findings(&files), &files));
}

#[test]
fn has_the_fields_spec_md_promises() {
    let files = common::files();
    let v: Value = serde_json::from_str(&render(&common::findings(&files), &files)).unwrap();
    assert_eq!(v["schema"], 1);
    assert_eq!(
        v["summary"],
        serde_json::json!({"errors": 1, "warnings": 1, "infos": 1})
    );
    let findings = v["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 3);
    for f in findings {
        for key in [
            "rule",
            "name",
            "severity",
            "file",
            "line",
            "column",
            "end_line",
            "end_column",
            "message",
            "help",
            "related",
            "fix",
        ] {
            assert!(f.get(key).is_some(), "missing {key} in {f}");
        }
    }
    // The upstream block of conf.d/app.conf: lines 1..3, end column exclusive.
    let u001 = findings.iter().find(|f| f["rule"] == "U001").unwrap();
    assert_eq!(u001["file"], "conf.d/app.conf");
    assert_eq!(
        (u001["line"].as_u64(), u001["column"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(
        (u001["end_line"].as_u64(), u001["end_column"].as_u64()),
        (Some(3), Some(2))
    );
    assert_eq!(u001["severity"], "warning");
    let edit = &u001["fix"]["edits"][0];
    assert_eq!(u001["fix"]["applicability"], "safe");
    assert_eq!(edit["file"], "conf.d/app.conf");
    assert_eq!(
        (edit["start_line"].as_u64(), edit["start_column"].as_u64()),
        (Some(2), Some(27))
    );
    assert_eq!(
        (edit["end_line"].as_u64(), edit["end_column"].as_u64()),
        (Some(2), Some(27))
    );
    assert_eq!(edit["content"], "\n    keepalive 32;");

    let u004 = findings.iter().find(|f| f["rule"] == "U004").unwrap();
    assert_eq!(u004["related"][0]["file"], "nginx.conf");
    assert_eq!(u004["related"][0]["line"], 4);
    assert_eq!(u004["related"][0]["column"], 5);

    let r003 = findings.iter().find(|f| f["rule"] == "R003").unwrap();
    assert!(r003["fix"].is_null());
    assert!(r003["help"].is_null());
}

#[test]
fn finding_without_place_has_null_position() {
    let files = common::files();
    let f = Finding::new("H004", "nofile-limit-low", Severity::Warning, "low");
    let v: Value = serde_json::from_str(&render(&[f], &files)).unwrap();
    let f = &v["findings"][0];
    assert!(f["file"].is_null() && f["line"].is_null() && f["end_column"].is_null());
}
