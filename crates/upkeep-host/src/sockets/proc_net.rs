//! `/proc/net/tcp` and `/proc/net/tcp6`: the text tables the kernel prints
//! (`net/ipv4/tcp_ipv4.c:get_tcp4_sock`, `get_timewait4_sock`, and their
//! IPv6 twins). Slower than netlink on a busy host, but always there.
//!
//! An address is printed as the 32-bit words of the network-order address,
//! each read as a native integer and printed with `%08X`; the port is
//! printed after `ntohs`, so it reads as plain hex.

use super::{Socket, TcpState};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Reads `DIR/tcp` and `DIR/tcp6` (a missing `tcp6`, in a kernel without
/// IPv6, is no error).
pub(super) fn read_tables(dir: &str) -> io::Result<Vec<Socket>> {
    let mut sockets = Vec::new();
    for name in ["tcp", "tcp6"] {
        let path = format!("{dir}/{name}");
        match std::fs::read_to_string(&path) {
            Ok(text) => sockets.extend(parse_proc_net_tcp(&text)),
            Err(e) if e.kind() == io::ErrorKind::NotFound && name == "tcp6" => {}
            Err(e) => return Err(io::Error::new(e.kind(), format!("{path}: {e}"))),
        }
    }
    Ok(sockets)
}

/// The sockets of one table's text (header line included or not). Lines of
/// another shape are skipped.
pub fn parse_proc_net_tcp(text: &str) -> Vec<Socket> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Socket> {
    let mut fields = line.split_whitespace();
    let slot = fields.next()?;
    if !slot.ends_with(':') {
        return None; // the header
    }
    let local = parse_addr(fields.next()?)?;
    let remote = parse_addr(fields.next()?)?;
    let state = TcpState::from_code(u8::from_str_radix(fields.next()?, 16).ok()?)?;
    Some(Socket {
        local,
        remote,
        state,
    })
}

/// `0100007F:1F90` or `00000000000000000000000001000000:1F90`.
pub(crate) fn parse_addr(field: &str) -> Option<SocketAddr> {
    let (addr, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |hex: &str| u32::from_str_radix(hex, 16).ok().map(u32::to_ne_bytes);
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(addr)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(addr.get(i * 8..i * 8 + 8)?)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(all(test, target_endian = "little"))]
mod tests {
    use super::*;

    // Captured on an x86-64 Debian 12 host.
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1658 1 0000000005fd7fb3 100 0 0 10 0
   1: 0100007F:A2F7 0100007F:B142 06 00000000:00000000 03:00000F21 00000000     0        0 0 3 000000009ed8cffa
   2: 0100007F:A2F7 0100007F:B16E 06 00000000:00000000 03:00000F85 00000000     0        0 0 3 00000000394c9f3c
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:B251 00000000000000000000000000000000:0000 0A 00000000:00000001 00:00000000 00000000     0        0 124672 2 000000005aa43fa5 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:BF21 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 124673 1 0000000001ce33a8 100 0 0 10 0
   2: 00000000000000000000000001000000:81D0 00000000000000000000000001000000:B251 01 00000000:00000000 00:00000000 00000000     0        0 124674 2 000000008de97ff8 20 0 0 10 -1
";

    #[test]
    fn reads_ipv4_table() {
        let s = parse_proc_net_tcp(TCP);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].local, "0.0.0.0:2024".parse().unwrap());
        assert_eq!(s[0].state, TcpState::Listen);
        assert_eq!(s[1].local, "127.0.0.1:41719".parse().unwrap());
        assert_eq!(s[1].remote, "127.0.0.1:45378".parse().unwrap());
        assert_eq!(s[1].state, TcpState::TimeWait);
    }

    #[test]
    fn reads_ipv6_table_with_mapped_addresses() {
        let s = parse_proc_net_tcp(TCP6);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].local, "[::1]:45649".parse().unwrap());
        assert_eq!(s[1].local, "[::ffff:127.0.0.1]:48929".parse().unwrap());
        assert_eq!(
            super::super::canonical(s[1].local),
            "127.0.0.1:48929".parse().unwrap()
        );
        assert_eq!(s[2].remote, "[::1]:45649".parse().unwrap());
        assert_eq!(s[2].state, TcpState::Established);
    }

    #[test]
    fn skips_garbage() {
        assert!(parse_proc_net_tcp("garbage\n 0: zz:1 00:00 01\n 1: 0100007F:1F90\n").is_empty());
    }
}
