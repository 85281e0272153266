//! Fuzzes the demuxer behind the probe: the input is indexed, then demuxed whole, span by span
//! and from odd offsets, as the pipeline would demux a fetched segment range.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Spans demuxed one by one (each demux walks its range).
const MAX_SPANS: usize = 32;

fuzz_target!(|data: &[u8]| {
    let Ok(index) = probe::probe_bytes(data) else {
        return;
    };
    let slice = |a: u64, b: u64| -> Option<&[u8]> {
        let a = usize::try_from(a).ok()?;
        let b = usize::try_from(b).ok()?;
        data.get(a..b.min(data.len()))
    };
    let moov = index.moov.and_then(|r| slice(r.start, r.end));
    let Ok(demuxer) = demux::Demuxer::new(&index, moov) else {
        return;
    };
    let _ = demuxer.frames(data, 0);
    for s in index.spans.iter().take(MAX_SPANS) {
        if let Some(b) = slice(s.start, s.end) {
            let _ = demuxer.frames(b, s.start);
        }
    }
    let n = data.len() as u64;
    for (a, b) in [(n / 3, n), (1, n / 2), (n / 2, n / 2 + 4096)] {
        if let Some(bytes) = slice(a, b) {
            let _ = demuxer.frames(bytes, a);
        }
    }
});
