//! Reading files from disk without hanging and without unbounded memory.
//!
//! Every file is opened with `O_NONBLOCK`, so that opening a FIFO returns at
//! once instead of waiting for a writer, then inspected with `fstat` on the
//! opened descriptor (no window between a check and the open).
//!
//! Configuration files are read the way nginx reads them
//! (`ngx_conf_parse` → `ngx_conf_read_token`): it takes the size from
//! `fstat` and reads exactly that many bytes. A character device such as
//! `/dev/zero` or `/dev/urandom` has size 0, so nginx reads it as an empty
//! file and `nginx -t` passes; a directory fails in `pread()` with EISDIR;
//! opening a FIFO blocks until a writer appears. The tests in
//! tests/non_regular_files.rs check each of these against a real nginx.
//!
//! Other inputs (settings, probe results, certificates) must be regular
//! files: [`read_regular_file`].

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// The most bytes read from one configuration file. nginx has no limit, but
/// a larger file is not a configuration anyone maintains by hand, and
/// reading it would take several times its size in memory.
pub const MAX_CONFIG_FILE_BYTES: u64 = 256 << 20;

/// Opens `path` for reading without blocking on a FIFO.
fn open_nonblocking(path: &Path) -> io::Result<(File, std::fs::Metadata)> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC);
    }
    let file = options.open(path)?;
    let meta = file.metadata()?;
    Ok((file, meta))
}

/// What kind of file `meta` describes, for messages.
fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

fn is_fifo(meta: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        meta.file_type().is_fifo()
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        false
    }
}

fn too_large(size: u64, cap: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "the file has {size} bytes, more than the {} upkeep reads from one file",
            show_bytes(cap)
        ),
    )
}

/// `256 MiB`, `16 kiB`, `100 bytes`.
fn show_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} kiB", n >> 10),
        n => format!("{n} bytes"),
    }
}

/// Reads `len` bytes (fewer if the file shrank meanwhile), never more.
fn read_exactly_size(file: File, len: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(len).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// A configuration file's bytes, as nginx reads them: the size `fstat`
/// reports, so an empty text for a character device; an error for a
/// directory (nginx: `pread() failed (21: Is a directory)`), for a FIFO
/// (nginx blocks in `open()` until something writes to it, so `nginx -t`
/// never finishes), and for a file larger than `cap`.
pub fn read_config_file(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    let (file, meta) = open_nonblocking(path)?;
    if meta.is_dir() {
        #[cfg(unix)]
        return Err(io::Error::from_raw_os_error(libc::EISDIR));
        #[cfg(not(unix))]
        return Err(io::Error::other("Is a directory"));
    }
    if is_fifo(&meta) {
        return Err(io::Error::other(
            "it is a FIFO (named pipe); nginx would wait in open() until something writes to it",
        ));
    }
    let size = meta.len();
    if size > cap {
        return Err(too_large(size, cap));
    }
    read_exactly_size(file, size)
}

/// The bytes of a regular file of at most `cap` bytes; anything else (a
/// directory, FIFO, device, or a larger file) is an error that says what
/// the file is.
pub fn read_regular_file(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    let (file, meta) = open_nonblocking(path)?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a regular file: {}", kind_of(&meta)),
        ));
    }
    let size = meta.len();
    if size > cap {
        return Err(too_large(size, cap));
    }
    // A file that grows while it is read is cut at the cap plus one byte,
    // which then fails the check below.
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(too_large(bytes.len() as u64, cap));
    }
    Ok(bytes)
}

/// [`read_regular_file`] as UTF-8 text.
pub fn read_regular_text(path: &Path, cap: u64) -> io::Result<String> {
    String::from_utf8(read_regular_file(path, cap)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// Reads a stream (stdin) up to `cap` bytes; more is an error.
pub fn read_bounded(reader: impl Read, cap: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "more than the {} upkeep reads from one input",
                show_bytes(cap)
            ),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn character_devices_read_as_empty_like_nginx() {
        let zero = read_config_file(Path::new("/dev/zero"), MAX_CONFIG_FILE_BYTES).unwrap();
        assert!(zero.is_empty());
        let random = read_config_file(Path::new("/dev/urandom"), MAX_CONFIG_FILE_BYTES).unwrap();
        assert!(random.is_empty());
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path owned for the duration of the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = read_config_file(&fifo, MAX_CONFIG_FILE_BYTES).unwrap_err();
        assert!(err.to_string().contains("FIFO"), "{err}");
        let err = read_regular_file(&fifo, 1024).unwrap_err();
        assert!(err.to_string().contains("FIFO"), "{err}");
    }

    #[test]
    fn directories_fail_as_in_pread() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_config_file(dir.path(), MAX_CONFIG_FILE_BYTES).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EISDIR));
        let err = read_regular_file(dir.path(), 1024).unwrap_err();
        assert!(err.to_string().contains("directory"), "{err}");
    }

    #[test]
    fn sizes_above_the_cap_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        std::fs::write(&path, vec![b'#'; 2048]).unwrap();
        assert!(read_config_file(&path, 1024).is_err());
        assert!(read_regular_file(&path, 1024).is_err());
        assert_eq!(read_regular_file(&path, 2048).unwrap().len(), 2048);
        let err = read_regular_file(Path::new("/dev/zero"), 1024).unwrap_err();
        assert!(err.to_string().contains("character device"), "{err}");
        assert!(read_bounded(std::io::repeat(0), 1024).is_err());
        assert_eq!(read_bounded(&b"abc"[..], 3).unwrap(), b"abc");
    }
}
