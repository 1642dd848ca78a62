//! The nginx processes: the master's and workers' open-file limits
//! (`/proc/PID/limits`), the workers themselves, and finding the master.
//!
//! nginx names its processes through their command line (`nginx: master
//! process /usr/sbin/nginx`, `nginx: worker process`, `nginx: cache manager
//! process`), which is how they are told apart here.

use std::io;
use std::path::Path;

/// RLIMIT_NOFILE of a process; `None` is "unlimited".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NofileLimit {
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}

/// The "Max open files" row of `/proc/PID/limits`.
pub fn parse_limits(text: &str) -> Option<NofileLimit> {
    let row = text
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))?;
    let mut fields = row.split_whitespace();
    let value = |v: &str| -> Option<Option<u64>> {
        if v == "unlimited" {
            Some(None)
        } else {
            v.parse().ok().map(Some)
        }
    };
    Some(NofileLimit {
        soft: value(fields.next()?)?,
        hard: value(fields.next()?)?,
    })
}

pub fn read_nofile(pid: i32) -> io::Result<NofileLimit> {
    let path = format!("/proc/{pid}/limits");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))?;
    parse_limits(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{path}: no \"Max open files\" row"),
        )
    })
}

/// What an nginx process is, from its command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Master,
    Worker,
    /// `nginx: worker process is shutting down` (an old worker after a
    /// reload, still serving its connections).
    ShuttingDownWorker,
    CacheManager,
    CacheLoader,
    Other,
}

pub fn role_of_cmdline(cmdline: &str) -> Role {
    let c = cmdline.trim_end_matches('\0');
    if c.starts_with("nginx: master process") {
        Role::Master
    } else if c.starts_with("nginx: worker process is shutting down") {
        Role::ShuttingDownWorker
    } else if c.starts_with("nginx: worker process") {
        Role::Worker
    } else if c.starts_with("nginx: cache manager process") {
        Role::CacheManager
    } else if c.starts_with("nginx: cache loader process") {
        Role::CacheLoader
    } else {
        Role::Other
    }
}

pub fn cmdline(pid: i32) -> io::Result<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline"))?;
    Ok(String::from_utf8_lossy(&raw)
        .replace('\0', " ")
        .trim()
        .to_string())
}

/// The parent pid field of `/proc/PID/stat` (the command name in
/// parentheses may itself hold spaces and parentheses).
pub fn parse_stat_ppid(stat: &str) -> Option<i32> {
    let after = &stat[stat.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    let _state = fields.next()?;
    fields.next()?.parse().ok()
}

/// The children of `pid`: `/proc/PID/task/PID/children` when the kernel
/// has it, else a walk over `/proc/*/stat`.
pub fn children(pid: i32) -> Vec<i32> {
    if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")) {
        return text
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
    }
    all_pids()
        .into_iter()
        .filter(|&p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| parse_stat_ppid(&s))
                == Some(pid)
        })
        .collect()
}

fn all_pids() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// The nginx master and what it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Processes {
    pub master: i32,
    pub master_nofile: Option<NofileLimit>,
    /// Current workers (not those shutting down after a reload), with their
    /// limits where readable.
    pub workers: Vec<(i32, Option<NofileLimit>)>,
    pub shutting_down: usize,
    /// Errors met while reading (permission denied on another user's
    /// `/proc/PID/limits`, …).
    pub problems: Vec<String>,
}

impl Processes {
    pub fn read(master: i32) -> io::Result<Processes> {
        if !Path::new(&format!("/proc/{master}")).exists() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no process {master}"),
            ));
        }
        let mut problems = Vec::new();
        let master_nofile = match read_nofile(master) {
            Ok(l) => Some(l),
            Err(e) => {
                problems.push(e.to_string());
                None
            }
        };
        let mut workers = Vec::new();
        let mut shutting_down = 0;
        for child in children(master) {
            match cmdline(child).map(|c| role_of_cmdline(&c)) {
                Ok(Role::Worker) => {
                    let limit = read_nofile(child).map_err(|e| problems.push(e.to_string()));
                    workers.push((child, limit.ok()));
                }
                Ok(Role::ShuttingDownWorker) => shutting_down += 1,
                _ => {}
            }
        }
        Ok(Processes {
            master,
            master_nofile,
            workers,
            shutting_down,
            problems,
        })
    }

    /// The lowest soft open-file limit among the workers, when any was read.
    pub fn worker_soft_nofile(&self) -> Option<Option<u64>> {
        let limits: Vec<Option<u64>> = self
            .workers
            .iter()
            .filter_map(|(_, l)| l.map(|l| l.soft))
            .collect();
        // `None` (unlimited) is the largest.
        limits.into_iter().min_by_key(|l| l.unwrap_or(u64::MAX))
    }
}

/// Finds the running nginx master: the pid in `pid_file` if that process
/// is an nginx master, else the only `nginx: master process` on the host.
pub fn find_master(pid_file: Option<&Path>) -> Result<i32, String> {
    if let Some(path) = pid_file {
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Ok(pid) = text.trim().parse::<i32>() {
                if cmdline(pid).is_ok_and(|c| role_of_cmdline(&c) == Role::Master) {
                    return Ok(pid);
                }
            }
        }
    }
    let masters: Vec<i32> = all_pids()
        .into_iter()
        .filter(|&p| cmdline(p).is_ok_and(|c| role_of_cmdline(&c) == Role::Master))
        .collect();
    match masters.as_slice() {
        [one] => Ok(*one),
        [] => Err(match pid_file {
            Some(p) => format!(
                "no running nginx master found (pid file {}, and no `nginx: master process` on this host)",
                p.display()
            ),
            None => "no running nginx master found (no `nginx: master process` on this host)".into(),
        }),
        many => Err(format!(
            "{} nginx masters run on this host (pids {}); choose one with --pid",
            many.len(),
            many.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // /proc/PID/limits of an nginx master on Debian 12.
    const LIMITS: &str =
        "Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max file size             unlimited            unlimited            bytes     
Max processes             63499                63499                processes 
Max open files            1024                 524288               files     
Max locked memory         8388608              8388608              bytes     
";

    #[test]
    fn reads_the_open_files_row() {
        assert_eq!(
            parse_limits(LIMITS),
            Some(NofileLimit {
                soft: Some(1024),
                hard: Some(524288)
            })
        );
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(
            parse_limits(unlimited),
            Some(NofileLimit {
                soft: None,
                hard: None
            })
        );
        assert_eq!(
            parse_limits("Max cpu time unlimited unlimited seconds\n"),
            None
        );
        assert_eq!(parse_limits("Max open files  lots  1\n"), None);
    }

    #[test]
    fn tells_nginx_processes_apart() {
        assert_eq!(
            role_of_cmdline("nginx: master process /usr/sbin/nginx -g daemon on;\0"),
            Role::Master
        );
        assert_eq!(role_of_cmdline("nginx: worker process\0\0\0"), Role::Worker);
        assert_eq!(
            role_of_cmdline("nginx: worker process is shutting down"),
            Role::ShuttingDownWorker
        );
        assert_eq!(
            role_of_cmdline("nginx: cache manager process"),
            Role::CacheManager
        );
        assert_eq!(role_of_cmdline("/usr/bin/python3 app.py"), Role::Other);
    }

    #[test]
    fn reads_ppid_past_odd_command_names() {
        assert_eq!(
            parse_stat_ppid("4242 (nginx) S 4241 4241 4241 0 -1 4194624 0"),
            Some(4241)
        );
        assert_eq!(parse_stat_ppid("7 (a) b) (c) R 1 7 7 0"), Some(1));
        assert_eq!(parse_stat_ppid("garbage"), None);
    }

    #[test]
    fn reads_our_own_limits() {
        let l = read_nofile(std::process::id() as i32).unwrap();
        assert!(l.soft.is_none() || l.soft > Some(0));
    }
}
