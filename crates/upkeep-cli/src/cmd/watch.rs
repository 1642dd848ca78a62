//! `upkeep watch`: a running nginx, live — client requests/s, new upstream
//! connections/s, requests per connection, TIME_WAIT, error signatures/s —
//! and optionally a Prometheus endpoint. The sampling is upkeep-host's
//! [`Watcher`]; this module finds what to watch (as `doctor` does: the
//! running configuration's backends, stub_status location and error logs)
//! and prints each interval.

use std::io::{IsTerminal, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context as _};
use upkeep_config::{ConfigSet, LoadOptions};
use upkeep_host::live_config::{resolve_path, LiveConfig};
use upkeep_host::sockets::SocketReader;
use upkeep_host::stub_status::StatusUrl;
use upkeep_host::sysctl::Sysctls;
use upkeep_host::watch::access_log::AccessLogSource;
use upkeep_host::watch::metrics_server::{MetricsServer, Page};
use upkeep_host::watch::view::{self, Style};
use upkeep_host::watch::{json, WatchOptions, WatchedBackend, Watcher};
use upkeep_rules::NginxVersion;

use super::check::ColorChoice;
use super::live::{self, LoadFailure, LocalNginx};
use crate::EXIT_INPUT_ERROR;

/// Shortest and longest `--interval`.
const MIN_INTERVAL: Duration = Duration::from_millis(100);
const MAX_INTERVAL: Duration = Duration::from_secs(3600);

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Every interval shows: client requests/s and connections/s and requests per \
connection (from stub_status, the watch's own requests left out); per backend \
address, the new connections/s (seen appearing in the socket census, polled \
every 200 ms: a lower bound), ESTABLISHED and TIME_WAIT sockets and the \
ephemeral ports in use, and since the start its requests and client-visible \
502s (access log) and stale keep-alive failures (error log); the failure \
signatures logged per second (the IDs of `upkeep logs`); the open-file \
headroom of the nginx master and workers; and the findings of `upkeep check` \
on the running configuration, checked at the start and again whenever nginx \
reloads (new master or workers) or a configuration file changes. A log that \
does not exist yet is said to be missing, and is followed from its start \
once it appears. At most --max-peers peer addresses are counted per log, as \
`upkeep logs` counts them: past the limit the busiest stay exact, the others \
are pooled under \"(other addresses)\", and the output says the limit was \
reached.

On a terminal the view is redrawn in place; otherwise one line per interval. \
`--format json` prints one JSON object per interval, one per line (schema 1: \
interval, time, elapsed_ms, duration_ms, build, clients, stub_status, \
upstream, backends[] with ephemeral_ports, ephemeral_ports_used_ratio, \
requests, bad_gateway, stale_reuse; census with port_range_size; errors, \
access_log, open_files, findings, logs[] with present, readable, refused; \
totals with peers and peer_addresses; \
notes; every field is described in the README, \"Many hosts\", with the \
metric it matches). `--listen` serves the same data as Prometheus metrics on /metrics: \
the totals since the start as counters, the last interval's gauges; the \
metric list is in the README (\"Many hosts\").")]
pub struct Args {
    /// The nginx binary (default: `nginx` on PATH, then /usr/sbin).
    #[arg(long, value_name = "PATH")]
    pub nginx: Option<PathBuf>,

    /// Read this configuration instead of running `nginx -T` (it names the
    /// backends, the stub_status location and the error logs).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// nginx's prefix (`nginx -p`), for relative error_log and pid paths
    /// (default: the binary's compiled-in prefix).
    #[arg(long, value_name = "DIR")]
    pub prefix: Option<PathBuf>,

    /// The nginx master's pid: its configuration is the one it was started
    /// with (`-p`, `-c`, `-g`), and its network namespace's sockets are
    /// read. Default: the master in the compiled-in pid file (its
    /// configuration is read too), else the configuration's pid file, else
    /// the only `nginx: master process` on this host.
    #[arg(long, value_name = "PID")]
    pub pid: Option<i32>,

    /// The stub_status page (default: a `stub_status` location of the
    /// configuration that listens on loopback).
    #[arg(long, value_name = "URL")]
    pub status_url: Option<String>,

    /// A backend address to watch besides the configuration's (repeatable).
    #[arg(long = "backend-address", value_name = "HOST:PORT")]
    pub backend_addresses: Vec<String>,

    /// An error log to follow instead of the configuration's (repeatable).
    #[arg(long = "error-log", value_name = "FILE")]
    pub error_logs: Vec<PathBuf>,

    /// An access log to follow instead of the configuration's (repeatable),
    /// for requests and client-visible 502s per upstream peer; its format
    /// needs $status and $upstream_addr.
    #[arg(long = "access-log", value_name = "FILE")]
    pub access_logs: Vec<PathBuf>,

    /// The log_format of the --access-log files (nginx syntax, or
    /// `combined`).
    #[arg(long, value_name = "FORMAT", requires = "access_logs")]
    pub access_log_format: Option<String>,

    /// Length of an interval (nginx syntax: 1s, 500ms).
    #[arg(long, value_name = "DURATION", default_value = "1s")]
    pub interval: String,

    /// Peer addresses (as the error and access logs name them) counted at
    /// once per log, so that pods that come and go do not grow memory: past
    /// it the busiest stay exact and the others are pooled under "(other
    /// addresses)".
    #[arg(long, value_name = "N", default_value_t = upkeep_host::watch::DEFAULT_MAX_PEERS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    pub max_peers: usize,

    /// Stop after N intervals (default: until Ctrl-C).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,

    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,

    /// Serve Prometheus metrics on http://ADDR/metrics, e.g. 127.0.0.1:9145
    /// (a request head must arrive within 5 s; at 256 connections the one
    /// that has waited longest for its head is closed, so idle or slow
    /// clients cannot keep a scrape out).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,

    /// Colours in the terminal view.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// Do not print what is watched and what is not.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let interval = parse_interval(&args.interval)?;
    let status_url = live::status_url(args.status_url.as_deref())?;
    let listen = args.listen.as_deref().map(parse_listen).transpose()?;
    let mut given_backends = Vec::new();
    for a in &args.backend_addresses {
        given_backends.extend(resolve_backend(a)?);
    }
    let explicit_sources = status_url.is_some() || !given_backends.is_empty();

    let nginx = LocalNginx::locate(args.nginx.as_deref(), args.pid, args.config.as_deref())?;
    let prefix = args.prefix.clone().or_else(|| nginx.prefix());

    let mut notes: Vec<String> = Vec::new();
    // Includes resolve against the main file's directory (a dump names
    // every file by its full path).
    let config = match nginx.load_config(args.config.as_deref(), &LoadOptions::default()) {
        Ok(c) => Some(c),
        Err(LoadFailure::Broken(e)) => {
            super::check::print_load_error(&e);
            return Ok(ExitCode::from(EXIT_INPUT_ERROR));
        }
        Err(why) if explicit_sources => {
            notes.push(format!("{why}; watching only what was given"));
            None
        }
        Err(why) => bail!(
            "{why}: give --config PATH, or what to watch with --status-url and --backend-address"
        ),
    };
    let version_text = nginx.binary.as_ref().and_then(|b| b.version().ok());
    let detected = version_text
        .as_deref()
        .and_then(|v| NginxVersion::parse(v).ok());
    let version = detected.unwrap_or(NginxVersion::DEFAULT_ASSUMED);
    let live = config
        .as_ref()
        .map(|c| LiveConfig::of(c, version))
        .unwrap_or_default();
    notes.extend(live.skipped.iter().cloned());

    let status = status_url.or_else(|| live.status_urls.first().cloned());
    let mut backends: Vec<WatchedBackend> =
        live.backends.iter().map(WatchedBackend::from).collect();
    for addr in given_backends {
        if !backends.iter().any(|b| b.addr == addr) {
            backends.push(WatchedBackend {
                addr,
                written: addr.to_string(),
                upstreams: Vec::new(),
            });
        }
    }
    let error_logs = if args.error_logs.is_empty() {
        config_error_logs(&live, &nginx, prefix.as_deref(), &mut notes)
    } else {
        args.error_logs.clone()
    };
    if status.is_none() && backends.is_empty() && error_logs.is_empty() {
        bail!("nothing to watch: no stub_status location, backend address or error log in the configuration; give --status-url, --backend-address or --error-log");
    }
    if status.is_none() {
        notes.push("no stub_status URL given or found in the configuration (a `stub_status` location on a loopback listener): no client rates".into());
    }
    if backends.is_empty() {
        notes.push("no TCP backend addresses: no upstream connections or TIME_WAIT".into());
    }
    if error_logs.is_empty() {
        notes.push("no readable error log: no error signatures".into());
    }
    let access_logs = if args.access_logs.is_empty() {
        config_access_logs(&live, prefix.as_deref())
    } else {
        let format = args
            .access_log_format
            .clone()
            .unwrap_or_else(|| "combined".into());
        args.access_logs
            .iter()
            .map(|path| AccessLogSource {
                path: path.clone(),
                format: format.clone(),
            })
            .collect()
    };

    let pid = match nginx.master_pid(args.pid, &live, prefix.as_deref()) {
        Ok(pid) => Some(pid),
        Err(e) => {
            notes.push(format!(
                "{e}; reading the sockets of this network namespace"
            ));
            None
        }
    };

    // Before the baseline is taken (its stub_status request may wait for
    // a timeout), so an early Ctrl-C ends the watch cleanly too.
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    if let Err(e) = ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed)) {
        eprintln!("warning: Ctrl-C handler not installed: {e}");
    }

    let mut opts = WatchOptions::new(status.clone(), backends);
    opts.interval = interval;
    opts.reader = SocketReader::for_process(pid);
    opts.error_logs = error_logs;
    opts.access_logs = access_logs;
    opts.nginx_pid = pid;
    opts.max_peers = args.max_peers;
    opts.build.nginx_version = version_text.clone().unwrap_or_default();
    match Sysctls::read_for(pid) {
        Ok(s) => opts.port_range = s.ip_local_port_range,
        Err(e) => notes.push(format!(
            "net.ipv4.ip_local_port_range not read: {e}; no ephemeral-port use"
        )),
    }
    let mut watcher = Watcher::start(opts);
    notes.extend(watcher.problems.iter().cloned());

    // The static check of the running configuration (upkeep_findings, and
    // the views' findings), whenever a configuration was loaded.
    let mut reloads = config.is_some().then(|| ReloadWatch {
        config_path: args.config.clone(),
        generation: None,
        files: config.as_ref().map(config_files).unwrap_or_default(),
    });
    if let (Some(r), Some(c)) = (&mut reloads, &config) {
        r.generation = Some(Generation::now(
            &nginx,
            args.pid,
            &live,
            prefix.as_deref(),
            &r.files,
        ));
        record_check(&mut watcher, check_running(c, nginx.binary.as_ref()));
    }

    let page: Page = Arc::new(Mutex::new(watcher.exposition(None)));
    let _server = match listen {
        Some(addr) => {
            let server = MetricsServer::start(addr, page.clone())
                .with_context(|| format!("--listen {addr}"))?;
            if !args.quiet {
                eprintln!(
                    "serving Prometheus metrics on http://{}/metrics",
                    server.local_addr()
                );
            }
            Some(server)
        }
        None => None,
    };
    if !args.quiet {
        print_sources(&watcher, pid, &notes);
    }

    let stdout = std::io::stdout();
    let redraw = args.format == Format::Human && stdout.is_terminal();
    let style = Style {
        color: args.color.enabled(stdout.is_terminal()),
    };
    let header = header(status.as_ref(), pid);
    let status_text = status.as_ref().map(|s| s.to_string());
    let mut drawn_rows = 0usize;
    let mut done = 0u64;
    while args.count.is_none_or(|n| done < n) {
        let Some(interval) = watcher.next(&stop) else {
            break;
        };
        done += 1;
        if let Some(r) = &mut reloads {
            let now = Generation::now(&nginx, args.pid, &live, prefix.as_deref(), &r.files);
            if r.generation.as_ref() != Some(&now) {
                r.generation = Some(now);
                match nginx.load_config(r.config_path.as_deref(), &LoadOptions::default()) {
                    Ok(c) => {
                        r.files = config_files(&c);
                        record_check(&mut watcher, check_running(&c, nginx.binary.as_ref()));
                    }
                    Err(why) => watcher
                        .findings_mut()
                        .failed(format!("configuration not loaded after a reload: {why}")),
                }
            }
        }
        if let Ok(mut p) = page.lock() {
            *p = watcher.exposition(Some(&interval));
        }
        let mut out = stdout.lock();
        match args.format {
            Format::Json => {
                serde_json::to_writer(
                    &mut out,
                    &json::interval(&interval, &watcher.sources(), status_text.as_deref()),
                )?;
                out.write_all(b"\n")?;
            }
            Format::Human if redraw => {
                let frame = view::frame(&interval, &watcher.sources(), &header, style);
                if drawn_rows > 0 {
                    // Back to the top of the previous frame, and clear below.
                    write!(out, "\x1b[{drawn_rows}A\r\x1b[J")?;
                }
                out.write_all(frame.as_bytes())?;
                drawn_rows = screen_rows(&frame, terminal_width());
            }
            Format::Human => writeln!(out, "{}", view::line(&interval, &watcher.sources()))?,
        }
        out.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The terminal rows `text` takes: a line wider than the terminal wraps.
/// Escape sequences (colours) take no room.
fn screen_rows(text: &str, width: Option<usize>) -> usize {
    text.lines()
        .map(|line| {
            let mut visible = 0usize;
            let mut in_escape = false;
            for c in line.chars() {
                match (in_escape, c) {
                    (false, '\x1b') => in_escape = true,
                    (true, 'm') => in_escape = false,
                    (true, _) => {}
                    (false, _) => visible += 1,
                }
            }
            match width {
                Some(w) if w > 0 && visible > w => visible.div_ceil(w),
                _ => 1,
            }
        })
        .sum()
}

/// Columns of the terminal on standard output, if it is one.
fn terminal_width() -> Option<usize> {
    // SAFETY: TIOCGWINSZ writes one `winsize` into the struct we own; a
    // failure leaves it zeroed and is reported by the return value.
    unsafe {
        let mut size: libc::winsize = std::mem::zeroed();
        (libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) == 0 && size.ws_col > 0)
            .then_some(usize::from(size.ws_col))
    }
}

/// The configuration's error logs (those that exist here, or do not exist
/// yet: they are followed once they appear; else the one nginx was built
/// with), with a note for a level that hides the `[error]` lines.
fn config_error_logs(
    live: &LiveConfig,
    nginx: &LocalNginx,
    prefix: Option<&Path>,
    notes: &mut Vec<String>,
) -> Vec<PathBuf> {
    if live.error_logs.is_empty() {
        // The compiled-in log: followed when it exists, or when its
        // directory does and nginx will create it there.
        return nginx
            .built_error_log(prefix)
            .filter(|p| match std::fs::metadata(p) {
                Ok(m) => m.is_file(),
                Err(_) => p.parent().is_some_and(Path::is_dir),
            })
            .into_iter()
            .collect();
    }
    let mut found = Vec::new();
    for (path, level) in &live.error_logs {
        let Some(resolved) = resolve_path(path, prefix) else {
            notes.push(format!(
                "error_log {path}: relative path and no prefix known (give --prefix or --error-log)"
            ));
            continue;
        };
        match std::fs::metadata(&resolved) {
            Ok(m) if m.is_file() => {}
            // nginx creates it when it first writes to it (or a rotation
            // moved it away for now): followed, and read from its start
            // once it appears.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => notes.push(format!(
                "error_log {} does not exist yet: followed once it appears",
                resolved.display()
            )),
            _ => {
                notes.push(format!(
                    "error_log {}: not readable here",
                    resolved.display()
                ));
                continue;
            }
        }
        // Levels above `error` drop the lines of most signatures
        // (facts/signatures.tsv levels).
        if let Some(l) = level
            .as_deref()
            .filter(|l| matches!(*l, "crit" | "alert" | "emerg"))
        {
            notes.push(format!(
                "error_log {} is at level {l}: the [error] lines of upstream failures are not written to it",
                resolved.display()
            ));
        }
        if !found.contains(&resolved) {
            found.push(resolved);
        }
    }
    found
}

/// The configuration's access logs (those that exist here, or do not
/// exist yet), with their formats.
/// Those whose format lacks $upstream_addr or $status are refused (with a
/// note) when the watch opens them.
fn config_access_logs(live: &LiveConfig, prefix: Option<&Path>) -> Vec<AccessLogSource> {
    let mut found: Vec<AccessLogSource> = Vec::new();
    for log in &live.access_logs {
        let (Some(path), Some(format)) = (resolve_path(&log.path, prefix), live.format_of(log))
        else {
            continue;
        };
        // A log that does not exist yet is followed once it appears.
        let usable = match std::fs::metadata(&path) {
            Ok(m) => m.is_file(),
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        };
        if usable && !found.iter().any(|f| f.path == path) {
            found.push(AccessLogSource { path, format });
        }
    }
    found
}

/// What tells that nginx now runs another configuration: its master (a
/// restart or binary upgrade), its workers (a reload starts new ones), and
/// the modification times of the configuration's files.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Generation {
    master: Option<i32>,
    workers: Option<Vec<i32>>,
    mtimes: Vec<Option<SystemTime>>,
}

impl Generation {
    fn now(
        nginx: &LocalNginx,
        given_pid: Option<i32>,
        live: &LiveConfig,
        prefix: Option<&Path>,
        files: &[PathBuf],
    ) -> Generation {
        let master = nginx.master_pid(given_pid, live, prefix).ok();
        Generation {
            master,
            workers: master
                .and_then(|m| upkeep_host::process::Processes::read(m).ok())
                .map(|p| {
                    let mut pids: Vec<i32> = p.workers.iter().map(|(pid, _)| *pid).collect();
                    pids.sort_unstable();
                    pids
                }),
            mtimes: files
                .iter()
                .map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok())
                .collect(),
        }
    }
}

/// Follows reloads to run the static check again.
struct ReloadWatch {
    config_path: Option<PathBuf>,
    generation: Option<Generation>,
    files: Vec<PathBuf>,
}

fn config_files(c: &ConfigSet) -> Vec<PathBuf> {
    c.files.iter().map(|f| PathBuf::from(&f.path)).collect()
}

/// `upkeep check` on the running configuration: the options it would take
/// (upkeep.toml beside the main file, the host's backends read from /proc),
/// for the nginx version of the watched binary unless upkeep.toml names one,
/// and taken from that binary as `check` takes it (a binary of another
/// flavor than upkeep.toml's lends no version).
fn check_running(
    config: &ConfigSet,
    binary: Option<&upkeep_nginx::NginxBinary>,
) -> anyhow::Result<Vec<(&'static str, &'static str)>> {
    #[derive(clap::Parser)]
    struct Defaults {
        #[command(flatten)]
        input: super::check::InputArgs,
    }
    let input = <Defaults as clap::Parser>::parse_from(["upkeep"]).input;
    let main_dir = config
        .files
        .first()
        .and_then(|f| Path::new(&f.path).parent().map(Path::to_path_buf));
    let mut opts = super::check::check_options(&input, main_dir.as_deref())?;
    if opts.nginx_version.is_none() {
        if let Some(binary) = binary {
            let flavor_given = opts.flavor_given;
            super::check::take_binary_version(&mut opts, flavor_given, binary);
        }
    }
    super::check::add_host_backends(config, &mut opts);
    let report = upkeep_rules::check(config, &opts);
    Ok(report
        .findings
        .iter()
        .map(|f| (f.rule, f.severity.as_str()))
        .collect())
}

fn record_check(watcher: &mut Watcher, result: anyhow::Result<Vec<(&'static str, &'static str)>>) {
    let found = watcher.findings_mut();
    match result {
        Ok(findings) => found.record(findings),
        Err(e) => found.failed(format!("{e:#}")),
    }
}

fn print_sources(watcher: &Watcher, pid: Option<i32>, notes: &[String]) {
    let opts = watcher.options();
    let mut what = Vec::new();
    if let Some(s) = &opts.status {
        what.push(format!("stub_status {s}"));
    }
    if !opts.backends.is_empty() {
        what.push(format!(
            "{} backend address{} ({})",
            opts.backends.len(),
            if opts.backends.len() == 1 { "" } else { "es" },
            opts.backends
                .iter()
                .map(|b| b.addr.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let logs: Vec<String> = watcher
        .error_logs()
        .map(|p| p.display().to_string())
        .collect();
    if !logs.is_empty() {
        what.push(format!("error log {}", logs.join(", ")));
    }
    let access: Vec<String> = watcher
        .access_logs()
        .map(|p| p.display().to_string())
        .collect();
    if !access.is_empty() {
        what.push(format!("access log {}", access.join(", ")));
    }
    if let Some(pid) = pid {
        what.push(format!("nginx master {pid}"));
    }
    // File names of the logs and config come from outside.
    eprintln!(
        "watching {}",
        upkeep_diag::terminal_safe_line(&what.join("; "))
    );
    for n in notes {
        eprintln!("note: {}", upkeep_diag::terminal_safe(n));
    }
}

fn header(status: Option<&StatusUrl>, pid: Option<i32>) -> String {
    match (status, pid) {
        (Some(s), Some(pid)) => format!("nginx {pid}  {s}"),
        (Some(s), None) => s.to_string(),
        (None, Some(pid)) => format!("nginx {pid}"),
        (None, None) => "nginx".into(),
    }
}

fn parse_interval(s: &str) -> anyhow::Result<Duration> {
    let ms =
        upkeep_facts::parse_duration(s).map_err(|e| anyhow::anyhow!("--interval {s:?}: {e}"))?;
    let d = Duration::from_millis(ms);
    if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&d) {
        bail!("--interval {s:?}: give an interval between 100ms and 1h");
    }
    Ok(d)
}

fn parse_listen(s: &str) -> anyhow::Result<SocketAddr> {
    let mut addrs = s.to_socket_addrs().map_err(|e| {
        anyhow::anyhow!("--listen {s:?}: {e} (expected ADDR:PORT, e.g. 127.0.0.1:9145)")
    })?;
    addrs
        .next()
        .with_context(|| format!("--listen {s:?}: no address"))
}

fn resolve_backend(s: &str) -> anyhow::Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = s
        .to_socket_addrs()
        .map_err(|e| {
            anyhow::anyhow!(
                "--backend-address {s:?}: {e} (expected HOST:PORT, e.g. 127.0.0.1:8080)"
            )
        })?
        .collect();
    if addrs.is_empty() {
        bail!("--backend-address {s:?}: no address");
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_lines_take_more_rows_and_colours_none() {
        let frame = "12345\n1234567890ab\n\x1b[31;1mred\x1b[0m\n";
        assert_eq!(screen_rows(frame, Some(5)), 1 + 3 + 1);
        assert_eq!(screen_rows(frame, Some(80)), 3);
        assert_eq!(screen_rows(frame, None), 3);
    }
}
