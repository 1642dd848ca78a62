//! What a lab run leaves behind when it is killed without a chance to clean
//! up (SIGKILL, a crash, the OOM killer): nginx keeps running (it is a
//! daemon), its private prefix stays in the temp directory, and the network
//! namespace of the port-exhaustion scenario stays in /run/netns.
//!
//! Everything a lab run creates carries its pid in its name
//! (`upkeep-lab-PID-…`), so the next run can tell what belonged to a lab
//! process that is gone and remove it: nginx stopped through the pid file in
//! its prefix (only when that pid is an nginx master started with that very
//! prefix), the prefix removed, the namespace deleted.
//!
//! Only directories owned by the user running the lab are touched, never
//! through a symbolic link; a pid that is alive again (reused by another
//! process) keeps its leftovers, which is the safe mistake.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// How everything a lab run creates is named: `upkeep-lab-PID-`.
pub const NAME_PREFIX: &str = "upkeep-lab-";

/// Where `ip netns` keeps named namespaces.
const NETNS_DIR: &str = "/run/netns";

/// The name prefix of this process's temp directories and namespaces.
pub fn own_name_prefix() -> String {
    format!("{NAME_PREFIX}{}-", std::process::id())
}

/// The pid in `upkeep-lab-PID-…`.
fn owner_of(name: &str) -> Option<i32> {
    let rest = name.strip_prefix(NAME_PREFIX)?;
    let (pid, _) = rest.split_once('-')?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Running, not a zombie waiting to be reaped (nginx's daemonized master
/// is reaped by init, sometimes a second or more after it exits).
fn alive(pid: i32) -> bool {
    upkeep_nginx::process_is_running(pid)
}

fn is_dead_lab(name: &str) -> Option<i32> {
    let pid = owner_of(name)?;
    (pid > 0 && pid as u32 != std::process::id() && !alive(pid)).then_some(pid)
}

/// Finds the leftovers of lab processes that are no longer running and
/// removes them. Returns one line per thing done (or that could not be).
pub fn clean() -> Vec<String> {
    let mut said = Vec::new();
    clean_dirs(&std::env::temp_dir(), &mut said);
    clean_namespaces(&mut said);
    said
}

fn clean_dirs(temp: &Path, said: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(temp) else {
        return;
    };
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(owner) = is_dead_lab(&name) else {
            continue;
        };
        let dir = entry.path();
        // Not through a link, and only our own: the temp directory is
        // shared with every user.
        let Ok(meta) = std::fs::symlink_metadata(&dir) else {
            continue;
        };
        if !meta.is_dir() || meta.uid() != me {
            continue;
        }
        if let Some(line) = stop_nginx_of(&dir, owner) {
            said.push(line);
        }
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => said.push(format!(
                "removed {}, left by lab process {owner} (no longer running)",
                dir.display()
            )),
            Err(e) => said.push(format!(
                "cannot remove {}, left by lab process {owner}: {e}",
                dir.display()
            )),
        }
    }
}

/// Stops the nginx whose pid file is in `prefix`, if it still runs and is
/// the nginx master started with that prefix.
fn stop_nginx_of(prefix: &Path, owner: i32) -> Option<String> {
    let pid_file = prefix.join("nginx.pid");
    // A regular file only: a FIFO planted there would block the read.
    if !std::fs::symlink_metadata(&pid_file).ok()?.is_file() {
        return None;
    }
    let text = std::fs::read_to_string(&pid_file).ok()?;
    let pid: i32 = text.trim().parse().ok().filter(|p| *p > 0)?;
    if !started_with_prefix(pid, prefix) {
        return None;
    }
    // SAFETY: plain syscalls on a pid checked above to be that nginx.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let how = if alive(pid) {
        // The daemonized master leads its own process group: workers too.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        "killed"
    } else {
        "stopped"
    };
    Some(format!(
        "{how} nginx {pid}, left running by lab process {owner} (no longer running)"
    ))
}

/// Whether `pid` is an nginx master whose title names `-p PREFIX/`.
fn started_with_prefix(pid: i32, prefix: &Path) -> bool {
    let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    let title = String::from_utf8_lossy(&raw[..end]);
    let wanted = format!(" -p {}/ ", prefix.display());
    title.starts_with("nginx: master process ") && title.contains(&wanted)
}

fn clean_namespaces(said: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(NETNS_DIR) else {
        return;
    };
    let names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    for name in names {
        let Some(owner) = is_dead_lab(&name) else {
            continue;
        };
        let out = Command::new("ip").args(["netns", "delete", &name]).output();
        said.push(match out {
            Ok(o) if o.status.success() => format!(
                "deleted network namespace {name}, left by lab process {owner} (no longer running)"
            ),
            Ok(o) => format!(
                "cannot delete network namespace {name}, left by lab process {owner}: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => format!("cannot delete network namespace {name}: cannot run `ip`: {e}"),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_owner_from_the_name() {
        assert_eq!(owner_of("upkeep-lab-1234-0"), Some(1234));
        assert_eq!(owner_of("upkeep-lab-1234-Xy12ab"), Some(1234));
        assert_eq!(owner_of("upkeep-lab-12x4-0"), None);
        assert_eq!(owner_of("upkeep-lab-1234"), None);
        assert_eq!(owner_of("upkeep-nginx-abc"), None);
        assert_eq!(is_dead_lab(&own_name_prefix()), None, "ourselves");
    }

    #[test]
    fn removes_a_dead_lab_s_directory_and_nothing_else() {
        let temp = tempfile::tempdir().unwrap();
        // A pid that cannot be running (above the kernel's pid_max limit).
        let dead = temp.path().join("upkeep-lab-2147483646-abc");
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join("nginx.pid"), "1\n").unwrap();
        let living = temp
            .path()
            .join(format!("upkeep-lab-{}-abc", std::process::id()));
        std::fs::create_dir(&living).unwrap();
        let other = temp.path().join("upkeep-nginx-abc");
        std::fs::create_dir(&other).unwrap();
        let mut said = Vec::new();
        clean_dirs(temp.path(), &mut said);
        assert!(!dead.exists());
        assert!(living.exists() && other.exists());
        // pid 1 is not an nginx master started in that prefix: left alone.
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].starts_with(&format!("removed {}", dead.display())));
    }
}
