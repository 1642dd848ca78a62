//! What a rule's check gets: the model, the options, resolved backend facts,
//! and small helpers for messages.

use std::sync::Mutex;
use upkeep_diag::Finding;
use upkeep_facts::{BackendFacts, NginxVersion};

use upkeep_model::{ArrayValue, BlockId, Model, RouteId, UpstreamId, Value};
use upkeep_syntax::{Directive, SourceFile, Span};

use crate::options::{CheckOptions, VersionSource};

/// A problem with an `# upkeep:` comment, reported by X002.
#[derive(Clone, Debug)]
pub struct CommentProblem {
    pub span: Span,
    pub message: String,
}

pub struct Ctx<'m, 'a> {
    pub model: &'m Model<'a>,
    pub opts: &'m CheckOptions,
    pub version: NginxVersion,
    /// Backend facts per upstream (index = UpstreamId), merged from inline
    /// comments, upkeep.toml/`--backend` and probe results.
    pub backends: Vec<Option<BackendFacts>>,
    pub comment_problems: Vec<CommentProblem>,
    keepalive_routes: Vec<RouteId>,
    /// What rules took for granted without seeing it (a bare name in a
    /// snippet taken for an upstream defined elsewhere, an inherited open-file
    /// limit), reported with the findings. Rules run on several threads.
    assumptions: Mutex<Vec<String>>,
}

impl<'m, 'a> Ctx<'m, 'a> {
    pub fn new(model: &'m Model<'a>, opts: &'m CheckOptions) -> Ctx<'m, 'a> {
        let mut ctx = Ctx {
            model,
            opts,
            version: model.version,
            backends: Vec::new(),
            comment_problems: Vec::new(),
            keepalive_routes: Vec::new(),
            assumptions: Mutex::new(Vec::new()),
        };
        crate::backends::resolve(&mut ctx);
        ctx.keepalive_routes = (0..model.routes.len())
            .filter(|&r| !ctx.keepalive_upstreams_of(r).is_empty())
            .collect();
        ctx
    }

    pub fn file(&self, span: Span) -> &SourceFile {
        self.model.source.source_file(span.file)
    }

    /// The source text of a span (lossy UTF-8).
    pub fn text(&self, span: Span) -> String {
        String::from_utf8_lossy(self.file(span).slice(span)).into_owned()
    }

    /// `path:line` of a span, for messages that point elsewhere.
    pub fn place(&self, span: Span) -> String {
        let f = self.file(span);
        format!("{}:{}", f.path, f.line_col(span.start).line)
    }

    /// The part of a directive worth underlining: the whole of a simple
    /// directive, or the head (`upstream app`, `location /api/`) of a block.
    pub fn head(&self, d: &Directive) -> Span {
        if d.block().is_none() {
            return d.span();
        }
        Span::new(
            d.span().file,
            d.name().span().start,
            d.last_word().span().end,
        )
    }

    /// `location /api/`, `server example.com`…
    pub fn describe(&self, block: BlockId) -> String {
        self.model.block(block).describe()
    }

    /// Whether a client keep-alive scalar `name` (`keepalive_timeout`,
    /// `keepalive_requests`) set in `block` applies to no request, because
    /// every request is answered at a level below that sets its own (a
    /// lower level's own value replaces the inherited one,
    /// `ngx_conf_merge_*_value`):
    /// - an `http` block whose servers (at least one) all set `name`: every
    ///   request is handled in some server;
    /// - a `server` block whose locations (named ones too) all set `name`,
    ///   when every request reaches one of them: it has a `location /`
    ///   (every request path starts with `/`), and no `if`, `return` or
    ///   `rewrite` of its own, which answer in the server rewrite phase,
    ///   before a location is chosen (a server-level `keepalive_timeout 0`
    ///   then closes the connection). Only for HTTP/1.x: a server that
    ///   speaks HTTP/2 or HTTP/3 (`listen … http2`, `listen … quic`,
    ///   `http2 on`) keeps the finding, as nothing here shows which level
    ///   those connections read their keep-alive settings from.
    ///
    /// `client_keepalive_findings_match_a_real_nginx` and
    /// `server_level_client_keepalive_findings_match_a_real_nginx` check
    /// these cases against a real nginx.
    pub fn applies_to_no_request(&self, block: BlockId, name: &str) -> bool {
        use upkeep_model::BlockKind;
        let model = &self.model;
        match model.block(block).kind {
            BlockKind::Http => {
                let mut servers = model
                    .servers()
                    .filter(|&s| model.ancestors(s).any(|a| a == block))
                    .peekable();
                servers.peek().is_some()
                    && servers.all(|s| model.block(s).directives_named(name).next().is_some())
            }
            BlockKind::Server => {
                let server = model.block(block);
                let answers_before_a_location =
                    ["if", "return", "rewrite"].iter().any(|n| server.has(n));
                let newer_protocol = server.directives_named("listen").any(|l| {
                    l.args()
                        .iter()
                        .skip(1)
                        .any(|a| a.is_keyword("http2") || a.is_keyword("quic"))
                }) || std::iter::once(block)
                    .chain(model.ancestors(block))
                    .any(|b| model.block(b).has("http2"));
                if answers_before_a_location || newer_protocol {
                    return false;
                }
                let locations: Vec<BlockId> = server
                    .children()
                    .filter(|&c| {
                        matches!(
                            model.block(c).kind,
                            BlockKind::Location | BlockKind::NamedLocation
                        )
                    })
                    .collect();
                let catch_all = locations.iter().any(|&c| {
                    model.block(c).directive.is_some_and(|d| {
                        let args: Vec<&[u8]> = d.args().iter().map(|a| a.value()).collect();
                        matches!(args.as_slice(), [b"/"] | [b"^~", b"/"])
                    })
                });
                catch_all && locations.iter().all(|&c| model.block(c).has(name))
            }
            _ => false,
        }
    }

    /// Routes that can keep connections alive and reach an upstream with an
    /// idle pool ("keepalive upstream" in RULES.md).
    pub fn keepalive_routes(&self) -> Vec<RouteId> {
        self.keepalive_routes.clone()
    }

    /// The effective `proxy_set_header` lines of route `r`.
    ///
    /// Resolved on each call, not kept per route: finding the level walks
    /// the directives of a few blocks, while a table for every route held
    /// tens of megabytes on large configurations.
    pub fn headers(&self, r: RouteId) -> ArrayValue<'a> {
        self.model
            .array(self.model.route(r).block, "proxy_set_header")
    }

    /// The effective `proxy_http_version` of route `r` (resolved on each
    /// call, as [`Ctx::headers`]).
    pub fn http_version(&self, r: RouteId) -> Value<'a> {
        self.model
            .value(self.model.route(r).block, "proxy_http_version")
    }

    /// The keepalive upstreams route `r` reaches.
    pub fn keepalive_upstreams_of(&self, r: RouteId) -> Vec<UpstreamId> {
        let route = self.model.route(r);
        if !route.protocol.can_keep_alive() {
            return Vec::new();
        }
        route
            .upstreams()
            .into_iter()
            .filter(|&u| self.model.upstream(u).is_keepalive(self.version))
            .collect()
    }

    /// The names of the keepalive upstreams a route reaches, joined for a
    /// message as "a`, `b" (the caller supplies the outer backticks).
    pub fn keepalive_upstream_names(&self, r: RouteId) -> String {
        self.keepalive_upstreams_of(r)
            .into_iter()
            .map(|u| self.upstream_name(u))
            .collect::<Vec<_>>()
            .join("`, `")
    }

    /// Adds "assuming nginx X" when the verdict rests on a version nobody gave.
    pub fn with_version_note(&self, finding: Finding) -> Finding {
        match self.opts.version_source {
            VersionSource::Assumed => finding.note(format!(
                "assuming {} ({})",
                self.model.target,
                self.opts.assumed_version_reason()
            )),
            VersionSource::Given | VersionSource::Detected | VersionSource::Controller => finding,
        }
    }

    /// Names where a default comes from, for messages: "the default before
    /// nginx 1.29.7" on nginx, "the default of Angie 1.11.4" on a fork (whose
    /// defaults follow its own releases, data/flavors.tsv).
    pub fn default_of_target(&self, nginx_phrase: &str) -> String {
        match self.model.target.flavor {
            upkeep_facts::Flavor::Nginx => nginx_phrase.to_string(),
            _ => format!("the default of {}", self.model.target),
        }
    }

    /// The backend facts of upstream `u`, if anything is known.
    pub fn backend(&self, u: UpstreamId) -> Option<&BackendFacts> {
        self.backends.get(u).and_then(|b| b.as_ref())
    }

    /// Whether the target version has the http-level (or, with `in_upstream`,
    /// the upstream-level) directive `name`, so a fix may write it.
    pub fn available(&self, name: &str, in_upstream: bool) -> bool {
        upkeep_facts::directive(name, in_upstream).is_none_or(|d| d.available_in(self.version))
    }

    /// Records something a verdict rests on that the configuration does not
    /// show, for the report's `assumptions` (each text once).
    pub fn assume(&self, text: impl Into<String>) {
        let text = text.into();
        let mut list = self.assumptions.lock().unwrap_or_else(|e| e.into_inner());
        if !list.contains(&text) {
            list.push(text);
        }
    }

    /// The assumptions recorded so far, in the order first made.
    pub fn take_assumptions(&self) -> Vec<String> {
        std::mem::take(&mut *self.assumptions.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The name of upstream `u`.
    pub fn upstream_name(&self, u: UpstreamId) -> &str {
        &self.model.upstream(u).name
    }
}
