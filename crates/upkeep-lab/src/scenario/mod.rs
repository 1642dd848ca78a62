//! The built-in scenarios: each is a config, backends, a network and a
//! traffic profile chosen so that the before phase shows one keep-alive
//! failure and the after phase (`upkeep fix` applied) shows it gone.

mod client_churn;
mod connection_close;
mod no_pool;
mod port_exhaustion;
mod stale_idle;
pub mod user;

use crate::plan::{ConfigFile, LabPlan, Network, ServerSlot};
use crate::traffic::TrafficProfile;
use std::time::Duration;

/// A scenario the `--scenario` flag can name.
pub struct Scenario {
    pub name: &'static str,
    /// One line for `--scenario` help and listings.
    pub summary: &'static str,
    pub build: fn() -> LabPlan,
}

/// Every built-in scenario (`user` is built from the user's config instead).
pub const BUILT_IN: &[Scenario] = &[
    stale_idle::SCENARIO,
    no_pool::SCENARIO,
    port_exhaustion::SCENARIO,
    connection_close::SCENARIO,
    client_churn::SCENARIO,
];

pub fn find(name: &str) -> Option<&'static Scenario> {
    BUILT_IN.iter().find(|s| s.name == name)
}

/// The path of the lab's stub_status location in built-in configs.
pub const STATUS_PATH: &str = "/lab_status";

/// Pieces of a built-in config; everything else is the same skeleton.
struct BuiltInConfig<'a> {
    scenario: &'a str,
    /// Directives for `http{}` (client-side keep-alive settings).
    http: &'a str,
    /// Body of `upstream app {}`; must contain `@SERVER:app@`.
    upstream: &'a str,
    /// Directives for `location / {}` besides `proxy_pass`.
    location: &'a str,
}

impl BuiltInConfig<'_> {
    fn render(&self) -> ConfigFile {
        let indent = |text: &str, n: usize| -> String {
            text.lines()
                .map(|l| {
                    if l.is_empty() {
                        String::new()
                    } else {
                        format!("{}{l}\n", " ".repeat(n))
                    }
                })
                .collect()
        };
        let text = format!(
            "# upkeep lab: built-in config of the {scenario} scenario.\n\
             worker_processes 1;\n\
             error_log logs/error.log warn;\n\
             \n\
             events {{\n    worker_connections 1024;\n}}\n\
             \n\
             http {{\n    @TEMP_PATHS@\n\
             \x20   log_format lab 'lab $request_method $status \"$upstream_status\"';\n\
             \x20   access_log logs/access.log lab;\n\
             {http}\
             \n    upstream app {{\n{upstream}    }}\n\
             \n    server {{\n        listen @LISTEN@;\n\
             \n        location / {{\n            proxy_pass http://app;\n{location}        }}\n    }}\n\
             \n    # The lab's own status page.\n    server {{\n        listen @STATUS_LISTEN@;\n\
             \x20       location = {STATUS_PATH} {{\n            stub_status;\n        }}\n    }}\n}}\n",
            scenario = self.scenario,
            http = indent(self.http, 4),
            upstream = indent(self.upstream, 8),
            location = indent(self.location, 12),
        );
        ConfigFile {
            path: "nginx.conf".to_string(),
            text,
        }
    }
}

/// Everything a built-in scenario chooses.
struct BuiltIn<'a> {
    name: &'a str,
    explanation: &'a str,
    config: BuiltInConfig<'a>,
    profile: crate::backend::BackendProfile,
    relay_delay: Option<Duration>,
    traffic: TrafficProfile,
    network: Network,
    expected_fix: fn(&str) -> String,
}

impl BuiltIn<'_> {
    fn into_plan(self) -> LabPlan {
        LabPlan {
            scenario: self.name.to_string(),
            explanation: self
                .explanation
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
            files: vec![self.config.render()],
            servers: vec![ServerSlot {
                key: "app".to_string(),
                upstream: "app".to_string(),
                original: None,
                profile: self.profile,
            }],
            relay_delay: self.relay_delay,
            traffic: self.traffic,
            network: self.network,
            after: crate::fix::default_after(self.expected_fix),
            status_path: STATUS_PATH.to_string(),
        }
    }
}

/// Inserts `line` (one directive) after the first line for which `anchor`
/// holds, with that line's indentation. For the scenarios' expected fixes.
fn insert_after(text: &str, anchor: impl Fn(&str) -> bool, line: &str) -> String {
    let mut out = String::with_capacity(text.len() + line.len() + 16);
    let mut done = false;
    for l in text.split_inclusive('\n') {
        out.push_str(l);
        if !done && anchor(l.trim()) {
            let indent: String = l.chars().take_while(|c| c.is_whitespace()).collect();
            out.push_str(&format!("{indent}{line}\n"));
            done = true;
        }
    }
    out
}

/// `server ADDRESS…;` inside an upstream block (not `server {`).
fn is_upstream_server(line: &str) -> bool {
    line.starts_with("server ") && line.ends_with(';')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::AfterConfig;

    #[test]
    fn every_built_in_config_has_its_placeholders() {
        for s in BUILT_IN {
            let plan = (s.build)();
            let text = &plan.main_file().text;
            for p in [
                "@LISTEN@",
                "@STATUS_LISTEN@",
                "@TEMP_PATHS@",
                "@SERVER:app@",
            ] {
                assert!(text.contains(p), "{}: no {p}", s.name);
            }
            assert!(!plan.explanation.is_empty());
            assert_eq!(plan.scenario, s.name);
            plan.traffic.validate().unwrap();
        }
    }

    #[test]
    fn expected_fixes_change_the_config() {
        for s in BUILT_IN {
            let plan = (s.build)();
            if let AfterConfig::Expected(f) = plan.after {
                assert_ne!(
                    f(&plan.main_file().text),
                    plan.main_file().text,
                    "{}",
                    s.name
                );
            }
        }
    }
}
