//! The file operations of a `--write` transaction. None of them follows a
//! symlink in the last component of a path, none opens anything but a regular
//! file for reading, and none blocks on a FIFO: the paths they touch sit in
//! config directories that other users may be able to write.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// What a written file must keep: its identity, owner, group and mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileMeta {
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

impl FileMeta {
    pub fn of(m: &fs::Metadata) -> FileMeta {
        FileMeta {
            dev: m.dev(),
            ino: m.ino(),
            nlink: m.nlink(),
            uid: m.uid(),
            gid: m.gid(),
            mode: m.mode() & 0o7777,
        }
    }

    pub fn same_file(&self, other: &FileMeta) -> bool {
        (self.dev, self.ino) == (other.dev, other.ino)
    }
}

/// Opens `path` for reading without following a final symlink and without
/// waiting for a FIFO writer, and refuses anything but a regular file.
fn open_regular(path: &Path) -> io::Result<(File, fs::Metadata)> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => io::Error::other("it is a symbolic link"),
            _ => e,
        })?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other(format!(
            "it is not a regular file ({})",
            kind_of(&meta)
        )));
    }
    Ok((file, meta))
}

/// The content and metadata of the regular file at `path` (see [`open_regular`]).
pub(crate) fn read_regular(path: &Path) -> io::Result<(Vec<u8>, FileMeta)> {
    let (mut file, meta) = open_regular(path)?;
    let mut text = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut text)?;
    Ok((text, FileMeta::of(&meta)))
}

fn kind_of(m: &fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = m.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Whether the owner and group of a new file could be set as asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ownership {
    Kept,
    /// Not root, and the file belongs to someone else or to a group we are
    /// not in: the new file has our own owner or group.
    NotKept,
}

/// Creates `path` (which must not exist: `O_EXCL` also refuses a planted
/// symlink) holding `text` with `meta`'s owner and mode, synced.
pub(crate) fn create_new(path: &Path, text: &[u8], meta: &FileMeta) -> io::Result<Ownership> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let written = (|| {
        file.write_all(text)?;
        // The owner first: changing it clears set-id bits that the mode restores.
        let ownership = match std::os::unix::fs::fchown(&file, Some(meta.uid), Some(meta.gid)) {
            Ok(()) => Ownership::Kept,
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => Ownership::NotKept,
            Err(e) => return Err(e),
        };
        file.set_permissions(Permissions::from_mode(meta.mode))?;
        file.sync_all()?;
        Ok(ownership)
    })();
    if written.is_err() {
        let _ = fs::remove_file(path);
    }
    written
}

/// Opens the regular file `path` for an in-place rewrite (nothing is
/// written yet).
pub(crate) fn open_for_rewrite(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("it is not a regular file"));
    }
    Ok(file)
}

/// Rewrites the file opened by [`open_for_rewrite`] with `text`: the inode,
/// its links, owner, group and mode stay. Written, truncated, synced, then
/// read back through `path` and compared. Not atomic for readers; the caller
/// journals it.
pub(crate) fn rewrite(mut file: File, path: &Path, text: &[u8]) -> io::Result<()> {
    file.write_all(text)?;
    file.set_len(text.len() as u64)?;
    file.sync_all()?;
    drop(file);
    let (back, _) = read_regular(path)?;
    if back != text {
        return Err(io::Error::other(
            "the text read back differs from the text written",
        ));
    }
    Ok(())
}

/// [`open_for_rewrite`] and [`rewrite`].
pub(crate) fn write_in_place(path: &Path, text: &[u8]) -> io::Result<()> {
    rewrite(open_for_rewrite(path)?, path, text)
}

/// Whether `path` can be opened for writing (nothing is written).
pub(crate) fn writable_in_place(path: &Path) -> bool {
    OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .is_ok()
}

/// A rename refused because the target is a mount point (a single file
/// bind-mounted into a container: EBUSY) or on another file system (EXDEV).
pub(crate) fn is_mount_point_error(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EBUSY) | Some(libc::EXDEV))
}

/// Makes the directory entries (renames, creations, removals) in `dir`
/// durable. Best effort: the data itself is already synced.
pub(crate) fn sync_dir(dir: &Path) {
    let _ = File::open(dir).and_then(|d| d.sync_all());
}

/// Removes `path` if it is there (never following a symlink: unlink removes
/// the link itself).
pub(crate) fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// An exclusive advisory lock (`flock`) on a directory, held until dropped.
pub(crate) struct DirLock {
    _dir: File,
}

pub(crate) enum LockOutcome {
    Locked(DirLock),
    /// Another process holds it.
    Busy,
    /// The file system does not support it (some network file systems).
    Unsupported(io::Error),
}

pub(crate) fn lock_dir(dir: &Path) -> io::Result<LockOutcome> {
    use std::os::fd::AsRawFd;
    let file = File::open(dir)?;
    // SAFETY: flock on a descriptor we own; it has no memory effects.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(LockOutcome::Locked(DirLock { _dir: file }));
    }
    let e = io::Error::last_os_error();
    Ok(match e.raw_os_error() {
        Some(libc::EWOULDBLOCK) => LockOutcome::Busy,
        _ => LockOutcome::Unsupported(e),
    })
}

/// 64-bit FNV-1a: a stable checksum for the journal, to recognise the
/// original and the new text of a file after a crash.
pub(crate) fn checksum(text: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
