//! The journal of a `--write` transaction: which files it replaces, where
//! the copies of their original and new text are, and checksums to tell
//! which of the two a file holds after a crash. It is written (and synced)
//! before the first temporary file is created and removed after the last
//! step, so a run killed at any point leaves a journal that names every
//! file it may have touched.
//!
//! A text file in the main config's directory, one record a line; paths are
//! hex-encoded bytes so that any file name survives.

use super::files;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The journal's name, in the main config's directory. A dot file, like the
/// temporary files: nginx's `include` globs do not match a leading dot
/// unless the pattern starts with one.
pub const JOURNAL_NAME: &str = ".upkeep-fix.journal";
const HEADER: &str = "upkeep-fix-journal 1";

/// One file of the transaction, as journaled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct JournalFile {
    pub real: PathBuf,
    pub new_copy: PathBuf,
    pub original_copy: PathBuf,
    pub original_len: u64,
    pub original_sum: u64,
    pub new_len: u64,
    pub new_sum: u64,
}

/// A parsed journal.
#[derive(Clone, Debug, Default)]
pub(crate) struct JournalText {
    pub pid: u32,
    pub files: Vec<JournalFile>,
    /// Files whose in-place rewrite began (index into `files`)…
    pub in_place_begun: Vec<usize>,
    /// …and ended.
    pub in_place_done: Vec<usize>,
}

/// The journal of a running transaction.
pub(crate) struct Journal {
    pub path: PathBuf,
    file: File,
}

impl Journal {
    /// Creates the journal (refusing an existing file or a planted link),
    /// writes the header and the files, and syncs it and its directory.
    pub fn create(path: &Path, list: &[JournalFile]) -> io::Result<Journal> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)?;
        let mut text = format!("{HEADER}\npid {}\n", std::process::id());
        for f in list {
            text.push_str(&format!(
                "file {} {} {} {} {:016x} {} {:016x}\n",
                hex(f.real.as_os_str().as_bytes()),
                hex(f.new_copy.as_os_str().as_bytes()),
                hex(f.original_copy.as_os_str().as_bytes()),
                f.original_len,
                f.original_sum,
                f.new_len,
                f.new_sum
            ));
        }
        let written = file
            .write_all(text.as_bytes())
            .and_then(|_| file.sync_all());
        if let Err(e) = written {
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
        if let Some(dir) = path.parent() {
            files::sync_dir(dir);
        }
        Ok(Journal {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Takes over the journal of an interrupted run (for recovery).
    pub fn reopen(path: &Path) -> io::Result<Journal> {
        let file = OpenOptions::new()
            .append(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)?;
        if !file.metadata()?.is_file() {
            return Err(io::Error::other("it is not a regular file"));
        }
        Ok(Journal {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Records (durably) that file `index` is about to be rewritten in place,
    /// or that its rewrite ended.
    pub fn in_place(&mut self, index: usize, done: bool) -> io::Result<()> {
        let what = if done {
            "in-place-done"
        } else {
            "in-place-begin"
        };
        self.file
            .write_all(format!("{what} {index}\n").as_bytes())?;
        self.file.sync_data()
    }

    /// The transaction is over: the journal goes.
    pub fn remove(self) -> io::Result<()> {
        drop(self.file);
        files::remove_if_present(&self.path)?;
        if let Some(dir) = self.path.parent() {
            files::sync_dir(dir);
        }
        Ok(())
    }
}

/// Reads the journal at `path` (a regular file, never through a link).
pub(crate) fn read(path: &Path) -> io::Result<JournalText> {
    let (bytes, _) = files::read_regular(path)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not a journal (not UTF-8)"))?;
    parse(&text).map_err(|(line, why)| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}:{line}: {why}", path.display()),
        )
    })
}

fn parse(text: &str) -> Result<JournalText, (usize, String)> {
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, HEADER)) => {}
        _ => {
            return Err((
                1,
                format!("not a journal (the first line is not `{HEADER}`)"),
            ))
        }
    }
    let mut out = JournalText::default();
    for (i, line) in lines {
        let n = i + 1;
        let bad = |what: &str| (n, format!("unreadable {what} record"));
        let fields: Vec<&str> = line.split(' ').collect();
        match fields.as_slice() {
            ["pid", pid] => out.pid = pid.parse().map_err(|_| bad("pid"))?,
            ["file", real, new_copy, original_copy, olen, osum, nlen, nsum] => {
                let path =
                    |h: &str| unhex(h).map(|b| PathBuf::from(std::ffi::OsString::from_vec(b)));
                let num = |s: &str| s.parse::<u64>().ok();
                let sum = |s: &str| u64::from_str_radix(s, 16).ok();
                out.files.push(JournalFile {
                    real: path(real).ok_or_else(|| bad("file"))?,
                    new_copy: path(new_copy).ok_or_else(|| bad("file"))?,
                    original_copy: path(original_copy).ok_or_else(|| bad("file"))?,
                    original_len: num(olen).ok_or_else(|| bad("file"))?,
                    original_sum: sum(osum).ok_or_else(|| bad("file"))?,
                    new_len: num(nlen).ok_or_else(|| bad("file"))?,
                    new_sum: sum(nsum).ok_or_else(|| bad("file"))?,
                });
            }
            [kind @ ("in-place-begin" | "in-place-done"), index] => {
                let index: usize = index.parse().map_err(|_| bad(kind))?;
                if index >= out.files.len() {
                    return Err(bad(kind));
                }
                if *kind == "in-place-begin" {
                    out.in_place_begun.push(index);
                } else {
                    out.in_place_done.push(index);
                }
            }
            // A record cut short by a crash while it was appended.
            _ if n == text.lines().count() && !text.ends_with('\n') => {}
            _ => return Err((n, format!("unknown record `{line}`"))),
        }
    }
    Ok(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_odd_file_names_and_in_place_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(JOURNAL_NAME);
        let f = JournalFile {
            real: PathBuf::from(std::ffi::OsString::from_vec(
                b"/etc/ng inx/a\nb\xff.conf".to_vec(),
            )),
            new_copy: "/etc/x.new".into(),
            original_copy: "/etc/x.orig".into(),
            original_len: 3,
            original_sum: files::checksum(b"old"),
            new_len: 3,
            new_sum: files::checksum(b"new"),
        };
        let mut j = Journal::create(&path, std::slice::from_ref(&f)).unwrap();
        j.in_place(0, false).unwrap();
        let back = read(&path).unwrap();
        assert_eq!(back.files, [f]);
        assert_eq!(back.in_place_begun, [0]);
        assert!(back.in_place_done.is_empty());
        assert_eq!(back.pid, std::process::id());
        assert!(
            Journal::create(&path, &[]).is_err(),
            "never replaces a journal"
        );
        j.remove().unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn rejects_what_is_not_a_journal() {
        assert!(parse("hello\n").is_err());
        assert!(parse(&format!("{HEADER}\nfile zz\n")).is_err());
        assert!(parse(&format!("{HEADER}\nin-place-done 0\n")).is_err());
        // A last record cut short by a crash is ignored.
        assert!(parse(&format!("{HEADER}\npid 1\nin-place-be")).is_ok());
    }
}
