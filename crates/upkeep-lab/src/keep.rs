//! `lab --keep DIR`: each phase's config and logs copied to DIR/before and
//! DIR/after. DIR may be shared or writable by others, so nothing in it is
//! trusted: DIR must be new or empty (and not a symlink), every directory
//! and file is created exclusively (`mkdirat`, `O_CREAT|O_EXCL`) through
//! descriptors opened with `O_NOFOLLOW`, so a planted link or file makes the
//! copy fail with a warning instead of writing somewhere else or over
//! something.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

/// Checks DIR before a run, creating it if it does not exist: it must be an
/// empty directory, not a symlink, so the run cannot end by failing to keep
/// its files (or by mixing them with older ones).
pub fn prepare(dir: &Path) -> Result<(), String> {
    let shown = dir.display();
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::create_dir(dir)
            .map_err(|e| format!("--keep {shown}: cannot create the directory: {e}")),
        Err(e) => Err(format!("--keep {shown}: {e}")),
        Ok(m) if m.file_type().is_symlink() => Err(format!(
            "--keep {shown}: is a symbolic link; name the directory itself"
        )),
        Ok(m) if !m.is_dir() => Err(format!("--keep {shown}: is not a directory")),
        Ok(_) => {
            let mut entries = std::fs::read_dir(dir).map_err(|e| format!("--keep {shown}: {e}"))?;
            if entries.next().is_some() {
                return Err(format!(
                    "--keep {shown}: the directory is not empty; name a new or empty one (nothing in it is overwritten)"
                ));
            }
            Ok(())
        }
    }
}

/// A file to keep: its path under the phase directory and its content.
pub struct Kept<'a> {
    pub path: &'a str,
    pub text: &'a [u8],
}

/// Creates DIR/`phase` (which must not exist) and the files in it.
pub fn keep_phase(dir: &Path, phase: &str, files: &[Kept<'_>]) -> io::Result<()> {
    let root = open_dir(None, dir.as_os_str())?;
    let phase_dir = make_dir(&root, OsStr::new(phase))?;
    for f in files {
        let mut parts: Vec<&OsStr> = Vec::new();
        for c in Path::new(f.path).components() {
            match c {
                Component::Normal(p) => parts.push(p),
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("{}: not a plain relative path", f.path),
                    ))
                }
            }
        }
        let Some((name, dirs)) = parts.split_last() else {
            continue;
        };
        let mut at = open_dir(Some(&phase_dir), OsStr::new("."))?;
        for d in dirs {
            at = match make_dir(&at, d) {
                Ok(created) => created,
                // A directory made for an earlier file of this phase.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => open_dir(Some(&at), d)?,
                Err(e) => return Err(e),
            };
        }
        let mut file = create_file(&at, name)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", f.path)))?;
        file.write_all(f.text)?;
    }
    Ok(())
}

fn c_name(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// Opens a directory (relative to `parent`, or the path as given), never
/// through a symlink in its last component.
fn open_dir(parent: Option<&File>, name: &OsStr) -> io::Result<File> {
    let c = c_name(name)?;
    let at = parent.map_or(libc::AT_FDCWD, |p| p.as_raw_fd());
    // SAFETY: a valid C string and descriptor; the returned descriptor is
    // owned by the File.
    let fd = unsafe {
        libc::openat(
            at,
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor that nothing else owns.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Creates the directory `name` in `parent` (failing if anything has that
/// name) and opens it.
fn make_dir(parent: &File, name: &OsStr) -> io::Result<File> {
    let c = c_name(name)?;
    // SAFETY: a valid C string and descriptor.
    if unsafe { libc::mkdirat(parent.as_raw_fd(), c.as_ptr(), 0o755) } != 0 {
        return Err(io::Error::last_os_error());
    }
    open_dir(Some(parent), name)
}

/// Creates the file `name` in `parent`; an existing file or link of that
/// name is an error.
fn create_file(parent: &File, name: &OsStr) -> io::Result<File> {
    let c = c_name(name)?;
    // SAFETY: a valid C string and descriptor; the returned descriptor is
    // owned by the File.
    let fd = unsafe {
        libc::openat(
            parent.as_raw_fd(),
            c.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0o644 as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor that nothing else owns.
    Ok(unsafe { File::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn files<'a>() -> Vec<Kept<'a>> {
        vec![
            Kept {
                path: "nginx.conf",
                text: b"events {}\n",
            },
            Kept {
                path: "conf/1-app.conf",
                text: b"upstream app {}\n",
            },
            Kept {
                path: "error.log",
                text: b"log\n",
            },
        ]
    }

    #[test]
    fn keeps_the_files_of_each_phase() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("keep");
        prepare(&dir).unwrap();
        keep_phase(&dir, "before", &files()).unwrap();
        keep_phase(&dir, "after", &files()).unwrap();
        assert_eq!(
            fs::read(dir.join("after/conf/1-app.conf")).unwrap(),
            b"upstream app {}\n"
        );
        assert_eq!(fs::read(dir.join("before/error.log")).unwrap(), b"log\n");
        // The same phase twice is refused, not overwritten.
        assert!(keep_phase(&dir, "before", &files()).is_err());
    }

    #[test]
    fn refuses_a_non_empty_or_symlinked_dir() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("old"), "x").unwrap();
        let err = prepare(tmp.path()).unwrap_err();
        assert!(err.contains("not empty"), "{err}");
        let empty = tmp.path().join("empty");
        fs::create_dir(&empty).unwrap();
        std::os::unix::fs::symlink(&empty, tmp.path().join("link")).unwrap();
        let err = prepare(&tmp.path().join("link")).unwrap_err();
        assert!(err.contains("symbolic link"), "{err}");
        prepare(&empty).unwrap();
    }

    /// Links planted in DIR after the check are never written through: a
    /// linked `before/` or `before/error.log`, a linked `conf/`.
    #[test]
    fn keep_dir_symlinks_are_never_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let victim_dir = tmp.path().join("elsewhere");
        fs::create_dir(&victim_dir).unwrap();
        let victim = tmp.path().join("victim.log");
        fs::write(&victim, "precious\n").unwrap();

        // before/ itself a link to another directory.
        let dir = tmp.path().join("k1");
        prepare(&dir).unwrap();
        std::os::unix::fs::symlink(&victim_dir, dir.join("before")).unwrap();
        assert!(keep_phase(&dir, "before", &files()).is_err());
        assert_eq!(fs::read_dir(&victim_dir).unwrap().count(), 0);

        // Links planted inside DIR after the check, where the phase's
        // subdirectory or log file will go: the phase directory already
        // exists, so the phase is refused as a whole.
        for planted in ["conf", "error.log"] {
            let dir = tmp.path().join(format!("k-{planted}"));
            prepare(&dir).unwrap();
            fs::create_dir(dir.join("after")).unwrap();
            let target = if planted == "conf" {
                &victim_dir
            } else {
                &victim
            };
            std::os::unix::fs::symlink(target, dir.join("after").join(planted)).unwrap();
            assert!(keep_phase(&dir, "after", &files()).is_err());
        }
        // And a file is never created through a link of its name.
        let at = open_dir(None, tmp.path().join("k-error.log/after").as_os_str()).unwrap();
        assert!(create_file(&at, OsStr::new("error.log")).is_err());
        assert!(open_dir(Some(&at), OsStr::new("error.log")).is_err());
        assert_eq!(fs::read(&victim).unwrap(), b"precious\n");
        assert_eq!(fs::read_dir(&victim_dir).unwrap().count(), 0);

        // DIR itself replaced by a link after the check.
        let dir = tmp.path().join("k2");
        prepare(&dir).unwrap();
        fs::remove_dir(&dir).unwrap();
        std::os::unix::fs::symlink(&victim_dir, &dir).unwrap();
        assert!(keep_phase(&dir, "before", &files()).is_err());
        assert_eq!(fs::read_dir(&victim_dir).unwrap().count(), 0);
    }
}
