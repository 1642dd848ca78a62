//! `upkeep parse` end to end: output formats, inputs, exit codes.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn upkeep(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stdout));
    })
}

#[test]
fn follows_includes_in_crossplane_order() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("conf.d")).unwrap();
    std::fs::write(
        root.join("nginx.conf"),
        "events {}\nhttp {\n  include conf.d/*.conf;\n  # a comment\n}\n",
    )
    .unwrap();
    std::fs::write(root.join("conf.d/b.conf"), "server { listen 2; }\n").unwrap();
    std::fs::write(root.join("conf.d/a.conf"), "server { include snip; }\n").unwrap();
    std::fs::write(root.join("snip"), "if ($x) { return 204; }\n").unwrap();
    let out = upkeep(&["parse", root.to_str().unwrap()], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_eq!(v["status"], "ok");
    let files: Vec<String> = v["config"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            c["file"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    // crossplane's order: breadth first.
    assert_eq!(files, ["nginx.conf", "a.conf", "b.conf", "snip"]);
    let include = &v["config"][0]["parsed"][1]["block"][0];
    assert_eq!(include["directive"], "include");
    assert_eq!(include["includes"], serde_json::json!([1, 2]));
    // The comment is not listed without --include-comments.
    assert_eq!(
        v["config"][0]["parsed"][1]["block"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // `if` loses its parentheses, as in crossplane.
    assert_eq!(
        v["config"][3]["parsed"][0]["args"],
        serde_json::json!(["$x"])
    );

    let out = upkeep(
        &["parse", "--include-comments", root.to_str().unwrap()],
        None,
    );
    let v = json(&out);
    assert_eq!(
        v["config"][0]["parsed"][1]["block"][1]["comment"],
        " a comment"
    );
}

#[test]
fn a_syntax_error_exits_2_with_place_expectation_and_source_line() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("bad.conf");
    std::fs::write(&conf, "events {}\nhttp {\n    listen 80\n}\n").unwrap();
    let out = upkeep(&["parse", conf.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let path = conf.display();
    assert!(
        stderr.starts_with(&format!(
            "error: {path}:4:1: unexpected \"}}\", expecting \";\" or \"{{\"\n"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("4 | }\n"), "{stderr}");
    assert!(stderr.contains("  | ^\n"), "{stderr}");
    let v = json(&out);
    assert_eq!(v["status"], "failed");
    assert_eq!(v["errors"][0]["line"], 4);
}

#[test]
fn a_missing_include_warns_and_strict_makes_it_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("nginx.conf");
    std::fs::write(&conf, "events {}\ninclude nothere.conf;\n").unwrap();
    let out = upkeep(&["parse", conf.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("warning: "), "{stderr}");
    assert!(
        stderr.contains(":2:1: cannot read included file"),
        "{stderr}"
    );
    let v = json(&out);
    // crossplane marks the file failed with Python's wording.
    assert_eq!(v["status"], "failed");
    let msg = v["config"][0]["errors"][0]["error"].as_str().unwrap();
    assert!(
        msg.starts_with("[Errno 2] No such file or directory: '"),
        "{msg}"
    );

    let out = upkeep(&["parse", "--strict", conf.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn reads_nginx_t_output_from_stdin() {
    let dump = b"nginx: the configuration file /etc/nginx/nginx.conf syntax is ok\n\
# configuration file /etc/nginx/nginx.conf:\nevents {}\nhttp { include /etc/nginx/conf.d/*.conf; }\n\n\
# configuration file /etc/nginx/conf.d/a.conf:\nupstream u { server 127.0.0.1:1; keepalive 8; }\n\n";
    let out = upkeep(&["parse", "-"], Some(dump));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    assert_eq!(v["config"][1]["file"], "/etc/nginx/conf.d/a.conf");
    assert_eq!(
        v["config"][1]["parsed"][0]["block"][1]["directive"],
        "keepalive"
    );
}

#[test]
fn json_format_has_values_raw_tokens_and_positions() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("n.conf");
    std::fs::write(
        &conf,
        "a \"x\\ty\" # c\n  ;\ncontent_by_lua_block { s = '}' }\n",
    )
    .unwrap();
    let out = upkeep(&["parse", "--format", "json", conf.to_str().unwrap()], None);
    assert!(out.status.success());
    let v = json(&out);
    assert_eq!(v["schema"], 1);
    let a = &v["files"][0]["nodes"][0];
    assert_eq!(a["args"][0]["value"], "x\ty");
    assert_eq!(a["args"][0]["raw"], "\"x\\ty\"");
    assert_eq!(a["args"][0]["quote"], "double");
    assert_eq!(a["end_line"], 2);
    assert_eq!(a["comments"][0]["text"], "# c");
    assert_eq!(v["files"][0]["nodes"][1]["lua"], " s = '}' ");
}
