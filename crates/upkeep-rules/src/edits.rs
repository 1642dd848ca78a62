//! Text edits that add, change or remove directives while keeping the
//! neighbours' indentation, quoting and line endings.

use upkeep_diag::{Applicability, Edit, Finding, Fix};
use upkeep_model::{BlockId, RouteId};
use upkeep_syntax::{Directive, Node, SourceFile, Span};

use crate::context::Ctx;

/// Leading whitespace of the line that contains `offset`.
pub fn indent_at(file: &SourceFile, offset: u32) -> String {
    let line = file.line_col(offset).line;
    let bytes = file.line_bytes(line);
    let n = bytes
        .iter()
        .take_while(|b| **b == b' ' || **b == b'\t')
        .count();
    String::from_utf8_lossy(&bytes[..n]).into_owned()
}

/// The line ending the file uses, judged by its first line (looking at one
/// line keeps this cheap on large files).
pub fn eol(file: &SourceFile) -> &'static str {
    match file.text.iter().position(|b| *b == b'\n') {
        Some(i) if i > 0 && file.text[i - 1] == b'\r' => "\r\n",
        _ => "\n",
    }
}

/// One level of indentation as the file writes it (a tab, or N spaces),
/// guessed from the first indented line; four spaces when nothing is indented.
pub fn indent_unit(file: &SourceFile) -> String {
    for line in file.text.split(|b| *b == b'\n') {
        match line.first() {
            Some(b'\t') => return "\t".into(),
            Some(b' ') => {
                let n = line.iter().take_while(|b| **b == b' ').count();
                if line.get(n).is_some_and(|b| !b.is_ascii_whitespace()) {
                    return " ".repeat(n.min(8));
                }
            }
            _ => {}
        }
    }
    "    ".into()
}

/// Whether only whitespace precedes `offset` on its line.
fn first_on_line(file: &SourceFile, offset: u32) -> bool {
    let line_start = file.line_start(file.line_col(offset).line) as usize;
    file.text[line_start..offset as usize]
        .iter()
        .all(|b| *b == b' ' || *b == b'\t')
}

/// Byte offset just after the end of the line containing `offset`
/// (after its `\n`), or the end of the file.
fn next_line_start(file: &SourceFile, offset: u32) -> Option<u32> {
    file.text[offset as usize..]
        .iter()
        .position(|b| *b == b'\n')
        .map(|i| offset + i as u32 + 1)
}

/// Whether the rest of the line after `offset` is blank or a comment.
fn rest_of_line_is_trivia(file: &SourceFile, offset: u32) -> bool {
    let rest = &file.text[offset as usize..];
    let end = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
    let tail = String::from_utf8_lossy(&rest[..end]);
    let tail = tail.trim();
    tail.is_empty() || tail.starts_with('#')
}

/// Inserts `text` (a complete directive such as `keepalive 32;`) as a new
/// line after `after`, indented like it. When `after` shares its line with
/// other code, the text goes right after it on the same line.
pub fn insert_after(ctx: &Ctx, after: &Directive, text: &str) -> Edit {
    let file = ctx.file(after.span());
    let end = after.span().end;
    if first_on_line(file, after.span().start) && rest_of_line_is_trivia(file, end) {
        let indent = indent_at(file, after.span().start);
        return match next_line_start(file, end) {
            Some(at) => Edit::insert(
                Span::new(after.span().file, at, at),
                format!("{indent}{text}{}", eol(file)),
            ),
            None => Edit::insert(
                Span::new(
                    after.span().file,
                    file.text.len() as u32,
                    file.text.len() as u32,
                ),
                format!("{}{indent}{text}", eol(file)),
            ),
        };
    }
    Edit::insert(Span::new(after.span().file, end, end), format!(" {text}"))
}

/// Inserts `text` before `before`, on a line of its own when `before` starts
/// its line.
pub fn insert_before(ctx: &Ctx, before: &Directive, text: &str) -> Edit {
    let file = ctx.file(before.span());
    let start = before.span().start;
    if first_on_line(file, start) {
        let line_start = file.line_start(file.line_col(start).line);
        let indent = indent_at(file, start);
        return Edit::insert(
            Span::new(before.span().file, line_start, line_start),
            format!("{indent}{text}{}", eol(file)),
        );
    }
    Edit::insert(
        Span::new(before.span().file, start, start),
        format!("{text} "),
    )
}

/// The directives written directly in a block's own text (not those an
/// `include` brings in from another file).
pub fn own_directives<'a>(ctx: &Ctx<'_, 'a>, block: BlockId) -> Vec<&'a Directive> {
    let b = ctx.model.block(block);
    let nodes: &'a [Node] = match b.directive {
        Some(d) => match &d.block() {
            Some(body) => &body.nodes,
            None => return Vec::new(),
        },
        None => ctx.model.source.root_nodes(),
    };
    nodes.iter().filter_map(Node::as_directive).collect()
}

/// Inserts `text` into `block`: after the last of its own directives that
/// `prefer` accepts, else before its first directive, else inside the empty
/// braces. For the main context (no braces) it goes at the top of the file.
pub fn insert_in_block(
    ctx: &Ctx,
    block: BlockId,
    text: &str,
    prefer: impl Fn(&Directive) -> bool,
) -> Option<Edit> {
    let own = own_directives(ctx, block);
    if let Some(anchor) = own.iter().rev().find(|d| prefer(d)) {
        return Some(insert_after(ctx, anchor, text));
    }
    if let Some(first) = own.first() {
        return Some(insert_before(ctx, first, text));
    }
    let b = ctx.model.block(block);
    match b.directive {
        Some(d) => {
            let body = d.block()?;
            let file = ctx.file(body.open());
            let open_line = file.line_col(body.open().start).line;
            let close_line = file.line_col(body.close().start).line;
            if open_line == close_line || !rest_of_line_is_trivia(file, body.open().end) {
                Some(Edit::insert(
                    Span::new(body.open().file, body.open().end, body.open().end),
                    format!(" {text} "),
                ))
            } else {
                let at = next_line_start(file, body.open().end)?;
                let indent = format!("{}{}", indent_at(file, d.span().start), indent_unit(file));
                Some(Edit::insert(
                    Span::new(body.open().file, at, at),
                    format!("{indent}{text}{}", eol(file)),
                ))
            }
        }
        None => {
            // The main file, empty of directives: write at its start.
            let trees = ctx.model.source.trees();
            let (file, _) = trees.first()?;
            Some(Edit::insert(
                Span::new(file.id, 0, 0),
                format!("{text}{}", eol(file)),
            ))
        }
    }
}

/// Removes a directive; a directive alone on its line takes the whole line
/// with it.
pub fn delete_directive(ctx: &Ctx, d: &Directive) -> Edit {
    let file = ctx.file(d.span());
    if first_on_line(file, d.span().start) && rest_of_line_is_trivia(file, d.span().end) {
        let start = file.line_start(file.line_col(d.span().start).line);
        let end = next_line_start(file, d.span().end).unwrap_or(file.text.len() as u32);
        return Edit::delete(Span::new(d.span().file, start, end));
    }
    // Also take the whitespace before it so no double space is left.
    let mut start = d.span().start;
    while start > 0 && matches!(file.text[start as usize - 1], b' ' | b'\t') {
        start -= 1;
    }
    Edit::delete(Span::new(d.span().file, start, d.span().end))
}

/// Replaces all arguments of `d` with `args` (written as given).
pub fn replace_args(d: &Directive, args: &str) -> Edit {
    match (d.args().first(), d.args().last()) {
        (Some(first), Some(last)) => Edit::replace(
            Span::new(d.span().file, first.span().start, last.span().end),
            args,
        ),
        _ => Edit::insert(
            Span::new(d.span().file, d.name().span().end, d.name().span().end),
            format!(" {args}"),
        ),
    }
}

/// Replaces one argument word.
pub fn replace_arg(d: &Directive, index: usize, value: &str) -> Option<Edit> {
    d.args().get(index).map(|w| Edit::replace(w.span(), value))
}

/// The http level where a directive with contexts "http, server, location"
/// can be written for `block`: the block itself, or the nearest enclosing
/// one when `block` is an `if` or `limit_except`.
pub fn writable_level(ctx: &Ctx, block: BlockId) -> Option<BlockId> {
    ctx.model
        .ancestors(block)
        .find(|&b| ctx.model.block(b).kind.accepts_http_server_location())
}

/// The narrowest block covering all `blocks` where an http/server/location
/// directive can be written.
pub fn covering_level(ctx: &Ctx, blocks: &[BlockId]) -> Option<BlockId> {
    let common = ctx.model.common_ancestor(blocks)?;
    writable_level(ctx, common)
}

/// Like [`insert_in_block`] for several directives, one per line (or side
/// by side when the block is written on one line).
pub fn insert_lines_in_block(
    ctx: &Ctx,
    block: BlockId,
    lines: &[String],
    prefer: impl Fn(&Directive) -> bool,
) -> Option<Edit> {
    const MARK: &str = "\u{0}upkeep-insert\u{0}";
    let mut edit = insert_in_block(ctx, block, MARK, prefer)?;
    let at = edit.content.find(MARK)?;
    let before = edit.content[..at].to_string();
    let after = edit.content[at + MARK.len()..].to_string();
    let joined = if before.trim_matches([' ', '\t']).is_empty() && after.ends_with('\n') {
        // One line per directive: `before` is the indentation.
        let eol = if after.ends_with("\r\n") {
            "\r\n"
        } else {
            "\n"
        };
        lines.join(&format!("{eol}{before}"))
    } else {
        lines.join(" ")
    };
    edit.content = format!("{before}{joined}{after}");
    Some(edit)
}

/// One directive added to one block as the shared fix of several findings:
/// rules that find the same missing setting on many routes write it once, at
/// a level that covers them all, and offer that edit on every finding.
pub struct SharedInsert {
    /// The block that receives the directive.
    pub level: BlockId,
    text: String,
    edit: Edit,
}

impl SharedInsert {
    /// Writes `text` in `level`, placed as [`insert_in_block`] places it.
    pub fn in_block(
        ctx: &Ctx,
        level: BlockId,
        text: &str,
        prefer: impl Fn(&Directive) -> bool,
    ) -> Option<Self> {
        let edit = insert_in_block(ctx, level, text, prefer)?;
        Some(SharedInsert {
            level,
            text: text.to_string(),
            edit,
        })
    }

    /// Writes `text` in the narrowest writable block that covers every one
    /// of `routes` (see [`covering_level`]).
    pub fn covering_routes(
        ctx: &Ctx,
        routes: &[RouteId],
        text: &str,
        prefer: impl Fn(&Directive) -> bool,
    ) -> Option<Self> {
        let blocks: Vec<_> = routes.iter().map(|&r| ctx.model.route(r).block).collect();
        let level = covering_level(ctx, &blocks)?;
        Self::in_block(ctx, level, text, prefer)
    }

    /// `finding` with "add `text` to <level>" as its help and as its safe fix.
    pub fn offer(&self, ctx: &Ctx, finding: Finding) -> Finding {
        let action = format!("add `{}` to {}", self.text, ctx.describe(self.level));
        finding.help(action.clone()).with_fix(Fix {
            applicability: Applicability::Safe,
            description: action,
            edits: vec![self.edit.clone()],
        })
    }
}
