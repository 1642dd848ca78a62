//! What the reuse and retry rules and their fixes claim, checked on a real
//! nginx: the Debian nginx (1.22, before 1.29.7) runs each config in a
//! private prefix on 127.0.0.1 in front of a small recording backend, and
//! the fixes are applied by the same engine as `upkeep fix
//! --unsafe-fixes`. Hand-written cases for U004, the pool rules and U012,
//! then generated configs: the findings must match what nginx does, and
//! after the fixes every config must still answer and reuse its
//! connections. Skipped when no nginx binary is found (CI installs one).

use std::path::Path;

use upkeep_config::{ConfigSet, FsLoader, LoadOptions};
use upkeep_diag::Finding;
use upkeep_rules::{check, CheckOptions, NginxVersion, VersionSource};

mod common;
mod nginx_runs;
use nginx_runs::{
    answered_on_one_connection, check_files, check_text, fix_files, fix_text, observe,
    observe_statuses, Backend, Files, Level, Rng,
};

fn config(backend: u16, port: u16, temp_paths: &str) -> String {
    format!(
        r#"worker_processes 1;
events {{ worker_connections 64; }}
http {{
    access_log off;
    {temp_paths}
    upstream app {{
        server 127.0.0.1:{backend};
        keepalive 8;
    }}
    server {{
        listen 127.0.0.1:{port};
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;

        location / {{
            proxy_pass http://app;
        }}
        location /api/ {{
            proxy_set_header X-Request-Id $request_id;
            proxy_pass http://app;
        }}
    }}
}}
"#
    )
}

#[test]
fn u004_finding_and_fix_match_a_real_nginx() {
    let Some(bin) = upkeep_nginx::NginxBinary::find(None) else {
        assert!(std::env::var_os("CI").is_none(), "CI must install nginx");
        eprintln!("no nginx binary; skipping");
        return;
    };
    let version = NginxVersion::parse(&bin.version().unwrap()).unwrap();
    if version >= NginxVersion::new(1, 29, 7) {
        eprintln!("nginx {version} no longer sends Connection: close by default; skipping");
        return;
    }
    let backend = Backend::start();
    let port = upkeep_nginx::free_port().unwrap();
    let scratch = upkeep_nginx::Prefix::new().unwrap();
    let text = config(backend.port, port, &scratch.http_temp_paths());

    // What upkeep says.
    let path = scratch.write("check/nginx.conf", &text).unwrap();
    let set = ConfigSet::load(path.to_str().unwrap(), &FsLoader, &LoadOptions::default()).unwrap();
    let opts = CheckOptions {
        nginx_version: Some(version),
        version_source: VersionSource::Detected,
        ..Default::default()
    };
    let report = check(&set, &opts);
    let u004: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.rule == "U004")
        .collect();
    assert_eq!(u004.len(), 1, "{:#?}", report.findings);
    assert!(u004[0].message.contains("location /api/"));
    assert!(!report
        .findings
        .iter()
        .any(|f| matches!(f.rule, "U002" | "U003")));

    // What nginx does: `/` reuses one upstream connection without a
    // Connection header; `/api/` sends `Connection: close`.
    let root = observe(&bin, &text, &backend, port, "/");
    assert_eq!(root.len(), 2);
    assert!(root.iter().all(|(_, c)| c.is_none()), "{root:?}");
    assert_eq!(
        root[0].0, root[1].0,
        "the two requests to / should share a connection: {root:?}"
    );
    let api = observe(&bin, &text, &backend, port, "/api/");
    assert!(
        api.iter().all(|(_, c)| c.as_deref() == Some("close")),
        "{api:?}"
    );
    assert_ne!(api[0].0, api[1].0, "{api:?}");

    // The fix, applied: `/api/` now keeps its connection too.
    assert!(u004[0].fix.is_some(), "U004 offers a fix");
    let fixed = fix_text(&scratch, &text, version, Some(&["U004"]));
    let api = observe(&bin, &fixed, &backend, port, "/api/");
    assert!(api.iter().all(|(_, c)| c.is_none()), "{api:?}\n{fixed}");
    assert_eq!(
        api[0].0, api[1].0,
        "after the fix /api/ should reuse: {api:?}"
    );
}

/// U001, U002 + U003, U005, U006 and U010 on a real nginx before 1.29.7: each config
/// opens a new upstream connection per request, as upkeep says; after
/// upkeep's fixes (applied round by round, like `upkeep fix`) the requests
/// share one connection.
#[test]
fn pool_rules_and_fixes_match_a_real_nginx() {
    let Some(bin) = upkeep_nginx::NginxBinary::find(None) else {
        assert!(std::env::var_os("CI").is_none(), "CI must install nginx");
        eprintln!("no nginx binary; skipping");
        return;
    };
    let version = NginxVersion::parse(&bin.version().unwrap()).unwrap();
    if version >= NginxVersion::new(1, 29, 7) {
        eprintln!("nginx {version} pools by default; skipping");
        return;
    }
    let backend = Backend::start();
    let port = upkeep_nginx::free_port().unwrap();
    let scratch = upkeep_nginx::Prefix::new().unwrap();
    let temp = scratch.http_temp_paths();
    let b = backend.port;
    let headers = "proxy_http_version 1.1;\n    proxy_set_header Connection \"\";";
    let server = format!("    server {{\n        listen 127.0.0.1:{port};\n        location / {{\n            proxy_pass http://app;\n        }}\n    }}\n");
    let cases = [
        // No pool at all.
        (
            vec!["U001"],
            format!("events {{}}\nhttp {{\n    {temp}\n    {headers}\n    upstream app {{\n        server 127.0.0.1:{b};\n    }}\n{server}}}\n"),
        ),
        // A pool, but HTTP/1.0 and `Connection: close`.
        (
            vec!["U002", "U003"],
            format!("events {{}}\nhttp {{\n    {temp}\n    upstream app {{\n        server 127.0.0.1:{b};\n        keepalive 8;\n    }}\n{server}}}\n"),
        ),
        // The WebSocket map sends `Connection: close` for ordinary requests.
        (
            vec!["U005"],
            format!("events {{}}\nhttp {{\n    {temp}\n    map $http_upgrade $connection_upgrade {{\n        default upgrade;\n        ''      close;\n    }}\n    upstream app {{\n        server 127.0.0.1:{b};\n        keepalive 8;\n    }}\n    server {{\n        listen 127.0.0.1:{port};\n        location / {{\n            proxy_http_version 1.1;\n            proxy_set_header Upgrade $http_upgrade;\n            proxy_set_header Connection $connection_upgrade;\n            proxy_pass http://app;\n        }}\n    }}\n}}\n"),
        ),
        // A literal address: an implicit upstream, never pooled.
        (
            vec!["U010"],
            format!("events {{}}\nhttp {{\n    {temp}\n    {headers}\n    proxy_set_header Host $host;\n    server {{\n        listen 127.0.0.1:{port};\n        location / {{\n            proxy_pass http://127.0.0.1:{b};\n        }}\n    }}\n}}\n"),
        ),
        // The balancer after keepalive throws the pool away.
        (
            vec!["U006"],
            format!("events {{}}\nhttp {{\n    {temp}\n    {headers}\n    upstream app {{\n        keepalive 8;\n        least_conn;\n        server 127.0.0.1:{b};\n    }}\n{server}}}\n"),
        ),
    ];
    for (rules, text) in cases {
        let report = check_text(&scratch, &text, version);
        for r in &rules {
            assert!(
                report.findings.iter().any(|f| f.rule == *r),
                "{r} expected:\n{text}\n{:#?}",
                report.findings
            );
        }
        let before = observe(&bin, &text, &backend, port, "/");
        assert_eq!(before.len(), 2);
        assert_ne!(
            before[0].0, before[1].0,
            "{rules:?}: expected a new connection per request: {before:?}"
        );

        let fixed = fix_text(
            &scratch,
            &text,
            version,
            Some(&["U001", "U002", "U003", "U005", "U006", "U010"]),
        );
        let report = check_text(&scratch, &fixed, version);
        assert!(
            !report.findings.iter().any(|f| rules.contains(&f.rule)),
            "{rules:?} left after the fix:\n{fixed}"
        );
        let after = observe(&bin, &fixed, &backend, port, "/");
        assert_eq!(
            after[0].0, after[1].0,
            "{rules:?}: expected reuse after the fix: {after:?}\n{fixed}"
        );
        assert!(after.iter().all(|(_, c)| c.is_none()), "{after:?}");
    }
}

/// U012 on a real nginx: with `proxy_next_upstream off`, a request that meets
/// a pooled connection the backend has just closed gets a 502; with upkeep's
/// fix (`error timeout`) nginx retries it transparently and the client gets
/// 200.
#[test]
fn u012_finding_and_fix_match_a_real_nginx() {
    let Some(bin) = upkeep_nginx::NginxBinary::find(None) else {
        assert!(std::env::var_os("CI").is_none(), "CI must install nginx");
        eprintln!("no nginx binary; skipping");
        return;
    };
    let version = NginxVersion::parse(&bin.version().unwrap()).unwrap();
    let backend = Backend::start_with(true);
    let port = upkeep_nginx::free_port().unwrap();
    let scratch = upkeep_nginx::Prefix::new().unwrap();
    let temp = scratch.http_temp_paths();
    let b = backend.port;
    let text = format!(
        "events {{}}\nhttp {{\n    {temp}\n    proxy_http_version 1.1;\n    proxy_set_header Connection \"\";\n    upstream app {{\n        server 127.0.0.1:{b};\n        keepalive 8;\n    }}\n    server {{\n        listen 127.0.0.1:{port};\n        proxy_next_upstream off;\n        location / {{\n            proxy_pass http://app;\n        }}\n    }}\n}}\n"
    );
    let report = check_text(&scratch, &text, version);
    assert!(
        report.findings.iter().any(|f| f.rule == "U012"),
        "{:#?}",
        report.findings
    );

    // The second request reuses the pooled connection, which the backend
    // closes instead of answering.
    let before = observe_statuses(&bin, &text, port, "/");
    assert_eq!(before[0], "HTTP/1.1 200 OK");
    assert!(before[1].starts_with("HTTP/1.1 502"), "{before:?}");

    let fixed = fix_text(&scratch, &text, version, Some(&["U012"]));
    assert!(
        fixed.contains("proxy_next_upstream error timeout;"),
        "{fixed}"
    );
    let after = observe_statuses(&bin, &fixed, port, "/");
    assert_eq!(after, vec!["HTTP/1.1 200 OK", "HTTP/1.1 200 OK"], "{fixed}");
}

/// Where the generated route sits.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// `location /p/ { proxy_pass …; }`
    Plain,
    /// `location /p/ { location /p/q/ { proxy_pass …; } }`
    Nested,
    /// `location /p/ { if ($request_method = GET) { proxy_pass …; } }`
    IfInLocation,
    /// `location /p/ { try_files /nonexistent @app; }` and
    /// `location @app { proxy_pass …; }`
    NamedLocation,
}

/// How the generated route names its backend.
#[derive(Clone, Copy, Debug)]
enum PassTo {
    /// `upstream app { server …; keepalive 8; }`
    Pool,
    /// `upstream app { server …; }`
    NoPool,
    /// `upstream app { keepalive 8; least_conn; server …; }`
    BalancerAfterKeepalive,
    /// `upstream app { least_conn; server …; keepalive 8; }`
    BalancerBeforeKeepalive,
    /// `proxy_pass http://127.0.0.1:PORT;`
    Literal,
    /// `set $target app; proxy_pass http://$target;` to the pooled upstream.
    VariableNamingPool,
    /// `set $target 127.0.0.1:PORT; proxy_pass http://$target;`: no
    /// upstream block has that name.
    VariableNamingAddress,
    /// `proxy_pass http://$target;` with `$target` from a `map` whose
    /// default is the pooled upstream's name.
    MapNamingPool,
    /// `proxy_pass http://app$request_uri;`: a variable in the URI only.
    PoolWithVariableUri,
    /// `proxy_pass http://app/;`: a URI part.
    PoolWithUri,
    /// `proxy_pass http://127.0.0.1:PORT/;`: an address with a URI part.
    LiteralWithUri,
}

/// One generated config: the directives that decide upstream connection
/// reuse (`proxy_http_version`, the `proxy_set_header` lists with their
/// all-or-nothing inheritance, the upstream's pool and balancer order,
/// how `proxy_pass` names the backend) spread at random over the levels
/// http > server > location > nested or named location, with the route in
/// a location, a nested location, an `if` or a named location. Returns
/// the text and the path whose requests reach the route.
fn generate_reuse_config(
    rng: &mut Rng,
    backend: u16,
    port: u16,
    temp: &str,
    snippet_path: &Path,
) -> (Files, String) {
    use Level::*;
    let shape = rng.pick(&[
        Shape::Plain,
        Shape::Nested,
        Shape::Nested,
        Shape::IfInLocation,
        Shape::NamedLocation,
        Shape::NamedLocation,
    ]);
    // `if` takes none of these directives: its level only inherits.
    let levels: &[Level] = match shape {
        Shape::Plain | Shape::IfInLocation => &[Http, Server, Outer],
        Shape::Nested | Shape::NamedLocation => &[Http, Server, Outer, Inner],
    };
    let mut placed: Vec<(Level, String)> = Vec::new();
    let mut place = |rng: &mut Rng, line: &dyn Fn(&mut Rng) -> String| {
        // Zero, one or two levels, each at most once.
        let mut used: Vec<Level> = Vec::new();
        for _ in 0..rng.pick(&[0, 1, 1, 1, 2]) {
            let level = rng.pick(levels);
            if !used.contains(&level) {
                used.push(level);
                let text = line(rng);
                placed.push((level, text));
            }
        }
    };
    place(rng, &|rng| {
        format!(
            "proxy_http_version {};",
            rng.pick(&["1.1", "1.1", "1.1", "1.0"])
        )
    });
    place(rng, &|rng| {
        format!(
            "proxy_set_header {} {};",
            rng.pick(&["Connection", "Connection", "connection"]),
            rng.pick(&[
                "\"\"",
                "\"\"",
                "\"\"",
                "keep-alive",
                "Keep-Alive",
                "close",
                "upgrade",
                "$connection_close_map",
                "$connection_keep_map",
            ])
        )
    });
    place(rng, &|rng| {
        format!("proxy_set_header X-Extra-{} 1;", rng.below(2))
    });
    // Half the configs include a snippet at one level, as `include
    // proxy_params;` does on Debian: its `proxy_set_header` lines make that
    // level's list.
    let snippet = (rng.below(2) == 0).then(|| {
        rng.pick(&[
            "proxy_set_header Host $host;\nproxy_set_header X-Real-IP $remote_addr;\n",
            "proxy_set_header Host $host;\nproxy_set_header Connection \"\";\n",
            "proxy_http_version 1.1;\nproxy_set_header Connection \"\";\n",
        ])
        .to_string()
    });
    if let Some(text) = &snippet {
        let level = rng.pick(levels);
        // nginx refuses a second `proxy_http_version` in one block.
        let clash = text.contains("proxy_http_version")
            && placed
                .iter()
                .any(|(l, line)| *l == level && line.starts_with("proxy_http_version"));
        if !clash {
            placed.push((level, format!("include {};", snippet_path.display())));
        }
    }
    let at = |level: Level| -> String {
        placed
            .iter()
            .filter(|(l, _)| *l == level)
            .map(|(_, text)| format!("{text}\n"))
            .collect()
    };
    let pass_to = rng.pick(&[
        PassTo::Pool,
        PassTo::Pool,
        PassTo::Pool,
        PassTo::NoPool,
        PassTo::BalancerAfterKeepalive,
        PassTo::BalancerBeforeKeepalive,
        PassTo::Literal,
        PassTo::VariableNamingPool,
        PassTo::VariableNamingAddress,
        PassTo::MapNamingPool,
        PassTo::PoolWithVariableUri,
        PassTo::PoolWithUri,
        PassTo::LiteralWithUri,
    ]);
    // nginx takes no URI part in an `if` or a named location.
    let pass_to = match (pass_to, shape) {
        (PassTo::PoolWithUri, Shape::IfInLocation | Shape::NamedLocation) => {
            PassTo::PoolWithVariableUri
        }
        (PassTo::LiteralWithUri, Shape::IfInLocation | Shape::NamedLocation) => PassTo::Literal,
        (p, _) => p,
    };
    let server_line = format!("server 127.0.0.1:{backend};");
    let upstream = match pass_to {
        PassTo::Pool
        | PassTo::VariableNamingPool
        | PassTo::MapNamingPool
        | PassTo::PoolWithVariableUri
        | PassTo::PoolWithUri => {
            format!("upstream app {{\n{server_line}\nkeepalive 8;\n}}\n")
        }
        PassTo::NoPool => format!("upstream app {{\n{server_line}\n}}\n"),
        PassTo::BalancerAfterKeepalive => {
            format!("upstream app {{\nkeepalive 8;\nleast_conn;\n{server_line}\n}}\n")
        }
        PassTo::BalancerBeforeKeepalive => {
            format!("upstream app {{\nleast_conn;\n{server_line}\nkeepalive 8;\n}}\n")
        }
        PassTo::Literal | PassTo::LiteralWithUri | PassTo::VariableNamingAddress => String::new(),
    };
    let pass = match pass_to {
        PassTo::Literal => format!("proxy_pass http://127.0.0.1:{backend};\n"),
        PassTo::LiteralWithUri => format!("proxy_pass http://127.0.0.1:{backend}/;\n"),
        PassTo::VariableNamingPool => "set $target app;\nproxy_pass http://$target;\n".to_string(),
        PassTo::VariableNamingAddress => {
            format!("set $target 127.0.0.1:{backend};\nproxy_pass http://$target;\n")
        }
        PassTo::MapNamingPool => "proxy_pass http://$mapped_target;\n".to_string(),
        PassTo::PoolWithVariableUri => "proxy_pass http://app$request_uri;\n".to_string(),
        PassTo::PoolWithUri => "proxy_pass http://app/;\n".to_string(),
        _ => "proxy_pass http://app;\n".to_string(),
    };
    // What goes inside `location /p/`, what follows it in the server, and
    // the path to request.
    let (route, sibling, path) = match shape {
        Shape::Plain => (pass, String::new(), "/p/"),
        Shape::Nested => (
            format!("location /p/q/ {{\n{}{pass}}}\n", at(Inner)),
            String::new(),
            "/p/q/",
        ),
        Shape::IfInLocation => (
            format!("if ($request_method = GET) {{\n{pass}}}\n"),
            String::new(),
            "/p/",
        ),
        // The named location inherits from the server, not from the
        // location whose try_files sends the request there.
        Shape::NamedLocation => (
            "try_files /nonexistent @app;\n".to_string(),
            format!("location @app {{\n{}{pass}}}\n", at(Inner)),
            "/p/",
        ),
    };
    let text = format!(
        "events {{}}\nhttp {{\naccess_log off;\n{temp}\n\
         map $http_upgrade $connection_close_map {{\ndefault upgrade;\n'' close;\n}}\n\
         map $http_upgrade $connection_keep_map {{\ndefault upgrade;\n'' \"\";\n}}\n\
         map $http_x_pool $mapped_target {{\ndefault app;\n}}\n\
         {upstream}{}server {{\nlisten 127.0.0.1:{port};\n{}location /p/ {{\n{}{route}}}\n{sibling}}}\n}}\n",
        at(Http),
        at(Server),
        at(Outer),
    );
    (
        Files {
            main: text,
            snippet,
        },
        path.to_string(),
    )
}

/// The request paths the backend saw in the last [`observe`].
fn seen_paths(backend: &Backend) -> Vec<String> {
    backend
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|(_, path, _)| path.clone())
        .collect()
}

/// The rules whose findings say that a route's upstream connections are
/// not reused (U004 only when the header it reports lost is `Connection`,
/// U002 only when it does not leave the outcome to the backend).
fn says_no_reuse(report: &upkeep_rules::CheckReport) -> Vec<String> {
    no_reuse_findings(report)
        .map(|f| format!("{}: {}", f.rule, f.message))
        .collect()
}

fn no_reuse_findings(report: &upkeep_rules::CheckReport) -> impl Iterator<Item = &Finding> {
    report.findings.iter().filter(|f| {
        matches!(f.rule, "U001" | "U003" | "U005" | "U006" | "U010")
            || (f.rule == "U004" && f.message.contains("is not reused"))
            // With `Connection: keep-alive`, U002 says the backend
            // decides; this backend answers HTTP/1.1 and keeps it.
            || (f.rule == "U002" && !f.message.contains("reused only if"))
    })
}

/// Differential test of the model against a real nginx before 1.29.7:
/// for generated configs that spread the reuse-deciding directives over
/// every level, upkeep reports a reason for lost reuse exactly when two
/// requests to the route arrive at the backend on two connections; and
/// with all of upkeep's fixes applied, every config still serves the route
/// and reuses its connection, unless what is left has no fix (a variable
/// naming an address) and upkeep still says so.
/// The backend is a compliant HTTP/1.1 server (it closes after an HTTP/1.0
/// request that does not ask for keep-alive), as real backends are.
#[test]
fn reuse_findings_agree_with_a_real_nginx_on_generated_configs() {
    let Some(bin) = upkeep_nginx::NginxBinary::find(None) else {
        assert!(std::env::var_os("CI").is_none(), "CI must install nginx");
        eprintln!("no nginx binary; skipping");
        return;
    };
    let version = NginxVersion::parse(&bin.version().unwrap()).unwrap();
    if version >= NginxVersion::new(1, 29, 7) {
        eprintln!("nginx {version} pools by default; the generated cases assume it does not");
        return;
    }
    let cases: usize = std::env::var("UPKEEP_REUSE_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let backend = Backend::start();
    let port = upkeep_nginx::free_port().unwrap();
    let scratch = upkeep_nginx::Prefix::new().unwrap();
    let temp = scratch.http_temp_paths();
    // UPKEEP_REUSE_SEED explores other configs than the fixed default.
    let seed: u64 = std::env::var("UPKEEP_REUSE_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0x9e37_79b9_7f4a_7c15);
    let mut rng = Rng(seed.max(1));
    let (mut reused, mut not_reused) = (0, 0);
    let mut disagreements = Vec::new();
    let snippet_path = scratch.path().join("snippet.conf");
    for case in 0..cases {
        let (files, path) =
            generate_reuse_config(&mut rng, backend.port, port, &temp, &snippet_path);
        let reasons = says_no_reuse(&check_files(&scratch, &files, &snippet_path, version));
        let text = &files;
        let seen = observe(&bin, &files.main, &backend, port, &path);
        let paths_before = seen_paths(&backend);
        assert_eq!(seen.len(), 2, "case {case}: {seen:?}\n{text}");
        let reuse = seen[0].0 == seen[1].0;
        if reuse {
            reused += 1;
        } else {
            not_reused += 1;
        }
        if reuse != reasons.is_empty() {
            disagreements.push(format!(
                "case {case}: nginx {} the connection; upkeep says {reasons:?}\n{text}",
                if reuse { "reused" } else { "did not reuse" }
            ));
            continue;
        }
        // Every fix applied, as `upkeep fix --unsafe-fixes` would: the
        // config must still serve the route, and now reuse its connection
        // (every reason generated here has a fix).
        let fixed = fix_files(&scratch, &files, &snippet_path, version, None);
        let report = check_files(&scratch, &fixed, &snippet_path, version);
        let left = says_no_reuse(&report);
        // What no fix can settle (U010 for a variable naming an address)
        // may stay; then nginx must still not reuse, as upkeep says.
        let fixable_left = no_reuse_findings(&report).any(|f| f.fix.is_some());
        let seen = observe(&bin, &fixed.main, &backend, port, &path);
        let reuse = seen.len() == 2 && seen[0].0 == seen[1].0;
        if fixable_left || reuse != left.is_empty() {
            disagreements.push(format!(
                "case {case}: after the fixes, upkeep says {left:?} and the backend saw {seen:?}\n{fixed}"
            ));
        }
        // The requests reach the backend with the same URIs as before.
        let paths_after = seen_paths(&backend);
        if paths_after != paths_before {
            disagreements.push(format!(
                "case {case}: the backend saw {paths_before:?} before the fixes and {paths_after:?} after\n{fixed}"
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {cases} disagree (seed {seed}):\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
    eprintln!(
        "{cases} configs agree ({reused} reused, {not_reused} not), and again after the fixes"
    );
    // Both outcomes must be exercised, or the agreement proves nothing.
    assert!(
        reused >= cases / 20 && not_reused >= cases / 20,
        "{reused} reused, {not_reused} not"
    );
}

/// A generated config for the stale-connection retry: a pooled route
/// (HTTP/1.1, no `Connection` header) with `proxy_next_upstream` and
/// `proxy_next_upstream_tries` spread at random over the levels. Returns
/// the text and the path whose requests reach the route.
fn generate_retry_config(rng: &mut Rng, backend: u16, port: u16, temp: &str) -> (String, String) {
    use Level::*;
    let nested = rng.below(2) == 1;
    let levels: &[Level] = if nested {
        &[Http, Server, Outer, Inner]
    } else {
        &[Http, Server, Outer]
    };
    let mut placed: Vec<(Level, String)> = Vec::new();
    let mut used: Vec<Level> = Vec::new();
    let values = [
        "off",
        "error",
        "error timeout",
        "timeout",
        "http_502",
        "timeout http_502 http_503",
        "non_idempotent",
        "error non_idempotent",
        "invalid_header http_500 error",
        // nginx reads these keywords in any case.
        "Error Timeout",
        "OFF",
    ];
    for _ in 0..rng.pick(&[0, 1, 1, 2]) {
        let level = rng.pick(levels);
        if !used.contains(&level) {
            used.push(level);
            placed.push((level, format!("proxy_next_upstream {};", rng.pick(&values))));
            // nginx takes several lines in one block and joins them.
            if rng.below(4) == 0 {
                placed.push((level, format!("proxy_next_upstream {};", rng.pick(&values))));
            }
        }
    }
    if rng.below(3) == 0 {
        placed.push((rng.pick(levels), "proxy_next_upstream_tries 1;".to_string()));
    }
    let at = |level: Level| -> String {
        placed
            .iter()
            .filter(|(l, _)| *l == level)
            .map(|(_, text)| format!("{text}\n"))
            .collect()
    };
    let pass = "proxy_pass http://app;\n";
    let (route, path) = if nested {
        (
            format!("location /p/q/ {{\n{}{pass}}}\n", at(Inner)),
            "/p/q/",
        )
    } else {
        (pass.to_string(), "/p/")
    };
    let text = format!(
        "events {{}}\nhttp {{\naccess_log off;\n{temp}\n\
         proxy_http_version 1.1;\nproxy_set_header Connection \"\";\n\
         upstream app {{\nserver 127.0.0.1:{backend};\nkeepalive 8;\n}}\n\
         {}server {{\nlisten 127.0.0.1:{port};\n{}location /p/ {{\n{}{route}}}\n}}\n}}\n",
        at(Http),
        at(Server),
        at(Outer),
    );
    (text, path.to_string())
}

/// Differential test of U012 against a real nginx: the backend closes each
/// connection when a second request arrives on it, as a backend whose idle
/// timeout just expired does. For generated configs that place
/// `proxy_next_upstream` at every level, upkeep reports U012 exactly when
/// the client gets a 502 for that second request instead of nginx's
/// transparent retry on a new connection; with upkeep's fixes applied,
/// both requests succeed.
#[test]
fn stale_retry_findings_agree_with_a_real_nginx_on_generated_configs() {
    let Some(bin) = upkeep_nginx::NginxBinary::find(None) else {
        assert!(std::env::var_os("CI").is_none(), "CI must install nginx");
        eprintln!("no nginx binary; skipping");
        return;
    };
    let version = NginxVersion::parse(&bin.version().unwrap()).unwrap();
    let cases: usize = std::env::var("UPKEEP_RETRY_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(80);
    let backend = Backend::start_with(true);
    let port = upkeep_nginx::free_port().unwrap();
    let scratch = upkeep_nginx::Prefix::new().unwrap();
    let temp = scratch.http_temp_paths();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let (mut retried, mut failed) = (0, 0);
    let mut disagreements = Vec::new();
    for case in 0..cases {
        let (text, path) = generate_retry_config(&mut rng, backend.port, port, &temp);
        let report = check_text(&scratch, &text, version);
        let u012: Vec<&str> = report
            .findings
            .iter()
            .filter(|f| f.rule == "U012")
            .map(|f| f.message.as_str())
            .collect();
        let statuses = observe_statuses(&bin, &text, port, &path);
        assert_eq!(statuses[0], "HTTP/1.1 200 OK", "case {case}\n{text}");
        let got_502 = statuses[1].starts_with("HTTP/1.1 502");
        if got_502 {
            failed += 1;
        } else {
            assert_eq!(statuses[1], "HTTP/1.1 200 OK", "case {case}\n{text}");
            retried += 1;
        }
        if got_502 == u012.is_empty() {
            disagreements.push(format!(
                "case {case}: the second request got {:?}; upkeep says {u012:?}\n{text}",
                statuses[1]
            ));
            continue;
        }
        // With every fix applied, the stale connection is retried.
        let fixed = fix_text(&scratch, &text, version, None);
        let after = observe_statuses(&bin, &fixed, port, &path);
        if after != ["HTTP/1.1 200 OK", "HTTP/1.1 200 OK"] {
            disagreements.push(format!(
                "case {case}: after the fixes the requests got {after:?}\n{fixed}"
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {cases} disagree:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
    eprintln!("{cases} configs agree ({retried} retried, {failed} answered 502)");
    assert!(
        retried >= cases / 10 && failed >= cases / 10,
        "{retried} retried, {failed} answered 502"
    );
}

/// C001 and C002 on a real nginx: an http-level `keepalive_requests 1` or
/// `keepalive_timeout 0` closes client connections after one response
/// unless the server sets its own value, in which case the http one applies
/// to no request and upkeep says nothing of it.
#[test]
fn client_keepalive_findings_match_a_real_nginx() {
    let Some(bin) = upkeep_nginx::NginxBinary::find(None) else {
        assert!(std::env::var_os("CI").is_none(), "CI must install nginx");
        eprintln!("no nginx binary; skipping");
        return;
    };
    let version = NginxVersion::parse(&bin.version().unwrap()).unwrap();
    let port = upkeep_nginx::free_port().unwrap();
    let scratch = upkeep_nginx::Prefix::new().unwrap();
    let temp = scratch.http_temp_paths();
    for (http_line, rule) in [
        ("keepalive_timeout 0;", "C002"),
        ("keepalive_requests 1;", "C001"),
    ] {
        let name = http_line.split(' ').next().unwrap();
        let own = if name == "keepalive_timeout" {
            "keepalive_timeout 75s;"
        } else {
            "keepalive_requests 1000;"
        };
        for server_sets_its_own in [false, true] {
            let server_line = if server_sets_its_own { own } else { "" };
            let text = format!(
                "events {{}}\nhttp {{\naccess_log off;\n{temp}\n{http_line}\nserver {{\n\
                 listen 127.0.0.1:{port};\n{server_line}\nlocation / {{ return 200 ok; }}\n}}\n}}\n"
            );
            let reported = reports(&scratch, &text, version, rule);
            let answered = answered_by_nginx(&bin, &text, port, &["/"]);
            assert_eq!(
                reported, !server_sets_its_own,
                "{rule} reported: {reported}\n{text}"
            );
            let expected = if server_sets_its_own { 3 } else { 1 };
            assert_eq!(answered, [expected], "{text}");
        }
    }
}

/// C001 and C002 at server level on a real nginx: a server's low
/// `keepalive_requests` or `keepalive_timeout 0` that every location
/// replaces, with a `location /`, applies to no request (nginx keeps the
/// connection open, upkeep says nothing of it); without the location's own
/// value nginx closes and upkeep reports it. A request answered by a
/// server-level `if … return` gets the server's `keepalive_timeout 0`
/// (nginx closes), while nginx 1.22 does not limit it by the server's
/// `keepalive_requests`; upkeep reports both whenever the server answers
/// anything itself, which is the safe side for the second. A server that
/// speaks HTTP/2 keeps the finding (checked statically).
#[test]
fn server_level_client_keepalive_findings_match_a_real_nginx() {
    let Some(bin) = upkeep_nginx::NginxBinary::find(None) else {
        assert!(std::env::var_os("CI").is_none(), "CI must install nginx");
        eprintln!("no nginx binary; skipping");
        return;
    };
    let version = NginxVersion::parse(&bin.version().unwrap()).unwrap();
    let port = upkeep_nginx::free_port().unwrap();
    let scratch = upkeep_nginx::Prefix::new().unwrap();
    let temp = scratch.http_temp_paths();
    let config = |server_lines: &str, location_line: &str, listen_params: &str| {
        format!(
            "events {{}}\nhttp {{\naccess_log off;\n{temp}\nserver {{\n\
             listen 127.0.0.1:{port}{listen_params};\n{server_lines}\n\
             location / {{ {location_line} return 200 ok; }}\n}}\n}}\n"
        )
    };
    // (low value, the location's own, rule, answered on /r when the
    // server answers it itself)
    for (low, own, rule, answered_by_server) in [
        ("keepalive_timeout 0;", "keepalive_timeout 75s;", "C002", 1),
        (
            "keepalive_requests 1;",
            "keepalive_requests 1000;",
            "C001",
            3,
        ),
    ] {
        let redirect = format!("{low}\nif ($request_uri = /r) {{ return 200 r; }}");
        // (server lines, location line, reported, answered on /, on /r)
        let cases = [
            (low.to_string(), own, false, 3, 3),
            (redirect, own, true, 3, answered_by_server),
            (low.to_string(), "", true, 1, 1),
        ];
        for (server_lines, location_line, expected, on_root, on_r) in cases {
            let text = config(&server_lines, location_line, "");
            let reported = reports(&scratch, &text, version, rule);
            assert_eq!(reported, expected, "{rule}\n{text}");
            let answered = answered_by_nginx(&bin, &text, port, &["/", "/r"]);
            assert_eq!(answered, [on_root, on_r], "{text}");
        }
        let http2 = config(low, own, " http2");
        assert!(reports(&scratch, &http2, version, rule), "{rule}\n{http2}");
    }
}

/// Whether upkeep reports `rule` on the one-file config `text`.
fn reports(scratch: &upkeep_nginx::Prefix, text: &str, version: NginxVersion, rule: &str) -> bool {
    check_text(scratch, text, version)
        .findings
        .iter()
        .any(|f| f.rule == rule)
}

/// How many of 3 requests to each of `paths` a real nginx running `text`
/// (listening on `port`) answers on one client connection.
fn answered_by_nginx(
    bin: &upkeep_nginx::NginxBinary,
    text: &str,
    port: u16,
    paths: &[&str],
) -> Vec<usize> {
    let prefix = upkeep_nginx::Prefix::new().unwrap();
    let conf = prefix.write("conf/nginx.conf", text).unwrap();
    let mut nginx = upkeep_nginx::NginxInstance::start(bin, &prefix, &conf).unwrap();
    let answered = paths
        .iter()
        .map(|path| answered_on_one_connection(port, path, 3))
        .collect();
    nginx.stop().unwrap();
    answered
}
