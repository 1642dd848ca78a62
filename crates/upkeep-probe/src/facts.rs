//! Reading `upkeep probe --format json` back: what `upkeep check
//! --backend-facts FILE` needs to judge U007/U008 with measured values.
//!
//! Only the fields a consumer relies on are read; unknown fields are
//! ignored, so newer probe output stays readable within schema 1.

use serde::Deserialize;

/// A probe report as read from JSON.
#[derive(Clone, Debug, Deserialize)]
pub struct ProbeFacts {
    pub schema: u32,
    #[serde(default)]
    pub targets: Vec<TargetFacts>,
}

/// One probed backend.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct TargetFacts {
    pub target: String,
    #[serde(default)]
    pub upstream: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub keepalive: Option<bool>,
    #[serde(default)]
    pub closes_after_response: Option<bool>,
    #[serde(default)]
    pub announces_close: Option<bool>,
    #[serde(default)]
    pub idle_timeout_ms: Option<u64>,
    #[serde(default)]
    pub max_requests: Option<u32>,
    #[serde(default)]
    pub error: Option<String>,
}

/// What the servers of one upstream do, the worst server deciding.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MeasuredBackend {
    /// Shortest idle timeout measured.
    pub idle_timeout_ms: Option<u64>,
    /// Lowest request cap measured.
    pub max_requests: Option<u32>,
    /// Some server closed after `max_requests` without `Connection: close`.
    pub silent_close: bool,
    /// Every server closes after each response.
    pub closes_after_response: bool,
    /// Servers measured (reports without an error).
    pub servers: usize,
}

impl ProbeFacts {
    /// Parses a probe report; rejects other schemas with a clear message.
    pub fn from_json(text: &str) -> Result<ProbeFacts, String> {
        let facts: ProbeFacts = serde_json::from_str(text).map_err(|e| {
            format!(
                "not an `upkeep probe --format json` report: {e} (line {}, column {})",
                e.line(),
                e.column()
            )
        })?;
        if facts.schema != crate::SCHEMA {
            return Err(format!(
                "probe report schema {} is not supported (expected {})",
                facts.schema,
                crate::SCHEMA
            ));
        }
        Ok(facts)
    }

    /// The measurements of upstream `name`: the targets probed for it from a
    /// config, else those whose target or address is one of `addresses`
    /// (the upstream's `server` addresses as written, e.g. `10.0.0.5:8080`).
    pub fn for_upstream(&self, name: &str, addresses: &[&str]) -> Option<MeasuredBackend> {
        let by_name: Vec<&TargetFacts> = self
            .targets
            .iter()
            .filter(|t| {
                t.upstream
                    .as_deref()
                    .is_some_and(|u| u.eq_ignore_ascii_case(name))
            })
            .collect();
        let chosen = if by_name.is_empty() {
            self.targets
                .iter()
                .filter(|t| {
                    addresses.iter().any(|a| {
                        t.target == *a
                            || t.address.as_deref() == Some(*a)
                            || t.target.strip_prefix("http://") == Some(*a)
                            || t.target.strip_prefix("https://") == Some(*a)
                    })
                })
                .collect()
        } else {
            by_name
        };
        let measured: Vec<&&TargetFacts> = chosen
            .iter()
            .filter(|t| t.error.is_none() && t.keepalive.is_some())
            .collect();
        if measured.is_empty() {
            return None;
        }
        Some(MeasuredBackend {
            idle_timeout_ms: measured.iter().filter_map(|t| t.idle_timeout_ms).min(),
            max_requests: measured.iter().filter_map(|t| t.max_requests).min(),
            silent_close: measured.iter().any(|t| t.announces_close == Some(false)),
            closes_after_response: measured
                .iter()
                .all(|t| t.closes_after_response == Some(true)),
            servers: measured.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{ProbeReport, TargetReport};
    use crate::target::Scheme;

    fn report() -> ProbeReport {
        let mut a = TargetReport::new("10.0.0.5:8080".into(), Some("app".into()), Scheme::Http);
        a.address = Some("10.0.0.5:8080".into());
        a.http_version = Some("1.1".into());
        a.keepalive = Some(true);
        a.closes_after_response = Some(false);
        a.idle_timeout_ms = Some(5003);
        a.max_requests = Some(100);
        a.announces_close = Some(false);
        let mut b = a.clone();
        b.target = "10.0.0.6:8080".into();
        b.address = Some("10.0.0.6:8080".into());
        b.idle_timeout_ms = Some(30_000);
        b.max_requests = None;
        b.announces_close = None;
        let mut c = TargetReport::new("127.0.0.1:9000".into(), None, Scheme::Http);
        c.address = Some("127.0.0.1:9000".into());
        c.keepalive = Some(true);
        c.idle_timeout_ms = Some(2000);
        let mut dead = TargetReport::new("127.0.0.1:1".into(), None, Scheme::Http);
        dead.error = Some("refused".into());
        ProbeReport {
            schema: 1,
            interrupted: false,
            nginx_version: None,
            nginx_version_source: None,
            targets: vec![a, b, c, dead],
            upstreams: vec![],
        }
    }

    #[test]
    fn round_trips_what_probe_writes() {
        let facts = ProbeFacts::from_json(&report().to_json()).unwrap();
        assert_eq!(facts.targets.len(), 4);
        let app = facts.for_upstream("app", &[]).unwrap();
        assert_eq!(
            app,
            MeasuredBackend {
                idle_timeout_ms: Some(5003),
                max_requests: Some(100),
                silent_close: true,
                closes_after_response: false,
                servers: 2,
            }
        );
        // Targets probed without --config match by address.
        let other = facts.for_upstream("other", &["127.0.0.1:9000"]).unwrap();
        assert_eq!(other.idle_timeout_ms, Some(2000));
        assert_eq!(facts.for_upstream("gone", &["127.0.0.1:1"]), None);
    }

    #[test]
    fn rejects_other_documents() {
        assert!(ProbeFacts::from_json("{\"schema\":2,\"targets\":[]}")
            .unwrap_err()
            .contains("schema 2"));
        assert!(ProbeFacts::from_json("[1,2]")
            .unwrap_err()
            .contains("not an `upkeep probe"));
        // The SPEC minimum is enough.
        let minimal = r#"{"schema":1,"targets":[{"target":"127.0.0.1:8080","http_version":"1.1","keepalive":true,"closes_after_response":false,"idle_timeout_ms":5003,"max_requests":null,"error":null}]}"#;
        let f = ProbeFacts::from_json(minimal).unwrap();
        assert_eq!(
            f.for_upstream("x", &["127.0.0.1:8080"])
                .unwrap()
                .idle_timeout_ms,
            Some(5003)
        );
    }
}
