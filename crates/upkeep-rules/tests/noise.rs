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

/// `text` loaded the way `upkeep check FILE` loads it: a snippet is read in
/// the context its directives call for.
fn run_loaded(text: &str, version: (u32, u32, u32)) -> CheckReport {
    let mut loader = upkeep_config::MemoryLoader::new();
    loader.insert("/conf/app.conf".to_string(), text.as_bytes().to_vec());
    let set = upkeep_config::ConfigSet::load(
        "/conf/app.conf",
        &loader,
        &upkeep_config::LoadOptions::default(),
    )
    .unwrap();
    let opts = CheckOptions {
        nginx_version: Some(NginxVersion::new(version.0, version.1, version.2)),
        version_source: VersionSource::Given,
        ..CheckOptions::default()
    };
    check(&set, &opts)
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

#[test]
fn u001_is_info_when_every_route_is_websocket_only_or_a_metrics_scrape() {
    let conf = r#"events {}
http {
    upstream cable { server 127.0.0.1:9000; }
    upstream exporter { server 127.0.0.1:9100; }
    upstream app { server 127.0.0.1:8000; }
    server {
        listen 127.0.0.1:8080;
        location /cable {
            proxy_pass http://cable;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "Upgrade";
        }
        location = /metrics { proxy_pass http://exporter; }
        location /ws {
            proxy_pass http://app;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
        }
        location / { proxy_pass http://app; }
    }
}
"#;
    let report = run(conf, (1, 28, 0));
    let u001 = only(&report, "U001");
    let sev = |name: &str| {
        u001.iter()
            .find(|f| f.message.contains(&format!("`{name}`")))
            .unwrap_or_else(|| panic!("no U001 for {name}"))
            .severity
    };
    assert_eq!(sev("cable"), Severity::Info);
    assert_eq!(sev("exporter"), Severity::Info);
    // One ordinary route is enough for the warning.
    assert_eq!(sev("app"), Severity::Warning);
    let cable = u001.iter().find(|f| f.message.contains("`cable`")).unwrap();
    assert!(cable.notes.iter().any(|n| n.contains("WebSocket-only")));
}

#[test]
fn u001_says_what_a_unix_socket_costs() {
    let conf = r#"events {}
http {
    upstream puma { server unix:/run/app/puma.sock; }
    upstream tcp { server 127.0.0.1:8000; }
    server {
        listen 127.0.0.1:8080;
        location / { proxy_pass http://puma; }
        location /api/ { proxy_pass http://tcp; }
    }
}
"#;
    let report = run(conf, (1, 28, 0));
    let u001 = only(&report, "U001");
    let unix = u001.iter().find(|f| f.message.contains("`puma`")).unwrap();
    assert!(
        !unix.message.contains("TIME_WAIT piles up"),
        "{}",
        unix.message
    );
    assert!(unix
        .message
        .contains("a connect by nginx and an accept by the backend per request"));
    assert!(unix.message.contains("no TIME_WAIT"));
    let tcp = u001.iter().find(|f| f.message.contains("`tcp`")).unwrap();
    assert!(tcp.message.contains("TIME_WAIT piles up on the nginx host"));
}

#[test]
fn u010_covers_literal_grpc_pass_and_fastcgi_pass() {
    let conf = r#"events {}
http {
    server {
        listen 127.0.0.1:8080;
        location /grpc.Service/ { grpc_pass grpc://127.0.0.1:50051; }
        location ~ \.php$ { fastcgi_pass 127.0.0.1:9000; }
        location /sock.php { fastcgi_pass unix:/run/php/php-fpm.sock; }
        location /uwsgi { uwsgi_pass 127.0.0.1:3031; }
    }
}
"#;
    let report = run(conf, (1, 28, 0));
    let u010 = only(&report, "U010");
    let msgs: Vec<&str> = u010.iter().map(|f| f.message.as_str()).collect();
    assert_eq!(u010.len(), 3, "{msgs:#?}");
    assert!(msgs[0].starts_with("`grpc_pass 127.0.0.1:50051` is not an upstream block"));
    assert!(msgs[0].contains("every gRPC call opens a new HTTP/2 connection"));
    assert!(msgs[1].starts_with("`fastcgi_pass 127.0.0.1:9000` is not an upstream block"));
    assert!(msgs[2].starts_with("`fastcgi_pass unix:/run/php/php-fpm.sock`"));
    for f in &u010[1..] {
        assert!(f.help.as_deref().unwrap().contains("fastcgi_keep_conn on"));
        assert!(
            f.fix.is_none(),
            "no automatic FastCGI pool: capacity unknown"
        );
    }
    // An upstream block by name is fine.
    let ok = r#"events {}
http {
    upstream php { server 127.0.0.1:9000; keepalive 2; }
    server {
        listen 127.0.0.1:8080;
        location ~ \.php$ { fastcgi_pass php; fastcgi_keep_conn on; }
    }
}
"#;
    assert!(only(&run(ok, (1, 28, 0)), "U010").is_empty());
}

#[test]
fn snippet_assumptions_are_in_the_output() {
    let snippet = r#"server {
    listen 80;
    location / { proxy_pass http://taiga-back/; }
}
"#;
    let report = run_loaded(snippet, (1, 28, 0));
    assert!(only(&report, "U010").is_empty());
    let a = &report.assumptions;
    assert!(
        a.iter().any(|s| s.contains("`proxy_pass http://taiga-back/` is taken to name an upstream block defined in another file")
            && s.contains("nginx resolves `taiga-back` as a host name and keeps no idle connections")),
        "{a:#?}"
    );
    assert!(
        a.iter()
            .any(|s| s.contains("R001, R002, R003 and U009 were not checked")),
        "{a:#?}"
    );
    assert!(
        a.iter().any(|s| s.contains("taken to be nginx's defaults")),
        "{a:#?}"
    );
    // A whole nginx.conf assumes none of this.
    let full = format!("events {{}}\nhttp {{\n{snippet}}}\n");
    let report = run_loaded(&full, (1, 28, 0));
    assert!(
        report.assumptions.iter().all(|s| !s.contains("snippet")),
        "{:#?}",
        report.assumptions
    );
    assert_eq!(only(&report, "U010").len(), 1);
}

#[test]
fn u004_covers_grpc_set_header_and_fastcgi_param() {
    let conf = r#"events {}
http {
    upstream php { server 127.0.0.1:9000; keepalive 2; }
    upstream rpc { server 127.0.0.1:50051; keepalive 8; }
    server {
        listen 127.0.0.1:8080;
        fastcgi_param QUERY_STRING $query_string;
        fastcgi_param REQUEST_METHOD $request_method;
        grpc_set_header X-Tenant $host;
        location ~ \.php$ {
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_param request_method lowercase-is-another-name;
            fastcgi_keep_conn on;
            fastcgi_pass php;
        }
        location /rpc.Service/ {
            grpc_set_header X-Request-Id $request_id;
            grpc_pass grpc://rpc;
        }
    }
}
"#;
    let report = run(conf, (1, 28, 0));
    let u004 = only(&report, "U004");
    assert_eq!(u004.len(), 2, "{u004:#?}");
    let fcgi = u004
        .iter()
        .find(|f| f.message.contains("`fastcgi_param`"))
        .unwrap();
    // Parameter names are case-sensitive: REQUEST_METHOD is lost although
    // request_method is set.
    assert!(
        fcgi.message
            .ends_with("parameter(s) set in server (listen 127.0.0.1:8080) are not inherited: QUERY_STRING, REQUEST_METHOD"),
        "{}",
        fcgi.message
    );
    let fix = fcgi.fix.as_ref().unwrap();
    assert!(fix.edits[0]
        .content
        .contains("fastcgi_param QUERY_STRING $query_string;"));
    let grpc = u004
        .iter()
        .find(|f| f.message.contains("`grpc_set_header`"))
        .unwrap();
    assert!(
        grpc.message.ends_with(
            "header(s) set in server (listen 127.0.0.1:8080) are not inherited: X-Tenant"
        ),
        "{}",
        grpc.message
    );
}

#[test]
fn r001_without_worker_rlimit_nofile_assumes_the_inherited_limit() {
    let conf = "worker_processes 1;\nevents { worker_connections 4096; }\nhttp { server { listen 127.0.0.1:8080; return 204; } }\n";
    let report = run(conf, (1, 28, 0));
    let r001 = only(&report, "R001");
    assert_eq!(r001.len(), 1);
    assert!(r001[0].message.contains(
        "exceeds the open-file limit nginx inherits without `worker_rlimit_nofile` (assumed 1024)"
    ));
    assert!(r001[0]
        .notes
        .iter()
        .any(|n| n.contains("4096 worker_connections exceed open file resource limit: 1024")));
    assert_eq!(
        r001[0].fix.as_ref().unwrap().edits[0].content.trim(),
        "worker_rlimit_nofile 8192;"
    );
    assert!(report
        .assumptions
        .iter()
        .any(|a| a.starts_with(upkeep_rules::R001_ASSUMPTION_PREFIX) && a.contains("1024")));

    // Within the inherited limit: nothing, and nothing assumed.
    let small = "events { worker_connections 1024; }\nhttp {}\n";
    let report = run(small, (1, 28, 0));
    assert!(only(&report, "R001").is_empty());
    assert!(report.assumptions.iter().all(|a| !a.starts_with("R001")));
    // Set explicitly: compared with the line, as before.
    let set = "worker_rlimit_nofile 2048;\nevents { worker_connections 4096; }\nhttp {}\n";
    let r = run(set, (1, 28, 0));
    assert!(only(&r, "R001")[0]
        .message
        .contains("exceeds `worker_rlimit_nofile 2048`"));
}

/// U007's margin on Node.js: the version-unknown profile uses the advertised
/// 5 s (what releases without the keep-alive buffer close at), a release
/// known to carry the buffer its real 6 s; both suggestions stay below the
/// moment that release closes an idle connection.
#[test]
fn u007_margin_follows_the_node_release() {
    let conf = r#"events {}
http {
    upstream web { server 127.0.0.1:3000; keepalive 16; }
    server {
        listen 127.0.0.1:8080;
        location / {
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://web;
        }
    }
}
"#;
    for (profile, suggested, closes_at_ms) in [
        ("node", "4500ms", 5000),
        ("node@20.20.2", "5400ms", 6000),
        ("node@18.20.4", "4500ms", 5000),
    ] {
        let src = SingleFile::parse("nginx.conf", conf).unwrap();
        let facts = upkeep_facts::backend_profile(profile).unwrap().facts();
        let mut opts = CheckOptions {
            nginx_version: Some(NginxVersion::new(1, 28, 0)),
            version_source: VersionSource::Given,
            ..CheckOptions::default()
        };
        opts.backends.insert("web".into(), facts);
        let report = check(&src, &opts);
        let u007 = only(&report, "U007");
        assert_eq!(u007.len(), 1, "{profile}");
        let fix = u007[0].fix.as_ref().unwrap();
        assert!(
            fix.edits[0]
                .content
                .contains(&format!("keepalive_timeout {suggested};")),
            "{profile}: {:?}",
            fix.edits
        );
        let ms: u64 = suggested.trim_end_matches("ms").parse().unwrap();
        assert!(ms < closes_at_ms);
    }
}
