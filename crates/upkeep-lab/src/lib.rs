//! `upkeep lab`: reproduce a keep-alive failure on a real nginx, then prove
//! the fix.
//!
//! A run starts the nginx binary in a private prefix on 127.0.0.1 (or in a
//! network namespace of its own), puts emulated backends with chosen
//! keep-alive behaviour behind delaying relays, drives client traffic, and
//! measures what clients, backends, sockets and the error log saw. It does
//! that for the config as is and again with `upkeep fix` applied.
//!
//! Layout: [`backend`], [`relay`] and [`traffic`] are the moving parts;
//! [`phase`] runs one phase and [`run`] both; [`scenario`] holds the built-in
//! scenarios and the user-config one; [`measure`] and [`report`] turn what
//! happened into numbers, tables, JSON and HTML.

pub mod backend;
pub mod cancel;
pub mod duration;
mod error;
pub mod fix;
mod http;
pub mod keep;
pub mod leftovers;
pub mod measure;
pub mod netns;
pub mod phase;
pub mod plan;
pub mod relay;
mod render;
pub mod report;
pub mod run;
pub mod scenario;
pub mod source_map;
#[cfg(test)]
mod test_support;
pub mod traffic;

pub use cancel::{cancel_on_signals, Cancel};
pub use error::LabError;
pub use plan::{LabPlan, Phase};
pub use report::LabReport;
pub use run::{nginx_version, run, RunOptions};
