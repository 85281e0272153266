//! Video transcode checked with ffprobe/ffmpeg: frame count, IDR start, clean decode, pts set,
//! avcC identical across segments, determinism.
// Helpers outside #[test] fns unwrap too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::*;
use pipeline::av::{transcode_video, video_config, VideoEncode, VideoOutput};

fn encode_params() -> VideoEncode {
    VideoEncode {
        width: 320,
        height: 240,
        preset: "veryfast".into(),
        crf: 26,
        maxrate_kbps: 1200,
        bufsize_kbps: 2400,
        threads: 2,
        deinterlace: true,
        frame_rate: Some((25, 1)),
    }
}

/// Annex B byte stream of the output: SPS/PPS from the avcC, then every sample with its length
/// prefixes turned into start codes.
fn to_annex_b(out: &VideoOutput) -> Vec<u8> {
    let a = &out.avcc;
    let mut v = Vec::new();
    let mut i = 6;
    let nsps = a[5] & 0x1f;
    for _ in 0..nsps {
        let len = u16::from_be_bytes([a[i], a[i + 1]]) as usize;
        v.extend_from_slice(&[0, 0, 0, 1]);
        v.extend_from_slice(&a[i + 2..i + 2 + len]);
        i += 2 + len;
    }
    let npps = a[i];
    i += 1;
    for _ in 0..npps {
        let len = u16::from_be_bytes([a[i], a[i + 1]]) as usize;
        v.extend_from_slice(&[0, 0, 0, 1]);
        v.extend_from_slice(&a[i + 2..i + 2 + len]);
        i += 2 + len;
    }
    for s in &out.samples {
        let mut j = 0;
        while j < s.data.len() {
            let len = u32::from_be_bytes(s.data[j..j + 4].try_into().unwrap()) as usize;
            v.extend_from_slice(&[0, 0, 0, 1]);
            v.extend_from_slice(&s.data[j + 4..j + 4 + len]);
            j += 4 + len;
        }
    }
    v
}

fn nal_types(sample: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    let mut j = 0;
    while j + 4 < sample.len() {
        let len = u32::from_be_bytes(sample[j..j + 4].try_into().unwrap()) as usize;
        t.push(sample[j + 4] & 0x1f);
        j += 4 + len;
    }
    t
}

fn check_fixture(name: &str) {
    let path = fixture(name);
    let (params, packets) = demux(&path, probe::TrackKind::Video);
    // Keyframes in decode order, with their packet index.
    let keys: Vec<(usize, i64)> = packets
        .iter()
        .enumerate()
        .filter(|(_, p)| p.keyframe)
        .map(|(i, p)| (i, p.pts))
        .collect();
    assert!(keys.len() >= 6, "{name}: {} keyframes", keys.len());
    let enc = encode_params();
    let scratch = temp_dir(&format!("video-{name}"));
    let dir = scratch.path();
    let mut avccs = Vec::new();
    // Two adjacent windows of two GOPs each, starting at the second keyframe.
    for w in 0..2 {
        let (k0, start) = keys[1 + 2 * w];
        let (_, end) = keys[3 + 2 * w];
        // Through the last packet presented before `end` (open GOPs: leading pictures follow
        // the next keyframe in decode order).
        let last = packets.iter().rposition(|p| p.pts < end).unwrap();
        let window: Vec<_> = packets[k0..=last].to_vec();
        let mut want: Vec<i64> = packets
            .iter()
            .map(|p| p.pts)
            .filter(|&t| t >= start && t < end)
            .collect();
        want.sort_unstable();
        let t0 = std::time::Instant::now();
        let out = transcode_video(&params, &borrow(&window), start, end, &enc).unwrap();
        let took = t0.elapsed();
        let mut got: Vec<i64> = out.samples.iter().map(|s| s.pts).collect();
        got.sort_unstable();
        assert_eq!(got, want, "{name} window {w}: pts set");
        assert!(out.samples[0].keyframe);
        assert!(
            nal_types(&out.samples[0].data).contains(&5),
            "first sample is not an IDR"
        );
        assert_eq!(
            out.samples.iter().filter(|s| s.keyframe).count(),
            1,
            "{name}: one keyframe per segment"
        );
        for pair in out.samples.windows(2) {
            assert!(pair[0].dts < pair[1].dts, "dts not increasing");
        }
        for s in &out.samples {
            assert!(s.dts <= s.pts, "dts after pts");
        }
        assert_eq!(out.avcc[0], 1);
        assert_eq!(out.avcc[1], 100, "High profile");
        // The init's avcC, read from x264 opened for the window's first picture without
        // encoding anything, is the one the encode of the window carries.
        let config = video_config(&params, &borrow(&window), &enc).unwrap();
        assert_eq!(
            config, out.avcc,
            "{name} window {w}: video_config != encoded avcC"
        );
        avccs.push(out.avcc.clone());

        let file = dir.join(format!("w{w}.h264"));
        std::fs::write(&file, to_annex_b(&out)).unwrap();
        let count = run(Command::new("ffprobe")
            .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
            .args([
                "-show_entries",
                "stream=nb_read_frames,width,height,profile",
            ])
            .args(["-of", "default=nw=1"])
            .arg(&file));
        assert!(
            count.contains(&format!("nb_read_frames={}", want.len())),
            "{name}: ffprobe says {count}, want {} frames",
            want.len()
        );
        assert!(
            count.contains("width=320") && count.contains("height=240"),
            "{count}"
        );
        let first = run(Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-select_streams",
                "v:0",
                "-read_intervals",
                "%+#1",
            ])
            .args([
                "-show_entries",
                "frame=key_frame,pict_type",
                "-of",
                "csv=p=0",
            ])
            .arg(&file));
        assert_eq!(
            first.lines().next().unwrap().trim().trim_end_matches(','),
            "1,I",
            "{name}: first frame {first}"
        );
        let (o, e, ok) = run_both(
            Command::new("ffmpeg")
                .args(["-nostdin", "-v", "error", "-i"])
                .arg(&file)
                .args(["-f", "null", "-"]),
        );
        assert!(
            ok && o.is_empty() && e.is_empty(),
            "{name}: decode errors: {e}"
        );
        eprintln!(
            "{name} window {w}: [{start}, {end}) {} frames, {} bytes, {:?}",
            want.len(),
            out.samples.iter().map(|s| s.data.len()).sum::<usize>(),
            took
        );
        // Determinism: the same window again, twice (x264 once gave heap-dependent bytes
        // here; see open_x264), after other encodes have churned the heap.
        for _ in 0..2 {
            let again = transcode_video(&params, &borrow(&window), start, end, &enc).unwrap();
            assert_eq!(again.avcc, out.avcc, "{name}: avcC not deterministic");
            let diffs: Vec<usize> = (0..out.samples.len().max(again.samples.len()))
                .filter(|&i| out.samples.get(i) != again.samples.get(i))
                .collect();
            if let Some(&i) = diffs.first() {
                let (a, b) = (&out.samples[i], &again.samples[i]);
                let off = a.data.iter().zip(&b.data).position(|(x, y)| x != y);
                panic!(
                    "{name}: not deterministic, {} samples differ; first {i}: len {} vs {}, pts {} {}, first byte diff at {off:?}, nals {:?}",
                    diffs.len(), a.data.len(), b.data.len(), a.pts, b.pts, nal_types(&a.data)
                );
            }
        }
    }
    assert_eq!(avccs[0], avccs[1], "{name}: avcC differs between segments");
}

#[test]
fn hevc_mkv_to_h264() {
    check_fixture("hevc_ac3.mkv");
}

#[test]
fn vp9_webm_to_h264() {
    check_fixture("vp9_opus.webm");
}

#[test]
fn h264_bframes_mkv_to_h264() {
    check_fixture("h264_bframes.mkv");
}

/// Gray pixels of a picture scaled to `w` x `h`, as the ffmpeg CLI decodes it (`select` picks
/// the source frame by presentation index when `index` is given).
fn gray(path: &std::path::Path, index: Option<usize>, w: u32, h: u32) -> Vec<u8> {
    let mut vf = String::new();
    if let Some(n) = index {
        vf.push_str(&format!("select=eq(n\\,{n}),"));
    }
    vf.push_str(&format!("scale={w}:{h}"));
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args([
            "-vf",
            &vf,
            "-frames:v",
            "1",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "gray",
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
}

fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(x.abs_diff(*y)))
        .sum::<f64>()
        / a.len() as f64
}

#[test]
fn thumbnail_is_the_presented_picture() {
    let path = fixture("h264_bframes.mkv");
    let (params, packets) = demux(&path, probe::TrackKind::Video);
    let mut pts: Vec<i64> = packets.iter().map(|p| p.pts).collect();
    pts.sort_unstable();
    // Between the 137th and 138th pictures: the 137th (index 136) is presented.
    let index = 136;
    let at = pts[index] + (pts[index + 1] - pts[index]) / 2;
    let key = packets
        .iter()
        .rposition(|p| p.keyframe && p.pts <= at)
        .unwrap();
    let window: Vec<_> = packets[key..].to_vec();
    let jpeg = pipeline::av::thumbnail(&params, &borrow(&window), at, 160).unwrap();
    assert_eq!(&jpeg[..2], &[0xff, 0xd8], "JPEG SOI");
    let scratch = temp_dir("thumb");
    let dir = scratch.path();
    let file = dir.join("thumb.jpg");
    std::fs::write(&file, &jpeg).unwrap();
    let info = run(Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,width,height",
        ])
        .args(["-of", "default=nw=1"])
        .arg(&file));
    assert!(
        info.contains("codec_name=mjpeg")
            && info.contains("width=160")
            && info.contains("height=120"),
        "{info}"
    );
    // The right picture: closer to source picture 136 than to its neighbours.
    let ours = gray(&file, None, 160, 120);
    let d: Vec<f64> = [index - 1, index, index + 1]
        .iter()
        .map(|&n| mean_abs_diff(&ours, &gray(&path, Some(n), 160, 120)))
        .collect();
    eprintln!(
        "thumbnail: {} bytes; mean abs diff vs pictures 135/136/137: {d:?}",
        jpeg.len()
    );
    assert!(d[1] < d[0] && d[1] < d[2] && d[1] < 4.0, "{d:?}");
    // Bad input is an error, not a panic.
    let junk = [pipeline::av::Packet {
        data: &[0u8, 0, 0, 9, 1, 2, 3][..],
        pts: 0,
        dts: None,
        keyframe: true,
    }];
    assert!(pipeline::av::thumbnail(&params, &junk, 0, 160).is_err());
}

/// A 10-bit 4:4:4 interlaced (top field first) H.264 source, 4:3, made with the ffmpeg CLI:
/// the output is 8-bit 4:2:0, deinterlaced, fitted into 16:9 with black bars.
#[test]
fn ten_bit_444_interlaced_to_padded_420() {
    let scratch = temp_dir("hi444");
    let dir = scratch.path();
    let src = dir.join("hi444i.mkv");
    run(Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=320x240:rate=25:duration=3")
        .args([
            "-vf",
            "setfield=tff",
            "-flags",
            "+ildct+ilme",
            "-c:v",
            "libx264",
        ])
        .args([
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv444p10le",
            "-g",
            "25",
            "-threads",
            "1",
        ])
        .arg(&src));
    let probe_src = run(Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-read_intervals",
            "%+#1",
        ])
        .args([
            "-show_entries",
            "frame=interlaced_frame,pix_fmt",
            "-of",
            "default=nw=1",
        ])
        .arg(&src));
    assert!(
        probe_src.contains("interlaced_frame=1") && probe_src.contains("yuv444p10"),
        "{probe_src}"
    );
    let (params, packets) = demux(&src, probe::TrackKind::Video);
    let keys: Vec<(usize, i64)> = packets
        .iter()
        .enumerate()
        .filter(|(_, p)| p.keyframe)
        .map(|(i, p)| (i, p.pts))
        .collect();
    let (k0, start) = keys[1];
    let end = start + 1000; // 1 s: 25 pictures
    let window: Vec<_> = packets[k0..].to_vec();
    let enc = VideoEncode {
        width: 428,
        height: 240,
        ..encode_params()
    };
    let out = transcode_video(&params, &borrow(&window), start, end, &enc).unwrap();
    assert_eq!(out.samples.len(), 25);
    // The deinterlacer acts on these (interlaced-flagged) pictures.
    let woven = VideoEncode {
        deinterlace: false,
        ..enc.clone()
    };
    let woven = transcode_video(&params, &borrow(&window), start, end, &woven).unwrap();
    assert_eq!(woven.samples.len(), 25);
    assert_ne!(woven.samples, out.samples, "bwdif changed nothing");
    let file = dir.join("out.h264");
    std::fs::write(&file, to_annex_b(&out)).unwrap();
    let info = run(Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "stream=nb_read_frames,width,height,pix_fmt,field_order",
        ])
        .args(["-of", "default=nw=1"])
        .arg(&file));
    for want in [
        "nb_read_frames=25",
        "width=428",
        "height=240",
        "pix_fmt=yuv420p",
    ] {
        assert!(info.contains(want), "want {want}: {info}");
    }
    // Black bars left and right (54 px each), picture in the middle.
    let y = gray(&file, None, 428, 240);
    let column_mean = |x: usize| (0..240).map(|r| f64::from(y[r * 428 + x])).sum::<f64>() / 240.0;
    for x in [2, 50, 377, 425] {
        assert!(
            column_mean(x) < 20.0,
            "column {x} not black: {}",
            column_mean(x)
        );
    }
    let picture = (60..368).map(column_mean).sum::<f64>() / 308.0;
    assert!(picture > 40.0, "the picture area is black: {picture}");
    let (o, e, ok) = run_both(
        Command::new("ffmpeg")
            .args(["-nostdin", "-v", "error", "-i"])
            .arg(&file)
            .args(["-f", "null", "-"]),
    );
    assert!(ok && o.is_empty() && e.is_empty(), "decode errors: {e}");
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    use pipeline::av::{AvError, Packet, StreamParams};
    let path = fixture("h264_bframes.mkv");
    let (params, packets) = demux(&path, probe::TrackKind::Video);
    let enc = encode_params();
    // Garbage packets.
    let junk: Vec<Vec<u8>> = (0..30u8)
        .map(|i| {
            (0..200u32)
                .map(|j| (j as u8).wrapping_mul(31).wrapping_add(i))
                .collect()
        })
        .collect();
    let junk_packets: Vec<Packet> = junk
        .iter()
        .enumerate()
        .map(|(i, d)| Packet {
            data: d,
            pts: i as i64 * 40,
            dts: None,
            keyframe: i == 0,
        })
        .collect();
    assert!(transcode_video(&params, &junk_packets, 0, 1000, &enc).is_err());
    assert!(pipeline::av::thumbnail(&params, &junk_packets, 0, 160).is_err());
    // Real packets cut short.
    let cut: Vec<Vec<u8>> = packets[..60]
        .iter()
        .map(|p| p.data[..p.data.len() / 2].to_vec())
        .collect();
    let cut_packets: Vec<Packet> = cut
        .iter()
        .zip(&packets)
        .map(|(d, p)| Packet {
            data: d,
            pts: p.pts,
            dts: p.dts,
            keyframe: p.keyframe,
        })
        .collect();
    let _ = transcode_video(&params, &cut_packets, 0, 2000, &enc);
    // Wrong extradata for the codec.
    let wrong = StreamParams {
        extradata: vec![1, 2, 3],
        ..params.clone()
    };
    let _ = transcode_video(&wrong, &borrow(&packets[..60]), 0, 2000, &enc);
    // Parameters.
    let bad = |e: VideoEncode| {
        matches!(
            transcode_video(&params, &borrow(&packets[..10]), 0, 400, &e),
            Err(AvError::InvalidParams(_))
        )
    };
    assert!(bad(VideoEncode {
        width: 321,
        ..enc.clone()
    }));
    assert!(bad(VideoEncode {
        height: 0,
        ..enc.clone()
    }));
    assert!(bad(VideoEncode {
        preset: "veryfast --evil".into(),
        ..enc.clone()
    }));
    assert!(bad(VideoEncode {
        threads: 0,
        ..enc.clone()
    }));
    assert!(bad(VideoEncode {
        crf: 60,
        ..enc.clone()
    }));
    assert!(matches!(
        transcode_video(&params, &borrow(&packets[..10]), 400, 400, &enc),
        Err(AvError::InvalidParams(_))
    ));
    let zero_ts = StreamParams {
        timescale: 0,
        ..params.clone()
    };
    assert!(transcode_video(&zero_ts, &borrow(&packets[..10]), 0, 400, &enc).is_err());
    let subs = StreamParams {
        codec: probe::Codec::Srt,
        ..params
    };
    assert!(matches!(
        transcode_video(&subs, &borrow(&packets[..10]), 0, 400, &enc),
        Err(AvError::UnsupportedCodec(_))
    ));
}
