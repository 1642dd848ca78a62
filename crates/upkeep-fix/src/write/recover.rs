//! After a run that was killed (SIGKILL, power loss): what its journal says
//! and what each file now holds ([`pending`]), and finishing or undoing it
//! ([`recover`]). Files are judged by content (checksums in the journal), so
//! a file someone edited since is recognised and left alone.

use super::files::{self, FileMeta};
use super::journal::{self, Journal};
use super::{
    io_err, lock_all, parent, Committed, Entry, Tx, WriteError, WriteOptions, Written,
    BACKUP_SUFFIX, JOURNAL_NAME,
};
use std::fs;
use std::path::{Path, PathBuf};

/// What an interrupted run left.
#[derive(Clone, Debug)]
pub struct Pending {
    pub journal: PathBuf,
    /// The process that wrote it.
    pub pid: u32,
    pub files: Vec<PendingFile>,
}

#[derive(Clone, Debug)]
pub struct PendingFile {
    pub path: PathBuf,
    pub state: PendingState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PendingState {
    /// Still the old text.
    Old,
    /// The new text.
    New,
    /// An in-place rewrite was cut short.
    PartlyWritten,
    /// Neither: someone changed it since (it will be left alone).
    Changed,
    /// Missing or unreadable.
    Unreadable,
}

impl PendingState {
    pub fn describe(self) -> &'static str {
        match self {
            PendingState::Old => "still the old text",
            PendingState::New => "the new, unvalidated text",
            PendingState::PartlyWritten => "partly rewritten",
            PendingState::Changed => "changed by someone else since (will be left alone)",
            PendingState::Unreadable => "missing or unreadable",
        }
    }
}

/// Finishing or undoing an interrupted run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// Write the remaining files, validate, keep the backups.
    Finish,
    /// Put every file back as it was before the run.
    Undo,
}

/// The interrupted run whose journal is in `journal_dir`, if any. `Locked`
/// when a run is still going on there.
pub fn pending(journal_dir: &Path) -> Result<Option<Pending>, WriteError> {
    let path = journal_dir.join(JOURNAL_NAME);
    if fs::symlink_metadata(&path).is_err() {
        return Ok(None);
    }
    let (_locks, _) = lock_all(&[journal_dir.to_path_buf()])?;
    let text = journal::read(&path).map_err(|e| io_err(&path, "read the journal", e))?;
    let files = text
        .files
        .iter()
        .enumerate()
        .map(|(i, f)| PendingFile {
            path: f.real.clone(),
            state: state_of(&text, i).0,
        })
        .collect();
    Ok(Some(Pending {
        journal: path,
        pid: text.pid,
        files,
    }))
}

fn state_of(text: &journal::JournalText, i: usize) -> (PendingState, Option<(Vec<u8>, FileMeta)>) {
    let f = &text.files[i];
    let Ok((now, meta)) = files::read_regular(&f.real) else {
        return (PendingState::Unreadable, None);
    };
    let is = |len: u64, sum: u64| now.len() as u64 == len && files::checksum(&now) == sum;
    let state = if is(f.new_len, f.new_sum) {
        PendingState::New
    } else if is(f.original_len, f.original_sum) {
        PendingState::Old
    } else if text.in_place_begun.contains(&i) && !text.in_place_done.contains(&i) {
        PendingState::PartlyWritten
    } else {
        PendingState::Changed
    };
    (state, Some((now, meta)))
}

/// A copy listed in the journal, checked against its checksum.
fn read_copy(path: &Path, len: u64, sum: u64) -> Option<Vec<u8>> {
    let (text, _) = files::read_regular(path).ok()?;
    (text.len() as u64 == len && files::checksum(&text) == sum).then_some(text)
}

/// Finishes or undoes the interrupted run whose journal is in `journal_dir`.
/// `Finish` validates with `validate` and undoes everything if that fails.
pub fn recover(
    journal_dir: &Path,
    how: Recovery,
    opts: &WriteOptions<'_>,
    validate: &mut dyn FnMut() -> Result<(), String>,
) -> Result<Written, WriteError> {
    let journal_dir =
        fs::canonicalize(journal_dir).map_err(|e| io_err(journal_dir, "resolve", e))?;
    let path = journal_dir.join(JOURNAL_NAME);
    let text = journal::read(&path).map_err(|e| io_err(&path, "read the journal", e))?;
    let mut dirs: Vec<PathBuf> = text
        .files
        .iter()
        .map(|f| parent(&f.real).to_path_buf())
        .collect();
    dirs.push(journal_dir.clone());
    let (locks, mut notes) = lock_all(&dirs)?;
    let mut entries = Vec::new();
    for (i, f) in text.files.iter().enumerate() {
        let (state, current) = state_of(&text, i);
        let original = read_copy(&f.original_copy, f.original_len, f.original_sum);
        let new = read_copy(&f.new_copy, f.new_len, f.new_sum);
        let shown = f.real.clone();
        let (committed, meta, new) = match (state, current) {
            (PendingState::Old, Some((_, meta))) => (None, meta, new),
            (PendingState::New, Some((now, meta))) => {
                let how = if text.in_place_done.contains(&i) {
                    Committed::InPlace
                } else {
                    Committed::Renamed
                };
                (Some(how), meta, Some(now))
            }
            (PendingState::PartlyWritten, Some((_, meta))) => {
                (Some(Committed::PartlyInPlace), meta, new)
            }
            (PendingState::Changed, _) | (PendingState::Unreadable, _) | (_, None) => {
                // Left alone; its old text, if the copy survived, becomes
                // its backup so that nothing is lost.
                let backup = with_backup_suffix(&f.real);
                if original.is_some() && fs::rename(&f.original_copy, &backup).is_ok() {
                    notes.push(format!(
                        "{} is {}: left as it is; its text from before the interrupted run is in {}",
                        f.real.display(),
                        state.describe(),
                        backup.display()
                    ));
                } else {
                    notes.push(format!(
                        "{} is {}: left as it is",
                        f.real.display(),
                        state.describe()
                    ));
                }
                let _ = files::remove_if_present(&f.new_copy);
                let _ = files::remove_if_present(&f.original_copy);
                continue;
            }
        };
        let Some(original) = original else {
            return Err(WriteError::Refused {
                path: f.original_copy.clone(),
                reason: format!(
                    "the copy of the old text of {} is missing or damaged, so the run cannot be {}",
                    f.real.display(),
                    if how == Recovery::Undo {
                        "undone"
                    } else {
                        "finished"
                    }
                ),
            });
        };
        // Undo never needs the new text; finishing does.
        let new = match (how, new) {
            (_, Some(new)) => new,
            (Recovery::Undo, None) => Vec::new(),
            (Recovery::Finish, None) => {
                return Err(WriteError::Refused {
                    path: f.new_copy.clone(),
                    reason: format!(
                        "the copy of the new text of {} is missing or damaged, so the run cannot be finished",
                        f.real.display()
                    ),
                })
            }
        };
        let in_place = (meta.nlink > 1
            || committed == Some(Committed::PartlyInPlace)
            || committed == Some(Committed::InPlace))
        .then(|| "it was being rewritten in place".to_string());
        entries.push(Entry {
            shown,
            real: f.real.clone(),
            original: original.into(),
            new: new.into(),
            meta,
            backup: with_backup_suffix(&f.real),
            new_copy: f.new_copy.clone(),
            original_copy: f.original_copy.clone(),
            in_place,
            committed,
        });
    }
    let journal = Journal::reopen(&path).map_err(|e| io_err(&path, "open the journal", e))?;
    let mut tx = Tx {
        entries,
        journal: Some(journal),
        notes: Vec::new(),
        _locks: locks,
    };
    match how {
        // The cause handed to `rollback` only comes back when every file
        // was put back.
        Recovery::Undo => match tx.rollback(WriteError::Interrupted { signal: 0 }) {
            WriteError::Interrupted { signal: 0 } => {}
            WriteError::LeftAsChanged { files, .. } => {
                for (file, backup) in files {
                    notes.push(format!(
                        "{} was changed by someone else: left as it is; its old text is in {}",
                        file.display(),
                        backup.display()
                    ));
                }
            }
            other => return Err(other),
        },
        Recovery::Finish => {
            for e in &mut tx.entries {
                if e.committed == Some(Committed::PartlyInPlace) {
                    files::write_in_place(&e.real, &e.new)
                        .map_err(|err| io_err(&e.real, "rewrite in place", err))?;
                    e.committed = Some(Committed::InPlace);
                }
            }
            if let Err(e) = tx.commit(opts.interrupted) {
                return Err(tx.rollback(e));
            }
            tx.validate(opts.interrupted, validate)?;
            let mut written = tx.finish();
            notes.append(&mut written.notes);
            written.notes = notes;
            return Ok(written);
        }
    }
    let mut written = Written {
        notes,
        ..Written::default()
    };
    for e in &tx.entries {
        written.files.push(e.real.clone());
        written.shown.push(e.shown.clone());
        written.backups.push(None);
    }
    Ok(written)
}

fn with_backup_suffix(p: &Path) -> PathBuf {
    super::with_suffix(p, BACKUP_SUFFIX)
}

/// Temporary copies (`.NAME.upkeep-….tmp`) next to `config_files` that no
/// journal names: left by a run killed before this version kept journals,
/// or by hand. They never affect nginx (its globs skip dot files).
pub fn stray_copies(config_files: &[PathBuf], pending: Option<&Pending>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = config_files
        .iter()
        .filter_map(|f| fs::canonicalize(f).ok())
        .map(|r| parent(&r).to_path_buf())
        .collect();
    dirs.sort();
    dirs.dedup();
    let listed: Vec<PathBuf> = pending
        .and_then(|p| journal::read(&p.journal).ok())
        .map(|t| {
            t.files
                .iter()
                .flat_map(|f| [f.new_copy.clone(), f.original_copy.clone()])
                .collect()
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    for dir in dirs {
        let Ok(read) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in read.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.contains(".upkeep-") && name.ends_with(".tmp") {
                let path = dir.join(&*name);
                if !listed.contains(&path) {
                    out.push(path);
                }
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    //! A SIGKILL leaves exactly what a dropped transaction leaves: the
    //! journal, the copies, some files committed and the rest not (the
    //! kernel releases the locks). These tests stop a transaction after each
    //! possible number of committed files and recover from there.

    use super::*;
    use crate::write::{begin, PlannedWrite};

    const FILES: [(&str, &str, &str); 3] = [
        ("nginx.conf", "main old\n", "main new\n"),
        ("conf.d/a.conf", "a old\n", "a new\n"),
        ("conf.d/b.conf", "b old\n", "b new longer\n"),
    ];

    fn setup(dir: &Path) -> Vec<PlannedWrite> {
        fs::create_dir_all(dir.join("conf.d")).unwrap();
        FILES
            .iter()
            .map(|(name, old, new)| {
                fs::write(dir.join(name), old).unwrap();
                PlannedWrite {
                    path: dir.join(name),
                    original: old.as_bytes().to_vec().into(),
                    new: new.as_bytes().to_vec().into(),
                }
            })
            .collect()
    }

    /// Every name in the tree other than the config files and their backups.
    fn leftovers(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        for sub in [dir.to_path_buf(), dir.join("conf.d")] {
            for e in fs::read_dir(&sub).unwrap() {
                let name = e.unwrap().file_name().to_string_lossy().into_owned();
                let known = FILES.iter().any(|(f, _, _)| {
                    f.ends_with(&name) || f.ends_with(name.trim_end_matches(BACKUP_SUFFIX))
                });
                if !known && name != "conf.d" {
                    out.push(name);
                }
            }
        }
        out
    }

    fn text(dir: &Path, name: &str) -> String {
        fs::read_to_string(dir.join(name)).unwrap()
    }

    #[test]
    fn killed_mid_commit_is_reported_then_finished_or_undone() {
        for how in [Recovery::Undo, Recovery::Finish] {
            for killed_after in 0..=FILES.len() {
                let tmp = tempfile::tempdir().unwrap();
                let dir = tmp.path();
                let plan = setup(dir);
                let opts = WriteOptions {
                    journal_dir: Some(dir),
                    ..WriteOptions::default()
                };
                let mut tx = begin(&plan, &opts).unwrap();
                tx.commit_first(killed_after, &|| None).unwrap();
                drop(tx);

                // Every file is old or new, and the journal says which.
                let found = pending(dir).unwrap().expect("a journal is left");
                assert_eq!(found.pid, std::process::id());
                for (i, (name, old, new)) in FILES.iter().enumerate() {
                    let expected = if i < killed_after { new } else { old };
                    assert_eq!(&text(dir, name), expected, "{name} after {killed_after}");
                    let state = found.files[i].state;
                    let want = if i < killed_after {
                        PendingState::New
                    } else {
                        PendingState::Old
                    };
                    assert_eq!(state, want, "{name} after {killed_after}");
                }
                // A new run is refused while the journal is there.
                let again = crate::write::write_files_with(&plan, &opts, &mut || Ok(()));
                assert!(
                    matches!(again, Err(WriteError::Pending { .. })),
                    "{again:?}"
                );

                let written = recover(dir, how, &opts, &mut || Ok(())).unwrap();
                assert_eq!(written.files.len(), FILES.len());
                for (name, old, new) in FILES {
                    let bak = dir.join(format!("{name}{BACKUP_SUFFIX}"));
                    match how {
                        Recovery::Undo => {
                            assert_eq!(text(dir, name), old, "{name} after {killed_after}");
                            assert!(!bak.exists());
                        }
                        Recovery::Finish => {
                            assert_eq!(text(dir, name), new, "{name} after {killed_after}");
                            assert_eq!(fs::read_to_string(&bak).unwrap(), old);
                        }
                    }
                }
                assert!(leftovers(dir).is_empty(), "{:?}", leftovers(dir));
                assert!(pending(dir).unwrap().is_none());
            }
        }
    }

    #[test]
    fn finish_validates_and_undoes_everything_when_validation_fails() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let plan = setup(dir);
        let opts = WriteOptions {
            journal_dir: Some(dir),
            ..WriteOptions::default()
        };
        let mut tx = begin(&plan, &opts).unwrap();
        tx.commit_first(1, &|| None).unwrap();
        drop(tx);
        let err = recover(dir, Recovery::Finish, &opts, &mut || {
            Err("nginx: [emerg] no".into())
        })
        .unwrap_err();
        assert!(matches!(err, WriteError::ValidationFailed { .. }), "{err}");
        for (name, old, _) in FILES {
            assert_eq!(text(dir, name), old);
        }
        assert!(leftovers(dir).is_empty(), "{:?}", leftovers(dir));
    }

    #[test]
    fn undo_leaves_a_file_changed_since_the_kill_and_keeps_its_old_text() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let plan = setup(dir);
        let opts = WriteOptions {
            journal_dir: Some(dir),
            ..WriteOptions::default()
        };
        let mut tx = begin(&plan, &opts).unwrap();
        tx.commit_first(2, &|| None).unwrap();
        drop(tx);
        fs::write(dir.join("conf.d/a.conf"), "edited by hand\n").unwrap();
        let found = pending(dir).unwrap().unwrap();
        assert_eq!(found.files[1].state, PendingState::Changed);
        let written = recover(dir, Recovery::Undo, &opts, &mut || Ok(())).unwrap();
        assert_eq!(text(dir, "conf.d/a.conf"), "edited by hand\n");
        assert_eq!(text(dir, "conf.d/a.conf.upkeep.bak"), "a old\n");
        assert_eq!(text(dir, "nginx.conf"), "main old\n");
        assert_eq!(text(dir, "conf.d/b.conf"), "b old\n");
        assert!(
            written
                .notes
                .iter()
                .any(|n| n.contains("a.conf") && n.contains("left as it is")),
            "{:?}",
            written.notes
        );
        assert!(leftovers(dir).is_empty(), "{:?}", leftovers(dir));
    }

    #[test]
    fn in_place_rewrite_cut_short_is_recognised_and_undone() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let plan = setup(dir);
        // A second link makes nginx.conf a file that is rewritten in place.
        fs::hard_link(dir.join("nginx.conf"), dir.join("linked")).unwrap();
        let opts = WriteOptions {
            journal_dir: Some(dir),
            ..WriteOptions::default()
        };
        let mut tx = begin(&plan, &opts).unwrap();
        assert!(tx.entries[0].in_place.is_some());
        // Killed in the middle of the rewrite: the journal says it began,
        // the file holds half of the new text.
        tx.journal.as_mut().unwrap().in_place(0, false).unwrap();
        fs::OpenOptions::new()
            .write(true)
            .open(dir.join("nginx.conf"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"main ne"))
            .unwrap();
        drop(tx);
        assert_eq!(
            pending(dir).unwrap().unwrap().files[0].state,
            PendingState::PartlyWritten
        );
        recover(dir, Recovery::Undo, &opts, &mut || Ok(())).unwrap();
        assert_eq!(text(dir, "nginx.conf"), "main old\n");
        let (a, b) = (
            fs::metadata(dir.join("nginx.conf")).unwrap(),
            fs::metadata(dir.join("linked")).unwrap(),
        );
        assert_eq!(a.ino(), b.ino(), "the hard link is kept");
        fs::remove_file(dir.join("linked")).unwrap();
        assert!(leftovers(dir).is_empty(), "{:?}", leftovers(dir));
    }
}
