//! The human form of a [`ProbeReport`]: one table row per target, the notes
//! and errors under it, then one verdict line per upstream.

use crate::report::{ProbeReport, TargetReport};
use crate::transport::CloseKind;
use std::fmt::Write;

/// A measured duration for sentences: "5.0 s".
pub fn seconds(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

/// A duration in nginx's syntax: "4s", "4500ms".
pub fn nginx_duration(ms: u64) -> String {
    upkeep_facts::format_duration(ms)
}

fn yes_no(b: Option<bool>) -> &'static str {
    match b {
        Some(true) => "yes",
        Some(false) => "no",
        None => "-",
    }
}

fn idle_cell(t: &TargetReport) -> String {
    match (t.idle_timeout_ms, t.closes_after_response) {
        (Some(ms), _) => format!("{:.2} s", ms as f64 / 1000.0),
        (None, Some(true)) => "n/a".into(),
        (None, _) if t.idle_waited_ms > 0 && t.error.is_none() => {
            format!("> {}", seconds(t.idle_waited_ms))
        }
        _ => "-".into(),
    }
}

fn cap_cell(t: &TargetReport) -> String {
    match (t.max_requests, t.announces_close) {
        (Some(n), Some(true)) => format!("{n} (announced)"),
        (Some(n), Some(false)) => format!("{n} (SILENT)"),
        (Some(n), None) => n.to_string(),
        (None, _) => match t.cap_at_least {
            Some(n) => format!(">= {n} (see note)"),
            None if t.requests_sent > 1 => format!("> {}", t.requests_sent),
            None => "-".into(),
        },
    }
}

fn close_cell(t: &TargetReport) -> &'static str {
    match t.close_kind {
        Some(CloseKind::Fin) => "FIN",
        Some(CloseKind::Rst) => "RST",
        None => "-",
    }
}

/// Renders the report for a terminal.
pub fn human(report: &ProbeReport) -> String {
    let with_upstreams = report.targets.iter().any(|t| t.upstream.is_some());
    let mut header = vec!["TARGET"];
    if with_upstreams {
        header.push("UPSTREAM");
    }
    header.extend([
        "HTTP",
        "KEEP-ALIVE",
        "IDLE TIMEOUT",
        "CLOSE",
        "MAX REQUESTS",
    ]);
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for t in &report.targets {
        let mut target = t.target.clone();
        if let Some(addr) = &t.address {
            if *addr != t.target {
                target = format!("{target} ({addr})");
            }
        }
        let mut row = vec![target];
        if with_upstreams {
            row.push(t.upstream.clone().unwrap_or_else(|| "-".into()));
        }
        row.push(t.http_version.clone().unwrap_or_else(|| "-".into()));
        row.push(yes_no(t.keepalive).into());
        row.push(idle_cell(t));
        row.push(close_cell(t).into());
        row.push(cap_cell(t));
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let _ = write!(line, "{cell:<w$}  ", w = widths[c]);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }

    let mut details = String::new();
    for t in &report.targets {
        if let Some(e) = &t.error {
            let _ = writeln!(details, "  {}: error: {e}", t.target);
        }
        for n in &t.notes {
            let _ = writeln!(details, "  {}: {n}", t.target);
        }
    }
    if !details.is_empty() {
        out.push('\n');
        out.push_str(&details);
    }

    if !report.upstreams.is_empty() {
        let version = report.nginx_version.as_deref().unwrap_or("?");
        match &report.nginx_version_source {
            Some(source) => {
                let _ = writeln!(out, "\nverdict (nginx {version}, {source}):");
            }
            None => {
                let _ = writeln!(out, "\nverdict (nginx {version}):");
            }
        }
        for v in &report.upstreams {
            let _ = writeln!(
                out,
                "  upstream {} ({}:{}): {}",
                v.upstream, v.file, v.line, v.summary
            );
            for f in &v.findings {
                if let Some(help) = &f.help {
                    let _ = writeln!(
                        out,
                        "    {} {}: {}\n      help: {help}",
                        f.severity, f.rule, f.message
                    );
                } else {
                    let _ = writeln!(out, "    {} {}: {}", f.severity, f.rule, f.message);
                }
            }
        }
    }
    if report.interrupted {
        out.push_str("\ninterrupted: the values above are what was measured so far\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::Scheme;

    #[test]
    fn durations() {
        assert_eq!(seconds(5003), "5.0 s");
        assert_eq!(nginx_duration(4000), "4s");
        assert_eq!(nginx_duration(4500), "4500ms");
    }

    #[test]
    fn table_shows_each_kind_of_result() {
        let mut a = TargetReport::new("127.0.0.1:8080".into(), None, Scheme::Http);
        a.address = Some("127.0.0.1:8080".into());
        a.http_version = Some("1.1".into());
        a.keepalive = Some(true);
        a.idle_timeout_ms = Some(3001);
        a.close_kind = Some(CloseKind::Fin);
        a.max_requests = Some(7);
        a.announces_close = Some(true);
        let mut b = TargetReport::new("10.0.0.9:80".into(), None, Scheme::Http);
        b.error = Some("connect to 10.0.0.9:80: timed out".into());
        let report = ProbeReport {
            schema: 1,
            interrupted: false,
            nginx_version: None,
            nginx_version_source: None,
            targets: vec![a, b],
            upstreams: vec![],
        };
        let text = human(&report);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "TARGET          HTTP  KEEP-ALIVE  IDLE TIMEOUT  CLOSE  MAX REQUESTS"
        );
        assert_eq!(
            lines[1],
            "127.0.0.1:8080  1.1   yes         3.00 s        FIN    7 (announced)"
        );
        assert!(text.contains("10.0.0.9:80: error: connect to 10.0.0.9:80: timed out"));
    }
}
