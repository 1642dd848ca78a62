//! What the servers on either side of nginx do with idle connections.
//!
//! Backend profiles (nginx -> backend) and front profiles (load balancer ->
//! nginx), transcribed from `facts/backends.tsv`. Each entry names its row.

/// What upkeep knows about one backend (an upstream's servers): from an inline
/// `# upkeep: backend …` comment, upkeep.toml, `--backend`, a profile, or a
/// probe.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackendFacts {
    /// How long the backend keeps an idle keep-alive connection open.
    pub idle_timeout_ms: Option<u64>,
    /// Requests the backend serves on one connection before closing it.
    pub max_requests: Option<u64>,
    /// Whether the backend says `Connection: close` on the response after
    /// which it closes (no race) — `None` when unknown.
    pub announces_close: Option<bool>,
    /// How many connections the backend accepts at once.
    pub max_connections: Option<u64>,
    /// Where these facts come from, for messages: "declared inline at
    /// app.conf:3", "profile gunicorn", "probed".
    pub source: String,
}

/// A known backend server's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackendProfile {
    /// The name used on the command line and in upkeep.toml (`gunicorn`).
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    /// The row name in backends.tsv (`Gunicorn`).
    pub display: &'static str,
    /// Default idle keep-alive timeout, `None` when the server has none (keeps
    /// idle connections forever) or does not keep connections alive.
    pub idle_timeout_ms: Option<u64>,
    /// Default requests per connection before the server closes it.
    pub max_requests: Option<u64>,
    /// Whether the last response before such a close carries `Connection: close`.
    pub announces_close: Option<bool>,
    /// One line of context shown with findings that rely on the profile.
    pub note: &'static str,
}

impl BackendProfile {
    pub fn facts(&self) -> BackendFacts {
        BackendFacts {
            idle_timeout_ms: self.idle_timeout_ms,
            max_requests: self.max_requests,
            announces_close: self.announces_close,
            max_connections: None,
            source: format!(
                "profile {} ({} defaults, facts/backends.tsv)",
                self.name, self.display
            ),
        }
    }
}

/// A load balancer or proxy in front of nginx.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrontProfile {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub display: &'static str,
    /// How long it keeps an idle connection to nginx before reusing or closing it.
    pub idle_timeout_ms: u64,
    pub note: &'static str,
}

const S: u64 = 1000;

static BACKENDS: &[BackendProfile] = &[
    // backends.tsv row "Node.js http.Server": 5s (v8.0-v26.x), maxRequestsPerSocket 0.
    BackendProfile {
        name: "node",
        aliases: &["nodejs", "node.js"],
        display: "Node.js http.Server",
        idle_timeout_ms: Some(5 * S),
        max_requests: None,
        announces_close: None,
        note: "server.keepAliveTimeout 5000 ms in Node.js 8 to 26",
    },
    // backends.tsv row "Express": inherits Node.js.
    BackendProfile {
        name: "express",
        aliases: &[],
        display: "Express",
        idle_timeout_ms: Some(5 * S),
        max_requests: None,
        announces_close: None,
        note: "Express inherits Node.js server.keepAliveTimeout (5000 ms)",
    },
    // backends.tsv row "Fastify": 72s since v4.0.0.
    BackendProfile {
        name: "fastify",
        aliases: &[],
        display: "Fastify",
        idle_timeout_ms: Some(72 * S),
        max_requests: None,
        announces_close: None,
        note: "keepAliveTimeout 72000 ms since Fastify 4 (5000 ms in 3.x)",
    },
    // backends.tsv row "Gunicorn": --keep-alive 2 (non-sync workers; the sync
    // worker closes after every response).
    BackendProfile {
        name: "gunicorn",
        aliases: &[],
        display: "Gunicorn",
        idle_timeout_ms: Some(2 * S),
        max_requests: None,
        announces_close: None,
        note: "--keep-alive 2 (gthread/eventlet/gevent/asgi workers; the default sync worker sends Connection: close after every response)",
    },
    // backends.tsv row "Uvicorn": --timeout-keep-alive 5.
    BackendProfile {
        name: "uvicorn",
        aliases: &[],
        display: "Uvicorn",
        idle_timeout_ms: Some(5 * S),
        max_requests: None,
        announces_close: None,
        note: "--timeout-keep-alive 5 (2 s when run as a Gunicorn worker)",
    },
    // backends.tsv row "Hypercorn": keep_alive_timeout 5s, keep_alive_max_requests 1000;
    // RULES.md U008: Hypercorn announces the close.
    BackendProfile {
        name: "hypercorn",
        aliases: &[],
        display: "Hypercorn",
        idle_timeout_ms: Some(5 * S),
        max_requests: Some(1000),
        announces_close: Some(true),
        note: "keep_alive_timeout 5 s, keep_alive_max_requests 1000 (since 0.16.0)",
    },
    // backends.tsv row "Daphne (Django Channels)": Twisted default 60s.
    BackendProfile {
        name: "daphne",
        aliases: &[],
        display: "Daphne (Django Channels)",
        idle_timeout_ms: Some(60 * S),
        max_requests: None,
        announces_close: None,
        note: "Twisted HTTPFactory timeout 60 s (equal to nginx's upstream keepalive_timeout default)",
    },
    // backends.tsv row "Waitress": channel_timeout 120s.
    BackendProfile {
        name: "waitress",
        aliases: &[],
        display: "Waitress",
        idle_timeout_ms: Some(120 * S),
        max_requests: None,
        announces_close: None,
        note: "channel_timeout 120 s (checked every 30 s)",
    },
    // backends.tsv row "uWSGI --http-socket / --http11-socket": socket-timeout 4.
    BackendProfile {
        name: "uwsgi-http11",
        aliases: &["uwsgi"],
        display: "uWSGI --http11-socket",
        idle_timeout_ms: Some(4 * S),
        max_requests: None,
        announces_close: None,
        note: "--http11-socket waits --socket-timeout (4 s) for the next request",
    },
    // backends.tsv row "Puma": >= 7.0: persistent_timeout 65s, max_keep_alive 999;
    // RULES.md U008: Puma announces the close.
    BackendProfile {
        name: "puma",
        aliases: &[],
        display: "Puma",
        idle_timeout_ms: Some(65 * S),
        max_requests: Some(999),
        announces_close: Some(true),
        note: "Puma 7: persistent_timeout 65 s, max_keep_alive 999",
    },
    // backends.tsv row "Puma": <= 6.x persistent_timeout 20s, no hard cap.
    BackendProfile {
        name: "puma6",
        aliases: &[],
        display: "Puma 6",
        idle_timeout_ms: Some(20 * S),
        max_requests: None,
        announces_close: None,
        note: "Puma <= 6: persistent_timeout 20 s",
    },
    // backends.tsv row "Unicorn": every response 'Connection: close'.
    BackendProfile {
        name: "unicorn",
        aliases: &[],
        display: "Unicorn",
        idle_timeout_ms: None,
        max_requests: Some(1),
        announces_close: Some(true),
        note: "Unicorn answers every request with Connection: close (no keep-alive by design)",
    },
    // backends.tsv row "Passenger Standalone": keepalive_timeout 60 in its template.
    BackendProfile {
        name: "passenger",
        aliases: &[],
        display: "Passenger Standalone (nginx engine)",
        idle_timeout_ms: Some(60 * S),
        max_requests: None,
        announces_close: None,
        note: "its nginx template sets keepalive_timeout 60",
    },
    // backends.tsv row "Tomcat standalone": connectionTimeout 20000, maxKeepAliveRequests 100;
    // RULES.md U008: Tomcat announces the close.
    BackendProfile {
        name: "tomcat",
        aliases: &[],
        display: "Tomcat standalone (shipped conf/server.xml)",
        idle_timeout_ms: Some(20 * S),
        max_requests: Some(100),
        announces_close: Some(true),
        note: "shipped server.xml: connectionTimeout 20000 ms, maxKeepAliveRequests 100",
    },
    // backends.tsv row "Tomcat embedded": 60s, 100.
    BackendProfile {
        name: "tomcat-embedded",
        aliases: &["spring-boot"],
        display: "Tomcat embedded (Spring Boot)",
        idle_timeout_ms: Some(60 * S),
        max_requests: Some(100),
        announces_close: Some(true),
        note: "keepAliveTimeout falls back to 60000 ms, maxKeepAliveRequests 100",
    },
    // backends.tsv row "Jetty (ServerConnector)": 30s.
    BackendProfile {
        name: "jetty",
        aliases: &[],
        display: "Jetty (ServerConnector)",
        idle_timeout_ms: Some(30 * S),
        max_requests: None,
        announces_close: None,
        note: "idleTimeout 30000 ms",
    },
    // backends.tsv row "Undertow": NO_REQUEST_TIMEOUT 60s.
    BackendProfile {
        name: "undertow",
        aliases: &[],
        display: "Undertow",
        idle_timeout_ms: Some(60 * S),
        max_requests: None,
        announces_close: None,
        note: "NO_REQUEST_TIMEOUT 60000 ms with Undertow.builder()",
    },
    // backends.tsv row "Reactor Netty HttpServer": no idle timeout.
    BackendProfile {
        name: "reactor-netty",
        aliases: &["webflux"],
        display: "Reactor Netty HttpServer",
        idle_timeout_ms: None,
        max_requests: None,
        announces_close: None,
        note: "no idle timeout by default",
    },
    // backends.tsv row "Vert.x HttpServer": no idle timeout.
    BackendProfile {
        name: "vertx",
        aliases: &["vert.x"],
        display: "Vert.x HttpServer",
        idle_timeout_ms: None,
        max_requests: None,
        announces_close: None,
        note: "DEFAULT_IDLE_TIMEOUT 0 (none)",
    },
    // backends.tsv row "Helidon 4 WebServer": PT5M.
    BackendProfile {
        name: "helidon",
        aliases: &[],
        display: "Helidon 4 WebServer",
        idle_timeout_ms: Some(300 * S),
        max_requests: None,
        announces_close: None,
        note: "idle-connection-timeout 5 min (checked every 2 min)",
    },
    // backends.tsv row "ASP.NET Core Kestrel": 130s.
    BackendProfile {
        name: "kestrel",
        aliases: &["aspnetcore"],
        display: "ASP.NET Core Kestrel",
        idle_timeout_ms: Some(130 * S),
        max_requests: None,
        announces_close: None,
        note: "Limits.KeepAliveTimeout 130 s",
    },
    // backends.tsv row "IIS 7+": connectionTimeout 120s.
    BackendProfile {
        name: "iis",
        aliases: &[],
        display: "IIS 7+",
        idle_timeout_ms: Some(120 * S),
        max_requests: None,
        announces_close: None,
        note: "limits connectionTimeout 00:02:00",
    },
    // backends.tsv row "Apache httpd": KeepAliveTimeout 5, MaxKeepAliveRequests 100;
    // RULES.md U008: Apache httpd announces the close.
    BackendProfile {
        name: "apache",
        aliases: &["httpd", "apache-httpd"],
        display: "Apache httpd",
        idle_timeout_ms: Some(5 * S),
        max_requests: Some(100),
        announces_close: Some(true),
        note: "KeepAliveTimeout 5, MaxKeepAliveRequests 100",
    },
    // backends.tsv row "Go net/http Server": no idle timeout by default.
    BackendProfile {
        name: "go",
        aliases: &["go-net-http", "golang"],
        display: "Go net/http Server",
        idle_timeout_ms: None,
        max_requests: None,
        announces_close: None,
        note: "http.Server with zero IdleTimeout and ReadTimeout has no idle timeout",
    },
    // backends.tsv rows "Rust hyper 1.x server" and "axum": none without a timer.
    BackendProfile {
        name: "hyper",
        aliases: &["axum"],
        display: "Rust hyper 1.x server / axum",
        idle_timeout_ms: None,
        max_requests: None,
        announces_close: None,
        note: "no idle timeout unless a timer and header_read_timeout are set",
    },
    // backends.tsv row "actix-web": KeepAlive::Timeout(5s).
    BackendProfile {
        name: "actix-web",
        aliases: &["actix"],
        display: "actix-web",
        idle_timeout_ms: Some(5 * S),
        max_requests: None,
        announces_close: None,
        note: "KeepAlive::default() = 5 s",
    },
    // backends.tsv row "aiohttp web.run_app": 75s in code.
    BackendProfile {
        name: "aiohttp",
        aliases: &[],
        display: "aiohttp web.run_app",
        idle_timeout_ms: Some(75 * S),
        max_requests: None,
        announces_close: None,
        note: "run_app keepalive_timeout 75 s in code",
    },
    // backends.tsv row "aiohttp AppRunner / web.Server": 3630s since 3.11.0.
    BackendProfile {
        name: "aiohttp-runner",
        aliases: &[],
        display: "aiohttp AppRunner / web.Server",
        idle_timeout_ms: Some(3630 * S),
        max_requests: None,
        announces_close: None,
        note: "keepalive_timeout 3630 s since 3.11.0 (75 s before)",
    },
    // backends.tsv row "Bun (Bun.serve)": idleTimeout 10.
    BackendProfile {
        name: "bun",
        aliases: &[],
        display: "Bun (Bun.serve)",
        idle_timeout_ms: Some(10 * S),
        max_requests: None,
        announces_close: None,
        note: "Bun.serve idleTimeout 10 s",
    },
    // backends.tsv row "nginx (client side, for reference)": 75s, 1000; the
    // last response carries Connection: close (directives.tsv row
    // keepalive_requests / ngx_http_core_module).
    BackendProfile {
        name: "nginx",
        aliases: &["ingress-nginx"],
        display: "nginx (client side)",
        idle_timeout_ms: Some(75 * S),
        max_requests: Some(1000),
        announces_close: Some(true),
        note: "keepalive_timeout 75 s, keepalive_requests 1000 (since 1.19.10)",
    },
    // backends.tsv row "Caddy (client side)": idle 5m.
    BackendProfile {
        name: "caddy",
        aliases: &[],
        display: "Caddy (client side)",
        idle_timeout_ms: Some(300 * S),
        max_requests: None,
        announces_close: None,
        note: "timeouts idle 5m since v2.3.0",
    },
    // backends.tsv row "Traefik entryPoint (client side)": 180s.
    BackendProfile {
        name: "traefik",
        aliases: &[],
        display: "Traefik entryPoint (client side)",
        idle_timeout_ms: Some(180 * S),
        max_requests: None,
        announces_close: None,
        note: "respondingTimeouts.idleTimeout 180 s",
    },
    // backends.tsv row "Envoy (HCM downstream and cluster upstream)": 1h.
    BackendProfile {
        name: "envoy",
        aliases: &[],
        display: "Envoy",
        idle_timeout_ms: Some(3600 * S),
        max_requests: None,
        announces_close: None,
        note: "common_http_protocol_options.idle_timeout 1 h",
    },
];

static FRONTS: &[FrontProfile] = &[
    // backends.tsv row "AWS ALB": idle_timeout.timeout_seconds 60.
    FrontProfile {
        name: "aws-alb",
        aliases: &["alb"],
        display: "AWS ALB",
        idle_timeout_ms: 60 * S,
        note: "idle_timeout.timeout_seconds 60; AWS asks for an application idle timeout larger than the load balancer's",
    },
    // backends.tsv row "AWS NLB": TLS listeners 350s.
    FrontProfile {
        name: "aws-nlb",
        aliases: &["nlb"],
        display: "AWS NLB",
        idle_timeout_ms: 350 * S,
        note: "tcp.idle_timeout.seconds 350",
    },
    // backends.tsv row "AWS CLB": 60s.
    FrontProfile {
        name: "aws-clb",
        aliases: &["elb", "clb"],
        display: "AWS CLB",
        idle_timeout_ms: 60 * S,
        note: "ConnectionSettings.IdleTimeout 60 s",
    },
    // backends.tsv row "AWS CloudFront -> custom origin": OriginKeepaliveTimeout 5.
    FrontProfile {
        name: "cloudfront",
        aliases: &["aws-cloudfront"],
        display: "AWS CloudFront",
        idle_timeout_ms: 5 * S,
        note: "OriginKeepaliveTimeout 5 s",
    },
    // backends.tsv row "GCP global external Application LB (GFE) -> backend": 600s.
    FrontProfile {
        name: "gcp-alb",
        aliases: &["gcp", "gclb"],
        display: "GCP external Application LB",
        idle_timeout_ms: 600 * S,
        note: "backend keep-alive fixed at 600 s; Google suggests 620 s on the backend",
    },
    // backends.tsv row "Cloudflare proxy -> origin": 900s.
    FrontProfile {
        name: "cloudflare",
        aliases: &[],
        display: "Cloudflare proxy",
        idle_timeout_ms: 900 * S,
        note: "Proxy Idle Timeout 900 s to origin",
    },
    // backends.tsv row "cloudflared tunnel -> origin": 90s (secondary source).
    FrontProfile {
        name: "cloudflared",
        aliases: &[],
        display: "cloudflared tunnel",
        idle_timeout_ms: 90 * S,
        note: "originRequest.keepAliveTimeout 90 s (secondary source)",
    },
    // backends.tsv row "Akamai edge -> origin": 300s.
    FrontProfile {
        name: "akamai",
        aliases: &[],
        display: "Akamai edge",
        idle_timeout_ms: 300 * S,
        note: "Persistent Connections edge to origin timeout 5 min",
    },
    // backends.tsv row "OCI Load Balancer -> backend": 300s.
    FrontProfile {
        name: "oci-lb",
        aliases: &["oci"],
        display: "OCI Load Balancer",
        idle_timeout_ms: 300 * S,
        note: "backends must not close idle connections in < 310 s",
    },
    // backends.tsv row "Fly.io Fly Proxy": 60s.
    FrontProfile {
        name: "fly",
        aliases: &["fly.io"],
        display: "Fly.io Fly Proxy",
        idle_timeout_ms: 60 * S,
        note: "idle TCP connections closed after 60 s",
    },
    // backends.tsv row "Heroku Router 2.0 -> dyno": 90s (secondary source).
    FrontProfile {
        name: "heroku",
        aliases: &[],
        display: "Heroku Router 2.0",
        idle_timeout_ms: 90 * S,
        note: "90 s (secondary source)",
    },
    // backends.tsv row "Traefik serversTransport -> backend": idleConnTimeout 90s.
    FrontProfile {
        name: "traefik",
        aliases: &[],
        display: "Traefik serversTransport",
        idle_timeout_ms: 90 * S,
        note: "forwardingTimeouts.idleConnTimeout 90 s",
    },
    // backends.tsv row "Caddy reverse_proxy -> upstream pool": keepalive 2m.
    FrontProfile {
        name: "caddy",
        aliases: &[],
        display: "Caddy reverse_proxy",
        idle_timeout_ms: 120 * S,
        note: "transport http keepalive 2m",
    },
    // backends.tsv row "Envoy (HCM downstream and cluster upstream)": 1h.
    FrontProfile {
        name: "envoy",
        aliases: &[],
        display: "Envoy cluster",
        idle_timeout_ms: 3600 * S,
        note: "common_http_protocol_options.idle_timeout 1 h",
    },
    // backends.tsv row "HAProxy (server-side idle pool)": pool-purge-delay 5s.
    FrontProfile {
        name: "haproxy",
        aliases: &[],
        display: "HAProxy server-side idle pool",
        idle_timeout_ms: 5 * S,
        note: "pool-purge-delay 5 s closes half of the idle server connections",
    },
    // backends.tsv row "nginx upstream keepalive (for reference)": 60s.
    FrontProfile {
        name: "nginx",
        aliases: &[],
        display: "nginx upstream keepalive",
        idle_timeout_ms: 60 * S,
        note: "upstream keepalive_timeout 60 s",
    },
    // backends.tsv row "Kubernetes ingress-nginx (upstream side)": 60s.
    FrontProfile {
        name: "ingress-nginx",
        aliases: &[],
        display: "Kubernetes ingress-nginx",
        idle_timeout_ms: 60 * S,
        note: "upstream-keepalive-timeout 60 s",
    },
    // Azure Application Gateway / Front Door: backends.tsv says "unverified";
    // no profile rather than a guessed number.
];

fn normalize(name: &str) -> String {
    name.trim().to_ascii_lowercase().replace('_', "-")
}

/// A backend server profile by name or alias (`gunicorn`, `node`, `tomcat`…).
pub fn backend_profile(name: &str) -> Option<BackendProfile> {
    let n = normalize(name);
    BACKENDS
        .iter()
        .find(|p| p.name == n || p.aliases.contains(&n.as_str()))
        .copied()
}

/// A front (load balancer) profile by name or alias (`aws-alb`, `cloudflare`…).
pub fn front_profile(name: &str) -> Option<FrontProfile> {
    let n = normalize(name);
    FRONTS
        .iter()
        .find(|p| p.name == n || p.aliases.contains(&n.as_str()))
        .copied()
}

pub fn backend_profiles() -> &'static [BackendProfile] {
    BACKENDS
}

pub fn front_profiles() -> &'static [FrontProfile] {
    FRONTS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_by_name_and_alias() {
        assert_eq!(
            backend_profile("gunicorn").unwrap().idle_timeout_ms,
            Some(2000)
        );
        assert_eq!(backend_profile("NodeJS").unwrap().name, "node");
        assert_eq!(backend_profile("httpd").unwrap().max_requests, Some(100));
        assert!(backend_profile("nope").is_none());
        assert_eq!(front_profile("aws-alb").unwrap().idle_timeout_ms, 60_000);
        assert_eq!(front_profile("gcp_alb").unwrap().idle_timeout_ms, 600_000);
        assert!(front_profile("azure-app-gateway").is_none());
    }

    #[test]
    fn names_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for p in BACKENDS {
            for n in std::iter::once(&p.name).chain(p.aliases) {
                assert!(seen.insert(*n), "duplicate backend name {n}");
            }
        }
        let mut seen = std::collections::HashSet::new();
        for p in FRONTS {
            for n in std::iter::once(&p.name).chain(p.aliases) {
                assert!(seen.insert(*n), "duplicate front name {n}");
            }
        }
    }
}

/// The upstream `keepalive_timeout` to set for a backend that closes idle
/// connections after `backend_ms`: shorter by the smaller of 1 s or 10 %
/// (RULES.md U007, so nginx always closes first), rounded down to a readable
/// value (100 ms steps from 1 s up, 10 ms below) because measured timeouts
/// come with jitter (1998 ms suggests 1700ms, a declared 2s suggests 1800ms).
/// `upkeep check`/`fix` and `upkeep probe` both use this, so they agree.
pub fn suggested_upstream_keepalive_timeout_ms(backend_ms: u64) -> u64 {
    let margin = (backend_ms / 10).min(1000);
    let t = backend_ms.saturating_sub(margin);
    let step = if t >= 1000 { 100 } else { 10 };
    (t / step * step).max(1)
}

#[cfg(test)]
mod suggestion_tests {
    use super::suggested_upstream_keepalive_timeout_ms as suggest;

    #[test]
    fn margin_is_the_smaller_of_one_second_or_ten_percent() {
        assert_eq!(suggest(2000), 1800);
        assert_eq!(suggest(1998), 1700);
        assert_eq!(suggest(5000), 4500);
        assert_eq!(suggest(75_000), 74_000);
        assert_eq!(suggest(1000), 900);
        assert_eq!(suggest(5), 1);
    }
}
