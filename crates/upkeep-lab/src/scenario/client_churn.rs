use super::{BuiltIn, BuiltInConfig, Scenario};
use crate::plan::LabPlan;

pub const SCENARIO: Scenario = Scenario {
    name: "client-churn",
    summary: "keepalive_requests 1 on the client side: stub_status accepts ≈ requests",
    build,
    fixed_by: &["C001"],
    fixed_by_since_1_29_7: &["C001"],
};

const EXPLANATION: &str = "The server sets keepalive_requests 1, so nginx answers the first request on \
every client connection with \"Connection: close\" and closes it: each request costs the client a new \
TCP connection (a new TLS handshake too, on HTTPS), and stub_status shows accepts about equal to \
requests. The upstream side is pooled correctly here, so only the client side churns. The fix raises \
keepalive_requests to 1000 (the default since nginx 1.19.10); the clients then keep their connections \
and accepts stay at about one per client.";

fn build(_version: super::NginxVersion) -> LabPlan {
    let config = BuiltInConfig {
        scenario: SCENARIO.name,
        http: "keepalive_requests 1;\n",
        upstream: "# upkeep: backend idle=75s\nserver @SERVER:app@;\nkeepalive 32;\n",
        location: "proxy_http_version 1.1;\nproxy_set_header Connection \"\";\n",
    };
    BuiltIn::counting_connections(SCENARIO.name, EXPLANATION, config).into_plan()
}
