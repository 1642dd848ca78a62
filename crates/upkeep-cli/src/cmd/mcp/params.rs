//! The tools' arguments: one struct per tool, whose JSON Schema (derived,
//! with these comments as descriptions) is the tool's input schema. The
//! options mirror the command-line flags of the command of the same name.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

/// Where the configuration comes from: exactly one of `path`, `config` or
/// `nginx_t`.
#[derive(Deserialize, JsonSchema, Debug, Default)]
pub struct ConfigSource {
    /// Main nginx config file, or a directory holding nginx.conf. It is only
    /// read (`fix` writes it only with `write: true`).
    pub path: Option<String>,
    /// The main config file's text, instead of `path`.
    pub config: Option<String>,
    /// With `config`: the files its `include`s load, by the names they use
    /// (relative names resolve against the main file's directory), e.g.
    /// {"conf.d/app.conf": "upstream app { ... }"}.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// With `config`: the main file's name, which findings name and relative
    /// includes resolve against. Default: nginx.conf.
    pub config_name: Option<String>,
    /// The output of `nginx -T` (every file of a configuration), instead of
    /// `path` or `config`.
    pub nginx_t: Option<String>,
}

/// What `check` and `fix` assume (the flags of `upkeep check`).
#[derive(Deserialize, JsonSchema, Debug, Default)]
pub struct CheckAssumptions {
    /// The context the main file is read in (main, http, server, location,
    /// upstream, ...); guessed from its directives when not given.
    pub context: Option<String>,
    /// A missing include file is an error, as it is for nginx.
    #[serde(default)]
    pub strict: bool,
    /// nginx's prefix for relative includes (default: the main file's
    /// directory).
    pub prefix: Option<String>,
    /// Target nginx version X.Y.Z (defaults and directive availability
    /// depend on it). Default: the installed nginx's, else 1.28.0.
    pub nginx_version: Option<String>,
    /// The server: nginx, angie or freenginx (their keep-alive defaults
    /// differ at the same version number; `nginx_version` is then the
    /// flavor's own version). Default: read from `nginx -v`, else nginx.
    pub flavor: Option<String>,
    /// The load balancer in front of nginx, a profile such as aws-alb,
    /// gcp-alb, cloudflare.
    pub front: Option<String>,
    /// Idle timeout of the load balancer in front of nginx (nginx syntax:
    /// 60s, 1m30s).
    pub front_idle: Option<String>,
    /// What each backend does: "UPSTREAM=PROFILE" (gunicorn, uvicorn, node,
    /// ...) or "UPSTREAM=idle=5s,max-requests=100".
    #[serde(default)]
    pub backend: Vec<String>,
    /// A file of backend facts measured by `upkeep probe --format json`.
    pub backend_facts: Option<String>,
    /// Settings file (upkeep.toml). Default: the first upkeep.toml found from
    /// the main config's directory upwards.
    pub config_file: Option<String>,
    /// Run only these rules (IDs, ID prefixes such as "U", or names).
    #[serde(default)]
    pub select: Vec<String>,
    /// Do not run these rules (IDs, prefixes or names).
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Cores to resolve `worker_processes auto` with (default: this host's).
    pub cpus: Option<u32>,
    /// Client `keepalive_requests` to aim for (C001; default 1000).
    pub target_requests: Option<u64>,
}

/// Arguments of `check`.
#[derive(Deserialize, JsonSchema, Debug)]
pub struct CheckParams {
    #[serde(flatten)]
    pub source: ConfigSource,
    #[serde(flatten)]
    pub assume: CheckAssumptions,
}

/// Arguments of `fix`.
#[derive(Deserialize, JsonSchema, Debug)]
pub struct FixParams {
    #[serde(flatten)]
    pub source: ConfigSource,
    #[serde(flatten)]
    pub assume: CheckAssumptions,
    /// Fix only the findings of these rules (IDs or names).
    #[serde(default)]
    pub rules: Vec<String>,
    /// Also apply fixes that change behaviour someone may rely on.
    #[serde(default)]
    pub unsafe_fixes: bool,
    /// Write the changed files (needs `path`): one transaction with a
    /// journal and a lock, FILE.upkeep.bak backups, `nginx -t` on the
    /// original and on the result, rolled back when anything fails. Default:
    /// false, only the diff is returned.
    #[serde(default)]
    pub write: bool,
    /// With `write`: do not validate the result with `nginx -t`.
    #[serde(default)]
    pub no_nginx_test: bool,
}

/// Arguments of `explain`.
#[derive(Deserialize, JsonSchema, Debug)]
pub struct ExplainParams {
    /// Rule ID (U003) or name (connection-close-sent).
    pub rule: String,
    /// The server: nginx, angie or freenginx. With it (or `nginx_version`)
    /// the answer says which defaults decide the rule on that server, each
    /// with its source, and where the rule applies there.
    pub flavor: Option<String>,
    /// The server's version X.Y.Z (the flavor's own number). Default with
    /// `flavor`: read from `nginx -v` when that binary is of the same
    /// flavor, else the flavor's assumed version.
    pub nginx_version: Option<String>,
}

/// Arguments of `logs`.
#[derive(Deserialize, JsonSchema, Debug)]
pub struct LogsParams {
    /// nginx error logs: files or glob patterns (gzip is detected).
    #[serde(default)]
    pub error_logs: Vec<String>,
    /// Access logs, to tell client-visible failures from retried ones
    /// (files or glob patterns).
    #[serde(default)]
    pub access_logs: Vec<String>,
    /// The access log's format in nginx syntax, or the name of a
    /// `log_format` (`combined`, the default, is built in; other names are
    /// looked up in `config`).
    pub log_format: Option<String>,
    /// An nginx config to read the access log's `log_format` from.
    pub config: Option<String>,
    /// Which `log_format` of `config` to use.
    pub log_format_name: Option<String>,
    /// Only lines at or after this time: "2026-11-23 14:00[:00]",
    /// "2026/11/23 14:00:00", or a duration ago ("30m", "2h", "1d").
    pub since: Option<String>,
    /// Only lines before this time (same forms as `since`).
    pub until: Option<String>,
    /// Most per-minute rows kept in memory (at least 10000); past it minutes
    /// are merged into wider buckets. Totals stay exact.
    pub max_minute_rows: Option<usize>,
}

/// Arguments of `doctor`.
#[derive(Deserialize, JsonSchema, Debug)]
pub struct DoctorParams {
    /// The nginx binary (default: `nginx` on PATH, then /usr/sbin).
    pub nginx: Option<String>,
    /// Read this configuration instead of running `nginx -T`.
    pub config: Option<String>,
    /// The nginx master's pid (default: found through the pid file).
    pub pid: Option<i32>,
    /// The stub_status page to sample (default: a `stub_status` location of
    /// the configuration that listens on loopback).
    pub status_url: Option<String>,
    /// The error log to read the end of (default: the config's error_log).
    pub error_log: Option<String>,
    /// The access log, to tell which failures clients saw.
    pub access_log: Option<String>,
    /// The access log's format in nginx syntax, or `combined`.
    pub log_format: Option<String>,
    /// How long to sample stub_status and the sockets (nginx syntax: 5s,
    /// 500ms; at most 60s). Default: 5s.
    pub sample: Option<String>,
    /// Measure the backends that cannot be read on this host (remote ones,
    /// unknown servers, Go programs) with `upkeep probe` before judging
    /// them: real requests to each, at most `probe_max_wait` each, in
    /// parallel. Default: false.
    pub probe: Option<bool>,
    /// With `probe`: the longest time spent on one backend, idle wait
    /// included (nginx syntax; at most 60s). Default: 30s.
    pub probe_max_wait: Option<String>,
    #[serde(flatten)]
    pub assume: CheckAssumptions,
}
