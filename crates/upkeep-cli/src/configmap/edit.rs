//! The ConfigMap edits `fix --k8s-configmap` makes: a key a finding names
//! gets the value the finding asks for, in place when the key is there,
//! as a new line of `data:` when it is not. Everything else in the file
//! (comments, other keys, other documents) stays byte for byte.

use upkeep_diag::Finding;
use upkeep_syntax::SourceFile;

use super::manifest::ConfigMap;

/// A key to set, and the finding that asks for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyChange {
    pub key: String,
    pub value: String,
    pub rule: &'static str,
    pub name: &'static str,
}

/// One change per key, from the findings that name a ConfigMap key and a
/// value (the first finding of a key wins: findings come sorted by place,
/// and the rules ask one value of a key).
pub fn changes(findings: &[&Finding]) -> Vec<KeyChange> {
    let mut out: Vec<KeyChange> = Vec::new();
    for f in findings {
        let Some(m) = &f.managed else { continue };
        let Some(value) = &m.value else { continue };
        if m.kind != "ConfigMap key" || out.iter().any(|c| c.key == m.setting) {
            continue;
        }
        out.push(KeyChange {
            key: m.setting.clone(),
            value: value.clone(),
            rule: f.rule,
            name: f.name,
        });
    }
    out
}

/// A YAML double-quoted string (ConfigMap values are strings).
fn quoted(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub struct Edited {
    pub text: Vec<u8>,
    /// Keys with no place to go: the ConfigMap has no block-style `data:`
    /// entry to put them beside.
    pub unplaced: Vec<KeyChange>,
}

/// `file` with `changes` made.
pub fn apply(file: &SourceFile, cm: &ConfigMap, changes: &[KeyChange]) -> Edited {
    // (start, end, replacement), applied from the end.
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let mut unplaced = Vec::new();
    // New keys go on lines of their own just before the first entry of a
    // block mapping, at its indentation. A flow mapping (`data: {a: "1"}`,
    // on one line or several) or an empty `data:` is left to the user.
    let first = cm
        .data
        .values()
        .filter(|_| cm.data_is_block)
        .min_by_key(|e| e.span.start);
    let insert_at = first.and_then(|e| {
        let line = file.line_of(e.span.start);
        let line_start = file.line_start(line) as usize;
        let indent = &file.text[line_start..e.span.start as usize];
        // A new line ends as the entry's own line does (CRLF files stay CRLF).
        let raw_line = &file.text[line_start..file.line_start(line + 1) as usize];
        let line_end = if raw_line.ends_with(b"\r\n") {
            "\r\n"
        } else {
            "\n"
        };
        indent.iter().all(|&b| b == b' ').then(|| {
            (
                line_start,
                String::from_utf8_lossy(indent).into_owned(),
                line_end,
            )
        })
    });
    for c in changes {
        match cm.data.get(&c.key) {
            Some(entry) => {
                // In place only when the value is all on its line: a block
                // scalar (`|`) or a plain value folded over lines would be
                // left half replaced.
                let source = &file.text[entry.value_span.range()];
                let one_line = !entry.value.contains('\n')
                    && (source == entry.value.as_bytes()
                        || source.first().is_some_and(|q| matches!(q, b'"' | b'\'')));
                if one_line {
                    edits.push((
                        entry.value_span.start as usize,
                        entry.value_span.end as usize,
                        quoted(&c.value),
                    ));
                } else {
                    unplaced.push(c.clone());
                }
            }
            None => match &insert_at {
                Some((at, indent, line_end)) => edits.push((
                    *at,
                    *at,
                    format!("{indent}{}: {}{line_end}", c.key, quoted(&c.value)),
                )),
                None => unplaced.push(c.clone()),
            },
        }
    }
    edits.sort_by_key(|(start, end, _)| std::cmp::Reverse((*start, *end)));
    let mut text: Vec<u8> = file.text.to_vec();
    for (start, end, replacement) in edits {
        text.splice(start..end, replacement.into_bytes());
    }
    Edited { text, unplaced }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configmap::manifest;
    use upkeep_syntax::FileId;

    fn change(key: &str, value: &str) -> KeyChange {
        KeyChange {
            key: key.into(),
            value: value.into(),
            rule: "U007",
            name: "upstream-idle-outlives-backend",
        }
    }

    #[test]
    fn a_key_added_to_a_crlf_manifest_ends_its_line_with_crlf() {
        let text = "kind: ConfigMap\r\ndata:\r\n  keep-alive: \"60\"\r\n";
        let file = SourceFile::new(FileId(0), "cm.yaml", text.as_bytes().to_vec());
        let cm = manifest::read(&file).unwrap();
        let edited = apply(&file, &cm, &[change("upstream-keepalive-timeout", "1")]);
        assert_eq!(
            String::from_utf8(edited.text).unwrap(),
            "kind: ConfigMap\r\ndata:\r\n  upstream-keepalive-timeout: \"1\"\r\n  keep-alive: \"60\"\r\n"
        );
    }

    #[test]
    fn values_replaced_and_keys_added_beside_the_others() {
        let text = "kind: ConfigMap\ndata:\n  # tuned\n  keep-alive: '60' # ALB\n  use-gzip: \"true\"\n---\nkind: Service\n";
        let file = SourceFile::new(FileId(0), "cm.yaml", text.as_bytes().to_vec());
        let cm = manifest::read(&file).unwrap();
        let edited = apply(
            &file,
            &cm,
            &[
                change("keep-alive", "66"),
                change("upstream-keepalive-timeout", "1"),
            ],
        );
        assert!(edited.unplaced.is_empty());
        assert_eq!(
            String::from_utf8(edited.text).unwrap(),
            "kind: ConfigMap\ndata:\n  # tuned\n  upstream-keepalive-timeout: \"1\"\n  keep-alive: \"66\" # ALB\n  use-gzip: \"true\"\n---\nkind: Service\n"
        );
    }

    #[test]
    fn flow_or_empty_data_leaves_new_keys_to_the_user() {
        for text in [
            "kind: ConfigMap\ndata: {keep-alive: \"60\"}\n",
            "kind: ConfigMap\ndata: {\n  keep-alive: \"60\",\n  use-gzip: \"true\"}\n",
            "kind: ConfigMap\ndata:\n  {\n    keep-alive: \"60\"\n  }\n",
            "kind: ConfigMap\ndata:\n",
            "kind: ConfigMap\n",
        ] {
            let file = SourceFile::new(FileId(0), "cm.yaml", text.as_bytes().to_vec());
            let cm = manifest::read(&file).unwrap();
            let edited = apply(&file, &cm, &[change("upstream-keepalive-timeout", "1")]);
            assert_eq!(edited.unplaced.len(), 1, "{text}");
            assert_eq!(edited.text, text.as_bytes());
        }
        // A block scalar is not cut in half.
        let text = "kind: ConfigMap\ndata:\n  keep-alive: |\n    60\n";
        let file = SourceFile::new(FileId(0), "cm.yaml", text.as_bytes().to_vec());
        let cm = manifest::read(&file).unwrap();
        let edited = apply(&file, &cm, &[change("keep-alive", "66")]);
        assert_eq!(edited.unplaced.len(), 1);
        assert_eq!(edited.text, text.as_bytes());
        // A key already in a flow mapping is still changed in place.
        let text = "kind: ConfigMap\ndata: {keep-alive: \"60\"}\n";
        let file = SourceFile::new(FileId(0), "cm.yaml", text.as_bytes().to_vec());
        let cm = manifest::read(&file).unwrap();
        let edited = apply(&file, &cm, &[change("keep-alive", "66")]);
        assert_eq!(
            String::from_utf8(edited.text).unwrap(),
            "kind: ConfigMap\ndata: {keep-alive: \"66\"}\n"
        );
    }
}
