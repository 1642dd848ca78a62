//! Applying a set of fixes to file texts.
//!
//! Each fix is taken whole or not at all. Fixes are considered in the order
//! given; a fix whose edits overlap an edit already taken is skipped (the next
//! round of the convergence loop sees its finding again, on the new text).
//! An edit identical to one already taken is not applied twice, so several
//! findings that ask for the same line in the same block produce it once, and
//! different insertions at the same point merge, in order, into one change.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use upkeep_diag::{Edit, Fix};
use upkeep_syntax::{FileId, SourceMap};

/// What happened to one fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// All its edits were taken (some may have been identical to edits of
    /// earlier fixes).
    Applied,
    /// Every edit was identical to one an earlier fix already made.
    Duplicate,
    /// One of its edits overlaps an edit of an earlier fix; nothing of it was
    /// applied.
    Overlaps,
    /// The fix itself is malformed (an edit outside its file, or its own
    /// edits overlapping); nothing of it was applied.
    Invalid(String),
}

impl Outcome {
    pub fn is_applied(&self) -> bool {
        matches!(self, Outcome::Applied | Outcome::Duplicate)
    }
}

/// The result of [`apply`]: new texts of the files that changed.
#[derive(Clone, Debug, Default)]
pub struct Applied {
    pub changed: BTreeMap<FileId, Vec<u8>>,
    /// The edits made to each changed file (identical edits once), sorted by
    /// position, in the coordinates of the file's text before.
    pub edits: BTreeMap<FileId, Vec<Edit>>,
    /// One per input fix, in input order.
    pub outcomes: Vec<Outcome>,
}

/// Applies `fixes` to the files of `sources`. Pure: returns the new texts.
///
/// One pass: each edit is checked against the edits already taken through
/// an index of them (see [`TakenEdits`]), so a round with a hundred thousand
/// fixes costs `O(n log n)`, not `O(n²)`.
pub fn apply(sources: &dyn SourceMap, fixes: &[&Fix]) -> Applied {
    let mut taken: BTreeMap<FileId, TakenEdits> = BTreeMap::new();
    let mut outcomes = Vec::with_capacity(fixes.len());
    for &fix in fixes {
        let outcome = match check_fix(sources, fix) {
            Err(why) => Outcome::Invalid(why),
            Ok(()) => take(&mut taken, fix),
        };
        outcomes.push(outcome);
    }
    let mut changed = BTreeMap::new();
    let mut edits_made = BTreeMap::new();
    for (file, taken) in taken {
        let original = &sources.source(file).text;
        let new = splice(original, &taken.in_order);
        if new != original.as_slice() {
            changed.insert(file, new);
            let mut edits: Vec<Edit> = taken.in_order.into_iter().cloned().collect();
            edits.sort_by_key(|e| (e.span.start, e.span.end));
            edits_made.insert(file, edits);
        }
    }
    Applied {
        changed,
        edits: edits_made,
        outcomes,
    }
}

fn check_fix(sources: &dyn SourceMap, fix: &Fix) -> Result<(), String> {
    if fix.edits.is_empty() {
        return Err("the fix has no edits".into());
    }
    for edit in &fix.edits {
        let len = sources.source(edit.span.file).text.len() as u32;
        if edit.span.start > edit.span.end || edit.span.end > len {
            return Err(format!(
                "edit {}..{} lies outside {} ({} bytes)",
                edit.span.start,
                edit.span.end,
                sources.source(edit.span.file).path,
                len
            ));
        }
    }
    for (i, a) in fix.edits.iter().enumerate() {
        for b in &fix.edits[i + 1..] {
            if a.span.file == b.span.file && conflicts(a, b) {
                return Err("the fix's own edits overlap".into());
            }
        }
    }
    Ok(())
}

/// The edits taken so far in one file, indexed so that finding an edit
/// identical to a new one, or one in conflict with it, is a lookup instead
/// of a scan of every edit taken.
#[derive(Default)]
struct TakenEdits<'f> {
    /// In the order taken: insertions at one point keep this order.
    in_order: Vec<&'f Edit>,
    /// Each distinct edit taken: (start, end, content).
    distinct: HashSet<(u32, u32, &'f str)>,
    /// Replacements (non-empty spans), start to end. Taken replacements never
    /// share a byte, so in the order of their starts their ends are ordered
    /// too: the one starting last before a point is the only one that can
    /// reach past it.
    replaced: BTreeMap<u32, u32>,
    /// The points where insertions (empty spans) were taken.
    inserted_at: BTreeSet<u32>,
}

impl<'f> TakenEdits<'f> {
    fn contains(&self, edit: &Edit) -> bool {
        self.distinct
            .contains(&(edit.span.start, edit.span.end, edit.content.as_str()))
    }

    /// Whether `edit` [`conflicts`] with an edit taken.
    fn conflicts_with(&self, edit: &Edit) -> bool {
        let (start, end) = (edit.span.start, edit.span.end);
        // The replacement starting last before `end` (before `start` for an
        // insertion) is the only one that can cover a byte of the edit.
        let reach = if start == end { start } else { end };
        let overlapped = self
            .replaced
            .range(..reach)
            .next_back()
            .is_some_and(|(_, &replaced_end)| replaced_end > start);
        // A replacement must not have an insertion strictly inside it.
        overlapped || (start < end && self.inserted_at.range(start + 1..end).next().is_some())
    }

    fn push(&mut self, edit: &'f Edit) {
        let (start, end) = (edit.span.start, edit.span.end);
        if start == end {
            self.inserted_at.insert(start);
        } else {
            self.replaced.insert(start, end);
        }
        self.distinct.insert((start, end, edit.content.as_str()));
        self.in_order.push(edit);
    }
}

/// Takes the fix's edits if none conflicts with an edit already taken.
fn take<'f>(taken: &mut BTreeMap<FileId, TakenEdits<'f>>, fix: &'f Fix) -> Outcome {
    let mut fresh = Vec::new();
    for edit in &fix.edits {
        if let Some(already) = taken.get(&edit.span.file) {
            if already.contains(edit) {
                continue;
            }
            if already.conflicts_with(edit) {
                return Outcome::Overlaps;
            }
        }
        fresh.push(edit);
    }
    if fresh.is_empty() {
        return Outcome::Duplicate;
    }
    for edit in fresh {
        taken.entry(edit.span.file).or_default().push(edit);
    }
    Outcome::Applied
}

/// Two edits of one file conflict when their ranges share a byte, or when an
/// insertion falls strictly inside a replaced range. Insertions at the same
/// point do not conflict (they merge), nor do edits that merely touch.
fn conflicts(a: &Edit, b: &Edit) -> bool {
    let (a, b) = (a.span, b.span);
    if a.file != b.file {
        return false;
    }
    if a.is_empty() && b.is_empty() {
        return false;
    }
    if a.is_empty() {
        return b.start < a.start && a.start < b.end;
    }
    if b.is_empty() {
        return a.start < b.start && b.start < a.end;
    }
    a.start < b.end && b.start < a.end
}

/// The text with `edits` (non-conflicting, in the order taken) applied.
/// Insertions at one point keep the order in which they were taken, and come
/// before a replacement starting at that point.
fn splice(text: &[u8], edits: &[&Edit]) -> Vec<u8> {
    let mut order: Vec<usize> = (0..edits.len()).collect();
    order.sort_by_key(|&i| (edits[i].span.start, !edits[i].span.is_empty(), i));
    let mut out =
        Vec::with_capacity(text.len() + edits.iter().map(|e| e.content.len()).sum::<usize>());
    let mut at = 0usize;
    for i in order {
        let edit = &edits[i];
        out.extend_from_slice(&text[at..edit.span.start as usize]);
        out.extend_from_slice(edit.content.as_bytes());
        at = edit.span.end as usize;
    }
    out.extend_from_slice(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use upkeep_diag::Applicability;
    use upkeep_syntax::{SourceFile, Span};

    fn fix(edits: Vec<Edit>) -> Fix {
        Fix {
            applicability: Applicability::Safe,
            description: String::new(),
            edits,
        }
    }

    fn at(start: u32, end: u32) -> Span {
        Span::new(FileId(0), start, end)
    }

    #[test]
    fn conflict_rules() {
        let e = |s, t| Edit::replace(at(s, t), "x");
        assert!(conflicts(&e(0, 5), &e(4, 6)));
        assert!(!conflicts(&e(0, 5), &e(5, 6)));
        assert!(!conflicts(&e(3, 3), &e(3, 3)));
        assert!(conflicts(&e(3, 3), &e(2, 5)));
        assert!(!conflicts(&e(2, 2), &e(2, 5)));
        assert!(!conflicts(&e(5, 5), &e(2, 5)));
    }

    #[test]
    fn insertion_before_replacement_at_the_same_point() {
        let src = SourceFile::new(FileId(0), "f", b"abcdef".to_vec());
        let r = fix(vec![Edit::replace(at(2, 4), "XY")]);
        let i = fix(vec![Edit::insert(at(2, 2), "+")]);
        let applied = apply(&src, &[&r, &i]);
        assert_eq!(applied.changed[&FileId(0)], b"ab+XYef");
        assert_eq!(applied.outcomes, vec![Outcome::Applied, Outcome::Applied]);
    }

    /// The rule of [`take`] as a scan of every edit taken: what the index
    /// must agree with.
    fn take_by_scan(taken: &mut BTreeMap<FileId, Vec<Edit>>, fix: &Fix) -> Outcome {
        let mut fresh = Vec::new();
        for edit in &fix.edits {
            let already = taken.get(&edit.span.file).map(Vec::as_slice).unwrap_or(&[]);
            if already.contains(edit) {
                continue;
            }
            if already.iter().any(|t| conflicts(t, edit)) {
                return Outcome::Overlaps;
            }
            fresh.push(edit.clone());
        }
        if fresh.is_empty() {
            return Outcome::Duplicate;
        }
        for edit in fresh {
            taken.entry(edit.span.file).or_default().push(edit);
        }
        Outcome::Applied
    }

    /// A small deterministic generator (64-bit LCG), for reproducible sets.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: u32) -> u32 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) % u64::from(n)) as u32
        }
    }

    #[test]
    fn many_mixed_fixes_agree_with_a_scan_of_every_edit() {
        let len = 3_000u32;
        let text: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
        let src = SourceFile::new(FileId(0), "f", text);
        let mut rng = Lcg(12);
        let mut fixes: Vec<Fix> = Vec::new();
        for n in 0..4_000 {
            // Now and then an earlier fix again, or one sharing an edit with it.
            if n > 0 && rng.below(8) == 0 {
                let mut again = fixes[rng.below(n) as usize].clone();
                if rng.below(2) == 0 {
                    let start = rng.below(len);
                    again.edits.push(Edit::insert(at(start, start), "shared"));
                }
                fixes.push(again);
                continue;
            }
            let edits = (0..1 + rng.below(3))
                .map(|_| {
                    let start = rng.below(len);
                    let end = if rng.below(3) == 0 {
                        start
                    } else {
                        (start + 1 + rng.below(4)).min(len)
                    };
                    Edit::replace(at(start, end), ["x", "yy", ""][rng.below(3) as usize])
                })
                .collect();
            fixes.push(fix(edits));
        }
        let refs: Vec<&Fix> = fixes.iter().collect();
        let applied = apply(&src, &refs);

        let mut taken = BTreeMap::new();
        let mut outcomes = Vec::new();
        for f in &refs {
            outcomes.push(match check_fix(&src, f) {
                Err(why) => Outcome::Invalid(why),
                Ok(()) => take_by_scan(&mut taken, f),
            });
        }
        assert_eq!(applied.outcomes, outcomes);
        for kind in [Outcome::Applied, Outcome::Duplicate, Outcome::Overlaps] {
            assert!(outcomes.contains(&kind), "the set exercises {kind:?}");
        }
        let edits = taken.remove(&FileId(0)).unwrap();
        let in_order: Vec<&Edit> = edits.iter().collect();
        assert_eq!(applied.changed[&FileId(0)], splice(&src.text, &in_order));
        let mut sorted = edits.clone();
        sorted.sort_by_key(|e| (e.span.start, e.span.end));
        assert_eq!(applied.edits[&FileId(0)], sorted);
    }

    #[test]
    fn a_hundred_thousand_fixes_apply_in_one_pass() {
        // Line i is `k<i> v<i>;`. Fix i sets its value and inserts a comment
        // line before it; every 10th fix repeats the previous one (a
        // duplicate), every 7th also rewrites the value of the line before
        // it, which the previous fix already edited (an overlap: nothing of
        // it is taken).
        let lines = 100_000usize;
        let mut text = String::new();
        let mut value_at = Vec::with_capacity(lines);
        for i in 0..lines {
            let line_start = text.len() as u32;
            text.push_str(&format!("k{i} "));
            let value_start = text.len() as u32;
            text.push_str(&format!("v{i}"));
            value_at.push((line_start, value_start, text.len() as u32));
            text.push_str(";\n");
        }
        let src = SourceFile::new(FileId(0), "f", text.into_bytes());
        let mut fixes = Vec::new();
        let mut expected_outcomes = Vec::new();
        for i in 0..lines {
            let (line_start, value_start, value_end) = value_at[i];
            let mut edits = vec![
                Edit::insert(at(line_start, line_start), format!("# {i}\n")),
                Edit::replace(at(value_start, value_end), format!("w{i}")),
            ];
            if i % 10 == 9 {
                // The previous fix again: a duplicate if it was applied, in
                // conflict again if it was not.
                fixes.push(fixes.last().cloned().unwrap());
                expected_outcomes.push(if (i - 1) % 7 == 6 {
                    Outcome::Overlaps
                } else {
                    Outcome::Duplicate
                });
            }
            if i % 7 == 6 {
                let (_, before_start, before_end) = value_at[i - 1];
                edits.push(Edit::replace(at(before_start, before_end), "other"));
                expected_outcomes.push(Outcome::Overlaps);
            } else {
                expected_outcomes.push(Outcome::Applied);
            }
            fixes.push(fix(edits));
        }
        let refs: Vec<&Fix> = fixes.iter().collect();
        let applied = apply(&src, &refs);
        assert_eq!(applied.outcomes.len(), expected_outcomes.len());
        let wrong = applied
            .outcomes
            .iter()
            .zip(&expected_outcomes)
            .position(|(got, want)| got != want);
        assert_eq!(wrong, None, "first fix with an unexpected outcome");

        let mut expected = String::new();
        for i in 0..lines {
            if i % 7 == 6 {
                expected.push_str(&format!("k{i} v{i};\n"));
            } else {
                expected.push_str(&format!("# {i}\nk{i} w{i};\n"));
            }
        }
        // Compared without printing a few megabytes on failure.
        assert!(applied.changed[&FileId(0)] == expected.as_bytes());
        let edits = &applied.edits[&FileId(0)];
        assert_eq!(edits.len(), 2 * (lines - lines / 7));
        assert!(edits
            .windows(2)
            .all(|w| (w[0].span.start, w[0].span.end) <= (w[1].span.start, w[1].span.end)));
    }
}
