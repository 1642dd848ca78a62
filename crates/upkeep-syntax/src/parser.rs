//! From tokens to the tree: nginx's `ngx_conf_parse` loop, without the
//! directive handlers (those belong to the model, not to syntax).
//!
//! Blocks are kept on an explicit stack, so nesting depth costs heap, not
//! call stack. Depth is still capped at [`MAX_DEPTH`] because everything
//! that later walks the tree (dropping it, too) is recursive.

use crate::lexer::{unescape, unescape_changes, Lexer, Token};
use crate::lua::{is_lua_block_directive, scan_block};
use crate::tree::{RawWord, WordSource, MAX_WORD_LEN};
use crate::{
    Block, Comment, Directive, FileId, InnerComments, Node, QuoteStyle, SourceFile, Span,
    SyntaxError, SyntaxTree,
};
use std::sync::Arc;

/// Deepest block nesting accepted. nginx itself has no limit, but no real
/// configuration comes near this (http > server > location > nested
/// locations > if is 5 or 6).
pub const MAX_DEPTH: usize = 256;

const EXPECT_DIRECTIVE: &str = "a directive name";

/// A block directive whose `{` has been read and whose `}` has not.
struct OpenBlock {
    source: Arc<WordSource>,
    name: RawWord,
    args: Box<[RawWord]>,
    inner_comments: InnerComments,
    open: Span,
    /// Where this block's children start in the parser's node stack.
    first_child: usize,
}

/// Parse one file. The tree covers every byte: tokens and comments are
/// nodes, the rest is whitespace between them.
pub fn parse(file: &SourceFile) -> Result<SyntaxTree, SyntaxError> {
    Parser {
        lexer: Lexer::new(&file.text, file.id),
        file: file.id,
        words: Vec::new(),
        values: Vec::new(),
        comments: Vec::new(),
        name_is_lua_block: false,
        shared: WordSource::shared(file.id, &file.text),
    }
    .run()
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    file: FileId,
    /// The words of the directive being read (name first).
    words: Vec<RawWord>,
    /// The values of its words whose value is not their bytes (escapes
    /// resolved), by offset.
    values: Vec<(u32, Box<[u8]>)>,
    /// Comments met between its name and its terminator.
    comments: Vec<Comment>,
    /// The name of the directive being read ends in `_by_lua_block`.
    name_is_lua_block: bool,
    /// What the words of the file's directives without escapes read
    /// their values from (its text).
    shared: Arc<WordSource>,
}

impl Parser<'_> {
    fn span(&self, start: u32, end: u32) -> Span {
        Span::new(self.file, start, end)
    }

    fn run(mut self) -> Result<SyntaxTree, SyntaxError> {
        // Finished nodes of the file and of every open block, innermost
        // last; a block's children move into an exact-size Vec when it
        // closes, so no Vec of the tree carries spare capacity.
        let mut nodes: Vec<Node> = Vec::new();
        let mut open: Vec<OpenBlock> = Vec::new();
        loop {
            match self.lexer.next_token()? {
                Token::Word {
                    raw,
                    content,
                    quote,
                    escapes,
                } => {
                    if raw.1 - raw.0 > MAX_WORD_LEN {
                        // The lexer ends every token within nginx's 4 KiB
                        // buffer; a longer one would not fit a stored word.
                        return Err(SyntaxError::new(
                            self.span(raw.0, raw.1),
                            "too long parameter",
                            &[],
                        ));
                    }
                    let bytes = &self.lexer.text()[content.0 as usize..content.1 as usize];
                    // The value is the token's bytes inside its quotes,
                    // read from the file's text, unless escapes change it.
                    let quotes = u32::from(quote != QuoteStyle::Bare);
                    let changed = escapes && unescape_changes(bytes);
                    let own_value = changed || content != (raw.0 + quotes, raw.1 - quotes);
                    if self.words.is_empty() {
                        self.name_is_lua_block = if own_value {
                            is_lua_block_directive(&unescape(bytes))
                        } else {
                            is_lua_block_directive(bytes)
                        };
                    }
                    if own_value {
                        let value = unescape(bytes).into_boxed_slice();
                        self.values.push((raw.0, value));
                    }
                    self.words
                        .push(RawWord::new(raw.0, raw.1, quote, own_value));
                }
                Token::Comment(start, end) => {
                    let comment = Comment {
                        span: self.span(start, end),
                    };
                    if self.words.is_empty() {
                        nodes.push(Node::Comment(comment));
                    } else {
                        self.comments.push(comment);
                    }
                }
                Token::Semicolon(at) => {
                    let semicolon = self.span(at, at + 1);
                    let (source, inner_comments) = self.take_directive(semicolon)?;
                    nodes.push(Node::Directive(Directive::new(
                        source,
                        self.words[0],
                        &self.words[1..],
                        inner_comments,
                        None,
                        semicolon.end,
                    )));
                    self.words.clear();
                }
                Token::BlockOpen(at) => {
                    let brace = self.span(at, at + 1);
                    let (source, inner_comments) = self.take_directive(brace)?;
                    let name = self.words[0];
                    let args: Box<[RawWord]> = self.words.drain(..).skip(1).collect();
                    if self.name_is_lua_block {
                        let text = self.lexer.text();
                        let close = scan_block(text, self.file, at as usize, self.lexer.buffer())?;
                        let close_span = self.span(close as u32, close as u32 + 1);
                        self.lexer.resume_at(close + 1);
                        let block = Block::new(self.file, at, Vec::new(), close as u32, true);
                        nodes.push(Node::Directive(Directive::new(
                            source,
                            name,
                            &args,
                            inner_comments,
                            Some(block),
                            close_span.end,
                        )));
                        continue;
                    }
                    if open.len() >= MAX_DEPTH {
                        return Err(SyntaxError::new(
                            brace,
                            format!("blocks nested more than {MAX_DEPTH} levels deep"),
                            &[],
                        ));
                    }
                    open.push(OpenBlock {
                        source,
                        name,
                        args,
                        inner_comments,
                        open: brace,
                        first_child: nodes.len(),
                    });
                }
                Token::BlockClose(at) => {
                    let brace = self.span(at, at + 1);
                    if !self.words.is_empty() {
                        return Err(SyntaxError::new(
                            brace,
                            "unexpected \"}\"",
                            &["\";\"", "\"{\""],
                        ));
                    }
                    let Some(b) = open.pop() else {
                        return Err(SyntaxError::new(
                            brace,
                            "unexpected \"}\"",
                            &[EXPECT_DIRECTIVE, "end of file"],
                        ));
                    };
                    let block = Block::new(
                        self.file,
                        b.open.start,
                        nodes.split_off(b.first_child),
                        at,
                        false,
                    );
                    let directive = Directive::new(
                        b.source,
                        b.name,
                        &b.args,
                        b.inner_comments,
                        Some(block),
                        brace.end,
                    );
                    nodes.push(Node::Directive(directive));
                }
                Token::Eof => {
                    let len = self.lexer.text().len() as u32;
                    let eof = self.span(len, len);
                    if !self.words.is_empty() {
                        return Err(SyntaxError::new(
                            eof,
                            "unexpected end of file",
                            &["\";\"", "\"}\""],
                        ));
                    }
                    if !open.is_empty() {
                        return Err(SyntaxError::new(eof, "unexpected end of file", &["\"}\""]));
                    }
                    nodes.shrink_to_fit();
                    return Ok(SyntaxTree {
                        file: self.file,
                        nodes,
                        len,
                    });
                }
            }
        }
    }

    /// The source and the inner comments of the directive read so far,
    /// now that its terminator `at` has come; its words stay in
    /// `self.words` (name first) for the caller to store.
    fn take_directive(
        &mut self,
        at: Span,
    ) -> Result<(Arc<WordSource>, InnerComments), SyntaxError> {
        if self.words.is_empty() {
            let c = if at.len() == 1 && self.lexer.text()[at.start as usize] == b'{' {
                "{"
            } else {
                ";"
            };
            return Err(SyntaxError::new(
                at,
                format!("unexpected \"{c}\""),
                &[EXPECT_DIRECTIVE],
            ));
        }
        let source = if self.values.is_empty() {
            Arc::clone(&self.shared)
        } else {
            self.shared.with_values(std::mem::take(&mut self.values))
        };
        let comments: InnerComments = self.comments.drain(..).collect();
        Ok((source, comments))
    }
}
