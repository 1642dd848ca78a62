//! The stale keep-alive alert of examples/prometheus/upkeep-alerts.yml,
//! end to end: a real Prometheus (Debian's package) scrapes `upkeep watch`
//! in front of a real nginx whose backend (Python's http.server) closes
//! connections idle for 1 s, while nginx keeps idle upstream connections for
//! the default 60 s. Traffic comes every 1.01–1.03 s, so nginx keeps taking
//! pooled connections the backend is closing; the test asserts through
//! Prometheus' HTTP API that UpkeepStaleKeepaliveReuse fires within its
//! `for:` window and prints how long that took.
//!
//! The shipped `for: 5m` is replaced by `for: 10s` (and nothing else in the
//! rules file changes), so the test stays under two minutes. A relay
//! (upkeep-lab's) delays bytes and FIN by 20 ms each way between nginx and
//! the backend, as between hosts: on loopback alone the backend's FIN
//! reaches nginx within microseconds and the race is rarely hit.
//!
//! Skipped (loudly) without nginx, python3 or prometheus; every process it
//! starts is stopped at the end, and all traffic is bounded in count and
//! time.

mod common;

use common::{
    installed, lines_of, next_line, sample, scrape, start_exporter, wait_for, KillOnDrop,
};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use upkeep_lab::cancel::Cancel;
use upkeep_lab::relay::Relay;
use upkeep_nginx::{free_port, NginxBinary, NginxInstance, Prefix};

/// The backend's idle timeout, and the relay's one-way delay.
const BACKEND_IDLE_SECONDS: u32 = 1;
const RELAY_DELAY: Duration = Duration::from_millis(20);
/// The test's `for:` (the shipped file says 5m).
const FOR: Duration = Duration::from_secs(10);
/// Upper bounds: traffic, and the wait for the alert.
const TRAFFIC_LIMIT: Duration = Duration::from_secs(75);
const CLIENTS: usize = 8;

/// A keep-alive HTTP/1.1 backend that closes a connection after
/// `BACKEND_IDLE_SECONDS` without a request (http.server's per-handler
/// socket timeout), answering GET and POST with a short body.
const BACKEND: &str = r#"
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = float(sys.argv[2])

    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = answer
    do_POST = answer

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
server.daemon_threads = True
print("ready", flush=True)
server.serve_forever()
"#;

/// A GET against an HTTP API on loopback; the body.
fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200")
        .then(|| body.to_string())
        .or_else(|| head.starts_with("HTTP/1.0 200").then(|| body.to_string()))
}

/// One request on a new client connection; the status code.
fn request(port: u16, post: bool) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let req = if post {
        "POST /p HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi"
            .to_string()
    } else {
        "GET /g HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".to_string()
    };
    s.write_all(req.as_bytes()).ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    resp.split_whitespace().nth(1)?.parse().ok()
}

/// The state of `alert` in Prometheus' /api/v1/alerts ("pending",
/// "firing"), with its labels, if it is there.
fn alert_state(api: &str, alert: &str) -> Option<(String, serde_json::Value)> {
    let body = http_get(api, "/api/v1/alerts")?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    v["data"]["alerts"]
        .as_array()?
        .iter()
        .filter(|a| a["labels"]["alertname"] == alert)
        .map(|a| {
            (
                a["state"].as_str().unwrap_or("").to_string(),
                a["labels"].clone(),
            )
        })
        .max_by_key(|(state, _)| state == "firing")
}

#[test]
fn the_stale_reuse_alert_fires_in_a_real_prometheus() {
    let Some(bin) = NginxBinary::find(None) else {
        eprintln!("SKIPPED: no nginx binary found (install Debian's nginx)");
        return;
    };
    let Some(prometheus) = installed("prometheus", "prometheus") else {
        return;
    };
    let Some(python) = installed("python3", "python3") else {
        return;
    };
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();

    // The backend, and the relay in front of it.
    let backend_port = free_port().unwrap();
    let script = dir.path().join("backend.py");
    std::fs::write(&script, BACKEND).unwrap();
    let mut child = Command::new(python)
        .arg(&script)
        .arg(backend_port.to_string())
        .arg(BACKEND_IDLE_SECONDS.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready = lines_of(child.stdout.take().unwrap());
    let _backend = KillOnDrop(child);
    assert_eq!(next_line(&ready, "backend ready"), "ready");
    let backend: SocketAddr = ([127, 0, 0, 1], backend_port).into();

    let stop_relay = Cancel::new();
    let (tx, rx) = mpsc::channel();
    let relay_stop = stop_relay.clone();
    let relay_thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut tasks = tokio::task::JoinSet::new();
            let relay = Relay::start(
                "127.0.0.1:0".parse().unwrap(),
                backend,
                RELAY_DELAY,
                relay_stop.clone(),
                &mut tasks,
            )
            .await
            .unwrap();
            tx.send(relay.addr).unwrap();
            relay_stop.cancelled().await;
            tasks.shutdown().await;
        });
    });
    let relay = rx.recv_timeout(Duration::from_secs(10)).unwrap();

    // nginx: a pool with the default upstream keepalive_timeout (60s).
    let prefix = Prefix::new().unwrap();
    let port = free_port().unwrap();
    let conf = prefix
        .write(
            "nginx.conf",
            &format!(
                "worker_processes 1;\nerror_log {};\nevents {{ worker_connections 256; }}\nhttp {{\n    {}\n    log_format up '$remote_addr [$time_local] \"$request\" $status ua=\"$upstream_addr\" us=\"$upstream_status\"';\n    access_log {} up;\n    upstream app {{ server {relay}; keepalive 32; }}\n    server {{\n        listen 127.0.0.1:{port};\n        location / {{ proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection \"\"; }}\n        location = /status {{ stub_status; access_log off; }}\n    }}\n}}\n",
                prefix.error_log().display(),
                prefix.http_temp_paths(),
                prefix.access_log().display(),
            ),
        )
        .unwrap();
    std::fs::write(prefix.access_log(), "").unwrap();
    let nginx = NginxInstance::start(&bin, &prefix, &conf).unwrap();

    // The exporter.
    let watch = start_exporter(&conf, nginx.pid(), "500ms", Stdio::null());
    let exporter = watch.addr.clone();

    // Prometheus, with the shipped rules but a short `for:` for the alert.
    let shipped = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/prometheus/upkeep-alerts.yml"),
    )
    .unwrap();
    let marker = "- alert: UpkeepStaleKeepaliveReuse";
    let at = shipped
        .find(marker)
        .expect("the alert in the shipped rules");
    let for_at = at + shipped[at..].find("for: 5m").expect("its for: 5m");
    let rules = format!(
        "{}for: {}s{}",
        &shipped[..for_at],
        FOR.as_secs(),
        &shipped[for_at + "for: 5m".len()..]
    );
    std::fs::write(dir.path().join("rules.yml"), rules).unwrap();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - rules.yml\nscrape_configs:\n  - job_name: upkeep\n    static_configs:\n      - targets: ['{exporter}']\n"
        ),
    )
    .unwrap();
    let api = format!("127.0.0.1:{}", free_port().unwrap());
    let child = Command::new(prometheus)
        .arg(format!(
            "--config.file={}",
            dir.path().join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={api}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _prometheus = KillOnDrop(child);
    assert!(
        wait_for(Duration::from_secs(20), Duration::from_millis(200), || {
            http_get(&api, "/-/ready").is_some()
        }),
        "Prometheus not ready in 20 s"
    );

    // Traffic: clients in step, every 1.01-1.03 s, half of them POSTs, so
    // each burst takes pooled connections idle for just over the backend's
    // timeout.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let bad_gateway = Arc::new(AtomicU64::new(0));
    let traffic_start = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (stop, sent, bad) = (stop.clone(), sent.clone(), bad_gateway.clone());
            std::thread::spawn(move || {
                let mut tick = traffic_start;
                for round in 0..100u64 {
                    if stop.load(Ordering::Relaxed) || traffic_start.elapsed() > TRAFFIC_LIMIT {
                        return;
                    }
                    if request(port, (c + round as usize).is_multiple_of(2)) == Some(502) {
                        bad.fetch_add(1, Ordering::Relaxed);
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                    tick += Duration::from_millis(1010 + (round % 3) * 10);
                    std::thread::sleep(tick.saturating_duration_since(Instant::now()));
                }
            })
        })
        .collect();

    // Watch the exporter for the first stale failure, and Prometheus for
    // the alert.
    let stale = |page: &str| -> f64 {
        [
            "upstream-prematurely-closed",
            "upstream-reset",
            "upstream-send-failed",
        ]
        .iter()
        .filter_map(|sig| {
            sample(
                page,
                &format!(
                    "upkeep_upstream_error_signatures_total{{backend=\"{relay}\",upstream=\"app\",signature=\"{sig}\"}}"
                ),
            )
        })
        .sum()
    };
    let mut first_failure: Option<Instant> = None;
    let mut pending: Option<Instant> = None;
    let mut firing: Option<(Instant, serde_json::Value)> = None;
    while traffic_start.elapsed() < TRAFFIC_LIMIT + Duration::from_secs(5) {
        if first_failure.is_none() && stale(&scrape(&exporter)) > 0.0 {
            first_failure = Some(Instant::now());
        }
        match alert_state(&api, "UpkeepStaleKeepaliveReuse") {
            Some((state, _)) if state == "pending" && pending.is_none() => {
                pending = Some(Instant::now());
            }
            Some((state, labels)) if state == "firing" => {
                firing = Some((Instant::now(), labels));
                break;
            }
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let last_page = scrape(&exporter);
    let log = std::fs::read_to_string(prefix.error_log()).unwrap_or_default();
    let summary = format!(
        "{} requests, {} client 502s, stale-reuse lines {}; error log:\n{}",
        sent.load(Ordering::Relaxed),
        bad_gateway.load(Ordering::Relaxed),
        stale(&last_page),
        log.lines().rev().take(5).collect::<Vec<_>>().join("\n")
    );

    let first_failure = first_failure.unwrap_or_else(|| panic!("no stale failure seen: {summary}"));
    let (fired, labels) = firing.unwrap_or_else(|| {
        panic!("the alert did not fire within {TRAFFIC_LIMIT:?} of traffic: {summary}")
    });
    let from_failure = fired.saturating_duration_since(first_failure);
    let from_pending = pending.map(|p| fired.saturating_duration_since(p));
    println!(
        "UpkeepStaleKeepaliveReuse (for: {}s) fired {:.1} s after the exporter first showed a stale-reuse failure ({:.1} s after the traffic started; pending for {}); {summary}",
        FOR.as_secs(),
        from_failure.as_secs_f64(),
        fired.saturating_duration_since(traffic_start).as_secs_f64(),
        from_pending.map_or("-".into(), |d| format!("{:.1} s", d.as_secs_f64())),
    );
    assert_eq!(labels["upstream"], "app", "{labels}");
    assert_eq!(labels["backend"], relay.to_string(), "{labels}");
    assert_eq!(labels["severity"], "warning", "{labels}");
    // Within its `for:` window: `for:` itself, plus a scrape interval, an
    // evaluation interval and a watch interval before Prometheus can see a
    // failure, plus slack for a loaded machine.
    let window = FOR + Duration::from_secs(15);
    assert!(
        from_failure <= window,
        "fired {from_failure:?} after the first failure (window {window:?})"
    );

    stop_relay.cancel();
    relay_thread.join().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "took {:?}",
        started.elapsed()
    );
}
