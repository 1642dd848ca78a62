//! nginx versions and the landmarks where keep-alive behaviour changed.

use std::fmt;

/// An nginx version `major.minor.patch`, ordered as nginx releases are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NginxVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl NginxVersion {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        NginxVersion {
            major,
            minor,
            patch,
        }
    }

    /// Parses `1.28.0`, `nginx/1.28.0`, `1.28` (patch 0) and the output line
    /// of `nginx -v` (`nginx version: nginx/1.22.1`). Trailing text after the
    /// numbers (`1.22.1 (Debian)`) is ignored.
    pub fn parse(s: &str) -> Result<NginxVersion, String> {
        let s = s.trim();
        // `nginx/`, `freenginx/` and `Angie/` prefix the number in `-v` output.
        let lower = s.to_ascii_lowercase();
        let start = lower
            .rfind("nginx/")
            .or_else(|| lower.rfind("angie/"))
            .map(|i| i + "nginx/".len())
            .unwrap_or(0);
        let rest = &s[start..];
        let numeric: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let parts: Vec<&str> = numeric.split('.').filter(|p| !p.is_empty()).collect();
        if parts.len() < 2 || parts.len() > 3 {
            return Err(format!(
                "invalid nginx version {s:?}: expected MAJOR.MINOR.PATCH such as 1.28.0"
            ));
        }
        let num = |p: &str| {
            p.parse::<u32>()
                .map_err(|_| format!("invalid nginx version {s:?}: {p:?} is not a number"))
        };
        Ok(NginxVersion {
            major: num(parts[0])?,
            minor: num(parts[1])?,
            patch: parts.get(2).map(|p| num(p)).transpose()?.unwrap_or(0),
        })
    }

    /// Parses a version someone typed (`--nginx-version`, upkeep.toml):
    /// `1.28.0`, `1.28` or `nginx/1.28.0`, and nothing more. Unlike
    /// [`NginxVersion::parse`], which reads `nginx -v` output, text after the
    /// numbers or an empty part is an error: `1.29,7` or `1..29` must not be
    /// judged as 1.29.0.
    pub fn parse_given(s: &str) -> Result<NginxVersion, String> {
        let v = NginxVersion::parse(s)?;
        let t = s.trim();
        let lower = t.to_ascii_lowercase();
        let numbers = ["nginx/", "freenginx/", "angie/"]
            .iter()
            .find_map(|p| lower.starts_with(p).then(|| &t[p.len()..]))
            .unwrap_or(t);
        let parts: Vec<&str> = numbers.split('.').collect();
        let exact = (2..=3).contains(&parts.len())
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if !exact {
            return Err(format!(
                "invalid nginx version {t:?}: expected MAJOR.MINOR.PATCH such as 1.28.0"
            ));
        }
        Ok(v)
    }

    /// The version assumed when none is given or detected: 1.28.0, the last
    /// stable branch before upstream keep-alive became the default (RULES.md).
    pub const DEFAULT_ASSUMED: NginxVersion = NginxVersion::new(1, 28, 0);
}

impl fmt::Display for NginxVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl std::str::FromStr for NginxVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        NginxVersion::parse(s)
    }
}

/// Versions where connection-reuse behaviour changed (behaviors.md §0,
/// changes_keepalive_related.txt).
pub mod landmarks {
    use super::NginxVersion;

    /// `keepalive` in `upstream{}`, `proxy_http_version`, `fastcgi_keep_conn`
    /// (behaviors.md §0 row "1.1.4").
    pub const UPSTREAM_KEEPALIVE_MODULE: NginxVersion = NginxVersion::new(1, 1, 4);
    /// POST/LOCK/PATCH no longer retried once sent; cached-connection errors
    /// follow `proxy_next_upstream` (behaviors.md §0 row "1.9.13").
    pub const NON_IDEMPOTENT_NOT_RETRIED: NginxVersion = NginxVersion::new(1, 9, 13);
    /// `keepalive_timeout` / `keepalive_requests` inside `upstream{}`
    /// (behaviors.md §0 row "1.15.3"; directives.tsv rows keepalive_timeout,
    /// keepalive_requests of ngx_http_upstream_keepalive_module).
    pub const UPSTREAM_KEEPALIVE_TIMEOUT: NginxVersion = NginxVersion::new(1, 15, 3);
    /// `proxy_socket_keepalive` (behaviors.md §0 row "1.15.6").
    pub const SOCKET_KEEPALIVE: NginxVersion = NginxVersion::new(1, 15, 6);
    /// `-e` command line option (COMMON.md; nginx CHANGES 1.19.5).
    pub const ERROR_LOG_OPTION: NginxVersion = NginxVersion::new(1, 19, 5);
    /// `keepalive_requests` default 100 -> 1000, `keepalive_time` added
    /// (behaviors.md §0 row "1.19.10").
    pub const KEEPALIVE_REQUESTS_1000: NginxVersion = NginxVersion::new(1, 19, 10);
    /// `keepalive_min_timeout` (behaviors.md §0 row "1.27.4").
    pub const KEEPALIVE_MIN_TIMEOUT: NginxVersion = NginxVersion::new(1, 27, 4);
    /// `proxy_set_header Connection` default is `$proxy_internal_connection`
    /// (still `close` for HTTP/1.x) from 1.29.4 (behaviors.md §e).
    pub const PROXY_INTERNAL_CONNECTION: NginxVersion = NginxVersion::new(1, 29, 4);
    /// `proxy_http_version 2`: HTTP/2 to the backend (ngx_http_proxy_v2_module,
    /// nginx/nginx commit 9bf758ea4, first in release-1.29.4; before it
    /// `ngx_conf_set_enum_slot` rejects the value: `[emerg] invalid value
    /// "2" in FILE:LINE`).
    pub const PROXY_HTTP2: NginxVersion = NginxVersion::new(1, 29, 4);
    /// Upstream keep-alive on by default (`keepalive 32 local`),
    /// `proxy_http_version` default 1.1, no `Connection` header by default,
    /// `keepalive 0` accepted, balancer order irrelevant (behaviors.md §0 row
    /// "1.29.7", §d).
    pub const KEEPALIVE_BY_DEFAULT: NginxVersion = NginxVersion::new(1, 29, 7);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_spellings() {
        assert_eq!(
            NginxVersion::parse("1.28.0"),
            Ok(NginxVersion::new(1, 28, 0))
        );
        assert_eq!(
            NginxVersion::parse("nginx version: nginx/1.22.1"),
            Ok(NginxVersion::new(1, 22, 1))
        );
        assert_eq!(NginxVersion::parse("1.29"), Ok(NginxVersion::new(1, 29, 0)));
        assert_eq!(
            NginxVersion::parse("nginx/1.31.5 (Debian)"),
            Ok(NginxVersion::new(1, 31, 5))
        );
        assert_eq!(
            NginxVersion::parse("Angie version: Angie/1.12.1"),
            Ok(NginxVersion::new(1, 12, 1))
        );
        assert!(NginxVersion::parse("one").is_err());
        assert!(NginxVersion::parse("1").is_err());
        assert!(NginxVersion::parse("1.2.3.4").is_err());
    }

    #[test]
    fn a_typed_version_is_only_numbers() {
        for ok in [
            "1.28.0",
            " 1.29.7 ",
            "1.29",
            "nginx/1.22.1",
            "Angie/1.12.1",
            "freenginx/1.29.1",
        ] {
            assert!(NginxVersion::parse_given(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            NginxVersion::parse_given("nginx/1.22.1"),
            Ok(NginxVersion::new(1, 22, 1))
        );
        for bad in [
            "1.29,7",
            "1..29",
            "1.29.",
            ".1.29",
            "1.25.0rc1",
            "1.25.x",
            "1.2\u{1b}[31m",
            "1.22.1 (Debian)",
            "nginx version: nginx/1.22.1",
            "1.2.3.4",
            "",
            "99999999999.0.0",
        ] {
            assert!(NginxVersion::parse_given(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            NginxVersion::parse_given("1.29,7"),
            Err(
                "invalid nginx version \"1.29,7\": expected MAJOR.MINOR.PATCH such as 1.28.0"
                    .into()
            )
        );
    }

    #[test]
    fn orders_numerically_and_prints_back() {
        assert!(NginxVersion::new(1, 9, 13) < NginxVersion::new(1, 19, 10));
        assert!(landmarks::KEEPALIVE_BY_DEFAULT > NginxVersion::DEFAULT_ASSUMED);
        assert_eq!(NginxVersion::new(1, 29, 7).to_string(), "1.29.7");
    }
}
