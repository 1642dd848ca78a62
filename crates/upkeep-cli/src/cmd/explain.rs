//! `upkeep explain RULE`: a rule's documentation, from the rule's own file.

use anyhow::bail;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Rule ID (U003) or name (connection-close-sent).
    pub rule: String,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Host rules (H001-H005, measured by `upkeep doctor`) live with the census.
    let found = upkeep_rules::rule(&args.rule).or_else(|| upkeep_host::rules::rule(&args.rule));
    let Some(info) = found else {
        let close: Vec<String> = upkeep_rules::rules()
            .iter()
            .chain(upkeep_host::rules::INFOS.iter())
            .filter(|r| {
                r.name.contains(&args.rule.to_ascii_lowercase())
                    || r.id.starts_with(&args.rule.to_ascii_uppercase())
            })
            .map(|r| format!("{} {}", r.id, r.name))
            .collect();
        if close.is_empty() {
            bail!("no rule {:?} (`upkeep rules` lists them all)", args.rule);
        }
        bail!(
            "no rule {:?}; did you mean: {}",
            args.rule,
            close.join(", ")
        );
    };
    let fixable = if info.fixable {
        "fixable with `upkeep fix`"
    } else {
        "no automatic fix"
    };
    println!("# {} {}\n", info.id, info.name);
    println!("Severity: {}; {fixable}.\n", info.severity.as_str());
    println!("{}\n", info.summary);
    print!("{}", info.doc.trim_end());
    println!();
    Ok(ExitCode::SUCCESS)
}
