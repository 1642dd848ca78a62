//! `upkeep parse --format crossplane`: the JSON that `crossplane parse`
//! prints, so tooling built on crossplane (and OPA policies over it) can
//! consume upkeep's parse.
//!
//! crossplane's conventions, reproduced:
//! - argument text is the token as written, minus its quotes, with only an
//!   escaped quote of the same kind unescaped (`"a\"b\n"` → `a"b\n`);
//!   nginx's own value would also turn `\n` into a line feed;
//! - an `if`'s outer parentheses are removed from its first and last
//!   argument (and an argument left empty is dropped);
//! - a `*_by_lua_block` body is one more argument, not a block;
//! - comments between a directive's arguments follow the directive as
//!   `{"directive": "#", …}` entries with the directive's line; other
//!   comments only with `include_comments`;
//! - `config[]` lists each file once, in the order crossplane reaches them
//!   (the main file, then included files breadth first), and an `include`
//!   lists indexes into it;
//! - non-UTF-8 bytes become U+FFFD; the JSON is ASCII with `\u` escapes.
//!
//! Unlike crossplane, directive contexts and argument counts are not
//! checked here (that is the job of `upkeep check`, with nginx's own
//! tables): the output equals crossplane's with `check_ctx=False,
//! check_args=False`. A file with a syntax error has an empty `parsed`.

use crate::json::JsonWriter;
use crate::{ConfigSet, LoadError, LoadWarning};
use std::borrow::Cow;
use std::collections::HashMap;
use upkeep_syntax::{Directive, FileId, Node, QuoteStyle, SourceFile, Span, Word};

#[derive(Clone, Copy, Debug, Default)]
pub struct CrossplaneOptions {
    /// Do not list included files (crossplane's `--single-file`); `include`
    /// directives then have no `includes` key.
    pub single_file: bool,
    /// Also list comments that stand on their own (crossplane's
    /// `--include-comments`).
    pub include_comments: bool,
    /// Pretty-print with this many spaces (crossplane's `--indent`).
    pub indent: Option<usize>,
}

/// The payload for a loaded configuration, or for one that failed to load.
pub fn crossplane_json(result: &Result<ConfigSet, LoadError>, opts: &CrossplaneOptions) -> String {
    let mut w = JsonWriter::new(opts.indent);
    write_payload(&mut w, result, opts);
    w.finish()
}

/// [`crossplane_json`], written to `out` as it is produced.
pub fn write_crossplane_json(
    result: &Result<ConfigSet, LoadError>,
    opts: &CrossplaneOptions,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let mut w = JsonWriter::streaming(opts.indent, out);
    write_payload(&mut w, result, opts);
    w.finish_streaming()
}

fn write_payload(
    w: &mut JsonWriter,
    result: &Result<ConfigSet, LoadError>,
    opts: &CrossplaneOptions,
) {
    match result {
        Ok(set) => write_set(w, set, opts),
        Err(err) => write_failure(w, err),
    }
}

fn write_failure(w: &mut JsonWriter, err: &LoadError) {
    let line = err.pos.map(|p| p.line);
    let message = match line {
        Some(l) => format!("{} in {}:{l}", err.message, err.path),
        None => err.message.clone(),
    };
    w.begin_object();
    w.key("status");
    w.string("failed");
    w.key("errors");
    w.begin_array();
    write_error(w, Some(&err.path), &message, line);
    w.end_array();
    w.key("config");
    w.begin_array();
    w.begin_object();
    w.key("file");
    w.string(&err.path);
    w.key("status");
    w.string("failed");
    w.key("errors");
    w.begin_array();
    write_error(w, None, &message, line);
    w.end_array();
    w.key("parsed");
    w.begin_array();
    w.end_array();
    w.end_object();
    w.end_array();
    w.end_object();
}

fn write_error(w: &mut JsonWriter, file: Option<&str>, message: &str, line: Option<u32>) {
    w.begin_object();
    if let Some(f) = file {
        w.key("file");
        w.string(f);
    }
    w.key("error");
    w.string(message);
    w.key("line");
    match line {
        Some(l) => w.number(l as u64),
        None => w.null(),
    }
    w.end_object();
}

/// How crossplane words an include it could not open (a Python `OSError`).
fn include_error(warning: &LoadWarning) -> String {
    match warning.io_error {
        Some(std::io::ErrorKind::NotFound) => {
            format!("[Errno 2] No such file or directory: '{}'", warning.target)
        }
        Some(std::io::ErrorKind::PermissionDenied) => {
            format!("[Errno 13] Permission denied: '{}'", warning.target)
        }
        _ => warning.message.clone(),
    }
}

/// Files in crossplane's order: the main file, then each file the first
/// time an include in an already listed file names it.
fn crossplane_order(set: &ConfigSet, single_file: bool) -> Vec<FileId> {
    let mut order = vec![set.main];
    if single_file {
        return order;
    }
    // The include directives of each file, in document order.
    let mut sites: Vec<Vec<&Span>> = vec![Vec::new(); set.files.len()];
    for span in set.includes.keys() {
        sites[span.file.0 as usize].push(span);
    }
    for s in &mut sites {
        s.sort();
    }
    let mut seen = vec![false; set.files.len()];
    seen[set.main.0 as usize] = true;
    let mut i = 0;
    while i < order.len() {
        let includes = sites[order[i].0 as usize]
            .iter()
            .flat_map(|span| set.includes[span].iter().copied());
        for id in includes {
            if !seen[id.0 as usize] {
                seen[id.0 as usize] = true;
                order.push(id);
            }
        }
        i += 1;
    }
    order
}

fn write_set(w: &mut JsonWriter, set: &ConfigSet, opts: &CrossplaneOptions) {
    let order = crossplane_order(set, opts.single_file);
    let index: HashMap<FileId, usize> = order.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let listed = |id: FileId| index.contains_key(&id);
    let failed = set.warnings.iter().any(|wn| listed(wn.span.file));
    w.begin_object();
    w.key("status");
    w.string(if failed { "failed" } else { "ok" });
    w.key("errors");
    w.begin_array();
    for &id in &order {
        for wn in set.warnings.iter().filter(|wn| wn.span.file == id) {
            write_error(
                w,
                Some(&set.file(id).path),
                &include_error(wn),
                Some(wn.pos.line),
            );
        }
    }
    w.end_array();
    w.key("config");
    w.begin_array();
    for &id in &order {
        let file = set.file(id);
        let warnings: Vec<&LoadWarning> = set
            .warnings
            .iter()
            .filter(|wn| wn.span.file == id)
            .collect();
        w.begin_object();
        w.key("file");
        w.string(&file.path);
        w.key("status");
        w.string(if warnings.is_empty() { "ok" } else { "failed" });
        w.key("errors");
        w.begin_array();
        for wn in warnings {
            write_error(w, None, &include_error(wn), Some(wn.pos.line));
        }
        w.end_array();
        w.key("parsed");
        let ctx = Ctx {
            set,
            file,
            index: &index,
            opts,
            line_cursor: std::cell::Cell::new((0, 1)),
        };
        ctx.write_nodes(w, &set.tree(id).nodes);
        w.end_object();
    }
    w.end_array();
    w.end_object();
}

struct Ctx<'a> {
    set: &'a ConfigSet,
    file: &'a SourceFile,
    index: &'a HashMap<FileId, usize>,
    opts: &'a CrossplaneOptions,
    /// The offset and line of the last lookup: directives are written in
    /// source order, so the next one is on the same line or a little after.
    line_cursor: std::cell::Cell<(u32, u32)>,
}

impl Ctx<'_> {
    fn line(&self, offset: u32) -> u64 {
        let line = self.file.line_of_after(self.line_cursor.get(), offset);
        self.line_cursor.set((offset, line));
        u64::from(line)
    }

    fn write_nodes(&self, w: &mut JsonWriter, nodes: &[Node]) {
        w.begin_array();
        for node in nodes {
            match node {
                Node::Comment(c) => {
                    if self.opts.include_comments {
                        let line = self.line(c.span.start);
                        self.write_comment(w, line, c.span.start, c.span.end);
                    }
                }
                Node::Directive(d) => self.write_directive(w, d),
            }
        }
        w.end_array();
    }

    /// crossplane keeps a CR before the line feed in comment text.
    fn write_comment(&self, w: &mut JsonWriter, line: u64, start: u32, end: u32) {
        let text = &self.file.text;
        let mut end = end as usize;
        if text.get(end) == Some(&b'\r') {
            end += 1;
        }
        w.begin_object();
        w.key("directive");
        w.string("#");
        w.key("line");
        w.number(line);
        w.key("args");
        w.begin_array();
        w.end_array();
        w.key("comment");
        w.string_lossy(&text[start as usize + 1..end]);
        w.end_object();
    }

    fn write_directive(&self, w: &mut JsonWriter, d: &Directive) {
        let line = self.line(d.name().span().start);
        w.begin_object();
        w.key("directive");
        w.string_lossy(&self.word_bytes(d.name()));
        w.key("line");
        w.number(line);
        w.key("args");
        w.begin_array();
        if d.name_is("if") {
            let mut args: Vec<String> = d
                .args()
                .iter()
                .map(|a| String::from_utf8_lossy(&self.word_bytes(a)).into_owned())
                .collect();
            strip_if_parens(&mut args);
            for a in &args {
                w.string(a);
            }
        } else {
            for a in d.args() {
                w.string_lossy(&self.word_bytes(a));
            }
        }
        if let Some(body) = d.block().and_then(|b| b.verbatim()) {
            w.string_lossy(self.file.slice(body));
        }
        w.end_array();
        if !self.opts.single_file
            && d.name_is("include")
            && self.set.includes.contains_key(&d.span())
        {
            w.key("includes");
            w.begin_array();
            for id in self.set.included(d) {
                w.number(self.index[id] as u64);
            }
            w.end_array();
        }
        if let Some(block) = d.block() {
            if block.verbatim().is_none() {
                w.key("block");
                self.write_nodes(w, &block.nodes);
            }
        }
        w.end_object();
        for c in d.inner_comments() {
            self.write_comment(w, line, c.span.start, c.span.end);
        }
    }

    /// The token as crossplane's lexer yields it: quotes removed, and in a
    /// quoted token a backslash before that same quote dropped.
    fn word_bytes<'w>(&'w self, word: Word<'_>) -> Cow<'w, [u8]> {
        let raw = self.file.slice(word.span());
        let quote = match word.quote() {
            QuoteStyle::Bare => return Cow::Borrowed(raw),
            QuoteStyle::Double => b'"',
            QuoteStyle::Single => b'\'',
        };
        let inner = &raw[1..raw.len() - 1];
        if !inner.contains(&b'\\') {
            return Cow::Borrowed(inner);
        }
        let mut out = Vec::with_capacity(inner.len());
        let mut i = 0;
        while i < inner.len() {
            if inner[i] == b'\\' && i + 1 < inner.len() {
                if inner[i + 1] != quote {
                    out.push(b'\\');
                }
                out.push(inner[i + 1]);
                i += 2;
            } else {
                out.push(inner[i]);
                i += 1;
            }
        }
        Cow::Owned(out)
    }
}

/// crossplane's `_prepare_if_args`.
fn strip_if_parens(args: &mut Vec<String>) {
    let (Some(first), Some(last)) = (args.first(), args.last()) else {
        return;
    };
    if !(first.starts_with('(') && last.ends_with(')')) {
        return;
    }
    args[0] = args[0][1..].trim_start().to_string();
    let n = args.len() - 1;
    let trimmed = args[n][..args[n].len() - 1].trim_end().to_string();
    args[n] = trimmed;
    let start = usize::from(args[0].is_empty());
    let end = args.len() - usize::from(args[n].is_empty());
    if start >= end {
        args.clear();
    } else {
        args.truncate(end);
        args.drain(..start);
    }
}

#[cfg(test)]
mod tests {
    use super::strip_if_parens;

    fn strip(args: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        strip_if_parens(&mut v);
        v
    }

    #[test]
    fn if_parens_like_crossplane() {
        assert_eq!(strip(&["($a", "=", "b", ")"]), ["$a", "=", "b"]);
        assert_eq!(strip(&["($a)"]), ["$a"]);
        assert_eq!(strip(&["(", "$a", ")"]), ["$a"]);
        assert_eq!(strip(&["$a"]), ["$a"]);
    }
}
