//! A small streaming JSON writer whose output is byte-identical to
//! Python's `json.dumps` (what crossplane prints): `ensure_ascii` escaping,
//! `", "` and `": "` separators when compact, `indent` spaces and `[]`/`{}`
//! for empty containers when indented.

pub struct JsonWriter {
    out: String,
    indent: Option<usize>,
    /// One entry per open container: has it had an element yet?
    open: Vec<bool>,
    /// A key was just written; the value follows on the same line.
    after_key: bool,
}

impl JsonWriter {
    pub fn new(indent: Option<usize>) -> Self {
        JsonWriter {
            out: String::new(),
            indent,
            open: Vec::new(),
            after_key: false,
        }
    }

    pub fn finish(self) -> String {
        self.out
    }

    fn newline(&mut self, depth: usize) {
        if let Some(n) = self.indent {
            self.out.push('\n');
            for _ in 0..n * depth {
                self.out.push(' ');
            }
        }
    }

    /// Separator and indentation before a value or a key.
    fn before_item(&mut self) {
        if self.after_key {
            self.after_key = false;
            return;
        }
        let depth = self.open.len();
        if let Some(first) = self.open.last_mut() {
            let was_first = !*first;
            *first = true;
            if !was_first {
                self.out.push(',');
                if self.indent.is_none() {
                    self.out.push(' ');
                }
            }
            self.newline(depth);
        }
    }

    pub fn begin_object(&mut self) {
        self.before_item();
        self.out.push('{');
        self.open.push(false);
    }

    pub fn end_object(&mut self) {
        self.end('}');
    }

    pub fn begin_array(&mut self) {
        self.before_item();
        self.out.push('[');
        self.open.push(false);
    }

    pub fn end_array(&mut self) {
        self.end(']');
    }

    fn end(&mut self, close: char) {
        let had_items = self.open.pop().unwrap_or(false);
        if had_items {
            let depth = self.open.len();
            self.newline(depth);
        }
        self.out.push(close);
    }

    pub fn key(&mut self, key: &str) {
        self.before_item();
        write_string(&mut self.out, key);
        self.out.push_str(": ");
        self.after_key = true;
    }

    pub fn string(&mut self, s: &str) {
        self.before_item();
        write_string(&mut self.out, s);
    }

    pub fn number(&mut self, n: u64) {
        self.before_item();
        self.out.push_str(&n.to_string());
    }

    pub fn null(&mut self) {
        self.before_item();
        self.out.push_str("null");
    }

    pub fn bool(&mut self, b: bool) {
        self.before_item();
        self.out.push_str(if b { "true" } else { "false" });
    }
}

/// A JSON string literal with everything outside printable ASCII escaped.
pub fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(indent: Option<usize>) -> String {
        let mut w = JsonWriter::new(indent);
        w.begin_object();
        w.key("a");
        w.begin_array();
        w.end_array();
        w.key("b");
        w.begin_array();
        w.number(1);
        w.string("x\"\u{e9}\u{1F600}\u{1}");
        w.end_array();
        w.end_object();
        w.finish()
    }

    #[test]
    fn matches_python_json_dumps() {
        assert_eq!(
            sample(None),
            r#"{"a": [], "b": [1, "x\"\u00e9\ud83d\ude00\u0001"]}"#
        );
        assert_eq!(
            sample(Some(2)),
            "{\n  \"a\": [],\n  \"b\": [\n    1,\n    \"x\\\"\\u00e9\\ud83d\\ude00\\u0001\"\n  ]\n}"
        );
    }
}
