//! Node.js: `server.keepAliveTimeout` is set in the program's code, so no
//! argument or file tells it; the default of the running Node.js version
//! (facts) stands for it, and the finding says so. The version comes from
//! the process's own binary (`--version`): releases with the keep-alive
//! buffer close idle sockets a second later than older ones
//! (upkeep-facts `node@VERSION`), and without a version the row that holds
//! for every release (`node`, 5 s) is used.

use super::{Recognition, Sourced};
use crate::backend_discovery::proc_info::ProcessInfo;

pub fn recognize(p: &ProcessInfo) -> Option<Recognition> {
    let exe = p.exe_name();
    if !matches!(exe.as_str(), "node" | "nodejs") && p.comm != "node" {
        return None;
    }
    let version = node_version(p);
    let profile = match &version {
        Some(v) => upkeep_facts::backend_profile(&format!("node@{v}"))?,
        None => upkeep_facts::backend_profile("node")?,
    };
    let mut r = Recognition::new("node", Some(profile.name));
    r.version = version;
    let ms = profile.idle_timeout_ms;
    let closes = ms
        .map(upkeep_facts::describe_duration)
        .unwrap_or_else(|| "none".into());
    let which = match &r.version {
        Some(v) => format!("Node.js {v} (from its binary's --version)"),
        None => "Node.js (version unknown: its binary did not answer --version)".to_string(),
    };
    r.idle_timeout_ms = Some(Sourced::new(
        ms,
        format!(
            "{which} closes idle sockets after {closes} by default, profile {}; the program can set another keepAliveTimeout in its code, which cannot be read from outside",
            profile.name
        ),
    ));
    r.notes.push(format!(
        "script: {}",
        p.argv.get(1..).map(|a| a.join(" ")).unwrap_or_default()
    ));
    Some(r.with_profile_defaults())
}

/// `EXE --version` of the process's own binary (through /proc/PID/exe, so
/// the same file even if it was replaced on disk), bounded to 2 s.
fn node_version(p: &ProcessInfo) -> Option<String> {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let exe = format!("/proc/{}/exe", p.pid);
    let mut child = Command::new(&exe)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    let out = child.wait_with_output().ok()?;
    let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (v.starts_with('v') && v.len() < 32).then_some(v)
}
