//! From tokens to the tree: nginx's `ngx_conf_parse` loop, without the
//! directive handlers (those belong to the model, not to syntax).
//!
//! Blocks are kept on an explicit stack, so nesting depth costs heap, not
//! call stack. Depth is still capped at [`MAX_DEPTH`] because everything
//! that later walks the tree (dropping it, too) is recursive.

use crate::lexer::{unescape, unescape_changes, Lexer, Token};
use crate::lua::{is_lua_block_directive, scan_block};
use crate::tree::WordSources;
use crate::{
    Block, Comment, Directive, FileId, InnerComments, Node, QuoteStyle, SourceFile, Span,
    SyntaxError, SyntaxTree, Word,
};

/// Deepest block nesting accepted. nginx itself has no limit, but no real
/// configuration comes near this (http > server > location > nested
/// locations > if is 5 or 6).
pub const MAX_DEPTH: usize = 256;

const EXPECT_DIRECTIVE: &str = "a directive name";

/// A block directive whose `{` has been read and whose `}` has not.
struct OpenBlock {
    name: Word,
    args: Box<[Word]>,
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
        comments: Vec::new(),
        name_is_lua_block: false,
        sources: WordSources::new(file.id, &file.text),
    }
    .run()
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    file: FileId,
    /// The words of the directive being read (name first).
    words: Vec<Word>,
    /// Comments met between its name and its terminator.
    comments: Vec<Comment>,
    /// The name of the directive being read ends in `_by_lua_block`.
    name_is_lua_block: bool,
    /// What the file's words share (its text among it).
    sources: WordSources,
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
                    let span = self.span(raw.0, raw.1);
                    let bytes = &self.lexer.text()[content.0 as usize..content.1 as usize];
                    // The value is the token's bytes inside its quotes,
                    // read from the file's text, unless escapes change it.
                    let quotes = u32::from(quote != QuoteStyle::Bare);
                    let changed = escapes && unescape_changes(bytes);
                    let word = if changed || content != (raw.0 + quotes, raw.1 - quotes) {
                        self.sources.word_with_value(unescape(bytes), span, quote)
                    } else {
                        self.sources.word(span, quote)
                    };
                    if self.words.is_empty() {
                        self.name_is_lua_block = is_lua_block_directive(word.value());
                    }
                    self.words.push(word);
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
                    let (name, args, inner_comments) = self.take_directive(semicolon)?;
                    nodes.push(Node::Directive(Directive::new(
                        name,
                        args,
                        inner_comments,
                        None,
                        semicolon.end,
                    )));
                }
                Token::BlockOpen(at) => {
                    let brace = self.span(at, at + 1);
                    let (name, args, inner_comments) = self.take_directive(brace)?;
                    if self.name_is_lua_block {
                        let text = self.lexer.text();
                        let close = scan_block(text, self.file, at as usize, self.lexer.buffer())?;
                        let close_span = self.span(close as u32, close as u32 + 1);
                        self.lexer.resume_at(close + 1);
                        let block = Block::new(self.file, at, Vec::new(), close as u32, true);
                        nodes.push(Node::Directive(Directive::new(
                            name,
                            args,
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
                    let directive =
                        Directive::new(b.name, b.args, b.inner_comments, Some(block), brace.end);
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

    /// The directive read so far, now that its terminator `at` has come.
    #[allow(clippy::type_complexity)]
    fn take_directive(
        &mut self,
        at: Span,
    ) -> Result<(Word, Box<[Word]>, InnerComments), SyntaxError> {
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
        // An exact-size argument list; the word buffer keeps its capacity.
        let args: Box<[Word]> = self.words.drain(1..).collect();
        let name = self.words.pop().expect("checked non-empty");
        let comments: InnerComments = self.comments.drain(..).collect();
        Ok((name, args, comments))
    }
}
