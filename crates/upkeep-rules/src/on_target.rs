//! What a rule depends on for one server: the defaults of that flavor and
//! version that decide the rule's verdict, each with where upkeep took it
//! from, and where the rule can fire there. `upkeep explain RULE --flavor
//! angie --nginx-version 1.12.1` prints it after the rule's documentation.
//!
//! Every statement is resolved through the same [`Target`] queries and
//! directive table the rules use, so it says what `check` does on that
//! target. Its source is the data/flavors.tsv row for a fork, and for nginx
//! the release, commit or source line the directive table was transcribed
//! from (facts/directives.tsv, facts/behaviors.md).

use upkeep_facts::{directive, landmarks, Flavor, NginxVersion, Target};

/// One default that matters for the rule, and where it comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetFact {
    pub statement: String,
    pub source: String,
}

/// A rule on one target: the facts that decide it and where it applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnTarget {
    pub target: Target,
    pub facts: Vec<TargetFact>,
    /// Where the rule can report on this target, or that it cannot.
    pub applies: String,
    /// False when nothing lets the rule fire on this target.
    pub can_fire: bool,
}

impl OnTarget {
    /// The section `upkeep explain` appends (Markdown). `version_note`
    /// says where the version came from when it was not given.
    pub fn render(&self, version_note: Option<&str>) -> String {
        let mut out = format!("On {}:\n", self.target);
        if let Some(note) = version_note {
            out.push_str(&format!("- {note}\n"));
        }
        for f in &self.facts {
            out.push_str(&format!("- {}\n  Source: {}\n", f.statement, f.source));
        }
        out.push_str(&format!("- {}\n", self.applies));
        out
    }
}

/// The defaults a rule's verdict depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fact {
    /// Whether an `upstream{}` without `keepalive` keeps an idle pool.
    PoolByDefault,
    /// The default of `proxy_http_version`.
    ProxyHttpVersion,
    /// Whether `Connection: close` is sent when no line sets `Connection`.
    ConnectionClose,
    /// Whether a balancer written after `keepalive` replaces the pool.
    BalancerOrder,
    /// The upstream `keepalive_timeout` (or its absence).
    UpstreamIdleTimeout,
    /// The upstream `keepalive_requests` default.
    UpstreamRequests,
    /// The client `keepalive_requests` default.
    ClientRequests,
    /// Whether `proxy_http_version 2` is accepted.
    ProxyHttp2,
    /// Whether `keepalive` has the `local` parameter.
    KeepaliveLocal,
    /// Whether `worker_shutdown_timeout` exists.
    ShutdownTimeout,
}

/// The facts each configuration rule's check consults (through `ctx.version`,
/// `ctx.model.target` or the pools of the model). Rules not listed consult
/// none: their verdict is the same on every flavor and version.
fn facts_of(rule: &str) -> &'static [Fact] {
    use Fact::*;
    match rule {
        "U001" | "U005" | "U009" | "U011" | "U012" | "U016" | "R002" => &[PoolByDefault],
        "U002" => &[PoolByDefault, ProxyHttpVersion],
        "U003" | "U004" => &[PoolByDefault, ConnectionClose],
        "U006" => &[BalancerOrder],
        "U007" => &[PoolByDefault, UpstreamIdleTimeout],
        "U008" => &[PoolByDefault, UpstreamRequests],
        "U017" => &[ProxyHttp2],
        "U018" => &[PoolByDefault, ProxyHttp2, KeepaliveLocal],
        "U019" => &[ProxyHttp2, KeepaliveLocal],
        "C001" => &[ClientRequests],
        "R003" => &[ShutdownTimeout],
        _ => &[],
    }
}

/// Rule `rule` (an ID such as `U001`) on `target`.
pub fn on_target(rule: &str, target: Target) -> OnTarget {
    let rule = rule.to_ascii_uppercase();
    let mut facts: Vec<TargetFact> = Vec::new();
    let wanted = facts_of(&rule);
    if target.flavor != Flavor::Nginx && !wanted.is_empty() {
        if let Some(base) = base_fact(target) {
            facts.push(base);
        }
    }
    facts.extend(wanted.iter().map(|&f| describe(f, target)));
    let (applies, can_fire) = applies(&rule, target);
    OnTarget {
        target,
        facts,
        applies,
        can_fire,
    }
}

/// For a fork: the nginx release it includes, and the nginx release upkeep
/// resolves its other defaults with ([`Target::behaviour_version`]).
fn base_fact(target: Target) -> Option<TargetFact> {
    let row = target.fact_row("nginx_base")?;
    let behaviour = target.behaviour_version();
    let resolved = if behaviour.to_string() == row.value {
        format!("its other defaults are those of nginx {behaviour}")
    } else {
        format!(
            "its other defaults are those of nginx {behaviour}, the last release before upstream keep-alive became nginx's default"
        )
    };
    Some(TargetFact {
        statement: format!(
            "{target} includes the functionality of nginx {}; {resolved}.",
            row.value
        ),
        source: format!(
            "flavors.tsv, row {} {} nginx_base: {}",
            row.flavor.name(),
            row.since,
            row.source
        ),
    })
}

/// The source of a fork's fact `name`, or the nginx source `nginx` says.
fn source(target: Target, name: &str, nginx: &str) -> String {
    match target.fact_row(name) {
        Some(row) if target.flavor != Flavor::Nginx => format!(
            "flavors.tsv, row {} {} {name}: {}",
            row.flavor.name(),
            row.since,
            row.source
        ),
        _ => nginx.to_string(),
    }
}

/// The default of directive `name` (`in_upstream`: the upstream module's)
/// on the nginx release the target behaves as.
fn nginx_default(target: Target, name: &str, in_upstream: bool) -> Option<&'static str> {
    directive(name, in_upstream).and_then(|d| d.default_in(target.behaviour_version()))
}

fn describe(fact: Fact, target: Target) -> TargetFact {
    let server = target.flavor.display();
    match fact {
        Fact::PoolByDefault => {
            let statement = if target.keepalive_by_default() {
                "An `upstream{}` block without `keepalive` keeps an idle pool (`keepalive 32 local`); `keepalive 0` turns it off.".to_string()
            } else {
                "An `upstream{}` block keeps idle connections only when it writes `keepalive N`; without it every request opens a new connection.".to_string()
            };
            let nginx = if target.keepalive_by_default() {
                "nginx 1.29.7, commit 4fbe4b627: `keepalive 32 local` by default for every explicit upstream{}, `keepalive 0` accepted (turns the pool off); CHANGES 1.29.7: \"now the keepalive directive in the upstream block is enabled by default\""
            } else {
                "nginx CHANGES 1.29.7: \"now the keepalive directive in the upstream block is enabled by default\"; up to 1.29.6 src/http/modules/ngx_http_upstream_keepalive_module.c keeps a cache only for a `keepalive N` line"
            };
            TargetFact {
                statement,
                source: source(target, "keepalive_by_default", nginx),
            }
        }
        Fact::ProxyHttpVersion => {
            let value = target
                .default_override("proxy_http_version")
                .or_else(|| nginx_default(target, "proxy_http_version", false))
                .unwrap_or("1.0");
            TargetFact {
                statement: format!("`proxy_http_version` defaults to {value}."),
                source: source(
                    target,
                    "proxy_http_version",
                    "nginx/nginx commit 6bb27a631: the default is 1.1 since 1.29.7, 1.0 from 1.1.4 to 1.29.6 (src/http/modules/ngx_http_proxy_module.c, merge of http_version)",
                ),
            }
        }
        Fact::ConnectionClose => {
            let statement = if !target.sends_connection_close() {
                format!("{server} sends no `Connection` header to the backend unless a `proxy_set_header Connection` line says otherwise.")
            } else if target.flavor == Flavor::Nginx
                && target.version >= landmarks::PROXY_INTERNAL_CONNECTION
            {
                "Without a `proxy_set_header Connection` line in effect, nginx sends `Connection: close` to the backend (through `$proxy_internal_connection`, `close` for HTTP/1.x).".to_string()
            } else {
                format!("Without a `proxy_set_header Connection` line in effect, {server} sends `Connection: close` to the backend.")
            };
            TargetFact {
                statement,
                source: source(
                    target,
                    "connection_close",
                    "nginx src/http/modules/ngx_http_proxy_module.c, ngx_http_proxy_headers[]: `Connection: close` up to 1.29.3, `$proxy_internal_connection` (close for HTTP/1.x) in 1.29.4-1.29.6, not sent since 1.29.7 (commit 6bb27a631)",
                ),
            }
        }
        Fact::BalancerOrder => {
            let matters = target.behaviour_version() < landmarks::KEEPALIVE_BY_DEFAULT;
            let statement = if matters {
                "`keepalive` wraps the load-balancing method when it is read, so a method (`ip_hash`, `least_conn`, `hash`, `random`) written after `keepalive` replaces the pool without an error.".to_string()
            } else {
                "The order of `keepalive` and the load-balancing method does not matter: the pool is wired after every method is set up.".to_string()
            };
            let nginx = if matters {
                "nginx up to 1.29.6: ngx_http_upstream_keepalive() replaces peer.init_upstream when the directive is parsed, and ip_hash, least_conn, hash and random replace it again (`nginx -t` only warns \"load balancing method redefined\")"
            } else {
                "nginx/nginx commit 4fbe4b627 (1.29.7): the keepalive module wraps peer.init in ngx_http_upstream_keepalive_init_main_conf, after every balancer is set up, and no longer touches init_upstream"
            };
            TargetFact {
                statement,
                source: source(target, "keepalive_by_default", nginx),
            }
        }
        Fact::UpstreamIdleTimeout => {
            let statement = match nginx_default(target, "keepalive_timeout", true) {
                Some(d) => format!("`keepalive_timeout` in `upstream{{}}` defaults to {d}."),
                None => format!(
                    "There is no `keepalive_timeout` in `upstream{{}}` (added in nginx {}): {server} keeps idle upstream connections with no idle timeout of its own.",
                    landmarks::UPSTREAM_KEEPALIVE_TIMEOUT
                ),
            };
            TargetFact {
                statement,
                source: "nginx 1.15.3 added `keepalive_timeout` to upstream{}; src/http/modules/ngx_http_upstream_keepalive_module.c: ngx_conf_init_msec_value(kcf->timeout, 60000)".to_string(),
            }
        }
        Fact::UpstreamRequests => {
            let statement = match nginx_default(target, "keepalive_requests", true) {
                Some(d) => format!("`keepalive_requests` in `upstream{{}}` defaults to {d}."),
                None => format!(
                    "There is no `keepalive_requests` in `upstream{{}}` (added in nginx {}): a cached connection is reused without a request limit.",
                    landmarks::UPSTREAM_KEEPALIVE_TIMEOUT
                ),
            };
            TargetFact {
                statement,
                source: "nginx 1.15.3 added `keepalive_requests` to upstream{} with the default 100; 1000 since 1.19.10 (commit eb52de831)".to_string(),
            }
        }
        Fact::ClientRequests => TargetFact {
            statement: format!(
                "The client `keepalive_requests` defaults to {}.",
                nginx_default(target, "keepalive_requests", false).unwrap_or("1000")
            ),
            source: "nginx CHANGES 1.19.10: the default of `keepalive_requests` is 1000 (it was 100; ticket #2155)".to_string(),
        },
        Fact::ProxyHttp2 => TargetFact {
            statement: if target.has_proxy_http2() {
                "`proxy_http_version 2` (HTTP/2 to the backend) is accepted.".to_string()
            } else {
                "`proxy_http_version 2` is rejected (`invalid value \"2\"`).".to_string()
            },
            source: source(
                target,
                "proxy_http_version_2",
                "nginx/nginx commit 9bf758ea4 (ngx_http_proxy_v2_module), first in release-1.29.4; before it `proxy_http_version 2` is `invalid value \"2\"`",
            ),
        },
        Fact::KeepaliveLocal => TargetFact {
            statement: if target.has_keepalive_local() {
                "`keepalive` takes the `local` parameter: cached connections are reused only by the location that opened them (the default pool is `local`).".to_string()
            } else {
                "`keepalive` has no `local` parameter: a pool is shared by every location that uses the upstream.".to_string()
            },
            source: source(
                target,
                "keepalive_local",
                "nginx 1.29.7 (commit 4fbe4b627): the `local` parameter of `keepalive`, and the default pool `32 local`",
            ),
        },
        Fact::ShutdownTimeout => TargetFact {
            statement: if target.behaviour_version() >= SHUTDOWN_TIMEOUT {
                "`worker_shutdown_timeout` exists and has no default: old workers wait for their connections.".to_string()
            } else {
                format!("There is no `worker_shutdown_timeout` (added in nginx {SHUTDOWN_TIMEOUT}).")
            },
            source: "nginx 1.11.11 added `worker_shutdown_timeout`; unset by default (src/core/nginx.c: ngx_conf_init_msec_value(shutdown_timeout, 0))".to_string(),
        },
    }
}

/// `worker_shutdown_timeout` appeared (directives.tsv; rule R003).
const SHUTDOWN_TIMEOUT: NginxVersion = NginxVersion::new(1, 11, 11);

/// An upstream a "keepalive route" leads to on `target`.
fn keepalive_upstream(target: Target) -> &'static str {
    if target.keepalive_by_default() {
        "an upstream block (any without `keepalive 0`)"
    } else {
        "an upstream block with `keepalive N`"
    }
}

/// Where `rule` reports on `target`, and whether it can report at all.
fn applies(rule: &str, target: Target) -> (String, bool) {
    let pool = keepalive_upstream(target);
    let by_default = target.keepalive_by_default();
    let behaviour = target.behaviour_version();
    let text = match rule {
        "U001" if by_default => "Applies only to upstream blocks that write `keepalive 0`.".to_string(),
        "U001" => "Applies to every upstream block without `keepalive N` that HTTP, FastCGI or gRPC routes reach.".to_string(),
        "U002" => {
            let default = target
                .default_override("proxy_http_version")
                .or_else(|| nginx_default(target, "proxy_http_version", false));
            if default == Some("1.0") {
                format!("Applies where a route to {pool} does not set `proxy_http_version 1.1`.")
            } else {
                format!("Applies only where `proxy_http_version 1.0` is written, on a route to {pool}.")
            }
        }
        "U003" if target.sends_connection_close() => format!(
            "Applies where an HTTP/1.x route to {pool} has no `proxy_set_header Connection` line in effect, or sets `Connection` to `close`."
        ),
        "U003" => format!(
            "Applies only where `proxy_set_header Connection` is set to `close`, on an HTTP/1.x route to {pool}."
        ),
        "U004" if target.sends_connection_close() => format!(
            "Applies where a level's own header or parameter lines drop those a parent set, on a route to {pool}; a dropped `Connection` line means `Connection: close` is sent."
        ),
        "U004" => format!(
            "Applies where a level's own header or parameter lines drop those a parent set, on a route to {pool}; a dropped `Connection` line costs no reuse here, since no `Connection` header is sent by default."
        ),
        "U005" | "U012" => format!("Applies to a route to {pool}."),
        "U006" if behaviour < landmarks::KEEPALIVE_BY_DEFAULT => {
            "Applies to upstream blocks that write `keepalive` before the load-balancing method.".to_string()
        }
        "U006" => return ("Does not apply: the order does not matter here.".to_string(), false),
        "U007" if behaviour >= landmarks::UPSTREAM_KEEPALIVE_TIMEOUT => format!(
            "Applies to {pool} whose `keepalive_timeout` is not shorter than the backend's idle timeout (declared, from a profile or probed)."
        ),
        "U007" => format!(
            "Applies to {pool} whose backend has a known idle timeout; the fix is on the backend's side, there is no upstream `keepalive_timeout` to shorten."
        ),
        "U008" => format!(
            "Applies to {pool} whose backend closes a connection after fewer requests than nginx allows on it."
        ),
        "U009" if by_default => format!(
            "Applies to {pool} whose pool (the `keepalive N` written, else 32) times the worker processes exceeds the backend's declared maximum connections."
        ),
        "U009" => format!(
            "Applies to {pool} whose `keepalive N` times the worker processes exceeds the backend's declared maximum connections."
        ),
        "U011" => format!("Applies where a `fastcgi_pass` route to {pool} has no `fastcgi_keep_conn on` (default off)."),
        "U016" if by_default => "Applies only to upstream blocks that write `keepalive 0`.".to_string(),
        "U016" => "Applies to upstream blocks that set `keepalive_timeout`, `keepalive_requests` or `keepalive_time` without `keepalive N`.".to_string(),
        "U017" if target.has_proxy_http2() => "Applies only to `proxy_http_version` values the server rejects.".to_string(),
        "U017" => "Applies to every `proxy_http_version 2`.".to_string(),
        "U018" => {
            let fix = if target.has_keepalive_local() {
                "the fix adds `local`"
            } else {
                "without a `local` parameter the remedy is a separate upstream block"
            };
            format!(
                "Applies to {pool} whose pool is shared across locations and reached both by HTTP/2 or gRPC routes and by routes of another protocol; {fix}."
            )
        }
        "U019" if target.has_proxy_http2() => {
            "Applies to HTTP/2 routes (`proxy_http_version 2`) that send only HEAD requests to a keepalive upstream.".to_string()
        }
        "U019" => return (
            "Does not apply: without `proxy_http_version 2` there are no HTTP/2 routes.".to_string(),
            false,
        ),
        "C001" => match nginx_default(target, "keepalive_requests", false) {
            Some(d) if d.parse::<u64>().is_ok_and(|n| n < 1000) => format!(
                "Applies where `keepalive_requests` is below 1000 (or `--target-requests`), including where it is not written (default {d})."
            ),
            _ => "Applies only where `keepalive_requests` is written below 1000 (or `--target-requests`).".to_string(),
        },
        "R002" => format!(
            "Applies when `worker_connections` cannot hold the idle pools plus a floor for the clients; a pool is kept by {pool}."
        ),
        "R003" if behaviour >= SHUTDOWN_TIMEOUT => {
            "Applies to configurations without `worker_shutdown_timeout`.".to_string()
        }
        "R003" => return ("Does not apply: there is no `worker_shutdown_timeout` to set.".to_string(), false),
        _ => "Nothing this rule checks depends on the server flavor or version: it applies as described above.".to_string(),
    };
    (text, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(flavor: Flavor, a: u32, b: u32, c: u32) -> Target {
        Target::new(flavor, NginxVersion::new(a, b, c))
    }

    #[test]
    fn u001_follows_the_pool_default_of_each_flavor() {
        let old = on_target("U001", t(Flavor::Nginx, 1, 28, 0));
        assert!(old
            .applies
            .contains("every upstream block without `keepalive N`"));
        let new = on_target("U001", t(Flavor::Nginx, 1, 29, 7));
        assert!(new
            .applies
            .contains("only to upstream blocks that write `keepalive 0`"));
        assert!(new.facts[0].source.contains("4fbe4b627"));
        for fork in [t(Flavor::Angie, 1, 12, 1), t(Flavor::Freenginx, 1, 29, 7)] {
            let o = on_target("U001", fork);
            assert!(o.applies.contains("every upstream block without"), "{o:?}");
            assert!(o
                .facts
                .iter()
                .any(|f| f.source.starts_with("flavors.tsv, row")));
        }
    }

    #[test]
    fn rules_that_consult_no_target_fact_say_so() {
        let o = on_target("U013", t(Flavor::Angie, 1, 12, 1));
        assert!(o.facts.is_empty());
        assert!(o.applies.starts_with("Nothing this rule checks depends"));
    }

    #[test]
    fn every_registered_rule_renders() {
        for info in crate::rules() {
            for target in [
                t(Flavor::Nginx, 1, 14, 0),
                t(Flavor::Nginx, 1, 29, 7),
                t(Flavor::Angie, 1, 0, 0),
                t(Flavor::Angie, 1, 12, 1),
                t(Flavor::Freenginx, 1, 29, 7),
            ] {
                let text = on_target(info.id, target).render(None);
                assert!(text.starts_with(&format!("On {target}:\n")), "{text}");
            }
        }
    }
}
