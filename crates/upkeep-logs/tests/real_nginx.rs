//! The classifier and the access-log join against the logs a real nginx
//! writes: a dead port, a backend that resets, one that closes before
//! answering, one that closes mid-body, one that stalls, an upstream whose
//! servers are all down, and a keep-alive backend that closes a reused
//! connection (the stale-connection race).

mod common;

use common::{request, Backend, Behaviour, Client};
use upkeep_logs::access_format::LogFormat;
use upkeep_logs::input::Input;
use upkeep_logs::join::Joiner;
use upkeep_logs::run::{analyze, Options};
use upkeep_logs::{Signature, Summary};
use upkeep_nginx::{free_port, NginxBinary, NginxInstance, Prefix};

const LOG_FORMAT: &str = r#"$remote_addr [$time_local] "$request" $status c=$connection cr=$connection_requests ua="$upstream_addr" us="$upstream_status" uct="$upstream_connect_time""#;

#[test]
fn classifier_counts_match_what_nginx_did() {
    let nginx = NginxBinary::find(None).expect("an nginx binary (Debian package nginx)");
    let prefix = Prefix::new().unwrap();
    let dead = free_port().unwrap();
    let (dead1, dead2) = (free_port().unwrap(), free_port().unwrap());
    let reset = Backend::start(Behaviour::ResetAfterRequest);
    let fin = Backend::start(Behaviour::CloseAfterRequest);
    let mid = Backend::start(Behaviour::CloseMidBody);
    let stall = Backend::start(Behaviour::Stall);
    let stale = Backend::start(Behaviour::CloseOnSecondRequest);
    let ok = Backend::start(Behaviour::Ok);
    let port = free_port().unwrap();
    let p = prefix.path().display();
    let conf = format!(
        r#"worker_processes 1;
error_log {p}/logs/error.log info;
events {{ worker_connections 64; }}
http {{
    {temp}
    log_format t '{LOG_FORMAT}';
    access_log {p}/logs/access.log t;
    upstream dead    {{ server 127.0.0.1:{dead}; }}
    upstream reset   {{ server 127.0.0.1:{reset}; }}
    upstream fin     {{ server 127.0.0.1:{fin}; }}
    upstream mid     {{ server 127.0.0.1:{mid}; }}
    upstream stall   {{ server 127.0.0.1:{stall}; }}
    upstream alldown {{ server 127.0.0.1:{dead1} max_fails=1 fail_timeout=30s;
                        server 127.0.0.1:{dead2} max_fails=1 fail_timeout=30s; }}
    upstream stale   {{ server 127.0.0.1:{stale}; keepalive 4; }}
    upstream ok      {{ server 127.0.0.1:{ok}; keepalive 4; }}
    server {{
        listen 127.0.0.1:{port};
        proxy_read_timeout 1s;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        location /dead/    {{ proxy_pass http://dead; }}
        location /reset/   {{ proxy_pass http://reset; }}
        location /fin/     {{ proxy_pass http://fin; }}
        location /mid/     {{ proxy_pass http://mid; }}
        location /stall/   {{ proxy_pass http://stall; }}
        location /alldown/ {{ proxy_pass http://alldown; }}
        location /stale/   {{ proxy_pass http://stale; }}
        location /ok/      {{ proxy_pass http://ok; }}
    }}
}}
"#,
        temp = prefix.http_temp_paths(),
        reset = reset.port,
        fin = fin.port,
        mid = mid.port,
        stall = stall.port,
        stale = stale.port,
        ok = ok.port,
    );
    let conf_path = prefix.write("nginx.conf", &conf).unwrap();
    let mut instance = NginxInstance::start(&nginx, &prefix, &conf_path).expect("nginx starts");
    wait_for_port(port);

    // Each request on its own client connection unless said otherwise.
    assert_eq!(request(port, "GET", "/dead/1"), 502);
    assert_eq!(request(port, "GET", "/dead/2"), 502);
    assert_eq!(request(port, "GET", "/reset/1"), 502);
    assert_eq!(request(port, "GET", "/fin/1"), 502);
    // The status line went out before the backend closed: the client sees
    // 200 and a body cut short.
    assert_eq!(request(port, "GET", "/mid/1"), 200);
    assert_eq!(request(port, "GET", "/stall/1"), 504);
    // Both servers refuse (2 × connect-refused, 2 × temporarily disabled);
    // the next request finds none alive.
    assert_eq!(request(port, "GET", "/alldown/1"), 502);
    assert_eq!(request(port, "GET", "/alldown/2"), 502);
    // Stale keep-alive race: the 2nd request on the cached connection meets
    // a close; GET is retried on a fresh connection, POST is not.
    assert_eq!(request(port, "GET", "/stale/1"), 200);
    assert_eq!(request(port, "GET", "/stale/2"), 200);
    assert_eq!(request(port, "POST", "/stale/3"), 502);
    // Three requests on one client connection, for $connection_requests.
    let mut c = Client::connect(port);
    assert_eq!(c.request("GET", "/ok/1", false), 200);
    assert_eq!(c.request("GET", "/ok/2", false), 200);
    assert_eq!(c.request("GET", "/ok/3", true), 200);
    instance.stop().unwrap();

    let error_log = prefix.path().join("logs/error.log");
    let access_log = prefix.path().join("logs/access.log");
    let text = std::fs::read_to_string(&error_log).unwrap();

    // The small API: counts straight from the file.
    let s = Summary::from_path(&error_log).unwrap();
    let expected = [
        (Signature::ConnectRefused, 4),
        (Signature::UpstreamReset, 1),
        (Signature::UpstreamPrematurelyClosed, 4),
        (Signature::ReadTimeout, 1),
        (Signature::NoLiveUpstreams, 1),
        (Signature::ServerTemporarilyDisabled, 2),
    ];
    for sig in Signature::ALL {
        let want = expected.iter().find(|(s, _)| *s == sig).map_or(0, |e| e.1);
        assert_eq!(s.count(sig), want, "{sig}\n--- error log:\n{text}");
    }
    assert_eq!(s.unparsed, 0);
    assert_eq!(s.lines, text.lines().count() as u64);

    // The full analysis joined with the access log.
    let format = LogFormat::parse(LOG_FORMAT).unwrap();
    let joiner = Joiner::new(vec![Input::file(&access_log)], format, 0, None);
    let a = analyze(
        &[Input::file(&error_log)],
        &Options::default(),
        Some(joiner),
    );
    let access = a.access.as_ref().unwrap();
    let access_text = std::fs::read_to_string(&access_log).unwrap();
    let ctx = format!("--- error log:\n{text}\n--- access log:\n{access_text}");
    assert!(access.joined);
    assert_eq!(access.records, 14, "{ctx}");
    assert_eq!(access.unparsed, 0, "{ctx}");
    let o = |sig: Signature| &access.per_signature[sig.index()];

    // connect-refused: 2 on /dead/ and 2 inside the one /alldown/1 request.
    assert_eq!(o(Signature::ConnectRefused).client_visible, 4, "{ctx}");
    assert_eq!(o(Signature::UpstreamReset).client_visible, 1, "{ctx}");
    let closed = o(Signature::UpstreamPrematurelyClosed);
    assert_eq!(
        (
            closed.client_visible,
            closed.retried,
            closed.truncated,
            closed.unmatched
        ),
        (2, 1, 1, 0),
        "{ctx}"
    );
    // Connect time 0.000 for the failed attempts: both /stale/ ones always
    // (reused connections make no connect), and /fin/1 usually (a fresh
    // loopback connect is that fast, but on a loaded machine it can take a
    // millisecond). The mid-body failure has no failed attempt in
    // $upstream_status (200).
    assert!(
        (2..=3).contains(&closed.connect_time_zero),
        "connect_time_zero {}: {ctx}",
        closed.connect_time_zero
    );
    assert_eq!(closed.visible_by_method.get("GET"), Some(&1));
    assert_eq!(closed.visible_by_method.get("POST"), Some(&1));
    assert_eq!(
        o(Signature::ReadTimeout).visible_by_status.get(&504),
        Some(&1),
        "{ctx}"
    );
    assert_eq!(o(Signature::NoLiveUpstreams).client_visible, 1, "{ctx}");
    assert_eq!(access.status_5xx.get(&502), Some(&7), "{ctx}");
    assert_eq!(access.status_5xx.get(&504), Some(&1), "{ctx}");
    // /alldown/1 (2 attempts, 502) and /stale/2 ("502, 200").
    assert_eq!(
        (access.requests_retried, access.retries_recovered),
        (2, 1),
        "{ctx}"
    );
    assert_eq!(access.unexplained_5xx, 0, "{ctx}");
    let reuse = access.reuse.unwrap();
    assert_eq!((reuse.requests, reuse.connections, reuse.max), (14, 12, 3));

    // Per upstream and per minute.
    assert_eq!(
        a.upstreams_of(Signature::ConnectRefused),
        vec![
            (format!("127.0.0.1:{dead}"), 2),
            (format!("127.0.0.1:{dead1}"), 1),
            (format!("127.0.0.1:{dead2}"), 1)
        ]
        .into_iter()
        .fold(Vec::new(), |mut v, x| {
            v.push(x);
            v.sort_by(|a: &(String, u64), b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            v
        })
    );
    assert_eq!(
        a.upstreams_of(Signature::NoLiveUpstreams),
        vec![("alldown".to_string(), 1)]
    );
    let per_minute_total: u64 = a.per_minute_rows().iter().map(|r| r.3).sum();
    assert_eq!(per_minute_total, 13);
}

fn wait_for_port(port: u16) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("nginx did not listen on {port}");
}
