//! The fix loop: check → apply the fixes → reload the edited text from an
//! in-memory overlay → check again, until no fixable finding is left.
//!
//! A fix can make another rule fire (moving `keepalive` after the balancer can
//! reveal that the upstream has no `Connection ""`), and overlapping fixes are
//! deferred to the next round, so one pass is not enough. The loop refuses any
//! fix after which the config no longer loads, and any fix whose finding is
//! still there after it was applied (a second application would only repeat
//! the text), which also bounds the loop.
//!
//! A configuration can be hundreds of megabytes, so each text is held once
//! and shared ([`SharedText`]) between the overlay, the candidate and the
//! loaded files, instead of being copied into each of them; and while a
//! candidate is checked, the texts it was made from are kept only as the
//! edits that undo it ([`crate::lineage`]).

use crate::apply::{apply, Applied, Outcome};
use crate::lineage::{Lineage, Step};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use upkeep_diag::{Applicability, Edit, Finding, Fix};
use upkeep_syntax::{FileId, SourceMap};

pub use upkeep_syntax::SharedText;

/// Texts the loop has changed, by file path as the loader names files. The
/// loader behind a [`Checker`] must read a path from here when it is present,
/// and from its usual place otherwise.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overlay {
    files: BTreeMap<String, SharedText>,
}

impl Overlay {
    pub fn get(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(|t| t.as_slice())
    }

    pub fn insert(&mut self, path: impl Into<String>, text: Vec<u8>) {
        self.files.insert(path.into(), Arc::new(text));
    }

    /// The text of `path`, shared: a loader hands it to the file it loads
    /// instead of a copy.
    pub fn get_shared(&self, path: &str) -> Option<&SharedText> {
        self.files.get(path)
    }

    fn insert_shared(&mut self, path: String, text: SharedText) {
        self.files.insert(path, text);
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
/// after. Rebuilt on request ([`FixRun::history`]) so that tests (and
/// curious users) can verify that nothing outside the edits changed.
#[derive(Clone, Debug)]
pub struct FileChange {
    pub round: usize,
    pub path: String,
    pub before: SharedText,
    /// Sorted by position, in `before`'s coordinates.
    pub edits: Vec<Edit>,
    pub after: SharedText,
}

/// What a fix run did. The files are not written: see [`crate::write`].
pub struct FixRun<S> {
    /// Text of each changed file before the first fix, by path.
    pub originals: BTreeMap<String, SharedText>,
    /// Final text of each changed file, by path.
    pub overlay: Overlay,
    pub applied: Vec<AppliedFix>,
    pub refused: Vec<RefusedFix>,
    /// The check of the final text.
    pub last: Round<S>,
    pub rounds: usize,
    /// No selected fixable finding is left (apart from refused fixes).
    pub converged: bool,
    /// How each changed file got from its original text to its final one.
    lineages: BTreeMap<String, Lineage>,
}

impl<S> FixRun<S> {
    /// `(path, before, after)` for every file whose text changed.
    pub fn changes(&self) -> impl Iterator<Item = (&str, &[u8], &[u8])> {
        self.shared_changes()
            .map(|(path, old, new)| (path, old.as_slice(), new.as_slice()))
    }

    /// [`FixRun::changes`] with the texts shared, for a caller that keeps
    /// them (`--write` plans its transaction with them, without copies).
    pub fn shared_changes(&self) -> impl Iterator<Item = (&str, &SharedText, &SharedText)> {
        self.overlay.files.iter().filter_map(|(path, new)| {
            let old = self.originals.get(path)?;
            (old != new).then_some((path.as_str(), old, new))
        })
    }

    /// Every file change of every round, by round, each file's texts
    /// rebuilt from its final one. An error names a file whose rebuilt
    /// original is not the text that was read (which [`fix`] has already
    /// ruled out).
    pub fn history(&self) -> Result<Vec<FileChange>, String> {
        let mut history = Vec::new();
        for (path, lineage) in &self.lineages {
            let newest = self
                .overlay
                .get_shared(path)
                .ok_or_else(|| format!("{path}: changed, but its final text is not kept"))?;
            let before = lineage
                .texts_before(newest)
                .ok_or_else(|| format!("{path}: its original text could not be rebuilt"))?;
            let texts: Vec<SharedText> = before
                .into_iter()
                .map(Arc::new)
                .chain([Arc::clone(newest)])
                .collect();
            for (i, step) in lineage.steps.iter().enumerate() {
                history.push(FileChange {
                    round: step.round,
                    path: path.clone(),
                    before: Arc::clone(&texts[i]),
                    edits: step.edits.clone(),
                    after: Arc::clone(&texts[i + 1]),
                });
            }
        }
        history.sort_by_key(|c| c.round);
        Ok(history)
    }
}

/// Runs the loop. An error from the first check (the input itself does not
/// load) is returned as is; errors after a fix mean the fix broke the config,
/// and that fix is refused.
///
/// While a candidate text is checked, the texts it was made from are not
/// held: only the edits that undo it are (see [`crate::lineage`]), so the
/// run's peak is one check of one copy of the configuration.
pub fn fix<C: Checker>(
    checker: &mut C,
    options: &FixOptions,
) -> Result<FixRun<C::Sources>, C::Error> {
    let mut overlay = Overlay::default();
    let mut round = checker.check(&overlay)?;
    let mut lineages: BTreeMap<String, Lineage> = BTreeMap::new();
    let mut applied: Vec<AppliedFix> = Vec::new();
    let mut refused: Vec<RefusedFix> = Vec::new();
    let mut refused_keys: BTreeSet<FixKey> = BTreeSet::new();
    let mut applied_keys: BTreeSet<FixKey> = BTreeSet::new();
    let mut rounds = 0;

    let converged = loop {
        let mut candidates: Vec<Candidate> = round
            .findings
            .iter()
            .filter(|f| f.fix.as_ref().is_some_and(|fix| selected(f, fix, options)))
            .map(Candidate::of)
            .filter(|c| !refused_keys.contains(&c.key))
            .collect();
        // A fix whose finding survived its own application would only repeat
        // its text: refuse it instead of applying it again.
        for c in candidates.iter().filter(|c| applied_keys.contains(&c.key)) {
            refused_keys.insert(c.key);
            refused.push(RefusedFix {
                rule: c.rule,
                description: c.fix.description.clone(),
                reason: "the finding is still reported after its fix was applied".into(),
            });
        }
        candidates.retain(|c| !refused_keys.contains(&c.key));
        if candidates.is_empty() {
            break true;
        }
        if rounds == options.max_rounds {
            break false;
        }
        rounds += 1;
        // Deterministic merge order: by rule, then by place.
        candidates.sort_by_key(|c| (c.rule, c.place));

        let mut batch: Vec<&Candidate> = candidates.iter().collect();
        // Whether a candidate loaded and became the text the loop goes on with.
        let advanced = loop {
            let fixes: Vec<&Fix> = batch.iter().map(|c| &c.fix).collect();
            let Applied {
                changed,
                mut edits,
                outcomes,
            } = apply(&round.sources, &fixes);
            for (c, outcome) in batch.iter().zip(&outcomes) {
                if let Outcome::Invalid(why) = outcome {
                    if refused_keys.insert(c.key) {
                        refused.push(RefusedFix {
                            rule: c.rule,
                            description: c.fix.description.clone(),
                            reason: why.clone(),
                        });
                    }
                }
            }
            if changed.is_empty() {
                break false;
            }
            // The candidate overlay shares its unchanged texts with the
            // overlay; each new text is moved in, once. Each changed file
            // gets the step that undoes this change.
            let mut candidate = overlay.clone();
            let mut steps: Vec<(FileId, String, Step)> = Vec::with_capacity(changed.len());
            for (file, text) in changed {
                let src = round.sources.source(file);
                lineages
                    .entry(src.path.clone())
                    .or_insert_with(|| Lineage::new(&src.text));
                let step = Step::new(rounds, &src.text, edits.remove(&file).unwrap_or_default());
                candidate.insert_shared(src.path.clone(), Arc::new(text));
                steps.push((file, src.path.clone(), step));
            }
            let edited: Vec<Vec<String>> = batch
                .iter()
                .map(|c| edited_paths(&round.sources, &c.fix))
                .collect();
            // Release this round while the candidate is checked: its
            // findings (the candidates hold copies of the fixes they need)
            // and its texts, which the steps can rebuild.
            drop(round);
            drop(std::mem::take(&mut overlay));
            match checker.check(&candidate) {
                Ok(next_round) => {
                    for (_, path, step) in steps {
                        lineages
                            .get_mut(&path)
                            .expect("a lineage is made for every changed file")
                            .steps
                            .push(step);
                    }
                    for ((c, outcome), files) in batch.iter().zip(&outcomes).zip(edited) {
                        if outcome.is_applied() {
                            applied_keys.insert(c.key);
                            applied.push(AppliedFix {
                                rule: c.rule,
                                name: c.name,
                                description: c.fix.description.clone(),
                                files,
                                round: rounds,
                            });
                        }
                    }
                    overlay = candidate;
                    round = next_round;
                    break true;
                }
                Err(_) => {
                    // Back to the texts the candidate was made from, loaded
                    // again: the fixes' places point into them.
                    overlay = undo_candidate(&candidate, &steps, &lineages);
                    // Files this candidate was the first to change start
                    // afresh when they change again.
                    lineages.retain(|_, lineage| !lineage.steps.is_empty());
                    round = checker.check(&overlay)?;
                    let moved = not_as_before(&round.sources, &overlay, &candidate, &steps);
                    drop(candidate);
                    if let Some(path) = moved {
                        // A file read from disk changed during the run: the
                        // fixes' places no longer fit it.
                        for c in &batch {
                            if refused_keys.insert(c.key) {
                                refused.push(RefusedFix {
                                    rule: c.rule,
                                    description: c.fix.description.clone(),
                                    reason: format!("{path} changed while it was being fixed"),
                                });
                            }
                        }
                        break false;
                    }
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
                        break false;
                    }
                }
            }
        };
        if !advanced {
            // Nothing changed the text: the remaining fixes are refused,
            // overlapping or no-ops. `round` is the check of the text as it
            // stands (loaded again if a candidate was tried).
            break refused_keys.is_superset(&candidates.iter().map(|c| c.key).collect());
        }
    };

    lineages.retain(|_, lineage| !lineage.steps.is_empty());
    let mut originals: BTreeMap<String, SharedText> = BTreeMap::new();
    for (path, lineage) in &lineages {
        let original = overlay
            .get(path)
            .and_then(|newest| lineage.original(newest));
        match original {
            Some(text) => {
                originals.insert(path.clone(), Arc::new(text));
            }
            None => {
                // Never expected: the steps do not lead back to the text
                // that was read. Nothing is offered rather than a diff
                // against a text that is not on disk.
                let reason = format!(
                    "internal error: the original text of {path} could not be rebuilt from the fixed one; no fix is offered"
                );
                refused.extend(applied.into_iter().map(|a| RefusedFix {
                    rule: a.rule,
                    description: a.description,
                    reason: reason.clone(),
                }));
                return Ok(FixRun {
                    originals: BTreeMap::new(),
                    overlay: Overlay::default(),
                    applied: Vec::new(),
                    refused,
                    last: checker.check(&Overlay::default())?,
                    rounds,
                    converged: false,
                    lineages: BTreeMap::new(),
                });
            }
        }
    }

    Ok(FixRun {
        originals,
        overlay,
        applied,
        refused,
        last: round,
        rounds,
        converged,
        lineages,
    })
}

/// The overlay `candidate` was made from: each text the candidate changed
/// is rebuilt by undoing its step, or left to the loader again when the
/// loop had not changed that file before.
fn undo_candidate(
    candidate: &Overlay,
    steps: &[(FileId, String, Step)],
    lineages: &BTreeMap<String, Lineage>,
) -> Overlay {
    let mut overlay = candidate.clone();
    for (_, path, step) in steps {
        let changed_before = lineages.get(path).is_some_and(|l| !l.steps.is_empty());
        if changed_before {
            let newest = candidate
                .get(path)
                .expect("the candidate holds every text it changed");
            overlay.insert(path.clone(), step.undo(newest));
        } else {
            overlay.files.remove(path);
        }
    }
    overlay
}

/// The first file `candidate` changed that `sources` (the texts it was
/// made from, loaded again through `overlay`) does not hold as it was: a
/// file read from disk again can have changed since, or another file can
/// now have its number. A text `overlay` holds was rebuilt already (by
/// [`undo_candidate`]); only the others are rebuilt here.
fn not_as_before(
    sources: &dyn SourceMap,
    overlay: &Overlay,
    candidate: &Overlay,
    steps: &[(FileId, String, Step)],
) -> Option<String> {
    steps.iter().find_map(|(file, path, step)| {
        let before: Option<std::borrow::Cow<[u8]>> = match overlay.get(path) {
            Some(text) => Some(text.into()),
            None => candidate.get(path).map(|newest| step.undo(newest).into()),
        };
        match sources.get(*file) {
            Some(src) if src.path == *path && Some(src.text.as_slice()) == before.as_deref() => {
                None
            }
            _ => Some(path.clone()),
        }
    })
}

/// Grows a set of fixes one at a time, keeping each fix only if the config
/// still loads with it.
fn loadable_subset<'c, C: Checker>(
    checker: &mut C,
    sources: &C::Sources,
    overlay: &Overlay,
    batch: &[&'c Candidate],
    refused: &mut Vec<RefusedFix>,
    refused_keys: &mut BTreeSet<FixKey>,
) -> Vec<&'c Candidate> {
    let mut kept: Vec<&Candidate> = Vec::new();
    for c in batch {
        let mut trial = kept.clone();
        trial.push(c);
        let fixes: Vec<&Fix> = trial.iter().map(|c| &c.fix).collect();
        let result = apply(sources, &fixes);
        let mut candidate = overlay.clone();
        for (file, text) in result.changed {
            candidate.insert(sources.source(file).path.clone(), text);
        }
        if checker.check(&candidate).is_ok() {
            kept.push(c);
        } else {
            refused_keys.insert(c.key);
            refused.push(RefusedFix {
                rule: c.rule,
                description: c.fix.description.clone(),
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

/// A fix the loop may apply, copied out of its finding with what the loop
/// needs of the finding, so that a round's findings can be released before
/// the next round is checked.
struct Candidate {
    rule: &'static str,
    name: &'static str,
    key: FixKey,
    /// Where the finding is, for the order fixes are merged in.
    place: Option<(FileId, u32)>,
    fix: Fix,
}

impl Candidate {
    fn of(f: &Finding) -> Candidate {
        Candidate {
            rule: f.rule,
            name: f.name,
            key: FixKey::of(f),
            place: f.primary.map(|s| (s.file, s.start)),
            fix: fix_of(f).clone(),
        }
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

/// Identifies "the same fix" across rounds, when positions have moved: the
/// rule, the finding's message, the fix's description and the text of each
/// edit. A large configuration has tens of thousands of fixes, and a copy of
/// those texts per fix in the run's two key sets cost tens of megabytes, so
/// the key is a 128-bit digest of them (two SipHash-1-3 values over the
/// texts with different prefixes; a collision between two of a run's fixes
/// is not a practical concern at that size).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct FixKey(u64, u64);

impl FixKey {
    fn of(f: &Finding) -> FixKey {
        use std::hash::{DefaultHasher, Hash, Hasher};
        let fix = fix_of(f);
        let digest = |prefix: u8| {
            let mut h = DefaultHasher::new();
            prefix.hash(&mut h);
            f.rule.hash(&mut h);
            f.message.hash(&mut h);
            fix.description.hash(&mut h);
            fix.edits.len().hash(&mut h);
            for edit in &fix.edits {
                edit.content.hash(&mut h);
            }
            h.finish()
        };
        FixKey(digest(0), digest(1))
    }
}
