use upkeep_diag::{Applicability, Finding, Fix, Severity};
use upkeep_facts::{describe_duration, format_duration, landmarks};
use upkeep_model::UpstreamId;

use crate::context::Ctx;
use crate::edits;
use crate::pool_safety::{self, PoolTimeout};
use crate::registry::RuleInfo;

pub const INFO: RuleInfo = RuleInfo {
    id: "U007",
    name: "upstream-idle-outlives-backend",
    severity: Severity::Error,
    fixable: true,
    summary: "nginx keeps idle upstream connections at least as long as the backend does, so it reuses connections the backend is closing.",
    doc: r#"## What it finds
An upstream with an idle pool whose effective `keepalive_timeout` (default
60s) is not shorter than the backend's idle timeout. The backend's timeout
comes from an inline `# upkeep: backend idle=5s` comment in the upstream
block, upkeep.toml or `--backend` (a server profile such as `gunicorn`, 2 s,
or `node`, 5 s, listed by `upkeep profiles`), or a measurement by `upkeep probe`.
When the backend's idle timeout is not known (nothing describes the
backend, or what does says nothing about idle connections: a PHP-FPM found
listening by `check` on the host, a declared request cap) and a route to it can carry
requests nginx does not retry (any route, unless a `limit_except` in its
location allows only idempotent methods and denies the rest; with
`proxy_request_buffering off` always), it is a warning whose fix sets
`keepalive_timeout` below the shortest default of the backend profiles
(Gunicorn's 2 s: `1800ms`), unless the effective timeout is already that
short; on GET-only routes it is an info asking to declare or probe the
backend. On nginx 1.29.7+ every upstream pools by default, so this is the
most common keep-alive failure there.

## Why it breaks reuse
The side that sends requests must give up an idle connection before the side
that serves them. nginx notices a backend's close on an idle cached
connection only through the close handler
(`ngx_http_upstream_keepalive_close_handler`, a `recv(MSG_PEEK)` when the
socket becomes readable), and it does not probe the socket when it takes a
connection from the cache (`ngx_http_upstream_get_keepalive_peer`). When the
backend's idle timer fires while nginx's request is on the wire, the request
meets a closed socket: `upstream prematurely closed connection while reading
response header from upstream` or `recv() failed (104: Connection reset by
peer)`. nginx ignores the backend's `Keep-Alive: timeout=` header.

What happens next (verified on a real nginx):
* idempotent requests (GET, HEAD, PUT, DELETE…) are retried transparently
  when `error` is in `proxy_next_upstream` (the default); a failure on a
  cached connection gives its try back, so even
  `proxy_next_upstream_tries 1` retries. The cost is latency and an
  `[error]` line for a request that succeeded;
* POST, LOCK and PATCH are not retried once sent (since 1.9.13): the client
  gets a 502;
* with `proxy_request_buffering off` and a streamed body nothing is retried,
  PUT included;
* each stale failure counts toward the server's `max_fails` (default 1):
  with several servers the race can mark them all down, and every request
  gets 502 "no live upstreams" for `fail_timeout` (10s).

If nginx's timeout is shorter, nginx always closes first and the race cannot
happen.

## Example
```nginx
upstream app {
    # upkeep: backend gunicorn
    server 127.0.0.1:8000;      # gunicorn --keep-alive 2 (default)
    keepalive 32;               # keepalive_timeout defaults to 60s
}
```

## Fix
Set the upstream's `keepalive_timeout` below the backend's idle timeout,
with a margin of the smaller of 1 s or 10 % (the fix writes
`keepalive_timeout 1800ms;` for gunicorn's 2 s). The directive exists in
`upstream{}` since nginx 1.15.3; on older nginx there is no nginx-side idle
timeout, and the remedy is on the backend: make its idle timeout longer than
the time nginx may leave a connection idle, or upgrade nginx.

## References
- https://nginx.org/en/docs/http/ngx_http_upstream_module.html#keepalive_timeout
- nginx source: src/http/modules/ngx_http_upstream_keepalive_module.c, `ngx_http_upstream_keepalive_close_handler()`, `ngx_http_upstream_get_keepalive_peer()`; src/http/ngx_http_upstream.c, `ngx_http_upstream_next()` (retries, the try given back for cached connections, `max_fails`)
- `upkeep profiles` (backend idle timeouts, each with its source)
"#,
};

/// What can be told about an unknown backend from the configuration: the
/// protocol its routes speak and where its servers are. Big configs get one
/// summary line per kind instead of one note per upstream.
fn backend_kind(ctx: &Ctx, uid: upkeep_model::UpstreamId) -> String {
    use upkeep_model::Protocol;
    let up = ctx.model.upstream(uid);
    let mut protocols: Vec<&str> = ctx
        .model
        .routes_to(uid)
        .map(|r| match ctx.model.route(r).protocol {
            Protocol::Http => "HTTP",
            Protocol::FastCgi => "FastCGI",
            Protocol::Grpc => "gRPC",
            Protocol::Uwsgi => "uwsgi",
            Protocol::Scgi => "SCGI",
        })
        .collect();
    protocols.sort_unstable();
    protocols.dedup();
    let unix = up
        .servers
        .iter()
        .filter(|s| s.address.starts_with("unix:"))
        .count();
    let place = if unix == up.servers.len() && unix > 0 {
        "unix sockets"
    } else if unix == 0 {
        "TCP"
    } else {
        "unix sockets and TCP"
    };
    format!("{} over {place}", protocols.join("/"))
}

pub fn check(ctx: &Ctx) -> Vec<Finding> {
    // The upstreams with a pool that a keep-alive route reaches; each
    // gives one finding at most, so the list is made at that size once
    // instead of doubling (a large configuration has tens of thousands,
    // and a doubled list of findings leaves up to half its room unused).
    let pooled: Vec<UpstreamId> = (0..ctx.model.upstreams.len())
        .filter(|&uid| {
            ctx.model.upstream(uid).is_keepalive(ctx.version)
                && ctx
                    .model
                    .routes_to(uid)
                    .any(|r| ctx.model.route(r).protocol.can_keep_alive())
        })
        .collect();
    let mut out = Vec::with_capacity(pooled.len());
    for uid in pooled {
        let up = ctx.model.upstream(uid);
        let nginx_timeout = up.keepalive_timeout_ms(ctx.version);
        let head = ctx.head(up.directive);
        let Some(facts) = ctx.backend(uid) else {
            out.extend(unknown_backend(ctx, uid, nginx_timeout, None));
            continue;
        };
        let Some(backend_idle) = facts.idle_timeout_ms else {
            if pool_safety::known_to_keep_idle_forever(ctx, Some(uid)) {
                continue; // a server that keeps idle connections: no race
            }
            // Something is known (a process found listening, a request
            // cap, the children) but not how long it keeps an idle
            // connection: as unknown as no facts at all, and said so.
            out.extend(unknown_backend(ctx, uid, nginx_timeout, Some(&facts.source)));
            continue;
        };
        let explicit = up.keepalive_timeout;
        match nginx_timeout {
            Some(t) if t < backend_idle => {}
            Some(t) => {
                let new = upkeep_facts::suggested_upstream_keepalive_timeout_ms(backend_idle);
                let new_text = format_duration(new);
                let setting = match explicit {
                    Some(_) => format!("keepalive_timeout {}", describe_duration(t)),
                    None => format!("keepalive_timeout {} (default)", describe_duration(t)),
                };
                let mut f = INFO
                    .finding(format!(
                        "upstream `{}` keeps idle connections for {} but its backend closes them after {} ({}): nginx reuses connections the backend is closing, and POST requests fail with 502",
                        up.name,
                        describe_duration(t),
                        describe_duration(backend_idle),
                        facts.source
                    ))
                    .with_label(setting)
                    .note("idempotent requests are retried after \"upstream prematurely closed connection\" and only cost latency; each such failure counts toward max_fails, so several servers can all be marked down (\"no live upstreams\")")
                    .help(format!("set `keepalive_timeout {new_text};` in upstream `{}` (shorter than the backend's {})", up.name, describe_duration(backend_idle)));
                f = match explicit {
                    Some(d) => f.at(d.span()).related(head, "in this upstream"),
                    None => f.at(head),
                };
                let edit = match explicit {
                    Some(d) => Some(edits::replace_args(d, &new_text)),
                    None => edits::insert_in_block(
                        ctx,
                        up.block,
                        &format!("keepalive_timeout {new_text};"),
                        |d| d.name_is("keepalive") || d.name_is("keepalive_requests"),
                    ),
                };
                if let Some(edit) = edit {
                    f = f.with_fix(Fix {
                        applicability: Applicability::Safe,
                        description: format!(
                            "set the upstream keepalive_timeout of `{}` to {new_text}",
                            up.name
                        ),
                        edits: vec![edit],
                    });
                }
                out.push(ctx.with_version_note(f));
            }
            None => {
                let f = INFO
                    .finding(format!(
                        "nginx {} has no idle timeout for cached upstream connections, so upstream `{}` keeps them until its backend closes them after {} ({}): requests race with that close and POST requests fail with 502",
                        ctx.version,
                        up.name,
                        describe_duration(backend_idle),
                        facts.source
                    ))
                    .at(head)
                    .with_label(format!("no keepalive_timeout before nginx {}", landmarks::UPSTREAM_KEEPALIVE_TIMEOUT))
                    .help(format!(
                        "upgrade nginx to {} or later and set `keepalive_timeout` below the backend's idle timeout; on this version, raise the backend's idle timeout well above the gaps between requests, or drop `keepalive` for this upstream",
                        landmarks::UPSTREAM_KEEPALIVE_TIMEOUT
                    ));
                out.push(ctx.with_version_note(f));
            }
        }
    }
    out
}

/// An upstream with a pool and a backend nothing describes. A warning when
/// a route to it can carry requests nginx does not retry (POST, PATCH…)
/// and the pool may outlive the shortest common backend idle timeout: with
/// nginx's default 60 s and a Gunicorn or Node.js behind, those requests
/// get 502s. The fix sets the conservative timeout; an info otherwise.
///
/// `known`: where the facts that leave the idle timeout open come from
/// (a php-fpm found listening, a declared request cap), for a note.
fn unknown_backend(
    ctx: &Ctx,
    uid: UpstreamId,
    nginx_timeout: Option<u64>,
    known: Option<&str>,
) -> Option<Finding> {
    let up = ctx.model.upstream(uid);
    let head = ctx.head(up.directive);
    let t = nginx_timeout
        .map(describe_duration)
        .unwrap_or_else(|| "no limit".into());
    let non_idempotent = ctx
        .model
        .routes_to(uid)
        .find(|&r| pool_safety::carries_non_idempotent(ctx, r));
    let timeout = pool_safety::timeout_for(ctx, Some(uid));
    if timeout == PoolTimeout::NotNeeded {
        // Already below the shortest common backend default: nothing a
        // reader could act on.
        return None;
    }
    let declare = format!(
        "declare the backend inside the block (`# upkeep: backend idle=5s` or a profile such as `# upkeep: backend gunicorn`), pass `--backend {}=PROFILE`, or measure it with `upkeep probe`",
        up.name
    );
    let mut f = INFO
        .finding(format!(
            "the idle timeout of upstream `{}`'s backend is unknown: nginx keeps idle connections to it for {t}, and if the backend closes them sooner, requests fail with 502",
            up.name
        ))
        .at(head)
        .with_label("backend idle timeout unknown");
    if let Some(known) = known {
        f = f.note(format!(
            "known about the backend, without an idle timeout: {known}"
        ));
    }
    // A Lua balancer (ingress-nginx) picks among the Services its routes
    // name: those are the backends to declare, and they share this pool.
    if up.lua_balancer.is_some() {
        let blocks = ctx.model.routes_to(uid).map(|r| ctx.model.route(r).block);
        let services = crate::controllers::ingress_nginx_backends(ctx.model, blocks);
        if let Some(first) = services.first() {
            f = f.note(format!(
                "a Lua balancer picks each request's peer among the Services `{}`; they share this pool: declare what each runs with `--backend {first}=PROFILE` (or `idle=5s`), or in upkeep.toml",
                services.join("`, `")
            ));
        }
    }
    let Some(route) = non_idempotent else {
        f.severity = Severity::Info;
        // Infos about unknown backends are many on big configs: one human
        // line per kind of backend (each finding stays in JSON).
        let group = format!(
            "backend idle timeout unknown for upstreams of {}: nginx keeps their idle connections for up to {t}; declare each backend (`# upkeep: backend NAME`, `--backend UPSTREAM=PROFILE`) or measure it with `upkeep probe`",
            backend_kind(ctx, uid)
        );
        return Some(
            f.note("its routes only take idempotent methods (limit_except), which nginx retries on a fresh connection")
                .help(declare)
                .grouped(group),
        );
    };
    match &timeout {
        PoolTimeout::NotNeeded => None,
        PoolTimeout::Unavailable { why } => {
            f.severity = Severity::Warning;
            let group = format!(
                "backend idle timeout unknown for upstreams of {} that take POST requests: nginx keeps their idle connections for up to {t}; declare each backend or measure it with `upkeep probe`",
                backend_kind(ctx, uid)
            );
            Some(f.grouped(group).related(
                ctx.model.route(route).pass.span(),
                "POST and other non-idempotent requests reach it here",
            )
            .note(why.clone())
            .help(format!("{declare}; then make sure the backend's idle timeout is longer than the gaps between requests, or upgrade nginx to {} or later", landmarks::UPSTREAM_KEEPALIVE_TIMEOUT)))
        }
        PoolTimeout::Set { ms, why } => {
            f.severity = Severity::Warning;
            let text = format_duration(*ms);
            // Two thousand upstreams give two thousand of these: one human
            // line per kind, each finding (and its fix) kept in JSON.
            let group = format!(
                "backend idle timeout unknown for upstreams of {} that take POST requests: nginx keeps their idle connections for up to {t}; `upkeep fix` sets `keepalive_timeout {text};` in each, or declare each backend (`# upkeep: backend NAME`, `--backend UPSTREAM=PROFILE`)",
                backend_kind(ctx, uid)
            );
            let mut f = f
                .grouped(group)
                .related(
                    ctx.model.route(route).pass.span(),
                    "POST and other non-idempotent requests reach it here",
                )
                .help(format!(
                    "set `keepalive_timeout {text};` in upstream `{}` ({why}), or {declare}",
                    up.name
                ));
            if ctx.available("keepalive_timeout", true) {
                if let Some(edit) = pool_safety::timeout_edit(ctx, uid, &timeout) {
                    f = f.with_fix(Fix {
                        applicability: Applicability::Safe,
                        description: format!(
                            "set the upstream keepalive_timeout of `{}` to {text} ({why})",
                            up.name
                        ),
                        edits: vec![edit],
                    });
                }
            }
            Some(ctx.with_version_note(f))
        }
    }
}
