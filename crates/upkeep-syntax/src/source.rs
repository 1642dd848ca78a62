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

/// How many bytes of text one entry of a file's line index covers.
const LINE_INDEX_STEP: usize = 4096;

/// One configuration file's bytes, exactly as read. nginx configs are bytes,
/// not text: non-UTF-8 content is kept and never causes a panic.
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub id: FileId,
    /// The path as nginx would see it (absolute, or as given on the command line).
    pub path: String,
    pub text: SharedText,
    /// `lines_before[k]`: the line feeds in the text before byte
    /// `k * LINE_INDEX_STEP`. A lookup counts line feeds from the entry
    /// before it, so it reads at most one step of text, and the index is a
    /// thousandth of the text (a table of every line start was a sixth of
    /// it on large configurations).
    lines_before: Vec<u32>,
    /// Line feeds in the whole text.
    line_feeds: u32,
}

impl SourceFile {
    /// `text` is a `Vec<u8>` (moved in) or a [`SharedText`] (shared).
    pub fn new(id: FileId, path: impl Into<String>, text: impl Into<SharedText>) -> Self {
        let text = text.into();
        let mut lines_before = Vec::with_capacity(text.len() / LINE_INDEX_STEP + 1);
        let mut line_feeds = 0u32;
        lines_before.push(0);
        for chunk in text.chunks(LINE_INDEX_STEP) {
            line_feeds += count_line_feeds(chunk);
            lines_before.push(line_feeds);
        }
        // The entry after a last, partial chunk is never read (no offset
        // reaches its start); one after a last, whole chunk is, for the
        // end-of-text offset.
        if text.len() % LINE_INDEX_STEP != 0 {
            lines_before.pop();
        }
        SourceFile {
            id,
            path: path.into(),
            text,
            lines_before,
            line_feeds,
        }
    }

    /// Number of lines (a trailing newline does not start an extra line).
    pub fn line_count(&self) -> u32 {
        let n = self.line_feeds + 1;
        if self.text.ends_with(b"\n") {
            n - 1
        } else {
            n
        }
    }

    /// Byte offset of the start of 1-based `line` (the text's length for a
    /// line past the end).
    pub fn line_start(&self, line: u32) -> u32 {
        // Line n starts after the (n-1)th line feed.
        let feeds = line.max(1) - 1;
        if feeds == 0 {
            return 0;
        }
        if feeds > self.line_feeds {
            return self.text.len() as u32;
        }
        // The last step that starts before that line feed; the feed lies
        // within it (the next step starts after it).
        let step = self.lines_before.partition_point(|&n| n < feeds) - 1;
        let from = step * LINE_INDEX_STEP;
        let wanted = (feeds - self.lines_before[step]) as usize;
        let at = memchr::memchr_iter(b'\n', &self.text[from..])
            .nth(wanted - 1)
            .expect("the index counted this line feed");
        (from + at + 1) as u32
    }

    /// The bytes of 1-based `line`, without its line terminator (`\n` or `\r\n`).
    pub fn line_bytes(&self, line: u32) -> &[u8] {
        self.line_bytes_from(self.line_start(line), line)
    }

    /// [`SourceFile::line_bytes`] of each line from `first` to `last`, read
    /// as one stretch of the text: one index lookup for the whole range
    /// instead of one per line.
    pub fn lines(&self, first: u32, last: u32) -> impl Iterator<Item = &[u8]> + '_ {
        let from = self.line_start(first) as usize;
        let to = (self.line_start(last.saturating_add(1)) as usize).min(self.text.len());
        let mut stretch = self.text[from.min(to)..to].split(|&b| b == b'\n');
        (first..=last).map(move |_| {
            let line = stretch.next().unwrap_or_default();
            line.strip_suffix(b"\r").unwrap_or(line)
        })
    }

    /// [`SourceFile::line_bytes`] of `line`, whose start is known.
    fn line_bytes_from(&self, start: u32, line: u32) -> &[u8] {
        let start = start as usize;
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

    /// 1-based line of a byte offset.
    pub fn line_of(&self, offset: u32) -> u32 {
        let offset = (offset as usize).min(self.text.len());
        let step = offset / LINE_INDEX_STEP;
        let from = step * LINE_INDEX_STEP;
        self.lines_before[step] + count_line_feeds(&self.text[from..offset]) + 1
    }

    /// 1-based line of `offset`, given that of an earlier offset: counts
    /// only the line feeds between them, so that a walk through the file
    /// in order reads it once.
    pub fn line_of_after(&self, known: (u32, u32), offset: u32) -> u32 {
        let (known_offset, known_line) = known;
        let offset = offset.min(self.text.len() as u32);
        if known_offset > offset || offset - known_offset > LINE_INDEX_STEP as u32 {
            return self.line_of(offset);
        }
        known_line + count_line_feeds(&self.text[known_offset as usize..offset as usize])
    }

    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: u32) -> LineCol {
        let offset = offset.min(self.text.len() as u32);
        let line = self.line_of(offset);
        let start = self.line_start(line);
        let prefix = &self.text[start as usize..offset as usize];
        let col = match std::str::from_utf8(self.line_bytes_from(start, line)) {
            Ok(_) => String::from_utf8_lossy(prefix).chars().count() as u32,
            Err(_) => prefix.len() as u32,
        };
        LineCol { line, col: col + 1 }
    }

    pub fn slice(&self, span: Span) -> &[u8] {
        &self.text[span.range()]
    }
}

fn count_line_feeds(bytes: &[u8]) -> u32 {
    memchr::memchr_iter(b'\n', bytes).count() as u32
}

/// Anything that can hand out the source file behind a [`FileId`]: a loaded
/// configuration, or a single file in a test. Renderers take this.
/// `Sync` so that renderers can read the files from several threads.
pub trait SourceMap: Sync {
    /// The file behind `id`, if the map has one: a `FileId` from another
    /// load of the configuration (which may have read more or fewer files)
    /// is not trusted to be in range.
    fn get(&self, id: FileId) -> Option<&SourceFile>;

    /// The file behind `id`, which must come from this map.
    fn source(&self, id: FileId) -> &SourceFile {
        self.get(id)
            .unwrap_or_else(|| panic!("file {} is not in this source map", id.0))
    }
}

impl SourceMap for SourceFile {
    fn get(&self, _id: FileId) -> Option<&SourceFile> {
        Some(self)
    }
}

impl SourceMap for [SourceFile] {
    fn get(&self, id: FileId) -> Option<&SourceFile> {
        <[SourceFile]>::get(self, id.0 as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `lines` gives each line as `line_bytes` does: terminators (`\n`,
    /// `\r\n`) dropped, an empty line kept, the last line without a line
    /// feed, and nothing for lines past the end.
    #[test]
    fn lines_are_the_line_bytes_of_each_line() {
        let file = SourceFile::new(FileId(0), "t", b"one\r\ntwo\n\nfour".to_vec());
        for (first, last) in [(1, 4), (2, 3), (4, 4), (3, 6)] {
            let lines: Vec<&[u8]> = file.lines(first, last).collect();
            let each: Vec<&[u8]> = (first..=last).map(|l| file.line_bytes(l)).collect();
            assert_eq!(lines, each, "{first}..={last}");
        }
    }

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

    /// Every line start, found the plain way.
    fn line_starts(text: &[u8]) -> Vec<u32> {
        let mut starts = vec![0u32];
        starts.extend(memchr::memchr_iter(b'\n', text).map(|i| i as u32 + 1));
        starts
    }

    #[test]
    fn the_line_index_agrees_with_counting_every_line() {
        // Short lines, lines longer than a step, CRLF, blank runs, texts
        // ending on and off a step boundary, with and without a final LF.
        let mut texts: Vec<Vec<u8>> = vec![
            Vec::new(),
            b"\n".to_vec(),
            b"a".to_vec(),
            vec![b'\n'; LINE_INDEX_STEP],
            vec![b'x'; LINE_INDEX_STEP],
            vec![b'x'; 3 * LINE_INDEX_STEP + 17],
        ];
        let mut seed = 7u64;
        for len in [
            100,
            LINE_INDEX_STEP - 1,
            LINE_INDEX_STEP,
            5 * LINE_INDEX_STEP + 3,
        ] {
            for shape in 0..4 {
                let mut t = Vec::with_capacity(len);
                while t.len() < len {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let r = (seed >> 33) as usize;
                    match (shape, r % 7) {
                        (0, 0) | (1, 0..=3) => t.push(b'\n'),
                        (2, 0) => t.extend_from_slice(b"\r\n"),
                        (3, 0) if r.is_multiple_of(50) => t.push(b'\n'),
                        _ => t.push(b'a' + (r % 26) as u8),
                    }
                }
                t.truncate(len);
                texts.push(t);
            }
        }
        for text in texts {
            let starts = line_starts(&text);
            let f = SourceFile::new(FileId(0), "t", text.clone());
            let expected_count = if text.ends_with(b"\n") {
                starts.len() - 1
            } else {
                starts.len()
            };
            assert_eq!(f.line_count() as usize, expected_count);
            for (i, &s) in starts.iter().enumerate() {
                assert_eq!(
                    f.line_start(i as u32 + 1),
                    s,
                    "line {} of {}",
                    i + 1,
                    text.len()
                );
            }
            assert_eq!(f.line_start(starts.len() as u32 + 1), text.len() as u32);
            let mut known = (0, 1);
            for offset in 0..=text.len() as u32 {
                let line = starts.partition_point(|&s| s <= offset) as u32;
                assert_eq!(f.line_of(offset), line, "offset {offset} of {}", text.len());
                assert_eq!(f.line_of_after(known, offset), line);
                if offset % 3 == 0 {
                    known = (offset, line);
                }
            }
        }
    }
}
