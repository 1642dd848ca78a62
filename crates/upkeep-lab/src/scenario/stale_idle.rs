use super::{BuiltIn, BuiltInConfig, Scenario};
use crate::backend::BackendProfile;
use crate::plan::{LabPlan, Network};
use crate::traffic::{LoopMode, TrafficProfile};
use std::time::Duration;

pub const SCENARIO: Scenario = Scenario {
    name: "stale-idle",
    summary: "backend idles out before nginx's upstream keepalive_timeout: POSTs get 502",
    build,
    fixed_by: &["U007"],
    fixed_by_since_1_29_7: &["U007"],
};

const EXPLANATION: &str = "The backend closes a keep-alive connection after 1 s idle, but nginx keeps \
idle upstream connections for the upstream keepalive_timeout (60s by default). nginx does not test a \
pooled connection when it takes it: a FIN that arrived while the connection sat idle makes nginx drop it \
silently, but a request sent while the backend's FIN is still on its way meets a closed socket, and nginx \
logs \"upstream prematurely closed connection while reading response header from upstream\" (or \"recv() \
failed (104: Connection reset by peer)\"). nginx sends a GET again on another connection (a failure on a \
pooled connection does not even use up one of its tries), so the client gets its 200 and only the error \
log shows the failure; a POST is not sent again (non-idempotent requests are not retried since nginx \
1.9.13 unless proxy_next_upstream has non_idempotent), so the client gets 502. The relay delays bytes and \
FIN by 20 ms each way, so the window for the race is about 40 ms, as between hosts; 8 clients send a \
request together every 1.01-1.03 s, so each burst reuses pooled connections that have been idle for just \
over the backend's timeout. The fix sets the upstream's keepalive_timeout below the backend's idle \
timeout, so nginx always closes first: at this request rate no connection can be reused at all (the \
backend would close it anyway), and nginx opens a new one instead of failing on a dead one.";

/// The backend's idle timeout; the upstream block declares it inline so
/// `upkeep fix` knows it.
const BACKEND_IDLE: Duration = Duration::from_secs(1);

fn build(_version: super::NginxVersion) -> LabPlan {
    let config = BuiltInConfig {
        scenario: SCENARIO.name,
        http: "",
        upstream: "# upkeep: backend idle=1s\nserver @SERVER:app@;\nkeepalive 32;\n",
        location: "proxy_http_version 1.1;\nproxy_set_header Connection \"\";\n",
    };
    // Clients in step (open loop, started together) make every burst take
    // several pooled connections at once; with one client, or clients out of
    // step, nginx would mostly reuse the connection used a moment earlier.
    // The period sits inside the race window: just over the backend's idle
    // timeout, and under it plus the 40 ms the FIN takes to reach nginx.
    let traffic = TrafficProfile {
        concurrency: 8,
        post_ratio: 0.5,
        gap_min: Duration::from_millis(1010),
        gap_max: Duration::from_millis(1030),
        mode: LoopMode::Open,
        duration: Duration::from_secs(10),
        ..TrafficProfile::default()
    };
    BuiltIn {
        name: SCENARIO.name,
        explanation: EXPLANATION,
        config,
        profile: BackendProfile::keepalive("HTTP/1.1 keep-alive server", Some(BACKEND_IDLE)),
        relay_delay: Some(Duration::from_millis(20)),
        traffic,
        network: Network::Loopback,
    }
    .into_plan()
}
