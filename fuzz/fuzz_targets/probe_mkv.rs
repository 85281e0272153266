//! Fuzzes the mkv probe path (detection skipped): any bytes must give an index or a typed error,
//! never a panic, a hang or an unbounded allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(index) = probe::probe_bytes_as(probe::Container::Matroska, data) {
        // Whatever we return must be self-consistent enough for the planner.
        assert!(index.keyframes.windows(2).all(|w| w[0].pts <= w[1].pts));
    }
});
