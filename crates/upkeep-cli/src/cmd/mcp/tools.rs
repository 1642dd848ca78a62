//! The tools: their definitions, and each call turned into the code the
//! command of the same name runs. A tool returns JSON, or the error message
//! the command would print (with file:line:col where the input has one).

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use upkeep_diag::{display_path, Applicability};

use super::params::{
    CheckAssumptions, CheckParams, ConfigSource, DoctorParams, ExplainParams, FixParams, LogsParams,
};
use super::Shared;
use crate::cmd::check::{self, CheckFailure, InputArgs, Source};
use crate::cmd::{doctor, explain, fix, logs};

/// A tool's failure: the message the caller reads.
type ToolResult = Result<Value, String>;

/// The longest `sample` window `doctor` accepts here: a tool call has to
/// answer while the assistant waits.
const MAX_DOCTOR_SAMPLE_MS: u64 = 60_000;

/// The tools, in the order they are listed.
pub fn list() -> Vec<Tool> {
    vec![
        tool::<CheckParams>(
            "check",
            "Find nginx keep-alive (connection reuse) misconfigurations, as `upkeep check --format json` \
             does: findings with rule, severity, file, line, column, message, help and whether they are \
             fixable. Give the configuration as `path`, as text (`config` and `files`), or as `nginx_t` output.",
            true,
        ),
        tool::<FixParams>(
            "fix",
            "Compute the fixes of what `check` finds and return them as a unified diff, with what was \
             fixed, refused and left. Nothing is written unless `write` is true; then the files are \
             written as `upkeep fix --write` writes them (journal, lock, backups, validated by nginx -t, \
             rolled back on failure).",
            false,
        ),
        tool::<ExplainParams>(
            "explain",
            "A rule's documentation (Markdown): what it finds, why it breaks connection reuse, an example \
             and the fix. With `flavor` or `nginx_version`: also the defaults that decide the rule on that \
             server (each with its source) and where it applies there (`on_target`).",
            true,
        ),
        tool::<LogsParams>(
            "logs",
            "Classify upstream and keep-alive failures in nginx error logs (optionally joined with access \
             logs to tell which failures clients saw), as `upkeep logs --format json`: totals per \
             signature and upstream, per minute, and top requests.",
            true,
        ),
        tool::<DoctorParams>(
            "doctor",
            "Diagnose the live host, as `upkeep doctor --format json`: the static rules on the running \
             configuration plus sockets, stub_status, limits, sysctls and the error log, ranked; with \
             `probe`, the backends that cannot be read on the host are measured with real requests \
             first (`doctor --probe`).",
            true,
        ),
    ]
}

fn tool<P: JsonSchema + 'static>(
    name: &'static str,
    description: &'static str,
    read_only: bool,
) -> Tool {
    let mut annotations = ToolAnnotations::new();
    annotations.read_only_hint = Some(read_only);
    annotations.destructive_hint = Some(false);
    annotations.open_world_hint = Some(false);
    Tool::new(name, description, JsonObject::new())
        .with_input_schema::<P>()
        .with_annotations(annotations)
}

/// Runs `tool` with `arguments`.
pub fn call(tool: &Tool, arguments: JsonObject, shared: &Shared) -> ToolResult {
    unknown_arguments(tool, &arguments)?;
    match tool.name.as_ref() {
        "check" => check(parse(arguments)?),
        "fix" => fix(parse(arguments)?, shared),
        "explain" => explain(parse(arguments)?),
        "logs" => logs(parse(arguments)?),
        "doctor" => doctor(parse(arguments)?),
        other => Err(format!("no tool {other:?}")),
    }
}

/// An argument the schema does not name is a mistake worth telling (a
/// misspelt option would otherwise be ignored silently).
fn unknown_arguments(tool: &Tool, arguments: &JsonObject) -> Result<(), String> {
    let known = tool
        .input_schema
        .get("properties")
        .and_then(Value::as_object);
    let unknown: Vec<&str> = arguments
        .keys()
        .filter(|k| known.is_some_and(|p| !p.contains_key(k.as_str())))
        .map(String::as_str)
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let mut names: Vec<&str> = known
        .into_iter()
        .flat_map(|p| p.keys())
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    Err(format!(
        "{}: unknown argument{} {} (the arguments are: {})",
        tool.name,
        if unknown.len() == 1 { "" } else { "s" },
        unknown.join(", "),
        names.join(", ")
    ))
}

fn parse<P: DeserializeOwned>(arguments: JsonObject) -> Result<P, String> {
    serde_json::from_value(Value::Object(arguments)).map_err(|e| format!("bad arguments: {e}"))
}

fn error_text(e: &anyhow::Error) -> String {
    format!("{e:#}")
}

/// The configuration named by the arguments, as a source `check` loads.
fn source(s: ConfigSource) -> Result<Source, String> {
    let given = [s.path.is_some(), s.config.is_some(), s.nginx_t.is_some()]
        .iter()
        .filter(|g| **g)
        .count();
    if given != 1 {
        return Err(
            "give the configuration as one of `path`, `config` (its text) or `nginx_t`".into(),
        );
    }
    if s.config.is_none() && (!s.files.is_empty() || s.config_name.is_some()) {
        return Err("`files` and `config_name` go with `config`".into());
    }
    if let Some(path) = s.path {
        if path == "-" || path.is_empty() {
            return Err(format!(
                "path {path:?}: name a config file or directory (standard input carries the protocol)"
            ));
        }
        let mut sources = check::sources(&[PathBuf::from(path)]).map_err(|e| error_text(&e))?;
        return sources.pop().ok_or_else(|| "no configuration".to_string());
    }
    if let Some(text) = s.nginx_t {
        return Ok(Source::Dump {
            bytes: text.into_bytes(),
        });
    }
    let main = s.config_name.unwrap_or_else(|| "nginx.conf".into());
    if s.files.contains_key(&main) {
        return Err(format!(
            "files: {main:?} is the main file, given by `config`"
        ));
    }
    let mut files: std::collections::BTreeMap<String, Vec<u8>> = s
        .files
        .into_iter()
        .map(|(name, text)| (name, text.into_bytes()))
        .collect();
    files.insert(main.clone(), s.config.unwrap_or_default().into_bytes());
    Ok(Source::Memory { main, files })
}

/// The flags of `upkeep check` from the arguments.
fn input_args(a: CheckAssumptions) -> Result<InputArgs, String> {
    Ok(InputArgs {
        context: a
            .context
            .as_deref()
            .map(check::parse_context)
            .transpose()
            .map_err(|e| format!("context: {e}"))?,
        strict: a.strict,
        prefix: a.prefix,
        nginx_version: a.nginx_version,
        flavor: a.flavor,
        front: a.front,
        front_idle: a.front_idle,
        backend: a.backend,
        backend_facts: a.backend_facts.map(PathBuf::from),
        config_file: a.config_file.map(PathBuf::from),
        select: a.select,
        ignore: a.ignore,
        cpus: a.cpus,
        target_requests: a.target_requests,
    })
}

fn load_failure(e: CheckFailure) -> String {
    match e {
        CheckFailure::Load(e) => e.render().trim_end().to_string(),
        CheckFailure::Other(e) => error_text(&e),
    }
}

fn check(p: CheckParams) -> ToolResult {
    let source = source(p.source)?;
    let input = input_args(p.assume)?;
    let mut warnings = Vec::new();
    let checked = check::check_sources(&[source], &input, false, &mut |set| {
        warnings.extend(set.warnings.iter().map(|w| w.to_string()))
    })
    .map_err(load_failure)?;
    let text = checked.render(check::Format::Json, false, false);
    let mut out: Value =
        serde_json::from_str(&text).map_err(|e| format!("internal error: check JSON: {e}"))?;
    if let Some(findings) = out.get_mut("findings").and_then(Value::as_array_mut) {
        for f in findings {
            let location = format!(
                "{}:{}:{}",
                f["file"].as_str().unwrap_or(""),
                f["line"],
                f["column"]
            );
            let fixable = !f["fix"].is_null();
            if let Some(obj) = f.as_object_mut() {
                obj.insert("location".into(), location.into());
                obj.insert("fixable".into(), fixable.into());
            }
        }
    }
    out["warnings"] = warnings.into();
    Ok(out)
}

fn fix(p: FixParams, shared: &Shared) -> ToolResult {
    fix::check_rule_names(&p.rules).map_err(|e| error_text(&e).replace("--rule ", "rules: "))?;
    let source = source(p.source)?;
    if p.write && !matches!(source, Source::File(_)) {
        return Err(
            "write needs the config's `path`; text and `nginx -T` output can only be diffed".into(),
        );
    }
    let input = input_args(p.assume)?;
    let load_opts = check::load_options(&input);
    let mut loaded =
        check::load(&source, &load_opts).map_err(|e| e.render().trim_end().to_string())?;
    let mut warnings: Vec<String> = loaded.set.warnings.iter().map(|w| w.to_string()).collect();
    if let Source::File(_) = &source {
        let found = fix::leftovers(&loaded, p.write).map_err(|e| e.to_string())?;
        if let Some(w) = fix::strays_warning(&found.strays) {
            warnings.push(w.trim_end().to_string());
        }
        if let Some(pending) = &found.pending {
            let level = if p.write { "error" } else { "warning" };
            let text = fix::describe_pending(pending, level);
            if p.write {
                return Err(text.trim_end().to_string());
            }
            warnings.push(text.trim_end().to_string());
        }
    }
    let main_dir = match &source {
        Source::File(path) => Path::new(path).parent().map(Path::to_path_buf),
        _ => None,
    };
    let opts = check::check_options(&input, main_dir.as_deref()).map_err(|e| error_text(&e))?;
    // A write keeps what it needs of this load's syntax trees; the load
    // itself becomes the fix loop's first round.
    let write_target = p.write.then(|| fix::WriteTarget::of(&loaded));
    let base = loaded.base_dir();
    let fix_opts = upkeep_fix::FixOptions {
        rules: (!p.rules.is_empty()).then(|| p.rules.clone()),
        unsafe_fixes: p.unsafe_fixes,
        ..upkeep_fix::FixOptions::default()
    };
    let run = fix::run_fix(&mut loaded, &load_opts, &opts, &fix_opts)
        .map_err(|e| e.render().trim_end().to_string())?;
    let shown = |p: &str| display_path(p, Some(&base));
    let needs_unsafe = run
        .last
        .findings
        .iter()
        .filter(|f| {
            f.fix
                .as_ref()
                .is_some_and(|x| x.applicability == Applicability::Unsafe)
        })
        .count();
    let mut out = json!({
        "diff": fix::diff(&run, &base, false),
        "changed_files": run.changes().map(|(path, _, _)| shown(path)).collect::<Vec<_>>(),
        "applied": run.applied.iter().map(|a| json!({
            "rule": a.rule,
            "name": a.name,
            "description": a.description,
            "files": a.files.iter().map(|f| shown(f)).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "refused": run.refused.iter().map(|r| json!({
            "rule": r.rule,
            "description": r.description,
            "reason": r.reason,
        })).collect::<Vec<_>>(),
        "left": run.last.findings.len(),
        "left_needing_unsafe_fixes": needs_unsafe,
        "rounds": run.rounds,
        "converged": run.converged,
        "written": Value::Null,
        "warnings": warnings,
    });
    if let Some(target) = &write_target {
        out["written"] = write(target, &run, p.no_nginx_test, &base, shared)?;
    }
    Ok(out)
}

/// `fix` with `write`: the transaction of `upkeep fix --write`.
fn write(
    target: &fix::WriteTarget,
    run: &upkeep_fix::FixRun<fix::RoundFiles>,
    no_nginx_test: bool,
    base: &str,
    shared: &Shared,
) -> ToolResult {
    /// Marks a write under way, so that a signal rolls it back instead of
    /// ending the server at once.
    struct Writing<'a>(&'a Shared);
    impl Drop for Writing<'_> {
        fn drop(&mut self) {
            self.0.writing.store(false, Ordering::SeqCst);
        }
    }
    shared.writing.store(true, Ordering::SeqCst);
    let _writing = Writing(shared);
    if shared.signals.caught().is_some() {
        return Err("interrupted; nothing was written".into());
    }
    let outcome = fix::write_transaction(target, run, no_nginx_test, &|| shared.signals.caught())
        .map_err(|e| error_text(&e))?;
    match outcome {
        fix::WriteOutcome::NothingToWrite => Ok(json!({ "files": [], "validated_by": null })),
        fix::WriteOutcome::Refused(message) => Err(message),
        fix::WriteOutcome::Interrupted => Err("interrupted; nothing was written".into()),
        fix::WriteOutcome::Failed(e) => Err(e.to_string()),
        fix::WriteOutcome::Written { written, nginx } => Ok(json!({
            "files": written.shown.iter().map(|p| display_path(&p.to_string_lossy(), Some(base))).collect::<Vec<_>>(),
            "backups": written.backups.iter().map(|b| b.as_ref().map(|b| b.display().to_string())).collect::<Vec<_>>(),
            "validated_by": nginx.map(|n| n.path.display().to_string()),
            "notes": written.notes,
        })),
    }
}

fn explain(p: ExplainParams) -> ToolResult {
    let info = explain::find(&p.rule).map_err(|e| error_text(&e))?;
    let server = explain::server_for(p.flavor.as_deref(), p.nginx_version.as_deref(), None)
        .map_err(|e| error_text(&e))?;
    let on_target = server.map(|(target, source)| {
        let o = upkeep_rules::on_target::on_target(info.id, target);
        json!({
            "flavor": target.flavor.name(),
            "version": target.version.to_string(),
            "version_source": source.as_str(),
            "facts": o.facts.iter().map(|f| json!({ "statement": f.statement, "source": f.source })).collect::<Vec<_>>(),
            "applies": o.applies,
            "can_fire": o.can_fire,
        })
    });
    Ok(json!({
        "id": info.id,
        "name": info.name,
        "severity": info.severity.as_str(),
        "fixable": info.fixable,
        "summary": info.summary,
        "doc": explain::render_on(info, server.as_ref()),
        "on_target": on_target,
    }))
}

fn logs(p: LogsParams) -> ToolResult {
    if p.error_logs.is_empty() && p.access_logs.is_empty() {
        return Err("give `error_logs` (files or glob patterns)".into());
    }
    if p.error_logs.iter().chain(&p.access_logs).any(|f| f == "-") {
        return Err("\"-\": name log files (standard input carries the protocol)".into());
    }
    let max_minute_rows = p
        .max_minute_rows
        .unwrap_or(upkeep_logs::minutes::DEFAULT_MAX_ROWS);
    if max_minute_rows < 10_000 {
        return Err(format!(
            "max_minute_rows {max_minute_rows}: give at least 10000"
        ));
    }
    if p.log_format_name.is_some() && p.config.is_none() {
        return Err("log_format_name needs `config`".into());
    }
    let args = logs::Args {
        files: p.error_logs,
        access_log: p.access_logs,
        log_format: p.log_format,
        config: p.config.map(PathBuf::from),
        log_format_name: p.log_format_name,
        since: p.since,
        until: p.until,
        follow: false,
        threads: 1,
        format: logs::Format::Json,
        max_minute_rows,
        no_progress: true,
    };
    let utc_offset = logs::local_utc_offset();
    let window = logs::time_window(&args, utc_offset).map_err(|e| error_text(&e))?;
    let inputs = upkeep_logs::input::expand_inputs(&args.files).map_err(|e| e.to_string())?;
    let analysis = logs::analyze_inputs(&args, &inputs, window, utc_offset, false)
        .map_err(|e| error_text(&e))?;
    let messages = upkeep_logs::report::input_messages(&analysis);
    // An input that could not be read makes `upkeep logs` exit 2: here, an
    // error that says which.
    let unreadable = analysis
        .inputs
        .iter()
        .chain(analysis.access.iter().flat_map(|r| r.inputs.iter()))
        .any(|i| i.error.is_some());
    if unreadable {
        return Err(messages.join("\n"));
    }
    let mut out = serde_json::to_value(upkeep_logs::report::JsonReport(&analysis))
        .map_err(|e| format!("internal error: logs JSON: {e}"))?;
    out["messages"] = messages.into();
    Ok(out)
}

fn doctor(p: DoctorParams) -> ToolResult {
    let sample = p.sample.unwrap_or_else(|| "5s".into());
    let ms =
        upkeep_facts::parse_duration(&sample).map_err(|e| format!("sample {sample:?}: {e}"))?;
    if ms > MAX_DOCTOR_SAMPLE_MS {
        return Err(format!("sample {sample:?}: at most 60s here"));
    }
    let probe = p.probe.unwrap_or(false);
    if p.probe_max_wait.is_some() && !probe {
        return Err("probe_max_wait needs `probe: true`".into());
    }
    let probe_max_wait = p.probe_max_wait.unwrap_or_else(|| "30s".into());
    let wait_ms = upkeep_facts::parse_duration(&probe_max_wait)
        .map_err(|e| format!("probe_max_wait {probe_max_wait:?}: {e}"))?;
    if wait_ms > MAX_DOCTOR_SAMPLE_MS {
        return Err(format!(
            "probe_max_wait {probe_max_wait:?}: at most 60s here"
        ));
    }
    let args = doctor::Args {
        nginx: p.nginx.map(PathBuf::from),
        config: p.config.map(PathBuf::from),
        pid: p.pid,
        status_url: p.status_url,
        error_log: p.error_log.map(PathBuf::from),
        access_log: p.access_log.map(PathBuf::from),
        log_format: p.log_format,
        sample,
        probe,
        probe_max_wait,
        ctrl_c_stops_probes: false,
        input: input_args(p.assume)?,
        format: doctor::Format::Json,
        color: check::ColorChoice::Never,
        fail_on: check::FailOn::Warning,
    };
    if args.log_format.is_some() && args.access_log.is_none() {
        return Err("log_format needs `access_log`".into());
    }
    match doctor::diagnose(&args, |report| report.to_json()) {
        Ok(json) => Ok(json),
        Err(doctor::DoctorFailure::Broken(e)) => Err(e.render().trim_end().to_string()),
        Err(doctor::DoctorFailure::Other(e)) => Err(error_text(&e)),
    }
}
