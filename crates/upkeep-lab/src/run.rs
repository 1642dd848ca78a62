//! A lab run: the plan's config as is ("before"), then with `upkeep fix`
//! applied ("after"), each on a fresh nginx, backends and network.

use crate::cancel::Cancel;
use crate::error::LabError;
use crate::fix::{self, FixContext};
use crate::phase::{run_phase, PhaseEnv};
use crate::plan::{LabPlan, Network, Phase};
use crate::report::{BackendInfo, FixSummary, LabReport, NginxInfo, SCHEMA};
use std::path::Path;
use upkeep_nginx::NginxBinary;

pub struct RunOptions<'a> {
    pub cancel: &'a Cancel,
    /// Progress lines ("before: starting nginx on …").
    pub log: &'a dyn Fn(&str),
    /// Keep each phase's config and logs in DIR/before and DIR/after.
    pub keep_dir: Option<&'a Path>,
}

/// The version of `nginx` (from `nginx -v`), which scenarios are built for.
pub fn nginx_version(nginx: &NginxBinary) -> Result<upkeep_facts::NginxVersion, LabError> {
    let text = nginx
        .version()
        .map_err(|e| LabError::NginxNotFound(format!("{}: {e}", nginx.path.display())))?;
    upkeep_facts::NginxVersion::parse(&text)
        .map_err(|e| LabError::NginxNotFound(format!("{}: {e}", nginx.path.display())))
}

/// Whether the binary was built with the stub_status module (`nginx -V`).
fn has_stub_status(nginx: &NginxBinary) -> bool {
    std::process::Command::new(&nginx.path)
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).contains("--with-http_stub_status_module"))
        .unwrap_or(false)
}

pub fn run(
    plan: &LabPlan,
    nginx: &NginxBinary,
    opts: &RunOptions<'_>,
) -> Result<LabReport, LabError> {
    plan.traffic.validate().map_err(LabError::Usage)?;
    if let Some(dir) = opts.keep_dir {
        crate::keep::prepare(dir).map_err(LabError::Usage)?;
    }
    for line in crate::leftovers::clean() {
        (opts.log)(&line);
    }
    let version = nginx
        .version()
        .map_err(|e| LabError::NginxNotFound(format!("{}: {e}", nginx.path.display())))?;
    let env = PhaseEnv {
        nginx,
        plan,
        cancel: opts.cancel,
        log: opts.log,
        keep_dir: opts.keep_dir,
        stub_status: has_stub_status(nginx),
    };
    let mut report = LabReport {
        schema: SCHEMA,
        scenario: plan.scenario.clone(),
        explanation: plan.explanation.clone(),
        nginx: NginxInfo {
            path: nginx.path.display().to_string(),
            version: version.clone(),
        },
        network: match plan.network {
            Network::Loopback => "loopback (127.0.0.1)".to_string(),
            Network::Namespace { port_range } => format!(
                "private network namespace (nginx 10.241.0.1, backends 10.241.0.2), ip_local_port_range {} {}",
                port_range.0, port_range.1
            ),
        },
        relay_delay_ms: plan.relay_delay.map(|d| d.as_millis() as u64),
        backends: plan
            .servers
            .iter()
            .map(|s| BackendInfo {
                upstream: s.upstream.clone(),
                original: s.original.clone(),
                profile: s.profile.clone(),
                description: s.profile.describe(),
            })
            .collect(),
        traffic: plan.traffic.clone(),
        fix: None,
        runs: Vec::new(),
        interrupted: false,
    };

    let before = run_phase(&env, Phase::Before, &mut Ok)?;
    report.runs.push(before);
    if opts.cancel.is_cancelled() {
        report.interrupted = true;
        return Ok(report);
    }

    let ctx = FixContext {
        plan,
        nginx_version: &version,
    };
    let mut summary: Option<FixSummary> = None;
    let after = run_phase(&env, Phase::After, &mut |rendered| {
        let (files, s) = fix::apply(&ctx, rendered)?;
        summary = Some(s);
        Ok(files)
    })?;
    report.fix = summary;
    report.runs.push(after);
    report.interrupted = opts.cancel.is_cancelled();
    Ok(report)
}
