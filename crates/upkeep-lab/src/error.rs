use std::fmt;

/// Why a lab run could not be carried out.
#[derive(Debug)]
pub enum LabError {
    /// Bad scenario, flag or config given by the user.
    Usage(String),
    /// No nginx binary to run.
    NginxNotFound(String),
    /// The scenario cannot run here (e.g. no permission for a network
    /// namespace); not a failure of the config under test.
    Skipped(String),
    /// `nginx -t` refused the config of a phase.
    ConfigRejected { phase: &'static str, output: String },
    /// `upkeep fix` could not produce the after config.
    Fix(String),
    /// The harness itself failed (ports, processes, files).
    Harness(String),
}

impl fmt::Display for LabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LabError::Usage(m) => write!(f, "{m}"),
            LabError::NginxNotFound(m) => write!(f, "{m}"),
            LabError::Skipped(m) => write!(f, "skipped: {m}"),
            LabError::ConfigRejected { phase, output } => {
                write!(
                    f,
                    "nginx -t rejected the {phase} config:\n{}",
                    output.trim_end()
                )
            }
            LabError::Fix(m) => write!(f, "upkeep fix failed: {m}"),
            LabError::Harness(m) => write!(f, "lab harness: {m}"),
        }
    }
}

impl std::error::Error for LabError {}

pub(crate) fn harness<E: fmt::Display>(what: &str) -> impl FnOnce(E) -> LabError + '_ {
    move |e| LabError::Harness(format!("{what}: {e}"))
}
