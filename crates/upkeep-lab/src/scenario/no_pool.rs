use super::{BuiltIn, BuiltInConfig, Scenario};
use crate::plan::LabPlan;

pub const SCENARIO: Scenario = Scenario {
    name: "no-pool",
    summary: "no upstream keepalive: one new upstream connection per request, TIME_WAIT growth",
    build,
    fixed_by: &["U001", "U002", "U003"],
    fixed_by_since_1_29_7: &["U001"],
};

const EXPLANATION: &str = "The upstream block has no keepalive directive, so (before nginx 1.29.7) \
nginx keeps no idle upstream connections: every request opens a new TCP connection to the backend and \
closes it after the response. With the default proxy_http_version 1.0 nginx also sends \"Connection: \
close\", so the backend closes its end after each response too. Each closed connection leaves a socket in TIME_WAIT for 60 s \
on the side that closed first, and every request pays a TCP handshake (one round trip through the relay). \
The fix adds keepalive 32 to the upstream and, because a pooled connection needs HTTP/1.1 without \
\"Connection: close\", proxy_http_version 1.1 and proxy_set_header Connection \"\" to the route.";

/// Since 1.29.7 an upstream block pools by default; it takes `keepalive 0`.
const EXPLANATION_SINCE_1_29_7: &str = "The upstream block says keepalive 0, so nginx keeps no idle \
upstream connections (since nginx 1.29.7 an upstream block keeps up to 32 unless it says keepalive 0): \
every request opens a new TCP connection to the backend and nginx closes it after the response. Each \
closed connection leaves a socket in TIME_WAIT for 60 s on the side that closed first, and every request \
pays a TCP handshake (one round trip through the relay). The fix removes keepalive 0.";

fn build(version: super::NginxVersion) -> LabPlan {
    let pooled_by_default = super::pools_by_default(version);
    let config = BuiltInConfig {
        scenario: SCENARIO.name,
        http: "",
        upstream: if pooled_by_default {
            "# upkeep: backend idle=75s\nserver @SERVER:app@;\nkeepalive 0;\n"
        } else {
            "# upkeep: backend idle=75s\nserver @SERVER:app@;\n"
        },
        location: "",
    };
    let explanation = if pooled_by_default {
        EXPLANATION_SINCE_1_29_7
    } else {
        EXPLANATION
    };
    BuiltIn::counting_connections(SCENARIO.name, explanation, config).into_plan()
}
