//! Streams any reader through a [`Scanner`] in large blocks with constant
//! memory: one buffer, reused; a partial last line moves to the front; a line
//! longer than the buffer is skipped and counted rather than grown into.

use crate::scan::{EventSink, Scanner};
use std::io::{self, Read};

/// Read buffer size. Large reads keep syscalls and per-block setup rare.
pub const BLOCK: usize = 1 << 20;

/// Scans `reader` to its end. On a read error (truncated gzip, I/O error)
/// everything read before it is still scanned, then the error is returned.
pub fn scan_stream<R: Read, S: EventSink>(
    reader: R,
    scanner: &mut Scanner,
    sink: &mut S,
) -> io::Result<()> {
    let mut lines = LineBlocks::new(reader);
    loop {
        let (skipped, next) = lines.next_block_counted();
        for _ in 0..skipped {
            scanner.skipped_overlong_line();
        }
        match next {
            Ok(Some(block)) => scanner.scan_block(block, sink),
            Ok(None) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// Cuts a byte stream into blocks of whole lines.
pub struct LineBlocks<R> {
    reader: R,
    buf: Vec<u8>,
    /// `buf[start..filled]` is data not yet handed out.
    start: usize,
    filled: usize,
    /// Inside a line longer than the buffer: drop bytes up to its `\n`.
    discarding: bool,
    eof: bool,
    error: Option<io::Error>,
    /// Lines longer than the buffer skipped just before the block last
    /// returned (or before the end); the caller counts and resets it.
    pub skipped: u64,
}

impl<R: Read> LineBlocks<R> {
    pub fn new(reader: R) -> Self {
        Self::with_capacity(reader, BLOCK)
    }

    pub fn with_capacity(reader: R, capacity: usize) -> Self {
        LineBlocks {
            reader,
            buf: vec![0; capacity.max(2)],
            start: 0,
            filled: 0,
            discarding: false,
            eof: false,
            error: None,
            skipped: 0,
        }
    }

    /// [`LineBlocks::next_block`], with the number of overlong lines skipped
    /// just before the block.
    pub fn next_block_counted(&mut self) -> (u64, io::Result<Option<&[u8]>>) {
        let result = self.next_block_inner();
        let skipped = std::mem::take(&mut self.skipped);
        (skipped, result.map(|r| r.map(|(s, e)| &self.buf[s..e])))
    }

    pub fn next_block(&mut self) -> io::Result<Option<&[u8]>> {
        self.next_block_inner()
            .map(|r| r.map(|(s, e)| &self.buf[s..e]))
    }

    /// The next block of whole lines (the final one may lack its `\n`), or
    /// `None` at the end. A read error ends the stream after the data before
    /// it was handed out; it is returned by the call after that.
    fn next_block_inner(&mut self) -> io::Result<Option<(usize, usize)>> {
        loop {
            if self.eof {
                if let Some(e) = self.error.take() {
                    return Err(e);
                }
                if self.start < self.filled {
                    let (s, f) = (self.start, self.filled);
                    self.start = self.filled;
                    if self.discarding {
                        self.discarding = false;
                        self.skipped += 1;
                        continue;
                    }
                    return Ok(Some((s, f)));
                }
                if self.discarding {
                    self.discarding = false;
                    self.skipped += 1;
                }
                return Ok(None);
            }
            // Move the partial line to the front, then fill.
            if self.start > 0 {
                self.buf.copy_within(self.start..self.filled, 0);
                self.filled -= self.start;
                self.start = 0;
            }
            let before = self.filled;
            self.fill();
            let new = &self.buf[before..self.filled];
            if self.discarding {
                match memchr::memchr(b'\n', new) {
                    Some(i) => {
                        self.discarding = false;
                        self.skipped += 1;
                        self.start = before + i + 1;
                    }
                    None => {
                        self.filled = 0;
                        continue;
                    }
                }
            }
            match memchr::memrchr(b'\n', &self.buf[self.start..self.filled]) {
                Some(last) => {
                    let (s, e) = (self.start, self.start + last + 1);
                    self.start = e;
                    return Ok(Some((s, e)));
                }
                None if self.start == 0 && self.filled == self.buf.len() => {
                    // A whole buffer without a line end.
                    self.discarding = true;
                    self.start = 0;
                    self.filled = 0;
                }
                None => {}
            }
        }
    }

    /// Reads until the buffer is at least half full or the input ends, so a
    /// reader that hands out small pieces (a pipe, a gzip decoder) still
    /// yields large blocks.
    fn fill(&mut self) {
        let half = self.buf.len() / 2;
        while self.filled < self.buf.len() {
            match self.reader.read(&mut self.buf[self.filled..]) {
                Ok(0) => {
                    self.eof = true;
                    return;
                }
                Ok(n) => {
                    self.filled += n;
                    if self.filled >= half {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.eof = true;
                    self.error = Some(e);
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::TimeWindow;

    struct Nothing;
    impl EventSink for Nothing {
        fn on_signature(&mut self, _: &crate::classify::Classified<'_>) {}
    }

    /// Hands out one byte per read: the worst case for block assembly.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() || buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.0[0];
            self.0 = &self.0[1..];
            Ok(1)
        }
    }

    fn collect(input: &[u8], cap: usize) -> (Vec<Vec<u8>>, u64) {
        let mut lb = LineBlocks::with_capacity(Trickle(input), cap);
        let mut out = Vec::new();
        while let Some(b) = lb.next_block().unwrap() {
            out.extend(b.split_inclusive(|&c| c == b'\n').map(<[u8]>::to_vec));
        }
        (out, lb.skipped)
    }

    #[test]
    fn blocks_hold_whole_lines_and_overlong_lines_are_skipped() {
        let input = b"aa\nbbbbbbbbbbbbbbbbbbbb\ncc\ndd";
        let (lines, overlong) = collect(input, 8);
        assert_eq!(
            lines,
            vec![b"aa\n".to_vec(), b"cc\n".to_vec(), b"dd".to_vec()]
        );
        assert_eq!(overlong, 1);
        let (lines, overlong) = collect(b"xxxxxxxxxxxxxxxx", 8);
        assert!(lines.is_empty());
        assert_eq!(overlong, 1);
        let (lines, _) = collect(input, 64);
        assert_eq!(lines.len(), 4);
    }

    #[test]
    fn read_error_after_data() {
        struct Fails(bool);
        impl Read for Fails {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 {
                    return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "cut"));
                }
                self.0 = true;
                buf[..4].copy_from_slice(b"a\nb\n");
                Ok(4)
            }
        }
        let mut scanner = Scanner::new(TimeWindow::default());
        let err = scan_stream(Fails(false), &mut scanner, &mut Nothing).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(scanner.stats.lines, 2);
    }
}
