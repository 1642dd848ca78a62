//! Bodies of `*_by_lua_block { … }` directives.
//!
//! nginx does not tokenize these: the lua module's handler takes over right
//! after the `{` and reads Lua tokens until the matching `}`
//! (lua-nginx-module, `ngx_http_lua_conf_lua_block_parse`,
//! `ngx_http_lua_conf_read_lua_token` and the generated `ngx_http_lua_lex`).
//! At the leftmost place where one matches, that lexer finds:
//!
//! - `{` and `}`, which move the nesting level;
//! - `--[=*[` long comments and `[=*[` long strings, closed by `]=*]` with
//!   as many `=`;
//! - `]=*]` on its own (skipped);
//! - `--` line comments, to the end of the line;
//! - `"…"` and `'…'` strings on one line, where a backslash escapes any byte
//!   but a line feed. A quote not closed on its line is just a byte.
//!
//! Braces inside strings and comments therefore do not count, which is what
//! tools that count raw braces get wrong.
//!
//! The lexer only sees nginx's 4 KiB read buffer, which it refills when less
//! than half is left. A long bracket must close inside the buffer, and 4 KiB
//! without any token is "too long". Both limits depend on where the buffer
//! happens to start, so [`ReadBuffer`] replays nginx's buffer arithmetic.

use crate::lexer::{ReadBuffer, NGX_CONF_BUFFER};
use crate::{FileId, Span, SyntaxError};

/// Directives whose block body belongs to the Lua module.
pub fn is_lua_block_directive(name: &[u8]) -> bool {
    name.ends_with(b"_by_lua_block")
}

enum LuaToken {
    Open,
    Close,
    /// A long string or long comment: where its `[=*[` starts and ends.
    LongBracket {
        start: usize,
        body: usize,
        eq: usize,
    },
    Other,
}

/// `open` is the block's `{`. Returns the offset of the `}` that closes it;
/// `buf` is left as nginx's buffer is when its own tokenizer resumes.
pub(crate) fn scan_block(
    text: &[u8],
    file: FileId,
    open: usize,
    buf: &mut ReadBuffer,
) -> Result<usize, SyntaxError> {
    // nginx reports a missing end at the line of the last `{` it saw (the
    // block's own, or one inside the Lua code).
    let mut last_open = open;
    let eof_error = |last_open: usize| {
        SyntaxError::new(
            Span::new(file, last_open as u32, last_open as u32 + 1),
            "unexpected end of file",
            &["terminating characters for lua code block"],
        )
    };
    let too_long = |start: usize| {
        SyntaxError::new(
            Span::new(file, start as u32, start as u32),
            "too long lua code block, probably missing terminating characters",
            &[],
        )
    };
    let len = text.len();
    let mut level = 1usize;
    let mut pos = open + 1;
    let mut failed = FailedStrings::default();
    loop {
        // One call of ngx_http_lua_conf_read_lua_token.
        let mut start = pos;
        let (end, token) = loop {
            if pos >= buf.end || (buf.end - pos < NGX_CONF_BUFFER / 2 && buf.end < len) {
                if buf.end >= len {
                    return Err(eof_error(last_open));
                }
                if buf.end - start == NGX_CONF_BUFFER {
                    return Err(too_long(start));
                }
                buf.start = start;
                buf.end = len.min(start + NGX_CONF_BUFFER);
            }
            match next_match(text, pos, buf.end, &mut failed) {
                Some(found) => break found,
                None => {
                    if buf.end >= len {
                        return Err(eof_error(last_open));
                    }
                    if buf.end - pos == NGX_CONF_BUFFER {
                        return Err(too_long(pos));
                    }
                    // nginx keeps the unmatched bytes but resumes lexing
                    // where the old buffer ended.
                    let old_end = buf.end;
                    buf.start = pos;
                    buf.end = len.min(pos + NGX_CONF_BUFFER);
                    start = pos;
                    pos = old_end;
                }
            }
        };
        pos = end;
        match token {
            LuaToken::Open => {
                level += 1;
                last_open = end - 1;
            }
            LuaToken::Close => {
                level -= 1;
                if level == 0 {
                    return Ok(end - 1);
                }
            }
            LuaToken::LongBracket { start, body, eq } => {
                // The closing bracket is searched for in the buffer only.
                pos = match long_bracket_close(text, body, buf.end, eq) {
                    Some(after) => after,
                    None => {
                        let closing = format!("]{}]", "=".repeat(eq));
                        return Err(SyntaxError::new(
                            Span::new(file, start as u32, body as u32),
                            format!(
                                "Lua code block missing the closing long bracket \"{closing}\", \
                                 the inlined Lua code may be too long"
                            ),
                            &[],
                        ));
                    }
                };
            }
            LuaToken::Other => {}
        }
    }
}

/// Where a quoted-string attempt failed, per quote kind: the line feed (or
/// the buffer end) it ran into. Every later attempt with the same quote that
/// starts before that point fails there too (that quote was escaped in the
/// first attempt, and from the byte after it both attempts pair backslashes
/// the same way), so it is not scanned again: this keeps a line full of
/// `\"` linear instead of quadratic.
#[derive(Default)]
struct FailedStrings {
    /// (fail point, the buffer end it was found with, or None for a line
    /// feed) for `"` and `'`.
    until: [Option<(usize, Option<usize>)>; 2],
}

impl FailedStrings {
    fn known_to_fail(&self, kind: usize, at: usize, limit: usize) -> bool {
        match self.until[kind] {
            Some((until, at_limit)) => at < until && at_limit.is_none_or(|l| l == limit),
            None => false,
        }
    }
}

/// The leftmost Lua token in `text[from..limit]`: its end and kind.
fn next_match(
    text: &[u8],
    from: usize,
    limit: usize,
    failed: &mut FailedStrings,
) -> Option<(usize, LuaToken)> {
    let text = &text[..limit];
    let mut i = from;
    while i < limit {
        match text[i] {
            b'{' => return Some((i + 1, LuaToken::Open)),
            b'}' => return Some((i + 1, LuaToken::Close)),
            b'-' if text.get(i + 1) == Some(&b'-') => {
                if let Some(eq) = long_bracket_open(text, i + 2) {
                    let body = i + 2 + eq + 2;
                    return Some((body, LuaToken::LongBracket { start: i, body, eq }));
                }
                let end = text[i..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(limit, |n| i + n);
                return Some((end, LuaToken::Other));
            }
            b'[' => {
                if let Some(eq) = long_bracket_open(text, i) {
                    let body = i + eq + 2;
                    return Some((body, LuaToken::LongBracket { start: i, body, eq }));
                }
            }
            b']' => {
                let eq = text[i + 1..].iter().take_while(|&&b| b == b'=').count();
                if text.get(i + 1 + eq) == Some(&b']') {
                    return Some((i + eq + 2, LuaToken::Other));
                }
            }
            q @ (b'"' | b'\'') => {
                let kind = usize::from(q == b'\'');
                if !failed.known_to_fail(kind, i, limit) {
                    match short_string_end(text, i, q) {
                        Ok(end) => return Some((end, LuaToken::Other)),
                        Err(stop) => {
                            let at_limit = (stop >= limit).then_some(limit);
                            failed.until[kind] = Some((stop, at_limit));
                        }
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// At `[`: the number of `=` in `[=*[`, if that is what is here.
fn long_bracket_open(text: &[u8], at: usize) -> Option<usize> {
    if text.get(at) != Some(&b'[') {
        return None;
    }
    let eq = text[at + 1..].iter().take_while(|&&b| b == b'=').count();
    (text.get(at + 1 + eq) == Some(&b'[')).then_some(eq)
}

/// The offset just past the `]=*]` (with `eq` signs) found in
/// `text[from..limit]`.
fn long_bracket_close(text: &[u8], from: usize, limit: usize, eq: usize) -> Option<usize> {
    let hay = &text[from..limit];
    let mut i = 0;
    while let Some(n) = hay[i..].iter().position(|&b| b == b']') {
        let close = i + n;
        let after = &hay[close + 1..];
        if after.len() > eq && after[..eq].iter().all(|&b| b == b'=') && after[eq] == b']' {
            return Some(from + close + eq + 2);
        }
        i = close + 1;
    }
    None
}

/// At an opening quote: the offset past the closing one if the string
/// closes on this line, else where the attempt stopped (the line feed or
/// the end of `text`).
fn short_string_end(text: &[u8], at: usize, quote: u8) -> Result<usize, usize> {
    let mut i = at + 1;
    while i < text.len() {
        match text[i] {
            b'\n' => return Err(i),
            b'\\' => match text.get(i + 1) {
                None => return Err(text.len()),
                Some(b'\n') => return Err(i + 1),
                Some(_) => i += 2,
            },
            b if b == quote => return Ok(i + 1),
            _ => i += 1,
        }
    }
    Err(text.len())
}
