//! The `user` scenario on a real nginx: a host-style config (system paths,
//! includes, two servers, an upstream without keepalive) rewritten for the
//! lab, run as is and with `upkeep fix` applied.

mod common;

use common::{applied_rules, run};
use std::time::Duration;
use upkeep_lab::scenario::user::{build, UserOptions};
use upkeep_lab::Phase;

#[test]
fn a_users_config_without_a_pool_is_proved_fixed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("conf.d")).unwrap();
    std::fs::write(
        dir.path().join("nginx.conf"),
        "user www-data;\nworker_processes 1;\npid /run/nginx.pid;\nerror_log /var/log/nginx/error.log;\n\
         events {\n    worker_connections 512;\n}\n\
         http {\n    access_log /var/log/nginx/access.log;\n    include conf.d/*.conf;\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("conf.d/app.conf"),
        "upstream app_backend {\n    server 10.20.30.40:8080;\n    server 10.20.30.41:8080;\n}\n\
         server {\n    listen 80;\n    server_name app.example.com;\n\
         \x20   location /api/ {\n        proxy_pass http://app_backend;\n    }\n}\n",
    )
    .unwrap();
    let mut plan = build(&UserOptions {
        config: dir.path().join("nginx.conf"),
        backend_specs: vec!["app_backend=idle=75s".to_string()],
        backend_facts_json: None,
        host: None,
        nginx_prefix: None,
    })
    .unwrap();
    plan.traffic.duration = Duration::from_secs(2);
    let report = run(&plan).unwrap();
    let before = report.run(Phase::Before).unwrap();
    let after = report.run(Phase::After).unwrap();
    let all = |r: &upkeep_lab::report::PhaseResult| {
        r.status.get("200").copied().unwrap_or(0) == r.requests
    };
    assert!(before.requests >= 100 && all(before), "{:?}", before.status);
    assert!(after.requests >= 100 && all(after), "{:?}", after.status);
    assert!(before.upstream_connections_per_request.unwrap() >= 0.9);
    assert!(after.upstream_connections_per_request.unwrap() <= 0.05);
    let rules = applied_rules(&report);
    assert!(rules.contains(&"U001"), "{rules:?}");
    assert_eq!(report.backends.len(), 2);
}
