//! The segment pipeline end to end: the real `hlsgate` binary exports every fixture, and the
//! output is checked with parsers we did not write (ffmpeg/ffprobe, mp4-atom):
//!
//! - every rendition (init + all segments) decodes with no error; durations match the source;
//!   passthrough keeps every video frame;
//! - joins are exact (`tfdt(k+1) = tfdt(k) + Σ durations(k)`) and every EXTINF equals the
//!   segment's duration within 1 ms;
//! - transcoded audio joins without clicks; segments made in any order, in fresh processes,
//!   are byte-identical; subtitles land on the video timeline; the continuous stream keeps audio
//!   and video together; thumbnails decode.

use std::path::{Path, PathBuf};
use std::process::Command;

use hlsgate_tests::mp4check::{fragments, presentation_offsets, timescales};
use hlsgate_tests::{ffprobe_csv, fixture, hlsgate, Scratch};

/// One rendition of an export, read back.
#[derive(Debug)]
struct Rendition {
    id: String,
    kind: &'static str,
    extinf: Vec<f64>,
    files: Vec<PathBuf>,
}

fn parse_media_playlist(path: &Path) -> (Vec<f64>, Vec<String>) {
    let text = std::fs::read(path).unwrap();
    match m3u8_rs::parse_playlist_res(&text).unwrap() {
        m3u8_rs::Playlist::MediaPlaylist(p) => (
            p.segments.iter().map(|s| f64::from(s.duration)).collect(),
            p.segments.iter().map(|s| s.uri.clone()).collect(),
        ),
        m3u8_rs::Playlist::MasterPlaylist(_) => panic!("{} is a master playlist", path.display()),
    }
}

/// Exports `name` and lists its renditions (video and audio from the master's variants and
/// EXT-X-MEDIA entries).
fn export(name: &str, dir: &Path) -> Vec<Rendition> {
    export_with(name, dir, &[])
}

/// [`export`] with more `hlsgate export` arguments.
fn export_with(name: &str, dir: &Path, args: &[&str]) -> Vec<Rendition> {
    let src = fixture(name);
    let mut all = vec!["export", src.to_str().unwrap(), dir.to_str().unwrap()];
    all.extend_from_slice(args);
    let (code, out, err) = hlsgate(&all);
    assert_eq!(code, 0, "export {name} failed: {out}{err}");
    let master = std::fs::read(dir.join("master.m3u8")).unwrap();
    let m = match m3u8_rs::parse_playlist_res(&master).unwrap() {
        m3u8_rs::Playlist::MasterPlaylist(m) => m,
        m3u8_rs::Playlist::MediaPlaylist(_) => panic!("master.m3u8 is a media playlist"),
    };
    let mut uris: Vec<(String, &'static str)> = m
        .variants
        .iter()
        .map(|v| (v.uri.clone(), "video"))
        .collect();
    for a in &m.alternatives {
        let kind = match a.media_type {
            m3u8_rs::AlternativeMediaType::Audio => "audio",
            m3u8_rs::AlternativeMediaType::Subtitles => "subtitles",
            _ => continue,
        };
        if let Some(u) = &a.uri {
            uris.push((u.clone(), kind));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for (uri, kind) in uris {
        if !seen.insert(uri.clone()) {
            continue;
        }
        let pl = dir.join(&uri);
        let rdir = pl.parent().unwrap().to_path_buf();
        let (extinf, seg_uris) = parse_media_playlist(&pl);
        // An audio-only source's variant is the audio playlist itself.
        let kind = if kind == "video" && seg_uris.iter().all(|u| u.ends_with(".m4s")) {
            let init = std::fs::read(rdir.join("init.mp4")).unwrap();
            if is_audio_init(&init) {
                "audio"
            } else {
                "video"
            }
        } else {
            kind
        };
        out.push(Rendition {
            id: rdir.file_name().unwrap().to_string_lossy().into_owned(),
            kind,
            extinf,
            files: seg_uris.iter().map(|u| rdir.join(u)).collect(),
        });
    }
    out
}

fn is_audio_init(init: &[u8]) -> bool {
    init.windows(4).any(|w| w == b"soun")
}

/// init + every segment of `r`, concatenated into one file.
fn concat(r: &Rendition, dir: &Path) -> PathBuf {
    let path = dir.join(format!("{}-all.mp4", r.id));
    let rdir = r.files[0].parent().unwrap();
    let mut bytes = std::fs::read(rdir.join("init.mp4")).unwrap();
    for f in &r.files {
        bytes.extend(std::fs::read(f).unwrap());
    }
    std::fs::write(&path, bytes).unwrap();
    path
}

/// `ffmpeg -v error -i FILE -f null -`: (stderr, decoded duration from the last frame).
fn decode(path: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Decoded frames and the span they cover (first pts to last pts + duration), per ffprobe.
/// (frames, first presentation time, presented duration) of `stream` as ffprobe decodes it.
fn decoded_frames(path: &Path, stream: &str) -> (u64, f64, f64) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", stream, "-show_entries"])
        .args(["frame=pts_time,pkt_duration_time", "-of", "compact=p=0"])
        .arg(path)
        .output()
        .unwrap();
    let mut n = 0u64;
    let mut first = f64::MAX;
    let mut end = 0f64;
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        let field = |k: &str| {
            l.split('|')
                .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
                .and_then(|v| v.parse::<f64>().ok())
        };
        let Some(pts) = field("pts_time") else {
            continue;
        };
        n += 1;
        first = first.min(pts);
        end = end.max(pts + field("pkt_duration_time").unwrap_or(0.0));
    }
    (n, first, end - first)
}

/// Leading pictures (decoded after a keyframe, presented before it) of the source keyframes
/// presented at `starts` (seconds from the first frame), counted from ffprobe's packets.
fn leading_pictures_at(name: &str, segment_starts: &[f64]) -> u64 {
    let out = ffprobe_csv(
        &fixture(name),
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts_time,flags",
        ],
    );
    let packets: Vec<(f64, bool)> = out
        .lines()
        .filter_map(|l| {
            let (pts, flags) = l.split_once(',')?;
            Some((pts.parse().ok()?, flags.starts_with('K')))
        })
        .collect();
    let t0 = starts(name).1;
    let mut n = 0;
    for (i, &(kpts, key)) in packets.iter().enumerate() {
        if !key
            || !segment_starts
                .iter()
                .any(|s| (t0 + s - kpts).abs() < 0.0005)
        {
            continue;
        }
        n += packets[i + 1..]
            .iter()
            .take_while(|p| !p.1)
            .filter(|p| p.0 < kpts)
            .count() as u64;
    }
    n
}

fn source_video(name: &str) -> (u64, f64, f64) {
    let src = fixture(name);
    let out = ffprobe_csv(
        &src,
        &[
            "-select_streams",
            "v:0",
            "-count_packets",
            "-show_entries",
            "stream=nb_read_packets,r_frame_rate",
        ],
    );
    let line = out.lines().next().unwrap();
    let f: Vec<&str> = line.split(',').collect();
    let (num, den) = f[0].split_once('/').unwrap();
    let fps = num.parse::<f64>().unwrap() / den.parse::<f64>().unwrap();
    let packets: u64 = f[1].parse().unwrap();
    let (_, _, dur) = decoded_frames(&src, "v:0");
    // The output runs from the video's first frame (output time 0) to its end.
    (packets, dur, 1.0 / fps)
}

/// (video start, the earliest of the video and audio starts ≥ 0), per ffprobe.
fn starts(name: &str) -> (f64, f64) {
    let out = ffprobe_csv(
        &fixture(name),
        &["-show_entries", "stream=codec_type,start_time"],
    );
    let mut video = f64::MAX;
    let mut audio = f64::MAX;
    for l in out.lines() {
        let (kind, t) = l.split_once(',').unwrap_or((l, ""));
        let Ok(t) = t.trim().parse::<f64>() else {
            continue;
        };
        match kind {
            "video" => video = video.min(t),
            "audio" if t >= 0.0 => audio = audio.min(t),
            _ => {}
        }
    }
    (video, video.min(audio))
}

/// tfdt(k+1) = tfdt(k) + Σ durations(k); EXTINF = duration ± 1 ms; sequence numbers; video
/// segments start with a sync sample.
fn check_joins(r: &Rendition) {
    let rdir = r.files[0].parent().unwrap();
    let init = std::fs::read(rdir.join("init.mp4")).unwrap();
    let ts = timescales(&init);
    assert_eq!(ts.len(), 1, "{}: one track per rendition", r.id);
    let timescale = f64::from(ts[0].1);
    let edit = presentation_offsets(&init)[0].1;
    let mut next: Option<u64> = None;
    for (k, f) in r.files.iter().enumerate() {
        let frags = fragments(&std::fs::read(f).unwrap());
        assert_eq!(frags.len(), 1, "{}: one fragment per segment", f.display());
        assert_eq!(frags[0].sequence as usize, k + 1, "{}", f.display());
        let t = &frags[0].trafs[0];
        if let Some(n) = next {
            assert_eq!(
                t.tfdt, n,
                "{} segment {k}: tfdt must continue the previous",
                r.id
            );
        }
        if r.kind == "video" {
            assert_eq!(
                t.flags[0] & 0x0001_0000,
                0,
                "{} segment {k} starts on a sync sample",
                r.id
            );
            let shown = t.presentation_times(edit);
            assert_eq!(
                shown[0], t.tfdt as i64,
                "{} segment {k}: its keyframe presents at tfdt",
                r.id
            );
            assert!(
                t.ctos.iter().all(|&c| c >= 0),
                "{} segment {k}: a negative composition offset (edit {edit})",
                r.id
            );
            // Only the keyframe's leading pictures (open GOP) present before it.
            let end = t.tfdt as i64 + t.duration() as i64;
            assert!(
                shown.iter().all(|&p| p < end),
                "{} segment {k}: a frame presented after the segment",
                r.id
            );
        }
        let secs = t.duration() as f64 / timescale;
        assert!(
            (secs - r.extinf[k]).abs() <= 0.001,
            "{} segment {k}: EXTINF {} vs produced {secs}",
            r.id,
            r.extinf[k]
        );
        next = Some(t.tfdt + t.duration());
    }
}

fn check_fixture(name: &str) {
    let tmp = Scratch::new("export");
    let renditions = export(name, tmp.path());
    assert!(!renditions.is_empty());
    let (src_frames, src_dur, frame) = if name.ends_with(".m4a") {
        (0, 0.0, 0.0)
    } else {
        source_video(name)
    };
    for r in renditions.iter().filter(|r| r.kind != "subtitles") {
        check_joins(r);
        let all = concat(r, tmp.path());
        let errors = decode(&all);
        assert!(
            errors.trim().is_empty(),
            "{name} {}: ffmpeg says {errors}",
            r.id
        );
        let total: f64 = r.extinf.iter().sum();
        if r.kind == "video" {
            let (frames, first, dur) = decoded_frames(&all, "v:0");
            // FFmpeg places the first frame where the writer did: at the first tfdt (it would
            // be late by the most negative composition offset if there were one).
            let start = fragments(&std::fs::read(&r.files[0]).unwrap())[0].trafs[0].tfdt;
            let ts = timescales(&std::fs::read(r.files[0].with_file_name("init.mp4")).unwrap());
            let start = start as f64 / f64::from(ts[0].1);
            assert!(
                (first - start).abs() <= 0.0015,
                "{name} {}: ffmpeg shows the first frame at {first} s, planned {start} s",
                r.id
            );
            assert!(
                (dur - src_dur).abs() <= frame + 1e-6,
                "{name} {}: decoded {dur} s vs source {src_dur} s",
                r.id
            );
            if !r.id.contains('-') {
                // Passthrough keeps every frame, the leading pictures of an open GOP (HEVC CRA +
                // RASL) at a segment start included (counted independently, to show they occur).
                let starts: Vec<f64> = r
                    .extinf
                    .iter()
                    .scan(0.0, |t, d| {
                        let s = *t;
                        *t += d;
                        Some(s)
                    })
                    .skip(1)
                    .collect();
                let leading = leading_pictures_at(name, &starts);
                assert_eq!(
                    frames, src_frames,
                    "{name} {}: passthrough keeps every frame ({leading} are open-GOP leading pictures at joins)",
                    r.id
                );
                if leading > 0 {
                    println!(
                        "{name} {}: {leading} open-GOP leading pictures at joins, all kept",
                        r.id
                    );
                }
            }
            println!(
                "{name} {}: {frames} frames, {dur:.3} s (source {src_frames}, {src_dur:.3} s)",
                r.id
            );
        } else {
            let (_, _, dur) = decoded_frames(&all, "a:0");
            assert!(
                (dur - total).abs() <= 1024.0 / 44_100.0 + 1e-6,
                "{name} {}: decoded {dur} s vs playlist {total} s",
                r.id
            );
            if src_dur > 0.0 {
                assert!(
                    (dur - src_dur).abs() <= 1024.0 / 44_100.0 + frame,
                    "{name} {}: audio {dur} s vs video {src_dur} s",
                    r.id
                );
            }
            println!("{name} {}: audio {dur:.4} s, playlist {total:.4} s", r.id);
        }
    }
}

#[test]
fn mp4_faststart() {
    check_fixture("h264_aac_faststart.mp4");
}

#[test]
fn mp4_moov_at_end() {
    check_fixture("h264_aac_moov_end.mp4");
}

#[test]
fn mp4_fragmented() {
    check_fixture("h264_aac_fragmented.mp4");
}

#[test]
fn mp4_long_gop() {
    check_fixture("h264_long_gop.mp4");
}

#[test]
fn mkv_bframes() {
    check_fixture("h264_bframes.mkv");
}

#[test]
fn mkv_without_cues() {
    check_fixture("mkv_no_cues.mkv");
}

#[test]
fn hevc_ac3_transcoded_and_copied() {
    check_fixture("hevc_ac3.mkv");
}

#[test]
fn mpeg_ts() {
    check_fixture("h264_aac.ts");
}

#[test]
fn webm_vp9_opus_transcoded() {
    check_fixture("vp9_opus.webm");
}

#[test]
fn multi_audio_and_subtitles() {
    check_fixture("multi_audio_subs.mkv");
}

#[test]
fn aac_only() {
    check_fixture("aac_only.m4a");
}

#[test]
fn aac_51_44k_passthrough() {
    check_fixture("h264_aac51_44k.mp4");
}

/// Segments made in the order 7, 0, 3, 3 — each in a fresh process — equal the export's bytes.
fn check_independent(name: &str, rendition: &str) {
    let tmp = Scratch::new("indep");
    let renditions = export(name, tmp.path());
    let r = renditions
        .iter()
        .find(|r| r.id == rendition)
        .unwrap_or_else(|| panic!("{name} has no rendition {rendition}: {renditions:?}"));
    let src = fixture(name);
    for n in [7usize, 0, 3, 3] {
        let out = tmp.path().join(format!("one-{n}.m4s"));
        let (code, _, err) = hlsgate(&[
            "segment",
            src.to_str().unwrap(),
            rendition,
            &n.to_string(),
            "-o",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{err}");
        assert!(
            std::fs::read(&out).unwrap() == std::fs::read(&r.files[n]).unwrap(),
            "{name} {rendition} segment {n} differs from the in-order export"
        );
    }
}

#[test]
fn remuxed_segments_are_independent() {
    check_independent("h264_bframes.mkv", "v1");
}

#[test]
fn transcoded_segments_are_independent() {
    let idx = hlsgate(&["probe", fixture("hevc_ac3.mkv").to_str().unwrap(), "--json"]);
    assert_eq!(idx.0, 0);
    check_independent("hevc_ac3.mkv", "v1-h264");
}

#[test]
fn transcoded_audio_segments_are_independent() {
    let tmp = Scratch::new("ids");
    let ids: Vec<String> = export("hevc_ac3.mkv", tmp.path())
        .into_iter()
        .filter(|r| r.kind == "audio")
        .map(|r| r.id)
        .collect();
    check_independent("hevc_ac3.mkv", &ids[0]);
}

/// f32 mono PCM of channel 0 of `path` at 48 kHz.
fn pcm(path: &Path) -> Vec<f32> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args([
            "-map",
            "0:a:0",
            "-af",
            "pan=mono|c0=c0",
            "-f",
            "f32le",
            "-ar",
            "48000",
            "-",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[test]
fn transcoded_audio_joins_without_clicks() {
    joins_without_clicks("hevc_ac3.mkv");
}

/// Sources read through libavformat (issue 12): the same rule at every join, whatever the
/// container found the segment's packets by (a time seek, a byte seek, Ogg pages).
#[test]
fn universal_audio_joins_without_clicks() {
    for name in [
        "audio.flac",
        "audio_cbr.mp3",
        "audio_vbr.mp3",
        "audio_vorbis.ogg",
        "audio_opus.opus",
        "audio.wav",
        "audio.aiff",
        "audio_alac.m4a",
        "mpeg4_mp3.avi",
        "wmv2_wma.wmv",
        "prores_pcm.mov",
    ] {
        joins_without_clicks(name);
    }
}

/// Segmented AAC of `name`'s first audio track against one continuous encode: no jump at a join
/// bigger than 1.5× the biggest elsewhere, tfdt contiguous, the same sample count (± 1 frame).
fn joins_without_clicks(name: &str) {
    let tmp = Scratch::new("clicks");
    let rs = export(name, tmp.path());
    let r = rs.iter().find(|r| r.kind == "audio").unwrap();
    let all = concat(r, tmp.path());
    let segmented = pcm(&all);
    // The same audio encoded in one continuous pass.
    let cont = tmp.path().join("continuous.m4a");
    let st = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(fixture(name))
        .args([
            "-map", "0:a:0", "-c:a", "aac", "-b:a", "128k", "-ac", "2", "-ar", "48000",
        ])
        .arg(&cont)
        .status()
        .unwrap();
    assert!(st.success());
    let continuous = pcm(&cont);
    // Joins in samples from the start of the decoded stream.
    let mut joins = Vec::new();
    let mut at = 0u64;
    let mut first_tfdt = None;
    for f in &r.files {
        let t = fragments(&std::fs::read(f).unwrap())[0].trafs[0].clone();
        let base = *first_tfdt.get_or_insert(t.tfdt);
        assert_eq!(t.tfdt - base, at);
        at += t.duration();
        joins.push((t.tfdt - base) as usize);
    }
    joins.remove(0);
    let jump = |s: &[f32], i: usize| (s[i + 1] - s[i]).abs();
    let near = |i: usize| joins.iter().any(|&j| i + 96 >= j && i <= j + 96);
    let mut max_join = 0f32;
    let mut max_else = 0f32;
    for i in 0..segmented.len().saturating_sub(1) {
        if near(i) {
            max_join = max_join.max(jump(&segmented, i));
        } else if i > 2048 && i + 2048 < segmented.len() {
            max_else = max_else.max(jump(&segmented, i));
        }
    }
    let diff = segmented.len().abs_diff(continuous.len());
    println!(
        "{name} audio joins: {} joins, max jump near joins {max_join:.5}, elsewhere {max_else:.5} (ratio {:.3}); samples {} vs continuous {} (diff {diff})",
        joins.len(),
        max_join / max_else,
        segmented.len(),
        continuous.len()
    );
    assert!(!joins.is_empty(), "{name}: no join");
    assert!(max_join <= 1.5 * max_else, "{name}: click at a join");
    // One AAC frame: where the audio plan ends at the video's end, rounded to the frame grid.
    assert!(diff <= 1024, "{name}: sample count differs by {diff}");
}

#[test]
fn subtitle_cue_lands_on_the_video_timeline() {
    let tmp = Scratch::new("vtt");
    let rs = export("multi_audio_subs.mkv", tmp.path());
    let subs = rs
        .iter()
        .find(|r| r.kind == "subtitles")
        .expect("a subtitle rendition");
    let video = rs.iter().find(|r| r.kind == "video").unwrap();
    // The video timeline: media time 0 = tfdt 0 (the first segment's tfdt / timescale).
    let vdir = video.files[0].parent().unwrap();
    let vts = f64::from(timescales(&std::fs::read(vdir.join("init.mp4")).unwrap())[0].1);
    // Every rendition presents from 0: the first video segment starts at 0, which is the
    // source's first video frame.
    let t0 = fragments(&std::fs::read(&video.files[0]).unwrap())[0].trafs[0].tfdt as f64 / vts;
    assert!(t0.abs() < 0.0005, "video tfdt {t0}, not 0");
    let (video_start, _) = starts("multi_audio_subs.mkv");
    // The cue as the source stores it (the SRT's 10.5 s, which ffmpeg's muxer shifted along
    // with the video).
    let source_cue = ffprobe_csv(
        &fixture("multi_audio_subs.mkv"),
        &["-select_streams", "s:0", "-show_entries", "packet=pts_time"],
    )
    .lines()
    .filter_map(|l| l.trim().parse::<f64>().ok())
    .find(|t| (10.0..11.0).contains(t))
    .unwrap();
    let mut found = None;
    for f in &subs.files {
        let text = std::fs::read_to_string(f).unwrap();
        let map = text
            .lines()
            .find_map(|l| l.strip_prefix("X-TIMESTAMP-MAP="))
            .expect("X-TIMESTAMP-MAP");
        let mpegts: f64 = map
            .split(',')
            .find_map(|p| p.strip_prefix("MPEGTS:"))
            .unwrap()
            .parse()
            .unwrap();
        let local = vtt_time(
            map.split(',')
                .find_map(|p| p.strip_prefix("LOCAL:"))
                .unwrap(),
        );
        let mut lines = text.lines().peekable();
        while let Some(l) = lines.next() {
            if let Some((a, _)) = l.split_once(" --> ") {
                let body = lines.peek().copied().unwrap_or("");
                if body.contains("ten and a half") {
                    // Media time of the cue: cue time − LOCAL + MPEGTS/90000.
                    found = Some(vtt_time(a) - local + mpegts / 90_000.0);
                }
            }
        }
    }
    let at = found.expect("the 10.5 s cue is in a segment");
    println!(
        "cue at {at:.4} s on the video timeline; in the source {source_cue:.4} s ({:.4} s after the video's first frame)",
        source_cue - starts("multi_audio_subs.mkv").0
    );
    assert!(
        (at - (source_cue - video_start)).abs() <= 0.001,
        "cue at {at} vs {source_cue} in the source, whose video starts at {video_start}"
    );
}

fn vtt_time(s: &str) -> f64 {
    let parts: Vec<f64> = s.trim().split(':').map(|p| p.parse().unwrap()).collect();
    parts.iter().fold(0.0, |acc, p| acc * 60.0 + p)
}

#[test]
fn continuous_stream_keeps_audio_and_video_together() {
    let tmp = Scratch::new("stream");
    let name = "h264_bframes.mkv";
    let src = fixture(name);
    let rs = export(name, tmp.path());
    let video = rs.iter().find(|r| r.kind == "video").unwrap();
    // The segment holding 30 s.
    let mut t = 0.0;
    let n = video
        .extinf
        .iter()
        .position(|d| {
            t += d;
            t > 30.0
        })
        .unwrap();
    let mut bytes = Vec::new();
    for what in [
        "stream-init".to_string(),
        format!("stream-{n}"),
        format!("stream-{}", n + 1),
    ] {
        let out = tmp.path().join(&what);
        let (code, _, err) = hlsgate(&[
            "segment",
            src.to_str().unwrap(),
            "v1",
            &what,
            "-o",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{err}");
        bytes.extend(std::fs::read(&out).unwrap());
    }
    let ts = timescales(&bytes);
    assert_eq!(ts.len(), 2, "video and audio in one file");
    let edits = presentation_offsets(&bytes);
    let frags = fragments(&bytes);
    let firsts: Vec<f64> = frags[0]
        .trafs
        .iter()
        .map(|t| {
            let scale = ts.iter().find(|(id, _)| *id == t.track_id).unwrap().1;
            let edit = edits.iter().find(|(id, _)| *id == t.track_id).unwrap().1;
            (t.first_pts() - edit as i64) as f64 / f64::from(scale)
        })
        .collect();
    println!("stream from segment {n}: first pts per track {firsts:?}");
    assert!((firsts[0] - firsts[1]).abs() <= 0.040, "{firsts:?}");
    let path = tmp.path().join("stream.mp4");
    std::fs::write(&path, &bytes).unwrap();
    assert!(decode(&path).trim().is_empty());
    // And as FFmpeg reads the file: both streams start together.
    let starts = ffprobe_csv(&path, &["-show_entries", "stream=codec_type,start_time"]);
    let starts: Vec<f64> = starts
        .lines()
        .filter_map(|l| l.split(',').nth(1)?.parse().ok())
        .collect();
    println!("ffprobe start times {starts:?}");
    assert_eq!(starts.len(), 2, "{starts:?}");
    assert!((starts[0] - starts[1]).abs() <= 0.040, "{starts:?}");
}

#[test]
fn thumbnail_is_a_jpeg_of_the_requested_width() {
    let tmp = Scratch::new("thumb");
    let out = tmp.path().join("t.jpg");
    let src = fixture("h264_bframes.mkv");
    let (code, _, err) = hlsgate(&[
        "segment",
        src.to_str().unwrap(),
        "v1",
        "thumb-10000@160",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let wh = ffprobe_csv(&out, &["-show_entries", "stream=codec_name,width"]);
    assert_eq!(wh.trim(), "mjpeg,160");
}

/// Packet MD5s of the first audio stream of `path` (`-c copy -f framemd5`), in order.
fn audio_packet_md5s(path: &Path) -> Vec<String> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-map", "0:a:0", "-c", "copy", "-f", "framemd5", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(',').nth(5).map(|h| h.trim().to_string()))
        .collect()
}

/// Originals copied in their codec (issue 12 item 3, issue 14 item 2): AC-3 5.1 from Matroska
/// and M2TS, Opus from Ogg and WebM, FLAC, MP3, listed when asked for (`--audio all`, the
/// server's `?audio=`). Each `-copy` rendition, read by ffprobe, has the
/// source's codec and channels; its packets are the source's own bytes (framemd5 of the copy is a
/// contiguous run of the source's, missing at most one frame at each end); its fragments join
/// exactly (each tfdt is the previous one plus its duration, the first is 0); EXTINF matches the
/// fragment durations; ffmpeg decodes it without an error.
#[test]
fn originals_are_copied_bit_exact_with_exact_joins() {
    let cases = [
        ("hevc_ac3.mkv", "ac3", 6),
        ("h264_ac3_51.m2ts", "ac3", 6),
        ("h264_eac3_51.mp4", "eac3", 6),
        ("vp9_opus.webm", "opus", 1),
        ("audio_opus.opus", "opus", 1),
        ("audio.flac", "flac", 1),
        ("audio_cbr.mp3", "mp3", 1),
        ("audio_vbr.mp3", "mp3", 1),
    ];
    for (name, codec, channels) in cases {
        let tmp = Scratch::new("copied");
        // By default the master lists AAC only; the originals are there for who asks.
        let listed = export(name, tmp.path());
        assert!(
            listed.iter().all(|r| !r.id.ends_with("-copy")),
            "{name}: an original listed without being asked for"
        );
        let rs = export_with(name, tmp.path(), &["--audio", "all"]);
        let r = rs
            .iter()
            .find(|r| r.id.ends_with("-copy"))
            .unwrap_or_else(|| panic!("{name}: no copied rendition"));
        let all = concat(r, tmp.path());
        let probed = ffprobe_csv(&all, &["-show_entries", "stream=codec_name,channels"]);
        assert_eq!(
            probed.trim().trim_end_matches(","),
            format!("{codec},{channels}"),
            "{name}"
        );
        // Exact joins, EXTINF = fragment duration.
        let mut at = 0u64;
        let mut timescale = 0u32;
        for (i, f) in r.files.iter().enumerate() {
            let t = fragments(&std::fs::read(f).unwrap())[0].trafs[0].clone();
            assert_eq!(t.tfdt, at, "{name}: fragment {i} tfdt");
            at += t.duration();
            if timescale == 0 {
                let init = std::fs::read(f.parent().unwrap().join("init.mp4")).unwrap();
                timescale = timescales(&init).first().unwrap().1;
            }
            let secs = t.duration() as f64 / f64::from(timescale);
            assert!(
                (secs - r.extinf[i]).abs() < 1e-3,
                "{name}: segment {i} EXTINF {} vs {secs}",
                r.extinf[i]
            );
        }
        // Bit-exact: the copy's packets are a contiguous run of the source's.
        let src = audio_packet_md5s(&fixture(name));
        let out = audio_packet_md5s(&all);
        let start = src
            .iter()
            .position(|h| *h == out[0])
            .unwrap_or_else(|| panic!("{name}: first copied packet is not a source packet"));
        let n = out.len().min(src.len() - start);
        assert_eq!(&out[..n], &src[start..start + n], "{name}: packets differ");
        assert_eq!(n, out.len(), "{name}: more packets than the source");
        assert!(
            start <= 1 && src.len() - (start + n) <= 1,
            "{name}: {start} packets missing at the start, {} at the end of {}",
            src.len() - (start + n),
            src.len()
        );
        let errors = decode(&all);
        assert!(errors.trim().is_empty(), "{name}: decode errors: {errors}");
        println!(
            "{name}: {} {codec} packets of {} copied, {} fragments, {:.3} s",
            out.len(),
            src.len(),
            r.files.len(),
            at as f64 / f64::from(timescale)
        );
    }
}

/// 8-bit grey pixels of the picture of `path` at `secs`, scaled to `w`×`h`, as ffmpeg shows it
/// (its autorotate applies a display matrix); `extra` filters go before the scale.
fn grey_picture(path: &Path, secs: f64, extra: &str, w: u32, h: u32) -> Vec<u8> {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-v", "error"]);
    if secs > 0.0 {
        // (A still image read with -ss 0 gives no frame.)
        cmd.args(["-ss", &format!("{secs}")]);
    }
    let out = cmd
        .arg("-i")
        .arg(path)
        .args([
            "-frames:v",
            "1",
            "-vf",
            &format!("{extra}scale={w}:{h},format=gray"),
            "-f",
            "rawvideo",
            "-",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), (w * h) as usize);
    out.stdout
}

/// Mean absolute difference of two grey pictures.
fn mad(a: &[u8], b: &[u8]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(x.abs_diff(*y)))
        .sum::<f64>()
        / a.len() as f64
}

/// A phone's portrait video (HEVC coded 320x240, displayed turned 90° clockwise) (issue 14
/// item 4): the copy keeps the display matrix; the H.264 transcode is 240x320 with no matrix
/// and its pictures are upright — they match ffmpeg's own autorotated picture of the source,
/// and not the picture turned the other way; the thumbnail too; names go by the short side.
#[test]
fn rotated_video_is_transcoded_and_thumbnailed_upright() {
    let tmp = Scratch::new("rotated");
    let name = "rotated_portrait.mp4";
    let src = fixture(name);
    let rs = export(name, tmp.path());
    let master = std::fs::read_to_string(tmp.path().join("master.m3u8")).unwrap();
    assert!(master.contains("RESOLUTION=240x320"), "{master}");
    let side = |p: &Path| {
        ffprobe_csv(
            p,
            &[
                "-select_streams",
                "v",
                "-show_entries",
                "stream=width,height:stream_side_data=rotation",
            ],
        )
    };
    let h264 = rs
        .iter()
        .find(|r| r.id == "v1-h264")
        .expect("an H.264 transcode");
    let h264_all = concat(h264, tmp.path());
    let probed = side(&h264_all);
    assert_eq!(
        probed.trim().trim_end_matches(','),
        "240,320",
        "transcode: {probed}"
    );
    let copy = rs.iter().find(|r| r.id == "v1").expect("the HEVC copy");
    let copy_all = concat(copy, tmp.path());
    assert!(
        side(&copy_all).contains("-90"),
        "the copy keeps the matrix: {}",
        side(&copy_all)
    );
    // Pictures: the transcode against the source as ffmpeg turns it.
    let upright = grey_picture(&src, 5.0, "", 240, 320);
    let wrong = grey_picture(&src, 5.0, "transpose=clock,transpose=clock,", 240, 320);
    let ours = grey_picture(&h264_all, 5.0, "", 240, 320);
    let (good, bad) = (mad(&ours, &upright), mad(&ours, &wrong));
    println!("transcode vs upright source {good:.2}, vs turned the other way {bad:.2}");
    assert!(
        good < 8.0 && bad > 3.0 * good,
        "transcode not upright: {good:.2} vs {bad:.2}"
    );
    // The thumbnail.
    let jpg = tmp.path().join("t.jpg");
    let (code, _, err) = hlsgate(&[
        "segment",
        src.to_str().unwrap(),
        "v1",
        "thumb-5000@120",
        "-o",
        jpg.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(side(&jpg).trim().trim_end_matches(','), "120,160");
    let thumb = grey_picture(&jpg, 0.0, "", 240, 320);
    let (good, bad) = (mad(&thumb, &upright), mad(&thumb, &wrong));
    println!("thumbnail vs upright source {good:.2}, vs turned the other way {bad:.2}");
    assert!(
        good < 10.0 && bad > 3.0 * good,
        "thumbnail not upright: {good:.2} vs {bad:.2}"
    );
}

/// A surround track that is not AAC (AC-3 5.1 in Matroska and M2TS, E-AC-3 5.1 in MP4, DTS 5.1 in
/// Matroska) gets an
/// AAC 5.1 rendition beside the stereo one (issue 14 item 2): ffprobe reads AAC with 6 channels
/// in a 5.1 layout, the fragments join exactly (each tfdt the previous one plus its duration),
/// EXTINF matches them, and ffmpeg decodes it without an error.
#[test]
fn surround_gets_an_aac_5_1_rendition() {
    for (name, id) in [
        ("hevc_ac3.mkv", "a2-51"),
        ("h264_ac3_51.m2ts", "a4352-51"),
        ("h264_eac3_51.mp4", "a2-51"),
        ("h264_dts51.mkv", "a2-51"),
    ] {
        let tmp = Scratch::new("surround");
        let rs = export(name, tmp.path());
        let r = rs.iter().find(|r| r.id == id).unwrap_or_else(|| {
            panic!(
                "{name}: no {id} in {:?}",
                rs.iter().map(|r| &r.id).collect::<Vec<_>>()
            )
        });
        let all = concat(r, tmp.path());
        let probed = ffprobe_csv(
            &all,
            &["-show_entries", "stream=codec_name,channels,channel_layout"],
        );
        assert_eq!(probed.trim().trim_end_matches(','), "aac,6,5.1", "{name}");
        let mut at = 0u64;
        for (i, f) in r.files.iter().enumerate() {
            let t = fragments(&std::fs::read(f).unwrap())[0].trafs[0].clone();
            assert_eq!(t.tfdt, at, "{name}: fragment {i} tfdt");
            at += t.duration();
            let secs = t.duration() as f64 / 48_000.0;
            assert!(
                (secs - r.extinf[i]).abs() < 1e-3,
                "{name}: segment {i} EXTINF"
            );
        }
        let errors = decode(&all);
        assert!(errors.trim().is_empty(), "{name}: {errors}");
        println!(
            "{name} {id}: AAC 5.1, {} fragments, {:.3} s",
            r.files.len(),
            at as f64 / 48_000.0
        );
    }
}
