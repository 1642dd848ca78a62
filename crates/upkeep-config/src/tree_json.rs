//! `upkeep parse --format json`: upkeep's own, lossless view of a loaded
//! configuration. Unlike crossplane's format it gives each word's value as
//! nginx sees it (escapes resolved), the raw token and its quoting, exact
//! positions (line, column, end), and comments.
//!
//! Schema 1:
//! `{"schema": 1, "status": "ok"|"failed", "errors": [error], "warnings":
//! [error], "main": 0, "prefix": "…", "context": "main", "files": [{"id",
//! "path", "nodes": [node]}]}` where a node is `{"type": "directive",
//! "line", "column", "name": word, "args": [word], "block"?: [node],
//! "lua"?: "…", "includes"?: [file id], "comments"?: [comment], "end_line",
//! "end_column"}` (the end is just past the `;` or `}`) or a comment `{"type": "comment", "text",
//! "line", "column"}`; a word is `{"value", "raw", "quote":
//! "bare"|"single"|"double", "line", "column"}`; an error is `{"file",
//! "line", "column", "message"}` (`line`/`column` null when there is no
//! place). Text that is not UTF-8 is shown with U+FFFD.

use crate::json::JsonWriter;
use crate::{ConfigSet, LoadError};
use upkeep_syntax::{Comment, Directive, Node, QuoteStyle, SourceFile, Span, Word};

pub fn upkeep_json(result: &Result<ConfigSet, LoadError>, indent: Option<usize>) -> String {
    let mut w = JsonWriter::new(indent);
    w.begin_object();
    w.key("schema");
    w.number(1);
    match result {
        Err(err) => {
            w.key("status");
            w.string("failed");
            w.key("errors");
            w.begin_array();
            w.begin_object();
            w.key("file");
            w.string(&err.path);
            w.key("line");
            opt_number(&mut w, err.pos.map(|p| p.line));
            w.key("column");
            opt_number(&mut w, err.pos.map(|p| p.col));
            w.key("message");
            w.string(&err.message);
            w.end_object();
            w.end_array();
            w.key("warnings");
            w.begin_array();
            w.end_array();
            w.key("files");
            w.begin_array();
            w.end_array();
        }
        Ok(set) => {
            w.key("status");
            w.string("ok");
            w.key("errors");
            w.begin_array();
            w.end_array();
            w.key("warnings");
            w.begin_array();
            for wn in &set.warnings {
                w.begin_object();
                w.key("file");
                w.string(&wn.path);
                w.key("line");
                w.number(wn.pos.line as u64);
                w.key("column");
                w.number(wn.pos.col as u64);
                w.key("message");
                w.string(&wn.message);
                w.end_object();
            }
            w.end_array();
            w.key("main");
            w.number(set.main.0 as u64);
            w.key("prefix");
            w.string(&set.prefix);
            w.key("context");
            w.string(set.context.name());
            w.key("files");
            w.begin_array();
            for file in &set.files {
                w.begin_object();
                w.key("id");
                w.number(file.id.0 as u64);
                w.key("path");
                w.string(&file.path);
                w.key("nodes");
                let out = Out::new(set, file);
                out.nodes(&mut w, &set.tree(file.id).nodes);
                w.end_object();
            }
            w.end_array();
        }
    }
    w.end_object();
    w.finish()
}

fn opt_number(w: &mut JsonWriter, n: Option<u32>) {
    match n {
        Some(n) => w.number(n as u64),
        None => w.null(),
    }
}

struct Out<'a> {
    set: &'a ConfigSet,
    file: &'a SourceFile,
    cursor: std::cell::RefCell<Cursor>,
}

/// Line and column lookups walk forward from the previous one: the tree is
/// written in source order, so a whole file costs one pass even when it is
/// one enormous line (`SourceFile::line_col` rescans the line each time).
#[derive(Default)]
struct Cursor {
    offset: u32,
    line: u32,
    col: u32,
    line_is_utf8: bool,
}

impl<'a> Out<'a> {
    fn new(set: &'a ConfigSet, file: &'a SourceFile) -> Self {
        Out {
            set,
            file,
            cursor: std::cell::RefCell::new(Cursor::default()),
        }
    }

    fn text(&self, span: Span) -> String {
        String::from_utf8_lossy(self.file.slice(span)).into_owned()
    }

    fn line_col(&self, offset: u32) -> (u32, u32) {
        let mut c = self.cursor.borrow_mut();
        let line = self.file.line_of(offset);
        if c.line != line || offset < c.offset {
            let start = self.file.line_start(line);
            c.line = line;
            c.offset = start;
            c.col = 1;
            c.line_is_utf8 = std::str::from_utf8(self.file.line_bytes(line)).is_ok();
        }
        let between = &self.file.text[c.offset as usize..offset as usize];
        c.col += if c.line_is_utf8 {
            between.iter().filter(|&&b| (b as i8) >= -0x40).count() as u32
        } else {
            between.len() as u32
        };
        c.offset = offset;
        (c.line, c.col)
    }

    fn position(&self, w: &mut JsonWriter, span: Span) {
        let (line, col) = self.line_col(span.start);
        w.key("line");
        w.number(line as u64);
        w.key("column");
        w.number(col as u64);
    }

    fn end_position(&self, w: &mut JsonWriter, span: Span) {
        let (line, col) = self.line_col(span.end);
        w.key("end_line");
        w.number(line as u64);
        w.key("end_column");
        w.number(col as u64);
    }

    fn nodes(&self, w: &mut JsonWriter, nodes: &[Node]) {
        w.begin_array();
        for node in nodes {
            match node {
                Node::Comment(c) => self.comment(w, c),
                Node::Directive(d) => self.directive(w, d),
            }
        }
        w.end_array();
    }

    fn comment(&self, w: &mut JsonWriter, c: &Comment) {
        w.begin_object();
        w.key("type");
        w.string("comment");
        w.key("text");
        w.string(&self.text(c.span));
        self.position(w, c.span);
        w.end_object();
    }

    fn word(&self, w: &mut JsonWriter, word: Word<'_>) {
        w.begin_object();
        w.key("value");
        w.string(&word.text());
        w.key("raw");
        w.string(&self.text(word.span()));
        w.key("quote");
        w.string(match word.quote() {
            QuoteStyle::Bare => "bare",
            QuoteStyle::Single => "single",
            QuoteStyle::Double => "double",
        });
        self.position(w, word.span());
        w.end_object();
    }

    fn directive(&self, w: &mut JsonWriter, d: &Directive) {
        w.begin_object();
        w.key("type");
        w.string("directive");
        self.position(w, d.span());
        w.key("name");
        self.word(w, d.name());
        w.key("args");
        w.begin_array();
        for a in d.args() {
            self.word(w, a);
        }
        w.end_array();
        if let Some(b) = d.block() {
            match b.verbatim() {
                Some(body) => {
                    w.key("lua");
                    w.string(&self.text(body));
                }
                None => {
                    w.key("block");
                    self.nodes(w, &b.nodes);
                }
            }
        }
        if d.name_is("include") && self.set.includes.contains_key(&d.span()) {
            w.key("includes");
            w.begin_array();
            for id in self.set.included(d) {
                w.number(id.0 as u64);
            }
            w.end_array();
        }
        if !d.inner_comments().is_empty() {
            w.key("comments");
            w.begin_array();
            for c in d.inner_comments() {
                self.comment(w, c);
            }
            w.end_array();
        }
        self.end_position(w, d.span());
        w.end_object();
    }
}
