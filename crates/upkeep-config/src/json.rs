//! A small streaming JSON writer whose output is byte-identical to
//! Python's `json.dumps` (what crossplane prints): `ensure_ascii` escaping,
//! `", "` and `": "` separators when compact, `indent` spaces and `[]`/`{}`
//! for empty containers when indented.

pub struct JsonWriter<'s> {
    /// Always ASCII: everything else is written as `\u` escapes.
    out: Vec<u8>,
    /// Where full buffers go, when streaming; the first write error is kept.
    sink: Option<&'s mut dyn std::io::Write>,
    error: Option<std::io::Error>,
    indent: Option<usize>,
    /// One entry per open container: has it had an element yet?
    open: Vec<bool>,
    /// A key was just written; the value follows on the same line.
    after_key: bool,
}

impl<'s> JsonWriter<'s> {
    pub fn new(indent: Option<usize>) -> Self {
        JsonWriter {
            out: Vec::with_capacity(1 << 16),
            sink: None,
            error: None,
            indent,
            open: Vec::new(),
            after_key: false,
        }
    }

    /// A writer that passes its output on to `sink` as it goes, so that a
    /// large document is never held in memory whole.
    pub fn streaming(indent: Option<usize>, sink: &'s mut dyn std::io::Write) -> Self {
        JsonWriter {
            sink: Some(sink),
            ..JsonWriter::new(indent)
        }
    }

    pub fn finish(self) -> String {
        String::from_utf8(self.out).expect("the writer only writes ASCII")
    }

    /// Write out what is left (streaming writers).
    pub fn finish_streaming(mut self) -> std::io::Result<()> {
        self.flush(0);
        match self.error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn flush(&mut self, above: usize) {
        if self.out.len() <= above {
            return;
        }
        if let Some(sink) = self.sink.as_mut() {
            if self.error.is_none() {
                if let Err(e) = sink.write_all(&self.out) {
                    self.error = Some(e);
                }
            }
            self.out.clear();
        }
    }

    fn newline(&mut self, depth: usize) {
        if let Some(n) = self.indent {
            self.out.push(b'\n');
            self.out.resize(self.out.len() + n * depth, b' ');
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
                self.out.push(b',');
                if self.indent.is_none() {
                    self.out.push(b' ');
                }
            }
            self.newline(depth);
        }
    }

    pub fn begin_object(&mut self) {
        self.before_item();
        self.out.push(b'{');
        self.open.push(false);
    }

    pub fn end_object(&mut self) {
        self.end(b'}');
    }

    pub fn begin_array(&mut self) {
        self.before_item();
        self.out.push(b'[');
        self.open.push(false);
    }

    pub fn end_array(&mut self) {
        self.end(b']');
    }

    fn end(&mut self, close: u8) {
        let had_items = self.open.pop().unwrap_or(false);
        if had_items {
            let depth = self.open.len();
            self.newline(depth);
        }
        self.out.push(close);
        self.flush(1 << 16);
    }

    /// An object key: a plain ASCII name (every key upkeep writes is one),
    /// written without escaping.
    pub fn key(&mut self, key: &str) {
        debug_assert!(!key.bytes().any(|b| NEEDS_ESCAPE[b as usize]), "{key:?}");
        self.before_item();
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\": ");
        self.after_key = true;
    }

    pub fn string(&mut self, s: &str) {
        self.before_item();
        write_bytes(&mut self.out, s.as_bytes());
    }

    /// A string from bytes that may not be UTF-8: each invalid sequence
    /// becomes U+FFFD, as `String::from_utf8_lossy` (and Python's
    /// `errors="replace"`) would make it.
    pub fn string_lossy(&mut self, bytes: &[u8]) {
        self.before_item();
        write_bytes(&mut self.out, bytes);
    }

    pub fn number(&mut self, n: u64) {
        self.before_item();
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        let mut n = n;
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.out.extend_from_slice(&digits[i..]);
    }

    pub fn null(&mut self) {
        self.before_item();
        self.out.extend_from_slice(b"null");
    }

    pub fn bool(&mut self, b: bool) {
        self.before_item();
        self.out
            .extend_from_slice(if b { b"true" as &[u8] } else { b"false" });
    }
}

/// A JSON string literal with everything outside printable ASCII escaped;
/// bytes that are not UTF-8 become U+FFFD.
fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    if !bytes.iter().any(|&b| NEEDS_ESCAPE[b as usize]) {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    for chunk in bytes.utf8_chunks() {
        write_str(out, chunk.valid());
        if !chunk.invalid().is_empty() {
            out.extend_from_slice(b"\\ufffd");
        }
    }
    out.push(b'"');
}

/// Bytes that cannot go into a JSON string as they are: control
/// characters, `"`, `\\`, and everything outside ASCII.
const NEEDS_ESCAPE: [bool; 256] = {
    let mut t = [true; 256];
    let mut b = b' ';
    while b <= b'~' {
        t[b as usize] = false;
        b += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        // Printable ASCII other than `"` and `\\` goes out as it is.
        let run = bytes[i..]
            .iter()
            .position(|&b| NEEDS_ESCAPE[b as usize])
            .unwrap_or(bytes.len() - i);
        out.extend_from_slice(&bytes[i..i + run]);
        i += run;
        if i == bytes.len() {
            break;
        }
        let c = s[i..].chars().next().expect("inside the string");
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            _ => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.extend_from_slice(format!("\\u{u:04x}").as_bytes());
                }
            }
        }
        i += c.len_utf8();
    }
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
