//! `--flavor`: Angie and freenginx resolve keep-alive defaults from their own
//! releases (crates/upkeep-facts/data/flavors.tsv), and the summary says
//! which server and version were assumed.

mod common;

use common::{text, upkeep};
use serde_json::Value;
use std::path::Path;

/// An upstream without `keepalive` reached by a plain `proxy_pass`, and a
/// gRPC upstream with an explicit pool.
const NO_KEEPALIVE_LINE: &str = "\
worker_shutdown_timeout 30s;
events {}
http {
    upstream app {
        server 127.0.0.1:8000;
        # upkeep: backend idle=75s
    }
    upstream grpc_backend {
        server 127.0.0.1:9000;
        keepalive 8;
        # upkeep: backend idle=75s
    }
    server {
        listen 127.0.0.1:8080;
        location / {
            proxy_pass http://app;
        }
        location /api.Service/ {
            grpc_pass grpc://grpc_backend;
        }
    }
}
";

fn write_conf(dir: &Path, text: &str) -> String {
    let p = dir.join("nginx.conf");
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

/// (rule, line) of every finding, in output order.
fn findings(args: &[&str]) -> (Vec<(String, u64)>, Value) {
    let out = upkeep(args);
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)));
    let list = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["line"].as_u64().unwrap(),
            )
        })
        .collect();
    (list, v)
}

#[test]
fn nginx_1_30_pools_an_upstream_without_keepalive() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write_conf(dir.path(), NO_KEEPALIVE_LINE);
    let (list, v) = findings(&[
        "check",
        "--format",
        "json",
        "--nginx-version",
        "1.30.0",
        &conf,
    ]);
    assert_eq!(list, vec![], "{v}");
    assert_eq!(v["flavor"], "nginx");
    assert_eq!(v["nginx_version"], "1.30.0");
}

#[test]
fn angie_keeps_upstreams_without_keepalive_unpooled_at_any_version() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write_conf(dir.path(), NO_KEEPALIVE_LINE);
    // Angie 1.12 proxies with HTTP/1.1 and no Connection header by default:
    // only the missing pool is reported.
    let (list, v) = findings(&[
        "check",
        "--format",
        "json",
        "--flavor",
        "angie",
        "--nginx-version",
        "1.12.1",
        &conf,
    ]);
    assert_eq!(list, vec![("U001".to_string(), 4)], "{v}");
    assert_eq!(v["flavor"], "angie");
    assert_eq!(v["nginx_version"], "1.12.1");
    assert_eq!(v["version_source"], "given");
    let f = &v["findings"][0];
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("upstream `app` has no `keepalive`"),
        "{f}"
    );
}

#[test]
fn angie_before_1_12_needs_http11_and_an_empty_connection_header_too() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write_conf(
        dir.path(),
        NO_KEEPALIVE_LINE
            .replace(
                "        server 127.0.0.1:8000;\n",
                "        server 127.0.0.1:8000;\n        keepalive 16;\n",
            )
            .as_str(),
    );
    let (list, v) = findings(&[
        "check",
        "--format",
        "json",
        "--flavor",
        "angie",
        "--nginx-version",
        "1.11.4",
        &conf,
    ]);
    assert_eq!(
        list,
        vec![("U002".to_string(), 17), ("U003".to_string(), 17)],
        "{v}"
    );
    let msg = v["findings"][0]["message"].as_str().unwrap();
    assert!(msg.contains("the default of Angie 1.11.4"), "{msg}");
}

#[test]
fn freenginx_keeps_the_pre_1_29_7_defaults_whatever_its_version_number() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write_conf(
        dir.path(),
        NO_KEEPALIVE_LINE
            .replace(
                "        server 127.0.0.1:8000;\n",
                "        server 127.0.0.1:8000;\n        keepalive 16;\n",
            )
            .as_str(),
    );
    // freenginx 1.29.7 has nginx's old defaults: HTTP/1.0, Connection: close.
    let (list, v) = findings(&[
        "check",
        "--format",
        "json",
        "--flavor",
        "freenginx",
        "--nginx-version",
        "1.29.7",
        &conf,
    ]);
    assert_eq!(
        list,
        vec![("U002".to_string(), 17), ("U003".to_string(), 17)],
        "{v}"
    );
    // nginx 1.29.7 itself: nothing to say.
    let (list, v) = findings(&[
        "check",
        "--format",
        "json",
        "--nginx-version",
        "1.29.7",
        &conf,
    ]);
    assert_eq!(list, vec![], "{v}");
}

#[test]
fn the_summary_line_names_the_flavor_and_where_its_version_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write_conf(dir.path(), NO_KEEPALIVE_LINE);
    let out = upkeep(&["check", "--color", "never", "--flavor", "freenginx", &conf]);
    let stdout = text(&out.stdout);
    // With a different flavor than the binary on this host, its version is
    // not taken: freenginx's default is assumed and said so.
    assert!(
        stdout.contains("(freenginx 1.29.7, assumed)")
            || stdout.contains("(freenginx 1.29.7, detected)"),
        "{stdout}"
    );
    let out = upkeep(&[
        "check",
        "--color",
        "never",
        "--flavor",
        "angie",
        "--nginx-version",
        "1.12.1",
        &conf,
    ]);
    assert!(
        text(&out.stdout).contains("(Angie 1.12.1, given)"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn flavor_from_upkeep_toml_and_bad_names() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write_conf(dir.path(), NO_KEEPALIVE_LINE);
    std::fs::write(
        dir.path().join("upkeep.toml"),
        "flavor = \"angie\"\nnginx_version = \"1.12.1\"\n",
    )
    .unwrap();
    let (list, v) = findings(&["check", "--format", "json", &conf]);
    assert_eq!(list, vec![("U001".to_string(), 4)], "{v}");
    assert_eq!(v["flavor"], "angie");

    let out = upkeep(&["check", "--flavor", "tengine", &conf]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("--flavor: unknown flavor \"tengine\""),
        "{err}"
    );
}

/// `upkeep check --format json CONF` with `dir` first on PATH; the report.
fn check_json_with_path(dir: &Path, conf: &str, extra: &[&str]) -> Value {
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(["check", "--format", "json"])
        .args(extra)
        .arg(conf)
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)))
}

/// A directory holding an `nginx` that answers only `-v`, as a freenginx
/// 1.29.7 build prints it, to put first on PATH.
fn freenginx_on_path() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let bin = tempfile::tempdir().unwrap();
    let script = bin.path().join("nginx");
    std::fs::write(
        &script,
        "#!/bin/sh\n[ \"$1\" = -v ] || exit 1\necho 'nginx version: freenginx/1.29.7' >&2\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

/// `flavor = "nginx"` in upkeep.toml is a choice, as `--flavor nginx` is,
/// not the same as leaving the key out: the version of a freenginx binary
/// found on this host is not taken for it. The `nginx` on PATH stands in
/// for a freenginx build and only answers `-v` (as freenginx prints it);
/// nothing else runs it.
#[test]
fn flavor_nginx_in_upkeep_toml_is_not_replaced_by_the_binary_on_this_host() {
    let bin = freenginx_on_path();
    let dir = tempfile::tempdir().unwrap();
    let conf = write_conf(dir.path(), NO_KEEPALIVE_LINE);

    // Nothing said: the binary's flavor and version are taken.
    let v = check_json_with_path(bin.path(), &conf, &[]);
    assert_eq!(
        (&v["flavor"], &v["nginx_version"], &v["version_source"]),
        (
            &Value::from("freenginx"),
            &Value::from("1.29.7"),
            &Value::from("detected")
        ),
        "{v}"
    );

    // `--flavor nginx`: nginx at its assumed version (a freenginx number
    // says nothing about nginx).
    let flag = check_json_with_path(bin.path(), &conf, &["--flavor", "nginx"]);
    assert_eq!(flag["flavor"], "nginx", "{flag}");
    assert_eq!(flag["version_source"], "assumed", "{flag}");

    // The same from upkeep.toml, which the report names.
    std::fs::write(dir.path().join("upkeep.toml"), "flavor = \"nginx\"\n").unwrap();
    let v = check_json_with_path(bin.path(), &conf, &[]);
    assert_eq!(v["flavor"], "nginx", "{v}");
    assert_eq!(v["nginx_version"], flag["nginx_version"], "{v}");
    assert_eq!(v["version_source"], "assumed", "{v}");
    assert_eq!(v["findings"], flag["findings"]);
    let settings = v["settings_files"].as_array().unwrap();
    assert_eq!(settings.len(), 1, "{v}");
    assert!(
        settings[0].as_str().unwrap().ends_with("/upkeep.toml"),
        "{v}"
    );
}

/// With the flavor forced to nginx and a freenginx binary on PATH, the
/// "assuming nginx …" note says a binary was found but is another flavor,
/// not that none was detected (in the report's assumptions and in each
/// finding's note).
#[test]
fn a_binary_of_another_flavor_is_named_as_the_reason_for_the_assumed_version() {
    let bin = freenginx_on_path();
    let dir = tempfile::tempdir().unwrap();
    let conf = write_conf(dir.path(), NO_KEEPALIVE_LINE);

    let check_forced = |v: &Value, how: &str| {
        assert_eq!(v["version_source"], "assumed", "{how}: {v}");
        let all = v.to_string();
        assert!(
            !all.contains("no nginx binary detected"),
            "{how}: a binary was detected: {v}"
        );
        let assumptions = v["assumptions"].as_array().unwrap();
        assert!(
            assumptions.iter().any(|a| {
                let a = a.as_str().unwrap();
                a.starts_with("assuming nginx ")
                    && a.contains("the nginx binary on this host is freenginx 1.29.7, not nginx")
            }),
            "{how}: {v}"
        );
    };
    let flag = check_json_with_path(bin.path(), &conf, &["--flavor", "nginx"]);
    check_forced(&flag, "--flavor nginx");
    std::fs::write(dir.path().join("upkeep.toml"), "flavor = \"nginx\"\n").unwrap();
    let toml = check_json_with_path(bin.path(), &conf, &[]);
    check_forced(&toml, "flavor = \"nginx\" in upkeep.toml");

    // Without any binary of another flavor the old reason still holds.
    use std::os::unix::fs::PermissionsExt;
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("nginx"), "#!/bin/sh\nexit 1\n").unwrap();
    std::fs::set_permissions(
        empty.path().join("nginx"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let none = check_json_with_path(empty.path(), &conf, &["--flavor", "nginx"]);
    assert!(
        none["assumptions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a.as_str().unwrap().contains("no nginx binary detected")),
        "{none}"
    );
}

/// `probe --config` states the version its verdicts assume the way `check`
/// does: a freenginx binary on PATH under `--flavor nginx` is named as the
/// reason the version is assumed, and without a flavor its version is
/// taken as freenginx's, not as an nginx release of the same number. The
/// upstream's server is a loopback port nothing listens on: the probe only
/// fails to connect.
#[test]
fn probe_names_a_binary_of_another_flavor_as_the_reason_for_the_assumed_version() {
    let bin = freenginx_on_path();
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let conf = write_conf(
        dir.path(),
        &format!(
            "events {{}}\nhttp {{\n    upstream app {{\n        server 127.0.0.1:{port};\n    }}\n    server {{\n        listen 8080;\n        location / {{ proxy_pass http://app; }}\n    }}\n}}\n"
        ),
    );
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let probe = |extra: &[&str]| -> Value {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_upkeep"))
            .args(["probe", "--format", "json", "--quiet", "--max-wait", "2s"])
            .args(extra)
            .args(["--config", &conf])
            .env("PATH", &path)
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)))
    };

    let forced = probe(&["--flavor", "nginx"]);
    let source = forced["nginx_version_source"].as_str().unwrap();
    assert!(source.starts_with("assumed; "), "{forced}");
    assert!(
        source.contains("the nginx binary on this host is freenginx 1.29.7, not nginx"),
        "{forced}"
    );
    assert!(!source.contains("no nginx binary detected"), "{forced}");

    let taken = probe(&[]);
    assert_eq!(
        taken["nginx_version_source"], "from nginx -v: freenginx 1.29.7",
        "{taken}"
    );
    // The nginx release freenginx 1.29.7 behaves as, as `check` resolves it.
    let check = check_json_with_path(bin.path(), &conf, &[]);
    assert_eq!(check["flavor"], "freenginx", "{check}");
    assert_ne!(taken["nginx_version"], "1.29.7", "{taken}");
}

/// `doctor` takes the version of the binary it runs (`--nginx`, or the
/// master's) as `check` takes the one on PATH: under `--flavor nginx`, a
/// freenginx binary's version is not nginx's, and the binary is named as
/// the reason the version is assumed. The binary only answers `-v`; the
/// configuration is given, so nothing runs it.
#[test]
fn doctor_names_a_binary_of_another_flavor_as_the_reason_for_the_assumed_version() {
    let bin = freenginx_on_path();
    let dir = tempfile::tempdir().unwrap();
    let conf = write_conf(dir.path(), NO_KEEPALIVE_LINE);
    let nginx = bin.path().join("nginx");
    let doctor = |extra: &[&str]| -> Value {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_upkeep"))
            .arg("doctor")
            .arg("--nginx")
            .arg(&nginx)
            .args(["--config", &conf, "--sample", "200ms", "--format", "json"])
            .args(extra)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)))
    };
    let forced = doctor(&["--flavor", "nginx"]);
    assert_eq!(forced["version_source"], "assumed", "{forced}");
    assert_ne!(forced["nginx_version"], "1.29.7", "{forced}");
    let assumptions = forced["assumptions"].to_string();
    assert!(
        assumptions.contains("the nginx binary on this host is freenginx 1.29.7, not nginx"),
        "{forced}"
    );
    // Nothing named: the binary's flavor and version are taken.
    let taken = doctor(&[]);
    assert_eq!(taken["version_source"], "detected", "{taken}");
    assert_eq!(taken["nginx_version"], "1.29.7", "{taken}");
}
