//! Facts about nginx and the servers around it, as Rust data.
//!
//! Directive defaults and version landmarks are Rust tables (`directives.rs`,
//! `version.rs`), each row naming the nginx source it was checked against;
//! backend and load-balancer profiles, and the settings of the Kubernetes
//! controllers that render nginx configurations, are data files
//! (`data/*.tsv`) embedded in the binary, each row with its primary source. No I/O: this crate builds
//! for `wasm32-unknown-unknown`.

mod backends;
mod controllers;
mod directives;
mod duration;
mod flavor;
mod values;
mod version;

pub use backends::{
    backend_profile, backend_profiles, default_max_connections, front_profile, front_profiles,
    node_has_keepalive_buffer, shortest_backend_idle, suggested_upstream_keepalive_timeout_ms,
    BackendFacts, BackendProfile, FrontProfile, PHP_FPM_SHIPPED_MAX_CHILDREN,
};
pub use controllers::{
    controller_setting, Controller, ControllerRelease, ControllerSetting, SettingKind, SettingUnit,
};
pub use directives::{
    directive, is_array_directive, Context, DirectiveFact, Inheritance, DIRECTIVES,
};
pub use duration::{describe_duration, format_duration, parse_duration};
pub use flavor::{flavor_facts, Flavor, FlavorFact, Target};
pub use values::{
    arity, ngx_atoi, ngx_flag, ngx_parse_time, refusal, value_kind, Refusal, ValueContext,
    ValueKind, NGX_MAX_INT,
};
pub use version::{landmarks, NginxVersion};
