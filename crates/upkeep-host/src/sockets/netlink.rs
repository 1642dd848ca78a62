//! The socket dump `ss` uses: a `SOCK_DIAG_BY_FAMILY` request on a
//! `NETLINK_SOCK_DIAG` socket (`linux/sock_diag.h`, `linux/inet_diag.h`),
//! answered with one `inet_diag_msg` per socket, TIME_WAIT ones included.
//!
//! Messages are encoded and decoded byte by byte at the offsets of the
//! kernel's structures rather than by casting structs, so the only `unsafe`
//! code is the four system calls.

use super::{Socket, TcpState};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const NETLINK_SOCK_DIAG: libc::c_int = 4;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLM_F_REQUEST: u16 = 0x1;
/// NLM_F_ROOT | NLM_F_MATCH.
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_HDRLEN: usize = 16;
/// `struct inet_diag_req_v2`: family, protocol, ext, pad, states (u32), and
/// a 48-byte `inet_diag_sockid`.
const REQ_LEN: usize = 56;
/// `struct inet_diag_msg` up to and including `idiag_inode`.
const MSG_LEN: usize = 72;
/// Every state from ESTABLISHED (1) to NEW_SYN_RECV (12), as `1 << state`.
const ALL_STATES: u32 = 0x1ffe;
/// A dump never waits longer than this for the kernel's next message.
const RECV_TIMEOUT_SECS: libc::time_t = 5;

/// Every TCP socket of this process's network namespace, IPv4 and IPv6.
pub(super) fn dump_tcp() -> io::Result<Vec<Socket>> {
    let fd = open()?;
    let mut sockets = Vec::new();
    for (seq, family) in [(1u32, libc::AF_INET), (2, libc::AF_INET6)] {
        send_request(&fd, seq, family as u8)?;
        receive_dump(&fd, seq, &mut sockets)?;
    }
    Ok(sockets)
}

fn open() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the returned descriptor is owned below.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            NETLINK_SOCK_DIAG,
        )
    };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `raw` is a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let timeout = libc::timeval {
        tv_sec: RECV_TIMEOUT_SECS,
        tv_usec: 0,
    };
    // SAFETY: setsockopt(2) with a pointer to a live timeval and its size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&timeout as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

fn encode_request(seq: u32, family: u8) -> Vec<u8> {
    let total = NLMSG_HDRLEN + REQ_LEN;
    let mut msg = Vec::with_capacity(total);
    msg.extend_from_slice(&(total as u32).to_ne_bytes());
    msg.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    msg.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    msg.extend_from_slice(&seq.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel
    msg.push(family);
    msg.push(libc::IPPROTO_TCP as u8);
    msg.push(0); // idiag_ext: no extra attributes
    msg.push(0);
    msg.extend_from_slice(&ALL_STATES.to_ne_bytes());
    msg.resize(total, 0); // inet_diag_sockid: all zero = no filter
    msg
}

fn send_request(fd: &OwnedFd, seq: u32, family: u8) -> io::Result<()> {
    let msg = encode_request(seq, family);
    // SAFETY: an all-zero sockaddr_nl is valid; the family is set below.
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: sendto(2) with a live buffer and address of the given sizes.
    let sent = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            msg.as_ptr().cast(),
            msg.len(),
            0,
            (&kernel as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn receive_dump(fd: &OwnedFd, seq: u32, out: &mut Vec<Socket>) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // SAFETY: recv(2) into a live buffer of the given length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "netlink dump ended without NLMSG_DONE",
            ));
        }
        if parse_datagram(&buf[..n as usize], seq, out)? {
            return Ok(());
        }
    }
}

/// Decodes one datagram of the dump; `true` once NLMSG_DONE was seen.
fn parse_datagram(mut data: &[u8], seq: u32, out: &mut Vec<Socket>) -> io::Result<bool> {
    while data.len() >= NLMSG_HDRLEN {
        let len = u32_at(data, 0) as usize;
        if len < NLMSG_HDRLEN || len > data.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "malformed netlink message",
            ));
        }
        let kind = u16::from_ne_bytes([data[4], data[5]]);
        let msg_seq = u32_at(data, 8);
        let payload = &data[NLMSG_HDRLEN..len];
        if msg_seq == seq {
            match kind {
                NLMSG_DONE => return Ok(true),
                NLMSG_ERROR => {
                    let code = if payload.len() >= 4 {
                        i32::from_ne_bytes([payload[0], payload[1], payload[2], payload[3]])
                    } else {
                        -libc::EIO
                    };
                    if code != 0 {
                        return Err(io::Error::from_raw_os_error(-code));
                    }
                }
                SOCK_DIAG_BY_FAMILY => {
                    if let Some(s) = parse_inet_diag_msg(payload) {
                        out.push(s);
                    }
                }
                _ => {}
            }
        }
        let advance = (len + 3) & !3;
        data = data.get(advance..).unwrap_or(&[]);
    }
    Ok(false)
}

/// `struct inet_diag_msg`: family (0), state (1), timer, retrans, then
/// `inet_diag_sockid` at 4: sport (be16), dport (be16), src[16], dst[16].
fn parse_inet_diag_msg(p: &[u8]) -> Option<Socket> {
    if p.len() < MSG_LEN {
        return None;
    }
    let family = p[0] as libc::c_int;
    let state = TcpState::from_code(p[1])?;
    let sport = u16::from_be_bytes([p[4], p[5]]);
    let dport = u16::from_be_bytes([p[6], p[7]]);
    let ip = |at: usize| -> Option<IpAddr> {
        match family {
            libc::AF_INET => Some(IpAddr::V4(Ipv4Addr::new(
                p[at],
                p[at + 1],
                p[at + 2],
                p[at + 3],
            ))),
            libc::AF_INET6 => {
                let bytes: [u8; 16] = p[at..at + 16].try_into().ok()?;
                Some(IpAddr::V6(Ipv6Addr::from(bytes)))
            }
            _ => None,
        }
    };
    Some(Socket {
        local: SocketAddr::new(ip(8)?, sport),
        remote: SocketAddr::new(ip(24)?, dport),
        state,
    })
}

fn u32_at(data: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_has_the_kernel_layout() {
        let r = encode_request(7, libc::AF_INET as u8);
        assert_eq!(r.len(), 72);
        assert_eq!(u32_at(&r, 0), 72);
        assert_eq!(u16::from_ne_bytes([r[4], r[5]]), 20);
        assert_eq!(u16::from_ne_bytes([r[6], r[7]]), 0x301);
        assert_eq!(u32_at(&r, 8), 7);
        assert_eq!(r[16], libc::AF_INET as u8);
        assert_eq!(r[17], 6);
        assert_eq!(u32_at(&r, 20), ALL_STATES);
    }

    #[test]
    fn decodes_a_time_wait_message_and_done() {
        let mut msg = vec![0u8; NLMSG_HDRLEN + MSG_LEN];
        msg[..4].copy_from_slice(&((NLMSG_HDRLEN + MSG_LEN) as u32).to_ne_bytes());
        msg[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        msg[8..12].copy_from_slice(&3u32.to_ne_bytes());
        let p = NLMSG_HDRLEN;
        msg[p] = libc::AF_INET as u8;
        msg[p + 1] = 6;
        msg[p + 4..p + 6].copy_from_slice(&40000u16.to_be_bytes());
        msg[p + 6..p + 8].copy_from_slice(&8080u16.to_be_bytes());
        msg[p + 8..p + 12].copy_from_slice(&[127, 0, 0, 1]);
        msg[p + 24..p + 28].copy_from_slice(&[10, 0, 0, 2]);
        let mut done = vec![0u8; NLMSG_HDRLEN + 4];
        done[..4].copy_from_slice(&((NLMSG_HDRLEN + 4) as u32).to_ne_bytes());
        done[4..6].copy_from_slice(&NLMSG_DONE.to_ne_bytes());
        done[8..12].copy_from_slice(&3u32.to_ne_bytes());
        msg.extend_from_slice(&done);

        let mut out = Vec::new();
        assert!(parse_datagram(&msg, 3, &mut out).unwrap());
        assert_eq!(
            out,
            vec![Socket {
                local: "127.0.0.1:40000".parse().unwrap(),
                remote: "10.0.0.2:8080".parse().unwrap(),
                state: TcpState::TimeWait,
            }]
        );
    }

    #[test]
    fn reports_kernel_errors_and_bad_lengths() {
        let mut err = vec![0u8; NLMSG_HDRLEN + 4];
        err[..4].copy_from_slice(&((NLMSG_HDRLEN + 4) as u32).to_ne_bytes());
        err[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        err[8..12].copy_from_slice(&1u32.to_ne_bytes());
        err[16..20].copy_from_slice(&(-libc::EPERM).to_ne_bytes());
        let e = parse_datagram(&err, 1, &mut Vec::new()).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM));

        let mut bad = err.clone();
        bad[..4].copy_from_slice(&1000u32.to_ne_bytes());
        assert!(parse_datagram(&bad, 1, &mut Vec::new()).is_err());
    }

    #[test]
    fn dumps_this_namespace() {
        // A listening socket of our own must be in the dump.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let sockets = dump_tcp().unwrap();
        assert!(sockets
            .iter()
            .any(|s| s.local == addr && s.state == TcpState::Listen));
    }
}
