//! `doctor --probe`: remote backends (not on this host, so no process to
//! read) are measured with upkeep-probe, within its bounds.

use super::{Discovery, Endpoint, Listener, Probed};
use upkeep_probe::{probe_all, Cancel, ProbeOptions, RequestDefaults, Target};

/// Probes the backends that are remote, or local but unknown or whose
/// setting lives in code (a Go program), when nginx speaks plain HTTP to
/// them.
pub fn probe_unknown(discovery: &mut Discovery, opts: &ProbeOptions, cancel: &Cancel) {
    let wanted: Vec<usize> = discovery
        .backends
        .iter()
        .enumerate()
        .filter(|(_, b)| {
            let unknown = match &b.listener {
                Listener::Remote => true,
                Listener::Process(f) => f.recognition.as_ref().is_none_or(|r| !r.feeds_rules),
                Listener::Docker { process, .. } => process
                    .as_ref()
                    .and_then(|f| f.recognition.as_ref())
                    .is_none_or(|r| !r.feeds_rules),
                Listener::NotFound(_) => false,
            };
            unknown && b.target.http && matches!(b.target.endpoint, Endpoint::Tcp(_))
        })
        .map(|(i, _)| i)
        .collect();
    let mut targets = Vec::new();
    let mut which = Vec::new();
    for i in wanted {
        let b = &discovery.backends[i];
        let spec = format!("http://{}/", b.target.endpoint);
        match Target::parse(&spec, &RequestDefaults::default()) {
            Ok(mut t) => {
                t.upstream = b.target.upstreams.first().cloned();
                targets.push(t);
                which.push(i);
            }
            Err(e) => discovery.problems.push(format!("probe {spec}: {e}")),
        }
    }
    if targets.is_empty() {
        return;
    }
    let reports = probe_all(&targets, opts, cancel, &|_| {});
    for (i, r) in which.into_iter().zip(reports) {
        let closes_every = r.closes_after_response == Some(true);
        discovery.backends[i].probed = Some(Probed {
            idle_timeout_ms: r.idle_timeout_ms,
            max_requests: if closes_every {
                Some(1)
            } else {
                r.max_requests.map(u64::from)
            },
            announces_close: r.announces_close.or(closes_every.then_some(true)),
            error: r.error.clone(),
            notes: r.notes.clone(),
        });
    }
}
