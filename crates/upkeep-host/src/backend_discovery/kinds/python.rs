//! Python servers: gunicorn, uvicorn and hypercorn, run as
//! `python -m NAME …` or through their console script (`/usr/bin/python3
//! /usr/local/bin/gunicorn …`).

use super::{seconds_ms, Recognition, Sourced};
use crate::backend_discovery::proc_info::{option_value, shell_words, ProcessInfo};

/// The arguments after the server's name, when argv runs `server`.
fn server_args<'a>(argv: &'a [String], server: &str) -> Option<&'a [String]> {
    let first = argv.first()?;
    let base = |s: &str| s.rsplit('/').next().unwrap_or(s).to_string();
    if base(first) == server {
        return Some(&argv[1..]);
    }
    if !base(first).starts_with("python") {
        return None;
    }
    for (i, a) in argv.iter().enumerate().skip(1) {
        if a == "-m" {
            return (argv.get(i + 1)? == server).then(|| &argv[i + 2..]);
        }
        if a.starts_with('-') {
            continue;
        }
        // The first non-option argument is the script python runs.
        return (base(a) == server).then(|| &argv[i + 1..]);
    }
    None
}

pub fn recognize(p: &ProcessInfo, title: &str) -> Option<Recognition> {
    if let Some(args) = server_args(&p.argv, "gunicorn") {
        return Some(gunicorn(p, args));
    }
    if title.starts_with("gunicorn: ") {
        // setproctitle is installed: the arguments are gone.
        let mut r = Recognition::new("gunicorn", Some("gunicorn"));
        r.notes.push(format!(
            "the process title `{title}` replaced its arguments: settings not readable, defaults assumed"
        ));
        return Some(r.with_profile_defaults());
    }
    if let Some(args) = server_args(&p.argv, "uvicorn") {
        return Some(uvicorn(p, args));
    }
    if let Some(args) = server_args(&p.argv, "hypercorn") {
        return Some(hypercorn(p, args));
    }
    None
}

/// A `NAME = VALUE` assignment in a Python config file (the last one wins),
/// with its line number.
fn py_setting(text: &str, name: &str) -> Option<(String, usize)> {
    let mut found = None;
    for (i, line) in text.lines().enumerate() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let Some(value) = rest.trim_start().strip_prefix('=') else {
            continue;
        };
        let value = value.split('#').next().unwrap_or("").trim();
        let value = value.trim_matches(['"', '\'']).to_string();
        found = Some((value, i + 1));
    }
    found
}

/// gunicorn's settings: the configuration file, then `GUNICORN_CMD_ARGS`,
/// then the command line, each overriding the one before (gunicorn's own
/// order).
fn gunicorn(p: &ProcessInfo, args: &[String]) -> Recognition {
    let mut r = Recognition::new("gunicorn", Some("gunicorn"));
    let env_args = p
        .env("GUNICORN_CMD_ARGS")
        .map(shell_words)
        .unwrap_or_default();
    let config = option_value(args, &["-c", "--config"])
        .or_else(|| option_value(&env_args, &["-c", "--config"]))
        .unwrap_or("gunicorn.conf.py");
    let config_path = p.resolve(config.strip_prefix("python:").unwrap_or(config));
    let config_text = std::fs::read_to_string(p.in_root(&config_path)).ok();
    if config_text.is_none() && config != "gunicorn.conf.py" {
        r.notes.push(format!(
            "configuration file {} not readable",
            config_path.display()
        ));
    }

    // One setting through the three layers; `None` when nowhere.
    let setting = |flags: &[&str], py_name: &str| -> Option<(String, String)> {
        if let Some(v) = option_value(args, flags) {
            return Some((
                v.to_string(),
                format!("{} {v} from argv", flags[flags.len() - 1]),
            ));
        }
        if let Some(v) = option_value(&env_args, flags) {
            return Some((
                v.to_string(),
                format!("{} {v} from GUNICORN_CMD_ARGS", flags[flags.len() - 1]),
            ));
        }
        let text = config_text.as_deref()?;
        let (v, line) = py_setting(text, py_name)?;
        Some((
            v.clone(),
            format!("{py_name} = {v} in {}:{line}", config_path.display()),
        ))
    };

    let worker = setting(&["-k", "--worker-class"], "worker_class");
    let threads = setting(&["--threads"], "threads")
        .and_then(|(v, _)| v.parse::<u64>().ok())
        .unwrap_or(1);
    let worker_class = worker
        .as_ref()
        .map(|(v, _)| v.as_str())
        .unwrap_or("sync")
        .to_string();
    // gunicorn turns a sync worker with several threads into gthread.
    let sync = matches!(
        worker_class.as_str(),
        "sync" | "gunicorn.workers.sync.SyncWorker"
    ) && threads <= 1;
    if let Some(w) = setting(&["-w", "--workers"], "workers") {
        r.notes.push(format!("{} workers ({})", w.0, w.1));
    }
    if sync {
        let source = match &worker {
            Some((_, s)) => format!("sync worker ({s})"),
            None => "sync worker (gunicorn's default worker class)".to_string(),
        };
        r.idle_timeout_ms = Some(Sourced::new(
            None,
            format!("{source}: no keep-alive, `Connection: close` after every response"),
        ));
        r.max_requests = Some(Sourced::new(
            Some(1),
            format!("{source}: one request per connection"),
        ));
        r.announces_close = Some(true);
        return r;
    }
    r.notes.push(format!(
        "worker class {worker_class}{}",
        worker
            .as_ref()
            .map(|(_, s)| format!(" ({s})"))
            .unwrap_or_default()
    ));
    if let Some((v, source)) = setting(&["--keep-alive"], "keepalive") {
        match seconds_ms(&v) {
            Some(ms) => r.idle_timeout_ms = Some(Sourced::new(Some(ms), source)),
            None => r.notes.push(format!(
                "{source}: not a number of seconds, default assumed"
            )),
        }
    }
    r.with_profile_defaults()
}

/// uvicorn: `--timeout-keep-alive`, or `UVICORN_TIMEOUT_KEEP_ALIVE` (its
/// options read `UVICORN_*` variables).
fn uvicorn(p: &ProcessInfo, args: &[String]) -> Recognition {
    let mut r = Recognition::new("uvicorn", Some("uvicorn"));
    let found = option_value(args, &["--timeout-keep-alive"])
        .map(|v| (v.to_string(), format!("--timeout-keep-alive {v} from argv")))
        .or_else(|| {
            p.env("UVICORN_TIMEOUT_KEEP_ALIVE").map(|v| {
                (
                    v.to_string(),
                    format!("UVICORN_TIMEOUT_KEEP_ALIVE={v} from the environment"),
                )
            })
        });
    if let Some((v, source)) = found {
        match seconds_ms(&v) {
            Some(ms) => r.idle_timeout_ms = Some(Sourced::new(Some(ms), source)),
            None => r.notes.push(format!(
                "{source}: not a number of seconds, default assumed"
            )),
        }
    }
    if let Some(n) = option_value(args, &["--limit-concurrency"]).and_then(|v| v.parse().ok()) {
        r.max_connections = Some(Sourced::new(
            n,
            format!("--limit-concurrency {n} from argv"),
        ));
    }
    r.with_profile_defaults()
}

/// hypercorn: `--keep-alive`, else `keep_alive_timeout` and
/// `keep_alive_max_requests` in its TOML configuration (`-c FILE`).
fn hypercorn(p: &ProcessInfo, args: &[String]) -> Recognition {
    let mut r = Recognition::new("hypercorn", Some("hypercorn"));
    let config = option_value(args, &["-c", "--config"])
        .filter(|c| !c.starts_with("python:") && !c.starts_with("file:"))
        .map(|c| p.resolve(c));
    let toml_text = config
        .as_ref()
        .and_then(|c| std::fs::read_to_string(p.in_root(c)).ok());
    let from_toml = |key: &str| -> Option<(String, String)> {
        let text = toml_text.as_deref()?;
        let (v, line) = py_setting(text, key)?;
        Some((
            v.clone(),
            format!(
                "{key} = {v} in {}:{line}",
                config
                    .as_ref()
                    .map(|c| c.display().to_string())
                    .unwrap_or_default()
            ),
        ))
    };
    let idle = option_value(args, &["--keep-alive"])
        .map(|v| (v.to_string(), format!("--keep-alive {v} from argv")))
        .or_else(|| from_toml("keep_alive_timeout"));
    if let Some((v, source)) = idle {
        if let Some(ms) = seconds_ms(&v) {
            r.idle_timeout_ms = Some(Sourced::new(Some(ms), source));
        }
    }
    if let Some((v, source)) = from_toml("keep_alive_max_requests") {
        if let Ok(n) = v.parse() {
            r.max_requests = Some(Sourced::new(Some(n), source));
        }
    }
    r.with_profile_defaults()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc(argv: &[&str], env: &[(&str, &str)]) -> ProcessInfo {
        ProcessInfo {
            pid: 1,
            argv: argv.iter().map(|s| s.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            env_readable: true,
            cwd: Some("/nonexistent-upkeep-test".into()),
            ..ProcessInfo::default()
        }
    }

    #[test]
    fn finds_the_server_in_argv() {
        let a = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let m = a(&["python3", "-m", "gunicorn", "-b", ":80", "app:app"]);
        assert_eq!(server_args(&m, "gunicorn").unwrap().len(), 3);
        let script = a(&["/usr/bin/python3", "/usr/local/bin/gunicorn", "app:app"]);
        assert_eq!(
            server_args(&script, "gunicorn").unwrap(),
            &a(&["app:app"])[..]
        );
        let direct = a(&["uvicorn", "main:app"]);
        assert!(server_args(&direct, "uvicorn").is_some());
        let other = a(&["python3", "manage.py", "runserver"]);
        assert!(server_args(&other, "gunicorn").is_none());
    }

    #[test]
    fn gunicorn_layers_argv_over_environment() {
        let p = proc(
            &[
                "python3",
                "-m",
                "gunicorn",
                "-k",
                "gthread",
                "--keep-alive",
                "7",
                "app:app",
            ],
            &[("GUNICORN_CMD_ARGS", "--keep-alive 4")],
        );
        let r = recognize(&p, &p.command()).unwrap();
        let idle = r.idle_timeout_ms.unwrap();
        assert_eq!(idle.value, Some(7000));
        assert_eq!(idle.source, "--keep-alive 7 from argv");

        let p = proc(
            &["gunicorn", "app:app"],
            &[("GUNICORN_CMD_ARGS", "--threads 4 --keep-alive 4")],
        );
        let r = recognize(&p, &p.command()).unwrap();
        let idle = r.idle_timeout_ms.unwrap();
        assert_eq!(idle.value, Some(4000));
        assert_eq!(idle.source, "--keep-alive 4 from GUNICORN_CMD_ARGS");
    }

    #[test]
    fn gunicorn_sync_worker_closes_every_connection() {
        let p = proc(&["gunicorn", "--keep-alive", "9", "app:app"], &[]);
        let r = recognize(&p, &p.command()).unwrap();
        assert_eq!(r.idle_timeout_ms.unwrap().value, None);
        assert_eq!(r.max_requests.unwrap().value, Some(1));
        assert_eq!(r.announces_close, Some(true));
    }

    #[test]
    fn gunicorn_reads_its_python_config() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("gunicorn.conf.py"),
            "bind = '127.0.0.1:8000'\nworker_class = \"gthread\"\nkeepalive = 11  # seconds\n",
        )
        .unwrap();
        let mut p = proc(&["gunicorn", "app:app"], &[]);
        p.cwd = Some(dir.path().to_path_buf());
        let r = recognize(&p, &p.command()).unwrap();
        let idle = r.idle_timeout_ms.unwrap();
        assert_eq!(idle.value, Some(11_000));
        assert_eq!(
            idle.source,
            format!(
                "keepalive = 11 in {}:3",
                dir.path().join("gunicorn.conf.py").display()
            )
        );
    }

    #[test]
    fn uvicorn_and_hypercorn() {
        let p = proc(&["uvicorn", "--timeout-keep-alive", "3", "main:app"], &[]);
        let r = recognize(&p, &p.command()).unwrap();
        assert_eq!(r.kind, "uvicorn");
        assert_eq!(r.idle_timeout_ms.unwrap().value, Some(3000));
        let p = proc(
            &["uvicorn", "main:app"],
            &[("UVICORN_TIMEOUT_KEEP_ALIVE", "8")],
        );
        let r = recognize(&p, &p.command()).unwrap();
        assert_eq!(
            r.idle_timeout_ms.unwrap().source,
            "UVICORN_TIMEOUT_KEEP_ALIVE=8 from the environment"
        );
        let p = proc(&["python3", "-m", "hypercorn", "main:app"], &[]);
        let r = recognize(&p, &p.command()).unwrap();
        assert_eq!(r.idle_timeout_ms.unwrap().value, Some(5000));
        assert_eq!(r.max_requests.unwrap().value, Some(1000));
    }
}
