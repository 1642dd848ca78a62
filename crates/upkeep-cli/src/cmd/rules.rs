//! `upkeep rules`: every rule of the registry, one per line.

use std::process::ExitCode;

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
    // Config rules (found by `check`, fixed by `fix`), then the host rules
    // that `doctor` measures on a running nginx. One registry each.
    let config = upkeep_rules::rules();
    let host = &upkeep_host::rules::INFOS[..];
    let all = || {
        config
            .iter()
            .map(|r| (r, "check"))
            .chain(host.iter().map(|r| (r, "doctor")))
    };
    match args.format {
        Format::Json => {
            let list: Vec<serde_json::Value> = all()
                .map(|(r, command)| {
                    serde_json::json!({
                        "id": r.id,
                        "name": r.name,
                        "severity": r.severity.as_str(),
                        "fixable": r.fixable,
                        "summary": r.summary,
                        "command": command,
                    })
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({ "schema": 1, "rules": list }))?
            );
        }
        Format::Human => {
            let name_width = all().map(|(r, _)| r.name.len()).max().unwrap_or(0);
            let line = |r: &upkeep_rules::RuleInfo| {
                let fix = if r.fixable { "fix" } else { "   " };
                println!(
                    "{}  {:name_width$}  {:7}  {fix}  {}",
                    r.id,
                    r.name,
                    r.severity.as_str(),
                    r.summary
                );
            };
            println!("Configuration rules (`upkeep check`):");
            config.iter().for_each(line);
            println!("\nHost rules, measured on a running nginx (`upkeep doctor`):");
            host.iter().for_each(line);
            println!(
                "\n{} rules; `upkeep explain ID` for the details",
                config.len() + host.len()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
