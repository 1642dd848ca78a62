//! What a lab run is made of: the config to run, the backends behind it, the
//! network it runs on and the traffic it gets. Scenarios build a [`LabPlan`];
//! the runner executes it twice (before and after `upkeep fix`).

use crate::backend::BackendProfile;
use crate::traffic::TrafficProfile;
use serde::Serialize;
use std::time::Duration;

/// One config file of the set nginx runs, path relative to the prefix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConfigFile {
    pub path: String,
    pub text: String,
}

/// A file of the user's config set and where the lab put its copy, so
/// that what nginx says about the copy can be said about the user's file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    /// The copy's path relative to the prefix ([`ConfigFile::path`]).
    pub copy: String,
    /// The user's file as loaded.
    pub path: String,
    pub text: String,
}

/// One emulated backend: it stands in for the `@SERVER:key@` placeholder of
/// the config template, i.e. one `server` line of an upstream block.
#[derive(Clone, Debug, Serialize)]
pub struct ServerSlot {
    pub key: String,
    /// The upstream block the server belongs to (for facts and reports).
    pub upstream: String,
    /// The address the user's config had there, if any (reports only).
    pub original: Option<String>,
    pub profile: BackendProfile,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Network {
    /// 127.0.0.1 with free ports.
    Loopback,
    /// A private namespace (10.241.0.0/24) with a narrow local port range.
    Namespace { port_range: (u16, u16) },
}

/// Placeholders a config template may contain. Rendering replaces them for
/// each phase with that phase's addresses and paths.
pub mod placeholder {
    /// `listen` address of the proxied server(s).
    pub const LISTEN: &str = "@LISTEN@";
    /// The lab's own stub_status server (http context), or a comment when
    /// the nginx binary has no stub_status module.
    pub const STATUS_SERVER: &str = "@STATUS_SERVER@";
    /// Directives keeping nginx's temp files inside the prefix (http context).
    pub const TEMP_PATHS: &str = "@TEMP_PATHS@";
    /// Prefix of a backend slot: `@SERVER:key@`.
    pub const SERVER_PREFIX: &str = "@SERVER:";
}

#[derive(Clone, Debug)]
pub struct LabPlan {
    pub scenario: String,
    /// One paragraph: what happens inside nginx and why the fix helps.
    pub explanation: String,
    /// Main file first; templates with [`placeholder`]s.
    pub files: Vec<ConfigFile>,
    pub servers: Vec<ServerSlot>,
    /// One-way delay of the relays; `None` connects nginx to the backends directly.
    pub relay_delay: Option<Duration>,
    pub traffic: TrafficProfile,
    pub network: Network,
    /// Path of the stub_status location on the status listener.
    pub status_path: String,
    /// The user's files the config was made from (empty for the built-in
    /// scenarios, whose config is the lab's own).
    pub sources: Vec<SourceFile>,
    /// How the after phase's `upkeep fix` runs.
    pub fix: FixSettings,
}

/// What `upkeep fix` is told for the after phase beyond what the lab knows
/// itself (the nginx version, the emulated backends).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FixSettings {
    /// Also apply the fixes that change behaviour (`--unsafe-fixes`).
    pub unsafe_fixes: bool,
    /// The load balancer in front of nginx, a front profile (`--front`).
    pub front_name: Option<String>,
    /// Its idle timeout toward nginx (`--front-idle`).
    pub front_idle_ms: Option<u64>,
}

impl LabPlan {
    pub fn main_file(&self) -> &ConfigFile {
        &self.files[0]
    }
}

/// Phase of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Before,
    After,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Before => "before",
            Phase::After => "after",
        }
    }
}
