//! Lossless syntax for nginx configuration files.
//!
//! The tokenizer follows nginx's own rules (`src/core/ngx_conf_file.c`,
//! `ngx_conf_read_token`), so what nginx accepts, this accepts, and what nginx
//! rejects is reported as a [`SyntaxError`] with its exact place.
//!
//! The tree never owns a rewritten copy of the text: every node records byte
//! spans into the original [`SourceFile`], and the bytes *between* tokens
//! (whitespace, comments, line endings) are kept as trivia spans. Printing a
//! tree ([`print`]) concatenates those spans and gives back the input byte for
//! byte, which is what lets `upkeep fix` edit a file without reformatting it.
//!
//! This crate does no I/O, so it also builds for `wasm32-unknown-unknown`.

mod source;
mod tree;

pub use source::{FileId, LineCol, SourceFile, SourceMap, Span};
pub use tree::{Block, Comment, Directive, Node, QuoteStyle, SyntaxTree, Word};
