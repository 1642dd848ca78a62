//! Findings that must not cost more than they help: severities lowered where
//! nothing can be gained, fixes that can cut live traffic marked unsafe,
//! messages exact about what happens, assumptions stated.

use upkeep_diag::{Applicability, Finding, Severity};
use upkeep_model::SingleFile;
use upkeep_rules::{check, CheckOptions, CheckReport, NginxVersion, VersionSource};

fn run(conf: &str, version: (u32, u32, u32)) -> CheckReport {
    let src = SingleFile::parse("nginx.conf", conf).unwrap();
    let opts = CheckOptions {
        nginx_version: Some(NginxVersion::new(version.0, version.1, version.2)),
        version_source: VersionSource::Given,
        ..CheckOptions::default()
    };
    check(&src, &opts)
}

fn only<'a>(report: &'a CheckReport, rule: &str) -> Vec<&'a Finding> {
    report.findings.iter().filter(|f| f.rule == rule).collect()
}

#[test]
fn r003_fix_is_unsafe_and_sized_from_the_longest_timeout() {
    let conf = r#"worker_processes 2;
events {}
http {
    client_body_timeout 300s;
    upstream chat { server 127.0.0.1:9000; keepalive 8; }
    server {
        listen 127.0.0.1:8080;
        location /ws {
            proxy_pass http://chat;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout 2h;
        }
    }
}
"#;
    let report = run(conf, (1, 28, 0));
    let r003 = only(&report, "R003");
    assert_eq!(r003.len(), 1);
    let fix = r003[0].fix.as_ref().expect("R003 offers a fix");
    assert_eq!(fix.applicability, Applicability::Unsafe);
    assert_eq!(fix.edits[0].content.trim(), "worker_shutdown_timeout 2h;");
    assert!(
        r003[0].notes.iter().any(|n| n.contains("suggested 2h")
            && n.contains("WebSocket location /ws")
            && n.contains("proxy_read_timeout 2h")),
        "{:?}",
        r003[0].notes
    );

    // Without long timeouts: 30s, still unsafe.
    let plain =
        "worker_processes 1;\nevents {}\nhttp { server { listen 127.0.0.1:8080; return 204; } }\n";
    let report = run(plain, (1, 28, 0));
    let fix = only(&report, "R003")[0].fix.clone().unwrap();
    assert_eq!(fix.applicability, Applicability::Unsafe);
    assert_eq!(fix.edits[0].content.trim(), "worker_shutdown_timeout 30s;");
    assert_eq!(only(&report, "R003")[0].severity, Severity::Info);
}
