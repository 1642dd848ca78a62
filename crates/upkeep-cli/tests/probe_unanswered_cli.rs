//! `upkeep probe` against loopback backends that leave it without a clean
//! answer: one that never answers, one that answers only the first
//! connection, one whose idle timeout is about the gap between the probe's
//! requests. Each run is bounded by `--max-wait`; the result must say what
//! happened instead of coming back empty or contradicting itself.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const KEEP_ALIVE_OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

#[derive(Clone, Copy)]
enum Behaviour {
    /// Accepts, reads, never answers.
    Mute,
    /// Answers every request on the first connection it accepts (and keeps
    /// it open); later connections are accepted and never answered.
    FirstConnectionOnly,
    /// Answers every request; closes a connection after `0` of silence
    /// following a response (before the first request it waits, as nginx
    /// waits `client_header_timeout`, 60 s by default).
    IdleTimeout(Duration),
}

/// A backend on a loopback port, stopped (threads joined) on drop.
struct Backend {
    port: u16,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}

fn backend(behaviour: Behaviour) -> Backend {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let acceptor = std::thread::spawn(move || {
        let accepted = AtomicUsize::new(0);
        let mut handlers = Vec::new();
        while !stop2.load(Ordering::SeqCst) {
            let Ok((s, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            let nth = accepted.fetch_add(1, Ordering::SeqCst);
            let answers = match behaviour {
                Behaviour::Mute => false,
                Behaviour::FirstConnectionOnly => nth == 0,
                Behaviour::IdleTimeout(_) => true,
            };
            let idle = match behaviour {
                Behaviour::IdleTimeout(d) => Some(d),
                _ => None,
            };
            let stop3 = stop2.clone();
            handlers.push(std::thread::spawn(move || serve(s, answers, idle, &stop3)));
        }
        for h in handlers {
            let _ = h.join();
        }
    });
    Backend {
        port,
        stop,
        acceptor: Some(acceptor),
    }
}

/// Reads request heads and answers each one (when `answers`); closes after
/// `idle` without a request after a response, when the peer closes, or on
/// stop.
fn serve(mut s: TcpStream, answers: bool, idle: Option<Duration>, stop: &AtomicBool) {
    s.set_nonblocking(false).unwrap();
    let mut pending = Vec::new();
    let mut buf = [0u8; 4096];
    let mut quiet_since = None;
    while !stop.load(Ordering::SeqCst) {
        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            pending.drain(..end + 4);
            if answers && s.write_all(KEEP_ALIVE_OK).is_err() {
                return;
            }
            quiet_since = Some(Instant::now());
        }
        let mut slice = Duration::from_millis(20);
        if let (Some(idle), Some(quiet_since)) = (idle, quiet_since) {
            let Some(left) = idle.checked_sub(quiet_since.elapsed()) else {
                return; // the idle timeout: close (FIN) by dropping
            };
            slice = slice.min(left).max(Duration::from_millis(1));
        }
        s.set_read_timeout(Some(slice)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(_) => return,
        }
    }
}

/// Runs `upkeep probe --format json` on the backend; the one target's
/// report and how long the run took.
fn probe(port: u16, extra: &[&str]) -> (serde_json::Value, Duration, String) {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(["probe", "--format", "json", "--quiet"])
        .args(extra)
        .arg(format!("127.0.0.1:{port}"))
        .output()
        .unwrap();
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json: serde_json::Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout}{stderr} ({:?})", out.status));
    (json["targets"][0].clone(), took, stderr)
}

fn notes(t: &serde_json::Value) -> Vec<String> {
    t["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect()
}

/// A backend that accepts and never answers: with `--max-wait 2s` and the
/// default 10 s `--timeout`, the first request waits no longer than the max
/// wait, and the target fails with the reason instead of an empty result.
#[test]
fn a_backend_that_never_answers_fails_within_the_max_wait_with_the_reason() {
    let b = backend(Behaviour::Mute);
    let (t, took, stderr) = probe(b.port, &["--max-wait", "2s"]);
    let error = t["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error: {t} {stderr}"));
    assert!(
        error.contains("no answer to the first request within 2.0 s (--max-wait)"),
        "{t}"
    );
    assert!(t["status"].is_null() && t["keepalive"].is_null(), "{t}");
    // Bounded by the max wait (2 s), not by --timeout (10 s); the margin is
    // for a loaded machine.
    assert!(took < Duration::from_secs(9), "took {took:?}: {t}");
}

/// `--timeout` still bounds the first request when it is the shorter, and
/// the error names it and its value, as it names `--max-wait`.
#[test]
fn a_timeout_shorter_than_the_max_wait_still_ends_the_first_request() {
    let b = backend(Behaviour::Mute);
    let (t, took, _) = probe(b.port, &["--max-wait", "30s", "--timeout", "1s"]);
    let error = t["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error: {t}"));
    assert_eq!(
        error, "no answer to the first request within 1.0 s (--timeout)",
        "{t}"
    );
    assert!(took < Duration::from_secs(20), "took {took:?}: {t}");
}

/// A backend that answers the first connection but never the request-cap
/// connection: the idle side is measured as far as the wait allows, and the
/// missing cap is said with its cause.
#[test]
fn no_answer_on_the_request_cap_connection_is_said() {
    let b = backend(Behaviour::FirstConnectionOnly);
    let (t, took, stderr) = probe(b.port, &["--max-wait", "2s", "--idle-samples", "1"]);
    assert_eq!(t["status"], 200, "{t} {stderr}");
    assert_eq!(t["keepalive"], true, "{t}");
    assert!(t["max_requests"].is_null(), "{t}");
    let notes = notes(&t);
    assert!(
        notes.iter().any(|n| n.starts_with(
            "request cap not measured: no answer to the first request within 2.0 s (--max-wait) on a second connection"
        )),
        "{t}"
    );
    assert!(took < Duration::from_secs(9), "took {took:?}: {t}");
}

/// A backend that closes connections after 700 ms of silence, probed at
/// one request per second (a burst of 1 at that rate, taken by the first
/// request): the request-cap connection is closed by the idle timeout after
/// its first response. That is no cap of 1: the idle
/// connection stayed open about 700 ms after its own response. The report
/// keeps keep-alive and the idle timeout and says the cap was not measured.
#[test]
fn an_idle_close_on_the_request_cap_connection_is_not_a_cap_of_one() {
    let b = backend(Behaviour::IdleTimeout(Duration::from_millis(700)));
    let (t, _, stderr) = probe(
        b.port,
        &[
            "--max-wait",
            "5s",
            "--rate",
            "1",
            "--idle-samples",
            "1",
            "--max-requests",
            "5",
        ],
    );
    assert!(t["error"].is_null(), "{t} {stderr}");
    assert_eq!(t["keepalive"], true, "{t}");
    assert_eq!(t["closes_after_response"], false, "{t}");
    let idle = t["idle_timeout_ms"]
        .as_u64()
        .unwrap_or_else(|| panic!("idle timeout not measured: {t}"));
    assert!((600..3000).contains(&idle), "{t}");
    assert!(t["max_requests"].is_null(), "{t}");
    assert!(t["announces_close"].is_null(), "{t}");
    assert!(
        notes(&t)
            .iter()
            .any(|n| n.starts_with("request cap not measured:")
                && n.contains("so that close may be the idle timeout")),
        "{t}"
    );
    // The table does not claim more requests than were answered.
    let out = Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(["probe", "--quiet", "--max-wait", "5s", "--rate", "1"])
        .args(["--idle-samples", "1", "--max-requests", "5"])
        .arg(format!("127.0.0.1:{}", b.port))
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    let row = table.lines().nth(1).unwrap_or_default();
    assert!(row.trim_end().ends_with(">= 1 (see note)"), "{table}");
}
