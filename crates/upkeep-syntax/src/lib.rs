//! Lossless syntax for nginx configuration files.
//!
//! The tokenizer follows nginx's own rules (`src/core/ngx_conf_file.c`,
//! `ngx_conf_read_token`), so what nginx accepts, this accepts, and what nginx
//! rejects is reported as a [`SyntaxError`] with its exact place.
//!
//! The tree never owns a rewritten copy of the text: every node records byte
//! spans into the original [`SourceFile`], and the bytes *between* tokens
//! (whitespace, line endings) are trivia. Printing a tree ([`print`]) walks
//! the tokens and the trivia between them and gives back the input byte for
//! byte, which is what lets `upkeep fix` edit a file without reformatting it.
//!
//! This crate does no I/O, so it also builds for `wasm32-unknown-unknown`.

mod error;
mod lexer;
mod lua;
mod parser;
mod print;
mod source;
mod tree;

pub use error::SyntaxError;
pub use lua::is_lua_block_directive;
pub use parser::{parse, MAX_DEPTH};
pub use print::{for_each_token, print};
pub use source::{FileId, LineCol, SharedText, SourceFile, SourceMap, Span};
pub use tree::{
    Args, ArgsIter, Block, Comment, Directive, InnerComments, Node, QuoteStyle, SyntaxTree, Word,
};
