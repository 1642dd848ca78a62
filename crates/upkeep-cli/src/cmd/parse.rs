//! `upkeep parse`: load a configuration (following includes) and print it as
//! JSON, crossplane's format by default.

use crate::EXIT_INPUT_ERROR;
use std::io::Write;
use std::process::ExitCode;
use upkeep_config::crossplane::{write_crossplane_json, CrossplaneOptions};
use upkeep_config::tree_json::upkeep_json;
use upkeep_config::{ConfigSet, Context, LoadError, LoadErrorKind, LoadOptions};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The JSON `crossplane parse` prints.
    Crossplane,
    /// upkeep's own lossless JSON: values as nginx sees them, raw tokens,
    /// positions, comments.
    Json,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Main config file, a directory holding nginx.conf, or `-` for the
    /// output of `nginx -T` on stdin.
    pub path: String,
    #[arg(long, value_enum, default_value_t = Format::Crossplane)]
    pub format: Format,
    /// Do not follow `include` directives (crossplane's --single-file).
    #[arg(long)]
    pub single_file: bool,
    /// List all comments, not only those between a directive's arguments
    /// (crossplane format; the json format always has them).
    #[arg(long)]
    pub include_comments: bool,
    /// Pretty-print the JSON with this many spaces.
    #[arg(long, value_name = "N")]
    pub indent: Option<usize>,
    /// A missing include file is an error, not a warning.
    #[arg(long)]
    pub strict: bool,
    /// The context of a partial config (a conf.d snippet): main, http,
    /// server, location, upstream, … Default: guessed from its directives.
    #[arg(long, value_parser = parse_context)]
    pub context: Option<Context>,
    /// Resolve relative includes against this directory instead of the main
    /// file's directory (nginx's conf prefix).
    #[arg(long, value_name = "DIR")]
    pub prefix: Option<String>,
}

fn parse_context(s: &str) -> Result<Context, String> {
    s.parse()
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let opts = LoadOptions {
        strict: args.strict,
        context: args.context,
        prefix: args.prefix.clone(),
    };
    let result = if args.single_file && args.path != "-" {
        ConfigSet::load_path_single(&args.path, &opts)
    } else {
        load_input(&args.path, &opts)
    };
    let mut stdout = std::io::stdout().lock();
    match args.format {
        Format::Crossplane => {
            let opts = CrossplaneOptions {
                single_file: args.single_file,
                include_comments: args.include_comments,
                indent: args.indent,
            };
            write_crossplane_json(&result, &opts, &mut stdout)?;
        }
        Format::Json => stdout.write_all(upkeep_json(&result, args.indent).as_bytes())?,
    }
    stdout.write_all(b"\n")?;
    stdout.flush()?;
    match result {
        Ok(set) => {
            for w in &set.warnings {
                eprintln!(
                    "warning: {}",
                    upkeep_diag::terminal_safe_line(&w.to_string())
                );
            }
            // The process ends here: freeing every node of a large tree one
            // by one would only add time.
            std::mem::forget(set);
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            eprint!("error: {}", upkeep_diag::terminal_safe(&err.render()));
            Ok(ExitCode::from(EXIT_INPUT_ERROR))
        }
    }
}

/// The configuration named on the command line: a file, a directory's
/// nginx.conf, or `-` for `nginx -T` output on stdin. Shared by the
/// commands that read a configuration.
pub fn load_input(path: &str, opts: &LoadOptions) -> Result<ConfigSet, LoadError> {
    if path == "-" {
        let stdin = std::io::stdin().lock();
        let dump = match upkeep_config::file_read::read_bounded(stdin, super::check::MAX_DUMP_BYTES)
        {
            Ok(dump) => dump,
            Err(e) => {
                return Err(LoadError {
                    kind: LoadErrorKind::MainUnreadable,
                    path: "-".into(),
                    pos: None,
                    message: format!("cannot read standard input: {e}"),
                    source: None,
                })
            }
        };
        return ConfigSet::from_nginx_t(&dump, opts);
    }
    ConfigSet::load_path(path, opts)
}
