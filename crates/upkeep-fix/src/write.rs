//! `upkeep fix --write`: replacing config files without ever leaving a
//! half-written or unvalidated config behind.
//!
//! All files of one run form a transaction:
//! 1. every file is re-read and compared with the text the fixes were computed
//!    from; any difference refuses the whole run;
//! 2. the new text and a backup of the old one (`FILE.upkeep.bak`) are written
//!    to temporary files in the file's own directory, with the file's
//!    permissions and owner, and synced; a failure here (read-only directory,
//!    full disk) removes the temporaries and changes nothing;
//! 3. the temporaries are renamed over the originals (atomic per file);
//! 4. the caller's validation runs (`nginx -t` on the result); if it fails,
//!    every file is put back, and so are the backups.
//!
//! A symlinked config file (Debian's sites-enabled) is written through: the
//! file it points to is replaced, and the link stays a link.

use std::fs::{self, File, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Suffix of the backup kept next to each written file.
pub const BACKUP_SUFFIX: &str = ".upkeep.bak";

/// One file to replace.
#[derive(Clone, Debug)]
pub struct PlannedWrite {
    pub path: PathBuf,
    /// The text the fixes were computed from (what was read).
    pub original: Vec<u8>,
    pub new: Vec<u8>,
}

/// What was written.
#[derive(Clone, Debug, Default)]
pub struct Written {
    /// The files replaced (after following symlinks).
    pub files: Vec<PathBuf>,
    pub backups: Vec<PathBuf>,
}

#[derive(Debug)]
pub enum WriteError {
    /// The file on disk is not the text that was read; nothing was written.
    ChangedSinceRead { path: PathBuf },
    /// An I/O step failed; nothing was changed (or everything was put back).
    Io {
        path: PathBuf,
        action: &'static str,
        source: io::Error,
    },
    /// The written config failed validation; every file was put back.
    ValidationFailed { output: String },
    /// Putting a file back failed: the file may hold the new text. The backup
    /// (if named) still holds the original.
    RollbackFailed {
        path: PathBuf,
        backup: Option<PathBuf>,
        source: io::Error,
        cause: Box<WriteError>,
    },
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriteError::ChangedSinceRead { path } => write!(
                f,
                "{} changed since it was read; nothing was written (run `upkeep fix` again)",
                path.display()
            ),
            WriteError::Io {
                path,
                action,
                source,
            } => {
                write!(
                    f,
                    "cannot {action} {}: {source}; no file was changed",
                    path.display()
                )
            }
            WriteError::ValidationFailed { output } => write!(
                f,
                "the fixed configuration fails `nginx -t`; every file was restored:\n{}",
                output.trim_end()
            ),
            WriteError::RollbackFailed {
                path,
                backup,
                source,
                cause,
            } => {
                write!(
                    f,
                    "{cause}; then restoring {} failed: {source}",
                    path.display()
                )?;
                if let Some(b) = backup {
                    write!(f, " (the original is in {})", b.display())?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for WriteError {}

/// A file that has been staged or committed.
struct Target {
    real: PathBuf,
    backup: PathBuf,
    original: Vec<u8>,
    /// What the backup path held before this run (restored on rollback).
    previous_backup: Option<Vec<u8>>,
    meta: fs::Metadata,
}

/// Writes every planned file as one transaction, then runs `validate` on the
/// result; see the module documentation.
pub fn write_files(
    plan: &[PlannedWrite],
    validate: &mut dyn FnMut() -> Result<(), String>,
) -> Result<Written, WriteError> {
    let mut targets = Vec::with_capacity(plan.len());
    for p in plan {
        targets.push(inspect(p)?);
    }

    // Stage: temporaries next to each file. Dropping them deletes them.
    let mut staged = Vec::with_capacity(plan.len());
    for (p, t) in plan.iter().zip(&targets) {
        let new = stage(&t.real, &p.new, &t.meta)?;
        let bak = stage(&t.real, &t.original, &t.meta)?;
        staged.push((new, bak));
    }

    // Commit.
    let mut committed: Vec<&Target> = Vec::new();
    for (t, (new, bak)) in targets.iter().zip(staged) {
        let step = (|| {
            unchanged(t)?;
            bak.persist(&t.backup)
                .map_err(|e| io_err(&t.backup, "create the backup", e.error))?;
            new.persist(&t.real)
                .map_err(|e| io_err(&t.real, "replace", e.error))
        })();
        if let Err(err) = step {
            return Err(rollback(&committed, err));
        }
        committed.push(t);
    }
    // Make the renames durable; failure here loses nothing already written.
    for dir in targets.iter().filter_map(|t| t.real.parent()) {
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }

    if let Err(output) = validate() {
        return Err(rollback(
            &committed,
            WriteError::ValidationFailed { output },
        ));
    }
    Ok(Written {
        files: targets.iter().map(|t| t.real.clone()).collect(),
        backups: targets.iter().map(|t| t.backup.clone()).collect(),
    })
}

fn inspect(p: &PlannedWrite) -> Result<Target, WriteError> {
    let real = fs::canonicalize(&p.path).map_err(|e| io_err(&p.path, "resolve", e))?;
    let meta = fs::metadata(&real).map_err(|e| io_err(&real, "read the metadata of", e))?;
    let mut backup = real.clone().into_os_string();
    backup.push(BACKUP_SUFFIX);
    let backup = PathBuf::from(backup);
    let target = Target {
        previous_backup: fs::read(&backup).ok(),
        real,
        backup,
        original: p.original.clone(),
        meta,
    };
    unchanged(&target)?;
    Ok(target)
}

fn unchanged(t: &Target) -> Result<(), WriteError> {
    let now = fs::read(&t.real).map_err(|e| io_err(&t.real, "read", e))?;
    if now != t.original {
        return Err(WriteError::ChangedSinceRead {
            path: t.real.clone(),
        });
    }
    Ok(())
}

/// A synced temporary file in `target`'s directory holding `text`, with
/// `meta`'s mode and owner.
fn stage(
    target: &Path,
    text: &[u8],
    meta: &fs::Metadata,
) -> Result<tempfile::NamedTempFile, WriteError> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}.upkeep-"))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| io_err(dir, "create a temporary file in", e))?;
    let file = tmp.as_file_mut();
    file.write_all(text)
        .map_err(|e| io_err(target, "write a temporary copy of", e))?;
    keep_owner_and_mode(file, meta).map_err(|e| io_err(target, "copy the owner and mode of", e))?;
    file.sync_all()
        .map_err(|e| io_err(target, "sync a temporary copy of", e))?;
    Ok(tmp)
}

fn keep_owner_and_mode(file: &File, meta: &fs::Metadata) -> io::Result<()> {
    // The owner first: changing it may clear set-id bits that the mode restores.
    match std::os::unix::fs::fchown(file, Some(meta.uid()), Some(meta.gid())) {
        Ok(()) => {}
        // Not root: only our own files can be written anyway; a group we are
        // not in cannot be kept, and nginx reads config as root.
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
        Err(e) => return Err(e),
    }
    file.set_permissions(Permissions::from_mode(meta.mode() & 0o7777))
}

/// Puts every committed file (and its previous backup) back.
fn rollback(committed: &[&Target], cause: WriteError) -> WriteError {
    for t in committed.iter().rev() {
        if let Err(source) = replace_with(&t.real, &t.original, &t.meta) {
            return WriteError::RollbackFailed {
                path: t.real.clone(),
                backup: Some(t.backup.clone()),
                source,
                cause: Box::new(cause),
            };
        }
        let restored = match &t.previous_backup {
            Some(old) => replace_with(&t.backup, old, &t.meta),
            None => fs::remove_file(&t.backup),
        };
        if let Err(source) = restored {
            return WriteError::RollbackFailed {
                path: t.backup.clone(),
                backup: None,
                source,
                cause: Box::new(cause),
            };
        }
    }
    cause
}

/// Atomic replace where possible; in place when the directory refuses a
/// temporary file (the original must come back either way).
fn replace_with(path: &Path, text: &[u8], meta: &fs::Metadata) -> io::Result<()> {
    match stage(path, text, meta) {
        Ok(tmp) => tmp.persist(path).map(|_| ()).map_err(|e| e.error),
        Err(_) => fs::write(path, text),
    }
}

fn io_err(path: &Path, action: &'static str, source: io::Error) -> WriteError {
    WriteError::Io {
        path: path.to_path_buf(),
        action,
        source,
    }
}

/// `nginx -t` on the configuration whose main file is `main_conf`, in a
/// private prefix (a fresh temporary directory with `logs/`), with the error
/// log redirected there (`-e`), so that nothing of a running nginx is touched:
/// `nginx -t` never signals a master, and only opens its pid file without
/// writing it. Includes resolve as nginx resolves them, relative to the main
/// file's directory. `Err` carries nginx's own output.
pub fn nginx_test(binary: &upkeep_nginx::NginxBinary, main_conf: &Path) -> Result<(), String> {
    let prefix = upkeep_nginx::Prefix::new()
        .map_err(|e| format!("cannot create a private nginx prefix: {e}"))?;
    let conf = fs::canonicalize(main_conf).map_err(|e| format!("{}: {e}", main_conf.display()))?;
    match binary.test_config(&conf, prefix.path(), prefix.path()) {
        Ok(outcome) if outcome.ok => Ok(()),
        Ok(outcome) => Err(outcome.output),
        Err(e) => Err(format!("cannot run {}: {e}", binary.path.display())),
    }
}
