//! The terminal rendering: one table, a row per measurement, a column per phase.

use super::{LabReport, PhaseResult};
use std::collections::BTreeSet;
use std::fmt::Write;

pub fn render(report: &LabReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "upkeep lab: {} — nginx {} ({}), {}",
        report.scenario, report.nginx.version, report.nginx.path, report.network
    );
    for b in &report.backends {
        let original = b
            .original
            .as_deref()
            .map(|o| format!(" (was {o})"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "backend for upstream {}{original}: {}",
            b.upstream, b.description
        );
    }
    if let Some(d) = report.relay_delay_ms {
        let _ = writeln!(out, "relay: {d} ms each way between nginx and the backends");
    }
    let _ = writeln!(out, "traffic: {}", report.traffic.describe());
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", wrap(&report.explanation, 88));
    let _ = writeln!(out);

    let runs: Vec<&PhaseResult> = report.runs.iter().collect();
    let rows = rows(report);

    let label_w = rows
        .iter()
        .map(|(l, _)| l.chars().count())
        .max()
        .unwrap_or(0)
        .max(12);
    let val_w = rows
        .iter()
        .flat_map(|(_, v)| v.iter().map(|s| s.chars().count()))
        .max()
        .unwrap_or(0)
        .max(8);
    let _ = write!(out, "{:label_w$}", "");
    for r in &runs {
        let _ = write!(out, "  {:>val_w$}", r.phase.as_str());
    }
    let _ = writeln!(out);
    for (label, values) in &rows {
        let _ = write!(out, "{label:label_w$}");
        for v in values {
            let _ = write!(out, "  {v:>val_w$}");
        }
        let _ = writeln!(out);
    }

    if let Some(fix) = &report.fix {
        let _ = writeln!(out);
        let _ = writeln!(out, "after = before with {}:", fix.source);
        for a in &fix.applied {
            let _ = writeln!(out, "  {} {}", a.rule, a.description);
        }
        for n in &fix.notes {
            let _ = writeln!(out, "  {n}");
        }
        for line in fix.diff.lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    for r in &runs {
        for w in &r.warnings {
            let _ = writeln!(out, "warning ({}): {w}", r.phase.as_str());
        }
    }
    if report.interrupted {
        let _ = writeln!(out, "interrupted: the run was stopped before it completed");
    }
    out
}

/// The measurement rows: a label (sub-rows indented by two spaces) and one
/// value per phase.
pub fn rows(report: &LabReport) -> Vec<(String, Vec<String>)> {
    let runs: Vec<&PhaseResult> = report.runs.iter().collect();
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let col = |f: &dyn Fn(&PhaseResult) -> String| runs.iter().map(|r| f(r)).collect::<Vec<_>>();
    rows.push(("requests".into(), col(&|r| r.requests.to_string())));
    let keys: BTreeSet<(String, String)> = runs
        .iter()
        .flat_map(|r| {
            r.status_by_method
                .iter()
                .flat_map(|(m, s)| s.keys().map(move |k| (m.clone(), k.clone())))
        })
        .collect();
    for (method, status) in &keys {
        let label = if status == "error" {
            format!("  {method} no response")
        } else {
            format!("  {method} {status}")
        };
        rows.push((label, col(&|r| r.count(method, status).to_string())));
    }
    rows.push((
        "upstream connections opened".into(),
        col(&|r| r.upstream_connections_opened.to_string()),
    ));
    rows.push((
        "  per request".into(),
        col(&|r| {
            r.upstream_connections_per_request
                .map(|v| format!("{v:.3}"))
                .unwrap_or("-".into())
        }),
    ));
    rows.push((
        "requests nginx retried".into(),
        col(&|r| r.nginx_retried.map(|v| v.to_string()).unwrap_or("-".into())),
    ));
    rows.push((
        "TIME_WAIT peak".into(),
        col(&|r| r.time_wait_peak.to_string()),
    ));
    let ms = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or("-".into());
    rows.push((
        "latency p50 / p99 (ms)".into(),
        col(&|r| format!("{} / {}", ms(r.latency_ms.p50), ms(r.latency_ms.p99))),
    ));
    rows.push((
        "client connections opened".into(),
        col(&|r| r.client_connections_opened.to_string()),
    ));
    rows.push((
        "stub_status accepts / requests".into(),
        col(&|r| {
            r.stub_status
                .map(|s| format!("{} / {}", s.accepts, s.requests))
                .unwrap_or("-".into())
        }),
    ));
    let sigs: BTreeSet<&String> = runs
        .iter()
        .flat_map(|r| r.error_signatures.keys())
        .collect();
    if sigs.is_empty() {
        rows.push(("error-log signatures".into(), col(&|_| "none".into())));
    } else {
        rows.push(("error-log signatures".into(), col(&|_| String::new())));
        for s in sigs {
            rows.push((
                format!("  {s}"),
                col(&|r| r.error_signatures.get(s).copied().unwrap_or(0).to_string()),
            ));
        }
    }
    rows
}

fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line_len = 0;
    for word in text.split_whitespace() {
        if line_len > 0 && line_len + 1 + word.len() > width {
            out.push('\n');
            line_len = 0;
        } else if line_len > 0 {
            out.push(' ');
            line_len += 1;
        }
        out.push_str(word);
        line_len += word.len();
    }
    out
}
