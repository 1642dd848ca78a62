//! The Node.js rows of the backend profiles against the installed Node.js:
//! a tiny `http` server with `keepAliveTimeout = 1500`, one request on a
//! keep-alive connection, then the time until the server closes the idle
//! connection. Releases with the keep-alive buffer close one second after
//! the advertised timeout (2.5 s here), older ones at the timeout (1.5 s);
//! the profile chosen for the installed version (`node@VERSION`) must say
//! which. Skipped, with the reason printed, when no `node` is installed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KEEP_ALIVE_TIMEOUT_MS: u64 = 1500;

const SERVER: &str = r#"
const http = require('http');
const server = http.createServer((req, res) => res.end('ok'));
server.keepAliveTimeout = Number(process.argv[1]);
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
setTimeout(() => process.exit(0), 30000).unref();
"#;

/// Kills the node process when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn node_version() -> Option<String> {
    let out = Command::new("node").arg("--version").output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn node_closes_idle_connections_when_its_profile_says() {
    let Some(version) = node_version() else {
        eprintln!("skipping: no `node` on PATH (.ci/setup installs Node.js)");
        return;
    };
    let mut child = Server(
        Command::new("node")
            .args(["-e", SERVER, &KEEP_ALIVE_TIMEOUT_MS.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node"),
    );
    let mut port = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut port)
        .expect("node prints its port");
    let port: u16 = port.trim().parse().expect("a port number");

    let mut conn = TcpStream::connect(("127.0.0.1", port)).expect("connect to node");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn.write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    // The response ends with the 2-byte body "ok" (Content-Length: 2).
    while !response.ends_with(b"\r\n\r\nok") {
        let n = conn.read(&mut buf).expect("read the response");
        assert!(n > 0, "node closed before answering");
        response.extend_from_slice(&buf[..n]);
    }
    let idle_from = Instant::now();
    let n = conn
        .read(&mut buf)
        .expect("node closes the idle connection within 10 s");
    let closed_after = idle_from.elapsed();
    assert_eq!(n, 0, "unexpected bytes on the idle connection");

    let profile = upkeep_facts::backend_profile(&format!("node@{version}")).unwrap();
    let buffer_ms = profile.idle_timeout_ms.unwrap() - 5000;
    let expected = Duration::from_millis(KEEP_ALIVE_TIMEOUT_MS + buffer_ms);
    eprintln!(
        "node {version}: keepAliveTimeout {KEEP_ALIVE_TIMEOUT_MS} ms, idle connection closed after {} ms; profile `{}` expects {} ms",
        closed_after.as_millis(),
        profile.name,
        expected.as_millis()
    );
    // Timers fire late on a loaded machine, never early; the two models are
    // a full second apart, so 900 ms of lateness still tells them apart.
    assert!(
        closed_after + Duration::from_millis(50) >= expected
            && closed_after < expected + Duration::from_millis(900),
        "node {version} closed the idle connection after {closed_after:?}, profile `{}` says {expected:?}",
        profile.name
    );
}
