//! Benchmark: `check` on a generated ~100k-line configuration against the
//! parse (load) time alone. Run with
//! `cargo run --release -p upkeep-rules --example check_bench [LINES]`.
//! Add `clean` after LINES for a config without findings, or `file PATH` to
//! time a real configuration (includes are not followed). Prints the times
//! and their ratio; asserts nothing.

use std::fmt::Write as _;
use std::time::Instant;

use upkeep_config::{ConfigSet, LoadOptions, MemoryLoader};
use upkeep_rules::{check, CheckOptions};

/// A config of about `lines` lines: upstreams (half with keepalive, some with
/// a balancer after keepalive), servers with nested locations, `if` blocks,
/// maps, header lists at several levels.
fn generate(lines: usize, clean: bool) -> String {
    let mut s = String::from("worker_processes 4;\nworker_shutdown_timeout 30s;\nevents { worker_connections 100000; }\nhttp {\n");
    if clean {
        s.push_str("    proxy_http_version 1.1;\n    proxy_set_header Connection \"\";\n");
    }
    s.push_str("    map $http_upgrade $connection_upgrade { default upgrade; '' close; }\n");
    s.push_str("    proxy_set_header Host $host;\n");
    let mut i = 0;
    while s.len() < lines * 36 {
        writeln!(s, "    upstream app{i} {{").unwrap();
        if clean {
            writeln!(s, "        least_conn;\n        keepalive 16;\n        keepalive_timeout 4s;\n        # upkeep: backend idle=5s").unwrap();
        } else if i % 3 == 0 {
            writeln!(s, "        keepalive 16;\n        least_conn;").unwrap();
        } else if i % 2 == 0 {
            writeln!(s, "        keepalive 32;").unwrap();
        }
        for k in 0..3 {
            writeln!(
                s,
                "        server 10.0.{}.{}:80{k:02} max_fails=3;",
                i % 250,
                k
            )
            .unwrap();
        }
        writeln!(s, "    }}").unwrap();
        writeln!(
            s,
            "    server {{\n        listen 80;\n        server_name s{i}.example.com;"
        )
        .unwrap();
        if !clean {
            writeln!(s, "        proxy_set_header X-Server s{i};").unwrap();
        }
        for l in 0..6 {
            writeln!(s, "        location /l{l}/ {{").unwrap();
            writeln!(s, "            proxy_read_timeout {}s;", 10 + l).unwrap();
            if l % 2 == 0 && !clean {
                writeln!(
                    s,
                    "            proxy_set_header Connection $connection_upgrade;"
                )
                .unwrap();
            }
            writeln!(
                s,
                "            location /l{l}/deep/ {{ proxy_pass http://app{i}; }}"
            )
            .unwrap();
            writeln!(
                s,
                "            if ($arg_x) {{ proxy_pass http://app{}; }}",
                (i + 1) % (i + 2)
            )
            .unwrap();
            writeln!(s, "            proxy_pass http://app{i};").unwrap();
            writeln!(s, "        }}").unwrap();
        }
        if !clean {
            writeln!(
                s,
                "        location /direct/ {{ proxy_pass http://127.0.0.1:{}; }}",
                9000 + i % 1000
            )
            .unwrap();
        }
        writeln!(s, "    }}").unwrap();
        i += 1;
    }
    s.push_str("}\n");
    s
}

fn main() {
    let lines: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    // `clean`: a config with no findings; otherwise one with thousands.
    // `file PATH`: a real configuration instead of a generated one.
    let mode = std::env::args().nth(2);
    let text = match mode.as_deref() {
        Some("file") => {
            std::fs::read_to_string(std::env::args().nth(3).expect("file PATH")).unwrap()
        }
        m => generate(lines, m == Some("clean")),
    };
    let mut loader = MemoryLoader::new();
    loader.insert("/bench/nginx.conf", text.clone().into_bytes());
    let opts = LoadOptions::default();
    let runs = 5;

    let mut best_load = f64::MAX;
    let mut best_check = f64::MAX;
    let mut findings = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let config =
            ConfigSet::load("/bench/nginx.conf", &loader, &opts).expect("generated config parses");
        best_load = best_load.min(t.elapsed().as_secs_f64());
        if std::env::var_os("SKIP_CHECK").is_some() {
            continue; // for instruction counts of the load alone
        }
        let t = Instant::now();
        let report = check(&config, &CheckOptions::default());
        best_check = best_check.min(t.elapsed().as_secs_f64());
        findings = report.findings.len();
    }
    if std::env::var_os("PER_RULE").is_some() {
        let config = ConfigSet::load("/bench/nginx.conf", &loader, &opts).unwrap();
        for r in upkeep_rules::rules() {
            let o = CheckOptions {
                select: Some(vec![r.id.to_string()]),
                ..Default::default()
            };
            let t = Instant::now();
            let n = check(&config, &o).findings.len();
            println!(
                "  {} {:.1} ms ({n} findings)",
                r.id,
                t.elapsed().as_secs_f64() * 1e3
            );
        }
    }
    println!(
        "{} lines, {} bytes: load+parse {:.1} ms, check {:.1} ms (ratio {:.2}), {} findings (best of {runs})",
        text.lines().count(),
        text.len(),
        best_load * 1e3,
        best_check * 1e3,
        best_check / best_load,
        findings
    );
}
