//! Byte search within one log line.
//!
//! The fields of an error-log line are short: a client address, a server
//! name, a request line of a few dozen bytes. memchr's vector searchers pay
//! a fixed cost per call (CPU dispatch, alignment set-up, tail handling)
//! that is larger than the search itself on haystacks that short, and a
//! signature line needs a dozen such searches. These functions are inlined
//! and have no set-up: on x86_64 they compare 16 bytes at a time with SSE2
//! (part of the x86_64 baseline, so no CPU check), and below 16 bytes, or
//! on other targets, eight at a time in a plain `u64` (SWAR).

const ONES: u64 = 0x0101_0101_0101_0101;
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// The high bit of each byte of `word` that equals the byte repeated in
/// `pattern`, and no other bit. Exact (no borrow between bytes), so it
/// serves searches from either end.
#[inline(always)]
fn matches(word: u64, pattern: u64) -> u64 {
    let x = word ^ pattern;
    // A byte of x is zero exactly when adding 0x7f to its low seven bits
    // does not carry into bit 7 and its own bit 7 is clear.
    !(((x & LOW7).wrapping_add(LOW7)) | x | LOW7)
}

#[inline(always)]
fn word_at(hay: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&hay[at..at + 8]);
    u64::from_le_bytes(w)
}

/// The index of the first `needle` in `hay`.
#[inline]
pub fn find_byte(needle: u8, hay: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if hay.len() >= 16 {
        return sse2::find(needle, hay);
    }
    find_byte_swar(needle, hay)
}

/// The index of the last `needle` in `hay`.
#[inline]
pub fn rfind_byte(needle: u8, hay: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    if hay.len() >= 16 {
        return sse2::rfind(needle, hay);
    }
    rfind_byte_swar(needle, hay)
}

#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };

    /// The bit mask of the bytes equal to `needle` among `hay[at..at + 16]`.
    #[inline(always)]
    fn mask16(needle: u8, hay: &[u8], at: usize) -> u32 {
        let chunk = &hay[at..at + 16];
        // SAFETY: SSE2 is in the x86_64 baseline; the load reads exactly
        // the 16 bytes of `chunk` (bounds checked by the slice above), and
        // an unaligned load has no alignment requirement.
        unsafe {
            let v = _mm_loadu_si128(chunk.as_ptr().cast::<__m128i>());
            _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(needle as i8))) as u32
        }
    }

    /// `hay.len() >= 16`.
    #[inline(always)]
    pub(super) fn find(needle: u8, hay: &[u8]) -> Option<usize> {
        let mut at = 0;
        while at + 16 <= hay.len() {
            let m = mask16(needle, hay, at);
            if m != 0 {
                return Some(at + m.trailing_zeros() as usize);
            }
            at += 16;
        }
        if at == hay.len() {
            return None;
        }
        // The last 16 bytes overlap what was searched; a match there can
        // only be in the unsearched tail.
        let last = hay.len() - 16;
        let m = mask16(needle, hay, last);
        (m != 0).then(|| last + m.trailing_zeros() as usize)
    }

    /// `hay.len() >= 16`.
    #[inline(always)]
    pub(super) fn rfind(needle: u8, hay: &[u8]) -> Option<usize> {
        let mut end = hay.len();
        while end >= 16 {
            let m = mask16(needle, hay, end - 16);
            if m != 0 {
                return Some(end - 16 + (31 - m.leading_zeros()) as usize);
            }
            end -= 16;
        }
        if end == 0 {
            return None;
        }
        let m = mask16(needle, hay, 0);
        (m != 0).then(|| (31 - m.leading_zeros()) as usize)
    }
}

#[inline(always)]
fn find_byte_swar(needle: u8, hay: &[u8]) -> Option<usize> {
    let pattern = ONES * u64::from(needle);
    if hay.len() < 8 {
        return hay.iter().position(|&b| b == needle);
    }
    let mut i = 0;
    while i + 8 <= hay.len() {
        let m = matches(word_at(hay, i), pattern);
        if m != 0 {
            return Some(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    if i == hay.len() {
        return None;
    }
    // The last word overlaps the one before; its first bytes were
    // already searched and hold no match, so any match is in the tail.
    let last = hay.len() - 8;
    let m = matches(word_at(hay, last), pattern);
    (m != 0).then(|| last + (m.trailing_zeros() / 8) as usize)
}

#[inline(always)]
fn rfind_byte_swar(needle: u8, hay: &[u8]) -> Option<usize> {
    let pattern = ONES * u64::from(needle);
    if hay.len() < 8 {
        return hay.iter().rposition(|&b| b == needle);
    }
    let mut end = hay.len();
    while end >= 8 {
        let m = matches(word_at(hay, end - 8), pattern);
        if m != 0 {
            return Some(end - 8 + (7 - (m.leading_zeros() / 8) as usize));
        }
        end -= 8;
    }
    if end == 0 {
        return None;
    }
    // The first word overlaps the one after; only its head is unsearched.
    let m = matches(word_at(hay, 0), pattern);
    (m != 0).then(|| 7 - (m.leading_zeros() / 8) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every length from 0 to 50, the needle at every position, alone,
    /// twice, and next to bytes that break naive SWAR tricks (0x01 after
    /// a match, 0x80 and 0xff).
    #[test]
    fn agrees_with_iterators() {
        let fillers = [b'a', 0x00, 0x01, 0x80, 0xff, b','];
        for len in 0..50 {
            for &fill in &fillers {
                for needle in [b',', b'"', 0x01, 0x80] {
                    if needle == fill {
                        continue;
                    }
                    let mut hay = vec![fill; len];
                    assert_eq!(find_byte(needle, &hay), None);
                    assert_eq!(rfind_byte(needle, &hay), None);
                    for a in 0..len {
                        hay[a] = needle;
                        for b in a..len {
                            let saved = hay[b];
                            hay[b] = needle;
                            let first = hay.iter().position(|&c| c == needle);
                            let last = hay.iter().rposition(|&c| c == needle);
                            assert_eq!(find_byte(needle, &hay), first, "{hay:?}");
                            assert_eq!(rfind_byte(needle, &hay), last, "{hay:?}");
                            assert_eq!(find_byte_swar(needle, &hay), first, "{hay:?}");
                            assert_eq!(rfind_byte_swar(needle, &hay), last, "{hay:?}");
                            hay[b] = saved;
                        }
                        hay[a] = fill;
                    }
                }
            }
        }
    }
}
