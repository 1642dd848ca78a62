//! `--format sarif`: SARIF 2.1.0 for GitHub code scanning and other SARIF
//! consumers. The rule table (`tool.driver.rules`) is generated from the rule
//! registry the caller passes in, so it can never drift from the checks.
//!
//! Files inside the base directory get relative URIs against `%SRCROOT%` (the
//! checkout root for code scanning); others get `file://` URIs. Columns count
//! Unicode code points, as [`upkeep_syntax::LineCol`] does, and the run says
//! so with `columnKind`.

use super::{display_path, Report};
use crate::{Finding, Severity};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use upkeep_syntax::{FileId, Span};

/// One entry of the rule table.
#[derive(Clone, Debug)]
pub struct RuleDescriptor {
    pub id: String,
    pub name: String,
    pub severity: Severity,
    /// One line.
    pub summary: String,
    /// The rule's full documentation, markdown.
    pub doc: String,
    pub fixable: bool,
}

/// The producing tool, as `tool.driver`.
#[derive(Clone, Debug)]
pub struct Tool {
    pub name: String,
    pub version: String,
    pub information_uri: Option<String>,
}

pub const SCHEMA_URI: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";
const SRCROOT: &str = "%SRCROOT%";

pub fn render(report: &Report<'_>, tool: &Tool, rules: &[RuleDescriptor]) -> String {
    super::to_string(|out| write(report, tool, rules, out))
}

/// [`render`], written out as it is serialized: each result is built,
/// written and dropped in turn. The SARIF of a large configuration is
/// hundreds of megabytes, and as one JSON value tree it took twice the
/// memory of the whole check.
pub fn write(
    report: &Report<'_>,
    tool: &Tool,
    rules: &[RuleDescriptor],
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let document = Document {
        report,
        tool,
        rules,
    };
    serde_json::to_writer_pretty(&mut *out, &document)?;
    out.write_all(b"\n")
}

/// The SARIF log: `$schema`, `version` and one run. Keys are written in
/// this order.
struct Document<'r, 'a> {
    report: &'r Report<'a>,
    tool: &'r Tool,
    rules: &'r [RuleDescriptor],
}

impl Serialize for Document<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(3))?;
        map.serialize_entry("$schema", SCHEMA_URI)?;
        map.serialize_entry("version", "2.1.0")?;
        map.serialize_entry("runs", &[Run(self)])?;
        map.end()
    }
}

struct Run<'d, 'r, 'a>(&'d Document<'r, 'a>);

impl Serialize for Run<'_, '_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Document {
            report,
            tool,
            rules,
        } = self.0;
        let mut driver = Map::new();
        driver.insert("name".into(), tool.name.clone().into());
        driver.insert("version".into(), tool.version.clone().into());
        driver.insert("semanticVersion".into(), tool.version.clone().into());
        if let Some(uri) = &tool.information_uri {
            driver.insert("informationUri".into(), uri.clone().into());
        }
        driver.insert(
            "rules".into(),
            rules.iter().map(rule_descriptor).collect::<Vec<_>>().into(),
        );

        let mut properties = Map::new();
        if let Some(f) = report.flavor {
            properties.insert("serverFlavor".into(), f.into());
        }
        if let Some(v) = report.nginx_version {
            properties.insert("nginxVersion".into(), v.into());
        }
        if let Some(s) = report.version_source {
            properties.insert("nginxVersionSource".into(), s.into());
        }
        if !report.assumptions.is_empty() {
            properties.insert("assumptions".into(), report.assumptions.into());
        }
        // Always present, so that a reader can tell "no settings file" from
        // an older upkeep that did not say.
        properties.insert("settingsFiles".into(), report.settings_files.into());

        let mut map = s.serialize_map(None)?;
        map.serialize_entry("tool", &json!({ "driver": driver }))?;
        map.serialize_entry("columnKind", "unicodeCodePoints")?;
        map.serialize_entry("results", &Results(self.0))?;
        if !properties.is_empty() {
            map.serialize_entry("properties", &properties)?;
        }
        map.end()
    }
}

/// `results`, one finding at a time.
struct Results<'d, 'r, 'a>(&'d Document<'r, 'a>);

impl Serialize for Results<'_, '_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Document { report, rules, .. } = self.0;
        let index: BTreeMap<&str, usize> = rules
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.as_str(), i))
            .collect();
        let findings = report.sorted_findings();
        let mut seq = s.serialize_seq(Some(findings.len()))?;
        for f in findings {
            seq.serialize_element(&result(report, f, index.get(f.rule).copied()))?;
        }
        seq.end()
    }
}

fn rule_descriptor(rule: &RuleDescriptor) -> Value {
    let mut tags = vec!["nginx", "keep-alive"];
    if rule.fixable {
        tags.push("fixable");
    }
    json!({
        "id": rule.id,
        "name": rule.name,
        "shortDescription": { "text": rule.summary },
        "fullDescription": { "text": rule.summary },
        "help": { "text": rule.doc, "markdown": rule.doc },
        "defaultConfiguration": { "level": level(rule.severity) },
        "properties": { "tags": tags, "problem.severity": level(rule.severity) },
    })
}

fn result(report: &Report<'_>, f: &Finding, rule_index: Option<usize>) -> Value {
    let mut obj = Map::new();
    obj.insert("ruleId".into(), f.rule.into());
    if let Some(i) = rule_index {
        obj.insert("ruleIndex".into(), i.into());
    }
    obj.insert("level".into(), level(f.severity).into());
    let mut text = f.message.clone();
    if let Some(help) = &f.help {
        text.push_str("\nhelp: ");
        text.push_str(help);
    }
    obj.insert("message".into(), json!({ "text": text }));
    if let Some(span) = f.primary {
        obj.insert(
            "locations".into(),
            json!([{ "physicalLocation": physical_location(report, span) }]),
        );
        obj.insert(
            "partialFingerprints".into(),
            json!({ "upkeep/v1": super::fingerprint(report, f, span) }),
        );
    }
    if !f.related.is_empty() {
        let related: Vec<Value> = f
            .related
            .iter()
            .enumerate()
            .map(|(i, r)| {
                json!({
                    "id": i,
                    "physicalLocation": physical_location(report, r.span),
                    "message": { "text": r.message },
                })
            })
            .collect();
        obj.insert("relatedLocations".into(), related.into());
    }
    if let Some(fix) = &f.fix {
        let mut by_file: BTreeMap<FileId, Vec<Value>> = BTreeMap::new();
        for edit in &fix.edits {
            by_file.entry(edit.span.file).or_default().push(json!({
                "deletedRegion": region(report, edit.span),
                "insertedContent": { "text": edit.content },
            }));
        }
        let changes: Vec<Value> = by_file
            .into_iter()
            .map(|(file, replacements)| {
                json!({
                    "artifactLocation": artifact_location(report, file),
                    "replacements": replacements,
                })
            })
            .collect();
        obj.insert(
            "fixes".into(),
            json!([{ "description": { "text": fix.description }, "artifactChanges": changes }]),
        );
    }
    if !f.notes.is_empty() {
        obj.insert(
            "properties".into(),
            json!({ "name": f.name, "notes": f.notes }),
        );
    } else {
        obj.insert("properties".into(), json!({ "name": f.name }));
    }
    Value::Object(obj)
}

fn physical_location(report: &Report<'_>, span: Span) -> Value {
    json!({
        "artifactLocation": artifact_location(report, span.file),
        "region": region(report, span),
    })
}

fn artifact_location(report: &Report<'_>, file: FileId) -> Value {
    let path = &report.sources.source(file).path;
    let shown = display_path(path, report.base_dir);
    if shown.starts_with('/') {
        json!({ "uri": format!("file://{}", encode_uri_path(&shown)) })
    } else {
        json!({ "uri": encode_uri_path(&shown), "uriBaseId": SRCROOT })
    }
}

fn region(report: &Report<'_>, span: Span) -> Value {
    let (start, end) = report.line_cols(span);
    json!({
        "startLine": start.line,
        "startColumn": start.col,
        "endLine": end.line,
        "endColumn": end.col,
    })
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters and `/`.
fn encode_uri_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::encode_uri_path;

    #[test]
    fn uri_paths_are_percent_encoded() {
        assert_eq!(
            encode_uri_path("conf.d/my app.conf"),
            "conf.d/my%20app.conf"
        );
        assert_eq!(encode_uri_path("a/b-c_d~e.conf"), "a/b-c_d~e.conf");
        assert_eq!(encode_uri_path("é"), "%C3%A9");
    }
}
