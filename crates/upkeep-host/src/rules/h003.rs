use upkeep_diag::Severity;
use upkeep_rules::RuleInfo;

use super::{count, seconds, Measured, Ranked};

/// Client side: requests per handled connection below this is broken reuse.
pub const MIN_CLIENT_REQUESTS_PER_CONNECTION: f64 = 2.0;
/// Upstream side: client requests per new upstream connection below this.
pub const MIN_UPSTREAM_REQUESTS_PER_CONNECTION: f64 = 10.0;
/// Fewer client connections than this in the window say nothing.
pub const MIN_CLIENT_CONNECTIONS: u64 = 20;
/// Fewer new upstream connections than this in the window say nothing.
pub const MIN_NEW_UPSTREAM_CONNECTIONS: u64 = 10;

pub const INFO: RuleInfo = RuleInfo {
    id: "H003",
    name: "reuse-ratio-low",
    severity: Severity::Warning,
    fixable: false,
    summary:
        "Few requests per connection: on the client side (stub_status) or towards the backends.",
    doc: r#"## What it finds
Measured by `upkeep doctor` over its sampling window (`--sample`, 5 s by
default):

* client side: the stub_status `requests` counter grew by less than 2 × the
  `handled` counter (at least 20 connections in the window);
* upstream side: the client requests of the window (stub_status) divided by
  the new connections towards backend addresses (socket census, polled every
  200 ms) is below 10 (at least 10 new connections in the window).

The two requests doctor makes to stub_status itself are left out.

## Why it breaks reuse
stub_status counts `handled` once per accepted client connection and
`requests` once per request, so their growth ratio
is the mean number of requests per client connection. Near 1, clients (or
the load balancer in front) open a connection per request: `keepalive_timeout
0` (C002), a very low `keepalive_requests` (C001), or clients sending
`Connection: close`.

Towards the backends, every new connection is a handshake that a pooled
connection would have saved. The count of client requests includes requests
nginx serves itself, so with pooling broken the real ratio of proxied
requests per new upstream connection is at most what is shown; subrequests
(auth_request, SSI) and retries are not in stub_status's count.

## Example
`keepalive_timeout 0;` in the server: 1.0 requests per client connection.
An upstream without `keepalive`: 1.0 request per new upstream connection.

## Fix
Client side: a `keepalive_timeout` longer than the idle timeout of whatever
sends requests (C002, C003) and `keepalive_requests 1000` (C001). Upstream
side: an idle pool on every upstream (U001–U003, H001).

## References
- https://nginx.org/en/docs/http/ngx_http_stub_status_module.html; nginx source: src/http/modules/ngx_http_stub_status_module.c, `ngx_http_stub_status_handler()`
"#,
};

pub fn evaluate(m: &Measured<'_>) -> Vec<Ranked> {
    let Some(delta) = m.sampling.status else {
        return Vec::new();
    };
    let window = seconds(m.sampling.elapsed);
    let requests = delta.requests();
    let connections = delta.connections();
    let mut out = Vec::new();

    if connections >= MIN_CLIENT_CONNECTIONS {
        let ratio = requests as f64 / connections as f64;
        if ratio < MIN_CLIENT_REQUESTS_PER_CONNECTION {
            let f = INFO
                .finding(format!(
                    "{ratio:.2} requests per client connection over {window}: clients are not reusing connections to nginx"
                ))
                .note(format!(
                    "stub_status: {} and {} in the window (handled {} -> {}, requests {} -> {}, the second stub_status request left out)",
                    count(requests, "request", "requests"),
                    count(connections, "handled connection", "handled connections"),
                    delta.start.handled,
                    delta.end.handled,
                    delta.start.requests,
                    delta.end.requests
                ))
                .note(format!(
                    "threshold: fewer than {MIN_CLIENT_REQUESTS_PER_CONNECTION} requests per connection, with at least {MIN_CLIENT_CONNECTIONS} connections in the window"
                ))
                .help("let clients keep connections open: `keepalive_timeout` longer than the idle timeout of whatever sends requests (not 0) and `keepalive_requests 1000` (rules C001-C003); check whether clients or the load balancer send `Connection: close`");
            out.push(Ranked {
                finding: f,
                evidence: connections,
                measured: true,
            });
        }
    }

    let new_upstream = m.sampling.new_connections_total();
    if m.sampling.polls > 1 && new_upstream >= MIN_NEW_UPSTREAM_CONNECTIONS {
        let ratio = requests as f64 / new_upstream as f64;
        if ratio < MIN_UPSTREAM_REQUESTS_PER_CONNECTION {
            let mut f = INFO
                .finding(format!(
                    "at most {ratio:.2} requests per new upstream connection over {window}: connections to the backends are not being reused"
                ))
                .note(format!(
                    "{} towards backend addresses appeared in the window ({} socket censuses), against {} (stub_status)",
                    count(new_upstream, "new connection", "new connections"),
                    m.sampling.polls,
                    count(requests, "client request", "client requests")
                ));
            for (addr, n) in m.sampling.new_connections.iter().filter(|(_, n)| **n > 0) {
                f = f.note(format!(
                    "{addr}: {}",
                    count(*n, "new connection", "new connections")
                ));
            }
            f = f
                .note(format!(
                    "threshold: fewer than {MIN_UPSTREAM_REQUESTS_PER_CONNECTION} requests per new upstream connection, with at least {MIN_NEW_UPSTREAM_CONNECTIONS} new connections; client requests include those nginx answers itself, so the proxied ratio is at most this"
                ))
                .help("give every upstream an idle pool and keep the routes on HTTP/1.1 without `Connection: close` (rules U001-U003; H001 names the addresses)");
            out.push(Ranked {
                finding: f,
                evidence: new_upstream,
                measured: true,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::fixture::*;
    use crate::sampling::StatusDelta;
    use crate::stub_status::StubStatus;

    fn run(handled: u64, requests: u64, new_upstream: u64) -> Vec<Ranked> {
        let config = config("events {}\nhttp { upstream app { server 10.0.0.1:8080; } server { location / { proxy_pass http://app; } } }\n");
        let live = live(&config);
        let mut sampling = sampling(&[], &[("10.0.0.1:8080", new_upstream)], 20);
        // +1: the second stub_status request, which the rule leaves out.
        sampling.status = Some(StatusDelta {
            start: StubStatus::default(),
            end: StubStatus {
                accepts: handled + 1,
                handled: handled + 1,
                requests: requests + 1,
                ..StubStatus::default()
            },
        });
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

    #[test]
    fn client_side_below_two_requests_per_connection() {
        let r = run(100, 199, 0);
        assert_eq!(r.len(), 1);
        assert!(r[0]
            .finding
            .message
            .starts_with("1.99 requests per client connection over 5.0 s"));
        assert!(run(100, 200, 0).is_empty());
        assert!(run(19, 19, 0).is_empty(), "too few connections to judge");
    }

    #[test]
    fn upstream_side_below_ten_requests_per_new_connection() {
        let r = run(10, 1000, 101);
        assert_eq!(r.len(), 1);
        assert!(
            r[0].finding
                .message
                .starts_with("at most 9.90 requests per new upstream connection"),
            "{}",
            r[0].finding.message
        );
        assert!(r[0]
            .finding
            .notes
            .iter()
            .any(|n| n == "10.0.0.1:8080: 101 new connections"));
        assert!(run(10, 1000, 100).is_empty());
        assert!(
            run(10, 50, 9).is_empty(),
            "too few new connections to judge"
        );
    }
}
