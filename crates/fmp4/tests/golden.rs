//! Golden bytes: a tiny deterministic input, hashed. A failure means the output format changed:
//! if that is intended, refresh with `UPDATE_GOLDEN=1 cargo test -p fmp4 --test golden` (and
//! bump the output version of whoever caches these bytes).

// Test code: unwrap/expect are how a test fails (as in the hlsgate-tests crate).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use sha2::{Digest, Sha256};

use fmp4::{init_segment, media_segment, Run, Sample, SampleEntry, TrackSpec};

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn check(name: &str, bytes: &[u8]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.sha256"));
    let got = format!("{}  {} bytes\n", hex(bytes), bytes.len());
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
    assert_eq!(got, want, "{name}: bytes changed");
}

fn tracks() -> Vec<TrackSpec> {
    vec![
        TrackSpec {
            id: 1,
            timescale: 90_000,
            entry: SampleEntry::Avc {
                config: vec![
                    1, 100, 0, 31, 0xFF, 0xE1, 0, 4, 0x67, 100, 0, 31, 1, 0, 2, 0x68, 0xEE,
                ],
            },
            width: 1280,
            height: 720,
            rotation: 0,
            sample_rate: 0,
            channels: 0,
            language: None,
            avg_bitrate: 0,
            max_bitrate: 0,
            presentation_offset: 0,
        },
        TrackSpec {
            id: 2,
            timescale: 48_000,
            entry: SampleEntry::Aac {
                asc: vec![0x11, 0x90],
            },
            width: 0,
            height: 0,
            rotation: 0,
            sample_rate: 48_000,
            channels: 2,
            language: Some("eng".into()),
            avg_bitrate: 128_000,
            max_bitrate: 128_000,
            presentation_offset: 0,
        },
    ]
}

#[test]
fn golden_init_and_segment() {
    let init = init_segment(&tracks()).unwrap();
    check("init", &init);
    check("init_video_only", &init_segment(&tracks()[..1]).unwrap());

    let video: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 10 + usize::from(i)]).collect();
    let audio: Vec<Vec<u8>> = (0..3u8).map(|i| vec![0xA0 + i; 6]).collect();
    let offsets = [3000, 9000, -3000, 0];
    let runs = [
        Run {
            track_id: 1,
            base_decode_time: 180_000,
            samples: video
                .iter()
                .enumerate()
                .map(|(i, d)| Sample {
                    data: d,
                    duration: 3000,
                    composition_offset: offsets[i],
                    keyframe: i == 0,
                })
                .collect(),
        },
        Run {
            track_id: 2,
            base_decode_time: 96_000,
            samples: audio
                .iter()
                .map(|d| Sample {
                    data: d,
                    duration: 1024,
                    composition_offset: 0,
                    keyframe: true,
                })
                .collect(),
        },
    ];
    let segment = media_segment(3, &runs).unwrap();
    check("segment", &segment);
    // Same inputs, same bytes.
    assert_eq!(init, init_segment(&tracks()).unwrap());
    assert_eq!(segment, media_segment(3, &runs).unwrap());
}
