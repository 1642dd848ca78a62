//! What doctor needs from the running configuration: the backend addresses
//! (which upstream each belongs to and whether it has a working pool), the
//! stub_status location, the log files, and the connection settings.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use crate::stub_status::StatusUrl;
use upkeep_config::ConfigSet;
use upkeep_model::{BlockKind, Model, PassTarget, Pool};
use upkeep_syntax::{Directive, Span};

/// One backend address and where the configuration points at it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    pub addr: SocketAddr,
    /// As written in the config (`127.0.0.1:8080`, `app.internal:80`).
    pub written: String,
    /// The `upstream{}` blocks that list it; empty for a `proxy_pass` to an
    /// address directly (nginx keeps no pool for those).
    pub upstreams: Vec<String>,
    /// Whether each of those upstreams has an idle pool that works on the
    /// target version (asked for, and not lost to a balancer after it).
    pub pooled: bool,
    /// The pool size per worker when pooled.
    pub pool_size: u64,
    /// Where it is written (the `server` line or the `proxy_pass`).
    pub span: Span,
}

/// Settings of the main and events contexts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// Effective `worker_connections` (default 512, facts/directives.tsv).
    pub worker_connections: u64,
    pub worker_connections_span: Option<Span>,
    /// `worker_processes` as written (`auto` or a number).
    pub worker_processes: Option<String>,
    pub worker_rlimit_nofile: Option<u64>,
    pub worker_rlimit_nofile_span: Option<Span>,
    /// The `events` block (where a `worker_rlimit_nofile` line goes before).
    pub events_span: Option<Span>,
    /// The main-context `pid` path as written.
    pub pid: Option<String>,
}

/// `worker_connections` when not set (facts/directives.tsv,
/// `DEFAULT_CONNECTIONS`).
pub const DEFAULT_WORKER_CONNECTIONS: u64 = 512;

/// One `access_log` that writes to a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessLog {
    pub path: String,
    /// The `log_format` name (`combined` when none is given).
    pub format_name: String,
}

/// What doctor reads from the configuration.
#[derive(Clone, Debug, Default)]
pub struct LiveConfig {
    pub backends: Vec<Backend>,
    /// Addresses that could not be resolved or are unix sockets, with why.
    pub skipped: Vec<String>,
    pub settings: ConnectionSettings,
    /// `error_log` files (anywhere: main, http, server, location), with
    /// their level as written; `stderr`, `syslog:` and `memory:` are left
    /// out.
    pub error_logs: Vec<(String, Option<String>)>,
    pub access_logs: Vec<AccessLog>,
    /// `log_format` name → the format text.
    pub log_formats: BTreeMap<String, String>,
    /// stub_status locations reachable on this host.
    pub status_urls: Vec<StatusUrl>,
}

impl LiveConfig {
    /// Reads `config` as nginx `version` runs it.
    pub fn of(config: &ConfigSet, version: upkeep_model::NginxVersion) -> LiveConfig {
        LiveConfig::read(config, &Model::build(config, version))
    }

    pub fn read(config: &ConfigSet, model: &Model<'_>) -> LiveConfig {
        let mut live = LiveConfig {
            settings: connection_settings(model),
            ..LiveConfig::default()
        };
        live.collect_backends(model);
        walk(config, &config.root(), &mut |d, chain| {
            live.visit(config, d, chain)
        });
        live
    }

    fn collect_backends(&mut self, model: &Model<'_>) {
        let version = model.version;
        let mut by_addr: BTreeMap<SocketAddr, Backend> = BTreeMap::new();
        for up in &model.upstreams {
            let pool = up.pool(version);
            let works = up.pool_works(version);
            let size = match pool {
                Pool::Explicit { size, .. } | Pool::Implicit { size } => size,
                _ => 0,
            };
            for server in &up.servers {
                if server.host.starts_with("unix:") {
                    self.skipped.push(format!(
                        "{} (upstream {}): a unix socket has no TCP census",
                        server.address, up.name
                    ));
                    continue;
                }
                let port = server.port.unwrap_or(80);
                for addr in self.resolve(&server.host, port, &server.address) {
                    let b = by_addr.entry(addr).or_insert_with(|| Backend {
                        addr,
                        written: server.address.to_string(),
                        upstreams: Vec::new(),
                        pooled: true,
                        pool_size: 0,
                        span: server.directive.span(),
                    });
                    if !b.upstreams.contains(&up.name) {
                        b.upstreams.push(up.name.clone());
                    }
                    b.pooled &= works;
                    b.pool_size = b.pool_size.max(size);
                }
            }
        }
        for route in &model.routes {
            let PassTarget::Direct { host, port } = &route.target else {
                continue;
            };
            if host.starts_with("unix:") {
                continue;
            }
            let default_port = match route.scheme.as_deref() {
                Some("https") | Some("grpcs") => 443,
                _ => 80,
            };
            let written = route.target_text();
            for addr in self.resolve(host, port.unwrap_or(default_port), &written) {
                by_addr.entry(addr).or_insert_with(|| Backend {
                    addr,
                    written: written.clone(),
                    upstreams: Vec::new(),
                    pooled: false,
                    pool_size: 0,
                    span: route.pass.span(),
                });
            }
        }
        self.backends = by_addr.into_values().collect();
    }

    /// An IP literal as is; a name through the system resolver, as nginx
    /// resolves it when it reads the configuration.
    fn resolve(&mut self, host: &str, port: u16, written: &str) -> Vec<SocketAddr> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return vec![SocketAddr::new(ip, port)];
        }
        match (bare, port).to_socket_addrs() {
            Ok(addrs) => {
                let mut v: Vec<SocketAddr> = addrs.collect();
                v.sort();
                v.dedup();
                v
            }
            Err(e) => {
                self.skipped
                    .push(format!("{written}: cannot resolve {bare}: {e}"));
                Vec::new()
            }
        }
    }

    fn visit(&mut self, config: &ConfigSet, d: &Directive, chain: &[&Directive]) {
        match d.name().text().as_ref() {
            "error_log" => {
                if let Some(path) = d.arg(0).map(|w| w.text().into_owned()) {
                    let special = path == "stderr"
                        || path.starts_with("syslog:")
                        || path.starts_with("memory:");
                    if !special && !self.error_logs.iter().any(|(p, _)| *p == path) {
                        let level = d.arg(1).map(|w| w.text().into_owned());
                        self.error_logs.push((path, level));
                    }
                }
            }
            "access_log" => {
                let Some(path) = d.arg(0).map(|w| w.text().into_owned()) else {
                    return;
                };
                if path == "off" || path.starts_with("syslog:") || path.contains('$') {
                    return;
                }
                let format_name = d
                    .arg(1)
                    .filter(|w| !w.value().contains(&b'='))
                    .map_or("combined".to_string(), |w| w.text().into_owned());
                if !self.access_logs.iter().any(|a| a.path == path) {
                    self.access_logs.push(AccessLog { path, format_name });
                }
            }
            "log_format" if d.args().len() >= 2 => {
                let Some(name) = d.args().first() else {
                    return;
                };
                let text: String = d
                    .args()
                    .after(1)
                    .iter()
                    .filter(|w| !w.value().starts_with(b"escape="))
                    .map(|w| w.text().into_owned())
                    .collect();
                self.log_formats.insert(name.text().into_owned(), text);
            }
            "stub_status" => {
                if let Some(url) = status_url(config, chain) {
                    if !self.status_urls.contains(&url) {
                        self.status_urls.push(url);
                    }
                }
            }
            _ => {}
        }
    }

    /// The backends of the upstream named `name`.
    pub fn backends_of(&self, name: &str) -> Vec<&Backend> {
        self.backends
            .iter()
            .filter(|b| b.upstreams.iter().any(|u| u == name))
            .collect()
    }

    /// The log format text of an access log (`combined` is nginx's own).
    pub fn format_of(&self, log: &AccessLog) -> Option<String> {
        if log.format_name == "combined" {
            return Some("combined".into());
        }
        self.log_formats.get(&log.format_name).cloned()
    }
}

/// Resolves a log path like nginx: absolute as is, relative to the prefix.
pub fn resolve_path(path: &str, prefix: Option<&Path>) -> Option<PathBuf> {
    if path.starts_with('/') {
        return Some(PathBuf::from(path));
    }
    prefix.map(|p| p.join(path))
}

fn connection_settings(model: &Model<'_>) -> ConnectionSettings {
    let m = &model.main;
    let first_number = |d: Option<&Directive>| {
        d.and_then(|d| d.arg(0))
            .and_then(|w| w.text().parse::<u64>().ok())
    };
    ConnectionSettings {
        worker_connections: first_number(m.worker_connections)
            .unwrap_or(DEFAULT_WORKER_CONNECTIONS),
        worker_connections_span: m.worker_connections.map(|d| d.span()),
        worker_processes: m
            .worker_processes
            .and_then(|d| d.arg(0))
            .map(|w| w.text().into_owned()),
        worker_rlimit_nofile: first_number(m.worker_rlimit_nofile),
        worker_rlimit_nofile_span: m.worker_rlimit_nofile.map(|d| d.span()),
        events_span: m
            .events
            .and_then(|e| model.block(e).directive)
            .map(|d| d.span()),
        pid: model
            .block(0)
            .last("pid")
            .filter(|_| model.block(0).kind == BlockKind::Main)
            .and_then(|d| d.arg(0))
            .map(|w| w.text().into_owned()),
    }
}

/// Every directive with the chain of block directives above it.
fn walk<'a>(
    config: &'a ConfigSet,
    dirs: &[&'a Directive],
    f: &mut dyn FnMut(&'a Directive, &[&'a Directive]),
) {
    fn go<'a>(
        config: &'a ConfigSet,
        dirs: &[&'a Directive],
        chain: &mut Vec<&'a Directive>,
        f: &mut dyn FnMut(&'a Directive, &[&'a Directive]),
    ) {
        for d in dirs {
            f(d, chain);
            if let Some(block) = d.block() {
                if block.verbatim().is_some() {
                    continue;
                }
                chain.push(d);
                go(config, &config.expand(&block.nodes), chain, f);
                chain.pop();
            }
        }
    }
    go(config, dirs, &mut Vec::new(), f)
}

/// The URL of a `stub_status` inside `location = /x` or `location /x` of a
/// server whose `listen` this host can reach on loopback: a loopback
/// address, or a wildcard one (which accepts on loopback too).
/// The `Host` header is the server's first plain `server_name`, so the
/// request reaches that server even when it is not the default one.
fn status_url(config: &ConfigSet, chain: &[&Directive]) -> Option<StatusUrl> {
    let location = chain.iter().rev().find(|d| d.name_is("location"))?;
    let args = location.args();
    let path = match (args.get(0), args.get(1), args.len()) {
        (Some(path), None, 1) => path.text().into_owned(),
        (Some(modifier), Some(path), 2) if modifier.is("=") || modifier.is("^~") => {
            path.text().into_owned()
        }
        _ => return None, // a regex location has no single URL
    };
    if !path.starts_with('/') {
        return None; // a named location
    }
    let server = chain.iter().rev().find(|d| d.name_is("server"))?;
    let body = config.expand(&server.block()?.nodes);
    let listens: Vec<&Directive> = body
        .iter()
        .copied()
        .filter(|d| d.name_is("listen"))
        .collect();
    let host_header = body
        .iter()
        .find(|d| d.name_is("server_name"))
        .and_then(|d| d.arg(0))
        .map(|w| w.text().into_owned())
        .filter(|n| !n.is_empty() && !n.contains('*') && !n.starts_with('~') && n != "_");
    // No `listen`: nginx listens on *:80 (or *:8000 when not root).
    let addresses: Vec<String> = if listens.is_empty() {
        vec!["80".into()]
    } else {
        listens
            .iter()
            .filter(|l| {
                !l.args()
                    .iter()
                    .any(|a| a.text() == "ssl" || a.text() == "quic")
            })
            .filter_map(|l| l.arg(0).map(|w| w.text().into_owned()))
            .collect()
    };
    let connect = addresses.iter().find_map(|a| loopback_for(a))?;
    Some(StatusUrl {
        host: connect.0,
        port: connect.1,
        path,
        host_header,
    })
}

/// How to reach a `listen` address from this host: `127.0.0.1:81`,
/// `localhost:81`, `81`, `*:81`, `0.0.0.0:81`, `[::]:81`, `[::1]:81`.
fn loopback_for(listen: &str) -> Option<(String, u16)> {
    if listen.starts_with("unix:") {
        return None;
    }
    if let Ok(port) = listen.parse::<u16>() {
        return Some(("127.0.0.1".into(), port));
    }
    if let Some(rest) = listen.strip_prefix('[') {
        let (host, port) = rest.split_once("]:")?;
        let port = port.parse().ok()?;
        return match host {
            "::" | "::1" => Some(("[::1]".into(), port)),
            _ => None,
        };
    }
    let (host, port) = listen.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    match host {
        "*" | "0.0.0.0" | "localhost" => Some(("127.0.0.1".into(), port)),
        h if h
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback()) =>
        {
            Some((h.to_string(), port))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use upkeep_config::{LoadOptions, MemoryLoader};
    use upkeep_model::NginxVersion;

    fn live(text: &str) -> LiveConfig {
        let mut loader = MemoryLoader::new();
        loader.insert("/etc/nginx/nginx.conf", text.as_bytes().to_vec());
        let set =
            ConfigSet::load("/etc/nginx/nginx.conf", &loader, &LoadOptions::default()).unwrap();
        let model = Model::build(&set, NginxVersion::new(1, 22, 1));
        LiveConfig::read(&set, &model)
    }

    const CONF: &str = r#"
worker_processes 2;
pid /run/x.pid;
error_log /var/log/nginx/error.log warn;
events { worker_connections 2048; }
http {
    log_format ka '$remote_addr "$request" $status c=$connection us="$upstream_status"';
    access_log /var/log/nginx/access.log ka;
    upstream app { server 10.0.0.1:8080; server 10.0.0.2:8080; keepalive 16; }
    upstream old { keepalive 8; least_conn; server 10.0.0.3; }
    upstream sock { server unix:/run/app.sock; }
    server {
        listen 127.0.0.1:8081;
        location = /nginx_status { stub_status; }
    }
    server {
        listen 80;
        location / { proxy_pass http://app; }
        location /o/ { proxy_pass http://old; }
        location /d/ { proxy_pass http://10.0.0.9:9000/; }
        location /s { stub_status; }
    }
    server {
        listen 203.0.113.5:80;
        location /s2 { stub_status; }
    }
}
"#;

    #[test]
    fn reads_backends_with_their_pools() {
        let l = live(CONF);
        let addrs: Vec<String> = l.backends.iter().map(|b| b.addr.to_string()).collect();
        assert_eq!(
            addrs,
            [
                "10.0.0.1:8080",
                "10.0.0.2:8080",
                "10.0.0.3:80",
                "10.0.0.9:9000"
            ]
        );
        assert!(l.backends[0].pooled && l.backends[0].pool_size == 16);
        assert_eq!(l.backends[0].upstreams, ["app"]);
        assert!(!l.backends[2].pooled, "least_conn after keepalive on 1.22");
        assert!(!l.backends[3].pooled && l.backends[3].upstreams.is_empty());
        assert!(l.skipped[0].contains("unix:/run/app.sock"));
    }

    #[test]
    fn reads_settings_logs_and_status_urls() {
        let l = live(CONF);
        assert_eq!(l.settings.worker_connections, 2048);
        assert_eq!(l.settings.worker_processes.as_deref(), Some("2"));
        assert_eq!(l.settings.pid.as_deref(), Some("/run/x.pid"));
        assert_eq!(l.settings.worker_rlimit_nofile, None);
        assert_eq!(
            l.error_logs,
            [(
                "/var/log/nginx/error.log".to_string(),
                Some("warn".to_string())
            )]
        );
        assert_eq!(l.access_logs[0].format_name, "ka");
        assert!(l
            .format_of(&l.access_logs[0])
            .unwrap()
            .contains("c=$connection"));
        let urls: Vec<String> = l.status_urls.iter().map(|u| u.to_string()).collect();
        assert_eq!(
            urls,
            [
                "http://127.0.0.1:8081/nginx_status",
                "http://127.0.0.1:80/s"
            ]
        );
    }

    #[test]
    fn finds_the_listen_of_a_status_server_through_includes() {
        let mut loader = MemoryLoader::new();
        loader.insert(
            "/etc/nginx/nginx.conf",
            b"events {}\nhttp { server { include /etc/nginx/status-listen.conf; server_name status.local; location /basic_status { stub_status; } } }\n".to_vec(),
        );
        loader.insert(
            "/etc/nginx/status-listen.conf",
            b"listen [::1]:8090;\n".to_vec(),
        );
        let set =
            ConfigSet::load("/etc/nginx/nginx.conf", &loader, &LoadOptions::default()).unwrap();
        let l = LiveConfig::of(&set, NginxVersion::new(1, 22, 1));
        assert_eq!(l.status_urls.len(), 1);
        assert_eq!(
            l.status_urls[0].to_string(),
            "http://[::1]:8090/basic_status (Host: status.local)"
        );
    }

    #[test]
    fn default_worker_connections() {
        let l = live("events {}\nhttp {}\n");
        assert_eq!(l.settings.worker_connections, 512);
        assert!(l.status_urls.is_empty());
    }
}
