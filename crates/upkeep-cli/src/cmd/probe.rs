//! `upkeep probe`: measure what backends do with idle and reused connections.

use anyhow::{bail, Context as _};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use upkeep_diag::{terminal_safe, terminal_safe_line};
use upkeep_probe::{
    Cancel, NginxVersion, ProbeOptions, ProbeReport, RequestDefaults, Target, Trust,
};

/// Exit code after Ctrl-C, as shells report a SIGINT death (128 + 2).
const EXIT_INTERRUPTED: u8 = 130;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Each target gets one request and then an idle connection timed until the backend \
closes it (FIN or RST), plus a connection that sends requests back to back until the \
backend closes it or says it will (`Connection: close`). A close without that header \
is reported as SILENT: nginx would send the next request on a dead connection.

Exit status: 0 nothing found, 1 a verdict found a problem (with --config), \
2 a target could not be probed or bad arguments, 130 interrupted (Ctrl-C prints \
what was measured so far).")]
pub struct Args {
    /// Backends: host:port, http://host[:port][/path], https://…, or unix:/path.
    pub targets: Vec<String>,

    /// Probe every server of every upstream block of this nginx config and
    /// judge each upstream's keep-alive settings against the measurements.
    #[arg(long, value_name = "NGINX_CONF")]
    pub config: Option<PathBuf>,

    /// With --config: only these upstreams (repeatable).
    #[arg(long, value_name = "UPSTREAM", requires = "config")]
    pub only: Vec<String>,

    /// Request path (default: the URL's path, else /).
    #[arg(long)]
    pub path: Option<String>,

    /// Host header (default: the target's host[:port]; with --config, the
    /// upstream name, as nginx sends it by default).
    #[arg(long)]
    pub host: Option<String>,

    /// Request method.
    #[arg(long, default_value = "GET")]
    pub method: String,

    /// Accept any TLS certificate (self-signed test backends; nginx itself
    /// does not verify upstream certificates unless proxy_ssl_verify is on).
    #[arg(long, conflicts_with = "cacert")]
    pub insecure: bool,

    /// Also trust the CA certificates in this PEM file.
    #[arg(long, value_name = "PEM")]
    pub cacert: Option<PathBuf>,

    /// Longest time spent on one target, idle wait included (nginx syntax).
    #[arg(long, default_value = "120s", value_name = "DURATION")]
    pub max_wait: String,

    /// Most requests sent on one connection to find the backend's cap.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub max_requests: u32,

    /// Requests per second to one backend address (resolved ip:port or
    /// socket), all connections of all targets that reach it together.
    #[arg(long, default_value_t = 100.0, value_name = "PER_SECOND")]
    pub rate: f64,

    /// Most targets probed at the same time (each holds up to
    /// idle-samples + 1 connections); lowered to fit the open-file limit.
    #[arg(long, default_value_t = upkeep_probe::DEFAULT_MAX_PARALLEL, value_name = "N")]
    pub parallel: usize,

    /// Longest response body read (nginx size syntax: 64k, 1m); a longer
    /// body is not read and the target fails with a note to use --path.
    #[arg(long, default_value = "1m", value_name = "SIZE")]
    pub max_body: String,

    /// Connect, TLS handshake and response timeout (nginx syntax).
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub timeout: String,

    /// Idle-timeout measurements per target, each on its own connection
    /// (1-4); the shortest is reported.
    #[arg(long, default_value_t = 2, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=4))]
    pub idle_samples: u32,

    /// nginx version the verdicts assume (default: `nginx -v`, else 1.28.0).
    #[arg(long, value_name = "X.Y.Z")]
    pub nginx_version: Option<String>,

    /// The server, as for `check`: nginx, angie or freenginx
    /// (--nginx-version is then the flavor's own version). Default: read
    /// from `nginx -v`, else nginx.
    #[arg(long, value_name = "FLAVOR")]
    pub flavor: Option<String>,

    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,

    /// No progress lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.targets.is_empty() && args.config.is_none() {
        bail!("nothing to probe: give TARGET… (host:port or URL) or --config nginx.conf");
    }
    let opts = options(&args)?;
    let defaults = RequestDefaults {
        path: args.path.clone(),
        host: args.host.clone(),
        method: Some(args.method.clone()),
    };
    let mut targets = Vec::new();
    for spec in &args.targets {
        targets.push(Target::parse(spec, &defaults).map_err(anyhow::Error::msg)?);
    }

    let mut from_config = None;
    if let Some(path) = &args.config {
        let (version, version_source) =
            nginx_version(args.flavor.as_deref(), args.nginx_version.as_deref())?;
        let path_text = path.to_string_lossy();
        let plan = upkeep_probe::config::Plan::load(&path_text, version, &args.only, &defaults)
            .map_err(anyhow::Error::msg)?;
        targets.extend(plan.targets.iter().cloned());
        from_config = Some((plan, version, version_source));
    }
    if targets.is_empty() {
        bail!("no server to probe in the selected upstreams");
    }

    let cancel = Cancel::new();
    install_ctrl_c(&cancel);
    let progress = !args.quiet && std::io::stderr().is_terminal();
    let parallel = upkeep_probe::parallelism(&opts, targets.len());
    if parallel.limited_by_fds && !args.quiet {
        eprintln!(
            "note: probing {} target(s) at a time (not {}): that is what the open-file limit allows (`ulimit -n`)",
            parallel.workers, args.parallel
        );
    }
    if progress {
        eprintln!(
            "probing {} target(s), {} at a time, up to {} each (Ctrl-C prints what was measured so far)…",
            targets.len(),
            parallel.workers,
            args.max_wait
        );
    }
    let on_done = |t: &upkeep_probe::TargetReport| {
        if progress {
            let outcome = if t.error.is_some() { "failed" } else { "done" };
            eprintln!(
                "  {outcome}: {} ({:.1} s)",
                terminal_safe_line(&t.target),
                t.elapsed_ms as f64 / 1000.0
            );
        }
    };
    let reports = upkeep_probe::probe_all(&targets, &opts, &cancel, &on_done);

    let mut report = ProbeReport {
        schema: upkeep_probe::SCHEMA,
        interrupted: cancel.is_cancelled(),
        nginx_version: None,
        nginx_version_source: None,
        targets: reports,
        upstreams: Vec::new(),
    };
    if let Some((plan, version, source)) = &from_config {
        report.nginx_version = Some(version.to_string());
        report.nginx_version_source = Some(source.to_string());
        report.upstreams = plan.judge(*version, &report.targets);
    }

    match args.format {
        Format::Json => println!("{}", report.to_json()),
        // Targets and what the backends answered come from outside.
        Format::Human => print!("{}", terminal_safe(&upkeep_probe::render::human(&report))),
    }

    let worst = report.upstreams.iter().filter_map(|u| u.worst()).max();
    Ok(if report.interrupted {
        ExitCode::from(EXIT_INTERRUPTED)
    } else if worst.is_some_and(|s| s >= upkeep_diag::Severity::Warning) {
        ExitCode::from(crate::EXIT_FINDINGS)
    } else if report.targets.iter().any(|t| t.error.is_some()) {
        ExitCode::from(crate::EXIT_INPUT_ERROR)
    } else {
        ExitCode::SUCCESS
    })
}

fn options(args: &Args) -> anyhow::Result<ProbeOptions> {
    let duration = |flag: &str, text: &str| -> anyhow::Result<Duration> {
        let ms = upkeep_facts::parse_duration(text)
            .map_err(|e| anyhow::anyhow!("{flag} {text}: {e}"))?;
        if ms == 0 {
            bail!("{flag} must be longer than 0");
        }
        Ok(Duration::from_millis(ms))
    };
    if args.max_requests == 0 {
        bail!("--max-requests must be at least 1");
    }
    if !(args.rate.is_finite() && args.rate > 0.0 && args.rate <= 10_000.0) {
        bail!("--rate must be between 0 and 10000 requests per second");
    }
    if args.parallel == 0 {
        bail!("--parallel must be at least 1");
    }
    let max_body = parse_size(&args.max_body)
        .map_err(|why| anyhow::anyhow!("--max-body {}: {why}", args.max_body))?;
    let trust = if args.insecure {
        Trust::Insecure
    } else if let Some(pem) = &args.cacert {
        // Read once here for a clear error before any probing starts.
        upkeep_config::file_read::read_regular_file(pem, upkeep_probe::tls::MAX_CA_FILE_BYTES)
            .with_context(|| format!("--cacert {}", pem.display()))?;
        Trust::ExtraCa(pem.clone())
    } else {
        Trust::System
    };
    Ok(ProbeOptions {
        max_wait: duration("--max-wait", &args.max_wait)?,
        max_requests: args.max_requests,
        rate_per_sec: args.rate,
        io_timeout: duration("--timeout", &args.timeout)?,
        idle_samples: args.idle_samples,
        trust,
        max_parallel: args.parallel,
        max_body,
    })
}

/// A size in nginx syntax: bytes, or a number with `k`/`K` or `m`/`M`
/// (`g`/`G` too, as nginx accepts for offsets).
fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, unit) = match t.as_bytes().last() {
        Some(b'k' | b'K') => (&t[..t.len() - 1], 1u64 << 10),
        Some(b'm' | b'M') => (&t[..t.len() - 1], 1 << 20),
        Some(b'g' | b'G') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("expected a size such as 4096, 64k or 1m".into());
    }
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .ok_or_else(|| "size too large".to_string())
}

/// The nginx release the verdicts assume, and where it came from, read as
/// `check` reads it ([`super::check::apply_target_flags`],
/// [`super::check::detect_version`]): a binary of another flavor than the
/// one asked for is named as the reason for an assumed version.
fn nginx_version(
    flavor: Option<&str>,
    given: Option<&str>,
) -> anyhow::Result<(NginxVersion, String)> {
    let mut opts = upkeep_rules::CheckOptions::default();
    let flavor_given = super::check::apply_target_flags(&mut opts, flavor, given)?;
    super::check::detect_version(&mut opts, flavor_given);
    Ok((opts.version(), opts.version_source_text()))
}

/// First Ctrl-C: stop probing and print what was measured. Second: leave now.
pub(crate) fn install_ctrl_c(cancel: &Cancel) {
    let cancel = cancel.clone();
    // Failing to install (a handler already set) only loses the partial report.
    let _ = ctrlc::set_handler(move || {
        if cancel.is_cancelled() {
            std::process::exit(i32::from(EXIT_INTERRUPTED));
        }
        cancel.cancel();
    });
}
