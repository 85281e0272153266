//! Fuzzes container detection and every probe behind it, as the server sees a file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = probe::probe_bytes(data);
});
