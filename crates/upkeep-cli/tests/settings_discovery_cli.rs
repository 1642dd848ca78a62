//! Which upkeep.toml applies: found the same way however the config path is
//! typed, never above the repository root, never from a directory anyone
//! can write to or from a file of another user, and named in every output
//! format.

mod common;

use common::text;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

/// Triggers U001 (no keepalive in the upstream).
const CONFIG: &str = "\
events {}
http {
    upstream app {
        server 127.0.0.1:8000;
    }
    server {
        listen 127.0.0.1:8080;
        location / {
            proxy_pass http://app;
        }
    }
}
";

/// Silences everything: a planted file of this kind hides every finding.
const SILENCE: &str = "[rules]\nignore = [\"U\", \"C\", \"R\"]\n";

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn upkeep_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .current_dir(cwd)
        .args(args)
        .args(["--nginx-version", "1.28.0"])
        .env("NO_COLOR", "1")
        .output()
        .expect("run upkeep")
}

/// A private tree: `root/upkeep.toml` (silencing) and `root/app/base.conf`.
fn tree() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o755);
    let root = dir.path().canonicalize().unwrap();
    std::fs::create_dir(root.join("app")).unwrap();
    std::fs::write(root.join("app/base.conf"), CONFIG).unwrap();
    std::fs::write(root.join("upkeep.toml"), SILENCE).unwrap();
    (dir, root)
}

#[test]
fn the_same_settings_file_is_found_however_the_path_is_typed() {
    let (_dir, root) = tree();
    let app = root.join("app");
    let absolute = app.join("base.conf");
    let settings = root.join("upkeep.toml");
    for path in ["base.conf", "./base.conf", absolute.to_str().unwrap()] {
        let out = upkeep_in(&app, &["check", path]);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{path}: {stdout}");
        assert!(
            stdout.contains(&format!("note: settings from {}\n", settings.display())),
            "{path}: {stdout}"
        );
    }
    // And from anywhere else: the config's directory decides.
    let out = upkeep_in(Path::new("/"), &["check", absolute.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

#[test]
fn the_search_stops_at_the_repository_root() {
    let (_dir, root) = tree();
    std::fs::create_dir(root.join("app/.git")).unwrap();
    let out = upkeep_in(&root.join("app"), &["check", "base.conf"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("warning[U001]"), "{stdout}");
    assert!(!stdout.contains("settings from"), "{stdout}");
}

#[test]
fn a_settings_file_in_a_world_writable_directory_is_ignored_with_a_warning() {
    let (_dir, root) = tree();
    chmod(&root, 0o1777);
    let out = upkeep_in(&root.join("app"), &["check", "./base.conf"]);
    chmod(&root, 0o755);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("warning[U001]"), "{stdout}");
    assert!(
        stderr.contains(&format!(
            "warning: ignoring {}: {} is writable by every user",
            root.join("upkeep.toml").display(),
            root.display()
        )),
        "{stderr}"
    );
}

#[test]
fn a_settings_file_of_another_user_is_ignored() {
    if !common::is_root() {
        eprintln!("skipped: giving a file to another user needs root");
        return;
    }
    let (_dir, root) = tree();
    let toml = root.join("upkeep.toml");
    let nobody = Command::new("chown")
        .arg("nobody")
        .arg(&toml)
        .status()
        .unwrap();
    assert!(nobody.success());
    let out = upkeep_in(&root.join("app"), &["check", "base.conf"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("warning[U001]"), "{stdout}");
    assert!(
        text(&out.stderr).contains("neither you (user id 0) nor root"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn json_and_sarif_name_the_settings_file() {
    let (_dir, root) = tree();
    std::fs::write(root.join("upkeep.toml"), "[rules]\nignore = [\"R\"]\n").unwrap();
    let settings = root.join("upkeep.toml").to_str().unwrap().to_string();
    let app = root.join("app");

    let out = upkeep_in(&app, &["check", "--format", "json", "base.conf"]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["settings_files"], serde_json::json!([settings]));

    let out = upkeep_in(&app, &["check", "--format", "sarif", "base.conf"]);
    let sarif: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        sarif["runs"][0]["properties"]["settingsFiles"],
        serde_json::json!([settings])
    );

    // None found: an empty list, not a missing key.
    std::fs::remove_file(root.join("upkeep.toml")).unwrap();
    std::fs::create_dir(app.join(".git")).unwrap();
    let out = upkeep_in(&app, &["check", "--format", "json", "base.conf"]);
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["settings_files"], serde_json::json!([]));

    // fix says it too, on stderr (its stdout is the diff).
    std::fs::write(root.join("upkeep.toml"), "cpus = 2\n").unwrap();
    std::fs::remove_dir(app.join(".git")).unwrap();
    let out = upkeep_in(&app, &["fix", "base.conf"]);
    assert!(
        text(&out.stderr).contains(&format!("note: settings from {settings}\n")),
        "{}",
        text(&out.stderr)
    );

    // An explicit --config-file is named too.
    let explicit = app.join("explicit.toml");
    std::fs::write(&explicit, "cpus = 2\n").unwrap();
    let out = upkeep_in(
        &app,
        &["check", "--config-file", "explicit.toml", "base.conf"],
    );
    assert!(
        text(&out.stdout).contains("note: settings from explicit.toml\n"),
        "{}",
        text(&out.stdout)
    );
}
