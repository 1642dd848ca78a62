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
///
/// A large configuration has over a million blocks, so a block is 40
/// bytes: what every block has is kept inline (its child blocks in an
/// exact-size list, none for most), and what only a few blocks need (a
/// list of nodes with includes expanded, a name index) is boxed apart.
#[derive(Debug)]
pub struct ConfBlock<'a> {
    pub kind: BlockKind,
    /// The enclosing block ([`ConfBlock::parent`]); `NO_PARENT` for the
    /// root. Block numbers are kept in 32 bits (a large configuration has
    /// over a million blocks).
    parent: u32,
    /// The block's own directive (`server`, `location /api/`); `None` for main.
    pub directive: Option<&'a Directive>,
    /// The child blocks the model understands (servers, locations, ifs…),
    /// see [`ConfBlock::children`].
    children: Box<[u32]>,
    /// `None` for almost every block: see [`BlockExtra`].
    extra: Option<Box<BlockExtra<'a>>>,
}

/// What only some blocks have.
#[derive(Debug, Default)]
struct BlockExtra<'a> {
    /// The block's direct children with includes expanded, in order. Only a
    /// block with an `include`, and the root (which has no directive to
    /// find its list through), need one; the others read the syntax
    /// tree's own list through their directive.
    expanded: Option<Box<[&'a Node]>>,
    /// For blocks with many children (`http` can hold thousands of servers
    /// and upstreams): the directives by name, each list in document order.
    /// A hash lookup (a fast non-cryptographic hash: the keys are directive
    /// names), because almost every question asked of `http` is about a
    /// directive it does not have.
    by_name: Option<FxHashMap<&'a [u8], Vec<&'a Directive>>>,
}

/// The directives of a block with a given name, in document order.
pub struct Named<'s, 'a>(NamedIter<'s, 'a>);

enum NamedIter<'s, 'a> {
    Indexed(std::slice::Iter<'s, &'a Directive>),
    Scan {
        block: &'s ConfBlock<'a>,
        next: usize,
        name: &'s [u8],
    },
}

impl<'a> Iterator for Named<'_, 'a> {
    type Item = &'a Directive;

    fn next(&mut self) -> Option<&'a Directive> {
        match &mut self.0 {
            NamedIter::Indexed(it) => it.next().copied(),
            NamedIter::Scan { block, next, name } => {
                while *next < block.node_count() {
                    let i = *next;
                    *next += 1;
                    if let Some(d) = block.named_at(i, name) {
                        return Some(d);
                    }
                }
                None
            }
        }
    }
}

/// Blocks with more direct children than this get a hash index of names.
const INDEX_ABOVE: usize = 24;

/// `parent` of the root block.
const NO_PARENT: u32 = u32::MAX;

fn block_number(id: BlockId) -> u32 {
    u32::try_from(id)
        .ok()
        .filter(|&n| n != NO_PARENT)
        .expect("fewer than 2^32 - 1 blocks")
}

impl<'a> ConfBlock<'a> {
    /// The enclosing block; `None` for the root.
    pub fn parent(&self) -> Option<BlockId> {
        (self.parent != NO_PARENT).then_some(self.parent as BlockId)
    }

    /// Child blocks the model understands (servers, locations, ifs…), in
    /// order.
    pub fn children(&self) -> impl ExactSizeIterator<Item = BlockId> + '_ {
        self.children.iter().map(|&c| c as BlockId)
    }

    /// How many direct children (nodes) the block has.
    fn node_count(&self) -> usize {
        match self.extra.as_deref().and_then(|e| e.expanded.as_deref()) {
            Some(list) => list.len(),
            None => self.tree_nodes().len(),
        }
    }

    /// Node `i` of the block's direct children.
    fn node(&self, i: usize) -> &'a Node {
        match self.extra.as_deref().and_then(|e| e.expanded.as_deref()) {
            Some(list) => list[i],
            None => &self.tree_nodes()[i],
        }
    }

    /// The syntax tree's list of the block's children.
    fn tree_nodes(&self) -> &'a [Node] {
        self.directive
            .and_then(Directive::block)
            .map_or(&[], |b| &b.nodes)
    }

    /// Direct children (includes expanded): directives, blocks included,
    /// and comments, in order.
    pub fn nodes(&self) -> impl Iterator<Item = &'a Node> + '_ {
        (0..self.node_count()).map(|i| self.node(i))
    }

    /// Direct child directives (includes expanded), blocks included.
    pub fn directives(&self) -> impl Iterator<Item = &'a Directive> + '_ {
        self.nodes().filter_map(Node::as_directive)
    }

    pub(crate) fn new(
        kind: BlockKind,
        directive: Option<&'a Directive>,
        parent: Option<BlockId>,
    ) -> ConfBlock<'a> {
        ConfBlock {
            kind,
            parent: parent.map_or(NO_PARENT, block_number),
            directive,
            children: Box::default(),
            extra: None,
        }
    }

    /// Sets the block's children (nodes, and the child blocks the model
    /// made of them) once they are known, and indexes their names. The
    /// nodes are `tree` when the block includes nothing (the syntax tree's
    /// own list, which must be its directive's block), otherwise the list
    /// with includes expanded. The root keeps its list of references
    /// either way: it has no directive to read the tree's list through.
    /// The lists are kept at their exact size: a large configuration has
    /// hundreds of thousands of blocks.
    pub(crate) fn set_nodes(
        &mut self,
        tree: &'a [Node],
        expanded: Option<Vec<&'a Node>>,
        children: &[BlockId],
    ) {
        let expanded = expanded.or_else(|| self.directive.is_none().then(|| tree.iter().collect()));
        debug_assert!(expanded.is_some() || std::ptr::eq(self.tree_nodes(), tree));
        self.extra = expanded.map(|nodes| {
            Box::new(BlockExtra {
                expanded: Some(nodes.into_boxed_slice()),
                by_name: None,
            })
        });
        self.children = children.iter().map(|&c| block_number(c)).collect();
        if self.node_count() > INDEX_ABOVE {
            let mut index: FxHashMap<&'a [u8], Vec<&'a Directive>> = FxHashMap::default();
            for d in self.directives() {
                index.entry(d.name().value()).or_default().push(d);
            }
            self.extra.get_or_insert_with(Box::default).by_name = Some(index);
        }
    }

    /// The name index, for blocks with many children.
    fn by_name(&self) -> Option<&FxHashMap<&'a [u8], Vec<&'a Directive>>> {
        self.extra.as_deref().and_then(|e| e.by_name.as_ref())
    }

    /// The directive at node `i` if its name is `name`. The length test
    /// reads only the node (the rules ask tens of thousands of such
    /// questions on a large config); the text is read when it passes.
    fn named_at(&self, i: usize, name: &[u8]) -> Option<&'a Directive> {
        self.node(i)
            .as_directive()
            .filter(|d| d.may_be_named(name) && d.name().value() == name)
    }

    /// Direct child directives named `name`, in order.
    pub fn directives_named<'s>(&'s self, name: &'s str) -> Named<'s, 'a> {
        let key = name.as_bytes();
        match self.by_name() {
            Some(index) => Named(NamedIter::Indexed(
                index.get(key).map_or(&[][..], Vec::as_slice).iter(),
            )),
            None => Named(NamedIter::Scan {
                block: self,
                next: 0,
                name: key,
            }),
        }
    }

    /// The last direct child named `name` (nginx rejects most duplicates; where
    /// it does not, the last one wins).
    pub fn last(&self, name: &str) -> Option<&'a Directive> {
        let key = name.as_bytes();
        match self.by_name() {
            Some(index) => index.get(key).and_then(|list| list.last().copied()),
            None => (0..self.node_count())
                .rev()
                .find_map(|i| self.named_at(i, key)),
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
        let name = d.name().text();
        match self.kind {
            BlockKind::Server => {
                let server_name = self
                    .last("server_name")
                    .and_then(|sn| sn.args().first().map(|a| a.text().into_owned()));
                match server_name {
                    Some(n) if !n.is_empty() => format!("server {n}"),
                    _ => match self.last("listen").and_then(|l| l.args().first()) {
                        Some(l) => format!("server (listen {})", l.text()),
                        None => "server".to_string(),
                    },
                }
            }
            BlockKind::Http | BlockKind::Events => name.into_owned(),
            _ => {
                let args: Vec<String> = d.args().iter().map(raw_word).collect();
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
pub(crate) fn raw_word(w: upkeep_syntax::Word<'_>) -> String {
    let text = w.text();
    match w.quote() {
        upkeep_syntax::QuoteStyle::Double => format!("\"{text}\""),
        upkeep_syntax::QuoteStyle::Single => format!("'{text}'"),
        upkeep_syntax::QuoteStyle::Bare => text.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A large configuration has over a million blocks.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_block_of_the_model_is_40_bytes() {
        assert_eq!(std::mem::size_of::<ConfBlock>(), 40);
    }
}
