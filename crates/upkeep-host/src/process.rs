//! The nginx processes: the master's and workers' open-file limits
//! (`/proc/PID/limits`), the workers themselves, and finding the master.
//!
//! nginx names its processes through their command line (`nginx: master
//! process /usr/sbin/nginx`, `nginx: worker process`, `nginx: cache manager
//! process`), which is how they are told apart here.

use std::io;
use std::path::{Path, PathBuf};

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

/// The title an nginx master gives itself: `nginx: master process ` and
/// then its original arguments joined by single spaces
/// (`ngx_setproctitle`, src/os/unix/ngx_setproctitle.c).
const MASTER_TITLE: &str = "nginx: master process ";

/// How a running nginx master was started, read back from its process
/// title: the options that decide which configuration it runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MasterCommand {
    /// `argv[0]` as started (`/usr/sbin/nginx`, or `nginx` from PATH).
    pub program: String,
    /// `-p`: the prefix, as given.
    pub prefix: Option<String>,
    /// `-c`: the configuration file, as given (relative to the prefix).
    pub conf: Option<String>,
    /// `-e`: the error log used before the configuration is read.
    pub error_log: Option<String>,
    /// `-g`: global directives added to the configuration.
    pub globals: Option<String>,
}

impl MasterCommand {
    /// Reads the options out of a master's title. The title joined the
    /// arguments with spaces, so their boundaries are gone: a value runs
    /// until the next word that starts with `-` (a path may hold spaces),
    /// and a `-g` value until a word ending in `;` followed by an option
    /// or the end (`-g 'worker_priority -5;'` holds a dash). nginx takes a
    /// value glued to its option (`-p/srv/`) or in the next argument, and
    /// several flags in one word (`-tq`), as `ngx_get_options` does.
    pub fn parse_title(title: &str) -> Option<MasterCommand> {
        let args = title.trim_end_matches('\0').strip_prefix(MASTER_TITLE)?;
        let words: Vec<&str> = args.split(' ').collect();
        let mut cmd = MasterCommand {
            program: words.first()?.to_string(),
            ..MasterCommand::default()
        };
        let mut i = 1;
        while i < words.len() {
            let word = words[i];
            i += 1;
            let Some(flags) = word.strip_prefix('-') else {
                continue;
            };
            for (at, option) in flags.char_indices() {
                if !matches!(option, 'p' | 'c' | 'e' | 'g' | 's') {
                    continue;
                }
                let glued = &flags[at + 1..];
                let mut value: Vec<&str> = Vec::new();
                if !glued.is_empty() {
                    value.push(glued);
                } else if i < words.len() {
                    value.push(words[i]);
                    i += 1;
                }
                while i < words.len() {
                    let joined_ends_statement = value.last().is_some_and(|w| w.ends_with(';'));
                    let next_is_option = words[i].starts_with('-');
                    let done = if option == 'g' {
                        joined_ends_statement && next_is_option
                    } else {
                        next_is_option
                    };
                    if done {
                        break;
                    }
                    value.push(words[i]);
                    i += 1;
                }
                let value = Some(value.join(" ")).filter(|v| !v.is_empty());
                match option {
                    'p' => cmd.prefix = value,
                    'c' => cmd.conf = value,
                    'e' => cmd.error_log = value,
                    'g' => cmd.globals = value,
                    _ => {}
                }
                break;
            }
        }
        Some(cmd)
    }

    /// The prefix nginx runs with: `-p` (a relative one against the
    /// master's working directory, which nginx never changes), else the
    /// compiled-in one. Always ends in `/`, as nginx makes it.
    pub fn effective_prefix(&self, cwd: Option<&Path>, built: Option<&str>) -> Option<PathBuf> {
        let raw = match &self.prefix {
            Some(p) if p.starts_with('/') => PathBuf::from(p),
            Some(p) => cwd?.join(p),
            None => PathBuf::from(built?),
        };
        let mut text = raw.into_os_string().into_string().ok()?;
        if !text.ends_with('/') {
            text.push('/');
        }
        Some(PathBuf::from(text))
    }

    /// The configuration file nginx reads: `-c`, else the compiled-in
    /// `--conf-path`; a relative one is relative to the prefix
    /// (`ngx_process_options` → `ngx_conf_full_name(cycle, …, 0)`).
    pub fn effective_conf(
        &self,
        prefix: Option<&Path>,
        built_conf: Option<&str>,
    ) -> Option<PathBuf> {
        let conf = self.conf.as_deref().or(built_conf)?;
        if conf.starts_with('/') {
            Some(PathBuf::from(conf))
        } else {
            Some(prefix?.join(conf))
        }
    }

    /// The arguments that make `nginx -T` read what this master reads:
    /// its `-p` (made absolute), `-c`, `-e` and `-g`.
    pub fn dump_args(&self, prefix: Option<&Path>) -> Vec<String> {
        let mut args = Vec::new();
        if let (Some(_), Some(p)) = (&self.prefix, prefix) {
            args.extend(["-p".to_string(), p.display().to_string()]);
        }
        for (flag, value) in [
            ("-c", &self.conf),
            ("-e", &self.error_log),
            ("-g", &self.globals),
        ] {
            if let Some(v) = value {
                args.extend([flag.to_string(), v.clone()]);
            }
        }
        args
    }
}

/// The raw process title: `/proc/PID/cmdline` up to its first NUL (a
/// master's title is one string padded with NULs).
fn title(pid: i32) -> io::Result<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline"))?;
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    Ok(String::from_utf8_lossy(&raw[..end]).into_owned())
}

/// A running nginx master, checked to be one, and how it was started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunningMaster {
    pub pid: i32,
    pub command: MasterCommand,
    /// The executable (`/proc/PID/exe`), when readable and still there.
    pub exe: Option<PathBuf>,
    /// The working directory (`/proc/PID/cwd`), for a relative `-p`.
    pub cwd: Option<PathBuf>,
    /// Whether it sees the same files as we do: `false` when it runs in
    /// another mount namespace (a container), where its paths are not ours.
    pub same_mount_namespace: bool,
}

impl RunningMaster {
    /// Reads process `pid`, refusing one that is not an nginx master: a
    /// worker (naming its master), another program, or no process at all.
    pub fn read(pid: i32) -> Result<RunningMaster, String> {
        if pid <= 0 {
            return Err(format!("{pid} is not a process id"));
        }
        let title = title(pid).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => format!("no process {pid} is running"),
            _ => format!("process {pid}: cannot read /proc/{pid}/cmdline: {e}"),
        })?;
        let command = match role_of_cmdline(&title) {
            Role::Master => MasterCommand::parse_title(&title),
            _ => None,
        };
        let Some(command) = command else {
            let what = match role_of_cmdline(&title) {
                Role::Worker | Role::ShuttingDownWorker => "an nginx worker process".to_string(),
                Role::CacheManager | Role::CacheLoader => "an nginx cache process".to_string(),
                _ if title.is_empty() => "a kernel thread or a zombie".to_string(),
                _ => format!("`{}`", title.chars().take(120).collect::<String>()),
            };
            let parent = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| parse_stat_ppid(&s))
                .filter(|&pp| self::title(pp).is_ok_and(|t| role_of_cmdline(&t) == Role::Master));
            return Err(match parent {
                Some(master) => format!(
                    "process {pid} is {what}, not an nginx master process; its master is {master}"
                ),
                None => format!(
                    "process {pid} is {what}, not an nginx master process (`nginx: master process …`)"
                ),
            });
        };
        let link = |what: &str| std::fs::read_link(format!("/proc/{pid}/{what}")).ok();
        let ours = std::fs::read_link("/proc/self/ns/mnt").ok();
        Ok(RunningMaster {
            pid,
            command,
            exe: link("exe").filter(|p| p.is_file()),
            cwd: link("cwd"),
            same_mount_namespace: match (ours, link("ns/mnt")) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            },
        })
    }

    /// The binary to ask (`nginx -V`, `nginx -T`): the master's own
    /// executable, else its `argv[0]` when that is a path that exists.
    pub fn binary(&self) -> Option<PathBuf> {
        self.exe.clone().or_else(|| {
            let p = Path::new(&self.command.program);
            (p.is_absolute() && p.is_file()).then(|| p.to_path_buf())
        })
    }

    pub fn effective_prefix(&self, built: Option<&str>) -> Option<PathBuf> {
        self.command.effective_prefix(self.cwd.as_deref(), built)
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

    #[test]
    fn reads_how_a_master_was_started() {
        let c = MasterCommand::parse_title(
            "nginx: master process /usr/sbin/nginx -p /tmp/lc-t -c site.conf -e /tmp/lc-t/logs/error.log -g pid nginx.pid; worker_rlimit_nofile 999;",
        )
        .unwrap();
        assert_eq!(c.program, "/usr/sbin/nginx");
        assert_eq!(c.prefix.as_deref(), Some("/tmp/lc-t"));
        assert_eq!(c.conf.as_deref(), Some("site.conf"));
        assert_eq!(c.error_log.as_deref(), Some("/tmp/lc-t/logs/error.log"));
        assert_eq!(
            c.globals.as_deref(),
            Some("pid nginx.pid; worker_rlimit_nofile 999;")
        );
        assert_eq!(
            c.effective_prefix(None, Some("/usr/share/nginx")),
            Some(PathBuf::from("/tmp/lc-t/"))
        );
        let prefix = c.effective_prefix(None, None).unwrap();
        assert_eq!(
            c.effective_conf(Some(&prefix), Some("/etc/nginx/nginx.conf")),
            Some(PathBuf::from("/tmp/lc-t/site.conf"))
        );
        assert_eq!(
            c.dump_args(Some(&prefix)),
            [
                "-p",
                "/tmp/lc-t/",
                "-c",
                "site.conf",
                "-e",
                "/tmp/lc-t/logs/error.log",
                "-g",
                "pid nginx.pid; worker_rlimit_nofile 999;"
            ]
        );
    }

    #[test]
    fn reads_glued_values_spaces_in_paths_and_defaults() {
        let c = MasterCommand::parse_title(
            "nginx: master process nginx -c/srv/my site/nginx.conf -g worker_priority -5; daemon on;\0\0",
        )
        .unwrap();
        assert_eq!(c.program, "nginx");
        assert_eq!(c.conf.as_deref(), Some("/srv/my site/nginx.conf"));
        assert_eq!(c.globals.as_deref(), Some("worker_priority -5; daemon on;"));
        assert_eq!(c.prefix, None);
        // No -p, no -c: the compiled-in paths.
        let d = MasterCommand::parse_title("nginx: master process /usr/sbin/nginx").unwrap();
        let prefix = d.effective_prefix(None, Some("/usr/share/nginx")).unwrap();
        assert_eq!(prefix, PathBuf::from("/usr/share/nginx/"));
        assert_eq!(
            d.effective_conf(Some(&prefix), Some("/etc/nginx/nginx.conf")),
            Some(PathBuf::from("/etc/nginx/nginx.conf"))
        );
        assert!(d.dump_args(Some(&prefix)).is_empty());
        // A relative -p is relative to where the master was started.
        let r = MasterCommand::parse_title("nginx: master process ./nginx -qp run -c conf/n.conf")
            .unwrap();
        let prefix = r
            .effective_prefix(Some(Path::new("/home/u")), None)
            .unwrap();
        assert_eq!(prefix, PathBuf::from("/home/u/run/"));
        assert_eq!(
            r.effective_conf(Some(&prefix), None),
            Some(PathBuf::from("/home/u/run/conf/n.conf"))
        );
        assert_eq!(MasterCommand::parse_title("nginx: worker process"), None);
    }

    #[test]
    fn refuses_what_is_not_an_nginx_master() {
        let me = std::process::id() as i32;
        let err = RunningMaster::read(me).unwrap_err();
        assert!(err.contains("not an nginx master process"), "{err}");
        assert!(err.contains(&format!("process {me} is `")), "{err}");
        let err = RunningMaster::read(0).unwrap_err();
        assert!(err.contains("not a process id"), "{err}");
        let err = RunningMaster::read(i32::MAX).unwrap_err();
        assert_eq!(err, format!("no process {} is running", i32::MAX));
    }
}
