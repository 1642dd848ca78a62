//! Source files and positions.

use std::sync::Arc;

/// Index of a file inside a loaded configuration (`upkeep_config::ConfigSet`).
/// Stable for the lifetime of one load; file 0 is the main config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct FileId(pub u32);

/// A half-open byte range `[start, end)` in one file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Span {
    pub file: FileId,
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(file: FileId, start: u32, end: u32) -> Self {
        debug_assert!(start <= end);
        Span { file, start, end }
    }

    pub fn range(&self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }

    pub fn len(&self) -> u32 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// The smallest span covering both (same file assumed).
    pub fn cover(self, other: Span) -> Span {
        Span::new(
            self.file,
            self.start.min(other.start),
            self.end.max(other.end),
        )
    }
}

/// A 1-based line and column. Columns count characters (Unicode scalar values)
/// on lines that are valid UTF-8, and bytes on lines that are not, so that an
/// editor and the underline in a diagnostic agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LineCol {
    pub line: u32,
    pub col: u32,
}

/// A file's whole text, shared by the places that hold it: cloning it
/// copies a pointer, not the text (a configuration can be hundreds of
/// megabytes, and `fix` holds the same text as a loaded file, an original
/// and a change).
pub type SharedText = Arc<Vec<u8>>;

/// One configuration file's bytes, exactly as read. nginx configs are bytes,
/// not text: non-UTF-8 content is kept and never causes a panic.
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub id: FileId,
    /// The path as nginx would see it (absolute, or as given on the command line).
    pub path: String,
    pub text: SharedText,
    line_starts: Vec<u32>,
}

impl SourceFile {
    /// `text` is a `Vec<u8>` (moved in) or a [`SharedText`] (shared).
    pub fn new(id: FileId, path: impl Into<String>, text: impl Into<SharedText>) -> Self {
        let text = text.into();
        let mut line_starts = vec![0u32];
        line_starts.extend(memchr::memchr_iter(b'\n', &text).map(|i| i as u32 + 1));
        SourceFile {
            id,
            path: path.into(),
            text,
            line_starts,
        }
    }

    /// Number of lines (a trailing newline does not start an extra line).
    pub fn line_count(&self) -> u32 {
        let n = self.line_starts.len() as u32;
        if self.text.ends_with(b"\n") {
            n - 1
        } else {
            n
        }
    }

    /// Byte offset of the start of 1-based `line`.
    pub fn line_start(&self, line: u32) -> u32 {
        let idx = (line.max(1) - 1) as usize;
        self.line_starts
            .get(idx)
            .copied()
            .unwrap_or(self.text.len() as u32)
    }

    /// The bytes of 1-based `line`, without its line terminator (`\n` or `\r\n`).
    pub fn line_bytes(&self, line: u32) -> &[u8] {
        let start = self.line_start(line) as usize;
        let end = self.line_start(line + 1) as usize;
        let mut s = &self.text[start.min(self.text.len())..end.min(self.text.len())];
        if let Some(rest) = s.strip_suffix(b"\n") {
            s = rest;
        }
        if let Some(rest) = s.strip_suffix(b"\r") {
            s = rest;
        }
        s
    }

    /// Byte offsets where lines start: 0, then one past each `\n`.
    pub fn line_starts(&self) -> &[u32] {
        &self.line_starts
    }

    /// 1-based line of a byte offset (a binary search; no scan of the line).
    pub fn line_of(&self, offset: u32) -> u32 {
        let offset = offset.min(self.text.len() as u32);
        match self.line_starts.binary_search(&offset) {
            Ok(i) => i as u32 + 1,
            Err(i) => i as u32,
        }
    }

    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: u32) -> LineCol {
        let offset = offset.min(self.text.len() as u32);
        let line_idx = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line_idx] as usize;
        let prefix = &self.text[start..offset as usize];
        let col = match std::str::from_utf8(self.line_bytes(line_idx as u32 + 1)) {
            Ok(_) => String::from_utf8_lossy(prefix).chars().count() as u32,
            Err(_) => prefix.len() as u32,
        };
        LineCol {
            line: line_idx as u32 + 1,
            col: col + 1,
        }
    }

    pub fn slice(&self, span: Span) -> &[u8] {
        &self.text[span.range()]
    }
}

/// Anything that can hand out the source file behind a [`FileId`]: a loaded
/// configuration, or a single file in a test. Renderers take this.
/// `Sync` so that renderers can read the files from several threads.
pub trait SourceMap: Sync {
    fn source(&self, id: FileId) -> &SourceFile;
}

impl SourceMap for SourceFile {
    fn source(&self, _id: FileId) -> &SourceFile {
        self
    }
}

impl SourceMap for [SourceFile] {
    fn source(&self, id: FileId) -> &SourceFile {
        &self[id.0 as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_chars_on_utf8_lines_and_bytes_otherwise() {
        let f = SourceFile::new(FileId(0), "t", b"ab\n\xc3\xa9x\n\xffy".to_vec());
        assert_eq!(f.line_col(0), LineCol { line: 1, col: 1 });
        assert_eq!(f.line_col(3), LineCol { line: 2, col: 1 });
        assert_eq!(f.line_col(5), LineCol { line: 2, col: 2 });
        assert_eq!(f.line_col(8), LineCol { line: 3, col: 2 });
        assert_eq!(f.line_bytes(2), "\u{e9}x".as_bytes());
        assert_eq!(f.line_count(), 3);
    }
}
