//! The one registry of rules. Every list of rules (`upkeep rules`, `explain`,
//! config validation, the SARIF rule table) comes from here, and every entry
//! comes from the rule's own file: adding a rule is one file under `rules/`
//! plus one name in the `registry!` list in `rules/mod.rs`.

use upkeep_diag::{Finding, Severity};

use crate::context::Ctx;

/// A rule's metadata and documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleInfo {
    /// Stable ID, e.g. `U001`. IDs never change meaning.
    pub id: &'static str,
    /// Kebab-case name, e.g. `upstream-without-keepalive`.
    pub name: &'static str,
    /// Default severity.
    pub severity: Severity,
    /// Whether the rule offers an automatic fix (for at least some findings).
    pub fixable: bool,
    /// One sentence.
    pub summary: &'static str,
    /// Markdown with the sections `## What it finds`, `## Why it breaks
    /// reuse`, `## Example`, `## Fix`, `## References`.
    pub doc: &'static str,
}

impl RuleInfo {
    /// A finding of this rule at its default severity.
    pub fn finding(&self, message: impl Into<String>) -> Finding {
        Finding::new(self.id, self.name, self.severity, message)
    }
}

pub(crate) type CheckFn = fn(&Ctx) -> Vec<Finding>;

/// Declares the rule modules and builds the registry from them, so that
/// adding a rule is one file under `rules/` plus its name in the list in
/// `rules/mod.rs`.
macro_rules! registry {
    ($($module:ident),* $(,)?) => {
        $(pub mod $module;)*
        pub(crate) static INFOS: &[crate::registry::RuleInfo] = &[$($module::INFO),*];
        pub(crate) static CHECKS: &[(&crate::registry::RuleInfo, crate::registry::CheckFn)] =
            &[$((&$module::INFO, $module::check as crate::registry::CheckFn)),*];
    };
}
pub(crate) use registry;

use crate::rules::{CHECKS as RULE_CHECKS, INFOS};

pub(crate) static CHECKS: &[(&RuleInfo, CheckFn)] = RULE_CHECKS;

/// Every rule, in ID order.
pub fn rules() -> &'static [RuleInfo] {
    INFOS
}

/// A rule by ID (`U003`, case-insensitive) or name (`connection-close-sent`).
pub fn rule(id_or_name: &str) -> Option<&'static RuleInfo> {
    INFOS
        .iter()
        .find(|r| r.id.eq_ignore_ascii_case(id_or_name) || r.name == id_or_name)
}
