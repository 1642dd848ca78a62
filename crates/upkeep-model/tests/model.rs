use upkeep_model::{
    BlockKind, Model, NginxVersion, PassTarget, Pool, Protocol, RequestKind, SingleFile, Value,
};

const V1_28: NginxVersion = NginxVersion::new(1, 28, 0);
const V1_30: NginxVersion = NginxVersion::new(1, 30, 0);

fn load(text: &str) -> SingleFile {
    SingleFile::parse("nginx.conf", text).expect("test config parses")
}

const CONF: &str = r#"
events { worker_connections 1024; }
worker_processes auto;
http {
    proxy_set_header Connection "";
    proxy_set_header Host $host;
    proxy_read_timeout 30s;
    map $http_upgrade $connection_upgrade {
        default upgrade;
        ''      close;
    }
    map $host $pool { default app; api.example.com api; }
    upstream app {
        least_conn;
        server 127.0.0.1:8080 max_fails=3;
        keepalive 16;
        keepalive_timeout 4s;
    }
    upstream api { server 127.0.0.1:8081; }
    server {
        listen 80;
        server_name example.com;
        location / {
            proxy_pass http://app;
            location /deep/ {
                proxy_set_header X-Deep 1;
                proxy_read_timeout 5s;
                proxy_pass http://app/deep/;
            }
        }
        location /ws/ {
            if ($arg_x) {
                proxy_pass http://127.0.0.1:9000;
            }
            proxy_set_header Connection $connection_upgrade;
            proxy_pass http://$pool;
        }
        location @fallback { fastcgi_pass unix:/run/php.sock; }
    }
}
"#;

#[test]
fn routes_and_chains() {
    let src = load(CONF);
    let m = Model::build(&src, V1_28);
    let kinds: Vec<(BlockKind, String)> = m
        .routes
        .iter()
        .map(|r| (m.block(r.block).kind, r.target_text()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (BlockKind::Location, "http://app".to_string()),
            (BlockKind::Location, "http://app/deep/".to_string()),
            (BlockKind::Location, "http://$pool".to_string()),
            (BlockKind::If, "http://127.0.0.1:9000".to_string()),
            (BlockKind::NamedLocation, "unix:/run/php.sock".to_string()),
        ]
    );
    let deep = &m.routes[1];
    let chain: Vec<BlockKind> = m
        .chain(deep.block)
        .iter()
        .map(|&b| m.block(b).kind)
        .collect();
    assert_eq!(
        chain,
        vec![
            BlockKind::Http,
            BlockKind::Server,
            BlockKind::Location,
            BlockKind::Location
        ]
    );
    assert_eq!(m.routes[4].protocol, Protocol::FastCgi);
    assert!(matches!(
        m.routes[3].target,
        PassTarget::Direct {
            port: Some(9000),
            ..
        }
    ));
}

#[test]
fn scalar_inheritance_and_version_defaults() {
    let src = load(CONF);
    let m = Model::build(&src, V1_28);
    let root = m.routes[0].block;
    let deep = m.routes[1].block;
    assert_eq!(
        m.value(root, "proxy_read_timeout").text().as_deref(),
        Some("30s")
    );
    assert_eq!(
        m.value(deep, "proxy_read_timeout").text().as_deref(),
        Some("5s")
    );
    assert!(matches!(
        m.value(root, "proxy_http_version"),
        Value::Default("1.0")
    ));
    let m30 = Model::build(&src, V1_30);
    assert!(matches!(
        m30.value(root, "proxy_http_version"),
        Value::Default("1.1")
    ));
    assert!(matches!(
        m.value(root, "keepalive_requests"),
        Value::Default("1000")
    ));
    let old = Model::build(&src, NginxVersion::new(1, 18, 0));
    assert!(matches!(
        old.value(root, "keepalive_requests"),
        Value::Default("100")
    ));
}

#[test]
fn array_inheritance_is_all_or_nothing() {
    let src = load(CONF);
    let m = Model::build(&src, V1_28);
    let root = m.routes[0].block;
    let deep = m.routes[1].block;
    let at_root = m.array(root, "proxy_set_header");
    assert_eq!(at_root.entries.len(), 2);
    assert_eq!(m.block(at_root.level.unwrap()).kind, BlockKind::Http);
    let at_deep = m.array(deep, "proxy_set_header");
    assert_eq!(at_deep.entries.len(), 1);
    assert!(at_deep.entry("connection").is_none());
    assert!(at_deep.entry("x-deep").is_some());
    let inherited = m.inherited_array(at_deep.level.unwrap(), "proxy_set_header");
    assert!(inherited.entry("Connection").is_some());
    // The `if` inherits the location's own list.
    let if_route = m.routes[3].block;
    let at_if = m.array(if_route, "proxy_set_header");
    assert_eq!(at_if.level, Some(m.block(if_route).parent().unwrap()));
}

#[test]
fn upstream_pool_and_timeouts() {
    let src = load(CONF);
    let m28 = Model::build(&src, V1_28);
    let m30 = Model::build(&src, V1_30);
    let app = m28.upstream_named("APP").unwrap();
    let api = m28.upstream_named("api").unwrap();
    assert!(matches!(
        m28.upstream(app).pool(V1_28),
        Pool::Explicit { size: 16, .. }
    ));
    assert_eq!(m28.upstream(app).keepalive_timeout_ms(V1_28), Some(4000));
    assert_eq!(
        m28.upstream(app).servers[0].param("max_fails"),
        Some(Some("3".into()))
    );
    assert_eq!(m28.upstream(api).pool(V1_28), Pool::None);
    assert_eq!(m30.upstream(api).pool(V1_30), Pool::Implicit { size: 32 });
    assert_eq!(m28.upstream(api).keepalive_timeout_ms(V1_28), Some(60_000));
    assert_eq!(
        m28.upstream(api)
            .keepalive_timeout_ms(NginxVersion::new(1, 14, 0)),
        None
    );
    // least_conn precedes keepalive: fine.
    assert!(m28.upstream(app).balancer_after_keepalive(V1_28).is_none());
    // The variable route reaches both upstreams through the map.
    let routes_to_api: Vec<usize> = m28.routes_to(api).collect();
    assert_eq!(routes_to_api, vec![2]);
    assert_eq!(m28.routes_to(app).count(), 3);
}

#[test]
fn maps_evaluate_for_ordinary_and_upgrade_requests() {
    let src = load(CONF);
    let m = Model::build(&src, V1_28);
    assert_eq!(
        m.evaluate("$connection_upgrade", RequestKind::Ordinary)
            .as_deref(),
        Some("close")
    );
    assert_eq!(
        m.evaluate("$connection_upgrade", RequestKind::Upgrade)
            .as_deref(),
        Some("upgrade")
    );
    assert_eq!(
        m.evaluate("keep-alive", RequestKind::Ordinary).as_deref(),
        Some("keep-alive")
    );
    assert_eq!(m.evaluate("$http_x", RequestKind::Ordinary), None);
}

#[test]
fn main_settings() {
    let src = load(CONF);
    let m = Model::build(&src, V1_28);
    assert_eq!(
        m.main.worker_connections.unwrap().arg(0).unwrap().text(),
        "1024"
    );
    assert_eq!(
        m.main.worker_processes.unwrap().arg(0).unwrap().text(),
        "auto"
    );
    assert!(m.main.worker_rlimit_nofile.is_none());
}

#[test]
fn misordered_balancer_loses_the_pool_before_1_29_7() {
    let src = load("http { upstream u { keepalive 8; ip_hash; server 127.0.0.1:1; } }");
    let m = Model::build(&src, V1_28);
    let u = m.upstream(0);
    assert_eq!(
        u.balancer_after_keepalive(V1_28).unwrap().name().text(),
        "ip_hash"
    );
    assert!(!u.pool_works(V1_28));
    assert!(u.balancer_after_keepalive(V1_30).is_none());
}

mod flavors_and_http2 {
    use super::load;
    use upkeep_model::{Flavor, Model, NginxVersion, Pool, Target, Value, Wire};

    const CONF: &str = r#"
http {
    upstream app { server 127.0.0.1:8000; }
    upstream grpc_backend { server 127.0.0.1:9000; }
    server {
        location /h1 { proxy_pass http://app; }
        location /h2 { proxy_http_version 2; proxy_pass http://app; }
        location /g { grpc_pass grpc://grpc_backend; }
        location /php { fastcgi_pass 127.0.0.1:9001; }
    }
}
"#;

    fn v(a: u32, b: u32, c: u32) -> NginxVersion {
        NginxVersion::new(a, b, c)
    }

    #[test]
    fn routes_know_their_wire_on_the_target() {
        let src = load(CONF);
        let m = Model::build(&src, v(1, 30, 0));
        let wires: Vec<Wire> = (0..m.routes.len()).map(|r| m.wire(r)).collect();
        assert_eq!(wires, [Wire::Http1, Wire::Http2, Wire::Grpc, Wire::FastCgi]);
        // nginx 1.28 rejects `proxy_http_version 2`: the model does not take
        // the route for an HTTP/2 one.
        let old = Model::build(&src, v(1, 28, 0));
        assert_eq!(old.wire(1), Wire::Http1);
    }

    #[test]
    fn a_grpc_upstream_pools_by_default_only_on_nginx_1_29_7_and_later() {
        let src = load(CONF);
        fn g<'a>(m: &Model<'a>) -> Pool<'a> {
            m.upstream(m.upstream_named("grpc_backend").unwrap())
                .pool(m.version)
        }
        assert_eq!(
            g(&Model::build(&src, v(1, 29, 7))),
            Pool::Implicit { size: 32 }
        );
        assert_eq!(g(&Model::build(&src, v(1, 29, 6))), Pool::None);
        let angie = Model::build_for(&src, Target::new(Flavor::Angie, v(1, 12, 1)));
        assert_eq!(g(&angie), Pool::None);
        let free = Model::build_for(&src, Target::new(Flavor::Freenginx, v(1, 29, 7)));
        assert_eq!(g(&free), Pool::None);
    }

    #[test]
    fn defaults_follow_the_flavor() {
        let src = load(CONF);
        fn h1(m: &Model) -> Option<String> {
            match m.value(m.route(0).block, "proxy_http_version") {
                Value::Default(d) => Some(d.to_string()),
                _ => None,
            }
        }
        assert_eq!(h1(&Model::build(&src, v(1, 28, 0))), Some("1.0".into()));
        let angie = Model::build_for(&src, Target::new(Flavor::Angie, v(1, 12, 0)));
        assert_eq!(h1(&angie), Some("1.1".into()));
        assert_eq!(angie.wire(1), Wire::Http2);
        let angie_old = Model::build_for(&src, Target::new(Flavor::Angie, v(1, 11, 0)));
        assert_eq!(h1(&angie_old), Some("1.0".into()));
        assert_eq!(angie_old.wire(1), Wire::Http1);
        let free = Model::build_for(&src, Target::new(Flavor::Freenginx, v(1, 29, 7)));
        assert_eq!(h1(&free), Some("1.0".into()));
    }
}

/// A block that includes a file lists the included nodes in place of the
/// `include` (comments kept), and answers name lookups over them, both
/// below and above the size at which a block indexes its names.
#[test]
fn a_block_with_an_include_reads_the_included_nodes_in_place() {
    use upkeep_config::{ConfigSet, LoadOptions, MemoryLoader};
    for padding in [0usize, 40] {
        let extra: String = (0..padding)
            .map(|i| format!("        add_header X-{i} {i};\n"))
            .collect();
        let main = format!(
            "events {{}}\nhttp {{\n    server {{\n        listen 80;\n{extra}        include snippets/*.conf;\n        proxy_read_timeout 9s;\n    }}\n}}\n"
        );
        let mut files = MemoryLoader::new();
        files.insert("/etc/nginx/nginx.conf", main.into_bytes());
        files.insert(
            "/etc/nginx/snippets/a.conf",
            b"# from a\nproxy_read_timeout 5s;\nlocation /a/ { proxy_pass http://127.0.0.1:1; }\n"
                .to_vec(),
        );
        let set = ConfigSet::load("/etc/nginx/nginx.conf", &files, &LoadOptions::default())
            .expect("loads");
        let model = Model::build(&set, V1_28);
        let server = model.servers().next().expect("one server");
        let block = model.block(server);
        let names: Vec<String> = block
            .nodes()
            .map(|n| match n {
                upkeep_syntax::Node::Directive(d) => d.name().text().into_owned(),
                upkeep_syntax::Node::Comment(_) => "#".to_string(),
            })
            .collect();
        let mut expected = vec!["listen".to_string()];
        expected.extend((0..padding).map(|_| "add_header".to_string()));
        expected.extend(
            ["#", "proxy_read_timeout", "location", "proxy_read_timeout"].map(String::from),
        );
        assert_eq!(names, expected, "padding {padding}");
        let timeouts: Vec<String> = block
            .directives_named("proxy_read_timeout")
            .map(|d| d.arg(0).unwrap().text().into_owned())
            .collect();
        assert_eq!(timeouts, ["5s", "9s"], "padding {padding}");
        assert_eq!(
            block
                .last("proxy_read_timeout")
                .map(|d| d.arg(0).unwrap().text().into_owned()),
            Some("9s".to_string())
        );
        assert!(block.has("location") && !block.has("include"));
        let children: Vec<_> = block.children().collect();
        assert_eq!(children.len(), 1);
        assert_eq!(model.block(children[0]).kind, BlockKind::Location);
    }
}
