//! `--format github`: GitHub Actions workflow commands, one per finding, so a
//! plain `run: upkeep check --format github` step annotates the pull request's
//! diff without code scanning:
//!
//! ```text
//! ::warning file=conf.d/app.conf,line=1,col=1,endLine=3,title=U001 upstream-without-keepalive::upstream `app` keeps …%0Ahelp: add `keepalive 32;` …
//! ```
//!
//! Severities map to the three annotation levels (error, warning, notice).
//! Paths must be relative to the repository root, so the caller sets the
//! report's base directory to the working directory (the checkout).
//!
//! Columns: GitHub uses `col`/`endColumn` only when the annotation starts and
//! ends on the same line (the Checks API ignores them otherwise), and its
//! `endColumn` is inclusive where our spans end just after the last
//! character. So `endColumn` is written only for single-line spans, as the
//! column of the last character.

use super::Report;
use crate::{Finding, Severity};

pub fn render(report: &Report<'_>) -> String {
    super::to_string(|out| write(report, out))
}

/// [`render`], one line written at a time.
pub fn write(report: &Report<'_>, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    for f in report.sorted_findings() {
        out.write_all(annotation(report, f).as_bytes())?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// One `::level props::message` line.
pub fn annotation(report: &Report<'_>, f: &Finding) -> String {
    let mut props: Vec<(&str, String)> = Vec::new();
    if let Some(span) = f.primary {
        let (start, end) = report.line_cols(span);
        props.push(("file", report.file_name(span.file)));
        props.push(("line", start.line.to_string()));
        props.push(("col", start.col.to_string()));
        if end.line == start.line {
            props.push(("endLine", end.line.to_string()));
            props.push((
                "endColumn",
                end.col.saturating_sub(1).max(start.col).to_string(),
            ));
        } else {
            // An end at column 1 is just after a line break: the span's last
            // character is on the line above.
            let last_line = if end.col == 1 { end.line - 1 } else { end.line };
            props.push(("endLine", last_line.to_string()));
        }
    }
    props.push(("title", format!("{} {}", f.rule, f.name)));

    let mut message = f.message.clone();
    if let (Some(label), Some(_)) = (&f.label, f.primary) {
        message.push_str("\n  ");
        message.push_str(label);
    }
    for note in &f.notes {
        message.push_str("\nnote: ");
        message.push_str(note);
    }
    if let Some(help) = &f.help {
        message.push_str("\nhelp: ");
        message.push_str(help);
    }
    for related in &f.related {
        let (start, _) = report.line_cols(related.span);
        message.push_str(&format!(
            "\n{}:{}:{}: {}",
            report.file_name(related.span.file),
            start.line,
            start.col,
            related.message
        ));
    }

    let props: Vec<String> = props
        .into_iter()
        .map(|(k, v)| format!("{k}={}", escape_property(&v)))
        .collect();
    format!(
        "::{} {}::{}",
        command(f.severity),
        props.join(","),
        escape_data(&message)
    )
}

fn command(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "notice",
    }
}

/// The message part of a workflow command: `%`, CR and LF are percent-encoded
/// (the runner decodes them; a raw newline would end the command).
pub fn escape_data(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            c => out.push(c),
        }
    }
    out
}

/// A property value: as [`escape_data`], and also `:` and `,`, which
/// would otherwise end the value.
pub fn escape_property(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in escape_data(s).chars() {
        match c {
            ':' => out.push_str("%3A"),
            ',' => out.push_str("%2C"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{escape_data, escape_property};

    #[test]
    fn data_escapes_percent_and_line_breaks_only() {
        assert_eq!(escape_data("50% a:b,c\r\nd"), "50%25 a:b,c%0D%0Ad");
    }

    #[test]
    fn properties_also_escape_colon_and_comma() {
        assert_eq!(
            escape_property("conf.d/a,b:c%.conf\n"),
            "conf.d/a%2Cb%3Ac%25.conf%0A"
        );
    }
}
