//! The playground's operations as plain Rust: JSON values in and out, no
//! browser types, so they are tested natively like the rest of the core.
//!
//! They run the same code as the CLI: `upkeep_config` loads the files (from
//! memory instead of the disk), `upkeep_rules::check` finds, `upkeep_fix`
//! applies and diffs, and the findings are the document of
//! `upkeep check --format json`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};
use upkeep_config::{ConfigSet, LoadError, LoadOptions, Loader, MemoryLoader};
use upkeep_diag::render::{json as report_json, Report};
use upkeep_diag::Finding;
use upkeep_fix::{FixOptions, Overlay, Round};
use upkeep_rules::{settings, CheckOptions, NginxVersion, VersionSource};
use upkeep_syntax::{SourceFile, SourceMap};

/// The name the settings pane's text is reported under.
pub const SETTINGS_NAME: &str = "upkeep.toml";

/// What the page sends: the files of one configuration and the options the
/// CLI takes as flags.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Input {
    /// Path -> text. Includes resolve among these paths, relative to the
    /// main file's directory as nginx's prefix.
    pub files: BTreeMap<String, String>,
    /// The main file; default `nginx.conf` when present, else the first path.
    pub main: Option<String>,
    /// `--nginx-version`; default 1.28.0, as the CLI without an nginx binary.
    pub nginx_version: Option<String>,
    /// `--front`.
    pub front: Option<String>,
    /// `--front-idle`.
    pub front_idle: Option<String>,
    /// `--backend UPSTREAM=SPEC`, each.
    pub backends: Vec<String>,
    /// The text of upkeep.toml (empty: none).
    pub settings: String,
    /// `--cpus`.
    pub cpus: Option<u32>,
    /// `fix --unsafe-fixes`.
    pub unsafe_fixes: bool,
}

/// An error for the page: the message as the CLI prints it, and its place
/// when there is one.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub message: String,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub column: Option<u32>,
    /// The message with the source line and a caret, as the CLI shows it.
    pub rendered: String,
}

impl ApiError {
    fn plain(message: impl Into<String>) -> ApiError {
        let message = message.into();
        ApiError {
            rendered: message.clone(),
            message,
            file: None,
            line: None,
            column: None,
        }
    }

    fn load(e: &LoadError) -> ApiError {
        ApiError {
            message: e.message.clone(),
            file: Some(e.path.clone()),
            line: e.pos.map(|p| p.line),
            column: e.pos.map(|p| p.col),
            rendered: e.render(),
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "ok": false,
            "error": {
                "message": self.message,
                "file": self.file,
                "line": self.line,
                "column": self.column,
                "rendered": self.rendered,
            }
        })
    }
}

impl Input {
    pub fn parse(text: &str) -> Result<Input, ApiError> {
        serde_json::from_str(text).map_err(|e| ApiError::plain(format!("bad request: {e}")))
    }

    fn main_path(&self) -> Result<String, ApiError> {
        if let Some(main) = &self.main {
            return Ok(main.clone());
        }
        if self.files.contains_key("nginx.conf") {
            return Ok("nginx.conf".into());
        }
        self.files
            .keys()
            .next()
            .cloned()
            .ok_or_else(|| ApiError::plain("no files to check"))
    }

    fn loader(&self) -> MemoryLoader {
        let mut loader = MemoryLoader::new();
        for (path, text) in &self.files {
            loader.insert(path.clone(), text.as_bytes().to_vec());
        }
        loader
    }

    /// The check options as `check_options` in the CLI builds them:
    /// upkeep.toml first, then the flags. The version is never detected
    /// here (no nginx binary in a browser): given, else assumed.
    pub fn check_options(&self) -> Result<CheckOptions, ApiError> {
        let mut opts = CheckOptions::default();
        if !self.settings.trim().is_empty() {
            settings::apply_toml(&mut opts, &self.settings).map_err(|e| {
                let message = if e.starts_with(SETTINGS_NAME) {
                    e
                } else {
                    format!("{SETTINGS_NAME}: {e}")
                };
                ApiError {
                    file: Some(SETTINGS_NAME.into()),
                    ..ApiError::plain(message)
                }
            })?;
        }
        if let Some(v) = self.nginx_version.as_deref().filter(|v| !v.is_empty()) {
            opts.nginx_version = Some(
                NginxVersion::parse(v)
                    .map_err(|e| ApiError::plain(format!("nginx version: {e}")))?,
            );
            opts.version_source = VersionSource::Given;
        }
        let front_idle = self.front_idle.as_deref().filter(|s| !s.is_empty());
        if let Some(front) = self.front.as_deref().filter(|f| !f.is_empty()) {
            if upkeep_facts::front_profile(front).is_none() && front_idle.is_none() {
                return Err(ApiError::plain(format!(
                    "front: unknown load balancer profile {front:?} (give its idle timeout)"
                )));
            }
            opts.front_name = Some(front.to_string());
        }
        if let Some(idle) = front_idle {
            opts.front_idle_ms = Some(
                upkeep_facts::parse_duration(idle)
                    .map_err(|e| ApiError::plain(format!("front idle timeout: {e}")))?,
            );
        }
        for spec in self.backends.iter().filter(|s| !s.trim().is_empty()) {
            let (name, facts) = settings::parse_backend_spec(spec)
                .map_err(|e| ApiError::plain(format!("backend: {e}")))?;
            opts.backends.insert(name, facts);
        }
        if self.cpus.is_some() {
            opts.cpus = self.cpus;
        }
        Ok(opts)
    }
}

/// A loader that sees the fix loop's edited texts over the page's files.
struct OverlayLoader<'a> {
    overlay: &'a Overlay,
    inner: &'a MemoryLoader,
}

impl Loader for OverlayLoader<'_> {
    fn read(&self, path: &str) -> std::io::Result<Vec<u8>> {
        match self.overlay.get(path) {
            Some(text) => Ok(text.to_vec()),
            None => self.inner.read(path),
        }
    }

    fn glob(&self, pattern: &str) -> std::io::Result<Vec<String>> {
        self.inner.glob(pattern)
    }
}

fn load_options() -> LoadOptions {
    LoadOptions {
        strict: false,
        context: None,
        prefix: None,
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `upkeep check --format json`'s document for the page's files, each
/// finding with its own fix applied alone (`fix_diff`, and `fix_regions`:
/// the lines it replaces in each file), and the load warnings.
pub fn analyse(input: &Input) -> Result<Value, ApiError> {
    let opts = input.check_options()?;
    let main = input.main_path()?;
    let loader = input.loader();
    let set = ConfigSet::load(&main, &loader, &load_options()).map_err(|e| ApiError::load(&e))?;
    upkeep_rules::check_values(&set).map_err(|e| ApiError::load(&e))?;
    let report = upkeep_rules::check(&set, &opts);

    let version = report.nginx_version.to_string();
    let settings_files: Vec<String> = if input.settings.trim().is_empty() {
        Vec::new()
    } else {
        vec![SETTINGS_NAME.to_string()]
    };
    let mut out = Report::new(&report.findings, &set);
    out.nginx_version = Some(&version);
    out.version_source = Some(report.version_source.as_str());
    out.assumptions = &report.assumptions;
    out.settings_files = &settings_files;
    let mut doc = report_json::to_value(&out);

    // The document lists the findings in `sorted_findings` order.
    let sorted = out.sorted_findings();
    if let Some(list) = doc.get_mut("findings").and_then(Value::as_array_mut) {
        for (entry, finding) in list.iter_mut().zip(sorted) {
            let (diff, regions) = single_fix(&set, finding);
            entry["fix_diff"] = json!(diff);
            entry["fix_regions"] = json!(regions);
        }
    }
    let warnings: Vec<Value> = set
        .warnings
        .iter()
        .map(|w| {
            json!({
                "file": w.path,
                "line": w.pos.line,
                "column": w.pos.col,
                "message": w.message,
            })
        })
        .collect();
    doc["warnings"] = json!(warnings);
    doc["main"] = json!(main);
    doc["ok"] = json!(true);
    Ok(doc)
}

/// Lines of context kept around a single fix's edits (as in the diff).
const REGION_CONTEXT_LINES: u32 = upkeep_fix::diff::CONTEXT_LINES as u32;

/// One finding's fix applied alone to the loaded texts (by
/// [`upkeep_fix::apply`]): its unified diff, and for each file it changes the
/// lines to replace (`start_line`, `line_count`) and their new `text`;
/// `None`s when it has no fix or its edits do not apply.
///
/// Only the region around the edits is diffed and returned: on a large
/// config with many findings, whole-file diffs and texts per finding cost
/// seconds and hundreds of megabytes.
fn single_fix(
    set: &ConfigSet,
    finding: &Finding,
) -> (Option<String>, Option<BTreeMap<String, Value>>) {
    let Some(fix) = &finding.fix else {
        return (None, None);
    };
    let applied = upkeep_fix::apply(set, &[fix]);
    if applied.changed.is_empty() {
        return (None, None);
    }
    let mut diff = String::new();
    let mut regions = BTreeMap::new();
    for (id, new) in &applied.changed {
        let file = set.source(*id);
        let Some(edits) = applied.edits.get(id).filter(|e| !e.is_empty()) else {
            continue;
        };
        let first = edits.iter().map(|e| e.span.start).min().unwrap_or(0);
        let last = edits.iter().map(|e| e.span.end).max().unwrap_or(0);
        // Whole lines around the edits: before `first` and after `last` the
        // old and new texts are the same bytes.
        let first_line = file.line_col(first).line;
        let last_line = file.line_col(last).line;
        let start_line = first_line.saturating_sub(REGION_CONTEXT_LINES).max(1);
        let end_line = last_line + REGION_CONTEXT_LINES + 1; // exclusive
        let old_start = file.line_start(start_line) as usize;
        let old_end = (file.line_start(end_line) as usize).clamp(old_start, file.text.len());
        let new_end = (old_end + new.len()).saturating_sub(file.text.len());
        let old_region = &file.text[old_start..old_end];
        let new_region = &new[old_start..new_end.max(old_start)];
        let excerpt = upkeep_fix::unified_diff(&file.path, old_region, new_region, false);
        diff.push_str(&shift_hunks(&excerpt, start_line - 1));
        let old_lines = old_region.iter().filter(|&&b| b == b'\n').count() as u32
            + u32::from(!old_region.is_empty() && !old_region.ends_with(b"\n"));
        regions.insert(
            file.path.clone(),
            json!({"start_line": start_line, "line_count": old_lines, "text": text(new_region)}),
        );
    }
    (Some(diff), Some(regions))
}

/// A diff of an excerpt starting after `lines` lines of its file, with the
/// hunk headers' line numbers made the file's.
fn shift_hunks(diff: &str, lines: u32) -> String {
    // `START,COUNT` or `START`; an empty side's START is the line before
    // the change, which moves by the same amount.
    let shift = |range: &str| -> String {
        let (start, rest) = range.split_at(range.find(',').unwrap_or(range.len()));
        match start.parse::<u32>() {
            Ok(n) => format!("{}{rest}", n + lines),
            Err(_) => range.to_string(),
        }
    };
    let mut out = String::with_capacity(diff.len());
    for line in diff.split_inclusive('\n') {
        let header = line
            .strip_prefix("@@ -")
            .and_then(|rest| rest.split_once(" +"))
            .and_then(|(old, rest)| rest.split_once(" @@").map(|(new, tail)| (old, new, tail)));
        match header {
            Some((old, new, tail)) => {
                out.push_str(&format!("@@ -{} +{} @@{tail}", shift(old), shift(new)));
            }
            None => out.push_str(line),
        }
    }
    out
}

/// The files the fix loop keeps of a round: every finding's spans point
/// into them.
struct RoundFiles(Vec<SourceFile>);

impl SourceMap for RoundFiles {
    fn get(&self, id: upkeep_syntax::FileId) -> Option<&SourceFile> {
        self.0.get(id.0 as usize)
    }
}

/// `upkeep fix` without `--write`: every fixable finding's edits, re-checked
/// until nothing is left; the unified diff, the new texts, and what was
/// applied and refused.
pub fn fix_all(input: &Input) -> Result<Value, ApiError> {
    let opts = input.check_options()?;
    let main = input.main_path()?;
    let loader = input.loader();
    let fix_opts = FixOptions {
        unsafe_fixes: input.unsafe_fixes,
        ..FixOptions::default()
    };
    let mut checker = |overlay: &Overlay| -> Result<Round<RoundFiles>, LoadError> {
        let set = ConfigSet::load(
            &main,
            &OverlayLoader {
                overlay,
                inner: &loader,
            },
            &load_options(),
        )?;
        upkeep_rules::check_values(&set)?;
        let report = upkeep_rules::check(&set, &opts);
        let ConfigSet { files, .. } = set;
        Ok(Round {
            sources: RoundFiles(files),
            findings: report.findings,
        })
    };
    let run = upkeep_fix::fix(&mut checker, &fix_opts).map_err(|e| ApiError::load(&e))?;
    let mut diff = String::new();
    let mut files = BTreeMap::new();
    for (path, old, new) in run.changes() {
        diff.push_str(&upkeep_fix::unified_diff(path, old, new, false));
        files.insert(path.to_string(), text(new));
    }
    let applied: Vec<Value> = run
        .applied
        .iter()
        .map(|a| json!({"rule": a.rule, "name": a.name, "description": a.description, "files": a.files}))
        .collect();
    let refused: Vec<Value> = run
        .refused
        .iter()
        .map(|r| json!({"rule": r.rule, "description": r.description, "reason": r.reason}))
        .collect();
    Ok(json!({
        "ok": true,
        "diff": diff,
        "files": files,
        "applied": applied,
        "refused": refused,
        "rounds": run.rounds,
        "converged": run.converged,
        "left": run.last.findings.len(),
    }))
}

/// `upkeep explain RULE` as data: the rule's metadata and Markdown doc.
pub fn explain(rule: &str) -> Result<Value, ApiError> {
    let Some(info) = upkeep_rules::rule(rule) else {
        let close: Vec<String> = upkeep_rules::rules()
            .iter()
            .filter(|r| {
                r.name.contains(&rule.to_ascii_lowercase())
                    || r.id.starts_with(&rule.to_ascii_uppercase())
            })
            .map(|r| format!("{} {}", r.id, r.name))
            .collect();
        return Err(ApiError::plain(if close.is_empty() {
            format!("no rule {rule:?}")
        } else {
            format!("no rule {rule:?}; did you mean: {}", close.join(", "))
        }));
    };
    Ok(json!({
        "ok": true,
        "id": info.id,
        "name": info.name,
        "severity": info.severity.as_str(),
        "fixable": info.fixable,
        "summary": info.summary,
        "doc": info.doc,
    }))
}

/// `nginx -T` output split into its files, in the order nginx read them;
/// the first is the main file.
pub fn split_nginx_t(dump: &str) -> Result<Value, ApiError> {
    let files = upkeep_config::split_nginx_t(dump.as_bytes());
    let Some((main, _)) = files.first() else {
        return Err(ApiError::plain(
            "no \"# configuration file PATH:\" lines; expected the output of `nginx -T`",
        ));
    };
    let main = main.clone();
    let files: Vec<Value> = files
        .into_iter()
        .map(|(path, bytes)| json!({"path": path, "text": text(&bytes)}))
        .collect();
    Ok(json!({"ok": true, "main": main, "files": files}))
}

/// What the selectors offer, from the tables the CLI reads: backend and
/// front profiles (`upkeep profiles`), the nginx versions where reuse
/// behaviour changed, the assumed default, and the rules.
pub fn options() -> Value {
    use upkeep_facts::landmarks;
    let backends: Vec<Value> = upkeep_facts::backend_profiles()
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "display": p.display,
                "idle_timeout_ms": p.idle_timeout_ms,
                "max_requests": p.max_requests,
                "note": p.note,
            })
        })
        .collect();
    let fronts: Vec<Value> = upkeep_facts::front_profiles()
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "display": p.display,
                "idle_timeout_ms": p.idle_timeout_ms,
                "note": p.note,
            })
        })
        .collect();
    let mut versions: Vec<NginxVersion> = vec![
        landmarks::UPSTREAM_KEEPALIVE_MODULE,
        landmarks::NON_IDEMPOTENT_NOT_RETRIED,
        landmarks::UPSTREAM_KEEPALIVE_TIMEOUT,
        landmarks::SOCKET_KEEPALIVE,
        landmarks::KEEPALIVE_REQUESTS_1000,
        landmarks::KEEPALIVE_MIN_TIMEOUT,
        landmarks::PROXY_INTERNAL_CONNECTION,
        landmarks::KEEPALIVE_BY_DEFAULT,
        NginxVersion::DEFAULT_ASSUMED,
    ];
    versions.sort();
    versions.dedup();
    let rules: Vec<Value> = upkeep_rules::rules()
        .iter()
        .map(|r| json!({"id": r.id, "name": r.name, "severity": r.severity.as_str(), "summary": r.summary}))
        .collect();
    json!({
        "ok": true,
        "default_version": NginxVersion::DEFAULT_ASSUMED.to_string(),
        "versions": versions.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "backends": backends,
        "fronts": fronts,
        "rules": rules,
    })
}
