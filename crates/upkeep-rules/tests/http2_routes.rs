//! gRPC and `proxy_http_version 2` routes through the HTTP/1 rules: they
//! send neither an HTTP/1 version nor a Connection header, so only the pool
//! matters for them.

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

fn rules_of(r: &CheckReport) -> Vec<(&str, String)> {
    r.findings
        .iter()
        .filter(|f| f.rule.starts_with('U'))
        .map(|f| (f.rule, f.message.clone()))
        .collect()
}

const HTTP2_ONLY: &str = "
http {
    upstream app { server 127.0.0.1:8000; }
    server {
        location / {
            proxy_http_version 2;
            proxy_pass http://app;
        }
    }
}
";

#[test]
fn an_http2_route_on_1_29_5_needs_a_pool_and_nothing_else() {
    // 1.29.5: HTTP/2 upstreams exist, keep-alive is not yet the default and
    // HTTP/1 routes would still send `Connection: close`.
    let r = run(HTTP2_ONLY, (1, 29, 5));
    let found = rules_of(&r);
    let ids: Vec<&str> = found.iter().map(|(id, _)| *id).collect();
    assert!(ids.contains(&"U001"), "{found:?}");
    for id in ["U002", "U003", "U004", "U005", "U017"] {
        assert!(!ids.contains(&id), "{id}: {found:?}");
    }
    let u001 = r.findings.iter().find(|f| f.rule == "U001").unwrap();
    assert!(
        !u001
            .notes
            .iter()
            .any(|n| n.contains("proxy_http_version 1.1")),
        "{:?}",
        u001.notes
    );
}

#[test]
fn the_same_route_with_a_pool_is_clean() {
    let conf = HTTP2_ONLY.replace(
        "server 127.0.0.1:8000; }",
        "server 127.0.0.1:8000; keepalive 16; }",
    );
    let r = run(&conf, (1, 29, 5));
    let found = rules_of(&r);
    for id in ["U001", "U002", "U003", "U017", "U018", "U019"] {
        assert!(!found.iter().any(|(i, _)| *i == id), "{id}: {found:?}");
    }
}

#[test]
fn a_grpc_route_needs_a_pool_before_1_29_7_and_has_one_after() {
    let conf = "
http {
    upstream svc { server 127.0.0.1:50051; }
    server {
        listen 8080 http2;
        location / { grpc_pass grpc://svc; }
    }
}
";
    let old = run(conf, (1, 28, 0));
    let found = rules_of(&old);
    assert_eq!(
        found.iter().filter(|(i, _)| *i == "U001").count(),
        1,
        "{found:?}"
    );
    let u001 = old.findings.iter().find(|f| f.rule == "U001").unwrap();
    assert!(
        !u001
            .notes
            .iter()
            .any(|n| n.contains("proxy_http_version 1.1")),
        "{:?}",
        u001.notes
    );
    let new = run(conf, (1, 30, 0));
    assert!(!rules_of(&new).iter().any(|(i, _)| *i == "U001"));
}
