//! `upkeep check`: load the configuration, run every rule, print the findings
//! (human, JSON, SARIF or a CI system's format), exit 0/1/2.
//!
//! The loading and option handling here is shared with `upkeep fix`.

use anyhow::{bail, Context as _};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use upkeep_config::{ConfigSet, Context, FsLoader, LoadError, LoadOptions, Loader};
use upkeep_diag::render::human::{self, HumanOptions};
use upkeep_diag::render::{github, gitlab, json, junit, sarif};
use upkeep_diag::{Finding, Report, Severity};
use upkeep_rules::{settings, CheckOptions, CheckReport, Flavor, NginxVersion, VersionSource};
use upkeep_syntax::{FileId, SourceFile, SourceMap};

use crate::settings_file;
use crate::{EXIT_FINDINGS, EXIT_INPUT_ERROR};
use upkeep_config::file_read;
use upkeep_diag::{terminal_safe, terminal_safe_line};

/// Limits on what is read into memory: `nginx -T` output on stdin, upkeep.toml,
/// and probe results.
pub(crate) const MAX_DUMP_BYTES: u64 = file_read::MAX_CONFIG_FILE_BYTES;
const MAX_SETTINGS_BYTES: u64 = 1 << 20;
const MAX_BACKEND_FACTS_BYTES: u64 = 64 << 20;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Main config file, a directory holding nginx.conf, or `-` for the
    /// output of `nginx -T` on stdin. Default: `nginx -T` when an nginx binary
    /// is on PATH, else /etc/nginx/nginx.conf.
    pub paths: Vec<PathBuf>,

    #[command(flatten)]
    pub input: InputArgs,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,

    /// Colours in human output.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// Lowest severity that makes the exit status 1.
    #[arg(long, value_enum, default_value_t = FailOn::Warning)]
    pub fail_on: FailOn,

    /// Human output: the diagnostics only, without the closing summary.
    #[arg(long, short)]
    pub quiet: bool,

    /// Judge an ingress-nginx ConfigMap (a YAML manifest; `-` for stdin)
    /// instead of an nginx configuration: its keep-alive keys, with the
    /// controller's defaults for keys not set, against the declared
    /// backends (`--backend NAMESPACE-SERVICE-PORT=PROFILE`) and front.
    #[arg(long, value_name = "FILE.yaml", conflicts_with = "paths")]
    pub k8s_configmap: Option<PathBuf>,
}

/// What `check` and `fix` share: how to load the config and what to assume.
#[derive(clap::Args, Debug, Clone)]
pub struct InputArgs {
    /// The context the main file is read in (main, http, server, location,
    /// upstream, …); guessed from its directives when not given.
    #[arg(long, value_parser = parse_context)]
    pub context: Option<Context>,

    /// A missing include file is an error (exit 2), as it is for nginx.
    #[arg(long)]
    pub strict: bool,

    /// nginx's prefix for relative includes (default: the main file's directory).
    #[arg(long)]
    pub prefix: Option<String>,

    /// Target nginx version (defaults and directive availability depend on
    /// it). Default: detected with `nginx -v`, else 1.28.0.
    #[arg(long, value_name = "X.Y.Z")]
    pub nginx_version: Option<String>,

    /// The server: nginx, angie or freenginx (their keep-alive defaults
    /// differ at the same version number; --nginx-version is then the
    /// flavor's own version). Default: read from `nginx -v`, else nginx.
    #[arg(long, value_name = "FLAVOR")]
    pub flavor: Option<String>,

    /// The load balancer in front of nginx, a profile such as aws-alb,
    /// gcp-alb, cloudflare (`upkeep profiles` lists them).
    #[arg(long, value_name = "NAME")]
    pub front: Option<String>,

    /// Idle timeout of the load balancer in front of nginx (nginx syntax: 60s, 1m30s).
    #[arg(long, value_name = "DURATION")]
    pub front_idle: Option<String>,

    /// What a backend does: UPSTREAM=PROFILE (gunicorn, uvicorn, node, …) or
    /// UPSTREAM=idle=5s,max-requests=100. Repeatable.
    #[arg(long, value_name = "UPSTREAM=SPEC")]
    pub backend: Vec<String>,

    /// Backend facts measured by `upkeep probe --format json`.
    #[arg(long, value_name = "FILE")]
    pub backend_facts: Option<PathBuf>,

    /// Settings file (default: the first upkeep.toml found from the main
    /// config's directory upwards, else in the current directory).
    #[arg(long, value_name = "FILE")]
    pub config_file: Option<PathBuf>,

    /// Run only these rules (IDs, ID prefixes such as `U`, or names; comma-separated, repeatable).
    #[arg(long, value_delimiter = ',')]
    pub select: Vec<String>,

    /// Do not run these rules (IDs, prefixes or names; comma-separated, repeatable).
    #[arg(long, value_delimiter = ',')]
    pub ignore: Vec<String>,

    /// Cores to resolve `worker_processes auto` with (default: this host's).
    #[arg(long)]
    pub cpus: Option<u32>,

    /// Client `keepalive_requests` to aim for (C001; default 1000).
    #[arg(long)]
    pub target_requests: Option<u64>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
    Sarif,
    /// GitHub Actions workflow commands (`::warning file=…,line=…::…`).
    Github,
    /// GitLab Code Quality report (JSON).
    Gitlab,
    /// JUnit XML test report.
    Junit,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Colours on a terminal (and not when NO_COLOR is set), or when forced.
    pub fn enabled(self, stream_is_terminal: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                stream_is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        }
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailOn {
    Error,
    Warning,
    Info,
    /// Exit 0 whatever is found (input errors still exit 2).
    Never,
}

impl FailOn {
    fn fails(self, severity: Severity) -> bool {
        match self {
            FailOn::Error => severity >= Severity::Error,
            FailOn::Warning => severity >= Severity::Warning,
            FailOn::Info => true,
            FailOn::Never => false,
        }
    }
}

pub fn parse_context(s: &str) -> Result<Context, String> {
    s.parse::<Context>().map_err(|e| e.to_string())
}

/// Where a configuration comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// A main file on disk, named as the user gave it.
    File(String),
    /// `nginx -T` output (from stdin, or from running nginx).
    Dump { bytes: Vec<u8> },
    /// Files given as text (by `upkeep mcp`): the main file's name and every
    /// file by the name includes reach it by.
    Memory {
        main: String,
        files: std::collections::BTreeMap<String, Vec<u8>>,
    },
}

/// The sources named by PATH arguments, or the host's config.
pub fn sources(paths: &[PathBuf]) -> anyhow::Result<Vec<Source>> {
    if paths.is_empty() {
        if let Some(nginx) = upkeep_nginx::NginxBinary::find(None) {
            let bytes = nginx
                .dump_config()
                .map_err(|e| anyhow::anyhow!("{e} (pass a config path instead)"))?;
            return Ok(vec![Source::Dump { bytes }]);
        }
        return Ok(vec![Source::File("/etc/nginx/nginx.conf".into())]);
    }
    let mut out = Vec::new();
    let mut stdin_used = false;
    for p in paths {
        if p.as_os_str() == "-" {
            if stdin_used {
                bail!("`-` (stdin) can be given only once");
            }
            stdin_used = true;
            let bytes = file_read::read_bounded(std::io::stdin().lock(), MAX_DUMP_BYTES)
                .context("reading `nginx -T` output from stdin")?;
            out.push(Source::Dump { bytes });
        } else if p.is_dir() {
            let main = p.join("nginx.conf");
            if !main.is_file() {
                bail!("{}: a directory without nginx.conf", p.display());
            }
            out.push(Source::File(path_string(&main)?));
        } else {
            out.push(Source::File(path_string(p)?));
        }
    }
    Ok(out)
}

fn path_string(p: &Path) -> anyhow::Result<String> {
    p.to_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("{}: path is not UTF-8", p.display()))
}

/// A loader that sees `overlay` over another loader: the fix loop's edited
/// texts replace the files they name.
pub struct OverlayLoader<'a, L: Loader> {
    pub overlay: &'a upkeep_fix::Overlay,
    pub inner: &'a L,
}

impl<L: Loader> Loader for OverlayLoader<'_, L> {
    fn read(&self, path: &str) -> std::io::Result<Vec<u8>> {
        match self.overlay.get(path) {
            Some(text) => Ok(text.to_vec()),
            None => self.inner.read(path),
        }
    }

    /// A changed file's text is the overlay's own, shared, not a copy.
    fn read_shared(&self, path: &str) -> std::io::Result<upkeep_syntax::SharedText> {
        match self.overlay.get_shared(path) {
            Some(text) => Ok(std::sync::Arc::clone(text)),
            None => self.inner.read_shared(path),
        }
    }

    fn glob(&self, pattern: &str) -> std::io::Result<Vec<String>> {
        self.inner.glob(pattern)
    }
}

pub fn load_options(input: &InputArgs) -> LoadOptions {
    LoadOptions {
        strict: input.strict,
        context: input.context,
        prefix: input.prefix.clone(),
    }
}

/// Loads one source. Dumps are loaded into memory; [`Loaded::loader`] then
/// serves later reloads (by `fix`). A value nginx refuses in a directive
/// the rules read (`keepalive abc;`) is a load error at the value, as
/// `nginx -t` stops there.
pub fn load(source: &Source, opts: &LoadOptions) -> Result<Loaded, LoadError> {
    let loaded = load_unchecked(source, opts)?;
    upkeep_rules::check_values(&loaded.set)?;
    Ok(loaded)
}

/// [`load`] without judging values: for reading a configuration's file
/// list whatever nginx makes of it (`fix --recover`).
pub fn load_unchecked(source: &Source, opts: &LoadOptions) -> Result<Loaded, LoadError> {
    match source {
        Source::File(path) => {
            let set = ConfigSet::load(path, &FsLoader, opts)?;
            Ok(Loaded { set, memory: None })
        }
        Source::Dump { bytes, .. } => {
            let set = ConfigSet::from_nginx_t(bytes, opts)?;
            let mut memory = upkeep_config::MemoryLoader::new();
            for f in &set.files {
                memory.insert(f.path.clone(), f.text.to_vec());
            }
            Ok(Loaded {
                set,
                memory: Some(memory),
            })
        }
        Source::Memory { main, files } => {
            let mut memory = upkeep_config::MemoryLoader::new();
            for (path, text) in files {
                memory.insert(path.clone(), text.clone());
            }
            let set = ConfigSet::load(main, &memory, opts)?;
            Ok(Loaded {
                set,
                memory: Some(memory),
            })
        }
    }
}

pub struct Loaded {
    pub set: ConfigSet,
    /// For `nginx -T` input: the dumped files.
    pub memory: Option<upkeep_config::MemoryLoader>,
}

impl Loaded {
    pub fn main_path(&self) -> &str {
        &self.set.file(self.set.main).path
    }

    /// The main file's directory, which paths are shown relative to.
    pub fn base_dir(&self) -> String {
        match self.main_path().rfind('/') {
            Some(0) => "/".into(),
            Some(i) => self.main_path()[..i].to_string(),
            None => ".".into(),
        }
    }
}

/// The check options from upkeep.toml, then the flags (flags win), then the
/// version detection.
pub fn check_options(input: &InputArgs, main_dir: Option<&Path>) -> anyhow::Result<CheckOptions> {
    Ok(check_options_and_settings_file(input, main_dir)?.0)
}

/// [`check_options`] and the settings file they were read from, if any.
pub fn check_options_and_settings_file(
    input: &InputArgs,
    main_dir: Option<&Path>,
) -> anyhow::Result<(CheckOptions, Option<PathBuf>)> {
    let mut opts = CheckOptions::default();
    let settings = settings_file(input.config_file.as_deref(), main_dir);
    if let Some(toml_path) = &settings {
        apply_settings_file(&mut opts, toml_path)?;
    }
    let flavor_given = apply_target_flags(
        &mut opts,
        input.flavor.as_deref(),
        input.nginx_version.as_deref(),
    )?;
    if let Some(front) = &input.front {
        if upkeep_facts::front_profile(front).is_none() && input.front_idle.is_none() {
            bail!("--front: unknown load balancer profile {front:?} (give its idle timeout with --front-idle)");
        }
        opts.front_name = Some(front.clone());
    }
    if let Some(idle) = &input.front_idle {
        opts.front_idle_ms = Some(
            upkeep_facts::parse_duration(idle).map_err(|e| anyhow::anyhow!("--front-idle: {e}"))?,
        );
    }
    for spec in &input.backend {
        let (name, facts) =
            settings::parse_backend_spec(spec).map_err(|e| anyhow::anyhow!("--backend: {e}"))?;
        opts.backends.insert(name, facts);
    }
    if let Some(file) = &input.backend_facts {
        let text = read_backend_facts(file)?;
        settings::apply_probe_json(&mut opts, &text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    }
    if !input.select.is_empty() {
        let list = input
            .select
            .iter()
            .map(|s| settings::validate_selector(s).map_err(|e| anyhow::anyhow!("--select: {e}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        opts.select = Some(list);
    }
    for s in &input.ignore {
        opts.ignore
            .push(settings::validate_selector(s).map_err(|e| anyhow::anyhow!("--ignore: {e}"))?);
    }
    if input.cpus.is_some() {
        opts.cpus = input.cpus;
    }
    if opts.cpus.is_none() {
        opts.cpus = std::thread::available_parallelism()
            .ok()
            .map(|n| n.get() as u32);
    }
    if input.target_requests.is_some() {
        opts.target_requests = input.target_requests;
    }
    detect_version(&mut opts, flavor_given);
    Ok((opts, settings))
}

/// Reads the settings file `toml_path` into `opts`.
pub fn apply_settings_file(opts: &mut CheckOptions, toml_path: &Path) -> anyhow::Result<()> {
    let text = file_read::read_regular_text(toml_path, MAX_SETTINGS_BYTES)
        .with_context(|| format!("reading {}", toml_path.display()))?;
    settings::apply_toml(opts, &text).map_err(|e| anyhow::anyhow!("{}: {e}", toml_path.display()))
}

/// `--flavor` and `--nginx-version` over what the settings file said.
/// Returns whether a flavor was named (by the settings, `nginx` included,
/// or the flag), which [`detect_version`] needs.
pub fn apply_target_flags(
    opts: &mut CheckOptions,
    flavor: Option<&str>,
    nginx_version: Option<&str>,
) -> anyhow::Result<bool> {
    if let Some(f) = flavor {
        opts.flavor = Flavor::parse(f).map_err(|e| anyhow::anyhow!("--flavor: {e}"))?;
        opts.flavor_given = true;
    }
    if let Some(v) = nginx_version {
        opts.nginx_version = Some(
            NginxVersion::parse_given(v).map_err(|e| anyhow::anyhow!("--nginx-version: {e}"))?,
        );
        opts.version_source = VersionSource::Given;
    }
    Ok(opts.flavor_given)
}

/// Without a version from the flags or the settings: the one `nginx -v`
/// prints on this host, when its flavor is the one asked for.
pub fn detect_version(opts: &mut CheckOptions, flavor_given: bool) {
    if opts.nginx_version.is_none() {
        if let Some(binary) = upkeep_nginx::NginxBinary::find(None) {
            take_binary_version(opts, flavor_given, &binary);
        }
    }
}

/// What `nginx -v` of `binary` says, taken as [`detect_version`] takes it:
/// its flavor and version when no flavor was named or it is the one named;
/// else the version stays the flavor's default and the binary is named as
/// the reason. Returns whether a version could be read from the binary
/// (`opts` is left alone when not).
pub fn take_binary_version(
    opts: &mut CheckOptions,
    flavor_given: bool,
    binary: &upkeep_nginx::NginxBinary,
) -> bool {
    // The flavor is read from the whole line (`freenginx/1.29.7`), the
    // number alone would say nginx.
    let detected = binary.version_and_line().ok().and_then(|(version, line)| {
        NginxVersion::parse(&version)
            .ok()
            .map(|v| (Flavor::of_version_line(&line), v))
    });
    let Some((flavor, v)) = detected else {
        return false;
    };
    // A version read from a binary of another flavor than the one asked
    // for says nothing about the target: keep the flavor's default.
    if !flavor_given || flavor == opts.flavor {
        opts.flavor = flavor;
        opts.nginx_version = Some(v);
        opts.version_source = VersionSource::Detected;
    } else {
        // Named in the "assuming …" note: a binary was found.
        opts.unused_binary = Some(upkeep_rules::Target::new(flavor, v));
    }
    true
}

/// For the host's own configuration (no PATH): the processes behind its
/// upstream addresses, read on this host, give the backend facts where
/// nothing was declared for an address (as `--backend` would). Returns one
/// line per address saying what was found, for the output.
pub fn add_host_backends(set: &ConfigSet, opts: &mut CheckOptions) -> Vec<String> {
    let pid = upkeep_host::process::find_master(None).ok();
    let found = upkeep_host::doctor::discover(set, opts, pid);
    found.feed(opts);
    found
        .backends
        .iter()
        .map(|b| {
            format!(
                "backend {} (upstream {}) read on this host: {}",
                b.target.written,
                b.target.upstreams.join(", "),
                b.describe()
            )
        })
        .collect()
}

/// The output of `upkeep probe --format json` named by `--backend-facts`:
/// a regular file of at most [`MAX_BACKEND_FACTS_BYTES`].
pub fn read_backend_facts(path: &Path) -> anyhow::Result<String> {
    file_read::read_regular_text(path, MAX_BACKEND_FACTS_BYTES)
        .with_context(|| format!("--backend-facts {}", path.display()))
}

/// `--config-file`, else the upkeep.toml that [`settings_file::discover`]
/// finds from the main config's directory (or the current one). Candidates
/// it does not trust are named in a warning.
pub fn settings_file(config_file: Option<&Path>, main_dir: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = config_file {
        return Some(p.to_path_buf());
    }
    let discovery = settings_file::discover(main_dir);
    for (path, why) in &discovery.skipped {
        eprintln!(
            "warning: ignoring {}: {}",
            terminal_safe(&path.display().to_string()),
            terminal_safe(why)
        );
    }
    discovery.found
}

/// Prints a load error the way nginx users expect: `error: file:line:col:
/// message, expecting …`, the source line and a caret.
/// Control characters in the path or the source line are shown escaped.
pub fn print_load_error(err: &LoadError) {
    eprint!("error: {}", terminal_safe(&err.render()));
}

pub fn print_load_warnings(set: &ConfigSet) {
    for w in &set.warnings {
        eprintln!("warning: {}", terminal_safe_line(&w.to_string()));
    }
}

/// Several configurations' files in one source map: each config's FileIds
/// are shifted past the previous configs' files.
pub struct Combined {
    files: Vec<SourceFile>,
}

impl SourceMap for Combined {
    fn get(&self, id: FileId) -> Option<&SourceFile> {
        self.files.get(id.0 as usize)
    }
}

impl Combined {
    /// Appends a config's files and returns its findings with shifted spans.
    fn push(&mut self, files: Vec<SourceFile>, mut findings: Vec<Finding>) -> Vec<Finding> {
        let offset = self.files.len() as u32;
        self.files.extend(files);
        let shift = |span: &mut upkeep_syntax::Span| span.file = FileId(span.file.0 + offset);
        for f in &mut findings {
            if let Some(p) = &mut f.primary {
                shift(p);
            }
            for r in &mut f.related {
                shift(&mut r.span);
            }
            if let Some(fix) = &mut f.fix {
                for e in &mut fix.edits {
                    shift(&mut e.span);
                }
            }
        }
        findings
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(path) = &args.k8s_configmap {
        let checked = match crate::configmap::check(path, &args.input) {
            Ok(c) => c,
            Err(crate::configmap::Failure::Input(text)) => {
                eprint!("error: {}", terminal_safe(&text));
                return Ok(ExitCode::from(EXIT_INPUT_ERROR));
            }
            Err(crate::configmap::Failure::Other(e)) => return Err(e),
        };
        return print_checked(&checked, &args);
    }
    let sources = sources(&args.paths)?;
    let checked = match check_sources(&sources, &args.input, args.paths.is_empty(), &mut |set| {
        print_load_warnings(set)
    }) {
        Ok(c) => c,
        Err(CheckFailure::Load(e)) => {
            print_load_error(&e);
            return Ok(ExitCode::from(EXIT_INPUT_ERROR));
        }
        Err(CheckFailure::Other(e)) => return Err(e),
    };
    print_checked(&checked, &args)
}

/// Prints the findings in the asked format; the exit status they give.
fn print_checked(checked: &Checked, args: &Args) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    let color = args.color.enabled(stdout.is_terminal());
    let mut out = std::io::BufWriter::new(stdout.lock());
    checked
        .write(args.format, color, args.quiet, &mut out)
        .and_then(|()| std::io::Write::flush(&mut out))
        .context("writing the report to standard output")?;
    Ok(if checked.fails(args.fail_on) {
        ExitCode::from(EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    })
}

/// Why [`check_sources`] found nothing.
pub enum CheckFailure {
    /// A configuration does not load (its error names file:line:col).
    Load(LoadError),
    /// A bad option or settings file.
    Other(anyhow::Error),
}

/// What the rules found over every source, ready to render in any format.
pub struct Checked {
    combined: Combined,
    findings: Vec<Finding>,
    report: CheckReport,
    base_dirs: Vec<String>,
    settings_files: Vec<String>,
}

/// Loads each source and runs the rules on it. `host` says the sources are
/// this host's own configuration (no PATH given): the backends behind its
/// upstreams are then read on this host. `on_loaded` sees each
/// configuration as loaded (for its warnings).
pub fn check_sources(
    sources: &[Source],
    input: &InputArgs,
    host: bool,
    on_loaded: &mut dyn FnMut(&ConfigSet),
) -> Result<Checked, CheckFailure> {
    let load_opts = load_options(input);
    let mut combined = Combined { files: Vec::new() };
    let mut findings = Vec::new();
    let mut last_report: Option<CheckReport> = None;
    let mut base_dirs = Vec::new();
    let mut settings_files: Vec<String> = Vec::new();
    for source in sources {
        let mut loaded = load(source, &load_opts).map_err(CheckFailure::Load)?;
        on_loaded(&loaded.set);
        let main_dir = match source {
            Source::File(p) => Path::new(p).parent().map(Path::to_path_buf),
            Source::Dump { .. } | Source::Memory { .. } => None,
        };
        let (mut opts, settings) = check_options_and_settings_file(input, main_dir.as_deref())
            .map_err(CheckFailure::Other)?;
        if let Some(path) = settings {
            let shown = path.to_string_lossy().into_owned();
            if !settings_files.contains(&shown) {
                settings_files.push(shown);
            }
        }
        let host_backends = host.then(|| add_host_backends(&loaded.set, &mut opts));
        let mut report = upkeep_rules::check(&loaded.set, &opts);
        report.assumptions.extend(host_backends.unwrap_or_default());
        base_dirs.push(loaded.base_dir());
        let files = std::mem::take(&mut loaded.set.files);
        findings.extend(combined.push(files, std::mem::take(&mut report.findings)));
        last_report = Some(report);
        // The process ends soon after: freeing a large config's every node
        // one by one (nodes parsed on other threads, at that) took as long
        // as running half of the rules (callgrind, 100k-line config).
        std::mem::forget(loaded);
    }
    let Some(report) = last_report else {
        return Err(CheckFailure::Other(anyhow::anyhow!(
            "no configuration given"
        )));
    };
    Ok(Checked {
        combined,
        findings,
        report,
        base_dirs,
        settings_files,
    })
}

impl Checked {
    /// Findings on files that are not an nginx configuration (a ConfigMap):
    /// `files` are the sources their spans point into (ids in order),
    /// shown with the paths they hold.
    pub(crate) fn from_parts(
        files: Vec<SourceFile>,
        findings: Vec<Finding>,
        report: CheckReport,
        settings_files: Vec<String>,
    ) -> Checked {
        Checked {
            combined: Combined { files },
            findings,
            report,
            base_dirs: Vec::new(),
            settings_files,
        }
    }

    /// The findings in one output format (`check --format`).
    pub fn render(&self, format: Format, color: bool, quiet: bool) -> String {
        upkeep_diag::render::to_string(|out| self.write(format, color, quiet, out))
    }

    /// [`Checked::render`] written to `sink` as it is rendered, in every
    /// format: the report of a large configuration is a hundred megabytes
    /// or more, and is never held whole.
    pub fn write(
        &self,
        format: Format,
        color: bool,
        quiet: bool,
        sink: &mut dyn std::io::Write,
    ) -> std::io::Result<()> {
        let version = self.report.nginx_version.to_string();
        let cwd = std::env::current_dir()
            .ok()
            .and_then(|d| d.to_str().map(str::to_string));
        // One config: paths relative to its directory (SPEC.md). Several: as loaded.
        // The CI formats want paths from the repository root, where CI runs.
        let base = match (format, self.base_dirs.as_slice()) {
            (Format::Sarif | Format::Github | Format::Gitlab | Format::Junit, _) => cwd.clone(),
            (_, [one]) => Some(one.clone()),
            _ => None,
        };
        let mut out = Report::new(&self.findings, &self.combined);
        out.base_dir = base.as_deref();
        out.flavor = Some(self.report.flavor.name());
        out.nginx_version = Some(&version);
        out.version_source = Some(self.report.version_source.as_str());
        out.assumptions = &self.report.assumptions;
        out.settings_files = &self.settings_files;

        let options = HumanOptions { color };
        match format {
            Format::Human if quiet => {
                human::write_findings(&out, &out.sorted_findings(), options, sink)
            }
            Format::Human => human::write(&out, options, sink),
            Format::Json => json::write(&out, sink),
            Format::Sarif => sarif::write(&out, &sarif_tool(), &sarif_rules(), sink),
            Format::Github => github::write(&out, sink),
            Format::Gitlab => gitlab::write(&out, sink),
            Format::Junit => junit::write(&out, sink),
        }
    }

    /// Whether a finding is at or above `fail_on` (exit status 1).
    pub fn fails(&self, fail_on: FailOn) -> bool {
        self.findings.iter().any(|f| fail_on.fails(f.severity))
    }
}

pub fn sarif_tool() -> sarif::Tool {
    sarif::Tool {
        name: "upkeep".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        information_uri: None,
    }
}

/// The SARIF rule table, from the one rule registry.
pub fn sarif_rules() -> Vec<sarif::RuleDescriptor> {
    upkeep_rules::rules()
        .iter()
        .map(|r| sarif::RuleDescriptor {
            id: r.id.into(),
            name: r.name.into(),
            severity: r.severity,
            summary: r.summary.into(),
            doc: r.doc.into(),
            fixable: r.fixable,
        })
        .collect()
}
