//! The watch sampler against a real nginx: an upstream without keep-alive in
//! front of a small backend, bounded client traffic, and the rates, new
//! upstream connections, TIME_WAIT, error signatures and the Prometheus page
//! checked against what was sent. Skipped (loudly) without an nginx binary.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{nginx, Backend, Mode, Nginx};
use upkeep_host::live_config::LiveConfig;
use upkeep_host::sockets::SocketReader;
use upkeep_host::stub_status::StatusUrl;
use upkeep_host::watch::metrics_server::{MetricsServer, Page};
use upkeep_host::watch::{json, Interval, WatchOptions, WatchedBackend, Watcher};
use upkeep_logs::Signature;
use upkeep_rules::NginxVersion;

const MAIN: &str = "worker_processes 1;\nevents { worker_connections 256; }";

/// Client connections of proxied traffic, and requests on each.
const CONNECTIONS: usize = 20;
const PER_CONNECTION: usize = 10;
/// Requests to a backend address where nothing listens, on one connection.
const REFUSED: usize = 10;
/// Pause between requests: 210 requests over about 2 s.
const GAP: Duration = Duration::from_millis(10);
/// The most intervals the test samples.
const MAX_INTERVALS: usize = 20;

/// `CONNECTIONS` keep-alive connections with `PER_CONNECTION` GETs each to
/// `/`, then `REFUSED` GETs to `/down` on one more connection. Returns the
/// status codes.
fn traffic(port: u16) -> Vec<u16> {
    let mut statuses = Vec::new();
    let mut run = |path: &str, requests: usize| {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut reader = BufReader::new(s.try_clone().unwrap());
        let mut writer = s;
        for _ in 0..requests {
            writer
                .write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
                .unwrap();
            statuses.push(read_response(&mut reader));
            std::thread::sleep(GAP);
        }
    };
    for _ in 0..CONNECTIONS {
        run("/", PER_CONNECTION);
    }
    run("/down", REFUSED);
    statuses
}

fn read_response(r: &mut impl BufRead) -> u16 {
    let mut status_line = String::new();
    r.read_line(&mut status_line).unwrap();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap();
            }
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).unwrap();
    status
}

/// Runs `traffic` on its own thread and samples intervals until one whole
/// interval after it ended (at most `MAX_INTERVALS`), publishing each on
/// `page`. Returns the intervals and what `traffic` returned.
fn sample_while<T: Send + 'static>(
    watcher: &mut Watcher,
    page: &Page,
    traffic: impl FnOnce() -> T + Send + 'static,
) -> (Vec<Interval>, T) {
    let stop = AtomicBool::new(false);
    let sender = std::thread::spawn(traffic);
    let mut intervals = Vec::new();
    let mut after_traffic = 0;
    while intervals.len() < MAX_INTERVALS && after_traffic < 2 {
        let i = watcher.next(&stop).unwrap();
        *page.lock().unwrap() = watcher.exposition(Some(&i));
        intervals.push(i);
        // The interval that ends after the traffic may have begun before
        // it ended; the one after that is wholly after it.
        if sender.is_finished() {
            after_traffic += 1;
        }
    }
    assert_eq!(
        after_traffic, 2,
        "the traffic ended within the intervals sampled"
    );
    (intervals, sender.join().unwrap())
}

/// A loopback port where nothing listens.
fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

#[test]
fn rates_connections_errors_and_metrics_follow_real_traffic() {
    let Some(bin) = nginx() else { return };
    let version = NginxVersion::parse(&bin.version().unwrap()).unwrap();
    let backend = Backend::start(Mode::Serve);
    let refused = closed_port();
    let n = Nginx::start(
        bin,
        MAIN,
        &format!(
            "    access_log off;
    upstream app {{ server {}; }}
    server {{
        listen 127.0.0.1:{{port}};
        location / {{ proxy_pass http://app; }}
        location /down {{ proxy_pass http://{refused}; }}
        location = /status {{ stub_status; }}
    }}",
            backend.addr
        ),
    );

    // The backends come from the running configuration, as for the CLI.
    let live = LiveConfig::of(&n.config(), version);
    let backends: Vec<WatchedBackend> = live.backends.iter().map(WatchedBackend::from).collect();
    assert_eq!(backends.iter().map(|b| b.addr).collect::<Vec<_>>(), {
        let mut v = vec![backend.addr, refused];
        v.sort();
        v
    });
    let status = StatusUrl::parse(&format!("http://127.0.0.1:{}/status", n.port)).unwrap();
    let mut opts = WatchOptions::new(Some(status), backends);
    opts.interval = Duration::from_millis(500);
    opts.reader = SocketReader::for_process(Some(n.instance.pid()));
    opts.error_logs = vec![n.prefix.error_log()];
    let mut watcher = Watcher::start(opts);
    assert!(watcher.problems.is_empty(), "{:?}", watcher.problems);

    let page: Page = Arc::new(Mutex::new(watcher.exposition(None)));
    let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), page.clone()).unwrap();
    let stop = AtomicBool::new(false);

    // One quiet interval: only the watch's own stub_status requests, which
    // must not show.
    let quiet = watcher.next(&stop).unwrap();
    let c = quiet.client.expect("stub_status sampled");
    assert_eq!(
        (c.requests(), c.accepts(), c.handled()),
        (0, 0, 0),
        "{quiet:?}"
    );
    assert_eq!(quiet.new_connections(), 0);

    let port = n.port;
    let (mut intervals, statuses) = sample_while(&mut watcher, &page, move || traffic(port));
    intervals.insert(0, quiet);
    let proxied = CONNECTIONS * PER_CONNECTION;
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), proxied);
    assert_eq!(statuses.iter().filter(|s| **s == 502).count(), REFUSED);

    let last = intervals.last().unwrap();
    let totals = &last.totals;
    for i in &intervals {
        eprintln!("{}", upkeep_host::watch::view::line(i, &watcher.sources()));
    }
    eprint!(
        "{}",
        upkeep_host::watch::view::frame(last, &watcher.sources(), "test", Default::default())
    );

    // Clients: exactly what was sent, stub_status's own requests left out.
    let requests = (proxied + REFUSED) as u64;
    let connections = (CONNECTIONS + 1) as u64;
    assert!(intervals
        .iter()
        .all(|i| i.client.is_some() && i.status_error.is_none()));
    let summed: u64 = intervals.iter().map(|i| i.client.unwrap().requests()).sum();
    assert_eq!(summed, requests);
    assert_eq!(totals.client_requests, requests);
    assert_eq!(totals.client_accepts, connections);
    assert_eq!(totals.client_handled, connections);
    assert_eq!(totals.client_dropped, 0);
    assert_eq!(
        totals.requests_per_connection(),
        Some(requests as f64 / connections as f64)
    );
    for i in &intervals {
        let c = i.client.unwrap();
        let back = c.requests_per_second() * c.span.as_secs_f64();
        assert!((back - c.requests() as f64).abs() < 1e-6, "{i:?}");
        assert!(c.requests() <= requests);
    }
    assert!(
        intervals
            .iter()
            .filter(|i| i.client.unwrap().requests() > 0)
            .count()
            >= 2,
        "2 s of traffic spans several 500 ms intervals"
    );

    // Upstream: nginx opened one connection per proxied request (no
    // keepalive); the censuses see them, never more than were opened.
    let opened = backend.connections();
    assert_eq!(
        opened, proxied as u64,
        "one upstream connection per request"
    );
    let seen = totals.new_connections[&backend.addr];
    assert!(
        seen <= opened && seen * 10 >= opened * 9,
        "{seen} new connections seen, {opened} opened"
    );
    let summed: u64 = intervals
        .iter()
        .flat_map(|i| &i.backends)
        .filter(|b| b.backend.addr == backend.addr)
        .map(|b| b.new_connections)
        .sum();
    assert_eq!(summed, seen);
    assert!(totals.new_connections[&refused] <= REFUSED as u64);
    // nginx closes first (the backend waits for it), so each connection
    // leaves a TIME_WAIT socket at nginx's end for 60 s: at the end, about
    // one per connection (fewer only where the kernel reused a 4-tuple).
    let end = last
        .backends
        .iter()
        .find(|b| b.backend.addr == backend.addr)
        .unwrap()
        .sockets
        .expect("census at the end");
    assert!(
        end.time_wait <= opened && end.time_wait * 10 >= opened * 8,
        "{end:?} after {opened} connections"
    );
    assert_eq!(end.established, 0, "{end:?}");
    assert_eq!(last.time_wait(), end.time_wait + end.backend_end_time_wait);

    // Errors: one connect-refused line per /down request, naming the peer.
    assert_eq!(
        totals.errors.count(Signature::ConnectRefused),
        REFUSED as u64
    );
    assert_eq!(totals.errors.total(), REFUSED as u64);
    assert_eq!(
        totals.errors.by_backend(),
        BTreeMap::from([(
            (Signature::ConnectRefused, refused.to_string()),
            REFUSED as u64
        )])
    );
    let summed: u64 = intervals
        .iter()
        .map(|i| i.errors.count(Signature::ConnectRefused))
        .sum();
    assert_eq!(summed, REFUSED as u64);

    // JSON of the last interval, and the Prometheus page, say the same.
    let j = json::interval(last, &watcher.sources(), Some("http://x/status"));
    assert_eq!(j["schema"], 1);
    assert_eq!(j["totals"]["client_requests"], requests);
    assert_eq!(
        j["totals"]["new_connections"][backend.addr.to_string()],
        seen
    );
    assert_eq!(j["totals"]["signatures"]["connect-refused"], REFUSED as u64);
    let metrics = parse_exposition(&scrape(server.local_addr()));
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        metrics[name]
            .samples
            .iter()
            .find(|(l, _)| *l == want)
            .unwrap_or_else(|| panic!("{name}{labels:?} missing"))
            .1
    };
    let b = backend.addr.to_string();
    assert_eq!(value("upkeep_client_requests_total", &[]), requests as f64);
    assert_eq!(
        value("upkeep_client_connections_accepted_total", &[]),
        j["totals"]["client_accepts"].as_f64().unwrap()
    );
    assert_eq!(
        value("upkeep_client_connections_active", &[]),
        j["clients"]["active"].as_f64().unwrap()
    );
    assert_eq!(value("upkeep_stub_status_up", &[]), 1.0);
    assert_eq!(
        value(
            "upkeep_upstream_connections_opened_total",
            &[("backend", &b), ("upstream", "app")]
        ),
        seen as f64
    );
    let jb = j["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["address"] == b.as_str())
        .unwrap();
    assert_eq!(
        value(
            "upkeep_upstream_sockets",
            &[
                ("backend", &b),
                ("upstream", "app"),
                ("end", "nginx"),
                ("state", "time_wait")
            ]
        ),
        jb["time_wait"].as_f64().unwrap()
    );
    assert_eq!(
        value(
            "upkeep_backend_info",
            &[("backend", &b), ("upstream", "app")]
        ),
        1.0
    );
    assert_eq!(
        value(
            "upkeep_error_signatures_total",
            &[("signature", "connect-refused")]
        ),
        REFUSED as f64
    );
    assert_eq!(
        value(
            "upkeep_error_signatures_total",
            &[("signature", "upstream-reset")]
        ),
        0.0
    );
    assert_eq!(
        value(
            "upkeep_upstream_error_signatures_total",
            &[
                ("backend", &refused.to_string()),
                ("upstream", ""),
                ("signature", "connect-refused")
            ]
        ),
        REFUSED as f64
    );
    assert_eq!(
        value("upkeep_watch_intervals_total", &[]),
        intervals.len() as f64
    );
    for (name, f) in &metrics {
        let counter = name.ends_with("_total");
        assert_eq!(f.kind, if counter { "counter" } else { "gauge" }, "{name}");
        assert!(!f.help.is_empty(), "{name}");
    }
}

fn scrape(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\n\r\n")
        .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(len, body.len());
    body.to_string()
}

struct Family {
    kind: String,
    help: String,
    samples: Vec<(BTreeMap<String, String>, f64)>,
}

/// A strict reader of the text exposition format 0.0.4 as far as counters
/// and gauges go: every family has HELP and TYPE before its samples, names
/// and labels are well-formed, label values are escaped, values are
/// numbers, and no sample repeats.
fn parse_exposition(text: &str) -> BTreeMap<String, Family> {
    fn valid_name(n: &str) -> bool {
        let mut chars = n.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }
    assert!(text.ends_with('\n'), "the page ends with a newline");
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap();
            assert!(valid_name(name), "{line}");
            assert!(
                !families.contains_key(name),
                "family {name} announced twice"
            );
            families.insert(
                name.to_string(),
                Family {
                    kind: String::new(),
                    help: help.to_string(),
                    samples: Vec::new(),
                },
            );
            current = Some(name.to_string());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert_eq!(
                Some(name),
                current.as_deref(),
                "TYPE after its HELP: {line}"
            );
            assert!(["counter", "gauge"].contains(&kind), "{line}");
            families.get_mut(name).unwrap().kind = kind.to_string();
        } else {
            assert!(!line.starts_with('#') && !line.is_empty(), "{line:?}");
            let family = current.as_deref().expect("a sample before any TYPE");
            let (name, labels, value) = parse_sample(line);
            assert_eq!(name, family, "sample outside its family: {line}");
            assert!(
                !families[family].kind.is_empty(),
                "sample before TYPE: {line}"
            );
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("value in {line}"));
            let f = families.get_mut(family).unwrap();
            assert!(
                f.samples.iter().all(|(l, _)| *l != labels),
                "repeated sample {line}"
            );
            f.samples.push((labels, value));
        }
    }
    families
}

fn parse_sample(line: &str) -> (&str, BTreeMap<String, String>, &str) {
    let name_end = line.find(['{', ' ']).unwrap();
    let name = &line[..name_end];
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(mut inner) = rest.strip_prefix('{') {
        loop {
            let eq = inner.find('=').unwrap();
            let key = &inner[..eq];
            assert!(
                key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{line}"
            );
            inner = inner[eq + 1..].strip_prefix('"').expect("quoted value");
            let mut value = String::new();
            let mut chars = inner.char_indices();
            let close = loop {
                match chars.next().expect("unterminated label value") {
                    (_, '\\') => match chars.next().unwrap().1 {
                        'n' => value.push('\n'),
                        c @ ('\\' | '"') => value.push(c),
                        c => panic!("bad escape \\{c} in {line}"),
                    },
                    (i, '"') => break i,
                    (_, c) => value.push(c),
                }
            };
            labels.insert(key.to_string(), value);
            inner = &inner[close + 1..];
            if let Some(r) = inner.strip_prefix(',') {
                inner = r;
            } else {
                rest = inner.strip_prefix('}').expect("closing brace");
                break;
            }
        }
    }
    let value = rest.strip_prefix(' ').expect("space before the value");
    (name, labels, value)
}

#[test]
fn a_pooled_upstream_shows_reuse_not_new_connections() {
    let Some(bin) = nginx() else { return };
    let backend = Backend::start(Mode::Serve);
    let n = Nginx::start(
        bin,
        MAIN,
        &format!(
            "    access_log off;
    upstream app {{ server {}; keepalive 4; }}
    server {{
        listen 127.0.0.1:{{port}};
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }}
        location = /status {{ stub_status; }}
    }}",
            backend.addr
        ),
    );
    let status = StatusUrl::parse(&format!("http://127.0.0.1:{}/status", n.port)).unwrap();
    let mut opts = WatchOptions::new(
        Some(status),
        vec![WatchedBackend {
            addr: backend.addr,
            written: backend.addr.to_string(),
            upstreams: vec!["app".into()],
        }],
    );
    opts.interval = Duration::from_millis(300);
    opts.reader = SocketReader::for_process(Some(n.instance.pid()));
    let mut watcher = Watcher::start(opts);
    assert!(watcher.problems.is_empty(), "{:?}", watcher.problems);
    let page: Page = Arc::new(Mutex::new(String::new()));

    let port = n.port;
    let requests = 100;
    let (intervals, statuses) = sample_while(&mut watcher, &page, move || {
        common::requests_on_kept_connections(port, 10, requests / 10, "GET")
    });
    assert_eq!(statuses, vec![200; requests]);
    let last = intervals.last().unwrap();
    for i in &intervals {
        eprintln!("{}", upkeep_host::watch::view::line(i, &watcher.sources()));
    }

    // Sequential requests through one worker: nginx opens one connection
    // and reuses it. It stays open in every census, so it is counted once,
    // exactly like the backend counted it.
    let opened = backend.connections();
    assert!((1..=4).contains(&opened), "at most the pool size: {opened}");
    assert_eq!(last.totals.new_connections_total(), opened);
    assert_eq!(last.totals.client_requests, requests as u64);
    let sockets = last.backends[0].sockets.unwrap();
    assert_eq!(sockets.established, opened, "the pooled connection is kept");
    assert_eq!(sockets.time_wait_total(), 0, "nothing was closed");
    let per_new = last.totals.client_requests as f64 / opened as f64;
    assert!(
        per_new >= 25.0,
        "{per_new} requests per new upstream connection"
    );
}

#[test]
fn nginx_going_away_is_reported_and_the_watch_goes_on() {
    let Some(bin) = nginx() else { return };
    let mut n = Nginx::start(
        bin,
        MAIN,
        "    access_log off;
    server { listen 127.0.0.1:{port}; location = /status { stub_status; } }",
    );
    let status = StatusUrl::parse(&format!("http://127.0.0.1:{}/status", n.port)).unwrap();
    let mut opts = WatchOptions::new(Some(status), Vec::new());
    opts.interval = Duration::from_millis(200);
    let mut watcher = Watcher::start(opts);
    let stop = AtomicBool::new(false);
    let before = watcher.next(&stop).unwrap();
    assert!(before.client.is_some() && before.status_error.is_none());

    n.instance.stop().unwrap();
    let after = watcher.next(&stop).unwrap();
    let e = after
        .status_error
        .as_deref()
        .expect("the failure is reported");
    assert!(e.contains(&format!("127.0.0.1:{}", n.port)), "{e}");
    assert!(after.client.is_none() && after.status.is_none());
    let j = json::interval(&after, &watcher.sources(), Some("u"));
    assert_eq!(j["clients"], serde_json::Value::Null);
    assert_eq!(j["stub_status"]["error"], e);
    let page = watcher.exposition(Some(&after));
    assert!(page.contains("\nupkeep_stub_status_up 0\n"), "{page}");
    assert_eq!(after.totals.status_failures, 1);
    assert!(
        upkeep_host::watch::view::line(&after, &watcher.sources()).contains("stub_status_error=")
    );
}
