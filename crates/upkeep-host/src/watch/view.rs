//! The watch for people: a small table redrawn in place on a terminal
//! ([`frame`]), or one `key=value` line per interval for pipes and logs
//! ([`line`]). Both show what the Prometheus page publishes: per backend
//! the ephemeral ports in use, the requests and client-visible 502s of the
//! access log and the stale keep-alive failures of the error log (since
//! the start), the open-file headroom of nginx, the findings of the static
//! check, and the followed logs that do not exist yet.

use std::fmt::Write;

use upkeep_logs::Signature;

use super::client::per_second;
use super::json::rfc3339_utc;
use super::open_files::ProcessFiles;
use super::peers::{peer_totals, PeerTotals};
use super::{Interval, Sources, WatchedBackend};
use crate::sockets::canonical;

/// Styles for the terminal frame.
#[derive(Clone, Copy, Debug, Default)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn bold(self, s: &str) -> String {
        self.paint("1", s)
    }

    fn red(self, s: &str) -> String {
        self.paint("31;1", s)
    }

    fn paint(self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
}

fn rate(v: f64) -> String {
    format!("{v:.1}")
}

fn opt_ratio(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.2}"))
}

fn opt_count(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

/// Peers that are not watched backends named on the frame's line for them.
const OTHER_PEERS_SHOWN: usize = 10;

/// The since-start counts of the peer at backend address `b`.
fn peer_of<'p>(peers: &'p [PeerTotals], b: &WatchedBackend) -> Option<&'p PeerTotals> {
    let addr = canonical(b.addr);
    peers
        .iter()
        .find(|p| p.peer.parse().ok().map(canonical) == Some(addr))
}

/// `12 (0.04%)`: ephemeral ports towards a backend, and their share of the
/// range.
fn ports(used: u64, range: Option<u64>) -> String {
    match range {
        Some(size) if size > 0 => format!("{used} ({:.2}%)", used as f64 * 100.0 / size as f64),
        _ => "-".into(),
    }
}

fn port_range_size(src: &Sources<'_>) -> Option<u64> {
    src.opts
        .port_range
        .map(|(lo, hi)| u64::from(hi.saturating_sub(lo)) + 1)
}

/// `master 12/1024 (1012 left)`
fn files(role: &str, p: &ProcessFiles) -> String {
    match (p.soft_limit, p.headroom()) {
        (Some(limit), Some(left)) => format!("{role} {}/{limit} ({left} left)", p.open),
        _ => format!("{role} {} (no limit)", p.open),
    }
}

/// The terminal frame of one interval (ends with a newline); `src` is what
/// the watch follows ([`super::Watcher::sources`]).
pub fn frame(i: &Interval, src: &Sources<'_>, source: &str, style: Style) -> String {
    let mut out = String::new();
    let nginx = &src.opts.build.nginx_version;
    let _ = writeln!(
        out,
        "{}  {source}{}  interval {:.1}s  #{}  {}",
        style.bold("upkeep watch"),
        if nginx.is_empty() {
            String::new()
        } else {
            format!("  (nginx {})", upkeep_diag::terminal_safe_line(nginx))
        },
        i.seconds(),
        i.index,
        rfc3339_utc(i.time)
    );

    match (&i.client, &i.status, &i.status_error) {
        (_, _, Some(e)) => {
            let _ = writeln!(out, "clients   stub_status failed: {e}");
        }
        (Some(c), Some(s), None) => {
            let _ = writeln!(
                out,
                "clients   {} req/s  {} conn/s  {} req/conn (since start {})  active {} (reading {}, writing {}, waiting {}){}",
                rate(c.requests_per_second()),
                rate(c.accepts_per_second()),
                opt_ratio(c.requests_per_connection()),
                opt_ratio(i.totals.requests_per_connection()),
                s.active,
                s.reading,
                s.writing,
                s.waiting,
                if c.dropped() > 0 {
                    style.red(&format!("  {} dropped", c.dropped()))
                } else {
                    String::new()
                }
            );
        }
        (None, Some(s), None) => {
            let _ = writeln!(
                out,
                "clients   (new baseline)  active {} (reading {}, writing {}, waiting {})",
                s.active, s.reading, s.writing, s.waiting
            );
        }
        _ => {
            let _ = writeln!(out, "clients   no stub_status (give --status-url)");
        }
    }

    let peers = peer_totals(src, &i.totals);
    if i.backends.is_empty() {
        let _ = writeln!(out, "upstream  no backend addresses (give --backend)");
    } else {
        let _ = writeln!(
            out,
            "upstream  {} new conn/s  {} req/new conn  ESTAB {}  TIME_WAIT {}",
            rate(i.new_connections_per_second()),
            opt_ratio(i.requests_per_new_connection()),
            i.established(),
            i.time_wait()
        );
        let width = i
            .backends
            .iter()
            .map(|b| b.backend.addr.to_string().len())
            .max()
            .unwrap_or(0)
            .max("backend".len());
        // requests, 502 and stale: since the start, like the counters of
        // the Prometheus page; "-" when their log is not followed.
        let range = port_range_size(src);
        let _ = writeln!(
            out,
            "  {:<width$}  {:>10}  {:>6}  {:>9}  {:>12}  {:>13}  {:>8}  {:>5}  {:>5}  upstream",
            "backend",
            "new conn/s",
            "ESTAB",
            "TIME_WAIT",
            "(backend end)",
            "ports used",
            "requests",
            "502",
            "stale"
        );
        for b in &i.backends {
            let s = b.sockets;
            let peer = peer_of(&peers, &b.backend);
            let _ = writeln!(
                out,
                "  {:<width$}  {:>10}  {:>6}  {:>9}  {:>12}  {:>13}  {:>8}  {:>5}  {:>5}  {}",
                b.backend.addr.to_string(),
                rate(per_second(b.new_connections, i.duration)),
                opt_count(s.map(|s| s.established)),
                opt_count(s.map(|s| s.time_wait)),
                opt_count(s.map(|s| s.backend_end_time_wait)),
                s.map_or_else(|| "-".into(), |s| ports(s.in_port_range, range)),
                opt_count(peer.and_then(|p| p.requests)),
                opt_count(peer.and_then(|p| p.bad_gateway)),
                if src.error_logs {
                    peer.map_or(0, |p| p.stale_reuse()).to_string()
                } else {
                    "-".into()
                },
                // No upstream block: a `proxy_pass` to the address (shown
                // as written there) or an address given on the command line.
                // Names from the config: control characters escaped.
                upkeep_diag::terminal_safe_line(&if b.backend.upstreams.is_empty() {
                    b.backend.written.clone()
                } else {
                    b.backend.upstreams.join(", ")
                })
            );
        }
    }

    let mut errors = Vec::new();
    for sig in Signature::ALL {
        let n = i.errors.count(sig);
        if n > 0 {
            errors.push(style.red(&format!(
                "{} {}/s",
                sig.id(),
                rate(i.signatures_per_second(sig))
            )));
        }
    }
    let _ = writeln!(
        out,
        "errors    {}  (since start: {})",
        if errors.is_empty() {
            "none".to_string()
        } else {
            errors.join("  ")
        },
        since_start_signatures(i)
    );
    // Peers the logs name that are not watched backends, busiest first and
    // at most OTHER_PEERS_SHOWN of them: with pod churn there can be
    // thousands, redrawn every interval.
    let mut other_peers: Vec<_> = peers
        .iter()
        .filter(|p| {
            !i.backends
                .iter()
                .any(|b| peer_of(std::slice::from_ref(*p), &b.backend).is_some())
        })
        .collect();
    let weight = |p: &PeerTotals| -> u64 {
        p.requests.unwrap_or(0) + p.bad_gateway.unwrap_or(0) + p.signatures.values().sum::<u64>()
    };
    other_peers.sort_by(|a, b| weight(b).cmp(&weight(a)).then_with(|| a.peer.cmp(&b.peer)));
    let not_shown = other_peers.len().saturating_sub(OTHER_PEERS_SHOWN);
    let mut others: Vec<String> = other_peers
        .iter()
        .take(OTHER_PEERS_SHOWN)
        .map(|p| {
            let mut parts = vec![upkeep_diag::terminal_safe_line(&p.peer).into_owned()];
            if let Some(r) = p.requests {
                parts.push(format!("requests {r}"));
            }
            if let Some(b) = p.bad_gateway {
                parts.push(format!("502 {b}"));
            }
            for (sig, n) in &p.signatures {
                parts.push(format!("{} {n}", sig.id()));
            }
            parts.join(" ")
        })
        .collect();
    if not_shown > 0 {
        others.push(format!("and {not_shown} more (`--format json` lists them)"));
    }
    if !others.is_empty() {
        let _ = writeln!(
            out,
            "  other peers logged (since start): {}",
            others.join("; ")
        );
    }
    if src.access_logs {
        let _ = writeln!(
            out,
            "access    {} lines, {} unparsed  (since start: {}, {} unparsed)",
            i.access.lines, i.access.unparsed, i.totals.access.lines, i.totals.access.unparsed
        );
    }
    if let Some(f) = &i.open_files {
        let mut parts: Vec<String> = Vec::new();
        if let Some(m) = &f.master {
            parts.push(files("master", m));
        }
        if let Some(w) = &f.tightest_worker {
            parts.push(files("tightest worker", w));
        }
        parts.push(format!("workers {}", f.workers));
        let _ = writeln!(out, "files     {}", parts.join("  "));
    }
    if let Some(found) = src.findings {
        let mut counts: Vec<String> = found
            .counts
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|((rule, severity), n)| format!("{rule} {severity} {n}"))
            .collect();
        if counts.is_empty() {
            counts.push("no findings".into());
        }
        let when = found.last_success.map_or_else(
            || "never loaded".into(),
            |t| format!("last {}", rfc3339_utc(t)),
        );
        let _ = writeln!(
            out,
            "check     {}  ({} check{}, {when})",
            counts.join(", "),
            found.checks,
            if found.checks == 1 { "" } else { "s" }
        );
        if let Some(e) = &found.last_error {
            let failed = format!("last check failed: {}", upkeep_diag::terminal_safe_line(e));
            let _ = writeln!(out, "check     {}", style.red(&failed));
        }
    }
    for l in i.logs.iter().filter(|l| !l.readable()) {
        let shown = l.path.display().to_string();
        let path = upkeep_diag::terminal_safe_line(&shown);
        let _ = match &l.refused {
            Some(why) => writeln!(
                out,
                "logs      {} log {path} is not read: {}",
                l.kind.as_str(),
                upkeep_diag::terminal_safe_line(why)
            ),
            None => writeln!(
                out,
                "logs      {} log {path} is missing: followed once it appears",
                l.kind.as_str(),
            ),
        };
    }
    let limit = i.totals.peer_limit();
    if limit.reached() {
        let evictions = limit.error_log.evictions + limit.access_log.evictions;
        let _ = writeln!(
            out,
            "peers     limit of {} addresses reached (--max-peers): the busiest are counted exactly; {evictions} time{} an address lost its place, its counts are under {}",
            limit.limit,
            if evictions == 1 { "" } else { "s" },
            upkeep_logs::upstreams::OVERFLOW_UPSTREAM,
        );
    }
    if let Some(e) = &i.census_error {
        let _ = writeln!(out, "note      socket census failed: {e}");
    }
    for n in &i.notes {
        let _ = writeln!(out, "note      {n}");
    }
    out
}

fn since_start_signatures(i: &Interval) -> String {
    let parts: Vec<String> = Signature::ALL
        .iter()
        .filter(|s| i.totals.errors.count(**s) > 0)
        .map(|s| format!("{} {}", s.id(), i.totals.errors.count(*s)))
        .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

/// One line per interval (no newline at the end); `src` as for [`frame`].
pub fn line(i: &Interval, src: &Sources<'_>) -> String {
    let peers = peer_totals(src, &i.totals);
    let range = port_range_size(src);
    let mut out = rfc3339_utc(i.time);
    match (&i.client, &i.status_error) {
        (_, Some(e)) => {
            let _ = write!(out, " stub_status_error={e:?}");
        }
        (Some(c), None) => {
            let _ = write!(
                out,
                " req/s={} conn/s={} req/conn={}",
                rate(c.requests_per_second()),
                rate(c.accepts_per_second()),
                opt_ratio(c.requests_per_connection())
            );
            if c.dropped() > 0 {
                let _ = write!(out, " dropped={}", c.dropped());
            }
        }
        (None, None) => {}
    }
    if let Some(s) = &i.status {
        let _ = write!(out, " active={}", s.active);
    }
    if !i.backends.is_empty() {
        let _ = write!(
            out,
            " upstream_new/s={} req/new_conn={} estab={} time_wait={}",
            rate(i.new_connections_per_second()),
            opt_ratio(i.requests_per_new_connection()),
            i.established(),
            i.time_wait()
        );
        for b in &i.backends {
            let s = b.sockets;
            let _ = write!(
                out,
                " [{} new/s={} estab={} time_wait={}",
                b.backend.addr,
                rate(per_second(b.new_connections, i.duration)),
                opt_count(s.map(|s| s.established)),
                opt_count(s.map(|s| s.time_wait_total()))
            );
            if range.is_some() {
                let _ = write!(out, " ports={}", opt_count(s.map(|s| s.in_port_range)));
            }
            // Since the start, as in the frame.
            let peer = peer_of(&peers, &b.backend);
            if src.access_logs {
                let _ = write!(
                    out,
                    " requests={} 502={}",
                    opt_count(peer.and_then(|p| p.requests)),
                    opt_count(peer.and_then(|p| p.bad_gateway))
                );
            }
            if src.error_logs {
                let _ = write!(out, " stale={}", peer.map_or(0, |p| p.stale_reuse()));
            }
            out.push(']');
        }
    }
    let total = i.errors.total();
    let _ = write!(out, " errors/s={}", rate(per_second(total, i.duration)));
    for sig in Signature::ALL {
        let n = i.errors.count(sig);
        if n > 0 {
            let _ = write!(out, " {}={n}", sig.id());
        }
    }
    if let Some(f) = &i.open_files {
        for (role, p) in [("master", &f.master), ("worker", &f.tightest_worker)] {
            if let Some(left) = p.as_ref().and_then(|p| p.headroom()) {
                let _ = write!(out, " nofile_headroom_{role}={left}");
            }
        }
    }
    if let Some(found) = src.findings {
        let counts: Vec<String> = found
            .counts
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|((rule, severity), n)| format!("{rule}:{severity}:{n}"))
            .collect();
        let shown = if counts.is_empty() {
            "none".to_string()
        } else {
            counts.join(",")
        };
        let _ = write!(out, " findings={shown}");
        if let Some(e) = &found.last_error {
            let _ = write!(out, " check_error={e:?}");
        }
    }
    for l in i.logs.iter().filter(|l| !l.readable()) {
        let state = if l.present { "unreadable" } else { "missing" };
        let _ = write!(
            out,
            " {state}_{}_log={:?}",
            l.kind.as_str(),
            l.path.display().to_string()
        );
    }
    let limit = i.totals.peer_limit();
    if limit.reached() {
        let _ = write!(out, " peer_limit_reached={}", limit.limit);
    }
    if let Some(e) = &i.census_error {
        let _ = write!(out, " census_error={e:?}");
    }
    for n in &i.notes {
        let _ = write!(out, " note={n:?}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    use crate::sockets::AddressCount;
    use crate::watch::findings::StaticFindings;
    use crate::watch::open_files::OpenFiles;
    use crate::watch::{BackendInterval, LogKind, LogState, Totals, WatchOptions};

    const STALE: &[u8] = br#"2026/11/23 14:26:24 [error] 30381#0: *14 upstream prematurely closed connection while reading response header from upstream, client: 127.0.0.1, server: , request: "POST /a HTTP/1.1", upstream: "http://127.0.0.1:8080/a", host: "t""#;
    const NO_LIVE: &[u8] = br#"2026/11/23 14:26:25 [error] 30381#0: *15 no live upstreams while connecting to upstream, client: 127.0.0.1, server: , request: "GET /b HTTP/1.1", upstream: "http://other/b", host: "t""#;

    /// One backend of upstream `app` with a stale-reuse line and two
    /// access-log requests (one a 502), every source followed.
    fn sample() -> (Interval, WatchOptions, StaticFindings) {
        let backend = WatchedBackend {
            addr: "127.0.0.1:8080".parse().unwrap(),
            written: "127.0.0.1:8080".into(),
            upstreams: vec!["app".into()],
        };
        let mut opts = WatchOptions::new(None, vec![backend.clone()]);
        opts.port_range = Some((32768, 60999));
        opts.build.nginx_version = "1.22.1".into();
        let mut found = StaticFindings::default();
        found.record([("U007", "error"), ("U001", "warning"), ("U001", "warning")]);
        let mut totals = Totals::default();
        totals.errors.add_line(STALE);
        totals.errors.add_line(NO_LIVE);
        let format =
            upkeep_logs::access_format::LogFormat::parse("$status $upstream_addr").unwrap();
        totals.access.add_line(&format, b"200 127.0.0.1:8080");
        totals.access.add_line(&format, b"502 127.0.0.1:8080");
        let i = Interval {
            index: 3,
            time: UNIX_EPOCH,
            elapsed: Duration::from_secs(3),
            duration: Duration::from_secs(1),
            client: None,
            status: None,
            status_error: None,
            backends: vec![BackendInterval {
                backend,
                new_connections: 2,
                sockets: Some(AddressCount {
                    established: 1,
                    time_wait: 1,
                    in_port_range: 2,
                    ..AddressCount::default()
                }),
            }],
            census_source: None,
            census_polls: 5,
            census_error: None,
            errors: totals.errors.clone(),
            access: totals.access.clone(),
            open_files: Some(OpenFiles {
                master: Some(ProcessFiles {
                    pid: 10,
                    open: 12,
                    soft_limit: Some(1024),
                }),
                tightest_worker: Some(ProcessFiles {
                    pid: 11,
                    open: 30,
                    soft_limit: Some(1024),
                }),
                workers: 1,
                worker_pids: vec![11],
            }),
            logs: vec![LogState {
                kind: LogKind::Error,
                path: "/var/log/nginx/late.log".into(),
                present: false,
                refused: None,
            }],
            notes: Vec::new(),
            totals,
        };
        (i, opts, found)
    }

    #[test]
    fn frame_and_line_show_what_the_page_publishes() {
        let (i, opts, found) = sample();
        let src = Sources {
            opts: &opts,
            error_logs: true,
            access_logs: true,
            findings: Some(&found),
        };
        let frame = frame(&i, &src, "nginx 10", Style::default());
        assert!(frame.contains("(nginx 1.22.1)"), "{frame}");
        let row = frame
            .lines()
            .find(|l| l.trim_start().starts_with("127.0.0.1:8080"))
            .unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        // address, new conn/s, ESTAB, TIME_WAIT, backend end, ports used
        // (2 of 28232), requests, 502, stale, upstream
        assert_eq!(
            cells,
            [
                "127.0.0.1:8080",
                "2.0",
                "1",
                "1",
                "0",
                "2",
                "(0.01%)",
                "2",
                "1",
                "1",
                "app"
            ],
            "{frame}"
        );
        assert!(
            frame.contains("other peers logged (since start): other no-live-upstreams 1"),
            "{frame}"
        );
        assert!(frame.contains("access    2 lines, 0 unparsed"), "{frame}");
        assert!(
            frame.contains("files     master 12/1024 (1012 left)  tightest worker 30/1024 (994 left)  workers 1"),
            "{frame}"
        );
        assert!(
            frame.contains("check     U001 warning 2, U007 error 1  (1 check, last "),
            "{frame}"
        );
        assert!(
            frame.contains(
                "logs      error log /var/log/nginx/late.log is missing: followed once it appears"
            ),
            "{frame}"
        );

        let line = line(&i, &src);
        assert!(
            line.contains(
                "[127.0.0.1:8080 new/s=2.0 estab=1 time_wait=1 ports=2 requests=2 502=1 stale=1]"
            ),
            "{line}"
        );
        assert!(
            line.contains(" nofile_headroom_master=1012 nofile_headroom_worker=994"),
            "{line}"
        );
        assert!(
            line.contains(" findings=U001:warning:2,U007:error:1"),
            "{line}"
        );
        assert!(
            line.contains(" missing_error_log=\"/var/log/nginx/late.log\""),
            "{line}"
        );
    }

    #[test]
    fn the_peer_limit_reached_is_said() {
        let (mut i, opts, _) = sample();
        let src = Sources {
            opts: &opts,
            error_logs: true,
            access_logs: false,
            findings: None,
        };
        assert!(!frame(&i, &src, "nginx", Style::default()).contains("peers     limit"));
        assert!(!line(&i, &src).contains("peer_limit_reached"));
        i.totals = Totals::with_peer_limit(1);
        i.totals.errors.add_line(STALE);
        i.totals.errors.add_line(NO_LIVE);
        let frame = frame(&i, &src, "nginx", Style::default());
        assert!(
            frame.contains("peers     limit of 1 addresses reached (--max-peers): the busiest are counted exactly; 1 time an address lost its place, its counts are under (other addresses)"),
            "{frame}"
        );
        assert!(line(&i, &src).contains(" peer_limit_reached=1"));
    }

    #[test]
    fn sources_not_followed_show_as_dashes_not_zeros() {
        let (mut i, opts, _) = sample();
        i.logs.clear();
        let src = Sources {
            opts: &opts,
            error_logs: false,
            access_logs: false,
            findings: None,
        };
        let frame = frame(&i, &src, "nginx", Style::default());
        let row = frame
            .lines()
            .find(|l| l.trim_start().starts_with("127.0.0.1:8080"))
            .unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(&cells[7..], ["-", "-", "-", "app"], "{frame}");
        assert!(!frame.contains("access "), "{frame}");
        assert!(!frame.contains("check "), "{frame}");
        let line = line(&i, &src);
        assert!(
            !line.contains("requests=") && !line.contains("stale="),
            "{line}"
        );
    }

    #[test]
    fn only_the_busiest_other_peers_are_named_on_the_frame() {
        let (mut i, opts, _) = sample();
        let format =
            upkeep_logs::access_format::LogFormat::parse("$status $upstream_addr").unwrap();
        // 25 peers that are not watched backends; 10.0.0.N gets N requests.
        for n in 1..=25u32 {
            for _ in 0..n {
                i.totals
                    .access
                    .add_line(&format, format!("200 10.0.0.{n}:80").as_bytes());
            }
        }
        let src = Sources {
            opts: &opts,
            error_logs: true,
            access_logs: true,
            findings: None,
        };
        let frame = frame(&i, &src, "nginx 10", Style::default());
        let line = frame
            .lines()
            .find(|l| l.contains("other peers logged"))
            .unwrap();
        assert!(
            line.contains("10.0.0.25:80 requests 25 502 0; 10.0.0.24:80 requests 24 502 0"),
            "{line}"
        );
        assert!(
            line.contains("10.0.0.16:80 requests 16 502 0; and"),
            "{line}"
        );
        assert!(!line.contains("10.0.0.15:80"), "{line}");
        // 25 addresses and the error log's `other` upstream, 10 shown.
        assert!(
            line.ends_with("and 16 more (`--format json` lists them)"),
            "{line}"
        );
    }
}
