//! `--format json`: the stable, versioned schema of SPEC.md.
//!
//! ```text
//! {"schema": 1,
//!  "nginx_version": "1.28.0", "version_source": "assumed", "assumptions": [..],
//!  "findings": [{"rule", "name", "severity", "file", "line", "column",
//!                "end_line", "end_column", "message", "label", "help", "notes",
//!                "related": [{"file", "line", "column", "end_line", "end_column", "message"}],
//!                "fix": {"applicability", "description",
//!                        "edits": [{"file", "start_line", "start_column",
//!                                   "end_line", "end_column", "content"}]} | null}],
//!  "summary": {"errors", "warnings", "infos"}}
//! ```
//! Lines and columns start at 1; `end_column` is exclusive (the column just
//! after the last character), as in an editor's selection. A finding with no
//! place in a file has `null` position fields.

use super::{Report, Summary};
use crate::Finding;
use serde_json::{json, Map, Value};
use upkeep_syntax::Span;

/// Bumped only on incompatible changes; new fields may appear at any time.
pub const SCHEMA_VERSION: u32 = 1;

pub fn render(report: &Report<'_>) -> String {
    let mut text = serde_json::to_string_pretty(&to_value(report)).expect("JSON values serialize");
    text.push('\n');
    text
}

pub fn to_value(report: &Report<'_>) -> Value {
    let summary = Summary::of(report.findings);
    let findings: Vec<Value> = report
        .sorted_findings()
        .into_iter()
        .map(|f| finding(report, f))
        .collect();
    json!({
        "schema": SCHEMA_VERSION,
        "nginx_version": report.nginx_version,
        "version_source": report.version_source,
        "assumptions": report.assumptions,
        "findings": findings,
        "summary": {
            "errors": summary.errors,
            "warnings": summary.warnings,
            "infos": summary.infos,
        },
    })
}

fn finding(report: &Report<'_>, f: &Finding) -> Value {
    let mut obj = Map::new();
    obj.insert("rule".into(), f.rule.into());
    obj.insert("name".into(), f.name.into());
    obj.insert("severity".into(), f.severity.as_str().into());
    position(report, f.primary, "line", "column", &mut obj);
    obj.insert("message".into(), f.message.clone().into());
    obj.insert("label".into(), f.label.clone().into());
    obj.insert("help".into(), f.help.clone().into());
    obj.insert("notes".into(), f.notes.clone().into());
    let related: Vec<Value> = f
        .related
        .iter()
        .map(|r| {
            let mut o = Map::new();
            position(report, Some(r.span), "line", "column", &mut o);
            o.insert("message".into(), r.message.clone().into());
            Value::Object(o)
        })
        .collect();
    obj.insert("related".into(), related.into());
    let fix = match &f.fix {
        None => Value::Null,
        Some(fix) => {
            let edits: Vec<Value> = fix
                .edits
                .iter()
                .map(|e| {
                    let mut o = Map::new();
                    position(report, Some(e.span), "start_line", "start_column", &mut o);
                    o.insert("content".into(), e.content.clone().into());
                    Value::Object(o)
                })
                .collect();
            json!({
                "applicability": fix.applicability.as_str(),
                "description": fix.description,
                "edits": edits,
            })
        }
    };
    obj.insert("fix".into(), fix);
    Value::Object(obj)
}

/// Inserts `file`, `<line>`, `<column>`, `end_line`, `end_column` (all null
/// when there is no span).
fn position(
    report: &Report<'_>,
    span: Option<Span>,
    line: &str,
    column: &str,
    obj: &mut Map<String, Value>,
) {
    match span {
        Some(span) => {
            let (start, end) = report.line_cols(span);
            obj.insert("file".into(), report.file_name(span.file).into());
            obj.insert(line.into(), start.line.into());
            obj.insert(column.into(), start.col.into());
            obj.insert("end_line".into(), end.line.into());
            obj.insert("end_column".into(), end.col.into());
        }
        None => {
            for key in ["file", line, column, "end_line", "end_column"] {
                obj.insert(key.into(), Value::Null);
            }
        }
    }
}
