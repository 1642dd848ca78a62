//! A note repeated on every upstream of a big config is one summary line per
//! kind in human output; JSON keeps each finding with its group.

mod common;

use common::{text, upkeep};
use serde_json::Value;

/// `n` TCP upstreams and `m` unix-socket upstreams, none with a declared
/// backend, on nginx 1.30 (every upstream pools by default). The routes take
/// only GET (`limit_except`), so an unknown backend is an info; where POST
/// can reach a pool it is a warning with a fix of its own.
fn config(n: usize, m: usize) -> String {
    let mut s = String::from("events {}\nhttp {\n");
    for i in 0..n {
        s.push_str(&format!(
            "    upstream tcp{i} {{ server 127.0.0.1:{}; }}\n",
            9000 + i
        ));
    }
    for i in 0..m {
        s.push_str(&format!(
            "    upstream sock{i} {{ server unix:/run/app{i}.sock; }}\n"
        ));
    }
    s.push_str("    server {\n        listen 127.0.0.1:8080;\n");
    for i in 0..n {
        s.push_str(&format!(
            "        location /t{i}/ {{ limit_except GET {{ deny all; }} proxy_pass http://tcp{i}; }}\n"
        ));
    }
    for i in 0..m {
        s.push_str(&format!(
            "        location /s{i}/ {{ limit_except GET {{ deny all; }} proxy_pass http://sock{i}; }}\n"
        ));
    }
    s.push_str("    }\n}\n");
    s
}

#[test]
fn unknown_backends_are_one_line_per_kind_in_human_output_and_each_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nginx.conf");
    std::fs::write(&path, config(40, 3)).unwrap();
    let p = path.to_str().unwrap();

    let out = upkeep(&["check", p, "--nginx-version", "1.30.0", "--color", "never"]);
    let human = text(&out.stdout);
    let lines: Vec<&str> = human.lines().collect();
    let u007: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].starts_with("info[U007]"))
        .collect();
    assert_eq!(u007.len(), 2, "{human}");
    assert!(
        lines[u007[0]].contains("upstreams of HTTP over TCP"),
        "{human}"
    );
    assert_eq!(
        lines[u007[0] + 1],
        "  = at (40): nginx.conf:3, nginx.conf:4, nginx.conf:5, nginx.conf:6, nginx.conf:7 and 35 more"
    );
    assert!(
        lines[u007[1]].contains("upstreams of HTTP over unix sockets"),
        "{human}"
    );
    assert!(lines[u007[1] + 1].starts_with("  = at (3): "), "{human}");
    // The summary still counts every finding (40 + 3 U007, and R003).
    assert!(human.contains("44 infos"), "{human}");

    let out = upkeep(&["check", p, "--nginx-version", "1.30.0", "--format", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let u007: Vec<&Value> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "U007")
        .collect();
    assert_eq!(u007.len(), 43);
    assert!(u007.iter().all(|f| f["group"].as_str().is_some()));
    assert!(u007[0]["message"]
        .as_str()
        .unwrap()
        .contains("upstream `tcp0`"));
    assert!(u007[0]["help"]
        .as_str()
        .unwrap()
        .contains("--backend tcp0=PROFILE"));
}

/// The warnings for unknown backends behind POST routes are grouped too:
/// each keeps its fix (applied by `upkeep fix`) and its JSON entry.
#[test]
fn unknown_backends_behind_post_routes_are_one_line_with_their_fixes_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nginx.conf");
    let mut conf = String::from("events {}\nhttp {\n");
    for i in 0..30 {
        conf.push_str(&format!(
            "    upstream app{i} {{ server 127.0.0.1:{}; keepalive 8; }}\n",
            9000 + i
        ));
    }
    conf.push_str("    server {\n        listen 127.0.0.1:8080;\n        proxy_http_version 1.1;\n        proxy_set_header Connection \"\";\n");
    for i in 0..30 {
        conf.push_str(&format!(
            "        location /a{i}/ {{ proxy_pass http://app{i}; }}\n"
        ));
    }
    conf.push_str("    }\n}\n");
    std::fs::write(&path, conf).unwrap();
    let p = path.to_str().unwrap();
    let out = upkeep(&["check", p, "--nginx-version", "1.28.0", "--color", "never"]);
    let human = text(&out.stdout);
    let lines: Vec<&str> = human
        .lines()
        .filter(|l| l.starts_with("warning[U007]"))
        .collect();
    assert_eq!(lines.len(), 1, "{human}");
    assert!(lines[0].contains("that take POST requests"), "{}", lines[0]);
    assert!(human.contains("= at (30): "), "{human}");

    let out = upkeep(&["check", p, "--nginx-version", "1.28.0", "--format", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let u007: Vec<&Value> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "U007")
        .collect();
    assert_eq!(u007.len(), 30);
    assert!(u007
        .iter()
        .all(|f| f["fix"].is_object() && f["group"].is_string()));
}
