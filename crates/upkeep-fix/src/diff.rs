//! Unified diffs of the changed files, as `upkeep fix` prints them: the
//! `--- PATH` / `+++ PATH` form that `patch -p0` applies from the main config's
//! directory. Coloured (red removals, green additions, cyan hunk headers) only
//! when the caller asks.

use anstyle::{AnsiColor, Style};
use similar::udiff::UnifiedHunkHeader;
use similar::{ChangeTag, TextDiff};

/// Lines of unchanged context around each change.
pub const CONTEXT_LINES: usize = 3;

/// The unified diff of one file, empty when the texts are equal. Line
/// terminators are kept as they are (a `\r` of a CRLF file stays), so that
/// `patch` applies the diff; bytes that are not UTF-8 are shown replaced.
pub fn unified_diff(path: &str, old: &[u8], new: &[u8], color: bool) -> String {
    if old == new {
        return String::new();
    }
    let diff = TextDiff::configure().diff_lines(old, new);
    // Coloured output is for a terminal: control characters of the file
    // names and lines are shown escaped there, and only there (a diff to a
    // file or pipe must keep the bytes for `patch`).
    let paint = |text: &str, style: Style| {
        if color {
            let text = upkeep_diag::terminal_safe(text);
            format!("{}{text}{}", style.render(), style.render_reset())
        } else {
            text.to_string()
        }
    };
    let header = Style::new().bold();
    let hunk = Style::new().fg_color(Some(AnsiColor::Cyan.into()));
    let removed = Style::new().fg_color(Some(AnsiColor::Red.into()));
    let added = Style::new().fg_color(Some(AnsiColor::Green.into()));

    let mut out = String::new();
    out.push_str(&paint(&format!("--- {path}"), header));
    out.push('\n');
    out.push_str(&paint(&format!("+++ {path}"), header));
    out.push('\n');
    for group in diff.grouped_ops(CONTEXT_LINES) {
        out.push_str(&paint(&UnifiedHunkHeader::new(&group).to_string(), hunk));
        out.push('\n');
        for op in &group {
            for change in diff.iter_changes(op) {
                let (sign, style) = match change.tag() {
                    ChangeTag::Equal => (' ', None),
                    ChangeTag::Delete => ('-', Some(removed)),
                    ChangeTag::Insert => ('+', Some(added)),
                };
                let bytes = change.value();
                let line = String::from_utf8_lossy(bytes.strip_suffix(b"\n").unwrap_or(bytes));
                let text = format!("{sign}{line}");
                match style {
                    Some(style) => out.push_str(&paint(&text, style)),
                    None if color => out.push_str(&upkeep_diag::terminal_safe(&text)),
                    None => out.push_str(&text),
                }
                out.push('\n');
                if change.missing_newline() {
                    out.push_str("\\ No newline at end of file\n");
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::unified_diff;

    #[test]
    fn no_diff_for_equal_texts() {
        assert_eq!(unified_diff("a", b"x\n", b"x\n", false), "");
    }

    #[test]
    fn missing_final_newline_is_marked() {
        let d = unified_diff("a.conf", b"a;\nb;", b"a;\nb;\nc;", false);
        assert_eq!(
            d,
            "--- a.conf\n+++ a.conf\n@@ -1,2 +1,3 @@\n a;\n-b;\n\\ No newline at end of file\n+b;\n+c;\n\\ No newline at end of file\n"
        );
    }
}
