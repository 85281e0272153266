//! What the first bytes of a PES payload say about its elementary stream: whether a picture is
//! a random access point, and the codec configuration.
//!
//! - H.264 (ITU-T H.264 §7.4.1.2, Table 7-1): NAL type 5 = IDR; SPS/PPS → `avcC`
//!   (ISO/IEC 14496-15 §5.3.3.1).
//! - HEVC (ITU-T H.265 §7.4.2.2, Table 7-1): NAL types 16–23 = IRAP; VPS/SPS/PPS → `hvcC`
//!   (ISO/IEC 14496-15 §8.3.3.1).
//! - MPEG-2 video (ISO/IEC 13818-2 §6.2.2.1, §6.2.3): sequence header, `picture_coding_type`.
//! - AAC in ADTS (ISO/IEC 14496-3 §1.A.2) and LATM/LOAS (§1.7.3), AC-3 / E-AC-3 (ATSC A/52
//!   §5.3.1–5.3.2, Annex E §E.1.2), MPEG audio (ISO/IEC 11172-3 §2.4.2.3), DTS core
//!   (ETSI TS 102 114 §5.3), Blu-ray LPCM (4-byte header).
//!
//! Every function takes a byte slice and returns `None` or a partial answer on bad input.

use crate::codecs::{aac, ac3, annexb, h264, hevc};
use crate::cursor::BitReader;
use crate::limits;
use crate::{AudioInfo, Codec, Rational, VideoInfo};

/// The picture syntax of a video stream, for finding its pictures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Syntax {
    /// H.264 Annex B.
    H264,
    /// HEVC Annex B.
    Hevc,
    /// MPEG-1/2 video.
    Mpeg2,
}

impl Syntax {
    /// The syntax of a codec, when we can read its pictures.
    pub(crate) fn of(codec: &Codec) -> Option<Syntax> {
        match codec {
            Codec::H264 => Some(Syntax::H264),
            Codec::Hevc => Some(Syntax::Hevc),
            Codec::Mpeg2Video => Some(Syntax::Mpeg2),
            _ => None,
        }
    }
}

/// Where a scan for the first picture of an access unit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scan {
    /// The first coded picture unit; `key` when it is a random access point.
    Picture {
        /// IDR (H.264), IRAP (HEVC), I picture (MPEG-2).
        key: bool,
    },
    /// Not found yet; scan again from this position once more bytes are there.
    Resume(usize),
}

/// Finds the first picture (VCL NAL unit / picture header) in `buf[from..]`.
pub(crate) fn scan_picture(syntax: Syntax, buf: &[u8], from: usize) -> Scan {
    let mut i = from;
    while let Some(&[a, b, c]) = buf.get(i..i + 3) {
        if c > 1 {
            i += 3;
            continue;
        }
        if a != 0 || b != 0 || c != 1 {
            i += 1;
            continue;
        }
        let unit = buf.get(i + 3..).unwrap_or(&[]);
        match classify(syntax, unit) {
            None => return Scan::Resume(i),
            Some(Some(key)) => return Scan::Picture { key },
            Some(None) => i += 3,
        }
    }
    Scan::Resume(i.max(from))
}

/// `None`: more bytes needed; `Some(None)`: not a picture; `Some(Some(key))`: a picture.
fn classify(syntax: Syntax, unit: &[u8]) -> Option<Option<bool>> {
    let &first = unit.first()?;
    Some(match syntax {
        Syntax::H264 => {
            let t = h264::nal_type(first);
            h264::is_slice(t).then_some(h264::is_idr(t))
        }
        Syntax::Hevc => {
            let t = hevc::nal_type(first);
            hevc::is_vcl(t).then_some(hevc::is_irap(t))
        }
        Syntax::Mpeg2 => match first {
            // picture_start_code: temporal_reference 10 | picture_coding_type 3.
            0x00 => Some((unit.get(2)? >> 3) & 7 == 1),
            0x01..=0xAF => Some(false),
            _ => None,
        },
    })
}

/// Video facts and the configuration record found in an access unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VideoConfig {
    /// Size, profile, level, frame rate (when the stream codes it).
    pub info: VideoInfo,
    /// `avcC` (H.264) or `hvcC` (HEVC) built from the in-band parameter sets; empty for
    /// MPEG-2 or when a parameter set is missing.
    pub codec_private: Vec<u8>,
}

/// Parameter sets kept per kind (more are ignored).
const MAX_PARAMETER_SETS: usize = 8;

/// Reads the parameter sets at the start of an access unit (`es`: Annex B bytes).
pub(crate) fn video_config(syntax: Syntax, es: &[u8]) -> Option<VideoConfig> {
    match syntax {
        Syntax::H264 => h264_config(es),
        Syntax::Hevc => hevc_config(es),
        Syntax::Mpeg2 => mpeg2_config(es),
    }
}

fn push_unique<'a>(list: &mut Vec<&'a [u8]>, nal: &'a [u8]) {
    if list.len() < MAX_PARAMETER_SETS && !list.contains(&nal) && nal.len() <= 0xFFFF {
        list.push(nal);
    }
}

fn h264_config(es: &[u8]) -> Option<VideoConfig> {
    let (mut sps, mut pps) = (Vec::new(), Vec::new());
    for nal in annexb::nal_units(es) {
        match nal.first().map(|&b| h264::nal_type(b)) {
            Some(h264::NAL_SPS) => push_unique(&mut sps, nal),
            Some(h264::NAL_PPS) => push_unique(&mut pps, nal),
            Some(t) if h264::is_slice(t) => break,
            _ => {}
        }
    }
    let first = *sps.first()?;
    let info = h264::video_info(&h264::parse_sps(first)?);
    // Empty when a PPS is missing (the record needs both).
    let record = h264::avcc(&sps, &pps).unwrap_or_default();
    Some(VideoConfig {
        info,
        codec_private: bounded(record),
    })
}

fn hevc_config(es: &[u8]) -> Option<VideoConfig> {
    let (mut vps, mut sps, mut pps) = (Vec::new(), Vec::new(), Vec::new());
    for nal in annexb::nal_units(es) {
        match nal.first().map(|&b| hevc::nal_type(b)) {
            Some(hevc::NAL_VPS) => push_unique(&mut vps, nal),
            Some(hevc::NAL_SPS) => push_unique(&mut sps, nal),
            Some(hevc::NAL_PPS) => push_unique(&mut pps, nal),
            Some(t) if hevc::is_vcl(t) => break,
            _ => {}
        }
    }
    let first = *sps.first()?;
    let info = hevc::parse_sps(first)?;
    // Empty when a VPS or PPS is missing.
    let record = hevc::hvcc(&vps, &sps, &pps, &info).unwrap_or_default();
    Some(VideoConfig {
        info,
        codec_private: bounded(record),
    })
}

fn bounded(record: Vec<u8>) -> Vec<u8> {
    if record.len() as u64 > limits::MAX_CODEC_PRIVATE {
        Vec::new()
    } else {
        record
    }
}

/// `frame_rate_code` values (ISO/IEC 13818-2 Table 6-4).
const MPEG2_RATES: [(u32, u32); 8] = [
    (24000, 1001),
    (24, 1),
    (25, 1),
    (30000, 1001),
    (30, 1),
    (50, 1),
    (60000, 1001),
    (60, 1),
];

fn mpeg2_config(es: &[u8]) -> Option<VideoConfig> {
    let at = es.windows(4).position(|w| w == [0, 0, 1, 0xB3])?;
    // horizontal_size 12 | vertical_size 12 | aspect_ratio 4 | frame_rate_code 4.
    let &[h0, h1, h2, ar] = es.get(at + 4..at + 8)? else {
        return None;
    };
    let width = (u32::from(h0) << 4) | u32::from(h1 >> 4);
    let height = (u32::from(h1 & 0x0F) << 8) | u32::from(h2);
    let frame_rate = usize::from(ar & 0x0F)
        .checked_sub(1)
        .and_then(|i| MPEG2_RATES.get(i))
        .map(|&(num, den)| Rational { num, den });
    Some(VideoConfig {
        info: VideoInfo {
            width,
            height,
            frame_rate,
            ..VideoInfo::default()
        },
        codec_private: Vec::new(),
    })
}

/// A frame rate from a frame duration in 90 kHz ticks.
pub(crate) fn rate_from_ticks(ticks: u64) -> Option<Rational> {
    let ticks = u32::try_from(ticks).ok().filter(|&t| t > 0)?;
    Rational::reduced(90_000, u64::from(ticks))
}

/// Audio facts found in the first bytes of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AudioConfig {
    /// The codec the bitstream shows (MP2 vs MP3, AC-3 vs E-AC-3), when it refines the PMT's.
    pub codec: Option<Codec>,
    /// Rate, channels, AAC object type.
    pub info: AudioInfo,
    /// AudioSpecificConfig for AAC; empty otherwise.
    pub codec_private: Vec<u8>,
}

/// Reads the first frame header of an audio stream of `codec` in `es`.
pub(crate) fn audio_config(codec: &Codec, es: &[u8]) -> Option<AudioConfig> {
    match codec {
        Codec::Aac => adts(es),
        Codec::Other(name) if name == "aac_latm" => latm(es),
        Codec::Ac3 | Codec::Eac3 => ac3(es),
        Codec::Mp2 | Codec::Mp3 => mpeg_audio(es),
        Codec::Dts => dts(es),
        Codec::Pcm => hdmv_lpcm(es),
        _ => None,
    }
}

/// Recognises the audio in a private-data stream (`stream_type` 0x06) that has no descriptor
/// saying what it is (FFmpeg's M2TS muxer writes AAC that way): an ADTS or AC-3 frame header
/// at the very start of the PES payload.
pub(crate) fn sniff_private(es: &[u8]) -> Option<AudioConfig> {
    if aac::is_adts_sync(es) {
        let mut c = adts(es.get(..2048).unwrap_or(es))?;
        c.codec = Some(Codec::Aac);
        Some(c)
    } else if es.starts_with(&ac3::SYNC) {
        ac3(es)
    } else {
        None
    }
}

fn audio(codec: Option<Codec>, sample_rate: u32, channels: u16) -> AudioConfig {
    AudioConfig {
        codec,
        info: AudioInfo {
            sample_rate,
            channels,
            ..AudioInfo::default()
        },
        codec_private: Vec::new(),
    }
}

fn adts(es: &[u8]) -> Option<AudioConfig> {
    let mut fallback = None;
    for i in 0..es.len() {
        let Some(tail) = es.get(i..) else { break };
        // syncword 12 | ID 1 | layer 2 (00) | protection_absent 1.
        let Some(h) = aac::parse_adts(tail) else {
            continue;
        };
        let found = AudioConfig {
            codec: None,
            info: AudioInfo {
                sample_rate: h.sample_rate(),
                channels: h.channels(),
                aac_object_type: Some(h.object_type),
                bits_per_sample: None,
                ..AudioInfo::default()
            },
            codec_private: h.to_asc().to_vec(),
        };
        // Trust a header whose successor is where its frame_length says.
        match tail.get(usize::from(h.frame_length)..) {
            Some(next) if next.len() >= 7 => {
                if aac::parse_adts(next).is_some() {
                    return Some(found);
                }
            }
            _ => {
                fallback.get_or_insert(found);
            }
        }
    }
    fallback
}

fn latm(es: &[u8]) -> Option<AudioConfig> {
    // LOAS AudioSyncStream: syncword 0x2B7 (11) | audioMuxLengthBytes 13, then an
    // AudioMuxElement(1): useSameStreamMux 1 | audioMuxVersion 1 | allStreamsSameTimeFraming 1
    // | numSubFrames 6 | numProgram 4 | numLayer 3 | AudioSpecificConfig (byte aligned here).
    let at = es
        .windows(2)
        .position(|w| matches!(w, [0x56, b] if b & 0xE0 == 0xE0))?;
    let b = es.get(at..)?;
    let flags = *b.get(3)?;
    if flags & 0xC0 != 0 {
        // Same mux as before, or audioMuxVersion 1: no config readable here.
        return None;
    }
    let asc = aac::parse_asc(b.get(5..)?)?;
    let mut c = audio(None, asc.sample_rate, asc.channels);
    c.info.aac_object_type = Some(asc.object_type);
    Some(c)
}

fn ac3(es: &[u8]) -> Option<AudioConfig> {
    let at = es.windows(2).position(|w| w == ac3::SYNC)?;
    let f = ac3::parse(es.get(at..)?)?;
    let codec = if f.eac3 { Codec::Eac3 } else { Codec::Ac3 };
    Some(audio(Some(codec), f.sample_rate, f.channels))
}

fn mpeg_audio(es: &[u8]) -> Option<AudioConfig> {
    for i in 0..es.len().saturating_sub(3) {
        let Some(&[b0, b1, b2, b3]) = es.get(i..i + 4) else {
            break;
        };
        // syncword 11 | version 2 | layer 2 | protection 1 | bitrate 4 | rate 2 | … | mode 2.
        if b0 != 0xFF || b1 & 0xE0 != 0xE0 {
            continue;
        }
        let version = (b1 >> 3) & 3;
        let layer = (b1 >> 1) & 3;
        let rate_index = (b2 >> 2) & 3;
        if version == 1 || layer == 0 || rate_index == 3 || b2 >> 4 == 15 {
            continue;
        }
        let Some(&base) = [44_100u32, 48_000, 32_000].get(usize::from(rate_index)) else {
            continue;
        };
        let rate = match version {
            3 => base,
            2 => base / 2,
            _ => base / 4,
        };
        let channels = if b3 >> 6 == 3 { 1 } else { 2 };
        let codec = if layer == 1 { Codec::Mp3 } else { Codec::Mp2 };
        return Some(audio(Some(codec), rate, channels));
    }
    None
}

fn dts(es: &[u8]) -> Option<AudioConfig> {
    let at = es.windows(4).position(|w| w == [0x7F, 0xFE, 0x80, 0x01])?;
    // FTYPE 1 | SHORT 5 | CPF 1 | NBLKS 7 | FSIZE 14 | AMODE 6 | SFREQ 4 | RATE 5 | 5 flags |
    // EXT_AUDIO_ID 3 | EXT_AUDIO 1 | ASPF 1 | LFF 2.
    let mut r = BitReader::new(es.get(at + 4..)?);
    r.skip(28)?;
    let amode = r.bits(6)?;
    let sfreq = r.bits(4)?;
    r.skip(15)?;
    let lff = r.bits(2)?;
    const RATES: [u32; 16] = [
        0, 8000, 16000, 32000, 0, 0, 11025, 22050, 44100, 0, 0, 12000, 24000, 48000, 0, 0,
    ];
    const CHANNELS: [u16; 16] = [1, 2, 2, 2, 2, 3, 3, 4, 4, 5, 6, 6, 6, 7, 8, 8];
    let rate = *RATES.get(sfreq as usize)?;
    let ch = CHANNELS.get(amode as usize).copied().unwrap_or(0) + u16::from(lff == 1 || lff == 2);
    Some(audio(None, rate, ch))
}

fn hdmv_lpcm(es: &[u8]) -> Option<AudioConfig> {
    // Blu-ray LPCM header: size 16 | channel_assignment 4 | sampling_frequency 4 |
    // bits_per_sample 2 | …
    let &[_, _, b2, b3] = es.get(..4)? else {
        return None;
    };
    const CHANNELS: [u16; 16] = [0, 1, 0, 2, 3, 3, 4, 4, 5, 6, 7, 8, 0, 0, 0, 0];
    let channels = CHANNELS.get(usize::from(b2 >> 4)).copied().unwrap_or(0);
    let rate = match b2 & 0x0F {
        1 => 48_000,
        4 => 96_000,
        5 => 192_000,
        _ => 0,
    };
    let bits = match b3 >> 6 {
        1 => Some(16),
        2 => Some(20),
        3 => Some(24),
        _ => None,
    };
    let mut c = audio(None, rate, channels);
    c.info.bits_per_sample = bits;
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_pictures_and_keys() {
        let au = [
            0, 0, 0, 1, 9, 0xF0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x65, 0x88,
        ];
        assert_eq!(
            scan_picture(Syntax::H264, &au, 0),
            Scan::Picture { key: true }
        );
        let p = [0, 0, 1, 9, 0xF0, 0, 0, 1, 0x41, 0x9A];
        assert_eq!(
            scan_picture(Syntax::H264, &p, 0),
            Scan::Picture { key: false }
        );
        // Start code split at the end: resume where it starts.
        assert_eq!(
            scan_picture(Syntax::H264, &[7, 7, 0, 0, 1], 0),
            Scan::Resume(2)
        );
        let cra = [0, 0, 1, 0x40, 1, 0, 0, 1, 0x2A, 1];
        assert_eq!(
            scan_picture(Syntax::Hevc, &cra, 0),
            Scan::Picture { key: true }
        );
        let i_pic = [0, 0, 1, 0xB3, 1, 2, 3, 4, 0, 0, 1, 0, 0, 0x0F];
        assert_eq!(
            scan_picture(Syntax::Mpeg2, &i_pic, 0),
            Scan::Picture { key: true }
        );
    }

    #[test]
    fn reads_audio_headers() {
        // AC-3, 48 kHz, acmod 7 (3/2) + LFE: 5.1.
        let ac3_frame = [0x0B, 0x77, 0, 0, 0x0E, 0x40, 0xE1, 0x40, 0];
        let c = ac3(&ac3_frame).unwrap();
        assert_eq!((c.info.sample_rate, c.info.channels), (48_000, 6));
        assert_eq!(c.codec, Some(Codec::Ac3));
        // E-AC-3, 48 kHz, acmod 2 stereo, no LFE, bsid 16.
        let eac3 = [0x0B, 0x77, 0, 0x7F, 0x34, 0x80];
        let c = ac3(&eac3).unwrap();
        assert_eq!(
            (c.codec, c.info.sample_rate, c.info.channels),
            (Some(Codec::Eac3), 48_000, 2)
        );
        // MPEG-1 layer III, 44.1 kHz, joint stereo.
        let c = mpeg_audio(&[0xFF, 0xFB, 0x90, 0x64]).unwrap();
        assert_eq!(
            (c.codec, c.info.sample_rate, c.info.channels),
            (Some(Codec::Mp3), 44_100, 2)
        );
        // ADTS AAC-LC 48 kHz stereo.
        let c = adts(&[0xFF, 0xF1, 0x4C, 0x80, 0x2E, 0x7F, 0xFC]).unwrap();
        assert_eq!(c.codec_private, vec![0x11, 0x90]);
    }

    #[test]
    fn garbage_never_panics() {
        let mut x: u32 = 99;
        for len in 0..300 {
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    [0, 0, 1, 0xFF, 0x0B, 0x77, (x >> 16) as u8][(x >> 24) as usize % 7]
                })
                .collect();
            for s in [Syntax::H264, Syntax::Hevc, Syntax::Mpeg2] {
                let _ = scan_picture(s, &buf, 0);
                let _ = video_config(s, &buf);
            }
            for c in [Codec::Aac, Codec::Ac3, Codec::Mp2, Codec::Dts, Codec::Pcm] {
                let _ = audio_config(&c, &buf);
            }
            let _ = latm(&buf);
        }
    }
}
