//! Everything upkeep shows its users stands on its own: no rule doc, help
//! text, profile listing or diagnostic cites a file users do not have (the
//! notes the project was written from, `facts/…`, `shared/…`). What upkeep
//! knows it ships: its rule docs cite nginx's documentation and source, and
//! `upkeep profiles` lists the backend defaults with their sources.

use std::path::{Path, PathBuf};
use std::process::Command;

const FORBIDDEN: &[&str] = &[
    "facts/",
    "shared/",
    "behaviors.md",
    "backends.tsv",
    "directives.tsv",
    "signatures.tsv",
    "errors.tsv",
    "RULES.md",
    "§",
];

fn assert_clean(what: &str, text: &str) {
    for word in FORBIDDEN {
        if let Some(at) = text.find(word) {
            let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
            panic!("{what} mentions `{word}`: {}", &text[start..end]);
        }
    }
}

fn upkeep(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(args)
        .output()
        .expect("run upkeep");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

#[test]
fn rule_docs_cite_nothing_users_lack() {
    let rules = upkeep_rules::rules()
        .iter()
        .chain(upkeep_host::rules::INFOS.iter());
    let mut n = 0;
    for r in rules {
        assert_clean(&format!("{} summary", r.id), r.summary);
        assert_clean(&format!("{} doc", r.id), r.doc);
        assert_clean(
            &format!("upkeep explain {}", r.id),
            &upkeep(&["explain", r.id]),
        );
        // The section on a server cites the sources of its defaults.
        for (flavor, version) in [
            ("nginx", "1.14.0"),
            ("nginx", "1.29.5"),
            ("nginx", "1.29.7"),
            ("angie", "1.0.0"),
            ("angie", "1.12.1"),
            ("freenginx", "1.29.7"),
        ] {
            assert_clean(
                &format!(
                    "upkeep explain {} --flavor {flavor} --nginx-version {version}",
                    r.id
                ),
                &upkeep(&[
                    "explain",
                    r.id,
                    "--flavor",
                    flavor,
                    "--nginx-version",
                    version,
                ]),
            );
        }
        n += 1;
    }
    assert!(n > 25, "only {n} rules");
}

#[test]
fn help_and_listings_cite_nothing_users_lack() {
    let commands = [
        "check", "fix", "explain", "rules", "profiles", "parse", "probe", "logs", "doctor", "lab",
        "watch",
    ];
    assert_clean("upkeep --help", &upkeep(&["--help"]));
    for c in commands {
        let help = upkeep(&[c, "--help"]);
        assert!(help.contains("Usage"), "{c} --help: {help}");
        assert_clean(&format!("upkeep {c} --help"), &help);
    }
    for args in [
        &["rules"][..],
        &["rules", "--format", "json"],
        &["profiles"],
        &["profiles", "--format", "json"],
    ] {
        assert_clean(&format!("upkeep {}", args.join(" ")), &upkeep(args));
    }
}

/// Every diagnostic of every rule fixture, in human and JSON output.
#[test]
fn diagnostics_cite_nothing_users_lack() {
    let fixtures = workspace().join("crates/upkeep-rules/tests/fixtures");
    let mut checked = 0;
    for rule in std::fs::read_dir(&fixtures).unwrap().flatten() {
        for f in std::fs::read_dir(rule.path()).unwrap().flatten() {
            let path = f.path();
            if path.extension().is_some_and(|e| e == "conf") {
                let p = path.to_str().unwrap();
                for format in ["human", "json"] {
                    let out = upkeep(&[
                        "check",
                        p,
                        "--format",
                        format,
                        "--color",
                        "never",
                        "--nginx-version",
                        "1.28.0",
                    ]);
                    assert_clean(&format!("check {p} ({format})"), &out);
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 40, "only {checked} fixtures");
}

/// String literals in library and binary code (help texts, messages) that
/// are not comments: a cheap net for text the tests above do not reach
/// (doctor, logs, probe, watch output). Test modules are left out.
#[test]
fn source_strings_cite_nothing_users_lack() {
    let mut files = Vec::new();
    for krate in std::fs::read_dir(workspace().join("crates"))
        .unwrap()
        .flatten()
    {
        collect_rs(&krate.path().join("src"), &mut files);
    }
    assert!(files.len() > 50);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        for (i, line) in code.lines().enumerate() {
            let trimmed = line.trim_start();
            // `///` on a clap argument is help text; other comments are not shown.
            let is_help = trimmed.starts_with("///") && !trimmed.starts_with("////");
            if trimmed.starts_with("//") && !is_help {
                continue;
            }
            if is_help && !file.starts_with(workspace().join("crates/upkeep-cli")) {
                continue;
            }
            if line.contains("facts/") || line.contains("shared/") {
                panic!("{}:{}: {}", file.display(), i + 1, line.trim());
            }
        }
    }
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_rs(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}
