//! Several files that include each other (by name and by glob): loading
//! must end with a set or an error (cycles included), never a panic or a
//! hang, and expanding includes must terminate.
#![no_main]

use libfuzzer_sys::fuzz_target;
use upkeep_config::{ConfigSet, LoadOptions, MemoryLoader};

fuzz_target!(|data: &[u8]| {
    // Split the input into up to four files at 0xff bytes.
    let names = ["n.conf", "a.conf", "b.conf", "d/c.conf"];
    let mut loader = MemoryLoader::new();
    for (name, part) in names.iter().zip(data.split(|&b| b == 0xff)) {
        loader.insert(*name, part.to_vec());
    }
    if let Ok(set) = ConfigSet::load("n.conf", &loader, &LoadOptions::default()) {
        let root = set.root();
        for d in root {
            if let Some(b) = d.block() {
                let _ = set.expand(&b.nodes);
            }
        }
    }
});
