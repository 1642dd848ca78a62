//! `check` and `fix` on a configuration with a value nginx refuses in a
//! directive the rules read (`keepalive abc;`, `keepalive_timeout
//! 9223372036854775807s;`): exit 2 at the value with nginx's words, as for
//! a syntax error, and no verdict drawn from the value (`keepalive abc` was
//! judged as `keepalive 0` by U001, `keepalive_timeout zz` as the 60s
//! default). The real `nginx -t` refuses the same files at the same line.

mod common;

use common::{text, upkeep};
use std::path::Path;

const KEEPALIVE_ABC: &str = "\
events {}
http {
    upstream b {
        server 127.0.0.1:8080;
        keepalive abc;
    }
    server {
        location / {
            proxy_pass http://b;
        }
    }
}
";

fn write(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, body).unwrap();
    path.to_str().unwrap().to_string()
}

/// `nginx -t` of `main` (its own prefix): the `[emerg]` line, `None`
/// without nginx outside CI (CI installs it).
fn nginx_refuses(main: &str) -> Option<String> {
    let Some(bin) = upkeep_nginx::NginxBinary::find(None) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "no nginx binary found (CI must install Debian's nginx)"
        );
        eprintln!("warning: no nginx binary; skipped");
        return None;
    };
    let prefix = upkeep_nginx::Prefix::new().unwrap();
    let dir = Path::new(main).parent().unwrap();
    let out = bin
        .test_config(Path::new(main), dir, prefix.path())
        .unwrap();
    assert!(!out.ok, "nginx accepted {main}:\n{}", out.output);
    Some(
        out.output
            .lines()
            .find(|l| l.contains("[emerg]"))
            .unwrap_or_else(|| panic!("{}", out.output))
            .to_string(),
    )
}

#[test]
fn check_stops_at_a_keepalive_count_nginx_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write(dir.path(), "nginx.conf", KEEPALIVE_ABC);
    for format in ["human", "json", "sarif"] {
        let out = upkeep(&[
            "check",
            "--nginx-version",
            "1.28.0",
            "--format",
            format,
            &conf,
        ]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{format}: {}",
            text(&out.stderr)
        );
        assert!(out.stdout.is_empty(), "{format}: {}", text(&out.stdout));
        let err = text(&out.stderr);
        assert!(
            err.starts_with(&format!(
                "error: {conf}:5:19: invalid value \"abc\" in \"keepalive\" directive\n"
            )),
            "{err}"
        );
        assert!(err.contains("5 |         keepalive abc;"), "{err}");
        assert!(!err.contains("keepalive 0"), "{err}");
    }
    if let Some(emerg) = nginx_refuses(&conf) {
        assert!(
            emerg.contains(&format!(
                "invalid value \"abc\" in \"keepalive\" directive in {conf}:5"
            )),
            "{emerg}"
        );
    }
}

#[test]
fn check_stops_at_times_and_counts_nginx_refuses() {
    let dir = tempfile::tempdir().unwrap();
    for (body, place, message) in [
        (
            "events {}\nhttp {\n    keepalive_timeout 9223372036854775807s;\n}\n",
            "3:23",
            "\"keepalive_timeout\" directive invalid value (nginx takes at most 9223372036854775s, 9223372036854775807ms)",
        ),
        (
            "events {}\nhttp {\n    keepalive_timeout zz;\n}\n",
            "3:23",
            "\"keepalive_timeout\" directive invalid value",
        ),
        (
            "events {}\nhttp {\n    upstream b {\n        server 127.0.0.1:8080;\n        keepalive 99999999999999999999;\n    }\n}\n",
            "5:19",
            "invalid value \"99999999999999999999\" in \"keepalive\" directive (nginx takes at most 9223372036854775807)",
        ),
        (
            "events {\n    worker_connections 9223372036854775808;\n}\n",
            "2:24",
            "invalid number \"9223372036854775808\" (nginx takes at most 9223372036854775807)",
        ),
        (
            "worker_shutdown_timeout 1M;\nevents {}\n",
            "1:25",
            "\"worker_shutdown_timeout\" directive invalid value (a time in milliseconds takes no `y` or `M` unit)",
        ),
        (
            "events {}\nhttp {\n    upstream b {\n        server 127.0.0.1:8080 max_fails=abc;\n        keepalive 8;\n    }\n}\n",
            "4:31",
            "invalid parameter \"max_fails=abc\"",
        ),
    ] {
        let conf = write(dir.path(), "nginx.conf", body);
        let out = upkeep(&["check", "--nginx-version", "1.28.0", &conf]);
        assert_eq!(out.status.code(), Some(2), "{body}\n{}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(
            err.starts_with(&format!("error: {conf}:{place}: {message}\n")),
            "{err}"
        );
        if let Some(emerg) = nginx_refuses(&conf) {
            let nginx_words = message.split(" (").next().unwrap();
            let line = place.split(':').next().unwrap();
            assert!(
                emerg.contains(&format!("{nginx_words} in {conf}:{line}")),
                "{emerg}"
            );
        }
    }
}

#[test]
fn a_refused_value_in_an_included_file_is_shown_there() {
    let dir = tempfile::tempdir().unwrap();
    let main = write(
        dir.path(),
        "nginx.conf",
        "events {}\nhttp {\n    include conf.d/*.conf;\n}\n",
    );
    let app = write(
        dir.path(),
        "conf.d/app.conf",
        "upstream b {\n    server 127.0.0.1:8080;\n    keepalive 16;\n    keepalive_timeout 60x;\n}\n",
    );
    let out = upkeep(&["check", "--nginx-version", "1.28.0", &main]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).starts_with(&format!(
            "error: {app}:4:23: \"keepalive_timeout\" directive invalid value\n"
        )),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn fix_changes_nothing_in_a_configuration_nginx_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let conf = write(dir.path(), "nginx.conf", KEEPALIVE_ABC);
    for args in [
        vec!["fix", "--nginx-version", "1.28.0"],
        vec!["fix", "--nginx-version", "1.28.0", "--unsafe-fixes"],
        vec![
            "fix",
            "--nginx-version",
            "1.28.0",
            "--write",
            "--no-nginx-test",
        ],
        vec![
            "fix",
            "--nginx-version",
            "1.28.0",
            "--write",
            "--unsafe-fixes",
        ],
    ] {
        let mut args = args;
        args.push(&conf);
        let out = upkeep(&args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let err = text(&out.stderr);
        assert!(
            err.starts_with(&format!(
                "error: {conf}:5:19: invalid value \"abc\" in \"keepalive\" directive\n"
            )),
            "{args:?}: {err}"
        );
        assert!(err.contains("note: nothing was changed"), "{args:?}: {err}");
        // No diff offered (U001 replaced `abc` with 32 and hid the value).
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
        assert_eq!(std::fs::read_to_string(&conf).unwrap(), KEEPALIVE_ABC);
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["nginx.conf"], "{args:?}");
    }
}

#[test]
fn probe_plans_nothing_from_a_configuration_nginx_refuses() {
    // `keepalive abc` was planned as "`keepalive 0` disables the pool".
    let dir = tempfile::tempdir().unwrap();
    let conf = write(dir.path(), "nginx.conf", KEEPALIVE_ABC);
    let out = upkeep(&["probe", "--config", &conf]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "error: {conf}:5:19: invalid value \"abc\" in \"keepalive\" directive\n"
        )),
        "{err}"
    );
    assert!(!text(&out.stdout).contains("keepalive 0"));
}
