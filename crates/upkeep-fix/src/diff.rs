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
    // Patience, not Myers: a fix makes a few changes far apart in a file that
    // can be a million lines long, and Myers' cost grows with the number of
    // lines times the number of changes (on a 46 MB configuration with 20,000
    // inserted lines it took half of `fix`'s time). Patience anchors on the
    // lines that occur once in both texts (`upstream backend_12 {`) and
    // diffs only the short stretches between anchors.
    let diff = TextDiff::configure()
        .algorithm(similar::Algorithm::Patience)
        .diff_lines(old, new);
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
    use proptest::prelude::*;

    /// Applies a unified diff made by [`unified_diff`] (uncoloured) to
    /// `old`, checking every context and removed line against it.
    fn apply(old: &[u8], diff: &str) -> Vec<u8> {
        let old_lines: Vec<&[u8]> = old.split_inclusive(|&b| b == b'\n').collect();
        let mut out: Vec<u8> = Vec::new();
        let mut next_old = 0usize;
        let mut lines = diff.lines().skip(2).peekable();
        while let Some(header) = lines.next() {
            let ranges = header
                .strip_prefix("@@ -")
                .and_then(|h| h.split(' ').next())
                .expect("a hunk header");
            let start: usize = ranges.split(',').next().unwrap().parse().unwrap();
            // `-0,0` (an empty old range) names the line before it.
            let start = if ranges.ends_with(",0") {
                start
            } else {
                start - 1
            };
            for line in &old_lines[next_old..start] {
                out.extend_from_slice(line);
            }
            next_old = start;
            while let Some(line) = lines.next_if(|l| !l.starts_with("@@")) {
                let (sign, text) = line.split_at(1);
                let ends_without_newline = lines.peek() == Some(&"\\ No newline at end of file");
                if ends_without_newline {
                    lines.next();
                }
                let mut whole = text.as_bytes().to_vec();
                if !ends_without_newline {
                    whole.push(b'\n');
                }
                match sign {
                    " " | "-" => {
                        assert_eq!(old_lines[next_old], &whole[..], "context or removed line");
                        next_old += 1;
                        if sign == " " {
                            out.extend_from_slice(&whole);
                        }
                    }
                    "+" => out.extend_from_slice(&whole),
                    other => panic!("unexpected line kind {other:?} in {diff}"),
                }
            }
        }
        for line in &old_lines[next_old..] {
            out.extend_from_slice(line);
        }
        out
    }

    /// A configuration-like text: many repeated lines (`}`, `keepalive 32;`)
    /// and one unique line per block, as in the files `fix` edits.
    fn config(blocks: usize) -> Vec<String> {
        let mut lines = Vec::new();
        for i in 0..blocks {
            lines.push(format!("upstream backend_{i} {{"));
            lines.push("    server 10.0.0.1:8080;".to_string());
            lines.push("    keepalive 32;".to_string());
            lines.push("}".to_string());
            lines.push(String::new());
        }
        lines
    }

    proptest! {
        /// Whatever the edits (insertions, replacements, deletions, at the
        /// start, the end, next to each other), the diff turns the old text
        /// into the new one.
        #[test]
        fn the_diff_turns_old_into_new(
            blocks in 1usize..40,
            edits in proptest::collection::vec((0usize..200, 0u8..3, 0u8..4), 0..30),
            final_newline in any::<bool>(),
        ) {
            let old = config(blocks);
            let mut new = old.clone();
            for (at, kind, text) in edits {
                let at = at % (new.len() + 1);
                let line = ["    keepalive_timeout 2s;", "}", "", "    proxy_http_version 1.1;"][text as usize].to_string();
                match kind {
                    0 => new.insert(at, line),
                    1 if at < new.len() => new[at] = line,
                    _ if at < new.len() => { new.remove(at); }
                    _ => new.push(line),
                }
            }
            let join = |lines: &[String]| {
                let mut text = lines.join("\n");
                if final_newline && !text.is_empty() {
                    text.push('\n');
                }
                text.into_bytes()
            };
            let (old, new) = (join(&old), join(&new));
            let diff = unified_diff("a.conf", &old, &new, false);
            prop_assert_eq!(apply(&old, &diff), new);
        }
    }

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
