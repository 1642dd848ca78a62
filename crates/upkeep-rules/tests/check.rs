//! The check driver: suppressions, selection, severity overrides, stated
//! assumptions, backend facts from every source.

use upkeep_diag::Severity;
use upkeep_model::SingleFile;
use upkeep_rules::{check, settings, CheckOptions, NginxVersion, VersionSource};

const CONF: &str = r#"events {}
http {
    upstream app {
        server 127.0.0.1:8000;
        keepalive 16;
    }
    server {
        listen 127.0.0.1:8080;
        location / {
            proxy_pass http://app;
        }
    }
}
"#;

fn rules_of(report: &upkeep_rules::CheckReport) -> Vec<&'static str> {
    report.findings.iter().map(|f| f.rule).collect()
}

#[test]
fn assumed_version_is_stated_in_report_and_findings() {
    let src = SingleFile::parse("nginx.conf", CONF).unwrap();
    let report = check(&src, &CheckOptions::default());
    assert_eq!(report.nginx_version, NginxVersion::new(1, 28, 0));
    assert_eq!(report.version_source, VersionSource::Assumed);
    assert!(report.assumptions[0].starts_with("assuming nginx 1.28.0"));
    let u002 = report.findings.iter().find(|f| f.rule == "U002").unwrap();
    assert!(u002
        .notes
        .iter()
        .any(|n| n.starts_with("assuming nginx 1.28.0")));
    assert!(rules_of(&report).contains(&"U003"));

    // The same config on 1.30 has neither problem.
    let opts = CheckOptions {
        nginx_version: Some(NginxVersion::new(1, 30, 0)),
        version_source: VersionSource::Given,
        ..Default::default()
    };
    let report = check(&src, &opts);
    assert!(report.assumptions.is_empty());
    assert!(!rules_of(&report).contains(&"U002"));
    assert!(!rules_of(&report).contains(&"U003"));
}

#[test]
fn select_ignore_and_severity_overrides() {
    let src = SingleFile::parse("nginx.conf", CONF).unwrap();
    let mut opts = CheckOptions {
        select: Some(vec!["U00".into()]),
        ignore: vec!["U003".into()],
        ..Default::default()
    };
    opts.severity_overrides
        .insert("U002".into(), Severity::Warning);
    let report = check(&src, &opts);
    let rules = rules_of(&report);
    assert!(rules.iter().all(|r| r.starts_with("U00")), "{rules:?}");
    assert!(!rules.contains(&"U003"));
    let u002 = report.findings.iter().find(|f| f.rule == "U002").unwrap();
    assert_eq!(u002.severity, Severity::Warning);
}

#[test]
fn ignore_comments_suppress_and_unused_ones_are_reported() {
    let text = CONF
        .replace(
            "        location / {",
            "        # upkeep: ignore U002 U003 legacy backend speaks HTTP/1.0 only\n        location / {",
        )
        .replace(
            "    upstream app {",
            "    # upkeep: ignore U016 nothing to see\n    upstream app {",
        );
    let src = SingleFile::parse("nginx.conf", &text).unwrap();
    let report = check(&src, &CheckOptions::default());
    let rules = rules_of(&report);
    assert!(!rules.contains(&"U002"), "{rules:?}");
    assert!(!rules.contains(&"U003"), "{rules:?}");
    let unused: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.rule == "X001")
        .collect();
    assert_eq!(unused.len(), 1);
    let line = src.file.line_col(unused[0].primary.unwrap().start).line;
    assert_eq!(line, 3);
    assert!(unused[0].fix.is_some());
}

#[test]
fn backend_facts_from_inline_toml_and_probe() {
    let with_comment = CONF.replace(
        "        server 127.0.0.1:8000;",
        "        # upkeep: backend idle=5s max-requests=100\n        server 127.0.0.1:8000;",
    );
    let src = SingleFile::parse("nginx.conf", &with_comment).unwrap();
    let report = check(&src, &CheckOptions::default());
    let u007 = report.findings.iter().find(|f| f.rule == "U007").unwrap();
    assert_eq!(u007.severity, Severity::Error);
    assert!(
        u007.message
            .contains("after 5s (declared inline at nginx.conf:4"),
        "{}",
        u007.message
    );
    assert!(report.findings.iter().any(|f| f.rule == "U008"));

    // upkeep.toml overrides the inline idle timeout: 90s is longer than 60s.
    let mut opts = CheckOptions::default();
    settings::apply_toml(&mut opts, "[backends.app]\nidle = \"90s\"\n").unwrap();
    let report = check(&src, &opts);
    assert!(!report.findings.iter().any(|f| f.rule == "U007"));

    // Probe results are keyed by server address.
    let src = SingleFile::parse("nginx.conf", CONF).unwrap();
    let mut opts = CheckOptions::default();
    settings::apply_probe_json(
        &mut opts,
        r#"{"schema":1,"targets":[{"target":"127.0.0.1:8000","keepalive":true,
            "closes_after_response":false,"idle_timeout_ms":2003,"max_requests":null,"error":null}]}"#,
    )
    .unwrap();
    let report = check(&src, &opts);
    let u007 = report.findings.iter().find(|f| f.rule == "U007").unwrap();
    assert!(
        u007.message.contains("probed at 127.0.0.1:8000"),
        "{}",
        u007.message
    );
    let fix = u007.fix.as_ref().unwrap();
    // 2003 ms minus 10 %, rounded down to 100 ms steps (the same suggestion
    // `upkeep probe` prints).
    assert_eq!(fix.edits[0].content.trim(), "keepalive_timeout 1800ms;");
}

#[test]
fn bad_upkeep_comments_are_reported() {
    let text = CONF.replace(
        "        server 127.0.0.1:8000;",
        "        # upkeep: backend idle=soon\n        server 127.0.0.1:8000;",
    );
    let src = SingleFile::parse("nginx.conf", &text).unwrap();
    let report = check(&src, &CheckOptions::default());
    let x002 = report.findings.iter().find(|f| f.rule == "X002").unwrap();
    assert!(
        x002.message.contains("invalid duration"),
        "{}",
        x002.message
    );
}

#[test]
fn findings_are_sorted_and_shared_fixes_are_offered_once() {
    let text = CONF.replace(
        "        location / {",
        "        location /a/ { proxy_pass http://app; }\n        location / {",
    );
    let src = SingleFile::parse("nginx.conf", &text).unwrap();
    let report = check(&src, &CheckOptions::default());
    let starts: Vec<u32> = report
        .findings
        .iter()
        .map(|f| f.primary.unwrap().start)
        .collect();
    let mut sorted = starts.clone();
    sorted.sort();
    assert_eq!(starts, sorted);
    let u002: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.rule == "U002")
        .collect();
    assert_eq!(u002.len(), 2);
    assert_eq!(u002.iter().filter(|f| f.fix.is_some()).count(), 1);
    assert!(u002
        .iter()
        .any(|f| f.notes.iter().any(|n| n.contains("covers this too"))));
}

/// On a large config the rules run on several threads. The report must be
/// the one the rules give one at a time (a single selected rule runs on the
/// calling thread): same findings, same order, the shared fix on the same
/// finding.
#[test]
fn rules_on_several_threads_report_what_they_report_one_by_one() {
    let mut text = String::from(
        "events {}\nhttp {\n    proxy_http_version 1.1;\n    proxy_set_header Connection \"\";\n",
    );
    for i in 0..400 {
        text.push_str(&format!(
            "    upstream app{i} {{ {} server 10.0.0.{}:80; }}\n",
            if i % 2 == 0 {
                "keepalive 8; least_conn;"
            } else {
                ""
            },
            i % 250
        ));
        text.push_str(&format!(
            "    server {{ listen 80; server_name s{i};\n        location / {{ proxy_set_header X-A a; proxy_pass http://app{i}; }}\n        location /b/ {{ if ($arg_x) {{ proxy_pass http://app{i}; }} proxy_pass http://127.0.0.1:{}; }}\n        location /c/ {{ proxy_set_header Connection close; proxy_pass http://app{i}; }}\n    }}\n",
            9000 + i
        ));
    }
    text.push_str("}\n");
    let src = SingleFile::parse("nginx.conf", &text).unwrap();
    let opts = CheckOptions {
        nginx_version: Some(NginxVersion::new(1, 28, 0)),
        version_source: VersionSource::Given,
        ..Default::default()
    };
    let together = check(&src, &opts);
    assert!(
        together.findings.len() > 1000,
        "the config is meant to produce many findings: {}",
        together.findings.len()
    );
    let mut one_by_one = Vec::new();
    for rule in upkeep_rules::rules() {
        let alone = CheckOptions {
            select: Some(vec![rule.id.to_string()]),
            ..opts.clone()
        };
        one_by_one.extend(check(&src, &alone).findings);
    }
    // Each rule alone sees no fix of another rule, so compare what does not
    // depend on that: rule, place and message, in report order.
    let key = |f: &upkeep_diag::Finding| (f.primary, f.rule, f.message.clone());
    one_by_one.sort_by_key(|f| {
        let p = f.primary.unwrap_or_default();
        (p.file, p.start, p.end, f.rule)
    });
    let a: Vec<_> = together.findings.iter().map(key).collect();
    let b: Vec<_> = one_by_one.iter().map(key).collect();
    assert_eq!(a, b);
}

/// A snippet included by two servers yields each of its findings once:
/// the same rule, place and message from both inclusions is one finding.
#[test]
fn a_snippet_included_twice_gives_each_finding_once() {
    let mut loader = upkeep_config::MemoryLoader::new();
    loader.insert(
        "/conf/nginx.conf".to_string(),
        b"events {}\nhttp {\n    upstream app {\n        server 127.0.0.1:8000;\n        keepalive 16;\n    }\n    server {\n        listen 127.0.0.1:8080;\n        include /conf/snippet.conf;\n    }\n    server {\n        listen 127.0.0.1:8081;\n        include /conf/snippet.conf;\n    }\n}\n".to_vec(),
    );
    loader.insert(
        "/conf/snippet.conf".to_string(),
        b"location / {\n    proxy_pass http://app;\n}\n".to_vec(),
    );
    let set = upkeep_config::ConfigSet::load(
        "/conf/nginx.conf",
        &loader,
        &upkeep_config::LoadOptions::default(),
    )
    .unwrap();
    let opts = CheckOptions {
        nginx_version: Some(NginxVersion::new(1, 28, 0)),
        version_source: VersionSource::Given,
        ..CheckOptions::default()
    };
    let report = check(&set, &opts);
    for rule in ["U002", "U003"] {
        let found: Vec<_> = report.findings.iter().filter(|f| f.rule == rule).collect();
        assert_eq!(found.len(), 1, "{rule}: {found:#?}");
    }
}
