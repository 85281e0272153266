//! Hostile and huge indexes: limits answer with typed errors, planning stays O(n log n), and the
//! fast paths give exactly what the straightforward ones did. Run in debug builds, where
//! arithmetic overflow panics.

use std::time::{Duration, Instant};

use probe::{
    AudioInfo, ByteRange, Codec, Container, Keyframe, MediaIndex, Rational, Span, Track, TrackKind,
    VideoInfo,
};

use crate::{
    audio_plan, limits, master_playlist, plan, playlist, ranges_for, renditions, AudioGrid,
    Boundaries, PlanError, PlanOptions, RenditionOptions, SpanIndex, VideoMode,
};

fn track(id: u64, kind: TrackKind, timescale: u32) -> Track {
    Track {
        id,
        kind,
        codec: if kind == TrackKind::Video {
            Codec::H264
        } else {
            Codec::Aac
        },
        timescale,
        duration: None,
        language: None,
        title: None,
        default: true,
        forced: false,
        codec_private: vec![],
        video: (kind == TrackKind::Video).then(|| VideoInfo {
            width: 1280,
            height: 720,
            profile: Some(100),
            constraints: Some(0),
            level: Some(31),
            bit_depth: Some(8),
            chroma_format: Some(1),
            frame_rate: Some(Rational { num: 25, den: 1 }),
            ..VideoInfo::default()
        }),
        audio: (kind == TrackKind::Audio).then_some(AudioInfo {
            sample_rate: 48_000,
            channels: 2,
            aac_object_type: Some(2),
            bits_per_sample: None,
            bit_rate: Default::default(),
            block_align: Default::default(),
        }),
        start: Some(0),
        default_duration_ns: None,
        codec_delay_ns: None,
    }
}

/// Video (keyframes `kf`, ticks) and one audio track, no spans yet.
fn base(container: Container, ts: u32, duration: u64, kf: &[i64]) -> MediaIndex {
    MediaIndex {
        container,
        file_size: u64::MAX,
        timescale: ts,
        start: 0,
        duration,
        tracks: vec![
            track(1, TrackKind::Video, ts),
            track(2, TrackKind::Audio, 48_000),
        ],
        main_track: Some(0),
        keyframes: kf
            .iter()
            .enumerate()
            .map(|(i, &pts)| Keyframe {
                pts,
                offset: i as u64 * 1000,
            })
            .collect(),
        spans: vec![],
        interleave: 0,
        moov: None,
        format: Default::default(),
    }
}

/// Spans like an MP4's chunks: per GOP one video chunk (presented up to 80 ms past its decode
/// range, B-frame reorder) and two audio chunks, interleaved in the file, sorted by time.
fn mp4_spans(kf: &[i64], end: i64, ts: i64) -> Vec<Span> {
    let mut spans = Vec::new();
    let mut pos = 0u64;
    let reorder = ts * 80 / 1000;
    for (i, &k) in kf.iter().enumerate() {
        let next = kf.get(i + 1).copied().unwrap_or(end);
        spans.push(Span {
            time: k,
            end_time: next + reorder,
            start: pos,
            end: pos + 400_000,
        });
        pos += 400_000;
        let mid = k + (next - k) / 2;
        for (a, b) in [(k, mid), (mid, next)] {
            spans.push(Span {
                time: a,
                end_time: b,
                start: pos,
                end: pos + 40_000,
            });
            pos += 40_000;
        }
    }
    spans.sort_by_key(|s| (s.time, s.start));
    spans
}

/// Spans like Matroska clusters: one per keyframe, exact start only (interleave 0.5 s).
fn mkv_spans(kf: &[i64], end: i64) -> Vec<Span> {
    kf.iter()
        .enumerate()
        .map(|(i, &k)| Span {
            time: k,
            end_time: kf.get(i + 1).copied().unwrap_or(end),
            start: i as u64 * 500_000,
            end: (i as u64 + 1) * 500_000,
        })
        .collect()
}

/// Everything a master.m3u8 and the media playlists cost: plan, renditions, audio plans.
fn plan_everything(ix: &MediaIndex, mode: VideoMode) -> crate::Plan {
    let p = plan(
        ix,
        &PlanOptions {
            mode,
            ..PlanOptions::default()
        },
    )
    .unwrap();
    let r = renditions(ix, &RenditionOptions::default());
    let m = master_playlist(ix, &r, &p, |r| format!("{}/index.m3u8", r.id));
    assert!(m.contains("#EXT-X-STREAM-INF"));
    let a = audio_plan(
        ix,
        &p,
        &AudioGrid::passthrough(48_000, 1024, 0, ix.timescale),
    );
    assert_eq!(a.segments.len(), p.segments.len());
    assert!(a.segments.iter().all(|s| s.ranges.len() == 1));
    let _ = a.media_playlist("init.mp4", |i| format!("{i}.m4s"));
    let text = p.media_playlist("init.mp4", |i| format!("{i}.m4s"));
    assert_eq!(text.matches("#EXTINF:6,").count(), p.segments.len());
    p
}

#[test]
fn a_hundred_thousand_keyframes_plan_in_well_under_a_second() {
    // 100,000 GOPs of 6 s (≈ 6.9 days, under the 7-day cap) at a 90 kHz timescale.
    let ts = 90_000i64;
    let kf: Vec<i64> = (0..100_000).map(|i| i * 6 * ts).collect();
    let end = 100_000 * 6 * ts;
    let duration = u64::try_from(end).unwrap();
    for (container, spans, interleave) in [
        (Container::Mp4, mp4_spans(&kf, end, ts), 0),
        (Container::Matroska, mkv_spans(&kf, end), ts as u64 / 2),
    ] {
        let mut ix = base(container, 90_000, duration, &kf);
        ix.spans = spans;
        ix.interleave = interleave;
        for mode in [VideoMode::Passthrough, VideoMode::Transcode] {
            let opts = PlanOptions {
                mode,
                ..PlanOptions::default()
            };
            let t = Instant::now();
            let p = plan(&ix, &opts).unwrap();
            let took = t.elapsed();
            // Was 10 s (MP4) and 39 s (Matroska) when every segment scanned every span.
            assert!(
                took < Duration::from_secs(2),
                "{container:?} {mode:?}: {took:?}"
            );
            let t = Instant::now();
            assert_eq!(plan_everything(&ix, mode), p);
            let all = t.elapsed();
            eprintln!(
                "{container:?} {mode:?}: plan {took:?}; with master, audio, playlists {all:?}"
            );
            assert!(
                all < Duration::from_secs(6),
                "{container:?} {mode:?}: {all:?}"
            );
            assert_eq!(p.segments.len(), 100_000);
            assert_eq!(p.boundaries, Boundaries::Keyframes);
            assert!(p.segments.iter().all(|s| s.ranges.len() == 1));
            // Spot-check against the one-scan reference.
            for s in p.segments.iter().step_by(9973) {
                assert_eq!(s.ranges, ranges_for(&ix, s.start, s.end));
            }
        }
    }
}

/// A small deterministic generator (tests need no `rand`).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A random index: irregular keyframes, 2–3 tracks of overlapping spans, some empty or inverted
/// spans, some spans far outside the timeline, spans listed in any order.
fn random_index(rng: &mut Lcg, n_kf: usize) -> MediaIndex {
    let ts = 1000i64;
    let mut kf = vec![0i64];
    while kf.len() < n_kf {
        let last = *kf.last().unwrap();
        kf.push(last + 100 + rng.below(9000) as i64);
    }
    let end = kf.last().unwrap() + 1 + rng.below(8000) as i64;
    let mut ix = base(Container::Mp4, 1000, u64::try_from(end).unwrap(), &kf);
    let tracks = 2 + rng.below(2);
    let mut pos = 0u64;
    for t in 0..tracks {
        let mut time = -(rng.below(200) as i64);
        while time < end {
            let len = 1 + rng.below(if t == 0 { 4000 } else { 1500 }) as i64;
            let wide = rng.below(300) as i64; // presentation wider than decode
            let bytes = rng.below(2_000_000);
            pos += rng.below(3) * rng.below(1_500_000); // sometimes a gap over MERGE_GAP
            ix.spans.push(Span {
                time,
                end_time: time + len + wide,
                start: pos,
                end: pos + bytes, // sometimes empty
            });
            pos += bytes;
            time += len;
        }
    }
    // Oddities: an inverted span, one long span over everything, extremes.
    ix.spans.push(Span {
        time: 5000,
        end_time: 4000,
        start: 10,
        end: 20,
    });
    ix.spans.push(Span {
        time: end / 3,
        end_time: end / 3 + 30 * ts,
        start: 7,
        end: 9,
    });
    ix.spans.push(Span {
        time: i64::MIN,
        end_time: i64::MAX,
        start: u64::MAX - 5,
        end: u64::MAX,
    });
    // Any order: shuffle.
    for i in (1..ix.spans.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        ix.spans.swap(i, j);
    }
    ix.interleave = [0, 1, 250, 500, 5000][rng.below(5) as usize];
    ix
}

#[test]
fn span_index_answers_exactly_what_one_scan_does() {
    let mut rng = Lcg(0x5eed);
    for round in 0..40 {
        let ix = random_index(&mut rng, 20 + round * 5);
        let fast = SpanIndex::new(&ix);
        let end = i64::try_from(ix.duration).unwrap();
        let mut windows: Vec<(i64, i64)> = (0..300)
            .map(|_| {
                let a = rng.below(u64::try_from(end).unwrap() + 4000) as i64 - 2000;
                (a, a + rng.below(20_000) as i64)
            })
            .collect();
        windows.extend([
            (i64::MIN, i64::MAX),
            (i64::MAX, i64::MIN),
            (i64::MIN, i64::MIN + 1),
            (i64::MAX - 1, i64::MAX),
            (3000, 2000),
            (0, 0),
        ]);
        for (a, b) in windows {
            assert_eq!(
                fast.ranges(a, b),
                ranges_for(&ix, a, b),
                "round {round}, window [{a}, {b}), interleave {}",
                ix.interleave
            );
        }
        // Whole plans: every segment's ranges are the one-scan answer.
        for (mode, slack) in [
            (VideoMode::Passthrough, 0.0),
            (VideoMode::Transcode, 0.0),
            (VideoMode::Passthrough, 0.25),
        ] {
            let opts = PlanOptions {
                mode,
                range_slack_secs: slack,
                ..PlanOptions::default()
            };
            let p = plan(&ix, &opts).unwrap();
            let s = (slack * 1000.0) as i64;
            for seg in &p.segments {
                assert_eq!(seg.ranges, ranges_for(&ix, seg.start - s, seg.end + s));
            }
        }
    }
}

#[test]
fn keyframes_out_of_order_plan_as_if_sorted() {
    let mut rng = Lcg(7);
    let ix = random_index(&mut rng, 200);
    let sorted = plan(&ix, &PlanOptions::default()).unwrap();
    let mut shuffled = ix.clone();
    shuffled.keyframes.reverse();
    let dup = shuffled.keyframes[10];
    shuffled.keyframes.push(dup);
    assert_eq!(plan(&shuffled, &PlanOptions::default()).unwrap(), sorted);
    // Timescale 1 (target 6 ticks, half a target 3): still bounded and contiguous.
    let mut coarse = base(Container::Mp4, 1, 1000, &[0, 5, 5, 2, 900, 1, 3, 999]);
    coarse.spans = mkv_spans(&[0, 500], 1000);
    let p = plan(&coarse, &PlanOptions::default()).unwrap();
    assert_eq!(p.segments.last().unwrap().end, 1000);
    assert!(p.segments.windows(2).all(|w| w[0].end == w[1].start));
}

fn is_limit(r: Result<crate::Plan, PlanError>, what: &str) {
    match r {
        Err(PlanError::Limit { what: w, .. }) if w.contains(what) => {}
        other => panic!("expected a {what} limit, got {other:?}"),
    }
}

#[test]
fn absurd_durations_are_refused_before_anything_is_allocated() {
    let opts = [
        PlanOptions::default(),
        PlanOptions {
            mode: VideoMode::Transcode,
            ..PlanOptions::default()
        },
    ];
    for o in &opts {
        // 10^15 s claimed at timescale 1, 1000 and 2^32 − 1 (u64 ticks saturate there).
        for ts in [1u32, 1000, u32::MAX] {
            let mut ix = base(
                Container::Mp4,
                ts,
                1_000_000_000_000_000u64.saturating_mul(u64::from(ts)),
                &[0],
            );
            is_limit(plan(&ix, o), "duration");
            ix.duration = u64::MAX;
            is_limit(plan(&ix, o), "duration");
            // One tick over 7 days.
            ix.duration = limits::MAX_DURATION_SECS * u64::from(ts) + 1;
            is_limit(plan(&ix, o), "duration");
        }
        // 8.5 × 10^6 s (the 1.3 GB plan, 42.8 MB playlist of the issue).
        let ix = base(Container::Matroska, 1000, 8_500_000_000, &[0]);
        let err = plan(&ix, o).unwrap_err();
        assert_eq!(
            err.to_string(),
            "duration in seconds (8500000) is over the limit (604800)"
        );
    }
    // Audio only: the grid path, at exactly 7 days at 48 kHz, plans (100,800 segments)...
    let mut audio = base(
        Container::Mp4,
        48_000,
        limits::MAX_DURATION_SECS * 48_000,
        &[],
    );
    audio.tracks.remove(0);
    audio.main_track = Some(0);
    let t = Instant::now();
    let p = plan(&audio, &PlanOptions::default()).unwrap();
    // Steps of 281 AAC frames (5.995 s).
    assert_eq!(p.segments.len(), 100_890);
    assert!(t.elapsed() < Duration::from_secs(2));
    // ...but its 0.5 s grid would be 1.2 M segments: counted first, refused.
    let half = PlanOptions {
        target_secs: 0.5,
        ..PlanOptions::default()
    };
    is_limit(plan(&audio, &half), "segments");
}

#[test]
fn too_many_keyframe_segments_are_refused() {
    // 600,000 keyframes 0.3 s apart (50 h) with a 0.5 s target: ~300,000 segments.
    let kf: Vec<i64> = (0..600_000).map(|i| i * 300).collect();
    let ix = base(Container::Mp4, 1000, 600_000 * 300, &kf);
    let half = PlanOptions {
        target_secs: 0.5,
        ..PlanOptions::default()
    };
    is_limit(plan(&ix, &half), "segments");
    // At the default target it is 30,000 segments, fine.
    assert_eq!(
        plan(&ix, &PlanOptions::default()).unwrap().segments.len(),
        30_000
    );
}

#[test]
fn extreme_values_give_errors_or_bounded_plans_never_panics() {
    let kf = [i64::MIN, -5, 0, 2000, 4000, i64::MAX];
    let mut ix = base(Container::Matroska, 1000, 10_000, &kf);
    ix.spans = vec![
        Span {
            time: i64::MIN,
            end_time: i64::MAX,
            start: 0,
            end: u64::MAX,
        },
        Span {
            time: i64::MAX,
            end_time: i64::MIN,
            start: u64::MAX,
            end: 0,
        },
        Span {
            time: 9000,
            end_time: i64::MAX,
            start: u64::MAX - 1,
            end: u64::MAX,
        },
    ];
    for interleave in [0, 500, i64::MAX as u64, u64::MAX] {
        ix.interleave = interleave;
        for mode in [VideoMode::Passthrough, VideoMode::Transcode] {
            let opts = PlanOptions {
                mode,
                range_slack_secs: 60.0,
                ..PlanOptions::default()
            };
            let p = plan(&ix, &opts).unwrap();
            assert_eq!(p.segments.last().unwrap().end, 10_000);
            for seg in &p.segments {
                assert_eq!(
                    seg.ranges,
                    ranges_for(&ix, seg.start - 60_000, seg.end + 60_000)
                );
            }
            for secs in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e300, -1e300] {
                assert!(p.segment_at(secs).is_some());
            }
            for grid in [
                AudioGrid::passthrough(u32::MAX, u32::MAX, i64::MIN, 1),
                AudioGrid::passthrough(1, 0, i64::MAX, u32::MAX),
                AudioGrid {
                    frame: 1024,
                    rate: 48_000,
                    origin: i64::MIN,
                    preroll_frames: u32::MAX,
                    postroll_frames: u32::MAX,
                },
                AudioGrid {
                    frame: 1024,
                    rate: 0,
                    origin: i64::MAX,
                    preroll_frames: 0,
                    postroll_frames: 0,
                },
            ] {
                let a = audio_plan(&ix, &p, &grid);
                assert_eq!(a.segments.len(), p.segments.len());
            }
        }
    }
    // Starts far from 0, either way.
    for start in [
        i64::MIN,
        i64::MAX,
        -(limits::MAX_START_SECS as i64) * 1000 - 1,
    ] {
        let mut far = ix.clone();
        far.start = start;
        is_limit(plan(&far, &PlanOptions::default()), "start");
    }
    // A start at the limit still plans (and its end stays far from overflow).
    let mut late = base(Container::MpegTs, u32::MAX, u64::from(u32::MAX) * 60, &[]);
    late.start = limits::MAX_START_SECS as i64 * i64::from(u32::MAX);
    let opts = PlanOptions {
        mode: VideoMode::Transcode,
        ..PlanOptions::default()
    };
    // Its audio at 0, 30 days before the video, is not believed: the plan starts at the video.
    let r = plan(&late, &opts);
    assert_eq!(r.as_ref().map(|p| p.segments.len()), Ok(10), "{r:?}");
    assert_eq!(r.map(|p| p.timeline.origin), Ok(late.start));
    // Audio 10 minutes before it is (a lead of up to `MAX_BELIEVED_LEAD_SECS`): the plan starts
    // at the audio.
    late.tracks[1].start = Some(late.start - 600 * i64::from(u32::MAX));
    late.tracks[1].timescale = u32::MAX;
    let r = plan(&late, &opts);
    assert_eq!(
        r.as_ref().map(|p| p.timeline.origin),
        Ok(late.start - 600 * i64::from(u32::MAX))
    );
    late.tracks[1].start = None;
    let r = plan(&late, &opts);
    assert_eq!(r.as_ref().map(|p| p.segments.len()), Ok(10), "{r:?}");
    // Audio track starts at the extremes.
    late.tracks[1].start = Some(i64::MIN);
    late.tracks[1].timescale = 1;
    assert!(plan(&late, &opts).is_ok());
    // A frame rate whose quantum overflows i64 (2^32 − 1 timescale × 2^32 − 1 denominator).
    let mut slow = late.clone();
    slow.tracks[0].video.as_mut().unwrap().frame_rate = Some(Rational {
        num: 1,
        den: u32::MAX,
    });
    assert!(plan(&slow, &opts).is_ok());
    // Options: infinite slack is refused; NaN and negative slack mean none, as before.
    for slack in [f64::INFINITY, 61.0, 1e300] {
        let o = PlanOptions {
            range_slack_secs: slack,
            ..PlanOptions::default()
        };
        assert!(matches!(plan(&ix, &o), Err(PlanError::BadOptions(_))));
    }
    for slack in [f64::NAN, f64::NEG_INFINITY, -1.0] {
        let o = PlanOptions {
            range_slack_secs: slack,
            ..PlanOptions::default()
        };
        assert!(plan(&ix, &o).is_ok());
    }
}

/// Our media playlist of `(uri, duration)` segments, with the map `init_uri` (and byte ranges,
/// when given, for the map and each segment).
fn ours(
    target_duration: u64,
    init_uri: &str,
    segs: &[(String, f64)],
    ranges: Option<&[playlist::ByteRange]>,
) -> String {
    let header = playlist::MediaHeader {
        target_duration,
        map: Some(playlist::Map {
            uri: init_uri,
            byte_range: ranges.and_then(|r| r.first().copied()),
        }),
    };
    let segments = segs
        .iter()
        .enumerate()
        .map(|(i, (uri, duration))| playlist::MediaSegment {
            duration: *duration,
            uri,
            byte_range: ranges.and_then(|r| r.get(i + 1).copied()),
        });
    playlist::media(&header, segs.len(), segments)
}

/// The playlist writer, as it was: through `m3u8_rs::MediaPlaylist::write_to`.
fn m3u8_rs_playlist(
    target_duration: u64,
    init_uri: &str,
    segs: &[(String, f64)],
    ranges: Option<&[playlist::ByteRange]>,
) -> String {
    let range = |i: usize| ranges.and_then(|r| r.get(i).copied()).and_then(range_of);
    let segments = segs
        .iter()
        .enumerate()
        .map(|(i, (uri, duration))| m3u8_rs::MediaSegment {
            uri: uri.clone(),
            duration: *duration as f32,
            map: (i == 0).then(|| m3u8_rs::Map {
                uri: init_uri.to_string(),
                byte_range: range(0),
                ..Default::default()
            }),
            byte_range: range(i + 1),
            ..Default::default()
        })
        .collect();
    let pl = m3u8_rs::MediaPlaylist {
        version: Some(7),
        target_duration,
        media_sequence: 0,
        segments,
        end_list: true,
        playlist_type: Some(m3u8_rs::MediaPlaylistType::Vod),
        independent_segments: true,
        ..Default::default()
    };
    let mut out = Vec::new();
    pl.write_to(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn playlists_are_the_bytes_m3u8_rs_writes() {
    let mut rng = Lcg(99);
    for n in [0usize, 1, 2, 17, 500] {
        let segs: Vec<(String, f64)> = (0..n)
            .map(|i| {
                let d = match i % 4 {
                    0 => 6.0,
                    1 => rng.below(12_000_000) as f64 / 1e6,
                    2 => 1024.0 / 48_000.0 * (1 + rng.below(400)) as f64,
                    _ => 1.0 / 3.0,
                };
                (format!("{i}.m4s?x=ä"), d)
            })
            .collect();
        let ours = ours(7, "init.mp4", &segs, None);
        assert_eq!(
            ours,
            m3u8_rs_playlist(7, "init.mp4", &segs, None),
            "{n} segments"
        );
        let parsed = m3u8_rs::parse_media_playlist_res(ours.as_bytes()).unwrap();
        assert_eq!(parsed.segments.len(), n);
    }
}

#[test]
fn byte_range_playlists_are_the_bytes_m3u8_rs_writes() {
    let mut rng = Lcg(7);
    for n in [1usize, 3, 200] {
        let segs: Vec<(String, f64)> = (0..n)
            .map(|_| ("media.mp4".to_string(), rng.below(12_000_000) as f64 / 1e6))
            .collect();
        let mut offset = 0;
        let ranges: Vec<playlist::ByteRange> = (0..=n)
            .map(|_| {
                let length = 1 + rng.below(1 << 40);
                let r = playlist::ByteRange { length, offset };
                offset += length;
                r
            })
            .collect();
        let ours = ours(12, "media.mp4", &segs, Some(&ranges));
        assert_eq!(
            ours,
            m3u8_rs_playlist(12, "media.mp4", &segs, Some(&ranges)),
            "{n} segments"
        );
        let parsed = m3u8_rs::parse_media_playlist_res(ours.as_bytes()).unwrap();
        assert_eq!(parsed.segments.len(), n);
        assert_eq!(parsed.segments[n - 1].byte_range, range_of(ranges[n]));
    }
}

fn range_of(r: playlist::ByteRange) -> Option<m3u8_rs::ByteRange> {
    Some(m3u8_rs::ByteRange {
        length: r.length,
        offset: Some(r.offset),
    })
}

#[test]
fn byte_ranges_never_pass_a_span_end() {
    // Huge byte positions with an interpolated neighbour: the cut stays inside the span.
    let mut ix = base(Container::Matroska, 1000, 4000, &[0, 2000]);
    ix.interleave = 500;
    ix.spans = vec![
        Span {
            time: 0,
            end_time: 2000,
            start: 0,
            end: 1000,
        },
        Span {
            time: 2000,
            end_time: 2001,
            start: u64::MAX - (1 << 40),
            end: u64::MAX,
        },
    ];
    let r = ranges_for(&ix, 0, 1999);
    assert_eq!(r[0], ByteRange::new(0, 1000));
    assert!(r.iter().all(|r| r.start <= r.end));
    assert_eq!(SpanIndex::new(&ix).ranges(0, 1999), r);
}
