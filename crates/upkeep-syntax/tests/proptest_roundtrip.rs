//! Property tests: no input makes the parser panic, and whatever parses
//! prints back byte for byte with nothing but whitespace between tokens;
//! generated valid configs parse into exactly the directives they were
//! generated from.

use proptest::prelude::*;
use upkeep_syntax::{for_each_token, parse, print, Directive, FileId, Node, SourceFile};

fn check_bytes(text: &[u8]) {
    let file = SourceFile::new(FileId(0), "fuzz.conf", text.to_vec());
    match parse(&file) {
        Ok(tree) => {
            assert_eq!(print(&tree, &file), text);
            let mut cursor = 0usize;
            for_each_token(&tree, |span| {
                assert!(span.start as usize >= cursor && span.end >= span.start);
                assert!(text[cursor..span.start as usize]
                    .iter()
                    .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n')));
                cursor = span.end as usize;
            });
            assert!(text[cursor..]
                .iter()
                .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n')));
        }
        Err(e) => {
            assert!(e.span.start <= e.span.end && e.span.end as usize <= text.len());
            assert!(!e.message.is_empty());
            let _ = e.render(&file);
        }
    }
}

/// Bytes that matter to the tokenizer, with some noise.
fn config_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        8 => prop::sample::select(b" \t\r\n;{}#\"'\\$()[]=-a_zx".to_vec()),
        1 => any::<u8>(),
    ]
}

fn lua_like() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop::sample::select(vec![
        "{", "}", "[[", "]]", "[=[", "]=]", "--", "--[[", "\"", "'", "\\", "\n", " x ", "=",
    ]);
    prop::collection::vec(piece, 0..40).prop_map(|parts| {
        let mut out = b"content_by_lua_block {".to_vec();
        for p in parts {
            out.extend_from_slice(p.as_bytes());
        }
        out.extend_from_slice(b"}\n");
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic_and_round_trip(text in prop::collection::vec(config_byte(), 0..300)) {
        check_bytes(&text);
    }

    #[test]
    fn random_bytes_never_panic(text in prop::collection::vec(any::<u8>(), 0..300)) {
        check_bytes(&text);
    }

    #[test]
    fn lua_bodies_never_panic(text in lua_like()) {
        check_bytes(&text);
    }
}

/// A directive to generate: its name, its arguments as (source, value),
/// and maybe a block.
#[derive(Clone, Debug)]
struct Gen {
    name: String,
    args: Vec<(String, Vec<u8>)>,
    block: Option<Vec<Gen>>,
    comment: Option<String>,
}

/// A word as written and the value nginx gives it.
fn word() -> impl Strategy<Value = (String, Vec<u8>)> {
    let bare = "[a-z0-9_/.:=~^*-]{1,12}".prop_map(|s| {
        let v = s.clone().into_bytes();
        (s, v)
    });
    let variable =
        "[a-z_]{1,8}".prop_map(|s| (format!("${{{s}}}x"), format!("${{{s}}}x").into_bytes()));
    let double = prop::collection::vec(
        prop::sample::select(vec![
            "a", " ", ";", "{", "}", "#", "'", "\\\"", "\\\\", "\\n", "\n", "$", "é",
        ]),
        0..8,
    )
    .prop_map(|parts| {
        let src: String = parts.concat();
        let value: Vec<u8> = parts
            .iter()
            .flat_map(|p| match *p {
                "\\\"" => b"\"".to_vec(),
                "\\\\" => b"\\".to_vec(),
                "\\n" => b"\n".to_vec(),
                other => other.as_bytes().to_vec(),
            })
            .collect();
        (format!("\"{src}\""), value)
    });
    let single = "[a-z ;{}#\"]{0,8}".prop_map(|s| {
        let v = s.clone().into_bytes();
        (format!("'{s}'"), v)
    });
    prop_oneof![4 => bare, 1 => variable, 2 => double, 1 => single]
}

fn directive(depth: u32) -> BoxedStrategy<Gen> {
    let name = "[a-z_]{1,10}";
    let comment = prop::option::weighted(0.2, "[ -~]{0,10}");
    if depth == 0 {
        (name, prop::collection::vec(word(), 0..4), comment)
            .prop_map(|(name, args, comment)| Gen {
                name,
                args,
                block: None,
                comment,
            })
            .boxed()
    } else {
        (
            name,
            prop::collection::vec(word(), 0..3),
            prop::option::weighted(0.4, prop::collection::vec(directive(depth - 1), 0..4)),
            comment,
        )
            .prop_map(|(name, args, block, comment)| Gen {
                name,
                args,
                block,
                comment,
            })
            .boxed()
    }
}

fn whitespace() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![" ", "  ", "\t", "\n", "\r\n", " \n  "])
}

fn render(gens: &[Gen], ws: &mut impl Iterator<Item = &'static str>, out: &mut String) {
    for g in gens {
        out.push_str(ws.next().unwrap_or(" "));
        out.push_str(&g.name);
        for (src, _) in &g.args {
            out.push_str(ws.next().unwrap_or(" "));
            out.push_str(src);
        }
        if let Some(c) = &g.comment {
            // A comment between the arguments and the terminator.
            out.push_str(" #");
            out.push_str(c);
            out.push('\n');
        }
        match &g.block {
            None => out.push(';'),
            Some(children) => {
                out.push_str(" {");
                render(children, ws, out);
                out.push_str(ws.next().unwrap_or(" "));
                out.push('}');
            }
        }
    }
}

fn same(gens: &[Gen], nodes: &[Node]) {
    let dirs: Vec<&Directive> = nodes.iter().filter_map(Node::as_directive).collect();
    assert_eq!(gens.len(), dirs.len());
    for (g, d) in gens.iter().zip(dirs) {
        assert_eq!(d.name().value(), g.name.as_bytes());
        let values: Vec<&[u8]> = d.args().iter().map(|a| a.value()).collect();
        let expected: Vec<&[u8]> = g.args.iter().map(|(_, v)| v.as_slice()).collect();
        assert_eq!(values, expected);
        assert_eq!(d.inner_comments().len(), usize::from(g.comment.is_some()));
        match (&g.block, d.block()) {
            (None, None) => {}
            (Some(children), Some(b)) => same(children, &b.nodes),
            _ => panic!("block mismatch for {}", g.name),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn generated_configs_parse_into_what_was_generated(
        gens in prop::collection::vec(directive(3), 0..6),
        ws in prop::collection::vec(whitespace(), 200),
    ) {
        let mut text = String::new();
        render(&gens, &mut ws.into_iter(), &mut text);
        text.push('\n');
        let file = SourceFile::new(FileId(0), "gen.conf", text.clone().into_bytes());
        let tree = parse(&file).unwrap_or_else(|e| panic!("{}\n{text}", e.render(&file)));
        prop_assert_eq!(print(&tree, &file), text.as_bytes());
        same(&gens, &tree.nodes);
    }
}
