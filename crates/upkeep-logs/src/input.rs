//! Where log bytes come from: files, glob patterns, standard input; gzip is
//! recognised by its magic bytes (not the file name) and decompressed as a
//! stream.

use flate2::read::MultiGzDecoder;
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Stdin,
    File(PathBuf),
}

/// One input as named to the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Input {
    pub name: String,
    pub source: Source,
}

impl Input {
    pub fn file(path: impl Into<PathBuf>) -> Input {
        let path = path.into();
        Input {
            name: path.display().to_string(),
            source: Source::File(path),
        }
    }

    pub fn stdin() -> Input {
        Input {
            name: "<stdin>".into(),
            source: Source::Stdin,
        }
    }

    /// Size on disk, for progress (compressed size for gzip files).
    pub fn size(&self) -> Option<u64> {
        match &self.source {
            Source::File(p) => std::fs::metadata(p)
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len()),
            Source::Stdin => None,
        }
    }

    /// Opens the input; `progress` counts raw bytes as they are read.
    pub fn open(&self, progress: Option<Arc<AtomicU64>>) -> io::Result<Opened> {
        let raw: Box<dyn Read + Send> = match &self.source {
            Source::Stdin => Box::new(io::stdin()),
            Source::File(p) => {
                if p.is_dir() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "is a directory, not a log file",
                    ));
                }
                Box::new(File::open(p)?)
            }
        };
        let mut counted = Counting {
            inner: raw,
            progress,
        };
        // Read the magic bytes, then put them back in front.
        let mut magic = [0u8; 2];
        let mut got = 0;
        while got < 2 {
            match counted.read(&mut magic[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let head = io::Cursor::new(magic[..got].to_vec()).chain(counted);
        let gzip = got == 2 && magic == [0x1f, 0x8b];
        let reader: Box<dyn Read + Send> = if gzip {
            Box::new(GzipErrors(MultiGzDecoder::new(BufReader::with_capacity(
                256 * 1024,
                head,
            ))))
        } else {
            Box::new(head)
        };
        Ok(Opened { reader, gzip })
    }
}

pub struct Opened {
    pub reader: Box<dyn Read + Send>,
    pub gzip: bool,
}

/// Counts bytes read into a shared counter for the progress bar.
struct Counting<R> {
    inner: R,
    progress: Option<Arc<AtomicU64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(p) = &self.progress {
            p.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(n)
    }
}

/// Rewords the decoder's terse errors ("unexpected end of file",
/// "corrupt deflate stream") so the user learns it is the gzip data.
struct GzipErrors<R>(R);

impl<R: Read> Read for GzipErrors<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(|e| {
            let what = if e.kind() == io::ErrorKind::UnexpectedEof {
                "gzip data is truncated"
            } else {
                "gzip data is corrupt"
            };
            io::Error::new(e.kind(), format!("{what} ({e})"))
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    pub arg: String,
    pub message: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.arg, self.message)
    }
}

impl std::error::Error for InputError {}

fn is_glob(arg: &str) -> bool {
    arg.contains(['*', '?', '['])
}

/// Turns command-line arguments into inputs: `-` is standard input, a
/// pattern with `*`, `?` or `[` is expanded (sorted), anything else is a
/// path. A pattern that matches nothing, or a path that does not exist, is
/// an error naming the argument.
pub fn expand_inputs(args: &[String]) -> Result<Vec<Input>, InputError> {
    let mut out = Vec::new();
    for arg in args {
        if arg == "-" {
            out.push(Input::stdin());
            continue;
        }
        if is_glob(arg) && !Path::new(arg).exists() {
            let paths = glob::glob(arg).map_err(|e| InputError {
                arg: arg.clone(),
                message: format!("bad pattern: {e}"),
            })?;
            let mut matched: Vec<PathBuf> = paths
                .filter_map(Result::ok)
                .filter(|p| p.is_file())
                .collect();
            if matched.is_empty() {
                return Err(InputError {
                    arg: arg.clone(),
                    message: "no file matches this pattern".into(),
                });
            }
            matched.sort();
            out.extend(matched.into_iter().map(Input::file));
            continue;
        }
        let path = Path::new(arg);
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => {
                return Err(InputError {
                    arg: arg.clone(),
                    message: "is a directory, not a log file".into(),
                })
            }
            Ok(_) => out.push(Input::file(path)),
            Err(e) => {
                return Err(InputError {
                    arg: arg.clone(),
                    message: e.to_string(),
                })
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_is_detected_by_magic_and_streamed() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("a.log");
        std::fs::write(&plain, b"hello\n").unwrap();
        let gz = dir.path().join("b.log.1"); // no .gz suffix on purpose
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"world\n").unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        let counter = Arc::new(AtomicU64::new(0));
        let mut text = String::new();
        let opened = Input::file(&gz).open(Some(counter.clone())).unwrap();
        assert!(opened.gzip);
        { opened.reader }.read_to_string(&mut text).unwrap();
        assert_eq!(text, "world\n");
        assert_eq!(
            counter.load(Ordering::Relaxed),
            std::fs::metadata(&gz).unwrap().len()
        );
        let mut text = String::new();
        { Input::file(&plain).open(None).unwrap().reader }
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "hello\n");
    }

    #[test]
    fn globs_sort_and_errors_name_the_argument() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["e.log.2", "e.log.1", "e.log"] {
            std::fs::write(dir.path().join(n), b"").unwrap();
        }
        let pat = format!("{}/e.log*", dir.path().display());
        let inputs = expand_inputs(&[pat]).unwrap();
        let names: Vec<_> = inputs
            .iter()
            .map(|i| i.name.rsplit('/').next().unwrap().to_string())
            .collect();
        assert_eq!(names, ["e.log", "e.log.1", "e.log.2"]);
        let none = format!("{}/zzz*", dir.path().display());
        assert_eq!(
            expand_inputs(&[none]).unwrap_err().message,
            "no file matches this pattern"
        );
        let missing = format!("{}/missing.log", dir.path().display());
        assert!(expand_inputs(&[missing]).is_err());
        let d = dir.path().display().to_string();
        assert_eq!(
            expand_inputs(&[d]).unwrap_err().message,
            "is a directory, not a log file"
        );
    }
}
