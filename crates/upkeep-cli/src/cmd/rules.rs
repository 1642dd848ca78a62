//! `upkeep rules`: every rule of the registry, one per line.

use std::process::ExitCode;
use upkeep_rules::on_target::on_target;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,

    /// The server: nginx, angie or freenginx. With it (or --nginx-version,
    /// or upkeep.toml's `flavor`/`nginx_version`) each rule says whether it
    /// can report on that server (JSON: `applies`, `can_fire`).
    #[arg(long, value_name = "FLAVOR")]
    pub flavor: Option<String>,

    /// The server's version (the flavor's own number).
    #[arg(long, value_name = "X.Y.Z")]
    pub nginx_version: Option<String>,

    /// Settings file (default: the first upkeep.toml found from the current
    /// directory upwards); only its `flavor` and `nginx_version` are used.
    #[arg(long, value_name = "FILE")]
    pub config_file: Option<std::path::PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let server = crate::cmd::explain::server_for(
        args.flavor.as_deref(),
        args.nginx_version.as_deref(),
        args.config_file.as_deref(),
    )?;
    let target = server.map(|(t, _)| t);
    let on = |r: &upkeep_rules::RuleInfo| target.map(|t| on_target(r.id, t));
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
                    let mut row = serde_json::json!({
                        "id": r.id,
                        "name": r.name,
                        "severity": r.severity.as_str(),
                        "fixable": r.fixable,
                        "summary": r.summary,
                        "command": command,
                    });
                    if let Some(o) = on(r) {
                        row["applies"] = o.applies.into();
                        row["can_fire"] = o.can_fire.into();
                    }
                    row
                })
                .collect();
            let mut doc = serde_json::json!({ "schema": 1, "rules": list });
            if let Some(t) = target {
                doc["flavor"] = t.flavor.name().into();
                doc["nginx_version"] = t.version.to_string().into();
            }
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
        Format::Human => {
            let name_width = all().map(|(r, _)| r.name.len()).max().unwrap_or(0);
            let line = |r: &upkeep_rules::RuleInfo| {
                let fix = if r.fixable { "fix" } else { "   " };
                // Rules that cannot report on the target say so first.
                let not_here = match on(r) {
                    Some(o) if !o.can_fire => format!("(not on {}) ", o.target),
                    _ => String::new(),
                };
                println!(
                    "{}  {:name_width$}  {:7}  {fix}  {not_here}{}",
                    r.id,
                    r.name,
                    r.severity.as_str(),
                    r.summary
                );
            };
            match target {
                Some(t) => println!("Configuration rules (`upkeep check`) on {t}:"),
                None => println!("Configuration rules (`upkeep check`):"),
            }
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
