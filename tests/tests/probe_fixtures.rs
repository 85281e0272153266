//! `hlsgate probe --json` against ffprobe, for every fixture with video: each keyframe we report
//! is a real keyframe at that time (±1 ms), its offset points at what holds it, and the list is
//! complete for MP4 and TS (for Matroska: the Cues' keyframes, or the cluster-starting ones).

use hlsgate_tests::{
    ffprobe_keyframe_times, ffprobe_video_packets, fixture, hlsgate, Family, VIDEO_FIXTURES,
};
use serde_json::Value;

fn probe_json(name: &str) -> Value {
    let path = fixture(name);
    let (code, out, err) = hlsgate(&["probe", "--json", path.to_str().unwrap()]);
    assert_eq!(code, 0, "probe {name} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{name}: bad JSON ({e}): {out}"))
}

#[test]
fn keyframes_agree_with_ffprobe() {
    for &(name, family) in VIDEO_FIXTURES {
        let path = fixture(name);
        let j = probe_json(name);
        let ours: Vec<(f64, u64)> = j["keyframes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| (k["pts"].as_f64().unwrap(), k["offset"].as_u64().unwrap()))
            .collect();
        let packets = ffprobe_video_packets(&path);
        let mut truth = ffprobe_keyframe_times(&path);
        if truth.len() == packets.len() {
            // The decoder ignored -skip_frame nokey (libvpx does): every frame came back. The
            // container's keyframe flags, as ffprobe reads them, are the truth then.
            truth = packets.iter().filter(|p| p.key).map(|p| p.pts).collect();
        }
        assert!(!ours.is_empty(), "{name}: no keyframes");
        let bytes = std::fs::read(&path).unwrap();
        for (i, &(pts, offset)) in ours.iter().enumerate() {
            let near = truth.iter().any(|t| (t - pts).abs() <= 0.001);
            assert!(
                near,
                "{name}: keyframe {i} at {pts} s is not an ffprobe keyframe"
            );
            let packet = packets
                .iter()
                .find(|p| p.key && (p.pts - pts).abs() <= 0.001)
                .unwrap_or_else(|| panic!("{name}: no key packet at {pts}"));
            match family {
                Family::Mp4 | Family::Ts => assert_eq!(
                    offset, packet.pos,
                    "{name}: keyframe at {pts} s: offset {offset}, ffprobe pos {}",
                    packet.pos
                ),
                Family::Mkv => {
                    let o = offset as usize;
                    assert_eq!(
                        bytes.get(o..o + 4),
                        Some(&[0x1F, 0x43, 0xB6, 0x75][..]),
                        "{name}: offset {offset} of keyframe {pts} is not a Cluster"
                    );
                    assert!(offset <= packet.pos, "{name}: cluster after its block");
                    if let Some(&(_, next)) = ours.get(i + 1) {
                        assert!(
                            packet.pos < next,
                            "{name}: block of {pts} is past the next cluster"
                        );
                    }
                }
            }
        }
        match family {
            Family::Mp4 | Family::Ts => assert_eq!(
                ours.len(),
                truth.len(),
                "{name}: {} keyframes, ffprobe decodes {}",
                ours.len(),
                truth.len()
            ),
            Family::Mkv => assert!(ours.len() * 2 >= truth.len(), "{name}: too few keyframes"),
        }
        let dur = j["duration"].as_f64().unwrap();
        assert!((dur - 60.0).abs() < 0.2, "{name}: duration {dur}");
        eprintln!(
            "{name}: {} keyframes agree with ffprobe ({} decoded)",
            ours.len(),
            truth.len()
        );
    }
}

#[test]
fn tracks_are_described() {
    let j = probe_json("multi_audio_subs.mkv");
    let tracks = j["tracks"].as_array().unwrap();
    let kinds: Vec<&str> = tracks.iter().map(|t| t["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["video", "audio", "audio", "subtitle"]);
    assert_eq!(tracks[1]["language"], "eng");
    assert_eq!(tracks[2]["language"], "fra");
    assert_eq!(tracks[1]["title"], "English");
    assert_eq!(tracks[3]["codec"], "subrip");
    let j = probe_json("hevc_ac3.mkv");
    assert_eq!(j["tracks"][0]["codec"], "hevc");
    assert_eq!(j["tracks"][1]["codec"], "ac3");
    assert_eq!(j["tracks"][1]["audio"]["channels"], 6);
    let j = probe_json("h264_aac_faststart.mp4");
    let v = &j["tracks"][0]["video"];
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(320), Some(240))
    );
    assert_eq!(v["profile"], 100);
    assert_eq!(j["tracks"][1]["audio"]["sample_rate"], 48000);
    let j = probe_json("h264_aac.ts");
    assert_eq!(j["container"], "mpeg-ts");
    assert_eq!(j["tracks"][0]["video"]["width"], 320);
}

#[test]
fn bad_inputs_fail_cleanly() {
    for (name, needle) in [
        // Its sample tables (`moov` at the end) are cut off: nothing says where a frame is.
        ("truncated_moov_end.mp4", "truncated"),
        ("random.bin", "not a media file"),
        ("empty.mp4", "empty"),
        ("text.mp4", "not a media file"),
    ] {
        let path = fixture(name);
        let (code, _out, err) = hlsgate(&["probe", path.to_str().unwrap()]);
        assert_eq!(code, 1, "{name}: exit {code} (101 would be a panic): {err}");
        assert!(err.starts_with("hlsgate: "), "{name}: {err}");
        assert!(
            err.contains(needle),
            "{name}: message {err:?} lacks {needle:?}"
        );
        assert!(!err.contains("panicked"), "{name}: {err}");
        eprintln!("{name}: {}", err.trim());
    }
}

/// `segment` and `export` errors say what exists and name the path.
#[test]
fn cli_errors_say_what_exists() {
    let src = fixture("h264_bframes.mkv");
    let src = src.to_str().unwrap();
    let (code, _, err) = hlsgate(&["segment", src, "v0", "3", "-o", "/dev/null"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("no rendition \"v0\"") && err.contains("it has: v1, a2"),
        "{err}"
    );
    let (code, _, err) = hlsgate(&["segment", src, "v1", "99", "-o", "/dev/null"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("no segment 99: this source has 10 (0 to 9)"),
        "{err}"
    );
    let scratch = hlsgate_tests::Scratch::new("cli-errors");
    let file = scratch.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let (code, _, err) = hlsgate(&["export", src, file.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(file.to_str().unwrap()), "{err}");
}

#[test]
fn closed_stdout_is_not_a_crash() {
    use std::io::Read;
    use std::process::{Command, Stdio};
    // `hlsgate probe --json big.mkv | head -c 16`: the reader leaves after a few bytes.
    let mut child = Command::new(hlsgate_tests::hlsgate_bin())
        .args(["probe", "--json"])
        .arg(fixture("long_2h.mkv"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // stdout is dropped here: the pipe is closed.
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}

/// A cut file whose container is a sequence of self-contained pieces (fMP4 fragments, TS
/// packets) indexes the complete pieces: a file still being written plays up to where it is.
#[test]
fn cut_streams_index_what_is_complete() {
    for (name, whole) in [
        ("truncated_fragmented.mp4", "h264_aac_fragmented.mp4"),
        ("truncated.ts", "h264_aac.ts"),
    ] {
        let j = probe_json(name);
        let size = j["file_size"].as_u64().unwrap();
        let dur = j["duration"].as_f64().unwrap();
        assert!(dur > 5.0 && dur < 59.0, "{name}: duration {dur}");
        let whole_j = probe_json(whole);
        let whole_kf = whole_j["keyframes"].as_array().unwrap();
        for (i, k) in j["keyframes"].as_array().unwrap().iter().enumerate() {
            assert!(
                k["offset"].as_u64().unwrap() < size,
                "{name}: keyframe past the end"
            );
            assert_eq!(
                k, &whole_kf[i],
                "{name}: keyframe {i} differs from the whole file's"
            );
        }
        eprintln!("{name}: {dur:.3} s indexed of {size} bytes");
    }
}

/// The index duration is what the main (video) track presents, per ffprobe: from the first
/// frame's pts to the last frame's pts + duration, ±1 ms. The plan's EXTINFs sum to it, so this
/// is what makes the last EXTINF true. (Matroska's Info Duration is the longest track's, often
/// the audio; it must not leak into the video's timeline.)
#[test]
fn duration_is_the_main_tracks_presented_length() {
    for &(name, _) in VIDEO_FIXTURES {
        let j = probe_json(name);
        let ours = j["duration"].as_f64().unwrap();
        let csv = hlsgate_tests::ffprobe_csv(
            &fixture(name),
            &[
                "-select_streams",
                "v:0",
                "-show_entries",
                "packet=pts_time,duration_time",
            ],
        );
        let frames: Vec<(f64, f64)> = csv
            .lines()
            .filter_map(|l| {
                let mut f = l.split(',');
                Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
            })
            .collect();
        let first = frames.iter().map(|f| f.0).fold(f64::INFINITY, f64::min);
        let end = frames
            .iter()
            .map(|f| f.0 + f.1)
            .fold(f64::NEG_INFINITY, f64::max);
        let truth = end - first;
        assert!(
            (ours - truth).abs() <= 0.001,
            "{name}: index duration {ours} s, ffprobe's video presents {truth} s"
        );
        let start = j["start"].as_f64().unwrap();
        assert!(
            (start - first).abs() <= 0.001,
            "{name}: start {start} vs {first}"
        );
        eprintln!("{name}: duration {ours:.3} s = ffprobe video {truth:.3} s");
    }
}

/// The decoder buffer size we read from each fixture's codec record equals what FFmpeg's
/// `trace_headers` bitstream filter reads from the stream's first SPS (H.264
/// `max_dec_frame_buffering`, HEVC `sps_max_dec_pic_buffering_minus1 + 1`).
#[tokio::test]
async fn decoder_buffer_size_agrees_with_ffmpeg() {
    let mut checked = 0;
    for (name, _) in VIDEO_FIXTURES {
        let src = source::FileSource::open_path(&fixture(name)).await.unwrap();
        let index = source::probe(&src).await.unwrap().0;
        let video = &index.tracks[0];
        let hevc = match video.codec {
            probe::Codec::H264 => false,
            probe::Codec::Hevc => true,
            _ => continue,
        };
        let record = &video.codec_private;
        let ours = probe::codecs::dpb_frames(record, hevc);
        let out = std::process::Command::new("ffmpeg")
            .args(["-v", "info", "-i"])
            .arg(fixture(name))
            .args(["-map", "0:v:0", "-c", "copy", "-frames:v", "1"])
            .args(["-bsf:v", "trace_headers", "-f", "null", "-"])
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        let field = if hevc {
            "sps_max_dec_pic_buffering_minus1"
        } else {
            "max_dec_frame_buffering"
        };
        let theirs = log
            .lines()
            .find(|l| l.contains(field))
            .and_then(|l| l.rsplit('=').next())
            .map(|v| v.trim().parse::<u32>().unwrap() + u32::from(hevc));
        let theirs = theirs.unwrap_or_else(|| panic!("{name}: no {field} in trace_headers"));
        assert_eq!(ours, Some(theirs), "{name}: decoder buffer frames");
        checked += 1;
    }
    assert!(checked >= 8, "checked {checked} fixtures");
}

/// Leading pictures (decoded after a keyframe, presented before it) of the Matroska fixtures,
/// counted in the clusters the probe read anyway, against ffprobe's packet order: x264's open
/// GOPs have them, closed GOPs have none.
#[test]
fn leading_pictures_of_open_gops_are_counted() {
    for (name, open) in [("h264_open_gop.mkv", true), ("h264_bframes.mkv", false)] {
        let j = probe_json(name);
        let lead = j["tracks"][0]["video"]["leading_frames"].as_u64();
        // The truth: per keyframe, the packets after it (storage order, up to the next
        // keyframe) presented before it.
        let packets = ffprobe_video_packets(&fixture(name));
        let mut most = 0u64;
        for (i, k) in packets.iter().enumerate().filter(|(_, p)| p.key) {
            let n = packets[i + 1..]
                .iter()
                .take_while(|p| !p.key)
                .filter(|p| p.pts < k.pts)
                .count() as u64;
            most = most.max(n);
        }
        assert_eq!(most > 0, open, "{name}: ffprobe counts {most}");
        let lead = lead.unwrap_or_else(|| panic!("{name}: no leading_frames in {j}"));
        assert_eq!(lead > 0, open, "{name}: probe says {lead}");
        assert!(lead <= most, "{name}: probe {lead} > ffprobe {most}");
        println!("{name}: leading pictures {lead} (ffprobe, all keyframes: {most})");
    }
}
