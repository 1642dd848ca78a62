//! `upkeep mcp` driven by a Model Context Protocol client from the same SDK
//! (rmcp) over the child process's stdin/stdout: the tool list and its
//! schemas, and each tool's answer compared with the command it stands for,
//! run on the same input. Every call is bounded by a timeout.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{text, upkeep};
use rmcp::model::{CallToolRequestParams, CallToolResult, Tool};
use rmcp::service::RunningService;
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde_json::{json, Value};

/// Longest wait for one request (the machine may be loaded).
const CALL_TIMEOUT: Duration = Duration::from_secs(90);

type Client = RunningService<RoleClient, ()>;

async fn start() -> Client {
    let command = tokio::process::Command::new(env!("CARGO_BIN_EXE_upkeep")).configure(|c| {
        c.arg("mcp").env("NO_COLOR", "1");
    });
    let transport = TokioChildProcess::new(command).expect("spawn upkeep mcp");
    tokio::time::timeout(CALL_TIMEOUT, ().serve(transport))
        .await
        .expect("initialized in time")
        .expect("initialize")
}

async fn call(client: &Client, tool: &str, arguments: Value) -> CallToolResult {
    let Value::Object(arguments) = arguments else {
        panic!("arguments must be an object")
    };
    let request = CallToolRequestParams::new(tool.to_string()).with_arguments(arguments);
    tokio::time::timeout(CALL_TIMEOUT, client.call_tool(request))
        .await
        .unwrap_or_else(|_| panic!("{tool}: no answer in {CALL_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("{tool}: protocol error {e}"))
}

async fn stop(client: Client) {
    tokio::time::timeout(CALL_TIMEOUT, client.cancel())
        .await
        .expect("stopped in time")
        .expect("stop");
}

/// The JSON of a successful call.
fn ok_json(result: &CallToolResult) -> Value {
    assert_eq!(result.is_error, Some(false), "{}", content_text(result));
    let value = result
        .structured_content
        .clone()
        .expect("structured content");
    // The text content is the same JSON, for clients that read only text.
    let from_text: Value = serde_json::from_str(&content_text(result)).expect("text is JSON");
    assert_eq!(from_text, value);
    value
}

/// The message of a failed call.
fn error_text(result: &CallToolResult) -> String {
    assert_eq!(
        result.is_error,
        Some(true),
        "expected an error: {}",
        content_text(result)
    );
    content_text(result)
}

fn content_text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/shop")
}

/// A copy of the shop example in a temporary directory.
fn example_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("shop");
    copy_dir(&example(), &root);
    (dir, root)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Every file under `root` with its bytes.
fn snapshot(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                out.push((p, bytes));
            }
        }
    }
    out.sort();
    out
}

fn schema_properties(tool: &Tool) -> &serde_json::Map<String, Value> {
    tool.input_schema
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("{}: no properties in its schema", tool.name))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_the_tools_with_their_schemas() {
    let client = start().await;
    let tools = tokio::time::timeout(CALL_TIMEOUT, client.list_all_tools())
        .await
        .expect("in time")
        .expect("tools/list");
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names, ["check", "fix", "explain", "logs", "doctor"]);
    let by_name = |n: &str| tools.iter().find(|t| t.name == n).unwrap();
    for tool in &tools {
        assert_eq!(tool.input_schema.get("type"), Some(&json!("object")));
        assert!(
            tool.description.as_deref().is_some_and(|d| d.len() > 40),
            "{} has a description",
            tool.name
        );
    }
    let check = schema_properties(by_name("check"));
    for option in [
        "path",
        "config",
        "files",
        "nginx_t",
        "nginx_version",
        "front",
        "front_idle",
        "backend",
        "select",
        "ignore",
    ] {
        assert!(
            check.contains_key(option),
            "check takes {option}: {check:?}"
        );
    }
    assert_eq!(check["files"]["type"], "object");
    assert_eq!(check["backend"]["type"], "array");
    let fix = schema_properties(by_name("fix"));
    for option in [
        "path",
        "config",
        "write",
        "rules",
        "unsafe_fixes",
        "no_nginx_test",
    ] {
        assert!(fix.contains_key(option), "fix takes {option}");
    }
    assert_eq!(fix["write"]["type"], "boolean");
    let explain = by_name("explain");
    assert_eq!(explain.input_schema["required"], json!(["rule"]));
    let logs = schema_properties(by_name("logs"));
    for option in ["error_logs", "access_logs", "log_format", "since", "until"] {
        assert!(logs.contains_key(option), "logs takes {option}");
    }
    let doctor = schema_properties(by_name("doctor"));
    for option in ["nginx", "config", "sample", "error_log", "nginx_version"] {
        assert!(doctor.contains_key(option), "doctor takes {option}");
    }
    stop(client).await;
}

/// A finding of the tool without the two fields it adds, after checking
/// them against the rest.
fn as_cli_finding(mut f: Value) -> Value {
    let obj = f.as_object_mut().unwrap();
    let fixable = obj.remove("fixable").expect("fixable");
    let location = obj.remove("location").expect("location");
    assert_eq!(fixable, json!(!obj["fix"].is_null()));
    assert_eq!(
        location,
        json!(format!(
            "{}:{}:{}",
            obj["file"].as_str().unwrap(),
            obj["line"],
            obj["column"]
        ))
    );
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_gives_the_findings_of_check_format_json() {
    let shop = example();
    let cli = upkeep(&[
        "check".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
        "--nginx-version".as_ref(),
        "1.22.1".as_ref(),
        shop.as_os_str(),
    ]);
    assert_eq!(cli.status.code(), Some(1), "{}", text(&cli.stderr));
    let cli: Value = serde_json::from_slice(&cli.stdout).unwrap();
    assert!(cli["findings"].as_array().unwrap().len() >= 5, "{cli}");

    let client = start().await;
    let result = call(
        &client,
        "check",
        json!({ "path": shop.to_str().unwrap(), "nginx_version": "1.22.1" }),
    )
    .await;
    let mut mcp = ok_json(&result);
    let findings: Vec<Value> = mcp["findings"]
        .as_array()
        .unwrap()
        .iter()
        .cloned()
        .map(as_cli_finding)
        .collect();
    assert_eq!(Value::Array(findings.clone()), cli["findings"]);
    let obj = mcp.as_object_mut().unwrap();
    obj.remove("findings");
    obj.remove("warnings");
    for (key, value) in obj.iter() {
        assert_eq!(&cli[key], value, "{key}");
    }

    // The same configuration given as text finds the same.
    let read = |p: &str| std::fs::read_to_string(shop.join(p)).unwrap();
    let result = call(
        &client,
        "check",
        json!({
            "config": read("nginx.conf"),
            "files": {
                "mime.types": read("mime.types"),
                "conf.d/shop.conf": read("conf.d/shop.conf"),
                "conf.d/upstreams.conf": read("conf.d/upstreams.conf"),
            },
            "nginx_version": "1.22.1",
        }),
    )
    .await;
    // (Messages may quote a file by the name it was loaded under, so the
    // places are compared.)
    let place = |f: &Value| {
        json!([
            f["rule"],
            f["severity"],
            f["file"],
            f["line"],
            f["column"],
            f["fix"]
        ])
    };
    let inline = ok_json(&result);
    let inline: Vec<Value> = inline["findings"]
        .as_array()
        .unwrap()
        .iter()
        .cloned()
        .map(as_cli_finding)
        .map(|f| place(&f))
        .collect();
    assert_eq!(inline, findings.iter().map(place).collect::<Vec<_>>());

    // Options reach the rules: --select as `select`.
    let result = call(
        &client,
        "check",
        json!({ "path": shop.to_str().unwrap(), "nginx_version": "1.22.1", "select": ["U004"] }),
    )
    .await;
    let selected = ok_json(&result);
    let rules: Vec<&Value> = selected["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["rule"])
        .collect();
    assert!(
        !rules.is_empty() && rules.iter().all(|r| *r == "U004"),
        "{rules:?}"
    );
    stop(client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fix_returns_the_diff_and_writes_nothing() {
    let (_dir, shop) = example_copy();
    let main = shop.join("nginx.conf");
    let before = snapshot(&shop);
    let cli = upkeep(&[
        "fix".as_ref(),
        "--nginx-version".as_ref(),
        "1.22.1".as_ref(),
        main.as_os_str(),
    ]);
    assert_eq!(cli.status.code(), Some(1), "{}", text(&cli.stderr));
    let cli_diff = text(&cli.stdout);
    assert!(cli_diff.contains("+++ conf.d/shop.conf"), "{cli_diff}");

    let client = start().await;
    let result = call(
        &client,
        "fix",
        json!({ "path": main.to_str().unwrap(), "nginx_version": "1.22.1" }),
    )
    .await;
    let fixed = ok_json(&result);
    assert_eq!(fixed["diff"], json!(cli_diff));
    assert_eq!(
        fixed["changed_files"],
        json!(["conf.d/shop.conf", "conf.d/upstreams.conf"])
    );
    assert!(fixed["applied"].as_array().unwrap().len() >= 5, "{fixed}");
    assert!(fixed["written"].is_null());
    assert_eq!(snapshot(&shop), before, "no file changed without write");
    stop(client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fix_with_write_writes_what_nginx_accepts() {
    let (_dir, shop) = example_copy();
    let main = shop.join("nginx.conf");
    let shop_conf = shop.join("conf.d/shop.conf");
    let original = std::fs::read_to_string(&shop_conf).unwrap();

    let client = start().await;
    let result = call(
        &client,
        "fix",
        json!({ "path": main.to_str().unwrap(), "nginx_version": "1.22.1", "write": true }),
    )
    .await;
    let fixed = ok_json(&result);
    let written = &fixed["written"];
    assert_eq!(
        written["files"],
        json!(["conf.d/shop.conf", "conf.d/upstreams.conf"]),
        "{fixed}"
    );
    assert!(
        written["validated_by"]
            .as_str()
            .is_some_and(|n| n.ends_with("nginx")),
        "validated by nginx -t: {written}"
    );
    let now = std::fs::read_to_string(&shop_conf).unwrap();
    assert_ne!(now, original);
    assert!(now.contains("proxy_next_upstream error timeout;"), "{now}");
    assert_eq!(
        std::fs::read_to_string(shop.join("conf.d/shop.conf.upkeep.bak")).unwrap(),
        original
    );

    // The real nginx accepts the result, in a private prefix.
    let nginx = upkeep_nginx::NginxBinary::find(Some(Path::new("/usr/sbin/nginx")))
        .expect("nginx at /usr/sbin/nginx");
    let prefix = upkeep_nginx::Prefix::new().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let outcome = nginx
        .test_config(&main, prefix.path(), scratch.path())
        .unwrap();
    assert!(outcome.ok, "nginx -t: {}", outcome.output);

    // Nothing left to fix: a second write changes nothing.
    let result = call(
        &client,
        "fix",
        json!({ "path": main.to_str().unwrap(), "nginx_version": "1.22.1" }),
    )
    .await;
    assert_eq!(ok_json(&result)["diff"], "");
    stop(client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_gives_the_rule_doc() {
    let client = start().await;
    let result = call(&client, "explain", json!({ "rule": "U004" })).await;
    let doc = ok_json(&result);
    assert_eq!(doc["id"], "U004");
    assert_eq!(doc["name"], "proxy-set-header-inheritance-lost");
    assert_eq!(doc["fixable"], true);
    let cli = upkeep(&["explain", "U004"]);
    assert_eq!(cli.status.code(), Some(0));
    assert_eq!(doc["doc"], json!(text(&cli.stdout)));
    // By name, too.
    let result = call(
        &client,
        "explain",
        json!({ "rule": "proxy-set-header-inheritance-lost" }),
    )
    .await;
    assert_eq!(ok_json(&result)["id"], "U004");
    let result = call(&client, "explain", json!({ "rule": "U999" })).await;
    assert!(error_text(&result).contains("no rule \"U999\""));
    stop(client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_on_a_flavor_gives_its_defaults() {
    let client = start().await;
    let args = json!({ "rule": "U001", "flavor": "angie", "nginx_version": "1.12.1" });
    let result = call(&client, "explain", args).await;
    let doc = ok_json(&result);
    let on = &doc["on_target"];
    assert_eq!(on["flavor"], "angie");
    assert_eq!(on["version"], "1.12.1");
    assert_eq!(on["version_source"], "given");
    assert_eq!(on["can_fire"], true);
    assert!(on["applies"]
        .as_str()
        .unwrap()
        .contains("every upstream block without `keepalive N`"));
    assert!(on["facts"].as_array().unwrap().iter().any(|f| f["source"]
        .as_str()
        .unwrap()
        .starts_with("flavors.tsv, row angie 1.0.0 keepalive_by_default: ")));
    let cli = upkeep(&[
        "explain",
        "U001",
        "--flavor",
        "angie",
        "--nginx-version",
        "1.12.1",
    ]);
    assert_eq!(doc["doc"], json!(text(&cli.stdout)));
    // Without one: no section.
    let plain = ok_json(&call(&client, "explain", json!({ "rule": "U001" })).await);
    assert_eq!(plain["on_target"], Value::Null);
    let result = call(
        &client,
        "explain",
        json!({ "rule": "U001", "flavor": "tengine" }),
    )
    .await;
    assert!(error_text(&result).contains("unknown flavor \"tengine\""));
    stop(client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_gives_the_summary_of_logs_format_json() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("error.log");
    let mut lines = String::new();
    for n in 1..=4 {
        lines += &format!(
            "2026/11/23 14:00:0{n} [error] 1#0: *{n} upstream prematurely closed connection while reading response header from upstream, client: 1.1.1.1, server: a, request: \"GET /{n} HTTP/1.1\", upstream: \"http://10.0.0.1:80/{n}\", host: \"a\"\n"
        );
    }
    lines += "2026/11/23 14:00:09 [error] 1#0: *9 connect() failed (111: Connection refused) while connecting to upstream, client: 1.1.1.1, server: a, request: \"GET /x HTTP/1.1\", upstream: \"http://10.0.0.2:80/x\", host: \"a\"\n";
    std::fs::write(&log, lines).unwrap();

    let cli = upkeep(&[
        "logs".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
        log.as_os_str(),
    ]);
    assert_eq!(cli.status.code(), Some(1), "{}", text(&cli.stderr));
    let cli: Value = serde_json::from_slice(&cli.stdout).unwrap();

    let client = start().await;
    let result = call(
        &client,
        "logs",
        json!({ "error_logs": [log.to_str().unwrap()] }),
    )
    .await;
    let mut summary = ok_json(&result);
    summary.as_object_mut().unwrap().remove("messages");
    assert_eq!(summary, cli);
    let closed = summary["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "upstream-prematurely-closed")
        .expect("the signature");
    assert_eq!(closed["count"], 4);
    stop(client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_an_error_result_and_the_server_goes_on() {
    let client = start().await;
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.conf");

    let result = call(
        &client,
        "check",
        json!({ "path": missing.to_str().unwrap() }),
    )
    .await;
    let message = error_text(&result);
    assert!(
        message.contains(missing.to_str().unwrap()) && message.contains("No such file"),
        "{message}"
    );

    // A syntax error: file:line:col.
    let result = call(
        &client,
        "check",
        json!({ "config": "events {}\nhttp {\n    upstream app { server 127.0.0.1:1 }\n" }),
    )
    .await;
    let message = error_text(&result);
    assert!(message.contains("nginx.conf:3:"), "{message}");

    let result = call(&client, "check", json!({})).await;
    assert!(error_text(&result).contains("`path`"));
    let result = call(&client, "check", json!({ "path": 5 })).await;
    assert!(error_text(&result).contains("bad arguments"));
    let result = call(
        &client,
        "check",
        json!({ "path": example().to_str().unwrap(), "nginx_verison": "1.22.1" }),
    )
    .await;
    assert!(error_text(&result).contains("unknown argument nginx_verison"));
    let result = call(
        &client,
        "check",
        json!({ "path": example().to_str().unwrap(), "nginx_version": "one" }),
    )
    .await;
    assert!(error_text(&result).contains("nginx-version"));

    // write=true on text: nothing to write to.
    let result = call(
        &client,
        "fix",
        json!({ "config": "events {}\n", "write": true }),
    )
    .await;
    assert!(error_text(&result).contains("write needs the config's `path`"));
    let result = call(
        &client,
        "fix",
        json!({ "path": missing.to_str().unwrap(), "write": true }),
    )
    .await;
    assert!(error_text(&result).contains("No such file"));
    assert!(!missing.exists());

    let result = call(&client, "explain", json!({})).await;
    assert!(error_text(&result).contains("rule"));

    let result = call(
        &client,
        "logs",
        json!({ "error_logs": [dir.path().join("none.log").to_str().unwrap()] }),
    )
    .await;
    assert!(error_text(&result).contains("none.log"));
    let result = call(&client, "logs", json!({ "error_logs": ["-"] })).await;
    assert!(error_text(&result).contains("standard input"));

    // No nginx there: a clear error, at once.
    let result = call(
        &client,
        "doctor",
        json!({ "nginx": dir.path().join("no-nginx").to_str().unwrap() }),
    )
    .await;
    assert!(error_text(&result).contains("no such file"));

    // The server still answers.
    let result = call(&client, "explain", json!({ "rule": "U001" })).await;
    assert_eq!(ok_json(&result)["id"], "U001");
    stop(client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_reports_on_a_config_without_a_running_nginx() {
    let (_dir, shop) = example_copy();
    let client = start().await;
    let result = call(
        &client,
        "doctor",
        json!({
            "config": shop.join("nginx.conf").to_str().unwrap(),
            "sample": "200ms",
            "nginx_version": "1.22.1",
        }),
    )
    .await;
    let report = ok_json(&result);
    assert_eq!(report["schema"], 1);
    assert_eq!(report["nginx_version"], "1.22.1");
    assert!(report["host"]["backends"].as_array().is_some(), "{report}");
    let result = call(
        &client,
        "doctor",
        json!({ "config": shop.join("nginx.conf").to_str().unwrap(), "sample": "10m" }),
    )
    .await;
    assert!(error_text(&result).contains("at most 60s"));
    stop(client).await;
}

/// `probe: true` measures the backends doctor cannot read on the host, as
/// `doctor --probe` does: a backend with a 1 s idle timeout, served by this
/// test process. The server keeps answering afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_probes_backends_when_asked() {
    let backend = common::idle_closing_backend(Duration::from_secs(1), 64);
    let dir = tempfile::tempdir().unwrap();
    let conf = common::write_pooled_proxy_config(dir.path(), backend);
    let client = start().await;
    let conf = conf.to_str().unwrap();
    let result = call(
        &client,
        "doctor",
        json!({ "config": conf, "sample": "200ms", "nginx_version": "1.22.1",
                "probe": true, "probe_max_wait": "10s" }),
    )
    .await;
    let report = ok_json(&result);
    let ours = report["host"]["discovered_backends"]
        .as_array()
        .and_then(|b| b.iter().find(|b| b["address"] == backend.to_string()))
        .unwrap_or_else(|| panic!("{backend} not discovered: {report:#}"))
        .clone();
    let idle = ours["probed"]["idle_timeout_ms"]
        .as_u64()
        .unwrap_or_else(|| panic!("not probed: {ours:#}"));
    assert!((900..=2500).contains(&idle), "{idle} ms for 1 s: {ours:#}");

    // Without `probe`, nothing is measured.
    let result = call(
        &client,
        "doctor",
        json!({ "config": conf, "sample": "200ms", "nginx_version": "1.22.1" }),
    )
    .await;
    let report = ok_json(&result);
    assert!(
        report["host"]["discovered_backends"]
            .as_array()
            .is_some_and(|b| b.iter().all(|b| b["probed"].is_null())),
        "{report:#}"
    );
    // Bounds of a tool call.
    let result = call(
        &client,
        "doctor",
        json!({ "config": conf, "probe": true, "probe_max_wait": "5m" }),
    )
    .await;
    assert!(error_text(&result).contains("at most 60s"));
    let result = call(
        &client,
        "doctor",
        json!({ "config": conf, "probe_max_wait": "5s" }),
    )
    .await;
    assert!(error_text(&result).contains("needs `probe: true`"));
    stop(client).await;
}

/// Waits at most `limit` for `child` to exit.
fn wait_exit(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("upkeep mcp still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_server_ends_when_its_input_closes_and_on_sigterm() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_upkeep"))
            .arg("mcp")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn upkeep mcp")
    };
    // A session (initialize, then the client closes its end): exit 0.
    let mut child = spawn();
    let mut stdin = child.stdin.take().unwrap();
    use std::io::Write;
    stdin
        .write_all(
            concat!(
                r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"test","version":"1"}}}"#,
                "\n",
                r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
                "\n"
            )
            .as_bytes(),
        )
        .unwrap();
    drop(stdin);
    let status = wait_exit(&mut child, Duration::from_secs(30));
    assert!(status.success(), "{status:?}");

    // SIGTERM ends it (the handlers that protect a write do not keep it alive).
    let mut child = spawn();
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill() on the pid of our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = wait_exit(&mut child, Duration::from_secs(30));
    assert_eq!(
        status.code(),
        Some(128 + libc::SIGTERM),
        "{status:?} {:?}",
        status.signal()
    );
}
