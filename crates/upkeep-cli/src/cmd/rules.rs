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
    let rules = upkeep_rules::rules();
    match args.format {
        Format::Json => {
            let list: Vec<serde_json::Value> = rules
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "id": r.id,
                        "name": r.name,
                        "severity": r.severity.as_str(),
                        "fixable": r.fixable,
                        "summary": r.summary,
                    })
                })
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({ "schema": 1, "rules": list }))?
            );
        }
        Format::Human => {
            let name_width = rules.iter().map(|r| r.name.len()).max().unwrap_or(0);
            for r in rules {
                let fix = if r.fixable { "fix" } else { "   " };
                println!(
                    "{}  {:name_width$}  {:7}  {fix}  {}",
                    r.id,
                    r.name,
                    r.severity.as_str(),
                    r.summary
                );
            }
            println!(
                "\n{} rules; `upkeep explain ID` for the details",
                rules.len()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
