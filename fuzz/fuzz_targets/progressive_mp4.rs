//! Fuzzes the progressive-MP4 layout (`download.mp4`): the input is indexed, its `moov` laid
//! out with every track, then with each track alone, and every range of the layout is mapped
//! back to the input — the output never claims bytes the input lacks.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(index) = probe::probe_bytes(data) else {
        return;
    };
    let Some(moov) = index.moov.and_then(|r| {
        let a = usize::try_from(r.start).ok()?;
        let b = usize::try_from(r.end).ok()?;
        data.get(a..b)
    }) else {
        return;
    };
    let all: Vec<u64> = index.tracks.iter().map(|t| t.id).collect();
    let mut choices = vec![all.clone()];
    choices.extend(all.iter().map(|id| vec![*id]));
    for tracks in choices.iter().take(4) {
        let Ok(layout) = demux::progressive::Layout::new(&index, moov, tracks) else {
            continue;
        };
        // Never more media than the input holds.
        let payload: u64 = layout.pieces.iter().map(|p| p.len).sum();
        assert!(payload <= data.len() as u64);
        assert_eq!(layout.size, layout.head.len() as u64 + payload);
        for p in &layout.pieces {
            assert!(p.src + p.len <= data.len() as u64);
        }
        let n = layout.size;
        for (a, b) in [(0, n), (n / 3, n / 2), (n.saturating_sub(5), n)] {
            let (head, pieces) = layout.pieces_in(a, b);
            let got: u64 = head.len() as u64 + pieces.iter().map(|p| p.len).sum::<u64>();
            assert_eq!(got, b.saturating_sub(a));
            let _ = demux::progressive::reads(&pieces);
        }
    }
});
