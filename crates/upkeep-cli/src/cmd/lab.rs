//! `upkeep lab`: reproduce a keep-alive failure on a real nginx with emulated
//! backends, then run the config again with `upkeep fix` applied, and report
//! both phases. The work is done by upkeep-lab; this is flags and output.

use anyhow::{bail, Context};
use std::path::PathBuf;
use std::process::ExitCode;
use upkeep_diag::{terminal_safe, terminal_safe_line};
use upkeep_lab::plan::LabPlan;
use upkeep_lab::scenario::{self, user::UserOptions};
use upkeep_lab::traffic::LoopMode;
use upkeep_lab::{Cancel, LabError, LabReport, Phase, RunOptions};

use crate::{EXIT_FINDINGS, EXIT_INPUT_ERROR};

/// Exit code after Ctrl-C (128 + SIGINT), as shells report it.
const EXIT_INTERRUPTED: u8 = 130;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exit status: 0 when the after phase had no 502/504 or failed requests, \
1 when it still had some, 2 on a usage error or when the lab cannot run here, 130 when interrupted."
)]
pub struct Args {
    /// Scenario to run: stale-idle, no-pool, port-exhaustion, connection-close,
    /// client-churn, or user (your --config). `--list` describes them.
    #[arg(long, value_name = "NAME")]
    pub scenario: Option<String>,

    /// Your nginx config (main file, or a directory holding nginx.conf): runs
    /// the `user` scenario on it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// What an upstream's backend does: UPSTREAM=PROFILE (a server from
    /// `upkeep profiles`, e.g. gunicorn) or
    /// UPSTREAM=idle=5s,max-requests=100,announces-close=no; lab extras:
    /// latency=20ms, http10, close. Repeatable.
    #[arg(long = "backend", value_name = "UPSTREAM=PROFILE")]
    pub backends: Vec<String>,

    /// Backend facts measured by `upkeep probe --format json`.
    #[arg(long, value_name = "FILE")]
    pub backend_facts: Option<PathBuf>,

    /// The after phase also applies the fixes that change behaviour someone
    /// may rely on, as `upkeep fix --unsafe-fixes` does.
    #[arg(long)]
    pub unsafe_fixes: bool,

    /// The load balancer in front of nginx, a profile such as aws-alb
    /// (`upkeep profiles`), for the after phase's `upkeep fix`.
    #[arg(long, value_name = "NAME")]
    pub front: Option<String>,

    /// Idle timeout of the load balancer in front of nginx (nginx syntax:
    /// 60s, 1m30s), for the after phase's `upkeep fix`.
    #[arg(long, value_name = "DURATION")]
    pub front_idle: Option<String>,

    /// `Host` header of the requests, which picks the server block (user scenario).
    #[arg(long)]
    pub host: Option<String>,

    /// The nginx binary to run (default: nginx on PATH, then the usual sbin directories).
    #[arg(long, value_name = "PATH")]
    pub nginx: Option<PathBuf>,

    /// How long each phase sends traffic (nginx syntax: 10s, 1m).
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<String>,

    /// Number of clients, each keeping its own connection to nginx.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<u32>,

    /// Share of POST requests, 0 to 1 (the rest are GETs).
    #[arg(long, value_name = "SHARE")]
    pub post_ratio: Option<f64>,

    /// Gap between a client's requests: DURATION, or MIN-MAX for a uniform
    /// jitter (e.g. 960ms-1040ms).
    #[arg(long, value_name = "GAP")]
    pub gap: Option<String>,

    /// Send at a fixed rate whatever the responses do (clients started
    /// together stay in step).
    #[arg(long)]
    pub open_loop: bool,

    /// Send each request a gap after the previous response.
    #[arg(long, conflicts_with = "open_loop")]
    pub closed_loop: bool,

    /// Path of the requests (a per-request suffix is added).
    #[arg(long, value_name = "PATH")]
    pub path: Option<String>,

    /// One-way delay of the relay between nginx and each backend; 0 connects
    /// nginx to the backends directly.
    #[arg(long, value_name = "DURATION")]
    pub relay_delay: Option<String>,

    /// Seed of the traffic's random choices (methods, gaps).
    #[arg(long)]
    pub seed: Option<u64>,

    /// Output on stdout.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,

    /// Also write a self-contained HTML report with charts.
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,

    /// Keep each phase's config and logs in DIR/before and DIR/after.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,

    /// List the scenarios and exit.
    #[arg(long)]
    pub list: bool,

    /// No progress lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.list {
        for s in scenario::BUILT_IN {
            println!("{:<18} {}", s.name, s.summary);
        }
        println!(
            "{:<18} your own config (--config FILE, --backend UPSTREAM=PROFILE)",
            "user"
        );
        return Ok(ExitCode::SUCCESS);
    }
    let Some(nginx) = super::live::find_binary(args.nginx.as_deref())? else {
        eprintln!("error: no nginx binary found on PATH or in /usr/sbin, /usr/local/sbin, /usr/local/nginx/sbin; pass --nginx PATH");
        return Ok(ExitCode::from(EXIT_INPUT_ERROR));
    };

    let mut plan = match plan(&args, &nginx) {
        Ok(p) => p,
        Err(e) => return Ok(fail(&e)),
    };
    if let Err(e) = apply_overrides(&mut plan, &args) {
        eprintln!("error: {}", terminal_safe(&format!("{e:#}")));
        return Ok(ExitCode::from(EXIT_INPUT_ERROR));
    }
    let cancel = Cancel::new();
    upkeep_lab::cancel_on_signals(&cancel).context("installing the Ctrl-C handler")?;
    let quiet = args.quiet;
    let log = move |line: &str| {
        if !quiet {
            eprintln!("lab: {}", terminal_safe(line));
        }
    };
    let opts = RunOptions {
        cancel: &cancel,
        log: &log,
        keep_dir: args.keep.as_deref(),
    };
    let report = match upkeep_lab::run(&plan, &nginx, &opts) {
        Ok(r) => r,
        Err(e) if cancel.is_cancelled() => {
            eprintln!("interrupted ({})", terminal_safe(&e.to_string()));
            return Ok(ExitCode::from(EXIT_INTERRUPTED));
        }
        Err(e) => return Ok(fail(&e)),
    };

    match args.format {
        // Backend specs, paths and nginx's messages come from outside.
        Format::Human => print!(
            "{}",
            terminal_safe(&upkeep_lab::report::table::render(&report))
        ),
        Format::Json => println!("{}", report.to_json()),
    }
    if let Some(path) = &args.report {
        std::fs::write(path, upkeep_lab::report::html::render(&report))
            .with_context(|| format!("writing {}", path.display()))?;
        if !quiet {
            eprintln!(
                "lab: report written to {}",
                terminal_safe_line(&path.display().to_string())
            );
        }
    }
    Ok(exit_code(&report))
}

fn fail(e: &LabError) -> ExitCode {
    match e {
        LabError::Skipped(why) => {
            eprintln!("upkeep lab: scenario skipped: {}", terminal_safe(why))
        }
        other => eprintln!("error: {}", terminal_safe(&other.to_string())),
    }
    ExitCode::from(EXIT_INPUT_ERROR)
}

fn plan(args: &Args, nginx: &upkeep_nginx::NginxBinary) -> Result<LabPlan, LabError> {
    let name = match (&args.scenario, &args.config) {
        (Some(s), _) => s.as_str(),
        (None, Some(_)) => "user",
        (None, None) => {
            return Err(LabError::Usage(
                "give --scenario NAME (see --list) or --config FILE".to_string(),
            ))
        }
    };
    if name == "user" {
        let Some(config) = &args.config else {
            return Err(LabError::Usage(
                "the user scenario needs --config FILE".to_string(),
            ));
        };
        let backend_facts_json = match &args.backend_facts {
            Some(p) => Some(
                super::check::read_backend_facts(p)
                    .map_err(|e| LabError::Usage(format!("{e:#}")))?,
            ),
            None => None,
        };
        return scenario::user::build(&UserOptions {
            config: config.clone(),
            backend_specs: args.backends.clone(),
            backend_facts_json,
            host: args.host.clone(),
            nginx_prefix: scenario::user::compiled_prefix(&nginx.path),
        });
    }
    if args.config.is_some()
        || !args.backends.is_empty()
        || args.backend_facts.is_some()
        || args.host.is_some()
    {
        return Err(LabError::Usage(format!(
            "--config, --backend, --backend-facts and --host belong to the user scenario, not {name}"
        )));
    }
    match scenario::find(name) {
        Some(s) => Ok((s.build)(upkeep_lab::nginx_version(nginx)?)),
        None => Err(LabError::Usage(format!(
            "unknown scenario {name:?} (known: {}, user)",
            scenario::BUILT_IN
                .iter()
                .map(|s| s.name)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn apply_overrides(plan: &mut LabPlan, args: &Args) -> anyhow::Result<()> {
    let t = &mut plan.traffic;
    if let Some(d) = &args.duration {
        t.duration = duration("--duration", d)?;
    }
    if let Some(c) = args.concurrency {
        t.concurrency = c;
    }
    if let Some(p) = args.post_ratio {
        t.post_ratio = p;
    }
    if let Some(g) = &args.gap {
        let (lo, hi) = match g.split_once('-') {
            Some((a, b)) => (duration("--gap", a)?, duration("--gap", b)?),
            None => {
                let d = duration("--gap", g)?;
                (d, d)
            }
        };
        t.gap_min = lo;
        t.gap_max = hi;
    }
    if args.open_loop {
        t.mode = LoopMode::Open;
    }
    if args.closed_loop {
        t.mode = LoopMode::Closed;
    }
    if let Some(p) = &args.path {
        if !p.starts_with('/') {
            bail!("--path {p:?}: must start with /");
        }
        t.path = p.clone();
    }
    if let Some(s) = args.seed {
        t.seed = s;
    }
    if let Some(d) = &args.relay_delay {
        let d = duration("--relay-delay", d)?;
        if matches!(plan.network, upkeep_lab::plan::Network::Namespace { .. }) && !d.is_zero() {
            bail!(
                "--relay-delay: the {} scenario connects nginx to the backend directly",
                plan.scenario
            );
        }
        plan.relay_delay = (!d.is_zero()).then_some(d);
    }
    plan.traffic.validate().map_err(anyhow::Error::msg)?;
    plan.fix.unsafe_fixes = args.unsafe_fixes;
    if let Some(front) = &args.front {
        if upkeep_facts::front_profile(front).is_none() && args.front_idle.is_none() {
            bail!("--front: unknown load balancer profile {front:?} (give its idle timeout with --front-idle)");
        }
        plan.fix.front_name = Some(front.clone());
    }
    if let Some(idle) = &args.front_idle {
        plan.fix.front_idle_ms = Some(
            upkeep_facts::parse_duration(idle).map_err(|e| anyhow::anyhow!("--front-idle: {e}"))?,
        );
    }
    Ok(())
}

fn duration(flag: &str, text: &str) -> anyhow::Result<std::time::Duration> {
    upkeep_lab::duration::parse(text).map_err(|e| anyhow::anyhow!("{flag}: {e}"))
}

/// 1 when the after phase still failed requests (502/504 or no response).
fn exit_code(report: &LabReport) -> ExitCode {
    if report.interrupted {
        return ExitCode::from(EXIT_INTERRUPTED);
    }
    let failed = report.run(Phase::After).is_some_and(|r| {
        ["502", "504", "error"]
            .iter()
            .any(|k| r.status.get(*k).copied().unwrap_or(0) > 0)
    });
    if failed {
        ExitCode::from(EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    }
}
