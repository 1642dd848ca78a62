//! The results of a lab run and their renderings: a terminal table, JSON
//! (SPEC.md's `lab --format json`) and a self-contained HTML page.

pub mod html;
pub mod svg;
pub mod table;

use crate::plan::{ConfigFile, Phase};
use crate::traffic::TrafficProfile;
use serde::Serialize;
use std::collections::BTreeMap;
use upkeep_host::stub_status::StubStatus;

/// Version of the JSON document; bumped on incompatible changes.
pub const SCHEMA: u32 = 1;

#[derive(Clone, Debug, Serialize)]
pub struct LabReport {
    pub schema: u32,
    pub scenario: String,
    pub explanation: String,
    pub nginx: NginxInfo,
    /// "loopback (127.0.0.1)" or the namespace and its port range.
    pub network: String,
    /// One-way delay of the relays between nginx and the backends.
    pub relay_delay_ms: Option<u64>,
    pub backends: Vec<BackendInfo>,
    pub traffic: TrafficProfile,
    pub fix: Option<FixSummary>,
    pub runs: Vec<PhaseResult>,
    /// The run was stopped (Ctrl-C) before it completed.
    pub interrupted: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct NginxInfo {
    pub path: String,
    pub version: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct BackendInfo {
    pub upstream: String,
    /// The server address in the user's config, if any.
    pub original: Option<String>,
    pub profile: crate::backend::BackendProfile,
    pub description: String,
}

/// What `upkeep fix` changed for the after phase.
#[derive(Clone, Debug, Serialize)]
pub struct FixSummary {
    /// "upkeep fix" or, where the fix engine is unavailable, a note saying
    /// the scenario's expected fix was used.
    pub source: String,
    pub applied: Vec<AppliedFix>,
    /// Fixes refused, findings left that need a decision.
    pub notes: Vec<String>,
    /// Unified diff of the config, before to after.
    pub diff: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct AppliedFix {
    pub rule: String,
    pub description: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    pub p50: Option<f64>,
    pub p99: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PhaseResult {
    pub phase: Phase,
    /// Requests the clients sent.
    pub requests: u64,
    /// Responses by status code; requests that got none count under "error".
    pub status: BTreeMap<String, u64>,
    pub status_by_method: BTreeMap<String, BTreeMap<String, u64>>,
    /// TCP connections the emulated backends accepted (= opened by nginx).
    pub upstream_connections_opened: u64,
    pub upstream_connections_per_request: Option<f64>,
    /// Most TIME_WAIT sockets on the lab's ports seen at once.
    pub time_wait_peak: u64,
    pub latency_ms: Latency,
    /// Error-log lines by signature id (facts/signatures.tsv).
    pub error_signatures: BTreeMap<String, u64>,
    /// The first line of each signature, as nginx wrote it.
    pub error_samples: BTreeMap<String, String>,
    /// Requests nginx sent to the backends more than once (from the access
    /// log's `$upstream_status`), e.g. GETs retried after a stale connection.
    pub nginx_retried: Option<u64>,
    pub client_connections_opened: u64,
    pub client_retries: u64,
    pub client_errors: BTreeMap<String, u64>,
    /// stub_status at the end of the phase (the lab's own status request included).
    pub stub_status: Option<StubStatus>,
    pub duration_ms: u64,
    pub timeline: Timeline,
    /// The config nginx ran in this phase.
    pub config: Vec<ConfigFile>,
    /// The nginx master's pid (stopped by the end of the phase).
    pub nginx_pid: i32,
    /// The network namespace the phase ran in (deleted by its end).
    pub namespace: Option<String>,
    /// Problems that did not stop the phase (nginx slow to stop, status page
    /// unreachable…).
    pub warnings: Vec<String>,
}

impl PhaseResult {
    pub fn count(&self, method: &str, status: &str) -> u64 {
        self.status_by_method
            .get(method)
            .and_then(|m| m.get(status))
            .copied()
            .unwrap_or(0)
    }

    pub fn method_total(&self, method: &str) -> u64 {
        self.status_by_method
            .get(method)
            .map(|m| m.values().sum())
            .unwrap_or(0)
    }
}

/// Per-interval counts for the charts.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Timeline {
    pub bucket_ms: u64,
    pub buckets: Vec<Bucket>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Bucket {
    /// Start of the interval, from the phase start.
    pub t_ms: u64,
    pub requests: u64,
    pub status_502: u64,
    pub client_errors: u64,
    pub new_upstream_connections: u64,
    /// Connections the clients opened to nginx.
    pub new_client_connections: u64,
    /// Highest TIME_WAIT sample in the interval.
    pub time_wait: u64,
}

impl LabReport {
    pub fn run(&self, phase: Phase) -> Option<&PhaseResult> {
        self.runs.iter().find(|r| r.phase == phase)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("report serializes")
    }
}
