//! Filling a config template with one phase's addresses and paths.

use crate::plan::{placeholder, ConfigFile};
use std::collections::HashMap;
use std::net::SocketAddr;

pub struct Addresses {
    pub listen: SocketAddr,
    /// Where the lab's stub_status server listens; `None` when the binary
    /// has no stub_status module.
    pub status: Option<SocketAddr>,
    pub status_path: String,
    /// Address nginx must use for each server slot (a relay or a backend).
    pub servers: HashMap<String, SocketAddr>,
    pub temp_paths: String,
}

pub fn render(files: &[ConfigFile], a: &Addresses) -> Result<Vec<ConfigFile>, String> {
    files
        .iter()
        .map(|f| {
            Ok(ConfigFile {
                path: f.path.clone(),
                text: render_text(&f.text, a).map_err(|e| format!("{}: {e}", f.path))?,
            })
        })
        .collect()
}

fn render_text(text: &str, a: &Addresses) -> Result<String, String> {
    let mut out = text
        .replace(placeholder::LISTEN, &a.listen.to_string())
        .replace(placeholder::STATUS_SERVER, &status_server(a))
        .replace(placeholder::TEMP_PATHS, a.temp_paths.trim_end());
    while let Some(start) = out.find(placeholder::SERVER_PREFIX) {
        let key_start = start + placeholder::SERVER_PREFIX.len();
        let end = out[key_start..]
            .find('@')
            .map(|i| key_start + i)
            .ok_or_else(|| "unterminated @SERVER: placeholder".to_string())?;
        let key = &out[key_start..end];
        let addr = a
            .servers
            .get(key)
            .ok_or_else(|| format!("no backend for placeholder @SERVER:{key}@"))?;
        out.replace_range(start..=end, &addr.to_string());
    }
    Ok(out)
}

fn status_server(a: &Addresses) -> String {
    match a.status {
        Some(addr) => format!(
            "# The lab's own status page.\n    server {{\n        listen {addr};\n        location = {} {{\n            stub_status;\n        }}\n    }}",
            a.status_path
        ),
        None => "# (no stub_status module in this nginx: the lab reads no status page)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_every_placeholder() {
        let a = Addresses {
            listen: "127.0.0.1:8080".parse().unwrap(),
            status: Some("127.0.0.1:8081".parse().unwrap()),
            status_path: "/s".to_string(),
            servers: [("app".to_string(), "127.0.0.1:9000".parse().unwrap())]
                .into_iter()
                .collect(),
            temp_paths: "proxy_temp_path /p/t;\n".to_string(),
        };
        let files = vec![ConfigFile {
            path: "nginx.conf".into(),
            text: "listen @LISTEN@; @TEMP_PATHS@ server @SERVER:app@ max_fails=1;".into(),
        }];
        let out = render(&files, &a).unwrap();
        assert_eq!(
            out[0].text,
            "listen 127.0.0.1:8080; proxy_temp_path /p/t; server 127.0.0.1:9000 max_fails=1;"
        );
        let bad = vec![ConfigFile {
            path: "x.conf".into(),
            text: "server @SERVER:nope@;".into(),
        }];
        assert!(render(&bad, &a).unwrap_err().contains("x.conf"));
    }
}
