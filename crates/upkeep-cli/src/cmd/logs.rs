//! `upkeep logs`: classify upstream and keep-alive failures in nginx error
//! logs, optionally joined with the access log.

use crate::{EXIT_FINDINGS, EXIT_INPUT_ERROR};
use anyhow::{bail, Context as _};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use upkeep_diag::{terminal_safe, terminal_safe_line};
use upkeep_logs::access_format::LogFormat;
use upkeep_logs::analysis::Analysis;
use upkeep_logs::follow::Follower;
use upkeep_logs::input::{expand_inputs, Input, Source};
use upkeep_logs::join::Joiner;
use upkeep_logs::report;
use upkeep_logs::run::{analyze, Options};
use upkeep_logs::scan::{EventSink, Scanner, TimeWindow};
use upkeep_logs::time::{parse_error_log_time, parse_iso_like, LogTime};
use upkeep_logs::{Classified, ErrorLine};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Error logs: files, glob patterns (quoted), `-` for standard input.
    /// Gzip is detected and streamed. Default: standard input, unless it is
    /// a terminal or --access-log is given.
    pub files: Vec<String>,

    /// Access log(s) to tell client-visible failures from retried ones
    /// (files or glob patterns; gzip is fine).
    #[arg(long = "access-log", value_name = "FILE")]
    pub access_log: Vec<String>,

    /// The access log's format in nginx syntax, e.g.
    /// '$remote_addr [$time_local] "$request" $status us="$upstream_status" c=$connection',
    /// or the name of a `log_format` (`combined`, the default, is built in;
    /// other names are looked up in --config, else in the config `nginx -V`
    /// names).
    #[arg(long = "log-format", value_name = "FORMAT")]
    pub log_format: Option<String>,

    /// Read the access log's format from this nginx config's `log_format`.
    #[arg(long = "config", value_name = "NGINX_CONF")]
    pub config: Option<PathBuf>,

    /// Which `log_format` of --config to use (default: the only one, or
    /// the one the config's access_log directives use).
    #[arg(long = "log-format-name", value_name = "NAME", requires = "config")]
    pub log_format_name: Option<String>,

    /// Only lines at or after this time: `2026-11-23 14:00[:00]`,
    /// `2026/11/23 14:00:00`, or a duration ago (`30m`, `2h`, `1d`).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Only lines before this time (same forms as --since).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,

    /// Keep reading as the logs grow, like `tail -F` (survives rotation);
    /// prints each failure as it is logged and the summary on Ctrl-C.
    #[arg(short = 'F', long)]
    pub follow: bool,

    /// Threads per large plain file (0 = all cores). A joined access log
    /// needs the error log in order and uses one.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub threads: usize,

    /// Output: a text report, or JSON (schema 1; fields in
    /// crates/upkeep-logs/README.md). With --follow: one JSON object per
    /// failure, then the report.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,

    /// Most per-minute rows (minute × signature × upstream) kept in memory,
    /// 24 bytes each; past it, minutes are merged into wider buckets (5, 15,
    /// 60 minutes, …) and the report says so. Totals stay exact.
    #[arg(long, default_value_t = upkeep_logs::minutes::DEFAULT_MAX_ROWS, value_name = "N",
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(10_000..))]
    pub max_minute_rows: usize,

    /// Never draw the progress bar (it is drawn only on a terminal, for
    /// inputs over 8 MiB).
    #[arg(long)]
    pub no_progress: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let utc_offset = local_utc_offset();
    let window = time_window(&args, utc_offset)?;
    let mut file_args = args.files.clone();
    if file_args.is_empty() && args.access_log.is_empty() {
        if std::io::stdin().is_terminal() {
            bail!("no input: give error log files, or pipe a log on standard input");
        }
        file_args.push("-".into());
    }
    let inputs = expand_inputs(&file_args)?;
    if args.follow {
        return follow(&args, &inputs, window);
    }
    let show_progress = !args.no_progress && std::io::stderr().is_terminal();
    let analysis = analyze_inputs(&args, &inputs, window, utc_offset, show_progress)?;
    emit(&analysis, args.format)
}

/// `--since` and `--until`, checked.
pub fn time_window(args: &Args, utc_offset: i64) -> anyhow::Result<TimeWindow> {
    let window = TimeWindow {
        since: args
            .since
            .as_deref()
            .map(|s| parse_time_arg("--since", s, utc_offset))
            .transpose()?,
        until: args
            .until
            .as_deref()
            .map(|s| parse_time_arg("--until", s, utc_offset))
            .transpose()?,
    };
    if let (Some(since), Some(until)) = (window.since, window.until) {
        if since >= until {
            bail!(
                "--since {} is not before --until {}: no line can match",
                since.display(),
                until.display()
            );
        }
    }
    Ok(window)
}

/// Reads the error logs `inputs` to their end (joined with the access logs
/// of `args`, if any) and returns what was found. Memory is bounded by
/// `--max-minute-rows` whatever the logs' size. The progress bar is drawn on
/// stderr when `show_progress` and the inputs are large.
pub fn analyze_inputs(
    args: &Args,
    inputs: &[Input],
    window: TimeWindow,
    utc_offset: i64,
    show_progress: bool,
) -> anyhow::Result<Analysis> {
    let threads = match args.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };

    let progress = Arc::new(AtomicU64::new(0));
    let access_inputs = expand_inputs(&args.access_log)?;
    let joiner = if access_inputs.is_empty() {
        None
    } else {
        let format = access_format(args)?;
        Some(Joiner::new(
            access_inputs.clone(),
            format,
            utc_offset,
            Some(progress.clone()),
        ))
    };
    let total: u64 = inputs
        .iter()
        .chain(&access_inputs)
        .filter_map(Input::size)
        .sum();
    let bar =
        (show_progress && total >= 8 << 20).then(|| ProgressBar::start(progress.clone(), total));

    let opts = Options {
        window,
        threads,
        progress: Some(progress),
        max_minute_rows: args.max_minute_rows,
    };
    let analysis = analyze(inputs, &opts, joiner);
    drop(bar);
    Ok(analysis)
}

fn emit(analysis: &Analysis, format: Format) -> anyhow::Result<ExitCode> {
    // File names and the logs' own bytes (request lines, upstream names)
    // are shown with control characters escaped.
    for m in report::input_messages(analysis) {
        eprintln!("{}", terminal_safe(&m));
    }
    let mut out = std::io::stdout().lock();
    match format {
        Format::Human => out.write_all(terminal_safe(&report::to_human(analysis)).as_bytes())?,
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &report::JsonReport(analysis))?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(exit_code(analysis))
}

/// 2 when an input could not be read, else 1 when a failure signature was
/// seen, else 0; the same for every output format.
fn exit_code(analysis: &Analysis) -> ExitCode {
    let input_failed = analysis
        .inputs
        .iter()
        .chain(analysis.access.iter().flat_map(|r| r.inputs.iter()))
        .any(|i| i.error.is_some());
    if input_failed {
        ExitCode::from(EXIT_INPUT_ERROR)
    } else if analysis.total_events() > 0 {
        ExitCode::from(EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    }
}

fn access_format(args: &Args) -> anyhow::Result<LogFormat> {
    let given = args.log_format.as_deref().map(str::trim);
    if let Some(name) = given.filter(|t| is_format_name(t)) {
        if args.log_format_name.is_some() {
            bail!("--log-format {name} and --log-format-name both name a format; give one");
        }
        if name == "combined" {
            return LogFormat::parse(name).context("--log-format");
        }
        let (conf, found) = match &args.config {
            Some(c) => (c.clone(), ""),
            None => match discovered_config() {
                Some(c) => (c, " (the config `nginx -V` names; choose another with --config)"),
                None => bail!(
                    "--log-format {name}: that is the name of a log_format, but no nginx config was given (--config) or found through `nginx -V`; give --config nginx.conf, or the format itself, e.g. --log-format '$remote_addr [$time_local] \"$request\" $status'"
                ),
            },
        };
        let text = log_format_from_config(&conf, Some(name))
            .map_err(|e| anyhow::anyhow!("--log-format {name}: {e:#}{found}"))?;
        return LogFormat::parse(&text)
            .with_context(|| format!("log_format {name} in {}", conf.display()));
    }
    if let Some(conf) = &args.config {
        if given.is_some() {
            bail!("--log-format gives the format itself and --config a config to read it from; give one");
        }
        let text = log_format_from_config(conf, args.log_format_name.as_deref())?;
        return LogFormat::parse(&text)
            .with_context(|| format!("log_format in {}", conf.display()));
    }
    let text = given.unwrap_or("combined");
    LogFormat::parse(text).context("--log-format")
}

/// A `--log-format` that is one word without variables names a
/// `log_format` instead of spelling one out.
fn is_format_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

/// The config file the installed nginx reads by default: `--conf-path` of
/// `nginx -V`, when that file exists.
fn discovered_config() -> Option<PathBuf> {
    let bin = upkeep_nginx::NginxBinary::find(None)?;
    let out = std::process::Command::new(&bin.path)
        .arg("-V")
        .stdin(std::process::Stdio::null())
        .output()
        .ok()?;
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    let path = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix("--conf-path="))
        .map(|p| PathBuf::from(p.trim_matches('\'')))?;
    path.is_file().then_some(path)
}

/// `--since/--until`: an absolute local time, or a duration ago.
fn parse_time_arg(flag: &str, s: &str, utc_offset: i64) -> anyhow::Result<LogTime> {
    let b = s.trim().as_bytes();
    if let Some(t) = parse_iso_like(b).or_else(|| parse_error_log_time(b)) {
        return Ok(t);
    }
    if let Ok(d) = upkeep_facts::parse_duration(s.trim()) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        return Ok(LogTime(now + utc_offset - (d / 1000) as i64));
    }
    bail!("{flag} {s:?}: expected a time like \"2026-11-23 14:00\" or a duration like \"30m\"")
}

/// The local zone's offset from UTC now, in seconds (error logs are written
/// in local time).
pub fn local_utc_offset() -> i64 {
    #[cfg(unix)]
    {
        // SAFETY: time() and localtime_r() write only into the tm we own.
        unsafe {
            let now = libc::time(std::ptr::null_mut());
            let mut tm: libc::tm = std::mem::zeroed();
            if !libc::localtime_r(&now, &mut tm).is_null() {
                return tm.tm_gmtoff;
            }
        }
    }
    0
}

/// Draws `read / total  pct  rate` on stderr every 200 ms until dropped.
struct ProgressBar {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ProgressBar {
    fn start(done: Arc<AtomicU64>, total: u64) -> ProgressBar {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                let n = done.load(Ordering::Relaxed).min(total);
                let secs = started.elapsed().as_secs_f64().max(0.001);
                let pct = n as f64 * 100.0 / total.max(1) as f64;
                let filled = (pct / 5.0) as usize;
                eprint!(
                    "\r[{:<20}] {:>5.1}%  {} / {}  {}/s ",
                    "#".repeat(filled),
                    pct,
                    bytes(n),
                    bytes(total),
                    bytes((n as f64 / secs) as u64)
                );
            }
            eprint!("\r\x1b[2K");
        });
        ProgressBar {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for ProgressBar {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

/// `--follow`: print failures as they are logged; on Ctrl-C or SIGTERM print
/// the summary of what was seen.
fn follow(args: &Args, inputs: &[Input], window: TimeWindow) -> anyhow::Result<ExitCode> {
    if !args.access_log.is_empty() {
        bail!(
            "--follow does not join an access log; run without --follow for client-visible counts"
        );
    }
    let mut followers = Vec::new();
    for input in inputs {
        match &input.source {
            Source::File(p) => {
                followers.push(Follower::new(p, false).with_context(|| format!("{}", p.display()))?)
            }
            Source::Stdin => {
                bail!("--follow needs files; standard input is read to its end without it")
            }
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed))
        .context("installing the Ctrl-C handler")?;

    let mut analysis = Analysis::default();
    analysis.per_minute.set_max_rows(args.max_minute_rows);
    let mut sink = PrintEvents {
        analysis,
        format: args.format,
    };
    let mut scanner = Scanner::new(window);
    while !stop.load(Ordering::Relaxed) {
        let mut read = 0;
        for f in &mut followers {
            read += f
                .poll(&mut |line| scanner.scan_line(line, &mut sink))
                .with_context(|| format!("{}", f.path().display()))?;
        }
        if read == 0 {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    sink.analysis
        .inputs
        .push(upkeep_logs::analysis::InputReport {
            name: followers
                .iter()
                .map(|f| f.path().display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            stats: scanner.stats,
            ..Default::default()
        });
    if args.format == Format::Json {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer(&mut out, &report::to_json(&sink.analysis))?;
        out.write_all(b"\n")?;
        out.flush()?;
        return Ok(exit_code(&sink.analysis));
    }
    println!();
    emit(&sink.analysis, Format::Human)
}

struct PrintEvents {
    analysis: Analysis,
    format: Format,
}

impl EventSink for PrintEvents {
    fn on_signature(&mut self, e: &Classified<'_>) {
        self.analysis.record(e);
        let l = &e.line;
        let s = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
        let time = l.time.map(|t| t.display().to_string());
        let mut out = std::io::stdout().lock();
        let _ = match self.format {
            Format::Json => {
                let v = serde_json::json!({
                    "time": time,
                    "signature": e.signature.id(),
                    "level": l.level.as_str(),
                    "upstream": s(l.upstream_addr()),
                    "connection": l.connection,
                    "request": s(l.request),
                    "phase": s(l.phase),
                    "client": s(l.client),
                    "host": s(l.host),
                });
                writeln!(out, "{v}")
            }
            Format::Human => writeln!(
                out,
                "{} {:<30} {:<22} {}{}",
                time.unwrap_or_else(|| "-".into()),
                e.signature.id(),
                terminal_safe_line(&s(l.upstream_addr()).unwrap_or_else(|| "-".into())),
                l.connection.map(|c| format!("*{c} ")).unwrap_or_default(),
                terminal_safe_line(&s(l.request).unwrap_or_default()),
            ),
        };
        let _ = out.flush();
    }

    fn on_other_upstream(&mut self, line: &ErrorLine<'_>) {
        self.analysis.record_other(line);
    }
}

/// The text of a `log_format` in an nginx config (includes followed): the
/// one named, else the only one, else the one every `access_log` uses;
/// `combined` when the config defines none.
fn log_format_from_config(conf: &std::path::Path, name: Option<&str>) -> anyhow::Result<String> {
    use upkeep_config::{ConfigSet, FsLoader, LoadOptions};
    use upkeep_syntax::Directive;

    let path = conf.to_string_lossy();
    let set = ConfigSet::load(&path, &FsLoader, &LoadOptions::default())
        .map_err(|e| anyhow::anyhow!("{}", e.render()))?;
    let mut formats: Vec<(String, String)> = Vec::new();
    let mut used: Vec<String> = Vec::new();
    fn walk(
        set: &ConfigSet,
        dirs: Vec<&Directive>,
        formats: &mut Vec<(String, String)>,
        used: &mut Vec<String>,
    ) {
        for d in dirs {
            if let (true, Some(name), 2..) = (d.name_is("log_format"), d.arg(0), d.args().len()) {
                let text: String = d
                    .args()
                    .after(1)
                    .iter()
                    .filter(|w| !w.value().starts_with(b"escape="))
                    .map(|w| w.text().into_owned())
                    .collect();
                formats.push((name.text().into_owned(), text));
            }
            if d.name_is("access_log") {
                if let Some(f) = d.arg(1).filter(|w| !w.value().contains(&b'=')) {
                    used.push(f.text().into_owned());
                }
            }
            if let Some(block) = d.block() {
                walk(set, set.expand(&block.nodes), formats, used);
            }
        }
    }
    walk(&set, set.root(), &mut formats, &mut used);
    used.sort();
    used.dedup();
    let names = || {
        formats
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(name) = name {
        if name == "combined" {
            return Ok(name.into());
        }
        return formats
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.clone())
            .with_context(|| {
                if formats.is_empty() {
                    format!("{path}: no log_format named {name:?} (the config defines none; `combined` is built in)")
                } else {
                    format!(
                        "{path}: no log_format named {name:?} (defined: {}; `combined` is built in)",
                        names()
                    )
                }
            });
    }
    match (formats.len(), used.as_slice()) {
        (0, _) => Ok("combined".into()),
        (1, _) => Ok(formats[0].1.clone()),
        (_, [one]) => {
            if one == "combined" {
                return Ok(one.clone());
            }
            formats
                .iter()
                .find(|(n, _)| n == one)
                .map(|(_, t)| t.clone())
                .with_context(|| {
                    format!("{path}: access_log uses {one:?}, which no log_format defines")
                })
        }
        _ => bail!(
            "{path}: several log_format definitions ({}); choose one with --log-format-name",
            names()
        ),
    }
}
