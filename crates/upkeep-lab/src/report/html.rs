//! The HTML report: one self-contained page (inline CSS and SVG, no script,
//! nothing fetched) with the before/after numbers, charts over time, the fix
//! and the setup.

use super::svg::{self, esc, Chart, Series};
use super::{LabReport, PhaseResult, Timeline};
use crate::plan::Phase;
use std::fmt::Write;

const BEFORE_COLOR: &str = "#c0392b";
const AFTER_COLOR: &str = "#1f77b4";

pub fn render(report: &LabReport) -> String {
    let before = report.run(Phase::Before);
    let after = report.run(Phase::After);
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>upkeep lab: {}</title><style>{CSS}</style></head><body><main>",
        esc(&report.scenario)
    );
    let _ = write!(
        h,
        "<h1>upkeep lab: {}</h1><p class=\"sub\">nginx {} ({}) · {}{}</p>",
        esc(&report.scenario),
        esc(&report.nginx.version),
        esc(&report.nginx.path),
        esc(&report.network),
        report
            .relay_delay_ms
            .map(|d| format!(" · relay {d} ms each way"))
            .unwrap_or_default()
    );
    if report.interrupted {
        h.push_str("<p class=\"warn\">The run was interrupted before it completed; the numbers are partial.</p>");
    }

    // Headline cards.
    h.push_str("<section class=\"cards\">");
    for card in cards(before, after) {
        h.push_str(&card);
    }
    h.push_str("</section>");
    let _ = write!(h, "<p class=\"explain\">{}</p>", esc(&report.explanation));

    // Charts.
    h.push_str("<section class=\"charts\">");
    let bucket = before
        .or(after)
        .map(|r| r.timeline.bucket_ms)
        .unwrap_or(1000);
    for (title, unit, value) in [
        (
            "502 responses over time",
            "502 responses",
            (|b: &super::Bucket| b.status_502 as f64) as fn(&super::Bucket) -> f64,
        ),
        (
            "New upstream connections over time",
            "connections opened by nginx",
            |b: &super::Bucket| b.new_upstream_connections as f64,
        ),
        (
            "New client connections over time",
            "connections opened by the clients",
            |b: &super::Bucket| b.new_client_connections as f64,
        ),
        (
            "TIME_WAIT sockets on the lab's ports",
            "sockets (highest sample)",
            |b: &super::Bucket| b.time_wait as f64,
        ),
    ] {
        let mut series = Vec::new();
        for (run, label, color) in [
            (before, "before", BEFORE_COLOR),
            (after, "after fix", AFTER_COLOR),
        ] {
            if let Some(r) = run {
                series.push(Series {
                    label,
                    color,
                    points: points(&r.timeline, value),
                });
            }
        }
        let chart = Chart {
            title,
            y_label: format!("{unit} per {} ms", bucket),
            series,
        };
        let _ = write!(h, "<figure>{}</figure>", svg::render(&chart));
    }
    h.push_str("</section>");

    // The full table.
    h.push_str("<h2>Measurements</h2>");
    h.push_str(&table(report));

    if let Some(fix) = &report.fix {
        let _ = write!(
            h,
            "<h2>The fix</h2><p>After = before with {}.</p>",
            esc(&fix.source)
        );
        if !fix.applied.is_empty() {
            h.push_str("<ul>");
            for a in &fix.applied {
                let _ = write!(
                    h,
                    "<li><code>{}</code> {}</li>",
                    esc(&a.rule),
                    code_spans(&a.description)
                );
            }
            h.push_str("</ul>");
        }
        for n in &fix.notes {
            let _ = write!(h, "<p class=\"note\">{}</p>", esc(n));
        }
        h.push_str("<pre class=\"diff\">");
        for line in fix.diff.lines() {
            let class = match line.as_bytes().first() {
                Some(b'+') if !line.starts_with("+++") => "add",
                Some(b'-') if !line.starts_with("---") => "del",
                Some(b'@') => "hunk",
                _ => "",
            };
            let _ = writeln!(h, "<span class=\"{class}\">{}</span>", esc(line));
        }
        h.push_str("</pre>");
    }

    h.push_str("<h2>Setup</h2><ul>");
    for b in &report.backends {
        let original = b
            .original
            .as_deref()
            .map(|o| format!(" (was {})", esc(o)))
            .unwrap_or_default();
        let _ = write!(
            h,
            "<li>backend for upstream <code>{}</code>{original}: {}</li>",
            esc(&b.upstream),
            esc(&b.description)
        );
    }
    let _ = write!(h, "<li>traffic: {}</li>", esc(&report.traffic.describe()));
    h.push_str("</ul>");

    let samples: Vec<(&str, &String, &String)> = report
        .runs
        .iter()
        .flat_map(|r| {
            r.error_samples
                .iter()
                .map(move |(k, v)| (r.phase.as_str(), k, v))
        })
        .collect();
    if !samples.is_empty() {
        h.push_str("<h2>Error-log lines (first of each signature)</h2>");
        for (phase, id, line) in samples {
            let _ = write!(
                h,
                "<p><b>{phase}</b> <code>{}</code></p><pre class=\"wrap\">{}</pre>",
                esc(id),
                esc(line)
            );
        }
    }
    for r in &report.runs {
        let _ = write!(
            h,
            "<details><summary>nginx config, {} phase</summary>",
            r.phase.as_str()
        );
        for f in &r.config {
            let _ = write!(
                h,
                "<p><code>{}</code></p><pre>{}</pre>",
                esc(&f.path),
                esc(&f.text)
            );
        }
        h.push_str("</details>");
    }
    h.push_str("<p class=\"foot\">Generated by <code>upkeep lab</code>. Every number on this page was measured on a real nginx during this run.</p>");
    h.push_str("</main></body></html>\n");
    h
}

/// Escapes `text` and shows its `backticked` parts as code.
fn code_spans(text: &str) -> String {
    text.split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<code>{}</code>", esc(part))
            } else {
                esc(part)
            }
        })
        .collect()
}

fn points(t: &Timeline, value: fn(&super::Bucket) -> f64) -> Vec<(f64, f64)> {
    t.buckets
        .iter()
        .map(|b| (b.t_ms as f64, value(b)))
        .collect()
}

fn cards(before: Option<&PhaseResult>, after: Option<&PhaseResult>) -> Vec<String> {
    let mut out = Vec::new();
    let pair = |f: &dyn Fn(&PhaseResult) -> String| -> (String, String) {
        (
            before.map(f).unwrap_or_else(|| "–".into()),
            after.map(f).unwrap_or_else(|| "–".into()),
        )
    };
    let mut card = |label: &str, (b, a): (String, String)| {
        out.push(format!(
            "<div class=\"card\"><div class=\"label\">{}</div><div class=\"vals\"><span class=\"b\">{}</span> → <span class=\"a\">{}</span></div></div>",
            esc(label),
            esc(&b),
            esc(&a)
        ));
    };
    for method in ["POST", "GET"] {
        if before.or(after).is_some_and(|r| r.method_total(method) > 0) {
            card(
                &format!("{method} 502 responses"),
                pair(&|r| format!("{} of {}", r.count(method, "502"), r.method_total(method))),
            );
        }
    }
    card(
        "upstream connections per request",
        pair(&|r| {
            r.upstream_connections_per_request
                .map(|v| format!("{v:.2}"))
                .unwrap_or("–".into())
        }),
    );
    card("TIME_WAIT peak", pair(&|r| r.time_wait_peak.to_string()));
    card(
        "latency p99",
        pair(&|r| {
            r.latency_ms
                .p99
                .map(|v| format!("{v:.0} ms"))
                .unwrap_or("–".into())
        }),
    );
    card(
        "error-log signature lines",
        pair(&|r| r.error_signatures.values().sum::<u64>().to_string()),
    );
    if before.or(after).is_some_and(|r| r.stub_status.is_some()) {
        card(
            "client connections accepted",
            pair(&|r| {
                r.stub_status
                    .map(|s| s.accepts.to_string())
                    .unwrap_or("–".into())
            }),
        );
    }
    out
}

/// The terminal table, as HTML.
fn table(report: &LabReport) -> String {
    let text = super::table::rows(report);
    let mut h = String::from("<table><thead><tr><th></th>");
    for r in &report.runs {
        let _ = write!(h, "<th>{}</th>", r.phase.as_str());
    }
    h.push_str("</tr></thead><tbody>");
    for (label, values) in text {
        let indent = label.starts_with("  ");
        let _ = write!(
            h,
            "<tr><td class=\"{}\">{}</td>",
            if indent { "sub" } else { "" },
            esc(label.trim())
        );
        for v in values {
            let _ = write!(h, "<td>{}</td>", esc(&v));
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody></table>");
    h
}

const CSS: &str = "
body{margin:0;background:#fafafa;color:#222;font:15px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif}
main{max-width:1340px;margin:0 auto;padding:24px 32px}
h1{margin:0 0 4px;font-size:26px}
h2{margin:28px 0 8px;font-size:19px}
.sub{margin:0 0 16px;color:#555}
.explain{max-width:1000px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}
.card{background:#fff;border:1px solid #ddd;border-radius:8px;padding:10px 16px;min-width:190px}
.card .label{color:#555;font-size:13px}
.card .vals{font-size:21px;font-weight:600}
.card .b{color:#c0392b}.card .a{color:#1f77b4}
.charts{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0;background:#fff;border:1px solid #ddd;border-radius:8px;padding:8px}
table{border-collapse:collapse;background:#fff}
th,td{border:1px solid #ddd;padding:4px 12px;text-align:right}
td:first-child{text-align:left}td.sub{padding-left:28px;color:#444}
pre{background:#fff;border:1px solid #ddd;border-radius:6px;padding:8px 12px;overflow-x:auto;font-size:13px}
pre.wrap{white-space:pre-wrap;word-break:break-all}
.diff .add{color:#1a7f37}.diff .del{color:#c0392b}.diff .hunk{color:#6f42c1}
.note{color:#8a6d3b}.warn{color:#c0392b;font-weight:600}
.foot{color:#777;font-size:13px;margin-top:32px}
details{margin:8px 0}
";
