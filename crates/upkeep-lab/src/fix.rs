//! The after phase's config: the before config with `upkeep fix` applied.
//!
//! Everything that depends on the fix engine is in this file, so the rest of
//! the lab does not care where the after config comes from.

use crate::error::LabError;
use crate::plan::{AfterConfig, ConfigFile, LabPlan};
use crate::report::{AppliedFix, FixSummary};

/// The after-config source scenarios use: the fix engine.
pub fn default_after(expected: fn(&str) -> String) -> AfterConfig {
    // The fix engine is not part of the workspace yet; until it is, the
    // scenario's statement of the fix stands in and reports say so.
    AfterConfig::Expected(expected)
}

/// What the lab knows about the run that `upkeep check` should know too.
pub struct FixContext<'a> {
    pub plan: &'a LabPlan,
    /// "1.22.1", from `nginx -v`.
    pub nginx_version: &'a str,
}

/// Applies the fix to the rendered before-config of a phase.
pub fn apply(
    ctx: &FixContext<'_>,
    rendered: Vec<ConfigFile>,
) -> Result<(Vec<ConfigFile>, FixSummary), LabError> {
    match ctx.plan.after {
        AfterConfig::Expected(f) => {
            let mut files = rendered.clone();
            files[0].text = f(&files[0].text);
            let diff = crate::diff::unified_files(&rendered, &files);
            if diff.is_empty() {
                return Err(LabError::Fix(
                    "the expected fix changed nothing".to_string(),
                ));
            }
            Ok((
                files,
                FixSummary {
                    source: format!(
                        "the {} scenario's expected fix (the fix engine is not available in this build)",
                        ctx.plan.scenario
                    ),
                    applied: Vec::<AppliedFix>::new(),
                    diff,
                },
            ))
        }
        AfterConfig::FixEngine => Err(LabError::Fix(
            "the fix engine is not available in this build".to_string(),
        )),
    }
}
