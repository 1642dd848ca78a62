//! `upkeep fix --write`: replacing config files without ever leaving a
//! half-written or unvalidated config behind, and without trusting anything
//! else found in the config's directories.
//!
//! All files of one run form a transaction:
//! 1. an advisory lock (`flock`) is taken on every directory involved, so a
//!    second `fix --write` on the same tree is refused, not interleaved;
//! 2. every file is re-read (a regular file only, never through a final
//!    symlink) and compared with the text the fixes were computed from; any
//!    difference refuses the whole run. A file reached by two paths is one
//!    file (device and inode);
//! 3. a journal naming every file and every copy is written and synced in
//!    the main config's directory ([`JOURNAL_NAME`]);
//! 4. the new text and a copy of the old one are written to new files next
//!    to each file (`O_EXCL`: never through a planted link), with the file's
//!    mode, owner and group, and synced;
//! 5. the copies of the new text are renamed over the files (atomic per
//!    file). A file that a rename cannot replace without losing something
//!    (hard links, an owner or group we cannot give a new file) or at all (a
//!    single file bind-mounted into a container: EBUSY/EXDEV) is rewritten
//!    in place instead: written, synced and read back, journaled;
//! 6. the caller's validation runs (`nginx -t` on the result);
//! 7. only then does each copy of the old text become `FILE.upkeep.bak`,
//!    replacing whatever had that name without reading or following it. On
//!    any failure or signal before, every file that still holds exactly what
//!    was written gets its old text back; a file someone else changed in the
//!    meantime is left as it is, its old text kept as `FILE.upkeep.bak`, and
//!    the error says so. An earlier backup is never touched by a run that
//!    does not succeed.
//!
//! A run killed at any point leaves its journal: [`pending`] describes it and
//! [`recover`] finishes or undoes it.
//!
//! A symlinked config file (Debian's sites-enabled) is written through: the
//! file it points to is replaced, the link stays a link, and the backup sits
//! next to the real file.

mod files;
mod journal;
mod nginx_t;
mod recover;

use files::{FileMeta, Ownership};
use journal::{Journal, JournalFile};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use upkeep_syntax::SharedText;

pub use journal::JOURNAL_NAME;
pub use nginx_t::{nginx_test, nginx_test_until, NginxTestError};
pub use recover::{pending, recover, stray_copies, Pending, PendingFile, PendingState, Recovery};

/// Suffix of the backup kept next to each written file.
pub const BACKUP_SUFFIX: &str = ".upkeep.bak";

/// One file to replace. The texts are shared with the fix run that made
/// them, not copied: a configuration can be hundreds of megabytes.
#[derive(Clone, Debug)]
pub struct PlannedWrite {
    pub path: PathBuf,
    /// The text the fixes were computed from (what was read).
    pub original: SharedText,
    pub new: SharedText,
}

/// What was written.
#[derive(Clone, Debug, Default)]
pub struct Written {
    /// The files replaced (after following symlinks), one per file even when
    /// the plan reached a file by two paths.
    pub files: Vec<PathBuf>,
    /// For each file, the path it was planned under (the first, if several).
    pub shown: Vec<PathBuf>,
    /// For each file, its backup (the old text), if it could be made.
    pub backups: Vec<Option<PathBuf>>,
    /// What the user should know: files written in place and why, owners or
    /// groups that could not be kept, a path that named a file already
    /// written, a backup that could not be made.
    pub notes: Vec<String>,
}

#[derive(Debug)]
pub enum WriteError {
    /// The file on disk is not the text that was read; nothing was written.
    ChangedSinceRead { path: PathBuf },
    /// A file cannot be written safely (not a regular file, one file reached
    /// by two paths with different fixes, …); nothing was written.
    Refused { path: PathBuf, reason: String },
    /// Another `upkeep fix --write` holds the lock; nothing was written.
    Locked { dir: PathBuf },
    /// An earlier run was interrupted and left its journal; nothing was
    /// written.
    Pending { journal: PathBuf },
    /// A signal arrived; every file was put back.
    Interrupted { signal: i32 },
    /// An I/O step failed; nothing was changed (or everything was put back).
    Io {
        path: PathBuf,
        action: &'static str,
        source: io::Error,
    },
    /// The written config failed validation; every file was put back.
    ValidationFailed { output: String },
    /// Putting a file back failed: the file may hold the new text. `backup`
    /// (if named) holds the original, and the journal stays for `recover`.
    RollbackFailed {
        path: PathBuf,
        backup: Option<PathBuf>,
        source: io::Error,
        cause: Box<WriteError>,
    },
    /// `cause`, and every file was put back except these (file, backup):
    /// someone else changed them after they were written, so they were left
    /// as they are, their original text kept in the backup.
    LeftAsChanged {
        files: Vec<(PathBuf, PathBuf)>,
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
            WriteError::Refused { path, reason } => {
                write!(f, "{}: {reason}; nothing was written", path.display())
            }
            WriteError::Locked { dir } => write!(
                f,
                "another `upkeep fix --write` is writing in {}; nothing was written (run it again when that one has finished)",
                dir.display()
            ),
            WriteError::Pending { journal } => write!(
                f,
                "an earlier `upkeep fix --write` was interrupted and left {}; nothing was written \
                 (`upkeep fix --recover finish` completes it, `upkeep fix --recover undo` puts the old files back)",
                journal.display()
            ),
            WriteError::Interrupted { signal } => write!(
                f,
                "interrupted by {}; every file was restored",
                signal_name(*signal)
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
                write!(f, "; `upkeep fix --recover undo` tries again")
            }
            WriteError::LeftAsChanged { files, cause } => {
                write!(f, "{cause}")?;
                for (file, backup) in files {
                    write!(
                        f,
                        "\nexcept {}: it was changed by someone else after upkeep wrote it, so it was left as it is; \
                         its text from before upkeep is in {}",
                        file.display(),
                        backup.display()
                    )?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for WriteError {}

/// "SIGINT" for 2, and so on for the signals that stop a run.
pub fn signal_name(signal: i32) -> String {
    match signal {
        libc::SIGINT => "SIGINT".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGHUP => "SIGHUP".into(),
        libc::SIGQUIT => "SIGQUIT".into(),
        n => format!("signal {n}"),
    }
}

/// How a transaction is run.
pub struct WriteOptions<'a> {
    /// Where the journal goes: the main config's directory. Default: the
    /// directory of the first file.
    pub journal_dir: Option<&'a Path>,
    /// A signal that should stop the run (checked between steps and while
    /// validating); `None` while there is none.
    pub interrupted: &'a dyn Fn() -> Option<i32>,
}

fn never() -> Option<i32> {
    None
}

impl Default for WriteOptions<'_> {
    fn default() -> Self {
        WriteOptions {
            journal_dir: None,
            interrupted: &never,
        }
    }
}

/// Writes every planned file as one transaction, then runs `validate` on the
/// result; see the module documentation.
pub fn write_files(
    plan: &[PlannedWrite],
    validate: &mut dyn FnMut() -> Result<(), String>,
) -> Result<Written, WriteError> {
    write_files_with(plan, &WriteOptions::default(), validate)
}

/// [`write_files`] with a journal directory and a signal check.
pub fn write_files_with(
    plan: &[PlannedWrite],
    opts: &WriteOptions<'_>,
    validate: &mut dyn FnMut() -> Result<(), String>,
) -> Result<Written, WriteError> {
    if plan.is_empty() {
        return Ok(Written::default());
    }
    let mut tx = begin(plan, opts)?;
    if let Err(e) = tx.commit(opts.interrupted) {
        return Err(tx.rollback(e));
    }
    tx.validate(opts.interrupted, validate)?;
    Ok(tx.finish())
}

/// Locks, inspects and stages: everything before the first file changes.
fn begin(plan: &[PlannedWrite], opts: &WriteOptions<'_>) -> Result<Tx, WriteError> {
    let mut reals = Vec::with_capacity(plan.len());
    for p in plan {
        reals.push(fs::canonicalize(&p.path).map_err(|e| io_err(&p.path, "resolve", e))?);
    }
    let journal_dir = match opts.journal_dir {
        Some(d) => fs::canonicalize(d).map_err(|e| io_err(d, "resolve", e))?,
        None => parent(&reals[0]).to_path_buf(),
    };
    let mut dirs: Vec<PathBuf> = reals.iter().map(|r| parent(r).to_path_buf()).collect();
    dirs.push(journal_dir.clone());
    let (locks, mut notes) = lock_all(&dirs)?;
    let journal_path = journal_dir.join(JOURNAL_NAME);
    if fs::symlink_metadata(&journal_path).is_ok() {
        return Err(WriteError::Pending {
            journal: journal_path,
        });
    }
    let (entries, aliases) = inspect(plan, &reals)?;
    notes.extend(aliases);
    let mut tx = Tx {
        entries,
        journal: None,
        notes,
        _locks: locks,
    };
    tx.stage(&journal_path)?;
    Ok(tx)
}

fn parent(p: &Path) -> &Path {
    p.parent().unwrap_or(Path::new("/"))
}

/// Locks every directory once (by device and inode), in a fixed order so
/// that two runs cannot each hold a part.
fn lock_all(dirs: &[PathBuf]) -> Result<(Vec<files::DirLock>, Vec<String>), WriteError> {
    let mut unique: Vec<(u64, u64, &PathBuf)> = Vec::new();
    for d in dirs {
        let meta = fs::metadata(d).map_err(|e| io_err(d, "read the metadata of", e))?;
        let m = FileMeta::of(&meta);
        if !unique
            .iter()
            .any(|(dev, ino, _)| (*dev, *ino) == (m.dev, m.ino))
        {
            unique.push((m.dev, m.ino, d));
        }
    }
    unique.sort();
    let mut locks = Vec::new();
    let mut notes = Vec::new();
    for (_, _, d) in unique {
        match files::lock_dir(d).map_err(|e| io_err(d, "open the directory", e))? {
            files::LockOutcome::Locked(l) => locks.push(l),
            files::LockOutcome::Busy => return Err(WriteError::Locked { dir: d.clone() }),
            files::LockOutcome::Unsupported(e) => notes.push(format!(
                "cannot lock {} ({e}): a concurrent `upkeep fix --write` there would not be noticed",
                d.display()
            )),
        }
    }
    Ok((locks, notes))
}

/// One file of a transaction.
struct Entry {
    /// The path the file was planned under.
    shown: PathBuf,
    real: PathBuf,
    original: SharedText,
    new: SharedText,
    meta: FileMeta,
    backup: PathBuf,
    new_copy: PathBuf,
    original_copy: PathBuf,
    /// Why the file is rewritten in place rather than replaced by a rename.
    in_place: Option<String>,
    committed: Option<Committed>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Committed {
    /// The copy of the new text was renamed over the file.
    Renamed,
    /// Rewritten in place, read back and found complete.
    InPlace,
    /// An in-place rewrite began and did not complete: the file holds an
    /// unknown mix, which only this run can have made.
    PartlyInPlace,
}

struct Tx {
    entries: Vec<Entry>,
    journal: Option<Journal>,
    notes: Vec<String>,
    _locks: Vec<files::DirLock>,
}

/// Reads every planned file and checks that it can be written safely. A
/// file planned under two paths is written once; returns the notes saying so.
fn inspect(
    plan: &[PlannedWrite],
    reals: &[PathBuf],
) -> Result<(Vec<Entry>, Vec<String>), WriteError> {
    let token = format!(
        "{}-{:x}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default()
    );
    let mut entries: Vec<Entry> = Vec::with_capacity(plan.len());
    let mut notes = Vec::new();
    for (p, real) in plan.iter().zip(reals) {
        let (now, meta) = files::read_regular(real).map_err(|e| WriteError::Refused {
            path: real.clone(),
            reason: format!("cannot be written safely: {e}"),
        })?;
        if now != *p.original {
            return Err(WriteError::ChangedSinceRead { path: real.clone() });
        }
        if let Some(first) = entries.iter().find(|e| e.meta.same_file(&meta)) {
            if first.new != p.new {
                return Err(WriteError::Refused {
                    path: p.path.clone(),
                    reason: format!(
                        "is the same file as {} (one file reached by two paths), and the fixes made through \
                         the two paths differ",
                        first.shown.display()
                    ),
                });
            }
            notes.push(format!(
                "{} is the same file as {}: written once",
                p.path.display(),
                first.shown.display()
            ));
            continue;
        }
        let backup = with_suffix(real, BACKUP_SUFFIX);
        if fs::symlink_metadata(&backup).is_ok_and(|m| m.is_dir()) {
            return Err(WriteError::Refused {
                path: backup,
                reason: "is a directory, so the backup cannot take its name".into(),
            });
        }
        let name = real
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let copy = |kind: &str| parent(real).join(format!(".{name}.upkeep-{token}.{kind}.tmp"));
        let in_place = (meta.nlink > 1).then(|| {
            format!(
                "it has {} hard links, which a rename would break",
                meta.nlink
            )
        });
        entries.push(Entry {
            shown: p.path.clone(),
            real: real.clone(),
            original: SharedText::clone(&p.original),
            new: SharedText::clone(&p.new),
            meta,
            backup,
            new_copy: copy("new"),
            original_copy: copy("orig"),
            in_place,
            committed: None,
        });
    }
    Ok((entries, notes))
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

impl Tx {
    /// Journal first, then the copies of the new and the old text. A
    /// failure removes what was made; nothing else has changed.
    fn stage(&mut self, journal_path: &Path) -> Result<(), WriteError> {
        let list: Vec<JournalFile> = self.entries.iter().map(journal_file).collect();
        let journal = Journal::create(journal_path, &list)
            .map_err(|e| io_err(journal_path, "create the journal", e))?;
        self.journal = Some(journal);
        let staged = (|| {
            for e in &mut self.entries {
                let ownership = files::create_new(&e.new_copy, &e.new, &e.meta)
                    .map_err(|err| io_err(&e.real, "write a copy of the new text of", err))?;
                files::create_new(&e.original_copy, &e.original, &e.meta)
                    .map_err(|err| io_err(&e.real, "write a copy of the old text of", err))?;
                if ownership == Ownership::NotKept && e.in_place.is_none() {
                    if files::writable_in_place(&e.real) {
                        e.in_place = Some(format!(
                            "a new file could not get its owner and group ({}:{})",
                            e.meta.uid, e.meta.gid
                        ));
                    } else {
                        let now = fs::symlink_metadata(&e.new_copy)
                            .map(|m| FileMeta::of(&m))
                            .map_err(|err| io_err(&e.new_copy, "read the metadata of", err))?;
                        self.notes.push(format!(
                            "warning: {}: its owner and group change from {}:{} to {}:{} (only root can keep them, \
                             and the file itself is not writable to rewrite it in place)",
                            e.shown.display(),
                            e.meta.uid,
                            e.meta.gid,
                            now.uid,
                            now.gid
                        ));
                    }
                }
            }
            Ok(())
        })();
        if let Err(err) = staged {
            self.discard_copies();
            if let Some(j) = self.journal.take() {
                let _ = j.remove();
            }
            return Err(err);
        }
        for dir in self.dirs() {
            files::sync_dir(&dir);
        }
        Ok(())
    }

    fn dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self
            .entries
            .iter()
            .map(|e| parent(&e.real).to_path_buf())
            .collect();
        dirs.sort();
        dirs.dedup();
        dirs
    }

    fn discard_copies(&self) {
        for e in &self.entries {
            let _ = files::remove_if_present(&e.new_copy);
            let _ = files::remove_if_present(&e.original_copy);
        }
    }

    /// Puts the new text in place, file by file, each still as read.
    fn commit(&mut self, interrupted: &dyn Fn() -> Option<i32>) -> Result<(), WriteError> {
        self.commit_first(self.entries.len(), interrupted)
    }

    /// [`Tx::commit`] of the first `count` files only (the tests stop there
    /// to leave what a kill at that point leaves).
    fn commit_first(
        &mut self,
        count: usize,
        interrupted: &dyn Fn() -> Option<i32>,
    ) -> Result<(), WriteError> {
        for i in 0..count.min(self.entries.len()) {
            if let Some(signal) = interrupted() {
                return Err(WriteError::Interrupted { signal });
            }
            let e = &self.entries[i];
            if e.committed.is_some() {
                continue;
            }
            let (now, meta) =
                files::read_regular(&e.real).map_err(|err| io_err(&e.real, "read", err))?;
            if now != *e.original || !meta.same_file(&e.meta) {
                return Err(WriteError::ChangedSinceRead {
                    path: e.real.clone(),
                });
            }
            let mut rename_error = None;
            if e.in_place.is_none() {
                match fs::rename(&e.new_copy, &e.real) {
                    Ok(()) => {
                        self.entries[i].committed = Some(Committed::Renamed);
                        continue;
                    }
                    Err(err) if files::is_mount_point_error(&err) => {
                        self.entries[i].in_place = Some(format!(
                            "a rename cannot replace it ({err}): it is a mount point, as a single file \
                             bind-mounted into a container is"
                        ));
                        rename_error = Some(err);
                    }
                    Err(err) => return Err(io_err(&e.real, "replace", err)),
                }
            }
            self.commit_in_place(i, rename_error)?;
        }
        for dir in self.dirs() {
            files::sync_dir(&dir);
        }
        Ok(())
    }

    fn commit_in_place(
        &mut self,
        i: usize,
        rename_error: Option<io::Error>,
    ) -> Result<(), WriteError> {
        let journal = self.journal.as_mut().expect("staged");
        let e = &mut self.entries[i];
        let file = files::open_for_rewrite(&e.real).map_err(|err| match rename_error {
            Some(rename) => io_err(
                &e.real,
                "replace",
                io::Error::new(
                    err.kind(),
                    format!("{rename}; rewriting it in place instead: {err}"),
                ),
            ),
            None => io_err(&e.real, "rewrite in place", err),
        })?;
        journal
            .in_place(i, false)
            .map_err(|err| io_err(&journal.path, "write the journal", err))?;
        e.committed = Some(Committed::PartlyInPlace);
        files::rewrite(file, &e.real, &e.new)
            .map_err(|err| io_err(&e.real, "rewrite in place", err))?;
        e.committed = Some(Committed::InPlace);
        journal
            .in_place(i, true)
            .map_err(|err| io_err(&journal.path, "write the journal", err))?;
        Ok(())
    }

    /// Runs `validate`; on failure or a signal, rolls back.
    fn validate(
        &mut self,
        interrupted: &dyn Fn() -> Option<i32>,
        validate: &mut dyn FnMut() -> Result<(), String>,
    ) -> Result<(), WriteError> {
        let cause = match (interrupted(), validate()) {
            (Some(signal), _) => WriteError::Interrupted { signal },
            (None, Err(output)) => match interrupted() {
                Some(signal) => WriteError::Interrupted { signal },
                None => WriteError::ValidationFailed { output },
            },
            (None, Ok(())) => match interrupted() {
                Some(signal) => WriteError::Interrupted { signal },
                None => return Ok(()),
            },
        };
        Err(self.rollback(cause))
    }

    /// Puts back every file that still holds what this run wrote; leaves a
    /// file someone else changed since, keeping its old text as its backup.
    fn rollback(&mut self, cause: WriteError) -> WriteError {
        let mut left = Vec::new();
        for i in (0..self.entries.len()).rev() {
            let e = &self.entries[i];
            let Some(committed) = e.committed else {
                let _ = files::remove_if_present(&e.new_copy);
                let _ = files::remove_if_present(&e.original_copy);
                continue;
            };
            let ours = committed == Committed::PartlyInPlace
                || files::read_regular(&e.real).is_ok_and(|(now, _)| now == *e.new);
            let restored = if ours {
                restore(e, committed)
            } else {
                fs::rename(&e.original_copy, &e.backup)
                    .map(|()| left.push((e.shown.clone(), e.backup.clone())))
            };
            if let Err(source) = restored {
                // The journal stays: `recover` can try again.
                self.journal = None;
                return WriteError::RollbackFailed {
                    path: e.real.clone(),
                    backup: Some(e.original_copy.clone()),
                    source,
                    cause: Box::new(cause),
                };
            }
            let _ = files::remove_if_present(&e.new_copy);
            self.entries[i].committed = None;
        }
        for dir in self.dirs() {
            files::sync_dir(&dir);
        }
        if let Some(j) = self.journal.take() {
            let _ = j.remove();
        }
        if left.is_empty() {
            cause
        } else {
            left.reverse();
            WriteError::LeftAsChanged {
                files: left,
                cause: Box::new(cause),
            }
        }
    }

    /// The copies of the old text become the backups; the journal goes.
    fn finish(mut self) -> Written {
        let mut written = Written {
            notes: std::mem::take(&mut self.notes),
            ..Written::default()
        };
        for e in &self.entries {
            if let Some(why) = &e.in_place {
                written.notes.push(format!(
                    "{} was rewritten in place (written, synced and read back) because {why}",
                    e.shown.display()
                ));
            }
            let backup = match fs::rename(&e.original_copy, &e.backup) {
                Ok(()) => Some(e.backup.clone()),
                Err(err) => {
                    written.notes.push(format!(
                        "warning: the old text of {} could not become {} ({err}); it is in {}",
                        e.shown.display(),
                        e.backup.display(),
                        e.original_copy.display()
                    ));
                    None
                }
            };
            let _ = files::remove_if_present(&e.new_copy);
            written.files.push(e.real.clone());
            written.shown.push(e.shown.clone());
            written.backups.push(backup);
        }
        for dir in self.dirs() {
            files::sync_dir(&dir);
        }
        if let Some(j) = self.journal.take() {
            if let Err(err) = j.remove() {
                written
                    .notes
                    .push(format!("warning: cannot remove the journal: {err}"));
            }
        }
        written
    }
}

/// Puts the old text of a committed file back.
fn restore(e: &Entry, committed: Committed) -> io::Result<()> {
    if committed == Committed::Renamed {
        match fs::rename(&e.original_copy, &e.real) {
            Ok(()) => return Ok(()),
            Err(err) if files::is_mount_point_error(&err) => {}
            Err(err) => return Err(err),
        }
    }
    files::write_in_place(&e.real, &e.original)?;
    files::remove_if_present(&e.original_copy)
}

fn journal_file(e: &Entry) -> JournalFile {
    JournalFile {
        real: e.real.clone(),
        new_copy: e.new_copy.clone(),
        original_copy: e.original_copy.clone(),
        original_len: e.original.len() as u64,
        original_sum: files::checksum(&e.original),
        new_len: e.new.len() as u64,
        new_sum: files::checksum(&e.new),
    }
}

fn io_err(path: &Path, action: &'static str, source: io::Error) -> WriteError {
    WriteError::Io {
        path: path.to_path_buf(),
        action,
        source,
    }
}
