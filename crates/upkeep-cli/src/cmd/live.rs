//! The inputs `doctor` and `watch` both take about the nginx running here:
//! its binary and what it was built with, the running configuration (from
//! `--config` or `nginx -T`), the stub_status URL and the master's pid.
//! `lab` shares the binary lookup.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use upkeep_config::{ConfigSet, LoadOptions};
use upkeep_host::build_info::{self, BuildPaths};
use upkeep_host::live_config::{resolve_path, LiveConfig};
use upkeep_host::process;
use upkeep_host::stub_status::StatusUrl;
use upkeep_nginx::NginxBinary;

use super::check;

/// `--nginx PATH` (an error when it names no file), else the binary found
/// on PATH or in the usual directories, if any.
pub fn find_binary(given: Option<&Path>) -> anyhow::Result<Option<NginxBinary>> {
    Ok(match given {
        Some(p) => Some(
            NginxBinary::find(Some(p))
                .with_context(|| format!("--nginx {}: no such file", p.display()))?,
        ),
        None => NginxBinary::find(None),
    })
}

/// `--status-url`, checked.
pub fn status_url(given: Option<&str>) -> anyhow::Result<Option<StatusUrl>> {
    given
        .map(StatusUrl::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--status-url {e}"))
}

/// The nginx binary of this host, if one is found, and the paths it was
/// built with (empty without a binary, or when `nginx -V` says nothing).
pub struct LocalNginx {
    pub binary: Option<NginxBinary>,
    pub build: BuildPaths,
}

/// Why no configuration was read.
pub enum LoadFailure {
    /// A configuration was read and is broken: already reported.
    Broken,
    /// No `--config` and no binary to run `nginx -T`.
    NoBinary,
    /// No `--config` and `nginx -T` failed; the error names the command.
    DumpFailed(std::io::Error),
}

impl fmt::Display for LoadFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadFailure::Broken => f.write_str("the configuration has errors"),
            LoadFailure::NoBinary => f.write_str("no nginx binary found to run `nginx -T`"),
            LoadFailure::DumpFailed(error) => write!(f, "{error}"),
        }
    }
}

impl LocalNginx {
    /// Finds the binary as [`find_binary`] does and reads its build paths.
    pub fn find(given: Option<&Path>) -> anyhow::Result<Self> {
        let binary = find_binary(given)?;
        let build = match &binary {
            Some(b) => build_info::read(&b.path).unwrap_or_default(),
            None => BuildPaths::default(),
        };
        Ok(LocalNginx { binary, build })
    }

    /// Loads `config`, else the running configuration that `nginx -T`
    /// prints. Load errors and warnings are printed here.
    pub fn load_config(
        &self,
        config: Option<&Path>,
        opts: &LoadOptions,
    ) -> Result<ConfigSet, LoadFailure> {
        let loaded = match config {
            Some(path) => ConfigSet::load_path(&path.display().to_string(), opts),
            None => {
                let Some(b) = &self.binary else {
                    return Err(LoadFailure::NoBinary);
                };
                let dump = b.dump_config().map_err(LoadFailure::DumpFailed)?;
                ConfigSet::from_nginx_t(&dump, opts)
            }
        };
        match loaded {
            Ok(c) => {
                check::print_load_warnings(&c);
                Ok(c)
            }
            Err(e) => {
                check::print_load_error(&e);
                Err(LoadFailure::Broken)
            }
        }
    }

    /// `--pid`, else the master named by the configuration's pid file (or
    /// the one nginx was built with), else the only nginx master here.
    pub fn master_pid(
        &self,
        given: Option<i32>,
        live: &LiveConfig,
        prefix: Option<&Path>,
    ) -> Result<i32, String> {
        if let Some(pid) = given {
            return Ok(pid);
        }
        let pid_file = live
            .settings
            .pid
            .as_deref()
            .or(self.build.pid_path.as_deref())
            .and_then(|p| resolve_path(p, prefix));
        process::find_master(pid_file.as_deref())
    }

    /// The error log nginx was built with, for a configuration that names
    /// none (not `stderr`, and only when it resolves to a path).
    pub fn built_error_log(&self, prefix: Option<&Path>) -> Option<PathBuf> {
        self.build
            .error_log_path
            .as_deref()
            .filter(|p| *p != "stderr")
            .and_then(|p| resolve_path(p, prefix))
    }
}
