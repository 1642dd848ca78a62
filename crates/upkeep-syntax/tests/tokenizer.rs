//! The tokenizer against nginx's rules (`ngx_conf_read_token`), one rule per
//! test. Each expectation was worked out from nginx's source; the ones that
//! matter for acceptance are also checked against a real nginx in
//! `tests/nginx_agrees.rs`.

use upkeep_syntax::{parse, print, Directive, FileId, Node, QuoteStyle, SourceFile, SyntaxTree};

fn file(text: &[u8]) -> SourceFile {
    SourceFile::new(FileId(0), "test.conf", text.to_vec())
}

fn parse_ok(text: &[u8]) -> SyntaxTree {
    let f = file(text);
    let tree = parse(&f).unwrap_or_else(|e| panic!("{}", e.render(&f)));
    assert_eq!(print(&tree, &f), text, "round trip");
    tree
}

fn err(text: &[u8]) -> String {
    let f = file(text);
    match parse(&f) {
        Ok(t) => panic!("expected an error, got {t:?}"),
        Err(e) => {
            let pos = f.line_col(e.span.start);
            format!("{}:{}: {e}", pos.line, pos.col)
        }
    }
}

/// Directive names and argument values, blocks in braces.
fn shape(nodes: &[Node]) -> String {
    let mut out = Vec::new();
    for n in nodes {
        match n {
            Node::Comment(_) => out.push("#".to_string()),
            Node::Directive(d) => out.push(directive_shape(d)),
        }
    }
    out.join(" ")
}

fn directive_shape(d: &Directive) -> String {
    let mut s = format!("{:?}", d.name().text());
    for a in d.args() {
        s.push_str(&format!(" {:?}", a.text()));
    }
    match &d.block() {
        None => s.push(';'),
        Some(b) if b.verbatim().is_some() => s.push_str(" {verbatim}"),
        Some(b) => s.push_str(&format!(" {{{}}}", shape(&b.nodes))),
    }
    s
}

#[test]
fn bare_words_end_at_whitespace_semicolon_and_brace_only() {
    let t = parse_ok(b"a b}c d#e g\"f;\n");
    assert_eq!(shape(&t.nodes), r#""a" "b}c" "d#e" "g\"f";"#);
}

#[test]
fn quoted_strings_hold_punctuation_and_span_lines() {
    let t = parse_ok(b"a \"x;{}#\n y\" 'q\"r';\n");
    assert_eq!(shape(&t.nodes), "\"a\" \"x;{}#\\n y\" \"q\\\"r\";");
    let d = t.directives().next().unwrap();
    assert_eq!(d.arg(0).unwrap().quote(), QuoteStyle::Double);
    assert_eq!(d.arg(1).unwrap().quote(), QuoteStyle::Single);
}

#[test]
fn escapes_resolve_like_nginx() {
    let t = parse_ok(br#"a "\"\'\\\t\r\n\x" b\;c \$;"#);
    let d = t.directives().next().unwrap();
    assert_eq!(d.arg(0).unwrap().value(), b"\"'\\\t\r\n\\x");
    assert_eq!(d.arg(1).unwrap().value(), b"b\\;c");
    assert_eq!(d.arg(2).unwrap().value(), b"\\$");
}

#[test]
fn dollar_brace_stays_in_the_word() {
    let t = parse_ok(b"set $a ${b}c;\nif ($x) { return 1; }\n");
    assert_eq!(
        shape(&t.nodes),
        r#""set" "$a" "${b}c"; "if" "($x)" {"return" "1";}"#
    );
}

#[test]
fn closing_paren_may_follow_a_quote() {
    let t = parse_ok(b"if ($a = \"b\") { }\n");
    assert_eq!(shape(&t.nodes), r#""if" "($a" "=" "b" ")" {}"#);
}

#[test]
fn comments_only_where_a_token_can_start() {
    let t = parse_ok(b"# top\nlocation ~ (?:#.*#) { # in block\n  a 1 # between\n  2; }\n");
    assert_eq!(
        shape(&t.nodes),
        r#"# "location" "~" "(?:#.*#)" {# "a" "1" "2";}"#
    );
    let loc = t.directives().next().unwrap();
    let a = loc.children().next().unwrap();
    assert_eq!(a.inner_comments().len(), 1);
}

#[test]
fn crlf_tabs_and_non_utf8_survive() {
    let text = b"a\t\"\xff\xfe\";\r\n# c\xe9\r\nb \xc3(;\r\n";
    let t = parse_ok(text);
    let d = t.directives().next().unwrap();
    assert_eq!(d.arg(0).unwrap().value(), b"\xff\xfe");
    // The comment span stops before the CR.
    match &t.nodes[1] {
        Node::Comment(c) => assert_eq!(&text[c.span.range()], b"# c\xe9"),
        n => panic!("{n:?}"),
    }
}

#[test]
fn lua_block_bodies_are_verbatim() {
    let body =
        "\n  local s = \"}\" -- }\n  local t = [==[ } ]] ]==] --[[ } ]]\n  if x then y = { } end\n";
    let text = format!("content_by_lua_block {{{body}}}\nnext;\n");
    let t = parse_ok(text.as_bytes());
    let d = t.directives().next().unwrap();
    let b = d.block().unwrap();
    assert_eq!(
        &text.as_bytes()[b.verbatim().unwrap().range()],
        body.as_bytes()
    );
    assert!(b.nodes.is_empty());
    assert_eq!(t.directives().count(), 2);
}

#[test]
fn lua_strings_do_not_span_lines() {
    // The `"` is not closed on its line, so the `}` after it counts.
    let t = parse_ok(b"access_by_lua_block { x = \"a\n}\n");
    assert_eq!(t.directives().count(), 1);
}

#[test]
fn errors_are_worded_like_nginx() {
    assert_eq!(
        err(b"a;\n}\n"),
        r#"2:1: unexpected "}", expecting a directive name or end of file"#
    );
    assert_eq!(
        err(b"a b }"),
        r#"1:5: unexpected "}", expecting ";" or "{""#
    );
    assert_eq!(
        err(b"a {\n b;\n"),
        r#"3:1: unexpected end of file, expecting "}""#
    );
    assert_eq!(
        err(b"a b"),
        r#"1:4: unexpected end of file, expecting ";" or "}""#
    );
    assert_eq!(
        err(b"a b;\n;"),
        r#"2:1: unexpected ";", expecting a directive name"#
    );
    assert_eq!(
        err(b"{"),
        r#"1:1: unexpected "{", expecting a directive name"#
    );
    assert_eq!(
        err(b"a \"b\"c;"),
        r#"1:6: unexpected "c", expecting a space after the closing quote, ";" or "{""#
    );
    assert!(err(b"a \"b;\n").starts_with("1:3: unexpected end of file inside the quoted string"));
    assert!(
        err(b"x_by_lua_block { [=[ ]] }\n}\n").contains("missing the closing long bracket \"]=]\"")
    );
    assert!(err(b"x_by_lua_block { {\n").contains("terminating characters for lua code block"));
}

#[test]
fn a_token_longer_than_nginx_buffer_is_refused() {
    let long = "x".repeat(5000);
    let e = err(format!("a {long};\n").as_bytes());
    assert!(
        e.starts_with("1:3: too long parameter \"xxxxxxxxxx...\" started"),
        "{e}"
    );
    let e = err(format!("a \"{long}\";\n").as_bytes());
    assert!(
        e.contains("probably missing terminating \"\"\" character"),
        "{e}"
    );
    // Up to the limit is fine.
    parse_ok(format!("a {};\n", "x".repeat(4000)).as_bytes());
}

#[test]
fn nesting_is_limited_with_a_clear_error() {
    let deep = "a {".repeat(upkeep_syntax::MAX_DEPTH + 1);
    assert!(err(deep.as_bytes()).contains("nested more than"));
    let ok = format!(
        "{}{}",
        "a {".repeat(upkeep_syntax::MAX_DEPTH),
        "}".repeat(upkeep_syntax::MAX_DEPTH)
    );
    parse_ok(ok.as_bytes());
}

#[test]
fn rendering_shows_the_line_with_a_caret_and_cuts_long_lines() {
    let f = file(b"events {}\nhttp {\n\tlisten 80\n}\n");
    let e = parse(&f).unwrap_err();
    assert_eq!(
        e.render(&f),
        "test.conf:4:1: unexpected \"}\", expecting \";\" or \"{\"\n  |\n4 | }\n  | ^\n"
    );
    let long = format!("{} }}\n", "a ".repeat(500));
    let f = file(long.as_bytes());
    let r = parse(&f).unwrap_err().render(&f);
    let shown = r.lines().nth(2).unwrap();
    assert!(shown.chars().count() < 140, "{shown}");
    assert!(
        shown.starts_with("1 | …") && shown.ends_with(" }"),
        "{shown}"
    );
    let caret = r.lines().nth(3).unwrap();
    assert_eq!(caret.find('^'), Some(shown.chars().count() - 1), "{r}");
    // Not UTF-8: one column per byte.
    let f = file(b"a \xff\xfe \"b\"c;\n");
    let r = parse(&f).unwrap_err().render(&f);
    assert!(r.starts_with("test.conf:1:9: unexpected \"c\""), "{r}");
    assert!(r.contains(&format!("\n  |{}^\n", " ".repeat(9))), "{r}");
}
