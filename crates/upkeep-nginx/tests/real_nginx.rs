//! Starts the real nginx binary; skipped (loudly) when none is installed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use upkeep_nginx::{free_port, NginxBinary, NginxInstance, Prefix};

fn nginx() -> Option<NginxBinary> {
    let found = NginxBinary::find(None);
    if found.is_none() {
        eprintln!("SKIPPED: no nginx binary found (install Debian's nginx)");
    }
    found
}

fn get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: t\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn starts_serves_and_stops_by_pid_file() {
    let Some(bin) = nginx() else { return };
    assert!(bin.version().unwrap().split('.').count() == 3);
    let prefix = Prefix::new().unwrap();
    let port = free_port().unwrap();
    let conf = prefix
        .write(
            "nginx.conf",
            &format!(
                "events {{}}\nhttp {{\n    {}    access_log off;\n    server {{ listen 127.0.0.1:{port}; return 200 \"up\\n\"; }}\n}}\n",
                prefix.http_temp_paths()
            ),
        )
        .unwrap();
    let mut inst = NginxInstance::start(&bin, &prefix, &conf).unwrap();
    assert!(get(port, "/").ends_with("up\n"));
    inst.reload().unwrap();
    let pid = inst.pid();
    inst.stop().unwrap();
    assert!(
        !upkeep_nginx::process_is_running(pid),
        "master still running after stop"
    );
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn test_config_reports_errors_with_place() {
    let Some(bin) = nginx() else { return };
    let prefix = Prefix::new().unwrap();
    let conf = prefix
        .write(
            "bad.conf",
            "events {}\nhttp { server { listen 127.0.0.1:1; bogus_directive on; } }\n",
        )
        .unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let outcome = bin
        .test_config(&conf, prefix.path(), scratch.path())
        .unwrap();
    assert!(!outcome.ok);
    assert!(
        outcome
            .output
            .contains("unknown directive \"bogus_directive\""),
        "{}",
        outcome.output
    );
    assert!(outcome.output.contains("bad.conf:2"), "{}", outcome.output);
}
