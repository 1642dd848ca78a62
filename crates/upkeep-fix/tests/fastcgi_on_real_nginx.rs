//! FastCGI connection reuse, checked on a real nginx (Debian's 1.22, before
//! 1.29.7) in front of a small FastCGI responder that records on which
//! connection each request arrives and honours `FCGI_KEEP_CONN`, as PHP-FPM
//! does. For generated configs that spread `fastcgi_keep_conn` over the
//! levels and vary the upstream's pool, upkeep's U001, U006, U010 and U011
//! findings must say "no reuse" exactly when two requests arrive on two
//! connections; after upkeep's fixes every config still answers and, where
//! everything had a fix, reuses its connection. Skipped when no nginx
//! binary is found (CI installs one).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use upkeep_diag::Finding;
use upkeep_rules::NginxVersion;

mod common;
mod nginx_runs;
use nginx_runs::{check_text, fix_text, get, Level, Rng};

const FCGI_BEGIN_REQUEST: u8 = 1;
const FCGI_END_REQUEST: u8 = 3;
const FCGI_PARAMS: u8 = 4;
const FCGI_STDIN: u8 = 5;
const FCGI_STDOUT: u8 = 6;
/// The flag of FCGI_BEGIN_REQUEST asking the application to keep the
/// connection open after the request (FastCGI 1.0, section 5.1).
const FCGI_KEEP_CONN: u8 = 1;

/// The connection number of every request, in arrival order.
type Seen = Arc<Mutex<Vec<usize>>>;

struct Responder {
    port: u16,
    seen: Seen,
    stop: Arc<AtomicBool>,
}

impl Responder {
    /// Accepts for at most 120 s.
    fn start() -> Responder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen: Seen = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            let conns = AtomicUsize::new(0);
            let deadline = Instant::now() + Duration::from_secs(120);
            while !stop2.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let id = conns.fetch_add(1, Ordering::Relaxed);
                        let seen = seen2.clone();
                        std::thread::spawn(move || serve(stream, id, seen));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Responder { port, seen, stop }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One FastCGI record: its type, request id and content.
fn read_record(stream: &mut TcpStream) -> Option<(u8, u16, Vec<u8>)> {
    let mut header = [0u8; 8];
    stream.read_exact(&mut header).ok()?;
    let kind = header[1];
    let id = u16::from_be_bytes([header[2], header[3]]);
    let len = u16::from_be_bytes([header[4], header[5]]) as usize;
    let padding = header[6] as usize;
    let mut content = vec![0u8; len + padding];
    stream.read_exact(&mut content).ok()?;
    content.truncate(len);
    Some((kind, id, content))
}

fn record(kind: u8, id: u16, content: &[u8]) -> Vec<u8> {
    let mut out = vec![1, kind];
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&(content.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(content);
    out
}

/// Answers requests on one connection (at most 100) and closes it after a
/// request that did not ask for FCGI_KEEP_CONN.
fn serve(mut stream: TcpStream, id: usize, seen: Seen) {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    for _ in 0..100 {
        let mut keep_conn = false;
        let mut request = None;
        // BEGIN_REQUEST, PARAMS until an empty one, STDIN until an empty one.
        loop {
            let Some((kind, rid, content)) = read_record(&mut stream) else {
                return;
            };
            match kind {
                FCGI_BEGIN_REQUEST => {
                    keep_conn = content.get(2).is_some_and(|f| f & FCGI_KEEP_CONN != 0);
                    request = Some(rid);
                }
                FCGI_STDIN if content.is_empty() => break,
                FCGI_PARAMS | FCGI_STDIN => {}
                _ => return,
            }
        }
        let Some(rid) = request else { return };
        seen.lock().unwrap().push(id);
        let mut answer = record(
            FCGI_STDOUT,
            rid,
            b"Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nok",
        );
        answer.extend(record(FCGI_STDOUT, rid, b""));
        answer.extend(record(FCGI_END_REQUEST, rid, &[0; 8]));
        if stream.write_all(&answer).is_err() || !keep_conn {
            return;
        }
    }
}

/// How the generated route names its FastCGI backend.
#[derive(Clone, Copy, Debug)]
enum PassTo {
    Pool,
    NoPool,
    BalancerAfterKeepalive,
    Literal,
}

/// A generated config: `fastcgi_keep_conn` at zero to two of the levels
/// http > server > location > nested location, and an upstream with or
/// without a pool (or none). Returns the text and the path to request.
fn generate(rng: &mut Rng, backend: u16, port: u16, temp: &str) -> (String, String) {
    use Level::*;
    let nested = rng.below(2) == 1;
    let levels: &[Level] = if nested {
        &[Http, Server, Outer, Inner]
    } else {
        &[Http, Server, Outer]
    };
    let mut placed: Vec<(Level, &str)> = Vec::new();
    for _ in 0..rng.pick(&[0, 1, 1, 2]) {
        let level = rng.pick(levels);
        if !placed.iter().any(|(l, _)| *l == level) {
            // nginx reads on and off in any case.
            let line = rng.pick(&[
                "fastcgi_keep_conn on;\n",
                "fastcgi_keep_conn on;\n",
                "fastcgi_keep_conn On;\n",
                "fastcgi_keep_conn off;\n",
                "fastcgi_keep_conn OFF;\n",
            ]);
            placed.push((level, line));
        }
    }
    let at = |level: Level| -> String {
        placed
            .iter()
            .filter(|(l, _)| *l == level)
            .map(|(_, text)| *text)
            .collect()
    };
    let pass_to = rng.pick(&[
        PassTo::Pool,
        PassTo::Pool,
        PassTo::Pool,
        PassTo::NoPool,
        PassTo::BalancerAfterKeepalive,
        PassTo::Literal,
    ]);
    let server_line = format!("server 127.0.0.1:{backend};");
    let (upstream, pass) = match pass_to {
        PassTo::Pool => (
            format!("upstream php {{\n{server_line}\nkeepalive 8;\n}}\n"),
            "fastcgi_pass php;\n".to_string(),
        ),
        PassTo::NoPool => (
            format!("upstream php {{\n{server_line}\n}}\n"),
            "fastcgi_pass php;\n".to_string(),
        ),
        PassTo::BalancerAfterKeepalive => (
            format!("upstream php {{\nkeepalive 8;\nleast_conn;\n{server_line}\n}}\n"),
            "fastcgi_pass php;\n".to_string(),
        ),
        PassTo::Literal => (
            String::new(),
            format!("fastcgi_pass 127.0.0.1:{backend};\n"),
        ),
    };
    let (route, path) = if nested {
        (
            format!("location /p/q/ {{\n{}{pass}}}\n", at(Inner)),
            "/p/q/",
        )
    } else {
        (pass, "/p/")
    };
    let text = format!(
        "events {{}}\nhttp {{\naccess_log off;\n{temp}\n{upstream}{}server {{\n\
         listen 127.0.0.1:{port};\n{}location /p/ {{\n{}{route}}}\n}}\n}}\n",
        at(Http),
        at(Server),
        at(Outer),
    );
    (text, path.to_string())
}

/// The findings that say the route's FastCGI connections are not reused.
fn no_reuse_findings(report: &upkeep_rules::CheckReport) -> impl Iterator<Item = &Finding> {
    report
        .findings
        .iter()
        .filter(|f| matches!(f.rule, "U001" | "U006" | "U010" | "U011"))
}

/// Runs nginx with `text`, sends two requests to `path`, and returns the
/// connection numbers the responder saw them on.
fn observe(
    bin: &upkeep_nginx::NginxBinary,
    text: &str,
    responder: &Responder,
    port: u16,
    path: &str,
) -> Vec<usize> {
    let prefix = upkeep_nginx::Prefix::new().unwrap();
    let conf = prefix.write("conf/nginx.conf", text).unwrap();
    let mut nginx = upkeep_nginx::NginxInstance::start(bin, &prefix, &conf)
        .unwrap_or_else(|e| panic!("{e}\n{text}"));
    responder.seen.lock().unwrap().clear();
    for _ in 0..2 {
        let reply = get(port, path);
        assert!(
            reply.starts_with("HTTP/1.1 200"),
            "nginx answered: {reply}\n{text}"
        );
    }
    nginx.stop().unwrap();
    responder.seen.lock().unwrap().clone()
}

#[test]
fn fastcgi_reuse_findings_agree_with_a_real_nginx_on_generated_configs() {
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
    let cases: usize = std::env::var("UPKEEP_FASTCGI_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(80);
    let responder = Responder::start();
    let port = upkeep_nginx::free_port().unwrap();
    let scratch = upkeep_nginx::Prefix::new().unwrap();
    let temp = scratch.http_temp_paths();
    let mut rng = Rng(0x5851_f42d_4c95_7f2d);
    let (mut reused, mut not_reused) = (0, 0);
    let mut disagreements = Vec::new();
    for case in 0..cases {
        let (text, path) = generate(&mut rng, responder.port, port, &temp);
        let report = check_text(&scratch, &text, version);
        let reasons: Vec<String> = no_reuse_findings(&report)
            .map(|f| format!("{}: {}", f.rule, f.message))
            .collect();
        let seen = observe(&bin, &text, &responder, port, &path);
        assert_eq!(seen.len(), 2, "case {case}: {seen:?}\n{text}");
        let reuse = seen[0] == seen[1];
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
        let fixed = fix_text(&scratch, &text, version, None);
        let report = check_text(&scratch, &fixed, version);
        let left: Vec<String> = no_reuse_findings(&report)
            .map(|f| format!("{}: {}", f.rule, f.message))
            .collect();
        let fixable_left = no_reuse_findings(&report).any(|f| f.fix.is_some());
        let seen = observe(&bin, &fixed, &responder, port, &path);
        let reuse = seen.len() == 2 && seen[0] == seen[1];
        if fixable_left || reuse != left.is_empty() {
            disagreements.push(format!(
                "case {case}: after the fixes, upkeep says {left:?} and the responder saw {seen:?}\n{fixed}"
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {cases} disagree:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
    eprintln!(
        "{cases} configs agree ({reused} reused, {not_reused} not), and again after the fixes"
    );
    assert!(
        reused >= cases / 10 && not_reused >= cases / 10,
        "{reused} reused, {not_reused} not"
    );
}
