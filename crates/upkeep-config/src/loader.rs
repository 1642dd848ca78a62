//! Where configuration bytes come from. The core never touches the file
//! system itself: the CLI hands it an [`FsLoader`], tests and the browser
//! page a [`MemoryLoader`].

use crate::glob::path_matches;
use std::collections::BTreeMap;
use std::io;
use upkeep_syntax::SharedText;

pub trait Loader {
    /// The bytes of the file at `path` (a path as nginx would open it).
    fn read(&self, path: &str) -> io::Result<Vec<u8>>;
    /// The same bytes as a shared text. A loader that already holds the
    /// text shared (`fix` reloading a changed file) hands it out without a
    /// copy.
    fn read_shared(&self, path: &str) -> io::Result<SharedText> {
        self.read(path).map(SharedText::new)
    }
    /// The paths matching a glob(3) pattern, sorted byte-wise as glob(3)
    /// sorts them in nginx's C locale. No match is an empty list, not an
    /// error.
    fn glob(&self, pattern: &str) -> io::Result<Vec<String>>;
}

/// Files held in memory, keyed by path.
#[derive(Clone, Debug, Default)]
pub struct MemoryLoader {
    files: BTreeMap<String, Vec<u8>>,
}

impl MemoryLoader {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, path: impl Into<String>, bytes: impl Into<Vec<u8>>) {
        self.files.insert(path.into(), bytes.into());
    }
}

impl Loader for MemoryLoader {
    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "No such file or directory"))
    }

    fn glob(&self, pattern: &str) -> io::Result<Vec<String>> {
        // BTreeMap keys are already in byte order.
        Ok(self
            .files
            .keys()
            .filter(|p| path_matches(pattern, p))
            .cloned()
            .collect())
    }
}

/// The real file system.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Clone, Copy, Debug, Default)]
pub struct FsLoader;

#[cfg(not(target_arch = "wasm32"))]
impl Loader for FsLoader {
    /// As nginx reads a configuration file (see [`crate::file_read`]):
    /// never blocks on a FIFO, never reads past the size `fstat` gave.
    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        crate::file_read::read_config_file(
            std::path::Path::new(path),
            crate::file_read::MAX_CONFIG_FILE_BYTES,
        )
    }

    fn glob(&self, pattern: &str) -> io::Result<Vec<String>> {
        use crate::glob::{component_matches, has_wildcard};
        // Expand one component at a time; components without wildcards are
        // taken as written (glob(3) does not list those directories).
        let absolute = pattern.starts_with('/');
        let mut found: Vec<String> = vec![if absolute { "/".into() } else { String::new() }];
        let components: Vec<&str> = pattern.split('/').filter(|c| !c.is_empty()).collect();
        for (i, comp) in components.iter().enumerate() {
            let last = i + 1 == components.len();
            let mut next = Vec::new();
            for base in &found {
                if has_wildcard(comp) {
                    let dir = if base.is_empty() { "." } else { base.as_str() };
                    // Unreadable directories are skipped, as glob(3) does
                    // without GLOB_ERR.
                    let Ok(entries) = std::fs::read_dir(dir) else {
                        continue;
                    };
                    for entry in entries.flatten() {
                        let name = entry.file_name();
                        let Some(name) = name.to_str() else { continue };
                        if !component_matches(comp.as_bytes(), name.as_bytes()) {
                            continue;
                        }
                        let path = join(base, name);
                        if last || std::fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
                            next.push(path);
                        }
                    }
                } else {
                    let path = join(base, &unquote(comp));
                    let exists = if last {
                        std::fs::symlink_metadata(&path).is_ok()
                    } else {
                        std::fs::metadata(&path).is_ok_and(|m| m.is_dir())
                    };
                    if exists {
                        next.push(path);
                    }
                }
            }
            found = next;
        }
        if components.is_empty() {
            found.clear();
        }
        found.sort();
        Ok(found)
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn join(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_string()
    } else if base.ends_with('/') {
        format!("{base}{name}")
    } else {
        format!("{base}/{name}")
    }
}

/// A pattern component without wildcards, with glob's backslash quoting
/// removed.
#[cfg(not(target_arch = "wasm32"))]
fn unquote(comp: &str) -> String {
    let mut out = String::with_capacity(comp.len());
    let mut chars = comp.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
                continue;
            }
        }
        out.push(c);
    }
    out
}
