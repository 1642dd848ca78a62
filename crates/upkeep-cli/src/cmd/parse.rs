use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Main config file, a directory holding nginx.conf, or `-` for `nginx -T` output.
    pub path: PathBuf,
}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`upkeep parse` is not available yet")
}
