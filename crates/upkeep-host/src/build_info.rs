//! The paths an nginx binary was built with, from `nginx -V`'s `configure
//! arguments:` line: where relative paths resolve (`--prefix`), the
//! configuration read without `-c` (`--conf-path`), and the pid
//! file and error log it uses when the configuration names none.

use std::io;
use std::path::Path;
use std::process::Command;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildPaths {
    pub prefix: Option<String>,
    /// The configuration file read when no `-c` is given.
    pub conf_path: Option<String>,
    pub pid_path: Option<String>,
    /// `stderr` on Debian's build.
    pub error_log_path: Option<String>,
    pub http_log_path: Option<String>,
}

/// Reads the `--prefix=`, `--conf-path=`, `--pid-path=`, `--error-log-path=` and
/// `--http-log-path=` arguments. Arguments not given stay `None` (nginx
/// then uses its built-in defaults, which doctor does not guess).
pub fn parse_configure_args(text: &str) -> BuildPaths {
    let Some(line) = text
        .lines()
        .find_map(|l| l.strip_prefix("configure arguments:"))
    else {
        return BuildPaths::default();
    };
    let mut paths = BuildPaths::default();
    for word in line.split_whitespace() {
        let value = |name: &str| {
            word.strip_prefix(name)
                .map(|v| v.trim_matches('\'').to_string())
        };
        if let Some(v) = value("--prefix=") {
            paths.prefix = Some(v);
        } else if let Some(v) = value("--conf-path=") {
            paths.conf_path = Some(v);
        } else if let Some(v) = value("--pid-path=") {
            paths.pid_path = Some(v);
        } else if let Some(v) = value("--error-log-path=") {
            paths.error_log_path = Some(v);
        } else if let Some(v) = value("--http-log-path=") {
            paths.http_log_path = Some(v);
        }
    }
    paths
}

/// Runs `nginx -V` (it prints to stderr).
pub fn read(binary: &Path) -> io::Result<BuildPaths> {
    let out = Command::new(binary).arg("-V").output()?;
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    Ok(parse_configure_args(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    // `nginx -V` of Debian 12's nginx 1.22.1 (shortened).
    const DEBIAN: &str = "nginx version: nginx/1.22.1
built with OpenSSL 3.0.22 25 Aug 2026 (running with OpenSSL 3.0.19 27 Jan 2026)
TLS SNI support enabled
configure arguments: --with-cc-opt='-g -O2 -ffile-prefix-map=/build/reproducible-path/nginx-1.22.1=. -fstack-protector-strong -Wformat -Werror=format-security -fPIC -Wdate-time -D_FORTIFY_SOURCE=2' --with-ld-opt='-Wl,-z,relro -Wl,-z,now -fPIC' --prefix=/usr/share/nginx --conf-path=/etc/nginx/nginx.conf --http-log-path=/var/log/nginx/access.log --error-log-path=stderr --lock-path=/var/lock/nginx.lock --pid-path=/run/nginx.pid --with-http_stub_status_module
";

    #[test]
    fn reads_debian_paths() {
        assert_eq!(
            parse_configure_args(DEBIAN),
            BuildPaths {
                prefix: Some("/usr/share/nginx".into()),
                conf_path: Some("/etc/nginx/nginx.conf".into()),
                pid_path: Some("/run/nginx.pid".into()),
                error_log_path: Some("stderr".into()),
                http_log_path: Some("/var/log/nginx/access.log".into()),
            }
        );
        assert_eq!(
            parse_configure_args("nginx version: x\n"),
            BuildPaths::default()
        );
    }
}
