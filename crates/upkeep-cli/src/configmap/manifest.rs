//! A Kubernetes ConfigMap read from a YAML manifest, with the place of every
//! key and value so that findings and errors can point into the file.
//!
//! Accepted shapes: one ConfigMap, several YAML documents of which one is a
//! ConfigMap (a Helm or kustomize render), and a `kind: List` (what
//! `kubectl get … -o yaml` prints for several objects).

use std::collections::BTreeMap;

use upkeep_syntax::{FileId, SourceFile, Span, SyntaxError};
use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Nesting deeper than this is no ConfigMap; refusing it keeps a hostile
/// file from costing unbounded memory.
const MAX_DEPTH: usize = 64;
/// Alias expansions allowed in one file (a "billion laughs" file expands
/// aliases exponentially).
const MAX_ALIAS_NODES: usize = 10_000;

/// A problem with the manifest, at a place in it.
#[derive(Debug)]
pub struct ManifestError {
    pub span: Span,
    pub message: String,
}

impl ManifestError {
    fn at(span: Span, message: impl Into<String>) -> ManifestError {
        ManifestError {
            span,
            message: message.into(),
        }
    }

    /// `file:line:col: message`, the source line and a caret.
    pub fn render(&self, file: &SourceFile) -> String {
        SyntaxError {
            span: self.span,
            message: self.message.clone(),
            expected: Vec::new(),
        }
        .render(file)
    }
}

/// One `data:` entry.
#[derive(Clone, Debug)]
pub struct Entry {
    pub value: String,
    /// The key, from its first character to the end of the value on the
    /// key's line: what a finding about the key underlines.
    pub span: Span,
    /// The value alone.
    pub value_span: Span,
    /// The value was not a YAML string (`keep-alive: 75`): the API server
    /// refuses such a ConfigMap.
    pub not_a_string: bool,
}

#[derive(Debug)]
pub struct ConfigMap {
    /// `metadata.name`, when given.
    pub name: Option<String>,
    /// The `kind: ConfigMap` value.
    pub kind_span: Span,
    /// The `data:` key, when there is one.
    pub data_span: Option<Span>,
    /// `data:` is a block mapping (one key per line), not a flow mapping
    /// (`{a: "1", b: "2"}`, which may also span lines).
    pub data_is_block: bool,
    pub data: BTreeMap<String, Entry>,
}

#[derive(Clone, Debug)]
enum Node {
    Scalar {
        value: String,
        style: TScalarStyle,
        span: Span,
    },
    Seq {
        items: Vec<Node>,
        span: Span,
    },
    Map {
        entries: Vec<(Node, Node)>,
        span: Span,
    },
}

impl Node {
    fn span(&self) -> Span {
        match self {
            Node::Scalar { span, .. } | Node::Seq { span, .. } | Node::Map { span, .. } => *span,
        }
    }

    fn scalar(&self) -> Option<&str> {
        match self {
            Node::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    fn get(&self, key: &str) -> Option<(&Node, &Node)> {
        match self {
            Node::Map { entries, .. } => entries
                .iter()
                .find(|(k, _)| k.scalar() == Some(key))
                .map(|(k, v)| (k, v)),
            _ => None,
        }
    }

    fn describe(&self) -> &'static str {
        match self {
            Node::Scalar { .. } => "a scalar",
            Node::Seq { .. } => "a list",
            Node::Map { .. } => "a mapping",
        }
    }
}

/// Byte offsets of parser markers (a marker's line is 1-based, its column
/// a 0-based count of characters). Markers come in file order, so the
/// count resumes from the last one on the same line: a file of one long
/// line (a flow mapping of thousands of keys) costs its length once, not
/// once per key.
struct Places<'f> {
    file: &'f SourceFile,
    /// Line, column and byte offset of the last marker placed.
    last: std::cell::Cell<(u32, usize, usize)>,
}

impl<'f> Places<'f> {
    fn new(file: &'f SourceFile) -> Places<'f> {
        Places {
            file,
            last: std::cell::Cell::new((0, 0, 0)),
        }
    }

    fn offset(&self, mark: &Marker) -> u32 {
        let line = mark.line().max(1) as u32;
        let start = self.file.line_start(line) as usize;
        let text = self.file.line_bytes(line);
        let (last_line, last_col, last_byte) = self.last.get();
        let (mut col, mut byte) = if last_line == line && last_col <= mark.col() {
            (last_col, last_byte)
        } else {
            (0, start)
        };
        // The whole file is UTF-8 (checked before parsing): a character's
        // length is read from its first byte.
        let end = start + text.len();
        while col < mark.col() && byte < end {
            byte += utf8_len(self.file.text[byte]);
            col += 1;
        }
        let byte = byte.min(end);
        self.last.set((line, col, byte));
        byte.min(self.file.text.len()) as u32
    }
}

/// Length of the UTF-8 sequence that starts with `first`.
fn utf8_len(first: u8) -> usize {
    match first {
        0xf0..=0xff => 4,
        0xe0..=0xef => 3,
        0xc0..=0xdf => 2,
        _ => 1,
    }
}

/// Where a scalar's source text ends on its first line: after the closing
/// quote of a quoted scalar, after the last non-blank character before a
/// comment or a flow indicator of a plain one. Block scalars end their line.
fn scalar_end(file: &SourceFile, start: u32, style: TScalarStyle) -> u32 {
    let line = file.line_of(start);
    let line_start = file.line_start(line) as usize;
    let text = file.line_bytes(line);
    let from = start as usize - line_start;
    let rest = &text[from.min(text.len())..];
    let len = match style {
        TScalarStyle::SingleQuoted => {
            let mut i = 1;
            loop {
                match rest.get(i) {
                    Some(b'\'') if rest.get(i + 1) == Some(&b'\'') => i += 2,
                    Some(b'\'') => break i + 1,
                    Some(_) => i += 1,
                    None => break rest.len(),
                }
            }
        }
        TScalarStyle::DoubleQuoted => {
            let mut i = 1;
            loop {
                match rest.get(i) {
                    Some(b'\\') => i += 2,
                    Some(b'"') => break i + 1,
                    Some(_) => i += 1,
                    None => break rest.len().min(i),
                }
            }
        }
        TScalarStyle::Plain => {
            let mut end = 0;
            let mut i = 0;
            while i < rest.len() {
                let b = rest[i];
                let comment = b == b'#' && i > 0 && rest[i - 1].is_ascii_whitespace();
                let key_end = b == b':'
                    && !matches!(rest.get(i + 1), Some(c) if !c.is_ascii_whitespace() && *c != b',');
                if comment || key_end || matches!(b, b',' | b']' | b'}') {
                    break;
                }
                if !b.is_ascii_whitespace() {
                    end = i + 1;
                }
                i += 1;
            }
            end
        }
        _ => {
            let trimmed = rest.iter().rposition(|b| !b.is_ascii_whitespace());
            trimmed.map_or(0, |i| i + 1)
        }
    };
    (start as usize + len.min(rest.len())) as u32
}

/// Builds the documents' trees from the parser's events, without recursion.
struct Builder<'f> {
    file: &'f SourceFile,
    places: Places<'f>,
    /// Open collections: the node and, for a mapping, a key waiting for
    /// its value.
    stack: Vec<(Node, Option<Node>)>,
    anchors: BTreeMap<usize, Node>,
    /// Anchors of the open collections, recorded when they close.
    open_anchors: Vec<usize>,
    alias_nodes: usize,
    documents: Vec<Node>,
}

fn count_nodes(node: &Node) -> usize {
    match node {
        Node::Scalar { .. } => 1,
        Node::Seq { items, .. } => 1 + items.iter().map(count_nodes).sum::<usize>(),
        Node::Map { entries, .. } => {
            1 + entries
                .iter()
                .map(|(k, v)| count_nodes(k) + count_nodes(v))
                .sum::<usize>()
        }
    }
}

impl Builder<'_> {
    fn span_at(&self, mark: &Marker) -> Span {
        let at = self.places.offset(mark);
        Span::new(FileId(0), at, at)
    }

    /// Adds a finished node to the open collection (or ends a document).
    fn add(&mut self, node: Node) {
        match self.stack.last_mut() {
            None => self.documents.push(node),
            Some((Node::Seq { items, .. }, _)) => items.push(node),
            Some((Node::Map { entries, .. }, pending)) => match pending.take() {
                None => *pending = Some(node),
                Some(key) => entries.push((key, node)),
            },
            Some((Node::Scalar { .. }, _)) => unreachable!("scalars are never open"),
        }
    }

    fn event(&mut self, event: Event, mark: Marker) -> Result<(), ManifestError> {
        match event {
            Event::Scalar(value, style, anchor, _) => {
                let start = self.places.offset(&mark);
                let end = scalar_end(self.file, start, style);
                let node = Node::Scalar {
                    value,
                    style,
                    span: Span::new(FileId(0), start, end),
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                self.add(node);
            }
            Event::Alias(id) => {
                let span = self.span_at(&mark);
                let Some(node) = self.anchors.get(&id).cloned() else {
                    return Err(ManifestError::at(span, "alias to an unknown anchor"));
                };
                self.alias_nodes += count_nodes(&node);
                if self.alias_nodes > MAX_ALIAS_NODES {
                    return Err(ManifestError::at(
                        span,
                        format!("aliases expand to more than {MAX_ALIAS_NODES} nodes"),
                    ));
                }
                self.add(node);
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                let span = self.span_at(&mark);
                if self.stack.len() >= MAX_DEPTH {
                    return Err(ManifestError::at(
                        span,
                        format!("nesting deeper than {MAX_DEPTH} levels"),
                    ));
                }
                let node = if matches!(event, Event::SequenceStart(..)) {
                    Node::Seq {
                        items: Vec::new(),
                        span,
                    }
                } else {
                    Node::Map {
                        entries: Vec::new(),
                        span,
                    }
                };
                self.stack.push((node, None));
                self.open_anchors.push(anchor);
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (mut node, _) = self.stack.pop().expect("the parser balances collections");
                // The parser marks a block mapping where its first value
                // starts: the first key is where a reader sees it begin.
                if let Node::Map { entries, span } = &mut node {
                    if let Some((key, _)) = entries.first() {
                        let at = key.span().start.min(span.start);
                        *span = Span::new(FileId(0), at, at);
                    }
                }
                let anchor = self.open_anchors.pop().unwrap_or(0);
                if anchor > 0 {
                    self.anchors.insert(anchor, node.clone());
                }
                self.add(node);
            }
            Event::DocumentStart => self.anchors.clear(),
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
        Ok(())
    }
}

/// The YAML documents of `file`.
fn documents(file: &SourceFile) -> Result<Vec<Node>, ManifestError> {
    let text = std::str::from_utf8(&file.text).map_err(|e| {
        let at = e.valid_up_to() as u32;
        ManifestError::at(
            Span::new(FileId(0), at, at),
            "not UTF-8 text (a YAML file is UTF-8)",
        )
    })?;
    // YAML ends a line at a carriage return alone, upkeep's places only at
    // a line feed: what it reported in such a file would point elsewhere.
    if let Some(at) = (0..file.text.len())
        .find(|&i| file.text[i] == b'\r' && file.text.get(i + 1) != Some(&b'\n'))
    {
        return Err(ManifestError::at(
            Span::new(FileId(0), at as u32, at as u32),
            "a carriage return without a line feed (old Mac line ends): convert the line ends to LF or CRLF",
        ));
    }
    let mut builder = Builder {
        file,
        places: Places::new(file),
        stack: Vec::new(),
        anchors: BTreeMap::new(),
        open_anchors: Vec::new(),
        alias_nodes: 0,
        documents: Vec::new(),
    };
    let mut parser = Parser::new_from_str(text);
    loop {
        let (event, mark) = parser.next_token().map_err(|e| {
            let at = builder.places.offset(e.marker());
            ManifestError::at(
                Span::new(FileId(0), at, at),
                format!("invalid YAML: {}", e.info()),
            )
        })?;
        if event == Event::StreamEnd {
            break;
        }
        builder.event(event, mark)?;
    }
    Ok(builder.documents)
}

/// Whether a plain scalar is something other than a string to YAML 1.1/1.2
/// (a number, a boolean, null): what the API server refuses as a
/// ConfigMap value.
fn typed_plain(value: &str) -> bool {
    value.is_empty()
        || matches!(
            value,
            "~" | "null"
                | "Null"
                | "NULL"
                | "true"
                | "True"
                | "TRUE"
                | "false"
                | "False"
                | "FALSE"
                | "yes"
                | "Yes"
                | "YES"
                | "no"
                | "No"
                | "NO"
                | "on"
                | "On"
                | "ON"
                | "off"
                | "Off"
                | "OFF"
        )
        || value.parse::<i64>().is_ok()
        || value.parse::<f64>().is_ok()
}

/// The ConfigMaps among the documents: top-level ones and the items of a
/// `List`.
fn config_maps(docs: &[Node]) -> Vec<&Node> {
    let mut out = Vec::new();
    for doc in docs {
        let kind = doc.get("kind").and_then(|(_, v)| v.scalar());
        match kind {
            Some("ConfigMap") => out.push(doc),
            Some(list) if list == "List" || list == "ConfigMapList" => {
                if let Some((_, Node::Seq { items, .. })) = doc.get("items") {
                    for item in items {
                        let item_kind = item.get("kind").and_then(|(_, v)| v.scalar());
                        let is_cm = item_kind == Some("ConfigMap")
                            || (item_kind.is_none() && list == "ConfigMapList");
                        if is_cm {
                            out.push(item);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    out
}

fn name_of(node: &Node) -> Option<String> {
    node.get("metadata")
        .and_then(|(_, m)| m.get("name"))
        .and_then(|(_, n)| n.scalar())
        .map(str::to_string)
}

/// The names ingress-nginx's own manifests give the controller's ConfigMap:
/// `ingress-nginx-controller` (deploy/static, Helm's `<release>-controller`)
/// and `nginx-configuration` (before the Helm chart).
fn looks_like_controller_configmap(name: &str) -> bool {
    name.ends_with("-controller") || name == "nginx-configuration"
}

/// Reads the one ConfigMap of `file`.
pub fn read(file: &SourceFile) -> Result<ConfigMap, ManifestError> {
    let docs = documents(file)?;
    let whole = Span::new(FileId(0), 0, 0);
    if docs.is_empty() {
        return Err(ManifestError::at(
            whole,
            "no Kubernetes manifest in this file (expected `kind: ConfigMap`)",
        ));
    }
    let found = config_maps(&docs);
    let node = match found.as_slice() {
        [] => {
            // Point at the first document's kind, or at the document.
            let first = &docs[0];
            return Err(match first.get("kind") {
                Some((_, v)) => ManifestError::at(
                    v.span(),
                    format!(
                        "`kind: {}` is not a ConfigMap (expected an ingress-nginx ConfigMap: `kind: ConfigMap` with a `data:` map)",
                        v.scalar().unwrap_or("?")
                    ),
                ),
                None => ManifestError::at(
                    first.span(),
                    format!(
                        "not a Kubernetes manifest: {} without `kind:` (expected `kind: ConfigMap`)",
                        first.describe()
                    ),
                ),
            });
        }
        [one] => *one,
        several => {
            let named: Vec<&&Node> = several
                .iter()
                .filter(|n| name_of(n).is_some_and(|n| looks_like_controller_configmap(&n)))
                .collect();
            match named.as_slice() {
                [one] => **one,
                _ => {
                    let list: Vec<String> = several
                        .iter()
                        .map(|n| {
                            let at = file.line_col(n.span().start);
                            format!(
                                "`{}` (line {})",
                                name_of(n).unwrap_or_else(|| "unnamed".into()),
                                at.line
                            )
                        })
                        .collect();
                    return Err(ManifestError::at(
                        several[1].span(),
                        format!(
                            "{} ConfigMaps in this file ({}): keep only the controller's",
                            several.len(),
                            list.join(", ")
                        ),
                    ));
                }
            }
        }
    };
    let kind_span = node.get("kind").map_or(node.span(), |(_, v)| v.span());
    let mut cm = ConfigMap {
        name: name_of(node),
        kind_span,
        data_span: None,
        data_is_block: false,
        data: BTreeMap::new(),
    };
    let Some((data_key, data)) = node.get("data") else {
        return Ok(cm);
    };
    cm.data_span = Some(data_key.span());
    let entries = match data {
        Node::Map { entries, span } => {
            // A flow mapping's place is its `{`.
            cm.data_is_block = file.text.get(span.start as usize) != Some(&b'{');
            entries
        }
        // `data:` with nothing after it: no keys.
        Node::Scalar { value, style, .. } if value.is_empty() && *style == TScalarStyle::Plain => {
            return Ok(cm)
        }
        other => {
            return Err(ManifestError::at(
                other.span(),
                format!(
                    "`data:` is {}; a ConfigMap's data is a mapping of keys to string values",
                    other.describe()
                ),
            ))
        }
    };
    for (key, value) in entries {
        let Some(name) = key.scalar() else {
            return Err(ManifestError::at(
                key.span(),
                format!("a data key is {}, not a string", key.describe()),
            ));
        };
        let Node::Scalar {
            value: text,
            style,
            span: value_span,
        } = value
        else {
            return Err(ManifestError::at(
                value.span(),
                format!(
                    "the value of `{name}` is {}; ConfigMap values are strings",
                    value.describe()
                ),
            ));
        };
        if let Some(first) = cm.data.get(name) {
            let at = file.line_col(first.span.start);
            return Err(ManifestError::at(
                key.span(),
                format!(
                    "duplicate key `{name}` (first at line {}, column {})",
                    at.line, at.col
                ),
            ));
        }
        let key_span = key.span();
        let span = if file.line_of(value_span.end) == file.line_of(key_span.start) {
            key_span.cover(*value_span)
        } else {
            key_span
        };
        cm.data.insert(
            name.to_string(),
            Entry {
                value: text.clone(),
                span,
                value_span: *value_span,
                not_a_string: *style == TScalarStyle::Plain && typed_plain(text),
            },
        );
    }
    Ok(cm)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> SourceFile {
        SourceFile::new(FileId(0), "cm.yaml", text.as_bytes().to_vec())
    }

    fn place(f: &SourceFile, span: Span) -> (u32, u32) {
        let p = f.line_col(span.start);
        (p.line, p.col)
    }

    #[test]
    fn single_configmap_with_places() {
        let f = file("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ingress-nginx-controller\ndata:\n  keep-alive: \"75\"\n  upstream-keepalive-timeout: '30' # shorter\n  proxy-next-upstream: error timeout\n");
        let cm = read(&f).unwrap();
        assert_eq!(cm.name.as_deref(), Some("ingress-nginx-controller"));
        let ka = &cm.data["keep-alive"];
        assert_eq!(ka.value, "75");
        assert_eq!(place(&f, ka.span), (6, 3));
        assert_eq!(&f.text[ka.span.range()], b"keep-alive: \"75\"");
        let t = &cm.data["upstream-keepalive-timeout"];
        assert_eq!(&f.text[t.span.range()], b"upstream-keepalive-timeout: '30'");
        let n = &cm.data["proxy-next-upstream"];
        assert_eq!(n.value, "error timeout");
        assert_eq!(&f.text[n.value_span.range()], b"error timeout");
        assert!(!n.not_a_string);
        assert_eq!(place(&f, cm.data_span.unwrap()), (5, 1));
    }

    #[test]
    fn multi_document_and_list() {
        let f = file(
            "kind: Service\nmetadata: {name: x}\n---\nkind: ConfigMap\ndata:\n  keep-alive: 60\n",
        );
        let cm = read(&f).unwrap();
        assert!(cm.data["keep-alive"].not_a_string);
        assert_eq!(place(&f, cm.data["keep-alive"].span), (6, 3));
        let f = file("apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  data:\n    keep-alive: \"10\"\n");
        assert_eq!(read(&f).unwrap().data["keep-alive"].value, "10");
    }

    #[test]
    fn several_configmaps_prefer_the_controllers() {
        let f = file("kind: ConfigMap\nmetadata: {name: tcp-services}\n---\nkind: ConfigMap\nmetadata:\n  name: rel-ingress-nginx-controller\ndata: {keep-alive: \"5\"}\n");
        assert_eq!(read(&f).unwrap().data["keep-alive"].value, "5");
        let f = file(
            "kind: ConfigMap\nmetadata: {name: a}\n---\nkind: ConfigMap\nmetadata: {name: b}\n",
        );
        let e = read(&f).unwrap_err();
        assert!(e.message.contains("2 ConfigMaps"), "{}", e.message);
    }

    #[test]
    fn errors_have_places() {
        let f = file("kind: ConfigMap\ndata:\n  keep-alive: \"75\n");
        let e = read(&f).unwrap_err();
        assert!(e.message.starts_with("invalid YAML"), "{}", e.message);
        let f = file("apiVersion: apps/v1\nkind: Deployment\n");
        let e = read(&f).unwrap_err();
        assert_eq!(place(&f, e.span), (2, 7));
        assert!(e.message.contains("`kind: Deployment` is not a ConfigMap"));
        let f = file("kind: ConfigMap\ndata:\n  a: \"1\"\n  a: \"2\"\n");
        let e = read(&f).unwrap_err();
        assert_eq!(place(&f, e.span), (4, 3));
        let f = file("kind: ConfigMap\ndata:\n  a: [1, 2]\n");
        assert!(read(&f).unwrap_err().message.contains("a list"));
        let deep = format!(
            "kind: ConfigMap\ndata: {}{}\n",
            "[".repeat(200),
            "]".repeat(200)
        );
        assert!(read(&file(&deep)).is_err());
        assert!(read(&file("")).is_err());
        let f = file("kind: ConfigMap\r\ndata:\r  keep-alive: \"75\"\r");
        let e = read(&f).unwrap_err();
        assert_eq!(place(&f, e.span), (2, 6));
        assert!(e
            .message
            .starts_with("a carriage return without a line feed"));
        let f = file("kind: ConfigMap\r\ndata:\r\n  keep-alive: \"75\"\r\n");
        assert_eq!(read(&f).unwrap().data["keep-alive"].value, "75");
        assert!(read(&file("just text")).is_err());
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n",
                p = i - 1
            ));
        }
        let e = read(&file(&text)).unwrap_err();
        assert!(e.message.contains("aliases expand"), "{}", e.message);
    }
}
