//! `upkeep --version`: the release, and which nginx versions' defaults the
//! verdicts are computed for, from the same landmarks the rules use.

use std::sync::LazyLock;
use upkeep_facts::{landmarks, NginxVersion};

/// Versions where nginx's connection-reuse defaults or directives changed,
/// oldest first.
pub const CHANGES: [NginxVersion; 8] = [
    landmarks::UPSTREAM_KEEPALIVE_MODULE,
    landmarks::NON_IDEMPOTENT_NOT_RETRIED,
    landmarks::UPSTREAM_KEEPALIVE_TIMEOUT,
    landmarks::SOCKET_KEEPALIVE,
    landmarks::KEEPALIVE_REQUESTS_1000,
    landmarks::KEEPALIVE_MIN_TIMEOUT,
    landmarks::PROXY_INTERNAL_CONNECTION,
    landmarks::KEEPALIVE_BY_DEFAULT,
];

pub static LONG_VERSION: LazyLock<String> = LazyLock::new(|| {
    let changes: Vec<String> = CHANGES.iter().map(ToString::to_string).collect();
    let newest = CHANGES[CHANGES.len() - 1];
    format!(
        "{version}\n\
         nginx defaults modelled: {oldest} to {newest} (changes at {changes}); \
         later versions are judged as {newest}\n\
         nginx version assumed when neither given nor detected: {assumed}",
        version = env!("CARGO_PKG_VERSION"),
        oldest = CHANGES[0],
        changes = changes.join(", "),
        assumed = NginxVersion::DEFAULT_ASSUMED,
    )
});
