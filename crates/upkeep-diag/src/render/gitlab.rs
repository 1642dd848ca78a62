//! `--format gitlab`: a GitLab Code Quality report (a subset of the Code
//! Climate issue format), for `artifacts: reports: codequality:` in
//! `.gitlab-ci.yml`. GitLab shows these in the merge request widget and the
//! diff.
//!
//! ```text
//! [{"type": "issue", "check_name": "U001", "description": "U001 upstream-without-keepalive: …",
//!   "content": {"body": "…"}, "categories": ["Bug Risk"], "severity": "minor",
//!   "fingerprint": "…", "location": {"path": "conf.d/app.conf", "lines": {"begin": 1, "end": 3}}}]
//! ```
//!
//! GitLab compares reports of the merge request and its target by
//! `fingerprint`, so it must not move when lines are added above a finding:
//! it is the SARIF fingerprint (rule, file, text under the span), with an
//! occurrence number added when the same text is found twice in a file.

use super::Report;
use crate::{Finding, Severity};
use serde::ser::{Serialize, SerializeSeq, Serializer};
use serde_json::{json, Value};
use std::collections::HashMap;
use upkeep_syntax::FileId;

pub fn render(report: &Report<'_>) -> String {
    super::to_string(|out| write(report, out))
}

/// [`render`], written out as it is serialized: each issue is built,
/// written and dropped in turn (the report of a large configuration is
/// hundreds of megabytes).
pub fn write(report: &Report<'_>, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, &Issues(report))?;
    out.write_all(b"\n")
}

/// The report: a list of issues, one per finding in place order.
struct Issues<'r, 'a>(&'r Report<'a>);

impl Serialize for Issues<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let report = self.0;
        let mut seen: HashMap<String, usize> = HashMap::new();
        let findings = report.sorted_findings();
        let mut seq = s.serialize_seq(Some(findings.len()))?;
        for f in findings {
            let base = match f.primary {
                Some(span) => super::fingerprint(report, f, span),
                None => format!("{}:{}", f.rule, f.message),
            };
            let n = seen.entry(base.clone()).or_default();
            *n += 1;
            let fingerprint = if *n == 1 { base } else { format!("{base}-{n}") };
            seq.serialize_element(&issue(report, f, fingerprint))?;
        }
        seq.end()
    }
}

fn issue(report: &Report<'_>, f: &Finding, fingerprint: String) -> Value {
    // Code Quality needs a place for every issue. Findings without one (from
    // logs or the host) are pinned to line 1 of the main config, the file
    // the check was run on.
    let (path, begin, end) = match f.primary {
        Some(span) => {
            let (start, end) = report.line_cols(span);
            let last = if end.col == 1 && end.line > start.line {
                end.line - 1
            } else {
                end.line
            };
            (report.file_name(span.file), start.line, last)
        }
        None => (report.file_name(FileId(0)), 1, 1),
    };
    let mut body = String::new();
    if let Some(help) = &f.help {
        body.push_str("help: ");
        body.push_str(help);
    }
    for note in &f.notes {
        if !body.is_empty() {
            body.push('\n');
        }
        body.push_str("note: ");
        body.push_str(note);
    }
    let mut obj = json!({
        "type": "issue",
        "check_name": f.rule,
        "description": format!("{} {}: {}", f.rule, f.name, f.message),
        "categories": ["Bug Risk"],
        "severity": severity(f.severity),
        "fingerprint": fingerprint,
        "location": { "path": path, "lines": { "begin": begin, "end": end } },
    });
    if !body.is_empty() {
        obj["content"] = json!({ "body": body });
    }
    obj
}

/// GitLab's levels are info, minor, major, critical and blocker. An upkeep
/// error (a config that loses keep-alive outright) is a major defect, a
/// warning a minor one; nothing upkeep finds blocks a deploy by itself.
fn severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "major",
        Severity::Warning => "minor",
        Severity::Info => "info",
    }
}
