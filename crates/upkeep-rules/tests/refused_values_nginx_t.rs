//! Values nginx refuses in the directives the rules read, asked of a real
//! nginx (Debian's 1.22): `nginx -t` fails on each with the message upkeep
//! reports (upkeep may add why in parentheses), at the same line; the
//! largest values nginx takes are accepted by both. The rules find nothing
//! on a refused configuration (no `keepalive 0` verdict for `keepalive abc`).

use upkeep_model::SingleFile;
use upkeep_rules::{check, first_refused_value, CheckOptions};

/// A configuration with `main` on line 1, `events` on line 3 and `http` on
/// line 6 (the temporary paths after it, so that lines do not move).
fn conf(main: &str, events: &str, http: &str) -> String {
    format!("{main}\nevents {{\n    {events}\n}}\nhttp {{\n    {http}\n    TEMP_PATHS\n}}\n")
}

fn upstream(body: &str) -> String {
    format!("upstream b {{ {body} }} server {{ location / {{ proxy_pass http://b; }} }}")
}

/// Refused inputs: (main, events, http), the line of the value.
fn refused_cases() -> Vec<(String, u32)> {
    let http = |h: &str| (conf("", "", h), 6);
    let mut cases = vec![
        http(&upstream("server 127.0.0.1:8080; keepalive abc;")),
        http(&upstream(
            "server 127.0.0.1:8080; keepalive 99999999999999999999;",
        )),
        http(&upstream(
            "server 127.0.0.1:8080; keepalive 9223372036854775808;",
        )),
        http(&upstream("server 127.0.0.1:8080; keepalive -1;")),
        http(&upstream(
            "server 127.0.0.1:8080; keepalive 16; keepalive_timeout x;",
        )),
        http(&upstream(
            "server 127.0.0.1:8080; keepalive 16; keepalive_requests x;",
        )),
        http(&upstream(
            "server 127.0.0.1:8080; keepalive 16; keepalive_time 1M;",
        )),
        http(&upstream("server 127.0.0.1:8080 max_fails=abc;")),
        http(&upstream(
            "server 127.0.0.1:8080 fail_timeout=9223372036854775808;",
        )),
        http(&upstream(
            "server 127.0.0.1:8080 max_conns=99999999999999999999;",
        )),
        http(&upstream("server 127.0.0.1:8080 weight=0;")),
        http("keepalive_timeout zz;"),
        http("keepalive_timeout 9223372036854775807s;"),
        http("keepalive_timeout 9223372036854776s;"),
        http("keepalive_timeout 9223372036854775808ms;"),
        http("keepalive_timeout 1y;"),
        http("keepalive_timeout 60s zz;"),
        http("keepalive_timeout 60s 9223372036854775808;"),
        http("keepalive_requests 9223372036854775808;"),
        http("keepalive_time abc;"),
        http("server { location / { proxy_read_timeout abc; proxy_pass http://127.0.0.1:9; } }"),
        http("proxy_connect_timeout 1M;"),
        http("proxy_next_upstream_tries abc;"),
        http("proxy_request_buffering maybe;"),
        http("fastcgi_keep_conn yes;"),
        (conf("", "worker_connections abc;", ""), 3),
        (conf("", "worker_connections 9223372036854775808;", ""), 3),
        (conf("worker_rlimit_nofile 9223372036854775808;", "", ""), 1),
        (
            conf("worker_shutdown_timeout 9223372036854776s;", "", ""),
            1,
        ),
        (conf("worker_processes abc;", "", ""), 1),
        // A count of arguments the directive does not take.
        http("keepalive_timeout 5s 10s 20s;"),
        http("proxy_read_timeout 5s 10s;"),
        http("fastcgi_keep_conn on off;"),
        http("keepalive_requests;"),
        (conf("worker_shutdown_timeout 1h 30m ;", "", ""), 1),
        (conf("", "worker_connections 10 20;", ""), 3),
        // A second line of a directive a block takes once.
        http(&upstream(
            "server 127.0.0.1:8080; keepalive 16; keepalive 32;",
        )),
        http(&upstream(
            "server 127.0.0.1:8080; keepalive 16; keepalive_timeout 5s; keepalive_timeout 6s;",
        )),
        http("keepalive_timeout 5s; keepalive_timeout 6s;"),
        http("keepalive_requests 100; keepalive_requests 1000;"),
        http("fastcgi_keep_conn on; fastcgi_keep_conn off;"),
        http("server { proxy_read_timeout 5s; proxy_read_timeout 9s; }"),
        (
            conf("", "worker_connections 10; worker_connections 20;", ""),
            3,
        ),
        (conf("worker_processes 1; worker_processes 2;", "", ""), 1),
        (
            conf(
                "worker_shutdown_timeout 1s; worker_shutdown_timeout 2s;",
                "",
                "",
            ),
            1,
        ),
    ];
    cases.shrink_to_fit();
    cases
}

/// The largest values nginx takes, `on`/`off` in capitals, and repeated
/// lines nginx takes.
fn accepted_cases() -> Vec<String> {
    vec![
        conf("", "", "keepalive_timeout 9223372036854775s 9223372036854775807;"),
        conf("", "", "keepalive_timeout 9223372036854775807ms;"),
        conf("", "", "proxy_request_buffering OFF; keepalive_requests 9223372036854775807;"),
        conf(
            "",
            "",
            &upstream(
                "server 127.0.0.1:8080 max_fails=9223372036854775807 fail_timeout=1y weight=1; keepalive 16; keepalive_timeout 1w;",
            ),
        ),
        conf(
            "worker_rlimit_nofile 9223372036854775807; worker_shutdown_timeout 9223372036854775s;",
            "worker_connections 9223372036854775807;",
            "",
        ),
        // Lines a block takes more than once, and one line per block.
        conf(
            "",
            "",
            &upstream("server 127.0.0.1:8080; server 127.0.0.1:8081; keepalive 16;"),
        ),
        conf(
            "",
            "",
            "proxy_next_upstream error; proxy_next_upstream timeout; keepalive_timeout 5s; server { keepalive_timeout 6s; location / { keepalive_timeout 7s; } }",
        ),
    ]
}

/// `nginx -t` on `text` in a private prefix: (accepted, output). `None`
/// without an nginx binary outside CI.
fn nginx_t(text: &str) -> Option<(bool, String)> {
    let Some(bin) = upkeep_nginx::NginxBinary::find(None) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "no nginx binary found (CI must install Debian's nginx)"
        );
        eprintln!("warning: no nginx binary; skipped");
        return None;
    };
    let prefix = upkeep_nginx::Prefix::new().unwrap();
    let conf = text.replace("TEMP_PATHS", &prefix.http_temp_paths());
    let main = prefix.write("conf/nginx.conf", &conf).unwrap();
    let out = bin
        .test_config(&main, &prefix.path().join("conf"), prefix.path())
        .unwrap();
    Some((out.ok, out.output))
}

/// nginx's `[emerg]` message and line: `nginx: [emerg] MESSAGE in
/// FILE:LINE` on the terminal, `[emerg] PID#TID: MESSAGE in FILE:LINE` in a
/// log.
fn emerg(output: &str) -> Option<(String, u32)> {
    let line = output.lines().find(|l| l.contains("[emerg]"))?;
    let after = line.split_once("[emerg] ")?.1;
    let message = match after.split_once(": ") {
        Some((pid, rest)) if pid.bytes().all(|b| b.is_ascii_digit() || b == b'#') => rest,
        _ => after,
    };
    let (message, place) = message.rsplit_once(" in ")?;
    let line_no = place.rsplit_once(':')?.1.trim().parse().ok()?;
    Some((message.to_string(), line_no))
}

#[test]
fn nginx_refuses_what_upkeep_refuses_with_the_same_words() {
    let mut asked = 0;
    for (text, line) in refused_cases() {
        let src = SingleFile::parse("nginx.conf", &text.replace("TEMP_PATHS", "")).unwrap();
        let refused = first_refused_value(&src)
            .unwrap_or_else(|| panic!("upkeep takes the value of\n{text}"));
        let at = src.file.line_col(refused.span().start);
        assert_eq!(at.line, line, "{text}");
        // The rules draw no verdict from it.
        let report = check(&src, &CheckOptions::default());
        assert!(report.findings.is_empty(), "{text}\n{:?}", report.findings);

        let Some((ok, output)) = nginx_t(&text) else {
            return;
        };
        asked += 1;
        assert!(!ok, "nginx accepted\n{text}\n{output}");
        let (nginx_says, nginx_line) =
            emerg(&output).unwrap_or_else(|| panic!("no [emerg] line:\n{output}"));
        assert_eq!(nginx_line, line, "{text}\n{output}");
        assert!(
            refused.message == nginx_says
                || refused.message.starts_with(&format!("{nginx_says} (")),
            "upkeep: {}\nnginx:  {nginx_says}\n{text}",
            refused.message
        );
    }
    assert_eq!(asked, refused_cases().len());
}

#[test]
fn nginx_accepts_the_largest_values_upkeep_accepts() {
    for text in accepted_cases() {
        let src = SingleFile::parse("nginx.conf", &text.replace("TEMP_PATHS", "")).unwrap();
        assert!(
            first_refused_value(&src).is_none(),
            "upkeep refuses\n{text}: {:?}",
            first_refused_value(&src).map(|r| r.message)
        );
        let Some((ok, output)) = nginx_t(&text) else {
            return;
        };
        assert!(ok, "nginx refused\n{text}\n{output}");
    }
}
