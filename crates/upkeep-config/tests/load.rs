//! Loading: include resolution, globs, cycles, missing files, nginx -T.

use upkeep_config::{ConfigSet, Context, LoadErrorKind, LoadOptions, MemoryLoader};

fn names(set: &ConfigSet, dirs: &[&upkeep_syntax::Directive]) -> Vec<String> {
    let _ = set;
    dirs.iter()
        .map(|d| {
            let mut s = d.name().text().into_owned();
            for a in d.args() {
                s.push(' ');
                s.push_str(&a.text());
            }
            s
        })
        .collect()
}

fn loader(files: &[(&str, &str)]) -> MemoryLoader {
    let mut l = MemoryLoader::new();
    for (p, t) in files {
        l.insert(*p, t.as_bytes());
    }
    l
}

#[test]
fn includes_resolve_against_the_main_directory_and_globs_sort() {
    let l = loader(&[
        (
            "/etc/nginx/nginx.conf",
            "events {}\nhttp {\n  include conf.d/*.conf;\n  include /etc/nginx/extra;\n}\n",
        ),
        ("/etc/nginx/conf.d/b.conf", "server { listen 2; }\n"),
        (
            "/etc/nginx/conf.d/a.conf",
            "server { listen 1; include snippets/loc; }\n",
        ),
        ("/etc/nginx/conf.d/.hidden.conf", "server { listen 9; }\n"),
        ("/etc/nginx/conf.d/c.txt", "garbage {\n"),
        ("/etc/nginx/snippets/loc", "location / { }\n"),
        ("/etc/nginx/extra", "x 1;\n"),
    ]);
    let set = ConfigSet::load("/etc/nginx/nginx.conf", &l, &LoadOptions::default()).unwrap();
    assert_eq!(set.prefix, "/etc/nginx/");
    assert_eq!(set.context, Context::Main);
    let paths: Vec<&str> = set.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/etc/nginx/nginx.conf",
            "/etc/nginx/conf.d/a.conf",
            "/etc/nginx/snippets/loc",
            "/etc/nginx/conf.d/b.conf",
            "/etc/nginx/extra"
        ]
    );
    let root = set.root();
    let http = root.iter().find(|d| d.name_is("http")).unwrap();
    let http_body = set.expand(&http.block().unwrap().nodes);
    assert_eq!(names(&set, &http_body), ["server", "server", "x 1"]);
    let server_a = http_body[0];
    assert_eq!(
        names(&set, &set.expand(&server_a.block().unwrap().nodes)),
        ["listen 1", "location /"]
    );
    let include = http.children().next().unwrap();
    assert_eq!(set.included(include).len(), 2);
    assert!(set.warnings.is_empty());
}

#[test]
fn a_prefix_option_overrides_the_main_directory() {
    let l = loader(&[("main.conf", "include x.conf;\n"), ("/p/x.conf", "a;\n")]);
    let opts = LoadOptions {
        prefix: Some("/p".into()),
        ..LoadOptions::default()
    };
    let set = ConfigSet::load("main.conf", &l, &opts).unwrap();
    assert_eq!(names(&set, &set.root()), ["a"]);
}

#[test]
fn a_missing_include_is_a_warning_unless_strict() {
    let l = loader(&[("n.conf", "a;\n  include nothere.conf;\nb;\n")]);
    let set = ConfigSet::load("n.conf", &l, &LoadOptions::default()).unwrap();
    assert_eq!(set.warnings.len(), 1);
    let w = set.warnings[0].to_string();
    assert!(
        w.starts_with("n.conf:2:3: cannot read included file \"nothere.conf\""),
        "{w}"
    );
    assert_eq!(names(&set, &set.root()), ["a", "b"]);

    let strict = LoadOptions {
        strict: true,
        ..LoadOptions::default()
    };
    let e = ConfigSet::load("n.conf", &l, &strict).unwrap_err();
    assert_eq!(e.kind, LoadErrorKind::IncludeUnreadable);
    assert!(e.to_string().starts_with("n.conf:2:3: "), "{e}");
    assert!(e.render().contains("  include nothere.conf;"));
}

#[test]
fn a_glob_without_matches_is_silent_like_nginx() {
    let l = loader(&[("n.conf", "include conf.d/*.conf;\n")]);
    let set = ConfigSet::load("n.conf", &l, &LoadOptions::default()).unwrap();
    assert!(set.warnings.is_empty());
    assert!(set.root().is_empty());
}

#[test]
fn include_cycles_are_errors_with_the_chain() {
    let l = loader(&[
        ("n.conf", "include a.conf;\n"),
        ("a.conf", "x;\ninclude b.conf;\n"),
        ("b.conf", "include ./a.conf;\n"),
    ]);
    let e = ConfigSet::load("n.conf", &l, &LoadOptions::default()).unwrap_err();
    assert_eq!(e.kind, LoadErrorKind::IncludeCycle);
    assert_eq!(
        e.to_string(),
        "b.conf:1:1: include cycle: a.conf includes b.conf includes a.conf"
    );
}

#[test]
fn a_file_included_twice_is_loaded_once_and_expanded_twice() {
    let l = loader(&[
        (
            "n.conf",
            "location /a { include p; }\nlocation /b { include p; }\n",
        ),
        ("p", "proxy_pass http://u;\n"),
    ]);
    let set = ConfigSet::load("n.conf", &l, &LoadOptions::default()).unwrap();
    assert_eq!(set.files.len(), 2);
    assert_eq!(set.context, Context::Server);
    for loc in set.root() {
        let body = set.expand(&loc.block().unwrap().nodes);
        assert_eq!(names(&set, &body), ["proxy_pass http://u"]);
    }
}

#[test]
fn syntax_errors_in_included_files_name_that_file() {
    let l = loader(&[("n.conf", "include a.conf;\n"), ("a.conf", "x {\n")]);
    let e = ConfigSet::load("n.conf", &l, &LoadOptions::default()).unwrap_err();
    assert!(matches!(e.kind, LoadErrorKind::Syntax(_)));
    assert_eq!(
        e.to_string(),
        "a.conf:2:1: unexpected end of file, expecting \"}\""
    );
}

#[test]
fn an_unreadable_main_file_is_an_error() {
    let e =
        ConfigSet::load("nope.conf", &MemoryLoader::new(), &LoadOptions::default()).unwrap_err();
    assert_eq!(e.kind, LoadErrorKind::MainUnreadable);
    assert!(e.to_string().starts_with("nope.conf: cannot read"));
}

#[test]
fn nginx_t_output_splits_into_files() {
    let dump = "# configuration file /etc/nginx/nginx.conf:\n\
events {}\nhttp { include /etc/nginx/conf.d/*.conf; }\n\n\
# configuration file /etc/nginx/conf.d/app.conf:\n\
upstream u { server 127.0.0.1:1; }\n\n";
    let set = ConfigSet::from_nginx_t(dump.as_bytes(), &LoadOptions::default()).unwrap();
    assert_eq!(set.files.len(), 2);
    assert_eq!(
        set.files[1].text.as_slice(),
        b"upstream u { server 127.0.0.1:1; }\n"
    );
    let http = set.root().into_iter().find(|d| d.name_is("http")).unwrap();
    assert_eq!(
        names(&set, &set.expand(&http.block().unwrap().nodes)),
        ["upstream u"]
    );

    let e = ConfigSet::from_nginx_t(b"events {}\n", &LoadOptions::default()).unwrap_err();
    assert_eq!(e.kind, LoadErrorKind::NotADump);
}

#[test]
fn context_can_be_given_or_guessed() {
    let l = loader(&[("s.conf", "server { listen 80; }\n")]);
    let set = ConfigSet::load("s.conf", &l, &LoadOptions::default()).unwrap();
    assert_eq!(set.context, Context::Http);
    let opts = LoadOptions {
        context: Some("location".parse().unwrap()),
        ..LoadOptions::default()
    };
    let set = ConfigSet::load("s.conf", &l, &opts).unwrap();
    assert_eq!(set.context, Context::Location);
    assert!("nope".parse::<Context>().is_err());
}

/// Files of a large glob are parsed ahead on several threads; ids still
/// follow nginx's depth-first order, and every span names its own file,
/// also when a file of the glob includes another one.
#[test]
fn large_globs_keep_depth_first_ids() {
    let body = "server { listen 80; location / { proxy_pass http://u; } }\n".repeat(2000);
    let mut l = loader(&[
        ("n.conf", "http { include conf.d/*.conf; }\n"),
        ("nested.conf", "x 1;\n"),
    ]);
    for name in ["a", "b", "c", "d"] {
        let mut text = body.clone();
        if name == "b" {
            text.push_str("include nested.conf;\n");
        }
        l.insert(format!("conf.d/{name}.conf"), text);
    }
    let set = ConfigSet::load("n.conf", &l, &LoadOptions::default()).unwrap();
    let paths: Vec<&str> = set.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "n.conf",
            "conf.d/a.conf",
            "conf.d/b.conf",
            "nested.conf",
            "conf.d/c.conf",
            "conf.d/d.conf"
        ]
    );
    for (i, (file, tree)) in set.files.iter().zip(&set.trees).enumerate() {
        assert_eq!(file.id.0 as usize, i);
        assert_eq!(tree.file, file.id);
        for d in tree.directives() {
            assert_eq!(d.span().file, file.id, "{}", file.path);
        }
    }
}
