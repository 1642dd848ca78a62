//! `upkeep check --k8s-configmap FILE.yaml`: an ingress-nginx ConfigMap
//! judged with the same rules as a configuration, each finding at the line
//! of the key that decides it (or at `data:` for a key left at its
//! default), its help naming the key and a value.

mod common;

use common::{text, upkeep};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Output;

/// A ConfigMap manifest in a temporary directory.
struct Manifest {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Manifest {
    fn new(yaml: &str) -> Manifest {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cm.yaml");
        std::fs::write(&path, yaml).unwrap();
        Manifest { _dir: dir, path }
    }

    fn path(&self) -> &str {
        self.path.to_str().unwrap()
    }

    /// `check --k8s-configmap` with ARGS (no upkeep.toml from the
    /// directory the tests run in).
    fn check(&self, args: &[&str]) -> Output {
        let settings = self.path.with_file_name("upkeep.toml");
        std::fs::write(&settings, "").unwrap();
        let mut all = vec![
            "check",
            "--k8s-configmap",
            self.path(),
            "--config-file",
            settings.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        upkeep(&all)
    }

    fn json(&self, args: &[&str]) -> (Option<i32>, Value) {
        let mut all = vec!["--format", "json"];
        all.extend_from_slice(args);
        let out = self.check(&all);
        let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("{e}: {}\nstderr: {}", text(&out.stdout), text(&out.stderr))
        });
        (out.status.code(), json)
    }
}

/// 1-based line of the first line of `yaml` that starts (after indentation)
/// with `prefix`.
fn line_of(yaml: &str, prefix: &str) -> u64 {
    yaml.lines()
        .position(|l| l.trim_start().starts_with(prefix))
        .unwrap_or_else(|| panic!("no line {prefix:?}")) as u64
        + 1
}

fn findings(json: &Value) -> &Vec<Value> {
    json["findings"].as_array().unwrap()
}

fn rules(json: &Value) -> Vec<&str> {
    findings(json)
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect()
}

const HEADER: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ingress-nginx-controller\n  namespace: ingress-nginx\n";

#[test]
fn upstream_keepalive_timeout_above_gunicorns_idle_is_u007_at_the_key() {
    let yaml = format!(
        "{HEADER}data:\n  allow-snippet-annotations: \"false\"\n  upstream-keepalive-timeout: \"120\"\n"
    );
    let cm = Manifest::new(&yaml);
    let (code, json) = cm.json(&["--backend", "shop-web-8000=gunicorn"]);
    assert_eq!(code, Some(1), "{json:#}");
    assert_eq!(rules(&json), ["U007"], "{json:#}");
    let f = &findings(&json)[0];
    assert_eq!(f["severity"], "error");
    assert_eq!(f["file"], cm.path());
    assert_eq!(f["line"], line_of(&yaml, "upstream-keepalive-timeout:"));
    assert_eq!(f["column"], 3);
    let message = f["message"].as_str().unwrap();
    assert!(
        message.starts_with("`upstream-keepalive-timeout: \"120\"`: "),
        "{message}"
    );
    assert!(
        message.contains("keeps idle connections for 120s"),
        "{message}"
    );
    assert!(
        message.contains("Service backend `shop-web-8000`"),
        "{message}"
    );
    // Gunicorn closes idle connections after 2 s (facts/backends.tsv): the
    // upstream timeout must end before, in the key's whole seconds.
    assert_eq!(f["managed"]["setting"], "upstream-keepalive-timeout");
    assert_eq!(f["managed"]["value"], "1");
    let help = f["help"].as_str().unwrap();
    assert!(
        help.starts_with("set `upstream-keepalive-timeout: \"1\"` in this ConfigMap's `data:`"),
        "{help}"
    );
    assert!(f["fix"].is_null(), "no file edit: {json:#}");
    assert_eq!(json["nginx_version"], "1.27.1");
}

#[test]
fn defaults_against_an_aws_alb_keep_the_client_side_and_flag_the_unknown_backends() {
    // ingress-nginx's `keep-alive` default (75 s) outlives the ALB's 60 s
    // idle timeout: no C003. The default upstream timeout (60 s) against
    // backends nobody declared is U007's warning, at `data:`.
    let yaml = format!("{HEADER}data: {{}}\n");
    let cm = Manifest::new(&yaml);
    let (code, json) = cm.json(&["--front", "aws-alb"]);
    assert_eq!(code, Some(1), "{json:#}");
    assert_eq!(rules(&json), ["U007"], "{json:#}");
    let f = &findings(&json)[0];
    assert_eq!(f["severity"], "warning");
    assert_eq!(f["line"], line_of(&yaml, "data:"));
    let message = f["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "`upstream-keepalive-timeout` not set (ingress-nginx 1.15.1 default: `60`)"
        ),
        "{message}"
    );
    assert!(json["assumptions"]
        .to_string()
        .contains("no Service backend declared"));

    // Lowered to the ALB's own 60 s, `keep-alive` races the ALB: C003 at
    // its line, asking for the ALB's timeout plus a margin.
    let yaml = format!("{HEADER}data:\n  keep-alive: \"60\"\n");
    let cm = Manifest::new(&yaml);
    let (_, json) = cm.json(&[
        "--front",
        "aws-alb",
        "--backend",
        "upstream_balancer=idle=75s",
    ]);
    assert_eq!(rules(&json), ["C003"], "{json:#}");
    let f = &findings(&json)[0];
    assert_eq!(f["line"], line_of(&yaml, "keep-alive:"));
    assert_eq!(f["managed"]["setting"], "keep-alive");
    assert_eq!(f["managed"]["value"], "66");
    assert!(f["message"]
        .as_str()
        .unwrap()
        .starts_with("`keep-alive: \"60\"`: "));
}

#[test]
fn clean_configmap_has_no_findings() {
    let yaml = format!(
        "{HEADER}data:\n  keep-alive: \"75\"\n  upstream-keepalive-timeout: \"50\"\n  max-worker-open-files: \"65536\"\n"
    );
    let cm = Manifest::new(&yaml);
    let args = [
        "--front",
        "aws-alb",
        "--backend",
        "shop-web-8000=idle=75s",
        "--backend",
        "shop-api-8080=idle=60s",
    ];
    let (code, json) = cm.json(&args);
    assert_eq!(code, Some(0), "{json:#}");
    assert_eq!(findings(&json).len(), 0, "{json:#}");
    // With the open-file limit given, R001 is checked too.
    assert!(!json["assumptions"].to_string().contains("R001 not checked"));
    let out = cm.check(&args);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stdout).contains("0 errors, 0 warnings, 0 infos"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn upstream_keepalive_connections_zero_is_u001_with_the_default_pool() {
    let yaml = format!(
        "{HEADER}data:\n  upstream-keepalive-connections: \"0\"\n  upstream-keepalive-timeout: \"5\"\n"
    );
    let cm = Manifest::new(&yaml);
    let (_, json) = cm.json(&["--backend", "shop-web-8000=gunicorn"]);
    assert_eq!(rules(&json), ["U001"], "{json:#}");
    let f = &findings(&json)[0];
    assert_eq!(f["line"], line_of(&yaml, "upstream-keepalive-connections:"));
    assert_eq!(f["managed"]["value"], "320");
    assert!(json["assumptions"]
        .to_string()
        .contains("`upstream-keepalive-timeout` has no effect"));
}

#[test]
fn proxy_http_version_1_0_is_u002_at_the_key() {
    let yaml = format!("{HEADER}data:\n  proxy-http-version: \"1.0\"\n");
    let cm = Manifest::new(&yaml);
    let (_, json) = cm.json(&["--backend", "upstream_balancer=idle=75s"]);
    assert_eq!(rules(&json), ["U002"], "{json:#}");
    let f = &findings(&json)[0];
    assert_eq!(f["line"], line_of(&yaml, "proxy-http-version:"));
    assert_eq!(f["managed"]["setting"], "proxy-http-version");
    assert_eq!(f["managed"]["value"], "1.1");
}

#[test]
fn helm_render_with_several_documents_finds_the_configmap() {
    let yaml = "# Source: ingress-nginx/templates/controller-serviceaccount.yaml\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: rel-ingress-nginx\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: rel-ingress-nginx-tcp\ndata:\n  \"9000\": \"default/tcp:9000\"\n---\n# Source: ingress-nginx/templates/controller-configmap.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: rel-ingress-nginx-controller\ndata:\n  upstream-keepalive-timeout: \"10\"\n";
    let cm = Manifest::new(yaml);
    let (_, json) = cm.json(&["--backend", "shop-web-8000=idle=5s"]);
    assert_eq!(rules(&json), ["U007"], "{json:#}");
    assert_eq!(
        findings(&json)[0]["line"],
        line_of(yaml, "upstream-keepalive-timeout:")
    );
    assert_eq!(findings(&json)[0]["managed"]["value"], "4");
}

/// A run that must stop with exit 2 and `error: FILE:LINE:COL: …`.
fn input_error(yaml: &str) -> (String, String) {
    let cm = Manifest::new(yaml);
    let out = cm.check(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    (cm.path().to_string(), text(&out.stderr))
}

#[test]
fn malformed_yaml_is_exit_2_with_file_line_col() {
    let (path, stderr) = input_error("kind: ConfigMap\ndata:\n  keep-alive: \"75\n  other: x\n");
    assert!(
        stderr.starts_with(&format!("error: {path}:3:15: invalid YAML")),
        "{stderr}"
    );
    assert!(stderr.contains("3 |   keep-alive: \"75\n"), "{stderr}");
}

#[test]
fn invalid_values_are_exit_2_at_the_value() {
    let (path, stderr) = input_error(&format!(
        "{HEADER}data:\n  upstream-keepalive-timeout: \"abc\"\n"
    ));
    assert!(
        stderr.starts_with(&format!(
            "error: {path}:7:31: `upstream-keepalive-timeout` takes a whole number, not `abc`"
        )),
        "{stderr}"
    );
    // "60s" is the usual mistake: the key is in seconds, the template adds `s`.
    let (_, stderr) = input_error(&format!("{HEADER}data:\n  keep-alive: \"60s\"\n"));
    assert!(stderr.contains("write `\"60\"`"), "{stderr}");
    let (_, stderr) = input_error(&format!(
        "{HEADER}data:\n  upstream-keepalive-time: \"soon\"\n"
    ));
    assert!(stderr.contains("takes an nginx time"), "{stderr}");
}

/// `worker-shutdown-timeout` and `upstream-keepalive-time` go into
/// directives nginx reads in milliseconds: a time it cannot hold
/// (9223372036854776s is one second more than nginx 1.22 takes), or a `y`
/// unit, is exit 2 at the value with nginx's words (the rendering's own
/// test runs nginx -t on the same values).
#[test]
fn times_above_what_nginx_takes_are_exit_2_at_the_value() {
    let (path, stderr) = input_error(&format!(
        "{HEADER}data:\n  upstream-keepalive-time: \"9223372036854776s\"\n"
    ));
    assert!(
        stderr.starts_with(&format!(
            "error: {path}:7:28: `upstream-keepalive-time` cannot be `9223372036854776s`: nginx refuses the configuration rendered from it with `\"keepalive_time\" directive invalid value (nginx takes at most 9223372036854775s, 9223372036854775807ms)`"
        )),
        "{stderr}"
    );
    let (path, stderr) = input_error(&format!(
        "{HEADER}data:\n  keep-alive: \"75\"\n  worker-shutdown-timeout: \"1y\"\n"
    ));
    assert!(
        stderr.starts_with(&format!(
            "error: {path}:8:28: `worker-shutdown-timeout` cannot be `1y`: nginx refuses the configuration rendered from it with `\"worker_shutdown_timeout\" directive invalid value (a time in milliseconds takes no `y` or `M` unit)`"
        )),
        "{stderr}"
    );
}

#[test]
fn a_manifest_that_is_not_a_configmap_is_exit_2() {
    let (path, stderr) =
        input_error("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\n");
    assert!(
        stderr.starts_with(&format!(
            "error: {path}:2:7: `kind: Deployment` is not a ConfigMap"
        )),
        "{stderr}"
    );
    let (path, stderr) = input_error("data:\n  keep-alive: \"75\"\n");
    assert!(
        stderr.starts_with(&format!("error: {path}:1:1: not a Kubernetes manifest")),
        "{stderr}"
    );
}

#[test]
fn unquoted_values_and_unknown_keepalive_keys_are_warned_about() {
    let yaml = format!("{HEADER}data:\n  keep-alive: 90\n  upstream-keepalive-timout: \"5\"\n");
    let cm = Manifest::new(&yaml);
    let out = cm.check(&["--backend", "upstream_balancer=idle=75s"]);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "warning: {}:7:15: `90` is not a YAML string",
            cm.path()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("has no ConfigMap key `upstream-keepalive-timout`"),
        "{stderr}"
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

#[test]
fn configmap_and_config_path_are_exclusive() {
    let cm = Manifest::new(&format!("{HEADER}data: {{}}\n"));
    let out = upkeep(&[
        "check",
        "/etc/nginx/nginx.conf",
        "--k8s-configmap",
        cm.path(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot be used with"));
}

#[test]
fn fix_prints_a_configmap_diff_that_check_then_accepts() {
    let yaml = format!(
        "{HEADER}data:\n  # tuned for the ALB\n  keep-alive: \"60\"\n  allow-snippet-annotations: \"false\"\n"
    );
    let cm = Manifest::new(&yaml);
    let settings = cm.path.with_file_name("upkeep.toml");
    std::fs::write(&settings, "").unwrap();
    let args = ["--backend", "shop-web-8000=gunicorn", "--front", "aws-alb"];
    let mut all = vec![
        "fix",
        "--k8s-configmap",
        cm.path(),
        "--config-file",
        settings.to_str().unwrap(),
    ];
    all.extend_from_slice(&args);
    let out = upkeep(&all);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let diff = text(&out.stdout);
    // The key set in the file changes in place (its comment and neighbours
    // kept); the key left at its default is added beside the others.
    assert!(diff.contains("-  keep-alive: \"60\"\n"), "{diff}");
    assert!(diff.contains("+  keep-alive: \"66\"\n"), "{diff}");
    assert!(
        diff.contains("+  upstream-keepalive-timeout: \"1\"\n"),
        "{diff}"
    );
    assert!(!diff.contains("still found"), "{diff}");
    assert_eq!(
        std::fs::read_to_string(&cm.path).unwrap(),
        yaml,
        "diff only"
    );

    let fixed = yaml.replace(
        "  keep-alive: \"60\"\n",
        "  upstream-keepalive-timeout: \"1\"\n  keep-alive: \"66\"\n",
    );
    let fixed_cm = Manifest::new(&fixed);
    let (code, json) = fixed_cm.json(&args);
    assert_eq!(code, Some(0), "{json:#}");
    assert_eq!(findings(&json).len(), 0, "{json:#}");
    // Nothing left to fix: no diff, exit 0.
    let mut all = vec![
        "fix",
        "--k8s-configmap",
        fixed_cm.path(),
        "--config-file",
        settings.to_str().unwrap(),
    ];
    all.extend_from_slice(&args);
    let out = upkeep(&all);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
}

#[test]
fn fix_names_keys_it_cannot_place_and_refuses_write() {
    // A flow-style `data:` gets no new line: the key is printed to add.
    let cm = Manifest::new(&format!("{HEADER}data: {{}}\n"));
    let out = upkeep(&[
        "fix",
        "--k8s-configmap",
        cm.path(),
        "--backend",
        "shop-web-8000=gunicorn",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("# add under the ConfigMap's `data:`:\n  upstream-keepalive-timeout: \"1\"    # U007 upstream-idle-outlives-backend\n"),
        "{stdout}"
    );
    let out = upkeep(&["fix", "--write", "--k8s-configmap", cm.path()]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn open_file_limit_as_large_as_an_i64_derives_worker_connections_without_overflow() {
    // `max-worker-connections: "0"` makes the controller take three
    // quarters of `max-worker-open-files`; the largest value the key takes
    // must give that quarter, not an arithmetic overflow.
    let yaml = format!(
        "{HEADER}data:\n  max-worker-open-files: \"9223372036854775807\"\n  max-worker-connections: \"0\"\n  upstream-keepalive-connections: \"9223372036854775807\"\n"
    );
    let cm = Manifest::new(&yaml);
    let (code, json) = cm.json(&["--backend", "upstream_balancer=idle=75s"]);
    assert_eq!(code, Some(1), "{json:#}");
    let r002 = findings(&json)
        .iter()
        .find(|f| f["rule"] == "R002")
        .unwrap_or_else(|| panic!("{json:#}"));
    assert!(
        r002["message"]
            .as_str()
            .unwrap()
            .contains("worker_connections 6917529027641081855 "),
        "{r002:#}"
    );
}

#[test]
fn a_configmap_on_one_long_line_is_read_in_time_proportional_to_its_length() {
    // Every key of a flow mapping on one line used to be placed by counting
    // from the start of the line: 20,000 keys (300 KB) took minutes.
    let keys: Vec<String> = (0..40_000).map(|i| format!("k{i}: \"{i}\"")).collect();
    let yaml = format!(
        "{{kind: ConfigMap, data: {{{}, upstream-keepalive-timeout: \"30\"}}}}\n",
        keys.join(", ")
    );
    let cm = Manifest::new(&yaml);
    let settings = cm.path.with_file_name("upkeep.toml");
    std::fs::write(&settings, "").unwrap();
    let mut child = common::KillOnDrop(
        std::process::Command::new(env!("CARGO_BIN_EXE_upkeep"))
            .args(["check", "--format", "json", "--k8s-configmap", cm.path()])
            .arg("--config-file")
            .arg(&settings)
            .args(["--backend", "upstream_balancer=idle=5s"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Generous for a loaded machine; the quadratic count took far longer.
    let done = common::wait_for(
        std::time::Duration::from_secs(120),
        std::time::Duration::from_millis(50),
        || child.0.try_wait().unwrap().is_some(),
    );
    assert!(done, "check of a {} byte line did not finish", yaml.len());
    let mut out = Vec::new();
    std::io::Read::read_to_end(child.0.stdout.as_mut().unwrap(), &mut out).unwrap();
    let json: Value = serde_json::from_slice(&out).unwrap();
    let f = &findings(&json)[0];
    assert_eq!(f["rule"], "U007", "{json:#}");
    // The finding still points at the key, far along the line.
    let col = yaml.find("upstream-keepalive-timeout").unwrap() as u64 + 1;
    assert_eq!(
        (f["line"].as_u64(), f["column"].as_u64()),
        (Some(1), Some(col))
    );
}

#[test]
fn fix_of_a_flow_mapping_over_several_lines_names_the_key_to_add() {
    // A new line inside `{ … }` without a comma is not YAML: the key is
    // printed to add, as for a one-line flow mapping.
    let cm = Manifest::new(&format!(
        "{HEADER}data: {{\n  keep-alive: \"75\",\n  use-gzip: \"true\"}}\n"
    ));
    let out = upkeep(&[
        "fix",
        "--k8s-configmap",
        cm.path(),
        "--backend",
        "shop-web-8000=gunicorn",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(
        stdout,
        "# add under the ConfigMap's `data:`:\n  upstream-keepalive-timeout: \"1\"    # U007 upstream-idle-outlives-backend\n"
    );
}

#[test]
fn a_time_in_seconds_beyond_what_nginx_takes_is_exit_2_at_the_value() {
    // nginx refuses `keepalive_timeout 9223372036854776s` (tested with the
    // rendered configuration in the crate's unit tests); the check used to
    // judge the pool as if the default 60s applied.
    let (path, stderr) = input_error(&format!(
        "{HEADER}data:\n  upstream-keepalive-timeout: \"9223372036854775807\"\n"
    ));
    assert_eq!(
        stderr.lines().next().unwrap(),
        format!("error: {path}:7:31: `upstream-keepalive-timeout` is at most 9223372036854775 (seconds), not `9223372036854775807`: nginx refuses the configuration rendered from it")
    );
    let cm = Manifest::new(&format!(
        "{HEADER}data:\n  keep-alive: \"9223372036854775\"\n"
    ));
    assert_ne!(cm.check(&[]).status.code(), Some(2));
}

#[test]
fn fix_diff_of_a_crlf_configmap_keeps_its_line_ends_so_patch_applies_it() {
    let yaml =
        format!("{HEADER}data:\n  upstream-keepalive-timeout: \"30\"\n").replace('\n', "\r\n");
    let cm = Manifest::new(&yaml);
    let out = upkeep(&[
        "fix",
        "--k8s-configmap",
        cm.path(),
        "--backend",
        "shop-web-8000=gunicorn",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let diff = text(&out.stdout);
    assert!(
        diff.contains(
            "\n-  upstream-keepalive-timeout: \"30\"\r\n+  upstream-keepalive-timeout: \"1\"\r\n"
        ),
        "{diff:?}"
    );
    // Nothing else changed: the diff's lines are the file's bytes.
    assert!(!diff.contains('\u{240d}'), "{diff:?}");
}
