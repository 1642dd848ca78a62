use super::{BuiltIn, BuiltInConfig, Scenario};
use crate::plan::LabPlan;

pub const SCENARIO: Scenario = Scenario {
    name: "connection-close",
    summary: "keepalive pool, but Connection: close is sent upstream: the pool stays empty",
    build,
    fixed_by: &["U003"],
    fixed_by_since_1_29_7: &["U003"],
};

const EXPLANATION: &str = "The upstream has a keepalive 16 pool and the route sets proxy_http_version \
1.1, but no proxy_set_header Connection. Before nginx 1.29.7 the proxy module then sends \"Connection: \
close\" with every request (it is in its default header list), the backend honours it and closes after \
each response, and nginx caches a connection only when the response left it reusable: a response that \
says \"Connection: close\" does not. The pool stays empty and every request opens a new connection, \
exactly as with no pool. The fix adds proxy_set_header Connection \"\" to the route, so no Connection \
header is sent and HTTP/1.1 persistence applies.";

/// Since 1.29.7 no Connection header is sent by default; the failure needs it
/// said explicitly.
const EXPLANATION_SINCE_1_29_7: &str = "The upstream has a keepalive 16 pool, but the route sets \
proxy_set_header Connection close (since nginx 1.29.7 no Connection header is sent by default; before, \
close was the default). The backend honours it and closes after each response, and nginx caches a \
connection only when the response left it reusable: a response that says \"Connection: close\" does \
not. The pool stays empty and every request opens a new connection, exactly as with no pool. The fix \
stops nginx from sending Connection: close.";

fn build(version: super::NginxVersion) -> LabPlan {
    let explicit_close = super::pools_by_default(version);
    let config = BuiltInConfig {
        scenario: SCENARIO.name,
        http: "",
        upstream: "# upkeep: backend idle=75s\nserver @SERVER:app@;\nkeepalive 16;\n",
        location: if explicit_close {
            "proxy_http_version 1.1;\nproxy_set_header Connection close;\n"
        } else {
            "proxy_http_version 1.1;\n"
        },
    };
    let explanation = if explicit_close {
        EXPLANATION_SINCE_1_29_7
    } else {
        EXPLANATION
    };
    BuiltIn::counting_connections(SCENARIO.name, explanation, config).into_plan()
}
