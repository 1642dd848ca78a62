use super::{insert_after, is_upstream_server, BuiltIn, BuiltInConfig, Scenario};
use crate::backend::BackendProfile;
use crate::plan::{LabPlan, Network};
use crate::traffic::TrafficProfile;
use std::time::Duration;

pub const SCENARIO: Scenario = Scenario {
    name: "no-pool",
    summary: "no upstream keepalive: one new upstream connection per request, TIME_WAIT growth",
    build,
};

const EXPLANATION: &str = "The upstream block has no keepalive directive, so (before nginx 1.29.7) \
nginx keeps no idle upstream connections: every request opens a new TCP connection to the backend and \
closes it after the response. With the default proxy_http_version 1.0 nginx also sends \"Connection: \
close\", so the backend closes its end first. Each closed connection leaves a socket in TIME_WAIT for 60 s \
on the side that closed first, and every request pays a TCP handshake (one round trip through the relay). \
The fix adds keepalive 32 to the upstream and, because a pooled connection needs HTTP/1.1 without \
\"Connection: close\", proxy_http_version 1.1 and proxy_set_header Connection \"\" to the route.";

fn build() -> LabPlan {
    let config = BuiltInConfig {
        scenario: SCENARIO.name,
        http: "",
        upstream: "# upkeep: backend idle=75s\nserver @SERVER:app@;\n",
        location: "",
    };
    BuiltIn {
        name: SCENARIO.name,
        explanation: EXPLANATION,
        config,
        profile: BackendProfile::keepalive("idle-75s", Some(Duration::from_secs(75))),
        relay_delay: Some(Duration::from_millis(5)),
        traffic: busy_traffic(),
        network: Network::Loopback,
        expected_fix,
    }
    .into_plan()
}

/// Steady traffic with short gaps, for the scenarios that count connections.
pub(super) fn busy_traffic() -> TrafficProfile {
    TrafficProfile {
        concurrency: 4,
        post_ratio: 0.5,
        gap_min: Duration::from_millis(5),
        gap_max: Duration::from_millis(15),
        duration: Duration::from_secs(5),
        ..TrafficProfile::default()
    }
}

/// U001 (keepalive 32), then U002 and U003 on the route.
fn expected_fix(config: &str) -> String {
    let c = insert_after(config, is_upstream_server, "keepalive 32;");
    let c = insert_after(
        &c,
        |l| l == "proxy_pass http://app;",
        "proxy_http_version 1.1;",
    );
    insert_after(
        &c,
        |l| l == "proxy_http_version 1.1;",
        "proxy_set_header Connection \"\";",
    )
}
