//! The result of a check.

use upkeep_diag::Finding;
use upkeep_facts::{Flavor, NginxVersion, Target};

use crate::options::VersionSource;

#[derive(Clone, Debug)]
pub struct CheckReport {
    /// Sorted by file, then position.
    pub findings: Vec<Finding>,
    pub flavor: Flavor,
    /// The flavor's own version number.
    pub nginx_version: NginxVersion,
    pub version_source: VersionSource,
    /// What the verdicts rest on that the user did not say
    /// ("assuming nginx 1.28.0 (default)").
    pub assumptions: Vec<String>,
    /// The Kubernetes controller that rendered the configuration, when its
    /// markers were found: findings then name its settings, not file edits.
    pub controller: Option<crate::controllers::Recognized>,
}

impl CheckReport {
    /// One line naming the version and where it came from, for summaries.
    pub fn version_statement(&self) -> String {
        let target = self.target();
        match self.version_source {
            VersionSource::Given => format!("{target} (given)"),
            VersionSource::Detected => format!("{target} (detected from nginx -v)"),
            VersionSource::Assumed => {
                format!("assuming {target} (default; pass --nginx-version)")
            }
            VersionSource::Controller => {
                format!("{target} (the controller's; pass --nginx-version)")
            }
        }
    }

    /// The server the verdicts were computed for.
    pub fn target(&self) -> Target {
        Target::new(self.flavor, self.nginx_version)
    }
}
