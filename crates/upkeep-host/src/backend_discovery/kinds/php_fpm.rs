//! php-fpm: the master names its configuration in its process title
//! (`php-fpm: master process (/etc/php/8.2/fpm/php-fpm.conf)`); that file
//! and the files it `include=`s hold the pools, and the pool whose
//! `listen` is the upstream address has the `pm.max_children` that caps
//! how many connections it can serve at once.

use std::path::{Path, PathBuf};

use super::{Recognition, Sourced};
use crate::backend_discovery::proc_info::{option_value, ProcessInfo};
use crate::backend_discovery::Endpoint;
use upkeep_config::{FsLoader, Loader};

pub fn recognize(p: &ProcessInfo, title: &str, endpoint: &Endpoint) -> Option<Recognition> {
    let exe = p.exe_name();
    let is_fpm = title.starts_with("php-fpm: ") || exe.starts_with("php-fpm");
    if !is_fpm {
        return None;
    }
    let mut r = Recognition::new("php-fpm", None);
    let (config, how) = config_path(p, title, &exe);
    r.version = exe
        .strip_prefix("php-fpm")
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    // facts/backends.tsv row PHP-FPM: no idle timeout of its own on kept
    // FastCGI connections was found; a kept connection stays with its child.
    r.idle_timeout_ms = Some(Sourced::new(
        None,
        "php-fpm: no idle timeout of its own on kept FastCGI connections (none found)",
    ));
    let Some(config) = config else {
        r.notes.push(how);
        return Some(r);
    };
    let pools = match read_pools(p, &config) {
        Ok(pools) => pools,
        Err(e) => {
            r.notes.push(format!("{how}: {e}"));
            return Some(r);
        }
    };
    let Some(pool) = pools.iter().find(|pool| listens_on(&pool.listen, endpoint)) else {
        r.notes.push(format!(
            "no pool in {} ({how}) listens on {endpoint}",
            config.display()
        ));
        return Some(r);
    };
    match &pool.max_children {
        Some((n, file, line)) => {
            r.max_connections = Some(Sourced::new(
                *n,
                format!(
                    "pool [{}] pm.max_children = {n} in {}:{line}",
                    pool.name,
                    file.display()
                ),
            ));
        }
        None => r.notes.push(format!(
            "pool [{}] sets no pm.max_children (php-fpm refuses to start without it)",
            pool.name
        )),
    }
    if let Some(pm) = &pool.pm {
        r.notes.push(format!("pool [{}] pm = {pm}", pool.name));
    }
    Some(r)
}

/// The master's configuration file, and how it was found.
fn config_path(p: &ProcessInfo, title: &str, exe: &str) -> (Option<PathBuf>, String) {
    if let Some(rest) = title.strip_prefix("php-fpm: master process (") {
        if let Some(path) = rest.strip_suffix(')') {
            return (
                Some(PathBuf::from(path)),
                format!("configuration {path} from the master's process title"),
            );
        }
    }
    if let Some(path) = option_value(&p.argv, &["-y", "--fpm-config"]) {
        return (
            Some(p.resolve(path)),
            format!("configuration {path} from --fpm-config"),
        );
    }
    if title.starts_with("php-fpm: pool ") {
        return (
            None,
            "a php-fpm worker without its master in sight: configuration unknown".into(),
        );
    }
    // Debian's php-fpmX.Y reads /etc/php/X.Y/fpm/php-fpm.conf by default.
    if let Some(v) = exe.strip_prefix("php-fpm").filter(|v| !v.is_empty()) {
        let path = format!("/etc/php/{v}/fpm/php-fpm.conf");
        return (
            Some(PathBuf::from(&path)),
            format!("default configuration {path}"),
        );
    }
    (
        None,
        "php-fpm's configuration path not found in its title or arguments".into(),
    )
}

#[derive(Debug, Default)]
struct Pool {
    name: String,
    listen: String,
    max_children: Option<(u64, PathBuf, usize)>,
    pm: Option<String>,
}

/// Every pool of the configuration, following `include=` globs.
fn read_pools(p: &ProcessInfo, main: &Path) -> Result<Vec<Pool>, String> {
    let mut pools: Vec<Pool> = Vec::new();
    let mut files = vec![main.to_path_buf()];
    let mut seen = 0;
    while let Some(file) = files.pop() {
        seen += 1;
        if seen > 256 {
            return Err("more than 256 included files".into());
        }
        let text = std::fs::read_to_string(p.in_root(&file))
            .map_err(|e| format!("{}: {e}", file.display()))?;
        let mut section = String::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.starts_with(';') || line.starts_with('#') || line.is_empty() {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.trim().to_string();
                if section != "global" {
                    pools.push(Pool {
                        name: section.clone(),
                        ..Pool::default()
                    });
                }
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let key = key.trim();
            let value = value
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches('"');
            if key == "include" {
                let pattern = if value.starts_with('/') {
                    PathBuf::from(value)
                } else {
                    main.parent().unwrap_or(Path::new("/")).join(value)
                };
                let rooted = p.in_root(&pattern);
                let matches = FsLoader
                    .glob(&rooted.to_string_lossy())
                    .map_err(|e| format!("include={value}: {e}"))?;
                let prefix_len = rooted.to_string_lossy().len() - pattern.to_string_lossy().len();
                for m in matches.into_iter().rev() {
                    files.push(PathBuf::from(&m[prefix_len..]));
                }
                continue;
            }
            let Some(pool) = pools.last_mut().filter(|_| section != "global") else {
                continue;
            };
            match key {
                "listen" => pool.listen = value.replace("$pool", &pool.name),
                "pm.max_children" => {
                    if let Ok(n) = value.parse() {
                        pool.max_children = Some((n, file.clone(), i + 1));
                    }
                }
                "pm" => pool.pm = Some(value.to_string()),
                _ => {}
            }
        }
    }
    Ok(pools)
}

/// Whether a pool's `listen` (`/run/php.sock`, `9000`, `127.0.0.1:9000`,
/// `[::]:9000`) accepts on `endpoint`.
fn listens_on(listen: &str, endpoint: &Endpoint) -> bool {
    match endpoint {
        Endpoint::Unix(path) => listen == path,
        Endpoint::Tcp(addr) => {
            let (host, port) = match listen.rsplit_once(':') {
                Some((h, p)) => (h.trim_matches(['[', ']']), p),
                None => ("", listen),
            };
            if port.parse::<u16>().ok() != Some(addr.port()) {
                return false;
            }
            match host {
                "" | "*" | "0.0.0.0" | "::" => true,
                "localhost" => addr.ip().is_loopback(),
                h => h.parse::<std::net::IpAddr>().ok() == Some(addr.ip()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_pool_that_listens_on_the_address_through_includes() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("pool.d")).unwrap();
        std::fs::write(
            d.join("php-fpm.conf"),
            "[global]\npid = /run/x.pid\n; comment\ninclude=pool.d/*.conf\n",
        )
        .unwrap();
        std::fs::write(
            d.join("pool.d/a.conf"),
            "[a]\nlisten = 127.0.0.1:9001\npm = static\npm.max_children = 9\n",
        )
        .unwrap();
        std::fs::write(
            d.join("pool.d/www.conf"),
            "[www]\nlisten = /run/php/$pool.sock\npm = dynamic\npm.max_children = 4 ; four\n",
        )
        .unwrap();
        let title = format!(
            "php-fpm: master process ({})",
            d.join("php-fpm.conf").display()
        );
        let p = ProcessInfo {
            pid: std::process::id() as i32,
            argv: vec![title.clone()],
            ..ProcessInfo::default()
        };
        let r = recognize(&p, &title, &Endpoint::Unix("/run/php/www.sock".into())).unwrap();
        let max = r.max_connections.unwrap();
        assert_eq!(max.value, 4);
        assert_eq!(
            max.source,
            format!(
                "pool [www] pm.max_children = 4 in {}:4",
                d.join("pool.d/www.conf").display()
            )
        );
        let r = recognize(
            &p,
            &title,
            &Endpoint::Tcp("127.0.0.1:9001".parse().unwrap()),
        )
        .unwrap();
        assert_eq!(r.max_connections.unwrap().value, 9);
        let r = recognize(
            &p,
            &title,
            &Endpoint::Tcp("127.0.0.1:9002".parse().unwrap()),
        )
        .unwrap();
        assert!(r.max_connections.is_none());
        assert!(r.notes[0].contains("no pool"), "{:?}", r.notes);
    }

    #[test]
    fn listen_forms() {
        let tcp = |s: &str| Endpoint::Tcp(s.parse().unwrap());
        assert!(listens_on("9000", &tcp("127.0.0.1:9000")));
        assert!(listens_on("[::]:9000", &tcp("127.0.0.1:9000")));
        assert!(listens_on("127.0.0.1:9000", &tcp("127.0.0.1:9000")));
        assert!(!listens_on("127.0.0.2:9000", &tcp("127.0.0.1:9000")));
        assert!(!listens_on("/run/a.sock", &tcp("127.0.0.1:9000")));
    }
}
