//! Packaging: the man pages and shell completions `upkeep generate` writes
//! from the clap definition, and the Debian package `cargo deb --no-build`
//! makes of them (crates/upkeep-cli/Cargo.toml `[package.metadata.deb]`).

mod common;

use common::{text, upkeep};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The visible subcommands, as `upkeep --help` lists them.
fn subcommands() -> Vec<String> {
    let help = text(&upkeep(&["--help"]).stdout);
    let list = help
        .split("Commands:\n")
        .nth(1)
        .expect("a Commands section")
        .split("\n\n")
        .next()
        .unwrap();
    let names: Vec<String> = list
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(String::from)
        .collect();
    assert!(names.len() >= 8, "{help}");
    names
}

fn generate(what: &str, dir: &Path) {
    let out = upkeep(&["generate", what, dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn man_pages_name_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    generate("man", dir.path());
    let main = std::fs::read_to_string(dir.path().join("upkeep.1")).unwrap();
    assert!(main.contains(".TH upkeep 1"), "{main}");
    for sub in subcommands() {
        assert!(
            main.contains(&format!("upkeep\\-{}", sub.replace('-', "\\-"))),
            "upkeep.1 does not name {sub}"
        );
        let page = dir.path().join(format!("upkeep-{sub}.1"));
        let text = std::fs::read_to_string(&page).unwrap_or_else(|_| panic!("{page:?}"));
        assert!(text.contains(".SH SYNOPSIS"), "{page:?}");
    }
    let check = std::fs::read_to_string(dir.path().join("upkeep-check.1")).unwrap();
    assert!(check.contains("\\-\\-format"), "{check}");
}

/// What bash completion offers for the words typed so far.
fn bash_complete(script: &Path, words: &[&str]) -> Vec<String> {
    let words_quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source '{}'; COMP_WORDS=({}); COMP_CWORD={}; COMP_LINE='{}'; COMP_POINT=${{#COMP_LINE}}; \
         _upkeep upkeep '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        words_quoted.join(" "),
        words.len() - 1,
        words.join(" "),
        words[words.len() - 1],
        words[words.len().saturating_sub(2)],
    );
    let out = Command::new("bash")
        .args(["-c", &program])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).lines().map(String::from).collect()
}

#[test]
fn bash_completion_completes_subcommands_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    generate("bash", dir.path());
    let script = dir.path().join("upkeep.bash");
    assert_eq!(bash_complete(&script, &["upkeep", "ch"]), ["check"]);
    let all = bash_complete(&script, &["upkeep", ""]);
    for sub in subcommands() {
        assert!(all.contains(&sub), "{sub} not offered: {all:?}");
    }
    assert!(bash_complete(&script, &["upkeep", "check", "--for"]).contains(&"--format".into()));
    let formats = bash_complete(&script, &["upkeep", "check", "--format", ""]);
    for f in ["human", "json", "sarif", "github", "gitlab", "junit"] {
        assert!(formats.contains(&f.to_string()), "{formats:?}");
    }
}

#[test]
fn zsh_and_fish_completions_are_generated() {
    let dir = tempfile::tempdir().unwrap();
    generate("zsh", dir.path());
    generate("fish", dir.path());
    let zsh = std::fs::read_to_string(dir.path().join("_upkeep")).unwrap();
    assert!(zsh.starts_with("#compdef upkeep"));
    let fish = std::fs::read_to_string(dir.path().join("upkeep.fish")).unwrap();
    assert!(fish.contains("-n \"__fish_upkeep_needs_command\" -f -a \"check\""));
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn cargo_deb_packages_binary_man_pages_and_completions() {
    let have_deb = Command::new("cargo")
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have_deb {
        eprintln!("SKIPPED: cargo-deb is not installed (.ci/setup runs `cargo install --locked cargo-deb`)");
        return;
    }
    // The paths [package.metadata.deb] names: the binary cargo built (the
    // test's own, from the dev profile) and generated assets beside it.
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_upkeep"));
    let profile_dir = bin.parent().unwrap();
    assert_eq!(profile_dir.file_name().unwrap(), "debug");
    let assets = workspace_root().join("target/assets");
    if profile_dir.parent().unwrap().canonicalize().unwrap()
        != workspace_root().join("target").canonicalize().unwrap()
    {
        eprintln!("SKIPPED: CARGO_TARGET_DIR is not the workspace's target/, which [package.metadata.deb] names");
        return;
    }
    let _ = std::fs::remove_dir_all(&assets);
    for what in ["man", "bash", "zsh", "fish"] {
        generate(what, &assets);
    }
    let out_dir = tempfile::tempdir().unwrap();
    // cargo-deb is meant for release builds; the test packages the dev
    // binary it already has instead of building a release one.
    let out = Command::new("cargo")
        .args([
            "deb",
            "-p",
            "upkeep-cli",
            "--no-build",
            "--profile",
            "dev",
            "-o",
        ])
        .arg(out_dir.path())
        .current_dir(workspace_root())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let deb = std::fs::read_dir(out_dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("a .deb");
    let listing = Command::new("dpkg-deb")
        .arg("-c")
        .arg(&deb)
        .output()
        .unwrap();
    assert!(listing.status.success());
    let listing = text(&listing.stdout);
    let mut expected = vec![
        "./usr/bin/upkeep".to_string(),
        "./usr/share/man/man1/upkeep.1.gz".into(),
        "./usr/share/bash-completion/completions/upkeep".into(),
        "./usr/share/zsh/vendor-completions/_upkeep".into(),
        "./usr/share/fish/vendor_completions.d/upkeep.fish".into(),
    ];
    for sub in subcommands() {
        expected.push(format!("./usr/share/man/man1/upkeep-{sub}.1.gz"));
    }
    for path in expected {
        assert!(
            listing.lines().any(|l| l.ends_with(&path)),
            "{path} not in the package:\n{listing}"
        );
    }
    let _ = std::fs::remove_dir_all(&assets);
}
