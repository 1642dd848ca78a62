//! The result of a check.

use upkeep_diag::Finding;
use upkeep_facts::NginxVersion;

use crate::options::VersionSource;

#[derive(Clone, Debug)]
pub struct CheckReport {
    /// Sorted by file, then position.
    pub findings: Vec<Finding>,
    pub nginx_version: NginxVersion,
    pub version_source: VersionSource,
    /// What the verdicts rest on that the user did not say
    /// ("assuming nginx 1.28.0 (default)").
    pub assumptions: Vec<String>,
}

impl CheckReport {
    /// One line naming the version and where it came from, for summaries.
    pub fn version_statement(&self) -> String {
        match self.version_source {
            VersionSource::Given => format!("nginx {} (given)", self.nginx_version),
            VersionSource::Detected => {
                format!("nginx {} (detected from nginx -v)", self.nginx_version)
            }
            VersionSource::Assumed => format!(
                "assuming nginx {} (default; pass --nginx-version)",
                self.nginx_version
            ),
        }
    }
}
