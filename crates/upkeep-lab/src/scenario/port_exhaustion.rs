use super::{BuiltIn, BuiltInConfig, Scenario};
use crate::backend::BackendProfile;
use crate::plan::{LabPlan, Network};
use crate::traffic::TrafficProfile;
use std::time::Duration;

pub const SCENARIO: Scenario = Scenario {
    name: "port-exhaustion",
    summary:
        "no pool behind a narrow local port range: connect() fails with 99 (in a private namespace)",
    build,
    fixed_by: &["U001"],
    fixed_by_since_1_29_7: &["U001"],
};

/// The namespace's ip_local_port_range: 50 ports.
pub const PORT_RANGE: (u16, u16) = (40000, 40049);

const EXPLANATION: &str = "The route has proxy_http_version 1.1 and proxy_set_header Connection \"\" but \
the upstream has no keepalive (before nginx 1.29.7; since then it says keepalive 0, as upstream blocks \
pool by default), so nginx closes every upstream connection itself right after the \
response. The side that closes first keeps the connection in TIME_WAIT for 60 s, and while it does, that \
local port cannot be used again towards the same backend address and port. The lab runs this in a \
network namespace of its own, with nginx on 10.241.0.1, the backend on 10.241.0.2 and \
ip_local_port_range set to 50 ports inside the namespace only (on 127.0.0.0/8 Linux's default \
net.ipv4.tcp_tw_reuse=2 would let new connections take ports still in TIME_WAIT). Once the 50 ports are in TIME_WAIT, connect() fails and \
nginx logs \"connect() to 10.241.0.2:9001 failed (99: Cannot assign requested address) while connecting \
to upstream\" at crit and answers 502. With a pool (the fix adds keepalive 32, or removes keepalive 0) a \
handful of connections carry all requests and no port is burnt per request.";

fn build(version: super::NginxVersion) -> LabPlan {
    let config = BuiltInConfig {
        scenario: SCENARIO.name,
        http: "",
        upstream: if super::pools_by_default(version) {
            "# upkeep: backend idle=75s\nserver @SERVER:app@;\nkeepalive 0;\n"
        } else {
            "# upkeep: backend idle=75s\nserver @SERVER:app@;\n"
        },
        location: "proxy_http_version 1.1;\nproxy_set_header Connection \"\";\n",
    };
    let traffic = TrafficProfile {
        concurrency: 4,
        post_ratio: 0.5,
        gap_min: Duration::from_millis(5),
        gap_max: Duration::from_millis(15),
        duration: Duration::from_secs(4),
        ..TrafficProfile::default()
    };
    BuiltIn {
        name: SCENARIO.name,
        explanation: EXPLANATION,
        config,
        profile: BackendProfile::keepalive(
            "HTTP/1.1 keep-alive server",
            Some(Duration::from_secs(75)),
        ),
        relay_delay: None,
        traffic,
        network: Network::Namespace {
            port_range: PORT_RANGE,
        },
    }
    .into_plan()
}
