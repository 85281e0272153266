//! Real media through real FFmpeg: the H.264 (with B-frames) and AAC samples of
//! `h264_aac_faststart.mp4`, read from its moov with mp4-atom, written as init + 3 media
//! segments (video only, audio only, and both in one file), then checked with ffprobe/ffmpeg.

// Test code: unwrap/expect are how a test fails (as in the hlsgate-tests crate).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{ffprobe, probe_packets, read_mp4, FxTrack, ProbePacket};
use fmp4::{init_segment, media_segment_for, Run, Sample, SampleEntry, TrackSpec};

/// What we expect ffprobe to report for one sample, in the track timescale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Expected {
    dts: i64,
    pts: i64,
    duration: i64,
    size: u64,
    key: bool,
}

/// A track in an output file: (track_ID, the fixture track, its parts, composition shift).
type Layout<'a> = (u32, &'a FxTrack, &'a [Part], i64);

/// One track's part of one segment: sample index range and its tfdt.
#[derive(Debug, Clone, Copy)]
struct Part {
    start: usize,
    end: usize,
    tfdt: u64,
}

fn decode_time(track: &FxTrack, index: usize) -> u64 {
    track.samples[..index]
        .iter()
        .map(|s| u64::from(s.duration))
        .sum()
}

/// The run of `part`, with composition offsets shifted by `shift` so that the first keyframe
/// (the first presented frame of a closed GOP) has pts == dts == tfdt; later frames of the GOP
/// that are presented before they are decoded get negative offsets.
fn run<'a>(file: &'a [u8], track: &FxTrack, id: u32, part: Part, shift: i64) -> Run<'a> {
    Run {
        track_id: id,
        base_decode_time: part.tfdt,
        samples: track.samples[part.start..part.end]
            .iter()
            .map(|s| Sample {
                data: &file[s.offset as usize..s.offset as usize + s.size as usize],
                duration: s.duration,
                composition_offset: i32::try_from(s.cts - shift).unwrap(),
                keyframe: !track.video || s.sync,
            })
            .collect(),
    }
}

fn expected(track: &FxTrack, parts: &[Part], shift: i64) -> Vec<Expected> {
    let mut out = Vec::new();
    for part in parts {
        let mut dts = part.tfdt as i64;
        for s in &track.samples[part.start..part.end] {
            out.push(Expected {
                dts,
                pts: dts + s.cts - shift,
                duration: i64::from(s.duration),
                size: u64::from(s.size),
                key: !track.video || s.sync,
            });
            dts += i64::from(s.duration);
        }
    }
    out
}

fn spec(track: &FxTrack, id: u32) -> TrackSpec {
    TrackSpec {
        id,
        timescale: track.timescale,
        entry: if track.video {
            SampleEntry::Avc {
                config: track.config.clone(),
            }
        } else {
            SampleEntry::Aac {
                asc: track.config.clone(),
            }
        },
        width: track.width,
        height: track.height,
        rotation: 0,
        sample_rate: track.sample_rate,
        channels: track.channels,
        language: Some("eng".into()),
        avg_bitrate: if track.video { 0 } else { 96_000 },
        max_bitrate: if track.video { 0 } else { 96_000 },
        presentation_offset: 0,
    }
}

fn out_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fmp4-real-media");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn ffmpeg_errors(path: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "ffmpeg failed on {}", path.display());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn decoded_frames(path: &Path, stream: &str) -> usize {
    ffprobe(
        path,
        &[
            "-count_frames",
            "-select_streams",
            stream,
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
        ],
    )
    .trim()
    .parse()
    .unwrap()
}

/// FFmpeg's mov demuxer (5.1, as installed) does not present negative composition offsets
/// as written: it keeps our dts and adds `dts_shift` = the largest negative offset it has seen
/// in the stream to every pts (FFmpeg's own fMP4 muxer with `negative_cts_offsets` gets the
/// same treatment). So ffprobe's pts are ours plus that constant; dts, durations, sizes and
/// flags are exactly ours.
fn ffmpeg_pts_shift(want: &[Expected]) -> i64 {
    want.iter().map(|e| e.dts - e.pts).max().unwrap_or(0).max(0)
}

/// Checks ffprobe's packets of stream `stream` against `want` (see [`ffmpeg_pts_shift`]).
fn check_packets(packets: &[ProbePacket], stream: u32, want: &[Expected], what: &str) {
    let shift = ffmpeg_pts_shift(want);
    let ours: Vec<&ProbePacket> = packets.iter().filter(|p| p.stream == stream).collect();
    let got: Vec<Expected> = ours
        .iter()
        .enumerate()
        .map(|(i, p)| Expected {
            dts: p.dts,
            pts: p.pts - shift,
            // FFmpeg 5.1 reports no duration for the first AAC packet of a fragmented file
            // (its own fMP4 output too): there, take it from the next packet's dts.
            duration: p.duration.unwrap_or_else(|| {
                assert_eq!(i, 0, "{what}: only the first packet may lack a duration");
                ours[1].dts - p.dts
            }),
            size: p.size,
            key: p.key,
        })
        .collect();
    assert_eq!(got.len(), want.len(), "{what}: packet count");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(
            g, w,
            "{what}: stream {stream} packet {i} (ffmpeg pts shift {shift})"
        );
    }
}

#[test]
fn h264_and_aac_segments_play_in_ffmpeg() {
    let path = hlsgate_tests::fixture("h264_aac_faststart.mp4");
    let (file, tracks) = read_mp4(&path);
    let video = tracks.iter().find(|t| t.video).expect("video track");
    let audio = tracks.iter().find(|t| !t.video).expect("audio track");

    // Video: three segments of one GOP each.
    let keys: Vec<usize> = (0..video.samples.len())
        .filter(|&i| video.samples[i].sync)
        .collect();
    assert!(keys.len() >= 4, "fixture has {} keyframes", keys.len());
    let video_parts: Vec<Part> = (0..3)
        .map(|k| Part {
            start: keys[k],
            end: keys[k + 1],
            tfdt: decode_time(video, keys[k]),
        })
        .collect();
    // The fixture really has B-frames: some frame is presented before an earlier-decoded one.
    assert!(video.samples[keys[0]..keys[1]]
        .windows(2)
        .any(|w| w[1].cts < w[0].cts - i64::from(w[0].duration)));
    let shift = video.samples[0].cts;

    // Audio: the samples whose decode time falls in each video segment's span.
    let audio_index_at = |video_time: u64| -> usize {
        let t = video_time * u64::from(audio.timescale) / u64::from(video.timescale);
        (0..audio.samples.len())
            .find(|&i| decode_time(audio, i) >= t)
            .unwrap()
    };
    let video_end = decode_time(video, keys[3]);
    let audio_parts: Vec<Part> = (0..3)
        .map(|k| {
            let start = audio_index_at(video_parts[k].tfdt);
            let end = if k == 2 {
                audio_index_at(video_end)
            } else {
                audio_index_at(video_parts[k + 1].tfdt)
            };
            Part {
                start,
                end,
                tfdt: decode_time(audio, start),
            }
        })
        .collect();

    let want_video = expected(video, &video_parts, shift);
    let want_audio = expected(audio, &audio_parts, 0);
    assert!(
        want_video.iter().any(|e| e.pts < e.dts),
        "some composition offset is negative"
    );

    let dir = out_dir();
    // (file name, tracks: (id, track, parts, shift))
    let layouts: [(&str, Vec<Layout>); 3] = [
        ("video.mp4", vec![(1, video, &video_parts, shift)]),
        ("audio.mp4", vec![(1, audio, &audio_parts, 0)]),
        (
            "both.mp4",
            vec![(1, video, &video_parts, shift), (2, audio, &audio_parts, 0)],
        ),
    ];
    for (name, layout) in &layouts {
        let specs: Vec<TrackSpec> = layout.iter().map(|(id, t, _, _)| spec(t, *id)).collect();
        let mut bytes = init_segment(&specs).unwrap();
        for k in 0..3 {
            let runs: Vec<Run> = layout
                .iter()
                .map(|(id, t, parts, shift)| run(&file, t, *id, parts[k], *shift))
                .collect();
            bytes.extend(media_segment_for(&specs, k as u32 + 1, &runs).unwrap());
        }
        let out = dir.join(name);
        std::fs::write(&out, &bytes).unwrap();

        assert_eq!(ffmpeg_errors(&out), "", "{name}: ffmpeg reported errors");
        let packets = probe_packets(&out);
        for (stream, (_, t, parts, _)) in layout.iter().enumerate() {
            let want = if t.video { &want_video } else { &want_audio };
            check_packets(&packets, stream as u32, want, name);
            let sel = format!("{}", stream);
            assert_eq!(
                decoded_frames(&out, &sel),
                want.len(),
                "{name}: decoded frames"
            );
            // The first presented frame of each segment is at its tfdt.
            let mut at = 0;
            for part in parts.iter() {
                let n = part.end - part.start;
                let first_pts = want[at..at + n].iter().map(|e| e.pts).min().unwrap();
                let got_first = packets
                    .iter()
                    .filter(|p| p.stream == stream as u32)
                    .skip(at)
                    .take(n)
                    .map(|p| p.pts)
                    .min()
                    .unwrap();
                assert_eq!(
                    first_pts, part.tfdt as i64,
                    "{name}: first pts of a segment"
                );
                assert_eq!(
                    got_first - ffmpeg_pts_shift(want),
                    part.tfdt as i64,
                    "{name}: first pts of a segment, per ffprobe"
                );
                at += n;
            }
        }
    }
}

/// The tkhd matrix says the clockwise rotation we asked for: FFmpeg reports its display
/// matrix as a counter-clockwise angle.
#[test]
fn rotation_reaches_ffprobe() {
    let path = hlsgate_tests::fixture("h264_aac_faststart.mp4");
    let (file, tracks) = read_mp4(&path);
    let video = tracks.iter().find(|t| t.video).expect("video track");
    let end = (1..video.samples.len())
        .find(|&i| video.samples[i].sync)
        .unwrap();
    let part = Part {
        start: 0,
        end,
        tfdt: 0,
    };
    let shift = video.samples[0].cts;
    for (rotation, ffmpeg_says) in [
        (0, None),
        (90, Some(-90)),
        (180, Some(180)),
        (270, Some(90)),
    ] {
        let spec = TrackSpec {
            rotation,
            ..spec(video, 1)
        };
        let mut bytes = init_segment(std::slice::from_ref(&spec)).unwrap();
        bytes.extend(
            media_segment_for(
                std::slice::from_ref(&spec),
                1,
                &[run(&file, video, 1, part, shift)],
            )
            .unwrap(),
        );
        let out = out_dir().join(format!("rotation_{rotation}.mp4"));
        std::fs::write(&out, &bytes).unwrap();
        let got = ffprobe(
            &out,
            &[
                "-select_streams",
                "v:0",
                "-show_entries",
                "stream_side_data=rotation",
                "-of",
                "csv=p=0",
            ],
        );
        let got: Option<i32> = got
            .split(|c: char| c == ',' || c.is_whitespace())
            .find_map(|f| f.parse().ok());
        let got = got.map(|r| if r == -180 { 180 } else { r });
        assert_eq!(got, ffmpeg_says, "rotation {rotation}");
        assert_eq!(ffmpeg_errors(&out), "");
    }
}
