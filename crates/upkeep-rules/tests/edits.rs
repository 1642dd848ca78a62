//! Fix placement keeps the file's own style: indentation (spaces or tabs),
//! CRLF line endings, one-line blocks.

use upkeep_model::SingleFile;
use upkeep_rules::{check, CheckOptions};

/// Applies every fix of `rule` to `text`.
fn fixed(text: &str, rule: &str) -> String {
    let src = SingleFile::parse("nginx.conf", text).unwrap();
    let report = check(&src, &CheckOptions::default());
    let mut edits: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.rule == rule)
        .filter_map(|f| f.fix.as_ref())
        .flat_map(|f| f.edits.clone())
        .collect();
    assert!(!edits.is_empty(), "no {rule} fix for:\n{text}");
    edits.sort();
    let mut bytes = text.as_bytes().to_vec();
    for e in edits.iter().rev() {
        bytes.splice(e.span.range(), e.content.bytes());
    }
    String::from_utf8(bytes).unwrap()
}

#[test]
fn tabs_are_kept() {
    let text = "events {}\nhttp {\n\tupstream app {\n\t\tserver 127.0.0.1:8000;\n\t}\n\tserver {\n\t\tlocation / { proxy_pass http://app; }\n\t}\n}\n";
    let out = fixed(text, "U001");
    assert!(
        out.contains("\t\tserver 127.0.0.1:8000;\n\t\tkeepalive 32;\n\t\tkeepalive_timeout 1800ms;  # backend unknown"),
        "{out}"
    );
}

#[test]
fn crlf_line_endings_are_kept() {
    let text = "events {}\r\nhttp {\r\n    upstream app {\r\n        server 127.0.0.1:8000;\r\n    }\r\n    server {\r\n        location / { proxy_pass http://app; }\r\n    }\r\n}\r\n";
    let out = fixed(text, "U001");
    assert!(
        out.contains("        server 127.0.0.1:8000;\r\n        keepalive 32;\r\n        keepalive_timeout 1800ms;  # "),
        "{out:?}"
    );
    assert!(
        !out.replace("\r\n", "").contains('\n'),
        "a bare LF slipped in: {out:?}"
    );
}

#[test]
fn one_line_blocks_get_inline_insertions() {
    // No comment on a shared line: it would swallow the closing braces.
    let text = "events {}\nhttp { upstream app { server 127.0.0.1:8000; } server { location / { proxy_pass http://app; } } }\n";
    let out = fixed(text, "U001");
    assert!(
        out.contains(
            "upstream app { server 127.0.0.1:8000; keepalive 32; keepalive_timeout 1800ms; }"
        ),
        "{out}"
    );
}

#[test]
fn trailing_comments_stay_on_their_line() {
    let text = "events {}\nhttp {\n    upstream app {\n        server 127.0.0.1:8000; # primary\n    }\n    server {\n        location / { proxy_pass http://app; }\n    }\n}\n";
    let out = fixed(text, "U001");
    assert!(
        out.contains("server 127.0.0.1:8000; # primary\n        keepalive 32;\n"),
        "{out}"
    );
}

#[test]
fn empty_upstream_block_gets_an_indented_line() {
    let text = "events {}\nhttp {\n    upstream app {\n        include servers.conf;\n    }\n    server {\n        location / { proxy_pass http://app; }\n    }\n}\n";
    // The include cannot be read here: the directive is inserted before it,
    // inside the block, with the block's indentation.
    let out = fixed(text, "U001");
    assert!(
        out.contains("    upstream app {\n        keepalive 32;\n        keepalive_timeout 1800ms;  # backend unknown: below Gunicorn's 2s default, the shortest common backend idle timeout\n        include servers.conf;\n"),
        "{out}"
    );
}
