//! `upkeep check`, `explain` and `rules` through the binary: exit codes,
//! input errors with their place, formats, SARIF against the official schema.

mod common;

use common::{text, upkeep};
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

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

const HEALTHY: &str = "\
worker_shutdown_timeout 30s;
events {}
http {
    upstream app {
        server 127.0.0.1:8000;
        keepalive 32;
        # upkeep: backend idle=75s
    }
    server {
        listen 127.0.0.1:8080;
        location / {
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_pass http://app;
        }
    }
}
";

fn write_conf(dir: &Path, text: &str) -> String {
    let p = dir.join("nginx.conf");
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn exit_codes_follow_the_fail_on_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write_conf(dir.path(), BROKEN_POOL);
    let out = upkeep(&["check", "--nginx-version", "1.28.0", &conf]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("warning[U001]"), "{stdout}");
    assert!(
        stdout.contains("--> nginx.conf:3:5"),
        "paths relative to the config's directory: {stdout}"
    );
    assert!(
        stdout.contains("(nginx 1.28.0, given)"),
        "the version is always stated: {stdout}"
    );

    let out = upkeep(&[
        "check",
        "--nginx-version",
        "1.28.0",
        "--fail-on",
        "never",
        &conf,
    ]);
    assert_eq!(out.status.code(), Some(0));

    let healthy = write_conf(dir.path(), HEALTHY);
    let out = upkeep(&[
        "check",
        "--nginx-version",
        "1.28.0",
        "--fail-on",
        "warning",
        &healthy,
    ]);
    let stdout = text(&out.stdout);
    assert!(
        !stdout.contains("warning[") && !stdout.contains("error["),
        "{stdout}"
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}");
}

#[test]
fn a_syntax_error_is_exit_2_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write_conf(
        dir.path(),
        "events {}\nhttp {\n    keepalive_timeout 5s\n}\n",
    );
    let out = upkeep(&["check", &conf]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("nginx.conf:4:1: unexpected \"}\""), "{err}");
    assert!(err.contains("4 | }"), "the source line is shown: {err}");
    assert!(out.stdout.is_empty());

    let out = upkeep(&["check", "/nonexistent/nginx.conf"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("/nonexistent/nginx.conf"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn json_output_has_the_documented_shape() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write_conf(dir.path(), BROKEN_POOL);
    let out = upkeep(&[
        "check",
        "--format",
        "json",
        "--nginx-version",
        "1.28.0",
        &conf,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["schema"], 1);
    assert_eq!(v["nginx_version"], "1.28.0");
    assert_eq!(v["version_source"], "given");
    let u001 = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "U001")
        .expect("U001");
    assert_eq!(u001["name"], "upstream-without-keepalive");
    assert_eq!(u001["file"], "nginx.conf");
    assert_eq!(
        (u001["line"].as_u64(), u001["column"].as_u64()),
        (Some(3), Some(5))
    );
    assert_eq!(u001["fix"]["applicability"], "safe");
    assert!(v["summary"]["warnings"].as_u64().unwrap() >= 1);
}

#[test]
fn sarif_output_is_valid_against_the_official_schema() {
    let shop = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/shop/nginx.conf");
    let out = upkeep(&[
        "check",
        "--format",
        "sarif",
        "--nginx-version",
        "1.28.0",
        shop.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let log: Value = serde_json::from_slice(&out.stdout).unwrap();
    let schema_path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../upkeep-diag/tests/sarif/sarif-schema-2.1.0.json");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&log)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    let run = &log["runs"][0];
    // The rule table is the registry.
    let ids: Vec<&str> = run["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let registry: Vec<&str> = upkeep_rules::rules().iter().map(|r| r.id).collect();
    assert_eq!(ids, registry);
    assert!(!run["results"].as_array().unwrap().is_empty());
}

#[test]
fn nginx_t_output_on_stdin() {
    let dump = format!("# configuration file /etc/nginx/nginx.conf:\n{BROKEN_POOL}\n");
    let mut child = Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(["check", "--nginx-version", "1.28.0", "-"])
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(dump.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("--> nginx.conf:3:5"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn explain_and_rules() {
    let out = upkeep(&["explain", "U003"]);
    assert_eq!(out.status.code(), Some(0));
    let doc = text(&out.stdout);
    assert!(doc.starts_with("# U003 connection-close-sent"), "{doc}");
    for section in ["## What it finds", "## Why it breaks reuse", "## Fix"] {
        assert!(doc.contains(section), "missing {section}");
    }
    assert_eq!(
        upkeep(&["explain", "connection-close-sent"]).stdout,
        out.stdout
    );
    let unknown = upkeep(&["explain", "U999"]);
    assert_eq!(unknown.status.code(), Some(2));

    let out = upkeep(&["rules"]);
    let list = text(&out.stdout);
    let every = || {
        upkeep_rules::rules()
            .iter()
            .chain(upkeep_host::rules::INFOS.iter())
    };
    for r in every() {
        assert!(
            list.contains(r.id) && list.contains(r.name),
            "{} missing",
            r.id
        );
    }
    let json: Value =
        serde_json::from_slice(&upkeep(&["rules", "--format", "json"]).stdout).unwrap();
    let listed: Vec<(&str, &str)> = json["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r["command"].as_str().unwrap()))
        .collect();
    assert_eq!(listed.len(), every().count());
    assert!(listed.contains(&("U001", "check")), "{listed:?}");
    assert!(listed.contains(&("H001", "doctor")), "{listed:?}");
}

#[test]
fn fix_refuses_a_file_with_a_syntax_error_and_leaves_it_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let broken = "events {}\nhttp {\n    upstream app { server 127.0.0.1:1; }\n";
    let conf = write_conf(dir.path(), broken);
    let out = upkeep(&["fix", "--write", &conf]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("unexpected end of file"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), broken);
    assert!(!dir.path().join("nginx.conf.upkeep.bak").exists());
}
