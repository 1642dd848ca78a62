//! Building the model from a configuration.

use std::collections::HashMap;

use rustc_hash::FxHashMap;

use upkeep_facts::{NginxVersion, Target};
use upkeep_syntax::{Directive, Node};

use crate::blocks::{BlockId, BlockKind, ConfBlock};
use crate::maps::MapBlock;
use crate::routes::{Route, RouteId};
use crate::source::ConfigSource;
use crate::upstreams::{Upstream, UpstreamId};

/// Main-context settings the resource rules (R001–R003) read.
#[derive(Debug, Default)]
pub struct MainSettings<'a> {
    pub worker_processes: Option<&'a Directive>,
    pub worker_rlimit_nofile: Option<&'a Directive>,
    pub worker_shutdown_timeout: Option<&'a Directive>,
    /// In `events { }`.
    pub worker_connections: Option<&'a Directive>,
    /// The `events` block itself (where a fix would add `worker_connections`).
    pub events: Option<BlockId>,
}

/// The effective configuration for one target server (flavor and version).
pub struct Model<'a> {
    /// The nginx release whose behaviour the defaults and version landmarks
    /// are resolved with: the target's version for nginx, the release a fork
    /// shares its keep-alive behaviour with otherwise
    /// ([`Target::behaviour_version`]).
    pub version: NginxVersion,
    /// The server the configuration is for, as given.
    pub target: Target,
    pub source: &'a dyn ConfigSource,
    /// Every block; index 0 is the main context.
    pub blocks: Vec<ConfBlock<'a>>,
    pub http: Option<BlockId>,
    pub routes: Vec<Route<'a>>,
    pub upstreams: Vec<Upstream<'a>>,
    pub maps: Vec<MapBlock<'a>>,
    pub main: MainSettings<'a>,
    /// `set $var value;` directives by variable name (without `$`).
    pub sets: HashMap<String, Vec<&'a Directive>>,
    upstream_by_name: FxHashMap<String, UpstreamId>,
    /// Routes per upstream (index = UpstreamId).
    upstream_routes: Vec<Vec<RouteId>>,
}

impl<'a> Model<'a> {
    /// Builds the model of `source` as nginx `version` would see it.
    pub fn build(source: &'a dyn ConfigSource, version: NginxVersion) -> Model<'a> {
        Model::build_for(source, Target::nginx(version))
    }

    /// Builds the model of `source` as the `target` server (nginx, Angie or
    /// freenginx at a version) would see it.
    pub fn build_for(source: &'a dyn ConfigSource, target: Target) -> Model<'a> {
        let mut model = Model {
            version: target.behaviour_version(),
            target,
            source,
            blocks: vec![ConfBlock::new(source.root_kind(), None, None)],
            http: None,
            routes: Vec::new(),
            upstreams: Vec::new(),
            maps: Vec::new(),
            main: MainSettings::default(),
            sets: HashMap::new(),
            upstream_by_name: FxHashMap::default(),
            upstream_routes: Vec::new(),
        };
        if model.blocks[0].kind == BlockKind::Http {
            model.http = Some(0);
        }
        model.walk(source.root_nodes(), 0);
        // A large configuration has hundreds of thousands of blocks: the
        // list is kept at its size, not at the capacity it grew to.
        model.blocks.shrink_to_fit();
        model.collect_main();
        model.collect_upstreams();
        model.collect_maps_and_sets();
        model.collect_routes();
        model.upstreams.shrink_to_fit();
        model.routes.shrink_to_fit();
        model.upstream_routes = vec![Vec::new(); model.upstreams.len()];
        for (r, route) in model.routes.iter().enumerate() {
            for u in route.upstreams() {
                model.upstream_routes[u].push(r);
            }
        }
        model
    }

    fn walk(&mut self, nodes: &'a [Node], block: BlockId) {
        // Only a block with an `include` needs a list of its own: the
        // others keep the tree's (see `ConfBlock::set_nodes`).
        let includes = nodes
            .iter()
            .any(|n| n.as_directive().is_some_and(|d| d.name_is("include")));
        let expanded = includes.then(|| self.source.expand_nodes(nodes));
        let kind = self.blocks[block].kind;
        let mut children = Vec::new();
        let count = expanded.as_ref().map_or(nodes.len(), Vec::len);
        for i in 0..count {
            let node = match &expanded {
                Some(list) => list[i],
                None => &nodes[i],
            };
            let Node::Directive(d) = node else { continue };
            let Some(body) = d.block() else { continue };
            let Some(child_kind) = classify(kind, d) else {
                continue;
            };
            let id = self.blocks.len();
            self.blocks
                .push(ConfBlock::new(child_kind, Some(d), Some(block)));
            children.push(id);
            if child_kind == BlockKind::Http && self.http.is_none() {
                self.http = Some(id);
            }
            if body.verbatim().is_none() {
                self.walk(&body.nodes, id);
            }
        }
        self.blocks[block].set_nodes(nodes, expanded, &children);
    }

    fn collect_main(&mut self) {
        let main = &self.blocks[0];
        self.main.worker_processes = main.last("worker_processes");
        self.main.worker_rlimit_nofile = main.last("worker_rlimit_nofile");
        self.main.worker_shutdown_timeout = main.last("worker_shutdown_timeout");
        let events = main
            .children()
            .find(|&c| self.blocks[c].kind == BlockKind::Events);
        self.main.events = events;
        self.main.worker_connections =
            events.and_then(|e| self.blocks[e].last("worker_connections"));
    }

    fn collect_upstreams(&mut self) {
        for id in 0..self.blocks.len() {
            // An upstream snippet read on its own has no name: skip it.
            if self.blocks[id].kind != BlockKind::Upstream || self.blocks[id].directive.is_none() {
                continue;
            }
            let upstream = Upstream::from_block(id, &self.blocks[id]);
            let uid = self.upstreams.len();
            // nginx rejects duplicate upstream names ("duplicate upstream");
            // the first one is kept.
            self.upstream_by_name
                .entry(upstream.name.to_ascii_lowercase())
                .or_insert(uid);
            self.upstreams.push(upstream);
        }
    }

    fn collect_maps_and_sets(&mut self) {
        for id in 0..self.blocks.len() {
            let block = &self.blocks[id];
            if block.kind == BlockKind::Map {
                if let Some(map) = MapBlock::from_block(block) {
                    self.maps.push(map);
                }
                continue;
            }
            if block.kind.is_http_level() {
                for d in block.directives_named("set") {
                    if let Some(var) = d.args().first() {
                        let name = var.text();
                        let name = name.trim_start_matches('$').to_string();
                        self.sets.entry(name).or_default().push(d);
                    }
                }
            }
        }
    }

    fn collect_routes(&mut self) {
        for id in 0..self.blocks.len() {
            if !self.blocks[id].kind.is_location_like() {
                continue;
            }
            let passes: Vec<&'a Directive> = self.blocks[id]
                .directives()
                .filter(|d| crate::routes::Protocol::of_directive(d).is_some())
                .collect();
            for pass in passes {
                if let Some(route) = Route::new(self, id, pass) {
                    self.routes.push(route);
                }
            }
        }
    }

    /// The upstream block named `name` (case-insensitive, as nginx matches).
    pub fn upstream_named(&self, name: &str) -> Option<UpstreamId> {
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            self.upstream_by_name
                .get(&name.to_ascii_lowercase())
                .copied()
        } else {
            self.upstream_by_name.get(name).copied()
        }
    }

    pub fn block(&self, id: BlockId) -> &ConfBlock<'a> {
        &self.blocks[id]
    }

    pub fn route(&self, id: RouteId) -> &Route<'a> {
        &self.routes[id]
    }

    pub fn upstream(&self, id: UpstreamId) -> &Upstream<'a> {
        &self.upstreams[id]
    }

    /// The block and its ancestors, innermost first, up to the main context.
    pub fn ancestors(&self, block: BlockId) -> impl Iterator<Item = BlockId> + '_ {
        std::iter::successors(Some(block), move |&b| self.blocks[b].parent())
    }

    /// The chain of http levels from `http` down to `block` (outermost first).
    pub fn chain(&self, block: BlockId) -> Vec<BlockId> {
        let mut chain: Vec<BlockId> = self
            .ancestors(block)
            .filter(|&b| self.blocks[b].kind.is_http_level())
            .collect();
        chain.reverse();
        chain
    }

    /// The innermost common ancestor of `blocks` (an http level or main).
    pub fn common_ancestor(&self, blocks: &[BlockId]) -> Option<BlockId> {
        let first = *blocks.first()?;
        let mut candidates: Vec<BlockId> = self.ancestors(first).collect();
        for &b in &blocks[1..] {
            let anc: Vec<BlockId> = self.ancestors(b).collect();
            candidates.retain(|c| anc.contains(c));
        }
        candidates.first().copied()
    }

    /// The routes that reach upstream `id` (literal or through a variable).
    pub fn routes_to(&self, id: UpstreamId) -> impl Iterator<Item = RouteId> + '_ {
        self.upstream_routes[id].iter().copied()
    }

    /// The map block that defines `$var` (name without `$`).
    pub fn map_defining(&self, var: &str) -> Option<&MapBlock<'a>> {
        self.maps.iter().find(|m| m.target == var)
    }

    /// All server blocks.
    pub fn servers(&self) -> impl Iterator<Item = BlockId> + '_ {
        (0..self.blocks.len()).filter(move |&b| self.blocks[b].kind == BlockKind::Server)
    }
}

/// Which block kind a block directive opens inside a `parent` block, or `None`
/// for blocks the model does not look into (`types`, `geo`, `stream`, `mail`,
/// Lua blocks…). `stream{}` is skipped on purpose: its upstreams and
/// `proxy_pass` are TCP, not HTTP.
pub(crate) fn classify(parent: BlockKind, d: &Directive) -> Option<BlockKind> {
    let name = d.name().value();
    match parent {
        BlockKind::Main => match name {
            b"http" => Some(BlockKind::Http),
            b"events" => Some(BlockKind::Events),
            _ => None,
        },
        BlockKind::Http => match name {
            b"server" => Some(BlockKind::Server),
            b"upstream" => Some(BlockKind::Upstream),
            b"map" => Some(BlockKind::Map),
            _ => None,
        },
        BlockKind::Server
        | BlockKind::Location
        | BlockKind::NamedLocation
        | BlockKind::If
        | BlockKind::LimitExcept => match name {
            b"location" => {
                let named = d
                    .args()
                    .first()
                    .is_some_and(|a| a.value().first() == Some(&b'@'));
                Some(if named {
                    BlockKind::NamedLocation
                } else {
                    BlockKind::Location
                })
            }
            b"if" => Some(BlockKind::If),
            b"limit_except" if parent != BlockKind::Server => Some(BlockKind::LimitExcept),
            _ => None,
        },
        BlockKind::Events | BlockKind::Upstream | BlockKind::Map | BlockKind::Opaque => None,
    }
}
