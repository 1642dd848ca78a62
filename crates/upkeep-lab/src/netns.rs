//! A private network namespace for the port-exhaustion scenario.
//!
//! Ephemeral-port exhaustion needs a narrow `ip_local_port_range` and
//! addresses for which Linux does not recycle TIME_WAIT ports early
//! (`tcp_tw_reuse` = 2, the default, applies to loopback addresses only). The
//! lab therefore creates its own namespace with a veth pair carrying
//! 10.241.0.1 and 10.241.0.2 and sets the range there. The host's sysctls and
//! interfaces are never touched; the namespace and everything in it is
//! deleted when the [`LabNamespace`] is dropped.

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Where nginx listens inside the namespace.
pub const FRONT_ADDR: Ipv4Addr = Ipv4Addr::new(10, 241, 0, 1);
/// Where the emulated backends listen inside the namespace.
pub const BACKEND_ADDR: Ipv4Addr = Ipv4Addr::new(10, 241, 0, 2);

static SERIAL: AtomicU32 = AtomicU32::new(0);

pub struct LabNamespace {
    name: String,
    handle: File,
}

/// Why the namespace could not be made (the scenario is then skipped).
#[derive(Debug)]
pub struct Unavailable(pub String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl LabNamespace {
    /// Creates the namespace with its veth pair and local port range.
    pub fn create(port_range: (u16, u16)) -> Result<LabNamespace, Unavailable> {
        let name = format!(
            "upkeep-lab-{}-{}",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &name]).map_err(|e| {
            Unavailable(format!(
                "cannot create a network namespace ({e}); this scenario needs root or CAP_SYS_ADMIN and `ip` from iproute2"
            ))
        })?;
        // From here on, dropping `ns` deletes the namespace.
        let handle = match File::open(format!("/run/netns/{name}")) {
            Ok(f) => f,
            Err(e) => {
                let _ = ip(&["netns", "delete", &name]);
                return Err(Unavailable(format!("cannot open /run/netns/{name}: {e}")));
            }
        };
        let ns = LabNamespace { name, handle };
        let n = ns.name.as_str();
        let front = format!("{FRONT_ADDR}/24");
        let back = format!("{BACKEND_ADDR}/24");
        let range = format!(
            "net.ipv4.ip_local_port_range={} {}",
            port_range.0, port_range.1
        );
        let steps: [&[&str]; 7] = [
            &["-n", n, "link", "set", "lo", "up"],
            &[
                "-n", n, "link", "add", "lab0", "type", "veth", "peer", "name", "lab1",
            ],
            &["-n", n, "addr", "add", &front, "dev", "lab0"],
            &["-n", n, "addr", "add", &back, "dev", "lab1"],
            &["-n", n, "link", "set", "lab0", "up"],
            &["-n", n, "link", "set", "lab1", "up"],
            &["netns", "exec", n, "sysctl", "-q", "-w", &range],
        ];
        for step in steps {
            ip(step).map_err(|e| Unavailable(format!("setting up namespace {n}: {e}")))?;
        }
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Moves the calling thread into the namespace. Sockets it creates and
    /// processes it spawns from then on live there.
    pub fn enter_current_thread(&self) -> std::io::Result<()> {
        // SAFETY: setns on a valid namespace fd; affects only this thread.
        let rc = unsafe { libc::setns(self.handle.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    /// The namespace's `ip_local_port_range`, read back from inside.
    pub fn port_range(&self) -> Result<String, String> {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.name,
                "cat",
                "/proc/sys/net/ipv4/ip_local_port_range",
            ])
            .output()
            .map_err(|e| e.to_string())?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "))
    }
}

impl Drop for LabNamespace {
    fn drop(&mut self) {
        let _ = ip(&["netns", "delete", &self.name]);
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
