//! How a changed file got from its original text to its current one,
//! kept as edits rather than texts.
//!
//! The fix loop checks each candidate text with a full load (syntax tree,
//! model, findings), and on a configuration of hundreds of megabytes a
//! second copy of the text alive during that check (the one the candidate
//! was made from) would add the size of the input to the run's peak. So
//! the loop keeps only the newest text of a file and, for each step, what
//! undoes it: the span each edit wrote in the text after it and the bytes
//! it replaced there. Every earlier text, the original included, is rebuilt
//! from the newest one when it is needed (for the diff, `--write` and the
//! history), and the original is compared with a digest taken when it was
//! first read, so that a rebuilt text is never taken on trust.

use std::hash::{DefaultHasher, Hasher};

use upkeep_diag::Edit;

/// A digest of a text: its length and a SipHash-1-3 value (one pass over
/// the text). It tells a rebuilt text from the one that was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Digest {
    len: usize,
    hash: u64,
}

impl Digest {
    pub(crate) fn of(text: &[u8]) -> Digest {
        let mut h = DefaultHasher::new();
        h.write(text);
        Digest {
            len: text.len(),
            hash: h.finish(),
        }
    }
}

/// What undoes one edit: the span it wrote, in the text after the step,
/// and the bytes it replaced (empty for an insertion).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Restore {
    start: usize,
    end: usize,
    replaced: Box<[u8]>,
}

/// One round's change to one file.
#[derive(Clone, Debug)]
pub(crate) struct Step {
    pub(crate) round: usize,
    /// Sorted by position, in the coordinates of the text before.
    pub(crate) edits: Vec<Edit>,
    /// What undoes `edits`, in the same order, in the coordinates of the
    /// text after.
    restores: Vec<Restore>,
}

impl Step {
    /// The step that made `edits` (sorted, in the order they were spliced)
    /// to `before`.
    pub(crate) fn new(round: usize, before: &[u8], edits: Vec<Edit>) -> Step {
        let mut restores = Vec::with_capacity(edits.len());
        // How far the text after has moved from the text before so far.
        let mut shift: isize = 0;
        for edit in &edits {
            let (start, end) = (edit.span.start as usize, edit.span.end as usize);
            let start_after = start.wrapping_add_signed(shift);
            let end_after = start_after + edit.content.len();
            restores.push(Restore {
                start: start_after,
                end: end_after,
                replaced: before[start..end].into(),
            });
            shift += edit.content.len() as isize - (end - start) as isize;
        }
        Step {
            round,
            edits,
            restores,
        }
    }

    /// The text before this step, from the text after it.
    pub(crate) fn undo(&self, after: &[u8]) -> Vec<u8> {
        let removed: usize = self.restores.iter().map(|r| r.end - r.start).sum();
        let added: usize = self.restores.iter().map(|r| r.replaced.len()).sum();
        let mut before = Vec::with_capacity((after.len() + added).saturating_sub(removed));
        let mut at = 0;
        for r in &self.restores {
            before.extend_from_slice(&after[at..r.start]);
            before.extend_from_slice(&r.replaced);
            at = r.end;
        }
        before.extend_from_slice(&after[at..]);
        before
    }
}

/// The steps of one changed file, oldest first, and the digest of its text
/// as first read.
#[derive(Clone, Debug)]
pub(crate) struct Lineage {
    pub(crate) original: Digest,
    pub(crate) steps: Vec<Step>,
}

impl Lineage {
    pub(crate) fn new(original: &[u8]) -> Lineage {
        Lineage {
            original: Digest::of(original),
            steps: Vec::new(),
        }
    }

    /// The text before each step, oldest (the original) first, rebuilt
    /// from `newest`. `None` when the rebuilt original is not the text that
    /// was read.
    pub(crate) fn texts_before(&self, newest: &[u8]) -> Option<Vec<Vec<u8>>> {
        let mut texts: Vec<Vec<u8>> = Vec::with_capacity(self.steps.len());
        for step in self.steps.iter().rev() {
            let before = step.undo(texts.last().map_or(newest, Vec::as_slice));
            texts.push(before);
        }
        texts.reverse();
        let original = texts.first().map_or(newest, Vec::as_slice);
        (Digest::of(original) == self.original).then_some(texts)
    }

    /// The original text, rebuilt from `newest` (one earlier text held at
    /// a time); `None` when it is not the text that was read.
    pub(crate) fn original(&self, newest: &[u8]) -> Option<Vec<u8>> {
        let mut text: Option<Vec<u8>> = None;
        for step in self.steps.iter().rev() {
            text = Some(step.undo(text.as_deref().unwrap_or(newest)));
        }
        let text = text.unwrap_or_else(|| newest.to_vec());
        (Digest::of(&text) == self.original).then_some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use upkeep_syntax::{FileId, Span};

    fn sp(a: u32, b: u32) -> Span {
        Span::new(FileId(0), a, b)
    }

    /// Applies sorted edits the way `apply` splices them.
    fn splice(before: &[u8], edits: &[Edit]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut at = 0;
        for e in edits {
            out.extend_from_slice(&before[at..e.span.start as usize]);
            out.extend_from_slice(e.content.as_bytes());
            at = e.span.end as usize;
        }
        out.extend_from_slice(&before[at..]);
        out
    }

    #[test]
    fn a_step_undone_gives_back_the_text_before_byte_for_byte() {
        let before = b"upstream a {\n    server x;\n}\n\xff\xfe tail\n".to_vec();
        let edits = vec![
            Edit::insert(sp(0, 0), "# head\n"),
            Edit::insert(sp(0, 0), "# second\n"),
            Edit::replace(sp(13, 26), "server y; keepalive 8;"),
            Edit::replace(sp(29, 31), ""),
            Edit::insert(sp(37, 37), "!"),
        ];
        let after = splice(&before, &edits);
        let step = Step::new(1, &before, edits);
        assert_eq!(step.undo(&after), before);
    }

    #[test]
    fn the_original_is_rebuilt_through_every_step_and_checked_against_its_digest() {
        let original = b"a;\nb;\nc;\n".to_vec();
        let mut lineage = Lineage::new(&original);
        let first = vec![Edit::replace(sp(3, 4), "bb")];
        let one = splice(&original, &first);
        lineage.steps.push(Step::new(1, &original, first));
        let second = vec![Edit::insert(sp(0, 0), "x;\n"), Edit::replace(sp(7, 10), "")];
        let two = splice(&one, &second);
        lineage.steps.push(Step::new(2, &one, second));
        assert_eq!(two, b"x;\na;\nbb;\n");
        assert_eq!(lineage.original(&two), Some(original.clone()));
        assert_eq!(lineage.texts_before(&two), Some(vec![original, one]));
        // A newest text that is not the one the steps made (here a byte
        // outside every edit differs) does not give the original back, and
        // is refused rather than trusted.
        let mut wrong = two;
        wrong[3] = b'y';
        assert_eq!(lineage.original(&wrong), None);
        assert_eq!(lineage.texts_before(&wrong), None);
    }
}
