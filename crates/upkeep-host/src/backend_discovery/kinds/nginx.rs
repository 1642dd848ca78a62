//! Another nginx as the backend: its master's title names its
//! configuration (`nginx: master process /usr/sbin/nginx -c FILE -p DIR`);
//! the `keepalive_timeout` and `keepalive_requests` of the server that
//! listens on the address (or of `http`) are what it does with clients.

use super::{Recognition, Sourced};
use crate::backend_discovery::proc_info::ProcessInfo;
use crate::backend_discovery::Endpoint;
use upkeep_config::{ConfigSet, LoadOptions};
use upkeep_syntax::Directive;

pub fn recognize(p: &ProcessInfo, title: &str, endpoint: &Endpoint) -> Option<Recognition> {
    if !title.starts_with("nginx: ") {
        return None;
    }
    let mut r = Recognition::new("nginx", Some("nginx"));
    let words: Vec<&str> = title.split_whitespace().collect();
    let flag = |f: &str| {
        words
            .iter()
            .position(|w| *w == f)
            .and_then(|i| words.get(i + 1))
            .map(|s| s.to_string())
    };
    let prefix = flag("-p");
    let conf = flag("-c")
        .map(|c| match (&prefix, c.starts_with('/')) {
            (Some(p), false) => format!("{}/{c}", p.trim_end_matches('/')),
            _ => c,
        })
        .or_else(|| built_conf_path(p.pid));
    let Some(conf) = conf else {
        r.notes
            .push("its configuration file is not named in its title nor by `nginx -V`".into());
        return Some(r.with_profile_defaults());
    };
    let path = p.in_root(std::path::Path::new(&conf));
    let opts = LoadOptions {
        prefix: prefix.clone(),
        ..LoadOptions::default()
    };
    match ConfigSet::load_path(&path.to_string_lossy(), &opts) {
        Ok(set) => read_settings(&mut r, &set, endpoint),
        Err(e) => r.notes.push(format!("{conf}: {}", e.render().trim())),
    }
    Some(r.with_profile_defaults())
}

/// `--conf-path=` of the process's binary (`nginx -V`), bounded to 2 s.
fn built_conf_path(pid: i32) -> Option<String> {
    let out = std::process::Command::new(format!("/proc/{pid}/exe"))
        .arg("-V")
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    text.split_whitespace()
        .find_map(|w| w.strip_prefix("--conf-path="))
        .map(|s| s.trim_matches('\'').to_string())
}

fn read_settings(r: &mut Recognition, set: &ConfigSet, endpoint: &Endpoint) {
    let root = set.root();
    let Some(http) = root.iter().find(|d| d.name_is("http")) else {
        return;
    };
    let http_body = set.expand(http.block().map(|b| &b.nodes[..]).unwrap_or(&[]));
    let server = http_body.iter().find(|d| {
        d.name_is("server")
            && d.block().is_some_and(|b| {
                let body = set.expand(&b.nodes);
                let listens: Vec<&&Directive> =
                    body.iter().filter(|l| l.name_is("listen")).collect();
                if listens.is_empty() {
                    return matches!(endpoint, Endpoint::Tcp(a) if a.port() == 80);
                }
                listens.iter().any(|l| {
                    l.arg(0)
                        .is_some_and(|a| listen_matches(&a.text(), endpoint))
                })
            })
    });
    let server_body = server
        .and_then(|s| s.block())
        .map(|b| set.expand(&b.nodes))
        .unwrap_or_default();
    let place = |d: &Directive| {
        let f = set.file(d.span().file);
        format!("{}:{}", f.path, f.line_col(d.span().start).line)
    };
    let find = |name: &str| {
        server_body
            .iter()
            .rev()
            .find(|d| d.name_is(name))
            .or_else(|| http_body.iter().rev().find(|d| d.name_is(name)))
            .copied()
    };
    if let Some(d) = find("keepalive_timeout") {
        if let Some(ms) = d
            .arg(0)
            .and_then(|a| upkeep_facts::parse_duration(&a.text()).ok())
        {
            let value = (ms > 0).then_some(ms);
            r.idle_timeout_ms = Some(Sourced::new(
                value,
                format!(
                    "keepalive_timeout {} at {}",
                    d.arg(0).unwrap().text(),
                    place(d)
                ),
            ));
            if ms == 0 {
                r.max_requests = Some(Sourced::new(
                    Some(1),
                    format!("keepalive_timeout 0 at {}: no keep-alive", place(d)),
                ));
            }
        }
    }
    if let Some(d) = find("keepalive_requests") {
        if let Some(n) = d.arg(0).and_then(|a| a.text().parse().ok()) {
            r.max_requests.get_or_insert(Sourced::new(
                Some(n),
                format!("keepalive_requests {n} at {}", place(d)),
            ));
        }
    }
}

fn listen_matches(listen: &str, endpoint: &Endpoint) -> bool {
    match endpoint {
        Endpoint::Unix(path) => listen.strip_prefix("unix:") == Some(path.as_str()),
        Endpoint::Tcp(addr) => {
            let (host, port) = match listen.rsplit_once(':') {
                Some((h, p)) if !h.ends_with(':') || h.starts_with('[') => (h, p),
                _ => ("", listen),
            };
            if port.parse::<u16>().ok() != Some(addr.port()) {
                return false;
            }
            match host.trim_matches(['[', ']']) {
                "" | "*" | "0.0.0.0" | "::" => true,
                "localhost" => addr.ip().is_loopback(),
                h => h.parse::<std::net::IpAddr>().ok() == Some(addr.ip()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_listening_servers_keepalive_settings() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("nginx.conf");
        std::fs::write(
            &conf,
            "events {}\nhttp {\n  keepalive_timeout 30s;\n  server { listen 127.0.0.1:8081; }\n  server { listen 8082;\n    keepalive_timeout 3s;\n    keepalive_requests 7;\n  }\n}\n",
        )
        .unwrap();
        let title = format!(
            "nginx: master process /usr/sbin/nginx -c {}",
            conf.display()
        );
        let p = ProcessInfo {
            pid: std::process::id() as i32,
            argv: vec![title.clone()],
            ..ProcessInfo::default()
        };
        let ep = |s: &str| Endpoint::Tcp(s.parse().unwrap());
        let r = recognize(&p, &title, &ep("127.0.0.1:8082")).unwrap();
        let idle = r.idle_timeout_ms.unwrap();
        assert_eq!(idle.value, Some(3000));
        assert_eq!(
            idle.source,
            format!("keepalive_timeout 3s at {}:6", conf.display())
        );
        assert_eq!(r.max_requests.unwrap().value, Some(7));
        let r = recognize(&p, &title, &ep("127.0.0.1:8081")).unwrap();
        assert_eq!(r.idle_timeout_ms.unwrap().value, Some(30_000));
        let m = r.max_requests.unwrap();
        assert_eq!(m.value, Some(1000));
        assert!(m.source.contains("default"), "{}", m.source);
    }
}
