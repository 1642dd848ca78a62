//! The value of a word, stored compactly.
//!
//! A large configuration has millions of words, and a heap allocation for
//! each value (plus the `Vec` header) used to cost several times the size
//! of the text. A [`WordValue`] is 16 bytes: a value of up to
//! [`INLINE_CAPACITY`] bytes is stored in place, and a longer one is a range
//! of a byte buffer shared by all the long values of one parsed file (filled
//! once, when the file has been parsed). It dereferences to `[u8]`, so it
//! reads like the `Vec<u8>` it replaces.

use rustc_hash::FxBuildHasher;
use rustc_hash::FxHashMap;
use std::borrow::Borrow;
use std::collections::hash_map::Entry;
use std::fmt;
use std::hash::BuildHasher;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

/// Values up to this many bytes are stored inside the [`WordValue`].
pub const INLINE_CAPACITY: usize = 14;

/// The long values of one file, back to back. Written once, after parsing.
pub(crate) type SharedBuffer = Arc<OnceLock<Box<[u8]>>>;

/// Values up to this many bytes are stored once per file however often they
/// occur (directive names such as `proxy_set_header` and common arguments
/// repeat thousands of times in a large configuration); longer ones, which
/// seldom repeat, are stored where they occur.
const SHARED_UP_TO: usize = 64;

/// The long values of a file being parsed: the contents its
/// [`SharedBuffer`] will hold once parsing ends.
#[derive(Default)]
pub(crate) struct PendingValues {
    bytes: Vec<u8>,
    /// Where a value of up to [`SHARED_UP_TO`] bytes was stored, by a hash
    /// of its bytes (two values with one hash: the second is stored apart).
    stored: FxHashMap<u64, u32>,
}

impl PendingValues {
    /// Where `value` starts in the buffer: where it already is, or at its
    /// end, appended.
    fn place(&mut self, value: &[u8]) -> u32 {
        if value.len() <= SHARED_UP_TO {
            match self.stored.entry(FxBuildHasher.hash_one(value)) {
                Entry::Occupied(at) => {
                    let start = *at.get() as usize;
                    if self.bytes.get(start..start + value.len()) == Some(value) {
                        return start as u32;
                    }
                }
                Entry::Vacant(slot) => {
                    slot.insert(self.bytes.len() as u32);
                }
            }
        }
        let start = self.bytes.len() as u32;
        self.bytes.extend_from_slice(value);
        start
    }

    /// The buffer's contents, at their exact size.
    pub(crate) fn into_bytes(self) -> Box<[u8]> {
        self.bytes.into_boxed_slice()
    }
}

/// The bytes of a word's value. Compares, hashes and prints (`{:?}`) as its
/// bytes, like a `Vec<u8>`.
#[derive(Clone)]
pub struct WordValue(Repr);

#[derive(Clone)]
enum Repr {
    Inline {
        len: u8,
        bytes: [u8; INLINE_CAPACITY],
    },
    /// `len` bytes from `start` in a file's buffer of long values. nginx
    /// caps a token at 4 KiB, so a parsed value always fits `u16`.
    Shared {
        buffer: SharedBuffer,
        start: u32,
        len: u16,
    },
    /// A whole buffer of its own (long values not made by the parser).
    Whole(Arc<Box<[u8]>>),
}

impl WordValue {
    /// An empty value.
    pub const fn new() -> WordValue {
        WordValue(Repr::Inline {
            len: 0,
            bytes: [0; INLINE_CAPACITY],
        })
    }

    /// A short value stored in place, or `None` if `bytes` is too long.
    fn inline(bytes: &[u8]) -> Option<WordValue> {
        (bytes.len() <= INLINE_CAPACITY).then(|| {
            let mut inline = [0; INLINE_CAPACITY];
            inline[..bytes.len()].copy_from_slice(bytes);
            WordValue(Repr::Inline {
                len: bytes.len() as u8,
                bytes: inline,
            })
        })
    }

    /// A value of the parser: stored in place when short, otherwise placed
    /// in `pending`, the contents `buffer` will hold once it is filled.
    pub(crate) fn parsed(
        bytes: &[u8],
        buffer: &SharedBuffer,
        pending: &mut PendingValues,
    ) -> WordValue {
        if let Some(v) = WordValue::inline(bytes) {
            return v;
        }
        match u16::try_from(bytes.len()) {
            Ok(len) => {
                let start = pending.place(bytes);
                WordValue(Repr::Shared {
                    buffer: Arc::clone(buffer),
                    start,
                    len,
                })
            }
            Err(_) => WordValue::from(bytes),
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..*len as usize],
            Repr::Shared { buffer, start, len } => {
                let all = buffer
                    .get()
                    .expect("a parsed file's long values are filled before its tree is returned");
                &all[*start as usize..*start as usize + *len as usize]
            }
            Repr::Whole(bytes) => bytes,
        }
    }

    /// The value as a `Vec<u8>` of its own.
    pub fn to_vec(&self) -> Vec<u8> {
        self.as_slice().to_vec()
    }
}

impl Default for WordValue {
    fn default() -> Self {
        WordValue::new()
    }
}

impl Deref for WordValue {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for WordValue {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Borrow<[u8]> for WordValue {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl From<&[u8]> for WordValue {
    fn from(bytes: &[u8]) -> Self {
        WordValue::inline(bytes).unwrap_or_else(|| WordValue(Repr::Whole(Arc::new(bytes.into()))))
    }
}

impl From<Vec<u8>> for WordValue {
    fn from(bytes: Vec<u8>) -> Self {
        WordValue::inline(&bytes)
            .unwrap_or_else(|| WordValue(Repr::Whole(Arc::new(bytes.into_boxed_slice()))))
    }
}

impl From<&str> for WordValue {
    fn from(s: &str) -> Self {
        WordValue::from(s.as_bytes())
    }
}

impl<const N: usize> From<&[u8; N]> for WordValue {
    fn from(bytes: &[u8; N]) -> Self {
        WordValue::from(&bytes[..])
    }
}

impl From<WordValue> for Vec<u8> {
    fn from(v: WordValue) -> Self {
        v.to_vec()
    }
}

impl fmt::Debug for WordValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_slice().fmt(f)
    }
}

impl PartialEq for WordValue {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for WordValue {}

impl Hash for WordValue {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state)
    }
}

impl PartialOrd for WordValue {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for WordValue {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

impl PartialEq<[u8]> for WordValue {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_slice() == other
    }
}

impl PartialEq<&[u8]> for WordValue {
    fn eq(&self, other: &&[u8]) -> bool {
        self.as_slice() == *other
    }
}

impl<const N: usize> PartialEq<[u8; N]> for WordValue {
    fn eq(&self, other: &[u8; N]) -> bool {
        self.as_slice() == other
    }
}

impl<const N: usize> PartialEq<&[u8; N]> for WordValue {
    fn eq(&self, other: &&[u8; N]) -> bool {
        self.as_slice() == *other
    }
}

impl PartialEq<Vec<u8>> for WordValue {
    fn eq(&self, other: &Vec<u8>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl PartialEq<WordValue> for Vec<u8> {
    fn eq(&self, other: &WordValue) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl PartialEq<WordValue> for [u8] {
    fn eq(&self, other: &WordValue) -> bool {
        self == other.as_slice()
    }
}

impl PartialEq<WordValue> for &[u8] {
    fn eq(&self, other: &WordValue) -> bool {
        *self == other.as_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_bytes() {
        assert_eq!(std::mem::size_of::<WordValue>(), 16);
    }

    #[test]
    fn short_long_and_shared_values_read_back() {
        let buffer: SharedBuffer = Arc::default();
        let mut pending = PendingValues::default();
        let short = WordValue::parsed(b"on", &buffer, &mut pending);
        let long = WordValue::parsed(b"proxy_http_version", &buffer, &mut pending);
        let longer = WordValue::parsed(b"http://backend_upstream/api", &buffer, &mut pending);
        let again = WordValue::parsed(b"proxy_http_version", &buffer, &mut pending);
        let very_long = vec![b'z'; SHARED_UP_TO + 1];
        let very_long_value = WordValue::parsed(&very_long, &buffer, &mut pending);
        let very_long_again = WordValue::parsed(&very_long, &buffer, &mut pending);
        // A repeated value is stored once; one too long to share, twice.
        let stored = b"proxy_http_version".len()
            + b"http://backend_upstream/api".len()
            + 2 * very_long.len();
        assert_eq!(pending.bytes.len(), stored);
        buffer.set(pending.into_bytes()).unwrap();
        assert_eq!(again, long);
        assert_eq!(very_long_value.as_slice(), &very_long[..]);
        assert_eq!(very_long_again, very_long_value);
        assert_eq!(short, b"on");
        assert_eq!(long, b"proxy_http_version");
        assert_eq!(longer.as_slice(), b"http://backend_upstream/api");
        assert_eq!(WordValue::from(b"proxy_http_version"), long);
        assert_eq!(format!("{short:?}"), format!("{:?}", b"on".to_vec()));
        let exactly_inline = [b'x'; INLINE_CAPACITY];
        assert_eq!(WordValue::from(&exactly_inline), exactly_inline);
        assert_eq!(WordValue::from(vec![b'y'; 70_000]).len(), 70_000);
    }
}
