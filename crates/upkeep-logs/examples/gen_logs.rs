//! Generates large synthetic nginx logs for the benchmark
//! (bench/logs-bench.sh): an error log with a realistic mix (about 90%
//! lines that are not upstream failures) or an access log whose format
//! carries the upstream variables.
//!
//! usage: gen_logs error|access SIZE OUT   (SIZE like 100M, 2G)
//!        gen_logs access-format            (prints the access log's log_format)
//!
//! The line shapes are those of real nginx output (facts/behaviors.md,
//! facts/verification/*.log); the content is random but deterministic.

use std::io::{BufWriter, Write};

/// The access-log format the generated access log is written in.
pub const ACCESS_FORMAT: &str = r#"$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" c=$connection cr=$connection_requests ua="$upstream_addr" us="$upstream_status" uct="$upstream_connect_time""#;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const PATHS: [&str; 8] = [
    "/api/v1/orders",
    "/api/v1/users/42",
    "/static/app.js",
    "/login",
    "/api/v1/cart?id=7781",
    "/health",
    "/images/banner.png",
    "/checkout",
];
const METHODS: [&str; 4] = ["GET", "GET", "GET", "POST"];

/// Wall clock advancing one second every `per_second` lines from
/// 2026-11-23 00:00:00.
struct Clock {
    line: u64,
    per_second: u64,
}

impl Clock {
    fn hms(&self) -> (u64, u64, u64, u64) {
        let s = self.line / self.per_second;
        let day = 23 + s / 86_400;
        let s = s % 86_400;
        (day, s / 3600, s % 3600 / 60, s % 60)
    }
}

fn parse_size(s: &str) -> u64 {
    let (num, mult) = match s.chars().last() {
        Some('G' | 'g') => (&s[..s.len() - 1], 1u64 << 30),
        Some('M' | 'm') => (&s[..s.len() - 1], 1 << 20),
        Some('K' | 'k') => (&s[..s.len() - 1], 1 << 10),
        _ => (s, 1),
    };
    num.parse::<u64>().expect("size like 100M or 2G") * mult
}

fn error_line(rng: &mut Rng, clock: &Clock, out: &mut Vec<u8>) {
    let (day, h, m, s) = clock.hms();
    let conn = clock.line * 3 + 1;
    let client = format!("10.{}.{}.{}", rng.below(4), rng.below(256), rng.below(256));
    let up = format!("10.8.0.{}:8080", 10 + rng.below(8));
    let path = PATHS[rng.below(PATHS.len() as u64) as usize];
    let method = METHODS[rng.below(4) as usize];
    let ctx = format!(
        r#", client: {client}, server: shop.example, request: "{method} {path} HTTP/1.1", upstream: "http://{up}{path}", host: "shop.example""#
    );
    let noctx = format!(
        r#", client: {client}, server: shop.example, request: "{method} {path} HTTP/1.1", host: "shop.example""#
    );
    let head = format!("2026/11/{day:02} {h:02}:{m:02}:{s:02}");
    let pid = 4100 + rng.below(4);
    let roll = rng.below(1000);
    let line = if roll < 900 {
        // Noise: the lines a busy proxy logs all day.
        match rng.below(100) {
            0..=39 => format!("{head} [info] {pid}#{pid}: *{conn} client {client} closed keepalive connection"),
            40..=59 => format!(
                r#"{head} [error] {pid}#{pid}: *{conn} open() "/var/www/html{path}" failed (2: No such file or directory){noctx}"#
            ),
            60..=69 => format!(
                "{head} [info] {pid}#{pid}: *{conn} client timed out (110: Connection timed out) while waiting for request, client: {client}, server: 0.0.0.0:443"
            ),
            70..=84 => format!(
                r#"{head} [error] {pid}#{pid}: *{conn} limiting requests, excess: 20.{:03} by zone "per_ip"{noctx}"#,
                rng.below(1000)
            ),
            85..=88 => format!(
                "{head} [warn] {pid}#{pid}: *{conn} an upstream response is buffered to a temporary file /var/cache/nginx/proxy_temp/{}/00/00000{} while reading upstream{ctx}",
                rng.below(10),
                rng.below(100_000)
            ),
            _ => format!(
                "{head} [info] {pid}#{pid}: *{conn} SSL_do_handshake() failed (SSL: error:0A000126:SSL routines::unexpected eof while reading) while SSL handshaking, client: {client}, server: 0.0.0.0:443"
            ),
        }
    } else {
        match rng.below(10) {
            0..=2 => format!("{head} [error] {pid}#{pid}: *{conn} upstream prematurely closed connection while reading response header from upstream{ctx}"),
            3 | 4 => format!("{head} [error] {pid}#{pid}: *{conn} recv() failed (104: Connection reset by peer) while reading response header from upstream{ctx}"),
            5 => format!("{head} [error] {pid}#{pid}: *{conn} connect() failed (111: Connection refused) while connecting to upstream{ctx}"),
            6 => format!("{head} [error] {pid}#{pid}: *{conn} upstream timed out (110: Connection timed out) while reading response header from upstream{ctx}"),
            7 => format!("{head} [crit] {pid}#{pid}: *{conn} connect() to {up} failed (99: Cannot assign requested address) while connecting to upstream{noctx}"),
            8 => format!(
                r#"{head} [error] {pid}#{pid}: *{conn} no live upstreams while connecting to upstream, client: {client}, server: shop.example, request: "{method} {path} HTTP/1.1", upstream: "http://app{path}", host: "shop.example""#
            ),
            _ => format!("{head} [error] {pid}#{pid}: *{conn} writev() failed (32: Broken pipe) while sending request to upstream{ctx}"),
        }
    };
    out.extend_from_slice(line.as_bytes());
    out.push(b'\n');
}

fn access_line(rng: &mut Rng, clock: &Clock, out: &mut Vec<u8>) {
    let (day, h, m, s) = clock.hms();
    let client = format!("10.{}.{}.{}", rng.below(4), rng.below(256), rng.below(256));
    let up = format!("10.8.0.{}:8080", 10 + rng.below(8));
    let path = PATHS[rng.below(PATHS.len() as u64) as usize];
    let method = METHODS[rng.below(4) as usize];
    let roll = rng.below(1000);
    let (status, ua, us, uct) = match roll {
        0..=969 => (200, up.clone(), "200".to_string(), "0.000".to_string()),
        970..=984 => (
            200,
            format!("{up}, {up}"),
            "502, 200".into(),
            "0.000, 0.001".into(),
        ),
        985..=994 => (502, up.clone(), "502".into(), "0.000".into()),
        _ => (504, up.clone(), "504".into(), "0.001".into()),
    };
    let line = format!(
        r#"{client} - - [{day:02}/{}/2026:{h:02}:{m:02}:{s:02} +0000] "{method} {path} HTTP/1.1" {status} {} "https://shop.example/" "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36" c={} cr={} ua="{ua}" us="{us}" uct="{uct}""#,
        MONTHS[10],
        rng.below(50_000),
        clock.line / 4 + 1,
        clock.line % 4 + 1,
    );
    out.extend_from_slice(line.as_bytes());
    out.push(b'\n');
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 2 && args[1] == "access-format" {
        println!("{ACCESS_FORMAT}");
        return;
    }
    if args.len() != 4 || !(args[1] == "error" || args[1] == "access") {
        eprintln!("usage: gen_logs error|access SIZE OUT   (SIZE like 100M, 2G)\n       gen_logs access-format");
        std::process::exit(2);
    }
    let size = parse_size(&args[2]);
    let file = std::fs::File::create(&args[3]).expect("create output");
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut clock = Clock {
        line: 0,
        per_second: 1000,
    };
    let mut written = 0u64;
    let mut buf = Vec::with_capacity(1024);
    while written < size {
        buf.clear();
        if args[1] == "error" {
            error_line(&mut rng, &clock, &mut buf);
        } else {
            access_line(&mut rng, &clock, &mut buf);
        }
        w.write_all(&buf).expect("write");
        written += buf.len() as u64;
        clock.line += 1;
    }
    w.flush().expect("flush");
}
