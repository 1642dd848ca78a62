use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// An nginx executable.
#[derive(Clone, Debug)]
pub struct NginxBinary {
    pub path: PathBuf,
}

/// The result of `nginx -t`.
#[derive(Clone, Debug)]
pub struct TestOutcome {
    pub ok: bool,
    /// What nginx printed (it writes everything to stderr).
    pub output: String,
}

impl NginxBinary {
    /// `explicit` if given (it must exist), else `nginx` on PATH, else the
    /// usual sbin locations that are often missing from a non-root PATH.
    pub fn find(explicit: Option<&Path>) -> Option<NginxBinary> {
        if let Some(p) = explicit {
            return p.is_file().then(|| NginxBinary { path: p.into() });
        }
        let on_path = std::env::var_os("PATH")
            .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
            .unwrap_or_default();
        on_path
            .into_iter()
            .chain(["/usr/sbin", "/usr/local/sbin", "/usr/local/nginx/sbin"].map(PathBuf::from))
            .map(|dir| dir.join("nginx"))
            .find(|p| p.is_file())
            .map(|path| NginxBinary { path })
    }

    /// The version from `nginx -v` ("nginx version: nginx/1.22.1", also
    /// "openresty/1.21.4.1" and "nginx/1.25.3 (Ubuntu)" shapes), as "X.Y.Z".
    pub fn version(&self) -> io::Result<String> {
        self.version_and_line().map(|(version, _)| version)
    }

    /// [`NginxBinary::version`] and the whole `nginx -v` output it was read
    /// from, which also names the server ("nginx version: freenginx/1.29.7").
    pub fn version_and_line(&self) -> io::Result<(String, String)> {
        let out = Command::new(&self.path).arg("-v").output()?;
        let text = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        let text = text.trim().to_string();
        match parse_version_output(&text) {
            Some(version) => Ok((version, text)),
            None => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "could not read a version from `{} -v`: {text}",
                    self.path.display()
                ),
            )),
        }
    }

    /// `nginx -T`: the full configuration as nginx reads it, every file
    /// preceded by a `# configuration file PATH:` line.
    /// Errors name the command, so callers print them as they are.
    pub fn dump_config(&self) -> io::Result<Vec<u8>> {
        self.dump_config_with(&[])
    }

    /// `nginx -T` with more options first (`-p`, `-c`, `-g` of a running
    /// master, so the dump is the configuration that master reads).
    pub fn dump_config_with(&self, options: &[String]) -> io::Result<Vec<u8>> {
        let mut shown = self.path.display().to_string();
        for o in options {
            shown.push(' ');
            if o.contains(' ') || o.is_empty() {
                shown.push_str(&format!("'{o}'"));
            } else {
                shown.push_str(o);
            }
        }
        let command = format!("`{shown} -T`");
        let out = Command::new(&self.path)
            .args(options)
            .arg("-T")
            .output()
            .map_err(|e| io::Error::new(e.kind(), format!("{command} could not run: {e}")))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let why = match stderr.trim() {
                "" => out.status.to_string(),
                text => text.to_string(),
            };
            return Err(io::Error::other(format!("{command} failed: {why}")));
        }
        Ok(out.stdout)
    }

    /// Runs `nginx -t` on `conf` with `prefix` as the prefix. A `pid` file and
    /// the error log are redirected into `scratch` so that nothing outside it
    /// is written, whatever the config says about them. (`-g 'pid …'` would
    /// clash with a config that sets `pid` itself, so the config's own `pid`
    /// path is left alone: `nginx -t` only checks that it could be created.)
    pub fn test_config(
        &self,
        conf: &Path,
        prefix: &Path,
        scratch: &Path,
    ) -> io::Result<TestOutcome> {
        let error_log = scratch.join("error.log");
        let out = Command::new(&self.path)
            .arg("-t")
            .arg("-q")
            .arg("-p")
            .arg(with_trailing_slash(prefix))
            .arg("-c")
            .arg(conf)
            .arg("-e")
            .arg(&error_log)
            .output()?;
        Ok(TestOutcome {
            ok: out.status.success(),
            output: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// nginx joins the prefix and relative paths without adding a separator.
pub(crate) fn with_trailing_slash(p: &Path) -> String {
    let mut s = p.display().to_string();
    if !s.ends_with('/') {
        s.push('/');
    }
    s
}

fn parse_version_output(text: &str) -> Option<String> {
    let rest = &text[text.find("version:")? + "version:".len()..];
    let after_slash = &rest[rest.find('/')? + 1..];
    let version: String = after_slash
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    // openresty has four components (1.21.4.1): the first three are nginx's.
    let parts: Vec<&str> = version
        .split('.')
        .filter(|p| !p.is_empty())
        .take(3)
        .collect();
    (parts.len() == 3).then(|| parts.join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_version_shapes() {
        assert_eq!(
            parse_version_output("nginx version: nginx/1.22.1\n").as_deref(),
            Some("1.22.1")
        );
        assert_eq!(
            parse_version_output("nginx version: nginx/1.25.3 (Ubuntu)").as_deref(),
            Some("1.25.3")
        );
        assert_eq!(
            parse_version_output("nginx version: openresty/1.21.4.1").as_deref(),
            Some("1.21.4")
        );
        assert_eq!(parse_version_output("command not found"), None);
    }
}
