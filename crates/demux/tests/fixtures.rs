//! Every fixture, planned and demuxed segment by segment, against ffprobe's packets (an
//! independent demuxer): every video and audio packet is in some segment with the same pts
//! (±1 tick), size and keyframe flag; the video frames presented in each segment's window
//! cover every video packet exactly once; subtitles keep their durations; each track's
//! `start` is ffprobe's first pts. Plus errors (never panics) on garbage and cut ranges.

// Test code: unwrap is how a test fails (helpers outside `#[test]` fns too).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;

use demux::{Demuxed, Demuxer, Frame};
use hlsgate_tests::{ffprobe_csv, fixture};
use plan::PlanOptions;
use probe::{Container, MediaIndex, TrackKind};

const FIXTURES: &[&str] = &[
    "h264_aac_faststart.mp4",
    "h264_aac_moov_end.mp4",
    "h264_long_gop.mp4",
    "h264_aac_fragmented.mp4",
    "h264_bframes.mkv",
    "mkv_no_cues.mkv",
    "hevc_ac3.mkv",
    "h264_aac.ts",
    "vp9_opus.webm",
    "multi_audio_subs.mkv",
    "aac_only.m4a",
];

/// One ffprobe stream: kind and time base.
#[derive(Debug)]
struct FfStream {
    kind: String,
    tb_num: i64,
    tb_den: i64,
}

/// One ffprobe packet, pts in its stream's time base.
#[derive(Debug, Clone, Copy)]
struct FfPacket {
    stream: usize,
    pts: i64,
    duration: Option<i64>,
    size: usize,
    key: bool,
}

fn ff_streams(path: &Path) -> Vec<FfStream> {
    ffprobe_csv(
        path,
        &["-show_entries", "stream=index,codec_type,time_base"],
    )
    .lines()
    .filter(|l| !l.trim().is_empty())
    .map(|l| {
        let f: Vec<&str> = l.split(',').collect();
        let (n, d) = f[2].split_once('/').unwrap();
        FfStream {
            kind: f[1].to_string(),
            tb_num: n.parse().unwrap(),
            tb_den: d.parse().unwrap(),
        }
    })
    .collect()
}

fn ff_packets(path: &Path) -> Vec<FfPacket> {
    // CSV order is ffprobe's: stream_index, pts, duration, size, flags.
    ffprobe_csv(
        path,
        &[
            "-show_entries",
            "packet=stream_index,pts,duration,size,flags",
        ],
    )
    .lines()
    .filter_map(|l| {
        let f: Vec<&str> = l.split(',').collect();
        Some(FfPacket {
            stream: f.first()?.parse().ok()?,
            pts: f.get(1)?.parse().ok()?,
            duration: f.get(2)?.parse().ok(),
            size: f.get(3)?.parse().ok()?,
            key: f.get(4)?.starts_with('K'),
        })
    })
    .collect()
}

/// ffprobe stream index → index track (the k-th stream of a kind is the k-th track of it).
fn stream_tracks(index: &MediaIndex, streams: &[FfStream]) -> Vec<Option<usize>> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    streams
        .iter()
        .map(|s| {
            let kind = match s.kind.as_str() {
                "video" => TrackKind::Video,
                "audio" => TrackKind::Audio,
                "subtitle" => TrackKind::Subtitle,
                _ => return None,
            };
            let k = seen.entry(s.kind.clone()).or_insert(0);
            let pos = index
                .tracks
                .iter()
                .enumerate()
                .filter(|(_, t)| t.kind == kind)
                .nth(*k)
                .map(|(i, _)| i);
            *k += 1;
            pos
        })
        .collect()
}

fn to_ticks(v: i64, s: &FfStream, timescale: u32) -> i64 {
    let n = i128::from(v) * i128::from(s.tb_num) * i128::from(timescale);
    let d = i128::from(s.tb_den);
    i64::try_from((n + d / 2).div_euclid(d)).unwrap()
}

struct Source {
    data: Vec<u8>,
    index: MediaIndex,
    demuxer: Demuxer,
}

fn open(name: &str) -> Source {
    let data = std::fs::read(fixture(name)).unwrap();
    let index = probe::probe_bytes(&data).unwrap();
    let moov = index
        .moov
        .map(|r| &data[usize::try_from(r.start).unwrap()..usize::try_from(r.end).unwrap()]);
    let demuxer = Demuxer::new(&index, moov).unwrap();
    Source {
        data,
        index,
        demuxer,
    }
}

fn demux_range(src: &Source, start: u64, end: u64) -> Demuxed {
    let bytes = &src.data[usize::try_from(start).unwrap()..usize::try_from(end).unwrap()];
    src.demuxer.frames(bytes, start).unwrap()
}

#[test]
fn segments_hold_every_packet_as_ffprobe_sees_it() {
    for name in FIXTURES {
        let path = fixture(name);
        let src = open(name);
        let index = &src.index;
        let plan = plan::plan(index, &PlanOptions::default()).unwrap();
        let streams = ff_streams(&path);
        let packets = ff_packets(&path);
        let map = stream_tracks(index, &streams);

        // Every segment's frames, per track: pts → frames.
        let mut seen: BTreeMap<u64, BTreeMap<i64, Vec<Frame>>> = BTreeMap::new();
        let main = index.main().unwrap();
        let mut presented: BTreeMap<i64, usize> = BTreeMap::new();
        for seg in &plan.segments {
            assert_eq!(seg.ranges.len(), 1, "{name}: segment {}", seg.index);
            let r = seg.ranges[0];
            let out = demux_range(&src, r.start, r.end);
            for (id, frames) in &out.tracks {
                assert!(index.tracks.iter().any(|t| t.id == *id));
                for f in frames {
                    seen.entry(*id)
                        .or_default()
                        .entry(f.pts)
                        .or_default()
                        .push(f.clone());
                }
            }
            if main.kind == TrackKind::Video {
                for f in out.tracks.get(&main.id).into_iter().flatten() {
                    if f.pts >= seg.start && f.pts < seg.end {
                        *presented.entry(f.pts).or_default() += 1;
                    }
                }
            }
        }

        let ts = index.container == Container::MpegTs;
        let mut checked = 0usize;
        let mut main_pts: Vec<i64> = Vec::new();
        let mut first: BTreeMap<usize, i64> = BTreeMap::new();
        for p in &packets {
            let Some(ti) = map.get(p.stream).copied().flatten() else {
                continue;
            };
            let t = &index.tracks[ti];
            let pts = to_ticks(p.pts, &streams[p.stream], t.timescale);
            let f = first.entry(ti).or_insert(pts);
            *f = (*f).min(pts);
            if t.id == main.id {
                main_pts.push(pts);
            }
            let by_pts = seen.get(&t.id);
            let found: Vec<&Frame> = (pts - 1..=pts + 1)
                .filter_map(|x| by_pts.and_then(|m| m.get(&x)))
                .flatten()
                .collect();
            match t.kind {
                TrackKind::Video | TrackKind::Audio => {
                    assert!(
                        !found.is_empty(),
                        "{name}: track {} ({:?}) packet at pts {pts} is in no segment",
                        t.id,
                        t.codec
                    );
                    let ok = found.iter().any(|f| {
                        let size_ok = match (ts, t.kind) {
                            // Annex B rewritten: sizes differ by design.
                            (true, TrackKind::Video) => true,
                            // ADTS headers (7 bytes, 9 with CRC) are stripped.
                            (true, TrackKind::Audio) if t.codec == probe::Codec::Aac => {
                                p.size == f.data.len() + 7 || p.size == f.data.len() + 9
                            }
                            _ => p.size == f.data.len(),
                        };
                        size_ok && f.keyframe == p.key
                    });
                    assert!(
                        ok,
                        "{name}: track {} packet pts {pts} size {} key {}: frames {:?}",
                        t.id,
                        p.size,
                        p.key,
                        found
                            .iter()
                            .map(|f| (f.pts, f.data.len(), f.keyframe))
                            .collect::<Vec<_>>()
                    );
                    checked += 1;
                }
                TrackKind::Subtitle => {
                    let f = found
                        .first()
                        .unwrap_or_else(|| panic!("{name}: subtitle at {pts} in no segment"));
                    assert_eq!(f.data.len(), p.size, "{name}: subtitle at {pts}");
                    let d = p
                        .duration
                        .map(|d| to_ticks(d, &streams[p.stream], t.timescale));
                    assert_eq!(f.duration.map(i64::from), d, "{name}: subtitle at {pts}");
                    checked += 1;
                }
                TrackKind::Other => {}
            }
        }
        assert!(checked > 100, "{name}: only {checked} packets checked");

        // Track starts: the first pts ffprobe reports.
        for (ti, pts) in &first {
            let t = &index.tracks[*ti];
            if matches!(t.kind, TrackKind::Video | TrackKind::Audio) {
                assert_eq!(t.start, Some(*pts), "{name}: track {} start", t.id);
            }
        }

        // The main video track: segments' windows tile its frames exactly once.
        if main.kind == TrackKind::Video {
            main_pts.sort_unstable();
            let mut got: Vec<i64> = Vec::new();
            for (&pts, &n) in &presented {
                assert_eq!(n, 1, "{name}: video frame {pts} presented by {n} segments");
                got.push(pts);
            }
            assert_eq!(got.len(), main_pts.len(), "{name}: presented frames");
            for (a, b) in got.iter().zip(&main_pts) {
                assert!((a - b).abs() <= 1, "{name}: presented {a} vs ffprobe {b}");
            }
        }
        eprintln!(
            "{name}: {} segments, {checked} packets matched ffprobe",
            plan.segments.len()
        );
    }
}

/// The demuxed bytes are the container's own: an MP4 sample and a Matroska frame equal the
/// file's bytes at ffprobe's packet position (nothing was rewritten in these fixtures).
#[test]
fn frame_bytes_are_the_stored_bytes() {
    for name in [
        "h264_aac_faststart.mp4",
        "h264_bframes.mkv",
        "vp9_opus.webm",
    ] {
        let src = open(name);
        let path = fixture(name);
        let pos: Vec<(i64, u64, usize)> = ffprobe_csv(
            &path,
            &[
                "-select_streams",
                "v:0",
                "-show_entries",
                "packet=pts,pos,size",
            ],
        )
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            Some((f[0].parse().ok()?, f[2].parse().ok()?, f[1].parse().ok()?))
        })
        .take(60)
        .collect();
        let out = demux_range(&src, 0, src.data.len() as u64);
        let main = src.index.main().unwrap().id;
        let frames = &out.tracks[&main];
        for (pts, at, size) in pos {
            let f = frames
                .iter()
                .find(|f| (f.pts - pts).abs() <= 1)
                .unwrap_or_else(|| panic!("{name}: no frame at {pts}"));
            // MP4: the sample's first byte; Matroska: the block element, whose header (ID, size,
            // track, timestamp, flags) comes first.
            let at = usize::try_from(at).unwrap();
            assert_eq!(f.data.len(), size, "{name}: frame {pts}");
            assert!(
                (0..=16).any(|k| src.data[at + k..at + k + size] == f.data[..]),
                "{name}: frame {pts} is not the bytes at {at}"
            );
        }
    }
}

#[test]
fn ts_frames_are_length_prefixed_without_parameter_sets() {
    let src = open("h264_aac.ts");
    let video = src.index.main().unwrap();
    // The probe built an avcC from the in-band parameter sets, and an ASC for the audio.
    assert_eq!(video.codec_private.first(), Some(&1));
    assert!(probe::codecs::h264::parse_avcc(&video.codec_private).is_some());
    let audio = src
        .index
        .tracks
        .iter()
        .find(|t| t.kind == TrackKind::Audio)
        .unwrap();
    assert!(probe::codecs::aac::parse_asc(&audio.codec_private).is_some());
    assert_eq!(audio.codec_private.len(), 2);
    let out = demux_range(&src, 0, src.data.len() as u64);
    let frames = &out.tracks[&video.id];
    assert!(frames.len() > 1000);
    for f in frames {
        let mut pos = 0;
        while pos < f.data.len() {
            let len = u32::from_be_bytes(f.data[pos..pos + 4].try_into().unwrap()) as usize;
            let t = f.data[pos + 4] & 0x1F;
            assert!(!matches!(t, 7 | 8 | 9 | 12), "NAL type {t} kept");
            pos += 4 + len;
        }
        assert_eq!(pos, f.data.len());
    }
}

#[test]
fn garbage_and_cut_ranges_are_errors_or_fewer_frames() {
    for name in FIXTURES {
        let src = open(name);
        let plan = plan::plan(&src.index, &PlanOptions::default()).unwrap();
        let r = plan.segments[1].ranges[0];
        let whole = demux_range(&src, r.start, r.end);
        let count = |d: &Demuxed| d.tracks.values().map(Vec::len).sum::<usize>();
        // Cut at the end: a prefix of the frames, none cut short.
        let cut = demux_range(&src, r.start, r.start + (r.end - r.start) / 2);
        assert!(count(&cut) < count(&whole), "{name}: cut range");
        for (id, frames) in &cut.tracks {
            for f in frames {
                assert!(
                    whole.tracks[id].contains(f),
                    "{name}: frame {} of the cut range differs",
                    f.pts
                );
            }
        }
        // Random bytes, zeros, and ranges starting at odd offsets: no panic.
        let mut x: u32 = 1;
        let noise: Vec<u8> = (0..200_000)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect();
        let _ = src.demuxer.frames(&noise, r.start);
        let _ = src.demuxer.frames(&vec![0; 50_000], r.start);
        for skip in [1u64, 7, 100, 4099] {
            let a = usize::try_from(r.start + skip).unwrap();
            let b = usize::try_from(r.end).unwrap();
            let _ = src.demuxer.frames(&src.data[a..b], r.start + skip);
        }
        let _ = src.demuxer.frames(&[], u64::MAX);
    }
    // Garbage where a container structure is expected is an error, not an empty answer.
    let mp4 = open("h264_aac_fragmented.mp4");
    assert!(mp4.demuxer.frames(&[0xFF; 64], 5000).is_err());
    let ts = open("h264_aac.ts");
    assert!(ts.demuxer.frames(&[0x00; 1000], 0).is_err());
    // An MP4 without its moov bytes, or with garbage for them.
    let m = open("h264_aac_faststart.mp4");
    assert!(Demuxer::new(&m.index, None).is_err());
    assert!(Demuxer::new(&m.index, Some(&[0, 0, 0, 8, b'm', b'o', b'o', b'v'])).is_err());
    assert!(Demuxer::new(&m.index, Some(&[1, 2, 3])).is_err());
}
