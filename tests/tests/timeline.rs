//! The output timeline on real-world shapes (issue 11), checked with an independent parser
//! (ffprobe reading each rendition's init + segments as one file, edit lists applied):
//!
//! - every rendition presents from 0 (± one video frame / one AAC frame);
//! - video of a constant-rate source keeps the source's exact rate (`avg_frame_rate`), every
//!   step between presentation times one frame (no hole or overlap at the start or any join);
//! - audio frames follow each other exactly (1024 samples), joins included;
//! - each rendition ends where its playlist's EXTINFs say (± one frame).
//!
//! One test per fixture shape; `hlsgate export --ladder` makes the outputs (the pipeline every
//! server request goes through), the quality ladder's rungs included.

use std::path::Path;
use std::process::Command;

use hlsgate_tests::{fixture, hlsgate, Scratch};

/// One rendition as ffprobe sees it.
struct Seen {
    id: String,
    kind: String,
    /// `avg_frame_rate` as ffprobe prints it (`30000/1001`).
    avg_frame_rate: String,
    sample_rate: f64,
    /// `codec_name` as ffprobe prints it.
    codec: String,
    /// Presentation times, sorted, seconds.
    pts: Vec<f64>,
    /// Sum of the playlist's EXTINFs.
    extinf_total: f64,
}

/// The source's nominal video rate per ffprobe (`r_frame_rate`).
fn source_rate(name: &str) -> Option<String> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["stream=r_frame_rate", "-of", "csv=p=0"])
        .arg(fixture(name))
        .output()
        .expect("ffprobe");
    // A TS with two programs lists the stream twice.
    let text = String::from_utf8_lossy(&out.stdout);
    let s = text.lines().next().unwrap_or("").trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn rate(text: &str) -> f64 {
    let mut p = text.split('/');
    let n: f64 = p.next().and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let d: f64 = p.next().and_then(|v| v.parse().ok()).unwrap_or(1.0);
    if d == 0.0 {
        0.0
    } else {
        n / d
    }
}

fn extinf_total(playlist: &str) -> f64 {
    playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .filter_map(|v| {
            v.trim_end_matches(',')
                .split(',')
                .next()?
                .parse::<f64>()
                .ok()
        })
        .sum()
}

/// Exports `name` and reads every fMP4 rendition back with ffprobe.
fn export(name: &str) -> Vec<Seen> {
    let scratch = Scratch::new("timeline");
    let dir = scratch.path().join("out");
    let src = fixture(name);
    // With the quality ladder: its rungs (the 4:4:4 film's 480p and 360p) are checked too.
    let (code, _, err) = hlsgate(&[
        "export",
        "--ladder",
        src.to_str().unwrap(),
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "export {name}: {err}");
    let mut seen = Vec::new();
    let mut rdirs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("init.mp4").exists())
        .collect();
    rdirs.sort();
    for rdir in rdirs {
        let id = rdir.file_name().unwrap().to_string_lossy().into_owned();
        let playlist = std::fs::read_to_string(rdir.join("index.m3u8")).unwrap();
        let mut bytes = std::fs::read(rdir.join("init.mp4")).unwrap();
        for line in playlist.lines().filter(|l| l.ends_with(".m4s")) {
            bytes.extend(std::fs::read(rdir.join(line)).unwrap());
        }
        let whole = scratch.path().join(format!("{id}.mp4"));
        std::fs::write(&whole, &bytes).unwrap();
        seen.push(probe(&id, &whole, extinf_total(&playlist)));
    }
    assert!(!seen.is_empty(), "{name}: no rendition exported");
    seen
}

fn probe(id: &str, path: &Path, extinf_total: f64) -> Seen {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-of",
            "json",
            "-show_streams",
            "-show_packets",
        ])
        .arg(path)
        .output()
        .expect("ffprobe");
    assert!(out.status.success(), "ffprobe {id}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let stream = &v["streams"][0];
    let mut pts: Vec<f64> = v["packets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["pts_time"].as_str()?.parse().ok())
        .collect();
    pts.sort_by(f64::total_cmp);
    Seen {
        id: id.to_string(),
        kind: stream["codec_type"].as_str().unwrap_or("").to_string(),
        avg_frame_rate: stream["avg_frame_rate"].as_str().unwrap_or("").to_string(),
        codec: stream["codec_name"].as_str().unwrap_or("").to_string(),
        sample_rate: stream["sample_rate"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0.0),
        pts,
        extinf_total,
    }
}

/// Checks the rules of the module docs; `cfr`: the source video has a constant rate (else every
/// step is over 0 and at most two frames).
fn check(name: &str, cfr: bool) -> Vec<String> {
    let seen = export(name);
    let nominal = source_rate(name);
    let mut failures = Vec::new();
    for s in &seen {
        let (Some(&first), Some(&last)) = (s.pts.first(), s.pts.last()) else {
            failures.push(format!("{}: no packet", s.id));
            continue;
        };
        let steps: Vec<f64> = s.pts.windows(2).map(|w| w[1] - w[0]).collect();
        let frame = match s.kind.as_str() {
            "video" => {
                let src = nominal.clone().unwrap_or_default();
                if cfr && s.avg_frame_rate != src {
                    failures.push(format!(
                        "{}: avg_frame_rate {} != the source's {src}",
                        s.id, s.avg_frame_rate
                    ));
                }
                1.0 / rate(&src).max(1.0)
            }
            "audio" => {
                // Samples per frame: AAC 1024; an original copied in its codec keeps its own
                // (FLAC's block is whatever the encoder chose: the first step says it).
                let samples = match s.codec.as_str() {
                    "ac3" | "eac3" => 1536.0,
                    "mp3" if s.sample_rate < 32_000.0 => 576.0,
                    "mp3" => 1152.0,
                    "opus" => 960.0,
                    "flac" => steps.first().copied().unwrap_or(0.0) * s.sample_rate,
                    _ => 1024.0,
                };
                samples / s.sample_rate.max(1.0)
            }
            _ => continue,
        };
        // Half a millisecond of slack for printed rounding (ffprobe prints 6 decimals).
        let eps = 0.0005;
        if first < -eps || first > frame + eps {
            failures.push(format!(
                "{}: first presented at {first:.6} s (not within one frame, {frame:.6} s, of 0)",
                s.id
            ));
        }
        let exact = s.kind == "audio" || cfr;
        for (i, step) in steps.iter().enumerate() {
            let bad = if exact {
                (step - frame).abs() > eps
            } else {
                // Not constant rate: a dropped frame (an empty AVI chunk) may leave one step of
                // two frames, never more, never a repeat.
                *step <= 0.0 || *step > 2.0 * frame + eps
            };
            if bad {
                failures.push(format!(
                    "{}: step {step:.6} s after {:.6} s (frame {frame:.6} s)",
                    s.id, s.pts[i]
                ));
                break;
            }
        }
        let end = last + frame;
        if (end - s.extinf_total).abs() > frame + eps {
            failures.push(format!(
                "{}: ends at {end:.6} s, its playlist says {:.6} s",
                s.id, s.extinf_total
            ));
        }
        println!(
            "{name} {}: {} packets, first {first:.6} s, end {end:.6} s (EXTINF {:.6} s), rate {}",
            s.id,
            s.pts.len(),
            s.extinf_total,
            s.avg_frame_rate
        );
    }
    assert!(failures.is_empty(), "{name}:\n{}", failures.join("\n"));
    seen.into_iter().map(|s| s.id).collect()
}

#[test]
fn mkv_29_97_fps_keeps_its_rate() {
    check("h264_2997.mkv", true);
}

#[test]
fn mkv_24_fps_keeps_its_rate() {
    check("h264_24.mkv", true);
}

#[test]
fn mkv_b_frames() {
    check("h264_bframes.mkv", true);
}

#[test]
fn mkv_without_cues() {
    check("mkv_no_cues.mkv", true);
}

#[test]
fn ts_starting_at_1_4_s_presents_from_0() {
    check("h264_aac.ts", true);
}

#[test]
fn ts_across_the_33_bit_wrap() {
    check("ts_wrap.ts", true);
}

#[test]
fn fragmented_mp4_with_global_sidx_and_b_frames() {
    check("h264_aac_fmp4_sidx.mp4", true);
}

#[test]
fn fragmented_mp4() {
    check("h264_aac_fragmented.mp4", true);
}

#[test]
fn mp4_faststart_and_moov_at_end() {
    check("h264_aac_faststart.mp4", true);
    check("h264_aac_moov_end.mp4", true);
}

#[test]
fn mp4_long_gop_and_5_1_at_44_1_khz() {
    check("h264_long_gop.mp4", true);
    check("h264_aac51_44k.mp4", true);
}

#[test]
fn transcoded_4_4_4_odd_size() {
    // 1366×766 after the transcode: the ladder's 480p and 360p rungs, checked alike.
    let ids = check("h264_444_odd.mkv", true);
    for rung in ["v1-480p", "v1-360p"] {
        assert!(ids.iter().any(|i| i == rung), "no {rung} among {ids:?}");
    }
}

#[test]
fn transcoded_hevc_ac3_and_vp9_opus() {
    check("hevc_ac3.mkv", true);
    check("vp9_opus.webm", true);
}

#[test]
fn audio_only_m4a() {
    check("aac_only.m4a", true);
}

#[test]
fn two_audio_tracks_and_subtitles() {
    check("multi_audio_subs.mkv", true);
}

#[test]
fn open_gop_h264() {
    check("h264_open_gop.mkv", true);
}

/// Audio files only libavformat reads (issue 12): audio-only HLS on the AAC grid.
#[test]
fn universal_audio_files() {
    for name in [
        "audio.flac",
        "audio_cbr.mp3",
        "audio_vbr.mp3",
        "audio_vorbis.ogg",
        "audio_opus.opus",
        "audio.wav",
        "audio.aiff",
        "audio_alac.m4a",
    ] {
        check(name, true);
    }
}

/// Video containers only libavformat reads (issue 12): MPEG-4 Part 2 in AVI and WMV2 in ASF
/// transcoded, H.264 in FLV copied, ProRes + PCM in QuickTime transcoded. The AVI's second
/// frame is a dropped (empty) chunk, so its first frame lasts two: not constant rate.
#[test]
fn universal_video_files() {
    check("mpeg4_mp3.avi", false);
    for name in [
        "h264_aac.flv",
        "wmv2_wma.wmv",
        "prores_pcm.mov",
        "h264_ac3_51.m2ts",
    ] {
        check(name, true);
    }
}

/// Cut files (an interrupted download, issue 12): an MP4 with its `moov` at the front and a
/// Matroska file, both cut mid-way, play to their last whole frame (read through libavformat
/// once the native probe finds them cut), on the same timeline rules.
#[test]
fn cut_files_play_what_exists() {
    for name in ["truncated.mp4", "truncated.mkv"] {
        check(name, true);
    }
}
