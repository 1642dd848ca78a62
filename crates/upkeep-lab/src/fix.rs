//! The after phase's config: the before config with `upkeep fix` applied,
//! through the library exactly as the command does it (load, check, apply
//! the safe fixes, and the unsafe ones when the plan asks for them, re-check
//! until nothing is left), on the in-memory files the before phase ran.

use crate::error::LabError;
use crate::plan::{ConfigFile, LabPlan};
use crate::report::{AppliedFix, FixSummary};
use std::collections::BTreeMap;
use upkeep_config::{ConfigSet, LoadError, LoadOptions, MemoryLoader};
use upkeep_diag::Applicability;
use upkeep_fix::{FixOptions, Overlay, Round};
use upkeep_rules::{BackendFacts, CheckOptions, NginxVersion, VersionSource};

/// How a note of the fix summary starts when a finding kept its fix because
/// the fix changes behaviour and `--unsafe-fixes` was not given.
pub const UNSAFE_NOT_APPLIED: &str = "not applied without --unsafe-fixes:";

/// What the lab knows about the run that `upkeep check` should know too.
pub struct FixContext<'a> {
    pub plan: &'a LabPlan,
    /// "1.22.1", from `nginx -v`.
    pub nginx_version: &'a str,
}

/// The options `upkeep fix --nginx-version V --backend UPSTREAM=…` would
/// use: the version of the nginx that runs, and what each emulated backend
/// does (the lab knows it exactly).
pub fn check_options(ctx: &FixContext<'_>) -> Result<CheckOptions, LabError> {
    let version = NginxVersion::parse(ctx.nginx_version)
        .map_err(|e| LabError::Fix(format!("nginx version {}: {e}", ctx.nginx_version)))?;
    let mut backends: BTreeMap<String, BackendFacts> = BTreeMap::new();
    for slot in &ctx.plan.servers {
        let p = &slot.profile;
        let facts = BackendFacts {
            idle_timeout_ms: p.idle_timeout.map(|d| d.as_millis() as u64),
            max_requests: p.max_requests,
            announces_close: p.max_requests.map(|_| p.announce_close),
            max_connections: None,
            source: format!("lab backend {}", p.describe()),
        };
        // Several servers in one upstream: the shortest idle timeout and the
        // lowest request cap are the ones that bite.
        backends
            .entry(slot.upstream.clone())
            .and_modify(|f| {
                f.idle_timeout_ms = min_opt(f.idle_timeout_ms, facts.idle_timeout_ms);
                f.max_requests = min_opt(f.max_requests, facts.max_requests);
            })
            .or_insert(facts);
    }
    Ok(CheckOptions {
        nginx_version: Some(version),
        version_source: VersionSource::Detected,
        backends,
        front_name: ctx.plan.fix.front_name.clone(),
        front_idle_ms: ctx.plan.fix.front_idle_ms,
        ..CheckOptions::default()
    })
}

fn min_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Applies `upkeep fix` to the rendered before-config of a phase.
pub fn apply(
    ctx: &FixContext<'_>,
    rendered: Vec<ConfigFile>,
) -> Result<(Vec<ConfigFile>, FixSummary), LabError> {
    let opts = check_options(ctx)?;
    let load_opts = LoadOptions::default();
    let main = rendered[0].path.clone();
    let mut checker = |overlay: &Overlay| -> Result<Round<ConfigSet>, LoadError> {
        let mut memory = MemoryLoader::new();
        for f in &rendered {
            let text = overlay
                .get(&f.path)
                .map(<[u8]>::to_vec)
                .unwrap_or_else(|| f.text.clone().into_bytes());
            memory.insert(f.path.clone(), text);
        }
        let set = ConfigSet::load(&main, &memory, &load_opts)?;
        let report = upkeep_rules::check(&set, &opts);
        Ok(Round {
            sources: set,
            findings: report.findings,
        })
    };
    let fix_opts = FixOptions {
        unsafe_fixes: ctx.plan.fix.unsafe_fixes,
        ..FixOptions::default()
    };
    let run = upkeep_fix::fix(&mut checker, &fix_opts).map_err(|e| LabError::Fix(e.to_string()))?;

    let mut files = rendered.clone();
    let mut diff = String::new();
    for f in files.iter_mut() {
        if let Some(new) = run.overlay.get(&f.path) {
            let new = String::from_utf8(new.to_vec())
                .map_err(|_| LabError::Fix(format!("{}: fixed text is not UTF-8", f.path)))?;
            diff.push_str(&upkeep_fix::unified_diff(
                &f.path,
                f.text.as_bytes(),
                new.as_bytes(),
                false,
            ));
            f.text = new;
        }
    }
    let mut notes: Vec<String> = run
        .refused
        .iter()
        .map(|r| format!("not fixed: {} {}: {}", r.rule, r.description, r.reason))
        .collect();
    if !run.converged {
        notes.push(format!("fixes did not settle after {} rounds", run.rounds));
    }
    for f in &run.last.findings {
        match &f.fix {
            // Left only because unsafe fixes were not asked for: say so,
            // so that a second run with them can be chosen.
            Some(x) if x.applicability == Applicability::Unsafe && !fix_opts.unsafe_fixes => notes
                .push(format!(
                    "{UNSAFE_NOT_APPLIED} {} {}: {}",
                    f.rule, f.name, x.description
                )),
            _ => notes.push(format!(
                "left for a decision: {} {}: {}",
                f.rule, f.name, f.message
            )),
        }
    }
    Ok((
        files,
        FixSummary {
            source: if fix_opts.unsafe_fixes {
                "upkeep fix --unsafe-fixes".to_string()
            } else {
                "upkeep fix".to_string()
            },
            applied: run
                .applied
                .iter()
                .map(|a| AppliedFix {
                    rule: a.rule.to_string(),
                    description: a.description.clone(),
                })
                .collect(),
            notes,
            diff,
        },
    ))
}
