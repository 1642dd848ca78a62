//! Fixes that create or enable a pool can never do worse than no pool:
//! an upstream `keepalive_timeout` below the backend's idle timeout (or the
//! shortest common default), FastCGI pools sized to the application's
//! children, and rewrites that keep the Host header and TLS name nginx sent.

use upkeep_diag::{Applicability, Finding, Severity};
use upkeep_model::SingleFile;
use upkeep_rules::{check, CheckOptions, NginxVersion, VersionSource};

fn findings(text: &str, version: &str) -> Vec<Finding> {
    let src = SingleFile::parse("nginx.conf", text).unwrap();
    let opts = CheckOptions {
        nginx_version: Some(NginxVersion::parse(version).unwrap()),
        version_source: VersionSource::Given,
        cpus: Some(2),
        ..CheckOptions::default()
    };
    check(&src, &opts).findings
}

fn of<'a>(all: &'a [Finding], rule: &str) -> Vec<&'a Finding> {
    all.iter().filter(|f| f.rule == rule).collect()
}

/// The text of every edit of the rule's fixes, joined.
fn fix_text(all: &[Finding], rule: &str) -> String {
    of(all, rule)
        .iter()
        .filter_map(|f| f.fix.as_ref())
        .flat_map(|f| f.edits.iter().map(|e| e.content.clone()))
        .collect::<Vec<_>>()
        .join("|")
}

fn upstream_conf(upstream_body: &str, location_body: &str) -> String {
    format!(
        "events {{}}\nhttp {{\n    upstream app {{\n{upstream_body}    }}\n    server {{\n        listen 127.0.0.1:8080;\n        location / {{\n{location_body}            proxy_pass http://app;\n        }}\n    }}\n}}\n"
    )
}

#[test]
fn a_new_pool_gets_the_conservative_timeout_when_the_backend_is_unknown() {
    let all = findings(
        &upstream_conf("        server 127.0.0.1:8000;\n", ""),
        "1.22.1",
    );
    let u001 = of(&all, "U001");
    let fix = u001[0].fix.as_ref().unwrap();
    assert_eq!(fix.applicability, Applicability::Safe);
    let text = fix_text(&all, "U001");
    assert!(text.contains("keepalive 32;"), "{text}");
    assert!(
        text.contains("keepalive_timeout 1800ms;  # backend unknown: below Gunicorn's 2s default"),
        "{text}"
    );
    assert!(
        fix.description.contains("keepalive_timeout 1800ms"),
        "{}",
        fix.description
    );
}

#[test]
fn a_new_pool_stays_below_a_known_backend() {
    let all = findings(
        &upstream_conf(
            "        # upkeep: backend node\n        server 127.0.0.1:8000;\n",
            "",
        ),
        "1.22.1",
    );
    let text = fix_text(&all, "U001");
    assert!(
        text.contains("keepalive_timeout 4500ms;  # below the backend's 5s idle timeout"),
        "{text}"
    );
}

#[test]
fn before_1_15_3_the_pool_fix_says_why_it_is_unsafe() {
    let all = findings(
        &upstream_conf("        server 127.0.0.1:8000;\n", ""),
        "1.14.2",
    );
    let u001 = of(&all, "U001");
    let fix = u001[0].fix.as_ref().unwrap();
    assert_eq!(fix.applicability, Applicability::Unsafe);
    assert!(!fix_text(&all, "U001").contains("keepalive_timeout"));
    assert!(
        fix.description.contains("added in 1.15.3"),
        "{}",
        fix.description
    );
    assert!(u001[0].notes.iter().any(|n| n.contains("1.15.3")));
}

#[test]
fn unknown_backend_behind_a_pool_warns_where_post_can_reach_it() {
    let all = findings(
        &upstream_conf(
            "        server 127.0.0.1:8000;\n        keepalive 16;\n",
            "",
        ),
        "1.22.1",
    );
    let u007 = of(&all, "U007");
    assert_eq!(u007.len(), 1);
    assert_eq!(u007[0].severity, Severity::Warning);
    let fix = u007[0].fix.as_ref().unwrap();
    assert_eq!(fix.applicability, Applicability::Safe);
    assert!(fix_text(&all, "U007").contains("keepalive_timeout 1800ms;"));
    // 1.29.7's default pool counts as a pool.
    let all = findings(
        &upstream_conf("        server 127.0.0.1:8000;\n", ""),
        "1.30.0",
    );
    assert_eq!(of(&all, "U007")[0].severity, Severity::Warning);
}

#[test]
fn unknown_backend_on_get_only_routes_is_an_info() {
    let all = findings(
        &upstream_conf(
            "        server 127.0.0.1:8000;\n        keepalive 16;\n",
            "            limit_except GET { deny all; }\n",
        ),
        "1.22.1",
    );
    let u007 = of(&all, "U007");
    assert_eq!(u007[0].severity, Severity::Info);
    assert!(u007[0].fix.is_none());
    // Streaming bodies are not retried even for PUT: back to a warning.
    let all = findings(
        &upstream_conf(
            "        server 127.0.0.1:8000;\n        keepalive 16;\n",
            "            limit_except GET { deny all; }\n            proxy_request_buffering off;\n",
        ),
        "1.22.1",
    );
    assert_eq!(of(&all, "U007")[0].severity, Severity::Warning);
}

#[test]
fn a_timeout_below_every_common_default_needs_no_word() {
    let all = findings(
        &upstream_conf(
            "        server 127.0.0.1:8000;\n        keepalive 16;\n        keepalive_timeout 1s;\n",
            "",
        ),
        "1.22.1",
    );
    assert!(of(&all, "U007").is_empty());
}

fn fastcgi_conf(workers: &str, declaration: &str) -> String {
    format!(
        "{workers}events {{}}\nhttp {{\n    upstream php {{\n{declaration}        server unix:/run/php/fpm.sock;\n    }}\n    server {{\n        listen 127.0.0.1:8080;\n        location ~ \\.php$ {{\n            fastcgi_pass php;\n        }}\n    }}\n}}\n"
    )
}

#[test]
fn fastcgi_pools_leave_a_child_free() {
    // 3 children, 2 workers: one idle connection per worker pins at most 2.
    let all = findings(
        &fastcgi_conf(
            "worker_processes 2;\n",
            "        # upkeep: backend php-fpm max-children=3\n",
        ),
        "1.22.1",
    );
    let fix = of(&all, "U001")[0].fix.clone().unwrap();
    assert_eq!(fix.applicability, Applicability::Safe);
    assert!(
        fix_text(&all, "U001").contains("keepalive 1;"),
        "{}",
        fix_text(&all, "U001")
    );
    // 2 children, 2 workers: no pool can leave one free.
    let all = findings(
        &fastcgi_conf(
            "worker_processes 2;\n",
            "        # upkeep: backend php-fpm max-children=2\n",
        ),
        "1.22.1",
    );
    assert!(of(&all, "U001")[0].fix.is_none());
    // Nothing declared: sized on PHP-FPM's shipped 5 children, unsafe.
    let all = findings(&fastcgi_conf("worker_processes 2;\n", ""), "1.22.1");
    let fix = of(&all, "U001")[0].fix.clone().unwrap();
    assert_eq!(fix.applicability, Applicability::Unsafe);
    assert!(fix_text(&all, "U001").contains("keepalive 2;"));
    assert!(
        fix.description.contains("max-children"),
        "{}",
        fix.description
    );
}

#[test]
fn keep_conn_on_the_default_pool_is_an_info_and_sizes_the_pool() {
    let all = findings(
        &fastcgi_conf(
            "worker_processes 2;\n",
            "        # upkeep: backend php-fpm max-children=5\n",
        ),
        "1.30.0",
    );
    let u011 = of(&all, "U011");
    assert_eq!(u011[0].severity, Severity::Info);
    let fix = u011[0].fix.as_ref().unwrap();
    assert_eq!(fix.applicability, Applicability::Safe);
    let text = fix_text(&all, "U011");
    assert!(
        text.contains("fastcgi_keep_conn on;") && text.contains("keepalive 2;"),
        "{text}"
    );
    // Unknown capacity: unsafe.
    let all = findings(&fastcgi_conf("worker_processes 2;\n", ""), "1.30.0");
    assert_eq!(
        of(&all, "U011")[0].fix.as_ref().unwrap().applicability,
        Applicability::Unsafe
    );
}

fn literal_conf(http: &str, location: &str, target: &str) -> String {
    format!(
        "events {{}}\nhttp {{\n{http}    server {{\n        listen 127.0.0.1:8080;\n        location / {{\n{location}            proxy_pass {target};\n        }}\n    }}\n}}\n"
    )
}

#[test]
fn rewrite_keeps_the_host_header_and_the_inherited_list() {
    let all = findings(
        &literal_conf(
            "    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n",
            "",
            "http://127.0.0.1:80",
        ),
        "1.22.1",
    );
    let text = fix_text(&all, "U010");
    // The inherited list is repeated, or adding Host would drop it.
    assert!(
        text.contains("proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;")
            && text.contains("proxy_set_header Host 127.0.0.1;"),
        "{text}"
    );
    assert_eq!(
        of(&all, "U010")[0].fix.as_ref().unwrap().applicability,
        Applicability::Safe
    );
    // A level with its own list only gets the Host line.
    let all = findings(
        &literal_conf(
            "    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n",
            "            proxy_set_header X-Real-IP $remote_addr;\n",
            "http://127.0.0.1:9000",
        ),
        "1.22.1",
    );
    let text = fix_text(&all, "U010");
    assert!(
        text.contains("proxy_set_header Host 127.0.0.1:9000;"),
        "{text}"
    );
    assert!(!text.contains("X-Forwarded-For"), "{text}");
}

#[test]
fn https_rewrite_keeps_the_tls_name() {
    let all = findings(
        &literal_conf("", "", "https://avatars.discourse.org/"),
        "1.22.1",
    );
    let text = fix_text(&all, "U010");
    assert!(
        text.contains("proxy_set_header Host avatars.discourse.org;"),
        "{text}"
    );
    assert!(
        text.contains("proxy_ssl_name avatars.discourse.org;"),
        "{text}"
    );
    assert!(text.contains("proxy_ssl_server_name on;"), "{text}");
}

#[test]
fn sni_that_is_the_upstream_name_is_flagged() {
    let conf = "events {}\nhttp {\n    upstream avatars_discourse_org {\n        server avatars.discourse.org:443;\n        keepalive 8;\n    }\n    server {\n        listen 127.0.0.1:8080;\n        location / {\n            proxy_ssl_server_name on;\n            proxy_pass https://avatars_discourse_org/;\n        }\n    }\n}\n";
    let all = findings(conf, "1.22.1");
    let u013 = of(&all, "U013");
    assert_eq!(u013.len(), 1, "{all:#?}");
    assert!(u013[0].message.contains("avatars_discourse_org"));
    let fixed = fix_text(&all, "U013");
    assert!(
        fixed.contains("proxy_ssl_name avatars.discourse.org;"),
        "{fixed}"
    );
    // The Host header was the block's name too.
    assert!(
        fixed.contains("proxy_set_header Host avatars.discourse.org;"),
        "{fixed}"
    );
    // A Host header of its own is kept; one inherited from the server is
    // kept by repeating the server's lines in the location.
    let own = conf.replace(
        "proxy_ssl_server_name on;",
        "proxy_ssl_server_name on;\n            proxy_set_header Host $host;",
    );
    let fixed = fix_text(&findings(&own, "1.22.1"), "U013");
    assert!(!fixed.contains("proxy_set_header Host avatars"), "{fixed}");
    let inherited = conf.replace(
        "listen 127.0.0.1:8080;",
        "listen 127.0.0.1:8080;\n        proxy_set_header X-Real-IP $remote_addr;",
    );
    let fixed = fix_text(&findings(&inherited, "1.22.1"), "U013");
    assert!(
        fixed.contains("proxy_set_header X-Real-IP $remote_addr;\n            proxy_set_header Host avatars.discourse.org;"),
        "{fixed}"
    );
    // Every server an IP literal: internal TLS, nothing to say.
    let conf = conf.replace("avatars.discourse.org:443", "10.0.0.5:443");
    assert!(of(&findings(&conf, "1.22.1"), "U013").is_empty());
}

/// Findings with `facts` given for server address `address`, the way
/// `check` on the host passes what backend discovery found.
fn findings_with_facts(
    text: &str,
    address: &str,
    facts: upkeep_rules::BackendFacts,
) -> Vec<Finding> {
    let src = SingleFile::parse("nginx.conf", text).unwrap();
    let mut opts = CheckOptions {
        nginx_version: Some(NginxVersion::parse("1.22.1").unwrap()),
        version_source: VersionSource::Given,
        cpus: Some(2),
        ..CheckOptions::default()
    };
    opts.backends.insert(address.to_string(), facts);
    check(&src, &opts).findings
}

const FPM_POOL: &str = "events {}\nhttp {\n    upstream php {\n        server unix:/run/php/fpm.sock;\n        keepalive 2;\n    }\n    server {\n        listen 127.0.0.1:8080;\n        location ~ \\.php$ {\n            fastcgi_keep_conn on;\n            fastcgi_pass php;\n        }\n    }\n}\n";

#[test]
fn a_backend_found_without_an_idle_timeout_is_unknown_to_u007() {
    // What discovery reports for a php-fpm found listening: the children
    // from its pool file, no idle timeout.
    let source = "php-fpm pid 7: php-fpm: no idle timeout of its own on kept FastCGI connections (none found); pool [www] pm.max_children = 5 in /etc/php/8.2/fpm/pool.d/www.conf:113";
    let found = || upkeep_rules::BackendFacts {
        idle_timeout_ms: None,
        max_requests: None,
        announces_close: None,
        max_connections: Some(5),
        source: source.to_string(),
    };
    let all = findings_with_facts(FPM_POOL, "unix:/run/php/fpm.sock", found());
    let u007 = of(&all, "U007");
    assert_eq!(u007.len(), 1, "{all:#?}");
    let f = u007[0];
    // A FastCGI route without limit_except takes POST: a warning.
    assert_eq!(f.severity, Severity::Warning);
    assert!(f.message.contains("backend is unknown"), "{}", f.message);
    assert!(
        f.notes
            .iter()
            .any(|n| n.contains("without an idle timeout") && n.contains(source)),
        "{:?}",
        f.notes
    );
    let text = fix_text(&all, "U007");
    assert!(text.contains("keepalive_timeout 1800ms;"), "{text}");

    // The same upstream with only GET reaching it: an info.
    let get_only = FPM_POOL.replace(
        "fastcgi_keep_conn on;\n",
        "fastcgi_keep_conn on;\n            limit_except GET { deny all; }\n",
    );
    let all = findings_with_facts(&get_only, "unix:/run/php/fpm.sock", found());
    let u007 = of(&all, "U007");
    assert_eq!(u007.len(), 1, "{all:#?}");
    assert_eq!(u007[0].severity, Severity::Info);
}

#[test]
fn a_profile_that_keeps_idle_connections_stays_quiet_in_u007() {
    // Go's net/http keeps idle connections unless the program sets a
    // timeout: the declared profile says so, and there is no race to warn of.
    let text = upstream_conf(
        "        # upkeep: backend go\n        server 127.0.0.1:8000;\n        keepalive 8;\n",
        "            proxy_http_version 1.1;\n            proxy_set_header Connection \"\";\n",
    );
    let all = findings(&text, "1.22.1");
    assert!(of(&all, "U007").is_empty(), "{:#?}", of(&all, "U007"));
    // Discovery words a profile default at the end of its source.
    let all = findings_with_facts(
        &text.replace("        # upkeep: backend go\n", ""),
        "127.0.0.1:8000",
        upkeep_rules::BackendFacts {
            idle_timeout_ms: None,
            max_requests: None,
            announces_close: None,
            max_connections: None,
            source: "go pid 9: go default no idle timeout, profile go".to_string(),
        },
    );
    assert!(of(&all, "U007").is_empty(), "{:#?}", of(&all, "U007"));
}
