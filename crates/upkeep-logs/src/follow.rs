//! Following a log as it grows, like `tail -F`: survives rotation (the path
//! now names a new file: finish the old one, then read the new one from its
//! start), truncation (`copytruncate`: start over) and a path that is missing
//! for a while.

use crate::scan::MAX_LINE;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// One followed file.
pub struct Follower {
    path: PathBuf,
    file: Option<File>,
    identity: Option<FileId>,
    offset: u64,
    partial: Vec<u8>,
    /// Inside a line longer than [`MAX_LINE`]: drop bytes up to its `\n`.
    discarding: bool,
    /// Lines dropped for being longer than [`MAX_LINE`].
    pub overlong: u64,
    /// Times the path was found to name a new file or a truncated one.
    pub rotations: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

fn identity(meta: &std::fs::Metadata) -> FileId {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        FileId { dev: 0, ino: 0 }
    }
}

/// Bytes read from one file in one [`Follower::poll`]: a file that grows as
/// fast as it is read still lets the caller get on with its interval; the
/// rest is read on the next poll.
pub const MAX_POLL_BYTES: u64 = 16 * 1024 * 1024;

/// What a path that is not a regular file is, for the message refusing it.
fn not_a_log(meta: &std::fs::Metadata) -> io::Error {
    #[cfg(unix)]
    let what = {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_dir() {
            "is a directory"
        } else if t.is_fifo() {
            "is a FIFO (named pipe)"
        } else if t.is_char_device() {
            "is a character device"
        } else if t.is_block_device() {
            "is a block device"
        } else if t.is_socket() {
            "is a socket"
        } else {
            "is not a regular file"
        }
    };
    #[cfg(not(unix))]
    let what = if meta.is_dir() {
        "is a directory"
    } else {
        "is not a regular file"
    };
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{what}, not a log file"),
    )
}

/// Opens `path` as a log: a regular file, else an error. The open does not
/// wait for a writer when the path is a FIFO (it would block until one
/// came), and reading a device such as /dev/zero would never end.
fn open_log(path: &Path) -> io::Result<(File, std::fs::Metadata)> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_a_log(&meta));
    }
    Ok((file, meta))
}

/// What a followed path is at a given moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathState {
    /// It does not exist (yet, or any more).
    Missing,
    /// A regular file that can be opened: it is read.
    Readable,
    /// It exists but is not read, and why ("is a FIFO (named pipe), not a
    /// log file", "Permission denied (os error 13)").
    Refused(String),
}

/// What `path` is now, as [`Follower::poll`] would take it. A path that is
/// not a regular file is not opened (a FIFO would be, by its writer, taken
/// for a reader).
pub fn path_state(path: &Path) -> PathState {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return PathState::Missing,
        Err(e) => return PathState::Refused(e.to_string()),
        Ok(meta) if !meta.is_file() => return PathState::Refused(not_a_log(&meta).to_string()),
        Ok(_) => {}
    }
    match open_log(path) {
        Ok(_) => PathState::Readable,
        Err(e) if e.kind() == io::ErrorKind::NotFound => PathState::Missing,
        Err(e) => PathState::Refused(e.to_string()),
    }
}

impl Follower {
    /// Starts following `path`. With `from_start` the existing content is
    /// read too; otherwise only what is appended from now on. A path that
    /// does not exist yet is waited for.
    pub fn new(path: &Path, from_start: bool) -> io::Result<Follower> {
        let mut f = Follower {
            path: path.to_path_buf(),
            file: None,
            identity: None,
            offset: 0,
            partial: Vec::new(),
            discarding: false,
            overlong: 0,
            rotations: 0,
        };
        match open_log(path) {
            Ok((mut file, meta)) => {
                f.identity = Some(identity(&meta));
                if !from_start {
                    f.offset = file.seek(SeekFrom::End(0))?;
                }
                f.file = Some(file);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(f)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads whatever was appended since the last call and hands each
    /// complete line (without `\n`) to `on_line`. Returns the number of bytes
    /// read; 0 means nothing new (the caller sleeps before polling again).
    /// At most [`MAX_POLL_BYTES`] are read per call. A path that now names
    /// something other than a regular file (a FIFO, a directory, a link to
    /// a device) is an error and is not read; the file read so far stays
    /// open and the path is looked at again on the next call.
    pub fn poll(&mut self, on_line: &mut dyn FnMut(&[u8])) -> io::Result<u64> {
        let mut total = self.drain(on_line, MAX_POLL_BYTES)?;
        if total >= MAX_POLL_BYTES {
            // Not at the end of the open file yet: the rest comes first.
            return Ok(total);
        }
        // At the end of the open file: has the path moved on?
        match std::fs::metadata(&self.path) {
            Ok(meta) => {
                let id = identity(&meta);
                if self.identity != Some(id) {
                    if !meta.is_file() {
                        return Err(not_a_log(&meta));
                    }
                    // Checked again on the open file: the path may have
                    // changed since.
                    let (file, meta) = open_log(&self.path)?;
                    // Rotated (or created): the old file is finished; its
                    // last unterminated line is complete now.
                    if self.identity.is_some() {
                        self.rotations += 1;
                    }
                    self.flush_partial(on_line);
                    self.file = Some(file);
                    self.identity = Some(identity(&meta));
                    self.offset = 0;
                    total += self.drain(on_line, MAX_POLL_BYTES - total)?;
                } else if meta.len() < self.offset {
                    // Truncated in place: start over.
                    self.rotations += 1;
                    self.partial.clear();
                    self.discarding = false;
                    if let Some(file) = self.file.as_mut() {
                        file.seek(SeekFrom::Start(0))?;
                    }
                    self.offset = 0;
                    total += self.drain(on_line, MAX_POLL_BYTES - total)?;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(total)
    }

    fn flush_partial(&mut self, on_line: &mut dyn FnMut(&[u8])) {
        if !self.partial.is_empty() && !self.discarding {
            on_line(&self.partial);
        }
        self.partial.clear();
        self.discarding = false;
    }

    /// Reads up to `limit` bytes from the open file, handing on its lines.
    fn drain(&mut self, on_line: &mut dyn FnMut(&[u8]), limit: u64) -> io::Result<u64> {
        let Some(file) = self.file.as_mut() else {
            return Ok(0);
        };
        let mut buf = [0u8; 64 * 1024];
        let mut total = 0u64;
        while total < limit {
            let want = buf.len().min((limit - total) as usize);
            let n = match file.read(&mut buf[..want]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            total += n as u64;
            self.offset += n as u64;
            let mut rest = &buf[..n];
            while let Some(i) = memchr::memchr(b'\n', rest) {
                let piece = &rest[..i];
                if self.discarding {
                    self.discarding = false;
                } else if self.partial.is_empty() {
                    on_line(piece);
                } else {
                    self.partial.extend_from_slice(piece);
                    on_line(&self.partial);
                    self.partial.clear();
                }
                rest = &rest[i + 1..];
            }
            if !self.discarding {
                self.partial.extend_from_slice(rest);
                if self.partial.len() > MAX_LINE {
                    self.partial.clear();
                    self.discarding = true;
                    self.overlong += 1;
                }
            }
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn poll(f: &mut Follower) -> Vec<String> {
        let mut out = Vec::new();
        f.poll(&mut |l| out.push(String::from_utf8_lossy(l).into_owned()))
            .unwrap();
        out
    }

    fn append(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn follows_appends_rotation_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("error.log");
        append(&log, "old line\n");
        let mut f = Follower::new(&log, false).unwrap();
        assert!(poll(&mut f).is_empty());

        append(&log, "one\ntw");
        assert_eq!(poll(&mut f), ["one"]);
        append(&log, "o\n");
        assert_eq!(poll(&mut f), ["two"]);

        // logrotate's default: rename, then the writer opens a new file.
        append(&log, "last in old");
        std::fs::rename(&log, dir.path().join("error.log.1")).unwrap();
        assert!(poll(&mut f).is_empty());
        append(&log, "first in new\n");
        assert_eq!(poll(&mut f), ["last in old", "first in new"]);
        assert_eq!(f.rotations, 1);

        // copytruncate (noticed when the file is shorter than what was read).
        std::fs::write(&log, "").unwrap();
        assert!(poll(&mut f).is_empty());
        append(&log, "after truncate\n");
        assert_eq!(poll(&mut f), ["after truncate"]);
        assert_eq!(f.rotations, 2);
    }

    #[test]
    fn one_poll_reads_a_bounded_amount_and_the_next_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("big.log");
        let mut f = Follower::new(&log, false).unwrap();
        let line = "x".repeat(1023) + "\n";
        let lines = (MAX_POLL_BYTES as usize / line.len()) + 100;
        append(&log, &line.repeat(lines));
        let mut seen = 0usize;
        let first = f.poll(&mut |_| seen += 1).unwrap();
        assert_eq!(first, MAX_POLL_BYTES);
        let second = f.poll(&mut |_| seen += 1).unwrap();
        assert_eq!(first + second, (lines * line.len()) as u64);
        assert_eq!(seen, lines);
    }

    #[test]
    fn a_path_that_turns_into_a_fifo_or_device_is_an_error_not_a_wait() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("error.log");
        let mut f = Follower::new(&log, false).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &log).unwrap();
        let e = f.poll(&mut |_| {}).unwrap_err();
        assert_eq!(e.to_string(), "is a character device, not a log file");
        std::fs::remove_file(&log).unwrap();
        let c = std::ffi::CString::new(log.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = f.poll(&mut |_| {}).unwrap_err();
        assert_eq!(e.to_string(), "is a FIFO (named pipe), not a log file");
        assert!(Follower::new(&log, true).is_err());
        // A regular file in its place is read again.
        std::fs::remove_file(&log).unwrap();
        append(&log, "back\n");
        assert_eq!(poll(&mut f), ["back"]);
    }

    #[test]
    fn waits_for_a_missing_file_and_reads_it_from_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("later.log");
        let mut f = Follower::new(&log, false).unwrap();
        assert!(poll(&mut f).is_empty());
        append(&log, "hello\n");
        assert_eq!(poll(&mut f), ["hello"]);
    }
}
