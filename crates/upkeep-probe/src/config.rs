//! Targets from an nginx configuration: every `server` of every `upstream`
//! block, probed the way nginx talks to it, and the upstream's effective
//! keep-alive settings to judge the measurements against.
//!
//! * Each address a server name resolves to is its own target, because nginx
//!   makes one peer of each address.
//! * The scheme is `https` when a `proxy_pass https://NAME` route uses the
//!   upstream. Upstreams reached only by `fastcgi_pass`, `uwsgi_pass`,
//!   `scgi_pass` or `grpc_pass` are not probed: the probe speaks HTTP/1.x.
//! * The `Host` header is the upstream name (what nginx sends by default,
//!   `$proxy_host`) unless `--host` says otherwise.
//! * `down` servers are skipped; a server without a port is on port 80, as
//!   in nginx.

use crate::report::TargetReport;
use crate::target::{Endpoint, RequestDefaults, Scheme, Target};
use crate::verdict::{judge, UpstreamConfig, UpstreamVerdict};
use std::net::{SocketAddr, ToSocketAddrs};
use upkeep_config::{ConfigSet, FsLoader, LoadOptions};
use upkeep_model::{Model, NginxVersion, Pool, Protocol};

/// What to probe for a configuration, and what to judge afterwards.
#[derive(Clone, Debug)]
pub struct Plan {
    pub targets: Vec<Target>,
    pub upstreams: Vec<PlannedUpstream>,
}

#[derive(Clone, Debug)]
pub struct PlannedUpstream {
    pub config: UpstreamConfig,
    /// Indices into [`Plan::targets`].
    pub targets: Vec<usize>,
    /// Why the upstream is not probed, if it is not.
    pub not_probed: Option<String>,
    /// Servers left out (`down`), as notes.
    pub notes: Vec<String>,
}

impl Plan {
    /// Loads `path` (includes followed) and plans the probe for nginx
    /// `version`. `only` limits the upstreams by name. Errors carry the place
    /// (`file:line:col`).
    pub fn load(
        path: &str,
        version: NginxVersion,
        only: &[String],
        defaults: &RequestDefaults,
    ) -> Result<Plan, String> {
        let set = ConfigSet::load(path, &FsLoader, &LoadOptions::default())
            .and_then(|set| upkeep_model::check_values(&set).map(|()| set))
            .map_err(|e| e.render().trim_end().to_string())?;
        let model = Model::build(&set, version);
        let main_dir = path.rfind('/').map(|i| &path[..i]);
        Plan::from_model(&model, main_dir, only, defaults)
    }

    /// Plans from an already built model. `main_dir` makes the file names in
    /// messages relative to the main config's directory.
    pub fn from_model(
        model: &Model<'_>,
        main_dir: Option<&str>,
        only: &[String],
        defaults: &RequestDefaults,
    ) -> Result<Plan, String> {
        let version = model.version;
        for name in only {
            if model.upstream_named(name).is_none() {
                let known: Vec<&str> = model.upstreams.iter().map(|u| u.name.as_str()).collect();
                return Err(if known.is_empty() {
                    format!("--only {name}: the configuration has no upstream blocks")
                } else {
                    format!(
                        "--only {name}: no such upstream (the configuration has: {})",
                        known.join(", ")
                    )
                });
            }
        }
        let mut plan = Plan {
            targets: Vec::new(),
            upstreams: Vec::new(),
        };
        for (id, up) in model.upstreams.iter().enumerate() {
            if !only.is_empty() && !only.iter().any(|n| n.eq_ignore_ascii_case(&up.name)) {
                continue;
            }
            let file = model.source.source_file(up.directive.span().file);
            let line = file.line_col(up.directive.span().start).line;
            let shown_path = if up.directive.span().file.0 == 0 {
                file.path.clone()
            } else {
                upkeep_diag::display_path(&file.path, main_dir)
            };
            let pool = up.pool_works(version);
            let no_pool_reason = match up.pool(version) {
                Pool::Disabled { .. } => "`keepalive 0` disables the pool".to_string(),
                Pool::None => format!(
                    "no `keepalive`: nginx {version} has no pool without it (one is the default since 1.29.7)"
                ),
                _ => match up.balancer_after_keepalive(version) {
                    Some(b) => format!(
                        "`{}` after `keepalive` replaces the pool on nginx before 1.29.7 (U006)",
                        b.name().text()
                    ),
                    None => String::new(),
                },
            };
            let config = UpstreamConfig {
                name: up.name.clone(),
                file: shown_path,
                line,
                span: Some(up.directive.span()),
                pool,
                no_pool_reason,
                keepalive_timeout_ms: up.keepalive_timeout_ms(version),
                keepalive_requests: up.keepalive_requests(version),
            };

            // How nginx talks to it.
            let routes: Vec<_> = model.routes_to(id).map(|r| model.route(r)).collect();
            let http_routes: Vec<_> = routes
                .iter()
                .filter(|r| r.protocol == Protocol::Http)
                .collect();
            let mut planned = PlannedUpstream {
                config,
                targets: Vec::new(),
                not_probed: None,
                notes: Vec::new(),
            };
            if !routes.is_empty() && http_routes.is_empty() {
                let via = routes[0].pass.name().text().into_owned();
                planned.not_probed = Some(format!(
                    "reached only through `{via}`: the probe speaks HTTP/1.x"
                ));
                plan.upstreams.push(planned);
                continue;
            }
            if routes.is_empty() {
                planned
                    .notes
                    .push("no proxy_pass uses this upstream; probed over plain HTTP".into());
            }
            let scheme = if http_routes
                .iter()
                .any(|r| r.scheme.as_deref() == Some("https"))
            {
                Scheme::Https
            } else {
                Scheme::Http
            };

            for server in &up.servers {
                if server.param("down").is_some() {
                    planned.notes.push(format!(
                        "server {} is marked `down`: not probed",
                        server.address
                    ));
                    continue;
                }
                if server.param("service").is_some() {
                    planned.notes.push(format!(
                        "server {} uses `service=` (DNS SRV): not probed",
                        server.address
                    ));
                    continue;
                }
                for target in server_targets(&server.address, scheme, &up.name, defaults) {
                    match target {
                        Ok(t) => {
                            planned.targets.push(plan.targets.len());
                            plan.targets.push(t);
                        }
                        Err(e) => planned
                            .notes
                            .push(format!("server {}: {e}", server.address)),
                    }
                }
            }
            if planned.targets.is_empty() && planned.not_probed.is_none() {
                planned.not_probed = Some("no server to probe".into());
            }
            plan.upstreams.push(planned);
        }
        Ok(plan)
    }

    /// One verdict per planned upstream, from the reports of its targets
    /// (`reports` in the order of [`Plan::targets`]).
    pub fn judge(&self, version: NginxVersion, reports: &[TargetReport]) -> Vec<UpstreamVerdict> {
        self.upstreams
            .iter()
            .map(|u| {
                let mine: Vec<&TargetReport> =
                    u.targets.iter().filter_map(|&i| reports.get(i)).collect();
                let mut v = match &u.not_probed {
                    Some(why) => {
                        let mut v = judge(&u.config, version, &[]);
                        v.summary = format!("not probed: {why}");
                        v
                    }
                    None => judge(&u.config, version, &mine),
                };
                if !u.notes.is_empty() {
                    v.summary = format!("{} ({})", v.summary, u.notes.join("; "));
                }
                v
            })
            .collect()
    }
}

/// The targets for one `server` line: one per resolved address.
fn server_targets(
    address: &str,
    scheme: Scheme,
    upstream: &str,
    defaults: &RequestDefaults,
) -> Vec<Result<Target, String>> {
    let defaults = RequestDefaults {
        host: Some(
            defaults
                .host
                .clone()
                .unwrap_or_else(|| upstream.to_string()),
        ),
        ..defaults.clone()
    };
    let spec = match (scheme, address.starts_with("unix:")) {
        (_, true) => address.to_string(),
        // nginx: "If a port is not specified, the port 80 is used", for
        // https:// too.
        (Scheme::Http, false) => with_port_80(address),
        (Scheme::Https, false) => format!("https://{}", with_port_80(address)),
    };
    let mut target = match Target::parse(&spec, &defaults) {
        Ok(t) => t,
        Err(e) => return vec![Err(e)],
    };
    target.spec = address.to_string();
    target.upstream = Some(upstream.to_string());
    let Endpoint::Host { host, port } = &target.endpoint else {
        return vec![Ok(target)];
    };
    let addrs: Vec<SocketAddr> = match (host.as_str(), *port).to_socket_addrs() {
        Ok(a) => dedup(a.collect()),
        // Left to the probe, which reports the resolver's error.
        Err(_) => return vec![Ok(target)],
    };
    // `target` stays the address as written; reports tell the peers apart
    // by `address`.
    addrs
        .into_iter()
        .map(|addr| {
            let mut t = target.clone();
            t.address = Some(addr);
            Ok(t)
        })
        .collect()
}

fn with_port_80(address: &str) -> String {
    if has_port(address) {
        address.to_string()
    } else {
        format!("{address}:80")
    }
}

/// Whether `host[:port]` / `[v6][:port]` carries a port.
fn has_port(address: &str) -> bool {
    if let Some(rest) = address.strip_prefix('[') {
        return rest.contains("]:");
    }
    matches!(address.rsplit_once(':'), Some((h, p)) if !h.contains(':') && !p.is_empty())
}

fn dedup(mut addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let mut seen = std::collections::HashSet::new();
    addrs.retain(|a| seen.insert(*a));
    addrs
}

#[cfg(test)]
mod tests {
    use super::*;
    use upkeep_model::SingleFile;

    fn plan(conf: &str, version: NginxVersion, only: &[&str]) -> Result<Plan, String> {
        let file = SingleFile::parse("nginx.conf", conf).unwrap();
        let model = Model::build(&file, version);
        let only: Vec<String> = only.iter().map(|s| s.to_string()).collect();
        Plan::from_model(&model, None, &only, &RequestDefaults::default())
    }

    const CONF: &str = "events {}\nhttp {\n  upstream app {\n    server 127.0.0.1:8080;\n    server 127.0.0.2 max_fails=3;\n    server 127.0.0.3:81 down;\n    keepalive 16;\n    keepalive_timeout 30s;\n  }\n  upstream secure { server localhost:8443; }\n  upstream php { server unix:/run/php.sock; }\n  server {\n    location / { proxy_pass http://app; }\n    location /s { proxy_pass https://secure/x; }\n    location ~ \\.php$ { fastcgi_pass php; }\n  }\n}\n";

    #[test]
    fn every_server_of_every_upstream() {
        let p = plan(CONF, NginxVersion::new(1, 22, 1), &[]).unwrap();
        let app = &p.upstreams[0];
        assert_eq!(app.config.name, "app");
        assert_eq!(app.config.line, 3);
        assert!(app.config.pool);
        assert_eq!(app.config.keepalive_timeout_ms, Some(30_000));
        assert_eq!(app.config.keepalive_requests, Some(1000));
        let specs: Vec<_> = app
            .targets
            .iter()
            .map(|&i| p.targets[i].spec.as_str())
            .collect();
        assert_eq!(specs, ["127.0.0.1:8080", "127.0.0.2"]);
        let second = &p.targets[app.targets[1]];
        assert_eq!(second.address, Some("127.0.0.2:80".parse().unwrap()));
        assert_eq!(second.host_header, "app");
        assert!(app.notes[0].contains("127.0.0.3:81 is marked `down`"));

        let secure = &p.upstreams[1];
        assert!(!secure.config.pool, "no keepalive before 1.29.7");
        assert!(secure.config.no_pool_reason.contains("no `keepalive`"));
        let t = &p.targets[secure.targets[0]];
        assert_eq!(t.scheme, Scheme::Https);
        assert_eq!(t.tls_name(), "secure");

        let php = &p.upstreams[2];
        assert!(php.targets.is_empty());
        assert!(php.not_probed.as_deref().unwrap().contains("fastcgi_pass"));
    }

    #[test]
    fn version_decides_the_pool() {
        let p = plan(CONF, NginxVersion::new(1, 29, 7), &["secure"]).unwrap();
        assert_eq!(p.upstreams.len(), 1);
        assert!(p.upstreams[0].config.pool, "implicit pool since 1.29.7");
        let misordered = "http { upstream a { keepalive 8; least_conn; server 127.0.0.1:1; } }";
        let p = plan(misordered, NginxVersion::new(1, 28, 0), &[]).unwrap();
        assert!(!p.upstreams[0].config.pool);
        assert!(p.upstreams[0].config.no_pool_reason.contains("least_conn"));
    }

    #[test]
    fn unknown_only_names_the_upstreams() {
        let err = plan(CONF, NginxVersion::new(1, 22, 1), &["nope"]).unwrap_err();
        assert!(err.contains("app, secure, php"), "{err}");
    }
}
