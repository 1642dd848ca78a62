//! nginx in another network namespace (a container): its sockets and its
//! `net.*` sysctls are those of that namespace, not doctor's. A netlink
//! socket and `/proc/sys/net` both answer for the namespace of the thread
//! that uses them, so doctor reads them from a short-lived thread that
//! joined nginx's namespace with setns(2) (which needs CAP_SYS_ADMIN).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Whether process `pid` shares this process's network namespace. `true`
/// when it cannot be told (no permission to read the link).
pub fn same_as_ours(pid: i32) -> bool {
    match (
        std::fs::read_link("/proc/self/ns/net"),
        std::fs::read_link(format!("/proc/{pid}/ns/net")),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => true,
    }
}

/// Runs `f` on a thread inside the network namespace of process `pid`.
pub fn run_in<T: Send>(pid: i32, f: impl FnOnce() -> T + Send) -> io::Result<T> {
    let path = format!("/proc/{pid}/ns/net");
    let ns = File::open(&path).map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                // SAFETY: setns(2) with an open namespace descriptor; it
                // changes only this thread, which ends right after `f`.
                if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                    let e = io::Error::last_os_error();
                    return Err(io::Error::new(
                        e.kind(),
                        format!("cannot join the network namespace of process {pid}: {e}"),
                    ));
                }
                Ok(f())
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("namespace reader panicked")))
    })
}
