use upkeep_diag::Severity;
use upkeep_logs::Signature;
use upkeep_rules::RuleInfo;

use super::{h001::group_of, Measured, Ranked};

pub const INFO: RuleInfo = RuleInfo {
    id: "H002",
    name: "ephemeral-ports-near-exhaustion",
    severity: Severity::Error,
    fixable: false,
    summary: "Sockets to one backend ip:port use more than half of `ip_local_port_range`.",
    doc: r#"## What it finds
Measured by `upkeep doctor`: the sockets on this host whose remote end is one
backend ip:port and whose local port lies in `net.ipv4.ip_local_port_range`
(in any state, TIME_WAIT included) number more than half of that range.

## Why it breaks reuse
Each outgoing connection takes a local port from `ip_local_port_range`, and
the (local address, local port, backend address, backend port) four-tuple
must be unique, so towards ONE backend ip:port there are only as many
connections, open or in TIME_WAIT, as the range has ports (28232 with the
default 32768–60999). A proxy that does not reuse connections leaves one
TIME_WAIT socket per request for 60 s, so about 470 requests/s to one backend
address exhaust the default range. Then nginx logs `connect() to ADDR failed
(99: Cannot assign requested address) while connecting to upstream` at
`crit` and the request gets a 502 (`upkeep logs` signature
`connect-addr-unavailable`).

## Example
No `keepalive` in `upstream app { server 10.0.0.5:8080; }` and 400
requests/s: about 24000 sockets towards 10.0.0.5:8080, 85% of the default
range.

## Fix
Reuse connections: an idle pool on the upstream (H001, U001–U003). More
backend addresses (or ports) spread the connections over more four-tuples.
Widening `net.ipv4.ip_local_port_range` only buys room. `net.ipv4.tcp_tw_reuse
= 1` lets `connect()` take a TIME_WAIT socket's port when TCP timestamps make
it safe (the default 2 does so for loopback connections only).

## References
- nginx source: src/event/ngx_event_connect.c, `ngx_event_connect_peer()` (`connect() to %V failed`, 99: EADDRNOTAVAIL, logged at crit)
- `upkeep logs` signature `connect-addr-unavailable`
"#,
};

pub fn evaluate(m: &Measured<'_>) -> Vec<Ranked> {
    let (Some((lo, hi)), Some(size)) = (m.sysctls.ip_local_port_range, m.sysctls.port_range_size())
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for b in &m.live.backends {
        let c = m.sampling.census_end.get(&b.addr);
        let used = c.in_port_range;
        if used * 2 <= size {
            continue;
        }
        let pct = used as f64 * 100.0 / size as f64;
        let mut f = INFO
            .finding(format!(
                "{used} sockets towards {} ({}) hold {pct:.1}% of the {size} local ports of ip_local_port_range {lo}-{hi}: new connections to it will fail with \"connect() to {} failed (99: Cannot assign requested address)\"",
                b.addr,
                group_of(b),
                b.addr
            ))
            .note(format!(
                "{}: {} TIME_WAIT, {} ESTABLISHED, {} in other states",
                b.addr, c.time_wait, c.established, c.other
            ))
            .note("threshold: more than 50% of ip_local_port_range towards one backend ip:port");
        if let Some(reuse) = m.sysctls.tcp_tw_reuse {
            f = f.note(format!(
                "net.ipv4.tcp_tw_reuse = {reuse} ({})",
                match reuse {
                    0 => "TIME_WAIT ports are never taken early",
                    1 => "connect() may take a TIME_WAIT port when TCP timestamps make it safe",
                    _ => "TIME_WAIT ports are taken early for loopback connections only",
                }
            ));
        }
        if let Some(logs) = m.logs {
            let n = logs.count(Signature::ConnectAddrUnavailable);
            if n > 0 {
                f = f.note(format!(
                    "the error log already shows {n} \"Cannot assign requested address\" lines (signature connect-addr-unavailable)"
                ));
            }
        }
        f = f.help(
            "reuse connections to this backend (an idle pool: see H001 and U001-U003); more backend addresses or ports spread the load; widening net.ipv4.ip_local_port_range only buys room",
        );
        out.push(Ranked {
            finding: f,
            evidence: used,
            measured: true,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::fixture::*;
    use crate::sockets::AddressCount;

    fn run(used: u64, range: (u16, u16)) -> Vec<Ranked> {
        let config = config("events {}\nhttp { upstream app { server 10.0.0.1:8080; } server { location / { proxy_pass http://app; } } }\n");
        let live = live(&config);
        let c = AddressCount {
            time_wait: used - 1,
            established: 1,
            in_port_range: used,
            ..AddressCount::default()
        };
        let sampling = sampling(&[("10.0.0.1:8080", c)], &[], 2);
        let sysctls = sysctls(range);
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
    fn fires_above_half_the_range() {
        // 40000-40999: 1000 ports.
        assert!(run(500, (40000, 40999)).is_empty());
        let r = run(501, (40000, 40999));
        assert_eq!(r.len(), 1);
        let f = &r[0].finding;
        assert_eq!(f.severity, Severity::Error);
        assert!(
            f.message.starts_with("501 sockets towards 10.0.0.1:8080 (upstream `app`) hold 50.1% of the 1000 local ports of ip_local_port_range 40000-40999"),
            "{}",
            f.message
        );
        assert!(f.message.ends_with(
            "\"connect() to 10.0.0.1:8080 failed (99: Cannot assign requested address)\""
        ));
        assert!(f
            .notes
            .iter()
            .any(|n| n.starts_with("net.ipv4.tcp_tw_reuse = 2")));
    }
}
