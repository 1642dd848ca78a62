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

    // One window per file, in order of first appearance.
    let mut files: Vec<FileId> = Vec::new();
    for a in &diag.annotations {
        if !files.contains(&a.span.file) {
            files.push(a.span.file);
        }
    }
    let windows: Vec<(Window, String)> = files
        .iter()
        .map(|&file| {
            let spans = diag
                .annotations
                .iter()
                .filter(|a| a.span.file == file)
                .map(|a| a.span);
            let name = terminal_safe_line(&name_of(file)).into_owned();
            (Window::new(sources.source(file), spans), name)
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
    for (file, (window, name)) in files.iter().zip(&windows) {
        let src = sources.source(*file);
        let mut snippet = Snippet::source(window.text.as_str())
            .line_start(window.first_line as usize)
            .path(name.as_str())
            .fold(true);
        for (i, a) in diag
            .annotations
            .iter()
            .enumerate()
            .filter(|(_, a)| a.span.file == *file)
        {
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

/// The lines of one file that a diagnostic shows, as text.
struct Window {
    first_line: u32,
    text: String,
    /// Offset in `text` where each line (from `first_line` on) starts.
    line_starts: Vec<usize>,
}

impl Window {
    fn new(src: &SourceFile, spans: impl Iterator<Item = Span>) -> Window {
        let (mut first, mut last) = (u32::MAX, 0);
        for span in spans {
            first = first.min(src.line_col(span.start).line);
            last = last.max(src.line_col(span.end).line);
        }
        let mut text = String::new();
        let mut line_starts = Vec::new();
        for line in first..=last {
            line_starts.push(text.len());
            text.push_str(&lossy(src.line_bytes(line)));
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
