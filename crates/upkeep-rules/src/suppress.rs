//! `# upkeep: ignore RULE reason` comments.
//!
//! The comment sits on the line before a directive or block (or at the end
//! of a directive's own line) and suppresses the named rules' findings whose
//! primary place lies inside that directive or block. An ignore that
//! suppresses nothing is reported (X001), so stale ones do not pile up.

use std::collections::HashSet;

use upkeep_diag::Finding;
use upkeep_syntax::{Directive, Node, Span};

use crate::backends::upkeep_directive;
use crate::context::{CommentProblem, Ctx};

#[derive(Clone, Debug)]
pub struct Suppression {
    pub comment: Span,
    /// Rule IDs (normalised).
    pub rules: Vec<&'static str>,
    /// What the comment covers: the directive, plus the whole of every file
    /// that an `include` inside it (or the directive itself, if it is one)
    /// brings in.
    pub ranges: Vec<Span>,
    pub used: bool,
}

/// Finds every ignore comment in every loaded file.
pub fn collect(ctx: &Ctx, problems: &mut Vec<CommentProblem>) -> Vec<Suppression> {
    let mut out = Vec::new();
    // Comments that sit in an upstream block, where `# upkeep: backend`
    // belongs. A set: a large config has thousands of upstreams, each with
    // such a comment.
    let in_upstreams: HashSet<Span> = ctx
        .model
        .upstreams
        .iter()
        .flat_map(|u| u.comments.iter().map(|c| c.span))
        .collect();
    for (_, tree) in ctx.model.source.trees() {
        walk(ctx, &tree.nodes, &in_upstreams, &mut out, problems);
    }
    out
}

fn walk(
    ctx: &Ctx,
    nodes: &[Node],
    in_upstreams: &HashSet<Span>,
    out: &mut Vec<Suppression>,
    problems: &mut Vec<CommentProblem>,
) {
    for (i, node) in nodes.iter().enumerate() {
        match node {
            Node::Directive(d) => {
                if let Some(body) = d.block() {
                    walk(ctx, &body.nodes, in_upstreams, out, problems);
                }
            }
            Node::Comment(c) => {
                let text = ctx.text(c.span);
                let Some(rest) = upkeep_directive(&text) else {
                    continue;
                };
                let keyword = rest.split_whitespace().next().unwrap_or("");
                if keyword == "backend" {
                    // Read with the upstream it sits in (backends.rs); here
                    // only a misplaced one is reported.
                    if !in_upstreams.contains(&c.span) {
                        problems.push(CommentProblem {
                            span: c.span,
                            message: "`# upkeep: backend` works only inside an upstream block; here it declares nothing".into(),
                        });
                    }
                    continue;
                }
                if keyword != "ignore" {
                    problems.push(CommentProblem {
                        span: c.span,
                        message: format!(
                            "unknown upkeep comment `{keyword}`: expected `# upkeep: ignore RULE reason` or `# upkeep: backend …`"
                        ),
                    });
                    continue;
                }
                let spec = &rest["ignore".len()..];
                let rules = match parse_rules(spec) {
                    Ok(r) => r,
                    Err(message) => {
                        problems.push(CommentProblem {
                            span: c.span,
                            message,
                        });
                        continue;
                    }
                };
                match target(ctx, nodes, i) {
                    Some(d) => out.push(Suppression {
                        comment: c.span,
                        rules,
                        ranges: covered(ctx, d),
                        used: false,
                    }),
                    None => problems.push(CommentProblem {
                        span: c.span,
                        message: "this ignore comment is not followed by a directive or block to apply to".into(),
                    }),
                }
            }
        }
    }
}

/// `U003 U004 reason…` or `U003,U004: reason`: rule IDs or names up to the
/// first word that is neither.
fn parse_rules(spec: &str) -> Result<Vec<&'static str>, String> {
    let mut rules = Vec::new();
    for word in spec.split(|c: char| c.is_whitespace() || c == ',') {
        let word = word.trim_end_matches(':');
        if word.is_empty() {
            continue;
        }
        match crate::rule(word) {
            Some(r) => rules.push(r.id),
            None if looks_like_rule_id(word) => {
                return Err(format!(
                    "unknown rule {word:?} in ignore comment (see `upkeep rules`)"
                ))
            }
            None => break,
        }
    }
    if rules.is_empty() {
        return Err("ignore comment names no rule: write `# upkeep: ignore U003 reason`".into());
    }
    Ok(rules)
}

fn looks_like_rule_id(word: &str) -> bool {
    let b = word.as_bytes();
    b.len() == 4 && b[0].is_ascii_alphabetic() && b[1..].iter().all(u8::is_ascii_digit)
}

/// The directive the comment at `nodes[i]` applies to: the previous directive
/// when the comment trails it on the same line, else the next directive.
fn target<'n>(ctx: &Ctx, nodes: &'n [Node], i: usize) -> Option<&'n Directive> {
    let comment = nodes[i].span();
    let file = ctx.file(comment);
    let comment_line = file.line_col(comment.start).line;
    if let Some(Node::Directive(prev)) = i.checked_sub(1).map(|p| &nodes[p]) {
        if file.line_col(prev.span().end).line == comment_line {
            return Some(prev);
        }
    }
    nodes[i + 1..].iter().find_map(|n| match n {
        Node::Directive(d) => Some(d),
        Node::Comment(_) => None,
    })
}

/// The directive's own span and every file its includes bring in.
fn covered(ctx: &Ctx, d: &Directive) -> Vec<Span> {
    let mut spans = vec![d.span()];
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![d];
    let mut files = Vec::new();
    // Include directives inside `d` (or `d` itself).
    while let Some(x) = stack.pop() {
        if x.name_is("include") {
            files.extend(ctx.model.source.included_files(x));
        }
        stack.extend(x.children());
    }
    while let Some(f) = files.pop() {
        if !seen.insert(f) {
            continue;
        }
        let trees = ctx.model.source.trees();
        let Some((file, tree)) = trees.iter().find(|(file, _)| file.id == f) else {
            continue;
        };
        spans.push(Span::new(f, 0, file.text.len() as u32));
        let mut stack: Vec<&Directive> = tree.directives().collect();
        while let Some(x) = stack.pop() {
            if x.name_is("include") {
                files.extend(ctx.model.source.included_files(x));
            }
            stack.extend(x.children());
        }
    }
    spans
}

/// Whether `finding` is covered by `s`.
pub fn covers(s: &Suppression, finding: &Finding) -> bool {
    let Some(p) = finding.primary else {
        return false;
    };
    s.rules.contains(&finding.rule)
        && s.ranges
            .iter()
            .any(|r| p.file == r.file && p.start >= r.start && p.end <= r.end)
}
