//! Finding the `upkeep.toml` that applies to a configuration.
//!
//! A settings file can silence every rule, so the search must not depend on
//! how a path was typed, must not leave the project, and must not pick up a
//! file someone else could have planted:
//!
//! - the search starts at the canonical directory of the main config
//!   (`base.conf`, `./base.conf` and `/abs/base.conf` search the same
//!   directories), else at the canonical current directory;
//! - it walks up to the first directory holding `.git` (the repository
//!   root) or to `/`, whichever comes first;
//! - a candidate in a world-writable directory (such as /tmp), or owned by
//!   someone other than the current user or root, is skipped with a
//!   warning.

use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "upkeep.toml";

/// The outcome of the search: the file to use, and the candidates skipped
/// and why (to be printed as warnings).
#[derive(Debug, Default)]
pub struct Discovery {
    pub found: Option<PathBuf>,
    pub skipped: Vec<(PathBuf, String)>,
}

/// Searches from `main_dir` (the directory of the main config as given;
/// `None` for `nginx -T` input) or, without one or when nothing is found
/// there, from the current directory.
pub fn discover(main_dir: Option<&Path>) -> Discovery {
    let mut discovery = Discovery::default();
    if let Some(dir) = main_dir {
        // `base.conf` has the parent "": the current directory.
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(start) = std::fs::canonicalize(dir) {
            walk_up(&start, &mut discovery);
        }
    }
    if discovery.found.is_none() {
        if let Ok(cwd) = std::env::current_dir().and_then(std::fs::canonicalize) {
            walk_up(&cwd, &mut discovery);
        }
    }
    discovery.skipped.dedup();
    discovery
}

fn walk_up(start: &Path, discovery: &mut Discovery) {
    for dir in start.ancestors() {
        let candidate = dir.join(FILE_NAME);
        if std::fs::symlink_metadata(&candidate).is_ok() {
            match untrusted_because(dir, &candidate) {
                None => {
                    discovery.found = Some(candidate);
                    return;
                }
                Some(why) => discovery.skipped.push((candidate, why)),
            }
        }
        if dir.join(".git").exists() {
            return;
        }
    }
}

/// Why a settings file must not be used, if it must not.
#[cfg(unix)]
fn untrusted_because(dir: &Path, file: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let dir_meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) => return Some(format!("cannot inspect its directory: {e}")),
    };
    if dir_meta.mode() & 0o002 != 0 {
        return Some(format!(
            "{} is writable by every user, so anyone could have put it there",
            dir.display()
        ));
    }
    // The file itself (following a symlink): its owner decides.
    let meta = match std::fs::metadata(file) {
        Ok(m) => m,
        Err(e) => return Some(format!("cannot inspect it: {e}")),
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me && meta.uid() != 0 {
        return Some(format!(
            "it belongs to user id {}, neither you (user id {me}) nor root",
            meta.uid()
        ));
    }
    if meta.mode() & 0o002 != 0 {
        return Some("it is writable by every user".to_string());
    }
    None
}

#[cfg(not(unix))]
fn untrusted_because(_dir: &Path, _file: &Path) -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_world_writable_directory_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(FILE_NAME);
        std::fs::write(&file, "").unwrap();
        chmod(dir.path(), 0o777);
        assert!(untrusted_because(dir.path(), &file).is_some());
        chmod(dir.path(), 0o755);
        assert!(untrusted_because(dir.path(), &file).is_none());
        chmod(&file, 0o666);
        assert!(untrusted_because(dir.path(), &file).is_some());
    }

    #[test]
    fn the_search_stops_at_the_repository_root() {
        let dir = tempfile::tempdir().unwrap();
        chmod(dir.path(), 0o755);
        let repo = dir.path().join("repo");
        std::fs::create_dir_all(repo.join(".git")).unwrap();
        std::fs::create_dir_all(repo.join("nginx")).unwrap();
        std::fs::write(dir.path().join(FILE_NAME), "").unwrap();
        let mut d = Discovery::default();
        walk_up(&repo.join("nginx"), &mut d);
        assert_eq!(d.found, None);
        std::fs::write(repo.join(FILE_NAME), "").unwrap();
        walk_up(&repo.join("nginx"), &mut d);
        assert_eq!(d.found, Some(repo.join(FILE_NAME)));
    }
}
