//! Fixes converge in one run: over configs built from the shapes that make
//! rules fire (settings added, repeated and reordered at every level), one
//! `fix` run with the real rules leaves nothing for a second run to change.

use proptest::prelude::*;
use upkeep_config::{ConfigSet, LoadError, LoadOptions, MemoryLoader};
use upkeep_fix::{fix, FixOptions, FixRun, Overlay, Round};
use upkeep_rules::{check, CheckOptions, NginxVersion, VersionSource};

mod common;
use common::Layered;

const MAIN: &str = "/etc/nginx/nginx.conf";

fn run(
    text: &str,
    opts: &CheckOptions,
    fix_opts: &FixOptions,
) -> Result<FixRun<ConfigSet>, LoadError> {
    let mut base = MemoryLoader::new();
    base.insert(MAIN, text.as_bytes().to_vec());
    let mut checker = |overlay: &Overlay| -> Result<Round<ConfigSet>, LoadError> {
        let set = ConfigSet::load(
            MAIN,
            &Layered {
                top: overlay,
                base: &base,
            },
            &LoadOptions::default(),
        )?;
        let findings = check(&set, opts).findings;
        Ok(Round {
            sources: set,
            findings,
        })
    };
    fix(&mut checker, fix_opts)
}

fn final_text(run: &FixRun<ConfigSet>, original: &str) -> String {
    run.changes()
        .find(|(p, _, _)| *p == MAIN)
        .map(|(_, _, new)| String::from_utf8_lossy(new).into_owned())
        .unwrap_or_else(|| original.to_string())
}

/// Lines a block may hold. A block takes any of them, in any order, some
/// twice where nginx accepts a repeat (`ip_hash` warns "load balancing
/// method redefined"; `proxy_set_header` is a list).
const MAIN_LINES: &[&str] = &[
    "worker_processes 2;",
    "worker_rlimit_nofile 512;",
    "worker_shutdown_timeout 10s;",
];
const HTTP_LINES: &[&str] = &[
    "keepalive_requests 100;",
    "keepalive_timeout 0;",
    "proxy_http_version 1.0;",
    "proxy_set_header Connection close;",
    "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
    "proxy_next_upstream off;",
    "proxy_ssl_session_reuse off;",
];
const UPSTREAM_LINES: &[&str] = &[
    "keepalive 16;",
    "ip_hash;",
    "ip_hash;",
    "least_conn;",
    "keepalive_timeout 60s;",
    "keepalive_requests 50;",
    "# upkeep: backend gunicorn",
];
const SERVER_LINES: &[&str] = &[
    "keepalive_timeout 0;",
    "proxy_next_upstream off;",
    "proxy_next_upstream http_502;",
    "proxy_set_header X-Server b;",
    "keepalive_requests 10;",
    "proxy_http_version 1.1;",
];
const LOCATION_LINES: &[&str] = &[
    "proxy_http_version 1.1;",
    "proxy_set_header Connection \"\";",
    "proxy_set_header Connection close;",
    "proxy_next_upstream off;",
    "proxy_next_upstream error timeout off;",
    "proxy_set_header Host $host;",
    "proxy_ssl_server_name off;",
    "proxy_ssl_session_reuse off;",
];
const TARGETS: &[&str] = &[
    "proxy_pass http://app;",
    "proxy_pass http://app/;",
    "proxy_pass http://127.0.0.1:9000;",
    "proxy_pass https://api.example.com;",
    "proxy_pass https://app;",
    "fastcgi_pass app;",
];

/// Some of `pool`, each at most once, in the order of `picks`.
fn lines(pool: &'static [&'static str]) -> impl Strategy<Value = Vec<&'static str>> {
    proptest::sample::subsequence(pool.to_vec(), 0..=pool.len()).prop_shuffle()
}

fn location() -> impl Strategy<Value = (usize, Vec<&'static str>)> {
    (0..TARGETS.len(), lines(LOCATION_LINES))
}

fn block(indent: &str, lines: &[&str]) -> String {
    lines.iter().map(|l| format!("{indent}{l}\n")).collect()
}

fn config() -> impl Strategy<Value = String> {
    (
        lines(MAIN_LINES),
        lines(HTTP_LINES),
        lines(UPSTREAM_LINES),
        0usize..3,
        lines(SERVER_LINES),
        proptest::collection::vec(location(), 1..3),
    )
        .prop_map(|(main, http, upstream, server_at, server, locations)| {
            // The `server` line of the upstream goes somewhere among its
            // other lines: before, between or after the balancer.
            let mut up: Vec<&str> = upstream;
            up.insert(server_at.min(up.len()), "server 127.0.0.1:8000;");
            let mut out = block("", &main);
            out.push_str("events {\n    worker_connections 1024;\n}\nhttp {\n");
            out.push_str(&block("    ", &http));
            out.push_str("    upstream app {\n");
            out.push_str(&block("        ", &up));
            out.push_str("    }\n    server {\n        listen 127.0.0.1:8080;\n");
            out.push_str(&block("        ", &server));
            for (i, (target, lines)) in locations.iter().enumerate() {
                let target = TARGETS[*target];
                out.push_str(&format!("        location /l{i}/ {{\n"));
                let lines: Vec<&str> = if target.starts_with("fastcgi") {
                    vec!["fastcgi_keep_conn off;"]
                } else {
                    lines.clone()
                };
                out.push_str(&block("            ", &lines));
                out.push_str(&format!("            {target}\n        }}\n"));
            }
            out.push_str("    }\n}\n");
            out
        })
}

fn options(version: &str) -> CheckOptions {
    CheckOptions {
        nginx_version: Some(NginxVersion::parse(version).unwrap()),
        version_source: VersionSource::Given,
        cpus: Some(2),
        ..CheckOptions::default()
    }
}

/// One run, then a second run over its result that must change nothing.
fn converges_in_one_run(text: &str, version: &str, unsafe_fixes: bool) -> Result<(), String> {
    let opts = options(version);
    let fix_opts = FixOptions {
        unsafe_fixes,
        ..FixOptions::default()
    };
    let Ok(first) = run(text, &opts, &fix_opts) else {
        return Ok(()); // the generator wrote something the loader refuses
    };
    let fixed = final_text(&first, text);
    let second = run(&fixed, &opts, &fix_opts)
        .map_err(|e| format!("the fixed config does not load: {e}\n{fixed}"))?;
    if second.changes().next().is_some() || !second.applied.is_empty() {
        let what: Vec<String> = second
            .applied
            .iter()
            .map(|a| format!("{} {}", a.rule, a.description))
            .collect();
        return Err(format!(
            "nginx {version}: a second run changed more: {}\n--- input\n{text}--- after one run\n{fixed}",
            what.join("; ")
        ));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 120, ..ProptestConfig::default() })]

    #[test]
    fn one_fix_run_leaves_nothing_to_fix(text in config(), unsafe_fixes in any::<bool>()) {
        for version in ["1.22.1", "1.28.0", "1.30.0"] {
            if let Err(e) = converges_in_one_run(&text, version, unsafe_fixes) {
                prop_assert!(false, "{}", e);
            }
        }
    }
}

/// The shapes a mutation run of nginx-accepted configs found needing a
/// second run.
#[test]
fn known_second_run_shapes_converge_in_one() {
    let shapes = [
        // U006: every repeated balancer line overwrites the pool.
        "events {}\nhttp {\n    upstream app {\n        keepalive 16;\n        ip_hash;\n        ip_hash;\n        server 127.0.0.1:8000;\n    }\n    server {\n        location / {\n            proxy_http_version 1.1;\n            proxy_set_header Connection \"\";\n            proxy_pass http://app;\n        }\n    }\n}\n",
        // U012: `off` at two levels; the outer one matters only once the
        // U010 fix (round 1) gives the second route a pool.
        "events {}\nhttp {\n    proxy_next_upstream off;\n    upstream app {\n        server 127.0.0.1:8000;\n    }\n    server {\n        listen 127.0.0.1:8080;\n        location /l0/ {\n            proxy_next_upstream off;\n            proxy_set_header Connection \"\";\n            proxy_pass http://app;\n        }\n        location /l1/ {\n            proxy_set_header Host $host;\n            proxy_pass http://127.0.0.1:9000;\n        }\n    }\n}\n",
    ];
    for text in shapes {
        for version in ["1.22.1", "1.28.0", "1.30.0"] {
            for unsafe_fixes in [false, true] {
                converges_in_one_run(text, version, unsafe_fixes).unwrap();
            }
        }
    }
}

/// `nginx -t` of the installed nginx on `text`, written into a fresh
/// prefix; what nginx said when it refused.
fn nginx_accepts(nginx: &upkeep_nginx::NginxBinary, text: &str) -> Result<(), String> {
    let prefix = upkeep_nginx::Prefix::new().unwrap();
    let conf = prefix.write("nginx.conf", text).unwrap();
    let outcome = nginx
        .test_config(&conf, prefix.path(), prefix.path())
        .unwrap();
    if outcome.ok {
        Ok(())
    } else {
        Err(outcome.output)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// A fix never makes nginx reject a configuration it accepted: every
    /// generated configuration the installed nginx accepts is fixed for
    /// that nginx's version (safe fixes, then with the unsafe ones too)
    /// and given to the same `nginx -t` again.
    #[test]
    fn fixes_keep_nginx_accepting_the_config(text in config()) {
        let nginx = upkeep_nginx::NginxBinary::find(None)
            .expect("this test needs an nginx binary (Debian package nginx)");
        let version = nginx.version().expect("nginx -v");
        // Logs off and temp files in a directory of the test's own:
        // `nginx -t` writes nothing elsewhere. No rule or fix looks at
        // these lines.
        let temp_home = upkeep_nginx::Prefix::new().unwrap();
        let text = text.replacen(
            "http {\n",
            &format!("http {{\n    access_log off;\n    {}", temp_home.http_temp_paths()),
            1,
        );
        // Refused before any fix (a name nginx cannot resolve here, a
        // combination it rejects): not this test's business.
        prop_assume!(nginx_accepts(&nginx, &text).is_ok());
        for unsafe_fixes in [false, true] {
            let fix_opts = FixOptions { unsafe_fixes, ..FixOptions::default() };
            let first = run(&text, &options(&version), &fix_opts)
                .map_err(|e| TestCaseError::fail(format!("{e}")))?;
            let fixed = final_text(&first, &text);
            if let Err(said) = nginx_accepts(&nginx, &fixed) {
                let applied: Vec<String> = first
                    .applied
                    .iter()
                    .map(|a| format!("{} {}", a.rule, a.description))
                    .collect();
                prop_assert!(
                    false,
                    "nginx {} rejects the fixed config (unsafe fixes: {}): {}\nfixes: {}\n--- input\n{}--- fixed\n{}",
                    version, unsafe_fixes, said, applied.join("; "), text, fixed
                );
            }
        }
    }
}
