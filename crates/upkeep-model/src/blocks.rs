//! The block tree nginx builds its configuration levels from.

use rustc_hash::FxHashMap;
use upkeep_syntax::{Directive, Node};

pub type BlockId = usize;

/// What a block is, in the sense of nginx's configuration levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BlockKind {
    /// The main context (the file itself).
    Main,
    Events,
    Http,
    Server,
    Location,
    /// `location @name`.
    NamedLocation,
    /// `if (…) { }` in a server or location: nginx gives it a location
    /// configuration of its own that inherits from the enclosing level.
    If,
    /// `limit_except METHOD { }`: also a location configuration.
    LimitExcept,
    Upstream,
    Map,
    /// A context the model does not analyse (a `stream` or `mail` snippet).
    Opaque,
}

impl BlockKind {
    /// Whether the block is a level of the http configuration hierarchy,
    /// i.e. inherits and passes on `ngx_http_*_loc_conf` values.
    pub fn is_http_level(self) -> bool {
        matches!(
            self,
            BlockKind::Http
                | BlockKind::Server
                | BlockKind::Location
                | BlockKind::NamedLocation
                | BlockKind::If
                | BlockKind::LimitExcept
        )
    }

    /// Whether it is a location configuration (a route can live here).
    pub fn is_location_like(self) -> bool {
        matches!(
            self,
            BlockKind::Location | BlockKind::NamedLocation | BlockKind::If | BlockKind::LimitExcept
        )
    }

    /// Whether directives with contexts "http, server, location" may be
    /// written directly in this block (`if` and `limit_except` accept only
    /// some of them, so fixes go to the enclosing location instead).
    pub fn accepts_http_server_location(self) -> bool {
        matches!(
            self,
            BlockKind::Http | BlockKind::Server | BlockKind::Location | BlockKind::NamedLocation
        )
    }
}

/// One block after include expansion.
#[derive(Debug)]
pub struct ConfBlock<'a> {
    pub kind: BlockKind,
    /// The block's own directive (`server`, `location /api/`); `None` for main.
    pub directive: Option<&'a Directive>,
    pub parent: Option<BlockId>,
    /// The block's direct children with includes expanded, in order:
    /// directives (simple and block) and comments.
    pub nodes: Vec<&'a Node>,
    /// Child blocks the model understands (servers, locations, ifs…).
    pub children: Vec<BlockId>,
    /// The directives with a short tag of their name, so that resolving a
    /// value compares tags in one contiguous array instead of following
    /// every node to its name (the rules ask tens of thousands of such
    /// questions on a large config). Document order.
    tagged: Vec<(NameTag, &'a Directive)>,
    /// For blocks with many children (`http` can hold thousands of servers
    /// and upstreams): the directives by name, each list in document order.
    /// A hash lookup (a fast non-cryptographic hash: the keys are directive
    /// names), because almost every question asked of `http` is about a
    /// directive it does not have. `None` for small blocks, which are
    /// almost all of them: boxed, so that it costs them one pointer.
    by_name: Option<Box<FxHashMap<&'a [u8], Vec<&'a Directive>>>>,
}

/// A cheap fingerprint of a directive name: its length and three of its
/// bytes. Equal names have equal tags; a collision only costs one name
/// comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct NameTag(u32);

impl NameTag {
    fn of(name: &[u8]) -> NameTag {
        match name {
            [] => NameTag(0),
            [first, ..] => {
                let len = name.len();
                NameTag(
                    (len as u32 & 0xff)
                        | (u32::from(*first) << 8)
                        | (u32::from(name[len / 2]) << 16)
                        | (u32::from(name[len - 1]) << 24),
                )
            }
        }
    }
}

/// The directives of a block with a given name, in document order.
pub struct Named<'s, 'a>(NamedIter<'s, 'a>);

enum NamedIter<'s, 'a> {
    Indexed(std::slice::Iter<'s, &'a Directive>),
    Scan(
        std::slice::Iter<'s, (NameTag, &'a Directive)>,
        NameTag,
        &'s [u8],
    ),
}

impl<'a> Iterator for Named<'_, 'a> {
    type Item = &'a Directive;

    fn next(&mut self) -> Option<&'a Directive> {
        match &mut self.0 {
            NamedIter::Indexed(it) => it.next().copied(),
            NamedIter::Scan(it, tag, name) => it
                .find(|(t, d)| t == tag && d.name.value.as_slice() == *name)
                .map(|(_, d)| *d),
        }
    }
}

/// Blocks with more direct children than this get a hash index of names.
const INDEX_ABOVE: usize = 24;

impl<'a> ConfBlock<'a> {
    /// Direct child directives (includes expanded), blocks included.
    pub fn directives(&self) -> impl Iterator<Item = &'a Directive> + '_ {
        self.tagged.iter().map(|(_, d)| *d)
    }

    pub(crate) fn new(
        kind: BlockKind,
        directive: Option<&'a Directive>,
        parent: Option<BlockId>,
    ) -> ConfBlock<'a> {
        ConfBlock {
            kind,
            directive,
            parent,
            nodes: Vec::new(),
            children: Vec::new(),
            tagged: Vec::new(),
            by_name: None,
        }
    }

    /// Sets the block's children (includes expanded) once they are known,
    /// and indexes their names.
    /// The lists are kept at their exact size: a large configuration has
    /// hundreds of thousands of blocks.
    pub(crate) fn set_nodes(&mut self, mut nodes: Vec<&'a Node>) {
        let mut tagged = Vec::with_capacity(nodes.len());
        tagged.extend(
            nodes
                .iter()
                .filter_map(|n| n.as_directive())
                .map(|d| (NameTag::of(&d.name.value), d)),
        );
        tagged.shrink_to_fit();
        self.tagged = tagged;
        nodes.shrink_to_fit();
        self.nodes = nodes;
        self.children.shrink_to_fit();
        if self.tagged.len() > INDEX_ABOVE {
            let mut index: FxHashMap<&'a [u8], Vec<&'a Directive>> = FxHashMap::default();
            for (_, d) in &self.tagged {
                index.entry(d.name.value.as_slice()).or_default().push(*d);
            }
            self.by_name = Some(Box::new(index));
        }
    }

    /// Direct child directives named `name`, in order.
    pub fn directives_named<'s>(&'s self, name: &'s str) -> Named<'s, 'a> {
        let key = name.as_bytes();
        match &self.by_name {
            Some(index) => Named(NamedIter::Indexed(
                index.get(key).map_or(&[][..], Vec::as_slice).iter(),
            )),
            None => Named(NamedIter::Scan(self.tagged.iter(), NameTag::of(key), key)),
        }
    }

    /// The last direct child named `name` (nginx rejects most duplicates; where
    /// it does not, the last one wins).
    pub fn last(&self, name: &str) -> Option<&'a Directive> {
        let key = name.as_bytes();
        match &self.by_name {
            Some(index) => index.get(key).and_then(|list| list.last().copied()),
            None => {
                let tag = NameTag::of(key);
                self.tagged
                    .iter()
                    .rev()
                    .find(|(t, d)| *t == tag && d.name.value.as_slice() == key)
                    .map(|(_, d)| *d)
            }
        }
    }

    /// Whether the block has a direct child named `name`.
    pub fn has(&self, name: &str) -> bool {
        self.last(name).is_some()
    }

    /// A short human description: `location /api/`, `server example.com`,
    /// `if ($http_upgrade)`, `http`, `upstream app`.
    pub fn describe(&self) -> String {
        let Some(d) = self.directive else {
            return match self.kind {
                BlockKind::Main => "main context".to_string(),
                kind => format!("top level ({kind:?} context)").to_lowercase(),
            };
        };
        let name = d.name.text();
        match self.kind {
            BlockKind::Server => {
                let server_name = self
                    .last("server_name")
                    .and_then(|sn| sn.args.first().map(|a| a.text().into_owned()));
                match server_name {
                    Some(n) if !n.is_empty() => format!("server {n}"),
                    _ => match self.last("listen").and_then(|l| l.args.first()) {
                        Some(l) => format!("server (listen {})", l.text()),
                        None => "server".to_string(),
                    },
                }
            }
            BlockKind::Http | BlockKind::Events => name.into_owned(),
            _ => {
                let args: Vec<String> = d.args.iter().map(raw_word).collect();
                if args.is_empty() {
                    name.into_owned()
                } else {
                    format!("{name} {}", args.join(" "))
                }
            }
        }
    }
}

/// A word as written, for messages: the value, quoted again if it was quoted
/// or is empty.
pub(crate) fn raw_word(w: &upkeep_syntax::Word) -> String {
    let text = w.text();
    match w.quote {
        upkeep_syntax::QuoteStyle::Double => format!("\"{text}\""),
        upkeep_syntax::QuoteStyle::Single => format!("'{text}'"),
        upkeep_syntax::QuoteStyle::Bare => text.into_owned(),
    }
}
