//! An independent check of a [`FileChange`]: the text after is the text
//! before with exactly the listed edits made, byte for byte, and nothing else.
//! `--write` runs it before touching a file; the tests run it over every file
//! of the corpus.

use crate::FileChange;

/// `Ok` when `change.after` equals `change.before` outside the edits, and
/// holds each edit's content at its place.
pub fn only_edits_changed(change: &FileChange) -> Result<(), String> {
    let (before, after) = (change.before.as_slice(), change.after.as_slice());
    let mut at_before = 0usize;
    let mut at_after = 0usize;
    for edit in &change.edits {
        let (start, end) = (edit.span.start as usize, edit.span.end as usize);
        if start < at_before || end > before.len() {
            return Err(format!(
                "{}: edits out of order or out of range at byte {start}",
                change.path
            ));
        }
        let kept = &before[at_before..start];
        if after.get(at_after..at_after + kept.len()) != Some(kept) {
            return Err(format!(
                "{}: bytes {at_before}..{start} (outside every edit) changed",
                change.path
            ));
        }
        at_after += kept.len();
        let content = edit.content.as_bytes();
        if after.get(at_after..at_after + content.len()) != Some(content) {
            return Err(format!(
                "{}: the edit at byte {start} is not in the result",
                change.path
            ));
        }
        at_after += content.len();
        at_before = end;
    }
    if after.get(at_after..) != Some(&before[at_before..]) {
        return Err(format!(
            "{}: bytes after {at_before} (outside every edit) changed",
            change.path
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::only_edits_changed;
    use crate::FileChange;
    use upkeep_diag::Edit;
    use upkeep_syntax::{FileId, Span};

    fn change(before: &str, edits: Vec<Edit>, after: &str) -> FileChange {
        FileChange {
            round: 1,
            path: "f".into(),
            before: before.as_bytes().to_vec().into(),
            edits,
            after: after.as_bytes().to_vec().into(),
        }
    }

    #[test]
    fn accepts_exactly_the_edits_and_rejects_anything_else() {
        let sp = |a, b| Span::new(FileId(0), a, b);
        let edits = vec![Edit::insert(sp(2, 2), "X"), Edit::replace(sp(4, 5), "YY")];
        assert!(only_edits_changed(&change("abcdef", edits.clone(), "abXcdYYf")).is_ok());
        assert!(only_edits_changed(&change("abcdef", edits.clone(), "abXcdYYg")).is_err());
        assert!(only_edits_changed(&change("abcdef", edits.clone(), "AbXcdYYf")).is_err());
        assert!(only_edits_changed(&change("abcdef", edits, "abcdef")).is_err());
    }
}
