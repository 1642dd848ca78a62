//! `upkeep fix --write` under faults, through the binary: signals sent to a
//! real run while a (slowed) real `nginx -t` validates, a SIGKILL and the
//! recovery after it, Debian's sites-enabled symlinks, runs as a non-root
//! user (`setpriv`), and what is printed when a write fails.

mod common;

use common::{binary_for_nobody, is_root, text, upkeep, wait_until};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const APP: &str = "upstream app {\n    server 127.0.0.1:8000;  # the app\n}\nserver {\n    listen 127.0.0.1:8080;\n    location / {\n        proxy_http_version 1.1;\n        proxy_set_header Connection \"\";\n        proxy_pass http://app;\n    }\n}\n";
const MAIN: &str = "events {}\nhttp {\n    include conf.d/*.conf;\n}\n";

/// nginx.conf (no `worker_shutdown_timeout`: R003, an unsafe fix) including conf.d/app.conf
/// (an upstream without a pool: U001). Returns the main file's path.
fn setup(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir.join("conf.d")).unwrap();
    std::fs::write(dir.join("nginx.conf"), MAIN).unwrap();
    std::fs::write(dir.join("conf.d/app.conf"), APP).unwrap();
    dir.join("nginx.conf")
}

/// Names in the config tree other than the two config files.
fn extra_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for sub in [dir.to_path_buf(), dir.join("conf.d")] {
        for e in std::fs::read_dir(&sub).unwrap() {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            if !["nginx.conf", "app.conf", "conf.d"].contains(&name.as_str()) {
                out.push(name);
            }
        }
    }
    out.sort();
    out
}

/// A directory holding an `nginx` that runs the real one at once the first
/// time (`nginx -t` on the original config) and sleeps for a minute every
/// later time (the validation of the result), writing its pid first.
struct SlowNginx {
    dir: tempfile::TempDir,
}

impl SlowNginx {
    fn new() -> SlowNginx {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("nginx");
        std::fs::write(
            &script,
            "#!/bin/sh\nif [ -e \"$0.seen\" ]; then echo $$ > \"$0.pid.tmp\"; mv \"$0.pid.tmp\" \"$0.pid\"; exec sleep 60; fi\n\
             touch \"$0.seen\"\nexec /usr/sbin/nginx \"$@\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        SlowNginx { dir }
    }

    fn path_var(&self) -> String {
        format!("{}:/usr/sbin:/usr/bin:/bin", self.dir.path().display())
    }

    /// The pid of the sleeping validation, once it runs (within `limit`).
    fn sleeping_pid(&self, limit: Duration) -> i32 {
        let pid_file = self.dir.path().join("nginx.pid");
        wait_until(limit, Duration::from_millis(20), || {
            std::fs::read_to_string(&pid_file).ok()?.trim().parse().ok()
        })
        .expect("validation never started")
    }

    /// Makes the next call fast again (a fresh run).
    fn reset(&self) {
        let _ = std::fs::remove_file(self.dir.path().join("nginx.seen"));
        let _ = std::fs::remove_file(self.dir.path().join("nginx.pid"));
    }
}

/// Running, not a zombie waiting to be reaped (nginx's daemonized master
/// is reaped by init, sometimes a second or more after it exits).
fn alive(pid: i32) -> bool {
    upkeep_nginx::process_is_running(pid)
}

/// `upkeep fix --write MAIN` as a child, with `path` as PATH and `tmp` as
/// TMPDIR (where `nginx -t`'s private prefixes go).
fn spawn_write(main: &Path, path: &str, tmp: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args([
            "fix",
            "--write",
            "--unsafe-fixes",
            "--nginx-version",
            "1.28.0",
        ])
        .arg(main)
        .env("PATH", path)
        .env("TMPDIR", tmp)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (bounded) for `child` to exit.
fn wait_bounded(mut child: Child, secs: u64) -> Output {
    let exited = wait_until(Duration::from_secs(secs), Duration::from_millis(20), || {
        child.try_wait().unwrap()
    });
    if exited.is_none() {
        let _ = child.kill();
        panic!("upkeep did not exit within {secs} s");
    }
    child.wait_with_output().unwrap()
}

fn upkeep_env(args: &[&str], path: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(args)
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// SIGINT or SIGTERM while `nginx -t` validates the written files: every
/// file is put back, no backup, journal, temporary file or private nginx
/// prefix is left, the validating nginx is killed, and the exit status is
/// 128 + the signal.
#[test]
fn sigint_or_sigterm_during_validation_rolls_back_and_cleans_up() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let dir = tempfile::tempdir().unwrap();
        let main = setup(dir.path());
        let nginx = SlowNginx::new();
        let tmp = tempfile::tempdir().unwrap();
        let child = spawn_write(&main, &nginx.path_var(), tmp.path());
        let validating = nginx.sleeping_pid(Duration::from_secs(30));
        // The files hold the new, unvalidated text now.
        let app = std::fs::read_to_string(dir.path().join("conf.d/app.conf")).unwrap();
        assert!(app.contains("keepalive"), "{app}");
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, signal) };
        let out = wait_bounded(child, 30);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(128 + signal), "{err}");
        let name = if signal == libc::SIGINT {
            "SIGINT"
        } else {
            "SIGTERM"
        };
        assert!(
            err.contains(&format!("interrupted by {name}; every file was restored")),
            "{err}"
        );
        assert!(
            !err.contains("fixed in"),
            "nothing is reported fixed: {err}"
        );
        assert_eq!(std::fs::read_to_string(&main).unwrap(), MAIN);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("conf.d/app.conf")).unwrap(),
            APP
        );
        assert!(
            extra_files(dir.path()).is_empty(),
            "{:?}",
            extra_files(dir.path())
        );
        let prefixes: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert!(
            prefixes.is_empty(),
            "private nginx prefix left: {prefixes:?}"
        );
        assert!(!alive(validating), "the validating nginx was killed");
    }
}

/// After a SIGKILL during validation: the next `fix --write` reports the
/// interrupted run file by file and refuses; `--recover undo` puts every
/// file back, `--recover finish` validates and completes it.
#[test]
fn sigkill_leftovers_are_reported_then_undone_or_finished() {
    for how in ["undo", "finish"] {
        let dir = tempfile::tempdir().unwrap();
        let main = setup(dir.path());
        let main_s = main.to_str().unwrap();
        let nginx = SlowNginx::new();
        let tmp = tempfile::tempdir().unwrap();
        let mut child = spawn_write(&main, &nginx.path_var(), tmp.path());
        let validating = nginx.sleeping_pid(Duration::from_secs(30));
        child.kill().unwrap();
        child.wait().unwrap();
        // SAFETY: the orphaned validation; nothing else has its pid.
        unsafe { libc::kill(validating, libc::SIGKILL) };
        nginx.reset();
        // Every file is old or new (here: both new, unvalidated).
        assert!(std::fs::read_to_string(&main)
            .unwrap()
            .contains("worker_shutdown_timeout"));
        assert!(
            !extra_files(dir.path()).is_empty(),
            "the killed run left its journal"
        );

        let real_path = "/usr/sbin:/usr/bin:/bin";
        let out = upkeep_env(
            &["fix", "--write", "--nginx-version", "1.28.0", main_s],
            real_path,
        );
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("was interrupted before it completed"), "{err}");
        assert!(err.contains("app.conf: the new, unvalidated text"), "{err}");
        assert!(err.contains("--recover undo"), "{err}");
        // A diff run only warns.
        let out = upkeep_env(&["fix", "--nginx-version", "1.28.0", main_s], real_path);
        assert!(text(&out.stderr).contains("warning: an earlier `upkeep fix --write`"));

        let out = upkeep_env(&["fix", "--recover", how, main_s], real_path);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{err}");
        let app = std::fs::read_to_string(dir.path().join("conf.d/app.conf")).unwrap();
        if how == "undo" {
            assert_eq!(app, APP);
            assert_eq!(std::fs::read_to_string(&main).unwrap(), MAIN);
            assert!(
                extra_files(dir.path()).is_empty(),
                "{:?}",
                extra_files(dir.path())
            );
        } else {
            assert!(app.contains("keepalive"), "{app}");
            assert!(err.contains("-t` accepts the result"), "{err}");
            assert_eq!(
                std::fs::read_to_string(dir.path().join("conf.d/app.conf.upkeep.bak")).unwrap(),
                APP
            );
            assert_eq!(
                extra_files(dir.path()),
                ["app.conf.upkeep.bak", "nginx.conf.upkeep.bak"]
            );
        }
        // Nothing left to recover.
        let out = upkeep_env(&["fix", "--recover", how, main_s], real_path);
        assert!(
            text(&out.stderr).contains("no interrupted"),
            "{}",
            text(&out.stderr)
        );
    }
}

/// Temporary copies that no journal names (a run killed by an older
/// version) are reported, and removed by `--recover undo`.
#[test]
fn stray_temporary_copies_are_reported_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let main = setup(dir.path());
    let stray = dir.path().join("conf.d/.app.conf.upkeep-Ab12Cd.tmp");
    std::fs::write(&stray, "half").unwrap();
    let out = upkeep(&["fix", "--nginx-version", "1.28.0", main.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert!(err.contains("1 temporary copy left"), "{err}");
    assert!(err.contains(".app.conf.upkeep-Ab12Cd.tmp"), "{err}");
    let out = upkeep(&["fix", "--recover", "undo", main.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!stray.exists());
    assert_eq!(std::fs::read_to_string(&main).unwrap(), MAIN);
}

/// Debian's layout: `include sites-enabled/*;` and sites-enabled/app a
/// symlink to ../sites-available/app. The backup goes next to the real
/// file, which the include does not load: accepted and validated.
#[test]
fn debian_sites_enabled_layout_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["sites-available", "sites-enabled"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
    }
    let main = dir.path().join("nginx.conf");
    std::fs::write(
        &main,
        "events {}\nhttp {\n    include sites-enabled/*;\n}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("sites-available/app"), APP).unwrap();
    std::os::unix::fs::symlink(
        "../sites-available/app",
        dir.path().join("sites-enabled/app"),
    )
    .unwrap();
    let out = upkeep(&[
        "fix",
        "--write",
        "--nginx-version",
        "1.28.0",
        "--rule",
        "U001",
        main.to_str().unwrap(),
    ]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("-t` accepts the result"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("sites-available/app.upkeep.bak")).unwrap(),
        APP
    );
    assert!(
        std::fs::read_to_string(dir.path().join("sites-enabled/app"))
            .unwrap()
            .contains("keepalive")
    );
    let enabled: Vec<_> = std::fs::read_dir(dir.path().join("sites-enabled"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(enabled, ["app"]);
}

/// A conf.d snippet given on its own: `nginx -t` rejects it out of
/// context, and the error says that rather than "already fails".
#[test]
fn nginx_t_failure_of_a_snippet_names_the_context() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let snippet = dir.path().join("conf.d/app.conf");
    let out = upkeep(&[
        "fix",
        "--write",
        "--nginx-version",
        "1.28.0",
        snippet.to_str().unwrap(),
    ]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("it is not a main configuration but a snippet"),
        "{err}"
    );
    assert!(
        err.contains("run `upkeep fix --write` on the main nginx.conf"),
        "{err}"
    );
    assert!(!err.contains("already fails"), "{err}");
    assert!(!err.contains("fixed in"), "{err}");
    assert_eq!(std::fs::read_to_string(&snippet).unwrap(), APP);
}

/// `upkeep ARGS` as uid/gid 65534 with no supplementary groups.
fn as_nobody(bin: &Path, args: &[&str]) -> Output {
    let mut last = None;
    // A copy just written may be "Text file busy" for a moment while a
    // process forked by another test still holds it open.
    for _ in 0..50 {
        let out = Command::new("setpriv")
            .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
            .arg(bin)
            .args(args)
            .env("PATH", "/usr/sbin:/usr/bin:/bin")
            .env("NO_COLOR", "1")
            .current_dir("/")
            .output()
            .unwrap();
        if !text(&out.stderr).contains("Text file busy") {
            return out;
        }
        last = Some(out);
        std::thread::sleep(Duration::from_millis(20));
    }
    last.unwrap()
}

/// A config tree owned by 65534, readable by everyone.
fn nobody_tree() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let main = setup(dir.path());
    for p in [
        dir.path().to_path_buf(),
        dir.path().join("conf.d"),
        main.clone(),
        dir.path().join("conf.d/app.conf"),
    ] {
        std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
        let mode = if p.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    (dir, main)
}

/// As a non-root user `nginx -t` cannot open the pid file; the error says
/// that the user is the cause.
#[test]
fn nginx_t_failure_as_non_root_names_permissions() {
    if !is_root() {
        eprintln!("SKIPPED: needs root to switch to an unprivileged user");
        return;
    }
    let (_bin_dir, bin) = binary_for_nobody();
    let (_dir, main) = nobody_tree();
    let out = as_nobody(
        &bin,
        &[
            "fix",
            "--write",
            "--nginx-version",
            "1.28.0",
            main.to_str().unwrap(),
        ],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("cannot check the configuration as this user"),
        "{err}"
    );
    assert!(err.contains("Permission denied"), "{err}");
    assert!(!err.contains("already fails"), "{err}");
    assert_eq!(std::fs::read_to_string(&main).unwrap(), MAIN);
}

/// A write that fails (the directory refuses new files) prints the error
/// and no "N findings fixed".
#[test]
fn fix_says_what_was_fixed_only_after_the_write() {
    if !is_root() {
        eprintln!("SKIPPED: needs root to switch to an unprivileged user");
        return;
    }
    let (_bin_dir, bin) = binary_for_nobody();
    let (dir, main) = nobody_tree();
    // The files stay writable to the user; the directories do not.
    for d in [dir.path().to_path_buf(), dir.path().join("conf.d")] {
        std::os::unix::fs::chown(&d, Some(0), Some(0)).unwrap();
    }
    let args = [
        "fix",
        "--write",
        "--no-nginx-test",
        "--unsafe-fixes",
        "--nginx-version",
        "1.28.0",
        main.to_str().unwrap(),
    ];
    let out = as_nobody(&bin, &args);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("Permission denied"), "{err}");
    assert!(err.contains("no file was changed"), "{err}");
    assert!(!err.contains("fixed in"), "{err}");
    assert_eq!(std::fs::read_to_string(&main).unwrap(), MAIN);
    assert!(extra_files(dir.path()).is_empty());

    // Once it can write, the report comes, after the write.
    for d in [dir.path().to_path_buf(), dir.path().join("conf.d")] {
        std::os::unix::fs::chown(&d, Some(65534), Some(65534)).unwrap();
    }
    let out = as_nobody(&bin, &args);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let fixed = err.find("fixed in 2 files").expect(&err);
    assert!(fixed < err.find("wrote ").expect(&err), "{err}");
}

/// As a non-root user, a file whose group the user is not in keeps its
/// group (it is rewritten in place, and the note says why); a file the user
/// cannot rewrite in place is replaced, and the owner and group change is
/// announced.
#[test]
fn group_is_kept_or_its_change_announced() {
    if !is_root() {
        eprintln!("SKIPPED: needs root to switch to an unprivileged user");
        return;
    }
    let (_bin_dir, bin) = binary_for_nobody();
    let (dir, main) = nobody_tree();
    let app = dir.path().join("conf.d/app.conf");
    // app.conf: the user's own file in a group the user is not in.
    std::os::unix::fs::chown(&app, Some(65534), Some(4242)).unwrap();
    std::fs::set_permissions(&app, std::fs::Permissions::from_mode(0o640)).unwrap();
    // nginx.conf: root's, read-only to the user (the directory is the user's).
    std::os::unix::fs::chown(&main, Some(0), Some(0)).unwrap();
    let before_ino = std::fs::metadata(&app).unwrap().ino();
    let out = as_nobody(
        &bin,
        &[
            "fix",
            "--write",
            "--no-nginx-test",
            "--unsafe-fixes",
            "--nginx-version",
            "1.28.0",
            main.to_str().unwrap(),
        ],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let meta = std::fs::metadata(&app).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o777),
        (65534, 4242, 0o640)
    );
    assert_eq!(meta.ino(), before_ino);
    assert!(std::fs::read_to_string(&app).unwrap().contains("keepalive"));
    assert!(
        err.contains("conf.d/app.conf was rewritten in place"),
        "{err}"
    );
    assert!(
        err.contains("nginx.conf: its owner and group change from 0:0 to 65534:65534"),
        "{err}"
    );
    let meta = std::fs::metadata(&main).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (65534, 65534));
}
