//! `upkeep fix` through the binary: diff and exit codes, `--write` with its
//! backups and `nginx -t`, `--rule`, and the refusals.

mod common;

use common::{text, upkeep};
use std::path::Path;

/// An upstream without a pool (U001) in an included file, and no
/// `worker_shutdown_timeout` (R003) in the main one.
fn setup(dir: &Path, include: &str, included_name: &str) -> String {
    std::fs::create_dir_all(dir.join("conf.d")).unwrap();
    let main = dir.join("nginx.conf");
    std::fs::write(
        &main,
        format!("events {{}}\nhttp {{\n    include {include};\n}}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.join("conf.d").join(included_name),
        "upstream app {\n    server 127.0.0.1:8000;  # the app\n}\nserver {\n    listen 127.0.0.1:8080;\n    location / {\n        proxy_http_version 1.1;\n        proxy_set_header Connection \"\";\n        proxy_pass http://app;\n    }\n}\n",
    )
    .unwrap();
    main.to_str().unwrap().to_string()
}

#[test]
fn diff_by_default_then_write_then_nothing_left() {
    let dir = tempfile::tempdir().unwrap();
    let main = setup(dir.path(), "conf.d/*.conf", "app.conf");
    let app = dir.path().join("conf.d/app.conf");
    let before = std::fs::read_to_string(&app).unwrap();

    let out = upkeep(&["fix", "--nginx-version", "1.28.0", "--rule", "U001", &main]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let diff = text(&out.stdout);
    assert!(
        diff.starts_with("--- conf.d/app.conf\n+++ conf.d/app.conf\n"),
        "{diff}"
    );
    assert!(diff.contains("+    keepalive 32;"), "{diff}");
    assert!(
        !diff.contains("worker_shutdown_timeout"),
        "--rule U001 only: {diff}"
    );
    assert_eq!(
        std::fs::read_to_string(&app).unwrap(),
        before,
        "a diff writes nothing"
    );

    let out = upkeep(&["fix", "--write", "--nginx-version", "1.28.0", &main]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("-t` accepts the result"),
        "validated by nginx: {err}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("conf.d/app.conf.upkeep.bak")).unwrap(),
        before
    );
    let after = std::fs::read_to_string(&app).unwrap();
    assert!(
        after.contains("keepalive 32;") && after.contains("# the app"),
        "{after}"
    );
    // R003's fix is unsafe (the timeout cuts connections still open at a
    // reload): plain `fix` leaves it for `--unsafe-fixes`.
    assert!(!std::fs::read_to_string(&main)
        .unwrap()
        .contains("worker_shutdown_timeout"));

    let out = upkeep(&["fix", "--nginx-version", "1.28.0", &main]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
}

#[test]
fn refuses_a_backup_that_an_include_would_load() {
    let dir = tempfile::tempdir().unwrap();
    // `include conf.d/*;` would load conf.d/app.upkeep.bak next to the new file.
    let main = setup(dir.path(), "conf.d/*", "app");
    let before = std::fs::read_to_string(dir.path().join("conf.d/app")).unwrap();
    let out = upkeep(&[
        "fix",
        "--write",
        "--nginx-version",
        "1.28.0",
        "--rule",
        "U001",
        &main,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("would be loaded by nginx through `include conf.d/*`"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("conf.d/app")).unwrap(),
        before
    );
    assert!(!dir.path().join("conf.d/app.upkeep.bak").exists());
}

#[test]
fn refuses_to_write_when_nginx_t_already_fails_on_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let main = setup(dir.path(), "conf.d/*.conf", "app.conf");
    // Parses, but nginx rejects it: an unknown directive.
    let mut text_main = std::fs::read_to_string(&main).unwrap();
    text_main.push_str("no_such_directive on;\n");
    std::fs::write(&main, &text_main).unwrap();
    let out = upkeep(&["fix", "--write", "--nginx-version", "1.28.0", &main]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("already fails on the original"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&main).unwrap(), text_main);
    assert!(!Path::new(&format!("{main}.upkeep.bak")).exists());
}

#[test]
fn usage_errors() {
    let out = upkeep(&["fix", "--rule", "U999", "x.conf"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no such rule"));
    let out = upkeep(&["fix", "--rule", "C004", "x.conf"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("has no automatic fix"),
        "{}",
        text(&out.stderr)
    );
}

/// Thirty upstreams without a pool: the summary lists the first few U001
/// fixes and counts the rest, while the diff still carries all thirty.
#[test]
fn many_fixes_of_one_rule_are_counted_not_listed() {
    let dir = tempfile::tempdir().unwrap();
    let mut conf = String::from("events {}\nhttp {\n");
    for i in 0..30 {
        conf.push_str(&format!(
            "    upstream app{i} {{ server 127.0.0.1:{}; }}\n    server {{ listen 127.0.0.1:{}; location / {{ proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_pass http://app{i}; }} }}\n",
            9000 + i,
            8000 + i
        ));
    }
    conf.push_str("}\n");
    let main = dir.path().join("nginx.conf");
    std::fs::write(&main, conf).unwrap();
    let out = upkeep(&[
        "fix",
        "--nginx-version",
        "1.28.0",
        "--rule",
        "U001",
        main.to_str().unwrap(),
    ]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.starts_with("30 findings fixed in 1 file"), "{err}");
    let listed = err.lines().filter(|l| l.starts_with("  U001 ")).count();
    assert_eq!(listed, 6, "five fixes and one count line: {err}");
    assert!(
        err.contains("  U001 upstream-without-keepalive: and 25 more like these (the diff shows each change)"),
        "{err}"
    );
    let diff = text(&out.stdout);
    assert_eq!(
        diff.lines()
            .filter(|l| l.starts_with('+') && l.contains("keepalive 32"))
            .count(),
        30,
        "{diff}"
    );
}
