//! Applying a set of fixes to file texts.
//!
//! Each fix is taken whole or not at all. Fixes are considered in the order
//! given; a fix whose edits overlap an edit already taken is skipped (the next
//! round of the convergence loop sees its finding again, on the new text).
//! An edit identical to one already taken is not applied twice, so several
//! findings that ask for the same line in the same block produce it once, and
//! different insertions at the same point merge, in order, into one change.

use std::collections::BTreeMap;
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
pub fn apply(sources: &dyn SourceMap, fixes: &[&Fix]) -> Applied {
    let mut taken: BTreeMap<FileId, Vec<Edit>> = BTreeMap::new();
    let mut outcomes = Vec::with_capacity(fixes.len());
    for fix in fixes {
        let outcome = match check_fix(sources, fix) {
            Err(why) => Outcome::Invalid(why),
            Ok(()) => take(&mut taken, fix),
        };
        outcomes.push(outcome);
    }
    let mut changed = BTreeMap::new();
    let mut edits_made = BTreeMap::new();
    for (file, mut edits) in taken {
        let original = &sources.source(file).text;
        let new = splice(original, &edits);
        if new != *original {
            changed.insert(file, new);
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

/// Takes the fix's edits if none conflicts with an edit already taken.
fn take(taken: &mut BTreeMap<FileId, Vec<Edit>>, fix: &Fix) -> Outcome {
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
fn splice(text: &[u8], edits: &[Edit]) -> Vec<u8> {
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
}
