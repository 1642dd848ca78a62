//! The tokenizer: nginx's `ngx_conf_read_token` (src/core/ngx_conf_file.c),
//! state for state, so that the same bytes split into the same words.
//!
//! What nginx does, and therefore what this does:
//! - A token starts at the first byte that is not a space, tab, CR or LF.
//! - `;`, `{` and `}` at a token start are punctuation. `#` at a token start
//!   begins a comment that runs to the end of the line; anywhere else `#` is
//!   an ordinary byte (`a#b` is one word).
//! - A bare word ends at a space, tab, CR, LF, `;` or `{` — not at `}` and not
//!   at a quote. A backslash makes the next byte ordinary. `$` followed by `{`
//!   keeps the `{` inside the word (`${var}`).
//! - `"…"` and `'…'` start only at a token start, may span lines and hold
//!   `;{}#`; a backslash makes the next byte ordinary. After the closing quote
//!   nginx demands a space, `;`, `{` or `)` (the `)` then starts a new word).
//! - A token (a word, or a comment) that is still open 4096 bytes after it
//!   started is "too long" (nginx's 4 KiB read buffer, `NGX_CONF_BUFFER`).
//!   The counting start is exactly nginx's `start` pointer, which for a bare
//!   word ended by whitespace only moves at the next byte.

use crate::error::quoted_byte;
use crate::{FileId, QuoteStyle, Span, SyntaxError};

/// nginx's configuration read buffer (`NGX_CONF_BUFFER`).
pub(crate) const NGX_CONF_BUFFER: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Token {
    Word {
        /// The raw token, quotes included.
        raw: (u32, u32),
        /// The bytes nginx unescapes into the value (inside the quotes).
        content: (u32, u32),
        quote: QuoteStyle,
        /// A backslash occurs in `content` (otherwise the value is the
        /// content as it is).
        escapes: bool,
    },
    Semicolon(u32),
    BlockOpen(u32),
    BlockClose(u32),
    /// From `#` to the end of the line, without the line terminator.
    Comment(u32, u32),
    Eof,
}

/// Where nginx's read buffer currently is, as file offsets: it holds
/// `text[start..end]`, and `end` is also how far the file has been read.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ReadBuffer {
    pub(crate) start: usize,
    pub(crate) end: usize,
}

pub(crate) struct Lexer<'a> {
    text: &'a [u8],
    file: FileId,
    pos: usize,
    buf: ReadBuffer,
    /// nginx's `start`: where the token being read began, for the 4 KiB limit.
    start: usize,
    /// A quoted word just ended; nginx requires a separator next.
    need_space: bool,
}

/// Bytes that end a bare word or change how the next byte is read.
const BARE_SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let special = b" \t\r\n;{\\$";
    let mut i = 0;
    while i < special.len() {
        t[special[i] as usize] = true;
        i += 1;
    }
    t
};

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(text: &'a [u8], file: FileId) -> Self {
        Lexer {
            text,
            file,
            pos: 0,
            buf: ReadBuffer::default(),
            start: 0,
            need_space: false,
        }
    }

    pub(crate) fn text(&self) -> &'a [u8] {
        self.text
    }

    /// The read buffer, for a reader that takes over from here (Lua blocks).
    pub(crate) fn buffer(&mut self) -> &mut ReadBuffer {
        &mut self.buf
    }

    /// Continue reading after a block whose body was consumed elsewhere (a
    /// Lua block); like a fresh call of `ngx_conf_read_token`.
    pub(crate) fn resume_at(&mut self, pos: usize) {
        self.pos = pos;
        self.start = pos;
        self.need_space = false;
    }

    fn span(&self, start: usize, end: usize) -> Span {
        Span::new(self.file, start as u32, end as u32)
    }

    /// Called before reading `text[pos]` (which exists). nginx refills its
    /// buffer when it is empty, keeping the current token; if that token
    /// already fills the whole buffer, it gives up.
    #[inline]
    fn refill(&mut self, state: LongState) -> Result<(), SyntaxError> {
        if self.pos < self.buf.end {
            return Ok(());
        }
        self.refill_buffer(state)
    }

    #[cold]
    fn refill_buffer(&mut self, state: LongState) -> Result<(), SyntaxError> {
        if self.pos - self.start < NGX_CONF_BUFFER {
            self.buf.start = self.start;
            self.buf.end = self.text.len().min(self.start + NGX_CONF_BUFFER);
            return Ok(());
        }
        let shown_end = (self.start + 10).min(self.text.len());
        let span = self.span(self.start, shown_end);
        Err(match state {
            LongState::Double | LongState::Single => {
                let q = if state == LongState::Double {
                    '"'
                } else {
                    '\''
                };
                SyntaxError::new(
                    span,
                    format!("too long parameter, probably missing terminating \"{q}\" character"),
                    &[],
                )
            }
            LongState::Other => SyntaxError::new(
                span,
                format!(
                    "too long parameter \"{}...\" started",
                    String::from_utf8_lossy(&self.text[self.start..shown_end])
                ),
                &[],
            ),
        })
    }

    pub(crate) fn next_token(&mut self) -> Result<Token, SyntaxError> {
        let text = self.text;
        loop {
            if !self.need_space {
                // Runs of whitespace, within the current buffer.
                let end = self.buf.end;
                let before = self.pos;
                while self.pos < end && is_space(text[self.pos]) {
                    self.pos += 1;
                }
                if self.pos > before {
                    // nginx's `start` follows each whitespace byte it reads
                    // at a token start.
                    self.start = self.pos - 1;
                }
            }
            if self.pos >= text.len() {
                return Ok(Token::Eof);
            }
            self.refill(LongState::Other)?;
            let ch = text[self.pos];
            self.pos += 1;

            if self.need_space {
                if is_space(ch) {
                    self.need_space = false;
                    continue;
                }
                match ch {
                    b';' => {
                        self.need_space = false;
                        self.start = self.pos;
                        return Ok(Token::Semicolon(self.pos as u32 - 1));
                    }
                    b'{' => {
                        self.need_space = false;
                        self.start = self.pos;
                        return Ok(Token::BlockOpen(self.pos as u32 - 1));
                    }
                    // `if ($a = "b")`: the `)` starts the next word.
                    b')' => self.need_space = false,
                    _ => {
                        return Err(SyntaxError::new(
                            self.span(self.pos - 1, self.pos),
                            format!("unexpected {}", quoted_byte(ch)),
                            &["a space after the closing quote", "\";\"", "\"{\""],
                        ))
                    }
                }
            }

            let at = self.pos - 1;
            self.start = at;
            match ch {
                b' ' | b'\t' | b'\r' | b'\n' => continue,
                b';' => {
                    self.start = self.pos;
                    return Ok(Token::Semicolon(at as u32));
                }
                b'{' => {
                    self.start = self.pos;
                    return Ok(Token::BlockOpen(at as u32));
                }
                b'}' => {
                    self.start = self.pos;
                    return Ok(Token::BlockClose(at as u32));
                }
                b'#' => return self.comment(at),
                b'"' => return self.quoted(at, b'"'),
                b'\'' => return self.quoted(at, b'\''),
                _ => return self.bare(at, ch),
            }
        }
    }

    fn comment(&mut self, at: usize) -> Result<Token, SyntaxError> {
        let text = self.text;
        loop {
            if self.pos >= text.len() || text[self.pos] == b'\n' {
                break;
            }
            self.refill(LongState::Other)?;
            // The rest of the line cannot hold anything but comment bytes;
            // jump ahead, but not past the buffer nginx would have to refill.
            let limit = self.buf.end;
            match text[self.pos..limit].iter().position(|&b| b == b'\n') {
                Some(n) => self.pos += n,
                None => self.pos = limit,
            }
        }
        let mut end = self.pos;
        if end > at && text[end - 1] == b'\r' && end < text.len() {
            end -= 1;
        }
        Ok(Token::Comment(at as u32, end as u32))
    }

    fn unexpected_eof_in_word(&self, at: usize, quote: QuoteStyle) -> SyntaxError {
        let eof = self.span(self.text.len(), self.text.len());
        match quote {
            QuoteStyle::Double => SyntaxError::new(
                self.span(at, at + 1),
                "unexpected end of file inside the quoted string that starts here",
                &["a closing '\"'"],
            ),
            QuoteStyle::Single => SyntaxError::new(
                self.span(at, at + 1),
                "unexpected end of file inside the quoted string that starts here",
                &["a closing \"'\""],
            ),
            QuoteStyle::Bare => {
                SyntaxError::new(eof, "unexpected end of file", &["\";\"", "\"}\""])
            }
        }
    }

    fn quoted(&mut self, at: usize, quote_char: u8) -> Result<Token, SyntaxError> {
        let text = self.text;
        let (style, long) = if quote_char == b'"' {
            (QuoteStyle::Double, LongState::Double)
        } else {
            (QuoteStyle::Single, LongState::Single)
        };
        // nginx moves `start` past the opening quote.
        self.start = at + 1;
        let mut escaped = false;
        let mut escapes = false;
        loop {
            if !escaped {
                // Ordinary bytes, within the current buffer.
                let end = self.buf.end;
                while self.pos < end && text[self.pos] != quote_char && text[self.pos] != b'\\' {
                    self.pos += 1;
                }
            }
            if self.pos >= text.len() {
                return Err(self.unexpected_eof_in_word(at, style));
            }
            self.refill(long)?;
            let ch = text[self.pos];
            self.pos += 1;
            if escaped {
                escaped = false;
                continue;
            }
            if ch == b'\\' {
                escaped = true;
                escapes = true;
            } else if ch == quote_char {
                self.need_space = true;
                return Ok(Token::Word {
                    raw: (at as u32, self.pos as u32),
                    content: (at as u32 + 1, self.pos as u32 - 1),
                    quote: style,
                    escapes,
                });
            }
            // `$` and `${` change nothing inside quotes: the closing quote
            // is recognised right after them too.
        }
    }

    fn bare(&mut self, at: usize, first: u8) -> Result<Token, SyntaxError> {
        let text = self.text;
        let mut escaped = first == b'\\';
        let mut escapes = escaped;
        let mut variable = first == b'$';
        loop {
            if !escaped && !variable {
                // Ordinary bytes, within the current buffer.
                let end = self.buf.end;
                while self.pos < end && !BARE_SPECIAL[text[self.pos] as usize] {
                    self.pos += 1;
                }
            }
            if self.pos >= text.len() {
                return Err(self.unexpected_eof_in_word(at, QuoteStyle::Bare));
            }
            self.refill(LongState::Other)?;
            let ch = text[self.pos];
            self.pos += 1;
            if escaped {
                escaped = false;
                continue;
            }
            if ch == b'{' && variable {
                continue;
            }
            variable = false;
            match ch {
                b'\\' => {
                    escaped = true;
                    escapes = true;
                }
                b'$' => variable = true,
                b' ' | b'\t' | b'\r' | b'\n' | b';' | b'{' => {
                    let end = self.pos - 1;
                    if ch == b';' || ch == b'{' {
                        // Read again as punctuation by the next call, exactly
                        // where nginx returns with it.
                        self.pos = end;
                    }
                    return Ok(Token::Word {
                        raw: (at as u32, end as u32),
                        content: (at as u32, end as u32),
                        quote: QuoteStyle::Bare,
                        escapes,
                    });
                }
                _ => {}
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum LongState {
    Double,
    Single,
    Other,
}

/// Whether [`unescape`] changes `content`: some backslash is followed by
/// a character it resolves. A regular expression (`location ~ \.php$`) has
/// backslashes that nginx keeps, and its word reads its value from the
/// file's text like any other.
pub(crate) fn unescape_changes(content: &[u8]) -> bool {
    content
        .windows(2)
        .any(|w| w[0] == b'\\' && matches!(w[1], b'"' | b'\'' | b'\\' | b't' | b'r' | b'n'))
}

/// The value nginx builds from a token's bytes: `\"`, `\'` and `\\` lose
/// their backslash, `\t`, `\r`, `\n` become control characters, every other
/// backslash stays.
pub(crate) fn unescape(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len());
    let mut i = 0;
    while i < content.len() {
        let b = content[i];
        if b == b'\\' {
            match content.get(i + 1) {
                Some(&c @ (b'"' | b'\'' | b'\\')) => {
                    out.push(c);
                    i += 2;
                    continue;
                }
                Some(b't') => {
                    out.push(b'\t');
                    i += 2;
                    continue;
                }
                Some(b'r') => {
                    out.push(b'\r');
                    i += 2;
                    continue;
                }
                Some(b'n') => {
                    out.push(b'\n');
                    i += 2;
                    continue;
                }
                _ => {}
            }
        }
        out.push(b);
        i += 1;
    }
    out
}
