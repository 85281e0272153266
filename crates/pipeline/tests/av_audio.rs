//! Audio on the absolute AAC frame grid: segments made independently, concatenated as ADTS
//! and decoded by the ffmpeg CLI, must join without clicks and match a continuous encode.
// Helpers outside #[test] fns unwrap too: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use pipeline::av::{transcode_audio, AudioEncode, POSTROLL_FRAMES, PREROLL_FRAMES};

const RATE: i64 = 48_000;

fn enc() -> AudioEncode {
    AudioEncode {
        sample_rate: 48_000,
        channels: 2,
        bitrate: 128_000,
    }
}

/// ADTS header (ISO/IEC 13818-7 §6.2) for a raw frame, fields taken from the ASC.
fn adts_header(asc: &[u8], frame_len: usize) -> [u8; 7] {
    let object_type = asc[0] >> 3;
    let sr_index = ((asc[0] & 7) << 1) | (asc[1] >> 7);
    let channels = (asc[1] >> 3) & 0xf;
    let len = frame_len + 7;
    [
        0xff,
        0xf1, // MPEG-4, layer 0, no CRC
        ((object_type - 1) << 6) | (sr_index << 2) | (channels >> 2),
        ((channels & 3) << 6) | ((len >> 11) as u8 & 3),
        (len >> 3) as u8,
        ((len as u8 & 7) << 5) | 0x1f,
        0xfc,
    ]
}

/// Decodes a file to f32 stereo at 48 kHz with the ffmpeg CLI; returns the left channel.
fn decode_left(path: &Path) -> Vec<f32> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "f32le", "-ac", "2", "-ar", "48000", "-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .chunks_exact(8)
        .map(|c| f32::from_le_bytes(c[0..4].try_into().unwrap()))
        .collect()
}

fn max_jump(x: &[f32], range: std::ops::Range<usize>) -> f32 {
    let hi = range.end.min(x.len().saturating_sub(1));
    (range.start..hi)
        .map(|n| (x[n + 1] - x[n]).abs())
        .fold(0.0, f32::max)
}

/// The lag (in samples, within ±max) that best aligns `b` to `a` over a middle stretch.
fn best_lag(a: &[f32], b: &[f32], max: i64) -> i64 {
    let from = 96_000usize;
    let len = 48_000usize;
    (-max..=max)
        .max_by(|&l1, &l2| {
            let score = |l: i64| -> f64 {
                (from..from + len)
                    .map(|n| f64::from(a[n]) * f64::from(b[(n as i64 + l) as usize]))
                    .sum()
            };
            score(l1).total_cmp(&score(l2))
        })
        .unwrap()
}

/// Makes segments of the frame grid independently, checks joins and the total against a
/// continuous ffmpeg encode. Returns (worst join jump / jump elsewhere, lag vs continuous).
fn check_source(
    name: &str,
    path: &Path,
    lengths: &[u32],
    expect_lag: Option<i64>,
    min_snr: f64,
) -> (f32, i64) {
    let (params, packets) = demux(path, probe::TrackKind::Audio);
    let ts = i64::from(params.timescale);
    let scratch = temp_dir(&format!("audio-{name}"));
    let dir = scratch.path();

    // The continuous reference, as a player would decode it.
    let reference = dir.join("ref.m4a");
    run(Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-i"])
        .arg(path)
        .args([
            "-map", "0:a:0", "-c:a", "aac", "-b:a", "128k", "-ac", "2", "-ar", "48000",
        ])
        .arg(&reference));
    let continuous = decode_left(&reference);
    let total_frames = (continuous.len() as i64 + 1023) / 1024;

    // Segments of varying (odd too) lengths, each from only the packets around it.
    let mut adts = Vec::new();
    let mut joins = Vec::new();
    let mut first = 0i64;
    let mut asc: Option<Vec<u8>> = None;
    let t0 = std::time::Instant::now();
    for (i, len) in lengths.iter().cycle().enumerate() {
        if first >= total_frames {
            break;
        }
        let frames = (*len as i64).min(total_frames - first) as u32;
        // Input window: pre-roll and post-roll plus 0.2 s of slack, in input ticks.
        let lo = (first - i64::from(PREROLL_FRAMES)) * 1024 * ts / RATE - ts / 5;
        let hi =
            (first + i64::from(frames) + i64::from(POSTROLL_FRAMES)) * 1024 * ts / RATE + ts / 5;
        let window: Vec<_> = packets
            .iter()
            .filter(|p| p.pts >= lo && p.pts <= hi)
            .cloned()
            .collect();
        let out = transcode_audio(&params, &borrow(&window), first, frames, &enc()).unwrap();
        assert_eq!(out.frames.len(), frames as usize, "{name} segment {i}");
        match &asc {
            None => asc = Some(out.asc.clone()),
            Some(a) => assert_eq!(a, &out.asc, "{name}: ASC differs between segments"),
        }
        for f in &out.frames {
            adts.extend_from_slice(&adts_header(&out.asc, f.len()));
            adts.extend_from_slice(f);
        }
        first += i64::from(frames);
        joins.push(first * 1024);
    }
    let took = t0.elapsed();
    joins.pop(); // the end is not a join
                 // AAC-LC, 48 kHz, stereo (FFmpeg adds the backward-compatible "no SBR" sync extension).
    let asc = asc.unwrap();
    assert_eq!(
        &asc[..2],
        &[0x11, 0x90],
        "AAC-LC 48 kHz stereo ASC: {asc:02x?}"
    );
    let seg_file = dir.join("segments.aac");
    std::fs::write(&seg_file, &adts).unwrap();
    let ours = decode_left(&seg_file);

    // Total length.
    let diff = ours.len() as i64 - continuous.len() as i64;
    assert!(
        diff.abs() <= 1024,
        "{name}: {} samples vs continuous {}",
        ours.len(),
        continuous.len()
    );

    // Joins: the largest jump within ±2 ms of each join vs the largest elsewhere.
    let near = 96usize;
    let edge = 4096usize;
    let mut elsewhere = 0f32;
    let mut n = edge;
    let mut sorted = joins.iter().map(|&j| j as usize).collect::<Vec<_>>();
    sorted.push(ours.len() - edge);
    for &j in &sorted {
        let stop = j.saturating_sub(near);
        if stop > n {
            elsewhere = elsewhere.max(max_jump(&ours, n..stop));
        }
        n = j + near;
    }
    let mut worst = 0f32;
    for &j in &joins {
        let at = j as usize;
        let jump = max_jump(&ours, at - near..at + near);
        assert!(
            jump <= 1.5 * elsewhere,
            "{name}: jump {jump} at join {j} > 1.5 × {elsewhere} elsewhere"
        );
        worst = worst.max(jump);
    }
    let continuous_jump = max_jump(&continuous, edge..continuous.len() - edge);

    // Alignment with the continuous encode and how close the waveforms are.
    let lag = best_lag(&continuous, &ours, 2048);
    if let Some(want) = expect_lag {
        assert_eq!(
            lag, want,
            "{name}: our grid is shifted against the continuous encode"
        );
    }
    let (mut err, mut sig) = (0f64, 0f64);
    let stop = ours.len().min(continuous.len()) - edge;
    for (n, &c) in continuous.iter().enumerate().take(stop).skip(edge) {
        let m = (n as i64 + lag) as usize;
        if m < ours.len() {
            err += (f64::from(ours[m]) - f64::from(c)).powi(2);
            sig += f64::from(c).powi(2);
        }
    }
    let snr = 10.0 * (sig / err.max(1e-30)).log10();
    eprintln!(
        "{name}: {} segments, {} frames in {took:?}; decoded {} vs continuous {} samples; \
         worst join jump {worst:.5}, elsewhere {elsewhere:.5} (ratio {:.3}), continuous max jump \
         {continuous_jump:.5}; lag {lag}; SNR vs continuous {snr:.1} dB",
        joins.len() + 1,
        first,
        ours.len(),
        continuous.len(),
        worst / elsewhere
    );
    // A one-sample shift of a 440 Hz sine alone limits the SNR to ~25 dB.
    assert!(
        snr > min_snr,
        "{name}: SNR vs the continuous encode {snr:.1} dB"
    );
    (worst / elsewhere, lag)
}

#[test]
fn aac_mono_mp4_segments_join_cleanly() {
    let path = fixture("h264_aac_faststart.mp4");
    check_source(
        "h264_aac_faststart",
        &path,
        &[281, 281, 280, 283, 277, 289, 301, 263],
        Some(0),
        45.0,
    );
}

#[test]
fn ac3_51_mkv_segments_join_cleanly() {
    let path = fixture("hevc_ac3.mkv");
    check_source(
        "hevc_ac3",
        &path,
        &[281, 282, 279, 285, 271, 293],
        None,
        35.0,
    );
}

#[test]
fn aac_51_44k_mkv_resampled_segments_join_cleanly() {
    let scratch = temp_dir("aac51-src");
    let dir = scratch.path();
    let src = dir.join("aac51_44k.mkv");
    run(Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i"])
        .arg("sine=frequency=440:sample_rate=44100:duration=20")
        .args(["-af", "pan=5.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0"])
        .args(["-c:a", "aac", "-b:a", "256k", "-fflags", "+bitexact"])
        .arg(&src));
    // The continuous reference drops the 1024-sample priming at 44.1 kHz (1114.56 samples at
    // 48 kHz), so its grid is half a sample off ours: the SNR bound is lower.
    check_source(
        "aac51_44k_mkv",
        &src,
        &[281, 283, 279, 287, 277],
        None,
        25.0,
    );
}

#[test]
fn bad_audio_input_is_an_error_or_silence_not_a_panic() {
    use pipeline::av::{AvError, Packet, StreamParams};
    let (params, packets) = demux(&fixture("hevc_ac3.mkv"), probe::TrackKind::Audio);
    let junk: Vec<Vec<u8>> = (0..40u8)
        .map(|i| {
            (0..300u32)
                .map(|j| (j as u8).wrapping_mul(17).wrapping_add(i))
                .collect()
        })
        .collect();
    let junk_packets: Vec<Packet> = junk
        .iter()
        .enumerate()
        .map(|(i, d)| Packet {
            data: d,
            pts: i as i64 * 32,
            dts: None,
            keyframe: true,
        })
        .collect();
    // Nothing decodes: the frames are silence, and there are exactly as many as asked.
    let out = transcode_audio(&params, &junk_packets, 0, 20, &enc()).unwrap();
    assert_eq!(out.frames.len(), 20);
    // Packets cut short, absurd timestamps.
    let cut: Vec<Vec<u8>> = packets[..100]
        .iter()
        .map(|p| p.data[..p.data.len() / 3].to_vec())
        .collect();
    let weird: Vec<Packet> = cut
        .iter()
        .enumerate()
        .map(|(i, d)| Packet {
            data: d,
            pts: if i % 7 == 0 {
                i64::MAX - i as i64
            } else {
                i as i64 * 32
            },
            dts: None,
            keyframe: true,
        })
        .collect();
    let out = transcode_audio(&params, &weird, 10, 50, &enc()).unwrap();
    assert_eq!(out.frames.len(), 50);
    let far = transcode_audio(&params, &borrow(&packets[..50]), i64::MAX / 2, 10, &enc());
    assert!(matches!(far, Err(AvError::InvalidParams(_))));
    assert!(matches!(
        transcode_audio(&params, &borrow(&packets[..50]), 0, 0, &enc()),
        Err(AvError::Limit { .. })
    ));
    let bad_rate = AudioEncode {
        sample_rate: 47_000,
        ..enc()
    };
    assert!(transcode_audio(&params, &borrow(&packets[..50]), 0, 10, &bad_rate).is_err());
    let subs = StreamParams {
        codec: probe::Codec::WebVtt,
        ..params
    };
    assert!(matches!(
        transcode_audio(&subs, &borrow(&packets[..50]), 0, 10, &enc()),
        Err(AvError::UnsupportedCodec(_))
    ));
}
