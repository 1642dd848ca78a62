//! Measured backend behaviour against an nginx upstream block: does nginx
//! keep idle connections longer than the backend (U007), does the backend cap
//! requests per connection below nginx, silently (U008), is there a pool at
//! all (U001)?
//!
//! The nginx side comes resolved for the target version (by upkeep-model,
//! from facts/directives.tsv): whether the upstream has a working idle pool
//! (none without `keepalive` before 1.29.7, `keepalive 0` disables it), its
//! `keepalive_timeout` (default 60s; none at all before 1.15.3) and its
//! `keepalive_requests` (100, 1000 since 1.19.10; no limit before 1.15.3).

use crate::render::{nginx_duration, seconds};
use crate::report::TargetReport;
use serde::Serialize;
use upkeep_diag::{Finding, Severity};
use upkeep_facts::{landmarks, NginxVersion};
use upkeep_syntax::Span;

/// The effective keep-alive settings of one upstream block.
#[derive(Clone, Debug, Default)]
pub struct UpstreamConfig {
    pub name: String,
    /// Where the block is, for messages (`file`, 1-based `line`).
    pub file: String,
    pub line: u32,
    /// The `upstream` directive, for diagnostics pointing at it.
    pub span: Option<Span>,
    /// nginx keeps idle connections to this upstream.
    pub pool: bool,
    /// Why there is no pool (when `pool` is false), for the message.
    pub no_pool_reason: String,
    /// Effective `keepalive_timeout`; `None`: nginx has none (< 1.15.3).
    pub keepalive_timeout_ms: Option<u64>,
    /// Effective `keepalive_requests`; `None`: no limit (< 1.15.3).
    pub keepalive_requests: Option<u64>,
}

/// One verdict per upstream (JSON: see [`crate::report`]).
#[derive(Clone, Debug, Serialize)]
pub struct UpstreamVerdict {
    pub upstream: String,
    pub file: String,
    pub line: u32,
    pub servers: usize,
    /// nginx keeps idle connections to this upstream.
    pub pool: bool,
    /// Effective upstream `keepalive_timeout`; null = nginx has none (< 1.15.3).
    pub nginx_keepalive_timeout_ms: Option<u64>,
    /// Effective upstream `keepalive_requests`; null = no limit (< 1.15.3).
    pub nginx_keepalive_requests: Option<u64>,
    /// The shortest idle timeout measured among the upstream's servers.
    pub backend_idle_timeout_ms: Option<u64>,
    /// The lowest request cap measured among the upstream's servers.
    pub backend_max_requests: Option<u32>,
    pub findings: Vec<VerdictFinding>,
    /// One line for the table.
    pub summary: String,
    #[serde(skip)]
    pub diagnostics: Vec<Finding>,
}

#[derive(Clone, Debug, Serialize)]
pub struct VerdictFinding {
    pub rule: &'static str,
    pub name: &'static str,
    pub severity: &'static str,
    pub message: String,
    pub help: Option<String>,
}

// The rule IDs and names of RULES.md this verdict can raise.
const U001: (&str, &str) = ("U001", "upstream-without-keepalive");
const U007: (&str, &str) = ("U007", "upstream-idle-outlives-backend");
const U008: (&str, &str) = ("U008", "backend-request-cap");

/// The timeout to suggest for a backend that idles out after `backend_ms`;
/// the same computation `upkeep fix` uses for U007.
pub fn suggested_keepalive_timeout_ms(backend_ms: u64) -> u64 {
    upkeep_facts::suggested_upstream_keepalive_timeout_ms(backend_ms)
}

/// Judges one upstream from the reports of its servers.
pub fn judge(
    cfg: &UpstreamConfig,
    version: NginxVersion,
    reports: &[&TargetReport],
) -> UpstreamVerdict {
    let pool = cfg.pool;
    let nginx_timeout = cfg.keepalive_timeout_ms;
    let nginx_requests = cfg.keepalive_requests;

    let measured: Vec<&TargetReport> = reports
        .iter()
        .copied()
        .filter(|r| r.http_version.is_some())
        .collect();
    let backend_idle = measured.iter().filter_map(|r| r.idle_timeout_ms).min();
    let backend_cap = measured.iter().filter_map(|r| r.max_requests).min();
    let silent_cap = measured
        .iter()
        .filter(|r| r.announces_close == Some(false))
        .filter_map(|r| r.max_requests)
        .min();
    let closes_every_response = !measured.is_empty()
        && measured
            .iter()
            .all(|r| r.closes_after_response == Some(true));
    let longest_open_wait = measured
        .iter()
        .filter(|r| r.idle_timeout_ms.is_none() && r.closes_after_response == Some(false))
        .map(|r| r.idle_waited_ms)
        .min();

    let mut v = UpstreamVerdict {
        upstream: cfg.name.clone(),
        file: cfg.file.clone(),
        line: cfg.line,
        servers: reports.len(),
        pool,
        nginx_keepalive_timeout_ms: nginx_timeout,
        nginx_keepalive_requests: nginx_requests,
        backend_idle_timeout_ms: backend_idle,
        backend_max_requests: backend_cap,
        findings: Vec::new(),
        summary: String::new(),
        diagnostics: Vec::new(),
    };
    let mut parts: Vec<String> = Vec::new();

    if measured.is_empty() {
        let why = reports
            .iter()
            .find_map(|r| r.error.clone())
            .unwrap_or_else(|| "no server answered".into());
        v.summary = format!("not measured: {why}");
        return v;
    }

    if closes_every_response {
        if silent_cap == Some(1) && pool {
            v.add(
                cfg,
                U008,
                Severity::Error,
                "the backend closes every connection after one response without `Connection: close`: nginx keeps and reuses connections the backend has already closed".into(),
                Some(disable_pool_help(version)),
            );
            parts.push("backend closes silently after every response → U008".into());
        } else {
            parts.push("backend closes after every response: no reuse possible, no race".into());
        }
        v.summary = parts.join("; ");
        return v;
    }

    if !pool {
        let why = &cfg.no_pool_reason;
        let timeout_help = match (backend_idle, nginx_timeout) {
            (Some(b), Some(n)) if n >= b => format!(
                " and `keepalive_timeout {};` (the backend idles out after {})",
                nginx_duration(suggested_keepalive_timeout_ms(b)),
                seconds(b)
            ),
            _ => String::new(),
        };
        v.add(
            cfg,
            U001,
            Severity::Warning,
            format!("nginx keeps no idle connections to upstream `{}` ({why}): every request opens a new connection", cfg.name),
            Some(format!("add `keepalive 32;`{timeout_help} to upstream `{}`", cfg.name)),
        );
        parts.push(format!("nginx keeps no idle connections ({why}) → U001"));
    }

    // Idle timeout.
    match (backend_idle, nginx_timeout) {
        (Some(b), Some(n)) if n >= b => {
            let suggestion = nginx_duration(suggested_keepalive_timeout_ms(b));
            let head = format!(
                "backend idles out after {}; nginx keeps idle connections {}",
                seconds(b),
                nginx_seconds(n)
            );
            if pool {
                v.add(
                    cfg,
                    U007,
                    Severity::Error,
                    format!("{head}: nginx reuses connections the backend is closing (502 on non-idempotent requests)"),
                    Some(format!("set `keepalive_timeout {suggestion};` in upstream `{}`", cfg.name)),
                );
                parts.push(format!("{head} → U007; set keepalive_timeout {suggestion}"));
            }
        }
        (Some(b), None) if pool => {
            let head = format!(
                "backend idles out after {}; nginx {version} has no upstream keepalive_timeout (added in 1.15.3) and keeps idle connections until the backend closes them",
                seconds(b)
            );
            v.add(
                cfg,
                U007,
                Severity::Error,
                head.clone(),
                Some(format!(
                    "upgrade nginx to 1.15.3 or later and set `keepalive_timeout {};`, or lengthen the backend's idle timeout",
                    nginx_duration(suggested_keepalive_timeout_ms(b))
                )),
            );
            parts.push(format!("{head} → U007"));
        }
        (Some(b), Some(n)) => parts.push(format!(
            "backend idles out after {}; nginx closes idle connections after {}: ok",
            seconds(b),
            nginx_seconds(n)
        )),
        (None, n) => {
            if let Some(waited) = longest_open_wait {
                let verdict = match n {
                    Some(n) if n < waited => ": ok".to_string(),
                    Some(n) => format!(
                        "; raise --max-wait above nginx's {} to compare",
                        nginx_seconds(n)
                    ),
                    None => String::new(),
                };
                parts.push(format!(
                    "backend kept idle connections open for at least {}{verdict}",
                    seconds(waited)
                ));
            } else {
                parts.push("idle timeout not measured".into());
            }
        }
        (Some(_), None) => {}
    }

    // Requests per connection.
    if let Some(cap) = backend_cap {
        let nginx_closes_first = nginx_requests.is_some_and(|n| n <= u64::from(cap));
        if !nginx_closes_first {
            let nginx_text = match nginx_requests {
                Some(n) => format!("nginx allows {n} (keepalive_requests)"),
                None => format!("nginx {version} has no upstream keepalive_requests limit"),
            };
            if silent_cap.is_some_and(|s| s <= cap) {
                let (action, help) = if cap >= 2 {
                    (
                        format!("set keepalive_requests {}", cap - 1),
                        format!(
                            "set `keepalive_requests {};` in upstream `{}`",
                            cap - 1,
                            cfg.name
                        ),
                    )
                } else {
                    ("disable the pool".to_string(), disable_pool_help(version))
                };
                if pool {
                    v.add(
                        cfg,
                        U008,
                        Severity::Error,
                        format!("the backend closes a connection after {cap} requests WITHOUT `Connection: close` and {nginx_text}: nginx sends the next request on a closed connection"),
                        Some(help),
                    );
                    parts.push(format!(
                        "backend closes silently after {cap} requests → U008; {action}"
                    ));
                }
            } else {
                if pool {
                    v.add(
                        cfg,
                        U008,
                        Severity::Info,
                        format!("the backend closes a connection after {cap} requests and announces it (`Connection: close`); {nginx_text}: reuse is capped at {cap}, no race"),
                        None,
                    );
                }
                parts.push(format!(
                    "backend closes after {cap} requests and says so (U008, info)"
                ));
            }
        }
    }

    if v.findings.is_empty() && parts.iter().all(|p| !p.contains("not measured")) {
        parts.push("no keep-alive problem found".into());
    }
    v.summary = parts.join("; ");
    v
}

fn disable_pool_help(version: NginxVersion) -> String {
    if version >= landmarks::KEEPALIVE_BY_DEFAULT {
        "make the backend send `Connection: close` when it closes, or disable the pool with `keepalive 0;`".into()
    } else {
        "make the backend send `Connection: close` when it closes, or remove `keepalive` from the upstream".into()
    }
}

/// nginx config values are whole seconds more often than not: "60 s".
fn nginx_seconds(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        seconds(ms)
    }
}

impl UpstreamVerdict {
    fn add(
        &mut self,
        cfg: &UpstreamConfig,
        (rule, name): (&'static str, &'static str),
        severity: Severity,
        message: String,
        help: Option<String>,
    ) {
        self.findings.push(VerdictFinding {
            rule,
            name,
            severity: severity.as_str(),
            message: message.clone(),
            help: help.clone(),
        });
        let mut f = Finding::new(rule, name, severity, message);
        f.primary = cfg.span;
        f.help = help;
        f.notes.push("measured by `upkeep probe`".into());
        self.diagnostics.push(f);
    }

    /// The most severe finding, if any.
    pub fn worst(&self) -> Option<Severity> {
        self.diagnostics.iter().map(|f| f.severity).max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::Scheme;

    #[allow(non_snake_case)]
    fn V(a: u32, b: u32, c: u32) -> NginxVersion {
        NginxVersion::new(a, b, c)
    }

    fn measured(idle: Option<u64>, cap: Option<u32>, announced: Option<bool>) -> TargetReport {
        let mut r = TargetReport::new("127.0.0.1:1".into(), Some("app".into()), Scheme::Http);
        r.http_version = Some("1.1".into());
        r.keepalive = Some(true);
        r.closes_after_response = Some(cap == Some(1));
        r.idle_timeout_ms = idle;
        r.idle_waited_ms = idle.unwrap_or(120_000);
        r.max_requests = cap;
        r.announces_close = announced;
        r
    }

    /// What upkeep-model resolves for `keepalive N` (None: not written) on
    /// nginx 1.22.1 unless the test says otherwise.
    fn upstream(keepalive: Option<u32>) -> UpstreamConfig {
        UpstreamConfig {
            name: "app".into(),
            file: "nginx.conf".into(),
            line: 3,
            pool: keepalive.is_some_and(|n| n > 0),
            no_pool_reason: match keepalive {
                Some(0) => "`keepalive 0` disables the pool".into(),
                _ => "no `keepalive`".into(),
            },
            keepalive_timeout_ms: Some(60_000),
            keepalive_requests: Some(1000),
            ..Default::default()
        }
    }

    fn rules(v: &UpstreamVerdict) -> Vec<(&str, &str)> {
        v.findings.iter().map(|f| (f.rule, f.severity)).collect()
    }

    #[test]
    fn suggestion_margin_is_the_smaller_of_1s_or_10_percent() {
        assert_eq!(suggested_keepalive_timeout_ms(5003), 4500);
        assert_eq!(suggested_keepalive_timeout_ms(2000), 1800);
        assert_eq!(suggested_keepalive_timeout_ms(60_000), 59_000);
        assert_eq!(suggested_keepalive_timeout_ms(1500), 1300);
        assert_eq!(suggested_keepalive_timeout_ms(3), 1);
    }

    #[test]
    fn default_timeout_outlives_a_5s_backend() {
        let r = measured(Some(5003), None, None);
        let v = judge(&upstream(Some(32)), V(1, 22, 1), &[&r]);
        assert_eq!(rules(&v), vec![("U007", "error")]);
        assert_eq!(
            v.summary,
            "backend idles out after 5.0 s; nginx keeps idle connections 60 s → U007; set keepalive_timeout 4500ms"
        );
        assert_eq!(v.nginx_keepalive_timeout_ms, Some(60_000));
    }

    #[test]
    fn shorter_nginx_timeout_is_ok() {
        let r = measured(Some(5003), None, None);
        let mut cfg = upstream(Some(32));
        cfg.keepalive_timeout_ms = Some(4000);
        let v = judge(&cfg, V(1, 22, 1), &[&r]);
        assert!(v.findings.is_empty(), "{:?}", v.findings);
        assert!(v.summary.contains(": ok"), "{}", v.summary);
    }

    #[test]
    fn no_pool_before_1_29_7_but_by_default_after() {
        let r = measured(Some(5003), None, None);
        let old = judge(&upstream(None), V(1, 28, 0), &[&r]);
        assert_eq!(rules(&old), vec![("U001", "warning")]);
        assert!(old.findings[0]
            .help
            .as_deref()
            .unwrap()
            .contains("keepalive_timeout 4500ms"));
        // 1.29.7+: the model resolves an implicit pool of 32.
        let mut implicit = upstream(None);
        implicit.pool = true;
        let new = judge(&implicit, V(1, 29, 7), &[&r]);
        assert_eq!(rules(&new), vec![("U007", "error")]);
        let off = judge(&upstream(Some(0)), V(1, 29, 7), &[&r]);
        assert!(off.summary.contains("`keepalive 0` disables the pool"));
        assert_eq!(rules(&off), vec![("U001", "warning")]);
    }

    #[test]
    fn nginx_before_1_15_3_has_no_idle_timeout() {
        let r = measured(Some(2000), None, None);
        let mut cfg = upstream(Some(16));
        cfg.keepalive_timeout_ms = None;
        cfg.keepalive_requests = None;
        let v = judge(&cfg, V(1, 14, 2), &[&r]);
        assert_eq!(rules(&v), vec![("U007", "error")]);
        assert!(v.summary.contains("no upstream keepalive_timeout"));
        assert_eq!(v.nginx_keepalive_requests, None);
    }

    #[test]
    fn request_caps_silent_and_announced() {
        let mut cfg = upstream(Some(32));
        cfg.keepalive_timeout_ms = Some(1000);
        let silent = measured(Some(5000), Some(100), Some(false));
        let v = judge(&cfg, V(1, 22, 1), &[&silent]);
        assert_eq!(rules(&v), vec![("U008", "error")]);
        assert!(v.summary.contains("keepalive_requests 99"), "{}", v.summary);
        let announced = measured(Some(5000), Some(100), Some(true));
        let v = judge(&cfg, V(1, 22, 1), &[&announced]);
        assert_eq!(rules(&v), vec![("U008", "info")]);
        // nginx 1.19.9: default keepalive_requests 100 closes first.
        cfg.keepalive_requests = Some(100);
        let v = judge(&cfg, V(1, 19, 9), &[&silent]);
        assert!(v.findings.is_empty(), "{:?}", v.findings);
    }

    #[test]
    fn worst_server_decides() {
        let a = measured(Some(30_000), None, None);
        let b = measured(Some(2000), None, None);
        let v = judge(&upstream(Some(8)), V(1, 22, 1), &[&a, &b]);
        assert_eq!(v.backend_idle_timeout_ms, Some(2000));
        assert!(
            v.summary.contains("set keepalive_timeout 1800ms"),
            "{}",
            v.summary
        );
    }

    #[test]
    fn closing_backends_and_failures() {
        let mut sync = measured(None, Some(1), Some(true));
        sync.closes_after_response = Some(true);
        let v = judge(&upstream(Some(8)), V(1, 22, 1), &[&sync]);
        assert!(v.findings.is_empty());
        assert!(v.summary.contains("after every response"));

        let mut dead = TargetReport::new("x:1".into(), None, Scheme::Http);
        dead.error = Some("connect to 127.0.0.1:1: Connection refused".into());
        let v = judge(&upstream(Some(8)), V(1, 22, 1), &[&dead]);
        assert!(
            v.summary.starts_with("not measured: connect"),
            "{}",
            v.summary
        );
    }
}
