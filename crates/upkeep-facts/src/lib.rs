//! Facts about nginx and the servers around it, as Rust data.
//!
//! Everything here is transcribed from the project's fact files
//! (`facts/directives.tsv`, `facts/behaviors.md`, `facts/backends.tsv`); each
//! table row carries a comment naming the row it comes from, so a reviewer can
//! check it against the source. No I/O: this crate builds for
//! `wasm32-unknown-unknown`.

mod backends;
mod directives;
mod duration;
mod version;

pub use backends::{
    backend_profile, backend_profiles, front_profile, front_profiles,
    suggested_upstream_keepalive_timeout_ms, BackendFacts, BackendProfile, FrontProfile,
};
pub use directives::{
    directive, is_array_directive, Context, DirectiveFact, Inheritance, DIRECTIVES,
};
pub use duration::{describe_duration, format_duration, parse_duration};
pub use version::{landmarks, NginxVersion};
