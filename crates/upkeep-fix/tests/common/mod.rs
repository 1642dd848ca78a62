//! A small checker for the fix engine's tests: real parsing (upkeep-syntax),
//! and a few toy rules whose fixes exercise merging, duplicates, overlaps,
//! fixes that break the parse and fixes that do not fix.

#![allow(dead_code)]

use std::collections::BTreeMap;
use upkeep_config::Loader;
use upkeep_diag::{Applicability, Edit, Finding, Fix, Severity};
use upkeep_fix::{Overlay, Round};
use upkeep_syntax::{parse, Directive, FileId, Node, SourceFile, SourceMap, Span, SyntaxError};

/// A loader that reads the fix engine's overlay first, as `upkeep fix`
/// does between rounds, and `base` for every file the overlay lacks.
pub struct Layered<'a, L> {
    pub top: &'a Overlay,
    pub base: &'a L,
}

impl<L: Loader> Loader for Layered<'_, L> {
    fn read(&self, path: &str) -> std::io::Result<Vec<u8>> {
        match self.top.get(path) {
            Some(t) => Ok(t.to_vec()),
            None => self.base.read(path),
        }
    }
    fn glob(&self, pattern: &str) -> std::io::Result<Vec<String>> {
        self.base.glob(pattern)
    }
}

pub struct Files(pub Vec<SourceFile>);

impl SourceMap for Files {
    fn get(&self, id: FileId) -> Option<&SourceFile> {
        self.0.get(id.0 as usize)
    }
}

/// Which toy rules run.
#[derive(Clone, Copy, Default)]
pub struct Toys {
    /// T001 `keepalive 32;` and T002 `keepalive_timeout 4s;`, both right after
    /// an upstream's `{` (they merge).
    pub upstream: bool,
    /// T003: `proxy_set_header Connection "";` in the server block, once per
    /// proxied location (identical edits).
    pub connection: bool,
    /// T004 and T005: two different replacements of `keepalive_timeout 0;`
    /// (they overlap).
    pub overlap: bool,
    /// T009: a fix that leaves an unbalanced `{`.
    pub breaks_parse: bool,
    /// T010: a fix that does not remove its finding.
    pub no_effect: bool,
}

/// Checks the in-memory `files` (path, text) as seen through `overlay`.
pub fn check(
    files: &[(&str, &str)],
    overlay: &Overlay,
    toys: Toys,
) -> Result<Round<Files>, SyntaxError> {
    let sources: Vec<SourceFile> = files
        .iter()
        .enumerate()
        .map(|(i, (path, text))| {
            let text = overlay
                .get(path)
                .map(<[u8]>::to_vec)
                .unwrap_or_else(|| text.as_bytes().to_vec());
            SourceFile::new(FileId(i as u32), *path, text)
        })
        .collect();
    let mut findings = Vec::new();
    for src in &sources {
        let tree = parse(src)?;
        walk(src, &tree.nodes, None, toys, &mut findings);
    }
    Ok(Round {
        sources: Files(sources),
        findings,
    })
}

pub fn checker(
    files: &'static [(&'static str, &'static str)],
    toys: Toys,
) -> impl FnMut(&Overlay) -> Result<Round<Files>, SyntaxError> {
    move |overlay| check(files, overlay, toys)
}

fn walk(
    src: &SourceFile,
    nodes: &[Node],
    parent: Option<&Directive>,
    toys: Toys,
    out: &mut Vec<Finding>,
) {
    for d in nodes.iter().filter_map(Node::as_directive) {
        let children: Vec<&Directive> = d.children().collect();
        let has = |name: &str| children.iter().any(|c| c.name_is(name));
        if let (true, Some(block)) = (d.name_is("upstream"), d.block()) {
            let open = block.open();
            let at = Span::new(open.file, open.end, open.end);
            let indent = child_indent(src, &children);
            if toys.upstream && !has("keepalive") {
                out.push(finding(
                    "T001",
                    "toy-keepalive",
                    d.span(),
                    at,
                    format!("\n{indent}keepalive 32;"),
                ));
            }
            if toys.upstream && !has("keepalive_timeout") {
                out.push(finding(
                    "T002",
                    "toy-keepalive-timeout",
                    d.span(),
                    at,
                    format!("\n{indent}keepalive_timeout 4s;"),
                ));
            }
            if toys.breaks_parse {
                out.push(finding(
                    "T009",
                    "toy-breaks-parse",
                    d.span(),
                    at,
                    "\n    location / {".to_string(),
                ));
            }
            if toys.no_effect {
                out.push(finding(
                    "T010",
                    "toy-no-effect",
                    d.span(),
                    at,
                    " # noted".to_string(),
                ));
            }
        }
        if d.name_is("location") && toys.connection && has("proxy_pass") {
            let server = parent.filter(|p| p.name_is("server"));
            let server_has = server.is_some_and(|s| {
                s.children().any(|c| {
                    c.name_is("proxy_set_header") && c.arg(0).is_some_and(|a| a.is("Connection"))
                })
            });
            if let (Some(server), false) = (server, server_has) {
                let open = server.block().unwrap().open();
                let at = Span::new(open.file, open.end, open.end);
                let indent = child_indent(src, &server.children().collect::<Vec<_>>());
                out.push(finding(
                    "T003",
                    "toy-connection",
                    d.span(),
                    at,
                    format!("\n{indent}proxy_set_header Connection \"\";"),
                ));
            }
        }
        if d.name_is("keepalive_timeout") && toys.overlap && d.arg(0).is_some_and(|a| a.is("0")) {
            out.push(finding(
                "T004",
                "toy-overlap-a",
                d.span(),
                d.span(),
                "keepalive_timeout 75s;".to_string(),
            ));
            out.push(finding(
                "T005",
                "toy-overlap-b",
                d.span(),
                d.span(),
                "keepalive_timeout 65s;".to_string(),
            ));
        }
        if let Some(block) = d.block() {
            walk(src, &block.nodes, Some(d), toys, out);
        }
    }
}

/// The indentation of the block's first child, or four spaces.
fn child_indent(src: &SourceFile, children: &[&Directive]) -> String {
    children
        .first()
        .map(|c| {
            let line = src.line_col(c.span().start).line;
            let bytes = src.line_bytes(line);
            let n = bytes
                .iter()
                .take_while(|b| **b == b' ' || **b == b'\t')
                .count();
            String::from_utf8_lossy(&bytes[..n]).into_owned()
        })
        .unwrap_or_else(|| "    ".into())
}

fn finding(
    rule: &'static str,
    name: &'static str,
    at: Span,
    edit_span: Span,
    content: String,
) -> Finding {
    // The message names no position: positions move between rounds.
    let edit = if edit_span.is_empty() {
        Edit::insert(edit_span, content)
    } else {
        Edit::replace(edit_span, content)
    };
    Finding::new(rule, name, Severity::Warning, format!("{name} here"))
        .at(at)
        .with_fix(Fix {
            applicability: Applicability::Safe,
            description: format!("fix {name}"),
            edits: vec![edit],
        })
}

/// `(path, text)` of every changed file, for assertions.
pub fn final_texts(run: &upkeep_fix::FixRun<Files>) -> BTreeMap<String, String> {
    run.changes()
        .map(|(p, _, new)| (p.to_string(), String::from_utf8(new.to_vec()).unwrap()))
        .collect()
}
