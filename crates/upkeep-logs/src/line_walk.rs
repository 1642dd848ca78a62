//! Walks a block of lines and says, for each, whether "upstream" occurs in
//! it, in one pass over the bytes.
//!
//! Finding each line end with its own memchr call, and the prefilter needle
//! with a separate substring search, reads the block twice and pays a
//! call's set-up per line; on an error log of 200-byte lines that was about
//! half of the time `upkeep logs` spent outside the kernel. Here the block
//! is read once, 64 bytes at a time, into two bitmasks: where the line ends
//! are, and where "upstream" may start (a `u` with an `m` seven bytes
//! later, the needle's first and last bytes). Candidates are confirmed with
//! one 8-byte comparison. Lines are then handed out from the line-end mask.
//!
//! On x86_64 the masks come from AVX2 where the CPU has it and SSE2 (which
//! every x86_64 CPU has) otherwise; other targets compute them a byte at a
//! time.

use crate::classify::NEEDLE;

const NEEDLE_WORD: [u8; 8] = {
    let b = NEEDLE.as_bytes();
    assert!(
        b.len() == 8,
        "the line walker compares the needle as one u64"
    );
    [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]
};

/// Chunk width, in bytes: one bit of a `u64` mask per byte.
const CHUNK: usize = 64;
/// The second byte of a candidate is this far after the first.
const PAIR_GAP: usize = NEEDLE_WORD.len() - 1;

/// Calls `on_line(line, has_needle)` for every line of `block` in order,
/// without its `\n`. The last line may lack a `\n` (the end of the input);
/// a block ending in `\n` has no empty line after it.
#[inline]
pub fn walk_lines<F: FnMut(&[u8], bool)>(block: &[u8], on_line: F) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            unsafe { x86::walk_avx2(block, on_line) };
        } else {
            walk_with::<x86::Sse2, F>(block, on_line);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    walk_with::<Portable, F>(block, on_line);
}

/// Computes the two masks of one chunk. `chunk` holds the 64 bytes of the
/// chunk and at least the 7 after them: a mask of the `\n` bytes, and a
/// mask of the positions where the needle's first byte is followed 7 bytes
/// later by its last.
trait MaskSource {
    fn masks(chunk: &[u8]) -> (u64, u64);
}

#[inline(always)]
fn walk_with<M: MaskSource, F: FnMut(&[u8], bool)>(block: &[u8], mut on_line: F) {
    let mut state = Walk {
        line_start: 0,
        hit_pending: false,
    };
    let mut at = 0;
    // Whole chunks, while the paired load 7 bytes on stays inside the block.
    while at + CHUNK + PAIR_GAP <= block.len() {
        let (ends, candidates) = M::masks(&block[at..at + CHUNK + PAIR_GAP]);
        let hits = confirm(block, at, candidates);
        state.chunk(block, at, ends, hits, &mut on_line);
        at += CHUNK;
    }
    // The rest (under 71 bytes), copied into a zero-padded buffer so that
    // the same mask code can read past its end. Zero bytes are neither
    // line ends nor candidates.
    while at < block.len() {
        let len = (block.len() - at).min(CHUNK);
        let mut padded = [0u8; CHUNK + PAIR_GAP + 8];
        let take = (block.len() - at).min(padded.len());
        padded[..take].copy_from_slice(&block[at..at + take]);
        let (ends, candidates) = M::masks(&padded[..CHUNK + PAIR_GAP]);
        let hits = confirm(&padded, 0, candidates);
        let keep = if len == CHUNK {
            u64::MAX
        } else {
            (1u64 << len) - 1
        };
        state.chunk(block, at, ends & keep, hits & keep, &mut on_line);
        at += len;
    }
    if state.line_start < block.len() {
        on_line(&block[state.line_start..], state.hit_pending);
    }
}

struct Walk {
    line_start: usize,
    /// A needle starts in the current line, before the chunk at hand.
    hit_pending: bool,
}

impl Walk {
    /// Hands out every line that ends in the chunk at `at`.
    #[inline(always)]
    fn chunk<F: FnMut(&[u8], bool)>(
        &mut self,
        block: &[u8],
        at: usize,
        mut ends: u64,
        mut hits: u64,
        on_line: &mut F,
    ) {
        while ends != 0 {
            let bit = ends.trailing_zeros();
            let before = (1u64 << bit) - 1;
            let has_needle = self.hit_pending || hits & before != 0;
            hits &= !before;
            self.hit_pending = false;
            let end = at + bit as usize;
            on_line(&block[self.line_start..end], has_needle);
            self.line_start = end + 1;
            ends &= ends - 1;
        }
        self.hit_pending |= hits != 0;
    }
}

/// The candidates of a chunk that really start the needle. `hay[at..]`
/// holds the chunk and at least the 7 bytes after it.
#[inline(always)]
fn confirm(hay: &[u8], at: usize, mut candidates: u64) -> u64 {
    let mut hits = 0;
    while candidates != 0 {
        let bit = candidates.trailing_zeros() as usize;
        let start = at + bit;
        if hay.get(start..start + NEEDLE_WORD.len()) == Some(&NEEDLE_WORD[..]) {
            hits |= 1 << bit;
        }
        candidates &= candidates - 1;
    }
    hits
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{walk_with, MaskSource, CHUNK, NEEDLE_WORD, PAIR_GAP};
    use std::arch::x86_64::*;

    /// SSE2 is part of the x86_64 baseline: always available.
    pub(super) struct Sse2;

    impl MaskSource for Sse2 {
        #[inline(always)]
        fn masks(chunk: &[u8]) -> (u64, u64) {
            assert!(chunk.len() >= CHUNK + PAIR_GAP);
            let mut ends = 0u64;
            let mut candidates = 0u64;
            // SAFETY: SSE2 is in the x86_64 baseline. The loads read 16
            // bytes at 16 * k and 16 * k + 7 for k < 4: the last byte read
            // is at 70, inside `chunk` (asserted). Unaligned loads need no
            // alignment.
            unsafe {
                let newline = _mm_set1_epi8(b'\n' as i8);
                let first = _mm_set1_epi8(NEEDLE_WORD[0] as i8);
                let last = _mm_set1_epi8(NEEDLE_WORD[PAIR_GAP] as i8);
                let base = chunk.as_ptr();
                for k in 0..4 {
                    let here = _mm_loadu_si128(base.add(16 * k).cast::<__m128i>());
                    let later = _mm_loadu_si128(base.add(16 * k + PAIR_GAP).cast::<__m128i>());
                    let nl = _mm_movemask_epi8(_mm_cmpeq_epi8(here, newline)) as u16;
                    let pair =
                        _mm_and_si128(_mm_cmpeq_epi8(here, first), _mm_cmpeq_epi8(later, last));
                    let cand = _mm_movemask_epi8(pair) as u16;
                    ends |= u64::from(nl) << (16 * k);
                    candidates |= u64::from(cand) << (16 * k);
                }
            }
            (ends, candidates)
        }
    }

    struct Avx2;

    impl MaskSource for Avx2 {
        /// Only ever inlined into [`walk_avx2`], which enables AVX2.
        #[inline(always)]
        fn masks(chunk: &[u8]) -> (u64, u64) {
            assert!(chunk.len() >= CHUNK + PAIR_GAP);
            let mut ends = 0u64;
            let mut candidates = 0u64;
            // SAFETY: only reached through `walk_avx2`, whose caller checked
            // that the CPU has AVX2. The loads read 32 bytes at 32 * k and
            // 32 * k + 7 for k < 2: the last byte read is at 70, inside
            // `chunk` (asserted).
            unsafe {
                let newline = _mm256_set1_epi8(b'\n' as i8);
                let first = _mm256_set1_epi8(NEEDLE_WORD[0] as i8);
                let last = _mm256_set1_epi8(NEEDLE_WORD[PAIR_GAP] as i8);
                let base = chunk.as_ptr();
                for k in 0..2 {
                    let here = _mm256_loadu_si256(base.add(32 * k).cast::<__m256i>());
                    let later = _mm256_loadu_si256(base.add(32 * k + PAIR_GAP).cast::<__m256i>());
                    let nl = _mm256_movemask_epi8(_mm256_cmpeq_epi8(here, newline)) as u32;
                    let pair = _mm256_and_si256(
                        _mm256_cmpeq_epi8(here, first),
                        _mm256_cmpeq_epi8(later, last),
                    );
                    let cand = _mm256_movemask_epi8(pair) as u32;
                    ends |= u64::from(nl) << (32 * k);
                    candidates |= u64::from(cand) << (32 * k);
                }
            }
            (ends, candidates)
        }
    }

    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn walk_avx2<F: FnMut(&[u8], bool)>(block: &[u8], on_line: F) {
        walk_with::<Avx2, F>(block, on_line);
    }
}

/// The same masks, a byte at a time, for targets without SSE2.
#[cfg(not(target_arch = "x86_64"))]
struct Portable;

#[cfg(not(target_arch = "x86_64"))]
impl MaskSource for Portable {
    #[inline(always)]
    fn masks(chunk: &[u8]) -> (u64, u64) {
        let mut ends = 0u64;
        let mut candidates = 0u64;
        for i in 0..CHUNK {
            ends |= u64::from(chunk[i] == b'\n') << i;
            let pair = chunk[i] == NEEDLE_WORD[0] && chunk[i + PAIR_GAP] == NEEDLE_WORD[PAIR_GAP];
            candidates |= u64::from(pair) << i;
        }
        (ends, candidates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain way: split on `\n`, search each line.
    fn reference(block: &[u8]) -> Vec<(Vec<u8>, bool)> {
        let mut lines: Vec<&[u8]> = block.split(|&b| b == b'\n').collect();
        if block.last() == Some(&b'\n') || block.is_empty() {
            lines.pop();
        }
        lines
            .into_iter()
            .map(|l| (l.to_vec(), l.windows(8).any(|w| w == NEEDLE.as_bytes())))
            .collect()
    }

    /// What the walker hands out; on x86_64 also checks that the SSE2
    /// masks give the same as the ones `walk_lines` picked for this CPU.
    fn walked(block: &[u8]) -> Vec<(Vec<u8>, bool)> {
        let mut out = Vec::new();
        walk_lines(block, |l, hit| out.push((l.to_vec(), hit)));
        #[cfg(target_arch = "x86_64")]
        {
            let mut sse2 = Vec::new();
            walk_with::<x86::Sse2, _>(block, |l, hit| sse2.push((l.to_vec(), hit)));
            assert_eq!(sse2, out);
        }
        out
    }

    /// A small deterministic generator (xorshift), so failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn agrees_with_splitting_on_random_blocks() {
        // Pieces that make needles, near-needles, line ends at every
        // offset and needles across chunk edges likely.
        let pieces: [&[u8]; 8] = [
            b"upstream",
            b"upstrea",
            b"u      m",
            b"\n",
            b"x",
            b"pstream\n",
            b"\n\n",
            b"mupstreamupstream",
        ];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..3000 {
            let n = (rng.next() % 60) as usize;
            let mut block = Vec::new();
            for _ in 0..n {
                let piece = pieces[(rng.next() % pieces.len() as u64) as usize];
                block.extend_from_slice(piece);
                if rng.next().is_multiple_of(3) {
                    block.extend(std::iter::repeat_n(b'-', (rng.next() % 70) as usize));
                }
            }
            assert_eq!(
                walked(&block),
                reference(&block),
                "{:?}",
                String::from_utf8_lossy(&block)
            );
        }
    }

    #[test]
    fn edges() {
        assert_eq!(walked(b""), reference(b""));
        assert_eq!(walked(b"\n"), vec![(vec![], false)]);
        assert_eq!(walked(b"upstream"), vec![(b"upstream".to_vec(), true)]);
        // A needle that starts in one chunk and ends in the next.
        let mut block = vec![b'a'; 60];
        block.extend_from_slice(b"upstream tail\n");
        block.extend(vec![b'b'; 100]);
        block.push(b'\n');
        assert_eq!(walked(&block), reference(&block));
        assert!(walked(&block)[0].1);
        assert!(!walked(&block)[1].1);
        // A line end exactly at the last byte of a chunk.
        let mut block = vec![b'c'; 63];
        block.push(b'\n');
        block.extend_from_slice(b"upstream\n");
        assert_eq!(walked(&block), reference(&block));
    }
}
