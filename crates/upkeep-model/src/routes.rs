//! Routes: the places where nginx passes a request to a backend, and what
//! their target is.

use upkeep_syntax::Directive;

use crate::blocks::BlockId;
use crate::model::Model;
use crate::upstreams::UpstreamId;

pub type RouteId = usize;

/// The protocol a route speaks to its backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `proxy_pass` (HTTP/1.x, or HTTP/2 with `proxy_http_version 2`).
    Http,
    FastCgi,
    Grpc,
    Uwsgi,
    Scgi,
}

impl Protocol {
    pub fn of_directive(d: &Directive) -> Option<Protocol> {
        match d.name().value() {
            b"proxy_pass" => Some(Protocol::Http),
            b"fastcgi_pass" => Some(Protocol::FastCgi),
            b"grpc_pass" => Some(Protocol::Grpc),
            b"uwsgi_pass" => Some(Protocol::Uwsgi),
            b"scgi_pass" => Some(Protocol::Scgi),
            _ => None,
        }
    }

    /// The directive prefix of the module (`proxy`, `fastcgi`, …), for
    /// `<prefix>_next_upstream` and friends.
    pub fn prefix(self) -> &'static str {
        match self {
            Protocol::Http => "proxy",
            Protocol::FastCgi => "fastcgi",
            Protocol::Grpc => "grpc",
            Protocol::Uwsgi => "uwsgi",
            Protocol::Scgi => "scgi",
        }
    }

    /// `proxy_next_upstream`, `fastcgi_next_upstream`, …
    pub fn next_upstream_directive(self) -> &'static str {
        match self {
            Protocol::Http => "proxy_next_upstream",
            Protocol::FastCgi => "fastcgi_next_upstream",
            Protocol::Grpc => "grpc_next_upstream",
            Protocol::Uwsgi => "uwsgi_next_upstream",
            Protocol::Scgi => "scgi_next_upstream",
        }
    }

    /// Whether nginx can cache this protocol's connections at all
    /// (behaviors.md §c "Other protocols": uwsgi and SCGI never set
    /// `u->keepalive`).
    pub fn can_keep_alive(self) -> bool {
        !matches!(self, Protocol::Uwsgi | Protocol::Scgi)
    }
}

/// Where a route sends requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PassTarget {
    /// An `upstream{}` block named literally.
    Upstream(UpstreamId),
    /// A literal address that is not an upstream block (`127.0.0.1:8080`,
    /// `unix:/run/app.sock`, `backend.example.com`): nginx makes an implicit
    /// upstream, which never has an idle pool (behaviors.md §c).
    Direct { host: String, port: Option<u16> },
    /// The host part contains variables, resolved at run time. nginx uses an
    /// `upstream{}` block when the evaluated host names one. Boxed: it is
    /// the largest kind and the rarest, and a large configuration has
    /// hundreds of thousands of routes.
    Dynamic(Box<DynamicTarget>),
}

/// A pass target whose host part contains variables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DynamicTarget {
    /// The host part as written (`$backend`, `${svc}.internal`).
    pub host: String,
    /// Upstream blocks the variable can evaluate to (from `set` and `map`).
    pub upstreams: Vec<UpstreamId>,
    /// Values it can evaluate to that are not upstream blocks.
    pub other_values: Vec<String>,
    /// Whether every value of the variable is known (all from `set`/`map`
    /// with literal values); `false` for request variables such as `$host`
    /// or values computed elsewhere.
    pub fully_known: bool,
}

/// A location configuration that passes requests to a backend.
#[derive(Clone, Debug)]
pub struct Route<'a> {
    /// The location, named location, `if` or `limit_except` block.
    pub block: BlockId,
    pub pass: &'a Directive,
    pub protocol: Protocol,
    /// `http`, `https`, `grpc`, `grpcs`, `uwsgi`, `suwsgi`, or `None` when the
    /// directive has no scheme (fastcgi/scgi addresses, bare gRPC addresses).
    pub scheme: Option<String>,
    pub target: PassTarget,
}

impl<'a> Route<'a> {
    pub(crate) fn new(model: &Model<'a>, block: BlockId, pass: &'a Directive) -> Option<Route<'a>> {
        let protocol = Protocol::of_directive(pass)?;
        let url = pass.args().first()?.text();
        let (scheme, rest) = match url.find("://") {
            Some(i) => (Some(url[..i].to_ascii_lowercase()), &url[i + 3..]),
            None => (None, &url[..]),
        };
        let host_port: &str = if let Some(path) = rest.strip_prefix("unix:") {
            // unix:/path[:uri]; the whole socket path is the address.
            let end = path.find(':').map_or(rest.len(), |i| i + "unix:".len());
            &rest[..end]
        } else {
            rest.split('/').next().unwrap_or("")
        };
        // `http://backend$request_uri` (NGINX Gateway Fabric's internal
        // locations): variables whose value always starts with `/` or `?`
        // end the host part, so the host is the literal before them.
        let host_port = strip_uri_variables(host_port);
        let target = if host_port.contains('$') {
            dynamic_target(model, host_port)
        } else {
            let (host, port) = split_host_port_str(host_port);
            match model.upstream_named(host) {
                Some(id) if !host.starts_with("unix:") => PassTarget::Upstream(id),
                _ => PassTarget::Direct {
                    host: host.to_string(),
                    port,
                },
            }
        };
        Some(Route {
            block,
            pass,
            protocol,
            scheme,
            target,
        })
    }

    /// The upstream blocks this route can reach.
    pub fn upstreams(&self) -> Vec<UpstreamId> {
        match &self.target {
            PassTarget::Upstream(id) => vec![*id],
            PassTarget::Dynamic(target) => target.upstreams.clone(),
            PassTarget::Direct { .. } => Vec::new(),
        }
    }

    /// The pass directive's argument as written.
    pub fn target_text(&self) -> String {
        self.pass
            .args()
            .first()
            .map(|a| a.text().into_owned())
            .unwrap_or_default()
    }
}

/// Request variables whose value starts with `/` (the URI) or is empty or
/// starts with `?` (the arguments).
const URI_VARIABLES: &[&str] = &[
    "$request_uri",
    "${request_uri}",
    "$uri",
    "${uri}",
    "$document_uri",
    "$is_args",
];

/// `backend$request_uri` → `backend`: the host part without the URI
/// variables that follow it. A host that is only such variables is kept.
fn strip_uri_variables(host_port: &str) -> &str {
    match URI_VARIABLES.iter().filter_map(|v| host_port.find(v)).min() {
        Some(0) | None => host_port,
        Some(i) => &host_port[..i],
    }
}

/// Splits `host:port` (IPv6 in brackets allowed); a missing or unparsable
/// port is `None`.
pub fn split_host_port(s: &str) -> (String, Option<u16>) {
    let (h, p) = split_host_port_str(s);
    (h.to_string(), p)
}

/// [`split_host_port`] without allocating.
pub(crate) fn split_host_port_str(s: &str) -> (&str, Option<u16>) {
    if s.starts_with("unix:") {
        return (s, None);
    }
    if s.starts_with('[') {
        if let Some(end) = s.find(']') {
            let port = s[end + 1..].strip_prefix(':').and_then(|p| p.parse().ok());
            return (&s[..=end], port);
        }
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, p.parse().ok()),
        _ => (s, None),
    }
}

/// Resolves a host part with variables through `set` and `map`.
fn dynamic_target(model: &Model<'_>, host_port: &str) -> PassTarget {
    let (host, _port) = split_host_port(host_port);
    let var = single_variable(&host);
    let mut upstreams = Vec::new();
    let mut other_values = Vec::new();
    let mut fully_known = false;
    if let Some(var) = var {
        let values = model.variable_values(&var);
        fully_known = values.complete;
        for v in values.values {
            // A value can be a whole URL (`set $target https://idp/…`).
            let rest = v.split_once("://").map_or(v.as_str(), |(_, r)| r);
            let (vh, _) = split_host_port(rest.split('/').next().unwrap_or(""));
            match model.upstream_named(&vh) {
                Some(id) => {
                    if !upstreams.contains(&id) {
                        upstreams.push(id)
                    }
                }
                None => other_values.push(v),
            }
        }
    }
    PassTarget::Dynamic(Box::new(DynamicTarget {
        host,
        upstreams,
        other_values,
        fully_known,
    }))
}

/// `$name` or `${name}` alone → `name`.
pub(crate) fn single_variable(s: &str) -> Option<String> {
    let rest = s.strip_prefix('$')?;
    let name = rest
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .unwrap_or(rest);
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Some(name.to_string())
    } else {
        None
    }
}

/// What a route speaks on its upstream connections. The keepalive cache
/// hands a cached connection to any request of the same upstream (and, with
/// `local`, the same location) whatever it speaks
/// (`ngx_http_upstream_get_keepalive_peer` compares only the peer address
/// and the location tag), so routes of different wires sharing one pool can
/// be handed each other's connections (crates/upkeep-facts/data/http2_upstream.tsv).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Wire {
    /// `proxy_pass` with `proxy_http_version` 1.0 or 1.1.
    Http1,
    /// `proxy_pass` with `proxy_http_version 2` (ngx_http_proxy_v2_module).
    Http2,
    /// `grpc_pass` (HTTP/2 framed by ngx_http_grpc_module).
    Grpc,
    FastCgi,
    /// uwsgi and SCGI: never cached.
    NotCached,
}

impl Wire {
    pub fn describe(self) -> &'static str {
        match self {
            Wire::Http1 => "HTTP/1.x",
            Wire::Http2 => "HTTP/2 (`proxy_http_version 2`)",
            Wire::Grpc => "gRPC (HTTP/2)",
            Wire::FastCgi => "FastCGI",
            Wire::NotCached => "uwsgi/SCGI",
        }
    }

    /// Whether connections of this wire are HTTP/2 connections.
    pub fn is_http2(self) -> bool {
        matches!(self, Wire::Http2 | Wire::Grpc)
    }
}

impl Model<'_> {
    /// The wire route `r` speaks to its backend. `proxy_http_version 2` on a
    /// target that does not accept it is taken as HTTP/1.x: nginx refuses to
    /// start with it (U017 reports it).
    pub fn wire(&self, r: RouteId) -> Wire {
        let route = self.route(r);
        match route.protocol {
            Protocol::Http => {
                let http2 = self.value(route.block, "proxy_http_version").is("2");
                if http2 && self.target.has_proxy_http2() {
                    Wire::Http2
                } else {
                    Wire::Http1
                }
            }
            Protocol::Grpc => Wire::Grpc,
            Protocol::FastCgi => Wire::FastCgi,
            Protocol::Uwsgi | Protocol::Scgi => Wire::NotCached,
        }
    }
}

#[cfg(test)]
mod uri_variable_tests {
    use super::strip_uri_variables;

    /// A large configuration has hundreds of thousands of routes.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_route_is_80_bytes() {
        assert_eq!(std::mem::size_of::<super::Route>(), 80);
    }

    #[test]
    fn uri_variables_end_the_host() {
        assert_eq!(
            strip_uri_variables("default_web_8000$request_uri"),
            "default_web_8000"
        );
        assert_eq!(
            strip_uri_variables("app:8080${uri}$is_args$args"),
            "app:8080"
        );
        assert_eq!(strip_uri_variables("$request_uri"), "$request_uri");
        assert_eq!(strip_uri_variables("$backend"), "$backend");
    }
}
