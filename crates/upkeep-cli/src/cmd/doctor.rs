//! `upkeep doctor`: the live host's keep-alive health in one ranked report —
//! the static rules on the running configuration, plus what the host shows
//! (socket census, stub_status, open-file limits, sysctls, error log).
//! The work is done by upkeep-host; this module finds the inputs.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use upkeep_diag::Severity;
use upkeep_host::live_config::{resolve_path, LiveConfig};
use upkeep_host::log_tail::AccessLogInput;
use upkeep_host::DoctorInput;
use upkeep_nginx::NginxBinary;
use upkeep_rules::VersionSource;

use super::check::{self, ColorChoice, FailOn, InputArgs};
use super::live::{self, LoadFailure, LocalNginx};
use crate::{EXIT_FINDINGS, EXIT_INPUT_ERROR};

/// The longest sampling window accepted.
const MAX_WINDOW: Duration = Duration::from_secs(600);

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The nginx binary (default: `nginx` on PATH, then /usr/sbin).
    #[arg(long, value_name = "PATH")]
    pub nginx: Option<PathBuf>,

    /// Read this configuration instead of running `nginx -T`.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// The nginx master's pid: its configuration is the one it was started
    /// with (`-p`, `-c`, `-g`). Default: the master in the compiled-in pid
    /// file (its configuration is read too), else the configuration's pid
    /// file, else the only `nginx: master process` on this host.
    #[arg(long, value_name = "PID")]
    pub pid: Option<i32>,

    /// The stub_status page to sample (default: a `stub_status` location
    /// of the configuration that listens on loopback).
    #[arg(long, value_name = "URL")]
    pub status_url: Option<String>,

    /// The error log to read the end of (default: the config's error_log).
    #[arg(long, value_name = "FILE")]
    pub error_log: Option<PathBuf>,

    /// The access log, to tell which failures clients saw (default: the
    /// config's first access_log with a file).
    #[arg(long, value_name = "FILE")]
    pub access_log: Option<PathBuf>,

    /// The access log's format in nginx syntax, or `combined` (default: the
    /// config's log_format for that file).
    #[arg(long, value_name = "FORMAT", requires = "access_log")]
    pub log_format: Option<String>,

    /// How long to sample stub_status and the sockets (nginx syntax: 5s, 500ms).
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub sample: String,

    /// Measure the backends that cannot be read on this host (remote ones,
    /// unknown servers, Go programs) with `upkeep probe`, in parallel,
    /// before judging them.
    #[arg(long)]
    pub probe: bool,

    /// With --probe: longest time spent on one backend, idle wait included.
    #[arg(
        long,
        default_value = "120s",
        value_name = "DURATION",
        requires = "probe"
    )]
    pub probe_max_wait: String,

    /// Whether Ctrl-C during `--probe` stops the probes and prints what was
    /// measured. Not an option: the MCP server, which serves many calls and
    /// handles its own signals, sets it to false.
    #[arg(skip = true)]
    pub ctrl_c_stops_probes: bool,

    #[command(flatten)]
    pub input: InputArgs,

    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,

    /// Colours in human output.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// Lowest severity that makes the exit status 1.
    #[arg(long, value_enum, default_value_t = FailOn::Warning)]
    pub fail_on: FailOn,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let done = diagnose(&args, |report| -> anyhow::Result<bool> {
        match args.format {
            Format::Human => {
                let color = args.color.enabled(std::io::stdout().is_terminal());
                print!("{}", report.to_human(color));
            }
            Format::Json => {
                println!("{}", serde_json::to_string_pretty(&report.to_json())?);
            }
        }
        Ok(report
            .findings
            .iter()
            .any(|r| fails(args.fail_on, r.finding.severity)))
    });
    let failing = match done {
        Ok(failing) => failing?,
        Err(DoctorFailure::Broken(e)) => {
            check::print_load_error(&e);
            return Ok(ExitCode::from(EXIT_INPUT_ERROR));
        }
        Err(DoctorFailure::Other(e)) => return Err(e),
    };
    Ok(if failing {
        ExitCode::from(EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    })
}

/// Why [`diagnose`] has no report.
pub enum DoctorFailure {
    /// The configuration does not load (its error names file:line:col).
    Broken(upkeep_config::LoadError),
    /// No nginx or configuration to look at, or a bad option.
    Other(anyhow::Error),
}

impl From<anyhow::Error> for DoctorFailure {
    fn from(e: anyhow::Error) -> Self {
        DoctorFailure::Other(e)
    }
}

/// Finds the inputs `args` name, measures the host and hands the report to
/// `show` (it borrows the configuration, which lives only in here).
pub fn diagnose<T>(
    args: &Args,
    show: impl FnOnce(&upkeep_host::DoctorReport) -> T,
) -> Result<T, DoctorFailure> {
    let window = parse_window(&args.sample)?;
    let status_url = live::status_url(args.status_url.as_deref())?;
    let nginx = LocalNginx::locate(args.nginx.as_deref(), args.pid, args.config.as_deref())?;

    let load_opts = check::load_options(&args.input);
    let config = match nginx.load_config(args.config.as_deref(), &load_opts) {
        Ok(c) => c,
        Err(LoadFailure::Broken(e)) => return Err(DoctorFailure::Broken(e)),
        Err(LoadFailure::NoBinary) => {
            return Err(anyhow::anyhow!(
                "no nginx binary found to run `nginx -T`: give --nginx PATH or --config PATH"
            )
            .into())
        }
        Err(LoadFailure::DumpFailed(error)) => {
            return Err(anyhow::anyhow!("{error} (give --config PATH instead)").into())
        }
    };

    let main_dir = args.config.as_deref().and_then(Path::parent);
    // Host rules (H…) are not in the static registry: take them out of
    // --select/--ignore before the static options are validated.
    let mut static_input = args.input.clone();
    let (host_select, host_ignore) = (
        take_host_selectors(&mut static_input.select),
        take_host_selectors(&mut static_input.ignore),
    );
    let mut check_opts = check::check_options(&static_input, main_dir)?;
    if !host_select.is_empty() {
        check_opts
            .select
            .get_or_insert_with(Vec::new)
            .extend(host_select);
    }
    check_opts.ignore.extend(host_ignore);
    // The version of the binary asked for, or of the master's own binary.
    let version_binary = match (&args.nginx, &nginx.master) {
        (Some(b), _) => NginxBinary::find(Some(b)),
        (None, Some(_)) => nginx.binary.clone(),
        (None, None) => None,
    };
    // Its version replaces the one of the binary on PATH, read as `check`
    // reads it: a binary of another flavor than the one named is the
    // reason the version is assumed, not the target's version.
    if let (Some(b), true) = (
        version_binary,
        check_opts.version_source != VersionSource::Given,
    ) {
        let mut from_binary = check_opts.clone();
        from_binary.nginx_version = None;
        from_binary.version_source = VersionSource::Assumed;
        from_binary.unused_binary = None;
        if !from_binary.flavor_given {
            from_binary.flavor = Default::default();
        }
        let flavor_given = from_binary.flavor_given;
        if check::take_binary_version(&mut from_binary, flavor_given, &b) {
            check_opts = from_binary;
        }
    }

    let prefix = nginx.prefix();
    let live = LiveConfig::of(&config, check_opts.version());

    let pid = match nginx.master_pid(args.pid, &live, prefix.as_deref()) {
        Ok(pid) => Some(pid),
        Err(e) => {
            eprintln!(
                "warning: {}; continuing without it",
                upkeep_diag::terminal_safe(&e.to_string())
            );
            None
        }
    };

    let error_log = args.error_log.clone().or_else(|| {
        // No error_log in the configuration: the one nginx was built with.
        if live.error_logs.is_empty() {
            nginx.built_error_log(prefix.as_deref())
        } else {
            None
        }
    });
    let access_log = args.access_log.as_ref().map(|path| AccessLogInput {
        path: path.clone(),
        format: access_format(args, &live, path, prefix.as_deref()),
    });

    let discovery = if args.probe {
        let max_wait = upkeep_facts::parse_duration(&args.probe_max_wait)
            .map_err(|e| anyhow::anyhow!("--probe-max-wait {}: {e}", args.probe_max_wait))?;
        if max_wait == 0 {
            return Err(anyhow::anyhow!("--probe-max-wait must be longer than 0").into());
        }
        let mut found = upkeep_host::doctor::discover(&config, &check_opts, pid);
        let opts = upkeep_probe::ProbeOptions {
            max_wait: Duration::from_millis(max_wait),
            ..upkeep_probe::ProbeOptions::default()
        };
        let cancel = upkeep_probe::Cancel::new();
        if args.ctrl_c_stops_probes {
            super::probe::install_ctrl_c(&cancel);
        }
        eprintln!(
            "probing the backends that cannot be read on this host (at most {} each, in parallel{})…",
            args.probe_max_wait,
            if args.ctrl_c_stops_probes {
                "; Ctrl-C stops"
            } else {
                ""
            }
        );
        upkeep_host::backend_discovery::probe::probe_unknown(&mut found, &opts, &cancel);
        Some(found)
    } else {
        None
    };

    let mut input = DoctorInput::new(&config);
    input.discovery = discovery;
    input.check = check_opts;
    input.pid = pid;
    input.status_url = status_url;
    input.error_log = error_log;
    input.access_log = access_log;
    input.prefix = prefix;
    input.window = window;
    let report = upkeep_host::run(input);

    Ok(show(&report))
}

/// Removes the selectors that name host rules (`H`, `H00`, `H003`,
/// `reuse-ratio-low`) and returns them, as IDs or names.
fn take_host_selectors(list: &mut Vec<String>) -> Vec<String> {
    let mut host = Vec::new();
    list.retain(|s| {
        let up = s.to_ascii_uppercase();
        let is_host = up.starts_with('H')
            && upkeep_host::rules::INFOS
                .iter()
                .any(|r| r.id.starts_with(&up))
            || upkeep_host::rules::INFOS.iter().any(|r| r.name == s);
        if is_host {
            host.push(if up.starts_with('H') { up } else { s.clone() });
        }
        !is_host
    });
    host
}

fn fails(fail_on: FailOn, severity: Severity) -> bool {
    match fail_on {
        FailOn::Error => severity >= Severity::Error,
        FailOn::Warning => severity >= Severity::Warning,
        FailOn::Info => true,
        FailOn::Never => false,
    }
}

fn parse_window(s: &str) -> anyhow::Result<Duration> {
    let ms = upkeep_facts::parse_duration(s).map_err(|e| anyhow::anyhow!("--sample {s:?}: {e}"))?;
    let d = Duration::from_millis(ms);
    if d.is_zero() || d > MAX_WINDOW {
        bail!("--sample {s:?}: give a window between 1ms and 10m");
    }
    Ok(d)
}

/// `--log-format`, else the format of the config's `access_log` for that
/// file, else `combined`.
fn access_format(args: &Args, live: &LiveConfig, path: &Path, prefix: Option<&Path>) -> String {
    if let Some(f) = &args.log_format {
        return f.clone();
    }
    live.access_logs
        .iter()
        .find(|a| resolve_path(&a.path, prefix).as_deref() == Some(path))
        .and_then(|a| live.format_of(a))
        .unwrap_or_else(|| "combined".into())
}
