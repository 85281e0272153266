//! # demux — the frames stored in one byte range of a source
//!
//! The probe ([`probe::MediaIndex`]) says where every segment's media is; the planner gives each
//! segment one byte range of the file. The pipeline fetches that range and hands it here:
//! [`Demuxer::frames`] returns every frame stored wholly inside it, per track, in storage
//! (decode) order. Pure Rust, no I/O, no FFmpeg; the container parsers are the probe's own
//! (`probe::mp4::sample_table`, `probe::mp4::traf_samples`, `probe::mkv::blocks`,
//! `probe::ts::{packet, pes}`), so the demuxer and the index always agree.
//!
//! ## Timestamps
//!
//! [`Frame::pts`] is in the track's own timescale ([`probe::Track::timescale`]), on the same
//! timeline as the index:
//! - **MP4 / fragmented MP4** (ISO/IEC 14496-12): pts = dts + ctts − the edit-list shift
//!   (`probe::mp4::edit_list`, applied as the probe applies it); `dts` and `duration` from `stts`
//!   (or the `trun`/`tfhd`/`trex` values), dts shifted the same way.
//! - **Matroska / WebM** (RFC 9559): Cluster Timestamp + the block's relative timestamp, in
//!   Segment Ticks (the track timescale is `1e9 / TimestampScale`). Laced frames get the block's
//!   time plus `i` frame durations: 1024 samples at the track's rate for AAC, else the track's
//!   `DefaultDuration`. No dts. `duration` is BlockDuration, else DefaultDuration.
//! - **MPEG-TS** (ISO/IEC 13818-1): 90 kHz PES PTS/DTS, unwrapped from 33 bits against the time
//!   the index gives the range's first bytes (the span that holds them), then against the
//!   stream's previous timestamp, as the probe does. A PES with several audio frames gives
//!   frame `i` the time `pts + round(i × samples × 90000 / rate)`.
//!
//! ## Frame data
//!
//! - **H.264 / HEVC**: NAL units with 4-byte big-endian lengths (the `avc1`/`hvc1` sample
//!   format, ISO/IEC 14496-15). MPEG-TS Annex B byte streams are converted; a source
//!   `lengthSizeMinusOne` other than 3 is rewritten to 4-byte lengths. Access unit delimiters,
//!   filler data and in-band parameter sets (H.264 SPS/PPS, HEVC VPS/SPS/PPS) are dropped: the
//!   output carries parameter sets only in its sample entry (`codec_private` of the track:
//!   avcC / hvcC, which the probe builds from the in-band sets for MPEG-TS).
//! - **AAC**: raw access units. MPEG-TS ADTS frames are split and their headers stripped
//!   (`codec_private` holds the AudioSpecificConfig).
//! - **AC-3 / E-AC-3 in MPEG-TS**: one frame per sync frame.
//! - **Subtitles** (Matroska S_TEXT/UTF8, S_TEXT/ASS, S_TEXT/WEBVTT; MP4 `tx3g`): as stored.
//! - Everything else (Opus, VP9, AC-3 in MP4/Matroska, …): as stored.
//!
//! ## Edges
//!
//! A frame that starts before the range or ends after it is dropped, never cut. The planner's
//! ranges start at an MP4 chunk, a `moof`, a Matroska Cluster or a TS packet that starts a PES;
//! a Matroska range that starts inside a cluster (the planner widens ranges by the index's
//! interleave margin, at an interpolated byte) is resynchronised to the next Cluster. In
//! MPEG-TS a PES without `PES_packet_length` has no end marker: the open PES of a stream at the
//! end of the range is kept when its packets are the last of the range (the planner's ranges
//! end at the end of a PES), when the range ends at the end of the file, and otherwise dropped.
//!
//! Hostile bytes never panic: every read is bounds-checked and failures are a [`DemuxError`].
//!
//! [`progressive`] lays out a progressive MP4 of chosen tracks of an MP4 file from its sample
//! tables (the server's `download.mp4`).

mod error;
mod mkv;
mod mp4;
mod nal;
pub mod progressive;
mod ts;

use std::collections::BTreeMap;

use probe::time::rescale;
use probe::{Codec, Container, MediaIndex};

pub use error::DemuxError;
pub use mkv::unlace;
pub use nal::NalFormat;
pub use ts::{split_ac3, split_adts};

/// One coded frame (an access unit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Presentation time in the track's timescale ([`probe::Track::timescale`]), on the
    /// index's timeline (see the crate docs per container).
    pub pts: i64,
    /// Decode time, when the container stores it (MP4 `stts`, MPEG-TS PES DTS, which is the PTS
    /// when the PES has none); `None` for Matroska.
    pub dts: Option<i64>,
    /// Duration in track ticks, when stored (MP4 `stts`/`trun`; Matroska BlockDuration or
    /// DefaultDuration).
    pub duration: Option<u32>,
    /// A random access point: MP4 sync sample (`stss`; all when absent, `trun` flags), Matroska
    /// SimpleBlock keyframe flag or a BlockGroup without ReferenceBlock, MPEG-TS
    /// `random_access_indicator` or an IDR/IRAP NAL unit. Audio frames are all keyframes in
    /// MPEG-TS.
    pub keyframe: bool,
    /// The frame's bytes (see the crate docs for the format per codec).
    pub data: Vec<u8>,
}

/// The frames of a byte range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Demuxed {
    /// Frames per track ([`probe::Track::id`]), in decode (storage) order. Tracks without a
    /// frame in the range are absent.
    pub tracks: BTreeMap<u64, Vec<Frame>>,
}

/// What the demuxer keeps of a track.
#[derive(Debug, Clone)]
pub(crate) struct TrackInfo {
    pub id: u64,
    pub codec: Codec,
    pub timescale: u32,
    /// Audio sample rate (0 when unknown).
    pub sample_rate: u32,
    /// How H.264/HEVC frames are framed in the source, and rewritten.
    pub nal: Option<NalFormat>,
    /// Matroska DefaultDuration, nanoseconds.
    pub default_duration_ns: Option<u64>,
    /// Matroska CodecDelay in track ticks, subtracted from block times.
    pub delay: i64,
}

impl TrackInfo {
    fn of(t: &probe::Track, container: Container) -> TrackInfo {
        let annexb = container == Container::MpegTs;
        TrackInfo {
            id: t.id,
            codec: t.codec.clone(),
            timescale: t.timescale,
            sample_rate: t.audio.as_ref().map_or(0, |a| a.sample_rate),
            nal: NalFormat::of(&t.codec, &t.codec_private, annexb),
            default_duration_ns: t.default_duration_ns,
            delay: t
                .codec_delay_ns
                .and_then(|ns| i64::try_from(ns).ok())
                .map_or(0, |ns| rescale(ns, i64::from(t.timescale), 1_000_000_000)),
        }
    }

    /// The frame's bytes in the output format (see [`NalFormat::rewrite`]).
    pub(crate) fn convert(&self, data: &[u8], at: u64) -> Result<Vec<u8>, DemuxError> {
        match self.nal {
            Some(f) => f.rewrite(data, at),
            None => Ok(data.to_vec()),
        }
    }
}

#[derive(Debug)]
enum Inner {
    Mp4(mp4::Mp4),
    Mkv(mkv::Mkv),
    Ts(ts::Ts),
}

/// The demuxer of one source: built once from its index (and, for MP4, its `moov`), then
/// asked for the frames of any number of byte ranges. `Send + Sync`; holds no I/O.
#[derive(Debug)]
pub struct Demuxer {
    inner: Inner,
}

impl Demuxer {
    /// A demuxer for the source `index` describes. `moov`: the bytes of [`MediaIndex::moov`]
    /// (the `moov` box, header included) for MP4 and fragmented MP4 sources; `None` otherwise.
    pub fn new(index: &MediaIndex, moov: Option<&[u8]>) -> Result<Self, DemuxError> {
        let inner = match index.container {
            Container::Mp4 | Container::FragmentedMp4 => {
                let moov = moov.ok_or(DemuxError::MissingMoov)?;
                Inner::Mp4(mp4::Mp4::new(index, moov)?)
            }
            Container::Matroska | Container::WebM => Inner::Mkv(mkv::Mkv::new(index)),
            Container::MpegTs => Inner::Ts(ts::Ts::new(index)),
            Container::Universal => return Err(DemuxError::Universal),
        };
        Ok(Demuxer { inner })
    }

    /// Heap bytes the demuxer holds (per-sample tables of MP4 sources, span tables of TS),
    /// for weighing a memo by what it really costs.
    pub fn heap_bytes(&self) -> usize {
        match &self.inner {
            Inner::Mp4(m) => m.heap_bytes(),
            Inner::Mkv(_) => 0,
            Inner::Ts(t) => t.heap_bytes(),
        }
    }

    /// Frames of every track stored wholly inside `bytes`, which are the file's bytes from
    /// offset `offset`. Per track (keyed by [`probe::Track::id`]), in decode (storage) order.
    pub fn frames(&self, bytes: &[u8], offset: u64) -> Result<Demuxed, DemuxError> {
        offset
            .checked_add(bytes.len() as u64)
            .ok_or(DemuxError::Range { offset })?;
        let mut out = Demuxed::default();
        match &self.inner {
            Inner::Mp4(m) => m.frames(bytes, offset, &mut out)?,
            Inner::Mkv(m) => m.frames(bytes, offset, &mut out)?,
            Inner::Ts(t) => t.frames(bytes, offset, &mut out)?,
        }
        out.tracks.retain(|_, v| !v.is_empty());
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn demuxer_is_send_and_sync() {
        assert_send_sync::<Demuxer>();
    }
}
