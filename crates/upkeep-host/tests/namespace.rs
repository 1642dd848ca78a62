//! nginx in another network namespace: doctor must count that namespace's
//! sockets against that namespace's `ip_local_port_range`. A private
//! namespace with a 20-port range and 15 open connections to one address
//! trips H002. Needs root and `ip` from iproute2; skipped (loudly) without.

use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use upkeep_config::{ConfigSet, LoadOptions, MemoryLoader};
use upkeep_diag::Severity;
use upkeep_host::sockets::CensusSource;
use upkeep_host::DoctorInput;
use upkeep_rules::{CheckOptions, NginxVersion, VersionSource};

/// A network namespace deleted on drop, with a process living in it.
struct Namespace {
    name: String,
    anchor: Child,
}

impl Namespace {
    fn create() -> Result<Namespace, String> {
        let name = format!("upkeep-doctor-{}", std::process::id());
        run(&["ip", "netns", "add", &name])?;
        let ns = |args: &[&str]| {
            let mut full = vec!["ip", "netns", "exec", name.as_str()];
            full.extend_from_slice(args);
            run(&full)
        };
        let setup = ns(&["ip", "link", "set", "lo", "up"]).and_then(|_| {
            ns(&[
                "sh",
                "-c",
                "echo '40000 40019' > /proc/sys/net/ipv4/ip_local_port_range",
            ])
        });
        let anchor = setup.and_then(|_| {
            Command::new("ip")
                .args(["netns", "exec", &name, "sleep", "30"])
                .stdin(Stdio::null())
                .spawn()
                .map_err(|e| e.to_string())
        });
        match anchor {
            Ok(anchor) => Ok(Namespace { name, anchor }),
            Err(e) => {
                let _ = run(&["ip", "netns", "delete", &name]);
                Err(e)
            }
        }
    }

    /// Runs `f` on a thread inside the namespace.
    fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let handle = std::fs::File::open(format!("/run/netns/{}", self.name)).unwrap();
        std::thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: setns(2) on this short-lived thread only.
                assert_eq!(
                    unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) },
                    0
                );
                f()
            })
            .join()
            .unwrap()
        })
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = self.anchor.kill();
        let _ = self.anchor.wait();
        let _ = run(&["ip", "netns", "delete", &self.name]);
    }
}

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[test]
fn counts_sockets_and_port_range_inside_nginx_namespace() {
    let ns = match Namespace::create() {
        Ok(ns) => ns,
        Err(e) => {
            eprintln!("SKIPPED: cannot make a network namespace ({e}); needs root and iproute2");
            return;
        }
    };
    // 15 connections to 127.0.0.1:8080 inside the namespace; their local
    // ports come from its 20-port range.
    let held: Vec<TcpStream> = ns.enter(|| {
        let listener = TcpListener::bind("127.0.0.1:8080").unwrap();
        let mut held = Vec::new();
        for _ in 0..15 {
            held.push(TcpStream::connect("127.0.0.1:8080").unwrap());
            held.push(listener.accept().unwrap().0);
        }
        held
    });
    assert_eq!(held.len(), 30);
    std::thread::sleep(Duration::from_millis(50));

    let mut loader = MemoryLoader::new();
    loader.insert(
        "/etc/nginx/nginx.conf",
        b"events {}\nhttp {\n    upstream app { server 127.0.0.1:8080; keepalive 16; }\n    server { location / { proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_pass http://app; } }\n}\n".to_vec(),
    );
    let config =
        ConfigSet::load("/etc/nginx/nginx.conf", &loader, &LoadOptions::default()).unwrap();
    let mut input = DoctorInput::new(&config);
    input.check = CheckOptions {
        nginx_version: Some(NginxVersion::new(1, 22, 1)),
        version_source: VersionSource::Given,
        ..CheckOptions::default()
    };
    // The process standing in for nginx's master lives in the namespace.
    input.pid = Some(ns.anchor.id() as i32);
    input.window = Duration::from_millis(100);
    let report = upkeep_host::run(input);
    eprintln!("{}", report.to_human(false));

    assert_eq!(report.sysctls.ip_local_port_range, Some((40000, 40019)));
    assert_eq!(report.sampling.source, Some(CensusSource::Netlink));
    let c = report
        .sampling
        .census_end
        .get(&"127.0.0.1:8080".parse().unwrap());
    assert_eq!(c.established, 15, "{c:?}");
    assert_eq!(c.in_port_range, 15, "{c:?}");
    assert_eq!(c.backend_end_established, 15, "{c:?}");
    let h002: Vec<_> = report
        .findings
        .iter()
        .filter(|r| r.finding.rule == "H002")
        .collect();
    assert_eq!(h002.len(), 1, "{:#?}", report.findings);
    assert_eq!(h002[0].finding.severity, Severity::Error);
    assert!(h002[0].finding.message.starts_with(
        "15 sockets towards 127.0.0.1:8080 (upstream `app`) hold 75.0% of the 20 local ports of ip_local_port_range 40000-40019"
    ));
    assert_eq!(report.findings[0].finding.rule, "H002", "errors rank first");
    drop(held);
}
