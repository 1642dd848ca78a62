//! Knowing the backend without being told: for each upstream server
//! address, the process listening on it ([`listeners`]), what server it is
//! and what it does with idle and reused connections ([`kinds`]), followed
//! through Docker's port proxy ([`docker`]); remote addresses can be
//! measured with upkeep-probe ([`probe`]). The result feeds the rules as
//! backend facts keyed by server address, exactly like `--backend`, with
//! each number saying where it came from.

pub mod docker;
pub mod kinds;
pub mod listeners;
pub mod probe;
pub mod proc_info;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use upkeep_facts::BackendFacts;
use upkeep_model::{Model, Protocol};

pub use kinds::{Recognition, Sourced};
pub use proc_info::ProcessInfo;

/// Where an upstream server accepts connections.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Endpoint {
    Tcp(SocketAddr),
    Unix(String),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp(a) => write!(f, "{a}"),
            Endpoint::Unix(p) => write!(f, "unix:{p}"),
        }
    }
}

/// One upstream server address to look behind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// As written in the `server` line: the key of its facts.
    pub written: String,
    pub endpoint: Endpoint,
    pub upstreams: Vec<String>,
    /// Whether nginx speaks plain HTTP to it (`proxy_pass http://`), so
    /// that upkeep-probe can measure it.
    pub http: bool,
}

/// What listens behind one address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listener {
    /// A process on this host (or in a container whose processes this
    /// host's /proc shows).
    Process(Box<Found>),
    /// A port published by Docker's userland proxy: the container's
    /// address, and its process when visible.
    Docker {
        proxy_pid: i32,
        container: SocketAddr,
        process: Option<Box<Found>>,
    },
    /// A local address on which nothing listens (or whose listener
    /// belongs to no process this user can see).
    NotFound(String),
    /// Not an address of this host: measure it with `doctor --probe`.
    Remote,
}

/// A listening process and what it was recognized as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    pub process: ProcessInfo,
    /// `None`: a server upkeep does not know.
    pub recognition: Option<Recognition>,
}

/// What `upkeep probe` measured on a remote backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probed {
    pub idle_timeout_ms: Option<u64>,
    pub max_requests: Option<u64>,
    pub announces_close: Option<bool>,
    pub error: Option<String>,
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoveredBackend {
    pub target: Target,
    pub listener: Listener,
    pub probed: Option<Probed>,
}

impl DiscoveredBackend {
    /// The recognized listening process, directly or behind Docker.
    pub fn found(&self) -> Option<&Found> {
        match &self.listener {
            Listener::Process(f) => Some(f),
            Listener::Docker { process, .. } => process.as_deref(),
            _ => None,
        }
    }

    /// The facts the rules get for this address, if anything is known.
    pub fn facts(&self) -> Option<BackendFacts> {
        if let Some(p) = &self.probed {
            if p.error.is_none() {
                return Some(BackendFacts {
                    idle_timeout_ms: p.idle_timeout_ms,
                    max_requests: p.max_requests,
                    announces_close: p.announces_close,
                    max_connections: None,
                    source: format!("probed at {} by doctor --probe", self.target.endpoint),
                });
            }
        }
        let found = self.found()?;
        let r = found.recognition.as_ref()?;
        if !r.feeds_rules {
            return None;
        }
        let idle = r.idle_timeout_ms.as_ref()?;
        let mut parts = vec![idle.source.clone()];
        if let Some(m) = r.max_requests.as_ref().filter(|m| m.value.is_some()) {
            if m.source != idle.source {
                parts.push(m.source.clone());
            }
        }
        if let Some(c) = &r.max_connections {
            parts.push(c.source.clone());
        }
        Some(BackendFacts {
            idle_timeout_ms: idle.value,
            max_requests: r.max_requests.as_ref().and_then(|m| m.value),
            announces_close: r.announces_close,
            max_connections: r.max_connections.as_ref().map(|c| c.value),
            source: format!("{} pid {}: {}", r.kind, found.process.pid, parts.join("; ")),
        })
    }

    /// One line for people: what listens and what it does.
    pub fn describe(&self) -> String {
        let found_text = |f: &Found| match &f.recognition {
            Some(r) => {
                let mut s = format!(
                    "{}{} pid {}",
                    r.kind,
                    r.version
                        .as_deref()
                        .map(|v| format!(" {v}"))
                        .unwrap_or_default(),
                    f.process.pid
                );
                if let Some(i) = &r.idle_timeout_ms {
                    let v = i
                        .value
                        .map(upkeep_facts::describe_duration)
                        .unwrap_or_else(|| "none".into());
                    s += &format!(", idle timeout {v} ({})", i.source);
                }
                if let Some(m) = r.max_requests.as_ref().filter(|m| m.value.is_some()) {
                    s += &format!(
                        ", {} requests per connection ({})",
                        m.value.unwrap(),
                        m.source
                    );
                }
                if let Some(c) = &r.max_connections {
                    s += &format!(", at most {} at once ({})", c.value, c.source);
                }
                if !r.feeds_rules {
                    s += "; not used by the rules";
                }
                s
            }
            None => format!(
                "unknown server pid {} ({}): declare it or probe it",
                f.process.pid,
                shorten(&f.process.command())
            ),
        };
        let mut text = match &self.listener {
            Listener::Process(f) => found_text(f),
            Listener::Docker {
                proxy_pid,
                container,
                process,
            } => match process {
                Some(f) => format!(
                    "Docker container {container} (docker-proxy pid {proxy_pid}): {}",
                    found_text(f)
                ),
                None => format!(
                    "unknown (Docker container {container}, docker-proxy pid {proxy_pid}; its processes are not visible here)"
                ),
            },
            Listener::NotFound(why) => why.clone(),
            Listener::Remote => "remote: not on this host".to_string(),
        };
        if let Some(p) = &self.probed {
            text += &match &p.error {
                Some(e) => format!("; probe failed: {e}"),
                None => format!(
                    "; probed: idle timeout {}, {}",
                    p.idle_timeout_ms
                        .map(upkeep_facts::describe_duration)
                        .unwrap_or_else(|| "not reached".into()),
                    p.max_requests
                        .map(|n| format!("{n} requests per connection"))
                        .unwrap_or_else(|| "no request cap reached".into())
                ),
            };
        }
        text
    }
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(79).collect::<String>())
    } else {
        s.to_string()
    }
}

/// Everything discovered, and what could not be looked at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Discovery {
    pub backends: Vec<DiscoveredBackend>,
    pub problems: Vec<String>,
}

impl Discovery {
    /// Facts per server address as written, for `CheckOptions::backends`.
    pub fn facts(&self) -> BTreeMap<String, BackendFacts> {
        let mut out: BTreeMap<String, BackendFacts> = BTreeMap::new();
        for b in &self.backends {
            let Some(f) = b.facts() else { continue };
            // A name resolving to several addresses: the worst one stands.
            out.entry(b.target.written.clone())
                .and_modify(|old| {
                    if f.idle_timeout_ms.unwrap_or(u64::MAX)
                        < old.idle_timeout_ms.unwrap_or(u64::MAX)
                    {
                        *old = f.clone();
                    }
                })
                .or_insert(f);
        }
        out
    }

    /// Adds the discovered facts to `opts` where the user gave none for
    /// that address (a `--backend-facts` probe result wins).
    pub fn feed(&self, opts: &mut upkeep_rules::CheckOptions) {
        for (k, f) in self.facts() {
            opts.backends.entry(k).or_insert(f);
        }
    }
}

/// The upstream server addresses of the configuration, names resolved
/// the way nginx resolves them when it reads it.
pub fn targets(model: &Model<'_>) -> (Vec<Target>, Vec<String>) {
    let mut problems = Vec::new();
    let mut out: Vec<Target> = Vec::new();
    for (uid, up) in model.upstreams.iter().enumerate() {
        let http = model.routes_to(uid).any(|r| {
            let route = model.route(r);
            route.protocol == Protocol::Http && route.scheme.as_deref() != Some("https")
        });
        for server in &up.servers {
            let endpoints: Vec<Endpoint> = if let Some(path) = server.address.strip_prefix("unix:")
            {
                vec![Endpoint::Unix(path.to_string())]
            } else {
                let host = server.host.trim_start_matches('[').trim_end_matches(']');
                let port = server.port.unwrap_or(80);
                match host.parse::<IpAddr>() {
                    Ok(ip) => vec![Endpoint::Tcp(SocketAddr::new(ip, port))],
                    Err(_) => match (host, port).to_socket_addrs() {
                        Ok(addrs) => {
                            let set: BTreeSet<SocketAddr> = addrs.collect();
                            set.into_iter().map(Endpoint::Tcp).collect()
                        }
                        Err(e) => {
                            problems.push(format!(
                                "{} (upstream {}): cannot resolve {host}: {e}",
                                server.address, up.name
                            ));
                            Vec::new()
                        }
                    },
                }
            };
            for endpoint in endpoints {
                match out
                    .iter_mut()
                    .find(|t| t.written == server.address && t.endpoint == endpoint)
                {
                    Some(t) => {
                        if !t.upstreams.contains(&up.name) {
                            t.upstreams.push(up.name.clone());
                        }
                        t.http |= http;
                    }
                    None => out.push(Target {
                        written: server.address.to_string(),
                        endpoint,
                        upstreams: vec![up.name.clone()],
                        http,
                    }),
                }
            }
        }
    }
    (out, problems)
}

/// Looks behind every target. `nginx_pid` names the network namespace the
/// addresses are nginx's view of (`None`: ours).
pub fn discover(targets: &[Target], nginx_pid: Option<i32>) -> Discovery {
    let mut problems = Vec::new();
    let ns = nginx_pid.map_or("self".to_string(), |p| p.to_string());
    let tcp = listeners::tcp_listeners(&ns).unwrap_or_else(|e| {
        problems.push(format!("listening TCP sockets not read: {e}"));
        Vec::new()
    });
    let unix = listeners::unix_listeners(&ns).unwrap_or_else(|e| {
        problems.push(format!("listening unix sockets not read: {e}"));
        Vec::new()
    });
    let local_ips = local_addresses(&ns);

    // The listening socket of each target, then one walk over /proc for
    // the holders of them all.
    let inode_of: Vec<Option<u64>> = targets
        .iter()
        .map(|t| match &t.endpoint {
            Endpoint::Tcp(a) => listeners::listener_for(&tcp, *a).map(|l| l.inode),
            Endpoint::Unix(p) => unix.iter().find(|(path, _)| path == p).map(|(_, i)| *i),
        })
        .collect();
    let wanted: BTreeSet<u64> = inode_of.iter().flatten().copied().collect();
    let (holders, unreadable) = listeners::holders(&wanted);

    let mut backends = Vec::new();
    for (t, inode) in targets.iter().zip(&inode_of) {
        let listener = match inode {
            None => match &t.endpoint {
                Endpoint::Tcp(a) if !is_local(a.ip(), &local_ips) => Listener::Remote,
                Endpoint::Tcp(a) => Listener::NotFound(format!("nothing listens on {a}")),
                Endpoint::Unix(p) => Listener::NotFound(format!(
                    "no listening unix socket {p} in nginx's network namespace"
                )),
            },
            Some(inode) => match holders.get(inode).and_then(|pids| {
                let senior = listeners::senior(pids)?;
                Some((senior, pids.clone()))
            }) {
                None => Listener::NotFound(format!(
                    "a socket listens on {} but no process holding it is visible{}",
                    t.endpoint,
                    if unreadable > 0 {
                        format!(" ({unreadable} processes' descriptors unreadable: run as root)")
                    } else {
                        String::new()
                    }
                )),
                Some((pid, all)) => match ProcessInfo::read(pid) {
                    None => Listener::NotFound(format!("process {pid} ended while read")),
                    Some(mut info) => {
                        info.sharing = all.into_iter().filter(|&p| p != pid).collect();
                        if docker::is_proxy(&info) {
                            docker::follow(&info)
                        } else {
                            let recognition = kinds::recognize(&info, &t.endpoint);
                            Listener::Process(Box::new(Found {
                                process: info,
                                recognition,
                            }))
                        }
                    }
                },
            },
        };
        backends.push(DiscoveredBackend {
            target: t.clone(),
            listener,
            probed: None,
        });
    }
    Discovery { backends, problems }
}

/// The addresses of the namespace: every IPv4 address from its routing
/// table, and the IPv6 ones from `if_inet6`.
fn local_addresses(ns: &str) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = listeners::local_ipv4(ns)
        .into_iter()
        .map(IpAddr::V4)
        .collect();
    if let Ok(text) = std::fs::read_to_string(format!("/proc/{ns}/net/if_inet6")) {
        for line in text.lines() {
            let Some(hex) = line.split_whitespace().next() else {
                continue;
            };
            if let Ok(v) = u128::from_str_radix(hex, 16) {
                out.push(IpAddr::V6(v.into()));
            }
        }
    }
    out
}

fn is_local(ip: IpAddr, local: &[IpAddr]) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    ip.is_loopback() || ip.is_unspecified() || local.contains(&ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_carry_the_process_and_the_source() {
        let mut r = Recognition::new("gunicorn", Some("gunicorn"));
        r.idle_timeout_ms = Some(Sourced::new(Some(7000), "--keep-alive 7 from argv"));
        let b = DiscoveredBackend {
            target: Target {
                written: "127.0.0.1:8000".into(),
                endpoint: Endpoint::Tcp("127.0.0.1:8000".parse().unwrap()),
                upstreams: vec!["app".into()],
                http: true,
            },
            listener: Listener::Process(Box::new(Found {
                process: ProcessInfo {
                    pid: 1234,
                    ..ProcessInfo::default()
                },
                recognition: Some(r.with_profile_defaults()),
            })),
            probed: None,
        };
        let f = b.facts().unwrap();
        assert_eq!(f.idle_timeout_ms, Some(7000));
        assert_eq!(f.source, "gunicorn pid 1234: --keep-alive 7 from argv");
        let d = Discovery {
            backends: vec![b],
            problems: vec![],
        };
        let mut opts = upkeep_rules::CheckOptions::default();
        d.feed(&mut opts);
        assert_eq!(opts.backends["127.0.0.1:8000"].idle_timeout_ms, Some(7000));
    }

    #[test]
    fn loopback_and_own_addresses_are_local() {
        let own: Vec<IpAddr> = vec!["10.0.0.5".parse().unwrap()];
        assert!(is_local("127.0.0.1".parse().unwrap(), &own));
        assert!(is_local("::ffff:10.0.0.5".parse().unwrap(), &own));
        assert!(!is_local("192.0.2.1".parse().unwrap(), &own));
    }
}
