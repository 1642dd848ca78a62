//! The static check of the running configuration, kept for the
//! `upkeep_findings` gauge: how many findings each rule gave, by severity,
//! at the last check. The watch runs the check at its start and again when
//! nginx reloads, so the gauge follows the configuration nginx runs.

use std::collections::BTreeMap;
use std::time::SystemTime;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StaticFindings {
    /// (rule ID, severity) → findings at the last check. A pair seen at an
    /// earlier check stays, at 0, so a fixed finding reads as a drop to 0
    /// rather than as a series that stops.
    pub counts: BTreeMap<(String, String), u64>,
    /// Checks run since the watch started.
    pub checks: u64,
    /// Of the last check that loaded the configuration.
    pub last_success: Option<SystemTime>,
    /// Why the last check could not run (the configuration did not load);
    /// the counts are then those of the check before.
    pub last_error: Option<String>,
}

impl StaticFindings {
    /// Records a check's findings, each as (rule ID, severity).
    pub fn record<'a>(&mut self, findings: impl IntoIterator<Item = (&'a str, &'a str)>) {
        for n in self.counts.values_mut() {
            *n = 0;
        }
        for (rule, severity) in findings {
            *self
                .counts
                .entry((rule.to_string(), severity.to_string()))
                .or_insert(0) += 1;
        }
        self.checks += 1;
        self.last_success = Some(SystemTime::now());
        self.last_error = None;
    }

    /// Records a check that could not run.
    pub fn failed(&mut self, why: String) {
        self.checks += 1;
        self.last_error = Some(why);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_rule_drops_to_zero_and_a_failed_check_keeps_the_counts() {
        let mut f = StaticFindings::default();
        f.record([("U001", "warning"), ("U001", "warning"), ("U007", "error")]);
        assert_eq!(f.counts[&("U001".into(), "warning".into())], 2);
        f.record([("U007", "error")]);
        assert_eq!(f.counts[&("U001".into(), "warning".into())], 0);
        assert_eq!(f.counts[&("U007".into(), "error".into())], 1);
        f.failed("nginx.conf:3:1: unexpected \"}\"".into());
        assert_eq!(f.checks, 3);
        assert_eq!(f.counts[&("U007".into(), "error".into())], 1);
        assert!(f.last_error.is_some());
    }
}
