//! What can go wrong while loading, each with its place.

use std::fmt;
use upkeep_syntax::{LineCol, SourceFile, Span, SyntaxError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadErrorKind {
    /// A file does not parse; nginx would refuse it.
    Syntax(Box<SyntaxError>),
    /// The main file cannot be read.
    MainUnreadable,
    /// An `include` names a file that cannot be read (an error only in
    /// strict mode; otherwise a [`LoadWarning`]).
    IncludeUnreadable,
    /// A file (read as directives) starts with a UTF-8 byte order mark,
    /// which nginx takes as part of the first directive's name.
    ByteOrderMark,
    /// A file includes itself, directly or through others.
    IncludeCycle,
    /// The `nginx -T` input has no `# configuration file` markers.
    NotADump,
    /// A directive has a value nginx refuses (`keepalive abc;`); the
    /// message is `nginx -t`'s.
    RefusedValue,
}

/// Loading stopped. Displays as `file:line:col: message`; [`LoadError::render`]
/// adds the source line.
#[derive(Clone, Debug)]
pub struct LoadError {
    pub kind: LoadErrorKind,
    /// The file the error is in (the main path for an unreadable main file).
    pub path: String,
    /// Where in that file, when there is a place (not for an unreadable main
    /// file).
    pub pos: Option<LineCol>,
    pub message: String,
    /// The file and span, to show the source line.
    pub source: Option<Box<(SourceFile, Span)>>,
}

impl LoadError {
    pub(crate) fn at(kind: LoadErrorKind, file: &SourceFile, span: Span, message: String) -> Self {
        LoadError {
            kind,
            path: file.path.clone(),
            pos: Some(file.line_col(span.start)),
            message,
            source: Some(Box::new((file.clone(), span))),
        }
    }

    /// A value nginx refuses, at `span` (the argument) in `file`.
    pub fn refused_value(file: &SourceFile, span: Span, message: String) -> Self {
        LoadError::at(LoadErrorKind::RefusedValue, file, span, message)
    }

    pub(crate) fn syntax(file: &SourceFile, err: SyntaxError) -> Self {
        let span = err.span;
        let message = err.to_string();
        LoadError::at(LoadErrorKind::Syntax(Box::new(err)), file, span, message)
    }

    /// `file:line:col: message` and, when there is a place, the source line
    /// with a caret.
    pub fn render(&self) -> String {
        match (&self.kind, self.source.as_deref()) {
            (LoadErrorKind::Syntax(e), Some((file, _))) => e.render(file),
            (_, Some((file, span))) => {
                let e = SyntaxError {
                    span: *span,
                    message: self.message.clone(),
                    expected: Vec::new(),
                };
                e.render(file)
            }
            _ => format!("{self}\n"),
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pos {
            Some(p) => write!(f, "{}:{}:{}: {}", self.path, p.line, p.col, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

impl std::error::Error for LoadError {}

/// Something nginx would not accept but that does not stop `upkeep` (a
/// missing include file outside strict mode).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadWarning {
    /// The file holding the `include` directive.
    pub path: String,
    pub pos: LineCol,
    /// The whole `include` directive.
    pub span: Span,
    pub message: String,
    /// The path (or glob pattern) that could not be read.
    pub target: String,
    /// Why, when the loader said.
    pub io_error: Option<std::io::ErrorKind>,
}

impl fmt::Display for LoadWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.path, self.pos.line, self.pos.col, self.message
        )
    }
}
