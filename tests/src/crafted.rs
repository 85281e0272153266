//! Hostile media, built byte by byte from code (no ffmpeg): one file per attack class of issue 10
//! (point 7), each valid enough that the container is detected and the hostile claim reaches the
//! parser, plus sane controls built by the same writers (the controls must probe and play, so a
//! refused attack file is refused for its claim, not for a mistake of the builder).
//!
//! Writers: [`Boxes`] (ISO/IEC 14496-12 boxes: one `write_box` that backpatches the size),
//! [`Ebml`] (RFC 8794 elements, RFC 9559 Matroska ids, 8-byte sizes backpatched), and MPEG-TS
//! packets (ISO/IEC 13818-1: PAT, PMT with CRC-32, PES with PTS). Everything is deterministic.
//!
//! `tests/tests/hostile.rs` serves every file through the real binary; the ignored test
//! `write_crafted_corpus` there writes them all into `$HLSGATE_CRAFTED_DIR` (fuzz seeds).

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

/// Container family of a crafted file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// ISO BMFF.
    Mp4,
    /// Matroska.
    Mkv,
    /// MPEG-TS.
    Ts,
}

/// What `hlsgate probe` must do with the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Refuse it: exit 1, one line on stderr.
    Refused,
    /// May succeed (100k keyframes, undecodable payloads, nesting where no reader descends):
    /// exit 0, or exit 1 with one line; fast and bounded either way.
    MaySucceed,
    /// A sane control: must succeed and play.
    Sane,
}

/// The bytes of a crafted file.
#[derive(Debug, Clone)]
pub enum Body {
    /// The whole file.
    Bytes(Vec<u8>),
    /// `head`, then zeros up to `len` bytes written as a hole (`set_len`: sparse on disk).
    Sparse {
        /// The first bytes.
        head: Vec<u8>,
        /// The file's length.
        len: u64,
    },
}

/// One crafted file.
#[derive(Debug, Clone)]
pub struct Crafted {
    /// File name (extension by container).
    pub name: &'static str,
    /// Attack class of issue 10 point 7 (1–7), 0 for the sane controls.
    pub class: u8,
    /// Container.
    pub kind: Kind,
    /// What the probe must do.
    pub expect: Expect,
    /// The bytes.
    pub body: Body,
}

impl Crafted {
    /// The file's length in bytes.
    pub fn len(&self) -> u64 {
        match &self.body {
            Body::Bytes(b) => b.len() as u64,
            Body::Sparse { len, .. } => *len,
        }
    }

    /// True when the file is empty (never, for crafted files).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the file into `dir` (sparse bodies as holes); returns its path.
    pub fn write_to(&self, dir: &Path) -> std::path::PathBuf {
        let path = dir.join(self.name);
        let mut f = std::fs::File::create(&path).expect("create crafted file");
        match &self.body {
            Body::Bytes(b) => f.write_all(b).expect("write crafted file"),
            Body::Sparse { head, len } => {
                f.write_all(head).expect("write crafted head");
                f.set_len(*len).expect("extend crafted file");
                f.seek(SeekFrom::End(0)).expect("seek");
            }
        }
        path
    }
}

// ---------------------------------------------------------------------------------------------
// Codec payloads.

/// An H.264 SPS (Constrained Baseline, level 1.3, 320x240, 4:2:0 8-bit), as x264 wrote it.
pub const SPS_420: &[u8] = &[
    0x67, 0x42, 0xc0, 0x0d, 0xdc, 0x14, 0x1f, 0xb0, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00,
    0x03, 0x00, 0x32, 0x0f, 0x14, 0x2b, 0x80,
];
/// Its PPS.
pub const PPS_420: &[u8] = &[0x68, 0xce, 0x0f, 0x2c, 0x80];
/// An H.264 SPS (High 4:4:4 Predictive, 320x240, 4:4:4): not playable as-is in HLS, so the
/// server transcodes it (the decoder runs).
pub const SPS_444: &[u8] = &[
    0x67, 0xf4, 0x10, 0x0d, 0x91, 0x97, 0x05, 0x07, 0xec, 0x04, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40,
    0x00, 0x00, 0x0c, 0x81,
];
/// Its PPS.
pub const PPS_444: &[u8] = &[0x68, 0xee, 0x0f, 0x11, 0x21, 0x10];

/// AudioSpecificConfig: AAC-LC, 48 kHz, 2 channels (ISO/IEC 14496-3 §1.6.2.1).
pub const ASC: [u8; 2] = [0x11, 0x90];
/// One raw AAC-LC stereo frame of silence (1024 samples).
pub const AAC_SILENCE: &[u8] = &[0x21, 0x00, 0x49, 0x90, 0x02, 0x19, 0x00, 0x23, 0x80];
/// Audio sample rate of every crafted AAC track.
pub const RATE: u32 = 48_000;

/// The silent frame behind a 7-byte ADTS header (ISO/IEC 14496-3 §1.A.2), 48 kHz stereo LC.
pub fn adts_silence() -> Vec<u8> {
    let len = 7 + AAC_SILENCE.len();
    let mut v = vec![
        0xFF,
        0xF1,
        0x40 | (3 << 2),
        0x80 | ((len >> 11) & 3) as u8,
        ((len >> 3) & 0xFF) as u8,
        (((len & 7) << 5) as u8) | 0x1F,
        0xFC,
    ];
    v.extend_from_slice(AAC_SILENCE);
    v
}

/// Deterministic garbage (xorshift), for undecodable payloads.
pub fn garbage(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// ISO BMFF (ISO/IEC 14496-12).

/// A byte buffer with big-endian writers and `write_box` (§4.2: size, type, payload).
#[derive(Debug, Default)]
pub struct Boxes(pub Vec<u8>);

impl Boxes {
    /// Appends a big-endian u16.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// Appends a big-endian u32.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// Appends a big-endian u64.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// Appends bytes.
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }
    /// Appends `n` zero bytes.
    pub fn zeros(&mut self, n: usize) -> &mut Self {
        self.0.resize(self.0.len() + n, 0);
        self
    }
    /// A box (§4.2): 32-bit size backpatched after `f` wrote the payload.
    pub fn write_box(&mut self, kind: &[u8; 4], f: impl FnOnce(&mut Boxes)) -> &mut Self {
        let start = self.0.len();
        self.u32(0).bytes(kind);
        f(self);
        let size = u32::try_from(self.0.len() - start).expect("box under 4 GiB");
        self.0[start..start + 4].copy_from_slice(&size.to_be_bytes());
        self
    }
    /// A FullBox (§4.2): version and 24-bit flags, then `f`.
    pub fn full_box(
        &mut self,
        kind: &[u8; 4],
        version: u8,
        flags: u32,
        f: impl FnOnce(&mut Boxes),
    ) -> &mut Self {
        self.write_box(kind, |b| {
            b.u32((u32::from(version) << 24) | (flags & 0xFF_FFFF));
            f(b);
        })
    }
}

/// `n` boxes of type `kind`, each the only child of the one before (header-only chain, built
/// iteratively: the innermost is empty). `full` adds a version/flags word to each header.
pub fn nested_boxes(kind: &[u8; 4], n: usize, full: bool) -> Vec<u8> {
    let hdr = if full { 12 } else { 8 };
    let mut out = Vec::with_capacity(n * hdr);
    for i in 0..n {
        let size = u32::try_from((n - i) * hdr).expect("nest under 4 GiB");
        out.extend_from_slice(&size.to_be_bytes());
        out.extend_from_slice(kind);
        if full {
            out.extend_from_slice(&[0; 4]);
        }
    }
    out
}

/// `ftyp` (§4.3): isom, 512, compatible isom + iso2. 24 bytes.
fn ftyp(w: &mut Boxes) {
    w.write_box(b"ftyp", |b| {
        b.bytes(b"isom").u32(512).bytes(b"isom").bytes(b"iso2");
    });
}

/// A 3x3 unity matrix (§8.2.2).
fn matrix(w: &mut Boxes) {
    for v in [0x1_0000u32, 0, 0, 0, 0x1_0000, 0, 0, 0, 0x4000_0000] {
        w.u32(v);
    }
}

/// What a sample entry describes.
#[derive(Debug, Clone)]
pub enum Entry {
    /// `mp4a` + `esds` (AAC-LC 48 kHz stereo).
    Aac,
    /// `avc1` + `avcC` with this SPS/PPS, `width`x`height`, then `extra` children bytes.
    Avc {
        /// SPS NAL.
        sps: &'static [u8],
        /// PPS NAL.
        pps: &'static [u8],
        /// Pixels.
        width: u16,
        /// Pixels.
        height: u16,
        /// Raw bytes appended inside the sample entry after `avcC` (nesting attacks).
        extra: Vec<u8>,
    },
}

/// `stsz` contents (§8.7.3.2).
#[derive(Debug, Clone)]
pub enum Sizes {
    /// `sample_size` = size, `sample_count` = count, no table.
    Const(u32, u32),
    /// One size per sample.
    Table(Vec<u32>),
}

/// One track for [`mp4_file`]. Chunk offsets are relative to the start of the mdat payload.
#[derive(Debug, Clone)]
pub struct Trak {
    /// Sample entry.
    pub entry: Entry,
    /// `mdhd` timescale.
    pub timescale: u32,
    /// `mdhd` duration (v1, 64-bit).
    pub duration: u64,
    /// `stts` entries (count, delta).
    pub stts: Vec<(u32, u32)>,
    /// `stsc` entries (first chunk, samples per chunk, description index 1).
    pub stsc: Vec<(u32, u32)>,
    /// `stsz`.
    pub sizes: Sizes,
    /// `stco`, relative to the mdat payload.
    pub chunks: Vec<u32>,
    /// `stss` sample numbers (1-based), when present.
    pub stss: Option<Vec<u32>>,
}

impl Trak {
    fn is_video(&self) -> bool {
        matches!(self.entry, Entry::Avc { .. })
    }
}

fn esds(w: &mut Boxes) {
    // ES_Descriptor (ISO/IEC 14496-1 §7.2.6.5) ⊃ DecoderConfigDescriptor (objectType 0x40 =
    // MPEG-4 audio, streamType 5) ⊃ DecoderSpecificInfo (the ASC); SLConfigDescriptor 2.
    w.full_box(b"esds", 0, 0, |b| {
        b.bytes(&[0x03, 25, 0, 1, 0]);
        b.bytes(&[0x04, 17, 0x40, 0x15, 0, 0x18, 0]);
        b.u32(128_000).u32(128_000);
        b.bytes(&[0x05, 2]).bytes(&ASC);
        b.bytes(&[0x06, 1, 0x02]);
    });
}

fn sample_entry(w: &mut Boxes, e: &Entry) {
    match e {
        Entry::Aac => {
            // AudioSampleEntry (§12.2.3).
            w.write_box(b"mp4a", |b| {
                b.zeros(6).u16(1).zeros(8).u16(2).u16(16).zeros(4);
                b.u32(RATE << 16);
                esds(b);
            });
        }
        Entry::Avc {
            sps,
            pps,
            width,
            height,
            extra,
        } => {
            // VisualSampleEntry (§12.1.3) + AVCDecoderConfigurationRecord (14496-15 §5.3.3).
            w.write_box(b"avc1", |b| {
                b.zeros(6).u16(1).zeros(16).u16(*width).u16(*height);
                b.u32(0x0048_0000).u32(0x0048_0000).u32(0).u16(1);
                b.zeros(32).u16(0x18).u16(0xFFFF);
                b.write_box(b"avcC", |c| {
                    c.bytes(&[1, sps[1], sps[2], sps[3], 0xFF, 0xE1]);
                    c.u16(sps.len() as u16).bytes(sps);
                    c.bytes(&[1]).u16(pps.len() as u16).bytes(pps);
                });
                b.bytes(extra);
            });
        }
    }
}

fn trak(w: &mut Boxes, id: u32, t: &Trak, mdat_payload: u32) {
    let video = t.is_video();
    w.write_box(b"trak", |b| {
        // tkhd (§8.3.2), v0, enabled + in movie; duration left 0 (mvhd timescale units).
        b.full_box(b"tkhd", 0, 3, |h| {
            h.u32(0).u32(0).u32(id).u32(0).u32(0).zeros(8);
            h.u16(0).u16(0).u16(if video { 0 } else { 0x0100 }).u16(0);
            matrix(h);
            let (wd, ht) = match &t.entry {
                Entry::Avc { width, height, .. } => (u32::from(*width), u32::from(*height)),
                Entry::Aac => (0, 0),
            };
            h.u32(wd << 16).u32(ht << 16);
        });
        b.write_box(b"mdia", |m| {
            // mdhd (§8.4.2) v1: 64-bit duration; language `und`.
            m.full_box(b"mdhd", 1, 0, |h| {
                h.u64(0)
                    .u64(0)
                    .u32(t.timescale)
                    .u64(t.duration)
                    .u16(0x55C4)
                    .u16(0);
            });
            m.full_box(b"hdlr", 0, 0, |h| {
                h.u32(0)
                    .bytes(if video { b"vide" } else { b"soun" })
                    .zeros(12)
                    .bytes(b"crafted\0");
            });
            m.write_box(b"minf", |mi| {
                if video {
                    mi.full_box(b"vmhd", 0, 1, |h| {
                        h.zeros(8);
                    });
                } else {
                    mi.full_box(b"smhd", 0, 0, |h| {
                        h.zeros(4);
                    });
                }
                mi.write_box(b"dinf", |d| {
                    d.full_box(b"dref", 0, 0, |r| {
                        r.u32(1).full_box(b"url ", 0, 1, |_| {});
                    });
                });
                mi.write_box(b"stbl", |s| {
                    s.full_box(b"stsd", 0, 0, |d| {
                        d.u32(1);
                        sample_entry(d, &t.entry);
                    });
                    s.full_box(b"stts", 0, 0, |d| {
                        d.u32(t.stts.len() as u32);
                        for &(c, delta) in &t.stts {
                            d.u32(c).u32(delta);
                        }
                    });
                    if let Some(ss) = &t.stss {
                        s.full_box(b"stss", 0, 0, |d| {
                            d.u32(ss.len() as u32);
                            for &n in ss {
                                d.u32(n);
                            }
                        });
                    }
                    s.full_box(b"stsc", 0, 0, |d| {
                        d.u32(t.stsc.len() as u32);
                        for &(first, per) in &t.stsc {
                            d.u32(first).u32(per).u32(1);
                        }
                    });
                    s.full_box(b"stsz", 0, 0, |d| match &t.sizes {
                        Sizes::Const(size, count) => {
                            d.u32(*size).u32(*count);
                        }
                        Sizes::Table(v) => {
                            d.u32(0).u32(v.len() as u32);
                            for &z in v {
                                d.u32(z);
                            }
                        }
                    });
                    s.full_box(b"stco", 0, 0, |d| {
                        d.u32(t.chunks.len() as u32);
                        for &c in &t.chunks {
                            d.u32(mdat_payload + c);
                        }
                    });
                });
            });
        });
    });
}

fn moov(tracks: &[Trak], extra: &[u8], mdat_payload: u32) -> Vec<u8> {
    let mut w = Boxes::default();
    w.write_box(b"moov", |m| {
        // mvhd (§8.2.2) v0, timescale 1000, duration unset (0).
        m.full_box(b"mvhd", 0, 0, |h| {
            h.u32(0).u32(0).u32(1000).u32(0).u32(0x1_0000).u16(0x0100);
            h.zeros(10);
            matrix(h);
            h.zeros(24).u32(tracks.len() as u32 + 1);
        });
        for (i, t) in tracks.iter().enumerate() {
            trak(m, i as u32 + 1, t, mdat_payload);
        }
        m.bytes(extra);
    });
    w.0
}

/// Layout of [`mp4_file`].
#[derive(Debug, Clone, Copy)]
pub enum Layout {
    /// ftyp, moov, mdat.
    MoovFirst,
    /// ftyp, mdat, free (this many bytes), moov: the probe needs a second read.
    MoovLast(u32),
}

/// ftyp + moov (tracks, then `extra` raw children) + mdat(`mdat`) in `layout`.
pub fn mp4_file(tracks: &[Trak], extra: &[u8], mdat: &[u8], layout: Layout) -> Vec<u8> {
    let mut w = Boxes::default();
    ftyp(&mut w);
    match layout {
        Layout::MoovFirst => {
            let moov_len = moov(tracks, extra, 0).len() as u32;
            let payload = w.0.len() as u32 + moov_len + 8;
            w.bytes(&moov(tracks, extra, payload));
            w.write_box(b"mdat", |b| {
                b.bytes(mdat);
            });
        }
        Layout::MoovLast(pad) => {
            let payload = w.0.len() as u32 + 8;
            w.write_box(b"mdat", |b| {
                b.bytes(mdat);
            });
            w.write_box(b"free", |b| {
                b.zeros(pad as usize);
            });
            w.bytes(&moov(tracks, extra, payload));
        }
    }
    w.0
}

/// An AAC track of `n` silent frames (one chunk at the mdat start) with `stts` (n, delta).
fn aac_trak(n: u32, timescale: u32, delta: u32) -> Trak {
    Trak {
        entry: Entry::Aac,
        timescale,
        duration: u64::from(n) * u64::from(delta),
        stts: vec![(n, delta)],
        stsc: vec![(1, n)],
        sizes: Sizes::Table(vec![AAC_SILENCE.len() as u32; n as usize]),
        chunks: vec![0],
        stss: None,
    }
}

fn aac_mdat(n: u32) -> Vec<u8> {
    AAC_SILENCE.repeat(n as usize)
}

/// An H.264 track (320x240, no extra sample-entry children) of `n` samples of `sample_len` each, one chunk, every `key_every`-th a sync
/// sample, `delta` ticks at `timescale`.
fn avc_trak(
    n: u32,
    sample_len: u32,
    timescale: u32,
    delta: u32,
    key_every: u32,
    sps: &'static [u8],
    pps: &'static [u8],
) -> Trak {
    Trak {
        entry: Entry::Avc {
            sps,
            pps,
            width: 320,
            height: 240,
            extra: Vec::new(),
        },
        timescale,
        duration: u64::from(n) * u64::from(delta),
        stts: vec![(n, delta)],
        stsc: vec![(1, n)],
        sizes: Sizes::Const(sample_len, n),
        chunks: vec![0],
        stss: Some((0..n).step_by(key_every as usize).map(|i| i + 1).collect()),
    }
}

/// `n` length-prefixed samples of `len` bytes: an IDR slice NAL header, then garbage.
fn avc_garbage_mdat(n: u32, len: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity((n * len) as usize);
    for i in 0..n {
        out.extend_from_slice(&(len - 4).to_be_bytes());
        out.push(0x65);
        out.extend(garbage(u64::from(i) + 7, len as usize - 5));
    }
    out
}

/// Ten million 1-byte samples in one AAC track (one chunk at the mdat start).
fn stsz_bomb_trak() -> Trak {
    Trak {
        entry: Entry::Aac,
        timescale: RATE,
        duration: 10_000_000 * 1024,
        stts: vec![(10_000_000, 1024)],
        stsc: vec![(1, 10_000_000)],
        sizes: Sizes::Const(1, 10_000_000),
        chunks: vec![0],
        stss: None,
    }
}

/// ftyp + moov(`tracks`) + an mdat that runs to `len` bytes (a hole on disk).
fn sparse_mp4(tracks: &[Trak], len: u64) -> Body {
    let mut w = Boxes::default();
    ftyp(&mut w);
    let moov_len = moov(tracks, &[], 0).len() as u32;
    let payload = w.0.len() as u32 + moov_len + 8;
    w.bytes(&moov(tracks, &[], payload));
    let mdat = u32::try_from(len - w.0.len() as u64).expect("mdat under 4 GiB");
    w.u32(mdat).bytes(b"mdat");
    Body::Sparse { head: w.0, len }
}

// ---------------------------------------------------------------------------------------------
// EBML / Matroska (RFC 8794, RFC 9559).

/// Matroska element ids (RFC 9559 §5).
pub mod id {
    #![allow(missing_docs)]
    pub const EBML: u32 = 0x1A45_DFA3;
    pub const EBML_VERSION: u32 = 0x4286;
    pub const EBML_READ_VERSION: u32 = 0x42F7;
    pub const EBML_MAX_ID_LENGTH: u32 = 0x42F2;
    pub const EBML_MAX_SIZE_LENGTH: u32 = 0x42F3;
    pub const DOC_TYPE: u32 = 0x4282;
    pub const DOC_TYPE_VERSION: u32 = 0x4287;
    pub const DOC_TYPE_READ_VERSION: u32 = 0x4285;
    pub const SEGMENT: u32 = 0x1853_8067;
    pub const INFO: u32 = 0x1549_A966;
    pub const TIMESTAMP_SCALE: u32 = 0x2A_D7B1;
    pub const MUXING_APP: u32 = 0x4D80;
    pub const WRITING_APP: u32 = 0x5741;
    pub const TRACKS: u32 = 0x1654_AE6B;
    pub const TRACK_ENTRY: u32 = 0xAE;
    pub const TRACK_NUMBER: u32 = 0xD7;
    pub const TRACK_UID: u32 = 0x73C5;
    pub const TRACK_TYPE: u32 = 0x83;
    pub const FLAG_LACING: u32 = 0x9C;
    pub const CODEC_ID: u32 = 0x86;
    pub const CODEC_PRIVATE: u32 = 0x63A2;
    pub const VIDEO: u32 = 0xE0;
    pub const PIXEL_WIDTH: u32 = 0xB0;
    pub const PIXEL_HEIGHT: u32 = 0xBA;
    pub const AUDIO: u32 = 0xE1;
    pub const SAMPLING_FREQUENCY: u32 = 0xB5;
    pub const CHANNELS: u32 = 0x9F;
    pub const CLUSTER: u32 = 0x1F43_B675;
    pub const TIMESTAMP: u32 = 0xE7;
    pub const SIMPLE_BLOCK: u32 = 0xA3;
    pub const BLOCK_GROUP: u32 = 0xA0;
    pub const CUES: u32 = 0x1C53_BB6B;
    pub const CUE_POINT: u32 = 0xBB;
    pub const CUE_TIME: u32 = 0xB3;
    pub const CUE_TRACK_POSITIONS: u32 = 0xB7;
    pub const CUE_TRACK: u32 = 0xF7;
    pub const CUE_CLUSTER_POSITION: u32 = 0xF1;
}

/// An EBML writer: every master element's size is an 8-byte VINT backpatched (RFC 8794 §6).
#[derive(Debug, Default)]
pub struct Ebml(pub Vec<u8>);

fn id_bytes(id: u32) -> Vec<u8> {
    let b = id.to_be_bytes();
    let skip = b.iter().take_while(|&&x| x == 0).count();
    b[skip..].to_vec()
}

/// An 8-byte EBML size VINT.
fn size8(n: u64) -> [u8; 8] {
    let mut b = n.to_be_bytes();
    b[0] = 0x01;
    b
}

impl Ebml {
    /// A master (or any) element whose payload `f` writes.
    pub fn el(&mut self, id: u32, f: impl FnOnce(&mut Ebml)) -> &mut Self {
        self.0.extend(id_bytes(id));
        let at = self.0.len();
        self.0.extend([0; 8]);
        f(self);
        let n = (self.0.len() - at - 8) as u64;
        self.0[at..at + 8].copy_from_slice(&size8(n));
        self
    }
    /// An unsigned integer element of exactly `width` bytes.
    pub fn uint_w(&mut self, id: u32, v: u64, width: usize) -> &mut Self {
        self.0.extend(id_bytes(id));
        self.0.push(0x80 | width as u8);
        self.0.extend(&v.to_be_bytes()[8 - width..]);
        self
    }
    /// An unsigned integer element, shortest form.
    pub fn uint(&mut self, id: u32, v: u64) -> &mut Self {
        let width = (8 - (v.leading_zeros() / 8) as usize).max(1);
        self.uint_w(id, v, width)
    }
    /// A float element (8 bytes).
    pub fn float(&mut self, id: u32, v: f64) -> &mut Self {
        self.0.extend(id_bytes(id));
        self.0.push(0x88);
        self.0.extend(v.to_be_bytes());
        self
    }
    /// A binary or string element.
    pub fn bin(&mut self, id: u32, b: &[u8]) -> &mut Self {
        self.el(id, |e| e.0.extend_from_slice(b))
    }
}

/// EBML header (RFC 8794 §11.2) for DocType `matroska`.
fn ebml_header(w: &mut Ebml) {
    w.el(id::EBML, |h| {
        h.uint(id::EBML_VERSION, 1)
            .uint(id::EBML_READ_VERSION, 1)
            .uint(id::EBML_MAX_ID_LENGTH, 4)
            .uint(id::EBML_MAX_SIZE_LENGTH, 8)
            .bin(id::DOC_TYPE, b"matroska")
            .uint(id::DOC_TYPE_VERSION, 4)
            .uint(id::DOC_TYPE_READ_VERSION, 2);
    });
}

/// Info (RFC 9559 §5.1.2): TimestampScale 1 ms, no Duration.
fn mkv_info(w: &mut Ebml) {
    w.el(id::INFO, |i| {
        i.uint(id::TIMESTAMP_SCALE, 1_000_000)
            .bin(id::MUXING_APP, b"hlsgate-crafted")
            .bin(id::WRITING_APP, b"hlsgate-crafted");
    });
}

/// Track 1: A_AAC 48 kHz stereo.
fn mkv_aac_entry(w: &mut Ebml) {
    w.el(id::TRACK_ENTRY, |t| {
        t.uint(id::TRACK_NUMBER, 1)
            .uint(id::TRACK_UID, 1)
            .uint(id::TRACK_TYPE, 2)
            .uint(id::FLAG_LACING, 0)
            .bin(id::CODEC_ID, b"A_AAC")
            .bin(id::CODEC_PRIVATE, &ASC)
            .el(id::AUDIO, |a| {
                a.float(id::SAMPLING_FREQUENCY, f64::from(RATE))
                    .uint(id::CHANNELS, 2);
            });
    });
}

/// Track 1: V_MPEG4/ISO/AVC 320x240 (the 4:2:0 SPS/PPS).
fn mkv_avc_entry(w: &mut Ebml) {
    let mut avcc = vec![1, SPS_420[1], SPS_420[2], SPS_420[3], 0xFF, 0xE1];
    avcc.extend((SPS_420.len() as u16).to_be_bytes());
    avcc.extend(SPS_420);
    avcc.push(1);
    avcc.extend((PPS_420.len() as u16).to_be_bytes());
    avcc.extend(PPS_420);
    w.el(id::TRACK_ENTRY, |t| {
        t.uint(id::TRACK_NUMBER, 1)
            .uint(id::TRACK_UID, 1)
            .uint(id::TRACK_TYPE, 1)
            .uint(id::FLAG_LACING, 0)
            .bin(id::CODEC_ID, b"V_MPEG4/ISO/AVC")
            .bin(id::CODEC_PRIVATE, &avcc)
            .el(id::VIDEO, |v| {
                v.uint(id::PIXEL_WIDTH, 320).uint(id::PIXEL_HEIGHT, 240);
            });
    });
}

/// A SimpleBlock of track 1 (RFC 9559 §10.2) at `rel` ms from its cluster, keyframe flag set.
fn simple_block(w: &mut Ebml, rel: i16, frame: &[u8]) {
    w.el(id::SIMPLE_BLOCK, |b| {
        b.0.push(0x81);
        b.0.extend(rel.to_be_bytes());
        b.0.push(0x80);
        b.0.extend_from_slice(frame);
    });
}

/// A cluster at `ts` ms holding `frames` AAC frames 21 ms apart (1024 samples at 48 kHz).
fn aac_cluster(w: &mut Ebml, ts: u64, frames: u16) {
    w.el(id::CLUSTER, |c| {
        c.uint(id::TIMESTAMP, ts);
        for i in 0..frames {
            simple_block(c, (i * 21) as i16, AAC_SILENCE);
        }
    });
}

/// EBML header + Segment(`f`).
fn mkv_file(f: impl FnOnce(&mut Ebml)) -> Vec<u8> {
    let mut w = Ebml::default();
    ebml_header(&mut w);
    w.el(id::SEGMENT, f);
    w.0
}

/// An AAC Matroska file with clusters at `cluster_ms` (each 48 frames, ~1 s).
fn mkv_aac_clusters(cluster_ms: &[u64]) -> Vec<u8> {
    mkv_file(|s| {
        mkv_info(s);
        s.el(id::TRACKS, mkv_aac_entry);
        for &t in cluster_ms {
            aac_cluster(s, t, 48);
        }
    })
}

/// `n` nested EBML masters `id` with 8-byte sizes (innermost empty), built iteratively.
fn nested_sized(idv: u32, n: usize) -> Vec<u8> {
    let idb = id_bytes(idv);
    let hdr = idb.len() + 8;
    let mut out = Vec::with_capacity(n * hdr);
    for i in 0..n {
        out.extend(&idb);
        out.extend(size8(((n - i - 1) * hdr) as u64));
    }
    out
}

/// `n` nested EBML masters `id` of unknown size (RFC 8794 §6.2: all VINT_DATA bits set).
fn nested_unknown(idv: u32, n: usize) -> Vec<u8> {
    let idb = id_bytes(idv);
    let mut out = Vec::with_capacity(n * (idb.len() + 1));
    for _ in 0..n {
        out.extend(&idb);
        out.push(0xFF);
    }
    out
}

/// Matroska with 100,000 clusters 6 s apart, one video keyframe each, and a CuePoint for
/// every one, Cues before the first Cluster (fixed-width fields, so positions are known).
fn mkv_100k_cues() -> Vec<u8> {
    const N: u64 = 100_000;
    let frame = {
        let mut f = 4u32.to_be_bytes().to_vec();
        f.extend([0x65, 0x88, 0x84, 0x00]);
        f
    };
    let mut head = Ebml::default();
    mkv_info(&mut head);
    head.el(id::TRACKS, mkv_avc_entry);
    let mut one_cluster = Ebml::default();
    one_cluster.el(id::CLUSTER, |c| {
        c.uint_w(id::TIMESTAMP, 0, 8);
        simple_block(c, 0, &frame);
    });
    let cluster_len = one_cluster.0.len() as u64;
    let cues_of = |first: u64| {
        let mut c = Ebml::default();
        c.el(id::CUES, |q| {
            for k in 0..N {
                q.el(id::CUE_POINT, |p| {
                    p.uint_w(id::CUE_TIME, k * 6000, 8)
                        .el(id::CUE_TRACK_POSITIONS, |t| {
                            t.uint(id::CUE_TRACK, 1).uint_w(
                                id::CUE_CLUSTER_POSITION,
                                first + k * cluster_len,
                                8,
                            );
                        });
                });
            }
        });
        c.0
    };
    let cues_len = cues_of(0).len() as u64;
    let first = head.0.len() as u64 + cues_len;
    mkv_file(|s| {
        s.0.extend_from_slice(&head.0);
        s.0.extend(cues_of(first));
        for k in 0..N {
            s.el(id::CLUSTER, |c| {
                c.uint_w(id::TIMESTAMP, k * 6000, 8);
                simple_block(c, 0, &frame);
            });
        }
    })
}

// ---------------------------------------------------------------------------------------------
// MPEG-TS (ISO/IEC 13818-1).

/// CRC-32/MPEG-2 of a PSI section (§2.4.4, Annex A).
pub fn crc32_mpeg(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}

const PMT_PID: u16 = 0x1000;
const AUDIO_PID: u16 = 0x101;

/// One 188-byte packet: header, adaptation-field stuffing so that `payload` ends the packet.
fn ts_packet(pid: u16, start: bool, cc: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() <= 184);
    let mut p = vec![
        0x47,
        (if start { 0x40 } else { 0 }) | (pid >> 8) as u8,
        pid as u8,
    ];
    let stuff = 184 - payload.len();
    if stuff == 0 {
        p.push(0x10 | (cc & 0xF));
    } else {
        p.push(0x30 | (cc & 0xF));
        p.push((stuff - 1) as u8);
        if stuff > 1 {
            p.push(0);
            p.extend(std::iter::repeat_n(0xFF, stuff - 2));
        }
    }
    p.extend_from_slice(payload);
    p
}

/// A PSI section with its CRC, behind a pointer field.
fn psi(table: u8, ext: u16, body: &[u8]) -> Vec<u8> {
    let len = 5 + body.len() + 4;
    let mut s = vec![table, 0xB0 | (len >> 8) as u8, len as u8];
    s.extend(ext.to_be_bytes());
    s.extend([0xC1, 0, 0]);
    s.extend_from_slice(body);
    let crc = crc32_mpeg(&s);
    s.extend(crc.to_be_bytes());
    let mut out = vec![0];
    out.extend(s);
    out
}

/// PTS field (§2.4.3.7), '0010' prefix.
fn pts_bytes(pts: u64) -> [u8; 5] {
    let p = pts & ((1 << 33) - 1);
    [
        0x21 | ((p >> 29) & 0x0E) as u8,
        (p >> 22) as u8,
        (((p >> 14) & 0xFE) | 1) as u8,
        (p >> 7) as u8,
        (((p << 1) & 0xFE) | 1) as u8,
    ]
}

/// PAT + PMT (one ADTS AAC stream, type 0x0F) + `n` PES packets, the k-th with PTS
/// `first + k·step` (mod 2^33), each one packet with one ADTS frame.
fn ts_aac(n: u64, first: u64, step: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let pat = psi(0x00, 1, &[0, 1, 0xE0 | (PMT_PID >> 8) as u8, PMT_PID as u8]);
    out.extend(ts_packet(0, true, 0, &pat));
    let pmt_body = [
        0xFF,
        0xFF, // PCR PID 0x1FFF: none
        0xF0,
        0x00,
        0x0F,
        0xE0 | (AUDIO_PID >> 8) as u8,
        AUDIO_PID as u8,
        0xF0,
        0x00,
    ];
    let pmt = psi(0x02, 1, &pmt_body);
    out.extend(ts_packet(PMT_PID, true, 0, &pmt));
    let frame = adts_silence();
    for k in 0..n {
        let pts = first.wrapping_add(k.wrapping_mul(step)) & ((1 << 33) - 1);
        let mut pes = vec![0, 0, 1, 0xC0];
        pes.extend(((3 + 5 + frame.len()) as u16).to_be_bytes());
        pes.extend([0x80, 0x80, 5]);
        pes.extend(pts_bytes(pts));
        pes.extend(&frame);
        out.extend(ts_packet(AUDIO_PID, true, k as u8, &pes));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The catalogue.

/// Every crafted file (the big ones too: the 12 MB sparse ones are holes on disk).
pub fn all() -> Vec<Crafted> {
    let mut v = Vec::new();
    let mut add = |name, class, kind, expect, body| {
        v.push(Crafted {
            name,
            class,
            kind,
            expect,
            body,
        })
    };
    use Expect::*;
    use Kind::*;

    // 0: sane controls, built by the same writers.
    add(
        "sane_aac.mp4",
        0,
        Mp4,
        Sane,
        Body::Bytes(mp4_file(
            &[aac_trak(94, RATE, 1024)],
            &[],
            &aac_mdat(94),
            Layout::MoovFirst,
        )),
    );
    add(
        "sane_aac_moov_end.mp4",
        0,
        Mp4,
        Sane,
        Body::Bytes(sane_moov_end()),
    );
    add(
        "sane_aac.mkv",
        0,
        Mkv,
        Sane,
        Body::Bytes(mkv_aac_clusters(&[0, 1008, 2016])),
    );
    add("sane_aac.ts", 0, Ts, Sane, Body::Bytes(ts_aac(94, 0, 1920)));

    // 1: deep nesting.
    let nest = |n: usize| {
        let mut w = Boxes::default();
        ftyp(&mut w);
        w.write_box(b"moov", |m| {
            m.bytes(&nested_boxes(b"trak", n, false));
        });
        w.0
    };
    let trak400 = nest(400);
    let trak5000 = nest(5000);
    add("nest_trak_400.mp4", 1, Mp4, Refused, Body::Bytes(trak400));
    add("nest_trak_5000.mp4", 1, Mp4, Refused, Body::Bytes(trak5000));
    let mut in_entry = avc_trak(50, 64, 12_800, 512, 25, SPS_420, PPS_420);
    if let Entry::Avc { extra, .. } = &mut in_entry.entry {
        *extra = nested_boxes(b"sinf", 5000, false);
    }
    // mp4-atom skips children of a sample entry it does not know (a warning), so a parser that
    // never descends there may accept this file: it must only stay bounded.
    add(
        "nest_stsd_avc1_5000.mp4",
        1,
        Mp4,
        MaySucceed,
        Body::Bytes(mp4_file(
            &[in_entry],
            &[],
            &avc_garbage_mdat(50, 64),
            Layout::MoovFirst,
        )),
    );
    let mut udta = Boxes::default();
    udta.write_box(b"udta", |u| {
        u.bytes(&nested_boxes(b"meta", 5000, true));
    });
    add(
        "nest_udta_meta_5000.mp4",
        1,
        Mp4,
        Refused,
        Body::Bytes(mp4_file(
            &[aac_trak(94, RATE, 1024)],
            &udta.0,
            &aac_mdat(94),
            Layout::MoovFirst,
        )),
    );
    add(
        "nest_tracks_sized_100k.mkv",
        1,
        Mkv,
        Refused,
        Body::Bytes(mkv_file(|s| {
            mkv_info(s);
            s.el(id::TRACKS, |t| {
                mkv_aac_entry(t);
                t.0.extend(nested_sized(id::TRACK_ENTRY, 100_000));
            });
            aac_cluster(s, 0, 48);
        })),
    );
    add(
        "nest_cluster_unknown_100k.mkv",
        1,
        Mkv,
        Refused,
        Body::Bytes({
            let mut w = Ebml::default();
            ebml_header(&mut w);
            // Segment of unknown size: it ends with the file.
            w.0.extend(id_bytes(id::SEGMENT));
            w.0.push(0xFF);
            mkv_info(&mut w);
            w.el(id::TRACKS, mkv_aac_entry);
            w.0.extend(id_bytes(id::CLUSTER));
            w.0.push(0xFF);
            w.uint(id::TIMESTAMP, 0);
            w.0.extend(nested_unknown(id::BLOCK_GROUP, 100_000));
            w.0
        }),
    );

    // 2: absurd durations.
    add(
        "dur_stts_ffffffff.mp4",
        2,
        Mp4,
        Refused,
        Body::Bytes(mp4_file(
            &[aac_trak(94, 1, 0xFFFF_FFFF)],
            &[],
            &aac_mdat(94),
            Layout::MoovFirst,
        )),
    );
    add(
        "dur_8_5e6s.mp4",
        2,
        Mp4,
        Refused,
        Body::Bytes(mp4_file(
            &[aac_trak(94, 1, 90_426)],
            &[],
            &aac_mdat(94),
            Layout::MoovFirst,
        )),
    );
    add(
        "dur_cluster_1e15.mkv",
        2,
        Mkv,
        Refused,
        Body::Bytes(mkv_aac_clusters(&[0, 1008, 1_000_000_000_000_000])),
    );
    add(
        "dur_pts_step_2e32.ts",
        2,
        Ts,
        Refused,
        Body::Bytes(ts_aac(94, 0, 0xFFFF_FFFF)),
    );

    // 3: sample-count bombs.
    add(
        "stsz_10m_32k.mp4",
        3,
        Mp4,
        Refused,
        Body::Bytes({
            let mut f = mp4_file(&[stsz_bomb_trak()], &[], &[0; 64], Layout::MoovFirst);
            let pad = 32 * 1024 - f.len() - 8;
            let mut w = Boxes(std::mem::take(&mut f));
            w.write_box(b"free", |b| {
                b.zeros(pad);
            });
            w.0
        }),
    );
    add(
        "stsz_10m_sparse_12m.mp4",
        3,
        Mp4,
        Refused,
        sparse_mp4(&[stsz_bomb_trak()], 12 << 20),
    );
    add(
        "stsz_10m_x128_sparse_12m.mp4",
        3,
        Mp4,
        Refused,
        sparse_mp4(&vec![stsz_bomb_trak(); 128], 12 << 20),
    );

    // 4: 100,000 keyframes 6 s apart.
    add(
        "keys_100k.mp4",
        4,
        Mp4,
        MaySucceed,
        Body::Bytes(mp4_file(
            &[avc_trak(100_000, 8, 1000, 6000, 1, SPS_420, PPS_420)],
            &[],
            &avc_garbage_mdat(100_000, 8),
            Layout::MoovFirst,
        )),
    );
    add(
        "keys_100k_cues.mkv",
        4,
        Mkv,
        MaySucceed,
        Body::Bytes(mkv_100k_cues()),
    );

    // 7: undecodable H.264 (valid structure, garbage slices): copied (4:2:0) and decoded for a
    // transcode (4:4:4).
    for (name, sps, pps) in [
        ("garbage_h264_420.mp4", SPS_420, PPS_420),
        ("garbage_h264_444.mp4", SPS_444, PPS_444),
    ] {
        add(
            name,
            7,
            Mp4,
            MaySucceed,
            Body::Bytes(mp4_file(
                &[avc_trak(250, 600, 12_800, 512, 25, sps, pps)],
                &[],
                &avc_garbage_mdat(250, 600),
                Layout::MoovFirst,
            )),
        );
    }
    v
}

/// The sane AAC file with its moov after the samples and 64 KiB of `free`: probing it needs a
/// second read past the 16 KiB head (the stalled-upstream test stalls that read).
pub fn sane_moov_end() -> Vec<u8> {
    mp4_file(
        &[aac_trak(94, RATE, 1024)],
        &[],
        &aac_mdat(94),
        Layout::MoovLast(64 * 1024),
    )
}

/// A sane AAC file of `n` frames with its moov at the end; with many frames the moov is large
/// (250,000 frames: a ~1 MB `stsz` table), so the probe reads it in one big range.
pub fn aac_moov_end(n: u32) -> Vec<u8> {
    mp4_file(
        &[aac_trak(n, RATE, 1024)],
        &[],
        &aac_mdat(n),
        Layout::MoovLast(0),
    )
}

/// One crafted file by name.
pub fn get(name: &str) -> Crafted {
    all()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no crafted file {name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_as_specified() {
        // ftyp (24) + moov header (8) + 400 trak headers (3,200) = 3,232 bytes.
        assert_eq!(get("nest_trak_400.mp4").len(), 3232);
        assert_eq!(get("stsz_10m_32k.mp4").len(), 32 * 1024);
        assert_eq!(get("stsz_10m_sparse_12m.mp4").len(), 12 << 20);
    }

    #[test]
    fn crc_matches_the_standard_check_value() {
        // CRC-32/MPEG-2 check value of "123456789".
        assert_eq!(crc32_mpeg(b"123456789"), 0x0376_E6E7);
    }

    #[test]
    fn deterministic() {
        let a: Vec<_> = all().into_iter().map(|c| format!("{:?}", c.body)).collect();
        let b: Vec<_> = all().into_iter().map(|c| format!("{:?}", c.body)).collect();
        assert_eq!(a, b);
    }

    #[test]
    fn sane_mp4_reads_back_with_mp4_atom() {
        use mp4_atom::{Any, DecodeMaybe};
        for name in ["sane_aac.mp4", "sane_aac_moov_end.mp4"] {
            let Body::Bytes(b) = get(name).body else {
                panic!("bytes")
            };
            let mut buf = &b[..];
            let mut seen = Vec::new();
            while let Some(atom) = Any::decode_maybe(&mut buf).expect("decodes") {
                if let Any::Moov(m) = &atom {
                    assert_eq!(m.trak.len(), 1);
                    let stbl = &m.trak[0].mdia.minf.stbl;
                    assert_eq!(stbl.stts.entries[0].sample_count, 94);
                }
                seen.push(atom.kind().to_string());
            }
            assert!(seen.contains(&"moov".to_string()), "{name}: {seen:?}");
        }
    }
}
