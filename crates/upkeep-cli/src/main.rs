//! The `upkeep` binary: argument parsing and dispatch. Each command lives in
//! its own module under `cmd/`; the work itself is done by the library crates.

mod cmd;
mod configmap;
mod settings_file;
mod version;

/// mimalloc instead of the system allocator: a parsed config is hundreds of
/// thousands of small allocations, and mimalloc makes `upkeep parse` of a
/// large config about a third cheaper in CPU (bench/parse-bench.sh).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Hands the pages of freed blocks back to the operating system now.
/// mimalloc otherwise does it a little later, on a later allocation; `fix`
/// frees a whole syntax tree (twice the size of the configuration) just
/// before it allocates texts as large as the configuration, and with the
/// delay both can count in the peak (one run in two, by about 120 MiB on
/// the 204 MB benchmark file).
pub(crate) fn release_freed_memory() {
    // SAFETY: mi_collect only walks and trims mimalloc's own heaps; with
    // `force` it also takes back the pages of threads that have ended.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Find, fix and prove nginx keep-alive (connection reuse) problems.
#[derive(Parser, Debug)]
#[command(
    name = "upkeep",
    version,
    long_version = version::LONG_VERSION.as_str(),
    about,
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Find keep-alive misconfigurations (exit 1 when there are findings).
    Check(Box<cmd::check::Args>),
    /// Fix what `check` finds: print a diff, or --write the files.
    Fix(Box<cmd::fix::Args>),
    /// Explain a rule: what it finds, why it breaks reuse, the fix.
    Explain(cmd::explain::Args),
    /// List every rule.
    Rules(cmd::rules::Args),
    /// List the backend and load-balancer profiles: idle timeouts and their sources.
    Profiles(cmd::profiles::Args),
    /// Print the parsed config as crossplane-compatible JSON.
    Parse(cmd::parse::Args),
    /// Measure backends: keep-alive, idle timeout, requests per connection.
    Probe(Box<cmd::probe::Args>),
    /// Classify upstream and keep-alive failures in nginx error (and access) logs.
    Logs(Box<cmd::logs::Args>),
    /// Diagnose a live host: sockets, limits, stub_status, error log, config.
    Doctor(Box<cmd::doctor::Args>),
    /// Reproduce on a real nginx with emulated backends, then prove the fix.
    Lab(Box<cmd::lab::Args>),
    /// Live view of a running nginx: requests/s, new upstream connections/s, TIME_WAIT, errors/s.
    Watch(Box<cmd::watch::Args>),
    /// Write the man pages or a shell's completion script into a directory.
    Generate(cmd::generate::Args),
    /// Serve check, fix, explain, logs and doctor to AI assistants: a Model
    /// Context Protocol server on standard input and output.
    Mcp(cmd::mcp::Args),
}

/// The allocator's arenas would otherwise be backed by transparent huge
/// pages, so each new piece of the heap costs 2 MiB of resident memory and
/// peak RSS grows in 2 MiB steps instead of with what is really used.
/// Measured with ordinary pages: `check examples/kubernetes` peaks at
/// 10.3 MB of RSS instead of 12.3 MB; `check` on the 204 MB file of
/// bench/check-bench.sh at 724 to 732 MiB instead of 743 to 746 MiB;
/// streaming the 2 GiB log of bench/logs-bench.sh at 11.4 MB instead of
/// 17.5 MB. No measurable difference to the time. The flag is inherited
/// by the processes upkeep starts (`nginx -t`, lab's nginx), which do not
/// rely on huge pages either.
fn small_pages_only() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE only sets a flag of this process (and of
    // the processes it starts); no pointers are passed.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// Exit codes shared by every command (SPEC.md): 0 clean, 1 findings, 2 usage
/// or input error.
pub const EXIT_FINDINGS: u8 = 1;
pub const EXIT_INPUT_ERROR: u8 = 2;

fn main() -> ExitCode {
    small_pages_only();
    reset_sigpipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => cmd::check::run(*args),
        Command::Fix(args) => cmd::fix::run(*args),
        Command::Explain(args) => cmd::explain::run(args),
        Command::Rules(args) => cmd::rules::run(args),
        Command::Profiles(args) => cmd::profiles::run(args),
        Command::Parse(args) => cmd::parse::run(args),
        Command::Probe(args) => cmd::probe::run(*args),
        Command::Logs(args) => cmd::logs::run(*args),
        Command::Doctor(args) => cmd::doctor::run(*args),
        Command::Lab(args) => cmd::lab::run(*args),
        Command::Watch(args) => cmd::watch::run(*args),
        Command::Mcp(args) => cmd::mcp::run(args),
        Command::Generate(args) => {
            cmd::generate::run(args, <Cli as clap::CommandFactory>::command())
        }
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            // Paths and values from the command line or from files.
            eprintln!("error: {}", upkeep_diag::terminal_safe(&format!("{err:#}")));
            ExitCode::from(EXIT_INPUT_ERROR)
        }
    }
}

/// A closed pipe (`upkeep logs … | head`) ends the program quietly instead of
/// panicking inside `println!`.
fn reset_sigpipe() {
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread
    // starts; no Rust invariants depend on it.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
