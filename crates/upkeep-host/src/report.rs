//! Rendering a [`DoctorReport`]: what was measured (a short header), then
//! the findings in rank order with their evidence, then the summary line.
//! Findings are rendered by upkeep-diag like `check`'s, one at a time so
//! their order stays the ranking.
//!
//! `--format json` (schema 1; fields may be added, never changed):
//!
//! ```text
//! {"schema": 1, "nginx_version": "1.22.1", "version_source": "detected",
//!  "assumptions": [..],
//!  "host": {"window_ms", "census_polls", "census_source": "netlink sock_diag" | "/proc/net/tcp{,6}" | null,
//!           "backends": [{"address", "written", "upstreams": [..], "pooled",
//!                         "established", "time_wait", "time_wait_backend_end",
//!                         "other", "ephemeral_ports_used", "time_wait_peak",
//!                         "new_connections"}],
//!           "stub_status": {"url", "requests", "connections", "dropped",
//!                           "start": {..}, "end": {..}} | null,
//!           "processes": {"master", "master_nofile_soft", "master_nofile_hard",
//!                         "workers": [{"pid", "nofile_soft"}],
//!                         "workers_shutting_down"} | null,
//!           "worker_connections",
//!           "sysctl": {"ip_local_port_range": [lo, hi], "tcp_tw_reuse",
//!                      "tcp_fin_timeout", "somaxconn"},
//!           "error_log": {"path", "bytes_read", "whole_file", "lines",
//!                         "first_time", "last_time", "signatures": {id: n},
//!                         "client_visible": {id: n} | null,
//!                         "access_log": {"path", "records", "joined", "notes"} | null} | null,
//!           "discovered_backends": [{"address" (as written), "endpoint",
//!                         "upstreams": [..], "listener": "process" | "docker" | "not_found" | "remote",
//!                         "pid", "command", "kind" (null: not recognized), "version",
//!                         "idle_timeout_ms", "idle_timeout_source",
//!                         "max_requests", "max_requests_source",
//!                         "max_connections", "max_connections_source",
//!                         "announces_close", "used_by_rules", "facts_source", "notes": [..],
//!                         "docker": {"proxy_pid", "container"} | null,
//!                         "probed": {"idle_timeout_ms", "max_requests", "error"} | null,
//!                         "description"}],
//!           "not_measured": ["why …"]},
//!  "findings": [ranked; each as in `check --format json`, plus
//!               "measured": bool and "evidence": n],
//!  "summary": {"errors", "warnings", "infos"}}
//! ```
//! Limits of `null` mean unlimited; sysctl values are `null` when unreadable.

use std::fmt::Write;

use serde_json::{json, Value};
use upkeep_diag::render::{human, json as json_render};
use upkeep_diag::{Finding, Report, Summary};

use crate::backend_discovery::{DiscoveredBackend, Listener};
use crate::doctor::DoctorReport;
use crate::rules::h005::human_bytes;
use crate::rules::seconds;

/// Bumped only on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

fn diag_report<'a>(r: &'a DoctorReport<'_>, findings: &'a [Finding]) -> Report<'a> {
    let mut report = Report::new(findings, r.config);
    report.base_dir = r.base_dir.as_deref();
    report.flavor = Some(r.check.flavor.name());
    report.nginx_version = Some(&r.version_text);
    report.version_source = Some(r.check.version_source.as_str());
    report.assumptions = &r.check.assumptions;
    report
}

impl DoctorReport<'_> {
    pub fn to_human(&self, color: bool) -> String {
        let options = human::HumanOptions { color };
        let mut out = String::new();
        // Paths, addresses and log lines come from outside: control
        // characters are shown escaped (findings are, by their renderer).
        out.push_str(&upkeep_diag::terminal_safe(&self.measurements_text()));
        out.push('\n');
        let findings: Vec<Finding> = self.findings.iter().map(|r| r.finding.clone()).collect();
        let report = diag_report(self, &findings);
        for f in &findings {
            out.push_str(&human::render_finding(&report, f, options));
            out.push_str("\n\n");
        }
        for a in &self.check.assumptions {
            let _ = writeln!(out, "note: {}", upkeep_diag::terminal_safe_line(a));
        }
        out.push_str(&human::summary_line(&report, options));
        out.push('\n');
        out
    }

    /// The header: what was measured, in a few lines.
    pub fn measurements_text(&self) -> String {
        let mut out = String::new();
        let s = &self.sampling;
        let _ = writeln!(
            out,
            "upkeep doctor: sampled {} ({} socket census{} via {})",
            seconds(s.elapsed),
            s.polls,
            if s.polls == 1 { "" } else { "es" },
            s.source.map_or("nothing", |c| c.as_str())
        );
        if let Some(p) = &self.processes {
            let _ = writeln!(out, "  {}", crate::rules::h004::limits_note(p));
        }
        let _ = writeln!(
            out,
            "  worker_connections {}{}",
            self.live.settings.worker_connections,
            self.live
                .settings
                .worker_rlimit_nofile
                .map(|n| format!(", worker_rlimit_nofile {n}"))
                .unwrap_or_default()
        );
        let sy = &self.sysctls;
        let opt = |v: Option<String>| v.unwrap_or_else(|| "?".into());
        let _ = writeln!(
            out,
            "  sysctl: ip_local_port_range {}, tcp_tw_reuse {}, tcp_fin_timeout {}, somaxconn {}",
            opt(sy
                .ip_local_port_range
                .map(|(a, b)| format!("{a}-{b} ({} ports)", u64::from(b - a) + 1))),
            opt(sy.tcp_tw_reuse.map(|v| v.to_string())),
            opt(sy.tcp_fin_timeout.map(|v| format!("{v}s"))),
            opt(sy.somaxconn.map(|v| v.to_string())),
        );
        match (&self.status_url, &s.status) {
            (Some(url), Some(d)) => {
                let _ = writeln!(
                    out,
                    "  stub_status {url}: {} requests on {} client connections in the window ({} active now)",
                    d.requests(),
                    d.connections(),
                    d.end.active
                );
            }
            (Some(url), None) => {
                let _ = writeln!(out, "  stub_status {url}: not read");
            }
            _ => {}
        }
        if !self.live.backends.is_empty() {
            let _ = writeln!(
                out,
                "  {:<24} {:<16} {:>6} {:>10} {:>6} {:>8}",
                "backend", "upstream", "ESTAB", "TIME-WAIT", "other", "new"
            );
            for b in &self.live.backends {
                let c = s.census_end.get(&b.addr);
                let up = if b.upstreams.is_empty() {
                    "(proxy_pass)".to_string()
                } else {
                    b.upstreams.join(",")
                };
                let _ = writeln!(
                    out,
                    "  {:<24} {:<16} {:>6} {:>10} {:>6} {:>8}",
                    b.addr.to_string(),
                    up,
                    c.established,
                    c.time_wait_total(),
                    c.other,
                    s.new_connections.get(&b.addr).copied().unwrap_or(0)
                );
            }
        }
        if let Some(l) = &self.logs {
            let sigs: Vec<String> = l
                .signatures
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            let _ = writeln!(
                out,
                "  error log {}: last {}, {} lines{}",
                l.path.display(),
                human_bytes(l.bytes_read),
                l.lines,
                if sigs.is_empty() {
                    ", no upstream failure signatures".to_string()
                } else {
                    format!("; {}", sigs.join(", "))
                }
            );
        }
        if !self.backends.backends.is_empty() {
            let _ = writeln!(out, "  behind the upstream addresses:");
            for b in &self.backends.backends {
                let _ = writeln!(
                    out,
                    "    {} (upstream {}): {}",
                    b.target.written,
                    b.target.upstreams.join(", "),
                    b.describe()
                );
            }
        }
        for g in &self.gaps {
            let _ = writeln!(out, "  not measured: {g}");
        }
        out
    }

    pub fn to_json(&self) -> Value {
        let findings: Vec<Finding> = self.findings.iter().map(|r| r.finding.clone()).collect();
        let report = diag_report(self, &findings);
        // Each finding through the shared renderer, one by one, to keep the
        // ranking (the renderer itself sorts by file and position).
        let ranked: Vec<Value> = findings
            .iter()
            .zip(&self.findings)
            .map(|(f, r)| {
                let one = Report {
                    findings: std::slice::from_ref(f),
                    ..diag_report(self, std::slice::from_ref(f))
                };
                let mut v = json_render::to_value(&one)["findings"][0].clone();
                v["measured"] = r.measured.into();
                v["evidence"] = r.evidence.into();
                v
            })
            .collect();
        let summary = Summary::of(report.findings);
        let s = &self.sampling;
        let backends: Vec<Value> = self
            .live
            .backends
            .iter()
            .map(|b| {
                let c = s.census_end.get(&b.addr);
                json!({
                    "address": b.addr.to_string(),
                    "written": b.written,
                    "upstreams": b.upstreams,
                    "pooled": b.pooled,
                    "established": c.established,
                    "time_wait": c.time_wait,
                    "time_wait_backend_end": c.backend_end_time_wait,
                    "other": c.other,
                    "ephemeral_ports_used": c.in_port_range,
                    "time_wait_peak": s.peak_time_wait.get(&b.addr).copied().unwrap_or(0),
                    "new_connections": s.new_connections.get(&b.addr).copied().unwrap_or(0),
                })
            })
            .collect();
        let status = s.status.map(|d| {
            json!({
                "url": self.status_url.as_ref().map(|u| u.to_string()),
                "requests": d.requests(),
                "connections": d.connections(),
                "dropped": d.dropped(),
                "start": stub_json(&d.start),
                "end": stub_json(&d.end),
            })
        });
        let processes = self.processes.as_ref().map(|p| {
            json!({
                "master": p.master,
                "master_nofile_soft": p.master_nofile.and_then(|l| l.soft),
                "master_nofile_hard": p.master_nofile.and_then(|l| l.hard),
                "workers": p.workers.iter().map(|(pid, l)| json!({
                    "pid": pid,
                    "nofile_soft": l.and_then(|l| l.soft),
                })).collect::<Vec<_>>(),
                "workers_shutting_down": p.shutting_down,
            })
        });
        let logs = self.logs.as_ref().map(|l| {
            json!({
                "path": l.path.display().to_string(),
                "bytes_read": l.bytes_read,
                "whole_file": l.whole_file,
                "lines": l.lines,
                "first_time": l.first_time,
                "last_time": l.last_time,
                "signatures": l.signatures,
                "client_visible": l.client_visible,
                "access_log": l.access_log.as_ref().map(|a| json!({
                    "path": a.path.display().to_string(),
                    "records": a.records,
                    "joined": a.joined,
                    "notes": a.notes,
                })),
            })
        });
        json!({
            "schema": SCHEMA_VERSION,
            "nginx_version": self.version_text,
            "version_source": self.check.version_source.as_str(),
            "assumptions": self.check.assumptions,
            "host": {
                "window_ms": s.elapsed.as_millis() as u64,
                "census_polls": s.polls,
                "census_source": s.source.map(|c| c.as_str()),
                "backends": backends,
                "stub_status": status,
                "processes": processes,
                "worker_connections": self.live.settings.worker_connections,
                "sysctl": {
                    "ip_local_port_range": self.sysctls.ip_local_port_range.map(|(a, b)| [a, b]),
                    "tcp_tw_reuse": self.sysctls.tcp_tw_reuse,
                    "tcp_fin_timeout": self.sysctls.tcp_fin_timeout,
                    "somaxconn": self.sysctls.somaxconn,
                },
                "error_log": logs,
                "discovered_backends": self.backends.backends.iter().map(discovered_json).collect::<Vec<_>>(),
                "not_measured": self.gaps,
            },
            "findings": ranked,
            "summary": {
                "errors": summary.errors,
                "warnings": summary.warnings,
                "infos": summary.infos,
            },
        })
    }
}

fn discovered_json(b: &DiscoveredBackend) -> Value {
    let found = b.found();
    let r = found.and_then(|f| f.recognition.as_ref());
    let (listener, docker) = match &b.listener {
        Listener::Process(_) => ("process", Value::Null),
        Listener::Docker {
            proxy_pid,
            container,
            ..
        } => (
            "docker",
            json!({"proxy_pid": proxy_pid, "container": container.to_string()}),
        ),
        Listener::NotFound(_) => ("not_found", Value::Null),
        Listener::Remote => ("remote", Value::Null),
    };
    let facts = b.facts();
    json!({
        "address": b.target.written,
        "endpoint": b.target.endpoint.to_string(),
        "upstreams": b.target.upstreams,
        "listener": listener,
        "pid": found.map(|f| f.process.pid),
        "command": found.map(|f| f.process.command()),
        "kind": r.map(|r| r.kind),
        "version": r.and_then(|r| r.version.clone()),
        "idle_timeout_ms": r.and_then(|r| r.idle_timeout_ms.as_ref()).and_then(|s| s.value),
        "idle_timeout_source": r.and_then(|r| r.idle_timeout_ms.as_ref()).map(|s| s.source.clone()),
        "max_requests": r.and_then(|r| r.max_requests.as_ref()).and_then(|s| s.value),
        "max_requests_source": r.and_then(|r| r.max_requests.as_ref()).map(|s| s.source.clone()),
        "max_connections": r.and_then(|r| r.max_connections.as_ref()).map(|s| s.value),
        "max_connections_source": r.and_then(|r| r.max_connections.as_ref()).map(|s| s.source.clone()),
        "announces_close": r.and_then(|r| r.announces_close),
        "used_by_rules": facts.is_some(),
        "facts_source": facts.map(|f| f.source),
        "notes": r.map(|r| r.notes.clone()).unwrap_or_default(),
        "docker": docker,
        "probed": b.probed.as_ref().map(|p| json!({
            "idle_timeout_ms": p.idle_timeout_ms,
            "max_requests": p.max_requests,
            "announces_close": p.announces_close,
            "error": p.error,
            "notes": p.notes,
        })),
        "description": b.describe(),
    })
}

fn stub_json(s: &crate::stub_status::StubStatus) -> Value {
    json!({
        "active": s.active, "accepts": s.accepts, "handled": s.handled,
        "requests": s.requests, "reading": s.reading, "writing": s.writing,
        "waiting": s.waiting,
    })
}
