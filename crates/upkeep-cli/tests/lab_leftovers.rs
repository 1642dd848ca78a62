//! A lab killed with SIGKILL cannot clean up: its nginx keeps running, its
//! prefix stays in the temp directory and its network namespace in
//! /run/netns. The next lab run removes them and says so. (A test binary of
//! its own: no other lab run of these tests can clean up first.)

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::text;
use upkeep_nginx::NginxBinary;

/// Running, not a zombie waiting to be reaped (nginx's daemonized master
/// is reaped by init, sometimes a second or more after it exits).
fn alive(pid: i32) -> bool {
    upkeep_nginx::process_is_running(pid)
}

fn namespaces() -> String {
    Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| text(&o.stdout))
        .unwrap_or_default()
}

/// Whatever happens, the leftovers of the killed run go at the end.
struct CleanUp;

impl Drop for CleanUp {
    fn drop(&mut self) {
        upkeep_lab::leftovers::clean();
    }
}

/// Starts `upkeep lab --scenario NAME` for a minute and kills it (SIGKILL)
/// once its nginx runs. Its pid and the lines it printed, or `None` when
/// the scenario cannot run here.
fn kill_a_lab_mid_run(scenario: &str) -> Option<(i32, Vec<String>)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(["lab", "--scenario", scenario, "--duration", "60s"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut lines = Vec::new();
    let started = loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => {
                let traffic = line.contains("before: traffic:");
                lines.push(line);
                if traffic {
                    break true;
                }
            }
            Err(_) => break false,
        }
    };
    let pid = child.id() as i32;
    // SAFETY: killing our own child.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    child.wait().unwrap();
    if !started {
        eprintln!("{scenario} did not start: {lines:?}");
        return None;
    }
    Some((pid, lines))
}

#[test]
fn the_next_run_removes_what_a_killed_run_left() {
    if NginxBinary::find(None).is_none() {
        eprintln!("SKIPPED: no nginx binary found (install Debian's nginx)");
        return;
    }
    let _cleanup = CleanUp;
    // The namespace scenario when this host allows one (root), else a
    // loopback one: nginx and its prefix are left either way.
    let (killed, lines) = kill_a_lab_mid_run("port-exhaustion")
        .or_else(|| kill_a_lab_mid_run("no-pool"))
        .expect("a lab run started");
    let namespace = lines.iter().find_map(|l| {
        l.split_whitespace()
            .find(|w| w.starts_with(&format!("upkeep-lab-{killed}-")))
            .map(str::to_string)
    });
    if namespace.is_none() {
        eprintln!("note: no network namespace here; checking nginx and its prefix only");
    }

    // What it left: a running nginx in a prefix named after it.
    let own = format!("upkeep-lab-{killed}-");
    let prefix = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name().unwrap().to_string_lossy().starts_with(&own)
                && p.join("nginx.pid").is_file()
        })
        .expect("the killed run's prefix");
    let nginx: i32 = std::fs::read_to_string(prefix.join("nginx.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(nginx), "nginx {nginx} should have outlived the lab");
    if let Some(ns) = &namespace {
        assert!(namespaces().contains(ns.as_str()));
    }

    // The next run cleans up and says so.
    let out = Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(["lab", "--scenario", "connection-close", "--duration", "1s"])
        .args(["--format", "json"])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{stderr}\n{}",
        text(&out.stdout)
    );
    assert!(
        stderr.contains(&format!(
            "lab: stopped nginx {nginx}, left running by lab process {killed} (no longer running)"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "lab: removed {}, left by lab process {killed} (no longer running)",
            prefix.display()
        )),
        "{stderr}"
    );
    assert!(!alive(nginx), "nginx {nginx} still running");
    assert!(!prefix.exists(), "{} still there", prefix.display());
    if let Some(ns) = &namespace {
        assert!(
            stderr.contains(&format!(
                "lab: deleted network namespace {ns}, left by lab process {killed} (no longer running)"
            )),
            "{stderr}"
        );
        assert!(!namespaces().contains(ns.as_str()), "{ns} still there");
    }
}
