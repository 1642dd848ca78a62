//! Printing a tree back to bytes.
//!
//! The printer does not copy the file: it walks the tree's tokens in order
//! and copies each token's bytes and the trivia (whitespace) before it. A
//! tree that lost or misplaced a token therefore prints differently from its
//! input, which is what the round-trip tests rely on.

use crate::{Directive, Node, SourceFile, Span, SyntaxTree};

/// The bytes of `file` rebuilt from `tree`.
pub fn print(tree: &SyntaxTree, file: &SourceFile) -> Vec<u8> {
    let text = &file.text;
    let mut out = Vec::with_capacity(text.len());
    let mut cursor = 0usize;
    for_each_token(tree, |span| {
        let start = (span.start as usize).clamp(cursor, text.len());
        out.extend_from_slice(&text[cursor..start]);
        out.extend_from_slice(&text[start..(span.end as usize).clamp(start, text.len())]);
        cursor = (span.end as usize).clamp(start, text.len());
    });
    let end = (tree.len as usize).clamp(cursor, text.len());
    out.extend_from_slice(&text[cursor..end]);
    out
}

/// Calls `f` with the span of every token of the tree in source order:
/// directive names and arguments, comments, `;`, `{`, `}`, and the verbatim
/// body of a Lua block as one span. Whatever lies between two consecutive
/// spans is trivia (whitespace).
pub fn for_each_token(tree: &SyntaxTree, mut f: impl FnMut(Span)) {
    for node in &tree.nodes {
        node_tokens(node, &mut f);
    }
}

fn node_tokens(node: &Node, f: &mut impl FnMut(Span)) {
    match node {
        Node::Comment(c) => f(c.span),
        Node::Directive(d) => directive_tokens(d, f),
    }
}

fn directive_tokens(d: &Directive, f: &mut impl FnMut(Span)) {
    f(d.name().span());
    // Arguments and the comments between them, merged by position.
    let mut comments = d.inner_comments().iter().peekable();
    for arg in d.args() {
        while let Some(c) = comments.next_if(|c| c.span.start < arg.span().start) {
            f(c.span);
        }
        f(arg.span());
    }
    for c in comments {
        f(c.span);
    }
    if let Some(semi) = d.semicolon() {
        f(semi);
    }
    if let Some(block) = d.block() {
        f(block.open());
        match block.verbatim() {
            Some(body) => f(body),
            None => {
                for node in &block.nodes {
                    node_tokens(node, f);
                }
            }
        }
        f(block.close());
    }
}
