//! What a fix that creates or enables an idle pool must add so that the
//! pool is never worse than no pool: an upstream `keepalive_timeout` below
//! the backend's idle timeout (or below the shortest common default when the
//! backend is unknown), and, for FastCGI, a pool no larger than the
//! application's children can hold.
//!
//! Why: a pool that keeps idle connections longer than the backend does
//! (nginx's default is 60 s; Node.js closes after 5 s, Gunicorn after 2 s)
//! makes nginx send requests on connections the backend is closing, and
//! non-idempotent ones fail with 502 (facts/behaviors.md §a). A FastCGI
//! connection kept by nginx pins a PHP-FPM child while idle, so a pool of
//! more connections than there are children starves new requests until they
//! time out with 504.

use upkeep_diag::Edit;
use upkeep_facts::{
    format_duration, landmarks, shortest_backend_idle, PHP_FPM_SHIPPED_MAX_CHILDREN,
};
use upkeep_model::{BlockKind, Protocol, RouteId, UpstreamId, BALANCER_DIRECTIVES};

use crate::context::Ctx;
use crate::edits;

/// The upstream `keepalive_timeout` a pool needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PoolTimeout {
    /// Write `keepalive_timeout <ms>;`. `why` is one short clause for the
    /// fix's description and the comment next to the directive.
    Set { ms: u64, why: String },
    /// Nothing to write: the effective timeout is already short enough, or
    /// the backend never closes idle connections.
    NotNeeded,
    /// The target nginx has no upstream `keepalive_timeout` (before 1.15.3):
    /// the pool keeps idle connections until the backend closes them.
    Unavailable { why: String },
}

impl PoolTimeout {
    /// The directive to write, if any.
    pub fn directive(&self) -> Option<String> {
        match self {
            PoolTimeout::Set { ms, .. } => {
                Some(format!("keepalive_timeout {};", format_duration(*ms)))
            }
            _ => None,
        }
    }

    /// The comment written after the directive, on its own line of text.
    pub fn comment(&self) -> Option<String> {
        match self {
            PoolTimeout::Set { why, .. } => Some(format!("# {why}")),
            _ => None,
        }
    }
}

/// The conservative timeout for a backend nobody described: the suggested
/// value below the shortest default among the backend profiles.
pub fn conservative_timeout() -> (u64, String) {
    let (shortest, profile) = shortest_backend_idle();
    let ms = upkeep_facts::suggested_upstream_keepalive_timeout_ms(shortest);
    (
        ms,
        format!(
            "backend unknown: below {}'s {} default, the shortest common backend idle timeout",
            profile.display,
            upkeep_facts::describe_duration(shortest)
        ),
    )
}

/// The `keepalive_timeout` a pool to upstream `up` (or to a new upstream
/// block, `None`, whose backend nothing describes) needs on the target
/// version, given its current explicit timeout.
pub fn timeout_for(ctx: &Ctx, up: Option<UpstreamId>) -> PoolTimeout {
    let facts = up.and_then(|u| ctx.backend(u));
    let current = up.and_then(|u| {
        let upstream = ctx.model.upstream(u);
        upstream
            .keepalive_timeout
            .and(upstream.keepalive_timeout_ms(ctx.version))
    });
    let (target, why) = match facts.and_then(|f| f.idle_timeout_ms.map(|t| (t, f))) {
        Some((idle, f)) => (
            upkeep_facts::suggested_upstream_keepalive_timeout_ms(idle),
            format!(
                "below the backend's {} idle timeout ({})",
                upkeep_facts::describe_duration(idle),
                f.source
            ),
        ),
        // Facts without an idle timeout: a profile of a server that keeps
        // idle connections has no race to avoid; anything else (only a
        // request cap declared, say) leaves the idle timeout unknown.
        None if known_to_keep_idle_forever(ctx, up) => return PoolTimeout::NotNeeded,
        None => conservative_timeout(),
    };
    if ctx.version < landmarks::UPSTREAM_KEEPALIVE_TIMEOUT {
        return PoolTimeout::Unavailable {
            why: format!(
                "nginx {} has no upstream `keepalive_timeout` (added in {}): idle pooled connections stay open until the backend closes them",
                ctx.version,
                landmarks::UPSTREAM_KEEPALIVE_TIMEOUT
            ),
        };
    }
    match current {
        Some(t) if t <= target => PoolTimeout::NotNeeded,
        _ => PoolTimeout::Set { ms: target, why },
    }
}

/// Whether the backend's facts come from a profile of a server that keeps
/// idle connections open indefinitely (Go net/http, hyper, Vert.x…), so no
/// nginx-side timeout is needed to avoid the race.
pub fn known_to_keep_idle_forever(ctx: &Ctx, up: Option<UpstreamId>) -> bool {
    let Some(f) = up.and_then(|u| ctx.backend(u)) else {
        return false;
    };
    f.idle_timeout_ms.is_none()
        && upkeep_facts::backend_profiles().iter().any(|p| {
            p.idle_timeout_ms.is_none()
                && p.max_requests.is_none()
                && names_profile(&f.source, p.name)
        })
}

/// Whether `source` names profile `name` as a whole word ("profile go ",
/// "…, profile go; …", "…, profile go" at the end), not a longer name
/// that starts with it.
fn names_profile(source: &str, name: &str) -> bool {
    let needle = format!("profile {name}");
    source.match_indices(&needle).any(|(at, _)| {
        source[at + needle.len()..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '-' || c == '_' || c == '.'))
    })
}

/// Whether route `r` can carry requests nginx does not retry after a stale
/// connection (POST, PATCH, LOCK; behaviors.md §a). Any route can, unless
/// its location restricts methods with `limit_except` to idempotent ones and
/// denies the rest (`deny all;` inside). With `proxy_request_buffering off`
/// a streamed PUT is not retried either, so such routes always count.
pub fn carries_non_idempotent(ctx: &Ctx, r: RouteId) -> bool {
    let route = ctx.model.route(r);
    if ctx
        .model
        .value(route.block, "proxy_request_buffering")
        .is("off")
    {
        return true;
    }
    let location = ctx.model.block(route.block);
    for child in location.children() {
        let b = ctx.model.block(child);
        if b.kind != BlockKind::LimitExcept {
            continue;
        }
        let Some(d) = b.directive else { continue };
        let allowed_non_idempotent = d.args().iter().any(|a| {
            let m = a.text().to_ascii_uppercase();
            matches!(m.as_str(), "POST" | "PATCH" | "LOCK")
        });
        let denies_others = b
            .directives()
            .any(|d| d.name_is("deny") && d.args().first().is_some_and(|a| a.is("all")));
        if !allowed_non_idempotent && denies_others {
            return false;
        }
    }
    true
}

/// How many idle connections per worker a FastCGI pool may keep, and where
/// the numbers come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FastCgiCapacity {
    /// Idle connections per worker that leave at least one child free: each
    /// kept connection pins a child, so with `children - 1` pinned across
    /// all workers a new connection still finds a child.
    pub per_worker: u64,
    /// Whether both the children and the worker count were known (declared
    /// or from the config), not assumed.
    pub known: bool,
    /// "pm.max_children 3 (declared inline at …) over 2 worker processes".
    pub why: String,
}

/// The number of worker processes, when the config says it.
pub fn worker_processes(ctx: &Ctx) -> Option<u64> {
    if ctx.model.block(0).kind != BlockKind::Main {
        return None; // a snippet: the main file decides
    }
    match ctx.model.main.worker_processes {
        None => Some(1),
        Some(d) => match d.args().first().map(|a| a.text().into_owned()).as_deref() {
            Some("auto") => ctx.opts.cpus.map(u64::from),
            Some(n) => n.parse().ok(),
            None => None,
        },
    }
}

/// Whether FastCGI routes reach upstream `u`.
pub fn serves_fastcgi(ctx: &Ctx, u: UpstreamId) -> bool {
    ctx.model
        .routes_to(u)
        .any(|r| ctx.model.route(r).protocol == Protocol::FastCgi)
}

/// The largest FastCGI pool upstream `u` may keep per worker. Unknown
/// children default to PHP-FPM's shipped `pm.max_children` (5) and unknown
/// workers to one per core given, else 1 — both marked as not known.
pub fn fastcgi_capacity(ctx: &Ctx, u: UpstreamId) -> FastCgiCapacity {
    let declared = ctx
        .backend(u)
        .and_then(|f| f.max_connections.map(|c| (c, f.source.clone())));
    let workers = worker_processes(ctx);
    let (children, children_why) = match &declared {
        Some((c, source)) => (*c, format!("{c} children ({source})")),
        None => (
            PHP_FPM_SHIPPED_MAX_CHILDREN,
            format!("assuming PHP-FPM's shipped pm.max_children = {PHP_FPM_SHIPPED_MAX_CHILDREN}"),
        ),
    };
    let (w, workers_why) = match workers {
        Some(w) => (w.max(1), format!("{} worker process(es)", w.max(1))),
        None => (
            u64::from(ctx.opts.cpus.unwrap_or(1)).max(1),
            format!(
                "assuming {} worker process(es)",
                ctx.opts.cpus.unwrap_or(1).max(1)
            ),
        ),
    };
    FastCgiCapacity {
        per_worker: children.saturating_sub(1) / w,
        known: declared.is_some() && workers.is_some(),
        why: format!("{children_why} over {workers_why}"),
    }
}

/// Adds `comment` after `directive` in an inserted text when the directive
/// got a line of its own (a comment on a shared line would swallow the rest
/// of it, `}` included).
pub fn attach_comment(mut edit: Edit, directive: &str, comment: &str) -> Edit {
    for eol in ["\r\n", "\n"] {
        let line = format!("{directive}{eol}");
        if edit.content.contains(&line) {
            edit.content = edit
                .content
                .replacen(&line, &format!("{directive}  {comment}{eol}"), 1);
            return edit;
        }
    }
    edit
}

/// The edit that gives upstream `u` the timeout `t`: its explicit
/// `keepalive_timeout` changed, or a new line after its pool settings.
pub fn timeout_edit(ctx: &Ctx, u: UpstreamId, t: &PoolTimeout) -> Option<Edit> {
    let PoolTimeout::Set { ms, .. } = t else {
        return None;
    };
    let up = ctx.model.upstream(u);
    if let Some(d) = up.keepalive_timeout {
        return Some(edits::replace_args(d, &format_duration(*ms)));
    }
    let directive = t.directive()?;
    let edit = edits::insert_in_block(ctx, up.block, &directive, |d| {
        d.name_is("keepalive")
            || d.name_is("server")
            || BALANCER_DIRECTIVES.iter().any(|b| d.name_is(b))
    })?;
    Some(attach_comment(edit, &directive, &t.comment()?))
}

/// One clause for a fix's description: what the timeout part does.
pub fn describe_timeout(t: &PoolTimeout) -> String {
    match t {
        PoolTimeout::Set { ms, why } => {
            format!(
                " with `keepalive_timeout {};` ({why})",
                format_duration(*ms)
            )
        }
        PoolTimeout::NotNeeded => String::new(),
        PoolTimeout::Unavailable { why } => format!(" ({why})"),
    }
}
