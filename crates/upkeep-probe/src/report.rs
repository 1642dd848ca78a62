//! What a probe found, and its JSON form.
//!
//! # JSON schema (`upkeep probe --format json`, schema 1)
//!
//! ```text
//! {
//!   "schema": 1,
//!   "interrupted": false,            // true: Ctrl-C, values are what was measured so far
//!   "nginx_version": "1.22.1",       // with --config: version the verdicts assume, else null
//!   "nginx_version_source": "from nginx -v", // or "--nginx-version", or "assumed; …"
//!   "targets": [ {
//!     "target": "127.0.0.1:8080",    // as given, or the upstream's `server` address
//!     "upstream": "backend",         // nginx upstream name (with --config), else null
//!     "address": "127.0.0.1:8080",   // the socket address actually probed, or null
//!     "scheme": "http",              // "http" | "https"
//!     "http_version": "1.1",         // of the first response: "1.0" | "1.1" | null (no response)
//!     "status": 200,                 // of the first response, or null
//!     "server": "gunicorn",          // Server header, or null
//!     "keepalive": true,             // the connection stayed open for another request
//!     "closes_after_response": false,// the backend closed (or said it would) after the first response
//!     "announces_close": true,       // the closing response carried `Connection: close`;
//!                                    //   false = silent close (dangerous); null = never closed
//!     "close_announced_on_request": 7, // which response (1-based) carried `Connection: close`, or null
//!     "keep_alive_header": "timeout=5",// what the backend advertises, or null
//!     "idle_timeout_ms": 5003,       // shortest time an idle connection stayed open before the
//!                                    //   backend closed it; null = not closed within the wait,
//!                                    //   or not applicable (closes_after_response)
//!     "idle_samples_ms": [5003, 5004], // every idle measurement (one per connection)
//!     "idle_waited_ms": 120000,      // how long the longest idle wait lasted
//!     "close_kind": "fin",           // how the idle close came: "fin" | "rst" | null
//!     "max_requests": 100,           // requests one connection carried before the backend closed
//!                                    //   it (1 when closes_after_response); null = not reached,
//!                                    //   or not measured: a silent close that came no sooner
//!                                    //   than the measured idle timeout may be that timeout
//!                                    //   (a note says so and how many requests were answered)
//!     "requests_sent": 100,          // requests sent on the request-cap connection
//!     "elapsed_ms": 5120,            // time spent on this target
//!     "error": null,                 // why the target could not be (fully) probed
//!     "notes": []                    // anything else worth knowing, as sentences
//!   } ],
//!   "upstreams": [ {                 // with --config only: one verdict per upstream block
//!     "upstream": "backend",
//!     "file": "/etc/nginx/conf.d/app.conf", "line": 3,
//!     "servers": 2, "pool": true,
//!     "nginx_keepalive_timeout_ms": 60000, "nginx_keepalive_requests": 1000,
//!     "backend_idle_timeout_ms": 5003, "backend_max_requests": null,
//!     "findings": [ { "rule": "U007", "severity": "error", "message": "...", "help": "..." } ],
//!     "summary": "backend idles out after 5.0 s; nginx keeps idle connections 60 s → U007; set keepalive_timeout 4500ms"
//!   } ]
//! }
//! ```
//!
//! `upkeep check --backend-facts FILE` (`upkeep_rules::settings::apply_probe_json`)
//! matches a target to an upstream by `upstream` when present (an upstream
//! takes its worst server's values), else by `target` against the upstream's
//! `server` addresses. Fields are only ever added, never renamed,
//! within one schema number.

use crate::target::Scheme;
use crate::transport::CloseKind;
use crate::verdict::UpstreamVerdict;
use serde::Serialize;

/// The schema number of [`ProbeReport`]'s JSON.
pub const SCHEMA: u32 = 1;

/// Everything measured about one target. See the module docs for meanings.
#[derive(Clone, Debug, Serialize)]
pub struct TargetReport {
    pub target: String,
    pub upstream: Option<String>,
    pub address: Option<String>,
    pub scheme: Scheme,
    pub http_version: Option<String>,
    pub status: Option<u16>,
    pub server: Option<String>,
    pub keepalive: Option<bool>,
    pub closes_after_response: Option<bool>,
    pub announces_close: Option<bool>,
    pub close_announced_on_request: Option<u32>,
    pub keep_alive_header: Option<String>,
    pub idle_timeout_ms: Option<u64>,
    pub idle_samples_ms: Vec<u64>,
    pub idle_waited_ms: u64,
    pub close_kind: Option<CloseKind>,
    pub max_requests: Option<u32>,
    pub requests_sent: u32,
    pub elapsed_ms: u64,
    pub error: Option<String>,
    pub notes: Vec<String>,
    /// The request cap was not measured: the request-cap connection
    /// answered this many requests, then closed in a way the idle timeout
    /// may explain (for the table; the notes say it in JSON).
    #[serde(skip)]
    pub cap_at_least: Option<u32>,
}

impl TargetReport {
    pub fn new(target: String, upstream: Option<String>, scheme: Scheme) -> TargetReport {
        TargetReport {
            target,
            upstream,
            address: None,
            scheme,
            http_version: None,
            status: None,
            server: None,
            keepalive: None,
            closes_after_response: None,
            announces_close: None,
            close_announced_on_request: None,
            keep_alive_header: None,
            idle_timeout_ms: None,
            idle_samples_ms: Vec::new(),
            idle_waited_ms: 0,
            close_kind: None,
            max_requests: None,
            requests_sent: 0,
            elapsed_ms: 0,
            error: None,
            notes: Vec::new(),
            cap_at_least: None,
        }
    }
}

/// The whole result of one `upkeep probe` run.
#[derive(Clone, Debug, Serialize)]
pub struct ProbeReport {
    pub schema: u32,
    pub interrupted: bool,
    pub nginx_version: Option<String>,
    pub nginx_version_source: Option<String>,
    pub targets: Vec<TargetReport>,
    pub upstreams: Vec<UpstreamVerdict>,
}

impl ProbeReport {
    pub fn to_json(&self) -> String {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_string_pretty(self).expect("probe report serializes")
    }
}
