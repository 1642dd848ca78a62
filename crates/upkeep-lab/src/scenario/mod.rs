//! The built-in scenarios: each is a config, backends, a network and a
//! traffic profile chosen so that the before phase shows one keep-alive
//! failure and the after phase (`upkeep fix` applied) shows it gone.

mod client_churn;
mod connection_close;
mod no_pool;
mod port_exhaustion;
mod stale_idle;
pub mod user;

pub use port_exhaustion::PORT_RANGE as PORT_EXHAUSTION_RANGE;

use crate::plan::{ConfigFile, FixSettings, LabPlan, Network, ServerSlot};
use crate::traffic::TrafficProfile;
use std::time::Duration;
pub use upkeep_facts::NginxVersion;

/// Whether `version` pools upstream connections by default (1.29.7+).
fn pools_by_default(version: NginxVersion) -> bool {
    version >= upkeep_facts::landmarks::KEEPALIVE_BY_DEFAULT
}

/// A scenario the `--scenario` flag can name.
pub struct Scenario {
    pub name: &'static str,
    /// One line for `--scenario` help and listings.
    pub summary: &'static str,
    /// The plan for the nginx version that will run it: the defaults that
    /// make the failure differ across versions (1.29.7 turned pooling on).
    pub build: fn(NginxVersion) -> LabPlan,
    /// The rules whose fixes `upkeep fix` must apply to the built-in config
    /// (checked by a test, so config, rules and scenario cannot drift apart).
    pub fixed_by: &'static [&'static str],
    /// The same on nginx 1.29.7 and later.
    pub fixed_by_since_1_29_7: &'static [&'static str],
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
             \n    @STATUS_SERVER@\n}}\n",
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

/// Steady traffic with short gaps, for the scenarios that count connections.
pub(crate) fn busy_traffic() -> TrafficProfile {
    TrafficProfile {
        concurrency: 4,
        post_ratio: 0.5,
        gap_min: Duration::from_millis(5),
        gap_max: Duration::from_millis(15),
        duration: Duration::from_secs(5),
        ..TrafficProfile::default()
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
}

impl<'a> BuiltIn<'a> {
    /// The setting of the scenarios that count connections: [`busy_traffic`]
    /// on loopback, through a 5 ms relay, to an HTTP/1.1 keep-alive backend
    /// that closes idle connections after 75 s (the `backend idle=75s` their
    /// upstreams declare).
    fn counting_connections(
        name: &'a str,
        explanation: &'a str,
        config: BuiltInConfig<'a>,
    ) -> Self {
        BuiltIn {
            name,
            explanation,
            config,
            profile: crate::backend::BackendProfile::keepalive(
                "HTTP/1.1 keep-alive server",
                Some(Duration::from_secs(75)),
            ),
            relay_delay: Some(Duration::from_millis(5)),
            traffic: busy_traffic(),
            network: Network::Loopback,
        }
    }

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
            status_path: STATUS_PATH.to_string(),
            sources: Vec::new(),
            fix: FixSettings::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_config_has_its_placeholders() {
        for s in BUILT_IN {
            let plan = (s.build)(NginxVersion::new(1, 22, 1));
            let text = &plan.main_file().text;
            for p in [
                "@LISTEN@",
                "@STATUS_SERVER@",
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
    fn upkeep_fix_applies_the_rules_each_scenario_is_about() {
        for (s, version) in BUILT_IN
            .iter()
            .flat_map(|s| ["1.22.1", "1.31.4"].map(|v| (s, v)))
        {
            let plan = (s.build)(NginxVersion::parse(version).unwrap());
            let addresses = crate::render::Addresses {
                listen: "127.0.0.1:8080".parse().unwrap(),
                status: Some("127.0.0.1:8081".parse().unwrap()),
                status_path: STATUS_PATH.to_string(),
                servers: [("app".to_string(), "127.0.0.1:9001".parse().unwrap())]
                    .into_iter()
                    .collect(),
                temp_paths: "proxy_temp_path /tmp/t;\n".to_string(),
            };
            let rendered = crate::render::render(&plan.files, &addresses).unwrap();
            let ctx = crate::fix::FixContext {
                plan: &plan,
                nginx_version: version,
            };
            let (fixed, summary) = crate::fix::apply(&ctx, rendered.clone()).unwrap();
            let applied: Vec<&str> = summary.applied.iter().map(|a| a.rule.as_str()).collect();
            let expected = if pools_by_default(NginxVersion::parse(version).unwrap()) {
                s.fixed_by_since_1_29_7
            } else {
                s.fixed_by
            };
            for rule in expected {
                assert!(
                    applied.contains(rule),
                    "{} on {version}: {rule} not applied; applied {applied:?}\n{}",
                    s.name,
                    summary.diff
                );
            }
            assert_ne!(fixed, rendered, "{}", s.name);
        }
    }
}
