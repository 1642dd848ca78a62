//! The one place that knows the rendering crate (annotate-snippets). Everything
//! else describes a diagnostic with the plain types below, so a change in that
//! crate's API stays inside this file.
//!
//! nginx configs are bytes, and annotate-snippets wants `&str` with byte
//! offsets into it. So each file's annotated lines are copied into a window of
//! text (invalid UTF-8 replaced, `\r\n` reduced to `\n`) and every span is
//! translated into that window.

use crate::terminal_safe_line;
use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
use std::borrow::Cow;
use upkeep_syntax::{FileId, SourceFile, SourceMap, Span};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Error,
    Warning,
    Info,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FooterKind {
    Note,
    Help,
}

pub(crate) struct Annotation<'a> {
    pub span: Span,
    pub label: &'a str,
    pub primary: bool,
}

pub(crate) struct Diagnostic<'a> {
    pub kind: Kind,
    pub code: Option<&'a str>,
    pub title: &'a str,
    /// The first annotation's file is shown first.
    pub annotations: Vec<Annotation<'a>>,
    pub footers: Vec<(FooterKind, &'a str)>,
}

/// Renders one diagnostic. `name_of` gives the name each file is shown under.
///
/// annotate-snippets shows control characters of the source lines and of
/// the title as visible pictures, but prints file names, labels, notes and
/// help as given; those carry file names and config text (upstream names,
/// paths), so they are escaped here the same way.
pub(crate) fn render(
    diag: &Diagnostic<'_>,
    sources: &dyn SourceMap,
    name_of: &dyn Fn(FileId) -> String,
    color: bool,
) -> String {
    let level = match diag.kind {
        Kind::Error => Level::ERROR,
        Kind::Warning => Level::WARNING,
        Kind::Info => Level::INFO,
    };

    // Windows per file, files in order of first appearance. Annotations
    // of one file that are far apart get a window each (see
    // `clusters`): a window holds every line between its first and last.
    let mut files: Vec<FileId> = Vec::new();
    for a in &diag.annotations {
        if !files.contains(&a.span.file) {
            files.push(a.span.file);
        }
    }
    let windows: Vec<(&SourceFile, Window, Vec<usize>, String)> = files
        .iter()
        .flat_map(|&file| {
            let src = sources.source(file);
            let name = terminal_safe_line(&name_of(file)).into_owned();
            clusters(diag, file, src)
                .into_iter()
                .map(move |(first, last, members)| {
                    (src, Window::new(src, first, last), members, name.clone())
                })
        })
        .collect();

    let title_text = terminal_safe_line(diag.title);
    let mut title = level.clone().primary_title(title_text.as_ref());
    if let Some(code) = diag.code {
        title = title.id(code);
    }
    let labels: Vec<Cow<'_, str>> = diag
        .annotations
        .iter()
        .map(|a| terminal_safe_line(a.label))
        .collect();
    let footer_texts: Vec<Cow<'_, str>> = diag
        .footers
        .iter()
        .map(|(_, text)| terminal_safe_line(text))
        .collect();
    let mut group = Group::with_title(title);
    for (src, window, members, name) in &windows {
        let mut snippet = Snippet::source(window.text.as_str())
            .line_start(window.first_line as usize)
            .path(name.as_str())
            .fold(true);
        for &i in members {
            let a = &diag.annotations[i];
            let kind = if a.primary {
                AnnotationKind::Primary
            } else {
                AnnotationKind::Context
            };
            let label = labels[i].as_ref();
            snippet = snippet.annotation(kind.span(window.range(src, a.span)).label(label));
        }
        group = group.element(snippet);
    }
    for ((kind, _), text) in diag.footers.iter().zip(&footer_texts) {
        let footer_level = match kind {
            FooterKind::Note => Level::NOTE,
            FooterKind::Help => Level::HELP,
        };
        group = group.element(footer_level.message(text.as_ref()));
    }

    let renderer = if color {
        Renderer::styled()
    } else {
        Renderer::plain()
    };
    renderer.render(&[group])
}

/// Annotations further apart than this many lines are shown in windows of
/// their own. A window copies every line between its first and last (the
/// renderer folds the unannotated ones into `...`), so one label at the top
/// of a 200,000-line file and one at the bottom would copy and scan the
/// whole file for each diagnostic.
const MAX_GAP_LINES: u32 = 100;

/// The windows that show the annotations of `file`: for each, its first
/// and last line and the indexes of its annotations in document order of
/// the diagnostic. The window of the file's first annotation (the primary
/// one, when it is in this file) comes first; the others follow in line
/// order.
fn clusters(diag: &Diagnostic<'_>, file: FileId, src: &SourceFile) -> Vec<(u32, u32, Vec<usize>)> {
    let mut lines: Vec<(u32, u32, usize)> = diag
        .annotations
        .iter()
        .enumerate()
        .filter(|(_, a)| a.span.file == file)
        .map(|(i, a)| {
            let first = src.line_of(a.span.start);
            (first, src.line_of(a.span.end).max(first), i)
        })
        .collect();
    let Some(&(_, _, leading)) = lines.first() else {
        return Vec::new();
    };
    lines.sort_unstable();
    let mut out: Vec<(u32, u32, Vec<usize>)> = Vec::new();
    for (first, last, i) in lines {
        match out.last_mut() {
            Some(c) if first <= c.1.saturating_add(MAX_GAP_LINES) => {
                c.1 = c.1.max(last);
                c.2.push(i);
            }
            _ => out.push((first, last, vec![i])),
        }
    }
    for c in &mut out {
        c.2.sort_unstable();
    }
    if let Some(at) = out.iter().position(|c| c.2.contains(&leading)) {
        let lead = out.remove(at);
        out.insert(0, lead);
    }
    out
}

/// The lines of one file that a diagnostic shows, as text.
struct Window {
    first_line: u32,
    text: String,
    /// Offset in `text` where each line (from `first_line` on) starts.
    line_starts: Vec<usize>,
}

impl Window {
    /// Lines `first..=last` of `src` ([`SourceFile::lines`]: a lookup per
    /// line would scan the file's line index once per line).
    fn new(src: &SourceFile, first: u32, last: u32) -> Window {
        let mut text = String::new();
        let mut line_starts = Vec::new();
        for (line, bytes) in (first..=last).zip(src.lines(first, last)) {
            line_starts.push(text.len());
            text.push_str(&lossy(bytes));
            if line != last {
                text.push('\n');
            }
        }
        Window {
            first_line: first,
            text,
            line_starts,
        }
    }

    /// The span as a range of `self.text`. An empty span (an insertion point)
    /// is widened to the character after it, or before it at a line's end, so
    /// that it has something to underline.
    fn range(&self, src: &SourceFile, span: Span) -> std::ops::Range<usize> {
        let start = self.offset(src, span.start);
        let mut end = self.offset(src, span.end).max(start);
        if start == end {
            let next = self.text[start..].chars().next().filter(|c| *c != '\n');
            if let Some(c) = next {
                end = start + c.len_utf8();
            } else if let Some(c) = self.text[..start].chars().next_back() {
                return start - c.len_utf8()..start;
            }
        }
        start..end
    }

    fn offset(&self, src: &SourceFile, byte: u32) -> usize {
        let line = src.line_col(byte).line;
        let index = (line.saturating_sub(self.first_line)) as usize;
        let Some(&line_start) = self.line_starts.get(index) else {
            return self.text.len();
        };
        let content = src.line_bytes(line);
        let within = (byte.saturating_sub(src.line_start(line)) as usize).min(content.len());
        let mut at = line_start + lossy(&content[..within]).len();
        at = at.min(self.text.len());
        while !self.text.is_char_boundary(at) {
            at -= 1;
        }
        at
    }
}

fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &[u8]) -> SourceFile {
        SourceFile::new(FileId(0), "t.conf", text.to_vec())
    }

    /// An annotation on the first `needle` in `src`.
    fn annotation<'a>(
        src: &SourceFile,
        needle: &str,
        label: &'a str,
        primary: bool,
    ) -> Annotation<'a> {
        let text = std::str::from_utf8(&src.text).unwrap();
        let at = text.find(needle).unwrap() as u32;
        Annotation {
            span: Span::new(FileId(0), at, at + needle.len() as u32),
            label,
            primary,
        }
    }

    fn diagnostic<'a>(annotations: Vec<Annotation<'a>>) -> Diagnostic<'a> {
        Diagnostic {
            kind: Kind::Warning,
            code: Some("U007"),
            title: "t",
            annotations,
            footers: Vec::new(),
        }
    }

    /// A 200,000-line file with a label near the top and one near the
    /// bottom: two windows of one line each, the primary one first, instead
    /// of one window that copies every line in between.
    #[test]
    fn labels_far_apart_get_a_window_each() {
        let mut text = b"upstream b {\n".to_vec();
        text.extend(b"# filler\n".repeat(200_000));
        text.extend(b"proxy_pass http://b;\nkeepalive 2;\n");
        let src = file(&text);
        let diag = diagnostic(vec![
            annotation(&src, "keepalive 2;", "primary", true),
            annotation(&src, "upstream b", "related", false),
            annotation(&src, "proxy_pass http://b;", "near the primary", false),
        ]);
        let windows = clusters(&diag, FileId(0), &src);
        assert_eq!(
            windows,
            [(200_002, 200_003, vec![0, 2]), (1, 1, vec![1])],
            "the primary's window first"
        );
        let out = render(&diag, &src, &|_| "t.conf".into(), false);
        assert!(out.contains("--> t.conf:200003:1"), "{out}");
        assert!(out.contains("::: t.conf:1:1"), "{out}");
        assert!(!out.contains("filler"), "{out}");
    }

    /// Labels close together stay in one window, shown as before.
    #[test]
    fn labels_close_together_share_a_window() {
        let mut text = b"a 1;\n".to_vec();
        text.extend(b"# filler\n".repeat(MAX_GAP_LINES as usize - 1));
        text.extend(b"b 2;\n");
        let src = file(&text);
        let diag = diagnostic(vec![
            annotation(&src, "b 2;", "primary", true),
            annotation(&src, "a 1;", "related", false),
        ]);
        let last = MAX_GAP_LINES + 1;
        assert_eq!(clusters(&diag, FileId(0), &src), [(1, last, vec![0, 1])]);
        let out = render(&diag, &src, &|_| "t.conf".into(), false);
        assert!(!out.contains(":::"), "{out}");
    }

    /// A window reads its lines as `SourceFile::line_bytes` gives them:
    /// without `\r\n` or `\n`, invalid UTF-8 replaced, a last line without
    /// a line feed.
    #[test]
    fn a_window_holds_the_lines_as_the_file_gives_them() {
        let src = file(b"one\r\ntw\xffo\n\nfour");
        let window = Window::new(&src, 1, 4);
        let expected: Vec<String> = (1..=4)
            .map(|line| String::from_utf8_lossy(src.line_bytes(line)).into_owned())
            .collect();
        assert_eq!(window.text, expected.join("\n"));
        assert_eq!(window.line_starts.len(), 4);
        let middle = Window::new(&src, 2, 3);
        assert_eq!(middle.text, format!("{}\n", expected[1]));
        assert_eq!(middle.first_line, 2);
    }
}
