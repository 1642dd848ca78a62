//! Findings, fixes and their rendering.
//!
//! One [`Finding`] type serves every source of evidence: static rules over the
//! config, the log classifier, the host census, the prober. Renderers (human,
//! JSON, SARIF) never know where a finding came from.
//!
//! No I/O here: renderers produce strings, so the crate builds for
//! `wasm32-unknown-unknown`.

mod finding;
pub mod parallel;
pub mod render;
pub mod terminal;

pub use finding::{Applicability, Edit, Finding, Fix, Label, ManagedSetting, Severity};
pub use render::{display_path, Report, Summary};
pub use terminal::{terminal_safe, terminal_safe_line};
