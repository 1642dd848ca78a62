//! Apache httpd: `KeepAlive`, `KeepAliveTimeout` and
//! `MaxKeepAliveRequests` from its main configuration file (`-f FILE`,
//! else the distribution's path). Included files are not followed: a
//! value set only there is reported as the default, and a note says so.

use super::{seconds_ms, Recognition, Sourced};
use crate::backend_discovery::proc_info::{option_value, ProcessInfo};

pub fn recognize(p: &ProcessInfo) -> Option<Recognition> {
    let exe = p.exe_name();
    if !matches!(exe.as_str(), "apache2" | "httpd") {
        return None;
    }
    let mut r = Recognition::new("Apache httpd", Some("apache"));
    let root = option_value(&p.argv, &["-d"]);
    let conf = option_value(&p.argv, &["-f"])
        .map(|f| match (root, f.starts_with('/')) {
            (Some(d), false) => format!("{}/{f}", d.trim_end_matches('/')),
            _ => f.to_string(),
        })
        .or_else(|| {
            ["/etc/apache2/apache2.conf", "/etc/httpd/conf/httpd.conf"]
                .iter()
                .find(|c| p.in_root(std::path::Path::new(c)).is_file())
                .map(|c| c.to_string())
        });
    let Some(conf) = conf else {
        return Some(r.with_profile_defaults());
    };
    let Ok(text) = std::fs::read_to_string(p.in_root(std::path::Path::new(&conf))) else {
        r.notes.push(format!("{conf} not readable"));
        return Some(r.with_profile_defaults());
    };
    let mut keepalive_off = None;
    for (i, line) in text.lines().enumerate() {
        let mut w = line.split_whitespace();
        let (Some(key), Some(value)) = (w.next(), w.next()) else {
            continue;
        };
        let place = format!("{key} {value} in {conf}:{}", i + 1);
        match key.to_ascii_lowercase().as_str() {
            "keepalive" => keepalive_off = value.eq_ignore_ascii_case("off").then_some(place),
            "keepalivetimeout" => {
                if let Some(ms) = seconds_ms(value) {
                    r.idle_timeout_ms = Some(Sourced::new(Some(ms), place));
                }
            }
            "maxkeepaliverequests" => {
                if let Ok(n) = value.parse::<u64>() {
                    r.max_requests = Some(Sourced::new((n > 0).then_some(n), place));
                }
            }
            _ => {}
        }
    }
    if let Some(place) = keepalive_off {
        r.idle_timeout_ms = Some(Sourced::new(None, format!("{place}: no keep-alive")));
        r.max_requests = Some(Sourced::new(
            Some(1),
            format!("{place}: one request per connection"),
        ));
    }
    r.notes.push(format!(
        "read {conf} only; files it includes are not followed"
    ));
    Some(r.with_profile_defaults())
}
