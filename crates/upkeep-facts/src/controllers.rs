//! Kubernetes controllers that render nginx configurations: the nginx each
//! release ships, and which of their settings (ConfigMap keys, Ingress
//! annotations, Gateway API policy fields) writes which keep-alive directive,
//! with its default. Data: `data/controllers.tsv` and
//! `data/controller_settings.tsv`, each row with the repository, tag and
//! file:line it was read from.
//!
//! A controller rewrites its rendered configuration on every change, so an
//! edit to that file is lost: the setting is what a user changes.

use std::sync::OnceLock;

use crate::version::NginxVersion;

/// The controllers upkeep recognizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Controller {
    /// kubernetes/ingress-nginx (the community controller).
    IngressNginx,
    /// nginx/kubernetes-ingress (F5 NGINX Ingress Controller).
    NginxIngress,
    /// nginx/nginx-gateway-fabric.
    GatewayFabric,
}

impl Controller {
    /// The name used in the data files and on the command line.
    pub fn id(self) -> &'static str {
        match self {
            Controller::IngressNginx => "ingress-nginx",
            Controller::NginxIngress => "nginx-ingress",
            Controller::GatewayFabric => "nginx-gateway-fabric",
        }
    }

    pub fn from_id(id: &str) -> Option<Controller> {
        [
            Controller::IngressNginx,
            Controller::NginxIngress,
            Controller::GatewayFabric,
        ]
        .into_iter()
        .find(|c| c.id() == id)
    }

    /// What it is called, for people.
    pub fn display(self) -> &'static str {
        releases()
            .iter()
            .find(|r| r.controller == self)
            .map_or(self.id(), |r| r.display)
    }

    /// Its newest release in the data: what a configuration it rendered is
    /// taken to come from when nothing says otherwise.
    pub fn current_release(self) -> &'static ControllerRelease {
        releases()
            .iter()
            .filter(|r| r.controller == self)
            .max_by_key(|r| r.release)
            .expect("every controller has a release row")
    }

    /// The newest release in the data that is not newer than `release`.
    pub fn release_at(self, release: NginxVersion) -> Option<&'static ControllerRelease> {
        releases()
            .iter()
            .filter(|r| r.controller == self && r.release <= release)
            .max_by_key(|r| r.release)
    }

    /// The settings of `release` (the row of each setting with the newest
    /// `since` not after `release`).
    pub fn settings_at(self, release: NginxVersion) -> Vec<&'static ControllerSetting> {
        let mut out: Vec<&'static ControllerSetting> = Vec::new();
        for s in settings()
            .iter()
            .filter(|s| s.controller == self && s.since <= release)
        {
            match out.iter_mut().find(|o| o.setting == s.setting) {
                Some(o) if o.since <= s.since => *o = s,
                Some(_) => {}
                None => out.push(s),
            }
        }
        out
    }
}

/// One release of a controller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerRelease {
    pub controller: Controller,
    pub display: &'static str,
    /// The release (`1.15.1` for the tag `controller-v1.15.1`).
    pub release: NginxVersion,
    /// The commit of the tag (abbreviated).
    pub commit: &'static str,
    /// The nginx version its image builds.
    pub nginx: NginxVersion,
    pub source: &'static str,
}

/// How a setting is given to the controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SettingKind {
    /// A key of the controller's ConfigMap.
    ConfigMap,
    /// An annotation on the Ingress resource.
    Annotation,
    /// A field of a Gateway API policy resource.
    Policy,
}

impl SettingKind {
    pub fn describe(self) -> &'static str {
        match self {
            SettingKind::ConfigMap => "ConfigMap key",
            SettingKind::Annotation => "Ingress annotation",
            SettingKind::Policy => "policy field",
        }
    }
}

/// The unit a setting's value is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SettingUnit {
    /// A whole number of seconds: the template appends `s`.
    Seconds,
    /// nginx time syntax (`75s`, `1h`).
    Duration,
    Count,
    Text,
}

/// One controller setting that writes a keep-alive directive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerSetting {
    pub controller: Controller,
    /// The first release this row holds for.
    pub since: NginxVersion,
    pub kind: SettingKind,
    /// `upstream-keepalive-timeout`, `nginx.org/keepalive`,
    /// `UpstreamSettingsPolicy spec.keepAlive.timeout`.
    pub setting: &'static str,
    /// The directive it writes (`keepalive_timeout`).
    pub directive: &'static str,
    /// Where the template writes it: `http`, `server`, `upstream`,
    /// `location`, `events`, `main`.
    pub context: &'static str,
    /// The value used when the setting is not given; `None` when the
    /// template then writes no directive.
    pub default: Option<&'static str>,
    pub unit: SettingUnit,
    pub source: &'static str,
}

const RELEASES_TSV: &str = include_str!("../data/controllers.tsv");
const SETTINGS_TSV: &str = include_str!("../data/controller_settings.tsv");

fn data_rows(tsv: &'static str, columns: usize) -> impl Iterator<Item = Vec<&'static str>> {
    tsv.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .skip(1)
        .map(move |l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert_eq!(cols.len(), columns, "malformed controller row: {l}");
            cols
        })
}

fn version(cell: &str) -> NginxVersion {
    NginxVersion::parse(cell).unwrap_or_else(|e| panic!("controller data: {e}"))
}

fn controller(cell: &str) -> Controller {
    Controller::from_id(cell).unwrap_or_else(|| panic!("controller data: unknown {cell:?}"))
}

/// Every release row.
pub fn releases() -> &'static [ControllerRelease] {
    static TABLE: OnceLock<Vec<ControllerRelease>> = OnceLock::new();
    TABLE.get_or_init(|| {
        data_rows(RELEASES_TSV, 6)
            .map(|c| ControllerRelease {
                controller: controller(c[0]),
                display: c[1],
                release: version(c[2]),
                commit: c[3],
                nginx: version(c[4]),
                source: c[5],
            })
            .collect()
    })
}

/// Every setting row.
pub fn settings() -> &'static [ControllerSetting] {
    static TABLE: OnceLock<Vec<ControllerSetting>> = OnceLock::new();
    TABLE.get_or_init(|| {
        data_rows(SETTINGS_TSV, 9)
            .map(|c| ControllerSetting {
                controller: controller(c[0]),
                since: version(c[1]),
                kind: match c[2] {
                    "configmap" => SettingKind::ConfigMap,
                    "annotation" => SettingKind::Annotation,
                    "policy" => SettingKind::Policy,
                    other => panic!("controller data: unknown kind {other:?}"),
                },
                setting: c[3],
                directive: c[4],
                context: c[5],
                default: (c[6] != "-").then_some(c[6]),
                unit: match c[7] {
                    "seconds" => SettingUnit::Seconds,
                    "duration" => SettingUnit::Duration,
                    "count" => SettingUnit::Count,
                    "text" => SettingUnit::Text,
                    other => panic!("controller data: unknown unit {other:?}"),
                },
                source: c[8],
            })
            .collect()
    })
}

/// The setting of `controller` (at `release`) of `kind` that writes
/// `directive` in `context`.
pub fn controller_setting(
    controller: Controller,
    release: NginxVersion,
    kind: SettingKind,
    directive: &str,
    context: &str,
) -> Option<&'static ControllerSetting> {
    controller
        .settings_at(release)
        .into_iter()
        .find(|s| s.kind == kind && s.directive == directive && s.context == context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_parses_and_names_its_source() {
        assert!(releases().len() >= 3);
        for s in settings() {
            assert!(
                s.source.contains(" v") || s.source.contains("controller-v"),
                "{} has no release in its source",
                s.setting
            );
            assert!(Controller::from_id(s.controller.id()).is_some());
        }
    }

    #[test]
    fn ingress_nginx_defaults_follow_the_release() {
        let ka = |release: &str| {
            controller_setting(
                Controller::IngressNginx,
                NginxVersion::parse(release).unwrap(),
                SettingKind::ConfigMap,
                "keepalive_requests",
                "http",
            )
            .and_then(|s| s.default)
        };
        assert_eq!(ka("1.5.1"), Some("100"));
        assert_eq!(ka("1.6.4"), Some("1000"));
        assert_eq!(ka("1.15.1"), Some("1000"));
        let time = |release: &str| {
            controller_setting(
                Controller::IngressNginx,
                NginxVersion::parse(release).unwrap(),
                SettingKind::ConfigMap,
                "keepalive_time",
                "upstream",
            )
        };
        assert!(
            time("1.1.0").is_none(),
            "upstream-keepalive-time came in 1.2.0"
        );
        assert_eq!(time("1.15.1").unwrap().setting, "upstream-keepalive-time");
    }

    #[test]
    fn current_releases_and_their_nginx() {
        let ing = Controller::IngressNginx.current_release();
        assert_eq!(ing.release.to_string(), "1.15.1");
        assert_eq!(ing.nginx.to_string(), "1.27.1");
        assert_eq!(
            Controller::NginxIngress.current_release().nginx.to_string(),
            "1.31.3"
        );
        assert_eq!(
            Controller::GatewayFabric
                .release_at(NginxVersion::new(2, 6, 7))
                .unwrap()
                .commit,
            "5e34a17a8"
        );
    }
}
