//! What `/proc/PID` tells about a process that listens on a backend
//! address: its executable, its arguments (or the title it gave itself),
//! its environment and working directory.

use std::path::PathBuf;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessInfo {
    pub pid: i32,
    /// `/proc/PID/exe`, when readable (` (deleted)` kept if the binary was
    /// replaced).
    pub exe: Option<PathBuf>,
    /// The NUL-separated `/proc/PID/cmdline`. A process that rewrote its
    /// title (nginx, php-fpm, puma, unicorn, gunicorn with setproctitle)
    /// shows one element holding the whole title.
    pub argv: Vec<String>,
    /// `/proc/PID/environ`; empty when unreadable.
    pub env: Vec<(String, String)>,
    pub env_readable: bool,
    pub cwd: Option<PathBuf>,
    /// `/proc/PID/comm` (the first 15 bytes of the executable's name).
    pub comm: String,
    /// Other processes holding the same listening socket (workers).
    pub sharing: Vec<i32>,
}

impl ProcessInfo {
    pub fn read(pid: i32) -> Option<ProcessInfo> {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let argv = split_nul(&cmdline);
        let environ = std::fs::read(format!("/proc/{pid}/environ"));
        let env_readable = environ.is_ok();
        let env = environ
            .map(|raw| {
                split_nul(&raw)
                    .into_iter()
                    .filter_map(|kv| {
                        let (k, v) = kv.split_once('=')?;
                        Some((k.to_string(), v.to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(ProcessInfo {
            pid,
            exe: std::fs::read_link(format!("/proc/{pid}/exe")).ok(),
            argv,
            env,
            env_readable,
            cwd: std::fs::read_link(format!("/proc/{pid}/cwd")).ok(),
            comm: std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|c| c.trim().to_string())
                .unwrap_or_default(),
            sharing: Vec::new(),
        })
    }

    /// The command line as one string (how `ps` shows it).
    pub fn command(&self) -> String {
        self.argv.join(" ")
    }

    /// The executable's file name (`python3.11`, `node`, `php-fpm8.2`).
    pub fn exe_name(&self) -> String {
        self.exe
            .as_ref()
            .and_then(|p| p.file_name())
            .map(|n| {
                n.to_string_lossy()
                    .trim_end_matches(" (deleted)")
                    .to_string()
            })
            .unwrap_or_else(|| self.comm.clone())
    }

    pub fn env(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A path named by the process, relative to its working directory.
    pub fn resolve(&self, path: &str) -> PathBuf {
        let p = PathBuf::from(path);
        if p.is_absolute() {
            return p;
        }
        match &self.cwd {
            Some(cwd) => cwd.join(p),
            None => p,
        }
    }

    /// The path to read the process's files through: its own root
    /// (`/proc/PID/root`), so a process in a container is read in its
    /// mount namespace.
    pub fn in_root(&self, path: &std::path::Path) -> PathBuf {
        let root = PathBuf::from(format!("/proc/{}/root", self.pid));
        if same_mount_ns(self.pid) {
            return path.to_path_buf();
        }
        root.join(path.strip_prefix("/").unwrap_or(path))
    }
}

fn same_mount_ns(pid: i32) -> bool {
    match (
        std::fs::read_link("/proc/self/ns/mnt"),
        std::fs::read_link(format!("/proc/{pid}/ns/mnt")),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => true,
    }
}

fn split_nul(raw: &[u8]) -> Vec<String> {
    raw.split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// The value of option `names` in an argument list: `--opt V`, `--opt=V`,
/// and for one-dash short options `-kV` as well. The last one wins, as with
/// every argument parser these servers use.
pub fn option_value<'a>(args: &'a [String], names: &[&str]) -> Option<&'a str> {
    let mut found = None;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        for n in names {
            if a == *n {
                if let Some(v) = args.get(i + 1) {
                    found = Some(v.as_str());
                }
            } else if let Some(v) = a.strip_prefix(n).and_then(|r| r.strip_prefix('=')) {
                found = Some(v);
            } else if n.len() == 2 && !n.starts_with("--") && a.starts_with(n) && a.len() > 2 {
                found = Some(&a[2..]);
            }
        }
        i += 1;
    }
    found
}

/// Splits a shell-quoted string (`GUNICORN_CMD_ARGS`) into words: single
/// and double quotes and backslashes, no expansion.
pub fn shell_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut any = false;
    let mut chars = s.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                    any = true;
                }
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn reads_options_in_every_spelling() {
        let a = v(&[
            "gunicorn",
            "--keep-alive",
            "7",
            "-kgthread",
            "--threads=4",
            "app:app",
        ]);
        assert_eq!(option_value(&a, &["--keep-alive"]), Some("7"));
        assert_eq!(option_value(&a, &["-k", "--worker-class"]), Some("gthread"));
        assert_eq!(option_value(&a, &["--threads"]), Some("4"));
        assert_eq!(option_value(&a, &["--timeout"]), None);
        let last = v(&["x", "--keep-alive", "3", "--keep-alive=9"]);
        assert_eq!(option_value(&last, &["--keep-alive"]), Some("9"));
    }

    #[test]
    fn splits_shell_words() {
        assert_eq!(
            shell_words(r#"--keep-alive 7 --name "my app" -k 'gthread'"#),
            v(&["--keep-alive", "7", "--name", "my app", "-k", "gthread"])
        );
        assert!(shell_words("  ").is_empty());
    }

    #[test]
    fn reads_this_process() {
        let me = ProcessInfo::read(std::process::id() as i32).unwrap();
        assert!(!me.argv.is_empty());
        assert!(me.exe.is_some());
        assert!(me.env_readable);
    }
}
