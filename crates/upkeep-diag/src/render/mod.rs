//! Renderers: the same [`Report`] as rustc-style text, as JSON (SPEC.md's
//! schema), as SARIF 2.1.0, and in the formats CI systems read (GitHub
//! workflow commands, GitLab Code Quality, JUnit XML). They produce strings
//! and do no I/O.

pub mod github;
pub mod gitlab;
pub mod human;
pub mod json;
pub mod junit;
pub mod sarif;
mod snippet;

use crate::{Finding, Severity};
use upkeep_syntax::{FileId, LineCol, SourceMap, Span};

/// Everything a renderer needs: the findings, the files they point into, and
/// what the check assumed.
pub struct Report<'a> {
    pub findings: &'a [Finding],
    pub sources: &'a dyn SourceMap,
    /// File names are shown relative to this directory when they lie inside it
    /// (SPEC.md: "relative to the main config's directory"), else as stored.
    pub base_dir: Option<&'a str>,
    /// The server flavor the verdicts were computed for ("nginx", "angie",
    /// "freenginx"); `None` reads as nginx.
    pub flavor: Option<&'a str>,
    /// The version the verdicts were computed for, e.g. "1.28.0" (the
    /// flavor's own number).
    pub nginx_version: Option<&'a str>,
    /// Where that version came from: "given", "detected" or "assumed".
    pub version_source: Option<&'a str>,
    /// Assumptions stated once for the whole report ("assuming nginx 1.28.0").
    pub assumptions: &'a [String],
    /// The upkeep.toml files the settings came from (none: defaults and
    /// flags only).
    pub settings_files: &'a [String],
}

impl<'a> Report<'a> {
    pub fn new(findings: &'a [Finding], sources: &'a dyn SourceMap) -> Report<'a> {
        Report {
            findings,
            sources,
            base_dir: None,
            flavor: None,
            nginx_version: None,
            version_source: None,
            assumptions: &[],
            settings_files: &[],
        }
    }

    /// The name a file is shown under.
    pub fn file_name(&self, file: FileId) -> String {
        display_path(&self.sources.source(file).path, self.base_dir)
    }

    /// 1-based start and end (exclusive end, as an editor's selection) of a span.
    pub fn line_cols(&self, span: Span) -> (LineCol, LineCol) {
        let src = self.sources.source(span.file);
        (src.line_col(span.start), src.line_col(span.end))
    }

    /// Findings in output order: grouped by file in load order, then by position.
    /// Findings with no place in a file come last, in their given order.
    pub fn sorted_findings(&self) -> Vec<&'a Finding> {
        let mut sorted: Vec<&Finding> = self.findings.iter().collect();
        sorted.sort_by_key(|f| match f.primary {
            Some(span) => (0, span.file, span.start, span.end),
            None => (1, FileId(0), 0, 0),
        });
        sorted
    }
}

/// Counts by severity, as in the JSON `summary` object.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub errors: usize,
    pub warnings: usize,
    pub infos: usize,
}

impl Summary {
    pub fn of(findings: &[Finding]) -> Summary {
        let mut s = Summary::default();
        for f in findings {
            match f.severity {
                Severity::Error => s.errors += 1,
                Severity::Warning => s.warnings += 1,
                Severity::Info => s.infos += 1,
            }
        }
        s
    }

    pub fn total(&self) -> usize {
        self.errors + self.warnings + self.infos
    }
}

/// A fingerprint that survives lines being added above the finding: the rule,
/// the file and the text under the primary span (whitespace runs collapsed).
/// FNV-1a, 64 bits, in hex. SARIF's `partialFingerprints` and GitLab's
/// `fingerprint` share it, so both track a finding the same way.
pub(crate) fn fingerprint(report: &Report<'_>, f: &Finding, span: Span) -> String {
    let src = report.sources.source(span.file);
    let text = String::from_utf8_lossy(src.slice(span));
    let normalized: Vec<&str> = text.split_whitespace().collect();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let file = report.file_name(span.file);
    for part in [f.rule, file.as_str(), normalized.join(" ").as_str()] {
        for b in part.bytes().chain([0u8]) {
            hash ^= u64::from(b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// What a renderer's `write` writes, as a string. Every format is written
/// to its sink as it is rendered; this is for callers that want the whole
/// text (tests, the playground, small reports).
pub fn to_string(write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>) -> String {
    let mut text = Vec::new();
    write(&mut text).expect("a report writes into memory");
    String::from_utf8(text).expect("reports are UTF-8")
}

/// `path` relative to `base` when it lies inside it, else unchanged. Pure
/// string work: both are expected in the same form (both absolute, or both as
/// given on the command line). A leading `./` is dropped from the result.
pub fn display_path(path: &str, base: Option<&str>) -> String {
    let Some(base) = base.map(|b| b.trim_end_matches('/')) else {
        return path.to_string();
    };
    let rel = if base.is_empty() || base == "." {
        Some(path.strip_prefix("./").unwrap_or(path))
    } else {
        path.strip_prefix(base)
            .and_then(|rest| rest.strip_prefix('/'))
            .filter(|rest| !rest.is_empty())
    };
    match rel {
        Some(rel) if !rel.starts_with('/') => rel.to_string(),
        _ => path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::display_path;

    #[test]
    fn paths_inside_the_base_become_relative() {
        assert_eq!(
            display_path("/etc/nginx/conf.d/a.conf", Some("/etc/nginx")),
            "conf.d/a.conf"
        );
        assert_eq!(
            display_path("/etc/nginx/conf.d/a.conf", Some("/etc/nginx/")),
            "conf.d/a.conf"
        );
        assert_eq!(display_path("./conf.d/a.conf", Some(".")), "conf.d/a.conf");
        assert_eq!(display_path("conf.d/a.conf", Some("")), "conf.d/a.conf");
    }

    #[test]
    fn paths_outside_the_base_stay_as_given() {
        assert_eq!(
            display_path("/etc/nginx-other/a.conf", Some("/etc/nginx")),
            "/etc/nginx-other/a.conf"
        );
        assert_eq!(display_path("/usr/a.conf", Some(".")), "/usr/a.conf");
        assert_eq!(display_path("/etc/nginx", Some("/etc/nginx")), "/etc/nginx");
        assert_eq!(display_path("a.conf", None), "a.conf");
    }
}
