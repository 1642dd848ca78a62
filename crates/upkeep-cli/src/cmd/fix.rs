//! `upkeep fix`: compute the edits of every fixable finding, re-check until
//! nothing is left, print a unified diff (default) or write the files
//! (`--write`: atomic, with backups, validated by `nginx -t`), or finish or
//! undo a `--write` that was killed (`--recover`).

use anyhow::bail;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use upkeep_config::{ConfigSet, FsLoader, LoadError, Loader};
use upkeep_diag::{display_path, terminal_safe, terminal_safe_line, Applicability};
use upkeep_fix::write::{
    nginx_test_until, pending, recover, stray_copies, write_files_with, NginxTestError, Pending,
    PlannedWrite, Recovery, WriteError, WriteOptions, Written, BACKUP_SUFFIX,
};
use upkeep_fix::{FixOptions, FixRun, Overlay, Round};

use super::check::{self, ColorChoice, InputArgs, Loaded, OverlayLoader, Source};
use crate::{EXIT_FINDINGS, EXIT_INPUT_ERROR};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Main config file, a directory holding nginx.conf, or `-` for the
    /// output of `nginx -T` on stdin (diff only). Default: as for `check`.
    pub paths: Vec<PathBuf>,

    #[command(flatten)]
    pub input: InputArgs,

    /// Write the changed files (atomically, keeping FILE.upkeep.bak) instead
    /// of printing a diff.
    #[arg(long)]
    pub write: bool,

    /// Fix only the findings of these rules (IDs or names; comma-separated, repeatable).
    #[arg(long = "rule", value_name = "ID", value_delimiter = ',')]
    pub rules: Vec<String>,

    /// Also apply fixes that change behaviour someone may rely on.
    #[arg(long)]
    pub unsafe_fixes: bool,

    /// With --write: do not validate the result with `nginx -t`.
    #[arg(long)]
    pub no_nginx_test: bool,

    /// Finish (`finish`: write the rest, validate, keep backups) or undo
    /// (`undo`: put every file back) a `fix --write` that was killed before
    /// it completed; its journal is in the main config's directory.
    #[arg(long, value_enum, value_name = "HOW", conflicts_with_all = ["write", "rules", "unsafe_fixes"])]
    pub recover: Option<RecoverHow>,

    /// Colours in the diff.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// No report of what was fixed on stderr (errors are still printed).
    #[arg(long, short)]
    pub quiet: bool,

    /// Fix an ingress-nginx ConfigMap (a YAML manifest; `-` for stdin)
    /// instead of an nginx configuration: a diff that sets each key a
    /// `check --k8s-configmap` finding names to the value it asks for.
    #[arg(long, value_name = "FILE.yaml", conflicts_with_all = ["paths", "write", "recover", "unsafe_fixes"])]
    pub k8s_configmap: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum RecoverHow {
    Finish,
    Undo,
}

/// `--rule`: each names a rule with an automatic fix.
pub fn check_rule_names(rules: &[String]) -> anyhow::Result<()> {
    for r in rules {
        match upkeep_rules::rule(r) {
            Some(info) if info.fixable => {}
            Some(info) => bail!(
                "--rule {r}: {} ({}) has no automatic fix",
                info.id,
                info.name
            ),
            None => bail!("--rule {r}: no such rule (see `upkeep rules`)"),
        }
    }
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    check_rule_names(&args.rules)?;
    if let Some(path) = &args.k8s_configmap {
        let to_terminal = std::io::stdout().is_terminal();
        let color = args.color.enabled(to_terminal);
        return match crate::configmap::fix(path, &args.input, &args.rules, color) {
            Ok((text, changed)) => {
                // As for a configuration's diff: a coloured one is escaped
                // already, an uncoloured one on a terminal is escaped here,
                // and one going to a file or a pipe keeps its bytes (the
                // `\r` of CRLF lines) so that `patch` applies it.
                if to_terminal && !color {
                    print!("{}", terminal_safe(&text));
                } else {
                    print!("{text}");
                }
                Ok(if changed {
                    ExitCode::from(EXIT_FINDINGS)
                } else {
                    ExitCode::SUCCESS
                })
            }
            Err(crate::configmap::Failure::Input(text)) => {
                eprint!("error: {}", terminal_safe(&text));
                Ok(ExitCode::from(EXIT_INPUT_ERROR))
            }
            Err(crate::configmap::Failure::Other(e)) => Err(e),
        };
    }
    let sources = check::sources(&args.paths)?;
    if args.write && sources.iter().any(|s| !matches!(s, Source::File(_))) {
        bail!("--write needs config files; `nginx -T` output can only be diffed (pass the main config's path)");
    }
    let load_opts = check::load_options(&args.input);
    if let Some(how) = args.recover {
        return recover_runs(&args, &sources, &load_opts, how);
    }
    let to_terminal = std::io::stdout().is_terminal();
    let color = args.color.enabled(to_terminal);
    let fix_opts = FixOptions {
        rules: (!args.rules.is_empty()).then(|| args.rules.clone()),
        unsafe_fixes: args.unsafe_fixes,
        ..FixOptions::default()
    };

    let mut exit = ExitCode::SUCCESS;
    for source in &sources {
        let mut loaded = match check::load(source, &load_opts) {
            Ok(l) => l,
            Err(e) => {
                check::print_load_error(&e);
                eprintln!("note: nothing was changed");
                return Ok(ExitCode::from(EXIT_INPUT_ERROR));
            }
        };
        check::print_load_warnings(&loaded.set);
        if loaded.memory.is_none() {
            if let Some(code) = report_leftovers(&loaded, args.write) {
                return Ok(code);
            }
        }
        let main_dir = match source {
            Source::File(p) => Path::new(p).parent().map(Path::to_path_buf),
            Source::Dump { .. } | Source::Memory { .. } => None,
        };
        let (mut opts, settings) =
            check::check_options_and_settings_file(&args.input, main_dir.as_deref())?;
        if let (Some(path), false) = (&settings, args.quiet) {
            eprintln!(
                "note: settings from {}",
                terminal_safe_line(&path.to_string_lossy())
            );
        }
        if args.paths.is_empty() {
            check::add_host_backends(&loaded.set, &mut opts);
        }
        let base = loaded.base_dir();
        // --write keeps what it needs of this load (the includes that could
        // load a backup); the loaded configuration becomes the fix loop's
        // first round instead of being loaded a second time, so that one
        // syntax tree and one copy of each text are alive at once.
        let write_target = args.write.then(|| WriteTarget::of(&loaded));
        let mut run = match run_fix(&mut loaded, &load_opts, &opts, &fix_opts) {
            Ok(run) => run,
            Err(e) => {
                check::print_load_error(&e);
                return Ok(ExitCode::from(EXIT_INPUT_ERROR));
            }
        };
        // A configuration a Kubernetes controller rendered gets no file
        // edits (the controller would overwrite them): the settings to
        // change are printed instead.
        if let Some(text) = controller_changes(&run.last.findings) {
            print!("{}", terminal_safe(&text));
            exit = ExitCode::from(EXIT_FINDINGS);
        }
        // With --write, what was fixed is only told once it is on disk.
        if !args.quiet && !args.write {
            report(&run, &base, args.unsafe_fixes);
        }
        // The last round's texts are not needed for the diff (the originals
        // and the overlay are): freed before it.
        run.last.sources = RoundFiles(Vec::new());
        if let Some(target) = &write_target {
            match write(&args, target, &run, &base)? {
                code if code != ExitCode::SUCCESS => return Ok(code),
                _ => {}
            }
            if !run.refused.is_empty() || !run.converged {
                exit = ExitCode::from(EXIT_FINDINGS);
            }
        } else {
            let diff = diff(&run, &base, color);
            // A coloured diff is escaped already; an uncoloured one on a
            // terminal (NO_COLOR) is escaped here.
            if to_terminal && !color {
                print!("{}", terminal_safe(&diff));
            } else {
                print!("{diff}");
            }
            if run.changes().next().is_some() {
                exit = ExitCode::from(EXIT_FINDINGS);
            }
        }
    }
    Ok(exit)
}

/// The unified diff of every changed file, paths shown relative to `base`.
pub fn diff(run: &FixRun<RoundFiles>, base: &str, color: bool) -> String {
    shown_once(run.changes())
        .into_iter()
        .map(|(path, old, new)| {
            upkeep_fix::unified_diff(&display_path(path, Some(base)), old, new, color)
        })
        .collect()
}

/// The controller settings that `findings` ask for, as YAML-like lines
/// grouped by where they are given; `None` when no finding names one.
fn controller_changes(findings: &[upkeep_diag::Finding]) -> Option<String> {
    let managed: Vec<(&upkeep_diag::ManagedSetting, &upkeep_diag::Finding)> = findings
        .iter()
        .filter_map(|f| f.managed.as_deref().map(|m| (m, f)))
        .collect();
    let (first, _) = managed.first()?;
    let mut out = format!(
        "# {} renders this configuration and rewrites it on every change: no file edit is offered.\n# Change these settings instead:\n",
        first.generator
    );
    let mut kinds: Vec<&str> = managed.iter().map(|(m, _)| m.kind.as_str()).collect();
    kinds.dedup();
    let mut seen = std::collections::BTreeSet::new();
    for kind in kinds {
        out.push_str(&format!("# {kind}s\n"));
        for (m, f) in managed.iter().filter(|(m, _)| m.kind == kind) {
            let line = match &m.value {
                Some(v) => format!("{}: \"{v}\"", m.setting),
                None => format!("{}: <see `upkeep check`>", m.setting),
            };
            if seen.insert(line.clone()) {
                out.push_str(&format!("{line}    # {} {}\n", f.rule, f.name));
            }
        }
    }
    Some(out)
}

/// The fix loop over `loaded`, reloading through an overlay each round.
/// The loaded configuration is checked as the first round, not loaded
/// again: it is moved out, and `loaded` keeps no files afterwards (take
/// its paths and a [`WriteTarget`] first).
pub fn run_fix(
    loaded: &mut Loaded,
    load_opts: &upkeep_config::LoadOptions,
    opts: &upkeep_rules::CheckOptions,
    fix_opts: &FixOptions,
) -> Result<FixRun<RoundFiles>, LoadError> {
    let main = loaded.main_path().to_string();
    let mut first_round = Some(take_config(&mut loaded.set));
    let mut checker = |overlay: &Overlay| -> Result<Round<RoundFiles>, LoadError> {
        let set = match (first_round.take(), &loaded.memory) {
            (Some(set), _) if overlay.is_empty() => set,
            (_, Some(memory)) => reload(&main, memory, overlay, load_opts)?,
            (_, None) => reload(&main, &FsLoader, overlay, load_opts)?,
        };
        let report = upkeep_rules::check(&set, opts);
        // The syntax trees are freed here, before the next round loads its
        // own: they take several times the size of the text. Their memory
        // goes back at once, not after the next large allocation.
        let ConfigSet { files, trees, .. } = set;
        drop(trees);
        crate::release_freed_memory();
        Ok(Round {
            sources: RoundFiles(files),
            findings: report.findings,
        })
    };
    upkeep_fix::fix(&mut checker, fix_opts)
}

/// Moves the loaded configuration out of `set`, leaving an empty one.
fn take_config(set: &mut ConfigSet) -> ConfigSet {
    let empty = ConfigSet {
        files: Vec::new(),
        trees: Vec::new(),
        main: set.main,
        prefix: set.prefix.clone(),
        context: set.context,
        warnings: Vec::new(),
        includes: Default::default(),
    };
    std::mem::replace(set, empty)
}

/// What the fix loop keeps of a round's configuration: the files, which
/// every finding's spans point into, without the syntax trees.
pub struct RoundFiles(pub Vec<upkeep_syntax::SourceFile>);

impl upkeep_syntax::SourceMap for RoundFiles {
    fn get(&self, id: upkeep_syntax::FileId) -> Option<&upkeep_syntax::SourceFile> {
        self.0.get(id.0 as usize)
    }
}

fn reload<L: Loader>(
    main: &str,
    inner: &L,
    overlay: &Overlay,
    opts: &upkeep_config::LoadOptions,
) -> Result<ConfigSet, LoadError> {
    ConfigSet::load(main, &OverlayLoader { overlay, inner }, opts)
}

/// A rule's fixes are listed one per line up to this many; beyond it, the
/// first [`SHOWN_WHEN_MANY`] and a count of the rest.
const LISTED_PER_RULE: usize = 10;
const SHOWN_WHEN_MANY: usize = 5;

/// What was fixed, refused and left, on stderr (the diff owns stdout).
fn report(run: &FixRun<RoundFiles>, base: &str, unsafe_fixes: bool) {
    let files = run.changes().count();
    let fixed = run.applied.len();
    if fixed == 0 {
        eprintln!("nothing to fix");
    } else {
        eprintln!(
            "{fixed} finding{} fixed in {files} file{} ({} round{})",
            plural(fixed),
            plural(files),
            run.rounds,
            plural(run.rounds)
        );
        // A large configuration can get thousands of fixes of one rule (one
        // per upstream): past a few, one line says how many more there are;
        // the diff on stdout shows every change.
        let mut per_rule: std::collections::BTreeMap<&str, usize> = Default::default();
        for a in &run.applied {
            *per_rule.entry(a.rule).or_default() += 1;
        }
        let mut listed: std::collections::BTreeMap<&str, usize> = Default::default();
        for a in &run.applied {
            let total = per_rule[a.rule];
            let seen = listed.entry(a.rule).or_default();
            *seen += 1;
            if total > LISTED_PER_RULE && *seen > SHOWN_WHEN_MANY {
                if *seen == SHOWN_WHEN_MANY + 1 {
                    eprintln!(
                        "  {} {}: and {} more like these (the diff shows each change)",
                        a.rule,
                        a.name,
                        total - SHOWN_WHEN_MANY
                    );
                }
                continue;
            }
            let shown: Vec<String> = a
                .files
                .iter()
                .map(|p| terminal_safe_line(&display_path(p, Some(base))).into_owned())
                .collect();
            eprintln!(
                "  {} {}: {} [{}]",
                a.rule,
                a.name,
                terminal_safe_line(&a.description),
                shown.join(", ")
            );
        }
    }
    for r in &run.refused {
        eprintln!(
            "not fixed: {} {}: {}",
            r.rule,
            terminal_safe_line(&r.description),
            terminal_safe_line(&r.reason)
        );
    }
    if !run.converged {
        eprintln!(
            "warning: fixes did not settle after {} rounds; the result is shown as far as it got",
            run.rounds
        );
    }
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
    if needs_unsafe > 0 && !unsafe_fixes {
        eprintln!(
            "{needs_unsafe} more fix{} change{} behaviour someone may rely on: review `upkeep check`, then pass --unsafe-fixes",
            if needs_unsafe == 1 { "" } else { "es" },
            if needs_unsafe == 1 { "s" } else { "" },
        );
    }
    let left = run.last.findings.len();
    if left > 0 {
        eprintln!(
            "{left} finding{} left that need{} a decision (`upkeep check` shows them)",
            plural(left),
            if left == 1 { "s" } else { "" }
        );
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// `--write`: one transaction over every changed file, validated by nginx.
fn write(
    args: &Args,
    target: &WriteTarget,
    run: &FixRun<RoundFiles>,
    base: &str,
) -> anyhow::Result<ExitCode> {
    let signals = Signals::install()?;
    let outcome = write_transaction(target, run, args.no_nginx_test, &|| signals.caught())?;
    match outcome {
        WriteOutcome::NothingToWrite => {
            if !args.quiet {
                report(run, base, args.unsafe_fixes);
            }
            Ok(ExitCode::SUCCESS)
        }
        WriteOutcome::Refused(message) => {
            eprintln!("error: {}", terminal_safe(&message));
            Ok(ExitCode::from(EXIT_INPUT_ERROR))
        }
        WriteOutcome::Interrupted => {
            eprintln!("interrupted; nothing was written");
            Ok(signals.exit_code())
        }
        WriteOutcome::Written { written, nginx } => {
            if !args.quiet {
                report(run, base, args.unsafe_fixes);
                report_written(&written, base, nginx.as_ref(), args.no_nginx_test);
            }
            Ok(ExitCode::SUCCESS)
        }
        WriteOutcome::Failed(e) => Ok(write_failed(&e, &signals)),
    }
}

/// How a [`write_transaction`] ended.
pub enum WriteOutcome {
    /// The fixes change no file.
    NothingToWrite,
    /// Nothing was written, for the reason given (in the user's words).
    Refused(String),
    /// A signal came before the first file was touched; nothing was written.
    Interrupted,
    /// Every file was written; `nginx`, when given, accepted the result.
    Written {
        written: Written,
        nginx: Option<upkeep_nginx::NginxBinary>,
    },
    /// The transaction failed (and was rolled back, as the error says).
    Failed(WriteError),
}

/// Writes the fix loop's changes as one transaction (journal, lock, backups,
/// `nginx -t` on the original and on the result, rollback on failure).
/// `interrupted` returns the signal that asks to stop, if one came.
/// `upkeep fix --write` and the MCP server's `fix` with `write` both write
/// through here.
pub fn write_transaction(
    target: &WriteTarget,
    run: &FixRun<RoundFiles>,
    no_nginx_test: bool,
    interrupted: &dyn Fn() -> Option<i32>,
) -> anyhow::Result<WriteOutcome> {
    let plan: Vec<PlannedWrite> = run
        .shared_changes()
        .map(|(path, old, new)| PlannedWrite {
            path: PathBuf::from(path),
            original: upkeep_fix::SharedText::clone(old),
            new: upkeep_fix::SharedText::clone(new),
        })
        .collect();
    if plan.is_empty() {
        return Ok(WriteOutcome::NothingToWrite);
    }
    // Belt and braces: every byte outside the fixes' edits must be as read.
    let history = match run.history() {
        Ok(history) => history,
        Err(e) => bail!("internal error, nothing was written: {e}"),
    };
    for change in &history {
        if let Err(e) = upkeep_fix::verify::only_edits_changed(change) {
            bail!("internal error, nothing was written: {e}");
        }
    }
    drop(history);
    if let Some((backup, include)) = backup_loaded_by_include(target, &plan) {
        return Ok(WriteOutcome::Refused(format!(
            "the backup {} would be loaded by nginx through {}; nothing was written \
             (move the file out of the included directory, or use `upkeep fix` without --write and apply the diff)",
            terminal_safe_line(&backup),
            terminal_safe_line(&include)
        )));
    }
    let main = target.main.clone();
    let nginx = if no_nginx_test {
        None
    } else {
        upkeep_nginx::NginxBinary::find(None)
    };
    if let Some(nginx) = &nginx {
        match nginx_test_until(nginx, &main, &|| interrupted().is_some()) {
            Ok(()) => {}
            Err(NginxTestError::Stopped) => return Ok(WriteOutcome::Interrupted),
            Err(NginxTestError::Failed(output)) => {
                return Ok(WriteOutcome::Refused(original_fails(&main, &output)));
            }
        }
    }
    let journal_dir = journal_dir(&main);
    let opts = WriteOptions {
        journal_dir: Some(&journal_dir),
        interrupted,
    };
    let mut validate = || validate_with(nginx.as_ref(), &main, interrupted);
    Ok(match write_files_with(&plan, &opts, &mut validate) {
        Ok(written) => WriteOutcome::Written { written, nginx },
        Err(e) => WriteOutcome::Failed(e),
    })
}

/// The error of a failed transaction, and its exit code.
fn write_failed(e: &WriteError, signals: &Signals) -> ExitCode {
    eprintln!("error: {}", terminal_safe(&e.to_string()));
    let mut cause = e;
    while let WriteError::LeftAsChanged { cause: c, .. }
    | WriteError::RollbackFailed { cause: c, .. } = cause
    {
        cause = c;
    }
    match cause {
        WriteError::Interrupted { .. } => signals.exit_code(),
        WriteError::ValidationFailed { .. } => ExitCode::from(EXIT_FINDINGS),
        _ => ExitCode::from(EXIT_INPUT_ERROR),
    }
}

fn validate_with(
    nginx: Option<&upkeep_nginx::NginxBinary>,
    main: &Path,
    interrupted: &dyn Fn() -> Option<i32>,
) -> Result<(), String> {
    match nginx {
        Some(n) => nginx_test_until(n, main, &|| interrupted().is_some()).map_err(|e| match e {
            NginxTestError::Failed(output) => output,
            NginxTestError::Stopped => "interrupted".to_string(),
        }),
        None => Ok(()),
    }
}

/// The main config's directory, where a transaction keeps its journal.
fn journal_dir(main: &Path) -> PathBuf {
    let real = std::fs::canonicalize(main).unwrap_or_else(|_| main.to_path_buf());
    match real.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Why `nginx -t` fails on the configuration as it is, in the words that
/// point at the real cause: a file that is not a main config (a conf.d
/// snippet given on its own), or a user who cannot open what nginx opens.
fn original_fails(main: &Path, output: &str) -> String {
    let shown = main.display();
    let real = std::fs::canonicalize(main).unwrap_or_else(|_| main.to_path_buf());
    let in_main = format!("directive is not allowed here in {}:", real.display());
    let advice = "nothing was written (use --no-nginx-test to write without validating)";
    if output.contains(&in_main) || output.contains("no \"events\" section in configuration") {
        return format!(
            "`nginx -t` cannot check {shown} on its own: it is not a main configuration but a snippet that a \
             main nginx.conf includes (e.g. from conf.d/), and nginx rejects it out of that context; run \
             `upkeep fix --write` on the main nginx.conf so that the snippet is checked where it is included; \
             {advice}:\n{}",
            output.trim_end()
        );
    }
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root && output.contains("(13: Permission denied)") {
        return format!(
            "`nginx -t` cannot check the configuration as this user: it opens files that only root (or nginx's \
             user) may open, e.g. the pid file and logs (Permission denied below); run upkeep as root (sudo), \
             or use --no-nginx-test to write without validating; nothing was written:\n{}",
            output.trim_end()
        );
    }
    format!(
        "`nginx -t` already fails on the original configuration, so the fixed one cannot be validated; \
         {advice}:\n{}",
        output.trim_end()
    )
}

/// SIGINT, SIGTERM and SIGHUP, caught while files are being written so that
/// the transaction rolls back instead of dying half way.
pub struct Signals {
    caught: Arc<AtomicUsize>,
}

impl Signals {
    pub fn install() -> anyhow::Result<Signals> {
        let caught = Arc::new(AtomicUsize::new(0));
        for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            signal_hook::flag::register_usize(signal, caught.clone(), signal as usize)
                .map_err(|e| anyhow::anyhow!("installing the signal handlers: {e}"))?;
        }
        Ok(Signals { caught })
    }

    pub fn caught(&self) -> Option<i32> {
        match self.caught.load(Ordering::SeqCst) {
            0 => None,
            n => Some(n as i32),
        }
    }

    /// 128 + the signal, as a shell reports a process killed by it.
    fn exit_code(&self) -> ExitCode {
        ExitCode::from(128u8.saturating_add(self.caught().unwrap_or(libc::SIGINT) as u8))
    }
}

/// Before anything is computed: an interrupted `--write` (its journal) and
/// stray temporary copies. With --write, a journal refuses the run.
fn report_leftovers(loaded: &Loaded, write: bool) -> Option<ExitCode> {
    let found = match leftovers(loaded, write) {
        Ok(found) => found,
        Err(e) => {
            eprintln!("error: {}", terminal_safe(&e.to_string()));
            return Some(ExitCode::from(EXIT_INPUT_ERROR));
        }
    };
    if let Some(strays) = strays_warning(&found.strays) {
        eprint!("{strays}");
    }
    let p = found.pending?;
    eprint!(
        "{}",
        describe_pending(&p, if write { "error" } else { "warning" })
    );
    write.then(|| ExitCode::from(EXIT_INPUT_ERROR))
}

/// What an interrupted `fix --write` left next to a configuration.
pub struct Leftovers {
    /// Its journal, when one is pending.
    pub pending: Option<Pending>,
    /// Temporary copies it did not remove.
    pub strays: Vec<PathBuf>,
}

/// The journal and stray copies next to `loaded`'s files. With `write`, a
/// transaction that holds the lock now is an error.
pub fn leftovers(loaded: &Loaded, write: bool) -> Result<Leftovers, WriteError> {
    let main = PathBuf::from(loaded.main_path());
    let pending = match pending(&journal_dir(&main)) {
        Ok(p) => p,
        Err(e @ WriteError::Locked { .. }) if write => return Err(e),
        Err(_) => None,
    };
    let files: Vec<PathBuf> = loaded
        .set
        .files
        .iter()
        .map(|f| PathBuf::from(&f.path))
        .collect();
    let strays = stray_copies(&files, pending.as_ref());
    Ok(Leftovers { pending, strays })
}

/// The warning about stray temporary copies, if there are any.
pub fn strays_warning(strays: &[PathBuf]) -> Option<String> {
    if strays.is_empty() {
        return None;
    }
    let mut out = format!(
        "warning: {} temporary cop{} left by an interrupted `upkeep fix --write` (nginx does not load them; \
         `upkeep fix --recover undo` removes them):\n",
        strays.len(),
        if strays.len() == 1 { "y" } else { "ies" }
    );
    for s in strays {
        out += &format!("  {}\n", terminal_safe_line(&s.display().to_string()));
    }
    Some(out)
}

/// An interrupted `fix --write` and how to finish or undo it, as `level:`
/// lines.
pub fn describe_pending(p: &Pending, level: &str) -> String {
    let mut out = format!(
        "{level}: an earlier `upkeep fix --write` (pid {}) was interrupted before it completed; its journal is {}:\n",
        p.pid,
        terminal_safe_line(&p.journal.display().to_string())
    );
    for f in &p.files {
        out += &format!(
            "  {}: {}\n",
            terminal_safe_line(&f.path.display().to_string()),
            f.state.describe()
        );
    }
    out += &format!(
        "  `upkeep fix --recover finish` writes the rest and validates it; `upkeep fix --recover undo` puts \
         every file back{}\n",
        if level == "error" { "; nothing was written" } else { "" }
    );
    out
}

/// `--recover finish|undo` for each config given.
fn recover_runs(
    args: &Args,
    sources: &[Source],
    load_opts: &upkeep_config::LoadOptions,
    how: RecoverHow,
) -> anyhow::Result<ExitCode> {
    let signals = Signals::install()?;
    for source in sources {
        let Source::File(path) = source else {
            bail!("--recover needs the main config's path");
        };
        // The config as it is now (old, new or a mix: each parses) names the
        // directories where stray copies may be.
        let loaded = check::load_unchecked(source, load_opts).ok();
        let main = match &loaded {
            Some(l) => PathBuf::from(l.main_path()),
            None if Path::new(path).is_dir() => Path::new(path).join("nginx.conf"),
            None => PathBuf::from(path),
        };
        let dir = journal_dir(&main);
        let found = match pending(&dir) {
            Ok(found) => found,
            Err(e) => {
                eprintln!("error: {}", terminal_safe(&e.to_string()));
                return Ok(ExitCode::from(EXIT_INPUT_ERROR));
            }
        };
        let files: Vec<PathBuf> = loaded
            .iter()
            .flat_map(|l| l.set.files.iter().map(|f| PathBuf::from(&f.path)))
            .collect();
        let strays = stray_copies(&files, found.as_ref());
        if matches!(how, RecoverHow::Undo) {
            for s in &strays {
                match std::fs::remove_file(s) {
                    Ok(()) => eprintln!("removed {}", terminal_safe_line(&s.display().to_string())),
                    Err(e) => eprintln!(
                        "warning: cannot remove {}: {e}",
                        terminal_safe_line(&s.display().to_string())
                    ),
                }
            }
        }
        let Some(found) = found else {
            eprintln!(
                "no interrupted `upkeep fix --write` to recover in {}",
                dir.display()
            );
            continue;
        };
        eprint!("{}", describe_pending(&found, "note"));
        let nginx = match how {
            RecoverHow::Finish if !args.no_nginx_test => upkeep_nginx::NginxBinary::find(None),
            _ => None,
        };
        let opts = WriteOptions {
            journal_dir: Some(&dir),
            interrupted: &|| signals.caught(),
        };
        let mut validate = || validate_with(nginx.as_ref(), &main, &|| signals.caught());
        let recovery = match how {
            RecoverHow::Finish => Recovery::Finish,
            RecoverHow::Undo => Recovery::Undo,
        };
        match recover(&dir, recovery, &opts, &mut validate) {
            Ok(written) => {
                for note in &written.notes {
                    eprintln!("{}", terminal_safe(note));
                }
                match how {
                    RecoverHow::Finish => report_written(
                        &written,
                        &loaded.as_ref().map(|l| l.base_dir()).unwrap_or_default(),
                        nginx.as_ref(),
                        args.no_nginx_test,
                    ),
                    RecoverHow::Undo => eprintln!(
                        "undone: {} file{} as before the interrupted run",
                        written.files.len(),
                        plural(written.files.len())
                    ),
                }
            }
            Err(e) => return Ok(write_failed(&e, &signals)),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The changes, each file once: a file reached by two paths (a symlinked
/// directory included twice) is the same file (device and inode).
fn shown_once<'a>(
    changes: impl Iterator<Item = (&'a str, &'a [u8], &'a [u8])>,
) -> Vec<(&'a str, &'a [u8], &'a [u8])> {
    use std::os::unix::fs::MetadataExt;
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for (path, old, new) in changes {
        if let Ok(m) = std::fs::metadata(path) {
            let id = (m.dev(), m.ino(), new.to_vec());
            if seen.contains(&id) {
                continue;
            }
            seen.push(id);
        }
        out.push((path, old, new));
    }
    out
}

/// A backup (`FILE.upkeep.bak`) that an `include` glob of the config would
/// match: nginx would then load the old text next to the new. The backup
/// sits next to the real file (a sites-enabled symlink's backup is in
/// sites-available), so that is the path judged. Returns the backup path and
/// the include directive's place.
fn backup_loaded_by_include(
    target: &WriteTarget,
    plan: &[PlannedWrite],
) -> Option<(String, String)> {
    for p in plan {
        let Ok(real) = std::fs::canonicalize(&p.path) else {
            continue;
        };
        let backup = format!("{}{BACKUP_SUFFIX}", real.display());
        for include in &target.includes {
            let arg = &include.arg;
            let pattern = if arg.starts_with('/') {
                arg.to_string()
            } else {
                format!("{}{arg}", target.prefix)
            };
            // The pattern as written, and with its directory resolved as
            // nginx's glob resolves it (through symlinks).
            let mut patterns = vec![pattern.clone()];
            if let Some((dir, last)) = pattern.rsplit_once('/') {
                if let Ok(dir) = std::fs::canonicalize(if dir.is_empty() { "/" } else { dir }) {
                    patterns.push(format!("{}/{last}", dir.display()));
                }
            }
            if patterns
                .iter()
                .any(|pat| upkeep_config::glob::path_matches(pat, &backup))
            {
                return Some((backup, format!("`include {arg}` at {}", include.place)));
            }
        }
    }
    None
}

/// What `--write` needs of the loaded configuration: its main file, and the
/// `include` lines that could load a backup. Taken before the fix loop, so
/// that the loaded syntax trees and texts become the loop's first round
/// instead of being held through it (they are several times the size of
/// the configuration).
pub struct WriteTarget {
    main: PathBuf,
    /// nginx's prefix, which relative include paths start from.
    prefix: String,
    includes: Vec<IncludeLine>,
}

/// An `include` directive with an argument.
struct IncludeLine {
    /// The argument, as nginx reads it.
    arg: String,
    /// `path:line:col` of the directive.
    place: String,
}

impl WriteTarget {
    pub fn of(loaded: &Loaded) -> WriteTarget {
        let set = &loaded.set;
        let mut includes = Vec::new();
        for (file, tree) in set.files.iter().zip(&set.trees) {
            collect_includes(&tree.nodes, &mut |d| {
                if let Some(arg) = d.arg(0) {
                    let at = file.line_col(d.span().start);
                    includes.push(IncludeLine {
                        arg: arg.text().into_owned(),
                        place: format!("{}:{}:{}", file.path, at.line, at.col),
                    });
                }
            });
        }
        WriteTarget {
            main: PathBuf::from(loaded.main_path()),
            prefix: set.prefix.clone(),
            includes,
        }
    }
}

fn collect_includes(nodes: &[upkeep_syntax::Node], f: &mut dyn FnMut(&upkeep_syntax::Directive)) {
    for d in nodes.iter().filter_map(upkeep_syntax::Node::as_directive) {
        if d.name_is("include") {
            f(d);
        }
        if let Some(b) = d.block() {
            collect_includes(&b.nodes, f);
        }
    }
}

/// What `--write` did, on stderr.
fn report_written(
    written: &Written,
    base: &str,
    nginx: Option<&upkeep_nginx::NginxBinary>,
    no_nginx_test: bool,
) {
    for (shown, backup) in written.shown.iter().zip(&written.backups) {
        let shown_path = display_path(&shown.to_string_lossy(), Some(base));
        match backup {
            Some(backup) => {
                // Next to the file, unless the file is a symlink (then next to its target).
                let named = PathBuf::from(format!("{}{BACKUP_SUFFIX}", shown.display()));
                let backup_shown = if std::fs::canonicalize(&named).ok().as_ref() == Some(backup) {
                    format!("{shown_path}{BACKUP_SUFFIX}")
                } else {
                    backup.display().to_string()
                };
                eprintln!(
                    "wrote {} (original kept as {})",
                    terminal_safe_line(&shown_path),
                    terminal_safe_line(&backup_shown)
                );
            }
            None => eprintln!("wrote {}", terminal_safe_line(&shown_path)),
        }
    }
    for note in &written.notes {
        eprintln!("{}", terminal_safe(note));
    }
    match nginx {
        Some(n) => eprintln!("`{} -t` accepts the result", n.path.display()),
        None if no_nginx_test => {
            eprintln!("note: not validated with nginx -t (--no-nginx-test)")
        }
        None => {
            eprintln!("note: no nginx binary found; the result was not validated with nginx -t")
        }
    }
}
