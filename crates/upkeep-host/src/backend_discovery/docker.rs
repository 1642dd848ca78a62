//! Ports published by Docker: the host port belongs to `docker-proxy`,
//! whose arguments name the container's address (`-container-ip
//! 172.17.0.2 -container-port 80`). The container's listening socket is in
//! the container's network namespace, which `/proc/PID/net` of any of its
//! processes shows; its holder is then found like any other.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use super::listeners;
use super::proc_info::{option_value, ProcessInfo};
use super::{kinds, Endpoint, Found, Listener};

pub fn is_proxy(p: &ProcessInfo) -> bool {
    let base = |s: &str| s.rsplit('/').next().unwrap_or(s).to_string();
    p.exe_name() == "docker-proxy" || p.argv.iter().take(2).any(|a| base(a) == "docker-proxy")
}

/// The container address in a docker-proxy's arguments.
pub fn container_address(p: &ProcessInfo) -> Option<SocketAddr> {
    let ip: IpAddr = option_value(&p.argv, &["-container-ip", "--container-ip"])?
        .parse()
        .ok()?;
    let port: u16 = option_value(&p.argv, &["-container-port", "--container-port"])?
        .parse()
        .ok()?;
    Some(SocketAddr::new(ip, port))
}

pub fn follow(proxy: &ProcessInfo) -> Listener {
    let Some(container) = container_address(proxy) else {
        return Listener::NotFound(format!(
            "docker-proxy pid {} without a container address in its arguments",
            proxy.pid
        ));
    };
    let unknown = Listener::Docker {
        proxy_pid: proxy.pid,
        container,
        process: None,
    };
    // One process per network namespace is enough to read its tables.
    let mut by_ns: BTreeMap<String, i32> = BTreeMap::new();
    for pid in listeners::all_pids() {
        if let Ok(ns) = std::fs::read_link(format!("/proc/{pid}/ns/net")) {
            by_ns
                .entry(ns.to_string_lossy().into_owned())
                .or_insert(pid);
        }
    }
    for pid in by_ns.values() {
        let ns = pid.to_string();
        let Ok(tcp) = listeners::tcp_listeners(&ns) else {
            continue;
        };
        let Some(l) = listeners::listener_for(&tcp, container) else {
            continue;
        };
        // A wildcard listener counts only in the namespace that owns the
        // container's address.
        let exact = super::super::sockets::canonical(l.local) == container;
        let owns = match container.ip() {
            IpAddr::V4(v4) => listeners::local_ipv4(&ns).contains(&v4),
            IpAddr::V6(_) => false,
        };
        if !exact && !owns {
            continue;
        }
        let (holders, _) = listeners::holders(&BTreeSet::from([l.inode]));
        let Some(pid) = holders.get(&l.inode).and_then(|p| listeners::senior(p)) else {
            return unknown;
        };
        let Some(mut info) = ProcessInfo::read(pid) else {
            return unknown;
        };
        info.sharing = holders[&l.inode]
            .iter()
            .copied()
            .filter(|&p| p != pid)
            .collect();
        let recognition = kinds::recognize(&info, &Endpoint::Tcp(container));
        return Listener::Docker {
            proxy_pid: proxy.pid,
            container,
            process: Some(Box::new(Found {
                process: info,
                recognition,
            })),
        };
    }
    unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_container_address() {
        let p = ProcessInfo {
            argv: "/usr/bin/docker-proxy -proto tcp -host-ip 0.0.0.0 -host-port 8080 -container-ip 172.17.0.2 -container-port 80"
                .split(' ')
                .map(str::to_string)
                .collect(),
            ..ProcessInfo::default()
        };
        assert!(is_proxy(&p));
        assert_eq!(
            container_address(&p),
            Some("172.17.0.2:80".parse().unwrap())
        );
    }
}
