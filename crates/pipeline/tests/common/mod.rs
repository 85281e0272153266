//! Test helpers: fixtures, a test-only demuxer (ffmpeg-next's), the probe for codec parameters,
//! and the ffmpeg/ffprobe CLIs as independent checkers.
// Test helpers: a failed unwrap is a failed test (clippy allows it only inside #[test] fns).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use ffmpeg_next as ff;
use pipeline::av::{Packet, StreamParams};

/// A fixture made by fixtures/make.sh.
pub fn fixture(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/out")
        .join(name);
    assert!(
        p.exists(),
        "missing fixture {} (run fixtures/make.sh)",
        p.display()
    );
    p
}

/// The probe's index of a file (read whole into memory).
pub fn probe_file(path: &Path) -> probe::MediaIndex {
    let bytes = std::fs::read(path).unwrap();
    let mut prober = probe::Prober::new(bytes.len() as u64);
    loop {
        match prober.poll().unwrap() {
            probe::Step::Need(r) => {
                let end = (r.end as usize).min(bytes.len());
                let start = (r.start as usize).min(end);
                prober.push(r.start, bytes[start..end].to_vec()).unwrap();
            }
            probe::Step::Done(index) => return *index,
        }
    }
}

/// A packet that owns its bytes.
#[derive(Debug, Clone)]
pub struct OwnedPacket {
    pub data: Vec<u8>,
    pub pts: i64,
    pub dts: Option<i64>,
    pub keyframe: bool,
}

impl OwnedPacket {
    pub fn as_packet(&self) -> Packet<'_> {
        Packet {
            data: &self.data,
            pts: self.pts,
            dts: self.dts,
            keyframe: self.keyframe,
        }
    }
}

pub fn borrow(packets: &[OwnedPacket]) -> Vec<Packet<'_>> {
    packets.iter().map(OwnedPacket::as_packet).collect()
}

/// The first stream of `kind` in `path`: its parameters (codec and extradata from our probe,
/// timescale from FFmpeg's stream time base) and all its packets in file (decode) order.
pub fn demux(path: &Path, kind: probe::TrackKind) -> (StreamParams, Vec<OwnedPacket>) {
    ff::init().unwrap();
    let index = probe_file(path);
    let track = index
        .tracks
        .iter()
        .find(|t| t.kind == kind)
        .expect("no such track")
        .clone();
    let medium = match kind {
        probe::TrackKind::Video => ff::media::Type::Video,
        probe::TrackKind::Audio => ff::media::Type::Audio,
        _ => panic!("unsupported kind"),
    };
    let mut ictx = ff::format::input(&path).unwrap();
    let stream = ictx.streams().best(medium).unwrap();
    let si = stream.index();
    let tb = stream.time_base();
    assert_eq!(tb.numerator(), 1, "time base {tb}");
    let timescale = tb.denominator() as u32;
    let mut packets = Vec::new();
    for (s, p) in ictx.packets() {
        if s.index() != si {
            continue;
        }
        packets.push(OwnedPacket {
            data: p.data().unwrap_or(&[]).to_vec(),
            pts: p.pts().or(p.dts()).unwrap(),
            dts: p.dts(),
            keyframe: p.is_key(),
        });
    }
    let params = StreamParams {
        codec: track.codec.clone(),
        extradata: track.codec_private.clone(),
        timescale,
        width: track.video.as_ref().map_or(0, |v| v.width),
        height: track.video.as_ref().map_or(0, |v| v.height),
        sample_rate: track.audio.as_ref().map_or(0, |a| a.sample_rate),
        channels: track.audio.as_ref().map_or(0, |a| a.channels),
        bit_rate: Default::default(),
        block_align: Default::default(),
        rotation: 0,
    };
    (params, packets)
}

/// Runs a command, panics on failure, returns stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command and returns (stdout, stderr) whatever the status.
pub fn run_both(cmd: &mut Command) -> (String, String, bool) {
    let out = cmd.output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    )
}

/// A fresh temporary directory, removed when the returned guard drops.
pub fn temp_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("av-{name}-"))
        .tempdir()
        .unwrap()
}
