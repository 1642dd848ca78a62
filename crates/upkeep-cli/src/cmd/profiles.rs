//! `upkeep profiles`: every backend and load-balancer profile that
//! `--backend`, `--front`, upkeep.toml and `# upkeep: backend NAME` accept,
//! with its idle timeout and where that number comes from.

use std::process::ExitCode;

use upkeep_facts::{backend_profiles, describe_duration, front_profiles};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.format {
        Format::Json => print_json()?,
        Format::Human => print_human(),
    }
    Ok(ExitCode::SUCCESS)
}

fn idle(ms: Option<u64>) -> String {
    ms.map(describe_duration).unwrap_or_else(|| "none".into())
}

fn print_human() {
    let backends = backend_profiles();
    let fronts = front_profiles();
    let width = backends
        .iter()
        .map(|p| p.name.len())
        .chain(fronts.iter().map(|p| p.name.len()))
        .max()
        .unwrap_or(0);
    println!("Backend profiles (`--backend UPSTREAM=NAME`, `# upkeep: backend NAME`):");
    for p in backends {
        let cap = p
            .max_requests
            .map(|n| format!(", closes after {n} requests"))
            .unwrap_or_default();
        println!(
            "  {:width$}  idle {:>8}{cap}  {}",
            p.name,
            idle(p.idle_timeout_ms),
            p.display
        );
        println!("  {:width$}  {}", "", p.note);
        println!("  {:width$}  source: {}", "", p.source);
    }
    println!("\nLoad balancers in front of nginx (`--front NAME`, `front = \"NAME\"`):");
    for p in fronts {
        println!(
            "  {:width$}  idle {:>8}  {}",
            p.name,
            idle(Some(p.idle_timeout_ms)),
            p.display
        );
        println!("  {:width$}  {}", "", p.note);
        println!("  {:width$}  source: {}", "", p.source);
    }
    println!(
        "\n{} backend and {} front profiles. `idle` is how long the server keeps an idle connection open; `none`: it never closes one for idleness.",
        backends.len(),
        fronts.len()
    );
    println!("Node.js: `node@VERSION` (e.g. node@20.20.2) picks the row for that release.");
}

fn print_json() -> anyhow::Result<()> {
    let backends: Vec<serde_json::Value> = backend_profiles()
        .iter()
        .map(|p| {
            serde_json::json!({
                "name": p.name,
                "aliases": p.aliases().collect::<Vec<_>>(),
                "display": p.display,
                "idle_timeout_ms": p.idle_timeout_ms,
                "max_requests": p.max_requests,
                "announces_close": p.announces_close,
                "note": p.note,
                "source": p.source,
            })
        })
        .collect();
    let fronts: Vec<serde_json::Value> = front_profiles()
        .iter()
        .map(|p| {
            serde_json::json!({
                "name": p.name,
                "aliases": p.aliases().collect::<Vec<_>>(),
                "display": p.display,
                "idle_timeout_ms": p.idle_timeout_ms,
                "note": p.note,
                "source": p.source,
            })
        })
        .collect();
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "schema": 1,
            "backends": backends,
            "fronts": fronts,
        }))?
    );
    Ok(())
}
