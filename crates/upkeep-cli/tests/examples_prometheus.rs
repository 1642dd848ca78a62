//! examples/prometheus: the alerting rules pass `promtool check rules` and
//! their unit tests (`promtool test rules`), and every PromQL expression of
//! the rules and the Grafana dashboard names only metrics `upkeep watch`
//! exports (the exposition's own list, which the exposition test checks
//! against a real scrape), while the dashboard shows every one of them.

mod common;

use common::installed;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use upkeep_host::watch::prometheus::METRICS;
use yaml_rust2::{Yaml, YamlLoader};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/prometheus")
}

fn promtool(args: &[&str]) -> Option<(bool, String)> {
    let promtool = installed("promtool", "prometheus")?;
    let out = Command::new(promtool)
        .args(args)
        .current_dir(examples())
        .output()
        .unwrap();
    Some((
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

#[test]
fn the_alert_rules_pass_promtool_and_their_unit_tests() {
    let Some((ok, said)) = promtool(&["check", "rules", "upkeep-alerts.yml"]) else {
        return;
    };
    assert!(ok && said.contains("SUCCESS"), "{said}");
    let (ok, said) = promtool(&["test", "rules", "upkeep-alerts.test.yml"]).unwrap();
    assert!(ok && said.contains("SUCCESS"), "{said}");
}

/// Every alert of the rules file has a unit test where it fires and one
/// where it does not.
#[test]
fn every_alert_is_tested_firing_and_not_firing() {
    let rules = load_yaml("upkeep-alerts.yml");
    let tests = load_yaml("upkeep-alerts.test.yml");
    let alerts: BTreeSet<String> = rule_entries(&rules)
        .filter_map(|r| r["alert"].as_str().map(str::to_string))
        .collect();
    assert!(alerts.len() >= 4, "{alerts:?}");
    let mut firing = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for test in tests["tests"].as_vec().unwrap() {
        for case in test["alert_rule_test"].as_vec().into_iter().flatten() {
            let name = case["alertname"].as_str().unwrap().to_string();
            match case["exp_alerts"].as_vec() {
                Some(v) if !v.is_empty() => {
                    for a in v {
                        let summary = a["exp_annotations"]["summary"].as_str().unwrap();
                        assert!(!summary.contains("{{"), "templated: {summary}");
                    }
                    firing.insert(name)
                }
                _ => quiet.insert(name),
            };
        }
    }
    assert_eq!(firing, alerts, "alerts tested firing");
    assert_eq!(quiet, alerts, "alerts tested not firing");
    for r in rule_entries(&rules).filter(|r| r["alert"].as_str().is_some()) {
        assert!(r["for"].as_str().is_some(), "{:?} has no for:", r["alert"]);
        let summary = r["annotations"]["summary"].as_str().unwrap();
        let description = r["annotations"]["description"].as_str().unwrap();
        // Per-upstream alerts name the upstream and the backend.
        if r["expr"].as_str().unwrap().contains("upstream, backend") {
            for text in [summary, description] {
                assert!(
                    text.contains("$labels.upstream") && text.contains("$labels.backend"),
                    "{text}"
                );
            }
        }
    }
}

#[test]
fn every_expression_names_an_exported_metric_and_the_dashboard_shows_them_all() {
    let exported: BTreeSet<&str> = METRICS.iter().map(|f| f.name).collect();
    let rules = load_yaml("upkeep-alerts.yml");
    let recorded: BTreeSet<String> = rule_entries(&rules)
        .filter_map(|r| r["record"].as_str().map(str::to_string))
        .collect();
    let known = |name: &str| exported.contains(name) || recorded.contains(name);

    let mut rule_exprs = 0;
    for r in rule_entries(&rules) {
        let expr = r["expr"].as_str().unwrap();
        rule_exprs += 1;
        let names = metric_names(expr);
        assert!(!names.is_empty(), "no metric in {expr}");
        for n in names {
            assert!(known(&n), "{n} (in the rules: {expr}) is not exported");
        }
    }
    assert!(rule_exprs >= 5);

    let text = std::fs::read_to_string(examples().join("grafana-dashboard.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    let variable = |name: &str| {
        variables
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no ${name} variable"))
    };
    assert_eq!(variable("datasource")["type"], "datasource");
    assert_eq!(variable("datasource")["query"], "prometheus");
    let instance = variable("instance");
    assert_eq!(instance["type"], "query");
    let query = instance["definition"].as_str().unwrap();
    let metric = query
        .strip_prefix("label_values(")
        .and_then(|q| q.split_once(','))
        .map(|(m, _)| m.trim())
        .unwrap_or_else(|| panic!("{query}"));
    assert!(exported.contains(metric), "{query}");

    let mut shown = BTreeSet::new();
    let mut panels = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        if panel["type"] == "row" {
            continue;
        }
        panels += 1;
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{panel}");
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            assert!(expr.contains("instance=~\"$instance\""), "{expr}");
            let names = metric_names(expr);
            assert!(!names.is_empty(), "no metric in {expr}");
            for n in names {
                assert!(known(&n), "{n} (in the dashboard: {expr}) is not exported");
                shown.insert(n);
            }
        }
    }
    let missing: Vec<&&str> = exported.iter().filter(|m| !shown.contains(**m)).collect();
    assert!(missing.is_empty(), "not in the dashboard: {missing:?}");
    assert!(panels >= exported.len(), "a panel per metric");
}

#[test]
fn metric_names_are_found_in_promql() {
    let names = metric_names(
        r#"sum by (instance, upstream) (rate(upkeep_a_total{signature=~"x|y", b="{c}"}[5m])) / on (instance) group_left(upstream) upkeep_b_info > 0.5 and up offset 5m"#,
    );
    assert_eq!(
        names,
        BTreeSet::from(["upkeep_a_total".into(), "upkeep_b_info".into(), "up".into()])
    );
    assert_eq!(
        metric_names(
            "upkeep:x:ratio_rate5m < 1.5 and on (a) sum without (b) (y[$__rate_interval])"
        ),
        BTreeSet::from(["upkeep:x:ratio_rate5m".into(), "y".into()])
    );
}

fn load_yaml(name: &str) -> Yaml {
    let text = std::fs::read_to_string(examples().join(name)).unwrap();
    YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .remove(0)
}

fn rule_entries(rules: &Yaml) -> impl Iterator<Item = &Yaml> {
    rules["groups"]
        .as_vec()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_vec().unwrap())
}

/// The metric names a PromQL expression selects: identifiers outside label
/// matchers, strings, ranges and grouping clauses that are not functions,
/// keywords, aggregation operators (`sum by (x) (…)` puts the clause
/// between the operator and its parenthesis) or numbers.
fn metric_names(expr: &str) -> BTreeSet<String> {
    const KEYWORDS: &[&str] = &[
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "inf",
        "nan",
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ];
    const GROUPING: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let mut skip_group = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                // Strings inside matchers may hold the closing bracket.
                let mut quote = None;
                while i < chars.len() {
                    match (quote, chars[i]) {
                        (None, '"' | '\'') => quote = Some(chars[i]),
                        (Some(q), ch) if ch == q => quote = None,
                        (None, ch) if ch == close => break,
                        _ => {}
                    }
                    i += 1;
                }
                i += 1;
            }
            '(' if skip_group => {
                while i < chars.len() && chars[i] != ')' {
                    i += 1;
                }
                i += 1;
                skip_group = false;
            }
            '$' => {
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let mut j = i;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                let is_call = chars.get(j) == Some(&'(');
                if GROUPING.contains(&word.as_str()) {
                    skip_group = true;
                } else if !is_call && !KEYWORDS.contains(&word.to_lowercase().as_str()) {
                    names.insert(word);
                }
            }
            c if c.is_ascii_digit() || c == '.' => {
                // A number, or a duration after offset (5m): not a name.
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    names
}

/// The README's "Many hosts" table lists exactly the exported families,
/// with their types.
#[test]
fn the_readme_lists_every_exported_metric() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let section = readme
        .split("\n## Many hosts\n")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("a Many hosts section");
    let listed: BTreeSet<(String, String)> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `upkeep_"))
        .map(|l| {
            let mut cells = l.split('|');
            let name = format!(
                "upkeep_{}",
                cells.next().unwrap().trim().trim_end_matches('`')
            );
            (name, cells.next().unwrap().trim().to_string())
        })
        .collect();
    let exported: BTreeSet<(String, String)> = METRICS
        .iter()
        .map(|f| (f.name.to_string(), f.kind.as_str().to_string()))
        .collect();
    assert_eq!(listed, exported);
}
