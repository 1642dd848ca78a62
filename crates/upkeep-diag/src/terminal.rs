//! Text from outside (file names, `--backend` values, log lines, a
//! config's own bytes) made safe to print on a terminal: control
//! characters would otherwise move the cursor, clear the screen, retitle
//! the window or hide text.
//!
//! The source snippets of diagnostics are escaped by the rendering crate
//! (annotate-snippets shows each C0 control as its Unicode control picture,
//! `ESC` as `␛`, and bidirectional overrides as `�`, as rustc does). This
//! module applies the same convention to everything else upkeep prints, so
//! a name looks the same in a snippet and in a message.

use std::borrow::Cow;

/// `text` with every control character made visible, except line feeds
/// and tabs: for multi-line text such as a whole report.
pub fn terminal_safe(text: &str) -> Cow<'_, str> {
    escape(text, false)
}

/// Like [`terminal_safe`], but a line feed is escaped too (as `␊`): for a
/// value that must stay on its line, such as a file name.
pub fn terminal_safe_line(text: &str) -> Cow<'_, str> {
    escape(text, true)
}

fn needs_escape(c: char, one_line: bool) -> bool {
    match c {
        '\n' => one_line,
        '\t' => false,
        c if c.is_control() => true, // C0, DEL and C1
        // Bidirectional embeddings, overrides and isolates (the "Trojan
        // Source" characters), as annotate-snippets replaces them.
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => true,
        _ => false,
    }
}

fn escape(text: &str, one_line: bool) -> Cow<'_, str> {
    if !text.chars().any(|c| needs_escape(c, one_line)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !needs_escape(c, one_line) {
            out.push(c);
            continue;
        }
        match c as u32 {
            // U+2400..U+241F: SYMBOL FOR NULL .. SYMBOL FOR UNIT SEPARATOR.
            n @ 0..=0x1f => out.push(char::from_u32(0x2400 + n).unwrap_or('\u{fffd}')),
            0x7f => out.push('\u{2421}'),
            // C1 controls (0x9b is a one-byte CSI on some terminals) have
            // no pictures: their code point, written out.
            n @ 0x80..=0x9f => out.push_str(&format!("\\u{{{n:x}}}")),
            _ => out.push('\u{fffd}'),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_become_visible_and_plain_text_is_borrowed() {
        assert!(matches!(terminal_safe("app.conf"), Cow::Borrowed(_)));
        assert_eq!(terminal_safe("a\x1b[31mb"), "a\u{241b}[31mb");
        assert_eq!(
            terminal_safe("x\u{7}\u{7f}\r\n\ty"),
            "x\u{2407}\u{2421}\u{240d}\n\ty"
        );
        assert_eq!(terminal_safe_line("a\nb"), "a\u{240a}b");
        assert_eq!(terminal_safe("\u{9b}2J"), "\\u{9b}2J");
        assert_eq!(terminal_safe("a\u{202e}b"), "a\u{fffd}b");
        assert_eq!(terminal_safe("é ü 日本"), "é ü 日本");
    }
}
