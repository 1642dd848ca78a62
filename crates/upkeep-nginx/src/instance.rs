use crate::binary::{with_trailing_slash, NginxBinary};
use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A throw-away nginx prefix: a temporary directory (removed on drop) with
/// `logs/` and the http temp directories nginx would otherwise create under
/// its compiled-in paths (/var/lib/nginx on Debian).
pub struct Prefix {
    dir: tempfile::TempDir,
}

impl Prefix {
    pub fn new() -> io::Result<Prefix> {
        Prefix::named("upkeep-nginx-")
    }

    /// A prefix whose directory name starts with `name` (the lab names its
    /// prefixes after its pid, to find them again after a SIGKILL).
    pub fn named(name: &str) -> io::Result<Prefix> {
        let dir = tempfile::Builder::new().prefix(name).tempdir()?;
        for sub in ["logs", "temp", "html"] {
            std::fs::create_dir_all(dir.path().join(sub))?;
        }
        // Worker processes run unprivileged when nginx starts as root; they
        // must be able to reach the prefix.
        set_mode(dir.path(), 0o755)?;
        Ok(Prefix { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn pid_file(&self) -> PathBuf {
        self.path().join("nginx.pid")
    }

    pub fn error_log(&self) -> PathBuf {
        self.path().join("logs/error.log")
    }

    pub fn access_log(&self) -> PathBuf {
        self.path().join("logs/access.log")
    }

    /// Writes `text` to `name` inside the prefix and returns its path.
    pub fn write(&self, name: &str, text: &str) -> io::Result<PathBuf> {
        let path = self.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text)?;
        Ok(path)
    }

    /// Directives for the `http` block that keep every temp file inside the
    /// prefix. (Main-context `pid` is supplied by [`NginxInstance::start`].)
    pub fn http_temp_paths(&self) -> String {
        let t = self.path().join("temp");
        let t = t.display();
        format!(
            "client_body_temp_path {t}/client_body;\n    proxy_temp_path {t}/proxy;\n    \
             fastcgi_temp_path {t}/fastcgi;\n    uwsgi_temp_path {t}/uwsgi;\n    scgi_temp_path {t}/scgi;\n"
        )
    }
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// A running nginx master (daemonized) started in a [`Prefix`]. Stopped on
/// drop through its pid file; if it will not stop, its whole process group
/// (master and workers) is killed.
pub struct NginxInstance {
    pid: i32,
    pid_file: PathBuf,
    binary: NginxBinary,
    prefix: PathBuf,
    conf: PathBuf,
    stopped: bool,
}

impl NginxInstance {
    /// Starts nginx with `conf`. The config must not set `pid` itself: the
    /// pid file is forced into the prefix with `-g`.
    pub fn start(binary: &NginxBinary, prefix: &Prefix, conf: &Path) -> io::Result<NginxInstance> {
        let pid_file = prefix.pid_file();
        let _ = std::fs::remove_file(&pid_file);
        let out = Command::new(&binary.path)
            .args(base_args(prefix.path(), conf, &prefix.error_log()))
            .arg("-g")
            .arg(format!("pid {};", pid_file.display()))
            .output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "nginx failed to start: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let pid = wait_for_pid(&pid_file, Duration::from_secs(10))?;
        wait_for_master_title(pid, Duration::from_secs(2));
        Ok(NginxInstance {
            pid,
            pid_file,
            binary: binary.clone(),
            prefix: prefix.path().to_path_buf(),
            conf: conf.to_path_buf(),
            stopped: false,
        })
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Sends SIGHUP (re-read the config) after checking it with `nginx -t`,
    /// so a broken config is reported instead of silently ignored.
    pub fn reload(&self) -> io::Result<()> {
        let scratch = tempfile::tempdir()?;
        let outcome = self
            .binary
            .test_config(&self.conf, &self.prefix, scratch.path())?;
        if !outcome.ok {
            return Err(io::Error::other(format!(
                "reload refused: {}",
                outcome.output.trim()
            )));
        }
        signal(self.pid, libc::SIGHUP)
    }

    /// Fast shutdown (SIGTERM), waiting up to 10 s, then SIGKILL to the
    /// process group.
    pub fn stop(&mut self) -> io::Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let _ = signal(self.pid, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if !process_is_running(self.pid) {
                let _ = std::fs::remove_file(&self.pid_file);
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: plain syscall; a negative pid addresses nginx's own
        // process group (the daemonized master calls setsid()).
        unsafe {
            libc::kill(-self.pid, libc::SIGKILL);
        }
        Err(io::Error::other(format!(
            "nginx (pid {}) did not stop within 10 s; killed",
            self.pid
        )))
    }
}

impl Drop for NginxInstance {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn base_args(prefix: &Path, conf: &Path, error_log: &Path) -> Vec<String> {
    vec![
        "-p".into(),
        with_trailing_slash(prefix),
        "-c".into(),
        conf.display().to_string(),
        "-e".into(),
        error_log.display().to_string(),
    ]
}

fn wait_for_pid(pid_file: &Path, limit: Duration) -> io::Result<i32> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(text) = std::fs::read_to_string(pid_file) {
            if let Ok(pid) = text.trim().parse::<i32>() {
                if pid > 0 {
                    return Ok(pid);
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "nginx wrote no pid file at {} within {:?}",
                    pid_file.display(),
                    limit
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// nginx writes its pid file before it renames itself `nginx: master
/// process …`; callers that tell a master by that title (doctor, watch)
/// must not see it in between. Best effort: with `master_process off` the
/// title never changes.
fn wait_for_master_title(pid: i32, limit: Duration) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let title = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if title.starts_with(b"nginx: master process") {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn signal(pid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: plain syscall with a pid read from our own pid file.
    if unsafe { libc::kill(pid, sig) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether process `pid` is running: it exists (signal 0 reaches it, or is
/// refused with EPERM because it belongs to another user) and is not a
/// zombie. A daemonized nginx master is a child of init, and an exited one
/// stays a zombie until init reaps it, which some inits do only every
/// second or so; its sockets and files are already closed by then, so
/// waiting for the reaping only slows every stop down.
pub fn process_is_running(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    let exists = unsafe { libc::kill(pid, 0) == 0 || *libc::__errno_location() == libc::EPERM };
    exists && !is_zombie(pid)
}

/// The state field of /proc/PID/stat is `Z` (it follows the command name,
/// which is in parentheses and may itself contain spaces or parentheses).
fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// A port on 127.0.0.1 that was free a moment ago (bind to port 0, read it,
/// release it). Racy by nature; callers retry on EADDRINUSE.
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exited_process_not_yet_reaped_is_not_running() {
        // SAFETY: the child only calls _exit, which is async-signal-safe.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            unsafe { libc::_exit(0) };
        }
        // Until it is reaped, the child is a zombie: kill(pid, 0) still
        // succeeds for it.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !is_zombie(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(is_zombie(pid));
        assert_eq!(unsafe { libc::kill(pid, 0) }, 0);
        assert!(!process_is_running(pid));
        let mut status = 0;
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(!process_is_running(pid));
        assert!(process_is_running(std::process::id() as i32));
    }
}
