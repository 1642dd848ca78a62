//! `upkeep lab --keep DIR` through the binary: a short real run keeps each
//! phase's files; a DIR holding planted links or files is refused before
//! anything runs, and nothing outside DIR is written.

mod common;

use common::{text, upkeep};

#[test]
fn keep_writes_each_phase_into_a_new_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let keep = tmp.path().join("kept");
    let out = upkeep(&[
        "lab",
        "--scenario",
        "connection-close",
        "--duration",
        "1s",
        "--quiet",
        "--keep",
        keep.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for phase in ["before", "after"] {
        for file in ["nginx.conf", "error.log"] {
            let path = keep.join(phase).join(file);
            assert!(
                std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()),
                "{}",
                path.display()
            );
        }
    }
}

/// The old failure: `before/error.log` linked to another file was truncated
/// through the link, and `before/` linked elsewhere was written into.
#[test]
fn keep_dir_with_planted_links_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let victim = tmp.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let keep = tmp.path().join("kept");
    std::fs::create_dir_all(keep.join("before")).unwrap();
    std::os::unix::fs::symlink(&victim, keep.join("before/error.log")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, keep.join("after")).unwrap();
    let out = upkeep(&[
        "lab",
        "--scenario",
        "connection-close",
        "--duration",
        "1s",
        "--quiet",
        "--keep",
        keep.to_str().unwrap(),
    ]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("is not empty"), "{err}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious\n");
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
}
