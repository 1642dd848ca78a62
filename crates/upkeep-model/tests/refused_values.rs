//! Values nginx refuses are not read as something else: `keepalive abc` is
//! not `keepalive 0`, `keepalive_timeout zz` is not the 60s default; the
//! first one is found at its place, includes expanded. (What nginx 1.22
//! says for each is in upkeep-rules' tests/refused_values_nginx_t.rs.)

use upkeep_config::{ConfigSet, LoadErrorKind, LoadOptions, MemoryLoader};
use upkeep_model::{check_values, first_refused_value, Model, NginxVersion, Pool, SingleFile};

const V1_28: NginxVersion = NginxVersion::new(1, 28, 0);

fn load(text: &str) -> SingleFile {
    SingleFile::parse("nginx.conf", text).expect("test config parses")
}

/// The first refused value's line, column and message.
fn refused(text: &str) -> Option<(u32, u32, String)> {
    let src = load(text);
    first_refused_value(&src).map(|r| {
        let at = src.file.line_col(r.span().start);
        (at.line, at.col, r.message)
    })
}

fn upstream_conf(body: &str) -> String {
    format!(
        "http {{\n    upstream b {{\n        server 127.0.0.1:8080;\n        {body}\n    }}\n}}\n"
    )
}

#[test]
fn a_keepalive_count_nginx_refuses_is_no_pool_of_size_zero() {
    for count in [
        "abc",
        "99999999999999999999",
        "9223372036854775808",
        "-1",
        "+1",
    ] {
        let text = upstream_conf(&format!("keepalive {count};"));
        let src = load(&text);
        let m = Model::build(&src, V1_28);
        let pool = m.upstream(0).pool(V1_28);
        assert!(matches!(pool, Pool::Refused { .. }), "{count}: {pool:?}");
        assert!(!m.upstream(0).is_keepalive(V1_28));
        assert_eq!(
            refused(&text),
            Some((
                4,
                19,
                format!("invalid value \"{count}\" in \"keepalive\" directive")
                    + if count.bytes().all(|b| b.is_ascii_digit()) {
                        " (nginx takes at most 9223372036854775807)"
                    } else {
                        ""
                    }
            )),
            "{count}"
        );
    }
    // `keepalive 0` is a value of its own (refused before 1.29.7, taken
    // since): left to the rules.
    let text = upstream_conf("keepalive 0;");
    let src = load(&text);
    let m = Model::build(&src, V1_28);
    assert!(matches!(m.upstream(0).pool(V1_28), Pool::Disabled { .. }));
    assert_eq!(refused(&text), None);
    let text = upstream_conf("keepalive 9223372036854775807;");
    let m_src = load(&text);
    let m = Model::build(&m_src, V1_28);
    assert_eq!(m.upstream(0).pool(V1_28).size(), 9223372036854775807);
}

#[test]
fn upstream_times_and_counts_nginx_refuses_are_not_the_defaults() {
    let text = upstream_conf(
        "keepalive 16;\n        keepalive_timeout zz;\n        keepalive_requests x;",
    );
    let src = load(&text);
    let m = Model::build(&src, V1_28);
    assert_eq!(m.upstream(0).keepalive_timeout_ms(V1_28), None);
    assert_eq!(m.upstream(0).keepalive_requests(V1_28), None);
    assert_eq!(
        refused(&text),
        Some((
            5,
            27,
            "\"keepalive_timeout\" directive invalid value".into()
        ))
    );
    // The largest time nginx takes is read, not refused.
    let text = upstream_conf("keepalive 16;\n        keepalive_timeout 9223372036854775s;");
    let src = load(&text);
    let m = Model::build(&src, V1_28);
    assert_eq!(
        m.upstream(0).keepalive_timeout_ms(V1_28),
        Some(9_223_372_036_854_775_000)
    );
    assert_eq!(refused(&text), None);
    // One second more is refused.
    let text = upstream_conf("keepalive 16;\n        keepalive_timeout 9223372036854776s;");
    let src = load(&text);
    let m = Model::build(&src, V1_28);
    assert_eq!(m.upstream(0).keepalive_timeout_ms(V1_28), None);
    assert_eq!(
        refused(&text).map(|r| r.2),
        Some("\"keepalive_timeout\" directive invalid value (nginx takes at most 9223372036854775s, 9223372036854775807ms)".into())
    );
    // Without a line, the defaults.
    let text = upstream_conf("keepalive 16;");
    let src = load(&text);
    let m = Model::build(&src, V1_28);
    assert_eq!(m.upstream(0).keepalive_timeout_ms(V1_28), Some(60_000));
    assert_eq!(m.upstream(0).keepalive_requests(V1_28), Some(1000));
}

#[test]
fn every_value_the_model_reads_is_judged_in_its_context() {
    let cases: &[(&str, (u32, u32), &str)] = &[
        (
            "http {\n    keepalive_timeout zz;\n}\n",
            (2, 23),
            "\"keepalive_timeout\" directive invalid value",
        ),
        (
            "http {\n    keepalive_timeout 75s 1ms;\n}\n",
            (2, 27),
            "\"keepalive_timeout\" directive invalid value",
        ),
        (
            "http {\n    server {\n        location / {\n            proxy_read_timeout 1y;\n        }\n    }\n}\n",
            (4, 32),
            "\"proxy_read_timeout\" directive invalid value (a time in milliseconds takes no `y` or `M` unit)",
        ),
        (
            "http {\n    server {\n        if ($x) {\n            proxy_request_buffering maybe;\n        }\n    }\n}\n",
            (4, 37),
            "invalid value \"maybe\" in \"proxy_request_buffering\" directive, it must be \"on\" or \"off\"",
        ),
        (
            "http {\n    keepalive_requests 1e3;\n}\n",
            (2, 24),
            "\"keepalive_requests\" directive invalid number",
        ),
        (
            "events {\n    worker_connections 1k;\n}\n",
            (2, 24),
            "invalid number \"1k\"",
        ),
        (
            "worker_rlimit_nofile 65536;\nworker_processes four;\n",
            (2, 18),
            "\"worker_processes\" directive invalid value",
        ),
        (
            "worker_shutdown_timeout 10;\nworker_rlimit_nofile lots;\n",
            (2, 22),
            "\"worker_rlimit_nofile\" directive invalid number",
        ),
        (
            "http {\n    upstream b {\n        server 10.0.0.1 backup max_fails=3 fail_timeout=10x;\n    }\n}\n",
            (3, 44),
            "invalid parameter \"fail_timeout=10x\"",
        ),
        (
            "http {\n    upstream b {\n        server 10.0.0.1 weight=0;\n    }\n}\n",
            (3, 25),
            "invalid parameter \"weight=0\" (the weight is at least 1)",
        ),
    ];
    for (text, (line, col), message) in cases {
        assert_eq!(
            refused(text),
            Some((*line, *col, message.to_string())),
            "{text}"
        );
    }
    // The first one in nginx's reading order.
    assert_eq!(
        refused("worker_processes x;\nhttp {\n    keepalive_timeout y;\n}\n").map(|r| r.0),
        Some(1)
    );
}

#[test]
fn values_in_contexts_the_model_does_not_read_are_left_alone() {
    // A stream proxy, a directive of the same name out of its context
    // (nginx says "not allowed here"), a map's values, a variable-free
    // `server` of http: none is read as an upstream value.
    for text in [
        "stream {\n    upstream s { server 10.0.0.1:53 max_fails=x; }\n    proxy_timeout abc;\n}\n",
        "http {\n    worker_connections abc;\n}\n",
        "http {\n    map $x $y { default keepalive_timeout; }\n    server { keepalive abc; }\n}\n",
        "http {\n    proxy_request_buffering On;\n    keepalive_timeout 1w 1y;\n}\n",
    ] {
        assert_eq!(refused(text), None, "{text}");
    }
}

#[test]
fn a_refused_value_in_an_included_file_is_a_load_error_there() {
    let mut files = MemoryLoader::new();
    files.insert(
        "/etc/nginx/nginx.conf",
        b"events {}\nhttp {\n    include conf.d/*.conf;\n}\n".to_vec(),
    );
    files.insert(
        "/etc/nginx/conf.d/app.conf",
        b"upstream app {\n    server 127.0.0.1:8080;\n    keepalive abc;\n}\n".to_vec(),
    );
    let set = ConfigSet::load("/etc/nginx/nginx.conf", &files, &LoadOptions::default()).unwrap();
    let err = check_values(&set).unwrap_err();
    assert_eq!(err.kind, LoadErrorKind::RefusedValue);
    assert_eq!(
        err.to_string(),
        "/etc/nginx/conf.d/app.conf:3:15: invalid value \"abc\" in \"keepalive\" directive"
    );
    assert!(err.render().contains("keepalive abc;"), "{}", err.render());
}
