//! The block a configuration (or a snippet of one) is read in.

use std::fmt;
use std::str::FromStr;
use upkeep_syntax::{Node, SyntaxTree};

/// nginx's configuration contexts, as far as `upkeep` distinguishes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Context {
    /// The top level of nginx.conf.
    Main,
    Events,
    Http,
    Server,
    Location,
    Upstream,
    Stream,
    StreamServer,
    StreamUpstream,
    Mail,
    MailServer,
}

impl Context {
    pub fn name(self) -> &'static str {
        match self {
            Context::Main => "main",
            Context::Events => "events",
            Context::Http => "http",
            Context::Server => "server",
            Context::Location => "location",
            Context::Upstream => "upstream",
            Context::Stream => "stream",
            Context::StreamServer => "stream-server",
            Context::StreamUpstream => "stream-upstream",
            Context::Mail => "mail",
            Context::MailServer => "mail-server",
        }
    }

    /// All contexts, for help texts and completion.
    pub const ALL: [Context; 11] = [
        Context::Main,
        Context::Events,
        Context::Http,
        Context::Server,
        Context::Location,
        Context::Upstream,
        Context::Stream,
        Context::StreamServer,
        Context::StreamUpstream,
        Context::Mail,
        Context::MailServer,
    ];

    /// The context a file was most likely written for, judged by its
    /// top-level directives: a complete nginx.conf has `events`/`http`
    /// (main); a conf.d snippet has `server`/`upstream`/`map` (http); a
    /// snippet of `location`s and `listen` is a server body. Anything else
    /// is taken as main.
    pub fn guess(tree: &SyntaxTree) -> Context {
        let names: Vec<&[u8]> = tree
            .nodes
            .iter()
            .filter_map(Node::as_directive)
            .map(|d| d.name().value())
            .collect();
        let has = |n: &str| names.contains(&n.as_bytes());
        if [
            "events",
            "http",
            "stream",
            "mail",
            "worker_processes",
            "user",
            "load_module",
        ]
        .iter()
        .any(|n| has(n))
        {
            Context::Main
        } else if [
            "server",
            "upstream",
            "map",
            "log_format",
            "proxy_cache_path",
            "limit_req_zone",
        ]
        .iter()
        .any(|n| has(n))
        {
            Context::Http
        } else if ["location", "listen", "server_name"].iter().any(|n| has(n)) {
            Context::Server
        } else {
            Context::Main
        }
    }
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Context {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Context::ALL
            .iter()
            .copied()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Context::ALL.iter().map(|c| c.name()).collect();
                format!("unknown context {s:?} (one of: {})", names.join(", "))
            })
    }
}
