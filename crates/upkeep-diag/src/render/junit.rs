//! `--format junit`: JUnit XML, the report format most CI systems (Jenkins,
//! GitLab's `reports: junit`, Azure Pipelines, CircleCI) show as test results.
//!
//! One `<testsuite>` per file with findings, one failing `<testcase>` per
//! finding (named after the rule and the place); findings with no place in a
//! file go to a suite named `upkeep`. A clean run is one suite with one
//! passing test case, so the CI shows that the check ran. Info findings are
//! reported as failures too: `--fail-on` decides the exit status, not this
//! file.

use super::{Report, Summary};
use crate::Finding;

pub fn render(report: &Report<'_>) -> String {
    super::to_string(|out| write(report, out))
}

/// [`render`], one test case written at a time.
pub fn write(report: &Report<'_>, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let findings = report.sorted_findings();
    // Group by file, keeping the output order (files in load order).
    let mut suites: Vec<(String, Vec<&Finding>)> = Vec::new();
    for f in findings {
        let name = match f.primary {
            Some(span) => report.file_name(span.file),
            None => "upkeep".to_string(),
        };
        match suites.last_mut() {
            Some((last, list)) if *last == name => list.push(f),
            _ => suites.push((name, vec![f])),
        }
    }

    let total = Summary::of(report.findings).total();
    out.write_all(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")?;
    if total == 0 {
        out.write_all(b"<testsuites name=\"upkeep\" tests=\"1\" failures=\"0\" errors=\"0\">\n")?;
        out.write_all(
            b"  <testsuite name=\"upkeep\" tests=\"1\" failures=\"0\" errors=\"0\" skipped=\"0\">\n",
        )?;
        out.write_all(b"    <testcase name=\"no findings\" classname=\"upkeep\"/>\n")?;
        return out.write_all(b"  </testsuite>\n</testsuites>\n");
    }
    writeln!(
        out,
        "<testsuites name=\"upkeep\" tests=\"{total}\" failures=\"{total}\" errors=\"0\">"
    )?;
    for (name, list) in &suites {
        writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{n}\" failures=\"{n}\" errors=\"0\" skipped=\"0\">",
            escape(name),
            n = list.len()
        )?;
        for f in list {
            out.write_all(testcase(report, name, f).as_bytes())?;
        }
        out.write_all(b"  </testsuite>\n")?;
    }
    out.write_all(b"</testsuites>\n")
}

fn testcase(report: &Report<'_>, suite: &str, f: &Finding) -> String {
    let (place, line) = match f.primary {
        Some(span) => {
            let (start, _) = report.line_cols(span);
            (
                format!("{suite}:{}:{}", start.line, start.col),
                Some(start.line),
            )
        }
        None => (suite.to_string(), None),
    };
    let mut body = format!(
        "{}: {} {}: {}",
        place,
        f.severity.as_str(),
        f.rule,
        f.message
    );
    for note in &f.notes {
        body.push_str("\nnote: ");
        body.push_str(note);
    }
    if let Some(help) = &f.help {
        body.push_str("\nhelp: ");
        body.push_str(help);
    }
    for related in &f.related {
        let (start, _) = report.line_cols(related.span);
        body.push_str(&format!(
            "\n{}:{}:{}: {}",
            report.file_name(related.span.file),
            start.line,
            start.col,
            related.message
        ));
    }
    let mut attrs = format!(
        "name=\"{} {} at {}\" classname=\"{}\"",
        f.rule,
        escape(f.name),
        escape(&place),
        escape(suite)
    );
    if let Some(line) = line {
        attrs.push_str(&format!(" file=\"{}\" line=\"{line}\"", escape(suite)));
    }
    format!(
        "    <testcase {attrs}>\n      <failure type=\"{}\" message=\"{}\">{}</failure>\n    </testcase>\n",
        f.severity.as_str(),
        escape(&f.message),
        escape(&body)
    )
}

/// XML text and attribute escaping. Characters XML 1.0 cannot carry at all
/// (control characters other than tab and line breaks, which a config with
/// binary garbage may put into a message) become U+FFFD.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn markup_and_control_characters_are_escaped() {
        assert_eq!(
            escape("a<b>&\"c'\u{1}\n"),
            "a&lt;b&gt;&amp;&quot;c&apos;\u{FFFD}\n"
        );
    }
}
