//! Any bytes: the parser must not panic; what parses must print back byte
//! for byte; errors must point inside the input; the crossplane and JSON
//! renderings must not panic either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use upkeep_config::crossplane::{crossplane_json, CrossplaneOptions};
use upkeep_config::tree_json::upkeep_json;
use upkeep_config::{ConfigSet, LoadOptions, MemoryLoader};
use upkeep_syntax::{for_each_token, parse, print, FileId, SourceFile};

fuzz_target!(|data: &[u8]| {
    let file = SourceFile::new(FileId(0), "fuzz.conf", data.to_vec());
    match parse(&file) {
        Ok(tree) => {
            assert_eq!(print(&tree, &file), data);
            let mut cursor = 0usize;
            for_each_token(&tree, |span| {
                assert!(span.start as usize >= cursor);
                assert!(data[cursor..span.start as usize]
                    .iter()
                    .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n')));
                cursor = span.end as usize;
            });
        }
        Err(e) => {
            assert!(e.span.start <= e.span.end && e.span.end as usize <= data.len());
            let _ = e.render(&file);
        }
    }
    let mut loader = MemoryLoader::new();
    loader.insert("fuzz.conf", data.to_vec());
    let result = ConfigSet::load_single("fuzz.conf", &loader, &LoadOptions::default());
    let _ = crossplane_json(&result, &CrossplaneOptions::default());
    let _ = upkeep_json(&result, Some(1));
});
