//! Open-file headroom of the nginx master and its workers: the soft
//! RLIMIT_NOFILE (`/proc/PID/limits`) against the descriptors open now
//! (the entries of `/proc/PID/fd`).
//!
//! Every client connection, every upstream connection (idle pooled ones
//! included) and every open log or cached file takes a descriptor of the
//! worker that holds it; at the limit nginx logs "(24: Too many open
//! files)" and refuses connections (facts/signatures.tsv,
//! `too-many-open-files`). Reading another user's `/proc/PID/fd` needs
//! CAP_SYS_PTRACE (or being that user, or root).

use std::io;

use crate::process::{read_nofile, Processes};

/// One process: descriptors open and its soft limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessFiles {
    pub pid: i32,
    pub open: u64,
    /// `None`: unlimited.
    pub soft_limit: Option<u64>,
}

impl ProcessFiles {
    /// Descriptors left before the limit; `None` when unlimited.
    pub fn headroom(&self) -> Option<u64> {
        self.soft_limit.map(|l| l.saturating_sub(self.open))
    }
}

/// The master and the worker closest to its limit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenFiles {
    pub master: Option<ProcessFiles>,
    /// The current worker with the least headroom (the busiest, when all
    /// have the same limit).
    pub tightest_worker: Option<ProcessFiles>,
    /// Current workers (not those shutting down after a reload).
    pub workers: u64,
    /// Worker pids, sorted: a new set means nginx reloaded.
    pub worker_pids: Vec<i32>,
}

/// Descriptors open in process `pid`.
pub fn count_open(pid: i32) -> io::Result<u64> {
    let path = format!("/proc/{pid}/fd");
    let dir =
        std::fs::read_dir(&path).map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))?;
    Ok(dir.count() as u64)
}

fn process_files(pid: i32) -> io::Result<ProcessFiles> {
    Ok(ProcessFiles {
        pid,
        open: count_open(pid)?,
        soft_limit: read_nofile(pid)?.soft,
    })
}

/// Reads the master `master` and its workers. The error is for the master
/// itself being gone; a worker that cannot be read is left out (its
/// problem is returned with the rest).
pub fn read(master: i32) -> io::Result<(OpenFiles, Vec<String>)> {
    let procs = Processes::read(master)?;
    let mut problems = Vec::new();
    let master_files = process_files(master)
        .map_err(|e| problems.push(e.to_string()))
        .ok();
    let mut tightest: Option<ProcessFiles> = None;
    let mut worker_pids: Vec<i32> = procs.workers.iter().map(|(pid, _)| *pid).collect();
    worker_pids.sort_unstable();
    for &pid in &worker_pids {
        match process_files(pid) {
            Ok(w) => {
                let room = w.headroom().unwrap_or(u64::MAX);
                if tightest.is_none_or(|t| room < t.headroom().unwrap_or(u64::MAX)) {
                    tightest = Some(w);
                }
            }
            // A worker that exited meanwhile (a reload) is not a problem.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => problems.push(e.to_string()),
        }
    }
    Ok((
        OpenFiles {
            master: master_files,
            tightest_worker: tightest,
            workers: worker_pids.len() as u64,
            worker_pids,
        },
        problems,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_our_own_descriptors_under_our_limit() {
        let me = std::process::id() as i32;
        let before = count_open(me).unwrap();
        let extra: Vec<std::fs::File> = (0..5)
            .map(|_| std::fs::File::open("/proc/self/limits").unwrap())
            .collect();
        let after = count_open(me).unwrap();
        // Other test threads may open files meanwhile: at least ours.
        assert!(after >= before + 5, "{before} -> {after}");
        drop(extra);
        let p = process_files(me).unwrap();
        if let Some(limit) = p.soft_limit {
            assert_eq!(p.headroom(), Some(limit.saturating_sub(p.open)));
        }
        assert!(read(i32::MAX).is_err(), "no such process");
    }
}
