//! A real nginx decides: every corpus file where upkeep and crossplane
//! disagree goes through `nginx -t`, and small probe configs check the
//! tokenizer rules behind those disagreements and nginx's buffer limits.
//!
//! Needs Debian's nginx and the Lua module (`apt-get install nginx
//! libnginx-mod-http-lua`): the Lua module is loaded with `-g` so that
//! `*_by_lua_block` bodies are read the way the module reads them.

mod common;

use common::{corpus_dir, Verdict, DISAGREEMENTS};
use std::path::{Path, PathBuf};
use std::process::Command;
use upkeep_nginx::{NginxBinary, Prefix};
use upkeep_syntax::{parse, FileId, SourceFile, SyntaxError, SyntaxTree};

const MODULES: [&str; 2] = [
    "/usr/lib/nginx/modules/ndk_http_module.so",
    "/usr/lib/nginx/modules/ngx_http_lua_module.so",
];

struct Nginx {
    binary: NginxBinary,
}

impl Nginx {
    fn new() -> Nginx {
        let binary =
            NginxBinary::find(None).expect("nginx is not installed (apt-get install nginx)");
        for m in MODULES {
            assert!(
                Path::new(m).is_file(),
                "{m} is missing: apt-get install libnginx-mod-http-lua"
            );
        }
        Nginx { binary }
    }

    /// `nginx -t` on `conf` in `prefix`, with the Lua module loaded; what
    /// nginx printed, and whether it succeeded.
    fn test(&self, prefix: &Prefix, conf: &Path) -> (bool, String) {
        let load: String = MODULES
            .iter()
            .map(|m| format!("load_module {m}; "))
            .collect();
        let out = Command::new(&self.binary.path)
            .arg("-t")
            .arg("-q")
            .arg("-p")
            .arg(format!("{}/", prefix.path().display()))
            .arg("-e")
            .arg(prefix.error_log())
            .arg("-c")
            .arg(conf)
            .arg("-g")
            .arg(load)
            .output()
            .expect("run nginx -t");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

fn parse_bytes(path: &str, text: &[u8]) -> (SourceFile, Result<SyntaxTree, SyntaxError>) {
    let file = SourceFile::new(FileId(0), path, text.to_vec());
    let result = parse(&file);
    (file, result)
}

/// Comment out the directives named (at the start of a line, after
/// indentation) without moving any other byte.
fn neutralise(text: &[u8], names: &[&str]) -> Vec<u8> {
    let mut out = text.to_vec();
    let mut line_start = 0;
    while line_start < out.len() {
        let line_end = out[line_start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(out.len(), |n| line_start + n);
        let indent = out[line_start..line_end]
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t'))
            .count();
        let body = &out[line_start + indent..line_end];
        if names.iter().any(|n| {
            body.starts_with(n.as_bytes()) && matches!(body.get(n.len()), Some(b' ' | b'\t' | b';'))
        }) {
            out[line_start + indent] = b'#';
        }
        line_start = line_end + 1;
    }
    out
}

#[test]
fn nginx_confirms_every_disagreement_with_crossplane() {
    let nginx = Nginx::new();
    let Some(dir) = corpus_dir() else {
        return;
    };
    for d in DISAGREEMENTS {
        if matches!(d.nginx, Verdict::NotRun) {
            continue;
        }
        let prefix = Prefix::new().unwrap();
        let original = std::fs::read(dir.join(d.file)).unwrap();
        let text = neutralise(&original, d.neutralise);
        let conf: PathBuf = prefix.path().join("nginx.conf");
        std::fs::write(&conf, &text).unwrap();
        let conf_str = conf.display().to_string();
        let (_, output) = nginx.test(&prefix, &conf);
        let (file, ours) = parse_bytes(d.file, &text);
        match d.nginx {
            Verdict::Rejects { line, message } => {
                let expected = format!("[emerg] {message}");
                let located = format!(" in {conf_str}:{line}\n");
                assert!(
                    output.contains(&expected) && output.contains(&located),
                    "{}: expected nginx to say {expected:?} at line {line}, it said:\n{output}",
                    d.file
                );
                let err = ours.expect_err(d.file);
                assert_eq!(file.line_col(err.span.start).line, line, "{}", d.file);
                assert!(err.to_string().starts_with(message), "{}: {err}", d.file);
            }
            Verdict::Parses => {
                assert!(
                    !output.contains(&format!(" in {conf_str}:")),
                    "{}: nginx stopped inside the file:\n{output}",
                    d.file
                );
                ours.unwrap_or_else(|e| panic!("{}: {}", d.file, e.render(&file)));
            }
            Verdict::UnknownDirective { line, name } => {
                let expected = format!("unknown directive \"{name}\" in {conf_str}:{line}\n");
                assert!(output.contains(&expected), "{}:\n{output}", d.file);
                ours.unwrap_or_else(|e| panic!("{}: {}", d.file, e.render(&file)));
            }
            Verdict::NotRun => unreachable!(),
        }
    }
}

/// The rule crossplane gets wrong: after `${…}` a bare word still ends at
/// whitespace. nginx's own errors show the words it read.
#[test]
fn nginx_ends_a_word_at_whitespace_after_dollar_brace() {
    let nginx = Nginx::new();

    let prefix = Prefix::new().unwrap();
    let text = "worker_processes ${a} 1;\nevents {}\n";
    let conf = prefix.write("nginx.conf", text).unwrap();
    let (ok, output) = nginx.test(&prefix, &conf);
    assert!(!ok);
    assert!(
        output.contains("invalid number of arguments in \"worker_processes\" directive"),
        "{output}"
    );
    let (_, tree) = parse_bytes("t", text.as_bytes());
    let d = tree.unwrap().nodes[0].as_directive().unwrap().clone();
    assert_eq!(d.args().len(), 2);

    let prefix = Prefix::new().unwrap();
    let text = "load_module ${url ;\nevents {}\n";
    let conf = prefix.write("nginx.conf", text).unwrap();
    let (_, output) = nginx.test(&prefix, &conf);
    assert!(output.contains("/${url\" failed"), "{output}");
    let (_, tree) = parse_bytes("t", text.as_bytes());
    let d = tree.unwrap().nodes[0].as_directive().unwrap().clone();
    assert_eq!(d.arg(0).unwrap().value(), b"${url");
}

/// What nginx and upkeep say about one probe: accepted, or the error text.
fn verdicts(nginx: &Nginx, text: &[u8]) -> (Result<(), String>, Result<(), String>) {
    let prefix = Prefix::new().unwrap();
    let conf = prefix.path().join("nginx.conf");
    std::fs::write(&conf, text).unwrap();
    let (ok, output) = nginx.test(&prefix, &conf);
    let theirs = if ok {
        Ok(())
    } else {
        let emerg = output
            .lines()
            .find_map(|l| l.split("[emerg] ").nth(1))
            .unwrap_or(&output);
        Err(emerg.split(" in /").next().unwrap().to_string())
    };
    let (_, tree) = parse_bytes("t", text);
    let ours = tree.map(|_| ()).map_err(|e| e.message);
    (theirs, ours)
}

/// nginx reads the config through a 4 KiB buffer and refuses a token that
/// fills it. The limit depends on how each kind of token ends; upkeep
/// replays it exactly. Each probe is on both sides of the boundary.
#[test]
fn the_4k_token_limit_matches_nginx() {
    let nginx = Nginx::new();
    let mut cases = Vec::new();
    for len in [4093usize, 4094, 4095, 4096, 4097] {
        let word = "a".repeat(len);
        cases.push(format!("env {word};\nevents {{}}\n"));
        cases.push(format!("env {word} ;\nevents {{}}\n"));
        cases.push(format!("env \"{word}\";\nevents {{}}\n"));
        cases.push(format!("env '{word}' ;\nevents {{}}\n"));
        cases.push(format!("#{word}\nevents {{}}\n"));
        // The same, starting elsewhere in the buffer.
        cases.push(format!("events {{}}\n# pad\nenv   {word} ;\n"));
    }
    let mut refused = 0;
    for text in &cases {
        let (theirs, ours) = verdicts(&nginx, text.as_bytes());
        if let Err(t) = &theirs {
            refused += 1;
            assert!(t.starts_with("too long parameter"), "{t}");
        }
        let shape: String = text.chars().take(12).collect();
        assert_eq!(
            theirs.is_ok(),
            ours.is_ok(),
            "{shape}… ({} bytes): nginx {theirs:?}, upkeep {ours:?}",
            text.len()
        );
        if let (Err(t), Err(o)) = (&theirs, &ours) {
            assert_eq!(
                t.split('"').next(),
                o.split('"').next(),
                "{shape}… ({} bytes)",
                text.len()
            );
        }
    }
    assert!(
        refused > 5 && refused < cases.len() - 5,
        "{refused} of {}",
        cases.len()
    );
}

/// The Lua module's lexer sees only part of nginx's buffer: a long bracket
/// that does not close inside it is "missing". Long strings of growing size
/// at several offsets, against a real nginx with the Lua module.
#[test]
fn lua_long_brackets_are_limited_like_nginx() {
    let nginx = Nginx::new();
    let mut differences = Vec::new();
    let mut refused = 0;
    let mut probes = 0;
    for pad in [0usize, 700, 1900, 3000] {
        for len in [500usize, 1500, 2000, 2100, 2500, 3000, 3500, 4000, 4100] {
            let padding = "-".repeat(pad);
            let body = "x".repeat(len);
            let text = format!(
                "events {{}}\n# {padding}\nhttp {{ server {{ location / {{\n\
                 content_by_lua_block {{\n local s = [==[{body}]==] ngx.say(s)\n }}\n}} }} }}\n"
            );
            let (theirs, ours) = verdicts(&nginx, text.as_bytes());
            probes += 1;
            if theirs.is_err() {
                refused += 1;
            }
            if theirs.is_ok() != ours.is_ok() {
                differences.push(format!(
                    "pad {pad} len {len}: nginx {theirs:?}, upkeep {ours:?}"
                ));
            }
        }
    }
    assert!(differences.is_empty(), "{differences:#?}");
    assert!(
        refused > 0 && refused < probes,
        "{refused} of {probes} refused"
    );
}

/// nginx's first `[emerg]` message (without its place) and line, or None
/// when `nginx -t` succeeds.
fn nginx_error_line(nginx: &Nginx, text: &str) -> Option<(String, u32)> {
    let prefix = Prefix::new().unwrap();
    let conf = prefix.write("nginx.conf", text).unwrap();
    let (ok, output) = nginx.test(&prefix, &conf);
    if ok {
        return None;
    }
    let line = output
        .lines()
        .find(|l| l.contains("[emerg] "))
        .unwrap_or(&output);
    let emerg = line.split("[emerg] ").nth(1).unwrap();
    let place = format!(" in {}:", conf.display());
    let (message, at) = emerg.split_once(&place).unwrap_or((emerg, "0"));
    Some((message.to_string(), at.trim().parse().unwrap_or(0)))
}

/// Lua block errors: the same words and the same line as nginx with the
/// Lua module.
#[test]
fn lua_block_errors_match_nginx() {
    let nginx = Nginx::new();
    let wrap = |body: &str| {
        format!("events {{}}\nhttp {{ server {{ location / {{\ncontent_by_lua_block {{{body}")
    };
    let cases = [
        wrap("\n local t = {\n  x = 1\n"),
        wrap("\n local s = [==[ abc }\n }\n} } }\n"),
        wrap("\n -- a comment with } and {\n ngx.say('}')\n }\n} } }\n"),
        wrap("\n local s = \"}\n }\n} } }\n"),
        wrap(" --[[ } ]] }\n} } }\n"),
    ];
    for text in &cases {
        let theirs = nginx_error_line(&nginx, text);
        let file = SourceFile::new(FileId(0), "t", text.as_bytes().to_vec());
        let ours = parse(&file)
            .err()
            .map(|e| (e.to_string(), file.line_col(e.span.start).line));
        // upkeep may add what it expected after nginx's words.
        match (&ours, &theirs) {
            (Some((o, ol)), Some((t, tl))) => {
                assert!(
                    o.starts_with(t.as_str()) && ol == tl,
                    "{text}: {ours:?} {theirs:?}"
                )
            }
            _ => assert_eq!(ours, theirs, "{text}"),
        }
    }
}
