//! The shared corpus (../shared/corpus next to the repository, or
//! `$UPKEEP_CORPUS`) and the table of files where upkeep and crossplane
//! disagree, each with the reason and what nginx itself says.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The corpus directory, or `None` (with the reason printed) when it is not
/// there: a plain clone of the repository has no corpus beside it, and its
/// tests skip rather than fail. Setting `UPKEEP_CORPUS` makes a missing
/// corpus an error instead.
pub fn corpus_dir() -> Option<PathBuf> {
    let (dir, required) = match std::env::var_os("UPKEEP_CORPUS") {
        Some(d) => (PathBuf::from(d), true),
        None => (
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus"),
            false,
        ),
    };
    if dir.join("SOURCES.tsv").is_file() {
        return Some(dir);
    }
    assert!(
        !required,
        "UPKEEP_CORPUS={} holds no SOURCES.tsv",
        dir.display()
    );
    eprintln!(
        "skipping: the config corpus is not at {} (set UPKEEP_CORPUS to run this test)",
        dir.display()
    );
    None
}

/// Every config file of the corpus (corpus-relative paths, sorted): all
/// files in the `<owner>__<name>/` directories except crossplane's JSON.
pub fn corpus_configs(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for repo in std::fs::read_dir(dir).unwrap().flatten() {
        let name = repo.file_name().to_string_lossy().into_owned();
        if !repo.path().is_dir() || name.starts_with('_') {
            continue;
        }
        for f in std::fs::read_dir(repo.path()).unwrap().flatten() {
            let fname = f.file_name().to_string_lossy().into_owned();
            if !fname.ends_with(".json") {
                out.push(format!("{name}/{fname}"));
            }
        }
    }
    out.sort();
    out
}

/// What a real nginx says about a file.
#[derive(Clone, Copy, Debug)]
pub enum Verdict {
    /// nginx stops reading at `line` with `message` (its `[emerg]` text);
    /// upkeep's syntax error must name the same line and message.
    Rejects { line: u32, message: &'static str },
    /// nginx reads the whole file: whatever it complains about (if
    /// anything) is not located in the file, so it comes after parsing.
    Parses,
    /// nginx stops at a directive it does not know before it reaches the
    /// part in question (the reason says what that shows).
    UnknownDirective { line: u32, name: &'static str },
    /// Not a file nginx can be given (template placeholders left in).
    NotRun,
}

pub struct Disagreement {
    /// Corpus-relative path.
    pub file: &'static str,
    /// Why crossplane's output differs from upkeep's, and who is right.
    pub why: &'static str,
    pub nginx: Verdict,
    /// Directives (by name, at the start of a line) commented out before
    /// running nginx, because this machine lacks what they name (a user, a
    /// module). Line and column numbers stay the same.
    pub neutralise: &'static [&'static str],
}

const DOLLAR_BRACE: &str = "crossplane keeps reading after `${…}` past whitespace and joins two \
words into one argument; nginx ends a bare word at whitespace (`$` then `{` only keeps the `{` in \
the word). The probe `worker_processes ${a} 1;` in nginx_decides.rs gets nginx's \"invalid number \
of arguments\", so nginx sees two words.";

const LONG_BRACKETS: &str = "crossplane counts braces inside Lua long strings/comments \
(`[[ … ]]`, `--[==[ … ]==]`) and cuts the Lua block short, turning the rest into bogus \
directives; the Lua module's lexer skips them, and nginx with the module reads the file through.";

const MUST_DIE: &str = "the Lua test marks this config `--- must_die`; crossplane accepts it, \
nginx with the Lua module refuses it and so does upkeep, at the same line.";

const SYNTAX_ERROR: &str = "a syntax error: nginx stops at its first error; crossplane reports \
something else (or elsewhere) and keeps going, so its partial tree is not comparable.";

pub const DISAGREEMENTS: &[Disagreement] = &[
    Disagreement {
        file: "nginx__nginx-tests/access_log.t__nginx.conf",
        why: DOLLAR_BRACE,
        // The test's pid path (/tmp/nginx-tests-testdir) does not exist
        // here; nginx fails opening it after parsing.
        nginx: Verdict::Parses,
        neutralise: &[],
    },
    Disagreement {
        file: "nginx__nginx-tests/access_log.t__nginx.conf.raw",
        why: DOLLAR_BRACE,
        nginx: Verdict::NotRun,
        neutralise: &[],
    },
    Disagreement {
        file: "nginxinc__nginx-go-crossplane/testdata__configs__broken1__nginx.conf",
        why: "`server_name ${url ;`: crossplane's argument is \"${url \" with the space; nginx's \
word ends at the space (the probe `load_module ${url ;` makes nginx print the word it read: \
\"${url\").",
        nginx: Verdict::Parses,
        neutralise: &[],
    },
    Disagreement {
        file: "nginxinc__nginx-go-crossplane/testdata__configs__broken1__nginx2.conf",
        why: "as broken1/nginx.conf (`${url ` with a trailing space in crossplane); nginx stops \
earlier at the directive name `server_name#` (a `#` inside a word is not a comment, which both \
agree on).",
        nginx: Verdict::UnknownDirective {
            line: 5,
            name: "server_name#",
        },
        neutralise: &[],
    },
    Disagreement {
        file: "nginxinc__crossplane/tests__configs__messy__nginx.conf",
        why: DOLLAR_BRACE,
        nginx: Verdict::Parses,
        neutralise: &["user"],
    },
    Disagreement {
        file: "nginxinc__NGINX-Demos/consul-template-demo__nginx__nginx.conf",
        why: "a consul-template source, not an nginx config: nginx refuses `{{range …}}` at the \
first `{`; crossplane produces a tree from it.",
        nginx: Verdict::Rejects {
            line: 1,
            message: "unexpected \"{\"",
        },
        neutralise: &[],
    },
    Disagreement {
        file: "nginxinc__crossplane/tests__configs__quote-behavior__nginx.conf",
        why: "`\"left\"-quote`: nginx demands a space, `;`, `{` or `)` after a closing quote; \
crossplane accepts it.",
        nginx: Verdict::Rejects {
            line: 1,
            message: "unexpected \"-\"",
        },
        neutralise: &[],
    },
    Disagreement {
        file: "nginxinc__crossplane/tests__configs__includes-globbed__servers__locations__not-included.conf",
        why: SYNTAX_ERROR,
        nginx: Verdict::Rejects {
            line: 3,
            message: "unexpected end of file, expecting \";\" or \"}\"",
        },
        neutralise: &[],
    },
    Disagreement {
        file: "nginxinc__crossplane/tests__configs__missing-semicolon__broken-above.conf",
        why: SYNTAX_ERROR,
        nginx: Verdict::Rejects {
            line: 5,
            message: "unexpected \"}\"",
        },
        neutralise: &[],
    },
    Disagreement {
        file: "nginxinc__crossplane/tests__configs__missing-semicolon__broken-below.conf",
        why: SYNTAX_ERROR,
        nginx: Verdict::Rejects {
            line: 8,
            message: "unexpected \"}\"",
        },
        neutralise: &[],
    },
    Disagreement {
        file: "nginxinc__nginx-go-crossplane/testdata__configs__braces__extra-brace.conf",
        why: SYNTAX_ERROR,
        nginx: Verdict::Rejects {
            line: 11,
            message: "unexpected \"}\"",
        },
        neutralise: &["user", "load_module"],
    },
    Disagreement {
        file: "nginxinc__nginx-go-crossplane/testdata__configs__braces__missing-brace.conf",
        why: "a syntax error; crossplane counts lines differently at the end of the file (22, \
nginx 23: the file ends with a line feed).",
        nginx: Verdict::Rejects {
            line: 23,
            message: "unexpected end of file, expecting \"}\"",
        },
        neutralise: &["user", "load_module", "f5_metrics", "api"],
    },
    Disagreement {
        file: "nginxinc__nginx-go-crossplane/testdata__configs__premature-eof__nginx.conf",
        why: SYNTAX_ERROR,
        nginx: Verdict::Rejects {
            line: 3,
            message: "unexpected end of file, expecting \";\" or \"}\"",
        },
        neutralise: &[],
    },
    Disagreement {
        file: "openresty__lua-nginx-module/t__132-lua-blocks.t__TEST_5.nginx.conf",
        why: LONG_BRACKETS,
        nginx: Verdict::Parses,
        neutralise: &[],
    },
    Disagreement {
        file: "openresty__lua-nginx-module/t__132-lua-blocks.t__TEST_6.nginx.conf",
        why: LONG_BRACKETS,
        nginx: Verdict::Parses,
        neutralise: &[],
    },
    Disagreement {
        file: "openresty__lua-nginx-module/t__132-lua-blocks.t__TEST_9.nginx.conf",
        why: LONG_BRACKETS,
        nginx: Verdict::Parses,
        neutralise: &[],
    },
    Disagreement {
        file: "openresty__lua-nginx-module/t__132-lua-blocks.t__TEST_20.nginx.conf",
        why: LONG_BRACKETS,
        nginx: Verdict::Parses,
        neutralise: &[],
    },
    Disagreement {
        file: "openresty__lua-nginx-module/t__132-lua-blocks.t__TEST_21.nginx.conf",
        why: LONG_BRACKETS,
        nginx: Verdict::Parses,
        neutralise: &[],
    },
    Disagreement {
        file: "openresty__lua-nginx-module/t__132-lua-blocks.t__TEST_10.nginx.conf",
        why: MUST_DIE,
        nginx: Verdict::Rejects {
            line: 16,
            message: "Lua code block missing the closing long bracket \"]]\"",
        },
        neutralise: &[],
    },
    Disagreement {
        file: "openresty__lua-nginx-module/t__132-lua-blocks.t__TEST_11.nginx.conf",
        why: MUST_DIE,
        nginx: Verdict::Rejects {
            line: 16,
            message: "Lua code block missing the closing long bracket \"]==]\"",
        },
        neutralise: &[],
    },
    Disagreement {
        file: "openresty__lua-nginx-module/t__132-lua-blocks.t__TEST_12.nginx.conf",
        why: MUST_DIE,
        nginx: Verdict::Rejects {
            line: 16,
            message: "Lua code block missing the closing long bracket \"]]\"",
        },
        neutralise: &[],
    },
    Disagreement {
        file: "openresty__lua-nginx-module/t__132-lua-blocks.t__TEST_13.nginx.conf",
        why: MUST_DIE,
        nginx: Verdict::Rejects {
            line: 16,
            message: "Lua code block missing the closing long bracket \"]=]\"",
        },
        neutralise: &[],
    },
    Disagreement {
        file: "openresty__lua-nginx-module/t__132-lua-blocks.t__TEST_14.nginx.conf",
        why: MUST_DIE,
        nginx: Verdict::Rejects {
            line: 19,
            message: "unexpected end of file, expecting \"}\"",
        },
        neutralise: &[],
    },
    Disagreement {
        file: "openresty__lua-nginx-module/t__132-lua-blocks.t__TEST_24.nginx.conf",
        why: "must_die \"too long bracket\": the long string is longer than what the Lua \
module's lexer sees of nginx's 4 KiB read buffer, so nginx reports the closing bracket missing; \
crossplane accepts it. upkeep replays nginx's buffer arithmetic.",
        nginx: Verdict::Rejects {
            line: 16,
            message: "Lua code block missing the closing long bracket \"]]\"",
        },
        neutralise: &[],
    },
    Disagreement {
        file: "openresty__lua-nginx-module/t__166-ssl-client-hello.t__TEST_41.nginx.conf",
        why: "crossplane knows a fixed list of `*_by_lua_block` directives without \
`ssl_client_hello_by_lua_block` and parses its Lua body as nginx directives; the Lua module \
(Debian's 0.10.23 has the directive) reads it as Lua and nginx gets through the file (it then \
complains that no ssl is configured, after parsing).",
        nginx: Verdict::Parses,
        neutralise: &[],
    },
    Disagreement {
        file: "openresty__lua-nginx-module/t__189-precontent.t__TEST_15.nginx.conf",
        why: "crossplane's fixed list lacks `precontent_by_lua_block` (a recent lua-nginx-module \
directive) and parses the Lua body as directives. Every lua-nginx-module directive named `*_by_lua_block` \
reads its body with the Lua lexer, which is what upkeep does for the whole suffix. Debian's \
module (0.10.23) predates the directive, so this nginx stops at its name and cannot show more.",
        nginx: Verdict::UnknownDirective {
            line: 15,
            name: "precontent_by_lua_block",
        },
        neutralise: &[],
    },
];

pub fn disagreement(file: &str) -> Option<&'static Disagreement> {
    DISAGREEMENTS.iter().find(|d| d.file == file)
}
