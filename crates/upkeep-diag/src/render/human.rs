//! rustc-style text: `error[U003]: …`, `--> file:line:col`, the source lines
//! with the span underlined, secondary spans, notes, a `help:` line, and one
//! closing summary line.

use super::snippet::{self, Annotation, Diagnostic, FooterKind, Kind};
use super::{Report, Summary};
use crate::{terminal_safe_line, Applicability, Finding, Severity};
use anstyle::{AnsiColor, Style};
use std::fmt::Write;
use upkeep_syntax::{SourceMap, Span};

#[derive(Clone, Copy, Debug, Default)]
pub struct HumanOptions {
    /// ANSI colours (decided by the caller: a terminal, or `--color always`).
    pub color: bool,
}

/// Below this many findings, rendering stays on the calling thread.
const PARALLEL_ABOVE_FINDINGS: usize = 200;

/// How many findings are rendered (on all cores) before their text is
/// written out: a large config's report is never held whole.
const RENDER_CHUNK: usize = 2048;

/// The whole report: every finding, the assumptions, the summary line.
pub fn render(report: &Report<'_>, options: HumanOptions) -> String {
    super::to_string(|out| write(report, options, out))
}

/// [`render`], written to `out` as it is rendered.
pub fn write(
    report: &Report<'_>,
    options: HumanOptions,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let (findings, groups) = split_groups(report.sorted_findings());
    write_findings(report, &findings, options, out)?;
    for group in &groups {
        out.write_all(render_group(report, group, options).as_bytes())?;
        out.write_all(b"\n\n")?;
    }
    for assumption in report.assumptions {
        writeln!(
            out,
            "{}: {}",
            paint("note", bold(None), options),
            terminal_safe_line(assumption)
        )?;
    }
    for file in report.settings_files {
        writeln!(
            out,
            "{}: settings from {}",
            paint("note", bold(None), options),
            terminal_safe_line(file)
        )?;
    }
    out.write_all(summary_line(report, options).as_bytes())?;
    out.write_all(b"\n")
}

/// Each finding in full, followed by a blank line, in the order given.
/// annotate-snippets takes tens of microseconds per finding: a large
/// config's thousands of findings are rendered on all cores, a chunk at a
/// time.
pub fn write_findings(
    report: &Report<'_>,
    findings: &[&Finding],
    options: HumanOptions,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let parallel = findings.len() > PARALLEL_ABOVE_FINDINGS;
    for chunk in findings.chunks(RENDER_CHUNK) {
        for text in
            crate::parallel::map_ordered(chunk, parallel, |f| render_finding(report, f, options))
        {
            out.write_all(text.as_bytes())?;
            out.write_all(b"\n\n")?;
        }
    }
    Ok(())
}

/// Findings shown one by one, and the grouped ones (see [`Finding::group`])
/// gathered per rule, severity and group in order of first appearance.
fn split_groups(findings: Vec<&Finding>) -> (Vec<&Finding>, Vec<Vec<&Finding>>) {
    let mut single = Vec::new();
    let mut groups: Vec<Vec<&Finding>> = Vec::new();
    for f in findings {
        let Some(g) = &f.group else {
            single.push(f);
            continue;
        };
        let same = |other: &&Finding| {
            other.rule == f.rule && other.severity == f.severity && other.group.as_ref() == Some(g)
        };
        match groups.iter_mut().find(|members| same(&members[0])) {
            Some(members) => members.push(f),
            None => groups.push(vec![f]),
        }
    }
    (single, groups)
}

/// How many places a group line names before "and N more".
const GROUP_PLACES_SHOWN: usize = 5;

/// One line for a group of findings: `info[U007]: <group> (N): places`,
/// then a note saying where the details are.
fn render_group(report: &Report<'_>, members: &[&Finding], options: HumanOptions) -> String {
    let first = members[0];
    let (word, style) = match first.severity {
        Severity::Error => ("error", bold(Some(AnsiColor::Red))),
        Severity::Warning => ("warning", bold(Some(AnsiColor::Yellow))),
        Severity::Info => ("info", bold(Some(AnsiColor::Cyan))),
    };
    let places: Vec<String> = members
        .iter()
        .take(GROUP_PLACES_SHOWN)
        .filter_map(|f| f.primary)
        .map(|span| {
            let (start, _) = report.line_cols(span);
            format!(
                "{}:{}",
                crate::terminal::terminal_safe_line(&report.file_name(span.file)),
                start.line
            )
        })
        .collect();
    let mut text = format!(
        "{}{} {}",
        paint(&format!("{word}[{}]", first.rule), style, options),
        paint(":", bold(None), options),
        crate::terminal::terminal_safe_line(first.group.as_deref().unwrap_or_default()),
    );
    if !places.is_empty() {
        let _ = write!(
            text,
            "\n  {} {}",
            paint(&format!("= at ({}):", members.len()), bold(None), options),
            places.join(", ")
        );
        if members.len() > places.len() {
            let _ = write!(text, " and {} more", members.len() - places.len());
        }
    }
    let _ = write!(
        text,
        "\n  {} one line for {} findings; `--format json` lists each with its own message and help",
        paint("= note:", bold(None), options),
        members.len()
    );
    text
}

/// One finding as a diagnostic block (no trailing newline).
pub fn render_finding(report: &Report<'_>, finding: &Finding, options: HumanOptions) -> String {
    let kind = kind_of(finding.severity);
    let mut annotations = Vec::new();
    if let Some(span) = finding.primary {
        annotations.push(Annotation {
            span,
            label: finding.label.as_deref().unwrap_or(""),
            primary: true,
        });
    }
    for related in &finding.related {
        annotations.push(Annotation {
            span: related.span,
            label: &related.message,
            primary: false,
        });
    }
    let mut footers: Vec<(FooterKind, &str)> = finding
        .notes
        .iter()
        .map(|n| (FooterKind::Note, n.as_str()))
        .collect();
    if let Some(help) = &finding.help {
        footers.push((FooterKind::Help, help));
    }
    let diag = Diagnostic {
        kind,
        code: Some(finding.rule),
        title: &finding.message,
        annotations,
        footers,
    };
    let name_of = |file| report.file_name(file);
    snippet::render(&diag, report.sources, &name_of, options.color)
}

/// An input error with a place, such as a syntax error: `error: message`, the
/// place, the source line with `label` under the span. Used for exit-2 errors.
pub fn render_error(
    sources: &dyn SourceMap,
    base_dir: Option<&str>,
    span: Span,
    message: &str,
    label: &str,
    options: HumanOptions,
) -> String {
    let diag = Diagnostic {
        kind: Kind::Error,
        code: None,
        title: message,
        annotations: vec![Annotation {
            span,
            label,
            primary: true,
        }],
        footers: Vec::new(),
    };
    let name_of = |file| super::display_path(&sources.source(file).path, base_dir);
    snippet::render(&diag, sources, &name_of, options.color)
}

/// "3 errors, 1 warning, 0 infos in 2 files (nginx 1.28.0, assumed); 2 fixable with `upkeep fix`"
/// (or "(Angie 1.12.1, given)" for another flavor).
pub fn summary_line(report: &Report<'_>, options: HumanOptions) -> String {
    let summary = Summary::of(report.findings);
    let mut files: Vec<_> = report
        .findings
        .iter()
        .filter_map(|f| f.primary)
        .map(|s| s.file)
        .collect();
    files.sort();
    files.dedup();
    let fixable_with = |a: Applicability| {
        report
            .findings
            .iter()
            .filter(|f| f.fix.as_ref().is_some_and(|fix| fix.applicability == a))
            .count()
    };
    let (fixable, unsafe_fixable) = (
        fixable_with(Applicability::Safe),
        fixable_with(Applicability::Unsafe),
    );

    let counts = format!(
        "{}, {}, {}",
        plural(summary.errors, "error", "errors"),
        plural(summary.warnings, "warning", "warnings"),
        plural(summary.infos, "info", "infos"),
    );
    let style = if summary.errors > 0 {
        bold(Some(AnsiColor::Red))
    } else if summary.warnings > 0 {
        bold(Some(AnsiColor::Yellow))
    } else {
        bold(Some(AnsiColor::Green))
    };
    let mut line = paint(&counts, style, options);
    if !files.is_empty() {
        let _ = write!(line, " in {}", plural(files.len(), "file", "files"));
    }
    if let Some(version) = report.nginx_version {
        let server = match report.flavor {
            Some("angie") => "Angie",
            Some("freenginx") => "freenginx",
            _ => "nginx",
        };
        match report.version_source {
            Some(source) => {
                let _ = write!(line, " ({server} {version}, {source})");
            }
            None => {
                let _ = write!(line, " ({server} {version})");
            }
        }
    }
    if fixable > 0 {
        let _ = write!(line, "; {fixable} fixable with `upkeep fix`");
    }
    if unsafe_fixable > 0 {
        let _ = write!(line, "; {unsafe_fixable} with `upkeep fix --unsafe-fixes`");
    }
    line
}

fn kind_of(severity: Severity) -> Kind {
    match severity {
        Severity::Error => Kind::Error,
        Severity::Warning => Kind::Warning,
        Severity::Info => Kind::Info,
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

fn bold(color: Option<AnsiColor>) -> Style {
    Style::new().bold().fg_color(color.map(Into::into))
}

fn paint(text: &str, style: Style, options: HumanOptions) -> String {
    if options.color {
        format!("{}{text}{}", style.render(), style.render_reset())
    } else {
        text.to_string()
    }
}
