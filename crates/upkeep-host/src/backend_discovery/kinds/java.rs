//! Java servers told apart by their main class: Tomcat
//! (`org.apache.catalina.startup.Bootstrap`, settings from the
//! `<Connector>` of `$CATALINA_BASE/conf/server.xml` on the port) and
//! Jetty (`org.eclipse.jetty…` or `start.jar`, `jetty.http.idleTimeout=`).
//! Other Java programs (Spring Boot jars among them) are not told apart.

use super::{Recognition, Sourced};
use crate::backend_discovery::proc_info::ProcessInfo;
use crate::backend_discovery::Endpoint;

pub fn recognize(p: &ProcessInfo, endpoint: &Endpoint) -> Option<Recognition> {
    if !p.exe_name().starts_with("java") {
        return None;
    }
    let sysprop = |name: &str| {
        p.argv
            .iter()
            .find_map(|a| a.strip_prefix(&format!("-D{name}=")))
    };
    if p.argv
        .iter()
        .any(|a| a == "org.apache.catalina.startup.Bootstrap")
    {
        let mut r = Recognition::new("Tomcat", Some("tomcat"));
        if let Some(base) = sysprop("catalina.base").or_else(|| sysprop("catalina.home")) {
            let path = format!("{base}/conf/server.xml");
            match std::fs::read_to_string(p.in_root(std::path::Path::new(&path))) {
                Ok(xml) => read_connector(&mut r, &xml, &path, endpoint),
                Err(e) => r.notes.push(format!("{path}: {e}")),
            }
        }
        return Some(r.with_profile_defaults());
    }
    let jetty = p.argv.iter().any(|a| {
        a.starts_with("org.eclipse.jetty") || a.ends_with("/start.jar") || a == "start.jar"
    });
    if jetty {
        let mut r = Recognition::new("Jetty", Some("jetty"));
        let idle = p
            .argv
            .iter()
            .find_map(|a| a.strip_prefix("jetty.http.idleTimeout="))
            .or_else(|| sysprop("jetty.http.idleTimeout"));
        if let Some(v) = idle {
            if let Ok(ms) = v.parse() {
                r.idle_timeout_ms = Some(Sourced::new(
                    Some(ms),
                    format!("jetty.http.idleTimeout={v} from argv"),
                ));
            }
        }
        return Some(r.with_profile_defaults());
    }
    None
}

/// The `<Connector …>` whose `port` is the endpoint's: `keepAliveTimeout`
/// (falling back to `connectionTimeout`, as Tomcat does) and
/// `maxKeepAliveRequests` (-1 unlimited).
fn read_connector(r: &mut Recognition, xml: &str, path: &str, endpoint: &Endpoint) {
    let Endpoint::Tcp(addr) = endpoint else {
        return;
    };
    let mut rest = xml;
    while let Some(start) = rest.find("<Connector") {
        let line = xml[..xml.len() - rest.len() + start].lines().count().max(1);
        let tail = &rest[start..];
        let end = tail.find('>').unwrap_or(tail.len());
        let tag = &tail[..end];
        rest = &tail[end..];
        if attr(tag, "port").and_then(|p| p.parse::<u16>().ok()) != Some(addr.port()) {
            continue;
        }
        let ms = |name: &str| attr(tag, name).and_then(|v| v.parse::<i64>().ok());
        let idle = ms("keepAliveTimeout")
            .map(|v| (v, "keepAliveTimeout"))
            .or_else(|| ms("connectionTimeout").map(|v| (v, "connectionTimeout")));
        if let Some((v, name)) = idle {
            r.idle_timeout_ms = Some(Sourced::new(
                (v >= 0).then_some(v as u64),
                format!("{name}=\"{v}\" in {path}:{line}"),
            ));
        }
        if let Some(n) = ms("maxKeepAliveRequests") {
            r.max_requests = Some(Sourced::new(
                (n > 0).then_some(n as u64),
                format!("maxKeepAliveRequests=\"{n}\" in {path}:{line}"),
            ));
        }
        return;
    }
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let at = tag.find(&format!("{name}=\""))? + name.len() + 2;
    let end = tag[at..].find('"')?;
    Some(&tag[at..at + end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tomcat_connector_on_the_port() {
        let xml = "<Server>\n  <Service>\n    <Connector port=\"8080\" protocol=\"HTTP/1.1\"\n               connectionTimeout=\"20000\" maxKeepAliveRequests=\"50\"/>\n    <Connector port=\"8009\" keepAliveTimeout=\"5000\"/>\n";
        let mut r = Recognition::new("Tomcat", Some("tomcat"));
        read_connector(
            &mut r,
            xml,
            "/t/conf/server.xml",
            &Endpoint::Tcp("127.0.0.1:8080".parse().unwrap()),
        );
        let idle = r.idle_timeout_ms.unwrap();
        assert_eq!(idle.value, Some(20_000));
        assert_eq!(
            idle.source,
            "connectionTimeout=\"20000\" in /t/conf/server.xml:3"
        );
        assert_eq!(r.max_requests.unwrap().value, Some(50));
    }
}
