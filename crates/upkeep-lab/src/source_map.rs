//! What nginx says about the lab's copy of a config, said about the user's
//! own files: `in /tmp/upkeep-nginx-x/conf/2-app.conf:14` becomes
//! `in /etc/nginx/conf.d/app.conf:12`.
//!
//! The copy differs from the user's file by the lab's edits (addresses,
//! paths, lines added in the http block) and, in the after phase, by the
//! fix. A line diff of the two tells which user line each copied line came
//! from: unchanged lines map exactly, a rewritten line maps to the line it
//! replaced, and a line the lab added is said to be one.

use crate::plan::{ConfigFile, SourceFile};
use similar::{DiffOp, TextDiff};
use std::path::Path;

/// Where a line of a copy came from.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Origin {
    /// The user's line (1-based).
    Line(usize),
    /// Added by the lab after the user's line (0: before the first line).
    AddedAfter(usize),
}

/// For each line of `copy` (1-based index - 1), its origin in `original`.
fn line_origins(original: &str, copy: &str) -> Vec<Origin> {
    let diff = TextDiff::from_lines(original, copy);
    let mut origins = Vec::new();
    for op in diff.ops() {
        match *op {
            DiffOp::Equal {
                old_index,
                new_index: _,
                len,
            } => origins.extend((0..len).map(|i| Origin::Line(old_index + i + 1))),
            DiffOp::Insert {
                old_index, new_len, ..
            } => origins.extend((0..new_len).map(|_| Origin::AddedAfter(old_index))),
            DiffOp::Replace {
                old_index,
                old_len,
                new_len,
                ..
            } => origins.extend((0..new_len).map(|i| {
                if i < old_len {
                    Origin::Line(old_index + i + 1)
                } else {
                    Origin::AddedAfter(old_index + old_len)
                }
            })),
            DiffOp::Delete { .. } => {}
        }
    }
    origins
}

/// Rewrites every `PREFIX/COPY:LINE` (and a bare `PREFIX/COPY`) in nginx's
/// output into the user's file and line. Output about files that are not
/// copies of the user's (the lab's own) is left as it is.
pub fn to_user_files(
    output: &str,
    prefix: &Path,
    copies: &[ConfigFile],
    sources: &[SourceFile],
) -> String {
    if sources.is_empty() {
        return output.to_string();
    }
    let prefix = prefix.display().to_string();
    let prefix = prefix.trim_end_matches('/');
    let mut out = output.to_string();
    // Longest copy path first, so `conf/1-a.conf` is not matched inside
    // `conf/11-a.conf`.
    let mut by_length: Vec<&SourceFile> = sources.iter().collect();
    by_length.sort_by_key(|s| std::cmp::Reverse(s.copy.len()));
    for source in by_length {
        let Some(copy) = copies.iter().find(|c| c.path == source.copy) else {
            continue;
        };
        let needle = format!("{prefix}/{}", source.copy);
        let origins = line_origins(&source.text, &copy.text);
        let mut rewritten = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(at) = rest.find(&needle) {
            rewritten.push_str(&rest[..at]);
            let after = &rest[at + needle.len()..];
            let digits: String = after
                .strip_prefix(':')
                .map(|a| a.chars().take_while(char::is_ascii_digit).collect())
                .unwrap_or_default();
            let line: Option<usize> = digits.parse().ok();
            match line.and_then(|l| origins.get(l.checked_sub(1)?)) {
                Some(Origin::Line(l)) => {
                    rewritten.push_str(&format!("{}:{l}", source.path));
                }
                Some(Origin::AddedAfter(l)) => rewritten.push_str(&format!(
                    "{}:{l} (a line upkeep lab added after it)",
                    source.path
                )),
                None if line.is_some() => {
                    rewritten.push_str(&format!("{}:{digits} (lab copy)", source.path))
                }
                None => rewritten.push_str(&source.path),
            }
            let consumed = if line.is_some() { 1 + digits.len() } else { 0 };
            rest = &after[consumed..];
        }
        rewritten.push_str(rest);
        out = rewritten;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_copied_rewritten_and_added_lines() {
        let original =
            "events {}\nhttp {\n    upstream app { server 10.0.0.1:80; }\n    bad on;\n}\n";
        let copy = "events {}\nhttp {\n    proxy_temp_path /p/t;\n    access_log logs/access.log lab;\n    upstream app { server 127.0.0.1:4000; }\n    bad on;\n}\n";
        let origins = line_origins(original, copy);
        assert_eq!(origins[0], Origin::Line(1));
        assert_eq!(origins[5], Origin::Line(4));
        assert_eq!(origins[6], Origin::Line(5));
        // Two added lines and one rewritten one, between lines 2 and 4.
        assert!(matches!(
            origins[2],
            Origin::Line(3) | Origin::AddedAfter(2)
        ));

        let sources = [SourceFile {
            copy: "nginx.conf".into(),
            path: "/etc/nginx/nginx.conf".into(),
            text: original.into(),
        }];
        let copies = [ConfigFile {
            path: "nginx.conf".into(),
            text: copy.into(),
        }];
        let said = "nginx: [emerg] unknown directive \"bad\" in /tmp/upkeep-nginx-Ab/nginx.conf:6\nnginx: configuration file /tmp/upkeep-nginx-Ab/nginx.conf test failed\n";
        assert_eq!(
            to_user_files(said, Path::new("/tmp/upkeep-nginx-Ab/"), &copies, &sources),
            "nginx: [emerg] unknown directive \"bad\" in /etc/nginx/nginx.conf:4\nnginx: configuration file /etc/nginx/nginx.conf test failed\n"
        );
        // Nothing to map for the lab's own configs.
        assert_eq!(
            to_user_files(said, Path::new("/tmp/upkeep-nginx-Ab"), &copies, &[]),
            said
        );
    }
}
