//! fMP4 (CMAF-style) writer: one init segment for a set of tracks, and media segments made of
//! sample runs. Pure "spec in, bytes out": no I/O, no async runtime, no FFmpeg. The same inputs
//! always give the same bytes (creation and modification times are 0).
//!
//! Boxes are encoded with [`mp4_atom`]'s `Encode` where it writes exactly what we want; the
//! containers, the sample entries (whose `avcC`/`hvcC` payloads are copied byte for byte) and
//! `trun` (whose layout we pin, see [`segment`]) go through one helper, [`boxes::write_box`], that
//! backpatches the size.
//!
//! # Init segment ([`init_segment`])
//!
//! ```text
//! ftyp                      major iso6; iso6 [cmfc] mp41 iso5 dash        14496-12 §4.3
//! moov                                                                   §8.2.1
//!   mvhd                    timescale 1000, duration 0, next_track_ID    §8.2.2
//!   trak (per track)                                                     §8.3.1
//!     tkhd                  flags 3, duration 0, size 16.16, matrix      §8.3.2
//!     edts/elst             when presentation_offset > 0: one edit,     §8.6.5, §8.6.6
//!                           duration 0, media_time = offset, rate 1
//!     mdia                                                               §8.4.1
//!       mdhd                timescale, language                          §8.4.2
//!       hdlr                vide / soun                                  §8.4.3
//!       minf                                                             §8.4.4
//!         vmhd | smhd                                                    §12.1.2 / §12.2.2
//!         dinf/dref/url     self-contained                               §8.7.1-2
//!         stbl                                                           §8.5.1
//!           stsd                                                         §8.5.2
//!             avc1+avcC | hvc1+hvcC  [+btrt]                             14496-15 §5.4 / §8.4
//!             mp4a+esds [+btrt]                                          14496-14 §5.6, 14496-1 §7.2.6
//!           stts stsc stsz stco  (empty: samples live in fragments)      §8.6.1.2, §8.7.3-5
//!   mvex                                                                 §8.8.1
//!     trex (per track)      default_sample_description_index 1          §8.8.3
//! ```
//!
//! # Media segment ([`media_segment`])
//!
//! ```text
//! styp                      major msdh; msdh iso6 [cmfc] mp41 iso5 dash   14496-12 §8.16.2
//! moof                                                                   §8.8.4
//!   mfhd                    sequence_number                              §8.8.5
//!   traf (per run, in order)                                             §8.8.6
//!     tfhd                  track_ID, default-base-is-moof (0x020000)    §8.8.7
//!     tfdt                  version 1, base_media_decode_time            §8.8.12
//!     trun                  version 1: data offset, per-sample duration, size, flags,
//!                           signed composition offset (when any is non-zero)  §8.8.8
//! mdat                      every run's sample bytes, one run after the other   §8.1.1
//! ```
//!
//! **Brands.** `iso6` is the ISOBMFF brand that covers what the fragments use (tfdt, trun
//! version 1 with negative composition offsets, default-base-is-moof); CMAF (ISO/IEC 23000-19)
//! expects it. `cmfc` (CMAF track) is claimed only when the init segment holds exactly one track,
//! since a CMAF header describes a single track; `iso5`, `mp41` and `dash` keep older readers
//! (and DASH tooling) happy. The segment's major brand is `msdh`, the generic media-segment brand
//! of ISO/IEC 23009-1 §6.3.4.2, rather than `cmfs`: a combined audio+video segment (two `traf`s)
//! is not a CMAF segment, and `msdh` holds for both shapes.
//!
//! **Timing.** A track whose frames are reordered (B-frames, open-GOP leading pictures) has one
//! edit, `elst` media_time = [`TrackSpec::presentation_offset`] `E`: its composition offsets are
//! written `E` ahead, so none is negative (FFmpeg's demuxer shifts a track by its most negative
//! offset, growing as fragments are read), and the edit takes `E` off again, so a frame whose
//! offset is `E` presents at its decode time: the first frame of a segment at `tfdt`. A track
//! without reordering (audio) has no edit: presentation starts at its `tfdt`.
//!
//! **Sample flags** (§8.8.3.1): a keyframe is `sample_depends_on = 2`, `is_non_sync_sample = 0`
//! (`0x0200_0000`); any other sample `sample_depends_on = 1`, `is_non_sync_sample = 1`
//! (`0x0101_0000`). Audio samples should all be given as keyframes.

pub mod boxes;
mod error;
mod init;
pub mod segment;

pub use error::Fmp4Error;
pub use init::init_segment;
pub use segment::{media_segment, media_segment_for};

/// Named caps on what the writer accepts (everything above is an error, never a panic).
pub mod limits {
    /// Most tracks in one init segment.
    pub const MAX_TRACKS: usize = 16;
    /// Most runs (`traf`s) in one media segment.
    pub const MAX_RUNS: usize = 16;
    /// Most samples in one run (a `trun` of 16 bytes per sample stays well under 16 MiB).
    pub const MAX_SAMPLES_PER_RUN: usize = 1 << 20;
    /// Largest codec configuration record (`avcC`/`hvcC` payload, AudioSpecificConfig).
    pub const MAX_CONFIG_BYTES: usize = 64 * 1024;
    /// Largest video width or height in pixels (the rotation matrix's translation, in 16.16,
    /// must fit an `i32`).
    pub const MAX_DIMENSION: u32 = 32_767;
}

/// The file-type brands of the init segment (`ftyp`), see the crate docs for why.
pub fn brands(track_count: usize) -> Vec<[u8; 4]> {
    let mut brands = vec![*b"iso6"];
    if track_count == 1 {
        brands.push(*b"cmfc");
    }
    brands.extend([*b"mp41", *b"iso5", *b"dash"]);
    brands
}

/// Sample flags of a keyframe (§8.8.3.1): `sample_depends_on = 2` (depends on no other sample).
pub const SYNC_SAMPLE_FLAGS: u32 = 0x0200_0000;
/// Sample flags of any other sample: `sample_depends_on = 1`, `sample_is_non_sync_sample = 1`.
pub const NON_SYNC_SAMPLE_FLAGS: u32 = 0x0101_0000;

/// What a track's sample entry describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SampleEntry {
    /// `avc1` + `avcC` (the AVCDecoderConfigurationRecord bytes as given).
    Avc {
        /// AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3.1), without a box header.
        config: Vec<u8>,
    },
    /// `hvc1` (never hev1) + `hvcC` (HEVCDecoderConfigurationRecord bytes as given).
    Hevc {
        /// HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 §8.3.3.1), without a box header.
        config: Vec<u8>,
    },
    /// `mp4a` + `esds` carrying the AudioSpecificConfig `asc` as DecoderSpecificInfo (object type 0x40).
    Aac {
        /// AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1).
        asc: Vec<u8>,
    },
    /// `mp4a` + `esds` with objectTypeIndication 0x6B (ISO/IEC 11172-3: MP3 and MP2) and no
    /// DecoderSpecificInfo: the frames' own headers configure the decoder.
    MpegAudio,
    /// Audio copied in its own codec: the AudioSampleEntry `kind` holding one configuration box
    /// `config_kind` whose body is `config`, byte for byte: `ac-3`/`dac3` and `ec-3`/`dec3`
    /// (ETSI TS 102 366 Annex F), `fLaC`/`dfLa` (the FLAC-in-ISOBMFF mapping: a full box of
    /// FLAC metadata blocks), `Opus`/`dOps` (the Opus-in-ISOBMFF mapping).
    Copied {
        /// Sample entry type.
        kind: [u8; 4],
        /// Configuration box type.
        config_kind: [u8; 4],
        /// Configuration box body.
        config: Vec<u8>,
    },
}

impl SampleEntry {
    /// Whether this is a video entry (`vide` handler) rather than audio (`soun`).
    pub fn is_video(&self) -> bool {
        matches!(self, Self::Avc { .. } | Self::Hevc { .. })
    }
}

/// One track of an init segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackSpec {
    /// track_ID (1-based, unique in the init segment).
    pub id: u32,
    /// mdhd timescale (= units of tfdt and sample durations).
    pub timescale: u32,
    /// The sample entry (codec and its configuration).
    pub entry: SampleEntry,
    /// Video: coded width in pixels (0 for audio).
    pub width: u32,
    /// Video: coded height in pixels (0 for audio).
    pub height: u32,
    /// 0/90/180/270 clockwise display rotation -> tkhd matrix (video).
    pub rotation: u16,
    /// Audio: sample rate in Hz (0 for video). The `mp4a` field is 16.16, so rates above 65535
    /// are written as 0 and the AudioSpecificConfig is authoritative.
    pub sample_rate: u32,
    /// Audio: channel count (0 for video).
    pub channels: u16,
    /// ISO 639-2/T three lowercase letters for mdhd; `None` -> "und".
    pub language: Option<String>,
    /// Average bitrate in bit/s for esds DecoderConfigDescriptor / btrt; 0 if unknown.
    pub avg_bitrate: u32,
    /// Maximum bitrate in bit/s for esds DecoderConfigDescriptor / btrt; 0 if unknown.
    pub max_bitrate: u32,
    /// Where presentation starts on the composition timeline, in the track timescale: one
    /// edit (`edts/elst`, media_time = this, rate 1) when non-zero, none when 0. The media
    /// segments' composition offsets are this much ahead (see the crate docs, *Timing*).
    pub presentation_offset: u32,
}

/// One sample (access unit) of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample<'a> {
    /// The sample's bytes (length-prefixed NAL units for video, a raw AAC frame for audio).
    pub data: &'a [u8],
    /// Duration in the track timescale.
    pub duration: u32,
    /// pts - dts in the track timescale, may be negative.
    pub composition_offset: i32,
    /// A sync sample (IDR / audio frame).
    pub keyframe: bool,
}

/// The samples of one track in one media segment, contiguous in decode order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run<'a> {
    /// The track these samples belong to.
    pub track_id: u32,
    /// Decode time of the first sample, in the track timescale (tfdt).
    pub base_decode_time: u64,
    /// The samples in decode order.
    pub samples: Vec<Sample<'a>>,
}
