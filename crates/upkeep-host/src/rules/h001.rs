use std::collections::BTreeMap;

use upkeep_diag::Severity;
use upkeep_rules::RuleInfo;

use super::{count, seconds, Measured, Ranked};
use crate::live_config::Backend;

/// H001 fires when the TIME_WAIT sockets of an address outnumber its
/// established connections by more than this factor…
pub const TIME_WAIT_RATIO: u64 = 10;
/// … and there are at least this many (a quiet host closing a few
/// connections is no pile-up).
pub const MIN_TIME_WAIT: u64 = 50;

pub const INFO: RuleInfo = RuleInfo {
    id: "H001",
    name: "time-wait-pileup",
    severity: Severity::Warning,
    fixable: false,
    summary:
        "TIME_WAIT sockets towards an upstream address far outnumber its established connections.",
    doc: r#"## What it finds
Measured by `upkeep doctor`: the TIME_WAIT sockets of connections to one
backend address (ip:port of an `upstream` server, or of a `proxy_pass` to an
address) exceed 10 × its ESTABLISHED connections, and number at least 50.
Sockets are read like `ss` does (netlink sock_diag; /proc/net/tcp as the
fallback). TIME_WAIT sockets have no owning process, so the count is
host-wide for that address; when the backend runs on the same host, the
TIME_WAIT sockets at its end of the connections count too.

## Why it breaks reuse
A TCP connection that is closed leaves a TIME_WAIT socket behind on the side
that closed first, for 60 s on Linux. A pool of reused connections shows a
few ESTABLISHED sockets and almost no TIME_WAIT; a proxy that opens a
connection per request shows the opposite: one TIME_WAIT per request of the
last minute. That costs a handshake per request, ephemeral ports on the
nginx host (H002) and, at the backend, an accept per request.

nginx opens a connection per request when the upstream has no idle pool
(no `keepalive` before nginx 1.29.7, `keepalive 0`, or a `keepalive` lost to
a balancer written after it before 1.29.7: rules U001, U006), when the route
sends `Connection: close` or speaks HTTP/1.0 (U002, U003), when
`proxy_pass` names an address instead of an upstream block (U010), and even
with a pool when the backend answers with `Connection: close` or an HTTP/1.0
status line, or sends a body without length.
Connections beyond the pool size are closed after use.

## Example
`upstream app { server 10.0.0.5:8080; }` with no `keepalive`, at 100
requests/s: about 6000 TIME_WAIT sockets towards 10.0.0.5:8080 and one or two
ESTABLISHED.

## Fix
Give the upstream an idle pool and make the route keep connections open
(`keepalive 32;` in the upstream; before 1.29.7 also `proxy_http_version
1.1;` and `proxy_set_header Connection "";`). With a pool already there,
check what the backend does (`upkeep probe`) and whether `keepalive` is below
the number of connections one worker uses at peak.

## References
- nginx source: src/http/modules/ngx_http_upstream_keepalive_module.c, `ngx_http_upstream_free_keepalive_peer()` (when a connection is not cached; LRU eviction when the pool is full)
- https://nginx.org/en/docs/http/ngx_http_upstream_module.html#keepalive
"#,
};

pub fn evaluate(m: &Measured<'_>) -> Vec<Ranked> {
    let census = &m.sampling.census_end;
    // Group tripping addresses by what points at them (an upstream, or a
    // direct proxy_pass), one finding per group.
    let mut groups: BTreeMap<String, Vec<&Backend>> = BTreeMap::new();
    for b in &m.live.backends {
        let c = census.get(&b.addr);
        let tw = c.time_wait_total();
        if tw >= MIN_TIME_WAIT && tw > TIME_WAIT_RATIO * c.established {
            groups.entry(group_of(b)).or_default().push(b);
        }
    }
    let mut out = Vec::new();
    for (group, backends) in groups {
        let tw: u64 = backends
            .iter()
            .map(|b| census.get(&b.addr).time_wait_total())
            .sum();
        let est: u64 = backends
            .iter()
            .map(|b| census.get(&b.addr).established)
            .sum();
        let mut f = INFO.finding(format!(
            "{} towards {group} against {} established: connections to it are not being reused",
            count(tw, "TIME_WAIT socket", "TIME_WAIT sockets"),
            est
        ));
        for b in &backends {
            let c = census.get(&b.addr);
            let new = m
                .sampling
                .new_connections
                .get(&b.addr)
                .copied()
                .unwrap_or(0);
            let mut line = format!(
                "{}: {} TIME_WAIT ({} at nginx's end, {} at the backend's end), {} ESTABLISHED",
                b.addr,
                c.time_wait_total(),
                c.time_wait,
                c.backend_end_time_wait,
                c.established
            );
            if m.sampling.polls > 1 {
                line.push_str(&format!(
                    ", {} in the {} window",
                    count(new, "new connection", "new connections"),
                    seconds(m.sampling.elapsed)
                ));
            }
            f = f.note(line);
        }
        f = f.note(format!(
            "threshold: more than {TIME_WAIT_RATIO} TIME_WAIT sockets per ESTABLISHED connection, and at least {MIN_TIME_WAIT}; a closed connection stays in TIME_WAIT for 60 s on Linux"
        ));
        let first = backends[0];
        f = f.note(format!(
            "{} is written at {}",
            first.written,
            m.place(first.span)
        ));
        f = f.help(help_for(first, m));
        out.push(Ranked {
            finding: f,
            evidence: tw,
            measured: true,
        });
    }
    out
}

pub(crate) fn group_of(b: &Backend) -> String {
    match b.upstreams.as_slice() {
        [] => format!("`proxy_pass {}`", b.written),
        [one] => format!("upstream `{one}`"),
        many => format!("upstreams `{}`", many.join("`, `")),
    }
}

fn help_for(b: &Backend, m: &Measured<'_>) -> String {
    if b.upstreams.is_empty() {
        return "`proxy_pass` to an address keeps no idle pool: point it at an `upstream` block with `keepalive` (rule U010 shows where)".to_string();
    }
    let name = &b.upstreams[0];
    if !b.pooled {
        let extra = if m.version < upkeep_facts::landmarks::KEEPALIVE_BY_DEFAULT {
            " together with `proxy_http_version 1.1;` and `proxy_set_header Connection \"\";` on the routes"
        } else {
            ""
        };
        return format!(
            "upstream `{name}` has no working idle pool on nginx {}: add `keepalive 32;` to it{extra} (rules U001–U003, U006)",
            m.version
        );
    }
    format!(
        "upstream `{name}` has a pool of {} per worker: raise `keepalive` above the connections one worker uses at peak (connections beyond the pool are closed after use), and check with `upkeep probe` that the backend keeps connections open",
        b.pool_size
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::fixture::*;
    use crate::sockets::AddressCount;

    const CONF: &str = "events {}\nhttp {\n    upstream app { server 10.0.0.1:8080; server 10.0.0.2:8080; }\n    upstream pooled { server 10.0.0.3:80; keepalive 16; }\n    server { location / { proxy_pass http://app; } location /p/ { proxy_pass http://pooled; } location /d/ { proxy_pass http://10.0.0.9:9000; } }\n}\n";

    fn run(counts: &[(&str, AddressCount)]) -> Vec<Ranked> {
        let config = config(CONF);
        let live = live(&config);
        let sampling = sampling(counts, &[], 3);
        let sysctls = sysctls((32768, 60999));
        evaluate(&Measured {
            config: &config,
            version: VERSION,
            live: &live,
            sampling: &sampling,
            sysctls: &sysctls,
            processes: None,
            logs: None,
        })
    }

    fn tw(time_wait: u64, established: u64) -> AddressCount {
        AddressCount {
            time_wait,
            established,
            ..AddressCount::default()
        }
    }

    #[test]
    fn fires_per_upstream_above_the_ratio_and_the_floor() {
        let r = run(&[
            ("10.0.0.1:8080", tw(400, 2)),
            ("10.0.0.2:8080", tw(300, 0)),
            ("10.0.0.3:80", tw(51, 5)),
        ]);
        assert_eq!(r.len(), 2, "{r:#?}");
        let app = &r[0].finding;
        assert_eq!(
            app.message,
            "700 TIME_WAIT sockets towards upstream `app` against 2 established: connections to it are not being reused"
        );
        assert_eq!(r[0].evidence, 700);
        assert!(app
            .help
            .as_deref()
            .unwrap()
            .contains("no working idle pool on nginx 1.22.1"));
        let pooled = &r[1].finding;
        assert!(pooled
            .message
            .starts_with("51 TIME_WAIT sockets towards upstream `pooled`"));
        assert!(pooled
            .help
            .as_deref()
            .unwrap()
            .contains("pool of 16 per worker"));
    }

    #[test]
    fn stays_quiet_below_either_threshold() {
        // 10 × established is not exceeded; fewer than 50.
        assert!(run(&[("10.0.0.1:8080", tw(100, 10)), ("10.0.0.2:8080", tw(49, 0))]).is_empty());
    }

    #[test]
    fn counts_the_backend_end_and_names_direct_targets() {
        let c = AddressCount {
            time_wait: 10,
            backend_end_time_wait: 60,
            ..AddressCount::default()
        };
        let r = run(&[("10.0.0.9:9000", c)]);
        assert_eq!(r.len(), 1);
        assert!(r[0]
            .finding
            .message
            .starts_with("70 TIME_WAIT sockets towards `proxy_pass http://10.0.0.9:9000`"));
        assert!(r[0].finding.help.as_deref().unwrap().contains("U010"));
    }
}
