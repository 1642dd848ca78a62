//! What the user tells `check` besides the configuration.

use std::collections::BTreeMap;

use upkeep_diag::Severity;
use upkeep_facts::{BackendFacts, Flavor, NginxVersion, Target};

/// Where the target nginx version came from; always stated in the output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum VersionSource {
    /// `--nginx-version` or upkeep.toml.
    Given,
    /// `nginx -v` of the binary on this host.
    Detected,
    /// Nothing given or detected: [`NginxVersion::DEFAULT_ASSUMED`].
    #[default]
    Assumed,
    /// Not given: the version the recognized controller release ships (a
    /// configuration a Kubernetes controller rendered runs on the nginx of
    /// the controller's image, not on this host's).
    Controller,
}

impl VersionSource {
    pub fn as_str(self) -> &'static str {
        match self {
            VersionSource::Given => "given",
            VersionSource::Detected => "detected",
            VersionSource::Assumed => "assumed",
            VersionSource::Controller => "controller",
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct CheckOptions {
    /// The server flavor (`--flavor`, `flavor =` in upkeep.toml, or read
    /// from `nginx -v`); nginx unless said otherwise.
    pub flavor: Flavor,
    /// `flavor` was named (`--flavor`, or `flavor =` in upkeep.toml, even
    /// `"nginx"`), not left to the default: a binary of another flavor on
    /// this host then does not change it.
    pub flavor_given: bool,
    /// The flavor's own version number.
    pub nginx_version: Option<NginxVersion>,
    pub version_source: VersionSource,
    /// What `nginx -v` of this host's binary said when its flavor is not
    /// the one asked for (`freenginx 1.29.7` under `--flavor nginx`): a
    /// binary was found, its version just says nothing about the target.
    pub unused_binary: Option<Target>,
    /// Idle timeout of the load balancer in front of nginx (`--front-idle`).
    pub front_idle_ms: Option<u64>,
    /// A front profile name from facts/backends.tsv (`--front aws-alb`).
    pub front_name: Option<String>,
    /// Backend facts by upstream name, or by server address (`127.0.0.1:8080`)
    /// for probe results.
    pub backends: BTreeMap<String, BackendFacts>,
    /// Cores to resolve `worker_processes auto` with.
    pub cpus: Option<u32>,
    /// Client `keepalive_requests` to aim for (C001; default 1000).
    pub target_requests: Option<u64>,
    /// Rule IDs or prefixes to run (`U`, `U00`, `C001`); `None` = all.
    pub select: Option<Vec<String>>,
    /// Rule IDs or prefixes not to run.
    pub ignore: Vec<String>,
    pub severity_overrides: BTreeMap<String, Severity>,
}

impl CheckOptions {
    /// The server the check runs for: the flavor at the given or detected
    /// version, else at the flavor's assumed default.
    pub fn target(&self) -> Target {
        Target::new(
            self.flavor,
            self.nginx_version
                .unwrap_or_else(|| self.flavor.default_version()),
        )
    }

    /// Why the version is the flavor's assumed default, for the
    /// "assuming nginx X (…)" notes.
    pub fn assumed_version_reason(&self) -> String {
        match &self.unused_binary {
            Some(found) => format!(
                "no --nginx-version given; the nginx binary on this host is {found}, not {}, so its version was not used",
                self.flavor.display()
            ),
            None => "no --nginx-version given and no nginx binary detected".to_string(),
        }
    }

    /// Where the version came from, in words, for a report that states
    /// the version it assumes: "--nginx-version", "from nginx -v",
    /// "assumed; no --nginx-version given and no nginx binary detected".
    /// A flavor other than nginx is named with its own version ("from nginx
    /// -v: freenginx 1.29.7"), since [`Self::version`] is then the nginx
    /// release it behaves as.
    pub fn version_source_text(&self) -> String {
        let target = self.target();
        let of = if target.flavor == Flavor::Nginx {
            String::new()
        } else {
            format!(": {target}")
        };
        match self.version_source {
            VersionSource::Given => format!("--nginx-version{of}"),
            VersionSource::Detected => format!("from nginx -v{of}"),
            VersionSource::Controller => format!("the controller's release{of}"),
            VersionSource::Assumed => {
                format!("assumed{of}; {}", self.assumed_version_reason())
            }
        }
    }

    /// The nginx release whose behaviour the check resolves defaults with:
    /// the version itself for nginx ([`Target::behaviour_version`]).
    pub fn version(&self) -> NginxVersion {
        self.target().behaviour_version()
    }

    /// Whether rule `id` is selected and not ignored. Selectors match by
    /// prefix (`U` selects every U rule) or by rule name.
    pub fn is_enabled(&self, id: &str, name: &str) -> bool {
        let matches = |sel: &String| id.starts_with(sel.as_str()) || sel == name;
        let selected = match &self.select {
            Some(list) => list.iter().any(matches),
            None => true,
        };
        selected && !self.ignore.iter().any(matches)
    }

    /// The front's idle timeout toward nginx and a description of where it
    /// comes from (`--front-idle` wins over `--front`).
    pub fn front(&self) -> Option<(u64, String)> {
        if let Some(ms) = self.front_idle_ms {
            let what = match &self.front_name {
                Some(n) => format!(
                    "{n} (idle {} declared)",
                    upkeep_facts::describe_duration(ms)
                ),
                None => format!(
                    "the front (idle {} declared)",
                    upkeep_facts::describe_duration(ms)
                ),
            };
            return Some((ms, what));
        }
        let name = self.front_name.as_deref()?;
        let p = upkeep_facts::front_profile(name)?;
        Some((
            p.idle_timeout_ms,
            format!("{} (profile {}: {})", p.display, p.name, p.note),
        ))
    }
}
