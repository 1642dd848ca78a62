//! The file-system loader against a real directory.

use upkeep_config::{ConfigSet, FsLoader, LoadOptions, Loader};

#[test]
fn fs_glob_matches_sorted_and_skips_dot_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    std::fs::create_dir_all(format!("{root}/conf.d/sub")).unwrap();
    for name in ["b.conf", "a.conf", "B.conf", ".h.conf", "x.txt"] {
        std::fs::write(format!("{root}/conf.d/{name}"), "a;\n").unwrap();
    }
    std::fs::write(format!("{root}/conf.d/sub/c.conf"), "c;\n").unwrap();
    let found = FsLoader.glob(&format!("{root}/conf.d/*.conf")).unwrap();
    let expect: Vec<String> = ["B.conf", "a.conf", "b.conf"]
        .iter()
        .map(|n| format!("{root}/conf.d/{n}"))
        .collect();
    assert_eq!(found, expect);
    let found = FsLoader.glob(&format!("{root}/*/s?b/*")).unwrap();
    assert_eq!(found, [format!("{root}/conf.d/sub/c.conf")]);
    assert!(FsLoader.glob(&format!("{root}/none/*")).unwrap().is_empty());
}

#[test]
fn loads_from_disk_with_relative_includes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    std::fs::create_dir_all(format!("{root}/conf.d")).unwrap();
    std::fs::write(
        format!("{root}/nginx.conf"),
        "http { include conf.d/*.conf; }\n",
    )
    .unwrap();
    std::fs::write(format!("{root}/conf.d/a.conf"), "server { }\n").unwrap();
    let set = ConfigSet::load(
        &format!("{root}/nginx.conf"),
        &FsLoader,
        &LoadOptions::default(),
    )
    .unwrap();
    assert_eq!(set.files.len(), 2);
    assert_eq!(set.files[1].path, format!("{root}/conf.d/a.conf"));
}
