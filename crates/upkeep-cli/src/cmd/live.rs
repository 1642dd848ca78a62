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
use upkeep_host::process::{self, RunningMaster};
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
    /// The running master whose configuration is read: the one `--pid`
    /// names, else the one found through the compiled-in pid file (or the
    /// only one on the host) when no `--config` is given.
    pub master: Option<RunningMaster>,
}

/// Why no configuration was read.
pub enum LoadFailure {
    /// A configuration was read and is broken.
    Broken(upkeep_config::LoadError),
    /// No `--config` and no binary to run `nginx -T`.
    NoBinary,
    /// No `--config` and `nginx -T` failed; the error names the command.
    DumpFailed(std::io::Error),
}

impl fmt::Display for LoadFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadFailure::Broken(e) => f.write_str(e.render().trim_end()),
            LoadFailure::NoBinary => f.write_str("no nginx binary found to run `nginx -T`"),
            LoadFailure::DumpFailed(error) => write!(f, "{error}"),
        }
    }
}

impl LocalNginx {
    /// The nginx to look at. With `pid`, that process must be an nginx
    /// master (else an error); its configuration is the one it was started
    /// with (`-p`, `-c`, `-g` from its command line, and its own binary's
    /// compiled-in paths for what they leave out). Without `pid` and without
    /// `config`, the master named by the compiled-in pid file, if running.
    pub fn locate(
        given: Option<&Path>,
        pid: Option<i32>,
        config: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let master = match pid {
            Some(pid) => {
                let m =
                    RunningMaster::read(pid).map_err(|e| anyhow::anyhow!("--pid {pid}: {e}"))?;
                if !m.same_mount_namespace && config.is_none() {
                    anyhow::bail!(
                        "--pid {pid}: this nginx runs in another mount namespace (a container), where its paths are not this host's; give its configuration with --config (e.g. /proc/{pid}/root/etc/nginx/nginx.conf)"
                    );
                }
                Some(m)
            }
            None => None,
        };
        // The master's own binary: its `nginx -V` has the defaults it uses.
        let binary = match (&master, given) {
            (Some(m), None) => match m.binary() {
                Some(path) => Some(NginxBinary { path }),
                None => find_binary(None)?,
            },
            _ => find_binary(given)?,
        };
        let build = build_paths(binary.as_ref());
        let master = master.or_else(|| {
            if config.is_some() {
                return None;
            }
            let built_pid = build
                .pid_path
                .as_deref()
                .and_then(|p| resolve_path(p, build.prefix.as_deref().map(Path::new)));
            // Only the compiled-in pid file: "the only master on this
            // host" may be anyone's test instance, not the nginx whose
            // configuration `nginx -T` would otherwise show.
            std::fs::read_to_string(built_pid?)
                .ok()
                .and_then(|text| text.trim().parse().ok())
                .and_then(|pid| RunningMaster::read(pid).ok())
                .filter(|m| m.same_mount_namespace)
        });
        Ok(LocalNginx {
            binary,
            build,
            master,
        })
    }

    /// nginx's prefix: the master's `-p`, else the compiled-in one.
    pub fn prefix(&self) -> Option<PathBuf> {
        match &self.master {
            Some(m) => m.effective_prefix(self.build.prefix.as_deref()),
            None => self.build.prefix.as_deref().map(PathBuf::from),
        }
    }

    /// Loads `config`, else the running configuration that `nginx -T`
    /// prints. Warnings are printed here.
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
                let options = match &self.master {
                    Some(m) => m.command.dump_args(self.prefix().as_deref()),
                    None => Vec::new(),
                };
                let dump = b
                    .dump_config_with(&options)
                    .map_err(LoadFailure::DumpFailed)?;
                ConfigSet::from_nginx_t(&dump, opts)
            }
        };
        match loaded {
            Ok(c) => {
                check::print_load_warnings(&c);
                Ok(c)
            }
            Err(e) => Err(LoadFailure::Broken(e)),
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
        if let Some(pid) = given.or(self.master.as_ref().map(|m| m.pid)) {
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

    /// The error log nginx uses when the configuration names none: the
    /// master's `-e`, else the one it was built with (not `stderr`, and
    /// only when it resolves to a path).
    pub fn built_error_log(&self, prefix: Option<&Path>) -> Option<PathBuf> {
        self.master
            .as_ref()
            .and_then(|m| m.command.error_log.as_deref())
            .or(self.build.error_log_path.as_deref())
            .filter(|p| *p != "stderr")
            .and_then(|p| resolve_path(p, prefix))
    }
}

fn build_paths(binary: Option<&NginxBinary>) -> BuildPaths {
    match binary {
        Some(b) => build_info::read(&b.path).unwrap_or_default(),
        None => BuildPaths::default(),
    }
}
