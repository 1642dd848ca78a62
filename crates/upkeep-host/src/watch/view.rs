//! The watch for people: a small table redrawn in place on a terminal
//! ([`frame`]), or one `key=value` line per interval for pipes and logs
//! ([`line`]).

use std::fmt::Write;

use upkeep_logs::Signature;

use super::client::per_second;
use super::json::rfc3339_utc;
use super::Interval;

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

/// The terminal frame of one interval (ends with a newline).
pub fn frame(i: &Interval, source: &str, style: Style) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}  {source}  interval {:.1}s  #{}  {}",
        style.bold("upkeep watch"),
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
        let _ = writeln!(
            out,
            "  {:<width$}  {:>10}  {:>6}  {:>9}  {:>12}  upstream",
            "backend", "new conn/s", "ESTAB", "TIME_WAIT", "(backend end)"
        );
        for b in &i.backends {
            let s = b.sockets;
            let _ = writeln!(
                out,
                "  {:<width$}  {:>10}  {:>6}  {:>9}  {:>12}  {}",
                b.backend.addr.to_string(),
                rate(per_second(b.new_connections, i.duration)),
                opt_count(s.map(|s| s.established)),
                opt_count(s.map(|s| s.time_wait)),
                opt_count(s.map(|s| s.backend_end_time_wait)),
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

/// One line per interval (no newline at the end).
pub fn line(i: &Interval) -> String {
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
                " [{} new/s={} estab={} time_wait={}]",
                b.backend.addr,
                rate(per_second(b.new_connections, i.duration)),
                opt_count(s.map(|s| s.established)),
                opt_count(s.map(|s| s.time_wait_total()))
            );
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
    if let Some(e) = &i.census_error {
        let _ = write!(out, " census_error={e:?}");
    }
    for n in &i.notes {
        let _ = write!(out, " note={n:?}");
    }
    out
}
