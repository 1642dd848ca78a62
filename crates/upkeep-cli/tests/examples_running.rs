//! examples/systemd and examples/kubernetes grant `upkeep watch` what it
//! needs and no more: run as an unprivileged user against a real nginx
//! (master root, worker nobody), the socket census works through netlink
//! sock_diag with no capability at all, and the master's open files need
//! exactly the capabilities the unit and the manifests add. Skipped
//! (loudly) unless run as root with nginx and setpriv.

mod common;

use common::{binary_for_nobody, keepalive_backend, sample, scrape, wait_for, KillOnDrop};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use upkeep_nginx::{free_port, NginxBinary, NginxInstance, Prefix};
use yaml_rust2::{Yaml, YamlLoader};

const NOBODY: &str = "65534";

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn unit() -> String {
    std::fs::read_to_string(examples().join("systemd/upkeep-watch.service")).unwrap()
}

fn unit_value<'a>(unit: &'a str, key: &str) -> &'a str {
    unit.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in the unit"))
}

/// The unit's AmbientCapabilities in setpriv's spelling (`+dac_read_search,…`).
fn unit_capabilities() -> String {
    unit_value(&unit(), "AmbientCapabilities")
        .split_whitespace()
        .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_lowercase()))
        .collect::<Vec<_>>()
        .join(",")
}

/// `upkeep ARGS` as user nobody, with `caps` as its ambient capabilities.
fn as_nobody(bin: &Path, caps: Option<&str>, args: &[String]) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid", NOBODY, "--regid", NOBODY, "--clear-groups"]);
    if let Some(caps) = caps {
        c.arg(format!("--inh-caps={caps}"))
            .arg(format!("--ambient-caps={caps}"));
    }
    c.arg(bin).args(args);
    c
}

fn get(port: u16) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\nHost: t\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
}

#[test]
fn the_unit_s_capabilities_are_what_the_exporter_needs() {
    if !common::is_root() {
        eprintln!("SKIPPED: needs root (to run nginx's master as root and upkeep as nobody)");
        return;
    }
    let Some(bin) = NginxBinary::find(None) else {
        eprintln!("SKIPPED: no nginx binary found (install Debian's nginx)");
        return;
    };
    if Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("SKIPPED: no setpriv (util-linux)");
        return;
    }
    let app = keepalive_backend(50);
    let prefix = Prefix::new().unwrap();
    let port = free_port().unwrap();
    let conf = prefix
        .write(
            "nginx.conf",
            &format!(
                "worker_processes 1;\nerror_log {};\nevents {{ worker_connections 64; }}\nhttp {{\n    {}    access_log off;\n    upstream app {{ server {app}; keepalive 4; }}\n    server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection \"\"; }} }}\n}}\n",
                prefix.error_log().display(),
                prefix.http_temp_paths()
            ),
        )
        .unwrap();
    let nginx = NginxInstance::start(&bin, &prefix, &conf).unwrap();
    // nobody reads the configuration and follows the error log.
    for p in [&conf, &prefix.error_log()] {
        std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    }
    get(port);
    let (_copy, upkeep) = binary_for_nobody();

    // The census, with no capability: netlink, with the pooled connection.
    let out = as_nobody(
        &upkeep,
        None,
        &[
            "watch".into(),
            "--quiet".into(),
            "--format=json".into(),
            "--count=1".into(),
            "--interval=200ms".into(),
            format!("--backend-address={app}"),
        ],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["census"]["source"], "netlink sock_diag", "{j}");
    assert!(j["backends"][0]["established"].as_u64() >= Some(1), "{j}");

    // The unit's command line, on a free port and this nginx.
    let unit_text = unit();
    let exec = unit_value(&unit_text, "ExecStart");
    let mut args: Vec<String> = exec
        .split_whitespace()
        .skip(1)
        .map(str::to_string)
        .collect();
    let listen = format!("127.0.0.1:{}", free_port().unwrap());
    for (flag, value) in [
        ("--config", conf.display().to_string()),
        ("--listen", listen.clone()),
    ] {
        let at = args.iter().position(|a| a == flag).unwrap();
        args[at + 1] = value;
    }
    args.extend([
        "--pid".into(),
        nginx.pid().to_string(),
        "--interval=200ms".into(),
    ]);

    let master_files = |caps: Option<&str>| -> (Option<f64>, Option<f64>, String) {
        let _watch = KillOnDrop(
            as_nobody(&upkeep, caps, &args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        // The last page scraped, none when the last try found no listener.
        let mut page = None;
        wait_for(Duration::from_secs(10), Duration::from_millis(100), || {
            page = TcpStream::connect(&listen).is_ok().then(|| scrape(&listen));
            page.as_ref()
                .is_some_and(|p| p.contains("upkeep_nginx_workers "))
        });
        let page = page.unwrap_or_else(|| panic!("no metrics on {listen}"));
        (
            sample(&page, "upkeep_nginx_open_files{process=\"master\"}"),
            sample(&page, "upkeep_nginx_open_files{process=\"worker\"}"),
            page,
        )
    };
    // Without capabilities: the worker (nobody, as we are) is read, the
    // master (root) is not.
    let (master, worker, page) = master_files(None);
    assert!(worker.is_some(), "{page}");
    assert_eq!(
        master, None,
        "the root master's fds without capabilities: {page}"
    );
    // With the unit's: both.
    let caps = unit_capabilities();
    assert_eq!(caps, "+dac_read_search,+sys_ptrace");
    let (master, worker, page) = master_files(Some(&caps));
    assert!(master.is_some() && worker.is_some(), "{page}");
    assert!(page.contains("upkeep_findings"), "{page}");
}

fn load(path: &str) -> Vec<Yaml> {
    let text = std::fs::read_to_string(examples().join(path)).unwrap();
    YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The pod spec of a workload, and its upkeep container.
fn upkeep_container(doc: &Yaml) -> (&Yaml, &Yaml) {
    let spec = &doc["spec"]["template"]["spec"];
    let c = spec["containers"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|c| c["args"][0].as_str() == Some("watch"))
        .expect("a container running upkeep watch");
    (spec, c)
}

#[test]
fn the_kubernetes_manifests_grant_the_unit_s_capabilities_and_mount_read_only() {
    let unit_caps: Vec<String> = unit_value(&unit(), "AmbientCapabilities")
        .split_whitespace()
        .map(|c| c.trim_start_matches("CAP_").to_string())
        .collect();
    for (file, kind) in [
        ("kubernetes/sidecar.yaml", "Deployment"),
        ("kubernetes/daemonset.yaml", "DaemonSet"),
    ] {
        let docs = load(file);
        let doc = docs
            .iter()
            .find(|d| d["kind"].as_str() == Some(kind))
            .unwrap_or_else(|| panic!("{file}: no {kind}"));
        let (spec, c) = upkeep_container(doc);
        let sc = &c["securityContext"];
        let added: Vec<String> = sc["capabilities"]["add"]
            .as_vec()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(added, unit_caps, "{file}");
        assert_eq!(
            sc["capabilities"]["drop"][0].as_str(),
            Some("ALL"),
            "{file}"
        );
        assert_eq!(sc["allowPrivilegeEscalation"].as_bool(), Some(false));
        assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true));
        // It sees nginx's processes.
        let sees = match kind {
            "Deployment" => spec["shareProcessNamespace"].as_bool(),
            _ => spec["hostPID"].as_bool(),
        };
        assert_eq!(sees, Some(true), "{file}");
        // Whatever it mounts, it mounts read-only.
        for m in c["volumeMounts"].as_vec().unwrap() {
            assert_eq!(m["readOnly"].as_bool(), Some(true), "{file}: {m:?}");
        }
        // Its arguments are ones `upkeep watch` takes.
        let args: Vec<String> = c["args"]
            .as_vec()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        let out = Command::new(env!("CARGO_BIN_EXE_upkeep"))
            .args(&args)
            .args(["--count=0"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--count") && !err.contains("unexpected argument"),
            "{file}: {args:?}: {err}"
        );
    }
}
