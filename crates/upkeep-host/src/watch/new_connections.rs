//! New connections towards the backends, from consecutive socket censuses.
//!
//! A connection is identified by its two addresses. Each census yields the
//! set of connections towards every watched backend; the ones absent from
//! the previous census are new. A connection is seen from both of its ends:
//! nginx's socket (remote = the backend) and, when the backend runs on this
//! host, the backend's socket (local = the backend). Both give the same
//! key, so one connection counts once whichever end is visible.
//!
//! Why polling finds short connections at all: the end that closes first
//! keeps its socket in TIME_WAIT for 60 s (Linux `TCP_TIMEWAIT_LEN`), far
//! longer than a poll interval. A connection is missed only when it opens
//! and closes between two polls AND its TIME_WAIT lands on a host whose
//! sockets are not visible here (a remote backend that closes first), or
//! when the kernel reuses a TIME_WAIT 4-tuple for the next connection
//! (`tcp_tw_reuse`) before a poll sees the gap. So the count is a lower
//! bound, exact in the common case of nginx closing first.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;

use crate::sockets::{canonical, Socket, TcpState};

/// (the client end: nginx's local address, the backend address)
type ConnectionKey = (SocketAddr, SocketAddr);

/// Remembers the connections of the last census.
#[derive(Clone, Debug)]
pub struct NewConnections {
    targets: HashSet<SocketAddr>,
    previous: Option<HashSet<ConnectionKey>>,
}

impl NewConnections {
    pub fn new(targets: impl IntoIterator<Item = SocketAddr>) -> NewConnections {
        NewConnections {
            targets: targets.into_iter().map(canonical).collect(),
            previous: None,
        }
    }

    /// Takes one census. Returns, per backend with any, the connections
    /// that were not in the previous census. The first census only sets
    /// the baseline (what already existed is not new).
    pub fn observe(&mut self, sockets: &[Socket]) -> BTreeMap<SocketAddr, u64> {
        let current: HashSet<ConnectionKey> =
            sockets.iter().filter_map(|s| self.key_of(s)).collect();
        let mut new = BTreeMap::new();
        if let Some(previous) = &self.previous {
            for (_, backend) in current.difference(previous) {
                *new.entry(*backend).or_insert(0) += 1;
            }
        }
        self.previous = Some(current);
        new
    }

    fn key_of(&self, s: &Socket) -> Option<ConnectionKey> {
        if s.state == TcpState::Listen {
            return None;
        }
        let (local, remote) = (canonical(s.local), canonical(s.remote));
        if self.targets.contains(&remote) {
            Some((local, remote))
        } else if self.targets.contains(&local) {
            // The backend's own end of the same connection.
            Some((remote, local))
        } else {
            None
        }
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

    const BACKEND: &str = "127.0.0.1:8080";

    #[test]
    fn counts_connections_absent_from_the_previous_census() {
        let backend: SocketAddr = BACKEND.parse().unwrap();
        let mut t = NewConnections::new([backend]);
        let first = [
            sock("127.0.0.1:40000", BACKEND, TcpState::Established),
            sock(BACKEND, "0.0.0.0:0", TcpState::Listen),
        ];
        assert!(t.observe(&first).is_empty(), "the baseline is not new");

        let second = [
            // still there (now closed by nginx): not new
            sock("127.0.0.1:40000", BACKEND, TcpState::TimeWait),
            // new, seen at nginx's end only
            sock("127.0.0.1:40001", BACKEND, TcpState::Established),
            // new, seen at both ends: counts once
            sock("127.0.0.1:40002", BACKEND, TcpState::Established),
            sock(BACKEND, "127.0.0.1:40002", TcpState::Established),
            // new, only the backend's TIME_WAIT is left (backend closed first)
            sock(BACKEND, "127.0.0.1:40003", TcpState::TimeWait),
            // another destination
            sock("127.0.0.1:40004", "127.0.0.1:9999", TcpState::Established),
        ];
        assert_eq!(t.observe(&second), BTreeMap::from([(backend, 3)]));

        // A connection that vanished and a 4-tuple that came back later
        // (a new connection on a freed port) counts again.
        let third = [sock("127.0.0.1:40001", BACKEND, TcpState::TimeWait)];
        assert!(t.observe(&third).is_empty());
        let fourth = [
            sock("127.0.0.1:40001", BACKEND, TcpState::TimeWait),
            sock("127.0.0.1:40000", BACKEND, TcpState::Established),
        ];
        assert_eq!(t.observe(&fourth), BTreeMap::from([(backend, 1)]));
    }

    #[test]
    fn ipv4_mapped_sockets_are_the_same_backend() {
        let backend: SocketAddr = BACKEND.parse().unwrap();
        let mut t = NewConnections::new([backend]);
        t.observe(&[]);
        let mapped = [sock(
            "[::ffff:127.0.0.1]:40000",
            "[::ffff:127.0.0.1]:8080",
            TcpState::SynSent,
        )];
        assert_eq!(t.observe(&mapped), BTreeMap::from([(backend, 1)]));
    }
}
