//! `nginx -t` on the written configuration, in a private prefix, stoppable:
//! a slow `nginx -t` (resolving names, loading many certificates) must not
//! keep a Ctrl-C from rolling the files back.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Why `nginx -t` did not accept the configuration.
#[derive(Debug)]
pub enum NginxTestError {
    /// nginx ran and rejected it (its output), or could not be run.
    Failed(String),
    /// `stop` said so; nginx was killed.
    Stopped,
}

/// `nginx -t` on the configuration whose main file is `main_conf`, in a
/// private prefix (a fresh temporary directory, removed on return), with the
/// error log redirected there (`-e`), so that nothing of a running nginx is
/// touched: `nginx -t` never signals a master, and only opens its pid file
/// without writing it. Includes resolve as nginx resolves them, relative to
/// the main file's directory. `Err` carries nginx's own output.
pub fn nginx_test(binary: &upkeep_nginx::NginxBinary, main_conf: &Path) -> Result<(), String> {
    nginx_test_until(binary, main_conf, &|| false).map_err(|e| match e {
        NginxTestError::Failed(output) => output,
        NginxTestError::Stopped => "stopped".to_string(),
    })
}

/// [`nginx_test`], checking `stop` every few milliseconds; when it says so,
/// nginx (and anything it started) is killed and the prefix removed.
pub fn nginx_test_until(
    binary: &upkeep_nginx::NginxBinary,
    main_conf: &Path,
    stop: &dyn Fn() -> bool,
) -> Result<(), NginxTestError> {
    let prefix = upkeep_nginx::Prefix::new().map_err(|e| {
        NginxTestError::Failed(format!("cannot create a private nginx prefix: {e}"))
    })?;
    let conf = std::fs::canonicalize(main_conf)
        .map_err(|e| NginxTestError::Failed(format!("{}: {e}", main_conf.display())))?;
    let mut prefix_arg = prefix.path().display().to_string();
    prefix_arg.push('/'); // nginx joins the prefix and relative paths as they are
    let mut child = Command::new(&binary.path)
        .arg("-t")
        .arg("-q")
        .arg("-p")
        .arg(&prefix_arg)
        .arg("-c")
        .arg(&conf)
        .arg("-e")
        .arg(prefix.path().join("error.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Its own process group, so that it and whatever it runs can be
        // killed together.
        .process_group(0)
        .spawn()
        .map_err(|e| {
            NginxTestError::Failed(format!("cannot run {}: {e}", binary.path.display()))
        })?;
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stderr.read_to_end(&mut out);
        out
    });
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if stop() => {
                // SAFETY: kill has no memory effects; the group is the child's own.
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                let _ = child.wait();
                break Err(NginxTestError::Stopped);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                // SAFETY: as above.
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                let _ = child.wait();
                break Err(NginxTestError::Failed(format!(
                    "waiting for {}: {e}",
                    binary.path.display()
                )));
            }
        }
    };
    let output = String::from_utf8_lossy(&reader.join().unwrap_or_default()).into_owned();
    drop(prefix);
    match status? {
        s if s.success() => Ok(()),
        _ if stop() => Err(NginxTestError::Stopped),
        _ => Err(NginxTestError::Failed(output)),
    }
}
