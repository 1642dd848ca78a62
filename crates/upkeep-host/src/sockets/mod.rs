//! The socket census: every TCP socket of a network namespace, read the way
//! `ss` reads it (netlink `sock_diag`), with `/proc/net/tcp{,6}` as the
//! fallback, and counted per remote address.

mod netlink;
mod proc_net;

/// The address form of /proc/net/tcp{,6}, shared with backend discovery.
pub(crate) use proc_net::parse_addr as parse_proc_net_addr;

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr};

pub use proc_net::parse_proc_net_tcp;

/// Linux TCP states (`include/net/tcp_states.h`), as both sources report them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TcpState {
    Established,
    SynSent,
    SynRecv,
    FinWait1,
    FinWait2,
    TimeWait,
    Close,
    CloseWait,
    LastAck,
    Listen,
    Closing,
    NewSynRecv,
}

impl TcpState {
    pub fn from_code(code: u8) -> Option<TcpState> {
        Some(match code {
            1 => TcpState::Established,
            2 => TcpState::SynSent,
            3 => TcpState::SynRecv,
            4 => TcpState::FinWait1,
            5 => TcpState::FinWait2,
            6 => TcpState::TimeWait,
            7 => TcpState::Close,
            8 => TcpState::CloseWait,
            9 => TcpState::LastAck,
            10 => TcpState::Listen,
            11 => TcpState::Closing,
            12 => TcpState::NewSynRecv,
            _ => return None,
        })
    }

    /// The name `ss` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            TcpState::Established => "ESTAB",
            TcpState::SynSent => "SYN-SENT",
            TcpState::SynRecv => "SYN-RECV",
            TcpState::FinWait1 => "FIN-WAIT-1",
            TcpState::FinWait2 => "FIN-WAIT-2",
            TcpState::TimeWait => "TIME-WAIT",
            TcpState::Close => "UNCONN",
            TcpState::CloseWait => "CLOSE-WAIT",
            TcpState::LastAck => "LAST-ACK",
            TcpState::Listen => "LISTEN",
            TcpState::Closing => "CLOSING",
            TcpState::NewSynRecv => "SYN-RECV",
        }
    }
}

/// One TCP socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Socket {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: TcpState,
}

/// Where the census came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CensusSource {
    /// netlink `NETLINK_SOCK_DIAG` in this process's network namespace.
    Netlink,
    /// `/proc/net/tcp` and `/proc/net/tcp6` (of a process, for its namespace).
    ProcNet,
}

impl CensusSource {
    pub fn as_str(self) -> &'static str {
        match self {
            CensusSource::Netlink => "netlink sock_diag",
            CensusSource::ProcNet => "/proc/net/tcp{,6}",
        }
    }
}

/// How to read the sockets of the namespace nginx lives in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SocketReader {
    /// netlink first, `/proc/self/net/tcp{,6}` if netlink fails.
    OwnNamespace,
    /// The network namespace of process PID when it is not ours (nginx in a
    /// container): netlink from a thread that joined it, else
    /// `/proc/PID/net/tcp{,6}` (which show that namespace's sockets too).
    NamespaceOf(i32),
}

impl SocketReader {
    /// Reads the namespace of process `pid`.
    pub fn for_process(pid: Option<i32>) -> SocketReader {
        match pid {
            Some(pid) if !crate::netns::same_as_ours(pid) => SocketReader::NamespaceOf(pid),
            _ => SocketReader::OwnNamespace,
        }
    }

    /// Every TCP socket (IPv4 and IPv6), and which source answered.
    pub fn read(&self) -> io::Result<(Vec<Socket>, CensusSource)> {
        let (netlink, tables) = match self {
            SocketReader::OwnNamespace => (netlink::dump_tcp(), "/proc/self/net".to_string()),
            SocketReader::NamespaceOf(pid) => (
                crate::netns::run_in(*pid, netlink::dump_tcp).and_then(|r| r),
                format!("/proc/{pid}/net"),
            ),
        };
        match netlink {
            Ok(sockets) => Ok((sockets, CensusSource::Netlink)),
            Err(_) => Ok((proc_net::read_tables(&tables)?, CensusSource::ProcNet)),
        }
    }

    /// Reads through netlink only (no fallback), for checking one source
    /// against the other.
    pub fn read_netlink() -> io::Result<Vec<Socket>> {
        netlink::dump_tcp()
    }

    /// Reads `/proc/PID/net/tcp{,6}` (or `/proc/self/net` for `None`) only.
    pub fn read_proc(pid: Option<i32>) -> io::Result<Vec<Socket>> {
        match pid {
            Some(pid) => proc_net::read_tables(&format!("/proc/{pid}/net")),
            None => proc_net::read_tables("/proc/self/net"),
        }
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`, dual-stack sockets) as
/// plain IPv4, so one backend has one key.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), addr.port()),
            None => addr,
        },
        IpAddr::V4(_) => addr,
    }
}

/// Counts of the sockets of one backend address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddressCount {
    /// Sockets whose REMOTE end is the address (nginx's end of the
    /// connections, or anything else on this host talking to it), by state.
    pub established: u64,
    pub time_wait: u64,
    /// Other states towards it (SYN-SENT, FIN-WAIT, CLOSE-WAIT, …).
    pub other: u64,
    /// Of all the sockets towards it, those whose local port is inside
    /// `ip_local_port_range` (the ephemeral ports it uses up).
    pub in_port_range: u64,
    /// Sockets whose LOCAL end is the address (the backend runs on this
    /// host): its end of the same connections. TIME_WAIT lands there when
    /// the backend closes first.
    pub backend_end_established: u64,
    pub backend_end_time_wait: u64,
}

impl AddressCount {
    /// All sockets towards the address, whatever their state.
    pub fn towards(&self) -> u64 {
        self.established + self.time_wait + self.other
    }

    /// TIME_WAIT sockets of closed connections to the address, at either end.
    pub fn time_wait_total(&self) -> u64 {
        self.time_wait + self.backend_end_time_wait
    }
}

/// The sockets of a set of backend addresses, counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Census {
    pub by_address: BTreeMap<SocketAddr, AddressCount>,
}

impl Census {
    /// Counts `sockets` for each of `addresses`. `port_range` is
    /// `net.ipv4.ip_local_port_range` (inclusive), when known.
    pub fn count(
        sockets: &[Socket],
        addresses: &[SocketAddr],
        port_range: Option<(u16, u16)>,
    ) -> Census {
        let mut by_address: BTreeMap<SocketAddr, AddressCount> = addresses
            .iter()
            .map(|a| (canonical(*a), AddressCount::default()))
            .collect();
        for s in sockets {
            let (local, remote) = (canonical(s.local), canonical(s.remote));
            if let Some(c) = by_address.get_mut(&remote) {
                match s.state {
                    TcpState::Established => c.established += 1,
                    TcpState::TimeWait => c.time_wait += 1,
                    TcpState::Listen => continue,
                    _ => c.other += 1,
                }
                if port_range.is_some_and(|(lo, hi)| (lo..=hi).contains(&local.port())) {
                    c.in_port_range += 1;
                }
            }
            if let Some(c) = by_address.get_mut(&local) {
                match s.state {
                    TcpState::Established => c.backend_end_established += 1,
                    TcpState::TimeWait => c.backend_end_time_wait += 1,
                    _ => {}
                }
            }
        }
        Census { by_address }
    }

    pub fn get(&self, addr: &SocketAddr) -> AddressCount {
        self.by_address
            .get(&canonical(*addr))
            .copied()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sock(local: &str, remote: &str, state: TcpState) -> Socket {
        Socket {
            local: local.parse().unwrap(),
            remote: remote.parse().unwrap(),
            state,
        }
    }

    #[test]
    fn counts_both_ends_and_the_port_range() {
        let backend: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let sockets = [
            sock("127.0.0.1:40000", "127.0.0.1:8080", TcpState::TimeWait),
            sock("127.0.0.1:40001", "127.0.0.1:8080", TcpState::TimeWait),
            sock("127.0.0.1:1234", "127.0.0.1:8080", TcpState::Established),
            sock("127.0.0.1:8080", "127.0.0.1:1234", TcpState::Established),
            sock("127.0.0.1:8080", "127.0.0.1:40002", TcpState::TimeWait),
            sock("127.0.0.1:8080", "0.0.0.0:0", TcpState::Listen),
            sock(
                "[::ffff:127.0.0.1]:40003",
                "[::ffff:127.0.0.1]:8080",
                TcpState::FinWait2,
            ),
            sock("127.0.0.1:40004", "127.0.0.1:9090", TcpState::TimeWait),
        ];
        let census = Census::count(&sockets, &[backend], Some((32768, 60999)));
        let c = census.get(&backend);
        assert_eq!(c.time_wait, 2);
        assert_eq!(c.established, 1);
        assert_eq!(c.other, 1, "the mapped IPv6 FIN-WAIT-2 socket");
        assert_eq!(c.in_port_range, 3);
        assert_eq!(c.backend_end_established, 1);
        assert_eq!(c.backend_end_time_wait, 1);
        assert_eq!(c.time_wait_total(), 3);
        assert_eq!(c.towards(), 4);
    }
}
