//! Backend facts per upstream: inline `# upkeep: backend …` comments, then
//! upkeep.toml / `--backend` by upstream name, then probe results by server
//! address. Later sources override earlier ones field by field.

use upkeep_facts::BackendFacts;
use upkeep_syntax::Comment;

use crate::context::{CommentProblem, Ctx};

/// The text after `# upkeep:` in a comment, if it is one.
pub fn upkeep_directive(text: &str) -> Option<&str> {
    let body = text.strip_prefix('#')?.trim_start();
    let rest = body.strip_prefix("upkeep:")?;
    Some(rest.trim())
}

pub(crate) fn resolve(ctx: &mut Ctx) {
    let model = ctx.model;
    let mut out = Vec::with_capacity(model.upstreams.len());
    for (uid, up) in model.upstreams.iter().enumerate() {
        let mut facts: Option<BackendFacts> = None;
        for comment in &up.comments {
            if let Some(found) = inline_facts(ctx, comment) {
                facts = Some(found);
            }
        }
        if let Some(given) = ctx.opts.backends.get(&up.name) {
            facts = Some(merge(facts, given));
        }
        // A Lua balancer (ingress-nginx's upstream_balancer) sends each
        // route to the Service its location names in `$proxy_upstream_name`;
        // they all share the block's one pool, so the most constraining
        // declared Service decides.
        if up.lua_balancer.is_some() {
            let blocks = model.routes_to(uid).map(|r| model.route(r).block);
            for service in crate::controllers::ingress_nginx_backends(model, blocks) {
                if let Some(given) = ctx.opts.backends.get(&service) {
                    let mut given = given.clone();
                    given.source = format!("Service backend `{service}`: {}", given.source);
                    facts = Some(merge_min(facts, &given));
                }
            }
        }
        // Probe results are keyed by server address; take the most
        // constraining values over the upstream's servers.
        for server in &up.servers {
            if let Some(probed) = ctx.opts.backends.get(&*server.address) {
                facts = Some(merge_min(facts, probed));
            }
        }
        out.push(facts);
    }
    ctx.backends = out;
}

fn inline_facts(ctx: &mut Ctx, comment: &Comment) -> Option<BackendFacts> {
    let text = ctx.text(comment.span);
    let rest = upkeep_directive(&text)?;
    let spec = rest.strip_prefix("backend")?;
    if !spec.is_empty() && !spec.starts_with(char::is_whitespace) {
        return None;
    }
    match crate::settings::parse_backend_facts(spec.trim()) {
        Ok(mut facts) => {
            let place = ctx.place(comment.span);
            facts.source = if facts.source.is_empty() {
                format!("declared inline at {place}")
            } else {
                format!("declared inline at {place}: {}", facts.source)
            };
            Some(facts)
        }
        Err(message) => {
            ctx.comment_problems.push(CommentProblem {
                span: comment.span,
                message,
            });
            None
        }
    }
}

/// `over` wins field by field.
fn merge(base: Option<BackendFacts>, over: &BackendFacts) -> BackendFacts {
    let Some(base) = base else {
        return over.clone();
    };
    BackendFacts {
        idle_timeout_ms: over.idle_timeout_ms.or(base.idle_timeout_ms),
        max_requests: over.max_requests.or(base.max_requests),
        announces_close: over.announces_close.or(base.announces_close),
        max_connections: over.max_connections.or(base.max_connections),
        source: over.source.clone(),
    }
}

/// Probe results over several servers: the shortest idle timeout and the
/// smallest request cap decide.
fn merge_min(base: Option<BackendFacts>, probed: &BackendFacts) -> BackendFacts {
    let Some(base) = base else {
        return probed.clone();
    };
    let min = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    };
    BackendFacts {
        idle_timeout_ms: min(probed.idle_timeout_ms, base.idle_timeout_ms),
        max_requests: min(probed.max_requests, base.max_requests),
        announces_close: match (probed.announces_close, base.announces_close) {
            (Some(a), Some(b)) => Some(a && b),
            (a, b) => a.or(b),
        },
        max_connections: min(probed.max_connections, base.max_connections),
        source: probed.source.clone(),
    }
}
