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
        match File::open(path) {
            Ok(mut file) => {
                let meta = file.metadata()?;
                if meta.is_dir() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "is a directory, not a log file",
                    ));
                }
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
    pub fn poll(&mut self, on_line: &mut dyn FnMut(&[u8])) -> io::Result<u64> {
        let mut total = self.drain(on_line)?;
        // At the end of the open file: has the path moved on?
        match std::fs::metadata(&self.path) {
            Ok(meta) => {
                let id = identity(&meta);
                if self.identity != Some(id) {
                    // Rotated (or created): the old file is finished; its
                    // last unterminated line is complete now.
                    if self.identity.is_some() {
                        self.rotations += 1;
                    }
                    self.flush_partial(on_line);
                    self.file = Some(File::open(&self.path)?);
                    self.identity = Some(id);
                    self.offset = 0;
                    total += self.drain(on_line)?;
                } else if meta.len() < self.offset {
                    // Truncated in place: start over.
                    self.rotations += 1;
                    self.partial.clear();
                    self.discarding = false;
                    if let Some(file) = self.file.as_mut() {
                        file.seek(SeekFrom::Start(0))?;
                    }
                    self.offset = 0;
                    total += self.drain(on_line)?;
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

    fn drain(&mut self, on_line: &mut dyn FnMut(&[u8])) -> io::Result<u64> {
        let Some(file) = self.file.as_mut() else {
            return Ok(0);
        };
        let mut buf = [0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            let n = match file.read(&mut buf) {
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
    fn waits_for_a_missing_file_and_reads_it_from_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("later.log");
        let mut f = Follower::new(&log, false).unwrap();
        assert!(poll(&mut f).is_empty());
        append(&log, "hello\n");
        assert_eq!(poll(&mut f), ["hello"]);
    }
}
