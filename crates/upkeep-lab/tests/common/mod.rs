//! The real nginx the lab tests run, one lab at a time, and what a report's
//! fix applied.

#![allow(dead_code)]

use std::sync::Mutex;
use upkeep_lab::plan::LabPlan;
use upkeep_lab::{Cancel, LabError, LabReport, RunOptions};
use upkeep_nginx::NginxBinary;

/// Labs of one test binary run one at a time: the stale-connection race
/// depends on timing and must not compete with another lab for the CPU.
pub static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

pub fn nginx() -> NginxBinary {
    NginxBinary::find(None).expect(
        "these tests run a real nginx: install it (Debian: apt-get install nginx-light or nginx)",
    )
}

/// Runs `plan` to the end, quietly.
pub fn run(plan: &LabPlan) -> Result<LabReport, LabError> {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let cancel = Cancel::new();
    let quiet = |_: &str| {};
    upkeep_lab::run(
        plan,
        &nginx(),
        &RunOptions {
            cancel: &cancel,
            log: &quiet,
            keep_dir: None,
        },
    )
}

/// The rules whose fixes the after phase ran with.
pub fn applied_rules(report: &LabReport) -> Vec<&str> {
    report
        .fix
        .as_ref()
        .unwrap()
        .applied
        .iter()
        .map(|a| a.rule.as_str())
        .collect()
}
