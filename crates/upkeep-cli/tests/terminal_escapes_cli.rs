//! Control characters from outside (file names, upstream names, `--backend`
//! values, logged request lines) never reach the terminal raw: human
//! output shows them as control pictures (`ESC` as `␛`), the convention of
//! the source snippets. Machine output keeps the data: JSON escapes them
//! itself, and a diff written to a pipe keeps its bytes for `patch`.

mod common;

use common::{text, upkeep};

const ESC: char = '\u{1b}';

/// Neither stream holds an escape character, and stdout shows `␛`.
fn assert_escaped(out: &std::process::Output) {
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        !stdout.contains(ESC) && !stderr.contains(ESC),
        "raw escape in the output:\n{stdout:?}\n{stderr:?}"
    );
}

#[test]
fn check_escapes_file_names_upstream_names_and_backend_values() {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("ev{ESC}[2Jil.conf");
    let conf = dir.path().join(&name);
    std::fs::write(
        &conf,
        format!(
            "events {{}}\nhttp {{\n    include \"missing{ESC}]0;title{}.conf\";\n    keepalive_timeout 75s;\n    upstream \"b{ESC}[31m\" {{\n        server 127.0.0.1:8000;\n        keepalive 8;\n    }}\n    server {{\n        location / {{\n            proxy_http_version 1.1;\n            proxy_set_header Connection \"\";\n            proxy_pass http://b{ESC}[31m;\n        }}\n    }}\n}}\n",
            '\u{7}'
        ),
    )
    .unwrap();
    let backend = format!("b{ESC}[31m=idle=5s");
    let out = upkeep(&[
        "check",
        "--nginx-version",
        "1.28.0",
        "--backend",
        &backend,
        conf.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_escaped(&out);
    let stdout = text(&out.stdout);
    // The file name in `-->`, the upstream in the help line.
    assert!(stdout.contains("ev\u{241b}[2Jil.conf:"), "{stdout}");
    assert!(stdout.contains("U007"), "{stdout}");
    assert!(stdout.contains("upstream `b\u{241b}[31m`"), "{stdout}");
    // The missing include's warning names the file escaped.
    assert!(
        text(&out.stderr).contains("missing\u{241b}]0;title\u{2407}.conf"),
        "{}",
        text(&out.stderr)
    );

    // JSON carries the real bytes (as JSON escapes).
    let out = upkeep(&[
        "check",
        "--format",
        "json",
        "--nginx-version",
        "1.28.0",
        conf.to_str().unwrap(),
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let files: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["file"].as_str())
        .collect();
    assert!(files.contains(&name.as_str()), "{files:?}");
}

#[test]
fn an_input_error_escapes_the_path_and_the_source_line() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join(format!("bad{ESC}[2J.conf"));
    std::fs::write(&conf, format!("events {{}}\nhttp {{ x{ESC}[5m \n")).unwrap();
    let out = upkeep(&["check", conf.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert_escaped(&out);
    assert!(text(&out.stderr).contains("bad\u{241b}[2J.conf:"));
}

#[test]
fn fix_escapes_its_report_but_keeps_the_bytes_of_a_piped_diff() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join(format!("app{ESC}[2J.conf"));
    let original = format!(
        "events {{}}\nhttp {{\n    upstream app {{\n        server 127.0.0.1:8000; # {ESC}[31mred\n    }}\n    server {{\n        location / {{\n            proxy_pass http://app;\n        }}\n    }}\n}}\n"
    );
    std::fs::write(&conf, &original).unwrap();
    let out = upkeep(&["fix", "--nginx-version", "1.28.0", conf.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(!stderr.contains(ESC), "{stderr:?}");
    // stdout is a pipe here: the diff is data for `patch`, byte for byte.
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("server 127.0.0.1:8000; # {ESC}[31mred")),
        "{stdout:?}"
    );
}

#[test]
fn logs_escape_logged_request_lines_and_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("error.log");
    std::fs::write(
        &log,
        format!(
            "2026/11/23 14:00:01 [error] 123#123: *5 upstream prematurely closed connection while reading response header from upstream, client: 10.0.0.1, server: x{ESC}]0;pwned\u{7}, request: \"GET /{ESC}[2J HTTP/1.1\", upstream: \"http://10.0.0.9:80{ESC}[31m/\", host: \"h{ESC}[5m\"\n"
        ),
    )
    .unwrap();
    let out = upkeep(&["logs", log.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_escaped(&out);
    assert!(
        text(&out.stdout).contains("10.0.0.9:80\u{241b}[31m"),
        "{}",
        text(&out.stdout)
    );

    let out = upkeep(&["logs", "--format", "json", log.to_str().unwrap()]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let by_upstream = &json["signatures"][0]["by_upstream"];
    assert!(
        by_upstream
            .as_object()
            .unwrap()
            .contains_key(&format!("10.0.0.9:80{ESC}[31m")),
        "{by_upstream}"
    );
}
