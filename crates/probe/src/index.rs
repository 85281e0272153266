//! [`MediaIndex`]: what is inside a file and where every keyframe is. The output of the probe and
//! the input of the planner; serialisable so it can be cached.

use serde::{Deserialize, Serialize};

/// The container a file was recognised as (by magic bytes, never by name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Container {
    /// ISO BMFF / QuickTime with sample tables in `moov`.
    Mp4,
    /// ISO BMFF whose samples are in `moof` fragments.
    FragmentedMp4,
    /// Matroska (`DocType` "matroska").
    Matroska,
    /// WebM (`DocType` "webm").
    WebM,
    /// MPEG-2 transport stream (188-byte packets).
    MpegTs,
    /// Any other container FFmpeg's libavformat reads (FLAC, MP3, Ogg, WAV, AVI, FLV, ASF…),
    /// indexed by a packet scan ([`MediaIndex::format`] names it).
    Universal,
}

impl Container {
    /// Short lowercase name, as used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Container::Mp4 => "mp4",
            Container::FragmentedMp4 => "fmp4",
            Container::Matroska => "matroska",
            Container::WebM => "webm",
            Container::MpegTs => "mpeg-ts",
            Container::Universal => "universal",
        }
    }
}

/// What a track carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrackKind {
    /// Pictures.
    Video,
    /// Sound.
    Audio,
    /// Text or bitmap subtitles.
    Subtitle,
    /// Anything else (timecode, data, chapters-as-track…).
    Other,
}

/// A codec, normalised across containers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Codec {
    /// H.264 / AVC.
    H264,
    /// H.265 / HEVC.
    Hevc,
    /// AV1.
    Av1,
    /// VP8.
    Vp8,
    /// VP9.
    Vp9,
    /// MPEG-1/2 video.
    Mpeg2Video,
    /// MPEG-4 Part 2 (DivX/Xvid).
    Mpeg4Part2,
    /// AAC (any object type; see [`AudioInfo::aac_object_type`]).
    Aac,
    /// AC-3.
    Ac3,
    /// E-AC-3.
    Eac3,
    /// DTS.
    Dts,
    /// Dolby TrueHD.
    TrueHd,
    /// MPEG-1/2 Layer 3.
    Mp3,
    /// MPEG-1/2 Layer 1/2.
    Mp2,
    /// Opus.
    Opus,
    /// Vorbis.
    Vorbis,
    /// FLAC.
    Flac,
    /// PCM of some layout.
    Pcm,
    /// SubRip text.
    Srt,
    /// ASS/SSA.
    Ass,
    /// WebVTT.
    WebVtt,
    /// MPEG-4 timed text (tx3g / mov_text).
    MovText,
    /// Blu-ray PGS bitmaps.
    Pgs,
    /// DVD VobSub bitmaps.
    DvdSub,
    /// DVB subtitles.
    DvbSub,
    /// Not one we know; the container's own identifier.
    Other(String),
}

impl Codec {
    /// Short name as ffprobe would print it (`h264`, `hevc`, `aac`, …).
    pub fn name(&self) -> &str {
        match self {
            Codec::H264 => "h264",
            Codec::Hevc => "hevc",
            Codec::Av1 => "av1",
            Codec::Vp8 => "vp8",
            Codec::Vp9 => "vp9",
            Codec::Mpeg2Video => "mpeg2video",
            Codec::Mpeg4Part2 => "mpeg4",
            Codec::Aac => "aac",
            Codec::Ac3 => "ac3",
            Codec::Eac3 => "eac3",
            Codec::Dts => "dts",
            Codec::TrueHd => "truehd",
            Codec::Mp3 => "mp3",
            Codec::Mp2 => "mp2",
            Codec::Opus => "opus",
            Codec::Vorbis => "vorbis",
            Codec::Flac => "flac",
            Codec::Pcm => "pcm",
            Codec::Srt => "subrip",
            Codec::Ass => "ass",
            Codec::WebVtt => "webvtt",
            Codec::MovText => "mov_text",
            Codec::Pgs => "hdmv_pgs_subtitle",
            Codec::DvdSub => "dvd_subtitle",
            Codec::DvbSub => "dvb_subtitle",
            Codec::Other(s) => s,
        }
    }

    /// The track kind this codec implies.
    pub fn kind(&self) -> TrackKind {
        match self {
            Codec::H264
            | Codec::Hevc
            | Codec::Av1
            | Codec::Vp8
            | Codec::Vp9
            | Codec::Mpeg2Video
            | Codec::Mpeg4Part2 => TrackKind::Video,
            Codec::Aac
            | Codec::Ac3
            | Codec::Eac3
            | Codec::Dts
            | Codec::TrueHd
            | Codec::Mp3
            | Codec::Mp2
            | Codec::Opus
            | Codec::Vorbis
            | Codec::Flac
            | Codec::Pcm => TrackKind::Audio,
            Codec::Srt
            | Codec::Ass
            | Codec::WebVtt
            | Codec::MovText
            | Codec::Pgs
            | Codec::DvdSub
            | Codec::DvbSub => TrackKind::Subtitle,
            Codec::Other(_) => TrackKind::Other,
        }
    }
}

/// A frame rate as an exact fraction (`num / den` frames per second).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rational {
    /// Numerator.
    pub num: u32,
    /// Denominator (never 0).
    pub den: u32,
}

impl Rational {
    /// `num / den` in lowest terms; `None` when `den` is 0 or a reduced term exceeds `u32`.
    pub fn reduced(num: u64, den: u64) -> Option<Rational> {
        if den == 0 {
            return None;
        }
        let g = crate::time::gcd(num, den);
        Some(Rational {
            num: u32::try_from(num / g).ok()?,
            den: u32::try_from(den / g).ok()?,
        })
    }

    /// The nominal rate this one stands for: itself when it is already a plain fraction
    /// (denominator 1, 2 or 1001 and the like, as an H.264 VUI or an MP4 states it), else the
    /// nearest `n/1`, `n/2` or `n·1000/1001` within 1/10000 — Matroska's `DefaultDuration` is
    /// whole nanoseconds, so 29.97 fps arrives as `10^9/33366666`, which is `30000/1001`.
    /// `None` for a rate that is none of these (0, or an odd fraction far from any).
    pub fn nominal(self) -> Option<Rational> {
        if self.num == 0 || self.den == 0 {
            return None;
        }
        let r = Rational::reduced(u64::from(self.num), u64::from(self.den))?;
        if r.den <= 1001 {
            return Some(r);
        }
        let f = r.as_f64();
        for den in [1u32, 2, 1001] {
            let num = (f * f64::from(den)).round();
            if num < 1.0 || num > f64::from(u32::MAX) {
                continue;
            }
            let candidate = num / f64::from(den);
            if ((candidate - f) / f).abs() < 1e-4
                && (den != 1001 || (num as u64).is_multiple_of(1000))
            {
                return Rational::reduced(num as u64, u64::from(den));
            }
        }
        None
    }

    /// As a float.
    pub fn as_f64(self) -> f64 {
        if self.den == 0 {
            0.0
        } else {
            f64::from(self.num) / f64::from(self.den)
        }
    }
}

/// Video-specific facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct VideoInfo {
    /// Coded width in pixels (after cropping), as the decoder outputs it.
    pub width: u32,
    /// Coded height in pixels (after cropping).
    pub height: u32,
    /// Nominal frame rate, when the container or stream says.
    pub frame_rate: Option<Rational>,
    /// Clockwise display rotation in degrees (0, 90, 180, 270) from the container.
    pub rotation: u16,
    /// Codec profile (H.264 `profile_idc`, HEVC `general_profile_idc`, VP9/AV1 profile).
    pub profile: Option<u8>,
    /// H.264 `constraint_set` flags byte (the middle byte of `avc1.PPCCLL`).
    pub constraints: Option<u8>,
    /// Codec level (H.264 `level_idc`, HEVC `general_level_idc`).
    pub level: Option<u8>,
    /// HEVC tier flag (false = Main tier).
    pub tier_high: Option<bool>,
    /// HEVC `general_profile_compatibility_flags` (for the `hvc1` codec string).
    pub compat_flags: Option<u32>,
    /// HEVC general constraint indicator bytes (6 bytes, for the codec string).
    pub constraint_bytes: Option<[u8; 6]>,
    /// Luma bit depth (8, 10, 12).
    pub bit_depth: Option<u8>,
    /// `chroma_format_idc`: 0 = mono, 1 = 4:2:0, 2 = 4:2:2, 3 = 4:4:4.
    pub chroma_format: Option<u8>,
    /// Interlaced (field-coded) content, when known.
    pub interlaced: Option<bool>,
    /// The most frames seen presented before a keyframe yet decoded after it (an open GOP's
    /// leading pictures), at the keyframes whose frames the probe read (Matroska: the first
    /// and the last cued cluster). `None` when none was looked at; `Some(0)`: closed GOPs.
    #[serde(default)]
    pub leading_frames: Option<u32>,
    /// Transfer characteristics (ISO/IEC 23091-2 / H.273 code: 1 BT.709, 16 PQ, 18 HLG) from
    /// the container's colour description (MP4 `colr`, Matroska `Colour`) or else the stream's
    /// VUI; `None` when neither says.
    #[serde(default)]
    pub transfer: Option<u8>,
}

impl VideoInfo {
    /// The HDR transfer, if any: `"PQ"` (SMPTE ST 2084, HDR10) or `"HLG"` (ARIB STD-B67), as
    /// HLS `VIDEO-RANGE` names them.
    pub fn hdr(&self) -> Option<&'static str> {
        match self.transfer {
            Some(16) => Some("PQ"),
            Some(18) => Some("HLG"),
            _ => None,
        }
    }
}

/// Audio-specific facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AudioInfo {
    /// Output sample rate in Hz (for HE-AAC, the core rate the ASC states).
    pub sample_rate: u32,
    /// Channel count.
    pub channels: u16,
    /// AAC audio object type (2 = LC, 5 = SBR/HE, 29 = PS), from the ASC.
    pub aac_object_type: Option<u8>,
    /// Bits per sample, for PCM and lossless codecs.
    pub bits_per_sample: Option<u16>,
    /// Bytes per coded block, where the decoder needs it (WMA, ADPCM, PCM in AVI/WAV).
    #[serde(default)]
    pub block_align: Option<u32>,
    /// Coded bit rate, where the decoder needs it (WMA).
    #[serde(default)]
    pub bit_rate: Option<u64>,
}

/// One track of the source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Track {
    /// The container's id for it: MP4 `track_ID`, Matroska `TrackNumber`, MPEG-TS PID.
    pub id: u64,
    /// What it carries.
    pub kind: TrackKind,
    /// The codec.
    pub codec: Codec,
    /// Ticks per second of this track's timestamps.
    pub timescale: u32,
    /// Duration in this track's ticks, when known.
    pub duration: Option<u64>,
    /// ISO 639-2 (or BCP 47) language, when tagged (`und` is reported as `None`).
    pub language: Option<String>,
    /// Human title ("Director's commentary").
    pub title: Option<String>,
    /// The container's default flag.
    pub default: bool,
    /// The container's forced flag (subtitles).
    pub forced: bool,
    /// Codec configuration as the container stores it: avcC / hvcC record, AAC
    /// AudioSpecificConfig, Matroska CodecPrivate. Empty when there is none.
    #[serde(with = "hex_bytes", default)]
    pub codec_private: Vec<u8>,
    /// Video facts, for video tracks.
    pub video: Option<VideoInfo>,
    /// Audio facts, for audio tracks.
    pub audio: Option<AudioInfo>,
    /// Presentation time of the track's first frame (the smallest presentation time of its
    /// frames), in this track's ticks, on the index's timeline: MP4 edit list applied (AAC
    /// priming frames included, so it can be negative), Matroska block time, MPEG-TS unwrapped
    /// PTS. The AAC frame grid of an audio track is `start + k × 1024` samples. `None` when the
    /// probe did not see the track's first frame (a Matroska track whose first block lies
    /// beyond the bytes read).
    #[serde(default)]
    pub start: Option<i64>,
    /// Matroska `DefaultDuration` in nanoseconds (the duration of one frame, or of one laced
    /// frame), when the file states it. `None` for other containers.
    #[serde(default)]
    pub default_duration_ns: Option<u64>,
    /// Matroska `CodecDelay` in nanoseconds (Opus pre-skip): RFC 9559 says it is subtracted
    /// from every block timestamp of the track to get the time it plays at, as FFmpeg does.
    /// [`Track::start`] and the demuxer's times already have it subtracted. `None` elsewhere.
    #[serde(default)]
    pub codec_delay_ns: Option<u64>,
}

/// A keyframe of the main video track.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Keyframe {
    /// Presentation time in the index timescale ([`MediaIndex::timescale`]), edit lists applied.
    pub pts: i64,
    /// Byte offset of what holds it: the MP4 sample, the Matroska cluster, the TS packet that
    /// starts its PES.
    pub offset: u64,
}

/// A stretch of the file: media whose presentation times lie in `[time, end_time)` (index
/// timescale) is stored in bytes `[start, end)`. Spans are sorted by `time` and may overlap in
/// time (one per track and chunk in MP4); the planner unions the spans that overlap a segment
/// to know which bytes the segment needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// Earliest presentation time of the media in the span.
    pub time: i64,
    /// End of the latest presented sample in the span (exclusive).
    pub end_time: i64,
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

/// Everything the planner needs to know about a source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaIndex {
    /// The container.
    pub container: Container,
    /// Size of the file in bytes.
    pub file_size: u64,
    /// Ticks per second of [`MediaIndex::duration`], keyframe and span times: the main video
    /// track's timescale (or the first audio track's when there is no video).
    pub timescale: u32,
    /// Presentation start of the main track, in `timescale` ticks (often 0; TS starts anywhere).
    pub start: i64,
    /// Presentation duration of the main track in `timescale` ticks.
    pub duration: u64,
    /// All tracks, in container order.
    pub tracks: Vec<Track>,
    /// Position in `tracks` of the track keyframes and timescale refer to.
    pub main_track: Option<usize>,
    /// Keyframes of the main video track, in presentation order. For audio-only files: empty.
    pub keyframes: Vec<Keyframe>,
    /// Where the media of each time range is stored, for the segment byte ranges.
    pub spans: Vec<Span>,
    /// How far (in `timescale` ticks) a packet may be stored outside the time range of the span
    /// that holds it. 0 when spans are exact (MP4 chunks, the TS scan); for Matroska, whose
    /// clusters are known only by their first timestamp, muxers store blocks a little before or
    /// after (ffmpeg: audio ~90 ms late). The planner widens a segment's byte range by this much.
    #[serde(default)]
    pub interleave: u64,
    /// Where the `moov` box is (header included), for MP4 and fragmented MP4: a demuxer needs
    /// its sample tables (or, for fragments, the `trex` defaults and edit lists). `None` for
    /// other containers.
    #[serde(default)]
    pub moov: Option<crate::ByteRange>,
    /// libavformat's name of the container, for [`Container::Universal`] sources (`flac`,
    /// `mp3`, `ogg`, `avi`…); `None` for the containers parsed natively.
    #[serde(default)]
    pub format: Option<String>,
}

impl MediaIndex {
    /// Duration in seconds.
    pub fn duration_secs(&self) -> f64 {
        self.duration as f64 / f64::from(self.timescale.max(1))
    }

    /// Converts ticks of the index timescale to seconds.
    pub fn secs(&self, ticks: i64) -> f64 {
        ticks as f64 / f64::from(self.timescale.max(1))
    }

    /// The main track, if any.
    pub fn main(&self) -> Option<&Track> {
        self.main_track.and_then(|i| self.tracks.get(i))
    }

    /// An honest estimate of the heap this index holds, in bytes: every vector's capacity times
    /// its element size, and the strings and codec private bytes of each track (the server
    /// weighs its in-memory memo by it). The struct itself is not counted.
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let tracks: usize = self
            .tracks
            .iter()
            .map(|t| {
                let codec = match &t.codec {
                    Codec::Other(s) => s.capacity(),
                    _ => 0,
                };
                codec
                    + t.codec_private.capacity()
                    + t.language.as_ref().map_or(0, String::capacity)
                    + t.title.as_ref().map_or(0, String::capacity)
            })
            .sum();
        self.tracks.capacity() * size_of::<Track>()
            + tracks
            + self.keyframes.capacity() * size_of::<Keyframe>()
            + self.spans.capacity() * size_of::<Span>()
    }
}

/// Serialises bytes as a lowercase hex string (compact and readable in JSON).
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        let mut out = String::with_capacity(bytes.len() * 2);
        for b in bytes {
            out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        s.serialize_str(&out)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        let digit = |c: u8| -> Result<u8, D::Error> {
            match c {
                b'0'..=b'9' => Ok(c - b'0'),
                b'a'..=b'f' => Ok(c - b'a' + 10),
                b'A'..=b'F' => Ok(c - b'A' + 10),
                _ => Err(serde::de::Error::custom("bad hex digit")),
            }
        };
        let b = s.as_bytes();
        if b.len() % 2 != 0 {
            return Err(serde::de::Error::custom("odd hex length"));
        }
        b.chunks_exact(2)
            .map(|p| Ok((digit(p[0])? << 4) | digit(p[1])?))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::Rational;

    fn r(num: u32, den: u32) -> Rational {
        Rational { num, den }
    }

    #[test]
    fn nominal_rates() {
        // Matroska DefaultDuration in ns: 10^9 / d, reduced, then nominal.
        let from_ns = |d: u64| Rational::reduced(1_000_000_000, d).unwrap().nominal();
        assert_eq!(from_ns(33_366_666), Some(r(30000, 1001)));
        assert_eq!(from_ns(33_366_667), Some(r(30000, 1001)));
        assert_eq!(from_ns(41_708_333), Some(r(24000, 1001)));
        assert_eq!(from_ns(41_666_666), Some(r(24, 1)));
        assert_eq!(from_ns(40_000_000), Some(r(25, 1)));
        assert_eq!(from_ns(16_683_333), Some(r(60000, 1001)));
        assert_eq!(from_ns(80_000_000), Some(r(25, 2)));
        // Plain fractions stay as they are.
        assert_eq!(r(30000, 1001).nominal(), Some(r(30000, 1001)));
        assert_eq!(r(50, 2).nominal(), Some(r(25, 1)));
        // Odd fractions far from any nominal rate, and nonsense.
        assert_eq!(r(1_000_000_000, 37_123_457).nominal(), None);
        assert_eq!(r(0, 1).nominal(), None);
        assert_eq!(r(1, 0).nominal(), None);
    }
}
