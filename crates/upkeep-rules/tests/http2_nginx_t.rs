//! What U017 says nginx answers to `proxy_http_version 2`, asked of a real
//! nginx older than 1.29.4 (Debian's 1.22), and the gRPC configuration U018
//! judges, accepted by it.

use upkeep_model::SingleFile;
use upkeep_rules::{check, CheckOptions, NginxVersion, VersionSource};

const HTTP2_TO_BACKEND: &str = "\
events {}
http {
    TEMP_PATHS
    upstream app { server 127.0.0.1:8000; }
    server {
        listen 127.0.0.1:8080;
        location / {
            proxy_http_version 2;
            proxy_pass http://app;
        }
    }
}
";

/// `nginx -t` on `text` in a private prefix: (accepted, output). `None`
/// without an nginx binary outside CI.
fn nginx_t(text: &str) -> Option<(bool, String, NginxVersion)> {
    let Some(bin) = upkeep_nginx::NginxBinary::find(None) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "no nginx binary found (CI must install Debian's nginx)"
        );
        eprintln!("warning: no nginx binary; skipped");
        return None;
    };
    let version = NginxVersion::parse(&bin.version().unwrap()).unwrap();
    let prefix = upkeep_nginx::Prefix::new().unwrap();
    let conf = text.replace("TEMP_PATHS", &prefix.http_temp_paths());
    let main = prefix.write("conf/nginx.conf", &conf).unwrap();
    let out = bin
        .test_config(&main, &prefix.path().join("conf"), prefix.path())
        .unwrap();
    Some((out.ok, out.output, version))
}

#[test]
fn proxy_http_version_2_is_rejected_by_real_nginx_before_1_29_4() {
    let Some((ok, output, version)) = nginx_t(HTTP2_TO_BACKEND) else {
        return;
    };
    if version >= NginxVersion::new(1, 29, 4) {
        eprintln!("nginx {version} accepts proxy_http_version 2; nothing to check");
        return;
    }
    assert!(
        !ok,
        "nginx {version} accepted proxy_http_version 2:\n{output}"
    );
    // ngx_conf_set_enum_slot's message, then " in FILE:LINE".
    assert!(
        output.contains("[emerg] invalid value \"2\" in "),
        "{output}"
    );
    let nginx_says = "invalid value \"2\"";

    // U017 quotes the same message, for the same version.
    let src = SingleFile::parse("nginx.conf", &HTTP2_TO_BACKEND.replace("TEMP_PATHS", "")).unwrap();
    let opts = CheckOptions {
        nginx_version: Some(version),
        version_source: VersionSource::Given,
        ..CheckOptions::default()
    };
    let report = check(&src, &opts);
    let u017: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.rule == "U017")
        .collect();
    assert_eq!(u017.len(), 1, "{:?}", report.findings);
    assert!(u017[0].message.contains(nginx_says), "{}", u017[0].message);
}
