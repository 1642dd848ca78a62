//! `upkeep check --k8s-configmap FILE.yaml`: judge an ingress-nginx
//! ConfigMap's keep-alive keys with the same rules as a configuration.
//!
//! The ConfigMap is turned into the nginx configuration the controller's
//! template renders from it ([`ingress_nginx::render`]), that configuration
//! is checked like any other, and every finding is moved back onto the
//! ConfigMap: to the line of the key that wrote the directive (or, for a key
//! left at its default, to `data:`), its message naming the key and its help
//! the value to give it.

mod edit;
mod ingress_nginx;
mod manifest;

use std::path::Path;

use anyhow::Context as _;
use upkeep_config::{file_read, ConfigSet, LoadOptions, MemoryLoader};
use upkeep_diag::{terminal_safe, Finding};
use upkeep_syntax::{FileId, SourceFile, Span};

use crate::cmd::check::{self, Checked, InputArgs};
use ingress_nginx::Rendered;
use manifest::ConfigMap;

/// Where the rendered configuration is said to live (it never touches the
/// disk): the controller's own path for it.
const RENDERED_PATH: &str = "/etc/nginx/nginx.conf";

/// Why there is nothing to report.
pub enum Failure {
    /// The manifest or a value in it: printed as is (file:line:col, the
    /// line, a caret), exit 2.
    Input(String),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        Failure::Other(e)
    }
}

/// What `--backend` (or upkeep.toml) names that can be a Service backend of
/// ingress-nginx (`namespace-service-port`): every declared name but the
/// upstream's own, written into a location of the rendered configuration.
fn service_names(opts: &upkeep_rules::CheckOptions) -> (Vec<String>, Vec<String>) {
    let mut services = Vec::new();
    let mut skipped = Vec::new();
    for name in opts.backends.keys() {
        if name == "upstream_balancer" {
            continue;
        }
        let plain = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if plain {
            services.push(name.clone());
        } else {
            skipped.push(name.clone());
        }
    }
    (services, skipped)
}

fn read_file(path: &Path) -> anyhow::Result<(String, Vec<u8>)> {
    if path.as_os_str() == "-" {
        let bytes = file_read::read_bounded(std::io::stdin().lock(), check::MAX_DUMP_BYTES)
            .context("reading a ConfigMap from stdin")?;
        return Ok(("<stdin>".into(), bytes));
    }
    let shown = path.to_string_lossy().into_owned();
    let bytes = file_read::read_config_file(path, check::MAX_DUMP_BYTES)
        .with_context(|| format!("--k8s-configmap {shown}"))?;
    Ok((shown, bytes))
}

/// Checks the ConfigMap in `path` (`-`: stdin).
pub fn check(path: &Path, input: &InputArgs) -> Result<Checked, Failure> {
    let (shown, bytes) = read_file(path)?;
    let file = SourceFile::new(FileId(0), shown, bytes);
    let a = analyze(file, path, input, true)?;
    Ok(Checked::from_parts(
        vec![a.file],
        a.findings,
        a.report,
        a.settings_files,
    ))
}

/// A ConfigMap and what the rules found in it.
struct Analysis {
    file: SourceFile,
    cm: ConfigMap,
    findings: Vec<Finding>,
    report: upkeep_rules::CheckReport,
    settings_files: Vec<String>,
}

/// The directory upkeep.toml is looked for from.
fn settings_dir(path: &Path) -> Option<&Path> {
    match path.parent() {
        Some(p) if path.as_os_str() != "-" && !p.as_os_str().is_empty() => Some(p),
        _ => None,
    }
}

/// Reads the ConfigMap of `file` (read from `path`) and runs the rules on
/// what the controller renders from it. `warnings`: print what is wrong
/// but not fatal in the file (a second look at a fixed text does not).
fn analyze(
    file: SourceFile,
    path: &Path,
    input: &InputArgs,
    warnings: bool,
) -> Result<Analysis, Failure> {
    let cm = manifest::read(&file).map_err(|e| Failure::Input(e.render(&file)))?;
    for entry in cm.data.values().filter(|e| e.not_a_string && warnings) {
        warn(
            &file,
            entry.value_span,
            &format!(
                "`{}` is not a YAML string: the API server refuses a ConfigMap whose data values are not strings (quote it: \"{}\")",
                entry.value, entry.value
            ),
        );
    }
    let (mut opts, settings) = check::check_options_and_settings_file(input, settings_dir(path))?;
    let (services, skipped) = service_names(&opts);
    let rendered = ingress_nginx::render(&cm, &services).map_err(|invalid| {
        Failure::Input(
            invalid
                .iter()
                .map(|i| {
                    manifest::ManifestError {
                        span: i.entry.value_span,
                        message: i.message.clone(),
                    }
                    .render(&file)
                })
                .collect::<Vec<_>>()
                .join("error: "),
        )
    })?;
    for (entry, message) in rendered.unknown.iter().filter(|_| warnings) {
        warn(&file, entry.span, message);
    }
    for (rule, _) in &rendered.not_checked {
        opts.ignore.push(rule.to_string());
    }

    let mut memory = MemoryLoader::new();
    memory.insert(RENDERED_PATH, rendered.text.clone().into_bytes());
    let set = ConfigSet::load(RENDERED_PATH, &memory, &LoadOptions::default()).map_err(|e| {
        anyhow::anyhow!(
            "the configuration rendered from the ConfigMap does not load: {}",
            e.render()
        )
    })?;
    let mut report = upkeep_rules::check(&set, &opts);
    let rendered_file = set.file(set.main);
    let findings: Vec<Finding> = std::mem::take(&mut report.findings)
        .into_iter()
        .map(|f| onto_configmap(f, &cm, &rendered, rendered_file))
        .collect();

    // The recognition line speaks of a rendered file: replaced by what
    // this check assumed.
    report
        .assumptions
        .retain(|a| !a.starts_with("generated by "));
    let mut assumptions = rendered.assumptions.clone();
    if services.is_empty() {
        assumptions.push("no Service backend declared: every Service shares the one `upstream_balancer` pool; declare each with `--backend NAMESPACE-SERVICE-PORT=PROFILE` (or `idle=5s`), as ingress-nginx names them, or all at once with `--backend upstream_balancer=PROFILE`".to_string());
    }
    if !skipped.is_empty() {
        assumptions.push(format!(
            "declared backends not taken for Service names (not of the form namespace-service-port): `{}`",
            skipped.join("`, `")
        ));
    }
    for (rule, why) in &rendered.not_checked {
        assumptions.push(format!("{rule} not checked: {why}"));
    }
    assumptions.append(&mut report.assumptions);
    report.assumptions = assumptions;

    let settings_files = settings
        .map(|p| vec![p.to_string_lossy().into_owned()])
        .unwrap_or_default();
    Ok(Analysis {
        file,
        cm,
        findings,
        report,
        settings_files,
    })
}

/// `upkeep fix --k8s-configmap`: the ConfigMap with each key a finding
/// names set to the value it asks for, as a unified diff, and the keys
/// that could not be placed in the file as lines to add. `rules`: only the
/// findings of these rules (empty: all). Returns the text to print and
/// whether anything is to change.
pub fn fix(
    path: &Path,
    input: &InputArgs,
    rules: &[String],
    color: bool,
) -> Result<(String, bool), Failure> {
    let (shown, bytes) = read_file(path)?;
    let file = SourceFile::new(FileId(0), shown, bytes);
    let a = analyze(file, path, input, true)?;
    let wanted: Vec<&Finding> = a
        .findings
        .iter()
        .filter(|f| {
            rules.is_empty()
                || rules
                    .iter()
                    .any(|r| r.eq_ignore_ascii_case(f.rule) || r == f.name)
        })
        .collect();
    let changes = edit::changes(&wanted);
    let edited = edit::apply(&a.file, &a.cm, &changes);
    // The edited file must still be a ConfigMap the controller takes, and
    // the keys changed must no longer be named by a finding.
    let again = SourceFile::new(FileId(0), a.file.path.clone(), edited.text.clone());
    let after = analyze(again, path, input, false).map_err(|e| match e {
        Failure::Input(text) => Failure::Other(anyhow::anyhow!(
            "the edited ConfigMap does not read back: {text}"
        )),
        other => other,
    })?;
    let placed: Vec<&edit::KeyChange> = changes
        .iter()
        .filter(|c| !edited.unplaced.iter().any(|u| u.key == c.key))
        .collect();
    let still: Vec<String> = after
        .findings
        .iter()
        .filter_map(|f| f.managed.as_deref())
        .filter(|m| placed.iter().any(|c| c.key == m.setting))
        .map(|m| m.setting.clone())
        .collect();
    let mut out = upkeep_fix::unified_diff(&a.file.path, &a.file.text, &edited.text, color);
    if !edited.unplaced.is_empty() {
        out.push_str("# add under the ConfigMap's `data:`:\n");
        for c in &edited.unplaced {
            out.push_str(&format!(
                "  {}: \"{}\"    # {} {}\n",
                c.key, c.value, c.rule, c.name
            ));
        }
    }
    if !still.is_empty() {
        out.push_str(&format!(
            "# still found after the change: `{}` (see `upkeep check --k8s-configmap`)\n",
            still.join("`, `")
        ));
    }
    let changed = !changes.is_empty();
    Ok((out, changed))
}

fn warn(file: &SourceFile, span: Span, message: &str) {
    let text = manifest::ManifestError {
        span,
        message: format!("warning: {message}"),
    }
    .render(file);
    eprint!(
        "warning: {}",
        terminal_safe(&text.replacen("warning: ", "", 1))
    );
}

/// The ConfigMap key a finding is about: the setting the controller
/// attribution named, else the key that wrote the line it points at.
fn key_of(f: &Finding, rendered: &Rendered, rendered_file: &SourceFile) -> Option<&'static str> {
    if let Some(m) = &f.managed {
        if let Some(v) = rendered.value(&m.setting) {
            return Some(v.key);
        }
    }
    let span = f.primary?;
    let line = rendered_file.line_of(span.start) as usize;
    rendered
        .line_keys
        .get(line.checked_sub(1)?)
        .copied()
        .flatten()
}

/// `f`, found on the rendered configuration, moved onto the ConfigMap.
fn onto_configmap(
    mut f: Finding,
    cm: &ConfigMap,
    rendered: &Rendered,
    rendered_file: &SourceFile,
) -> Finding {
    let fallback = cm.data_span.unwrap_or(cm.kind_span);
    let key = key_of(&f, rendered, rendered_file);
    let value = key.and_then(|k| rendered.value(k));
    match value {
        Some(v) => match &v.entry {
            Some(entry) => {
                f.primary = Some(entry.span);
                f.message = format!("`{}: \"{}\"`: {}", v.key, entry.value, f.message);
                f.label = Some(format!("`{}` set here", v.key));
            }
            None => {
                f.primary = Some(fallback);
                f.message = format!(
                    "`{}` not set (ingress-nginx {} default: `{}`): {}",
                    v.key, rendered.release.release, v.value, f.message
                );
                f.label = Some(format!(
                    "no `{}` here: the default `{}` applies",
                    v.key, v.value
                ));
            }
        },
        None => {
            f.primary = Some(fallback);
        }
    }
    // Places in the rendered configuration become notes quoting it; a
    // block's head ("in this upstream") says nothing without the file.
    for related in std::mem::take(&mut f.related) {
        let line = rendered_file.line_of(related.span.start);
        let text = String::from_utf8_lossy(rendered_file.line_bytes(line))
            .trim()
            .to_string();
        if text.ends_with('{') {
            continue;
        }
        f.notes.push(format!(
            "in the configuration ingress-nginx renders from this ConfigMap, `{text}`: {}",
            related.message
        ));
    }
    if let Some(help) = f.help.take() {
        f.help = Some(configmap_help(&help));
    }
    f
}

/// The controller attribution's help speaks of a rendered file the
/// controller rewrites; here the ConfigMap is the file at hand.
fn configmap_help(help: &str) -> String {
    help.replace(
        "in the controller's ConfigMap",
        "in this ConfigMap's `data:`",
    )
    .replace(" and rewrites this file on every change)", ")")
    .replace(
        "an edit to this file is lost at the controller's next sync",
        "a file edit is lost at the controller's next sync",
    )
}

#[cfg(test)]
mod tests {
    use super::configmap_help;

    #[test]
    fn help_speaks_of_the_configmap() {
        assert_eq!(
            configmap_help("set `upstream-keepalive-timeout: \"1\"` in the controller's ConfigMap (ingress-nginx 1.15.1 writes `keepalive_timeout` from it and rewrites this file on every change); for one Ingress only: x"),
            "set `upstream-keepalive-timeout: \"1\"` in this ConfigMap's `data:` (ingress-nginx 1.15.1 writes `keepalive_timeout` from it); for one Ingress only: x"
        );
    }
}
