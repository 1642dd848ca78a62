//! `upkeep explain RULE --flavor … --nginx-version …` and `upkeep rules
//! --flavor …`: the section "On <server> <version>:" after a rule's
//! documentation states the defaults of that server that decide the rule,
//! citing the rows of crates/upkeep-facts/data/flavors.tsv (forks) and
//! facts/directives.tsv (nginx), and where the rule applies there.

mod common;

use common::text;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

/// `upkeep ARGS` run in `dir` (where no upkeep.toml is, unless a test puts
/// one there).
fn upkeep_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("run upkeep")
}

/// `upkeep explain RULE --flavor FLAVOR --nginx-version VERSION`, run in `dir`.
fn explain(dir: &Path, rule: &str, flavor: &str, version: &str) -> Output {
    upkeep_in(
        dir,
        &[
            "explain",
            rule,
            "--flavor",
            flavor,
            "--nginx-version",
            version,
        ],
    )
}

/// The section for the server, from its header to the end.
fn section(out: &Output, header: &str) -> String {
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let at = stdout
        .find(&format!("\n{header}\n"))
        .unwrap_or_else(|| panic!("no {header:?} in:\n{stdout}"));
    stdout[at + 1..].to_string()
}

/// The source column of the data/flavors.tsv row (flavor, since, fact).
fn flavors_tsv_source(flavor: &str, since: &str, fact: &str) -> String {
    let data = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../upkeep-facts/data/flavors.tsv"),
    )
    .unwrap();
    data.lines()
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .find(|c| c.len() == 5 && c[0] == flavor && c[1] == since && c[2] == fact)
        .map(|c| c[4].to_string())
        .unwrap_or_else(|| panic!("no row {flavor} {since} {fact}"))
}

#[test]
fn u001_on_angie_freenginx_and_nginx_1_29_7() {
    let dir = tempfile::tempdir().unwrap();
    let u001 = |flavor: &str, version: &str| explain(dir.path(), "U001", flavor, version);

    // nginx 1.29.7: every upstream{} pools by default; U001 only on `keepalive 0`.
    let s = section(&u001("nginx", "1.29.7"), "On nginx 1.29.7:");
    assert!(
        s.contains("An `upstream{}` block without `keepalive` keeps an idle pool (`keepalive 32 local`); `keepalive 0` turns it off."),
        "{s}"
    );
    assert!(s.contains("commit 4fbe4b627"), "{s}");
    assert!(
        s.contains("Applies only to upstream blocks that write `keepalive 0`."),
        "{s}"
    );
    assert!(!s.contains("flavors.tsv"), "nginx's facts are its own: {s}");

    // nginx 1.28.0: no pool without `keepalive N`.
    let s = section(&u001("nginx", "1.28.0"), "On nginx 1.28.0:");
    assert!(
        s.contains("keeps idle connections only when it writes `keepalive N`"),
        "{s}"
    );
    assert!(
        s.contains("Applies to every upstream block without `keepalive N`"),
        "{s}"
    );

    // Angie 1.12.1: nginx 1.31.2 inside, but the pool stays off by default.
    let s = section(&u001("angie", "1.12.1"), "On Angie 1.12.1:");
    assert!(
        s.contains("Angie 1.12.1 includes the functionality of nginx 1.31.2"),
        "{s}"
    );
    assert!(
        s.contains(&flavors_tsv_source("angie", "1.12.0", "nginx_base")),
        "{s}"
    );
    assert!(
        s.contains("keeps idle connections only when it writes `keepalive N`"),
        "{s}"
    );
    assert!(
        s.contains(&flavors_tsv_source(
            "angie",
            "1.0.0",
            "keepalive_by_default"
        )),
        "{s}"
    );
    assert!(
        s.contains("Applies to every upstream block without `keepalive N`"),
        "{s}"
    );
    assert!(!s.contains("keepalive 32 local"), "{s}");

    // freenginx 1.29.7: the same number as the nginx release that turned
    // pools on, and still none by default.
    let s = section(&u001("freenginx", "1.29.7"), "On freenginx 1.29.7:");
    assert!(
        s.contains("includes the functionality of nginx 1.25.4"),
        "{s}"
    );
    assert!(
        s.contains(&flavors_tsv_source(
            "freenginx",
            "1.25.4",
            "keepalive_by_default"
        )),
        "{s}"
    );
    assert!(
        s.contains("Applies to every upstream block without `keepalive N`"),
        "{s}"
    );
    // Given versions are not called assumed.
    assert!(!s.contains("No version given"), "{s}");
}

#[test]
fn u002_follows_each_servers_proxy_http_version_default() {
    let dir = tempfile::tempdir().unwrap();
    let section_of = |flavor: &str, version: &str, header: &str| {
        section(&explain(dir.path(), "U002", flavor, version), header)
    };
    let s = section_of("nginx", "1.28.0", "On nginx 1.28.0:");
    assert!(s.contains("`proxy_http_version` defaults to 1.0."), "{s}");
    assert!(
        s.contains("Applies where a route to an upstream block with `keepalive N` does not set `proxy_http_version 1.1`."),
        "{s}"
    );

    let s = section_of("nginx", "1.29.7", "On nginx 1.29.7:");
    assert!(s.contains("`proxy_http_version` defaults to 1.1."), "{s}");
    assert!(s.contains("commit 6bb27a631"), "{s}");
    assert!(
        s.contains("Applies only where `proxy_http_version 1.0` is written, on a route to an upstream block (any without `keepalive 0`)."),
        "{s}"
    );

    // Angie 1.12: HTTP/1.1 by default like nginx 1.29.7, but only explicit pools.
    let s = section_of("angie", "1.12.1", "On Angie 1.12.1:");
    assert!(s.contains("`proxy_http_version` defaults to 1.1."), "{s}");
    assert!(
        s.contains(&flavors_tsv_source("angie", "1.12.0", "proxy_http_version")),
        "{s}"
    );
    assert!(
        s.contains("Applies only where `proxy_http_version 1.0` is written, on a route to an upstream block with `keepalive N`."),
        "{s}"
    );

    // Angie before 1.12 and freenginx: HTTP/1.0 by default.
    let s = section_of("angie", "1.11.4", "On Angie 1.11.4:");
    assert!(s.contains("`proxy_http_version` defaults to 1.0."), "{s}");
    let s = section_of("freenginx", "1.29.7", "On freenginx 1.29.7:");
    assert!(s.contains("`proxy_http_version` defaults to 1.0."), "{s}");
    assert!(
        s.contains(&flavors_tsv_source(
            "freenginx",
            "1.25.4",
            "proxy_http_version"
        )),
        "{s}"
    );
}

#[test]
fn u003_connection_header_by_server() {
    let dir = tempfile::tempdir().unwrap();
    let run =
        |flavor: &str, version: &str| text(&explain(dir.path(), "U003", flavor, version).stdout);
    let angie = run("angie", "1.12.1");
    assert!(
        angie.contains("Angie sends no `Connection` header to the backend unless a `proxy_set_header Connection` line says otherwise."),
        "{angie}"
    );
    assert!(angie.contains("Applies only where `proxy_set_header Connection` is set to `close`"));
    let freenginx = run("freenginx", "1.29.7");
    assert!(
        freenginx.contains("Without a `proxy_set_header Connection` line in effect, freenginx sends `Connection: close` to the backend."),
        "{freenginx}"
    );
}

#[test]
fn without_a_flavor_or_version_the_doc_is_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let plain = upkeep_in(dir.path(), &["explain", "U001"]);
    assert_eq!(plain.status.code(), Some(0));
    let plain = text(&plain.stdout);
    assert!(!plain.contains("\nOn "), "{plain}");
    let with = text(&explain(dir.path(), "U001", "angie", "1.12.1").stdout);
    assert!(with.starts_with(&plain), "the section only follows the doc");
}

#[test]
fn flavor_from_upkeep_toml_and_flags_over_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("upkeep.toml"), "flavor = \"freenginx\"\n").unwrap();
    // No version anywhere, and this host's nginx (if any) is not freenginx:
    // the flavor's assumed version, said to be assumed.
    let out = upkeep_in(dir.path(), &["explain", "U001"]);
    let s = section(&out, "On freenginx 1.29.7:");
    assert!(
        s.contains(
            "No version given: upkeep assumes freenginx 1.29.7 (give --nginx-version for another)."
        ),
        "{s}"
    );
    section(
        &explain(dir.path(), "U001", "angie", "1.11.4"),
        "On Angie 1.11.4:",
    );
    // --config-file names another settings file.
    let other = dir.path().join("other.toml");
    std::fs::write(&other, "flavor = \"angie\"\nnginx_version = \"1.12.1\"\n").unwrap();
    let out = upkeep_in(
        dir.path(),
        &["explain", "U002", "--config-file", other.to_str().unwrap()],
    );
    section(&out, "On Angie 1.12.1:");
}

#[test]
fn unknown_flavor_or_bad_version_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = upkeep_in(dir.path(), &["explain", "U001", "--flavor", "tengine"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr)
            .contains("--flavor: unknown flavor \"tengine\": expected nginx, angie or freenginx"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let out = upkeep_in(dir.path(), &["explain", "U001", "--nginx-version", "one"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--nginx-version"),
        "{}",
        text(&out.stderr)
    );
    let out = upkeep_in(dir.path(), &["rules", "--flavor", "tengine"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn rules_say_which_rules_can_report_on_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let rules = |args: &[&str]| -> Value {
        let mut all = vec!["rules", "--format", "json"];
        all.extend_from_slice(args);
        let out = upkeep_in(dir.path(), &all);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let can_fire = |v: &Value, id: &str| {
        v["rules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .unwrap()["can_fire"]
            .clone()
    };
    let nginx = rules(&["--flavor", "nginx", "--nginx-version", "1.29.7"]);
    assert_eq!(nginx["flavor"], "nginx");
    assert_eq!(nginx["nginx_version"], "1.29.7");
    // The balancer order stopped mattering in 1.29.7; HTTP/2 proxying exists.
    assert_eq!(can_fire(&nginx, "U006"), false);
    assert_eq!(can_fire(&nginx, "U019"), true);
    let freenginx = rules(&["--flavor", "freenginx", "--nginx-version", "1.29.7"]);
    assert_eq!(can_fire(&freenginx, "U006"), true);
    assert_eq!(can_fire(&freenginx, "U019"), false);
    // Without a server: the plain list, as before.
    let plain = rules(&[]);
    assert!(plain.get("flavor").is_none());
    assert!(plain["rules"][0].get("can_fire").is_none());
}

/// `flavor = "nginx"` in upkeep.toml names the server as `--flavor nginx`
/// does, unlike leaving the key out: `explain` ends with the section for
/// nginx and `rules` says which rules can report there.
#[test]
fn flavor_nginx_in_upkeep_toml_names_the_server_as_the_flag_does() {
    let dir = tempfile::tempdir().unwrap();
    let flag = upkeep_in(dir.path(), &["explain", "U001", "--flavor", "nginx"]);
    assert!(
        text(&flag.stdout).contains("\nOn nginx "),
        "{}",
        text(&flag.stdout)
    );
    let flag_rules = upkeep_in(
        dir.path(),
        &["rules", "--format", "json", "--flavor", "nginx"],
    );

    std::fs::write(dir.path().join("upkeep.toml"), "flavor = \"nginx\"\n").unwrap();
    let from_file = upkeep_in(dir.path(), &["explain", "U001"]);
    assert_eq!(
        from_file.status.code(),
        Some(0),
        "{}",
        text(&from_file.stderr)
    );
    assert_eq!(text(&from_file.stdout), text(&flag.stdout));
    let rules = upkeep_in(dir.path(), &["rules", "--format", "json"]);
    assert_eq!(rules.status.code(), Some(0), "{}", text(&rules.stderr));
    let rules: Value = serde_json::from_slice(&rules.stdout).unwrap();
    assert_eq!(rules["flavor"], "nginx", "{rules}");
    assert!(rules["rules"][0].get("can_fire").is_some(), "{rules}");
    assert_eq!(
        rules,
        serde_json::from_slice::<Value>(&flag_rules.stdout).unwrap()
    );
}

#[test]
fn a_version_with_anything_but_numbers_is_refused_not_cut_short() {
    // `1.29,7` used to be read as 1.29.0: the doc then spoke of a server
    // without 1.29.7's upstream keep-alive default.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("nginx.conf"), "events {}\n").unwrap();
    for bad in [
        "1.29,7",
        "1..29",
        "1.29.7rc1",
        "1.29\u{1b}[31m",
        "1.2.3.4",
        "",
    ] {
        for args in [
            vec!["explain", "U001", "--nginx-version", bad],
            vec!["rules", "--nginx-version", bad],
            vec!["check", "--nginx-version", bad, "nginx.conf"],
        ] {
            let out = upkeep_in(dir.path(), &args);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{args:?}: {}",
                text(&out.stdout)
            );
            assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
            let shown = format!("{:?}", bad.trim());
            let expected = format!(
                "error: --nginx-version: invalid nginx version {}: expected MAJOR.MINOR.PATCH such as 1.28.0\n",
                shown.replace('\u{1b}', "\u{241b}")
            );
            assert_eq!(text(&out.stderr), expected, "{args:?}");
        }
    }
    // The same in upkeep.toml.
    std::fs::write(
        dir.path().join("upkeep.toml"),
        "nginx_version = \"1.29,7\"\n",
    )
    .unwrap();
    let out = upkeep_in(dir.path(), &["explain", "U001"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains(
            "invalid nginx version \"1.29,7\": expected MAJOR.MINOR.PATCH such as 1.28.0"
        ),
        "{}",
        text(&out.stderr)
    );
    // What people type still works.
    std::fs::remove_file(dir.path().join("upkeep.toml")).unwrap();
    for good in ["1.29.7", "1.29", "nginx/1.29.7"] {
        let out = upkeep_in(dir.path(), &["explain", "U001", "--nginx-version", good]);
        assert_eq!(out.status.code(), Some(0), "{good}: {}", text(&out.stderr));
        assert!(text(&out.stdout).contains("On nginx 1.29."), "{good}");
    }
}
