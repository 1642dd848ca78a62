//! What the servers on either side of nginx do with idle connections.
//!
//! Backend profiles (nginx -> backend) and front profiles (load balancer ->
//! nginx) are data: `data/backends.tsv` and `data/fronts.tsv`, embedded in
//! the binary, each row with its primary source (the server's documentation,
//! or the source file and symbol that set the default). `upkeep profiles`
//! prints them.

use std::sync::OnceLock;

/// What upkeep knows about one backend (an upstream's servers): from an inline
/// `# upkeep: backend …` comment, upkeep.toml, `--backend`, a profile, or a
/// probe.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackendFacts {
    /// How long the backend keeps an idle keep-alive connection open.
    pub idle_timeout_ms: Option<u64>,
    /// Requests the backend serves on one connection before closing it.
    pub max_requests: Option<u64>,
    /// Whether the backend says `Connection: close` on the response after
    /// which it closes (no race) — `None` when unknown.
    pub announces_close: Option<bool>,
    /// How many connections the backend accepts at once.
    pub max_connections: Option<u64>,
    /// Where these facts come from, for messages: "declared inline at
    /// app.conf:3", "profile gunicorn", "probed".
    pub source: String,
}

/// A known backend server's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackendProfile {
    /// The name used on the command line and in upkeep.toml (`gunicorn`).
    pub name: &'static str,
    /// Other names for it, comma-separated as in the data file; see
    /// [`BackendProfile::aliases`].
    pub aliases_field: &'static str,
    /// What it is, for people (`Gunicorn`).
    pub display: &'static str,
    /// Default idle keep-alive timeout, `None` when the server has none (keeps
    /// idle connections forever) or does not keep connections alive.
    pub idle_timeout_ms: Option<u64>,
    /// Default requests per connection before the server closes it.
    pub max_requests: Option<u64>,
    /// Whether the last response before such a close carries `Connection: close`.
    pub announces_close: Option<bool>,
    /// One line of context shown with findings that rely on the profile.
    pub note: &'static str,
    /// Where the numbers come from: documentation URLs and/or source files.
    pub source: &'static str,
}

impl BackendProfile {
    /// The other names the profile answers to.
    pub fn aliases(&self) -> impl Iterator<Item = &'static str> {
        split_aliases(self.aliases_field)
    }

    pub fn facts(&self) -> BackendFacts {
        BackendFacts {
            idle_timeout_ms: self.idle_timeout_ms,
            max_requests: self.max_requests,
            announces_close: self.announces_close,
            max_connections: default_max_connections(self.name),
            source: format!(
                "profile {} ({} defaults; `upkeep profiles` shows the source)",
                self.name, self.display
            ),
        }
    }
}

/// A load balancer or proxy in front of nginx.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrontProfile {
    pub name: &'static str,
    /// Other names, comma-separated; see [`FrontProfile::aliases`].
    pub aliases_field: &'static str,
    pub display: &'static str,
    /// How long it keeps an idle connection to nginx before reusing or closing it.
    pub idle_timeout_ms: u64,
    pub note: &'static str,
    /// Where the number comes from.
    pub source: &'static str,
}

impl FrontProfile {
    /// The other names the profile answers to.
    pub fn aliases(&self) -> impl Iterator<Item = &'static str> {
        split_aliases(self.aliases_field)
    }
}

fn split_aliases(field: &'static str) -> impl Iterator<Item = &'static str> {
    field.split(',').map(str::trim).filter(|a| !a.is_empty())
}

/// The backend profiles, one row each (see the file's header for columns).
const BACKENDS_TSV: &str = include_str!("../data/backends.tsv");
/// The front profiles.
const FRONTS_TSV: &str = include_str!("../data/fronts.tsv");

/// The data rows of a TSV file: comment lines (`#`) and the header dropped,
/// each row split into exactly `columns` fields.
fn rows(tsv: &'static str, columns: usize) -> impl Iterator<Item = Vec<&'static str>> {
    tsv.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .skip(1)
        .map(move |l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert_eq!(cols.len(), columns, "malformed profile row: {l}");
            cols
        })
}

/// A number of milliseconds (or requests), `none` for no limit.
fn number_or_none(cell: &str) -> Option<u64> {
    match cell {
        "none" => None,
        n => Some(
            n.parse()
                .unwrap_or_else(|_| panic!("bad number {n:?} in profile data")),
        ),
    }
}

fn backends() -> &'static [BackendProfile] {
    static TABLE: OnceLock<Vec<BackendProfile>> = OnceLock::new();
    TABLE.get_or_init(|| {
        rows(BACKENDS_TSV, 8)
            .map(|c| BackendProfile {
                name: c[0],
                aliases_field: c[1],
                display: c[2],
                idle_timeout_ms: number_or_none(c[3]),
                max_requests: number_or_none(c[4]),
                announces_close: match c[5] {
                    "yes" => Some(true),
                    "no" => Some(false),
                    _ => None,
                },
                note: c[6],
                source: c[7],
            })
            .collect()
    })
}

fn fronts() -> &'static [FrontProfile] {
    static TABLE: OnceLock<Vec<FrontProfile>> = OnceLock::new();
    TABLE.get_or_init(|| {
        rows(FRONTS_TSV, 6)
            .map(|c| FrontProfile {
                name: c[0],
                aliases_field: c[1],
                display: c[2],
                idle_timeout_ms: number_or_none(c[3]).expect("a front profile has an idle timeout"),
                note: c[4],
                source: c[5],
            })
            .collect()
    })
}

/// Node.js releases that close an idle keep-alive socket one second after
/// `server.keepAliveTimeout` (the keep-alive buffer): the constant came with
/// nodejs/node PR 54863 and became `server.keepAliveTimeoutBuffer` in 22.19.0
/// and 24.6.0; 20.20.2 is the 20.x release measured here (crates/upkeep-facts
/// tests/node_idle_close.rs). Earlier releases of a line, and lines not
/// listed, are taken to close at `keepAliveTimeout` itself: the lower bound,
/// so that a timeout chosen below it is safe either way.
const NODE_BUFFER_SINCE: &[(u64, u64, u64)] = &[(20, 20, 2), (22, 19, 0), (24, 6, 0)];

/// Whether Node.js `version` ("20.20.2", "v22.19.0") is known to close idle
/// sockets at keepAliveTimeout + 1000 ms.
pub fn node_has_keepalive_buffer(version: &str) -> bool {
    let mut parts = version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .map(|p| p.parse::<u64>().ok());
    let (Some(Some(major)), minor, patch) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let v = (
        major,
        minor.flatten().unwrap_or(0),
        patch.flatten().unwrap_or(0),
    );
    if major >= 25 {
        return true;
    }
    NODE_BUFFER_SINCE
        .iter()
        .any(|&since| since.0 == major && v >= since)
}

fn normalize(name: &str) -> String {
    name.trim().to_ascii_lowercase().replace('_', "-")
}

/// A backend server profile by name or alias (`gunicorn`, `node`, `tomcat`…).
///
/// `node@VERSION` picks the Node.js row that matches that release (see
/// [`node_has_keepalive_buffer`]).
pub fn backend_profile(name: &str) -> Option<BackendProfile> {
    let n = normalize(name);
    if let Some(version) = n
        .strip_prefix("node@")
        .or_else(|| n.strip_prefix("nodejs@"))
    {
        let row = if node_has_keepalive_buffer(version) {
            "node-buffered"
        } else {
            "node"
        };
        return backend_profile(row);
    }
    backends()
        .iter()
        .find(|p| p.name == n || p.aliases().any(|a| a == n))
        .copied()
}

/// A front (load balancer) profile by name or alias (`aws-alb`, `cloudflare`…).
pub fn front_profile(name: &str) -> Option<FrontProfile> {
    let n = normalize(name);
    fronts()
        .iter()
        .find(|p| p.name == n || p.aliases().any(|a| a == n))
        .copied()
}

/// Every backend profile, in the data file's order.
pub fn backend_profiles() -> &'static [BackendProfile] {
    backends()
}

/// Every front profile, in the data file's order.
pub fn front_profiles() -> &'static [FrontProfile] {
    fronts()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_by_name_and_alias() {
        assert_eq!(
            backend_profile("gunicorn").unwrap().idle_timeout_ms,
            Some(2000)
        );
        assert_eq!(backend_profile("NodeJS").unwrap().name, "node");
        assert_eq!(backend_profile("httpd").unwrap().max_requests, Some(100));
        assert!(backend_profile("nope").is_none());
        assert_eq!(front_profile("aws-alb").unwrap().idle_timeout_ms, 60_000);
        assert_eq!(front_profile("gcp_alb").unwrap().idle_timeout_ms, 600_000);
        assert!(front_profile("azure-app-gateway").is_none());
    }

    #[test]
    fn names_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for p in backend_profiles() {
            for n in std::iter::once(p.name).chain(p.aliases()) {
                assert!(seen.insert(n), "duplicate backend name {n}");
            }
        }
        let mut seen = std::collections::HashSet::new();
        for p in front_profiles() {
            for n in std::iter::once(p.name).chain(p.aliases()) {
                assert!(seen.insert(n), "duplicate front name {n}");
            }
        }
    }

    #[test]
    fn every_profile_names_its_source() {
        for p in backend_profiles() {
            assert!(p.source.len() > 10, "{} has no source", p.name);
        }
        for p in front_profiles() {
            assert!(p.source.len() > 10, "{} has no source", p.name);
        }
    }

    #[test]
    fn node_rows_by_release() {
        assert_eq!(backend_profile("node").unwrap().idle_timeout_ms, Some(5000));
        assert_eq!(
            backend_profile("node@20.20.2").unwrap().idle_timeout_ms,
            Some(6000)
        );
        assert_eq!(
            backend_profile("node@v22.19.0").unwrap().idle_timeout_ms,
            Some(6000)
        );
        assert_eq!(
            backend_profile("node@22.18.0").unwrap().idle_timeout_ms,
            Some(5000)
        );
        assert_eq!(
            backend_profile("node@24.6.0").unwrap().idle_timeout_ms,
            Some(6000)
        );
        assert_eq!(
            backend_profile("node@18.20.4").unwrap().idle_timeout_ms,
            Some(5000)
        );
        assert_eq!(
            backend_profile("node@26").unwrap().idle_timeout_ms,
            Some(6000)
        );
        assert_eq!(backend_profile("node@x").unwrap().name, "node");
    }
}

/// `pm.max_children` of the pool configuration PHP-FPM ships (php-src
/// sapi/fpm/www.conf.in, installed by Debian as
/// /etc/php/8.2/fpm/pool.d/www.conf: `pm.max_children = 5`). php-fpm has no
/// built-in value: it refuses to start a pool without one, so a pool nobody
/// tuned has this one.
pub const PHP_FPM_SHIPPED_MAX_CHILDREN: u64 = 5;

/// How many connections a profile's server takes at once by default, when
/// that is a hard limit (PHP-FPM: one per child).
pub fn default_max_connections(profile: &str) -> Option<u64> {
    (profile == "php-fpm").then_some(PHP_FPM_SHIPPED_MAX_CHILDREN)
}

/// The shortest default idle timeout among the backend profiles (Gunicorn's
/// 2 s today): what a pool toward a backend nobody described must stay
/// below.
pub fn shortest_backend_idle() -> (u64, &'static BackendProfile) {
    backends()
        .iter()
        .filter_map(|p| p.idle_timeout_ms.map(|t| (t, p)))
        .min_by_key(|(t, _)| *t)
        .expect("the profile table has backends with an idle timeout")
}

/// The upstream `keepalive_timeout` to set for a backend that closes idle
/// connections after `backend_ms`: shorter by the smaller of 1 s or 10 %
/// (RULES.md U007, so nginx always closes first), rounded down to a readable
/// value (100 ms steps from 1 s up, 10 ms below) because measured timeouts
/// come with jitter (1998 ms suggests 1700ms, a declared 2s suggests 1800ms).
/// `upkeep check`/`fix` and `upkeep probe` both use this, so they agree.
pub fn suggested_upstream_keepalive_timeout_ms(backend_ms: u64) -> u64 {
    let margin = (backend_ms / 10).min(1000);
    let t = backend_ms.saturating_sub(margin);
    let step = if t >= 1000 { 100 } else { 10 };
    (t / step * step).max(1)
}

#[cfg(test)]
mod suggestion_tests {
    use super::suggested_upstream_keepalive_timeout_ms as suggest;

    #[test]
    fn the_shortest_backend_default_is_gunicorns() {
        let (ms, profile) = super::shortest_backend_idle();
        assert_eq!((ms, profile.name), (2000, "gunicorn"));
    }

    #[test]
    fn margin_is_the_smaller_of_one_second_or_ten_percent() {
        assert_eq!(suggest(2000), 1800);
        assert_eq!(suggest(1998), 1700);
        assert_eq!(suggest(5000), 4500);
        assert_eq!(suggest(75_000), 74_000);
        assert_eq!(suggest(1000), 900);
        assert_eq!(suggest(5), 1);
    }
}
