//! `--format json`: the stable, versioned schema of SPEC.md.
//!
//! ```text
//! {"schema": 1,
//!  "nginx_version": "1.28.0", "version_source": "assumed", "assumptions": [..],
//!  "settings_files": ["/srv/app/upkeep.toml"],
//!  "findings": [{"rule", "name", "severity", "file", "line", "column",
//!                "end_line", "end_column", "message", "label", "help", "notes",
//!                "related": [{"file", "line", "column", "end_line", "end_column", "message"}],
//!                "fix": {"applicability", "description",
//!                        "edits": [{"file", "start_line", "start_column",
//!                                   "end_line", "end_column", "content"}]} | null,
//!                "group": the line human output shows it under | null}],
//!  "summary": {"errors", "warnings", "infos"}}
//! ```
//! Lines and columns start at 1; `end_column` is exclusive (the column just
//! after the last character), as in an editor's selection. A finding with no
//! place in a file has `null` position fields.

use super::{Report, Summary};
use crate::{Finding, Fix, Label};
use serde::Serialize;
use upkeep_syntax::Span;

/// Bumped only on incompatible changes; new fields may appear at any time.
pub const SCHEMA_VERSION: u32 = 1;

/// The report as pretty-printed JSON. The document is serialized straight
/// from borrowed views of the findings: building a `serde_json::Value` tree
/// first cost as much as running half of the rules on a 100k-line config.
pub fn render(report: &Report<'_>) -> String {
    let mut text = serde_json::to_string_pretty(&document(report)).expect("plain data serializes");
    text.push('\n');
    text
}

/// The same document as a JSON value, for callers that embed or pick apart
/// findings.
pub fn to_value(report: &Report<'_>) -> serde_json::Value {
    serde_json::to_value(document(report)).expect("plain data serializes")
}

fn document<'a>(report: &'a Report<'_>) -> ReportJson<'a> {
    let findings: Vec<FindingJson<'_>> = report
        .sorted_findings()
        .into_iter()
        .map(|f| FindingJson::new(report, f))
        .collect();
    let summary = Summary::of(report.findings);
    ReportJson {
        schema: SCHEMA_VERSION,
        flavor: report.flavor,
        nginx_version: report.nginx_version,
        version_source: report.version_source,
        assumptions: report.assumptions,
        settings_files: report.settings_files,
        findings,
        summary: SummaryJson {
            errors: summary.errors,
            warnings: summary.warnings,
            infos: summary.infos,
        },
    }
}

// Field order below is the order of the keys in the output.

#[derive(Serialize)]
struct ReportJson<'a> {
    schema: u32,
    /// "nginx", "angie" or "freenginx"; absent when not stated.
    #[serde(skip_serializing_if = "Option::is_none")]
    flavor: Option<&'a str>,
    nginx_version: Option<&'a str>,
    version_source: Option<&'a str>,
    assumptions: &'a [String],
    /// The upkeep.toml files read, as paths (empty: none).
    settings_files: &'a [String],
    findings: Vec<FindingJson<'a>>,
    summary: SummaryJson,
}

#[derive(Serialize)]
struct SummaryJson {
    errors: usize,
    warnings: usize,
    infos: usize,
}

/// Start and end of a span as 1-based lines and columns; all `null` when the
/// finding has no place in a file. Flattened into the objects that carry
/// it, so its keys sit where the field is.
#[derive(Default, Serialize)]
struct Place {
    file: Option<String>,
    line: Option<u32>,
    column: Option<u32>,
    end_line: Option<u32>,
    end_column: Option<u32>,
}

impl Place {
    fn of(report: &Report<'_>, span: Option<Span>) -> Place {
        let Some(span) = span else {
            return Place::default();
        };
        let (start, end) = report.line_cols(span);
        Place {
            file: Some(report.file_name(span.file)),
            line: Some(start.line),
            column: Some(start.col),
            end_line: Some(end.line),
            end_column: Some(end.col),
        }
    }
}

#[derive(Serialize)]
struct FindingJson<'a> {
    rule: &'a str,
    name: &'a str,
    severity: &'a str,
    #[serde(flatten)]
    place: Place,
    message: &'a str,
    label: Option<&'a str>,
    help: Option<&'a str>,
    notes: &'a [String],
    related: Vec<RelatedJson<'a>>,
    fix: Option<FixJson<'a>>,
    /// The summary line human output shows this finding under, if any.
    group: Option<&'a str>,
}

impl<'a> FindingJson<'a> {
    fn new(report: &Report<'_>, f: &'a Finding) -> FindingJson<'a> {
        FindingJson {
            rule: f.rule,
            name: f.name,
            severity: f.severity.as_str(),
            place: Place::of(report, f.primary),
            message: &f.message,
            label: f.label.as_deref(),
            help: f.help.as_deref(),
            notes: &f.notes,
            related: f
                .related
                .iter()
                .map(|r| RelatedJson::new(report, r))
                .collect(),
            fix: f.fix.as_ref().map(|fix| FixJson::new(report, fix)),
            group: f.group.as_deref(),
        }
    }
}

#[derive(Serialize)]
struct RelatedJson<'a> {
    #[serde(flatten)]
    place: Place,
    message: &'a str,
}

impl<'a> RelatedJson<'a> {
    fn new(report: &Report<'_>, r: &'a Label) -> RelatedJson<'a> {
        RelatedJson {
            place: Place::of(report, Some(r.span)),
            message: &r.message,
        }
    }
}

#[derive(Serialize)]
struct FixJson<'a> {
    applicability: &'a str,
    description: &'a str,
    edits: Vec<EditJson<'a>>,
}

impl<'a> FixJson<'a> {
    fn new(report: &Report<'_>, fix: &'a Fix) -> FixJson<'a> {
        FixJson {
            applicability: fix.applicability.as_str(),
            description: &fix.description,
            edits: fix
                .edits
                .iter()
                .map(|e| {
                    let place = Place::of(report, Some(e.span));
                    EditJson {
                        file: place.file,
                        start_line: place.line,
                        start_column: place.column,
                        end_line: place.end_line,
                        end_column: place.end_column,
                        content: &e.content,
                    }
                })
                .collect(),
        }
    }
}

#[derive(Serialize)]
struct EditJson<'a> {
    file: Option<String>,
    start_line: Option<u32>,
    start_column: Option<u32>,
    end_line: Option<u32>,
    end_column: Option<u32>,
    content: &'a str,
}
