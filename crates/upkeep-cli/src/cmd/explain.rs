//! `upkeep explain RULE`: a rule's documentation, from the rule's own file;
//! with `--flavor` or `--nginx-version` (or `flavor`/`nginx_version` in
//! upkeep.toml), followed by what the rule depends on for that server.

use anyhow::bail;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use upkeep_rules::on_target::on_target;
use upkeep_rules::{CheckOptions, RuleInfo, VersionSource};

use crate::cmd::check;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Rule ID (U003) or name (connection-close-sent).
    pub rule: String,

    /// The server: nginx, angie or freenginx. With it (or --nginx-version,
    /// or `flavor`/`nginx_version` in upkeep.toml) the documentation ends
    /// with a section "On <server> <version>:" giving the defaults that
    /// decide this rule there, each with its source, and where the rule
    /// applies.
    #[arg(long, value_name = "FLAVOR")]
    pub flavor: Option<String>,

    /// The server's version (the flavor's own number: Angie 1.12.1 is not
    /// nginx 1.12.1). Default with --flavor: read from `nginx -v` when that
    /// binary is of the same flavor, else the flavor's assumed version.
    #[arg(long, value_name = "X.Y.Z")]
    pub nginx_version: Option<String>,

    /// Settings file (default: the first upkeep.toml found from the current
    /// directory upwards); only its `flavor` and `nginx_version` are used.
    #[arg(long, value_name = "FILE")]
    pub config_file: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let info = find(&args.rule)?;
    let server = server_for(
        args.flavor.as_deref(),
        args.nginx_version.as_deref(),
        args.config_file.as_deref(),
    )?;
    print!("{}", render_on(info, server.as_ref()));
    Ok(ExitCode::SUCCESS)
}

/// The server a rule is explained for, and where its version came from.
pub type Server = (upkeep_rules::Target, VersionSource);

/// Resolves `--flavor`, `--nginx-version` and the settings file the way
/// `check` does ([`check::apply_target_flags`], [`check::detect_version`]):
/// flags over upkeep.toml. `None` when neither names a flavor or version.
pub fn server_for(
    flavor: Option<&str>,
    nginx_version: Option<&str>,
    config_file: Option<&Path>,
) -> anyhow::Result<Option<Server>> {
    let mut opts = CheckOptions::default();
    if let Some(path) = check::settings_file(config_file, None) {
        check::apply_settings_file(&mut opts, &path)?;
    }
    let from_settings = opts.flavor_given || opts.nginx_version.is_some();
    let flavor_given = check::apply_target_flags(&mut opts, flavor, nginx_version)?;
    if !from_settings && flavor.is_none() && nginx_version.is_none() {
        return Ok(None);
    }
    check::detect_version(&mut opts, flavor_given);
    Ok(Some((opts.target(), opts.version_source)))
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

/// The documentation, then the section for `server` when there is one.
pub fn render_on(info: &RuleInfo, server: Option<&Server>) -> String {
    let mut out = render(info);
    if let Some((target, source)) = server {
        out.push('\n');
        out.push_str(
            &on_target(info.id, *target).render(version_note(*target, *source).as_deref()),
        );
    }
    out
}

/// Where the version came from, when it was not given.
pub fn version_note(target: upkeep_rules::Target, source: VersionSource) -> Option<String> {
    match source {
        VersionSource::Given | VersionSource::Controller => None,
        VersionSource::Detected => Some(format!(
            "{target} is the version `nginx -v` reports on this host."
        )),
        VersionSource::Assumed => Some(format!(
            "No version given: upkeep assumes {target} (give --nginx-version for another)."
        )),
    }
}
