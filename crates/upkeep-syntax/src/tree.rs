//! The lossless tree. Nodes hold spans into the [`SourceFile`](crate::SourceFile);
//! the bytes between consecutive tokens are trivia (whitespace, line endings,
//! comments that are not nodes of their own).

use crate::{FileId, SharedText, Span};
use std::borrow::Cow;
use std::sync::Arc;

/// How a word was written in the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuoteStyle {
    Bare,
    Single,
    Double,
}

/// One token that nginx passes to a directive handler: a directive name or an
/// argument.
///
/// A large configuration has millions of words, so a word is 16 bytes: its
/// offsets in its file and one pointer to what it shares with the other
/// words of that file written the same way (the file, its text, the quote
/// style). It holds no copy of its value and reads it from the text. Only
/// a token with escapes (`"a\"b"`), whose value differs from its bytes,
/// points to a source of its own that holds the value.
#[derive(Clone)]
pub struct Word {
    source: Arc<WordSource>,
    start: u32,
    end: u32,
}

/// What the words of one file written one way share: every bare word of a
/// file points to one of these, every double-quoted one to another.
#[derive(Debug)]
pub(crate) struct WordSource {
    file: FileId,
    quote: QuoteStyle,
    text: SharedText,
    /// The resolved value of a token with escapes (then the source is its
    /// own, not shared).
    value: Option<Box<[u8]>>,
}

/// The three shared sources of one file's words, one per quote style.
pub(crate) struct WordSources([Arc<WordSource>; 3]);

impl WordSources {
    pub(crate) fn new(file: FileId, text: &SharedText) -> WordSources {
        let source = |quote| {
            Arc::new(WordSource {
                file,
                quote,
                text: SharedText::clone(text),
                value: None,
            })
        };
        WordSources([
            source(QuoteStyle::Bare),
            source(QuoteStyle::Single),
            source(QuoteStyle::Double),
        ])
    }

    /// The word at `span` of the file, written with `quote`, whose value
    /// is its bytes inside the quotes.
    pub(crate) fn word(&self, span: Span, quote: QuoteStyle) -> Word {
        let source = &self.0[quote as usize];
        debug_assert_eq!(source.file, span.file);
        Word {
            source: Arc::clone(source),
            start: span.start,
            end: span.end,
        }
    }

    /// A word whose value differs from its bytes (escapes resolved).
    pub(crate) fn word_with_value(&self, value: Vec<u8>, span: Span, quote: QuoteStyle) -> Word {
        let shared = &self.0[quote as usize];
        Word {
            source: Arc::new(WordSource {
                file: shared.file,
                quote,
                text: SharedText::clone(&shared.text),
                value: Some(value.into_boxed_slice()),
            }),
            start: span.start,
            end: span.end,
        }
    }
}

impl Word {
    /// The raw token, quotes included.
    pub fn span(&self) -> Span {
        Span::new(self.source.file, self.start, self.end)
    }

    /// How the token was written.
    pub fn quote(&self) -> QuoteStyle {
        self.source.quote
    }

    /// The value nginx's tokenizer hands to the directive: quotes removed
    /// and the escapes `\"`, `\'`, `\\`, `\t`, `\r`, `\n` resolved as
    /// `ngx_conf_read_token` resolves them.
    pub fn value(&self) -> &[u8] {
        if let Some(value) = &self.source.value {
            return value;
        }
        let quotes = match self.source.quote {
            QuoteStyle::Bare => 0,
            QuoteStyle::Single | QuoteStyle::Double => 1,
        };
        &self.source.text[self.start as usize + quotes..self.end as usize - quotes]
    }

    /// The value as text; non-UTF-8 bytes become U+FFFD (for display and
    /// matching only; the source bytes are untouched).
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(self.value())
    }

    /// The value is exactly `s` (directive names are case-sensitive in
    /// nginx: `ngx_conf_handler` compares them with `ngx_strcmp`).
    pub fn is(&self, s: &str) -> bool {
        self.value() == s.as_bytes()
    }

    /// The value is the keyword `s` in any case (`on`, `OFF`, `Error`):
    /// nginx reads the keywords of its arguments with `ngx_strcasecmp`.
    pub fn is_keyword(&self, s: &str) -> bool {
        self.value().eq_ignore_ascii_case(s.as_bytes())
    }
}

/// Two words are equal when they are the same token at the same place
/// with the same value (whatever text each shares).
impl PartialEq for Word {
    fn eq(&self, other: &Word) -> bool {
        self.span() == other.span()
            && self.quote() == other.quote()
            && self.value() == other.value()
    }
}

impl Eq for Word {}

impl std::fmt::Debug for Word {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Word")
            .field("span", &self.span())
            .field("value", &self.value())
            .field("quote", &self.quote())
            .finish()
    }
}

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
/// Large configurations hold millions of these, so a directive is 40
/// bytes: its name and an exact-size argument list in place, and what most
/// directives lack (a block, comments between their words, a `;` apart from
/// the last word) behind one pointer that is null for them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directive {
    pub name: Word,
    pub args: Box<[Word]>,
    extra: Option<Box<DirectiveExtra>>,
}

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
    /// A directive whose span ends at `end` (exclusive): one past its `;`,
    /// or past the `}` of its block.
    pub fn new(
        name: Word,
        args: Box<[Word]>,
        inner_comments: InnerComments,
        block: Option<Block>,
        end: u32,
    ) -> Directive {
        let mut directive = Directive {
            name,
            args,
            extra: None,
        };
        let last_word_end = directive.last_word().span().end;
        directive.extra = match block {
            Some(block) => {
                debug_assert_eq!(block.close + 1, end);
                Some(Box::new(DirectiveExtra::Block {
                    block,
                    inner_comments,
                }))
            }
            None if inner_comments.is_empty() && end == last_word_end + 1 => None,
            None => Some(Box::new(DirectiveExtra::Simple {
                end,
                inner_comments,
            })),
        };
        directive
    }

    /// The last argument, or the name when there is none: where the head
    /// of the directive ends.
    pub fn last_word(&self) -> &Word {
        self.args.last().unwrap_or(&self.name)
    }

    /// One past the `;` or the closing `}`.
    fn end(&self) -> u32 {
        match self.extra.as_deref() {
            Some(DirectiveExtra::Block { block, .. }) => block.close + 1,
            Some(DirectiveExtra::Simple { end, .. }) => *end,
            None => self.last_word().span().end + 1,
        }
    }

    /// From the first byte of the name to the `;` or the closing `}` inclusive.
    pub fn span(&self) -> Span {
        let name = self.name.span();
        Span::new(name.file, name.start, self.end())
    }

    /// The block (`{ … }`) of a block directive.
    pub fn block(&self) -> Option<&Block> {
        match self.extra.as_deref() {
            Some(DirectiveExtra::Block { block, .. }) => Some(block),
            _ => None,
        }
    }

    /// Comments that sit between the name and the terminator, in order.
    pub fn inner_comments(&self) -> &[Comment] {
        match self.extra.as_deref() {
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
            .then(|| Span::new(self.name.span().file, end - 1, end))
    }

    pub fn name_is(&self, s: &str) -> bool {
        self.name.is(s)
    }

    pub fn arg(&self, i: usize) -> Option<&Word> {
        self.args.get(i)
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

    #[test]
    fn a_word_is_16_bytes_a_directive_40_and_a_block_32() {
        assert_eq!(std::mem::size_of::<Word>(), 16);
        assert_eq!(std::mem::size_of::<Directive>(), 40);
        assert_eq!(std::mem::size_of::<Node>(), 40);
        assert_eq!(std::mem::size_of::<DirectiveExtra>(), 40);
        assert_eq!(std::mem::size_of::<Block>(), 32);
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
        let with_extra: Vec<bool> = tree.directives().map(|d| d.extra.is_some()).collect();
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
        let text: SharedText = SharedText::new(b"a 'bc' \"d\\\"e\";".to_vec());
        let f = FileId(0);
        let sources = WordSources::new(f, &text);
        let bare = sources.word(Span::new(f, 0, 1), QuoteStyle::Bare);
        let single = sources.word(Span::new(f, 2, 6), QuoteStyle::Single);
        let escaped =
            sources.word_with_value(b"d\"e".to_vec(), Span::new(f, 7, 13), QuoteStyle::Double);
        assert_eq!(bare.value(), b"a");
        assert_eq!(single.quote(), QuoteStyle::Single);
        assert_eq!(escaped.quote(), QuoteStyle::Double);
        assert_eq!(escaped.span(), Span::new(f, 7, 13));
        assert_eq!(single.value(), b"bc");
        assert_eq!(escaped.value(), b"d\"e");
        assert!(single.is("bc") && bare.is_keyword("A"));
        assert_eq!(single.clone(), single);
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
        let regex = &location.args[1];
        assert_eq!(regex.value(), b"\\.php$");
        assert!(regex.source.value.is_none());
        assert!(Arc::ptr_eq(&regex.source, &location.name.source));
        let inner = location.block().expect("block").nodes[0]
            .as_directive()
            .expect("a");
        let values: Vec<&[u8]> = inner.args.iter().map(Word::value).collect();
        assert_eq!(values, [&b"x\"y"[..], b"p\\.q", b"b\nc"]);
        let own: Vec<bool> = inner
            .args
            .iter()
            .map(|w| w.source.value.is_some())
            .collect();
        assert_eq!(own, [true, false, true]);
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
