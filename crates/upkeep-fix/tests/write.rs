//! `--write`: atomic replacement, backups, refusal of changed files, rollback
//! after a failing `nginx -t` (a real nginx), read-only directories.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use upkeep_fix::write::{nginx_test, write_files, PlannedWrite, WriteError, BACKUP_SUFFIX};

/// Writing `new` over `path`, which was read as `original`.
fn planned(path: &Path, original: impl Into<Vec<u8>>, new: impl Into<Vec<u8>>) -> PlannedWrite {
    PlannedWrite {
        path: path.to_path_buf(),
        original: original.into(),
        new: new.into(),
    }
}

fn ok() -> impl FnMut() -> Result<(), String> {
    || Ok(())
}

fn bak(p: &Path) -> PathBuf {
    PathBuf::from(format!("{}{BACKUP_SUFFIX}", p.display()))
}

/// Names in `dir` other than the expected ones (leftover temporaries).
fn leftovers(dir: &Path, expected: &[&str]) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !expected.contains(&n.as_str()))
        .collect()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn replaces_the_file_keeps_a_backup_mode_and_owner() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.conf");
    fs::write(&path, "old\n").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    if is_root() {
        std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
    }
    let before = fs::metadata(&path).unwrap();
    let plan = [planned(&path, "old\n", "new\n")];
    let written = write_files(&plan, &mut ok()).unwrap();
    assert_eq!(written.files, std::slice::from_ref(&path));
    assert_eq!(fs::read(&path).unwrap(), b"new\n");
    assert_eq!(fs::read(bak(&path)).unwrap(), b"old\n");
    let after = fs::metadata(&path).unwrap();
    assert_eq!(after.mode() & 0o7777, 0o640);
    assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
    assert_ne!(
        after.ino(),
        before.ino(),
        "replaced by rename, not rewritten in place"
    );
    let backup = fs::metadata(bak(&path)).unwrap();
    assert_eq!(backup.mode() & 0o7777, 0o640);
    assert!(leftovers(dir.path(), &["app.conf", "app.conf.upkeep.bak"]).is_empty());
}

#[test]
fn refuses_when_a_file_changed_since_it_was_read() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.conf");
    let b = dir.path().join("b.conf");
    fs::write(&a, "a\n").unwrap();
    fs::write(&b, "b edited by someone else\n").unwrap();
    let plan = [planned(&a, "a\n", "A\n"), planned(&b, "b\n", "B\n")];
    let err = write_files(&plan, &mut ok()).unwrap_err();
    assert!(
        matches!(&err, WriteError::ChangedSinceRead { path } if path.ends_with("b.conf")),
        "{err}"
    );
    // Neither file was touched, and no backup was made.
    assert_eq!(fs::read(&a).unwrap(), b"a\n");
    assert_eq!(fs::read(&b).unwrap(), b"b edited by someone else\n");
    assert!(leftovers(dir.path(), &["a.conf", "b.conf"]).is_empty());
}

#[test]
fn failed_validation_rolls_every_file_back() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.conf");
    let b = dir.path().join("b.conf");
    fs::write(&a, "a\n").unwrap();
    fs::write(&b, "b\n").unwrap();
    // b already has a backup from an earlier run: it must survive.
    fs::write(bak(&b), "older backup\n").unwrap();
    let plan = [planned(&a, "a\n", "A\n"), planned(&b, "b\n", "B\n")];
    let mut seen = Vec::new();
    let mut validate = || {
        seen.push((fs::read(&a).unwrap(), fs::read(&b).unwrap()));
        Err("nginx: [emerg] something".to_string())
    };
    let err = write_files(&plan, &mut validate).unwrap_err();
    assert!(matches!(err, WriteError::ValidationFailed { .. }), "{err}");
    assert_eq!(
        seen,
        [(b"A\n".to_vec(), b"B\n".to_vec())],
        "validation saw the new files"
    );
    assert_eq!(fs::read(&a).unwrap(), b"a\n");
    assert_eq!(fs::read(&b).unwrap(), b"b\n");
    assert!(!bak(&a).exists());
    assert_eq!(fs::read(bak(&b)).unwrap(), b"older backup\n");
    assert!(leftovers(dir.path(), &["a.conf", "b.conf", "b.conf.upkeep.bak"]).is_empty());
}

#[test]
fn writes_through_a_symlink() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("sites-available")).unwrap();
    fs::create_dir(dir.path().join("sites-enabled")).unwrap();
    let real = dir.path().join("sites-available/site");
    let link = dir.path().join("sites-enabled/site");
    fs::write(&real, "old\n").unwrap();
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let plan = [planned(&link, "old\n", "new\n")];
    write_files(&plan, &mut ok()).unwrap();
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read(&link).unwrap(), b"new\n");
    // The backup sits next to the real file, not in sites-enabled (which
    // `include sites-enabled/*;` would load).
    assert_eq!(fs::read(bak(&real)).unwrap(), b"old\n");
    assert!(leftovers(&dir.path().join("sites-enabled"), &["site"]).is_empty());
}

/// The child half of `read_only_directory_leaves_the_original_intact`, run
/// as an unprivileged user when the suite runs as root (root ignores
/// directory permissions).
#[test]
#[ignore = "run by read_only_directory_leaves_the_original_intact"]
fn read_only_directory_child() {
    let Ok(file) = std::env::var("UPKEEP_FIX_RO_FILE") else {
        return;
    };
    let path = PathBuf::from(file);
    let plan = [planned(&path, "original\n", "changed\n")];
    let err = write_files(&plan, &mut ok()).unwrap_err();
    assert!(matches!(&err, WriteError::Io { .. }), "{err}");
    assert!(err.to_string().contains("no file was changed"), "{err}");
}

#[test]
fn read_only_directory_leaves_the_original_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nginx.conf");
    fs::write(&path, "original\n").unwrap();
    if is_root() {
        // The file itself stays writable by the child: only the directory
        // refuses new entries, so an in-place write would have succeeded.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
        use std::os::unix::process::CommandExt;
        // A copy of this test binary that the unprivileged user can run even
        // when the build directory is private (as under /root).
        let bin_dir = tempfile::tempdir().unwrap();
        fs::set_permissions(bin_dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let bin = bin_dir.path().join("write-test");
        fs::copy(std::env::current_exe().unwrap(), &bin).unwrap();
        fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
        let run = || {
            std::process::Command::new(&bin)
                .args([
                    "--exact",
                    "read_only_directory_child",
                    "--ignored",
                    "--nocapture",
                ])
                .env("UPKEEP_FIX_RO_FILE", &path)
                .current_dir(bin_dir.path())
                .uid(65534)
                .gid(65534)
                .output()
        };
        // A process forked by another test of this binary while the copy
        // was open for writing holds that descriptor until it execs: running
        // the copy then fails with "Text file busy" for a moment.
        let mut out = run();
        for _ in 0..50 {
            match &out {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    out = run();
                }
                _ => break,
            }
        }
        let out = out.unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("1 passed"), "{text}");
    } else {
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o555)).unwrap();
        let plan = [planned(&path, "original\n", "changed\n")];
        let err = write_files(&plan, &mut ok()).unwrap_err();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        assert!(matches!(&err, WriteError::Io { .. }), "{err}");
    }
    assert_eq!(fs::read(&path).unwrap(), b"original\n");
    assert!(leftovers(dir.path(), &["nginx.conf"]).is_empty());
}

/// A real nginx checks the result; an invalid result is rolled back.
#[test]
fn real_nginx_t_accepts_or_rolls_back() {
    let Some(nginx) = upkeep_nginx::NginxBinary::find(None) else {
        panic!("this test needs an nginx binary (Debian package nginx)");
    };
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("conf.d")).unwrap();
    let main = dir.path().join("nginx.conf");
    let app = dir.path().join("conf.d/app.conf");
    fs::write(&main, "events {}\nhttp {\n    include conf.d/*.conf;\n}\n").unwrap();
    let app_text = "upstream app {\n    server 127.0.0.1:8080;\n}\n";
    fs::write(&app, app_text).unwrap();
    nginx_test(&nginx, &main).expect("the original config is valid");

    // A good fix stays.
    let good = "upstream app {\n    server 127.0.0.1:8080;\n    keepalive 32;\n}\n";
    let plan = [planned(&app, app_text, good)];
    write_files(&plan, &mut || nginx_test(&nginx, &main)).unwrap();
    assert_eq!(fs::read_to_string(&app).unwrap(), good);

    // A bad one (nginx rejects `keepalive` outside an upstream) goes back,
    // with its backup, and the error says why.
    let bad = format!("{good}keepalive 32;\n");
    let plan = [planned(&app, good, bad)];
    let err = write_files(&plan, &mut || nginx_test(&nginx, &main)).unwrap_err();
    let WriteError::ValidationFailed { output } = &err else {
        panic!("{err}")
    };
    assert!(
        output.contains("\"keepalive\" directive is not allowed here"),
        "{output}"
    );
    assert_eq!(fs::read_to_string(&app).unwrap(), good);
    assert_eq!(
        fs::read_to_string(bak(&app)).unwrap(),
        app_text,
        "the earlier backup is back"
    );
}

/// A small tmpfs mounted on a temporary directory, unmounted on drop.
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    /// `None` (the test then says it is skipped) where mounting is not
    /// allowed: not root, or a container without the capability.
    fn mount(size: &str) -> Option<SmallFs> {
        let dir = tempfile::tempdir().ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallFs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

/// A full disk: the second file's new text does not fit. Nothing may change:
/// the first file (which fits) is not replaced either, no backup is left,
/// no temporary file is left, and the error names the file and the cause.
#[test]
fn full_disk_changes_nothing() {
    if !is_root() {
        eprintln!("SKIPPED: mounting a small tmpfs needs root");
        return;
    }
    let Some(fs_) = SmallFs::mount("64k") else {
        eprintln!("SKIPPED: cannot mount a tmpfs here");
        return;
    };
    let a = fs_.path().join("a.conf");
    let b = fs_.path().join("b.conf");
    fs::write(&a, "a\n").unwrap();
    fs::write(&b, "b\n").unwrap();
    // Leave about 24 KiB free (tmpfs counts whole 4 KiB pages).
    fs::write(fs_.path().join("filler"), vec![b'x'; 32 * 1024]).unwrap();
    let plan = [
        planned(&a, "a\n", vec![b'A'; 4 * 1024]),
        planned(&b, "b\n", vec![b'B'; 40 * 1024]),
    ];
    let err = write_files(&plan, &mut ok()).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(&err, WriteError::Io { path, source, .. }
            if path.ends_with("b.conf") && source.raw_os_error() == Some(libc::ENOSPC)),
        "{message}"
    );
    assert!(message.contains("no file was changed"), "{message}");
    assert_eq!(fs::read(&a).unwrap(), b"a\n");
    assert_eq!(fs::read(&b).unwrap(), b"b\n");
    assert!(leftovers(fs_.path(), &["a.conf", "b.conf", "filler"]).is_empty());
}
