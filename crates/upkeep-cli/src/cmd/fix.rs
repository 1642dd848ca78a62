//! `upkeep fix`: compute the edits of every fixable finding, re-check until
//! nothing is left, print a unified diff (default) or write the files
//! (`--write`: atomic, with backups, validated by `nginx -t`).

use anyhow::bail;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use upkeep_config::{ConfigSet, FsLoader, LoadError, Loader};
use upkeep_diag::{display_path, terminal_safe, terminal_safe_line, Applicability};
use upkeep_fix::write::{nginx_test, write_files, PlannedWrite, WriteError, BACKUP_SUFFIX};
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

    /// Colours in the diff.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// No report of what was fixed on stderr (errors are still printed).
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    for r in &args.rules {
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
    let sources = check::sources(&args.paths)?;
    if args.write && sources.iter().any(|s| matches!(s, Source::Dump { .. })) {
        bail!("--write needs config files; `nginx -T` output can only be diffed (pass the main config's path)");
    }
    let load_opts = check::load_options(&args.input);
    let to_terminal = std::io::stdout().is_terminal();
    let color = args.color.enabled(to_terminal);
    let fix_opts = FixOptions {
        rules: (!args.rules.is_empty()).then(|| args.rules.clone()),
        unsafe_fixes: args.unsafe_fixes,
        ..FixOptions::default()
    };

    let mut exit = ExitCode::SUCCESS;
    for source in &sources {
        let loaded = match check::load(source, &load_opts) {
            Ok(l) => l,
            Err(e) => {
                check::print_load_error(&e);
                eprintln!("note: nothing was changed");
                return Ok(ExitCode::from(EXIT_INPUT_ERROR));
            }
        };
        check::print_load_warnings(&loaded.set);
        let main_dir = match source {
            Source::File(p) => Path::new(p).parent().map(Path::to_path_buf),
            Source::Dump { .. } => None,
        };
        let opts = check::check_options(&args.input, main_dir.as_deref())?;
        let run = match run_fix(&loaded, &load_opts, &opts, &fix_opts) {
            Ok(run) => run,
            Err(e) => {
                check::print_load_error(&e);
                return Ok(ExitCode::from(EXIT_INPUT_ERROR));
            }
        };
        let base = loaded.base_dir();
        if !args.quiet {
            report(&run, &base, args.unsafe_fixes);
        }
        if args.write {
            match write(&args, &loaded, &run, &base)? {
                code if code != ExitCode::SUCCESS => return Ok(code),
                _ => {}
            }
            if !run.refused.is_empty() || !run.converged {
                exit = ExitCode::from(EXIT_FINDINGS);
            }
        } else {
            for (path, old, new) in run.changes() {
                let diff =
                    upkeep_fix::unified_diff(&display_path(path, Some(&base)), old, new, color);
                // A coloured diff is escaped already; an uncoloured one on a
                // terminal (NO_COLOR) is escaped here.
                if to_terminal && !color {
                    print!("{}", terminal_safe(&diff));
                } else {
                    print!("{diff}");
                }
            }
            if run.changes().next().is_some() {
                exit = ExitCode::from(EXIT_FINDINGS);
            }
        }
    }
    Ok(exit)
}

/// The fix loop over `loaded`, reloading through an overlay each round.
fn run_fix(
    loaded: &Loaded,
    load_opts: &upkeep_config::LoadOptions,
    opts: &upkeep_rules::CheckOptions,
    fix_opts: &FixOptions,
) -> Result<FixRun<ConfigSet>, LoadError> {
    let main = loaded.main_path().to_string();
    let mut checker = |overlay: &Overlay| -> Result<Round<ConfigSet>, LoadError> {
        let set = match &loaded.memory {
            Some(memory) => reload(&main, memory, overlay, load_opts)?,
            None => reload(&main, &FsLoader, overlay, load_opts)?,
        };
        let report = upkeep_rules::check(&set, opts);
        Ok(Round {
            sources: set,
            findings: report.findings,
        })
    };
    upkeep_fix::fix(&mut checker, fix_opts)
}

fn reload<L: Loader>(
    main: &str,
    inner: &L,
    overlay: &Overlay,
    opts: &upkeep_config::LoadOptions,
) -> Result<ConfigSet, LoadError> {
    ConfigSet::load(main, &OverlayLoader { overlay, inner }, opts)
}

/// What was fixed, refused and left, on stderr (the diff owns stdout).
fn report(run: &FixRun<ConfigSet>, base: &str, unsafe_fixes: bool) {
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
        for a in &run.applied {
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
            "{left} finding{} left that need a decision (`upkeep check` shows them)",
            plural(left)
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
    loaded: &Loaded,
    run: &FixRun<ConfigSet>,
    base: &str,
) -> anyhow::Result<ExitCode> {
    let plan: Vec<PlannedWrite> = run
        .changes()
        .map(|(path, old, new)| PlannedWrite {
            path: PathBuf::from(path),
            original: old.to_vec(),
            new: new.to_vec(),
        })
        .collect();
    if plan.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    // Belt and braces: every byte outside the fixes' edits must be as read.
    for change in &run.history {
        if let Err(e) = upkeep_fix::verify::only_edits_changed(change) {
            bail!("internal error, nothing was written: {e}");
        }
    }
    if let Some((backup, include)) = backup_loaded_by_include(&loaded.set, &plan) {
        eprintln!(
            "error: the backup {} would be loaded by nginx through {}; nothing was written \
             (move the file out of the included directory, or use `upkeep fix` without --write and apply the diff)",
            terminal_safe_line(&backup),
            terminal_safe_line(&include)
        );
        return Ok(ExitCode::from(EXIT_INPUT_ERROR));
    }
    let main = PathBuf::from(loaded.main_path());
    let nginx = if args.no_nginx_test {
        None
    } else {
        upkeep_nginx::NginxBinary::find(None)
    };
    if let Some(nginx) = &nginx {
        if let Err(output) = nginx_test(nginx, &main) {
            eprintln!(
                "error: `nginx -t` already fails on the original configuration, so the fixed one cannot be \
                 validated; nothing was written (use --no-nginx-test to write anyway):\n{}",
                terminal_safe(output.trim_end())
            );
            return Ok(ExitCode::from(EXIT_INPUT_ERROR));
        }
    }
    let mut validate = || match &nginx {
        Some(n) => nginx_test(n, &main),
        None => Ok(()),
    };
    match write_files(&plan, &mut validate) {
        Ok(written) => {
            if !args.quiet {
                report_written(&plan, &written, base, nginx.as_ref(), args.no_nginx_test);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {}", terminal_safe(&e.to_string()));
            let code = match e {
                WriteError::ValidationFailed { .. } => EXIT_FINDINGS,
                _ => EXIT_INPUT_ERROR,
            };
            Ok(ExitCode::from(code))
        }
    }
}

/// A backup (`FILE.upkeep.bak`) that an `include` glob of the config would
/// match: nginx would then load the old text next to the new. Returns the
/// backup path and the include directive's place.
fn backup_loaded_by_include(set: &ConfigSet, plan: &[PlannedWrite]) -> Option<(String, String)> {
    let mut includes = Vec::new();
    for (i, tree) in set.trees.iter().enumerate() {
        collect_includes(&tree.nodes, &mut |d| includes.push((i, d.clone())));
    }
    for p in plan {
        let named = format!("{}{BACKUP_SUFFIX}", p.path.display());
        let real = std::fs::canonicalize(&p.path)
            .map(|r| format!("{}{BACKUP_SUFFIX}", r.display()))
            .unwrap_or_else(|_| named.clone());
        for (file, d) in &includes {
            let Some(arg) = d.arg(0) else { continue };
            let arg = arg.text();
            let pattern = if arg.starts_with('/') {
                arg.to_string()
            } else {
                format!("{}{arg}", set.prefix)
            };
            for candidate in [&named, &real] {
                if upkeep_config::glob::path_matches(&pattern, candidate) {
                    let src = &set.files[*file];
                    let at = src.line_col(d.span.start);
                    return Some((
                        candidate.clone(),
                        format!("`include {arg}` at {}:{}:{}", src.path, at.line, at.col),
                    ));
                }
            }
        }
    }
    None
}

fn collect_includes(nodes: &[upkeep_syntax::Node], f: &mut dyn FnMut(&upkeep_syntax::Directive)) {
    for d in nodes.iter().filter_map(upkeep_syntax::Node::as_directive) {
        if d.name_is("include") {
            f(d);
        }
        if let Some(b) = &d.block {
            collect_includes(&b.nodes, f);
        }
    }
}

/// What `--write` did, on stderr.
fn report_written(
    plan: &[PlannedWrite],
    written: &upkeep_fix::write::Written,
    base: &str,
    nginx: Option<&upkeep_nginx::NginxBinary>,
    no_nginx_test: bool,
) {
    for (planned, backup) in plan.iter().zip(&written.backups) {
        let shown = display_path(&planned.path.to_string_lossy(), Some(base));
        // Next to the file, unless the file is a symlink (then next to its target).
        let named_backup = PathBuf::from(format!("{}{BACKUP_SUFFIX}", planned.path.display()));
        let backup_shown = if std::fs::canonicalize(&named_backup).ok().as_ref() == Some(backup) {
            format!("{shown}{BACKUP_SUFFIX}")
        } else {
            backup.display().to_string()
        };
        eprintln!(
            "wrote {} (original kept as {})",
            terminal_safe_line(&shown),
            terminal_safe_line(&backup_shown)
        );
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
