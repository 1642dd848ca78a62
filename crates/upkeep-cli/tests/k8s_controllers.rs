//! Configurations rendered by Kubernetes controllers (fixtures under
//! tests/fixtures/k8s, each with a header naming the release and template it
//! follows), checked as `nginx -T` output on stdin: the controller is
//! recognized, findings name its settings, and `fix` prints those instead of
//! a file edit.

mod common;

use common::{text, upkeep};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn fixture(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/k8s")
        .join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `nginx -T` output for files given as (path nginx read, text).
fn dump(files: &[(&str, String)]) -> Vec<u8> {
    let mut out = String::new();
    for (path, text) in files {
        out.push_str(&format!("# configuration file {path}:\n{text}\n"));
    }
    out.into_bytes()
}

/// The files of the fixture set in `dir` (under tests/fixtures/k8s), as
/// (path in the controller's image, text), in the order nginx reads them:
/// the main configuration first.
fn image_files(dir: &str) -> Vec<(&'static str, String)> {
    let layout: &[(&'static str, &str)] = match dir {
        "ingress-nginx" => &[
            ("/etc/nginx/nginx.conf", "ingress-nginx/nginx.conf"),
            ("/etc/nginx/mime.types", "mime.types"),
        ],
        "nginx-ingress" => &[
            ("/etc/nginx/nginx.conf", "nginx-ingress/nginx.conf"),
            ("/etc/nginx/mime.types", "mime.types"),
            (
                "/etc/nginx/config-version.conf",
                "nginx-ingress/config-version.conf",
            ),
            (
                "/etc/nginx/conf.d/default-web.conf",
                "nginx-ingress/default-web.conf",
            ),
        ],
        "nginx-gateway-fabric" => &[
            ("/etc/nginx/nginx.conf", "nginx-gateway-fabric/nginx.conf"),
            (
                "/etc/nginx/events-includes/events.conf",
                "nginx-gateway-fabric/events.conf",
            ),
            ("/etc/nginx/mime.types", "mime.types"),
            (
                "/etc/nginx/conf.d/http.conf",
                "nginx-gateway-fabric/http.conf",
            ),
        ],
        _ => panic!("no fixture set {dir}"),
    };
    layout
        .iter()
        .map(|(path, rel)| (*path, fixture(rel)))
        .collect()
}

/// `upkeep ARGS` with `stdin` as its standard input.
fn upkeep_stdin(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run upkeep");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// One finding: rule, managed setting, its value, whether a file fix is offered.
type Found = (String, Option<String>, Option<String>, bool);

/// `check - --format json ARGS`: the report and its findings.
fn findings(stdin: &[u8], args: &[&str]) -> (Value, Vec<Found>) {
    let mut all = vec!["check", "-", "--format", "json"];
    all.extend_from_slice(args);
    let out = upkeep_stdin(&all, stdin);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        text(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["managed"]["setting"].as_str().map(str::to_string),
                f["managed"]["value"].as_str().map(str::to_string),
                !f["fix"].is_null(),
            )
        })
        .collect();
    (json, list)
}

/// `check - --format json ARGS` on the `nginx -T` output of the fixture
/// set in `dir`: the report and its findings.
fn fixture_findings(dir: &str, args: &[&str]) -> (Value, Vec<Found>) {
    findings(&dump(&image_files(dir)), args)
}

fn managed(setting: &str, value: &str) -> (Option<String>, Option<String>) {
    (Some(setting.to_string()), Some(value.to_string()))
}

#[test]
fn ingress_nginx_default_config_pools_through_the_lua_balancer() {
    let (json, found) = fixture_findings("ingress-nginx", &[]);
    // No U001/U010/U015 on `upstream_balancer` (its `server 0.0.0.1` is a
    // placeholder, the pool is keepalive 320), no C002 for the status server
    // the controller keeps for itself: only the unknown backends behind the
    // Lua balancer, with the ConfigMap key to change.
    assert_eq!(
        found,
        vec![(
            "U007".to_string(),
            Some("upstream-keepalive-timeout".to_string()),
            Some("1".to_string()),
            false
        )],
        "{json:#}"
    );
    assert_eq!(json["nginx_version"], "1.27.1");
    assert_eq!(json["version_source"], "controller");
    let f = &json["findings"][0];
    assert_eq!(f["severity"], "warning");
    let notes = f["notes"].to_string();
    assert!(
        notes.contains("`default-api-8080`, `default-web-8000`"),
        "{notes}"
    );
    let assumptions = json["assumptions"].to_string();
    assert!(
        assumptions.contains("generated by ingress-nginx"),
        "{assumptions}"
    );
    assert!(
        assumptions.contains("1 finding in the servers ingress-nginx keeps for itself"),
        "{assumptions}"
    );
}

#[test]
fn ingress_nginx_gunicorn_service_names_upstream_keepalive_timeout() {
    let (json, found) =
        fixture_findings("ingress-nginx", &["--backend", "default-web-8000=gunicorn"]);
    assert_eq!(found.len(), 1, "{json:#}");
    let (rule, setting, value, has_fix) = &found[0];
    assert_eq!(rule, "U007");
    assert_eq!(
        (setting.clone(), value.clone()),
        managed("upstream-keepalive-timeout", "1")
    );
    assert!(!has_fix, "no file edit for a controller-rendered file");
    let f = &json["findings"][0];
    assert_eq!(f["severity"], "error");
    let line = fixture("ingress-nginx/nginx.conf")
        .lines()
        .position(|l| l.trim() == "keepalive_timeout  60s;")
        .unwrap()
        + 1;
    assert_eq!(f["line"], line, "at the upstream's keepalive_timeout line");
    let message = f["message"].as_str().unwrap();
    assert!(
        message.contains("Service backend `default-web-8000`"),
        "{message}"
    );
    let help = f["help"].as_str().unwrap();
    assert!(
        help.starts_with("set `upstream-keepalive-timeout: \"1\"` in the controller's ConfigMap"),
        "{help}"
    );
}

#[test]
fn ingress_nginx_long_front_names_keep_alive() {
    let (json, found) = fixture_findings(
        "ingress-nginx",
        &[
            "--backend",
            "upstream_balancer=idle=90s",
            "--front",
            "gcp-alb",
        ],
    );
    assert_eq!(
        found,
        vec![(
            "C003".to_string(),
            Some("keep-alive".to_string()),
            Some("620".to_string()),
            false
        )],
        "{json:#}"
    );
}

/// What the template renders for `upstream-keepalive-connections: "0"`
/// (nginx.tmpl:382-387 and 534-539): no keepalive lines, and `''` mapped to
/// `close`.
fn keepalive_off(conf: &str) -> String {
    let conf = conf
        .replace("        keepalive 320;\n", "")
        .replace("        keepalive_time 1h;\n", "")
        .replace("        keepalive_timeout  60s;\n", "")
        .replace("        keepalive_requests 10000;\n", "")
        .replace(
            "        # See https://nginx.org/en/docs/http/ngx_http_upstream_module.html#keepalive\n        ''               '';",
            "        ''               close;",
        );
    assert!(!conf.contains("keepalive 320"));
    assert!(conf.contains("''               close;"));
    conf
}

#[test]
fn ingress_nginx_without_upstream_keepalive_names_the_connections_key() {
    let mut files = image_files("ingress-nginx");
    files[0].1 = keepalive_off(&files[0].1);
    let (json, found) = findings(&dump(&files), &[]);
    let rules: Vec<&str> = found.iter().map(|f| f.0.as_str()).collect();
    assert!(rules.contains(&"U001"), "{json:#}");
    assert!(!rules.contains(&"U010"), "{json:#}");
    for (rule, setting, value, has_fix) in &found {
        assert!(!has_fix, "{rule} offers a file edit");
        if rule == "U001" || rule == "U005" {
            assert_eq!(
                (setting.clone(), value.clone()),
                managed("upstream-keepalive-connections", "320"),
                "{rule}"
            );
        }
    }
}

#[test]
fn fix_prints_the_configmap_change_instead_of_a_diff() {
    let out = upkeep_stdin(
        &[
            "fix",
            "-",
            "--backend",
            "default-web-8000=gunicorn",
            "--front",
            "gcp-alb",
        ],
        &dump(&image_files("ingress-nginx")),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("+++"), "no diff: {stdout}");
    assert!(
        stdout.contains("keep-alive: \"620\"    # C003 client-idle-shorter-than-front\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "upstream-keepalive-timeout: \"1\"    # U007 upstream-idle-outlives-backend\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.starts_with("# ingress-nginx 1.15.1 renders this configuration"),
        "{stdout}"
    );
}

#[test]
fn nginx_ingress_controller_names_its_configmap_keys() {
    let (json, found) = fixture_findings("nginx-ingress", &["--front", "gcp-alb"]);
    let c003: Vec<_> = found.iter().filter(|f| f.0 == "C003").collect();
    assert_eq!(c003.len(), 1, "{json:#}");
    assert_eq!(
        (c003[0].1.clone(), c003[0].2.clone()),
        managed("keepalive-timeout", "620s")
    );
    assert_eq!(json["nginx_version"], "1.31.3");
    // Before nginx 1.29.7 the template's upstream (no `keepalive` line by
    // default) has no pool: the ConfigMap key, or the annotation for one
    // Ingress.
    let (json, found) = fixture_findings("nginx-ingress", &["--nginx-version", "1.28.0"]);
    let u001: Vec<_> = found.iter().filter(|f| f.0 == "U001").collect();
    assert_eq!(u001.len(), 1, "{json:#}");
    assert_eq!(
        (u001[0].1.clone(), u001[0].2.clone()),
        managed("keepalive", "32")
    );
    let help = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "U001")
        .unwrap()["help"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        help.contains("`nginx.org/keepalive: \"32\"` on the Ingress"),
        "{help}"
    );
    assert!(found.iter().all(|f| !f.3), "no file fixes: {json:#}");
}

#[test]
fn nginx_gateway_fabric_names_its_policy_fields() {
    let (json, found) = fixture_findings(
        "nginx-gateway-fabric",
        &[
            "--backend",
            "default_web_8000=gunicorn",
            "--front",
            "gcp-alb",
        ],
    );
    let mut got: Vec<_> = found
        .iter()
        .map(|f| (f.0.as_str(), f.1.clone(), f.2.clone()))
        .filter(|f| f.0 != "R003")
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (
                "C003",
                Some("ClientSettingsPolicy spec.keepAlive.timeout.server".to_string()),
                Some("620s".to_string())
            ),
            (
                "U007",
                Some("UpstreamSettingsPolicy spec.keepAlive.timeout".to_string()),
                Some("1800ms".to_string())
            ),
        ],
        "{json:#}"
    );
    assert!(!found.iter().any(|f| f.0 == "U010"), "{json:#}");
}

/// A plain config is not taken for a controller's.
#[test]
fn plain_config_is_not_recognized() {
    let dir = tempfile::tempdir().unwrap();
    let conf: PathBuf = dir.path().join("nginx.conf");
    std::fs::write(
        &conf,
        "events {}\nhttp { upstream app { server 127.0.0.1:8000; keepalive 8; }\n server { listen 80; location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection \"\"; } } }\n",
    )
    .unwrap();
    let out = upkeep(&[
        "check",
        "--format",
        "json",
        "--nginx-version",
        "1.28.0",
        conf.to_str().unwrap(),
    ]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!json["assumptions"].to_string().contains("generated by"));
    assert!(json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["managed"].is_null()));
}

/// The dynamic modules Debian's nginx needs for the F5 controllers'
/// fixtures: njs (`js_import`) and stream (their images build stream in;
/// Debian ships it as a module). Missing: skipped loudly, except in CI,
/// whose setup installs them.
fn debian_modules() -> Option<PathBuf> {
    let dir = Path::new("/usr/lib/nginx/modules");
    let wanted = [
        ("ngx_http_js_module.so", "libnginx-mod-http-js"),
        ("ngx_stream_module.so", "libnginx-mod-stream"),
    ];
    let nginx = Path::new("/usr/sbin/nginx");
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|(m, _)| !dir.join(m).is_file())
        .map(|(_, package)| *package)
        .chain((!nginx.is_file()).then_some("nginx"))
        .collect();
    if missing.is_empty() {
        return Some(dir.to_path_buf());
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "not installed in CI (.ci/setup installs them): {missing:?}"
    );
    eprintln!("SKIPPED: install Debian's {}", missing.join(", "));
    None
}

/// A fixture set laid out under a private prefix standing for the image's
/// /etc/nginx, with its absolute paths moved there, then `nginx -t`.
/// `files`: (path in the image, text); `rewrites`: image directories and
/// where they go under the prefix; `stubs`: njs files the configuration
/// imports (only their exports are checked at load time).
fn nginx_t(files: &[(&str, String)], rewrites: &[(&str, &str)], stubs: &[(&str, &str)]) {
    let Some(modules) = debian_modules() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("etc/nginx");
    let moved = |path: &str| -> String {
        let mut p = path.to_string();
        for (from, to) in rewrites {
            p = p.replace(from, dir.path().join(to).to_str().unwrap());
        }
        p
    };
    // The images' prefix is /etc/nginx with modules/ beside the
    // configuration (a link to the module directory).
    std::fs::create_dir_all(prefix.join("modules")).unwrap();
    for entry in std::fs::read_dir(&modules).unwrap() {
        let entry = entry.unwrap();
        std::os::unix::fs::symlink(entry.path(), prefix.join("modules").join(entry.file_name()))
            .unwrap();
    }
    for (path, text) in stubs {
        let at = Path::new(&moved(path)).to_path_buf();
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::fs::write(at, text).unwrap();
    }
    for (from, to) in rewrites {
        std::fs::create_dir_all(dir.path().join(to)).unwrap();
        assert!(
            files.iter().any(|(_, t)| t.contains(from)),
            "no {from} in the fixtures: the rewrite is stale"
        );
    }
    for (i, (path, text)) in files.iter().enumerate() {
        let mut text = moved(text);
        if i == 0 {
            let stream = modules.join("ngx_stream_module.so");
            text = format!("load_module {};\n{text}", stream.display());
        }
        let at = Path::new(&moved(path)).to_path_buf();
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::fs::write(at, text).unwrap();
    }
    let main = moved(files[0].0);
    let out = Command::new("/usr/sbin/nginx")
        .arg("-t")
        .arg("-p")
        .arg(format!("{}/", prefix.display()))
        .args(["-e", "stderr", "-c", &main])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "nginx -t: {stderr}");
    assert!(stderr.contains("test is successful"), "{stderr}");
}

/// The F5 NGINX Ingress Controller fixture is a configuration nginx
/// accepts (Debian's nginx 1.22 with njs and stream; the image runs 1.31.3).
#[test]
fn nginx_ingress_fixture_passes_nginx_t() {
    nginx_t(
        &image_files("nginx-ingress"),
        &[
            ("/etc/nginx/", "etc/nginx/"),
            ("/var/lib/nginx/", "var/lib/nginx/"),
        ],
        &[(
            "/etc/nginx/njs/apikey_auth.js",
            "function hash(r) { return ''; }\nexport default { hash };\n",
        )],
    );
}

/// The NGINX Gateway Fabric fixture is a configuration nginx accepts.
#[test]
fn nginx_gateway_fabric_fixture_passes_nginx_t() {
    nginx_t(
        &image_files("nginx-gateway-fabric"),
        &[
            ("/etc/nginx/", "etc/nginx/"),
            ("/var/run/nginx/", "var/run/nginx/"),
        ],
        // `js_import modules/njs/…` resolves against the prefix.
        &[
            (
                "/etc/nginx/modules/njs/httpmatches.js",
                "export default {};\n",
            ),
            ("/etc/nginx/modules/njs/epp.js", "export default {};\n"),
        ],
    );
}

// The ingress-nginx fixture is not given to `nginx -t`: it writes `http2 on;`
// (nginx 1.25.1 and later; Debian's nginx is 1.22.1) and runs the
// controller's own Lua files (`init_by_lua_file`, `balancer_by_lua_file`,
// …), which no package provides.
