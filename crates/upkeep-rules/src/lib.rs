//! upkeep's rules: every keep-alive misconfiguration of RULES.md, found on
//! the effective configuration ([`upkeep_model::Model`]) and reported as
//! [`upkeep_diag::Finding`]s with fixes as byte-range edits.
//!
//! One file per rule under `rules/`, each with its metadata and documentation
//! ([`RuleInfo`]); [`rules()`] is the one registry. No I/O: builds for
//! `wasm32-unknown-unknown`.

mod backends;
mod context;
pub mod controllers;
pub mod edits;
pub mod on_target;
mod options;
pub mod pool_safety;
mod registry;
mod report;
mod rules;
pub mod settings;
mod suppress;

use upkeep_diag::{Finding, Severity};
use upkeep_model::{ConfigSource, Model};

pub use context::Ctx;
pub use options::{CheckOptions, VersionSource};
pub use registry::{rule, rules, RuleInfo};
pub use report::CheckReport;
pub use rules::r001::{ASSUMPTION_PREFIX as R001_ASSUMPTION_PREFIX, INHERITED_SOFT_NOFILE};
pub use upkeep_facts::{BackendFacts, Flavor, NginxVersion, Target};
/// Values nginx refuses: checked before the rules, reported as load errors.
pub use upkeep_model::{check_values, first_refused_value, RefusedValue};

/// Runs every enabled rule over `config` and returns the findings, sorted by
/// file and position, with suppressions and severity overrides applied.
pub fn check<C: ConfigSource>(config: &C, opts: &CheckOptions) -> CheckReport {
    let mut target = opts.target();
    let mut model = Model::build_for(config, target);
    // A configuration a Kubernetes controller rendered runs on the nginx of
    // the controller's image: unless a version was given, that is the one
    // to judge it for (this host's nginx, if any, is not the one running it).
    let recognized = controllers::recognize(&model);
    let controller_opts;
    let mut opts = opts;
    if let Some(r) = &recognized {
        let wanted = upkeep_facts::Target::nginx(r.release.nginx);
        if opts.version_source != VersionSource::Given && wanted != target {
            target = wanted;
            model = Model::build_for(config, target);
            let mut o = opts.clone();
            o.flavor = target.flavor;
            o.nginx_version = Some(target.version);
            o.version_source = VersionSource::Controller;
            controller_opts = o;
            opts = &controller_opts;
        }
    }
    let ctx = Ctx::new(&model, opts);
    // A value nginx refuses (`keepalive abc;`) stops `nginx -t`: the
    // configuration never runs, and no verdict may rest on what the value
    // would have been. Callers report it as a load error
    // (upkeep_model::check_values); the rules find nothing.
    let refused = upkeep_model::first_refused_value(config).is_some();

    let enabled: Vec<registry::CheckFn> = registry::CHECKS
        .iter()
        .filter(|_| !refused)
        .filter(|(info, _)| opts.is_enabled(info.id, info.name))
        .map(|(_, check)| *check)
        .collect();
    let mut findings = run_checks(&ctx, &enabled);

    // Suppressions.
    let mut problems = Vec::new();
    let mut suppressions = suppress::collect(&ctx, &mut problems);
    findings.retain(|f| {
        let mut keep = true;
        for s in suppressions.iter_mut() {
            if suppress::covers(s, f) {
                s.used = true;
                keep = false;
            }
        }
        keep
    });
    let x001 = &rules::x001::INFO;
    if opts.is_enabled(x001.id, x001.name) {
        for s in suppressions.iter().filter(|s| !s.used) {
            // An ignore for a rule that did not run is not "unused".
            let ran = s
                .rules
                .iter()
                .any(|id| rule(id).is_some_and(|r| opts.is_enabled(r.id, r.name)));
            if ran {
                findings.push(rules::x001::unused(&ctx, s));
            }
        }
    }
    let x002 = &rules::x002::INFO;
    if opts.is_enabled(x002.id, x002.name) {
        for p in &problems {
            findings.push(rules::x002::problem(p));
        }
    }

    for f in findings.iter_mut() {
        if let Some(sev) = opts.severity_overrides.get(f.rule) {
            f.severity = *sev;
        }
    }

    let mut controller_notes = Vec::new();
    if let Some(r) = &recognized {
        controller_notes = controllers::attribute(&model, r, &mut findings);
        if opts.version_source == VersionSource::Controller {
            controller_notes.push(format!(
                "assuming {target}, the version {} ships ({}); pass --nginx-version if the image runs another",
                r.name(),
                r.release.source
            ));
        }
    }

    if refused {
        findings.clear();
    }
    dedupe(&ctx, &mut findings);
    sort_by_place(&mut findings);

    let mut assumptions = Vec::new();
    if opts.version_source == VersionSource::Assumed {
        assumptions.push(format!(
            "assuming {target} (default; {})",
            opts.assumed_version_reason()
        ));
    }
    assumptions.extend(controller_notes);
    assumptions.extend(snippet_assumptions(&model));
    assumptions.extend(ctx.take_assumptions());
    CheckReport {
        findings,
        flavor: target.flavor,
        nginx_version: target.version,
        version_source: opts.version_source,
        assumptions,
        controller: recognized,
    }
}

/// What checking a snippet (a conf.d file read without its nginx.conf)
/// takes for granted, whatever the rules find.
fn snippet_assumptions(model: &Model) -> Vec<String> {
    use upkeep_model::BlockKind;
    let kind = model.block(0).kind;
    if kind == BlockKind::Main {
        return Vec::new();
    }
    let context = format!("{kind:?}").to_ascii_lowercase();
    vec![
        format!(
            "snippet read in the {context} context without the nginx.conf that includes it: settings it would inherit from enclosing levels are taken to be nginx's defaults"
        ),
        "snippet: worker_processes, worker_connections, worker_rlimit_nofile and worker_shutdown_timeout live in the main context, which is not here: R001, R002, R003 and U009 were not checked".to_string(),
    ]
}

/// Below this many blocks a config is checked on the calling thread alone:
/// starting threads would cost more than they save.
const PARALLEL_ABOVE_BLOCKS: usize = 2_000;

/// Runs `checks` and returns their findings in registry order. On a large
/// config the rules run on all cores: each is a pure function of the shared,
/// read-only model.
fn run_checks(ctx: &Ctx, checks: &[registry::CheckFn]) -> Vec<Finding> {
    let parallel = ctx.model.blocks.len() > PARALLEL_ABOVE_BLOCKS;
    let mut per_rule = upkeep_diag::parallel::map_ordered(checks, parallel, |check| check(ctx));
    // A large config has tens of thousands of findings, most often from one
    // rule: that rule's list becomes the whole list, and the others' are
    // moved around it in registry order, instead of all of them being
    // copied into a new list while the old ones still stand.
    let total: usize = per_rule.iter().map(Vec::len).sum();
    let Some(largest) = (0..per_rule.len()).max_by_key(|&i| per_rule[i].len()) else {
        return Vec::new();
    };
    let mut all = std::mem::take(&mut per_rule[largest]);
    all.reserve_exact(total - all.len());
    let before: Vec<Finding> = per_rule.drain(..largest).flatten().collect();
    all.splice(0..0, before);
    all.extend(per_rule.into_iter().flatten());
    all
}

/// Drops repeated findings (a snippet included in several places yields the
/// same finding at the same place) and keeps a fix shared by several
/// findings on the first one only, so applying all fixes edits once.
fn dedupe(ctx: &Ctx, findings: &mut Vec<Finding>) {
    // Keyed by a hash of the rule, the place and the message, not a copy
    // of them (tens of thousands of findings on a large config). A finding
    // is dropped only when all three equal those of the one first seen
    // under its key; on a 64-bit hash collision both are kept.
    let mut seen: std::collections::HashMap<u64, usize> =
        std::collections::HashMap::with_capacity(findings.len());
    let mut keep = vec![true; findings.len()];
    for (i, f) in findings.iter().enumerate() {
        let key = hash_of(&(f.rule, f.primary, &f.message));
        match seen.entry(key) {
            std::collections::hash_map::Entry::Occupied(first) => {
                let first = &findings[*first.get()];
                keep[i] = first.rule != f.rule
                    || first.primary != f.primary
                    || first.message != f.message;
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(i);
            }
        }
    }
    drop(seen);
    let mut keep = keep.into_iter();
    findings.retain(|_| keep.next().unwrap_or(true));
    // The same way for fixes: keyed by a hash of the edits, and a fix is
    // dropped only when its edits equal those of the first one seen under
    // that key (which keeps its fix).
    let mut fixes_seen: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    for i in 0..findings.len() {
        let Some(fix) = &findings[i].fix else {
            continue;
        };
        let first = *fixes_seen.entry(hash_of(&fix.edits)).or_insert(i);
        let same = first != i
            && findings[first]
                .fix
                .as_ref()
                .is_some_and(|g| g.edits == fix.edits);
        if same {
            let here = findings[first]
                .primary
                .map(|p| ctx.place(p))
                .unwrap_or_default();
            let f = &mut findings[i];
            f.fix = None;
            f.notes
                .push(format!("the fix offered at {here} covers this too"));
        }
    }
}

/// Sorts findings by place (file, start, end), then rule, keeping the order
/// they came in among equals. A stable sort of the findings themselves
/// takes a buffer of half of them (megabytes on a large configuration);
/// sorting their keys and then moving each finding once into its place
/// takes a few bytes per finding.
fn sort_by_place(findings: &mut [Finding]) {
    let mut order: Vec<(u32, u32, u32, &'static str, usize)> = findings
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let p = f.primary.unwrap_or_default();
            (p.file.0, p.start, p.end, f.rule, i)
        })
        .collect();
    // Unstable is enough: the index makes every key distinct.
    order.sort_unstable();
    // `from[k]`: the index of the finding that belongs at `k`. Each cycle
    // of the permutation is followed once, swapping along it.
    let mut from: Vec<usize> = order.into_iter().map(|(.., i)| i).collect();
    for start in 0..from.len() {
        let mut k = start;
        while from[k] != start {
            let next = from[k];
            findings.swap(k, next);
            from[k] = k;
            k = next;
        }
        from[k] = k;
    }
}

/// A hash of `value` that is the same for equal values within one run.
fn hash_of<T: std::hash::Hash + ?Sized>(value: &T) -> u64 {
    use std::hash::BuildHasher;
    std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
        .hash_one(value)
}

/// The severity a rule's findings get after overrides.
pub fn effective_severity(opts: &CheckOptions, info: &RuleInfo) -> Severity {
    opts.severity_overrides
        .get(info.id)
        .copied()
        .unwrap_or(info.severity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use upkeep_syntax::{FileId, Span};

    /// Findings at a few places with repeated places and rules, tagged in
    /// their message with the order they came in.
    fn findings(places: &[(u32, u32, &'static str)]) -> Vec<Finding> {
        places
            .iter()
            .enumerate()
            .map(|(i, &(file, start, rule))| {
                let mut f = Finding::new(rule, "t", Severity::Info, format!("{i}"));
                if file > 0 {
                    f = f.at(Span::new(FileId(file - 1), start, start + 1));
                }
                f
            })
            .collect()
    }

    #[test]
    fn sorting_by_place_keeps_the_order_of_equals_as_a_stable_sort_does() {
        // A fixed pseudo-random sequence with many ties (3 files x 5
        // places x 3 rules, 400 findings, some with no place).
        let mut state: u32 = 7;
        let mut next = |n: u32| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (state >> 16) % n
        };
        let rules = ["U001", "U003", "U007"];
        let places: Vec<(u32, u32, &'static str)> = (0..400)
            .map(|_| (next(4), next(5) * 10, rules[next(3) as usize]))
            .collect();
        let mut expected = findings(&places);
        expected.sort_by_key(|f| {
            let p = f.primary.unwrap_or_default();
            (p.file, p.start, p.end, f.rule)
        });
        let mut sorted = findings(&places);
        sort_by_place(&mut sorted);
        let messages = |v: &[Finding]| v.iter().map(|f| f.message.clone()).collect::<Vec<_>>();
        assert_eq!(messages(&sorted), messages(&expected));
        let mut empty: Vec<Finding> = Vec::new();
        sort_by_place(&mut empty);
        assert!(empty.is_empty());
    }
}
