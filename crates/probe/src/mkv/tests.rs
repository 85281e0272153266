//! Tests of the Matroska probe: the fixtures made by `fixtures/make.sh` (checked against
//! ffprobe when it is installed), the cost of each probe in requests and bytes, hand-built files
//! for the paths the fixtures do not take, and hostile byte strings that must fail cleanly.

use super::ebml::id;
use super::MkvProbe;
use crate::{
    probe_bytes, ByteRange, Codec, Container, ContainerProbe, MediaIndex, Poll, ProbeError, Prober,
    Rational, Step, Store, TrackKind, HEAD_BYTES,
};

// ---------------------------------------------------------------------------------------------
// Helpers

/// The fixture's bytes. Always `Some`: the fixtures are made if missing (a test never skips).
fn fixture(name: &str) -> Option<Vec<u8>> {
    let path = hlsgate_tests::fixture(name);
    Some(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// What one probe cost.
struct Cost {
    requests: u64,
    bytes: u64,
}

/// Probes `data` like `probe_bytes`, counting requests and bytes.
fn probe_counted(data: &[u8]) -> (crate::Result<MediaIndex>, Cost) {
    let mut p = Prober::new(data.len() as u64);
    let result = loop {
        match p.poll() {
            Ok(Step::Need(r)) => {
                let a = usize::try_from(r.start).unwrap().min(data.len());
                let b = usize::try_from(r.end).unwrap().min(data.len());
                if let Err(e) = p.push(r.start, data[a..b].to_vec()) {
                    break Err(e);
                }
            }
            Ok(Step::Done(index)) => break Ok(*index),
            Err(e) => break Err(e),
        }
    };
    let cost = Cost {
        requests: p.requests(),
        bytes: p.bytes_read(),
    };
    (result, cost)
}

/// Spans are sorted, contiguous in bytes and in time, and cover `[first, last_end)`.
fn assert_spans_sane(ix: &MediaIndex) {
    assert!(!ix.spans.is_empty());
    for w in ix.spans.windows(2) {
        assert!(w[0].time <= w[1].time, "{w:?}");
        assert_eq!(w[0].end_time, w[1].time, "{w:?}");
        assert_eq!(w[0].end, w[1].start, "{w:?}");
    }
    for s in &ix.spans {
        assert!(s.start < s.end && s.end <= ix.file_size, "{s:?}");
        assert!(s.time <= s.end_time, "{s:?}");
    }
    for k in &ix.keyframes {
        assert!(
            ix.spans.iter().any(|s| s.start == k.offset),
            "keyframe {k:?} not at a span start"
        );
    }
}

/// `(pts seconds, pos, keyframe)` of every packet of the first video stream, per ffprobe.
/// Always `Some`: ffprobe is required (a missing one fails the test).
fn ffprobe_packets(name: &str) -> Option<Vec<(f64, u64, bool)>> {
    let path = hlsgate_tests::fixture(name);
    Some(
        hlsgate_tests::ffprobe_video_packets(&path)
            .into_iter()
            .map(|p| (p.pts, p.pos, p.key))
            .collect(),
    )
}

/// Checks our keyframes against ffprobe's packets. With Cues, ours must be exactly ffprobe's
/// keyframes; from a cluster scan, exactly those that are the first video packet of their
/// cluster. Returns (keyframes compared, largest time difference in seconds).
fn compare_with_ffprobe(name: &str, ix: &MediaIndex, from_cues: bool) -> Option<(usize, f64)> {
    let packets = ffprobe_packets(name)?;
    let secs = |t: i64| t as f64 / f64::from(ix.timescale);
    let span_of = |pos: u64| ix.spans.iter().find(|s| s.start <= pos && pos < s.end);
    let expected: Vec<(f64, u64)> = if from_cues {
        packets.iter().filter(|p| p.2).map(|p| (p.0, p.1)).collect()
    } else {
        packets
            .iter()
            .filter(|p| p.2)
            .filter(|p| {
                // First video packet of its cluster?
                let s = span_of(p.1).unwrap();
                !packets.iter().any(|q| q.1 >= s.start && q.1 < p.1)
            })
            .map(|p| (p.0, p.1))
            .collect()
    };
    assert_eq!(
        ix.keyframes.len(),
        expected.len(),
        "{name}: keyframe count differs from ffprobe's"
    );
    let mut max_diff = 0.0f64;
    for (k, (pts, pos)) in ix.keyframes.iter().zip(&expected) {
        let diff = (secs(k.pts) - pts).abs();
        max_diff = max_diff.max(diff);
        assert!(diff < 0.001, "{name}: keyframe {k:?} vs ffprobe {pts}");
        let span = ix.spans.iter().find(|s| s.start == k.offset).unwrap();
        assert!(
            *pos >= k.offset && *pos < span.end,
            "{name}: ffprobe packet at {pos} outside cluster {span:?}"
        );
    }
    Some((expected.len(), max_diff))
}

// ---------------------------------------------------------------------------------------------
// Fixtures

#[test]
fn h264_with_cues() {
    let Some(data) = fixture("h264_bframes.mkv") else {
        return;
    };
    let (ix, cost) = probe_counted(&data);
    let ix = ix.unwrap();
    assert_eq!(ix.container, Container::Matroska);
    assert_eq!(ix.timescale, 1000);
    assert_eq!(ix.main_track, Some(0));
    assert_eq!(ix.tracks.len(), 2);
    let v = &ix.tracks[0];
    assert_eq!(
        (v.id, v.kind, &v.codec),
        (1, TrackKind::Video, &Codec::H264)
    );
    assert_eq!(v.timescale, 1000);
    let vi = v.video.as_ref().unwrap();
    assert_eq!((vi.width, vi.height), (320, 240));
    assert_eq!(vi.frame_rate, Some(Rational { num: 25, den: 1 }));
    assert_eq!(
        (vi.profile, vi.level, vi.bit_depth),
        (Some(100), Some(13), Some(8))
    );
    assert_eq!(vi.chroma_format, Some(1));
    assert!(v.codec_private.starts_with(&[1, 100]));
    let a = &ix.tracks[1];
    assert_eq!((a.kind, &a.codec), (TrackKind::Audio, &Codec::Aac));
    let ai = a.audio.as_ref().unwrap();
    assert_eq!((ai.sample_rate, ai.channels), (48000, 1));
    assert_eq!(ai.aac_object_type, Some(2));
    // ffmpeg writes "und": no language.
    assert_eq!(a.language, None);
    // 60 s at a 2 s GOP; the first frame is at 21 ms (AAC priming shifts everything).
    assert_eq!(ix.keyframes.len(), 30);
    assert_eq!((ix.keyframes[0].pts, ix.keyframes[0].offset), (21, 636));
    assert_eq!(ix.keyframes[1].pts, 2021);
    assert_eq!(ix.start, 21);
    // The video's own length (last frame at 59.981 s + 40 ms − 21 ms), not Info's Duration
    // (60.021 s, the end of the audio).
    assert_eq!(ix.duration, 60000);
    assert_eq!(ix.spans.len(), 30);
    assert_spans_sane(&ix);
    assert_eq!(ix.spans[0].start, 636);
    // The last cluster ends where the Cues start.
    assert_eq!(ix.spans.last().unwrap().end, 2_888_157);
    eprintln!(
        "h264_bframes.mkv: {} requests, {} bytes",
        cost.requests, cost.bytes
    );
    assert!(cost.requests <= 3, "{} requests", cost.requests);
    assert!(cost.bytes <= 512 * 1024, "{} bytes", cost.bytes);
    if let Some((n, diff)) = compare_with_ffprobe("h264_bframes.mkv", &ix, true) {
        eprintln!("h264_bframes.mkv: {n} keyframes agree with ffprobe, max diff {diff:.6} s");
    }
}

#[test]
fn no_cues_cluster_scan() {
    let Some(data) = fixture("mkv_no_cues.mkv") else {
        return;
    };
    let (ix, cost) = probe_counted(&data);
    let ix = ix.unwrap();
    assert_eq!(ix.container, Container::Matroska);
    assert_eq!(ix.tracks.len(), 2);
    assert_eq!(ix.tracks[0].codec, Codec::H264);
    // Pipe-written: ffmpeg cuts clusters at 32 KiB, so 90 clusters; 28 of the 30 keyframes
    // start their cluster's video (two come after non-key frames in a cluster).
    assert_eq!(ix.spans.len(), 90);
    assert_eq!(ix.keyframes.len(), 28);
    assert_eq!((ix.keyframes[0].pts, ix.keyframes[0].offset), (21, 550));
    assert_eq!(ix.start, 21);
    // No Duration in Info: the last video frame (59.981 s) plus its 40 ms, from 21 ms.
    assert_eq!(ix.duration, 60000);
    assert_spans_sane(&ix);
    assert_eq!(ix.spans[0].start, 550);
    assert_eq!(ix.spans.last().unwrap().end, ix.file_size);
    let beyond_head = cost.bytes - HEAD_BYTES;
    eprintln!(
        "mkv_no_cues.mkv: {} requests, {} bytes ({} after the head: {:.2} % of {})",
        cost.requests,
        cost.bytes,
        beyond_head,
        100.0 * beyond_head as f64 / data.len() as f64,
        data.len()
    );
    assert!(
        beyond_head * 50 <= data.len() as u64,
        "{beyond_head} bytes after the head"
    );
    if let Some((n, diff)) = compare_with_ffprobe("mkv_no_cues.mkv", &ix, false) {
        eprintln!("mkv_no_cues.mkv: {n} cluster-starting keyframes agree, max diff {diff:.6} s");
    }
}

#[test]
fn hevc_ac3() {
    let Some(data) = fixture("hevc_ac3.mkv") else {
        return;
    };
    let (ix, cost) = probe_counted(&data);
    let ix = ix.unwrap();
    let v = &ix.tracks[0];
    assert_eq!(v.codec, Codec::Hevc);
    let vi = v.video.as_ref().unwrap();
    assert_eq!((vi.width, vi.height), (320, 240));
    assert_eq!(
        (vi.profile, vi.level, vi.tier_high),
        (Some(1), Some(60), Some(false))
    );
    let a = &ix.tracks[1];
    assert_eq!(a.codec, Codec::Ac3);
    let ai = a.audio.as_ref().unwrap();
    assert_eq!((ai.sample_rate, ai.channels), (48000, 6));
    // 2.4 s GOP over 60 s.
    assert_eq!(ix.keyframes.len(), 25);
    assert_eq!(ix.keyframes[1].pts, 2405);
    assert_eq!(ix.duration, 60000);
    assert_spans_sane(&ix);
    assert!(cost.requests <= 3 && cost.bytes <= 512 * 1024);
    if let Some((n, diff)) = compare_with_ffprobe("hevc_ac3.mkv", &ix, true) {
        eprintln!("hevc_ac3.mkv: {n} keyframes agree with ffprobe, max diff {diff:.6} s");
    }
}

#[test]
fn vp9_opus_webm() {
    let Some(data) = fixture("vp9_opus.webm") else {
        return;
    };
    let (ix, cost) = probe_counted(&data);
    let ix = ix.unwrap();
    assert_eq!(ix.container, Container::WebM);
    assert_eq!(ix.tracks[0].codec, Codec::Vp9);
    assert_eq!(ix.tracks[1].codec, Codec::Opus);
    assert_eq!(ix.tracks[1].audio.as_ref().unwrap().sample_rate, 48000);
    assert_eq!(ix.keyframes.len(), 30);
    assert_eq!(ix.start, 7);
    assert_eq!(ix.duration, 60000);
    assert_spans_sane(&ix);
    assert!(cost.requests <= 3 && cost.bytes <= 512 * 1024);
    if let Some((n, diff)) = compare_with_ffprobe("vp9_opus.webm", &ix, true) {
        eprintln!("vp9_opus.webm: {n} keyframes agree with ffprobe, max diff {diff:.6} s");
    }
}

#[test]
fn multi_audio_and_subtitles() {
    let Some(data) = fixture("multi_audio_subs.mkv") else {
        return;
    };
    let ix = probe_bytes(&data).unwrap();
    assert_eq!(ix.tracks.len(), 4);
    let kinds: Vec<_> = ix.tracks.iter().map(|t| t.kind).collect();
    assert_eq!(
        kinds,
        [
            TrackKind::Video,
            TrackKind::Audio,
            TrackKind::Audio,
            TrackKind::Subtitle
        ]
    );
    let (en, fr, sub) = (&ix.tracks[1], &ix.tracks[2], &ix.tracks[3]);
    assert_eq!(
        (en.codec.clone(), fr.codec.clone()),
        (Codec::Aac, Codec::Aac)
    );
    assert_eq!(en.language.as_deref(), Some("eng"));
    assert_eq!(en.title.as_deref(), Some("English"));
    assert!(en.default);
    assert_eq!(fr.language.as_deref(), Some("fra"));
    assert_eq!(fr.title.as_deref(), Some("Francais"));
    assert!(!fr.default);
    assert_eq!(sub.codec, Codec::Srt);
    assert_eq!(sub.language.as_deref(), Some("eng"));
    assert!(sub.video.is_none() && sub.audio.is_none());
    assert_eq!(ix.main_track, Some(0));
    assert_eq!(ix.keyframes.len(), 30);
    assert_spans_sane(&ix);
    if let Some((n, diff)) = compare_with_ffprobe("multi_audio_subs.mkv", &ix, true) {
        eprintln!("multi_audio_subs.mkv: {n} keyframes agree, max diff {diff:.6} s");
    }
}

#[test]
fn two_hour_file_is_cheap() {
    let Some(data) = fixture("long_2h.mkv") else {
        return;
    };
    let t = std::time::Instant::now();
    let (ix, cost) = probe_counted(&data);
    let elapsed = t.elapsed();
    let ix = ix.unwrap();
    eprintln!(
        "long_2h.mkv: {} requests, {} bytes ({:.3} % of {}), {elapsed:?}",
        cost.requests,
        cost.bytes,
        100.0 * cost.bytes as f64 / data.len() as f64,
        data.len()
    );
    // One keyframe every 2 s for 2 hours.
    assert_eq!(ix.keyframes.len(), 3600);
    assert_eq!(ix.spans.len(), 3600);
    assert!(
        (7_200_000..7_202_000).contains(&ix.duration),
        "{}",
        ix.duration
    );
    assert_spans_sane(&ix);
    assert!(cost.requests <= 3);
    assert!(cost.bytes * 100 < data.len() as u64);
    // Generous for debug builds; release is a few milliseconds.
    assert!(elapsed.as_millis() < 2000, "{elapsed:?}");
    if let Some((n, diff)) = compare_with_ffprobe("long_2h.mkv", &ix, true) {
        eprintln!("long_2h.mkv: {n} keyframes agree with ffprobe, max diff {diff:.6} s");
    }
}

#[test]
fn truncated_file_is_an_error() {
    let Some(data) = fixture("truncated.mkv") else {
        return;
    };
    match probe_bytes(&data) {
        Err(ProbeError::Truncated { needed, size, .. }) => {
            assert_eq!(size, 200_000);
            assert!(needed > size);
        }
        other => panic!("expected Truncated, got {other:?}"),
    }
}

/// Polling again without pushing asks for the same bytes, all the way through a cluster scan.
#[test]
fn poll_is_idempotent() {
    let Some(data) = fixture("mkv_no_cues.mkv") else {
        return;
    };
    let size = data.len() as u64;
    let mut store = Store::default();
    store.push(0, data[..HEAD_BYTES as usize].to_vec()).unwrap();
    let mut probe = MkvProbe::new(size);
    let mut polls = 0;
    loop {
        polls += 1;
        assert!(polls < 10_000);
        let first = probe.poll(&mut store).unwrap();
        let Poll::Need(r) = first else { break };
        let again = probe.poll(&mut store).unwrap();
        match again {
            Poll::Need(r2) => assert_eq!(r, r2),
            Poll::Done(_) => panic!("done without the bytes it asked for"),
        }
        let r = ByteRange::new(r.start, r.end.min(size));
        store
            .push(r.start, data[r.start as usize..r.end as usize].to_vec())
            .unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// Hand-built files

/// The bytes of an element ID (its marker bit gives its length).
fn id_bytes(id: u32) -> Vec<u8> {
    let b = id.to_be_bytes();
    let skip = match id {
        0x1000_0000.. => 0,
        0x20_0000.. => 1,
        0x4000.. => 2,
        _ => 3,
    };
    b[skip..].to_vec()
}

/// An element with an 8-byte size (so sizes never change a layout).
fn el(id: u32, body: &[u8]) -> Vec<u8> {
    let mut v = id_bytes(id);
    v.push(0x01);
    v.extend_from_slice(&(body.len() as u64).to_be_bytes()[1..]);
    v.extend_from_slice(body);
    v
}

fn el_unknown(id: u32, body: &[u8]) -> Vec<u8> {
    let mut v = id_bytes(id);
    v.extend_from_slice(&[0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
    v.extend_from_slice(body);
    v
}

fn uint(id: u32, v: u64) -> Vec<u8> {
    el(id, &v.to_be_bytes())
}

fn text(id: u32, s: &str) -> Vec<u8> {
    el(id, s.as_bytes())
}

fn float(id: u32, f: f64) -> Vec<u8> {
    el(id, &f.to_be_bytes())
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

/// Element IDs only the tests build.
mod tid {
    pub const DOC_TYPE: u32 = 0x4282;
    pub const DOC_TYPE_READ_VERSION: u32 = 0x4285;
    pub const SEEK: u32 = 0x4DBB;
    pub const SEEK_ID: u32 = 0x53AB;
    pub const SEEK_POSITION: u32 = 0x53AC;
    pub const TIMESTAMP_SCALE: u32 = 0x2A_D7B1;
    pub const DURATION: u32 = 0x4489;
    pub const TRACK_ENTRY: u32 = 0xAE;
    pub const TRACK_NUMBER: u32 = 0xD7;
    pub const TRACK_TYPE: u32 = 0x83;
    pub const CODEC_ID: u32 = 0x86;
    pub const DEFAULT_DURATION: u32 = 0x23_E383;
    pub const LANGUAGE: u32 = 0x22_B59C;
    pub const LANGUAGE_BCP47: u32 = 0x22_B59D;
    pub const VIDEO: u32 = 0xE0;
    pub const PIXEL_WIDTH: u32 = 0xB0;
    pub const PIXEL_HEIGHT: u32 = 0xBA;
    pub const AUDIO: u32 = 0xE1;
    pub const SAMPLING_FREQUENCY: u32 = 0xB5;
    pub const CHANNELS: u32 = 0x9F;
    pub const CUE_POINT: u32 = 0xBB;
    pub const CUE_TIME: u32 = 0xB3;
    pub const CUE_TRACK_POSITIONS: u32 = 0xB7;
    pub const CUE_TRACK: u32 = 0xF7;
    pub const CUE_CLUSTER_POSITION: u32 = 0xF1;
}

fn ebml_header(doc_type: &str) -> Vec<u8> {
    el(
        id::EBML,
        &cat(&[
            text(tid::DOC_TYPE, doc_type),
            uint(tid::DOC_TYPE_READ_VERSION, 2),
        ]),
    )
}

fn tracks_element() -> Vec<u8> {
    let video = el(
        tid::TRACK_ENTRY,
        &cat(&[
            uint(tid::TRACK_NUMBER, 1),
            uint(tid::TRACK_TYPE, 1),
            text(tid::CODEC_ID, "V_MPEG4/ISO/AVC"),
            uint(tid::DEFAULT_DURATION, 40_000_000),
            el(
                tid::VIDEO,
                &cat(&[uint(tid::PIXEL_WIDTH, 64), uint(tid::PIXEL_HEIGHT, 48)]),
            ),
        ]),
    );
    let audio = el(
        tid::TRACK_ENTRY,
        &cat(&[
            uint(tid::TRACK_NUMBER, 2),
            uint(tid::TRACK_TYPE, 2),
            text(tid::CODEC_ID, "A_OPUS"),
            text(tid::LANGUAGE, "ger"),
            text(tid::LANGUAGE_BCP47, "de-CH"),
            el(
                tid::AUDIO,
                &cat(&[
                    float(tid::SAMPLING_FREQUENCY, 48000.0),
                    uint(tid::CHANNELS, 2),
                ]),
            ),
        ]),
    );
    el(id::TRACKS, &cat(&[video, audio]))
}

fn simple_block(track: u8, rel: i16, key: bool, len: usize) -> Vec<u8> {
    let mut body = vec![0x80 | track];
    body.extend_from_slice(&rel.to_be_bytes());
    body.push(if key { 0x80 } else { 0 });
    body.resize(4 + len, 0x55);
    el(id::SIMPLE_BLOCK, &body)
}

/// A BlockGroup: Block, optional BlockDuration, optional ReferenceBlock (not a keyframe).
fn block_group(track: u8, rel: i16, reference: bool, duration: Option<u64>) -> Vec<u8> {
    let mut block = vec![0x80 | track];
    block.extend_from_slice(&rel.to_be_bytes());
    block.push(0);
    block.resize(200, 0x66);
    let mut parts = vec![el(id::BLOCK, &block)];
    if let Some(d) = duration {
        parts.push(uint(id::BLOCK_DURATION, d));
    }
    if reference {
        parts.push(el(id::REFERENCE_BLOCK, &(-40i64).to_be_bytes()));
    }
    el(id::BLOCK_GROUP, &cat(&parts))
}

/// Options for [`synth`].
#[derive(Default, Clone, Copy)]
struct Synth {
    clusters: usize,
    cues: bool,
    second_seek_head: bool,
    duration: bool,
    unknown_segment: bool,
    block_groups: bool,
    /// 0: the default 1 ms.
    timestamp_scale: u64,
    /// When non-zero, the last Cluster's Timestamp (a hostile file's 10^15).
    last_cluster_ts: u64,
}

/// A small Matroska file: SeekHead, Info, Tracks, clusters of 1 s (25 video frames at 40 ms,
/// an audio frame first, a keyframe every other cluster), then an optional second SeekHead and
/// Cues. With `block_groups`, video frames are BlockGroups (keyframes without ReferenceBlock)
/// and the very last one carries a BlockDuration of 100 ms.
fn synth(o: Synth) -> Vec<u8> {
    let clusters: Vec<Vec<u8>> = (0..o.clusters)
        .map(|c| {
            let mut parts = vec![
                uint(
                    id::TIMESTAMP,
                    if o.last_cluster_ts > 0 && c + 1 == o.clusters {
                        o.last_cluster_ts
                    } else {
                        c as u64 * 1000
                    },
                ),
                simple_block(2, 0, true, 30),
            ];
            for f in 0..25i16 {
                let key = f == 0 && c % 2 == 0;
                let last = c + 1 == o.clusters && f == 24;
                parts.push(if o.block_groups {
                    block_group(1, f * 40, !key, last.then_some(100))
                } else {
                    simple_block(1, f * 40, key, 120)
                });
            }
            el(id::CLUSTER, &cat(&parts))
        })
        .collect();
    let info = el(
        id::INFO,
        &cat(&[
            uint(
                tid::TIMESTAMP_SCALE,
                if o.timestamp_scale == 0 {
                    1_000_000
                } else {
                    o.timestamp_scale
                },
            ),
            if o.duration {
                float(tid::DURATION, o.clusters as f64 * 1000.0)
            } else {
                Vec::new()
            },
        ]),
    );
    let tracks = tracks_element();
    let seek = |target: u32, pos: u64| {
        el(
            tid::SEEK,
            &cat(&[
                el(tid::SEEK_ID, &target.to_be_bytes()),
                uint(tid::SEEK_POSITION, pos),
            ]),
        )
    };
    let seek_head = |entries: &[(u32, u64)]| {
        el(
            id::SEEK_HEAD,
            &cat(&entries.iter().map(|&(t, p)| seek(t, p)).collect::<Vec<_>>()),
        )
    };
    let cues_for = |cluster_pos: &[u64]| {
        el(
            id::CUES,
            &cat(&cluster_pos
                .iter()
                .enumerate()
                .filter(|(i, _)| i % 2 == 0)
                .map(|(i, &p)| {
                    el(
                        tid::CUE_POINT,
                        &cat(&[
                            uint(tid::CUE_TIME, i as u64 * 1000),
                            el(
                                tid::CUE_TRACK_POSITIONS,
                                &cat(&[
                                    uint(tid::CUE_TRACK, 1),
                                    uint(tid::CUE_CLUSTER_POSITION, p),
                                ]),
                            ),
                        ]),
                    )
                })
                .collect::<Vec<_>>()),
        )
    };
    // Lay out with dummy positions (all sizes are fixed-width), then for real.
    let layout = |sh1: &[u8], sh2: &[u8]| -> (Vec<u64>, u64, u64, u64) {
        let mut pos = (sh1.len() + info.len() + tracks.len()) as u64;
        let mut cluster_pos = Vec::new();
        for c in &clusters {
            cluster_pos.push(pos);
            pos += c.len() as u64;
        }
        let sh2_pos = pos;
        let cues_pos = pos + sh2.len() as u64;
        (cluster_pos, sh2_pos, cues_pos, pos)
    };
    let first_entries = |sh2_pos: u64, cues_pos: u64| -> Vec<(u32, u64)> {
        let mut e = vec![(id::INFO, 0u64), (id::TRACKS, 0u64)];
        if o.second_seek_head {
            e.push((id::SEEK_HEAD, sh2_pos));
        } else if o.cues {
            e.push((id::CUES, cues_pos));
        }
        e
    };
    let dummy_sh1 = seek_head(&first_entries(0, 0));
    let dummy_sh2 = if o.second_seek_head {
        seek_head(&[(id::CUES, 0)])
    } else {
        Vec::new()
    };
    let (cluster_pos, sh2_pos, cues_pos, _) = layout(&dummy_sh1, &dummy_sh2);
    let mut entries = first_entries(sh2_pos, cues_pos);
    entries[0].1 = dummy_sh1.len() as u64;
    entries[1].1 = (dummy_sh1.len() + info.len()) as u64;
    let sh1 = seek_head(&entries);
    let sh2 = if o.second_seek_head {
        seek_head(&[(id::CUES, cues_pos)])
    } else {
        Vec::new()
    };
    let cues = if o.cues {
        cues_for(&cluster_pos)
    } else {
        Vec::new()
    };
    let mut body = cat(&[sh1, info.clone(), tracks.clone()]);
    for c in &clusters {
        body.extend_from_slice(c);
    }
    body.extend_from_slice(&sh2);
    body.extend_from_slice(&cues);
    let segment = if o.unknown_segment {
        el_unknown(id::SEGMENT, &body)
    } else {
        el(id::SEGMENT, &body)
    };
    cat(&[ebml_header("matroska"), segment])
}

#[test]
fn synthetic_cues_through_a_second_seek_head() {
    let data = synth(Synth {
        clusters: 10,
        cues: true,
        second_seek_head: true,
        duration: true,
        ..Synth::default()
    });
    let ix = probe_bytes(&data).unwrap();
    assert_eq!(ix.duration, 10_000);
    let pts: Vec<_> = ix.keyframes.iter().map(|k| k.pts).collect();
    assert_eq!(pts, [0, 2000, 4000, 6000, 8000]);
    // From the Cues: one span per cued cluster.
    assert_eq!(ix.spans.len(), 5);
    assert_spans_sane(&ix);
    let a = &ix.tracks[1];
    assert_eq!(a.language.as_deref(), Some("de-CH"));
    assert_eq!(a.audio.as_ref().unwrap().channels, 2);
    assert_eq!(ix.tracks[0].video.as_ref().unwrap().width, 64);
}

#[test]
fn synthetic_timestamp_scales() {
    // 100 µs ticks: timestamps are index ticks as they are, at 10 000 per second.
    let data = synth(Synth {
        clusters: 4,
        cues: true,
        duration: true,
        timestamp_scale: 100_000,
        ..Synth::default()
    });
    let ix = probe_bytes(&data).unwrap();
    assert_eq!(ix.timescale, 10_000);
    assert_eq!(ix.tracks[0].timescale, 10_000);
    // The main track's last block ends at 4360 (Info says 4000): the blocks are the truth.
    assert_eq!(ix.duration, 4360);
    // A scale that does not divide one second.
    let data = synth(Synth {
        clusters: 2,
        timestamp_scale: 333_333,
        ..Synth::default()
    });
    assert!(matches!(
        expect_err(&data, "TimestampScale 333333"),
        ProbeError::Unsupported { .. }
    ));
}

#[test]
fn synthetic_scan_with_block_groups_and_no_duration() {
    for unknown_segment in [false, true] {
        let data = synth(Synth {
            clusters: 6,
            block_groups: true,
            unknown_segment,
            ..Synth::default()
        });
        let ix = probe_bytes(&data).unwrap();
        let pts: Vec<_> = ix.keyframes.iter().map(|k| k.pts).collect();
        assert_eq!(pts, [0, 2000, 4000]);
        assert_eq!(ix.spans.len(), 6);
        assert_spans_sane(&ix);
        // Last frame at 5960 with its BlockDuration of 100.
        assert_eq!(ix.duration, 6060);
    }
    // Cues but no Duration: the clusters after the last cued one are walked for the end.
    let data = synth(Synth {
        clusters: 7,
        cues: true,
        ..Synth::default()
    });
    let (ix, cost) = probe_counted(&data);
    let ix = ix.unwrap();
    assert_eq!(ix.duration, 7000);
    assert_eq!(ix.keyframes.len(), 4);
    assert_eq!(ix.spans.len(), 4);
    // The 16 KiB head does not hold this file: the uncued clusters' blocks are visited with one
    // small header read each (3 clusters × ~8 blocks), never a whole cluster.
    assert!(cost.requests <= 32, "{}", cost.requests);
    assert!(
        cost.bytes < data.len() as u64,
        "{} of {}",
        cost.bytes,
        data.len()
    );
    // SimpleBlocks: the last frame at 5960 plus DefaultDuration 40.
    let data = synth(Synth {
        clusters: 6,
        ..Synth::default()
    });
    let ix = probe_bytes(&data).unwrap();
    assert_eq!(ix.duration, 6000);
    assert_eq!(ix.keyframes.len(), 3);
}

/// Cues larger than the first guessed read cost one more request, contiguous with the first.
#[test]
fn synthetic_large_cues_take_one_more_read() {
    let seek_head = |cues_pos: u64| {
        el(
            id::SEEK_HEAD,
            &el(
                tid::SEEK,
                &cat(&[
                    el(tid::SEEK_ID, &id::CUES.to_be_bytes()),
                    uint(tid::SEEK_POSITION, cues_pos),
                ]),
            ),
        )
    };
    let info = el(id::INFO, &cat(&[float(tid::DURATION, 20_000.0)]));
    let tracks = tracks_element();
    let cluster = el(
        id::CLUSTER,
        &cat(&[uint(id::TIMESTAMP, 0), simple_block(1, 0, true, 100)]),
    );
    let void = el(id::VOID, &vec![0; 100_000]);
    let cluster_pos = (seek_head(0).len() + info.len() + tracks.len()) as u64;
    let cues_pos = cluster_pos + (cluster.len() + void.len()) as u64;
    let points: Vec<u8> = (0..20_000u64)
        .flat_map(|t| {
            el(
                tid::CUE_POINT,
                &cat(&[
                    uint(tid::CUE_TIME, t),
                    el(
                        tid::CUE_TRACK_POSITIONS,
                        &cat(&[
                            uint(tid::CUE_TRACK, 1),
                            uint(tid::CUE_CLUSTER_POSITION, cluster_pos),
                        ]),
                    ),
                ]),
            )
        })
        .collect();
    let body = cat(&[
        seek_head(cues_pos),
        info,
        tracks,
        cluster,
        void,
        el(id::CUES, &points),
    ]);
    let data = cat(&[ebml_header("matroska"), el(id::SEGMENT, &body)]);
    assert!(data.len() > 1_000_000);
    let (ix, cost) = probe_counted(&data);
    let ix = ix.unwrap();
    assert_eq!(ix.keyframes.len(), 20_000);
    // The one cluster's blocks end long before the last cue: Info's Duration is used.
    assert_eq!(ix.duration, 20_000);
    assert_eq!(ix.spans.len(), 1);
    // Head, Cues, the rest of the Cues, and the last cluster for the end time.
    assert_eq!(cost.requests, 4);
}

// ---------------------------------------------------------------------------------------------
// Hostile input

/// A valid EBML header and a Segment of unknown size holding `body`.
fn in_segment(body: &[u8]) -> Vec<u8> {
    cat(&[ebml_header("matroska"), el_unknown(id::SEGMENT, body)])
}

fn expect_err(data: &[u8], what: &str) -> ProbeError {
    match probe_bytes(data) {
        Err(e) => {
            eprintln!("{what}: {e}");
            e
        }
        Ok(ix) => panic!("{what}: expected an error, got {ix:?}"),
    }
}

#[test]
fn hostile_sizes() {
    // Segment claiming 2^56 - 2 bytes.
    let mut seg = id_bytes(id::SEGMENT);
    seg.extend_from_slice(&[0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE]);
    let data = cat(&[ebml_header("matroska"), seg]);
    assert!(matches!(
        expect_err(&data, "huge Segment"),
        ProbeError::Truncated { .. }
    ));
    // Tracks claiming 2^56 - 2 bytes inside an unknown-size Segment.
    let mut tracks = id_bytes(id::TRACKS);
    tracks.extend_from_slice(&[0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE]);
    let data = in_segment(&tracks);
    assert!(matches!(
        expect_err(&data, "huge Tracks"),
        ProbeError::Limit { .. }
    ));
    // A CodecID claiming more bytes than its TrackEntry holds.
    let mut entry = id_bytes(tid::TRACK_ENTRY);
    entry.extend_from_slice(&[0x88, 0x86, 0x01, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00]);
    let data = in_segment(&el(id::TRACKS, &entry));
    expect_err(&data, "oversized child");
    // A 9-byte size VINT (first byte 0).
    let data = in_segment(&[0x16, 0x54, 0xAE, 0x6B, 0x00, 0x80]);
    expect_err(&data, "9-byte size");
    // An EBML header claiming to run past the file.
    let data = [0x1A, 0x45, 0xDF, 0xA3, 0x01, 0, 0, 0, 0, 0, 0x10, 0, 0x42];
    assert!(matches!(
        expect_err(&data, "EBML header past the end"),
        ProbeError::Truncated { .. }
    ));
}

#[test]
fn hostile_zero_lengths() {
    // Empty EBML header: no DocType.
    let data = cat(&[el(id::EBML, &[]), el_unknown(id::SEGMENT, &[])]);
    assert!(matches!(
        expect_err(&data, "empty EBML header"),
        ProbeError::Malformed { .. }
    ));
    // Empty Tracks, empty Segment, zero-size TrackEntry.
    assert!(matches!(
        expect_err(&in_segment(&el(id::TRACKS, &[])), "empty Tracks"),
        ProbeError::NoTracks(_)
    ));
    assert!(matches!(
        expect_err(&in_segment(&[]), "empty Segment"),
        ProbeError::NoTracks(_)
    ));
    let data = in_segment(&el(id::TRACKS, &[0xAE, 0x80]));
    expect_err(&data, "zero-size TrackEntry");
    // A zero-length file that still says EBML.
    expect_err(&[0x1A, 0x45, 0xDF, 0xA3], "bare magic");
}

#[test]
fn hostile_ids_and_doc_types() {
    // A 5-byte ID where the first top-level element should be.
    let data = in_segment(&[0x08, 0x11, 0x22, 0x33, 0x44, 0x80]);
    assert!(matches!(
        expect_err(&data, "5-byte ID"),
        ProbeError::Malformed { .. }
    ));
    // EBMLMaxIDLength 5, DocTypeReadVersion 9, DocType "avi".
    let h = el(
        id::EBML,
        &cat(&[uint(0x42F2, 5), text(tid::DOC_TYPE, "matroska")]),
    );
    let data = cat(&[h, el_unknown(id::SEGMENT, &[])]);
    assert!(matches!(
        expect_err(&data, "EBMLMaxIDLength 5"),
        ProbeError::Unsupported { .. }
    ));
    let h = el(
        id::EBML,
        &cat(&[
            text(tid::DOC_TYPE, "matroska"),
            uint(tid::DOC_TYPE_READ_VERSION, 9),
        ]),
    );
    let data = cat(&[h, el_unknown(id::SEGMENT, &[])]);
    expect_err(&data, "DocTypeReadVersion 9");
    let data = cat(&[ebml_header("avi"), el_unknown(id::SEGMENT, &[])]);
    expect_err(&data, "DocType avi");
    // Something other than a Segment after the header.
    let data = cat(&[ebml_header("webm"), el(id::TRACKS, &[])]);
    expect_err(&data, "no Segment");
}

#[test]
fn hostile_unknown_sizes() {
    let tracks = tracks_element();
    // Unknown-size Tracks.
    let data = in_segment(&el_unknown(id::TRACKS, &tracks[12..]));
    assert!(matches!(
        expect_err(&data, "unknown-size Tracks"),
        ProbeError::Unsupported { .. }
    ));
    // An unknown-size Cluster and no Cues: the scan cannot skip it.
    let cluster = el_unknown(
        id::CLUSTER,
        &cat(&[uint(id::TIMESTAMP, 0), simple_block(1, 0, true, 10)]),
    );
    let data = in_segment(&cat(&[tracks.clone(), cluster]));
    match expect_err(&data, "unknown-size Cluster") {
        ProbeError::Unsupported { what, .. } => assert!(what.contains("Cluster")),
        e => panic!("{e:?}"),
    }
    // A block before its cluster's Timestamp; a cluster child overrunning the cluster.
    let cluster = el(id::CLUSTER, &simple_block(1, 0, true, 10));
    expect_err(
        &in_segment(&cat(&[tracks.clone(), cluster])),
        "no Timestamp",
    );
    let mut bad = uint(id::TIMESTAMP, 0);
    bad.extend_from_slice(&[0xA3, 0x01, 0, 0, 0, 0, 0, 0x10, 0]);
    bad.extend_from_slice(&[0x81, 0, 0, 0x80]);
    let cluster = el(id::CLUSTER, &bad);
    match expect_err(&in_segment(&cat(&[tracks, cluster])), "child overruns") {
        ProbeError::Malformed { what, .. } => assert!(what.contains("past its parent")),
        e => panic!("{e:?}"),
    }
}

#[test]
fn hostile_nesting_and_counts() {
    // 100 000 TrackEntry headers nested in each other.
    let mut nested = Vec::new();
    for _ in 0..100_000 {
        nested.extend_from_slice(&[0xAE, 0xFF]);
    }
    expect_err(&in_segment(&el(id::TRACKS, &nested)), "nested TrackEntries");
    // 100 000 sibling TrackEntries: MAX_TRACKS, not a stack overflow.
    let siblings = el(tid::TRACK_ENTRY, &uint(tid::TRACK_NUMBER, 1)).repeat(100_000);
    assert!(matches!(
        expect_err(
            &in_segment(&el(id::TRACKS, &siblings)),
            "sibling TrackEntries"
        ),
        ProbeError::Limit { .. }
    ));
    let empty = [0xAE, 0x80].repeat(100_000);
    expect_err(&in_segment(&el(id::TRACKS, &empty)), "empty TrackEntries");
    // Videos nested in Videos.
    let mut deep = Vec::new();
    for _ in 0..50_000 {
        deep.extend_from_slice(&[0xE0, 0xFF]);
    }
    let entry = el(tid::TRACK_ENTRY, &cat(&[uint(tid::TRACK_NUMBER, 1), deep]));
    expect_err(&in_segment(&el(id::TRACKS, &entry)), "nested Video");
    // 200 000 sibling CuePoints parse without recursion (and without video entries the
    // probe falls back to the scan, which finds no cluster).
    let points = el(tid::CUE_POINT, &uint(tid::CUE_TIME, 1)).repeat(200_000);
    let data = in_segment(&cat(&[tracks_element(), el(id::CUES, &points)]));
    let ix = probe_bytes(&data).unwrap();
    assert!(ix.keyframes.is_empty());
}

/// Small deterministic generator for the mutation test.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
}

/// Mutated and cut-short files never panic (they may probe or fail).
#[test]
fn mutations_never_panic() {
    let mut inputs = vec![
        synth(Synth {
            clusters: 4,
            cues: true,
            second_seek_head: true,
            duration: true,
            ..Synth::default()
        }),
        synth(Synth {
            clusters: 4,
            block_groups: true,
            ..Synth::default()
        }),
        synth(Synth {
            clusters: 3,
            cues: true,
            unknown_segment: true,
            ..Synth::default()
        }),
    ];
    if let Some(d) = fixture("h264_bframes.mkv") {
        inputs.push(d);
    }
    // MKV_MUTATION_ROUNDS=20000 for a longer local run.
    let rounds: usize = std::env::var("MKV_MUTATION_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150);
    let mut rng = Lcg(42);
    for base in &inputs {
        // Small files: anywhere. Fixtures: the metadata at the front, and the Cues at the end.
        let front = if base.len() <= 1 << 16 {
            base.len()
        } else {
            2048
        };
        // Fixtures are megabytes: fewer rounds.
        let n = if base.len() > 1 << 20 {
            rounds / 10
        } else {
            rounds
        };
        for round in 0..n {
            let mut data = base.clone();
            for _ in 0..1 + rng.next() % 8 {
                let i = if round % 3 == 2 && base.len() > 4096 {
                    base.len() - 1 - (rng.next() as usize % 1024)
                } else {
                    rng.next() as usize % front
                };
                data[i] = match rng.next() % 4 {
                    0 => 0xFF,
                    1 => 0x01,
                    2 => 0x00,
                    _ => rng.next() as u8,
                };
            }
            if round % 5 == 4 {
                data.truncate(rng.next() as usize % data.len());
            }
            let _ = probe_bytes(&data);
        }
    }
}

/// Issue 10: a last Cluster Timestamp of 10^15 ms is a claimed duration of 31 000 years.
#[test]
fn absurd_last_cluster_timestamp_is_a_limit() {
    let data = synth(Synth {
        clusters: 4,
        last_cluster_ts: 1_000_000_000_000_000,
        ..Synth::default()
    });
    match probe_bytes(&data) {
        Err(ProbeError::Limit { limit, .. }) => assert_eq!(limit, "MAX_DURATION_SECS"),
        other => panic!("expected MAX_DURATION_SECS, got {other:?}"),
    }
    write_seed("mkv_cluster_ts_1e15.mkv", &data);
}

/// Writes `data` into `fuzz/seeds/probe_mkv` when `HLSGATE_WRITE_SEEDS` is set.
fn write_seed(name: &str, data: &[u8]) {
    if std::env::var_os("HLSGATE_WRITE_SEEDS").is_some() && data.len() < 64 * 1024 {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/probe_mkv");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), data).unwrap();
    }
}
