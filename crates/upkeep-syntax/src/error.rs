//! Syntax errors, worded like nginx's own (`ngx_conf_read_token`,
//! `ngx_conf_parse`) so that an operator recognises them.

use crate::{SourceFile, Span};
use std::fmt;

/// A place where nginx would stop reading the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// The offending byte(s): the unexpected character, the unterminated
    /// token, or the empty span at the end of the file.
    pub span: Span,
    /// What went wrong, in nginx's words where nginx has some, e.g.
    /// `unexpected "}"` or `unexpected end of file`.
    pub message: String,
    /// What would have been accepted at this place, ready to print:
    /// `"\";\""`, `"\"}\""`, `"a directive name"`. Empty when nothing
    /// specific can be said.
    pub expected: Vec<String>,
}

impl SyntaxError {
    pub(crate) fn new(span: Span, message: impl Into<String>, expected: &[&str]) -> Self {
        SyntaxError {
            span,
            message: message.into(),
            expected: expected.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// `file:line:col: message, expecting …` followed by the source line and
    /// a caret under the error, the way `upkeep parse` and `check` print it.
    pub fn render(&self, file: &SourceFile) -> String {
        let pos = file.line_col(self.span.start);
        let line = file.line_bytes(pos.line);
        // One char per column, in the units `line_col` counts: characters
        // on a UTF-8 line, bytes on any other.
        let chars: Vec<char> = match std::str::from_utf8(line) {
            Ok(text) => text.chars().collect(),
            Err(_) => line
                .iter()
                .map(|&b| if b.is_ascii() { b as char } else { '\u{fffd}' })
                .collect(),
        };
        let chars: Vec<char> = chars
            .into_iter()
            .map(|c| if c == '\t' { ' ' } else { c })
            .collect();
        let mut caret = (pos.col.saturating_sub(1) as usize).min(chars.len());
        let mut width = if self.span.is_empty() {
            1
        } else {
            let end = file.line_col(self.span.end);
            if end.line == pos.line {
                (end.col.saturating_sub(pos.col)).max(1) as usize
            } else {
                chars.len().saturating_sub(caret).max(1)
            }
        };
        // A long line is cut to a window around the error.
        const CONTEXT: usize = 60;
        let from = caret.saturating_sub(CONTEXT);
        let to = (caret + CONTEXT).min(chars.len());
        let mut shown: String = chars[from..to].iter().collect();
        if from > 0 {
            shown.insert(0, '…');
            caret = caret - from + 1;
        }
        if to < chars.len() {
            shown.push('…');
        }
        width = width.min(to.saturating_sub(pos.col as usize - 1).max(1));
        let gutter = pos.line.to_string();
        let pad = " ".repeat(gutter.len());
        format!(
            "{}:{}:{}: {}\n{pad} |\n{gutter} | {}\n{pad} | {}{}\n",
            file.path,
            pos.line,
            pos.col,
            self,
            shown,
            " ".repeat(caret),
            "^".repeat(width),
        )
    }
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if !self.expected.is_empty() {
            f.write_str(", expecting ")?;
            for (i, e) in self.expected.iter().enumerate() {
                if i > 0 {
                    f.write_str(if i + 1 == self.expected.len() {
                        " or "
                    } else {
                        ", "
                    })?;
                }
                f.write_str(e)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for SyntaxError {}

/// `"c"` as nginx prints a character in `unexpected "%c"`.
pub(crate) fn quoted_byte(b: u8) -> String {
    if b.is_ascii_graphic() || b == b' ' {
        format!("\"{}\"", b as char)
    } else {
        format!("\"\\x{b:02x}\"")
    }
}
