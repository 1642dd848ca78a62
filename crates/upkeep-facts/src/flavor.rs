//! Server flavors: nginx, and the forks Angie and freenginx, whose keep-alive
//! defaults differ from nginx's at the same version number
//! (`data/flavors.tsv`, each row with its source).
//!
//! A [`Target`] is a flavor and that flavor's version. Everything that
//! decides connection reuse is resolved from it in two steps: the nginx
//! release whose behaviour the build shares ([`Target::behaviour_version`]),
//! which the version landmarks and directive defaults are looked up with,
//! and the few facts where the fork departs from that release
//! ([`Target::default_override`], [`Target::sends_connection_close`]).

use std::fmt;
use std::sync::OnceLock;

use crate::version::{landmarks, NginxVersion};

/// Which server the configuration is for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Flavor {
    #[default]
    Nginx,
    Angie,
    Freenginx,
}

impl Flavor {
    pub const ALL: [Flavor; 3] = [Flavor::Nginx, Flavor::Angie, Flavor::Freenginx];

    pub fn name(self) -> &'static str {
        match self {
            Flavor::Nginx => "nginx",
            Flavor::Angie => "angie",
            Flavor::Freenginx => "freenginx",
        }
    }

    /// How the server names itself in text for people.
    pub fn display(self) -> &'static str {
        match self {
            Flavor::Nginx => "nginx",
            Flavor::Angie => "Angie",
            Flavor::Freenginx => "freenginx",
        }
    }

    pub fn parse(s: &str) -> Result<Flavor, String> {
        Flavor::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown flavor {s:?}: expected nginx, angie or freenginx"))
    }

    /// The flavor named in a `-v` output line: `nginx version: nginx/1.28.0`,
    /// `nginx version: freenginx/1.29.7`, `Angie version: Angie/1.12.1`.
    pub fn of_version_line(line: &str) -> Flavor {
        let lower = line.to_ascii_lowercase();
        if lower.contains("angie/") {
            Flavor::Angie
        } else if lower.contains("freenginx/") {
            Flavor::Freenginx
        } else {
            Flavor::Nginx
        }
    }

    /// The version assumed when none is given or detected: nginx 1.28.0
    /// (RULES.md); for the forks, the latest release whose source the facts
    /// were read from (data/flavors.tsv).
    pub fn default_version(self) -> NginxVersion {
        match self {
            Flavor::Nginx => NginxVersion::DEFAULT_ASSUMED,
            Flavor::Angie => NginxVersion::new(1, 12, 1),
            Flavor::Freenginx => NginxVersion::new(1, 29, 7),
        }
    }
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.display())
    }
}

impl std::str::FromStr for Flavor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Flavor::parse(s)
    }
}

/// A flavor at one of its versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    pub flavor: Flavor,
    /// The flavor's own version number (Angie 1.12.1 is not nginx 1.12.1).
    pub version: NginxVersion,
}

impl Target {
    pub const fn nginx(version: NginxVersion) -> Target {
        Target {
            flavor: Flavor::Nginx,
            version,
        }
    }

    pub const fn new(flavor: Flavor, version: NginxVersion) -> Target {
        Target { flavor, version }
    }

    /// The nginx release whose keep-alive behaviour this build shares: the
    /// version itself for nginx; for a fork, the nginx release it includes
    /// (`nginx_base`), held below 1.29.7 when the fork does not turn upstream
    /// keep-alive on by default (that change came with the pool wiring that
    /// makes balancer order irrelevant, which the forks did not take either).
    pub fn behaviour_version(&self) -> NginxVersion {
        if self.flavor == Flavor::Nginx {
            return self.version;
        }
        let base = self
            .fact("nginx_base")
            .and_then(|v| NginxVersion::parse(v).ok())
            // Older than the first recorded release: its oldest known base.
            .or_else(|| {
                rows()
                    .iter()
                    .find(|r| r.flavor == self.flavor && r.fact == "nginx_base")
                    .and_then(|r| NginxVersion::parse(r.value).ok())
            })
            .unwrap_or(self.version);
        if self.keepalive_by_default() {
            base
        } else {
            let last_without = NginxVersion::new(1, 29, 6);
            base.min(last_without)
        }
    }

    /// Whether an `upstream{}` without `keepalive` keeps an idle pool.
    pub fn keepalive_by_default(&self) -> bool {
        match self.flavor {
            Flavor::Nginx => self.version >= landmarks::KEEPALIVE_BY_DEFAULT,
            _ => self.fact("keepalive_by_default") == Some("yes"),
        }
    }

    /// Whether `keepalive` takes the `local` parameter (cached connections
    /// not shared across locations).
    pub fn has_keepalive_local(&self) -> bool {
        match self.flavor {
            Flavor::Nginx => self.version >= landmarks::KEEPALIVE_BY_DEFAULT,
            _ => self.fact("keepalive_local") == Some("yes"),
        }
    }

    /// Whether `proxy_http_version 2` is accepted.
    pub fn has_proxy_http2(&self) -> bool {
        match self.flavor {
            Flavor::Nginx => self.version >= landmarks::PROXY_HTTP2,
            _ => self.fact("proxy_http_version_2") == Some("yes"),
        }
    }

    /// Whether nginx's built-in proxy headers send `Connection: close` when
    /// no `proxy_set_header Connection` is in effect (nginx before 1.29.7;
    /// 1.29.4–1.29.6 through `$proxy_internal_connection`).
    pub fn sends_connection_close(&self) -> bool {
        match self.flavor {
            Flavor::Nginx => self.version < landmarks::KEEPALIVE_BY_DEFAULT,
            _ => self.fact("connection_close") != Some("no"),
        }
    }

    /// The fork's own default of directive `name` where it departs from the
    /// nginx release it is based on; `None` when it does not.
    pub fn default_override(&self, name: &str) -> Option<&'static str> {
        match (self.flavor, name) {
            (Flavor::Nginx, _) => None,
            (_, "proxy_http_version") => self.fact("proxy_http_version"),
            _ => None,
        }
    }

    /// The latest row of `fact` for this flavor at or below its version.
    fn fact(&self, fact: &str) -> Option<&'static str> {
        self.fact_row(fact).map(|r| r.value)
    }

    /// The row of data/flavors.tsv that decides `fact` for this flavor and
    /// version (the latest at or below it), with its source; `None` for
    /// nginx, whose facts are its own version landmarks.
    pub fn fact_row(&self, fact: &str) -> Option<&'static FlavorFact> {
        rows()
            .iter()
            .filter(|r| r.flavor == self.flavor && r.fact == fact && r.since <= self.version)
            .max_by_key(|r| r.since)
    }
}

impl fmt::Display for Target {
    /// `nginx 1.28.0`, `Angie 1.12.1`, `freenginx 1.29.7`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.flavor.display(), self.version)
    }
}

/// One row of data/flavors.tsv.
#[derive(Clone, Debug)]
pub struct FlavorFact {
    pub flavor: Flavor,
    pub since: NginxVersion,
    pub fact: &'static str,
    pub value: &'static str,
    pub source: &'static str,
}

const FLAVORS_TSV: &str = include_str!("../data/flavors.tsv");

/// Every recorded flavor fact, with its source.
pub fn flavor_facts() -> &'static [FlavorFact] {
    rows()
}

fn rows() -> &'static [FlavorFact] {
    static TABLE: OnceLock<Vec<FlavorFact>> = OnceLock::new();
    TABLE.get_or_init(|| {
        FLAVORS_TSV
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .skip(1)
            .map(|l| {
                let c: Vec<&'static str> = l.split('\t').collect();
                assert_eq!(c.len(), 5, "malformed flavors.tsv row: {l}");
                FlavorFact {
                    flavor: Flavor::parse(c[0]).expect("flavor in flavors.tsv"),
                    since: NginxVersion::parse(c[1]).expect("version in flavors.tsv"),
                    fact: c[2],
                    value: c[3],
                    source: c[4],
                }
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: u32, b: u32, c: u32) -> NginxVersion {
        NginxVersion::new(a, b, c)
    }

    #[test]
    fn every_row_names_a_source() {
        assert!(flavor_facts().len() > 10);
        for r in flavor_facts() {
            assert!(r.source.len() > 20, "row without a real source: {r:?}");
        }
    }

    #[test]
    fn nginx_follows_its_own_landmarks() {
        let old = Target::nginx(v(1, 28, 0));
        assert!(!old.keepalive_by_default());
        assert!(old.sends_connection_close());
        assert!(!old.has_proxy_http2());
        assert_eq!(old.behaviour_version(), v(1, 28, 0));
        let new = Target::nginx(v(1, 29, 7));
        assert!(new.keepalive_by_default() && new.has_keepalive_local());
        assert!(!new.sends_connection_close());
        assert!(Target::nginx(v(1, 29, 4)).has_proxy_http2());
        assert_eq!(new.default_override("proxy_http_version"), None);
    }

    #[test]
    fn angie_keeps_keepalive_off_but_speaks_http11_since_1_12() {
        let a = Target::new(Flavor::Angie, v(1, 12, 1));
        assert!(!a.keepalive_by_default());
        assert!(!a.has_keepalive_local());
        assert!(a.has_proxy_http2());
        assert!(!a.sends_connection_close());
        assert_eq!(a.default_override("proxy_http_version"), Some("1.1"));
        // nginx 1.31.2 functionality, held before the keep-alive change.
        assert_eq!(a.behaviour_version(), v(1, 29, 6));

        let older = Target::new(Flavor::Angie, v(1, 11, 4));
        assert_eq!(older.default_override("proxy_http_version"), Some("1.0"));
        assert!(older.sends_connection_close());
        assert!(!older.has_proxy_http2());
        assert_eq!(older.behaviour_version(), v(1, 29, 3));
        assert_eq!(
            Target::new(Flavor::Angie, v(1, 5, 2)).behaviour_version(),
            v(1, 25, 4)
        );
    }

    #[test]
    fn freenginx_keeps_the_pre_fork_defaults() {
        let f = Target::new(Flavor::Freenginx, v(1, 29, 7));
        assert!(!f.keepalive_by_default());
        assert!(f.sends_connection_close());
        assert!(!f.has_proxy_http2());
        assert_eq!(f.default_override("proxy_http_version"), Some("1.0"));
        assert_eq!(f.behaviour_version(), v(1, 25, 4));
    }

    #[test]
    fn flavor_names_and_version_lines() {
        assert_eq!(Flavor::parse("Angie"), Ok(Flavor::Angie));
        assert!(Flavor::parse("tengine").is_err());
        assert_eq!(
            Flavor::of_version_line("nginx version: freenginx/1.29.7"),
            Flavor::Freenginx
        );
        assert_eq!(
            Flavor::of_version_line("Angie version: Angie/1.12.1"),
            Flavor::Angie
        );
        assert_eq!(
            Flavor::of_version_line("nginx version: nginx/1.22.1"),
            Flavor::Nginx
        );
        assert_eq!(
            Target::new(Flavor::Angie, v(1, 12, 1)).to_string(),
            "Angie 1.12.1"
        );
    }
}

#[cfg(test)]
mod http2_facts {
    /// data/http2_upstream.tsv: the facts the HTTP/2 rules and log
    /// signatures rest on. Every row has its five columns and a source.
    #[test]
    fn every_http2_fact_has_a_source() {
        let text = include_str!("../data/http2_upstream.tsv");
        let rows: Vec<Vec<&str>> = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .skip(1)
            .map(|l| l.split('\t').collect())
            .collect();
        assert!(rows.len() >= 7);
        for r in &rows {
            assert_eq!(r.len(), 5, "{r:?}");
            assert!(
                r[3].contains("nginx/nginx") || r[3].contains("github.com"),
                "{r:?}"
            );
        }
    }
}
