//! `upkeep explain RULE`: a rule's documentation, from the rule's own file.

use anyhow::bail;
use std::process::ExitCode;
use upkeep_rules::RuleInfo;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Rule ID (U003) or name (connection-close-sent).
    pub rule: String,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    print!("{}", render(find(&args.rule)?));
    Ok(ExitCode::SUCCESS)
}

/// The rule named by an ID (U003) or name (connection-close-sent); an
/// error that suggests close names when there is none.
pub fn find(rule: &str) -> anyhow::Result<&'static RuleInfo> {
    // Host rules (H001-H005, measured by `upkeep doctor`) live with the census.
    let found = upkeep_rules::rule(rule).or_else(|| upkeep_host::rules::rule(rule));
    let Some(info) = found else {
        let close: Vec<String> = upkeep_rules::rules()
            .iter()
            .chain(upkeep_host::rules::INFOS.iter())
            .filter(|r| {
                r.name.contains(&rule.to_ascii_lowercase())
                    || r.id.starts_with(&rule.to_ascii_uppercase())
            })
            .map(|r| format!("{} {}", r.id, r.name))
            .collect();
        if close.is_empty() {
            bail!("no rule {rule:?} (`upkeep rules` lists them all)");
        }
        bail!("no rule {rule:?}; did you mean: {}", close.join(", "));
    };
    Ok(info)
}

/// The rule's documentation as `upkeep explain` prints it (Markdown).
pub fn render(info: &RuleInfo) -> String {
    let fixable = if info.fixable {
        "fixable with `upkeep fix`"
    } else {
        "no automatic fix"
    };
    format!(
        "# {} {}\n\nSeverity: {}; {fixable}.\n\n{}\n\n{}\n",
        info.id,
        info.name,
        info.severity.as_str(),
        info.summary,
        info.doc.trim_end()
    )
}
