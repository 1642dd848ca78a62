//! Inputs that are not ordinary files, through the binary: every command
//! that reads a file refuses a FIFO or a device where it needs a regular
//! file (and never waits on one), bounds what it reads, and reports an
//! include nginx cannot read as an error at the include, exit 2.

mod common;

use common::{text, wait_until};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// `upkeep ARGS` with stdin from `stdin` (or nothing), killed and failed
/// if it runs longer than a minute: the point of these tests is that
/// nothing blocks.
fn upkeep_bounded(
    args: &[&str],
    stdin: Option<Box<dyn FnOnce(std::process::ChildStdin) + Send>>,
) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run upkeep");
    let feeder = stdin.map(|f| {
        let pipe = child.stdin.take().unwrap();
        std::thread::spawn(move || f(pipe))
    });
    let exited = wait_until(Duration::from_secs(60), Duration::from_millis(20), || {
        child.try_wait().unwrap()
    });
    if exited.is_none() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("upkeep {args:?} still runs after a minute");
    }
    let out = child.wait_with_output().unwrap();
    if let Some(f) = feeder {
        let _ = f.join();
    }
    out
}

fn mkfifo(path: &Path) {
    assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
}

const CONFIG: &str = "events {}\nhttp {\n    upstream app { server 127.0.0.1:8000; }\n    server { location / { proxy_pass http://app; } }\n}\n";

#[test]
fn fifos_and_devices_given_as_inputs_are_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    mkfifo(&fifo);
    let fifo = fifo.to_str().unwrap();
    let conf = dir.path().join("nginx.conf");
    std::fs::write(&conf, CONFIG).unwrap();
    let conf = conf.to_str().unwrap();

    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["check", conf, "--config-file", fifo], "FIFO"),
        (
            vec!["check", conf, "--config-file", "/dev/zero"],
            "character device",
        ),
        (vec!["check", conf, "--backend-facts", fifo], "FIFO"),
        (
            vec!["check", conf, "--backend-facts", "/dev/urandom"],
            "character device",
        ),
        (
            vec!["fix", conf, "--config-file", "/dev/zero"],
            "character device",
        ),
        (vec!["check", fifo], "FIFO"),
        (
            vec!["probe", "--cacert", fifo, "https://127.0.0.1:9/"],
            "FIFO",
        ),
        (
            vec!["probe", "--cacert", "/dev/zero", "https://127.0.0.1:9/"],
            "character device",
        ),
        (vec!["probe", "--config", fifo], "FIFO"),
        (
            vec!["logs", "--config", fifo, "--access-log", "/dev/null"],
            "FIFO",
        ),
        (vec!["doctor", "--config", fifo], "FIFO"),
        (vec!["lab", "--config", fifo], "FIFO"),
        (
            vec!["lab", "--config", conf, "--backend-facts", fifo],
            "FIFO",
        ),
    ];
    for (args, what) in cases {
        let out = upkeep_bounded(&args, None);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(what), "{args:?}: {stderr}");
        assert!(
            stderr.contains(fifo) || stderr.contains("/dev/"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn an_endless_stdin_is_cut_at_the_limit_with_an_error() {
    let feed: Box<dyn FnOnce(std::process::ChildStdin) + Send> = Box::new(|mut pipe| {
        let block = vec![b'#'; 1 << 20];
        // Until upkeep closes the pipe; bounded in any case.
        for _ in 0..2048 {
            if pipe.write_all(&block).is_err() {
                return;
            }
        }
    });
    let out = upkeep_bounded(&["check", "-"], Some(feed));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("more than the 256 MiB"), "{stderr}");
}

#[test]
fn a_directory_include_fails_with_its_place_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("extra.conf")).unwrap();
    let conf = dir.path().join("nginx.conf");
    std::fs::write(&conf, "events {}\nhttp {\n    include extra.conf;\n}\n").unwrap();
    for format in ["human", "json", "sarif"] {
        let out = upkeep_bounded(&["check", "--format", format, conf.to_str().unwrap()], None);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{format}: {stderr}");
        assert!(
            stderr.contains(&format!("{}:3:5: ", conf.display())),
            "{format}: {stderr}"
        );
        assert!(stderr.contains("Is a directory"), "{stderr}");
    }
}

/// Runs `program args` as `nobody` when this test runs as root (as in CI),
/// else as the current user, who cannot read a mode-000 file either.
fn as_unprivileged(program: &Path, args: &[&str]) -> Output {
    let root = common::is_root();
    let mut cmd = if root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
            .arg(program);
        c
    } else {
        Command::new(program)
    };
    cmd.args(args).env("NO_COLOR", "1").output().unwrap()
}

#[test]
fn an_include_the_user_cannot_read_fails_like_nginx_t() {
    use std::os::unix::fs::PermissionsExt;
    let nginx = upkeep_nginx::NginxBinary::find(None).expect("nginx is not installed");
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let secret = dir.path().join("secret.conf");
    std::fs::write(&secret, "keepalive_timeout 5s;\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).unwrap();
    let conf = dir.path().join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "pid {}/nginx.pid;\nevents {{}}\nhttp {{\n    include secret.conf;\n}}\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let conf_s = conf.to_str().unwrap();
    let prefix = format!("{}/", dir.path().display());
    let nginx_out = as_unprivileged(
        &nginx.path,
        &["-t", "-q", "-p", &prefix, "-e", "/dev/null", "-c", conf_s],
    );
    let nginx_err = text(&nginx_out.stderr);
    assert!(!nginx_out.status.success(), "{nginx_err}");
    assert!(
        nginx_err.contains(&format!(
            "open() \"{}\" failed (13: Permission denied) in {conf_s}:4",
            secret.display()
        )),
        "{nginx_err}"
    );

    let out = as_unprivileged(Path::new(env!("CARGO_BIN_EXE_upkeep")), &["check", conf_s]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains(&format!("{conf_s}:4:5: ")), "{stderr}");
    assert!(stderr.contains("Permission denied"), "{stderr}");
}

#[test]
fn a_file_with_a_byte_order_mark_is_an_error_and_fix_leaves_it_alone() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("nginx.conf");
    let original = format!("\u{feff}{CONFIG}");
    std::fs::write(&conf, &original).unwrap();
    let conf_s = conf.to_str().unwrap();
    let out = upkeep_bounded(&["check", conf_s], None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("{conf_s}:1:1: ")), "{stderr}");
    assert!(stderr.contains("byte order mark"), "{stderr}");

    for args in [
        vec!["fix", conf_s],
        vec!["fix", "--write", "--no-nginx-test", conf_s],
    ] {
        let out = upkeep_bounded(&args, None);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        assert!(text(&out.stdout).is_empty(), "{}", text(&out.stdout));
    }
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), original);
}

#[test]
fn counts_and_times_beyond_what_nginx_takes_do_not_overflow_a_rule() {
    // nginx refuses counts above 2^63 - 1 (`invalid number`): `check` and
    // `fix` stop at the first one, as nginx -t does. R002's sum of pools and
    // C003's margin over the front's idle timeout panicked on them.
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("nginx.conf");
    let body = |count: &str| {
        format!("events {{ worker_connections {count}; }}\nhttp {{\n    upstream a {{ server 127.0.0.1:8000; keepalive {count}; }}\n    upstream b {{ server 127.0.0.1:8001; keepalive 9223372036854775807; }}\n    server {{\n        listen 127.0.0.1:80;\n        location /a {{ proxy_pass http://a; proxy_http_version 1.1; proxy_set_header Connection \"\"; }}\n        location /b {{ proxy_pass http://b; proxy_http_version 1.1; proxy_set_header Connection \"\"; }}\n    }}\n}}\n")
    };
    std::fs::write(&conf, body("18446744073709551615")).unwrap();
    let settings = dir.path().join("upkeep.toml");
    std::fs::write(&settings, "").unwrap();
    let conf = conf.to_str().unwrap();
    let settings = settings.to_str().unwrap();
    let run = |command: &str| {
        upkeep_bounded(
            &[
                command,
                conf,
                "--config-file",
                settings,
                "--front-idle",
                "18446744073709551s",
            ],
            None,
        )
    };
    for command in ["check", "fix"] {
        let out = run(command);
        let stderr = text(&out.stderr);
        assert!(!stderr.contains("panicked"), "{command}: {stderr}");
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        assert!(
            stderr.starts_with(&format!(
                "error: {conf}:1:29: invalid number \"18446744073709551615\""
            )),
            "{command}: {stderr}"
        );
    }
    // The largest counts nginx takes: judged, without overflow.
    std::fs::write(conf, body("9223372036854775807")).unwrap();
    for command in ["check", "fix"] {
        let out = run(command);
        let stderr = text(&out.stderr);
        assert!(!stderr.contains("panicked"), "{command}: {stderr}");
        assert_eq!(out.status.code(), Some(1), "{command}: {stderr}");
    }
    let out = upkeep_bounded(
        &["check", conf, "--config-file", settings, "--format", "json"],
        None,
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let r002 = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "R002")
        .unwrap_or_else(|| panic!("{report:#}"));
    // The exact sum, 2 * (2^63 - 1), doubled: more than nginx takes for
    // worker_connections, so the help does not ask for it.
    assert!(
        r002["message"]
            .as_str()
            .unwrap()
            .contains("(36893488147419103228 needed with their clients)"),
        "{r002:#}"
    );
    assert!(
        r002["help"]
            .as_str()
            .unwrap()
            .starts_with("lower `keepalive`: 36893488147419103228 is more than nginx takes"),
        "{r002:#}"
    );
    // Fixes write no value nginx refuses: `worker_rlimit_nofile` stops at
    // the largest count, and no `keepalive_timeout` can outlast a front
    // idling 18446744073709551s (C003 has no fix, only a help).
    let out = upkeep_bounded(
        &[
            "fix",
            conf,
            "--config-file",
            settings,
            "--front-idle",
            "18446744073709551s",
            "--write",
            "--no-nginx-test",
            "--unsafe-fixes",
        ],
        None,
    );
    assert!(
        !text(&out.stderr).contains("panicked"),
        "{}",
        text(&out.stderr)
    );
    let fixed = std::fs::read_to_string(conf).unwrap();
    assert!(
        fixed.contains("worker_rlimit_nofile 9223372036854775807;"),
        "{fixed}"
    );
    assert!(!fixed.contains("18446744073709551"), "{fixed}");
    let out = upkeep_bounded(&["check", conf, "--config-file", settings], None);
    assert_ne!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = upkeep_bounded(
        &[
            "check",
            conf,
            "--config-file",
            settings,
            "--front-idle",
            "18446744073709551s",
        ],
        None,
    );
    assert!(
        text(&out.stdout).contains(
            "shorten the front's idle timeout: nginx takes at most 9223372036854775807ms for `keepalive_timeout`"
        ),
        "{}",
        text(&out.stdout)
    );
}
