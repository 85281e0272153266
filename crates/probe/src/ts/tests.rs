//! Tests of the MPEG-TS probe: the fixture (and an M2TS made from it), and hand-made streams,
//! broken on purpose.

use super::psi::tests::section;
use super::*;
use crate::{probe_bytes, Container, Keyframe, MediaIndex, Prober, Step, TrackKind};

/// The fixture's bytes. Always `Some`: the fixtures are made if missing (a test never skips).
fn fixture(name: &str) -> Option<Vec<u8>> {
    let path = hlsgate_tests::fixture(name);
    Some(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// Probes `data` through the real driver loop; returns the index, requests and bytes read.
fn probe_counted(data: &[u8]) -> (MediaIndex, u64, u64) {
    let mut p = Prober::new(data.len() as u64);
    loop {
        match p.poll().unwrap() {
            Step::Need(r) => {
                let (a, b) = (r.start as usize, (r.end as usize).min(data.len()));
                p.push(r.start, data[a..b].to_vec()).unwrap();
            }
            Step::Done(index) => return (*index, p.requests(), p.bytes_read()),
        }
    }
}

/// Checks what holds for every index: sorted keyframes, contiguous spans that hold their
/// keyframe's packet.
fn check_invariants(ix: &MediaIndex) {
    assert!(ix.keyframes.windows(2).all(|w| w[0].pts <= w[1].pts));
    if !ix.keyframes.is_empty() {
        assert_eq!(ix.spans.len(), ix.keyframes.len());
    }
    for (i, s) in ix.spans.iter().enumerate() {
        assert!(
            s.time <= s.end_time && s.start < s.end && s.end <= ix.file_size,
            "{s:?}"
        );
        if let Some(next) = ix.spans.get(i + 1) {
            assert_eq!(s.end_time, next.time);
        }
        if let Some(k) = ix.keyframes.get(i) {
            assert_eq!(k.pts, s.time);
            assert!(s.start <= k.offset && k.offset < s.end);
        }
    }
}

#[test]
fn h264_aac_fixture() {
    let Some(data) = fixture("h264_aac.ts") else {
        return;
    };
    let t = std::time::Instant::now();
    let (ix, requests, bytes) = probe_counted(&data);
    eprintln!(
        "h264_aac.ts: {} keyframes, {requests} requests, {bytes} bytes, {:?}",
        ix.keyframes.len(),
        t.elapsed()
    );
    assert_eq!(ix.container, Container::MpegTs);
    assert_eq!(ix.timescale, 90_000);
    assert_eq!(ix.tracks.len(), 2);
    let (v, a) = (&ix.tracks[0], &ix.tracks[1]);
    assert_eq!(
        (v.id, v.codec.clone(), v.kind),
        (0x100, Codec::H264, TrackKind::Video)
    );
    let vi = v.video.as_ref().unwrap();
    assert_eq!((vi.width, vi.height), (320, 240));
    assert_eq!(vi.frame_rate.map(|r| (r.num, r.den)), Some((25, 1)));
    assert_eq!(vi.profile, Some(100));
    // avcC: version 1, High profile, SPS and PPS arrays.
    assert_eq!(&v.codec_private[..2], &[1, 100]);
    assert_eq!((a.id, a.codec.clone()), (0x101, Codec::Aac));
    let ai = a.audio.as_ref().unwrap();
    assert_eq!(
        (ai.sample_rate, ai.channels, ai.aac_object_type),
        (48_000, 1, Some(2))
    );
    assert_eq!(a.codec_private, vec![0x11, 0x88]);
    assert_eq!(ix.main_track, Some(0));
    // ffprobe: 60 keyframes, the first at 1.48 s in the packet at byte 564, one a second.
    assert_eq!(ix.keyframes.len(), 60);
    assert_eq!(
        ix.keyframes[0],
        Keyframe {
            pts: 133_200,
            offset: 564
        }
    );
    assert!(ix
        .keyframes
        .windows(2)
        .all(|w| w[1].pts - w[0].pts == 90_000));
    assert_eq!(ix.start, 133_200);
    assert_eq!(ix.duration, 60 * 90_000);
    check_invariants(&ix);
    // One pass over the file, nothing read twice but the head's partial packet.
    assert!(bytes < data.len() as u64 + 188, "{bytes}");
    assert!(requests <= 6, "{requests}");
    // FFmpeg muxes audio behind video here: the first span's audio runs past the second
    // keyframe's packet, so spans overlap.
    assert!(ix.spans[0].end > ix.keyframes[1].offset + 188);
    assert_eq!(ix.spans[0].start, 564);
}

#[test]
fn m2ts_from_the_fixture() {
    let Some(data) = fixture("h264_aac.ts") else {
        return;
    };
    // BDAV: a 4-byte TP_extra_header before every packet.
    let mut m2ts = Vec::with_capacity(data.len() / 188 * 192);
    for (i, p) in data.chunks_exact(188).enumerate() {
        m2ts.extend_from_slice(&(i as u32 & 0x3FFF_FFFF).to_be_bytes());
        m2ts.extend_from_slice(p);
    }
    let ts = probe_bytes(&data).unwrap();
    let m = probe_bytes(&m2ts).unwrap();
    assert_eq!(m.keyframes.len(), ts.keyframes.len());
    for (a, b) in m.keyframes.iter().zip(&ts.keyframes) {
        assert_eq!(a.pts, b.pts);
        assert_eq!(a.offset, b.offset / 188 * 192);
    }
    assert_eq!(m.tracks, ts.tracks);
    assert_eq!((m.start, m.duration), (ts.start, ts.duration));
    check_invariants(&m);
}

#[test]
fn resyncs_after_garbage_and_ignores_a_truncated_tail() {
    let Some(data) = fixture("h264_aac.ts") else {
        return;
    };
    let clean = probe_bytes(&data).unwrap();
    // 1000 junk bytes in the middle of the file (not a multiple of 188) and half a packet
    // at the end.
    let cut = 188 * 9000 + 100;
    let mut broken = data[..cut].to_vec();
    broken.extend(std::iter::repeat_n(0x55, 1000));
    broken.extend_from_slice(&data[cut..data.len() - 94]);
    let ix = probe_bytes(&broken).unwrap();
    assert_eq!(ix.tracks.len(), 2);
    // The damaged GOP may lose its keyframe; the others are all there.
    assert!(ix.keyframes.len() >= 59, "{}", ix.keyframes.len());
    assert_eq!(ix.keyframes[0], clean.keyframes[0]);
    assert_eq!(
        ix.keyframes.last().unwrap().pts,
        clean.keyframes.last().unwrap().pts
    );
    check_invariants(&ix);
}

#[test]
fn mutated_fixture_never_panics() {
    let Some(data) = fixture("h264_aac.ts") else {
        return;
    };
    let head = &data[..188 * 600];
    let mut x: u64 = 7;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for round in 0..300 {
        let mut d = head.to_vec();
        for _ in 0..(1 + round % 40) {
            let at = (rnd() as usize) % d.len();
            d[at] = rnd() as u8;
        }
        if round % 7 == 0 {
            let at = (rnd() as usize) % d.len();
            d.truncate(at.max(600));
        }
        let _ = probe_bytes(&d);
    }
}

// ---- A small muxer for hand-made streams --------------------------------------------------

const PMT_PID: u16 = 0x1000;
const VIDEO_PID: u16 = 0x100;
const AUDIO_PID: u16 = 0x101;

#[derive(Default)]
struct Mux {
    out: Vec<u8>,
    cc: Vec<u8>,
}

impl Mux {
    fn new() -> Mux {
        Mux {
            out: Vec::new(),
            cc: vec![0; 8192],
        }
    }

    /// Writes one packet holding as much of `payload` as fits; returns how much that was.
    fn packet(&mut self, pid: u16, pusi: bool, rai: bool, payload: &[u8]) -> usize {
        let n = payload.len().min(if rai { 182 } else { 184 });
        let cc = &mut self.cc[usize::from(pid)];
        let af = n < 184;
        let mut p = vec![
            0x47,
            (u8::from(pusi) << 6) | (pid >> 8) as u8,
            pid as u8,
            (if af { 0x30 } else { 0x10 }) | *cc,
        ];
        *cc = (*cc + 1) & 15;
        if af {
            let len = 183 - n;
            p.push(len as u8);
            if len > 0 {
                p.push(if rai { 0x40 } else { 0 });
                p.extend(std::iter::repeat_n(0xFF, len - 1));
            }
        }
        p.extend_from_slice(&payload[..n]);
        assert_eq!(p.len(), 188);
        self.out.extend_from_slice(&p);
        n
    }

    fn section(&mut self, pid: u16, s: &[u8]) {
        let mut payload = vec![0];
        payload.extend_from_slice(s);
        payload.resize(184, 0xFF);
        self.packet(pid, true, false, &payload);
    }

    fn psi(&mut self, streams: &[(u8, u16)]) {
        self.section(
            0,
            &section(0, 1, &[0, 1, 0xE0 | (PMT_PID >> 8) as u8, PMT_PID as u8]),
        );
        let mut body = vec![0xE1, 0x00, 0xF0, 0x00];
        for &(ty, pid) in streams {
            body.extend_from_slice(&[ty, 0xE0 | (pid >> 8) as u8, pid as u8, 0xF0, 0]);
        }
        self.section(PMT_PID, &section(2, 1, &body));
    }

    fn pes(&mut self, pid: u16, stream_id: u8, pts: u64, rai: bool, es: &[u8]) {
        let mut b = vec![0, 0, 1, stream_id, 0, 0, 0x80, 0x80, 5];
        b.extend_from_slice(&[
            0x21 | (((pts >> 30) as u8 & 7) << 1),
            (pts >> 22) as u8,
            ((pts >> 14) as u8) | 1,
            (pts >> 7) as u8,
            ((pts << 1) as u8) | 1,
        ]);
        b.extend_from_slice(es);
        if stream_id != 0xE0 {
            let len = (b.len() - 6) as u16;
            b[4..6].copy_from_slice(&len.to_be_bytes());
        }
        let mut at = self.packet(pid, true, rai, &b);
        while at < b.len() {
            at += self.packet(pid, false, false, &b[at..]);
        }
    }
}

/// An H.264 access unit: AUD, then an IDR or a non-IDR slice, padded to `size` bytes.
fn access_unit(idr: bool, size: usize) -> Vec<u8> {
    let mut au = vec![
        0,
        0,
        0,
        1,
        0x09,
        0xF0,
        0,
        0,
        1,
        if idr { 0x65 } else { 0x41 },
    ];
    au.resize(size, 0x5A);
    au
}

/// `n` frames at 25 fps, an IDR every `gop`, AAC every 4 frames; PTS from `first`.
fn av_stream(n: u64, gop: u64, first: u64, rai: bool) -> Mux {
    let mut m = Mux::new();
    m.psi(&[(0x1B, VIDEO_PID), (0x0F, AUDIO_PID)]);
    let adts = [0xFF, 0xF1, 0x4C, 0x80, 0x2E, 0x7F, 0xFC, 0, 0, 0];
    for i in 0..n {
        let pts = (first + i * 3600) & ((1 << 33) - 1);
        let key = i % gop == 0;
        m.pes(VIDEO_PID, 0xE0, pts, rai && key, &access_unit(key, 700));
        if i % 4 == 0 {
            m.pes(AUDIO_PID, 0xC0, pts, false, &adts);
        }
    }
    m
}

#[test]
fn synthetic_stream_with_and_without_rai() {
    for rai in [true, false] {
        let m = av_stream(100, 25, 126_000, rai);
        let ix = probe_bytes(&m.out).unwrap();
        assert_eq!(ix.keyframes.len(), 4, "rai {rai}");
        assert_eq!(ix.keyframes[1].pts, 126_000 + 25 * 3600);
        assert_eq!(ix.start, 126_000);
        assert_eq!(ix.duration, 100 * 3600);
        // No SPS in these streams: the rate comes from the PTS gaps.
        let v = ix.tracks[0].video.as_ref().unwrap();
        assert_eq!(v.frame_rate.map(|r| (r.num, r.den)), Some((25, 1)));
        let a = ix.tracks[1].audio.as_ref().unwrap();
        assert_eq!((a.sample_rate, a.channels), (48_000, 2));
        check_invariants(&ix);
    }
}

#[test]
fn pts_wraps_at_33_bits() {
    // Starts 2 s before the wrap, runs 8 s.
    let first = (1u64 << 33) - 180_000;
    let ix = probe_bytes(&av_stream(200, 50, first, true).out).unwrap();
    assert_eq!(ix.keyframes.len(), 4);
    let pts: Vec<i64> = ix.keyframes.iter().map(|k| k.pts).collect();
    let f = first as i64;
    assert_eq!(pts, vec![f, f + 180_000, f + 360_000, f + 540_000]);
    assert_eq!(ix.duration, 200 * 3600);
}

#[test]
fn audio_only_stream() {
    let mut m = Mux::new();
    m.psi(&[(0x0F, AUDIO_PID)]);
    let adts = [0xFF, 0xF1, 0x50, 0x80, 0x2E, 0x7F, 0xFC, 1, 2, 3];
    for i in 0..50u64 {
        m.pes(AUDIO_PID, 0xC0, 1000 + i * 1920, false, &adts);
    }
    let ix = probe_bytes(&m.out).unwrap();
    assert!(ix.keyframes.is_empty());
    assert_eq!(ix.main_track, Some(0));
    assert_eq!((ix.start, ix.duration), (1000, 50 * 1920));
    // 44.1 kHz index 4, stereo.
    assert_eq!(ix.tracks[0].audio.as_ref().unwrap().sample_rate, 44_100);
    assert_eq!(ix.spans.len(), 2);
    check_invariants(&ix);
}

#[test]
fn private_data_stream_with_adts_is_aac() {
    // FFmpeg's M2TS muxer declares AAC as stream_type 0x06 without descriptors.
    let mut m = Mux::new();
    m.psi(&[(0x06, AUDIO_PID)]);
    let adts = [0xFF, 0xF1, 0x4C, 0x80, 0x01, 0x5F, 0xFC, 1, 2, 3];
    for i in 0..20u64 {
        m.pes(AUDIO_PID, 0xC0, i * 1920, false, &adts);
    }
    let ix = probe_bytes(&m.out).unwrap();
    let t = &ix.tracks[0];
    assert_eq!((t.kind, t.codec.clone()), (TrackKind::Audio, Codec::Aac));
    assert_eq!(t.codec_private, vec![0x11, 0x90]);
}

#[test]
fn sync_bytes_only_is_a_clear_error() {
    let mut d = Vec::new();
    for _ in 0..2000 {
        let mut p = [0xFFu8; 188];
        p[..4].copy_from_slice(&[0x47, 0x1F, 0xFF, 0x10]);
        d.extend_from_slice(&p);
    }
    let err = probe_bytes(&d).unwrap_err();
    assert!(err.to_string().contains("no PAT"), "{err}");
    // Sync bytes, every other byte zero: PID 0 packets with nothing in them.
    let mut z = vec![0u8; 188 * 500];
    for p in z.chunks_exact_mut(188) {
        p[0] = 0x47;
    }
    let err = probe_bytes(&z).unwrap_err();
    assert!(matches!(err, ProbeError::Malformed { .. }), "{err}");
}

#[test]
fn absurd_pmt_section_length_names_the_pmt() {
    let mut m = Mux::new();
    m.section(
        0,
        &section(0, 1, &[0, 1, 0xE0 | (PMT_PID >> 8) as u8, PMT_PID as u8]),
    );
    // section_length 0xFFF.
    m.section(PMT_PID, &[0x02, 0xBF, 0xFF, 0, 1, 0xC1, 0, 0]);
    let pmt_at = m.out.len() as u64 - 188;
    for i in 0..10 {
        m.pes(VIDEO_PID, 0xE0, i * 3600, true, &access_unit(true, 300));
    }
    let err = probe_bytes(&m.out).unwrap_err();
    match &err {
        ProbeError::Malformed { offset, what, .. } => {
            assert_eq!(*offset, pmt_at + 5, "{err}");
            assert!(what.contains("section_length"), "{err}");
        }
        _ => panic!("{err}"),
    }
    // A PMT whose ES_info_length runs past the section.
    let mut m = Mux::new();
    m.section(
        0,
        &section(0, 1, &[0, 1, 0xE0 | (PMT_PID >> 8) as u8, PMT_PID as u8]),
    );
    m.section(
        PMT_PID,
        &section(2, 1, &[0xE1, 0, 0xF0, 0, 0x1B, 0xE1, 0, 0xF3, 0xFF]),
    );
    m.pes(VIDEO_PID, 0xE0, 0, true, &access_unit(true, 300));
    let err = probe_bytes(&m.out).unwrap_err();
    assert!(err.to_string().contains("PMT (PID 0x1000)"), "{err}");
}

#[test]
fn bad_adaptation_fields_and_pes_headers_are_skipped() {
    let mut m = av_stream(50, 25, 90_000, true);
    let n = m.out.len();
    // Third packet after the PSI: adaptation_field_length 200.
    let p = 188 * 4;
    m.out[p + 3] = 0x30;
    m.out[p + 4] = 200;
    // Second keyframe's PES: PES_header_data_length far past PES_packet_length... find it.
    let second = (0..n / 188)
        .map(|i| i * 188)
        .filter(|&o| {
            let pkt = &m.out[o..o + 188];
            pkt[1] & 0x40 != 0 && u16::from_be_bytes([pkt[1] & 0x1F, pkt[2]]) == VIDEO_PID
        })
        .nth(25)
        .unwrap();
    // Its PES header starts after the adaptation field.
    let pes = second + 5 + usize::from(m.out[second + 4]);
    assert_eq!(&m.out[pes..pes + 3], &[0, 0, 1]);
    m.out[pes + 8] = 0; // PES_header_data_length 0 with a PTS flag.
    let ix = probe_bytes(&m.out).unwrap();
    // The keyframe with the broken header is gone; the first one stays.
    assert_eq!(ix.keyframes.len(), 1);
    assert_eq!(ix.keyframes[0].pts, 90_000);
    check_invariants(&ix);
}

#[test]
fn no_streams_and_empty_pes_give_errors() {
    // PAT + PMT with a video stream that never sends a packet.
    let mut m = Mux::new();
    m.psi(&[(0x1B, VIDEO_PID)]);
    m.psi(&[(0x1B, VIDEO_PID)]);
    let err = probe_bytes(&m.out).unwrap_err();
    assert!(matches!(err, ProbeError::NoTracks(_)), "{err}");
    // Video PES without any keyframe.
    let mut m = Mux::new();
    m.psi(&[(0x1B, VIDEO_PID)]);
    for i in 0..10 {
        m.pes(VIDEO_PID, 0xE0, i * 3600, false, &access_unit(false, 300));
    }
    let err = probe_bytes(&m.out).unwrap_err();
    assert!(err.to_string().contains("no random access point"), "{err}");
}

#[test]
fn polls_are_idempotent_while_bytes_are_missing() {
    let m = av_stream(400, 25, 0, true);
    let data = m.out;
    let mut store = Store::default();
    let mut probe = TsProbe::new(data.len() as u64);
    let first = probe.poll(&mut store).unwrap();
    let again = probe.poll(&mut store).unwrap();
    match (first, again) {
        (Poll::Need(a), Poll::Need(b)) => assert_eq!(a, b),
        _ => panic!("expected two identical requests"),
    }
}

/// Issue 10: a PTS that climbs by 2^32−1 a packet would unwrap to 13 h more each time; it is a
/// discontinuity we refuse, not a timeline of days.
#[test]
fn pts_climbing_by_half_a_wrap_is_not_unrolled() {
    let mut m = Mux::new();
    m.psi(&[(0x1B, VIDEO_PID)]);
    for i in 0..32u64 {
        let pts = (i * ((1u64 << 32) - 1)) & ((1 << 33) - 1);
        m.pes(VIDEO_PID, 0xE0, pts, true, &access_unit(true, 200));
    }
    match probe_bytes(&m.out) {
        Err(crate::ProbeError::Malformed { what, .. }) => {
            assert!(what.contains("MAX_TS_PTS_JUMP_SECS"), "{what}")
        }
        other => panic!("expected a PTS jump error, got {other:?}"),
    }
    if std::env::var_os("HLSGATE_WRITE_SEEDS").is_some() && m.out.len() < 64 * 1024 {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/probe_ts");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ts_pts_half_wrap_steps.ts"), &m.out).unwrap();
    }
}
