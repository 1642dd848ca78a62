//! `upstream{}` blocks: servers, balancer, and the effective idle pool.

use std::borrow::Cow;
use upkeep_facts::{landmarks, ngx_atoi, ngx_parse_time, NginxVersion};
use upkeep_syntax::{Comment, Directive, Node};

use crate::blocks::{BlockId, ConfBlock};
use crate::routes::{split_host_port, split_host_port_str};

pub type UpstreamId = usize;

/// Directives that choose a load-balancing method by replacing
/// `peer.init_upstream` (behaviors.md §d; directives.tsv row "ip_hash /
/// least_conn / hash / random / least_time / sticky"). `fair` and
/// `consistent_hash` are common third-party balancers built the same way, and
/// so is the Lua module's `balancer_by_lua_*` (ingress-nginx picks every
/// peer with it).
pub const BALANCER_DIRECTIVES: &[&str] = &[
    "ip_hash",
    "least_conn",
    "hash",
    "random",
    "least_time",
    "sticky",
    "fair",
    "consistent_hash",
    "balancer_by_lua_block",
    "balancer_by_lua_file",
];

/// The Lua module's balancer directives: the peer is chosen by Lua code at
/// request time, so the block's `server` lines are placeholders.
pub const LUA_BALANCERS: &[&str] = &["balancer_by_lua_block", "balancer_by_lua_file"];

/// Balancers whose directive handler REPLACES `peer.init_upstream` (after
/// logging "load balancing method redefined"), which before nginx 1.29.7
/// throws away the keepalive module's wrapper when written after `keepalive`
/// (behaviors.md §d: `ngx_http_upstream_ip_hash`, `least_conn`, `hash`,
/// `random`, and `least_time` since 1.31.0). `sticky` is not one of them: it
/// wraps `init_upstream` like `keepalive` does. `balancer_by_lua_*` replaces
/// it too: nginx 1.22 with lua-nginx-module 0.10.23 logs "load balancing
/// method redefined" for `keepalive` written before it (tested in
/// crates/upkeep-cli/tests/k8s_controllers.rs).
pub const OVERWRITING_BALANCERS: &[&str] = &[
    "ip_hash",
    "least_conn",
    "hash",
    "random",
    "least_time",
    "balancer_by_lua_block",
    "balancer_by_lua_file",
];

/// One `server` line.
#[derive(Clone, Debug)]
pub struct UpstreamServer<'a> {
    pub directive: &'a Directive,
    /// The address as written (`10.0.0.1:8080`, `unix:/run/app.sock`, `app`).
    /// Both borrow the configuration's text unless the word had escapes:
    /// a large configuration has hundreds of thousands of server lines.
    pub address: Cow<'a, str>,
    pub host: Cow<'a, str>,
    /// `None` when no port was given (nginx then uses 80).
    pub port: Option<u16>,
}

impl<'a> UpstreamServer<'a> {
    /// A parameter after the address: `Some(Some("3"))` for `max_fails=3`,
    /// `Some(None)` for `backup`, `None` when absent. Read from the
    /// directive when asked (a large configuration has hundreds of
    /// thousands of server lines, and few questions are asked of them).
    pub fn param(&self, name: &str) -> Option<Option<Cow<'a, str>>> {
        self.directive.args().iter().skip(1).find_map(|w| {
            let param = w.value();
            let (key, value) = match param.iter().position(|&b| b == b'=') {
                Some(eq) => (&param[..eq], Some(&param[eq + 1..])),
                None => (param, None),
            };
            (key == name.as_bytes()).then(|| value.map(String::from_utf8_lossy))
        })
    }
}

/// The idle connection pool of an upstream as nginx will run it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool<'a> {
    /// `keepalive N` with N > 0.
    Explicit { size: u64, directive: &'a Directive },
    /// No `keepalive` line on nginx >= 1.29.7: `32 local` (directives.tsv row
    /// keepalive; commit 4fbe4b627).
    Implicit { size: u64 },
    /// `keepalive 0` (accepted since 1.29.7; "invalid value" before).
    Disabled { directive: &'a Directive },
    /// No `keepalive` line before 1.29.7: no cache at all.
    None,
    /// `keepalive` with a count nginx refuses (`keepalive abc;`, a number
    /// above 9223372036854775807): the configuration does not load, so there
    /// is no pool to judge ([`crate::first_refused_value`] reports it).
    Refused { directive: &'a Directive },
}

impl Pool<'_> {
    /// The pool size the configuration asks for (0 when none).
    pub fn size(&self) -> u64 {
        match self {
            Pool::Explicit { size, .. } | Pool::Implicit { size } => *size,
            Pool::Disabled { .. } | Pool::None | Pool::Refused { .. } => 0,
        }
    }
}

/// One `upstream name { … }`.
#[derive(Clone, Debug)]
pub struct Upstream<'a> {
    pub name: String,
    pub block: BlockId,
    pub directive: &'a Directive,
    pub servers: Vec<UpstreamServer<'a>>,
    /// Balancer directives in order.
    pub balancers: Vec<&'a Directive>,
    /// The last `keepalive` line (nginx 1.3.11 fixed a crash on repeats; the
    /// last one wins).
    pub keepalive: Option<&'a Directive>,
    pub keepalive_timeout: Option<&'a Directive>,
    pub keepalive_requests: Option<&'a Directive>,
    pub keepalive_time: Option<&'a Directive>,
    /// `balancer_by_lua_block` / `balancer_by_lua_file`: Lua picks the peer
    /// of each request, and the `server` lines are placeholders (ingress-nginx
    /// writes `server 0.0.0.1`), so the real backends are not in the config.
    pub lua_balancer: Option<&'a Directive>,
    /// Comments inside the block (where `# upkeep: backend …` lives).
    pub comments: Vec<&'a Comment>,
    /// All direct directives, in order (includes expanded).
    pub directives: Vec<&'a Directive>,
}

impl<'a> Upstream<'a> {
    pub(crate) fn from_block(block: BlockId, conf: &ConfBlock<'a>) -> Upstream<'a> {
        let directive = conf.directive.expect("upstream blocks have a directive");
        let name = directive
            .args()
            .first()
            .map(|w| w.text().into_owned())
            .unwrap_or_default();
        let mut up = Upstream {
            name,
            block,
            directive,
            servers: Vec::new(),
            balancers: Vec::new(),
            keepalive: None,
            keepalive_timeout: None,
            keepalive_requests: None,
            keepalive_time: None,
            lua_balancer: None,
            comments: Vec::new(),
            directives: Vec::new(),
        };
        for node in conf.nodes() {
            let d = match node {
                Node::Comment(c) => {
                    up.comments.push(c);
                    continue;
                }
                Node::Directive(d) => d,
            };
            up.directives.push(d);
            match d.name().value() {
                b"server" => {
                    if let Some(addr) = d.args().first() {
                        let address = addr.text();
                        let (host, port) = match &address {
                            Cow::Borrowed(a) => {
                                let (host, port) = split_host_port_str(a);
                                (Cow::Borrowed(host), port)
                            }
                            Cow::Owned(a) => {
                                let (host, port) = split_host_port(a);
                                (Cow::Owned(host), port)
                            }
                        };
                        up.servers.push(UpstreamServer {
                            directive: d,
                            address,
                            host,
                            port,
                        });
                    }
                }
                b"keepalive" => up.keepalive = Some(d),
                b"keepalive_timeout" => up.keepalive_timeout = Some(d),
                b"keepalive_requests" => up.keepalive_requests = Some(d),
                b"keepalive_time" => up.keepalive_time = Some(d),
                n if BALANCER_DIRECTIVES.iter().any(|b| b.as_bytes() == n) => {
                    if LUA_BALANCERS.iter().any(|b| b.as_bytes() == n) {
                        up.lua_balancer = Some(d);
                    }
                    up.balancers.push(d)
                }
                _ => {}
            }
        }
        // Exact sizes: a large configuration has tens of thousands of
        // upstreams, each with a list of every directive it holds.
        up.servers = exact(up.servers);
        up.balancers = exact(up.balancers);
        up.comments = exact(up.comments);
        up.directives = exact(up.directives);
        up
    }

    /// The idle pool nginx `version` runs for this upstream.
    pub fn pool(&self, version: NginxVersion) -> Pool<'a> {
        match self.keepalive {
            Some(d) => {
                // The count as nginx reads it (ngx_atoi): a word or a number
                // it cannot hold is not `keepalive 0`.
                let n = d.args().first().and_then(|w| ngx_atoi(&w.text()));
                match n {
                    Some(0) => Pool::Disabled { directive: d },
                    Some(size) => Pool::Explicit { size, directive: d },
                    None => Pool::Refused { directive: d },
                }
            }
            None if version >= landmarks::KEEPALIVE_BY_DEFAULT => Pool::Implicit { size: 32 },
            None => Pool::None,
        }
    }

    /// Whether the configuration asks for an idle pool ("keepalive upstream"
    /// in RULES.md): explicit `keepalive N > 0`, or implicit on >= 1.29.7.
    pub fn is_keepalive(&self, version: NginxVersion) -> bool {
        self.pool(version).size() > 0
    }

    /// On nginx before 1.29.7, a balancer directive written AFTER `keepalive`
    /// replaces the keepalive module's `init_upstream` and the pool is silently
    /// lost (behaviors.md §d). Returns the first such balancer.
    pub fn balancer_after_keepalive(&self, version: NginxVersion) -> Option<&'a Directive> {
        if version >= landmarks::KEEPALIVE_BY_DEFAULT {
            return None;
        }
        // Any keepalive line before the balancer counts, not only the last.
        let first_ka = self
            .directives
            .iter()
            .position(|d| d.name_is("keepalive"))?;
        self.directives[first_ka..]
            .iter()
            .find(|d| OVERWRITING_BALANCERS.contains(&d.name().text().as_ref()))
            .copied()
    }

    /// Whether cached connections go to any location that uses this
    /// upstream (`keepalive N` without `local`), not only to the location
    /// that opened them. The implicit pool of nginx >= 1.29.7 is `local`;
    /// targets without the `local` parameter (nginx before 1.29.7, Angie,
    /// freenginx) always share (`ngx_http_upstream_get_keepalive_peer`
    /// compares the tag only with `local`; http2_upstream.tsv row
    /// cache-matches-address-only).
    pub fn pool_shared_across_locations(&self, version: NginxVersion) -> bool {
        match self.pool(version) {
            Pool::Explicit { directive, .. } => !directive
                .args()
                .after(1)
                .iter()
                .any(|a| a.value() == b"local"),
            Pool::Implicit { .. } | Pool::Disabled { .. } | Pool::None | Pool::Refused { .. } => {
                false
            }
        }
    }

    /// Whether the pool actually works (asked for and not lost to a balancer
    /// written after it).
    pub fn pool_works(&self, version: NginxVersion) -> bool {
        self.is_keepalive(version) && self.balancer_after_keepalive(version).is_none()
    }

    /// The upstream `keepalive_timeout` in ms: explicit, or the 60 s default;
    /// `None` on nginx before 1.15.3, which has no nginx-side idle timeout for
    /// cached upstream connections (directives.tsv row keepalive_timeout,
    /// upstream module), and for a value nginx refuses (`keepalive_timeout
    /// zz;`: the configuration does not load; [`crate::first_refused_value`]
    /// reports it).
    pub fn keepalive_timeout_ms(&self, version: NginxVersion) -> Option<u64> {
        if version < landmarks::UPSTREAM_KEEPALIVE_TIMEOUT {
            return None;
        }
        match self.keepalive_timeout {
            Some(d) => d
                .args()
                .first()
                .and_then(|w| ngx_parse_time(&w.text(), false)),
            None => Some(60_000),
        }
    }

    /// The upstream `keepalive_requests`: explicit, or the default of the
    /// version (100 from 1.15.3, 1000 from 1.19.10); `None` before 1.15.3 (no
    /// limit), and for a count nginx refuses (the configuration does not
    /// load; [`crate::first_refused_value`] reports it).
    pub fn keepalive_requests(&self, version: NginxVersion) -> Option<u64> {
        if version < landmarks::UPSTREAM_KEEPALIVE_TIMEOUT {
            return None;
        }
        match self.keepalive_requests {
            Some(d) => d.args().first().and_then(|w| ngx_atoi(&w.text())),
            None => Some(if version >= landmarks::KEEPALIVE_REQUESTS_1000 {
                1000
            } else {
                100
            }),
        }
    }

    /// The directive a balancer-style insertion should follow: the last
    /// balancer, else the last `server`, else `None`.
    pub fn insertion_anchor(&self) -> Option<&'a Directive> {
        self.balancers
            .last()
            .copied()
            .or_else(|| self.servers.last().map(|s| s.directive))
    }
}

/// `list` moved into an allocation of its exact size. `shrink_to_fit`
/// would not do: mimalloc keeps a block that would still be at least half
/// used, and the spare room of many small lists adds up.
fn exact<T>(mut list: Vec<T>) -> Vec<T> {
    if list.capacity() == list.len() {
        return list;
    }
    let mut exact = Vec::with_capacity(list.len());
    exact.append(&mut list);
    exact
}
