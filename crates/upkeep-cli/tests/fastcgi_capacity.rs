//! FastCGI pooling against a real nginx and a real PHP-FPM (Debian's
//! php-fpm, started here as a process of its own with a private config,
//! pid file and socket): a kept FastCGI connection pins a PHP-FPM child
//! while idle, so an unsized pool starves new connections (504), while the
//! pool `upkeep fix` writes, sized to leave a child free, serves every
//! request, before and after, like the config without a pool.
//!
//! On the host's own configuration (`check` and `fix` without a PATH, which
//! read what the running nginx runs), the children come from the running
//! PHP-FPM's pool file, found behind the upstream's socket, and the output
//! names that file and line.

mod common;

use common::{free_port, text, upkeep, wait_for, wait_until, GroupOnDrop, Nginx};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const CHILDREN: u32 = 3;
const CONCURRENT: usize = 8;

fn php_fpm() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/sbin")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("php-fpm"))
        })
        .collect();
    found.sort();
    found.pop()
}

/// PHP-FPM in the foreground with `CHILDREN` static children; stopped,
/// children included, on drop.
fn start_fpm(bin: &Path, dir: &Path) -> GroupOnDrop {
    let d = dir.display();
    let conf = dir.join("fpm.conf");
    std::fs::write(
        &conf,
        format!(
            "[global]\npid = {d}/fpm.pid\nerror_log = {d}/fpm.log\ndaemonize = no\n\n[app]\nlisten = {d}/fpm.sock\nlisten.mode = 0666\npm = static\npm.max_children = {CHILDREN}\n"
        ),
    )
    .unwrap();
    // A socket file left by a php-fpm killed earlier in the test would
    // look like this one listening.
    let _ = std::fs::remove_file(dir.join("fpm.sock"));
    // -R: the test may run as root; -n: no php.ini from the system.
    let fpm = GroupOnDrop::spawn(
        Command::new(bin)
            .args(["-R", "-n", "-F", "-y"])
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
    .expect("start php-fpm");
    assert!(
        wait_for(Duration::from_secs(10), Duration::from_millis(50), || {
            dir.join("fpm.sock").exists()
        }),
        "php-fpm did not open its socket"
    );
    fpm
}

fn config(dir: &Path, port: u16, upstream_extra: &str, location_extra: &str) -> String {
    let d = dir.display();
    format!(
        "worker_processes 2;\npid {d}/nginx.pid;\nerror_log {d}/logs/error.log;\nevents {{ worker_connections 256; }}\nhttp {{\n    access_log off;\n    upstream php {{\n        # upkeep: backend php-fpm max-children={CHILDREN}\n        server unix:{d}/fpm.sock;\n{upstream_extra}    }}\n    server {{\n        listen 127.0.0.1:{port};\n        location ~ \\.php$ {{\n            fastcgi_param SCRIPT_FILENAME {d}/www$fastcgi_script_name;\n            fastcgi_param REQUEST_METHOD $request_method;\n            fastcgi_read_timeout 3s;\n{location_extra}            fastcgi_pass php;\n        }}\n    }}\n}}\n"
    )
}

/// `CONCURRENT` requests at once, each on its own client connection; the
/// status of each (0 when no response came).
fn burst(port: u16) -> Vec<u16> {
    let handles: Vec<_> = (0..CONCURRENT)
        .map(|_| {
            std::thread::spawn(move || -> u16 {
                let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
                    return 0;
                };
                s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
                if s.write_all(b"GET /slow.php HTTP/1.0\r\nHost: t\r\n\r\n")
                    .is_err()
                {
                    return 0;
                }
                let mut buf = Vec::new();
                let _ = s.read_to_end(&mut buf);
                let head = String::from_utf8_lossy(&buf);
                head.split_whitespace()
                    .nth(1)
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// Three bursts (the later ones meet the connections the first left
/// idle in the pools); the statuses of all.
fn traffic(port: u16) -> Vec<u16> {
    let mut all = Vec::new();
    for _ in 0..3 {
        all.extend(burst(port));
        std::thread::sleep(Duration::from_millis(200));
    }
    all
}

fn count(statuses: &[u16], code: u16) -> usize {
    statuses.iter().filter(|&&s| s == code).count()
}

fn run_phase(dir: &Path, conf: &str, fpm_bin: &Path) -> Vec<u16> {
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let _fpm = start_fpm(fpm_bin, dir);
    let _nginx = Nginx::start(dir);
    let port: u16 = conf
        .split("listen 127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split(';').next())
        .and_then(|p| p.parse().ok())
        .unwrap();
    traffic(port)
}

/// php-fpm's binary and a temporary directory whose `www/slow.php` takes
/// 200 ms, or None (with the reason printed) when php-fpm or nginx is absent.
fn php_fpm_and_nginx_with_a_slow_script() -> Option<(PathBuf, tempfile::TempDir)> {
    let Some(fpm_bin) = php_fpm() else {
        eprintln!(
            "skipped: no /usr/sbin/php-fpm* (Debian's php-fpm package; .ci/setup installs it)"
        );
        return None;
    };
    if !Path::new("/usr/sbin/nginx").exists() {
        eprintln!("skipped: no /usr/sbin/nginx");
        return None;
    }
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("www")).unwrap();
    std::fs::write(
        tmp.path().join("www/slow.php"),
        "<?php usleep(200000); echo \"ok\\n\";",
    )
    .unwrap();
    Some((fpm_bin, tmp))
}

#[test]
fn sized_fastcgi_pool_serves_every_request_and_an_unsized_one_does_not() {
    let Some((fpm_bin, tmp)) = php_fpm_and_nginx_with_a_slow_script() else {
        return;
    };
    let dir = tmp.path();
    let port = free_port();

    // Before: no pool. Every request gets its own FastCGI connection.
    let before_conf = config(dir, port, "", "");
    let before = run_phase(dir, &before_conf, &fpm_bin);

    // The fix, as a user runs it.
    std::fs::write(dir.join("nginx.conf"), &before_conf).unwrap();
    let out = upkeep(&[
        "fix",
        "--nginx-version",
        "1.22.1",
        dir.join("nginx.conf").to_str().unwrap(),
    ]);
    let diff = text(&out.stdout);
    assert!(
        diff.contains("+        keepalive 1;"),
        "{diff}\n{}",
        text(&out.stderr)
    );
    assert!(
        diff.contains("+            fastcgi_keep_conn on;"),
        "{diff}"
    );
    let upstream_extra = "        keepalive 1;\n";
    let location_extra = "            fastcgi_keep_conn on;\n";
    let after = run_phase(
        dir,
        &config(dir, port, upstream_extra, location_extra),
        &fpm_bin,
    );

    // What a pool sized without regard to the children does.
    let unsized_pool = run_phase(
        dir,
        &config(dir, port, "        keepalive 32;\n", location_extra),
        &fpm_bin,
    );

    eprintln!(
        "FastCGI, nginx 1.22 with 2 workers, php-fpm with {CHILDREN} children, 3 bursts of {CONCURRENT}: before 200={} 504={}; after the fix 200={} 504={}; unsized keepalive 32: 200={} 504={}",
        count(&before, 200),
        count(&before, 504),
        count(&after, 200),
        count(&after, 504),
        count(&unsized_pool, 200),
        count(&unsized_pool, 504)
    );
    assert_eq!(count(&before, 200), before.len(), "before: {before:?}");
    assert_eq!(count(&after, 200), after.len(), "after the fix: {after:?}");
    assert!(
        count(&unsized_pool, 200) < unsized_pool.len(),
        "an unsized pool was expected to starve some requests: {unsized_pool:?}"
    );
}

/// A directory holding an `nginx` that runs /usr/sbin/nginx with the test's
/// prefix and config: on PATH, it is what `upkeep check` and `upkeep fix`
/// without a PATH take for the host's nginx (`nginx -T`, `nginx -v`).
fn host_nginx_on_path(dir: &Path) -> String {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("nginx");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nexec /usr/sbin/nginx -p {d} -c {d}/nginx.conf \"$@\"\n",
            d = dir.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    format!("{}:/usr/bin:/bin", bin.display())
}

/// `upkeep ARGS` with `path` as PATH, run in `dir` (no upkeep.toml above
/// it), bounded to 60 s.
fn upkeep_on_host(dir: &Path, path: &str, args: &[&str]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_upkeep"))
        .args(args)
        .current_dir(dir)
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let exited = wait_until(Duration::from_secs(60), Duration::from_millis(20), || {
        child.try_wait().unwrap()
    });
    if exited.is_none() {
        let _ = child.kill();
        panic!("upkeep {args:?} did not exit within 60 s");
    }
    child.wait_with_output().unwrap()
}

/// `text` with a unified diff (one file, as `upkeep fix` prints it) applied.
fn apply_diff(text: &str, diff: &str) -> String {
    let old: Vec<&str> = text.lines().collect();
    let mut out: Vec<String> = Vec::new();
    let mut at = 0; // next line of `old` not yet copied
    for line in diff.lines() {
        if let Some(range) = line.strip_prefix("@@ -") {
            let start: usize = range
                .split([',', ' '])
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap();
            while at + 1 < start {
                out.push(old[at].to_string());
                at += 1;
            }
        } else if line.starts_with("---") || line.starts_with("+++") {
        } else if let Some(added) = line.strip_prefix('+') {
            out.push(added.to_string());
        } else if let Some(removed) = line.strip_prefix('-') {
            assert_eq!(old[at], removed, "the diff does not apply");
            at += 1;
        } else if let Some(context) = line.strip_prefix(' ') {
            assert_eq!(old[at], context, "the diff does not apply");
            out.push(old[at].to_string());
            at += 1;
        }
    }
    out.extend(old[at..].iter().map(|l| l.to_string()));
    out.join("\n") + "\n"
}

#[test]
fn on_the_host_the_running_php_fpm_sizes_the_pool_and_says_where_its_children_come_from() {
    let Some((fpm_bin, tmp)) = php_fpm_and_nginx_with_a_slow_script() else {
        return;
    };
    let dir = tmp.path();
    let port = free_port();
    // Nothing declared: a pool of 32 per worker without keep_conn, as a
    // config copied from a proxy_pass example has it.
    let before_conf = config(dir, port, "        keepalive 32;\n", "").replace(
        &format!("        # upkeep: backend php-fpm max-children={CHILDREN}\n"),
        "",
    );
    assert!(!before_conf.contains("upkeep:"));
    std::fs::write(dir.join("nginx.conf"), &before_conf).unwrap();
    let path = host_nginx_on_path(dir);
    let fpm_conf = dir.join("fpm.conf");

    let fpm = start_fpm(&fpm_bin, dir);
    let nginx = Nginx::start(dir);
    let before = traffic(port);
    // Where the running PHP-FPM's pool sets pm.max_children (start_fpm
    // writes it).
    let line = std::fs::read_to_string(&fpm_conf)
        .unwrap()
        .lines()
        .position(|l| l.starts_with("pm.max_children"))
        .unwrap()
        + 1;
    let source = format!(
        "pool [app] pm.max_children = {CHILDREN} in {}:{line}",
        fpm_conf.display()
    );

    let check = upkeep_on_host(dir, &path, &["check", "--format", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&check.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&check.stdout), text(&check.stderr)));
    let assumptions = report["assumptions"].to_string();
    assert!(
        assumptions.contains(&source) && assumptions.contains("read on this host: php-fpm"),
        "{assumptions}"
    );
    let findings = report["findings"].as_array().unwrap();
    let u011 = findings
        .iter()
        .find(|f| f["rule"] == "U011")
        .unwrap_or_else(|| panic!("no U011: {findings:#?}"));
    // The children are known: the pooling fix is safe, and says why.
    assert_eq!(u011["fix"]["applicability"], "safe", "{u011:#}");
    assert!(
        u011["fix"]["description"]
            .as_str()
            .unwrap()
            .contains(&source),
        "{u011:#}"
    );
    // php-fpm says nothing of idle connections: U007 says the idle timeout
    // is unknown (FastCGI routes take POST), and what was found.
    let u007 = findings
        .iter()
        .find(|f| f["rule"] == "U007")
        .unwrap_or_else(|| panic!("no U007: {findings:#?}"));
    assert_eq!(u007["severity"], "warning", "{u007:#}");
    assert!(
        u007["notes"]
            .to_string()
            .contains("without an idle timeout")
            && u007["notes"].to_string().contains(&source),
        "{u007:#}"
    );

    let fix = upkeep_on_host(dir, &path, &["fix"]);
    let diff = text(&fix.stdout);
    let said = text(&fix.stderr);
    // (3 children - 1 left free) / 2 workers.
    assert!(diff.contains("-        keepalive 32;"), "{diff}\n{said}");
    assert!(diff.contains("+        keepalive 1;"), "{diff}\n{said}");
    assert!(
        diff.contains("+            fastcgi_keep_conn on;"),
        "{diff}"
    );
    assert!(
        said.contains(&format!(
            "lower upstream `php`'s `keepalive 32` to 1 ({CHILDREN} children (php-fpm pid "
        )) && said.contains(&source),
        "{said}"
    );
    drop(nginx);
    drop(fpm);

    // The fixed config on the same nginx and PHP-FPM: every request still
    // served.
    let after_conf = apply_diff(&before_conf, &diff);
    let after = run_phase(dir, &after_conf, &fpm_bin);
    eprintln!(
        "FastCGI on the host, php-fpm with {CHILDREN} children found running ({source}): before (keepalive 32, no keep_conn) 200={} of {}; after `upkeep fix` 200={} of {}",
        count(&before, 200),
        before.len(),
        count(&after, 200),
        after.len()
    );
    assert_eq!(count(&before, 200), before.len(), "before: {before:?}");
    assert_eq!(count(&after, 200), after.len(), "after the fix: {after:?}");
}
