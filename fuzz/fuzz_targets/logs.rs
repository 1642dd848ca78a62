//! Any bytes as an error log: the scanner must not panic, and whatever
//! blocks the input is cut into, it must count exactly what splitting on
//! `\n` and classifying every line in full counts (signatures, upstreams,
//! other-upstream lines, lines). The first byte picks the block sizes.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/upkeep-logs/tests/common/two_counts.rs"]
mod two_counts;

fuzz_target!(|data: &[u8]| {
    let Some((&seed, log)) = data.split_first() else {
        return;
    };
    let mut sizes = [1 + seed as usize, 64, 7, 200 + seed as usize, 1].into_iter().cycle();
    let got = two_counts::scanned(log, &mut || sizes.next().unwrap_or(1));
    assert_eq!(got, two_counts::reference(log));
});
