//! `upkeep generate man|bash|zsh|fish|elvish|powershell DIR`: the man page
//! and shell completions, generated from the same clap definition that parses
//! the arguments, so they cannot drift from the flags. Packaging runs it
//! after the build (see `[package.metadata.deb]`).

use anyhow::Context as _;
use clap_complete::Shell;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// What to write: `man` (upkeep.1 and one page per subcommand) or a
    /// shell's completion script.
    #[arg(value_enum)]
    pub what: Asset,
    /// Directory to write into (created if missing).
    pub dir: PathBuf,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Asset {
    Man,
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

pub fn run(args: Args, mut cmd: clap::Command) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let shell = match args.what {
        Asset::Man => {
            cmd.build();
            write_man(&cmd, &args.dir)?;
            return Ok(ExitCode::SUCCESS);
        }
        Asset::Bash => Shell::Bash,
        Asset::Zsh => Shell::Zsh,
        Asset::Fish => Shell::Fish,
        Asset::Elvish => Shell::Elvish,
        Asset::Powershell => Shell::PowerShell,
    };
    let path = clap_complete::generate_to(shell, &mut cmd, "upkeep", &args.dir)
        .with_context(|| format!("writing {shell} completions to {}", args.dir.display()))?;
    println!("{}", path.display());
    Ok(ExitCode::SUCCESS)
}

/// upkeep.1, plus upkeep-check.1 etc. for each visible subcommand, which the
/// main page's SUBCOMMANDS section names.
fn write_man(cmd: &clap::Command, dir: &Path) -> anyhow::Result<()> {
    let write = |cmd: clap::Command, name: String| -> anyhow::Result<()> {
        let path = dir.join(format!("{name}.1"));
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd.display_name(name.clone())).render(&mut buf)?;
        std::fs::write(&path, buf).with_context(|| format!("writing {}", path.display()))?;
        println!("{}", path.display());
        Ok(())
    };
    write(cmd.clone(), "upkeep".into())?;
    for sub in cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let name = format!("upkeep-{}", sub.get_name());
        write(sub.clone(), name)?;
    }
    Ok(())
}
