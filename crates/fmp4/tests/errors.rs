//! Every refusal is a typed error, never a panic.

// Test code: unwrap/expect are how a test fails (as in the hlsgate-tests crate).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use fmp4::{
    init_segment, limits, media_segment, media_segment_for, Fmp4Error, Run, Sample, SampleEntry,
    TrackSpec,
};

fn video() -> TrackSpec {
    TrackSpec {
        id: 1,
        timescale: 90_000,
        entry: SampleEntry::Avc {
            config: vec![1, 66, 0, 30, 0xFF, 0xE0, 0],
        },
        width: 640,
        height: 360,
        rotation: 0,
        sample_rate: 0,
        channels: 0,
        language: None,
        avg_bitrate: 0,
        max_bitrate: 0,
        presentation_offset: 0,
    }
}

fn audio() -> TrackSpec {
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
        language: None,
        avg_bitrate: 0,
        max_bitrate: 0,
        presentation_offset: 0,
    }
}

fn init_err(tracks: &[TrackSpec]) -> Fmp4Error {
    init_segment(tracks).unwrap_err()
}

#[test]
fn init_refusals() {
    assert!(init_segment(&[video(), audio()]).is_ok());
    assert!(matches!(init_err(&[]), Fmp4Error::NoTracks));
    let many: Vec<TrackSpec> = (1..=limits::MAX_TRACKS as u32 + 1)
        .map(|id| TrackSpec { id, ..audio() })
        .collect();
    assert!(matches!(init_err(&many), Fmp4Error::TooManyTracks { .. }));
    for id in [0, u32::MAX] {
        assert!(matches!(
            init_err(&[TrackSpec { id, ..video() }]),
            Fmp4Error::InvalidTrackId(i) if i == id
        ));
    }
    assert!(matches!(
        init_err(&[video(), TrackSpec { id: 1, ..audio() }]),
        Fmp4Error::DuplicateTrack(1)
    ));
    assert!(matches!(
        init_err(&[TrackSpec {
            timescale: 0,
            ..video()
        }]),
        Fmp4Error::ZeroTimescale(1)
    ));
    for lang in ["en", "engl", "ENG", "e1g", "éng", ""] {
        assert!(
            matches!(
                init_err(&[TrackSpec {
                    language: Some(lang.into()),
                    ..video()
                }]),
                Fmp4Error::BadLanguage { .. }
            ),
            "{lang:?}"
        );
    }
    assert!(matches!(
        init_err(&[TrackSpec {
            rotation: 45,
            ..video()
        }]),
        Fmp4Error::BadRotation { rotation: 45, .. }
    ));
    for (width, height) in [(0, 360), (640, 0), (limits::MAX_DIMENSION + 1, 360)] {
        assert!(matches!(
            init_err(&[TrackSpec {
                width,
                height,
                ..video()
            }]),
            Fmp4Error::BadDimensions { .. }
        ));
    }
    assert!(matches!(
        init_err(&[TrackSpec {
            channels: 0,
            ..audio()
        }]),
        Fmp4Error::BadAudio { .. }
    ));
    assert!(matches!(
        init_err(&[TrackSpec {
            sample_rate: 0,
            ..audio()
        }]),
        Fmp4Error::BadAudio { .. }
    ));
    let configs = [
        SampleEntry::Avc { config: vec![] },
        SampleEntry::Avc {
            config: vec![2, 66, 0, 30, 0xFF, 0xE0, 0],
        },
        SampleEntry::Hevc {
            config: vec![1; 22],
        },
        SampleEntry::Avc {
            config: vec![1; limits::MAX_CONFIG_BYTES + 1],
        },
    ];
    for entry in configs {
        assert!(matches!(
            init_err(&[TrackSpec { entry, ..video() }]),
            Fmp4Error::BadCodecConfig { .. }
        ));
    }
    assert!(matches!(
        init_err(&[TrackSpec {
            entry: SampleEntry::Aac { asc: vec![0x11] },
            ..audio()
        }]),
        Fmp4Error::BadCodecConfig { .. }
    ));
}

fn one(track_id: u32, data: &[u8]) -> Run<'_> {
    Run {
        track_id,
        base_decode_time: 0,
        samples: vec![Sample {
            data,
            duration: 1,
            composition_offset: 0,
            keyframe: true,
        }],
    }
}

#[test]
fn segment_refusals() {
    let d = [0u8; 4];
    assert!(media_segment(1, &[one(1, &d)]).is_ok());
    assert!(matches!(media_segment(1, &[]), Err(Fmp4Error::NoRuns)));
    let many: Vec<Run> = (1..=limits::MAX_RUNS as u32 + 1)
        .map(|id| one(id, &d))
        .collect();
    assert!(matches!(
        media_segment(1, &many),
        Err(Fmp4Error::TooManyRuns { .. })
    ));
    assert!(matches!(
        media_segment(1, &[one(0, &d)]),
        Err(Fmp4Error::UnknownTrack(0))
    ));
    assert!(matches!(
        media_segment(1, &[one(1, &d), one(1, &d)]),
        Err(Fmp4Error::DuplicateTrack(1))
    ));
    let empty = Run {
        track_id: 1,
        base_decode_time: 0,
        samples: vec![],
    };
    assert!(matches!(
        media_segment(1, &[empty]),
        Err(Fmp4Error::EmptyRun(1))
    ));
    let mut huge = one(1, &d);
    huge.samples = vec![huge.samples[0]; limits::MAX_SAMPLES_PER_RUN + 1];
    assert!(matches!(
        media_segment(1, &[huge]),
        Err(Fmp4Error::TooManySamples { .. })
    ));
    assert!(matches!(
        media_segment_for(&[video(), audio()], 1, &[one(3, &d)]),
        Err(Fmp4Error::UnknownTrack(3))
    ));
    assert!(media_segment_for(&[video(), audio()], 1, &[one(2, &d), one(1, &d)]).is_ok());
}

/// Over 4 GiB of sample data is refused before anything is copied: the same 1 MiB slice many
/// times over (no 4 GiB allocation in the test).
#[test]
fn segment_over_4_gib_is_refused() {
    let mib = vec![0u8; 1 << 20];
    let sample = Sample {
        data: &mib,
        duration: 1,
        composition_offset: 0,
        keyframe: true,
    };
    let run = Run {
        track_id: 1,
        base_decode_time: 0,
        samples: vec![sample; 4096],
    };
    assert!(matches!(
        media_segment(1, &[run]),
        Err(Fmp4Error::DataTooLarge { bytes }) if bytes == 4 << 30
    ));
}

/// A run that starts past 2 GiB into the mdat does not fit trun's signed 32-bit data_offset.
#[test]
fn data_offset_past_2_gib_is_refused() {
    let mib = vec![0u8; 1 << 20];
    let big = Run {
        track_id: 1,
        base_decode_time: 0,
        samples: vec![
            Sample {
                data: &mib,
                duration: 1,
                composition_offset: 0,
                keyframe: true,
            };
            2048
        ],
    };
    let d = [0u8; 4];
    assert!(matches!(
        media_segment(1, &[big, one(2, &d)]),
        Err(Fmp4Error::DataTooLarge { .. })
    ));
}
