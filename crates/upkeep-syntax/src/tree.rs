//! The lossless tree. Nodes hold spans into the [`SourceFile`](crate::SourceFile);
//! the bytes between consecutive tokens are trivia (whitespace, line endings,
//! comments that are not nodes of their own).

use crate::{FileId, SharedText, Span};
use std::borrow::Cow;
use std::ptr::NonNull;
use std::sync::Arc;

/// How a word was written in the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuoteStyle {
    Bare,
    Single,
    Double,
}

/// One token that nginx passes to a directive handler (a directive name or
/// an argument), as read from its directive: a view of 16 bytes, copied
/// freely, that borrows the directive's text.
///
/// The tree itself stores a word in 8 bytes (`RawWord`: its offset and a
/// few bits), because a large configuration has millions of them; the file
/// and its text are the directive's, stored once for all its words.
#[derive(Clone, Copy)]
pub struct Word<'a> {
    source: &'a WordSource,
    raw: RawWord,
}

/// How a directive stores one of its words: the offset of the token in the
/// file and `meta`, which packs the token's length, its quote style, whether
/// its value is held apart (escapes resolved), and for the name only, how
/// many arguments the directive has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RawWord {
    start: u32,
    meta: u32,
}

/// The lexer reports any token that is still open 4096 bytes after it
/// started (nginx's `NGX_CONF_BUFFER`), so 13 bits always hold a token's
/// length; the parser still refuses a longer one rather than cut it.
const LEN_BITS: u32 = 13;
pub(crate) const MAX_WORD_LEN: u32 = (1 << LEN_BITS) - 1;
const QUOTE_SHIFT: u32 = LEN_BITS;
const OWN_VALUE: u32 = 1 << (LEN_BITS + 2);
/// The name's `meta` says where the directive keeps its arguments and the
/// rest (see [`Rest`]): whether it has a [`Tail`], and if not, how many
/// arguments it has, below [`COUNT_LIMIT`].
const TAIL: u32 = 1 << (LEN_BITS + 3);
const COUNT_SHIFT: u32 = LEN_BITS + 4;
/// A directive without a tail has fewer arguments than this; one with
/// more keeps them in a tail.
const COUNT_LIMIT: u32 = u32::MAX >> COUNT_SHIFT;

impl RawWord {
    /// The token at `start..end` written with `quote`; `own_value` when
    /// its value is not its bytes inside the quotes (held by the source).
    pub(crate) fn new(start: u32, end: u32, quote: QuoteStyle, own_value: bool) -> RawWord {
        debug_assert!(end - start <= MAX_WORD_LEN);
        let quote = match quote {
            QuoteStyle::Bare => 0,
            QuoteStyle::Single => 1,
            QuoteStyle::Double => 2,
        };
        RawWord {
            start,
            meta: (end - start) | (quote << QUOTE_SHIFT) | if own_value { OWN_VALUE } else { 0 },
        }
    }

    fn end(self) -> u32 {
        self.start + (self.meta & MAX_WORD_LEN)
    }

    fn quote(self) -> QuoteStyle {
        match (self.meta >> QUOTE_SHIFT) & 3 {
            0 => QuoteStyle::Bare,
            1 => QuoteStyle::Single,
            _ => QuoteStyle::Double,
        }
    }

    fn own_value(self) -> bool {
        self.meta & OWN_VALUE != 0
    }

    /// The argument count of a directive without a tail.
    fn count(self) -> u32 {
        self.meta >> COUNT_SHIFT
    }

    fn has_tail(self) -> bool {
        self.meta & TAIL != 0
    }

    /// The name of a directive without a tail, with `count` arguments.
    fn with_count(self, count: u32) -> RawWord {
        debug_assert!(count < COUNT_LIMIT);
        RawWord {
            start: self.start,
            meta: (self.meta & !TAIL & !(u32::MAX << COUNT_SHIFT)) | (count << COUNT_SHIFT),
        }
    }

    /// The name of a directive with a tail.
    fn with_tail(self) -> RawWord {
        RawWord {
            start: self.start,
            meta: (self.meta & !(u32::MAX << COUNT_SHIFT)) | TAIL,
        }
    }
}

/// What the words of a directive read their values from: the file and its
/// text, shared by every directive of the file, and for a directive with
/// escapes (`"a\"b"`), whose value differs from its bytes, a source of its
/// own that also holds those values.
#[derive(Debug)]
pub(crate) struct WordSource {
    file: FileId,
    text: SharedText,
    /// The values of the words whose value is not their bytes, by the
    /// offset of the word, in order (empty in the file's shared source).
    values: Box<[(u32, Box<[u8]>)]>,
}

impl WordSource {
    /// The source every directive of `file` without escapes shares.
    pub(crate) fn shared(file: FileId, text: &SharedText) -> Arc<WordSource> {
        Arc::new(WordSource {
            file,
            text: SharedText::clone(text),
            values: Box::new([]),
        })
    }

    /// A source of its own for a directive of the same file whose words
    /// at the given offsets have values other than their bytes.
    pub(crate) fn with_values(&self, values: Vec<(u32, Box<[u8]>)>) -> Arc<WordSource> {
        debug_assert!(values.windows(2).all(|w| w[0].0 < w[1].0));
        Arc::new(WordSource {
            file: self.file,
            text: SharedText::clone(&self.text),
            values: values.into_boxed_slice(),
        })
    }
}

impl<'a> Word<'a> {
    /// The raw token, quotes included.
    pub fn span(self) -> Span {
        Span::new(self.source.file, self.raw.start, self.raw.end())
    }

    /// How the token was written.
    pub fn quote(self) -> QuoteStyle {
        self.raw.quote()
    }

    /// The value nginx's tokenizer hands to the directive: quotes removed
    /// and the escapes `\"`, `\'`, `\\`, `\t`, `\r`, `\n` resolved as
    /// `ngx_conf_read_token` resolves them.
    pub fn value(self) -> &'a [u8] {
        if self.raw.own_value() {
            let values = &self.source.values;
            if let Ok(i) = values.binary_search_by_key(&self.raw.start, |(at, _)| *at) {
                return &values[i].1;
            }
        }
        let quotes = match self.raw.quote() {
            QuoteStyle::Bare => 0,
            QuoteStyle::Single | QuoteStyle::Double => 1,
        };
        &self.source.text[self.raw.start as usize + quotes..self.raw.end() as usize - quotes]
    }

    /// The value as text; non-UTF-8 bytes become U+FFFD (for display and
    /// matching only; the source bytes are untouched).
    pub fn text(self) -> Cow<'a, str> {
        String::from_utf8_lossy(self.value())
    }

    /// The value is exactly `s` (directive names are case-sensitive in
    /// nginx: `ngx_conf_handler` compares them with `ngx_strcmp`).
    pub fn is(self, s: &str) -> bool {
        self.value() == s.as_bytes()
    }

    /// The value is the keyword `s` in any case (`on`, `OFF`, `Error`):
    /// nginx reads the keywords of its arguments with `ngx_strcasecmp`.
    pub fn is_keyword(self, s: &str) -> bool {
        self.value().eq_ignore_ascii_case(s.as_bytes())
    }
}

/// Two words are equal when they are the same token at the same place
/// with the same value.
impl PartialEq for Word<'_> {
    fn eq(&self, other: &Word<'_>) -> bool {
        self.span() == other.span()
            && self.quote() == other.quote()
            && self.value() == other.value()
    }
}

impl Eq for Word<'_> {}

impl std::fmt::Debug for Word<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Word")
            .field("span", &self.span())
            .field("value", &self.value())
            .field("quote", &self.quote())
            .finish()
    }
}

/// The arguments of a directive, read as words: a view that is copied
/// freely and indexed with [`Args::get`].
#[derive(Clone, Copy)]
pub struct Args<'a> {
    source: &'a WordSource,
    words: &'a [RawWord],
}

impl<'a> Args<'a> {
    pub fn len(self) -> usize {
        self.words.len()
    }

    pub fn is_empty(self) -> bool {
        self.words.is_empty()
    }

    pub fn get(self, i: usize) -> Option<Word<'a>> {
        let raw = *self.words.get(i)?;
        Some(Word {
            source: self.source,
            raw,
        })
    }

    pub fn first(self) -> Option<Word<'a>> {
        self.get(0)
    }

    pub fn last(self) -> Option<Word<'a>> {
        self.get(self.words.len().checked_sub(1)?)
    }

    /// The arguments from the `n`th on (none when there are fewer).
    pub fn after(self, n: usize) -> Args<'a> {
        Args {
            source: self.source,
            words: self.words.get(n..).unwrap_or(&[]),
        }
    }

    pub fn iter(self) -> ArgsIter<'a> {
        ArgsIter {
            source: self.source,
            words: self.words.iter(),
        }
    }
}

impl<'a> IntoIterator for Args<'a> {
    type Item = Word<'a>;
    type IntoIter = ArgsIter<'a>;
    fn into_iter(self) -> ArgsIter<'a> {
        self.iter()
    }
}

impl<'a> IntoIterator for &Args<'a> {
    type Item = Word<'a>;
    type IntoIter = ArgsIter<'a>;
    fn into_iter(self) -> ArgsIter<'a> {
        self.iter()
    }
}

impl PartialEq for Args<'_> {
    fn eq(&self, other: &Args<'_>) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Args<'_> {}

impl std::fmt::Debug for Args<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The words of [`Args`], in order.
#[derive(Clone)]
pub struct ArgsIter<'a> {
    source: &'a WordSource,
    words: std::slice::Iter<'a, RawWord>,
}

impl<'a> Iterator for ArgsIter<'a> {
    type Item = Word<'a>;
    fn next(&mut self) -> Option<Word<'a>> {
        let raw = *self.words.next()?;
        Some(Word {
            source: self.source,
            raw,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.words.size_hint()
    }
}

impl DoubleEndedIterator for ArgsIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let raw = *self.words.next_back()?;
        Some(Word {
            source: self.source,
            raw,
        })
    }
}

impl ExactSizeIterator for ArgsIter<'_> {}

/// A `#` comment, from the `#` to the end of its line (terminator excluded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comment {
    pub span: Span,
}

/// The comments inside a directive (`proxy_pass # why\n http://b;`), read
/// as a slice. Almost every directive has none, so the list is one pointer,
/// null when empty, rather than a slice's two words.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct InnerComments(Option<Box<Box<[Comment]>>>);

impl std::ops::Deref for InnerComments {
    type Target = [Comment];
    fn deref(&self) -> &[Comment] {
        self.0.as_deref().map_or(&[], |c| &c[..])
    }
}

impl<'a> IntoIterator for &'a InnerComments {
    type Item = &'a Comment;
    type IntoIter = std::slice::Iter<'a, Comment>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl FromIterator<Comment> for InnerComments {
    fn from_iter<I: IntoIterator<Item = Comment>>(iter: I) -> Self {
        let comments: Box<[Comment]> = iter.into_iter().collect();
        InnerComments((!comments.is_empty()).then(|| Box::new(comments)))
    }
}

impl std::fmt::Debug for InnerComments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A simple (`name args;`) or block (`name args { … }`) directive.
///
/// Large configurations hold millions of these, so a directive is 24
/// bytes: the source its words read from, its name, and one word that
/// holds the rest in the form most directives need (see [`Rest`]).
pub struct Directive {
    source: Arc<WordSource>,
    /// The name; its spare bits say which form `rest` has.
    name: RawWord,
    rest: Rest,
}

/// The arguments and the rest of a directive, in one of three forms,
/// told apart by the name's bits:
/// - no tail, one argument: the argument itself (`one`);
/// - no tail, none or two and more: a pointer to an exact-size list of
///   them (`many`, `Box<[RawWord]>` without its length, which is the
///   name's count; unused when the count is 0);
/// - a tail (`tail`, `Box<Tail>`): for a block directive, a directive
///   with comments between its words or a `;` apart from its last word,
///   and one with [`COUNT_LIMIT`] arguments or more.
#[derive(Clone, Copy)]
union Rest {
    one: RawWord,
    many: NonNull<RawWord>,
    tail: NonNull<Tail>,
}

/// What only some directives have, with their arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Tail {
    extra: DirectiveExtra,
    args: Box<[RawWord]>,
}

/// Which form a directive's [`Rest`] has (read from its name's bits).
enum Form {
    None,
    One,
    Many(usize),
    Tail,
}

// SAFETY: `rest` is the only pointer to an allocation the directive owns,
// as a `Box<[RawWord]>` or a `Box<Tail>` would be, and what it points to
// is plain data or owned: sending or sharing a directive is as safe as
// sending or sharing those boxes.
unsafe impl Send for Directive {}
// SAFETY: as above; nothing is mutated through `&Directive`.
unsafe impl Sync for Directive {}

/// What only some directives have. A block directive's span ends at its
/// `}`; a simple directive's at its `;`, which is kept here only when it
/// does not follow the last word at once (`name arg ;`, `name arg # c\n;`).
#[derive(Clone, Debug, PartialEq, Eq)]
enum DirectiveExtra {
    Block {
        block: Block,
        inner_comments: InnerComments,
    },
    Simple {
        /// One past the `;`.
        end: u32,
        inner_comments: InnerComments,
    },
}

impl Directive {
    /// A directive of the file `source` reads, whose span ends at `end`
    /// (exclusive): one past its `;`, or past the `}` of its block.
    pub(crate) fn new(
        source: Arc<WordSource>,
        name: RawWord,
        args: &[RawWord],
        inner_comments: InnerComments,
        block: Option<Block>,
        end: u32,
    ) -> Directive {
        let last_word_end = args.last().map_or(name, |w| *w).end();
        let extra = match block {
            Some(block) => {
                debug_assert_eq!(block.close + 1, end);
                Some(DirectiveExtra::Block {
                    block,
                    inner_comments,
                })
            }
            None if inner_comments.is_empty() && end == last_word_end + 1 => None,
            None => Some(DirectiveExtra::Simple {
                end,
                inner_comments,
            }),
        };
        let count = u32::try_from(args.len()).ok().filter(|&c| c < COUNT_LIMIT);
        let (name, rest) = match (extra, count, args) {
            (None, Some(1), [one]) => (name.with_count(1), Rest { one: *one }),
            (None, Some(0), _) => (
                name.with_count(0),
                Rest {
                    many: NonNull::dangling(),
                },
            ),
            (None, Some(count), _) => {
                let list: Box<[RawWord]> = args.into();
                let many = NonNull::from(Box::leak(list)).cast::<RawWord>();
                (name.with_count(count), Rest { many })
            }
            (extra, _, _) => {
                // A long list without anything else still needs the tail
                // for its length: its extra then only repeats its end.
                let extra = extra.unwrap_or(DirectiveExtra::Simple {
                    end,
                    inner_comments: InnerComments::default(),
                });
                let tail = Box::new(Tail {
                    extra,
                    args: args.into(),
                });
                (
                    name.with_tail(),
                    Rest {
                        tail: NonNull::from(Box::leak(tail)),
                    },
                )
            }
        };
        Directive { source, name, rest }
    }

    fn form(&self) -> Form {
        if self.name.has_tail() {
            return Form::Tail;
        }
        match self.name.count() {
            0 => Form::None,
            1 => Form::One,
            n => Form::Many(n as usize),
        }
    }

    fn tail(&self) -> Option<&Tail> {
        match self.form() {
            // SAFETY: the name says `rest` is the pointer of a `Box<Tail>`
            // this directive owns (`Directive::new`), alive as long as it.
            Form::Tail => Some(unsafe { self.rest.tail.as_ref() }),
            _ => None,
        }
    }

    fn extra(&self) -> Option<&DirectiveExtra> {
        self.tail().map(|t| &t.extra)
    }

    fn raw_args(&self) -> &[RawWord] {
        match self.form() {
            Form::None => &[],
            // SAFETY: the name says `rest` holds the only argument.
            Form::One => std::slice::from_ref(unsafe { &self.rest.one }),
            // SAFETY: the name says `rest` points to the `n` words of a
            // boxed slice this directive owns, alive as long as it.
            Form::Many(n) => unsafe { std::slice::from_raw_parts(self.rest.many.as_ptr(), n) },
            Form::Tail => self.tail().map_or(&[], |t| &t.args),
        }
    }

    /// The name (`proxy_pass`, `location`).
    pub fn name(&self) -> Word<'_> {
        Word {
            source: &self.source,
            raw: self.name,
        }
    }

    /// The arguments, in order.
    pub fn args(&self) -> Args<'_> {
        Args {
            source: &self.source,
            words: self.raw_args(),
        }
    }

    /// The last argument, or the name when there is none: where the head
    /// of the directive ends.
    pub fn last_word(&self) -> Word<'_> {
        self.args().last().unwrap_or_else(|| self.name())
    }

    /// One past the `;` or the closing `}`.
    fn end(&self) -> u32 {
        match self.extra() {
            Some(DirectiveExtra::Block { block, .. }) => block.close + 1,
            Some(DirectiveExtra::Simple { end, .. }) => *end,
            None => self.last_word().span().end + 1,
        }
    }

    /// From the first byte of the name to the `;` or the closing `}` inclusive.
    pub fn span(&self) -> Span {
        Span::new(self.source.file, self.name.start, self.end())
    }

    /// The block (`{ … }`) of a block directive.
    pub fn block(&self) -> Option<&Block> {
        match self.extra() {
            Some(DirectiveExtra::Block { block, .. }) => Some(block),
            _ => None,
        }
    }

    /// Comments that sit between the name and the terminator, in order.
    pub fn inner_comments(&self) -> &[Comment] {
        match self.extra() {
            Some(DirectiveExtra::Block { inner_comments, .. })
            | Some(DirectiveExtra::Simple { inner_comments, .. }) => inner_comments,
            None => &[],
        }
    }

    /// The `;` of a simple directive (the last byte of its span).
    pub fn semicolon(&self) -> Option<Span> {
        let end = self.end();
        self.block()
            .is_none()
            .then(|| Span::new(self.source.file, end - 1, end))
    }

    pub fn name_is(&self, s: &str) -> bool {
        self.may_be_named(s.as_bytes()) && self.name().is(s)
    }

    /// `false` when the directive's own bits show that its name is not
    /// `name` (a bare name without escapes whose length differs), without
    /// reading the text; `true` when it may be. A cheap first test for
    /// scanning many directives for one name.
    pub fn may_be_named(&self, name: &[u8]) -> bool {
        let plain = self.name.quote() == QuoteStyle::Bare && !self.name.own_value();
        !plain || (self.name.meta & MAX_WORD_LEN) as usize == name.len()
    }

    pub fn arg(&self, i: usize) -> Option<Word<'_>> {
        self.args().get(i)
    }

    /// Child directives of the block (empty for simple directives and for
    /// verbatim blocks).
    pub fn children(&self) -> impl Iterator<Item = &Directive> {
        self.block()
            .into_iter()
            .flat_map(|b| b.nodes.iter())
            .filter_map(Node::as_directive)
    }
}

impl Drop for Directive {
    fn drop(&mut self) {
        match self.form() {
            Form::None | Form::One => {}
            Form::Many(n) => {
                let list = std::ptr::slice_from_raw_parts_mut(self.rest.many_ptr(), n);
                // SAFETY: `list` is the boxed slice `new` gave up (pointer
                // and length); nothing else frees it.
                drop(unsafe { Box::from_raw(list) });
            }
            // SAFETY: the `Box<Tail>` `new` gave up; nothing else frees it.
            Form::Tail => drop(unsafe { Box::from_raw(self.rest.tail.as_ptr()) }),
        }
    }
}

impl Rest {
    fn many_ptr(&self) -> *mut RawWord {
        // SAFETY: reading the pointer only; the caller knows the form.
        unsafe { self.many.as_ptr() }
    }
}

impl Clone for Directive {
    fn clone(&self) -> Directive {
        let rest = match self.form() {
            Form::None | Form::One => self.rest,
            Form::Many(_) => {
                let list: Box<[RawWord]> = self.raw_args().into();
                Rest {
                    many: NonNull::from(Box::leak(list)).cast::<RawWord>(),
                }
            }
            Form::Tail => {
                // SAFETY: the form says `rest` is this directive's tail.
                let tail = Box::new(unsafe { self.rest.tail.as_ref() }.clone());
                Rest {
                    tail: NonNull::from(Box::leak(tail)),
                }
            }
        };
        Directive {
            source: Arc::clone(&self.source),
            name: self.name,
            rest,
        }
    }
}

/// Two directives are equal when their words are (place, quotes and
/// value) and so is the rest (block, comments, terminator).
impl PartialEq for Directive {
    fn eq(&self, other: &Directive) -> bool {
        self.name() == other.name() && self.args() == other.args() && self.extra() == other.extra()
    }
}

impl Eq for Directive {}

impl std::fmt::Debug for Directive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directive")
            .field("name", &self.name())
            .field("args", &self.args())
            .field("extra", &self.extra())
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub nodes: Box<[Node]>,
    /// The file, and the offsets of the `{` and the `}`: a large
    /// configuration has over a million blocks, and three spans would
    /// repeat the file three times.
    file: FileId,
    open: u32,
    close: u32,
    /// nginx hands the body over unparsed (`*_by_lua_block`).
    verbatim: bool,
}

impl Block {
    /// A block from the `{` at `open` to the `}` at `close` (offsets in
    /// `file`) holding `nodes`; `verbatim` for a body nginx hands over
    /// unparsed (`nodes` is then empty).
    pub fn new(file: FileId, open: u32, nodes: Vec<Node>, close: u32, verbatim: bool) -> Block {
        Block {
            nodes: nodes.into_boxed_slice(),
            file,
            open,
            close,
            verbatim,
        }
    }

    /// The `{`.
    pub fn open(&self) -> Span {
        Span::new(self.file, self.open, self.open + 1)
    }

    /// The `}`.
    pub fn close(&self) -> Span {
        Span::new(self.file, self.close, self.close + 1)
    }

    /// For blocks whose body nginx hands over unparsed (`*_by_lua_block`):
    /// the bytes between the braces. `nodes` is then empty.
    pub fn verbatim(&self) -> Option<Span> {
        self.verbatim
            .then(|| Span::new(self.file, self.open + 1, self.close))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    Directive(Directive),
    Comment(Comment),
}

impl Node {
    pub fn as_directive(&self) -> Option<&Directive> {
        match self {
            Node::Directive(d) => Some(d),
            Node::Comment(_) => None,
        }
    }

    pub fn span(&self) -> Span {
        match self {
            Node::Directive(d) => d.span(),
            Node::Comment(c) => c.span,
        }
    }
}

/// The parsed contents of one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxTree {
    pub file: FileId,
    pub nodes: Vec<Node>,
    /// Length of the file in bytes; the bytes after the last node are trivia.
    pub len: u32,
}

impl SyntaxTree {
    pub fn directives(&self) -> impl Iterator<Item = &Directive> {
        self.nodes.iter().filter_map(Node::as_directive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A large configuration has millions of directives. (On 32-bit
    /// targets the pointers, and so the directive, are smaller.)
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_stored_word_is_8_bytes_a_directive_24_and_a_block_32() {
        assert_eq!(std::mem::size_of::<RawWord>(), 8);
        assert_eq!(std::mem::size_of::<Rest>(), 8);
        assert_eq!(std::mem::size_of::<Directive>(), 24);
        assert_eq!(std::mem::size_of::<Node>(), 24);
        assert_eq!(std::mem::size_of::<DirectiveExtra>(), 40);
        assert_eq!(std::mem::size_of::<Tail>(), 56);
        assert_eq!(std::mem::size_of::<Block>(), 32);
        assert_eq!(std::mem::size_of::<Word<'_>>(), 16);
    }

    #[test]
    fn a_directive_ends_at_its_semicolon_wherever_that_is() {
        let text = "a;\nb c;\nd e ;\nf 'g'\n\t;\nh i # why\n;\nj k { l; }\n";
        let file = crate::SourceFile::new(FileId(0), "t.conf", text.as_bytes().to_vec());
        let tree = crate::parse(&file).expect("parses");
        let spans: Vec<&str> = tree
            .directives()
            .map(|d| std::str::from_utf8(file.slice(d.span())).unwrap())
            .collect();
        assert_eq!(
            spans,
            [
                "a;",
                "b c;",
                "d e ;",
                "f 'g'\n\t;",
                "h i # why\n;",
                "j k { l; }"
            ]
        );
        let semicolons: Vec<Option<u32>> = tree
            .directives()
            .map(|d| d.semicolon().map(|s| s.start))
            .collect();
        let expected: Vec<Option<u32>> = ["a;", "b c;", "d e ;", "f 'g'\n\t;", "h i # why\n;"]
            .iter()
            .map(|d| Some((text.find(d).unwrap() + d.len() - 1) as u32))
            .chain([None])
            .collect();
        assert_eq!(semicolons, expected);
        // Only the directives whose `;` is apart from their last word, or
        // that have a block or a comment inside, carry the extra part.
        let with_extra: Vec<bool> = tree.directives().map(|d| d.extra().is_some()).collect();
        assert_eq!(with_extra, [false, false, true, true, true, true]);
    }

    #[test]
    fn a_block_gives_its_braces_and_verbatim_body_as_spans() {
        let f = FileId(3);
        let parsed = Block::new(f, 10, Vec::new(), 20, false);
        assert_eq!(parsed.open(), Span::new(f, 10, 11));
        assert_eq!(parsed.close(), Span::new(f, 20, 21));
        assert_eq!(parsed.verbatim(), None);
        let verbatim = Block::new(f, 10, Vec::new(), 20, true);
        assert_eq!(verbatim.verbatim(), Some(Span::new(f, 11, 20)));
    }

    #[test]
    fn a_word_reads_its_value_inside_its_quotes_or_from_its_own_text() {
        let text = "a 'bc' \"d\\\"e\";";
        let file = crate::SourceFile::new(FileId(0), "t.conf", text.as_bytes().to_vec());
        let tree = crate::parse(&file).expect("parses");
        let d = tree.directives().next().expect("a");
        let bare = d.name();
        let single = d.arg(0).expect("'bc'");
        let escaped = d.arg(1).expect("\"d\\\"e\"");
        assert_eq!(bare.value(), b"a");
        assert_eq!(single.quote(), QuoteStyle::Single);
        assert_eq!(escaped.quote(), QuoteStyle::Double);
        assert_eq!(escaped.span(), Span::new(FileId(0), 7, 13));
        assert_eq!(single.value(), b"bc");
        assert_eq!(escaped.value(), b"d\"e");
        assert!(single.is("bc") && bare.is_keyword("A"));
        assert_eq!(single, d.args().first().expect("first"));
        assert_ne!(single, bare);
        assert_eq!(
            format!("{bare:?}"),
            format!(
                "Word {{ span: {:?}, value: [97], quote: Bare }}",
                bare.span()
            )
        );
    }

    #[test]
    fn a_backslash_nginx_keeps_does_not_give_a_word_a_value_of_its_own() {
        let text = "location ~ \\.php$ { a \"x\\\"y\" 'p\\.q' b\\nc; }\n";
        let file = crate::SourceFile::new(FileId(0), "t.conf", text.as_bytes().to_vec());
        let tree = crate::parse(&file).expect("parses");
        let location = tree.directives().next().expect("location");
        let regex = location.arg(1).expect("regex");
        assert_eq!(regex.value(), b"\\.php$");
        assert!(!regex.raw.own_value());
        // No word of the location has a value of its own, so it reads
        // from the file's shared source.
        assert!(location.source.values.is_empty());
        let inner = location.block().expect("block").nodes[0]
            .as_directive()
            .expect("a");
        let values: Vec<&[u8]> = inner.args().iter().map(Word::value).collect();
        assert_eq!(values, [&b"x\"y"[..], b"p\\.q", b"b\nc"]);
        let own: Vec<bool> = inner.args().iter().map(|w| w.raw.own_value()).collect();
        assert_eq!(own, [true, false, true]);
        assert_eq!(inner.source.values.len(), 2);
        assert!(!Arc::ptr_eq(&inner.source, &location.source));
    }

    /// Each form of a directive's rest (none, one argument in place, a
    /// list, a tail; the tail for a block, for a `;` apart from the last
    /// word and for `COUNT_LIMIT` arguments or more) reads, clones,
    /// compares and drops its arguments whole.
    #[test]
    fn a_directive_keeps_any_number_of_arguments() {
        let limit = COUNT_LIMIT as usize;
        let counts = [0usize, 1, 2, 3, limit - 2, limit - 1, limit, 70_000];
        // Under Miri (which checks the unsafe code of the forms) the long
        // lists would take hours; the forms are the same with a few.
        let counts = if cfg!(miri) {
            &counts[..4]
        } else {
            &counts[..]
        };
        for &count in counts {
            // A plain `;`, a `;` apart (a tail), a block (a tail).
            for ending in [";", " ;", " { y; }"] {
                let mut text = String::from("server_name");
                for i in 0..count {
                    text.push_str(&format!(" n{i}"));
                }
                text.push_str(ending);
                text.push_str("\nx \"e\\\"q\";\n");
                let file = crate::SourceFile::new(FileId(0), "t.conf", text.as_bytes().to_vec());
                let tree = crate::parse(&file).expect("parses");
                let d = tree.directives().next().expect("server_name");
                let args = d.args();
                assert_eq!(args.len(), count, "{count} {ending}");
                assert!(d.name().is("server_name"));
                let values: Vec<String> = args.iter().map(|w| w.text().into_owned()).collect();
                let expected: Vec<String> = (0..count).map(|i| format!("n{i}")).collect();
                assert_eq!(values, expected);
                assert_eq!(args.iter().rev().count(), count);
                assert_eq!(args.after(1).len(), count.saturating_sub(1));
                assert_eq!(args.after(count + 5).len(), 0);
                let head_end = d.last_word().span().end as usize;
                assert_eq!(head_end, text.find(ending).unwrap());
                let end = text.find("\nx").unwrap();
                assert_eq!(d.span().end as usize, end);
                assert_eq!(d.block().is_some(), ending.contains('{'));
                assert_eq!(d.name.has_tail(), ending != ";" || count >= limit);
                let copy = d.clone();
                assert_eq!(copy, *d);
                assert_eq!(copy.args().len(), count);
                assert_eq!(copy.span(), d.span());
                drop(copy);
                let x = tree.directives().nth(1).expect("x");
                assert_eq!(x.arg(0).map(Word::value), Some(&b"e\"q"[..]));
                assert!(x.source.values.len() == 1 && d.source.values.is_empty());
            }
        }
    }

    /// `unescape_changes` says exactly when `unescape` gives other bytes,
    /// over every string of up to four bytes from the characters that
    /// matter.
    #[test]
    fn unescape_changes_agrees_with_unescape() {
        use crate::lexer::{unescape, unescape_changes};
        let alphabet = b"\\\"'trnx.";
        let mut inputs: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..4 {
            let longer: Vec<Vec<u8>> = inputs
                .iter()
                .filter(|s| s.len() == inputs.last().map_or(0, Vec::len))
                .flat_map(|s| {
                    alphabet.iter().map(move |&c| {
                        let mut t = s.clone();
                        t.push(c);
                        t
                    })
                })
                .collect();
            inputs.extend(longer);
        }
        assert_eq!(inputs.len(), 1 + 8 + 64 + 512 + 4096);
        for input in &inputs {
            assert_eq!(
                unescape_changes(input),
                unescape(input) != *input,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn inner_comments_are_one_pointer_and_read_as_a_slice() {
        assert_eq!(std::mem::size_of::<InnerComments>(), 8);
        let none: InnerComments = std::iter::empty().collect();
        assert!(none.is_empty());
        let span = Span::new(FileId(0), 3, 9);
        let one: InnerComments = [Comment { span }].into_iter().collect();
        assert_eq!(one.len(), 1);
        assert_eq!((&one).into_iter().next().map(|c| c.span), Some(span));
        assert_eq!(format!("{one:?}"), format!("{:?}", [Comment { span }]));
    }
}
