//! Directives that matter for connection reuse: where they are allowed, since
//! which version, how they inherit, and their default by nginx version.
//!
//! Transcribed from `facts/directives.tsv` (defaults checked in the nginx
//! source at commit 3f6f7824d, history from CHANGES and git) and
//! `facts/behaviors.md`. Each row names its source row.

use crate::version::NginxVersion;

/// Where a directive may appear.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Context {
    Main,
    Events,
    Http,
    Server,
    Location,
    Upstream,
}

/// How a directive's value reaches nested blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Inheritance {
    /// `ngx_conf_merge_*_value`: taken from the nearest enclosing level that
    /// sets it (directives.tsv column "inheritance": "scalar: …").
    Scalar,
    /// All-or-nothing array: a level with ANY line of this directive inherits
    /// NONE of its parent's lines (directives.tsv row proxy_set_header;
    /// behaviors.md §e).
    Array,
    /// Only meaningful in its own block (`upstream{}`, main, events).
    NotInherited,
}

/// One directive's facts.
#[derive(Clone, Copy, Debug)]
pub struct DirectiveFact {
    pub name: &'static str,
    pub module: &'static str,
    pub contexts: &'static [Context],
    /// First version that has it (None: older than anything upkeep targets).
    pub since: Option<NginxVersion>,
    pub inheritance: Inheritance,
    /// `(from_version, default)` in ascending order: the default that applies
    /// from that version on. An empty string means "no value" (unset).
    pub defaults: &'static [(NginxVersion, &'static str)],
}

impl DirectiveFact {
    /// Whether `version` has this directive.
    pub fn available_in(&self, version: NginxVersion) -> bool {
        match self.since {
            Some(since) => version >= since,
            None => true,
        }
    }

    /// The default value in `version`, `None` when the directive does not
    /// exist there or has no default value.
    pub fn default_in(&self, version: NginxVersion) -> Option<&'static str> {
        if !self.available_in(version) {
            return None;
        }
        self.defaults
            .iter()
            .rev()
            .find(|(from, _)| version >= *from)
            .map(|(_, d)| *d)
            .filter(|d| !d.is_empty())
    }
}

const V0: NginxVersion = NginxVersion::new(0, 0, 0);
const fn v(major: u32, minor: u32, patch: u32) -> NginxVersion {
    NginxVersion::new(major, minor, patch)
}

use Context::*;
const HSL: &[Context] = &[Http, Server, Location];

/// The table. Lookup with [`directive`].
pub static DIRECTIVES: &[DirectiveFact] = &[
    // directives.tsv row "keepalive / ngx_http_upstream_keepalive_module":
    // no cache until 1.29.6; "32 local" since 1.29.7 (commit 4fbe4b627).
    DirectiveFact {
        name: "keepalive",
        module: "ngx_http_upstream_keepalive_module",
        contexts: &[Upstream],
        since: Some(v(1, 1, 4)),
        inheritance: Inheritance::NotInherited,
        defaults: &[(V0, ""), (v(1, 29, 7), "32 local")],
    },
    // directives.tsv row "keepalive_requests / ngx_http_upstream_keepalive_module":
    // since 1.15.3; 100 -> 1000 in 1.19.10 (commit eb52de831).
    DirectiveFact {
        name: "keepalive_requests",
        module: "ngx_http_upstream_keepalive_module",
        contexts: &[Upstream],
        since: Some(v(1, 15, 3)),
        inheritance: Inheritance::NotInherited,
        defaults: &[(V0, "100"), (v(1, 19, 10), "1000")],
    },
    // directives.tsv row "keepalive_time / ngx_http_upstream_keepalive_module": new in 1.19.10, 1h.
    DirectiveFact {
        name: "keepalive_time",
        module: "ngx_http_upstream_keepalive_module",
        contexts: &[Upstream],
        since: Some(v(1, 19, 10)),
        inheritance: Inheritance::NotInherited,
        defaults: &[(V0, "1h")],
    },
    // directives.tsv row "keepalive_timeout / ngx_http_upstream_keepalive_module":
    // since 1.15.3, 60s; before it there was no nginx-side idle timeout.
    DirectiveFact {
        name: "keepalive_timeout",
        module: "ngx_http_upstream_keepalive_module",
        contexts: &[Upstream],
        since: Some(v(1, 15, 3)),
        inheritance: Inheritance::NotInherited,
        defaults: &[(V0, "60s")],
    },
    // directives.tsv row "keepalive_timeout / ngx_http_core_module": 75s since 2004.
    DirectiveFact {
        name: "keepalive_timeout",
        module: "ngx_http_core_module",
        contexts: HSL,
        since: None,
        inheritance: Inheritance::Scalar,
        defaults: &[(V0, "75s")],
    },
    // directives.tsv row "keepalive_requests / ngx_http_core_module": since 0.8.0;
    // 100 -> 1000 in 1.19.10 (ticket #2155).
    DirectiveFact {
        name: "keepalive_requests",
        module: "ngx_http_core_module",
        contexts: HSL,
        since: Some(v(0, 8, 0)),
        inheritance: Inheritance::Scalar,
        defaults: &[(V0, "100"), (v(1, 19, 10), "1000")],
    },
    // directives.tsv row "keepalive_time / ngx_http_core_module": new in 1.19.10, 1h.
    DirectiveFact {
        name: "keepalive_time",
        module: "ngx_http_core_module",
        contexts: HSL,
        since: Some(v(1, 19, 10)),
        inheritance: Inheritance::Scalar,
        defaults: &[(V0, "1h")],
    },
    // directives.tsv row "keepalive_min_timeout": 1.27.4, 0.
    DirectiveFact {
        name: "keepalive_min_timeout",
        module: "ngx_http_core_module",
        contexts: HSL,
        since: Some(v(1, 27, 4)),
        inheritance: Inheritance::Scalar,
        defaults: &[(V0, "0")],
    },
    // directives.tsv row "keepalive_disable": 'msie6 safari' -> 'msie6' in 1.1.18.
    DirectiveFact {
        name: "keepalive_disable",
        module: "ngx_http_core_module",
        contexts: HSL,
        since: Some(v(0, 9, 0)),
        inheritance: Inheritance::Scalar,
        defaults: &[(V0, "msie6 safari"), (v(1, 1, 18), "msie6")],
    },
    // directives.tsv row "proxy_http_version": 1.0 (1.1.4-1.29.6) -> 1.1 in 1.29.7
    // (commit 6bb27a631).
    DirectiveFact {
        name: "proxy_http_version",
        module: "ngx_http_proxy_module",
        contexts: HSL,
        since: Some(v(1, 1, 4)),
        inheritance: Inheritance::Scalar,
        defaults: &[(V0, "1.0"), (v(1, 29, 7), "1.1")],
    },
    // directives.tsv row "proxy_set_header": built-in list; Connection default
    // 'close' up to 1.29.6 (1.29.4-1.29.6 via $proxy_internal_connection, which is
    // close for HTTP/1.x), not sent from 1.29.7 (behaviors.md §e).
    DirectiveFact {
        name: "proxy_set_header",
        module: "ngx_http_proxy_module",
        contexts: HSL,
        since: None,
        inheritance: Inheritance::Array,
        defaults: &[
            (V0, "Host $proxy_host; Connection close"),
            (
                v(1, 29, 4),
                "Host $proxy_host; Connection $proxy_internal_connection",
            ),
            (v(1, 29, 7), "Host $proxy_host"),
        ],
    },
    // directives.tsv row "proxy_next_upstream": error timeout.
    DirectiveFact {
        name: "proxy_next_upstream",
        module: "ngx_http_proxy_module",
        contexts: HSL,
        since: None,
        inheritance: Inheritance::Scalar,
        defaults: &[(V0, "error timeout")],
    },
    // directives.tsv row "proxy_next_upstream_tries": 0 (unlimited), 1.7.5.
    DirectiveFact {
        name: "proxy_next_upstream_tries",
        module: "ngx_http_proxy_module",
        contexts: HSL,
        since: Some(v(1, 7, 5)),
        inheritance: Inheritance::Scalar,
        defaults: &[(V0, "0")],
    },
    // directives.tsv row "proxy_next_upstream_timeout": 0 (unlimited), 1.7.5.
    DirectiveFact {
        name: "proxy_next_upstream_timeout",
        module: "ngx_http_proxy_module",
        contexts: HSL,
        since: Some(v(1, 7, 5)),
        inheritance: Inheritance::Scalar,
        defaults: &[(V0, "0")],
    },
    // directives.tsv rows proxy_connect_timeout / proxy_read_timeout / proxy_send_timeout: 60s.
    DirectiveFact {
        name: "proxy_connect_timeout",
        module: "ngx_http_proxy_module",
        contexts: HSL,
        since: None,
        inheritance: Inheritance::Scalar,
        defaults: &[(V0, "60s")],
    },
    DirectiveFact {
        name: "proxy_read_timeout",
        module: "ngx_http_proxy_module",
        contexts: HSL,
        since: None,
        inheritance: Inheritance::Scalar,
        defaults: &[(V0, "60s")],
    },
    DirectiveFact {
        name: "proxy_send_timeout",
        module: "ngx_http_proxy_module",
        contexts: HSL,
        since: None,
        inheritance: Inheritance::Scalar,
        defaults: &[(V0, "60s")],
    },
    // directives.tsv row "proxy_socket_keepalive": off, 1.15.6.
    DirectiveFact {
        name: "proxy_socket_keepalive",
        module: "ngx_http_proxy_module",
        contexts: HSL,
        since: Some(v(1, 15, 6)),
        inheritance: Inheritance::Scalar,
        defaults: &[(V0, "off")],
    },
    // directives.tsv row "proxy_ssl_session_reuse": on, 0.7.11.
    DirectiveFact {
        name: "proxy_ssl_session_reuse",
        module: "ngx_http_proxy_module",
        contexts: HSL,
        since: Some(v(0, 7, 11)),
        inheritance: Inheritance::Scalar,
        defaults: &[(V0, "on")],
    },
    // directives.tsv row "proxy_ssl_server_name": off, 1.7.0.
    DirectiveFact {
        name: "proxy_ssl_server_name",
        module: "ngx_http_proxy_module",
        contexts: HSL,
        since: Some(v(1, 7, 0)),
        inheritance: Inheritance::Scalar,
        defaults: &[(V0, "off")],
    },
    // directives.tsv row "proxy_ssl_name": $proxy_host, 1.7.0.
    DirectiveFact {
        name: "proxy_ssl_name",
        module: "ngx_http_proxy_module",
        contexts: HSL,
        since: Some(v(1, 7, 0)),
        inheritance: Inheritance::Scalar,
        defaults: &[(V0, "$proxy_host")],
    },
    // directives.tsv row "proxy_request_buffering": on, 1.7.11.
    DirectiveFact {
        name: "proxy_request_buffering",
        module: "ngx_http_proxy_module",
        contexts: HSL,
        since: Some(v(1, 7, 11)),
        inheritance: Inheritance::Scalar,
        defaults: &[(V0, "on")],
    },
    // directives.tsv row "proxy_ignore_client_abort": off.
    DirectiveFact {
        name: "proxy_ignore_client_abort",
        module: "ngx_http_proxy_module",
        contexts: HSL,
        since: None,
        inheritance: Inheritance::Scalar,
        defaults: &[(V0, "off")],
    },
    // directives.tsv row "fastcgi_keep_conn": off, 1.1.4.
    DirectiveFact {
        name: "fastcgi_keep_conn",
        module: "ngx_http_fastcgi_module",
        contexts: HSL,
        since: Some(v(1, 1, 4)),
        inheritance: Inheritance::Scalar,
        defaults: &[(V0, "off")],
    },
    // directives.tsv rows "fastcgi_next_upstream …", "uwsgi_next_upstream…",
    // "scgi_next_upstream…", "grpc_next_upstream…": error timeout.
    DirectiveFact {
        name: "fastcgi_next_upstream",
        module: "ngx_http_fastcgi_module",
        contexts: HSL,
        since: None,
        inheritance: Inheritance::Scalar,
        defaults: &[(V0, "error timeout")],
    },
    DirectiveFact {
        name: "uwsgi_next_upstream",
        module: "ngx_http_uwsgi_module",
        contexts: HSL,
        since: None,
        inheritance: Inheritance::Scalar,
        defaults: &[(V0, "error timeout")],
    },
    DirectiveFact {
        name: "scgi_next_upstream",
        module: "ngx_http_scgi_module",
        contexts: HSL,
        since: None,
        inheritance: Inheritance::Scalar,
        defaults: &[(V0, "error timeout")],
    },
    DirectiveFact {
        name: "grpc_next_upstream",
        module: "ngx_http_grpc_module",
        contexts: HSL,
        since: Some(v(1, 13, 10)),
        inheritance: Inheritance::Scalar,
        defaults: &[(V0, "error timeout")],
    },
    // directives.tsv row "grpc_… / grpc_ssl_server_name / grpc_ssl_session_reuse": off / on.
    DirectiveFact {
        name: "grpc_ssl_server_name",
        module: "ngx_http_grpc_module",
        contexts: HSL,
        since: Some(v(1, 13, 10)),
        inheritance: Inheritance::Scalar,
        defaults: &[(V0, "off")],
    },
    DirectiveFact {
        name: "grpc_ssl_session_reuse",
        module: "ngx_http_grpc_module",
        contexts: HSL,
        since: Some(v(1, 13, 10)),
        inheritance: Inheritance::Scalar,
        defaults: &[(V0, "on")],
    },
    // Array directives, all-or-nothing (directives.tsv row proxy_set_header,
    // column inheritance; behaviors.md §e list).
    DirectiveFact {
        name: "grpc_set_header",
        module: "ngx_http_grpc_module",
        contexts: HSL,
        since: Some(v(1, 13, 10)),
        inheritance: Inheritance::Array,
        defaults: &[],
    },
    DirectiveFact {
        name: "fastcgi_param",
        module: "ngx_http_fastcgi_module",
        contexts: HSL,
        since: None,
        inheritance: Inheritance::Array,
        defaults: &[],
    },
    DirectiveFact {
        name: "uwsgi_param",
        module: "ngx_http_uwsgi_module",
        contexts: HSL,
        since: None,
        inheritance: Inheritance::Array,
        defaults: &[],
    },
    DirectiveFact {
        name: "scgi_param",
        module: "ngx_http_scgi_module",
        contexts: HSL,
        since: None,
        inheritance: Inheritance::Array,
        defaults: &[],
    },
    DirectiveFact {
        name: "proxy_hide_header",
        module: "ngx_http_proxy_module",
        contexts: HSL,
        since: None,
        inheritance: Inheritance::Array,
        defaults: &[],
    },
    DirectiveFact {
        name: "proxy_pass_header",
        module: "ngx_http_proxy_module",
        contexts: HSL,
        since: None,
        inheritance: Inheritance::Array,
        defaults: &[],
    },
    DirectiveFact {
        name: "add_header",
        module: "ngx_http_headers_module",
        contexts: HSL,
        since: None,
        inheritance: Inheritance::Array,
        defaults: &[],
    },
    // directives.tsv row "ip_hash / least_conn / hash / random / least_time / sticky":
    // balancers; ip_hash 0.x, least_conn 1.3.1, hash 1.7.2, random 1.15.1,
    // least_time 1.31.0 (OSS), sticky 1.29.6 (OSS).
    DirectiveFact {
        name: "ip_hash",
        module: "ngx_http_upstream_ip_hash_module",
        contexts: &[Upstream],
        since: None,
        inheritance: Inheritance::NotInherited,
        defaults: &[],
    },
    DirectiveFact {
        name: "least_conn",
        module: "ngx_http_upstream_least_conn_module",
        contexts: &[Upstream],
        since: Some(v(1, 3, 1)),
        inheritance: Inheritance::NotInherited,
        defaults: &[],
    },
    DirectiveFact {
        name: "hash",
        module: "ngx_http_upstream_hash_module",
        contexts: &[Upstream],
        since: Some(v(1, 7, 2)),
        inheritance: Inheritance::NotInherited,
        defaults: &[],
    },
    DirectiveFact {
        name: "random",
        module: "ngx_http_upstream_random_module",
        contexts: &[Upstream],
        since: Some(v(1, 15, 1)),
        inheritance: Inheritance::NotInherited,
        defaults: &[],
    },
    DirectiveFact {
        name: "least_time",
        module: "ngx_http_upstream_least_time_module",
        contexts: &[Upstream],
        since: Some(v(1, 31, 0)),
        inheritance: Inheritance::NotInherited,
        defaults: &[],
    },
    DirectiveFact {
        name: "sticky",
        module: "ngx_http_upstream_sticky_module",
        contexts: &[Upstream],
        since: Some(v(1, 29, 6)),
        inheritance: Inheritance::NotInherited,
        defaults: &[],
    },
    // directives.tsv row "zone": 1.9.0.
    DirectiveFact {
        name: "zone",
        module: "ngx_http_upstream_zone_module",
        contexts: &[Upstream],
        since: Some(v(1, 9, 0)),
        inheritance: Inheritance::NotInherited,
        defaults: &[],
    },
    // directives.tsv row "worker_connections": 512 (DEFAULT_CONNECTIONS).
    DirectiveFact {
        name: "worker_connections",
        module: "ngx_event_core_module",
        contexts: &[Events],
        since: None,
        inheritance: Inheritance::NotInherited,
        defaults: &[(V0, "512")],
    },
    // directives.tsv row "worker_processes": 1; 'auto' since 1.3.8/1.2.5.
    DirectiveFact {
        name: "worker_processes",
        module: "ngx_core_module",
        contexts: &[Main],
        since: None,
        inheritance: Inheritance::NotInherited,
        defaults: &[(V0, "1")],
    },
    // directives.tsv row "worker_rlimit_nofile": none (inherits the OS limit).
    DirectiveFact {
        name: "worker_rlimit_nofile",
        module: "ngx_core_module",
        contexts: &[Main],
        since: None,
        inheritance: Inheritance::NotInherited,
        defaults: &[],
    },
    // directives.tsv row "worker_shutdown_timeout": none (wait forever), 1.11.11.
    DirectiveFact {
        name: "worker_shutdown_timeout",
        module: "ngx_core_module",
        contexts: &[Main],
        since: Some(v(1, 11, 11)),
        inheritance: Inheritance::NotInherited,
        defaults: &[],
    },
];

/// Looks up a directive. `in_upstream` picks the `upstream{}` flavour of
/// names that exist in both (`keepalive_timeout`, `keepalive_requests`,
/// `keepalive_time`).
pub fn directive(name: &str, in_upstream: bool) -> Option<&'static DirectiveFact> {
    let mut candidates = DIRECTIVES.iter().filter(|d| d.name == name);
    let first = candidates.next()?;
    if first.contexts.contains(&Upstream) == in_upstream {
        return Some(first);
    }
    candidates
        .find(|d| d.contexts.contains(&Upstream) == in_upstream)
        .or(Some(first))
}

/// Whether `name` follows the all-or-nothing array inheritance.
pub fn is_array_directive(name: &str) -> bool {
    directive(name, false).is_some_and(|d| d.inheritance == Inheritance::Array)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_dependent_defaults() {
        let pv = directive("proxy_http_version", false).unwrap();
        assert_eq!(pv.default_in(v(1, 28, 0)), Some("1.0"));
        assert_eq!(pv.default_in(v(1, 29, 7)), Some("1.1"));

        let ka = directive("keepalive", true).unwrap();
        assert_eq!(ka.default_in(v(1, 29, 6)), None);
        assert_eq!(ka.default_in(v(1, 30, 0)), Some("32 local"));

        let client_req = directive("keepalive_requests", false).unwrap();
        assert_eq!(client_req.module, "ngx_http_core_module");
        assert_eq!(client_req.default_in(v(1, 19, 9)), Some("100"));
        assert_eq!(client_req.default_in(v(1, 19, 10)), Some("1000"));

        let up_timeout = directive("keepalive_timeout", true).unwrap();
        assert_eq!(up_timeout.module, "ngx_http_upstream_keepalive_module");
        assert!(!up_timeout.available_in(v(1, 15, 2)));
        assert_eq!(up_timeout.default_in(v(1, 15, 3)), Some("60s"));
        assert_eq!(
            directive("keepalive_timeout", false)
                .unwrap()
                .default_in(v(1, 0, 0)),
            Some("75s")
        );
    }

    #[test]
    fn array_directives() {
        assert!(is_array_directive("proxy_set_header"));
        assert!(is_array_directive("fastcgi_param"));
        assert!(!is_array_directive("proxy_http_version"));
        assert!(!is_array_directive("no_such_directive"));
    }
}
