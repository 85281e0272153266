//! Tracks (RFC 9559 §5.1.4): one [`Track`] per `TrackEntry`, with the codec mapped from
//! `CodecID` (the Matroska codec mappings) and the codec configuration read from `CodecPrivate`.

use webm_iterable::matroska_spec::{Master, MatroskaSpec};

use super::ebml::{lib_error, malformed, tags};
use crate::codecs::{aac, h264, hevc};
use crate::{limits, AudioInfo, Codec, ProbeError, Rational, Result, Track, TrackKind, VideoInfo};

/// A decoded `TrackEntry` with the Matroska-only facts the probe still needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TrackEntry {
    /// The track, as the index reports it (its timescale is filled in later).
    pub track: Track,
    /// `DefaultDuration`: nanoseconds per frame, when stated.
    pub default_duration: Option<u64>,
}

/// Decodes a Tracks element (`bytes`, header included, found at `base`).
pub(crate) fn parse(bytes: &[u8], base: u64) -> Result<Vec<TrackEntry>> {
    let mut out = Vec::new();
    let mut cur: Option<Raw> = None;
    // Flat Start/End events: see `ebml::tags` on why nothing is buffered. The iterator checks
    // the hierarchy, so a child's ID says where it is.
    for tag in tags(bytes) {
        let tag = tag.map_err(|e| lib_error("Tracks", base, &e))?;
        match tag {
            MatroskaSpec::TrackEntry(Master::Start) => {
                if out.len() >= limits::MAX_TRACKS {
                    return Err(ProbeError::limit(
                        "MAX_TRACKS",
                        out.len() as u64 + 1,
                        limits::MAX_TRACKS as u64,
                    ));
                }
                cur = Some(Raw::default());
            }
            MatroskaSpec::TrackEntry(Master::End) => {
                if let Some(r) = cur.take() {
                    out.push(entry(r, base)?);
                }
            }
            other => {
                if let Some(r) = &mut cur {
                    r.take(other)?;
                }
            }
        }
    }
    Ok(out)
}

/// Maps a Matroska `CodecID` to a [`Codec`].
pub(crate) fn codec(codec_id: &str) -> Codec {
    match codec_id {
        "V_MPEG4/ISO/AVC" => Codec::H264,
        "V_MPEGH/ISO/HEVC" => Codec::Hevc,
        "V_AV1" => Codec::Av1,
        "V_VP8" => Codec::Vp8,
        "V_VP9" => Codec::Vp9,
        "V_MPEG1" | "V_MPEG2" => Codec::Mpeg2Video,
        "V_MPEG4/ISO/ASP" | "V_MPEG4/ISO/SP" | "V_MPEG4/ISO/AP" => Codec::Mpeg4Part2,
        "A_EAC3" => Codec::Eac3,
        "A_TRUEHD" => Codec::TrueHd,
        "A_MPEG/L3" => Codec::Mp3,
        "A_MPEG/L2" | "A_MPEG/L1" => Codec::Mp2,
        "A_OPUS" => Codec::Opus,
        "A_VORBIS" => Codec::Vorbis,
        "A_FLAC" => Codec::Flac,
        "S_TEXT/UTF8" => Codec::Srt,
        "S_TEXT/ASS" | "S_TEXT/SSA" => Codec::Ass,
        "S_TEXT/WEBVTT" => Codec::WebVtt,
        "S_HDMV/PGS" => Codec::Pgs,
        "S_VOBSUB" => Codec::DvdSub,
        "S_DVBSUB" => Codec::DvbSub,
        s if s.starts_with("A_AAC") => Codec::Aac,
        // "A_AC3/BSID9" and "A_AC3/BSID10" are old AC-3 variants.
        s if s.starts_with("A_AC3") => Codec::Ac3,
        s if s.starts_with("A_DTS") => Codec::Dts,
        s if s.starts_with("A_PCM/") => Codec::Pcm,
        other => Codec::Other(other.to_string()),
    }
}

/// Keeps at most [`limits::MAX_STRING`] bytes of `s`, cut at a character boundary, without the
/// NUL padding RFC 8794 §7.4 allows.
fn cap(s: String) -> String {
    let s = s.trim_end_matches('\0');
    if s.len() <= limits::MAX_STRING {
        return s.to_string();
    }
    let mut end = limits::MAX_STRING;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default().to_string()
}

/// Frame rate from `DefaultDuration` (ns per frame): the nominal rate `1e9 / DefaultDuration`
/// stands for (33366666 ns → 30000/1001), else that fraction reduced.
pub(crate) fn frame_rate(default_duration: u64) -> Option<Rational> {
    let exact = Rational::reduced(1_000_000_000, default_duration)?;
    exact.nominal().or(Some(exact))
}

/// The children of one `TrackEntry` (and of its Video and Audio masters) as read.
#[derive(Default)]
struct Raw {
    number: Option<u64>,
    track_type: Option<u64>,
    codec_id: Option<String>,
    codec_private: Vec<u8>,
    name: Option<String>,
    language: Option<String>,
    language_bcp47: Option<String>,
    flag_default: Option<u64>,
    flag_forced: Option<u64>,
    default_duration: Option<u64>,
    codec_delay: Option<u64>,
    width: Option<u64>,
    height: Option<u64>,
    interlaced: Option<u64>,
    sampling_frequency: Option<f64>,
    channels: Option<u64>,
    bit_depth: Option<u64>,
    transfer: Option<u64>,
}

impl Raw {
    fn take(&mut self, tag: MatroskaSpec) -> Result<()> {
        match tag {
            MatroskaSpec::TrackNumber(v) => self.number = Some(v),
            MatroskaSpec::TrackType(v) => self.track_type = Some(v),
            MatroskaSpec::CodecID(s) => self.codec_id = Some(cap(s)),
            MatroskaSpec::CodecPrivate(b) => {
                if b.len() as u64 > limits::MAX_CODEC_PRIVATE {
                    return Err(ProbeError::limit(
                        "MAX_CODEC_PRIVATE",
                        b.len() as u64,
                        limits::MAX_CODEC_PRIVATE,
                    ));
                }
                self.codec_private = b;
            }
            MatroskaSpec::Name(s) => self.name = Some(cap(s)),
            MatroskaSpec::Language(s) => self.language = Some(cap(s)),
            // Called LanguageBCP47 in RFC 9559; the crate still uses the old name.
            MatroskaSpec::LanguageIETF(s) => self.language_bcp47 = Some(cap(s)),
            MatroskaSpec::FlagDefault(v) => self.flag_default = Some(v),
            MatroskaSpec::FlagForced(v) => self.flag_forced = Some(v),
            MatroskaSpec::DefaultDuration(v) => self.default_duration = Some(v),
            MatroskaSpec::CodecDelay(v) => self.codec_delay = Some(v),
            MatroskaSpec::PixelWidth(v) => self.width = Some(v),
            MatroskaSpec::PixelHeight(v) => self.height = Some(v),
            MatroskaSpec::FlagInterlaced(v) => self.interlaced = Some(v),
            MatroskaSpec::SamplingFrequency(v) => self.sampling_frequency = Some(v),
            MatroskaSpec::Channels(v) => self.channels = Some(v),
            MatroskaSpec::BitDepth(v) => self.bit_depth = Some(v),
            MatroskaSpec::TransferCharacteristics(v) => self.transfer = Some(v),
            _ => {}
        }
        Ok(())
    }
}

fn entry(r: Raw, base: u64) -> Result<TrackEntry> {
    let number = r
        .number
        .filter(|&n| n > 0)
        .ok_or_else(|| malformed(base, "Tracks: TrackEntry without a TrackNumber"))?;
    let codec_id = r.codec_id.clone().unwrap_or_default();
    let codec = codec(&codec_id);
    let kind = match r.track_type {
        Some(1) => TrackKind::Video,
        Some(2) => TrackKind::Audio,
        Some(17) => TrackKind::Subtitle,
        _ => codec.kind(),
    };
    // RFC 9559: Language defaults to "eng"; LanguageBCP47, when present, wins.
    let language = r
        .language_bcp47
        .clone()
        .filter(|l| !l.is_empty())
        .or_else(|| r.language.clone())
        .unwrap_or_else(|| "eng".to_string());
    let language = (language != "und" && !language.is_empty()).then_some(language);
    let video = (kind == TrackKind::Video).then(|| video_info(&r, &codec));
    let audio = (kind == TrackKind::Audio).then(|| audio_info(&r, &codec, &codec_id));
    Ok(TrackEntry {
        track: Track {
            id: number,
            kind,
            codec,
            timescale: 0,
            duration: None,
            language,
            title: r.name,
            default: r.flag_default.unwrap_or(1) != 0,
            forced: r.flag_forced.unwrap_or(0) != 0,
            codec_private: r.codec_private,
            video,
            audio,
            start: None,
            default_duration_ns: r.default_duration,
            codec_delay_ns: r.codec_delay.filter(|&d| d > 0),
        },
        default_duration: r.default_duration,
    })
}

fn video_info(r: &Raw, codec: &Codec) -> VideoInfo {
    let mut v = VideoInfo {
        width: r.width.and_then(|w| u32::try_from(w).ok()).unwrap_or(0),
        height: r.height.and_then(|h| u32::try_from(h).ok()).unwrap_or(0),
        // 1 interlaced, 2 progressive, 0 undetermined.
        interlaced: match r.interlaced {
            Some(1) => Some(true),
            Some(2) => Some(false),
            _ => None,
        },
        ..VideoInfo::default()
    };
    v.frame_rate = r.default_duration.and_then(frame_rate);
    let private = r.codec_private.as_slice();
    // The container's Colour (RFC 9559 §5.1.4.1.28) over the stream's VUI; 2 = unspecified.
    let container_transfer = r
        .transfer
        .filter(|t| *t != 2)
        .and_then(|t| u8::try_from(t).ok());
    v.transfer = container_transfer;
    if private.is_empty() {
        return v;
    }
    let from_codec = match codec {
        Codec::H264 => h264::parse_avcc(private).map(|(info, _)| info),
        Codec::Hevc => hevc::parse_hvcc(private),
        Codec::Av1 => av1c(private),
        Codec::Vp9 => vp9_private(private),
        _ => None,
    };
    if let Some(c) = from_codec {
        // The container's picture size is authoritative; the codec's fills gaps.
        if v.width == 0 || v.height == 0 {
            v.width = c.width;
            v.height = c.height;
        }
        v.frame_rate = v.frame_rate.or(c.frame_rate);
        v.interlaced = v.interlaced.or(c.interlaced);
        v.profile = c.profile;
        v.constraints = c.constraints;
        v.level = c.level;
        v.tier_high = c.tier_high;
        v.compat_flags = c.compat_flags;
        v.constraint_bytes = c.constraint_bytes;
        v.bit_depth = c.bit_depth;
        v.chroma_format = c.chroma_format;
        v.transfer = container_transfer.or(c.transfer);
    }
    v
}

/// AV1 `CodecPrivate` is the `av1C` record (AV1 Codec ISO Media File Format Binding §2.3):
/// marker/version, then profile/level, then tier and colour format bits.
fn av1c(b: &[u8]) -> Option<VideoInfo> {
    let (&head, &pl, &bits) = (b.first()?, b.get(1)?, b.get(2)?);
    if head != 0x81 {
        return None;
    }
    let high_bitdepth = bits & 0x40 != 0;
    let twelve_bit = bits & 0x20 != 0;
    let mono = bits & 0x10 != 0;
    let (sx, sy) = (bits & 0x08 != 0, bits & 0x04 != 0);
    Some(VideoInfo {
        profile: Some(pl >> 5),
        level: Some(pl & 0x1F),
        tier_high: Some(bits & 0x80 != 0),
        bit_depth: Some(match (high_bitdepth, twelve_bit) {
            (true, true) => 12,
            (true, false) => 10,
            _ => 8,
        }),
        chroma_format: Some(match (mono, sx, sy) {
            (true, _, _) => 0,
            (false, true, true) => 1,
            (false, true, false) => 2,
            _ => 3,
        }),
        ..VideoInfo::default()
    })
}

/// VP9 `CodecPrivate` (Matroska codec mappings, "V_VP9"): a list of `(id, length, value)`
/// features: 1 profile, 2 level, 3 bit depth, 4 chroma subsampling.
fn vp9_private(b: &[u8]) -> Option<VideoInfo> {
    let mut v = VideoInfo::default();
    let mut pos = 0usize;
    while let (Some(&id), Some(&len)) = (b.get(pos), b.get(pos + 1)) {
        let value = b.get(pos + 2..pos + 2 + usize::from(len))?;
        pos += 2 + usize::from(len);
        let Some(&x) = value.first() else { continue };
        match id {
            1 => v.profile = Some(x),
            2 => v.level = Some(x),
            3 => v.bit_depth = Some(x),
            4 => v.chroma_format = Some(if x <= 1 { 1 } else { x.min(3) }),
            _ => {}
        }
    }
    Some(v)
}

fn audio_info(r: &Raw, codec: &Codec, codec_id: &str) -> AudioInfo {
    // RFC 9559 defaults: 8000 Hz, 1 channel.
    let rate = r.sampling_frequency.unwrap_or(8000.0);
    let channels = r.channels.unwrap_or(1);
    let bits = r.bit_depth.and_then(|b| u16::try_from(b).ok());
    let sample_rate = if rate.is_finite() && rate >= 1.0 && rate <= f64::from(u32::MAX) {
        rate.round() as u32
    } else {
        0
    };
    let mut a = AudioInfo {
        sample_rate,
        channels: u16::try_from(channels).unwrap_or(0),
        aac_object_type: None,
        bits_per_sample: bits,
        ..AudioInfo::default()
    };
    if *codec == Codec::Aac {
        if let Some(asc) = aac::parse_asc(&r.codec_private) {
            a.aac_object_type = Some(asc.object_type);
            if asc.sample_rate > 0 {
                a.sample_rate = asc.sample_rate;
            }
            if asc.channels > 0 {
                a.channels = asc.channels;
            }
        } else {
            // Old-style IDs without CodecPrivate name the profile: "A_AAC/MPEG4/LC/SBR".
            a.aac_object_type = match codec_id.rsplit('/').next() {
                Some("MAIN") => Some(1),
                Some("LC") => Some(2),
                Some("SSR") => Some(3),
                Some("LTP") => Some(4),
                Some("SBR") => Some(5),
                _ => None,
            };
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_codec_ids() {
        assert_eq!(codec("V_MPEG4/ISO/AVC"), Codec::H264);
        assert_eq!(codec("A_AAC/MPEG4/LC/SBR"), Codec::Aac);
        assert_eq!(codec("A_DTS/EXPRESS"), Codec::Dts);
        assert_eq!(codec("A_PCM/INT/LIT"), Codec::Pcm);
        assert_eq!(codec("S_TEXT/SSA"), Codec::Ass);
        assert_eq!(codec("V_QUICKTIME"), Codec::Other("V_QUICKTIME".into()));
    }

    #[test]
    fn frame_rate_is_the_nominal_rate() {
        assert_eq!(frame_rate(40_000_000), Some(Rational { num: 25, den: 1 }));
        // Whole nanoseconds stand for the NTSC rates.
        assert_eq!(
            frame_rate(41_708_333),
            Some(Rational {
                num: 24000,
                den: 1001
            })
        );
        assert_eq!(
            frame_rate(33_366_666),
            Some(Rational {
                num: 30000,
                den: 1001
            })
        );
        // A duration far from any nominal rate is kept exact.
        assert_eq!(
            frame_rate(37_123_457),
            Some(Rational {
                num: 1_000_000_000,
                den: 37_123_457
            })
        );
        assert_eq!(frame_rate(0), None);
    }

    #[test]
    fn reads_av1_and_vp9_private_data() {
        // av1C: main profile, level 8 (4.0), 8-bit 4:2:0.
        let v = av1c(&[0x81, 0x08, 0x0C, 0x00]).unwrap();
        assert_eq!(
            (v.profile, v.level, v.bit_depth),
            (Some(0), Some(8), Some(8))
        );
        assert_eq!((v.chroma_format, v.tier_high), (Some(1), Some(false)));
        // 10-bit.
        assert_eq!(av1c(&[0x81, 0x08, 0x4C]).unwrap().bit_depth, Some(10));
        assert_eq!(av1c(&[0x80, 0, 0]), None);
        // VP9 features: profile 0, level 3.1, 10-bit, 4:2:0.
        let v = vp9_private(&[1, 1, 0, 2, 1, 31, 3, 1, 10, 4, 1, 1]).unwrap();
        assert_eq!(
            (v.profile, v.level, v.bit_depth),
            (Some(0), Some(31), Some(10))
        );
        assert_eq!(v.chroma_format, Some(1));
        assert_eq!(vp9_private(&[1, 5, 0]), None);
    }

    #[test]
    fn caps_strings_at_char_boundaries() {
        let s = "é".repeat(limits::MAX_STRING);
        let c = cap(s);
        assert!(c.len() <= limits::MAX_STRING && c.chars().all(|ch| ch == 'é'));
        assert_eq!(cap("eng\0\0".into()), "eng");
    }
}
