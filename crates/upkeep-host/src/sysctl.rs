//! The kernel settings that decide how many connections a host can open and
//! how long closed ones linger, read from `/proc/sys`. Their meaning is the
//! kernel's `Documentation/networking/ip-sysctl.rst`.

use std::path::Path;

/// The sysctls doctor reports; `None` where unreadable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sysctls {
    /// `net.ipv4.ip_local_port_range` (also used for IPv6): the local ports
    /// `connect()` picks from, inclusive.
    pub ip_local_port_range: Option<(u16, u16)>,
    /// `net.ipv4.tcp_tw_reuse`: 0 off, 1 on, 2 for loopback connections
    /// only (the default of current kernels). When on, `connect()` may take
    /// the port of a TIME_WAIT socket that is old enough (TCP timestamps).
    pub tcp_tw_reuse: Option<u8>,
    /// `net.ipv4.tcp_fin_timeout` in seconds: how long an orphaned socket
    /// stays in FIN-WAIT-2. It does NOT shorten TIME_WAIT, which is fixed at
    /// 60 s (`TCP_TIMEWAIT_LEN`).
    pub tcp_fin_timeout: Option<u32>,
    /// `net.core.somaxconn`: the cap on every `listen()` backlog.
    pub somaxconn: Option<u32>,
}

impl Sysctls {
    /// Reads the sysctls of this process's network namespace.
    pub fn read() -> Sysctls {
        Sysctls::read_from(Path::new("/proc/sys"))
    }

    /// Reads the sysctls of the network namespace process `pid` lives in
    /// (`/proc/sys/net` answers for the reading thread's namespace). An
    /// error when that namespace is not ours and cannot be joined.
    pub fn read_for(pid: Option<i32>) -> std::io::Result<Sysctls> {
        match pid {
            Some(pid) if !crate::netns::same_as_ours(pid) => {
                crate::netns::run_in(pid, Sysctls::read)
            }
            _ => Ok(Sysctls::read()),
        }
    }

    pub fn read_from(root: &Path) -> Sysctls {
        let read = |rel: &str| std::fs::read_to_string(root.join(rel)).ok();
        Sysctls {
            ip_local_port_range: read("net/ipv4/ip_local_port_range")
                .and_then(|t| parse_port_range(&t)),
            tcp_tw_reuse: read("net/ipv4/tcp_tw_reuse").and_then(|t| t.trim().parse().ok()),
            tcp_fin_timeout: read("net/ipv4/tcp_fin_timeout").and_then(|t| t.trim().parse().ok()),
            somaxconn: read("net/core/somaxconn").and_then(|t| t.trim().parse().ok()),
        }
    }

    /// How many local ports `ip_local_port_range` offers.
    pub fn port_range_size(&self) -> Option<u64> {
        self.ip_local_port_range
            .map(|(lo, hi)| u64::from(hi.saturating_sub(lo)) + 1)
    }
}

/// `32768\t60999\n`.
pub fn parse_port_range(text: &str) -> Option<(u16, u16)> {
    let mut it = text.split_whitespace().map(|w| w.parse::<u16>());
    match (it.next(), it.next(), it.next()) {
        (Some(Ok(lo)), Some(Ok(hi)), None) if lo <= hi => Some((lo, hi)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_port_range() {
        assert_eq!(parse_port_range("32768\t60999\n"), Some((32768, 60999)));
        assert_eq!(parse_port_range("1024 1024"), Some((1024, 1024)));
        assert_eq!(parse_port_range("60999 32768"), None);
        assert_eq!(parse_port_range("x y"), None);
        assert_eq!(parse_port_range("1 2 3"), None);
    }

    #[test]
    fn reads_a_fake_proc_sys() {
        let dir = tempfile::tempdir().unwrap();
        let w = |rel: &str, v: &str| {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, v).unwrap();
        };
        w("net/ipv4/ip_local_port_range", "40000\t40999\n");
        w("net/ipv4/tcp_tw_reuse", "2\n");
        w("net/ipv4/tcp_fin_timeout", "60\n");
        let s = Sysctls::read_from(dir.path());
        assert_eq!(s.ip_local_port_range, Some((40000, 40999)));
        assert_eq!(s.port_range_size(), Some(1000));
        assert_eq!(s.tcp_tw_reuse, Some(2));
        assert_eq!(s.tcp_fin_timeout, Some(60));
        assert_eq!(s.somaxconn, None);
    }
}
