//! What to probe: a backend address, the scheme, and the request to send.

use std::fmt;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

/// How to talk to the backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// Where the backend listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A host name or IP literal and a port. Names are resolved when the
    /// probe starts (see [`Target::resolve`]).
    Host { host: String, port: u16 },
    /// A UNIX-domain socket (`unix:/run/app.sock`, as in nginx's `server`).
    Unix(PathBuf),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Host { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Endpoint::Host { host, port } => write!(f, "{host}:{port}"),
            Endpoint::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// One backend to probe and the request the probe sends to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The target as the user wrote it (or as the config names the server).
    pub spec: String,
    pub scheme: Scheme,
    pub endpoint: Endpoint,
    /// An address chosen in advance (a config server whose name resolved to
    /// several addresses is probed once per address, as nginx makes one peer
    /// of each). `None`: resolve [`Target::endpoint`] when probing.
    pub address: Option<SocketAddr>,
    /// Request target, origin form (`/health?x=1`).
    pub path: String,
    /// Value of the `Host` request header; also the TLS server name when it
    /// is a DNS name.
    pub host_header: String,
    pub method: String,
    /// The nginx upstream this server belongs to, when probing from a config.
    pub upstream: Option<String>,
}

/// Request settings given once for all targets (`--path`, `--host`,
/// `--method`). `None` keeps what the target itself says.
#[derive(Clone, Debug, Default)]
pub struct RequestDefaults {
    pub path: Option<String>,
    pub host: Option<String>,
    pub method: Option<String>,
}

impl Target {
    /// Parses `host:port`, `[v6]:port`, `http://host[:port][/path]`,
    /// `https://…` or `unix:/path`. A bare host means port 80.
    pub fn parse(spec: &str, defaults: &RequestDefaults) -> Result<Target, String> {
        let spec_trimmed = spec.trim();
        if spec_trimmed.is_empty() {
            return Err("empty target".into());
        }
        let lower = spec_trimmed.to_ascii_lowercase();
        let (scheme, rest) = if lower.starts_with("http://") {
            (Scheme::Http, &spec_trimmed["http://".len()..])
        } else if lower.starts_with("https://") {
            (Scheme::Https, &spec_trimmed["https://".len()..])
        } else if lower.contains("://") {
            return Err(format!(
                "unsupported scheme in `{spec_trimmed}` (use http://, https://, host:port or unix:/path)"
            ));
        } else {
            (Scheme::Http, spec_trimmed)
        };

        let (endpoint, url_path) = if let Some(path) = rest.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(format!(
                    "`{spec_trimmed}`: missing socket path after `unix:`"
                ));
            }
            (Endpoint::Unix(PathBuf::from(path)), None)
        } else {
            let (authority, path) = match rest.find(['/', '?']) {
                Some(i) => (&rest[..i], Some(&rest[i..])),
                None => (rest, None),
            };
            let (host, port) = split_host_port(authority, scheme.default_port())
                .map_err(|why| format!("`{spec_trimmed}`: {why}"))?;
            let path = path.map(|p| {
                if p.starts_with('?') {
                    format!("/{p}")
                } else {
                    p.to_string()
                }
            });
            (Endpoint::Host { host, port }, path)
        };

        let path = defaults
            .path
            .clone()
            .or(url_path)
            .unwrap_or_else(|| "/".to_string());
        validate_path(&path)?;
        let method = defaults.method.clone().unwrap_or_else(|| "GET".into());
        validate_method(&method)?;
        let host_header = match &defaults.host {
            Some(h) => h.clone(),
            None => default_host_header(&endpoint, scheme),
        };
        validate_header_value("--host", &host_header)?;

        Ok(Target {
            spec: spec_trimmed.to_string(),
            scheme,
            endpoint,
            address: None,
            path,
            host_header,
            method,
            upstream: None,
        })
    }

    /// Where to connect. A pre-chosen [`Target::address`] wins; otherwise
    /// every address the name resolves to, in resolver order.
    pub fn resolve(&self) -> Result<Vec<ConnectAddr>, String> {
        if let Some(addr) = self.address {
            return Ok(vec![ConnectAddr::Inet(addr)]);
        }
        match &self.endpoint {
            Endpoint::Unix(path) => Ok(vec![ConnectAddr::Unix(path.clone())]),
            Endpoint::Host { host, port } => {
                if let Ok(ip) = host.parse::<IpAddr>() {
                    return Ok(vec![ConnectAddr::Inet(SocketAddr::new(ip, *port))]);
                }
                let addrs: Vec<_> = (host.as_str(), *port)
                    .to_socket_addrs()
                    .map_err(|e| format!("cannot resolve `{host}`: {e}"))?
                    .map(ConnectAddr::Inet)
                    .collect();
                if addrs.is_empty() {
                    return Err(format!("`{host}` resolves to no address"));
                }
                Ok(addrs)
            }
        }
    }

    /// The name to present in TLS (SNI and certificate check): the `Host`
    /// header without its port.
    pub fn tls_name(&self) -> String {
        strip_port(&self.host_header).to_string()
    }
}

/// A resolved place to connect to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ConnectAddr {
    Inet(SocketAddr),
    Unix(PathBuf),
}

impl fmt::Display for ConnectAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectAddr::Inet(a) => write!(f, "{a}"),
            ConnectAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// Splits `host[:port]` / `[v6][:port]`.
pub fn split_host_port(authority: &str, default_port: u16) -> Result<(String, u16), String> {
    if authority.contains('@') {
        return Err("user information in the address is not supported".into());
    }
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let end = rest
            .find(']')
            .ok_or_else(|| "unclosed `[` in IPv6 address".to_string())?;
        let host = &rest[..end];
        host.parse::<std::net::Ipv6Addr>()
            .map_err(|_| format!("`{host}` is not an IPv6 address"))?;
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(format!("unexpected `{after}` after `]`")),
        };
        (host.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => {
                return Err("IPv6 addresses need brackets: [::1]:8080".into())
            }
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err("missing host".into());
    }
    if host
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b == b'/')
    {
        return Err(format!("invalid host `{host}`"));
    }
    let port = match port {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("invalid port `{p}` (expected 1-65535)")),
        },
    };
    Ok((host, port))
}

fn default_host_header(endpoint: &Endpoint, scheme: Scheme) -> String {
    match endpoint {
        // nginx sends `Host: localhost` to UNIX-socket upstreams that have
        // no name; any fixed name does.
        Endpoint::Unix(_) => "localhost".into(),
        Endpoint::Host { host, port } => {
            let host = if host.contains(':') {
                format!("[{host}]")
            } else {
                host.clone()
            };
            if *port == scheme.default_port() {
                host
            } else {
                format!("{host}:{port}")
            }
        }
    }
}

fn strip_port(host_header: &str) -> &str {
    if let Some(rest) = host_header.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host_header.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host_header,
    }
}

fn validate_path(path: &str) -> Result<(), String> {
    if !(path.starts_with('/') || path == "*") {
        return Err(format!("request path `{path}` must start with `/`"));
    }
    if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(format!(
            "request path `{path}` contains spaces or control characters (percent-encode them)"
        ));
    }
    Ok(())
}

fn validate_method(method: &str) -> Result<(), String> {
    // RFC 9110 token characters.
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if method.is_empty() || !method.bytes().all(token) {
        return Err(format!("invalid HTTP method `{method}`"));
    }
    Ok(())
}

fn validate_header_value(what: &str, value: &str) -> Result<(), String> {
    if value.is_empty() || value.bytes().any(|b| b < b' ' || b == 0x7f) {
        return Err(format!("{what}: invalid header value `{value}`"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Target {
        Target::parse(s, &RequestDefaults::default()).unwrap()
    }

    #[test]
    fn host_port_and_urls() {
        let t = parse("127.0.0.1:8080");
        assert_eq!(t.scheme, Scheme::Http);
        assert_eq!(
            t.endpoint,
            Endpoint::Host {
                host: "127.0.0.1".into(),
                port: 8080
            }
        );
        assert_eq!(t.path, "/");
        assert_eq!(t.host_header, "127.0.0.1:8080");

        let t = parse("https://api.example.com/health?full=1");
        assert_eq!(t.scheme, Scheme::Https);
        assert_eq!(t.endpoint.to_string(), "api.example.com:443");
        assert_eq!(t.path, "/health?full=1");
        assert_eq!(t.host_header, "api.example.com");
        assert_eq!(t.tls_name(), "api.example.com");

        let t = parse("http://[::1]:9000");
        assert_eq!(t.endpoint.to_string(), "[::1]:9000");
        assert_eq!(t.host_header, "[::1]:9000");
        assert_eq!(t.tls_name(), "::1");

        let t = parse("unix:/run/app.sock");
        assert_eq!(t.endpoint, Endpoint::Unix("/run/app.sock".into()));
    }

    #[test]
    fn flags_override() {
        let d = RequestDefaults {
            path: Some("/ping".into()),
            host: Some("app.internal".into()),
            method: Some("HEAD".into()),
        };
        let t = Target::parse("http://10.0.0.1:81/other", &d).unwrap();
        assert_eq!(t.path, "/ping");
        assert_eq!(t.host_header, "app.internal");
        assert_eq!(t.method, "HEAD");
    }

    #[test]
    fn bad_targets_are_explained() {
        let d = RequestDefaults::default();
        for (spec, why) in [
            ("", "empty"),
            ("ftp://x", "unsupported scheme"),
            ("host:0", "invalid port"),
            ("host:99999", "invalid port"),
            ("::1:80", "brackets"),
            ("[::1", "unclosed"),
            ("http://:80", "missing host"),
        ] {
            let err = Target::parse(spec, &d).unwrap_err();
            assert!(err.contains(why), "{spec}: {err}");
        }
        let bad_path = RequestDefaults {
            path: Some("no-slash".into()),
            ..Default::default()
        };
        assert!(Target::parse("h:1", &bad_path).is_err());
        let bad_method = RequestDefaults {
            method: Some("GE T".into()),
            ..Default::default()
        };
        assert!(Target::parse("h:1", &bad_method).is_err());
    }
}
