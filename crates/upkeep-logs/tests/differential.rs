//! The scanner's fast paths (block-wide line walk, the needle prefilter,
//! early exits, upstream-only splitting) must count exactly what a plain
//! loop gets by splitting on `\n` and classifying every line in full.
//! Random logs are built from real nginx lines, near-misses and garbage,
//! and cut into blocks of random sizes.

#[path = "common/two_counts.rs"]
mod two_counts;

use two_counts::{reference, scanned};

const CONTEXT: &str = r#", client: 10.1.2.3, server: shop.example, request: "POST /api/v1/cart?id=7 HTTP/1.1", upstream: "http://10.8.0.12:8080/api/v1/cart?id=7", host: "shop.example""#;

fn pool() -> Vec<String> {
    let head = |level: &str, conn: u32| {
        format!(
            "2026/11/23 14:26:{:02} [{level}] 4101#4101: *{conn} ",
            conn % 60
        )
    };
    let mut lines = vec![
        format!("{}upstream prematurely closed connection while reading response header from upstream{CONTEXT}", head("error", 1)),
        format!("{}recv() failed (104: Connection reset by peer) while reading response header from upstream{CONTEXT}", head("error", 2)),
        format!("{}connect() failed (111: Connection refused) while connecting to upstream{CONTEXT}", head("error", 3)),
        format!("{}connect() to 10.8.0.13:8080 failed (99: Cannot assign requested address) while connecting to upstream, client: 10.0.0.1, server: a", head("crit", 4)),
        format!("{}upstream timed out (110: Connection timed out) while reading upstream{}", head("error", 5), CONTEXT.replace("10.8.0.12", "[::1]")),
        format!("{}no live upstreams while connecting to upstream, client: 10.0.0.1, server: a, request: \"GET / HTTP/1.1\", upstream: \"http://backend/\", host: \"a\"", head("error", 6)),
        format!("{}writev() failed (32: Broken pipe) while sending request to upstream{}", head("error", 7), CONTEXT.replace("http://10.8.0.12:8080", "http://unix:/run/app.sock:")),
        format!("{}upstream server temporarily disabled while reading response header from upstream{CONTEXT}", head("warn", 8)),
        format!("{}an upstream response is buffered to a temporary file /var/cache/nginx/1 while reading upstream{CONTEXT}", head("warn", 9)),
        format!("{}upstream sent too big header while reading response header from upstream{CONTEXT}", head("error", 10)),
        format!("{}SSL_do_handshake() failed (SSL: error:0A000126:SSL routines::unexpected eof while reading) while SSL handshaking to upstream{}", head("error", 11), CONTEXT.replace("http://", "https://")),
        format!("{}open() \"/var/www/x\" failed (2: No such file or directory), client: 10.0.0.1, server: a, request: \"GET /x HTTP/1.1\", host: \"a\"", head("error", 12)),
        format!("{}client 10.0.0.1 closed keepalive connection", head("info", 13)),
        "2026/11/23 14:27:30 [alert] 7198#0: 8 worker_connections are not enough".to_string(),
        "2026/11/23 14:27:30 [crit] 7198#0: accept4() failed (24: Too many open files)".to_string(),
        "nginx: [warn] load balancing method redefined in /etc/nginx/conf.d/a.conf:10".to_string(),
        // A request line carrying quotes and field names of its own.
        format!("{}upstream prematurely closed connection while reading upstream, client: 10.0.0.1, server: b, request: \"GET /a\", host: \"x\" HTTP/1.1\", upstream: \"http://10.0.0.9:80/a\", host: \"h\"", head("error", 14)),
        "garbage \u{0} with a NUL and the word upstream".to_string(),
        "127.0.0.1 - - [23/Nov/2026:14:26:24 +0000] \"GET /upstream HTTP/1.1\" 502 0".to_string(),
        String::new(),
        format!("{}upstream prematurely closed connection while reading upstream{CONTEXT}\r", head("error", 15)),
    ];
    // A long noise line, to cross many 64-byte chunks.
    lines.push(format!("{}{}", head("info", 16), "x".repeat(700)));
    lines
}

#[test]
fn scanner_counts_what_full_classification_counts() {
    let pool = pool();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..200 {
        let mut log = Vec::new();
        for _ in 0..(next() % 300) {
            log.extend_from_slice(pool[(next() % pool.len() as u64) as usize].as_bytes());
            log.push(b'\n');
        }
        if round % 3 == 0 {
            // The input's last line without its `\n`.
            log.extend_from_slice(pool[0].as_bytes());
        }
        let mut cuts = || 1 + (next() % 2000) as usize;
        let got = scanned(&log, &mut cuts);
        assert_eq!(got, reference(&log), "round {round}");
    }
}
