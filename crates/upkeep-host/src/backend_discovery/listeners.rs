//! Which process listens on an address: the listening sockets of a network
//! namespace with their inodes (`/proc/PID/net/tcp{,6}` for TCP,
//! `/proc/PID/net/unix` for unix sockets), then the processes holding a
//! descriptor on that inode (`/proc/*/fd/* -> socket:[INODE]`).
//!
//! Socket inodes are unique on the host whatever the namespace, so one walk
//! over `/proc/*/fd` finds the holders of sockets of any namespace.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};

/// A listening TCP socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpListener {
    pub local: SocketAddr,
    pub inode: u64,
}

/// The listening TCP sockets of the namespace `/proc/{pid}/net` shows
/// (`pid` may be `self`). Missing `tcp6` (no IPv6) is no error.
pub fn tcp_listeners(pid: &str) -> std::io::Result<Vec<TcpListener>> {
    let mut out = Vec::new();
    for name in ["tcp", "tcp6"] {
        let path = format!("/proc/{pid}/net/{name}");
        match std::fs::read_to_string(&path) {
            Ok(text) => out.extend(parse_tcp_listeners(&text)),
            Err(e) if name == "tcp6" && e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(std::io::Error::new(e.kind(), format!("{path}: {e}"))),
        }
    }
    Ok(out)
}

/// LISTEN rows (state 0A) of a `/proc/net/tcp{,6}` table with their inode
/// (the tenth column).
pub fn parse_tcp_listeners(text: &str) -> Vec<TcpListener> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || !f[0].ends_with(':') || f[3] != "0A" {
                return None;
            }
            Some(TcpListener {
                local: crate::sockets::parse_proc_net_addr(f[1])?,
                inode: f[9].parse().ok()?,
            })
        })
        .collect()
}

/// The listener that accepts connections to `addr`: one bound to it, else
/// a wildcard one on its port (`0.0.0.0`, or `::` which also takes IPv4
/// unless it is v6-only, which the table does not tell).
pub fn listener_for(listeners: &[TcpListener], addr: SocketAddr) -> Option<TcpListener> {
    let addr = crate::sockets::canonical(addr);
    let exact = listeners
        .iter()
        .find(|l| crate::sockets::canonical(l.local) == addr);
    exact
        .or_else(|| {
            listeners.iter().find(|l| {
                l.local.port() == addr.port()
                    && l.local.ip().is_unspecified()
                    && (l.local.is_ipv6() || addr.is_ipv4())
            })
        })
        .copied()
}

/// The inodes of listening unix stream sockets bound to a path, from
/// `/proc/PID/net/unix` ("Num RefCount Protocol Flags Type St Inode Path";
/// listening sockets have the `__SO_ACCEPTCON` flag 0x10000).
pub fn parse_unix_listeners(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 8 {
                return None;
            }
            let flags = u32::from_str_radix(f[3], 16).ok()?;
            if flags & 0x10000 == 0 {
                return None;
            }
            Some((f[7..].join(" "), f[6].parse().ok()?))
        })
        .collect()
}

pub fn unix_listeners(pid: &str) -> std::io::Result<Vec<(String, u64)>> {
    let path = format!("/proc/{pid}/net/unix");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{path}: {e}")))?;
    Ok(parse_unix_listeners(&text))
}

/// Every process id in `/proc`.
pub fn all_pids() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<i32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    pids
}

/// For each wanted socket inode, the processes holding it. Processes whose
/// descriptors cannot be read (another user's, without root) are skipped
/// and counted.
pub fn holders(inodes: &BTreeSet<u64>) -> (BTreeMap<u64, Vec<i32>>, usize) {
    let mut found: BTreeMap<u64, Vec<i32>> = BTreeMap::new();
    let mut unreadable = 0;
    if inodes.is_empty() {
        return (found, 0);
    }
    for pid in all_pids() {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            unreadable += 1;
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let Some(inode) = socket_inode(&target.to_string_lossy()) else {
                continue;
            };
            if inodes.contains(&inode) {
                let list = found.entry(inode).or_default();
                if !list.contains(&pid) {
                    list.push(pid);
                }
            }
        }
    }
    (found, unreadable)
}

/// `socket:[12345]` -> 12345.
pub fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Of the processes sharing a listening socket (a master and the workers
/// it forked), the one whose parent is not among them: the master.
pub fn senior(pids: &[i32]) -> Option<i32> {
    let parent = |p: i32| {
        std::fs::read_to_string(format!("/proc/{p}/stat"))
            .ok()
            .and_then(|s| crate::process::parse_stat_ppid(&s))
    };
    pids.iter()
        .copied()
        .find(|&p| parent(p).is_none_or(|pp| !pids.contains(&pp)))
        .or_else(|| pids.iter().copied().min())
}

/// The local IPv4 addresses of the namespace `/proc/{pid}/net` shows, from
/// its `fib_trie` (a `|-- a.b.c.d` line followed by `/32 host LOCAL`).
pub fn local_ipv4(pid: &str) -> Vec<Ipv4Addr> {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/fib_trie")) else {
        return Vec::new();
    };
    parse_fib_trie_locals(&text)
}

pub fn parse_fib_trie_locals(text: &str) -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    let mut last: Option<Ipv4Addr> = None;
    for line in text.lines() {
        let t = line.trim_start_matches([' ', '|', '+', '-']).trim();
        if let Some(ip) = t.split_whitespace().next().and_then(|w| w.parse().ok()) {
            if line.contains("|--") {
                last = Some(ip);
                continue;
            }
        }
        if line.contains("/32 host LOCAL") {
            if let Some(ip) = last {
                if !out.contains(&ip) {
                    out.push(ip);
                }
            }
        }
    }
    out
}

#[cfg(all(test, target_endian = "little"))]
mod tests {
    use super::*;

    #[test]
    fn reads_listening_rows_with_inodes() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 31337 1 0000000005fd7fb3 100 0 0 10 0
   1: 0100007F:A2F7 0100007F:1F90 01 00000000:00000000 03:00000F21 00000000     0        0 4242 3 000000009ed8cffa
   2: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000005fd7fb3 100 0 0 10 0
";
        let l = parse_tcp_listeners(tcp);
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].local, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(l[0].inode, 31337);
        assert_eq!(
            listener_for(&l, "127.0.0.1:8080".parse().unwrap()).map(|l| l.inode),
            Some(31337)
        );
        assert_eq!(
            listener_for(&l, "10.1.2.3:80".parse().unwrap()).map(|l| l.inode),
            Some(777),
            "0.0.0.0:80 accepts on every address"
        );
        assert_eq!(listener_for(&l, "127.0.0.1:81".parse().unwrap()), None);
    }

    #[test]
    fn reads_unix_listeners() {
        let unix = "Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 23456 /run/php/php8.2-fpm.sock
0000000000000000: 00000003 00000000 00000000 0001 03 23457 /run/php/php8.2-fpm.sock
0000000000000000: 00000002 00000000 00010000 0001 01 23458 @abstract name
0000000000000000: 00000002 00000000 00000000 0002 01 23459
";
        assert_eq!(
            parse_unix_listeners(unix),
            vec![
                ("/run/php/php8.2-fpm.sock".to_string(), 23456),
                ("@abstract name".to_string(), 23458)
            ]
        );
        assert_eq!(socket_inode("socket:[23456]"), Some(23456));
        assert_eq!(socket_inode("pipe:[1]"), None);
    }

    #[test]
    fn reads_local_addresses_from_fib_trie() {
        let trie = "Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
     |-- 172.17.0.0
        /16 link UNICAST
     |-- 172.17.0.2
        /32 host LOCAL
";
        assert_eq!(
            parse_fib_trie_locals(trie),
            vec![Ipv4Addr::new(127, 0, 0, 1), Ipv4Addr::new(172, 17, 0, 2)]
        );
    }

    #[test]
    fn finds_our_own_listener_and_ourselves_holding_it() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let listeners = tcp_listeners("self").unwrap();
        let mine = listener_for(&listeners, addr).expect("our listener");
        let (found, _) = holders(&BTreeSet::from([mine.inode]));
        assert_eq!(found[&mine.inode], vec![std::process::id() as i32]);
    }
}
