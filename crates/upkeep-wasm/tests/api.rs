//! The playground's operations on the README's example (examples/shop), in
//! memory, against what the same crates give when loading from disk.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use upkeep_wasm::api::{self, Input};

fn shop_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/shop")
}

/// The example's files, keyed by their path relative to its directory.
fn shop_files() -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    for rel in [
        "nginx.conf",
        "mime.types",
        "conf.d/upstreams.conf",
        "conf.d/shop.conf",
    ] {
        files.insert(
            rel.to_string(),
            std::fs::read_to_string(shop_dir().join(rel)).unwrap(),
        );
    }
    files
}

fn shop_input() -> Input {
    Input {
        files: shop_files(),
        nginx_version: Some("1.28.0".into()),
        cpus: Some(2),
        ..Input::default()
    }
}

fn rule_ids(doc: &Value) -> Vec<String> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap().to_string())
        .collect()
}

/// The rule IDs the rules give on the example loaded from disk, the way
/// `upkeep check` loads it.
fn rule_ids_from_disk() -> Vec<String> {
    let main = shop_dir().join("nginx.conf");
    let set = upkeep_config::ConfigSet::load_path(
        main.to_str().unwrap(),
        &upkeep_config::LoadOptions::default(),
    )
    .unwrap();
    let opts = Input {
        nginx_version: Some("1.28.0".into()),
        cpus: Some(2),
        ..Input::default()
    }
    .check_options()
    .unwrap();
    let report = upkeep_rules::check(&set, &opts);
    let mut out = upkeep_diag::render::Report::new(&report.findings, &set);
    let version = report.nginx_version.to_string();
    out.nginx_version = Some(&version);
    rule_ids(&upkeep_diag::render::json::to_value(&out))
}

#[test]
fn analyse_finds_what_loading_from_disk_finds() {
    let doc = api::analyse(&shop_input()).unwrap();
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["nginx_version"], "1.28.0");
    assert_eq!(doc["version_source"], "given");
    let ids = rule_ids(&doc);
    assert!(!ids.is_empty());
    assert_eq!(ids, rule_ids_from_disk());
    // Spans name the page's paths; related spans and labels come along.
    let u004 = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "U004")
        .expect("U004 on the example");
    assert_eq!(u004["file"], "conf.d/shop.conf");
    assert!(u004["line"].as_u64().unwrap() >= 1);
    assert!(u004["label"].is_string());
    assert!(!u004["related"].as_array().unwrap().is_empty());
}

/// The text of `path` after `finding`'s fix alone, applied by upkeep-fix to
/// the whole file (the finding is found again by rule and place on a fresh
/// check).
fn whole_file_fix(finding: &Value, path: &str) -> String {
    let input = shop_input();
    let mut loader = upkeep_config::MemoryLoader::new();
    for (p, t) in &input.files {
        loader.insert(p.clone(), t.as_bytes().to_vec());
    }
    let set = upkeep_config::ConfigSet::load("nginx.conf", &loader, &Default::default()).unwrap();
    let report = upkeep_rules::check(&set, &input.check_options().unwrap());
    let sources = upkeep_diag::render::Report::new(&report.findings, &set);
    let found = sources
        .sorted_findings()
        .into_iter()
        .find(|f| {
            let (start, _) = sources.line_cols(f.primary.unwrap());
            f.rule == finding["rule"].as_str().unwrap()
                && u64::from(start.line) == finding["line"].as_u64().unwrap()
                && u64::from(start.col) == finding["column"].as_u64().unwrap()
        })
        .unwrap();
    let applied = upkeep_fix::apply(&set, &[found.fix.as_ref().unwrap()]);
    let id = set.files.iter().find(|f| f.path == path).unwrap().id;
    String::from_utf8(applied.changed[&id].clone()).unwrap()
}

#[test]
fn each_fix_is_a_diff_of_its_own_and_fix_all_settles() {
    let doc = api::analyse(&shop_input()).unwrap();
    let fixable: Vec<&Value> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["fix"].is_object())
        .collect();
    assert!(!fixable.is_empty());
    let files = shop_files();
    for f in &fixable {
        let diff = f["fix_diff"].as_str().unwrap();
        let regions = f["fix_regions"].as_object().unwrap();
        assert!(!regions.is_empty());
        let mut expected_diff = String::new();
        for (path, region) in regions {
            // The region put in place of its lines gives the text the fix
            // gives on the whole file, and the excerpt's diff is the whole
            // file's diff.
            let old = &files[path];
            let start = region["start_line"].as_u64().unwrap() as usize - 1;
            let count = region["line_count"].as_u64().unwrap() as usize;
            let lines: Vec<&str> = old.split_inclusive('\n').collect();
            let new = format!(
                "{}{}{}",
                lines[..start].concat(),
                region["text"].as_str().unwrap(),
                lines[start + count..].concat()
            );
            assert_eq!(new, whole_file_fix(f, path), "{path}");
            expected_diff.push_str(&upkeep_fix::unified_diff(
                path,
                old.as_bytes(),
                new.as_bytes(),
                false,
            ));
        }
        assert_eq!(diff, expected_diff);
    }
    let all = api::fix_all(&shop_input()).unwrap();
    assert_eq!(all["ok"], true);
    assert!(all["diff"].as_str().unwrap().contains("+"));
    assert!(all["converged"].as_bool().unwrap());
    // The fixed texts give no further fixable finding.
    let mut fixed = shop_input();
    for (path, text) in all["files"].as_object().unwrap() {
        fixed
            .files
            .insert(path.clone(), text.as_str().unwrap().to_string());
    }
    let again = api::fix_all(&fixed).unwrap();
    assert_eq!(again["diff"], "");
}

#[test]
fn options_and_settings_act_like_the_flags() {
    let mut input = shop_input();
    input.settings = "[rules]\nignore = [\"U004\"]\n".into();
    let doc = api::analyse(&input).unwrap();
    assert!(!rule_ids(&doc).contains(&"U004".to_string()));
    assert_eq!(doc["settings_files"][0], "upkeep.toml");

    let mut bad = shop_input();
    bad.settings = "[rules\n".into();
    let err = api::analyse(&bad).unwrap_err();
    assert_eq!(err.file.as_deref(), Some("upkeep.toml"));

    let mut front = shop_input();
    front.front = Some("no-such-balancer".into());
    assert!(api::analyse(&front)
        .unwrap_err()
        .message
        .contains("no-such-balancer"));

    let mut version = shop_input();
    version.nginx_version = Some("one.two".into());
    assert!(api::analyse(&version).is_err());
}

#[test]
fn a_syntax_error_comes_back_with_its_place() {
    let mut input = shop_input();
    input.files.insert(
        "conf.d/shop.conf".into(),
        "server {\n    listen 80\n".into(),
    );
    let err = api::analyse(&input).unwrap_err();
    assert_eq!(err.file.as_deref(), Some("conf.d/shop.conf"));
    assert!(err.line.is_some() && err.column.is_some());
    assert!(err.rendered.contains("conf.d/shop.conf:"));
    let answer: Value = serde_json::from_str(&upkeep_wasm::analyse("{not json")).unwrap();
    assert_eq!(answer["ok"], false);
}

#[test]
fn nginx_t_output_splits_into_its_files() {
    let mut dump =
        String::from("nginx: the configuration file /etc/nginx/nginx.conf syntax is ok\n");
    for (path, text) in shop_files() {
        dump.push_str(&format!(
            "# configuration file /etc/nginx/{path}:\n{text}\n"
        ));
    }
    let split = api::split_nginx_t(&dump).unwrap();
    let files = split["files"].as_array().unwrap();
    assert_eq!(files.len(), 4);
    let conf_d = files
        .iter()
        .find(|f| f["path"] == "/etc/nginx/conf.d/shop.conf")
        .unwrap();
    assert_eq!(
        conf_d["text"].as_str().unwrap(),
        shop_files()["conf.d/shop.conf"]
    );
    assert!(api::split_nginx_t("server { listen 80; }").is_err());
}

#[test]
fn explain_gives_the_rule_doc() {
    let doc = api::explain("U004").unwrap();
    assert_eq!(doc["id"], "U004");
    assert!(doc["doc"].as_str().unwrap().contains("## "));
    let err = api::explain("U9").unwrap_err();
    assert!(err.message.contains("no rule"));
}

#[test]
fn options_list_the_cli_profiles() {
    let o = api::options();
    let names = |key: &str| -> Vec<String> {
        o[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(names("backends").contains(&"gunicorn".to_string()));
    assert!(names("fronts").contains(&"aws-alb".to_string()));
    assert_eq!(o["default_version"], "1.28.0");
}
