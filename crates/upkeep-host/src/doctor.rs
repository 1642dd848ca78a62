//! One doctor run: read the host, judge it, rank the findings.

use std::path::PathBuf;
use std::time::Duration;

use upkeep_config::ConfigSet;
use upkeep_diag::Severity;
use upkeep_model::Model;
use upkeep_rules::{CheckOptions, CheckReport};

use crate::backend_discovery::{self, Discovery};
use crate::live_config::{resolve_path, LiveConfig};
use crate::log_tail::{self, AccessLogInput, LogEvidence};
use crate::process::Processes;
use crate::rules::{self, Measured, Ranked};
use crate::sampling::{self, SampleOptions, Sampling};
use crate::sockets::SocketReader;
use crate::stub_status::StatusUrl;
use crate::sysctl::Sysctls;

/// The default sampling window (`--sample`).
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(5);

/// What to look at. Everything left `None` is discovered from the
/// configuration where it can be.
pub struct DoctorInput<'a> {
    /// The running configuration (`nginx -T`, or the file given).
    pub config: &'a ConfigSet,
    /// Options for the static rules; its version is also the version the
    /// host rules speak of.
    pub check: CheckOptions,
    /// The nginx master; without it, limits and workers are not read.
    pub pid: Option<i32>,
    /// stub_status to sample; `None`: the first stub_status location of the
    /// configuration reachable on loopback.
    pub status_url: Option<StatusUrl>,
    /// The error log to tail; `None`: the configuration's `error_log` files.
    pub error_log: Option<PathBuf>,
    /// The access log (and its format) to tell client-visible failures;
    /// `None`: the configuration's first `access_log` with a known format.
    pub access_log: Option<AccessLogInput>,
    /// nginx's prefix, for relative log paths in the configuration.
    pub prefix: Option<PathBuf>,
    pub window: Duration,
    /// How much of the end of each log to read.
    pub tail_bytes: u64,
    /// The backends behind the upstream addresses, when already looked
    /// at (and probed) by the caller; `None`: doctor looks itself.
    pub discovery: Option<Discovery>,
}

impl<'a> DoctorInput<'a> {
    pub fn new(config: &'a ConfigSet) -> DoctorInput<'a> {
        DoctorInput {
            config,
            check: CheckOptions::default(),
            pid: None,
            status_url: None,
            error_log: None,
            access_log: None,
            prefix: None,
            window: DEFAULT_WINDOW,
            tail_bytes: log_tail::DEFAULT_TAIL_BYTES,
            discovery: None,
        }
    }
}

/// What doctor measured and concluded.
pub struct DoctorReport<'a> {
    pub config: &'a ConfigSet,
    /// File names in findings are shown relative to this (the main
    /// configuration file's directory).
    pub base_dir: Option<String>,
    /// The nginx version the verdicts are for, e.g. "1.22.1".
    pub version_text: String,
    /// Ranked: errors first, then by evidence; measured before static.
    pub findings: Vec<Ranked>,
    /// The static check (version, assumptions).
    pub check: CheckReport,
    pub live: LiveConfig,
    pub sampling: Sampling,
    pub status_url: Option<StatusUrl>,
    pub sysctls: Sysctls,
    pub processes: Option<Processes>,
    pub logs: Option<LogEvidence>,
    /// The processes found behind the upstream addresses; their settings
    /// fed the static rules.
    pub backends: Discovery,
    /// What could not be measured, and why.
    pub gaps: Vec<String>,
}

pub fn run<'a>(mut input: DoctorInput<'a>) -> DoctorReport<'a> {
    let mut gaps = Vec::new();
    let backends = match input.discovery.take() {
        Some(d) => d,
        None => discover(input.config, &input.check, input.pid),
    };
    gaps.extend(backends.problems.iter().cloned());
    backends.feed(&mut input.check);
    let mut check = upkeep_rules::check(input.config, &input.check);
    let model = Model::build_for(input.config, check.target());
    // The host rules compare against nginx's landmarks: a fork's behaviour
    // version (Target::behaviour_version), not its own number.
    let version = model.version;
    let live = LiveConfig::read(input.config, &model);
    gaps.extend(live.skipped.iter().cloned());

    let sysctls = Sysctls::read_for(input.pid).unwrap_or_else(|e| {
        gaps.push(format!(
            "{e}: the sysctls shown are this namespace's, not nginx's"
        ));
        Sysctls::read()
    });
    let processes = match input.pid {
        Some(pid) => match Processes::read(pid) {
            Ok(p) => {
                gaps.extend(p.problems.iter().cloned());
                Some(p)
            }
            Err(e) => {
                gaps.push(format!(
                    "nginx master {pid}: {e}; limits and workers not read"
                ));
                None
            }
        },
        None => {
            gaps.push("no nginx master found: open-file limits (H004) not checked".into());
            None
        }
    };

    let status_url = input
        .status_url
        .clone()
        .or_else(|| live.status_urls.first().cloned());
    if status_url.is_none() {
        gaps.push("no stub_status URL given or found in the configuration (a `stub_status` location on a loopback listener): the request ratios of H003 not measured".into());
    }
    if live.backends.is_empty() {
        gaps.push("no TCP backend addresses in the configuration: no socket census".into());
    }

    let sampling = sampling::sample(&SampleOptions {
        window: input.window,
        poll_every: sampling::POLL_EVERY,
        status: status_url.clone(),
        reader: SocketReader::for_process(input.pid),
        addresses: live.backends.iter().map(|b| b.addr).collect(),
        port_range: sysctls.ip_local_port_range,
    });
    if let Some(e) = &sampling.census_error {
        gaps.push(format!("socket census failed: {e}"));
    }
    if let Some(e) = &sampling.status_error {
        gaps.push(format!("stub_status: {e}"));
    }

    let logs = read_logs(&input, &live, &mut gaps);

    let measured = Measured {
        config: input.config,
        version,
        live: &live,
        sampling: &sampling,
        sysctls: &sysctls,
        processes: processes.as_ref(),
        logs: logs.as_ref(),
    };
    let mut findings: Vec<Ranked> = Vec::new();
    findings.extend(rules::h001::evaluate(&measured));
    findings.extend(rules::h002::evaluate(&measured));
    findings.extend(rules::h003::evaluate(&measured));
    findings.extend(rules::h004::evaluate(&measured));
    findings.extend(rules::h005::evaluate(&measured));
    findings.extend(rules::r001_live::evaluate(&measured));
    // Without worker_rlimit_nofile, static R001 judged an assumed inherited
    // limit; with the master's real limit read, r001_live has the verdict.
    let real_limit_known = live.settings.worker_rlimit_nofile.is_none()
        && processes
            .as_ref()
            .is_some_and(|p| rules::h004::effective_limit(&measured, p).is_some());
    if real_limit_known {
        check.findings.retain(|f| f.rule != "R001");
        check
            .assumptions
            .retain(|a| !a.starts_with(upkeep_rules::R001_ASSUMPTION_PREFIX));
    }
    findings.retain(|r| input.check.is_enabled(r.finding.rule, r.finding.name));
    for r in findings.iter_mut() {
        if let Some(sev) = input.check.severity_overrides.get(r.finding.rule) {
            r.finding.severity = *sev;
        }
    }
    findings.extend(check.findings.iter().cloned().map(|f| Ranked {
        finding: f,
        evidence: 0,
        measured: false,
    }));
    rank(&mut findings);

    let main_path = &input.config.file(input.config.main).path;
    DoctorReport {
        config: input.config,
        base_dir: main_path.rfind('/').map(|i| main_path[..i].to_string()),
        version_text: check.nginx_version.to_string(),
        findings,
        check,
        live,
        sampling,
        status_url,
        sysctls,
        processes,
        logs,
        backends,
        gaps,
    }
}

/// The processes behind the configuration's upstream servers, as nginx
/// (`pid`, for its network namespace) sees their addresses.
pub fn discover(config: &ConfigSet, check: &CheckOptions, pid: Option<i32>) -> Discovery {
    let model = Model::build_for(config, check.target());
    let (targets, problems) = backend_discovery::targets(&model);
    let mut d = backend_discovery::discover(&targets, pid);
    d.problems.extend(problems);
    d
}

/// Errors first; within a severity, measured findings before static ones,
/// more evidence first; static ones keep their file order.
pub fn rank(findings: &mut [Ranked]) {
    findings.sort_by(|a, b| {
        let sev = |r: &Ranked| match r.finding.severity {
            Severity::Error => 0,
            Severity::Warning => 1,
            Severity::Info => 2,
        };
        sev(a)
            .cmp(&sev(b))
            .then(b.measured.cmp(&a.measured))
            .then(b.evidence.cmp(&a.evidence))
    });
}

fn read_logs(
    input: &DoctorInput<'_>,
    live: &LiveConfig,
    gaps: &mut Vec<String>,
) -> Option<LogEvidence> {
    let prefix = input.prefix.as_deref();
    let error_log = match &input.error_log {
        Some(p) => Some(p.clone()),
        None => {
            let found = live
                .error_logs
                .iter()
                .filter_map(|(p, level)| Some((resolve_path(p, prefix)?, level)))
                .find(|(p, _)| p.is_file())
                .map(|(path, level)| {
                    // Levels above `error` drop the stale-connection lines
                    // (logged at error, facts/signatures.tsv).
                    if let Some(l) = level.as_deref().filter(|l| matches!(*l, "crit" | "alert" | "emerg")) {
                        gaps.push(format!(
                            "error_log {} is at level {l}: the [error] lines of stale connections are not written to it",
                            path.display()
                        ));
                    }
                    path
                });
            if found.is_none() {
                gaps.push(if live.error_logs.is_empty() {
                    "no error_log file in the configuration and none given (--error-log): H005 not checked".to_string()
                } else {
                    format!(
                        "error_log {} not readable here: H005 not checked",
                        live.error_logs
                            .iter()
                            .map(|(p, _)| p.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                });
            }
            found
        }
    }?;
    let access = input.access_log.clone().or_else(|| {
        live.access_logs.iter().find_map(|a| {
            let path = resolve_path(&a.path, prefix)?;
            let format = live.format_of(a)?;
            path.is_file().then_some(AccessLogInput { path, format })
        })
    });
    match log_tail::read_tail(&error_log, access.as_ref(), input.tail_bytes) {
        Ok(e) => Some(e),
        Err(e) => {
            gaps.push(format!("error log: {e}; H005 not checked"));
            None
        }
    }
}
