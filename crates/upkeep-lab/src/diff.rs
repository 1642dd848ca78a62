//! A small unified diff for showing what `upkeep fix` changed in the lab's
//! config (a few hundred lines at most), by longest common subsequence.

use crate::plan::ConfigFile;

/// Diff of every file that changed, `--- a/PATH` / `+++ b/PATH` headers.
pub fn unified_files(before: &[ConfigFile], after: &[ConfigFile]) -> String {
    let mut out = String::new();
    for b in before {
        let a = after
            .iter()
            .find(|a| a.path == b.path)
            .map(|a| a.text.as_str())
            .unwrap_or("");
        if a != b.text {
            out.push_str(&format!("--- a/{}\n+++ b/{}\n", b.path, b.path));
            out.push_str(&unified(&b.text, a, 3));
        }
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Same,
    Del,
    Add,
}

/// Hunks (without file headers) turning `old` into `new`.
pub fn unified(old: &str, new: &str, context: usize) -> String {
    let a: Vec<&str> = old.split_inclusive('\n').collect();
    let b: Vec<&str> = new.split_inclusive('\n').collect();
    // LCS table, from the end.
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut ops = Vec::new(); // (op, a index, b index)
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((Op::Same, i, j));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            // Deletions before insertions, as diff(1) shows a replaced line.
            ops.push((Op::Del, i, j));
            i += 1;
        } else {
            ops.push((Op::Add, i, j));
            j += 1;
        }
    }
    // Group changes with their context into hunks.
    let mut out = String::new();
    let mut k = 0;
    while k < ops.len() {
        if ops[k].0 == Op::Same {
            k += 1;
            continue;
        }
        let start = k.saturating_sub(context);
        let mut end = k;
        let mut last_change = k;
        while end < ops.len() {
            if ops[end].0 != Op::Same {
                last_change = end;
            } else if end - last_change > 2 * context {
                break;
            }
            end += 1;
        }
        let end = (last_change + context + 1).min(ops.len());
        let (a0, b0) = (ops[start].1, ops[start].2);
        let a_len = ops[start..end].iter().filter(|o| o.0 != Op::Add).count();
        let b_len = ops[start..end].iter().filter(|o| o.0 != Op::Del).count();
        out.push_str(&format!(
            "@@ -{},{} +{},{} @@\n",
            a0 + 1,
            a_len,
            b0 + 1,
            b_len
        ));
        for &(op, ai, bj) in &ops[start..end] {
            let (mark, line) = match op {
                Op::Same => (' ', a[ai]),
                Op::Del => ('-', a[ai]),
                Op::Add => ('+', b[bj]),
            };
            out.push(mark);
            out.push_str(line);
            if !line.ends_with('\n') {
                out.push_str("\n\\ No newline at end of file\n");
            }
        }
        k = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_inserted_line() {
        let old = "a\nb\nc\nd\n";
        let new = "a\nb\nX\nc\nd\n";
        assert_eq!(unified(old, new, 1), "@@ -2,2 +2,3 @@\n b\n+X\n c\n");
        assert_eq!(unified(old, old, 3), "");
    }

    #[test]
    fn replaced_line() {
        assert_eq!(
            unified("k 1;\n", "k 1000;\n", 3),
            "@@ -1,1 +1,1 @@\n-k 1;\n+k 1000;\n"
        );
    }
}
