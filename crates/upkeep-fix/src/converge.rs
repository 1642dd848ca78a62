//! The fix loop: check → apply the fixes → reload the edited text from an
//! in-memory overlay → check again, until no fixable finding is left.
//!
//! A fix can make another rule fire (moving `keepalive` after the balancer can
//! reveal that the upstream has no `Connection ""`), and overlapping fixes are
//! deferred to the next round, so one pass is not enough. The loop refuses any
//! fix after which the config no longer loads, and any fix whose finding is
//! still there after it was applied (a second application would only repeat
//! the text), which also bounds the loop.

use crate::apply::{apply, Outcome};
use std::collections::{BTreeMap, BTreeSet};
use upkeep_diag::{Applicability, Edit, Finding, Fix};
use upkeep_syntax::SourceMap;

/// Texts the loop has changed, by file path as the loader names files. The
/// loader behind a [`Checker`] must read a path from here when it is present,
/// and from its usual place otherwise.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overlay {
    files: BTreeMap<String, Vec<u8>>,
}

impl Overlay {
    pub fn get(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(Vec::as_slice)
    }

    pub fn insert(&mut self, path: impl Into<String>, text: Vec<u8>) {
        self.files.insert(path.into(), text);
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.files.iter().map(|(p, t)| (p.as_str(), t.as_slice()))
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// One load-and-check of the configuration.
pub struct Round<S> {
    /// The loaded files; every edit's `FileId` resolves here.
    pub sources: S,
    pub findings: Vec<Finding>,
}

/// Loads the configuration (seeing `overlay` over the real files) and checks it.
pub trait Checker {
    type Sources: SourceMap;
    type Error;
    fn check(&mut self, overlay: &Overlay) -> Result<Round<Self::Sources>, Self::Error>;
}

impl<S: SourceMap, E, F: FnMut(&Overlay) -> Result<Round<S>, E>> Checker for F {
    type Sources = S;
    type Error = E;
    fn check(&mut self, overlay: &Overlay) -> Result<Round<S>, E> {
        self(overlay)
    }
}

#[derive(Clone, Debug)]
pub struct FixOptions {
    /// Only fixes of these rules (IDs or names); all when `None`.
    pub rules: Option<Vec<String>>,
    /// Also apply fixes marked [`Applicability::Unsafe`].
    pub unsafe_fixes: bool,
    /// Upper bound on check-and-apply rounds.
    pub max_rounds: usize,
}

impl Default for FixOptions {
    fn default() -> Self {
        FixOptions {
            rules: None,
            unsafe_fixes: false,
            max_rounds: 8,
        }
    }
}

/// A fix that was applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedFix {
    pub rule: &'static str,
    pub name: &'static str,
    pub description: String,
    /// Paths of the files it edited.
    pub files: Vec<String>,
    /// 1-based round in which it was applied.
    pub round: usize,
}

/// A fix that was not applied, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefusedFix {
    pub rule: &'static str,
    pub description: String,
    pub reason: String,
}

/// One file's change in one round: the text before, the edits, the text
/// after. Kept so that tests (and curious users) can verify that nothing
/// outside the edits changed.
#[derive(Clone, Debug)]
pub struct FileChange {
    pub round: usize,
    pub path: String,
    pub before: Vec<u8>,
    /// Sorted by position, in `before`'s coordinates.
    pub edits: Vec<Edit>,
    pub after: Vec<u8>,
}

/// What a fix run did. The files are not written: see [`crate::write`].
pub struct FixRun<S> {
    /// Text of each changed file before the first fix, by path.
    pub originals: BTreeMap<String, Vec<u8>>,
    /// Final text of each changed file, by path.
    pub overlay: Overlay,
    pub applied: Vec<AppliedFix>,
    pub refused: Vec<RefusedFix>,
    /// Findings of the first check.
    pub initial_findings: Vec<Finding>,
    /// The check of the final text.
    pub last: Round<S>,
    pub rounds: usize,
    /// No selected fixable finding is left (apart from refused fixes).
    pub converged: bool,
    /// Every file change of every round, in order.
    pub history: Vec<FileChange>,
}

impl<S> FixRun<S> {
    /// `(path, before, after)` for every file whose text changed.
    pub fn changes(&self) -> impl Iterator<Item = (&str, &[u8], &[u8])> {
        self.overlay.iter().filter_map(|(path, new)| {
            let old = self.originals.get(path)?;
            (old.as_slice() != new).then_some((path, old.as_slice(), new))
        })
    }
}

/// Runs the loop. An error from the first check (the input itself does not
/// load) is returned as is; errors after a fix mean the fix broke the config,
/// and that fix is refused.
pub fn fix<C: Checker>(
    checker: &mut C,
    options: &FixOptions,
) -> Result<FixRun<C::Sources>, C::Error> {
    let mut overlay = Overlay::default();
    let mut round = checker.check(&overlay)?;
    let initial_findings = round.findings.clone();
    let mut originals: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut applied: Vec<AppliedFix> = Vec::new();
    let mut refused: Vec<RefusedFix> = Vec::new();
    let mut refused_keys: BTreeSet<FixKey> = BTreeSet::new();
    let mut applied_keys: BTreeSet<FixKey> = BTreeSet::new();
    let mut rounds = 0;
    let mut history: Vec<FileChange> = Vec::new();

    let converged = loop {
        let mut candidates: Vec<&Finding> = round
            .findings
            .iter()
            .filter(|f| f.fix.as_ref().is_some_and(|fix| selected(f, fix, options)))
            .filter(|f| !refused_keys.contains(&FixKey::of(f)))
            .collect();
        // A fix whose finding survived its own application would only repeat
        // its text: refuse it instead of applying it again.
        for f in candidates
            .iter()
            .filter(|f| applied_keys.contains(&FixKey::of(f)))
        {
            refused_keys.insert(FixKey::of(f));
            refused.push(RefusedFix {
                rule: f.rule,
                description: fix_of(f).description.clone(),
                reason: "the finding is still reported after its fix was applied".into(),
            });
        }
        candidates.retain(|f| !refused_keys.contains(&FixKey::of(f)));
        if candidates.is_empty() {
            break true;
        }
        if rounds == options.max_rounds {
            break false;
        }
        rounds += 1;
        // Deterministic merge order: by rule, then by place.
        candidates.sort_by_key(|f| (f.rule, f.primary.map(|s| (s.file, s.start))));

        let mut batch: Vec<&Finding> = candidates.clone();
        let next = loop {
            let fixes: Vec<&Fix> = batch.iter().map(|f| fix_of(f)).collect();
            let result = apply(&round.sources, &fixes);
            for (f, outcome) in batch.iter().zip(&result.outcomes) {
                if let Outcome::Invalid(why) = outcome {
                    if refused_keys.insert(FixKey::of(f)) {
                        refused.push(RefusedFix {
                            rule: f.rule,
                            description: fix_of(f).description.clone(),
                            reason: why.clone(),
                        });
                    }
                }
            }
            if result.changed.is_empty() {
                break None;
            }
            let mut candidate = overlay.clone();
            for (file, text) in &result.changed {
                let src = round.sources.source(*file);
                originals
                    .entry(src.path.clone())
                    .or_insert_with(|| src.text.clone());
                candidate.insert(src.path.clone(), text.clone());
            }
            match checker.check(&candidate) {
                Ok(next_round) => {
                    for (file, after) in &result.changed {
                        let src = round.sources.source(*file);
                        history.push(FileChange {
                            round: rounds,
                            path: src.path.clone(),
                            before: src.text.clone(),
                            edits: result.edits[file].clone(),
                            after: after.clone(),
                        });
                    }
                    for (f, outcome) in batch.iter().zip(&result.outcomes) {
                        if outcome.is_applied() {
                            applied_keys.insert(FixKey::of(f));
                            applied.push(AppliedFix {
                                rule: f.rule,
                                name: f.name,
                                description: fix_of(f).description.clone(),
                                files: edited_paths(&round.sources, fix_of(f)),
                                round: rounds,
                            });
                        }
                    }
                    break Some((candidate, next_round));
                }
                Err(_) => {
                    // Find the fixes the config still loads with, one at a
                    // time, and refuse the others.
                    batch = loadable_subset(
                        checker,
                        &round.sources,
                        &overlay,
                        &batch,
                        &mut refused,
                        &mut refused_keys,
                    );
                    if batch.is_empty() {
                        break None;
                    }
                }
            }
        };
        match next {
            Some((candidate, next_round)) => {
                overlay = candidate;
                round = next_round;
            }
            // Nothing changed the text: the remaining fixes are refused,
            // overlapping or no-ops.
            None => {
                break refused_keys.is_superset(&candidates.iter().map(|f| FixKey::of(f)).collect())
            }
        }
    };

    Ok(FixRun {
        originals,
        overlay,
        applied,
        refused,
        initial_findings,
        last: round,
        rounds,
        converged,
        history,
    })
}

/// Grows a set of fixes one at a time, keeping each fix only if the config
/// still loads with it.
fn loadable_subset<'f, C: Checker>(
    checker: &mut C,
    sources: &C::Sources,
    overlay: &Overlay,
    batch: &[&'f Finding],
    refused: &mut Vec<RefusedFix>,
    refused_keys: &mut BTreeSet<FixKey>,
) -> Vec<&'f Finding> {
    let mut kept: Vec<&Finding> = Vec::new();
    for f in batch {
        let mut trial = kept.clone();
        trial.push(f);
        let fixes: Vec<&Fix> = trial.iter().map(|f| fix_of(f)).collect();
        let result = apply(sources, &fixes);
        let mut candidate = overlay.clone();
        for (file, text) in &result.changed {
            candidate.insert(sources.source(*file).path.clone(), text.clone());
        }
        if checker.check(&candidate).is_ok() {
            kept.push(f);
        } else {
            refused_keys.insert(FixKey::of(f));
            refused.push(RefusedFix {
                rule: f.rule,
                description: fix_of(f).description.clone(),
                reason: "the configuration no longer loads after this fix".into(),
            });
        }
    }
    kept
}

fn selected(f: &Finding, fix: &Fix, options: &FixOptions) -> bool {
    if fix.applicability == Applicability::Unsafe && !options.unsafe_fixes {
        return false;
    }
    match &options.rules {
        None => true,
        Some(rules) => rules
            .iter()
            .any(|r| r.eq_ignore_ascii_case(f.rule) || r == f.name),
    }
}

fn fix_of(f: &Finding) -> &Fix {
    f.fix
        .as_ref()
        .expect("only findings with a fix are candidates")
}

fn edited_paths(sources: &dyn SourceMap, fix: &Fix) -> Vec<String> {
    let mut paths: Vec<String> = fix
        .edits
        .iter()
        .map(|e| sources.source(e.span.file).path.clone())
        .collect();
    paths.dedup();
    paths
}

/// Identifies "the same fix" across rounds, when positions have moved.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct FixKey {
    rule: &'static str,
    message: String,
    description: String,
    contents: Vec<String>,
}

impl FixKey {
    fn of(f: &Finding) -> FixKey {
        let fix = fix_of(f);
        FixKey {
            rule: f.rule,
            message: f.message.clone(),
            description: fix.description.clone(),
            contents: fix.edits.iter().map(|e| e.content.clone()).collect(),
        }
    }
}
