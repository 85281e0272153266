//! Renditions: which video, audio and subtitle outputs a source gets, and the multivariant
//! ("master") playlist that announces them (RFC 8216 §4.3.4).
//!
//! Pure: a [`MediaIndex`] and [`RenditionOptions`] in, a list of [`Rendition`]s out; the same
//! input always gives the same list (ids included), so any instance serves the same URLs.
//!
//! - **Video** (the main video track only): H.264 8-bit 4:2:0 plays everywhere and is passed
//!   through. HEVC Main (8-bit 4:2:0) is passed through as `hvc1` for players that decode it
//!   (Safari, VLC, mpv) *and* transcoded to H.264 for browsers (Chromium plays no HEVC through
//!   MSE); the H.264 rendition is listed first, because hls.js and Chromium pick the first
//!   playable variant. Anything else (VP9, AV1, MPEG-2, MPEG-4 Part 2, H.264 10-bit or 4:2:2/4:4:4,
//!   HEVC Main10, odd picture sizes, unknown profiles) is transcoded to H.264 only, its height
//!   capped at [`RenditionOptions::max_height`], both dimensions even.
//! - **Audio**: one rendition per audio track. AAC-LC (audio object type 2) is passed through;
//!   everything else becomes AAC-LC stereo 48 kHz 128 kb/s. Exactly one AAC rendition is
//!   `DEFAULT=YES`: the container's default track, else the first. A track in a codec that fMP4
//!   carries as it is ([`copied_audio`]: AC-3, E-AC-3, FLAC, Opus, MP3) also gets its original,
//!   copied (`a{id}-copy`, named with codec and layout: "English (AC-3 5.1)"), in an audio group
//!   of its codec, so players that decode it get what the file holds and nothing is lost. A
//!   surround track (6 channels or more) that is not AAC also gets an AAC 5.1 rendition
//!   (`a{id}-51`, 384 kb/s, "English (AAC 5.1)") beside the stereo one.
//! - **Subtitles**: one rendition per text track (SubRip, ASS/SSA, WebVTT, mov_text), served as
//!   segmented WebVTT. Bitmap subtitles (PGS, VobSub, DVB) are not offered.
//!
//! CODECS strings follow RFC 6381 and ISO/IEC 14496-15 Annex E: `avc1.PPCCLL` from the avcC /
//! SPS bytes, `hvc1.<space><profile>.<compat reversed>.<tier><level>.<constraint bytes>` from
//! the hvcC, `mp4a.40.2` for AAC-LC, and for copied audio `ac-3`, `ec-3`, `fLaC`, `Opus`,
//! `mp4a.6B` (MPEG-1 audio, MP3).

use std::fmt::Write as _;

use probe::{Codec, MediaIndex, Track, TrackKind};
use serde::{Deserialize, Serialize};

use crate::{playlist, Plan};

/// How the video of a rendition is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VideoOutput {
    /// The source samples, copied.
    Passthrough,
    /// Re-encoded to H.264 High profile (8-bit 4:2:0), level from [`h264_level`].
    H264 {
        /// Output width in pixels (even).
        width: u32,
        /// Output height in pixels (even).
        height: u32,
        /// x264 constant rate factor.
        crf: u8,
        /// VBV maximum rate in kb/s (also the basis of the master's BANDWIDTH estimate).
        maxrate_kbps: u32,
    },
}

/// How the audio of a rendition is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AudioOutput {
    /// The source frames, copied: AAC-LC, or a codec of [`copied_audio`].
    Passthrough,
    /// Re-encoded to AAC-LC.
    Aac {
        /// Output sample rate in Hz.
        sample_rate: u32,
        /// Output channel count.
        channels: u16,
        /// Target bit rate in b/s.
        bitrate: u32,
    },
}

/// What a rendition carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RenditionKind {
    /// A video variant (EXT-X-STREAM-INF).
    Video,
    /// An audio rendition (EXT-X-MEDIA TYPE=AUDIO).
    Audio,
    /// A subtitle rendition (EXT-X-MEDIA TYPE=SUBTITLES), WebVTT.
    Subtitle,
}

/// One output of a source: a video variant, an audio track or a subtitle track.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rendition {
    /// URL-safe id, unique per source: `v1` (video passthrough of track 1), `v1-h264` (its
    /// H.264 transcode), `a2` (audio track 2), `s3` (subtitle track 3). The number is the probe's
    /// track id.
    pub id: String,
    /// Video, audio or subtitle.
    pub kind: RenditionKind,
    /// The source track ([`probe::Track::id`]).
    pub track_id: u64,
    /// For video renditions: how the video is made.
    pub video: Option<VideoOutput>,
    /// For audio renditions: how the audio is made.
    pub audio: Option<AudioOutput>,
    /// RFC 6381 codec string of this rendition's own media (`avc1.64000d`, `mp4a.40.2`, `wvtt`).
    pub codecs: String,
    /// RFC 5646 language tag (ISO 639-2 codes mapped to their two-letter form when one exists).
    pub language: Option<String>,
    /// Human name, unique among renditions of the same kind.
    pub name: String,
    /// `DEFAULT=YES` (video: always; audio: exactly one; subtitles: when the container says so).
    pub default: bool,
    /// Forced subtitles (`FORCED=YES`).
    pub forced: bool,
    /// Output width (video), else 0.
    pub width: u32,
    /// Output height (video), else 0.
    pub height: u32,
    /// Frame rate (video), when known.
    pub frame_rate: Option<f64>,
    /// Output channel count (audio), else 0.
    pub channels: u16,
}

/// What renditions to offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenditionOptions {
    /// Also offer an H.264 transcode of HEVC Main video (browsers need H.264). Default true.
    pub h264_for_hevc: bool,
    /// Height cap of transcoded video (default 1080).
    pub max_height: u32,
    /// x264 CRF of transcodes (default 23).
    pub crf: u8,
    /// Offer the quality ladder: H.264 transcodes at each of [`LADDER`]'s heights below the
    /// top video rendition's (default true). Each rung is made only when a player asks for it.
    pub ladder: bool,
}

impl Default for RenditionOptions {
    fn default() -> Self {
        RenditionOptions {
            h264_for_hevc: true,
            max_height: 1080,
            crf: 23,
            ladder: true,
        }
    }
}

/// Heights (the short side, for portrait video) of the quality ladder's rungs.
pub const LADDER: [u32; 4] = [1080, 720, 480, 360];

/// Sample rate of transcoded audio.
pub const AAC_SAMPLE_RATE: u32 = 48_000;
/// Channels of transcoded audio.
pub const AAC_CHANNELS: u16 = 2;
/// Bit rate of transcoded audio (b/s).
pub const AAC_BITRATE: u32 = 128_000;
/// Bit rate of the AAC 5.1 rendition of a surround track (b/s).
pub const AAC_SURROUND_BITRATE: u32 = 384_000;
/// Bit rate assumed for passed-through AAC in the master's BANDWIDTH estimate of a transcoded
/// variant (b/s). A passthrough variant measures the real bytes instead.
pub const AAC_PASSTHROUGH_ESTIMATE: u32 = 192_000;
/// The codec string of every audio rendition (AAC-LC).
pub const AAC_LC_CODECS: &str = "mp4a.40.2";
/// H.264 profile of transcodes (High).
pub const H264_PROFILE: u8 = 100;

/// The renditions of `index`, video first (H.264 before HEVC), then audio, then subtitles.
pub fn renditions(index: &MediaIndex, opts: &RenditionOptions) -> Vec<Rendition> {
    let mut out = Vec::new();
    if let Some(main) = index.main().filter(|t| t.kind == TrackKind::Video) {
        video_renditions(main, opts, &mut out);
    }

    let audio: Vec<&Track> = index
        .tracks
        .iter()
        .filter(|t| t.kind == TrackKind::Audio)
        .collect();
    let default_audio = audio.iter().position(|t| t.default).unwrap_or(0);
    let mut names: Vec<String> = Vec::new();
    let mut copies: Vec<Rendition> = Vec::new();
    let mut surround: Vec<Rendition> = Vec::new();
    for (i, t) in audio.iter().enumerate() {
        let aac_lc =
            t.codec == Codec::Aac && t.audio.as_ref().and_then(|a| a.aac_object_type) == Some(2);
        let src_channels = t.audio.as_ref().map_or(0, |a| a.channels);
        let (output, channels) = if aac_lc && src_channels > 0 {
            (AudioOutput::Passthrough, src_channels)
        } else {
            (
                AudioOutput::Aac {
                    sample_rate: AAC_SAMPLE_RATE,
                    channels: AAC_CHANNELS,
                    bitrate: AAC_BITRATE,
                },
                AAC_CHANNELS,
            )
        };
        let language = t.language.as_deref().and_then(language_tag);
        let base = t
            .title
            .as_deref()
            .map(clean_name)
            .filter(|s| !s.is_empty())
            .or_else(|| language.as_deref().map(language_name))
            .unwrap_or_else(|| format!("Audio {}", i + 1));
        out.push(Rendition {
            id: format!("a{}", t.id),
            kind: RenditionKind::Audio,
            track_id: t.id,
            video: None,
            audio: Some(output),
            codecs: AAC_LC_CODECS.to_string(),
            language: language.clone(),
            name: unique_name(&mut names, base.clone()),
            default: i == default_audio,
            forced: false,
            width: 0,
            height: 0,
            frame_rate: None,
            channels,
        });
        // A surround track that is not AAC: an AAC 5.1 rendition beside the stereo one
        // (same group: same codec), for players and receivers that decode 5.1 AAC.
        if !matches!(output, AudioOutput::Passthrough) && src_channels >= 6 {
            surround.push(Rendition {
                id: format!("a{}-51", t.id),
                kind: RenditionKind::Audio,
                track_id: t.id,
                video: None,
                audio: Some(AudioOutput::Aac {
                    sample_rate: AAC_SAMPLE_RATE,
                    channels: 6,
                    bitrate: AAC_SURROUND_BITRATE,
                }),
                codecs: AAC_LC_CODECS.to_string(),
                language: language.clone(),
                name: format!("{base} (AAC 5.1)"),
                default: false,
                forced: false,
                width: 0,
                height: 0,
                frame_rate: None,
                channels: 6,
            });
        }
        if let Some(c) = copied_audio(t).filter(|c| c.codecs != AAC_LC_CODECS) {
            copies.push(Rendition {
                id: format!("a{}-copy", t.id),
                kind: RenditionKind::Audio,
                track_id: t.id,
                video: None,
                audio: Some(AudioOutput::Passthrough),
                codecs: c.codecs.to_string(),
                language,
                name: format!("{base} ({} {})", c.label, layout_name(src_channels)),
                // The default of its own group (one per codec).
                default: i == default_audio,
                forced: false,
                width: 0,
                height: 0,
                frame_rate: None,
                channels: src_channels,
            });
        }
    }
    // The AAC 5.1 renditions after the stereo ones and the originals after every AAC
    // rendition: stereo AAC stays first, for players that take the first audio rendition.
    for mut c in surround.into_iter().chain(copies) {
        c.name = unique_name(&mut names, c.name);
        out.push(c);
    }

    let mut names: Vec<String> = Vec::new();
    let subs = index.tracks.iter().filter(|t| {
        t.kind == TrackKind::Subtitle
            && matches!(
                t.codec,
                Codec::Srt | Codec::Ass | Codec::WebVtt | Codec::MovText
            )
    });
    let mut seen_default = false;
    for (i, t) in subs.enumerate() {
        let language = t.language.as_deref().and_then(language_tag);
        let mut base = t
            .title
            .as_deref()
            .map(clean_name)
            .filter(|s| !s.is_empty())
            .or_else(|| language.as_deref().map(language_name))
            .unwrap_or_else(|| format!("Subtitles {}", i + 1));
        if t.forced && !base.to_lowercase().contains("forced") {
            base.push_str(" (forced)");
        }
        let default = t.default && !seen_default;
        seen_default |= default;
        out.push(Rendition {
            id: format!("s{}", t.id),
            kind: RenditionKind::Subtitle,
            track_id: t.id,
            video: None,
            audio: None,
            codecs: "wvtt".to_string(),
            language,
            name: unique_name(&mut names, base),
            default,
            forced: t.forced,
            width: 0,
            height: 0,
            frame_rate: None,
            channels: 0,
        });
    }
    out
}

fn video_renditions(t: &Track, opts: &RenditionOptions, out: &mut Vec<Rendition>) {
    let v = t.video.clone().unwrap_or_default();
    let fps = v.frame_rate.map(|r| r.as_f64()).filter(|f| *f > 0.0);
    let even =
        v.width > 0 && v.height > 0 && v.width.is_multiple_of(2) && v.height.is_multiple_of(2);
    let eight_bit_420 = v.bit_depth.unwrap_or(8) == 8 && v.chroma_format.unwrap_or(1) == 1;
    let ten_bit_420 = v.bit_depth == Some(10) && v.chroma_format.unwrap_or(1) == 1;

    // HEVC Main and Main 10 are copied (Safari, Apple TV, Kodi, VLC, mpv, TVs decode both;
    // an HDR10 or HLG film keeps its range there), beside the H.264 transcode browsers need.
    let passthrough = match t.codec {
        Codec::H264 if even && eight_bit_420 => avc1_codecs(&v).map(|c| (c, false)),
        Codec::Hevc
            if even
                && ((eight_bit_420 && hevc_is_main(&v)) || (ten_bit_420 && hevc_is_main10(&v))) =>
        {
            hvc1_codecs(&v).map(|c| (c, true))
        }
        _ => None,
    };
    let transcode = match &passthrough {
        Some((_, is_hevc)) => *is_hevc && opts.h264_for_hevc,
        None => true,
    };

    // Sizes as displayed: a quarter-turned picture (a phone's portrait video) swaps them; the
    // transcode turns the pictures upright, the copy keeps the matrix. Names and the height
    // cap go by the short side ("1080p" for 1080×1920).
    let (dw, dh) = if matches!(v.rotation % 360, 90 | 270) {
        (v.height, v.width)
    } else {
        (v.width, v.height)
    };
    // An H.264 transcode whose short side is at most `cap`, turned upright (a portrait phone
    // video stays portrait: 720×1280 for 720).
    let h264 = |id: String, cap: u32, default: bool| {
        let (width, height) = if dh > dw {
            let (h, w) = transcode_size(dh, dw, cap);
            (w, h)
        } else {
            transcode_size(dw, dh, cap)
        };
        let level = h264_level(width, height, fps.unwrap_or(30.0));
        Rendition {
            id,
            kind: RenditionKind::Video,
            track_id: t.id,
            video: Some(VideoOutput::H264 {
                width,
                height,
                crf: opts.crf,
                maxrate_kbps: maxrate_kbps(width, height, fps.unwrap_or(30.0)),
            }),
            audio: None,
            codecs: format!("avc1.{H264_PROFILE:02x}00{level:02x}"),
            language: None,
            name: format!("{}p H.264", width.min(height)),
            default,
            forced: false,
            width,
            height,
            frame_rate: fps,
            channels: 0,
        }
    };
    // The top of the ladder: the transcode's short side, else the copied picture's.
    let mut top = 0;
    if transcode {
        let r = h264(format!("v{}-h264", t.id), opts.max_height, true);
        top = r.width.min(r.height);
        out.push(r);
    }
    if let Some((codecs, is_hevc)) = passthrough {
        if !transcode {
            top = dw.min(dh);
        }
        out.push(Rendition {
            id: format!("v{}", t.id),
            kind: RenditionKind::Video,
            track_id: t.id,
            video: Some(VideoOutput::Passthrough),
            audio: None,
            codecs,
            language: None,
            name: format!(
                "{}p {}{} (original)",
                dw.min(dh),
                if is_hevc { "HEVC" } else { "H.264" },
                match (v.hdr(), v.bit_depth) {
                    (Some("PQ"), _) => " HDR10",
                    (Some(_), _) => " HLG",
                    (None, Some(10)) => " 10-bit",
                    _ => "",
                }
            ),
            default: true,
            forced: false,
            width: dw,
            height: dh,
            frame_rate: fps,
            channels: 0,
        });
    }
    if opts.ladder {
        for rung in LADDER
            .into_iter()
            .filter(|h| *h < top && *h <= opts.max_height)
        {
            out.push(h264(format!("v{}-{rung}p", t.id), rung, false));
        }
    }
}

/// HEVC Main profile (8-bit 4:2:0): `general_profile_idc` 1, or compatible with it.
fn hevc_is_main(v: &probe::VideoInfo) -> bool {
    match v.profile {
        Some(1) => true,
        // Compatibility flag j is bit (31 − j) of the 32-bit field.
        Some(_) => v.compat_flags.is_some_and(|f| f & (1 << 30) != 0),
        None => false,
    }
}

/// HEVC Main 10 (10-bit 4:2:0): `general_profile_idc` 2, or compatible with it.
fn hevc_is_main10(v: &probe::VideoInfo) -> bool {
    match v.profile {
        Some(2) => true,
        Some(_) => v.compat_flags.is_some_and(|f| f & (1 << 29) != 0),
        None => false,
    }
}

/// `avc1.PPCCLL` (RFC 6381 §3.3): profile_idc, constraint flags, level_idc in hex.
pub fn avc1_codecs(v: &probe::VideoInfo) -> Option<String> {
    Some(format!(
        "avc1.{:02x}{:02x}{:02x}",
        v.profile?,
        v.constraints.unwrap_or(0),
        v.level?
    ))
}

/// `hvc1.…` (ISO/IEC 14496-15 Annex E.3): profile space (none, A, B, C) and profile_idc; the
/// 32 compatibility flags in reverse bit order, hex without leading zeros; tier (L/H) and
/// level_idc; the six constraint bytes in hex, trailing zero bytes omitted.
pub fn hvc1_codecs(v: &probe::VideoInfo) -> Option<String> {
    let profile = v.profile?;
    let level = v.level?;
    let compat = v.compat_flags.unwrap_or(0).reverse_bits();
    let tier = if v.tier_high.unwrap_or(false) {
        'H'
    } else {
        'L'
    };
    let mut s = format!("hvc1.{profile}.{compat:X}.{tier}{level}");
    let c = v.constraint_bytes.unwrap_or([0; 6]);
    let keep = c.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    for b in &c[..keep] {
        let _ = write!(s, ".{b:X}");
    }
    Some(s)
}

/// Output size of an H.264 transcode: the source size with the height capped at `max_height`
/// (aspect kept), both rounded down to even, at least 2×2. An unknown size becomes 1280×720
/// capped likewise (the encoder scales to what the rendition says).
pub fn transcode_size(width: u32, height: u32, max_height: u32) -> (u32, u32) {
    let (w, h) = if width == 0 || height == 0 {
        (1280, 720)
    } else {
        (width, height)
    };
    let max_h = max_height.max(2);
    let (w, h) = if h > max_h {
        let scaled = (u64::from(w) * u64::from(max_h) + u64::from(h) / 2) / u64::from(h);
        (u32::try_from(scaled).unwrap_or(u32::MAX), max_h)
    } else {
        (w, h)
    };
    ((w & !1).max(2), (h & !1).max(2))
}

/// The smallest H.264 level (Table A-1 of ITU-T H.264: frame size in macroblocks and macroblocks
/// per second) that holds `width`×`height` at `fps`, as `level_idc` (30 = 3.0). Never below
/// 3.0, never above 5.2.
pub fn h264_level(width: u32, height: u32, fps: f64) -> u8 {
    const LEVELS: [(u8, u64, u64); 8] = [
        (30, 1_620, 40_500),
        (31, 3_600, 108_000),
        (32, 5_120, 216_000),
        (40, 8_192, 245_760),
        (42, 8_704, 522_240),
        (50, 22_080, 589_824),
        (51, 36_864, 983_040),
        (52, 36_864, 2_073_600),
    ];
    let mbs = u64::from(width.div_ceil(16)) * u64::from(height.div_ceil(16));
    let fps = if fps.is_finite() && fps > 0.0 {
        fps.min(240.0)
    } else {
        30.0
    };
    let per_sec = (mbs as f64 * fps).ceil() as u64;
    LEVELS
        .iter()
        .find(|(_, fs, rate)| mbs <= *fs && per_sec <= *rate)
        .map_or(52, |l| l.0)
}

/// VBV max rate of a transcode: 0.1 bit per pixel per frame, at least 400 kb/s.
pub fn maxrate_kbps(width: u32, height: u32, fps: f64) -> u32 {
    let fps = if fps.is_finite() && fps > 0.0 {
        fps.min(60.0)
    } else {
        30.0
    };
    let kbps = f64::from(width) * f64::from(height) * fps * 0.1 / 1000.0;
    (kbps.round() as u32).max(400)
}

/// A quoted-string-safe name (RFC 8216 §4.2: no `"`, CR or LF), trimmed and bounded. The
/// playlist writer sanitizes every value again; cleaning here keeps names unique as written.
fn clean_name(s: &str) -> String {
    s.chars()
        .map(playlist::quoted_char)
        .take(64)
        .collect::<String>()
        .trim()
        .to_string()
}

fn unique_name(used: &mut Vec<String>, base: String) -> String {
    let mut name = base.clone();
    let mut n = 2;
    while used.contains(&name) {
        name = format!("{base} ({n})");
        n += 1;
    }
    used.push(name.clone());
    name
}

/// ISO 639-2 (B and T) codes of common languages and their ISO 639-1 form.
const ISO639: &[(&str, &str, &str)] = &[
    ("eng", "en", "English"),
    ("fra", "fr", "Français"),
    ("fre", "fr", "Français"),
    ("deu", "de", "Deutsch"),
    ("ger", "de", "Deutsch"),
    ("spa", "es", "Español"),
    ("ita", "it", "Italiano"),
    ("por", "pt", "Português"),
    ("nld", "nl", "Nederlands"),
    ("dut", "nl", "Nederlands"),
    ("rus", "ru", "Русский"),
    ("ukr", "uk", "Українська"),
    ("pol", "pl", "Polski"),
    ("ces", "cs", "Čeština"),
    ("cze", "cs", "Čeština"),
    ("slk", "sk", "Slovenčina"),
    ("slo", "sk", "Slovenčina"),
    ("hun", "hu", "Magyar"),
    ("ron", "ro", "Română"),
    ("rum", "ro", "Română"),
    ("bul", "bg", "Български"),
    ("ell", "el", "Ελληνικά"),
    ("gre", "el", "Ελληνικά"),
    ("tur", "tr", "Türkçe"),
    ("swe", "sv", "Svenska"),
    ("nor", "no", "Norsk"),
    ("nob", "nb", "Norsk bokmål"),
    ("dan", "da", "Dansk"),
    ("fin", "fi", "Suomi"),
    ("isl", "is", "Íslenska"),
    ("ice", "is", "Íslenska"),
    ("est", "et", "Eesti"),
    ("lav", "lv", "Latviešu"),
    ("lit", "lt", "Lietuvių"),
    ("hrv", "hr", "Hrvatski"),
    ("srp", "sr", "Српски"),
    ("slv", "sl", "Slovenščina"),
    ("heb", "he", "עברית"),
    ("ara", "ar", "العربية"),
    ("fas", "fa", "فارسی"),
    ("per", "fa", "فارسی"),
    ("hin", "hi", "हिन्दी"),
    ("ben", "bn", "বাংলা"),
    ("tha", "th", "ไทย"),
    ("vie", "vi", "Tiếng Việt"),
    ("ind", "id", "Bahasa Indonesia"),
    ("msa", "ms", "Bahasa Melayu"),
    ("may", "ms", "Bahasa Melayu"),
    ("zho", "zh", "中文"),
    ("chi", "zh", "中文"),
    ("jpn", "ja", "日本語"),
    ("kor", "ko", "한국어"),
    ("cat", "ca", "Català"),
    ("eus", "eu", "Euskara"),
    ("baq", "eu", "Euskara"),
    ("glg", "gl", "Galego"),
];

/// An RFC 5646 tag for a container language code: ISO 639-2 codes with a two-letter form are
/// mapped to it (RFC 5646 §2.2.1: the shortest ISO 639 code), others kept if they look like a
/// tag (ASCII letters, digits and `-`, at most 35 characters), `und`/empty dropped.
pub fn language_tag(code: &str) -> Option<String> {
    let code = code.trim();
    let lower = code.to_ascii_lowercase();
    if lower.is_empty() || lower == "und" || lower == "zxx" || lower == "mis" {
        return None;
    }
    if let Some((_, two, _)) = ISO639.iter().find(|(three, _, _)| *three == lower) {
        return Some((*two).to_string());
    }
    let valid = code.len() <= 35
        && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && code.as_bytes().first().is_some_and(u8::is_ascii_alphabetic);
    valid.then(|| code.to_string())
}

/// A display name for a language tag (the endonym for common languages, else the tag).
pub fn language_name(tag: &str) -> String {
    let primary = tag.split('-').next().unwrap_or(tag).to_ascii_lowercase();
    ISO639
        .iter()
        .find(|(_, two, _)| *two == primary)
        .map_or_else(|| tag.to_string(), |(_, _, name)| (*name).to_string())
}

/// Bytes a segment of `plan` needs from the source (the sum of its ranges).
fn segment_bytes(seg: &crate::Segment) -> u64 {
    seg.ranges
        .iter()
        .map(|r| r.end.saturating_sub(r.start))
        .sum()
}

/// (peak, average) bit rate of a passed-through variant, from the planned byte ranges: the peak
/// of segment bytes × 8 / EXTINF, and total bytes × 8 / total duration. The ranges hold every
/// track stored in those bytes (all audio tracks interleaved with the video), so the figures
/// bound the variant with any audio rendition from above, as RFC 8216 §4.3.4.2 asks.
pub fn measured_bandwidth(plan: &Plan) -> (u64, u64) {
    let mut peak = 0.0f64;
    let mut total_bytes = 0u64;
    let mut total_secs = 0.0f64;
    for s in &plan.segments {
        let b = segment_bytes(s);
        total_bytes = total_bytes.saturating_add(b);
        total_secs += s.duration;
        // Very short segments (a tail) would exaggerate the peak: count at least 1 s.
        let rate = b as f64 * 8.0 / s.duration.max(1.0);
        peak = peak.max(rate);
    }
    let avg = if total_secs > 0.0 {
        total_bytes as f64 * 8.0 / total_secs
    } else {
        0.0
    };
    (peak.ceil() as u64, avg.ceil() as u64)
}

/// Peak bit rate of `r` alone (b/s), as the master estimates it: a transcode's VBV cap, a copied
/// video's measured peak from `plan` (its span bytes: the interleaved audio included, so never
/// under), an audio rendition's bit rate or its codec's usual ceiling.
pub fn bandwidth_estimate(r: &Rendition, plan: &Plan) -> u64 {
    match (r.kind, r.video) {
        (RenditionKind::Video, Some(VideoOutput::H264 { maxrate_kbps, .. })) => {
            u64::from(maxrate_kbps) * 1000
        }
        (RenditionKind::Video, _) => measured_bandwidth(plan).0.max(1),
        (RenditionKind::Audio, _) => audio_estimate(r),
        (RenditionKind::Subtitle, _) => 1,
    }
}

fn audio_estimate(r: &Rendition) -> u64 {
    match r.audio {
        Some(AudioOutput::Aac { bitrate, .. }) => u64::from(bitrate),
        _ => COPIED_CODECS
            .iter()
            .find(|c| c.codecs == r.codecs)
            .map_or(u64::from(AAC_PASSTHROUGH_ESTIMATE), |c| {
                u64::from(c.peak_bps)
            }),
    }
}

/// A codec that an fMP4 audio rendition carries as the source has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopiedAudio {
    /// RFC 6381 codec string (the CODECS attribute and the sample entry's meaning).
    pub codecs: &'static str,
    /// Human label: "AC-3", "FLAC".
    pub label: &'static str,
    /// Name in an [`Caps`] audio list: `aac`, `ac3`, `eac3`, `flac`, `opus`, `mp3`.
    pub cap: &'static str,
    /// Samples per frame (every frame of the track has it: the audio plan's grid).
    pub frame: u32,
    /// Bit rate assumed for the master's BANDWIDTH (b/s): the codec's usual ceiling.
    pub peak_bps: u32,
}

/// The codecs of [`copied_audio`], with their usual frame (FLAC's and MP3's depend on the
/// stream: see [`copied_audio`]).
const COPIED_CODECS: [CopiedAudio; 6] = [
    CopiedAudio {
        codecs: AAC_LC_CODECS,
        cap: "aac",
        label: "AAC",
        frame: 1024,
        peak_bps: AAC_PASSTHROUGH_ESTIMATE,
    },
    CopiedAudio {
        codecs: "ac-3",
        cap: "ac3",
        label: "AC-3",
        frame: 1536,
        peak_bps: 640_000,
    },
    CopiedAudio {
        codecs: "ec-3",
        cap: "eac3",
        label: "E-AC-3",
        frame: 1536,
        peak_bps: 1_024_000,
    },
    CopiedAudio {
        codecs: "fLaC",
        cap: "flac",
        label: "FLAC",
        frame: 4096,
        peak_bps: 2_400_000,
    },
    CopiedAudio {
        codecs: "Opus",
        cap: "opus",
        label: "Opus",
        frame: 960,
        peak_bps: 512_000,
    },
    CopiedAudio {
        codecs: "mp4a.6B",
        cap: "mp3",
        label: "MP3",
        frame: 1152,
        peak_bps: 320_000,
    },
];

/// What a client says it decodes: which renditions the master (and the DASH manifest) list, and
/// in which order.
///
/// - **Audio:** AAC is always listed (every player decodes it); an original copied in its codec
///   only when the client names it, because players that meet an original they cannot decode do
///   not fall back (VLC 3.0 plays no AC-3 or FLAC from fMP4, Chromium no AC-3: docs/pipeline.md).
///   `audio=ac3,eac3,flac,opus,mp3` (or `all`). Named originals come before AAC.
/// - **Video:** by default every video rendition, H.264 first (browser-safe). `video=h264` lists
///   H.264 only; a list naming `hevc` lists the HEVC copy too and puts copied video first. A list
///   that would leave no video at all is ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caps {
    audio: Vec<&'static str>,
    /// Video codec families (`avc1`, `hvc1`) the client decodes; `None`: not said.
    video: Option<Vec<&'static str>>,
}

/// Video names of [`Caps::parse`] and the codec families they stand for.
const VIDEO_CAPS: [(&str, &str); 2] = [("h264", "avc1"), ("hevc", "hvc1")];

impl Caps {
    /// Every original listed, video as by default.
    pub fn all() -> Caps {
        Caps {
            audio: COPIED_CODECS.iter().map(|c| c.codecs).collect(),
            video: None,
        }
    }

    /// From comma-separated lists: `audio` of [`CopiedAudio::cap`] names (or `all`), `video` of
    /// `h264`, `hevc` (empty: not said). Unknown names are ignored (a client may name codecs this
    /// version does not make).
    pub fn parse(audio: &str, video: &str) -> Caps {
        let names = |list: &str| -> Vec<String> {
            list.split(',')
                .map(|n| n.trim().to_ascii_lowercase())
                .filter(|n| !n.is_empty())
                .collect()
        };
        let audio_names = names(audio);
        let audio = if audio_names.iter().any(|n| n == "all") {
            Caps::all().audio
        } else {
            audio_names
                .iter()
                .filter_map(|n| COPIED_CODECS.iter().find(|c| c.cap == n).map(|c| c.codecs))
                .collect()
        };
        let video_names = names(video);
        let video = (!video_names.is_empty()).then(|| {
            video_names
                .iter()
                .filter_map(|n| {
                    VIDEO_CAPS
                        .iter()
                        .find(|(name, _)| name == n)
                        .map(|(_, f)| *f)
                })
                .collect()
        });
        Caps { audio, video }
    }

    /// Whether the master lists `r` (before the no-video guard of [`Caps::choose`]).
    pub fn lists(&self, r: &Rendition) -> bool {
        match r.kind {
            RenditionKind::Audio => {
                r.codecs == AAC_LC_CODECS || self.audio.iter().any(|c| *c == r.codecs)
            }
            RenditionKind::Video => self.video.as_ref().is_none_or(|v| {
                let family = r.codecs.split('.').next().unwrap_or("");
                let family = if family == "hev1" { "hvc1" } else { family };
                v.contains(&family)
            }),
            RenditionKind::Subtitle => true,
        }
    }

    /// The renditions of `all` to list, in the order to list them: see the type's docs.
    pub fn choose(&self, all: &[Rendition]) -> Vec<Rendition> {
        let any_video = all
            .iter()
            .any(|r| r.kind == RenditionKind::Video && self.lists(r));
        let ignore_video = self.video.is_some() && !any_video;
        let mut out: Vec<Rendition> = all
            .iter()
            .filter(|r| {
                if ignore_video && r.kind == RenditionKind::Video {
                    true
                } else {
                    self.lists(r)
                }
            })
            .cloned()
            .collect();
        let copied_video_first =
            !ignore_video && self.video.as_ref().is_some_and(|v| v.contains(&"hvc1"));
        let originals_first = !self.audio.is_empty();
        // A stable sort keeps the default order within each rank.
        out.sort_by_key(|r| match (r.kind, r.video, r.codecs == AAC_LC_CODECS) {
            (RenditionKind::Video, Some(VideoOutput::Passthrough), _) if copied_video_first => 0,
            (RenditionKind::Video, _, _) => 1,
            (RenditionKind::Audio, _, false) if originals_first => 2,
            (RenditionKind::Audio, _, _) => 3,
            (RenditionKind::Subtitle, _, _) => 4,
        });
        out
    }
}

/// How `t` is copied into fMP4 as it is, when it can be: AAC-LC; AC-3 and E-AC-3 (1536
/// samples a frame: E-AC-3 with 6 blocks, as broadcast and disc streams have); FLAC with a
/// fixed block size (STREAMINFO's minimum = maximum); Opus at 48 kHz (20 ms frames, libopus's
/// and every muxer's default); MP3 (1152 samples, 576 below 32 kHz). The pipeline checks each
/// frame's length against the grid and refuses a segment whose frames differ.
pub fn copied_audio(t: &Track) -> Option<CopiedAudio> {
    let a = t
        .audio
        .as_ref()
        .filter(|a| a.sample_rate > 0 && a.channels > 0)?;
    let of = |codecs: &str| COPIED_CODECS.iter().copied().find(|c| c.codecs == codecs);
    match t.codec {
        Codec::Aac if a.aac_object_type == Some(2) => of(AAC_LC_CODECS),
        Codec::Ac3 => of("ac-3"),
        Codec::Eac3 => of("ec-3"),
        // dOps is made from the OpusHead (Ogg, Matroska and libavformat carry it).
        Codec::Opus if a.sample_rate == 48_000 && t.codec_private.starts_with(b"OpusHead") => {
            of("Opus")
        }
        Codec::Mp3 => of("mp4a.6B").map(|c| CopiedAudio {
            frame: if a.sample_rate >= 32_000 { 1152 } else { 576 },
            ..c
        }),
        Codec::Flac => {
            let info = flac_stream_info(&t.codec_private)?;
            let (min, max) = (
                u16::from_be_bytes([info[0], info[1]]),
                u16::from_be_bytes([info[2], info[3]]),
            );
            (min == max && min >= 16).then_some(())?;
            of("fLaC").map(|c| CopiedAudio {
                frame: u32::from(min),
                ..c
            })
        }
        _ => None,
    }
}

/// The 34-byte FLAC STREAMINFO block body in a track's codec private data: as libavformat
/// gives it (the bare block), or after the `fLaC` marker and a block header (Matroska).
pub fn flac_stream_info(private: &[u8]) -> Option<&[u8]> {
    let body = match private {
        [b'f', b'L', b'a', b'C', _, _, _, _, rest @ ..] => rest,
        rest => rest,
    };
    body.get(..34)
}

/// "mono", "stereo", "5.1", "7.1", else "N ch".
fn layout_name(channels: u16) -> String {
    match channels {
        1 => "mono".to_string(),
        2 => "stereo".to_string(),
        6 => "5.1".to_string(),
        8 => "7.1".to_string(),
        n => format!("{n} ch"),
    }
}

/// The multivariant playlist (RFC 8216 §4.3.4, written by [`playlist::master`]): one
/// `EXT-X-MEDIA TYPE=AUDIO` per audio rendition, grouped by codec (`GROUP-ID="aud"` for AAC,
/// `"aud-ac-3"`, `"aud-fLaC"`… for originals copied in their codec), one `TYPE=SUBTITLES
/// GROUP-ID="sub"` per subtitle rendition, and one `EXT-X-STREAM-INF` per video rendition and
/// audio group (AAC's first), with BANDWIDTH / AVERAGE-BANDWIDTH (measured from `plan` for
/// passthrough, estimated from the max rate and the group's audio bit rate for transcodes),
/// CODECS (video plus the group's audio codec), RESOLUTION, FRAME-RATE and the groups.
/// `uri` gives each rendition's media playlist URI (relative to the master).
///
/// An audio-only source gets one variant per audio group, pointing at that group's default
/// rendition.
pub fn master_playlist(
    index: &MediaIndex,
    renditions: &[Rendition],
    plan: &Plan,
    uri: impl Fn(&Rendition) -> String,
) -> String {
    let source_range = index
        .main()
        .and_then(|t| t.video.as_ref())
        .and_then(|v| v.hdr());
    let uris: Vec<String> = renditions.iter().map(&uri).collect();
    let of_kind = |kind| {
        renditions
            .iter()
            .zip(&uris)
            .filter(move |(r, _)| r.kind == kind)
    };
    let has_subs = of_kind(RenditionKind::Subtitle).next().is_some();
    let (measured_peak, measured_avg) = measured_bandwidth(plan);
    // One audio group per codec, AAC's first.
    let mut groups: Vec<AudioGroup<'_>> = Vec::new();
    for (a, _) in of_kind(RenditionKind::Audio) {
        let id = audio_group(a);
        match groups.iter_mut().find(|g| g.id == id) {
            Some(g) => g.bps = g.bps.max(audio_estimate(a)),
            None => groups.push(AudioGroup {
                id,
                codecs: a.codecs.as_str(),
                bps: audio_estimate(a),
            }),
        }
    }

    if of_kind(RenditionKind::Video).next().is_none() {
        // Audio only: one variant per codec, whose playlist is that group's default audio
        // rendition's (the AAC one first).
        let codecs: Vec<[&str; 1]> = groups.iter().map(|g| [g.codecs]).collect();
        let variants: Vec<playlist::Variant<'_>> = groups
            .iter()
            .zip(&codecs)
            .filter_map(|(g, codecs)| {
                let in_group =
                    || of_kind(RenditionKind::Audio).filter(|(r, _)| audio_group(r) == g.id);
                let (a, a_uri) = in_group()
                    .find(|(r, _)| r.default)
                    .or_else(|| in_group().next())?;
                let (bandwidth, average_bandwidth) = match a.audio {
                    Some(AudioOutput::Aac { bitrate, .. }) => {
                        (u64::from(bitrate), u64::from(bitrate))
                    }
                    _ => (measured_peak.max(1), measured_avg.max(1)),
                };
                Some(playlist::Variant {
                    bandwidth,
                    average_bandwidth,
                    codecs,
                    resolution: None,
                    frame_rate: None,
                    video_range: None,
                    audio: None,
                    subtitles: None,
                    uri: a_uri,
                })
            })
            .collect();
        return playlist::master(&[], &variants);
    }

    let group_ids: Vec<String> = of_kind(RenditionKind::Audio)
        .chain(of_kind(RenditionKind::Subtitle))
        .map(|(r, _)| {
            if r.kind == RenditionKind::Audio {
                audio_group(r)
            } else {
                SUBTITLE_GROUP.to_string()
            }
        })
        .collect();
    let alternatives: Vec<playlist::Alternative<'_>> = of_kind(RenditionKind::Audio)
        .chain(of_kind(RenditionKind::Subtitle))
        .zip(&group_ids)
        .map(|((r, uri), group_id)| {
            let audio = r.kind == RenditionKind::Audio;
            playlist::Alternative {
                media_type: if audio {
                    playlist::MediaType::Audio
                } else {
                    playlist::MediaType::Subtitles
                },
                group_id,
                name: &r.name,
                language: r.language.as_deref(),
                default: r.default,
                autoselect: true,
                forced: r.forced && !audio,
                channels: audio.then_some(r.channels),
                uri,
            }
        })
        .collect();
    // Every video rendition once per audio group (none without audio), AAC's first.
    let pairs: Vec<(&Rendition, &String, Option<&AudioGroup<'_>>)> = of_kind(RenditionKind::Video)
        .flat_map(|(v, uri)| {
            let per_group: Vec<Option<&AudioGroup<'_>>> = if groups.is_empty() {
                vec![None]
            } else {
                groups.iter().map(Some).collect()
            };
            per_group.into_iter().map(move |g| (v, uri, g))
        })
        .collect();
    let codecs: Vec<Vec<&str>> = pairs
        .iter()
        .map(|(v, _, g)| {
            let mut c = vec![v.codecs.as_str()];
            c.extend(g.map(|g| g.codecs));
            c
        })
        .collect();
    let variants: Vec<playlist::Variant<'_>> = pairs
        .iter()
        .zip(&codecs)
        .map(|((v, uri, g), codecs)| {
            let audio_bps = g.map_or(0, |g| g.bps);
            let (bandwidth, average_bandwidth) = match v.video {
                Some(VideoOutput::H264 { maxrate_kbps, .. }) => {
                    let max = u64::from(maxrate_kbps) * 1000;
                    // CRF with a VBV cap: peaks reach the cap, the average sits well below it.
                    (max + audio_bps, max * 2 / 3 + audio_bps)
                }
                _ => (measured_peak.max(1), measured_avg.max(1)),
            };
            playlist::Variant {
                bandwidth,
                average_bandwidth,
                codecs,
                resolution: (v.width > 0 && v.height > 0).then_some((v.width, v.height)),
                frame_rate: v.frame_rate,
                // The copied picture keeps the source's HDR transfer; transcodes are SDR.
                video_range: match v.video {
                    Some(VideoOutput::Passthrough) => source_range,
                    _ => None,
                },
                audio: g.map(|g| g.id.as_str()),
                subtitles: has_subs.then_some(SUBTITLE_GROUP),
                uri,
            }
        })
        .collect();
    playlist::master(&alternatives, &variants)
}

/// An audio group of the master: its GROUP-ID, codec and highest bit-rate estimate.
struct AudioGroup<'a> {
    id: String,
    codecs: &'a str,
    bps: u64,
}

/// GROUP-ID of an audio rendition: [`AUDIO_GROUP`] for AAC, `aud-{codecs}` for an original
/// copied in its codec (a group per codec, so a variant's CODECS names what its audio is).
fn audio_group(r: &Rendition) -> String {
    if r.codecs == AAC_LC_CODECS {
        AUDIO_GROUP.to_string()
    } else {
        format!("{AUDIO_GROUP}-{}", r.codecs)
    }
}

/// GROUP-ID of the audio renditions in the master.
const AUDIO_GROUP: &str = "aud";
/// GROUP-ID of the subtitle renditions in the master.
const SUBTITLE_GROUP: &str = "sub";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{plan, PlanOptions};
    use probe::{AudioInfo, Container, VideoInfo};

    fn fixture(name: &str) -> MediaIndex {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/out")
            .join(name);
        let data = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run fixtures/make.sh)", path.display()));
        probe::probe_bytes(&data).unwrap()
    }

    fn ids(r: &[Rendition]) -> Vec<&str> {
        r.iter().map(|r| r.id.as_str()).collect()
    }

    fn master_of(name: &str) -> (MediaIndex, Vec<Rendition>, String) {
        let ix = fixture(name);
        let r = renditions(&ix, &RenditionOptions::default());
        let p = plan(&ix, &PlanOptions::default())
            .or_else(|_| {
                plan(
                    &ix,
                    &PlanOptions {
                        mode: crate::VideoMode::Transcode,
                        ..PlanOptions::default()
                    },
                )
            })
            .unwrap();
        let m = master_playlist(&ix, &r, &p, |r| format!("{}/index.m3u8", r.id));
        (ix, r, m)
    }

    /// Parses the master with m3u8-rs (a parser we did not write).
    fn parse(m: &str) -> m3u8_rs::MasterPlaylist {
        match m3u8_rs::parse_playlist_res(m.as_bytes()) {
            Ok(m3u8_rs::Playlist::MasterPlaylist(p)) => p,
            other => panic!("not a master playlist: {other:?}\n{m}"),
        }
    }

    #[test]
    fn h264_aac_mp4_is_passthrough() {
        let (_, r, m) = master_of("h264_aac_faststart.mp4");
        assert_eq!(ids(&r), vec!["v1", "a2"]);
        // ffprobe: High profile, level 1.3 (13), 320x240, 25 fps; AAC-LC mono.
        assert_eq!(r[0].codecs, "avc1.64000d");
        assert_eq!(r[0].video, Some(VideoOutput::Passthrough));
        assert_eq!(r[1].audio, Some(AudioOutput::Passthrough));
        assert_eq!(r[1].channels, 1);
        assert!(r[1].default);
        let p = parse(&m);
        assert_eq!(p.variants.len(), 1);
        let v = &p.variants[0];
        assert_eq!(v.uri, "v1/index.m3u8");
        assert_eq!(v.codecs.as_deref(), Some("avc1.64000d,mp4a.40.2"));
        assert_eq!(
            v.resolution,
            Some(m3u8_rs::Resolution {
                width: 320,
                height: 240
            })
        );
        assert_eq!(v.frame_rate, Some(25.0));
        assert_eq!(v.audio.as_deref(), Some("aud"));
        assert!(v.subtitles.is_none());
        let bw = v.bandwidth;
        let avg = v.average_bandwidth.unwrap();
        // The file is 2.9 MB over 60 s: ~387 kb/s on average.
        let file_rate = 2_903_787.0 * 8.0 / 60.0;
        assert!(
            (avg as f64) > file_rate * 0.9 && (avg as f64) < file_rate * 1.1,
            "{avg}"
        );
        assert!(bw >= avg, "{bw} < {avg}");
        assert_eq!(p.alternatives.len(), 1);
        assert!(m.contains("#EXT-X-INDEPENDENT-SEGMENTS"));
        assert!(m.contains("#EXT-X-VERSION:7"));
        assert!(m.contains("FRAME-RATE=25.000"));
    }

    #[test]
    fn hevc_gets_h264_first_and_ac3_is_transcoded() {
        let (_, r, m) = master_of("hevc_ac3.mkv");
        assert_eq!(ids(&r), vec!["v1-h264", "v1", "a2", "a2-51", "a2-copy"]);
        assert_eq!(r[1].codecs, "hvc1.1.6.L60.90");
        assert_eq!(
            r[0].video,
            Some(VideoOutput::H264 {
                width: 320,
                height: 240,
                crf: 23,
                maxrate_kbps: 400
            })
        );
        assert_eq!(r[0].codecs, "avc1.64001e");
        assert_eq!(
            r[2].audio,
            Some(AudioOutput::Aac {
                sample_rate: 48000,
                channels: 2,
                bitrate: 128000
            })
        );
        assert_eq!(r[2].channels, 2);
        assert!(r[2].default, "the first audio is default when none is");
        // An AAC 5.1 rendition beside it (the source is 5.1), not default.
        assert_eq!(
            r[3].audio,
            Some(AudioOutput::Aac {
                sample_rate: 48000,
                channels: 6,
                bitrate: 384_000
            })
        );
        assert_eq!((r[3].channels, r[3].default), (6, false));
        assert_eq!(r[3].name, format!("{} (AAC 5.1)", r[2].name));
        // The AC-3 original, in its own group.
        assert_eq!(r[4].audio, Some(AudioOutput::Passthrough));
        assert_eq!(r[4].codecs, "ac-3");
        assert_eq!((r[4].channels, r[4].default), (6, true));
        assert_eq!(r[4].name, format!("{} (AC-3 5.1)", r[2].name));
        let p = parse(&m);
        // Each video once per audio group, AAC's first.
        assert_eq!(p.variants.len(), 4);
        assert_eq!(p.variants[0].uri, "v1-h264/index.m3u8");
        assert_eq!(
            p.variants[0].codecs.as_deref(),
            Some("avc1.64001e,mp4a.40.2")
        );
        assert_eq!(p.variants[0].audio.as_deref(), Some("aud"));
        // The group's highest audio estimate: the 5.1 rendition's.
        assert_eq!(p.variants[0].bandwidth, 400_000 + 384_000);
        assert_eq!(p.variants[1].codecs.as_deref(), Some("avc1.64001e,ac-3"));
        assert_eq!(p.variants[1].audio.as_deref(), Some("aud-ac-3"));
        assert_eq!(p.variants[1].bandwidth, 400_000 + 640_000);
        assert_eq!(
            p.variants[2].codecs.as_deref(),
            Some("hvc1.1.6.L60.90,mp4a.40.2")
        );
        let groups: Vec<(&str, &str)> = p
            .alternatives
            .iter()
            .map(|a| (a.group_id.as_str(), a.uri.as_deref().unwrap_or("")))
            .collect();
        assert_eq!(
            groups,
            vec![
                ("aud", "a2/index.m3u8"),
                ("aud", "a2-51/index.m3u8"),
                ("aud-ac-3", "a2-copy/index.m3u8")
            ]
        );
        let defaults: Vec<bool> = p.alternatives.iter().map(|a| a.default).collect();
        assert_eq!(defaults, vec![true, false, true], "one default per group");
        // Without the H.264 option HEVC stays alone.
        let ix = fixture("hevc_ac3.mkv");
        let only = renditions(
            &ix,
            &RenditionOptions {
                h264_for_hevc: false,
                ..RenditionOptions::default()
            },
        );
        assert_eq!(ids(&only), vec!["v1", "a2", "a2-51", "a2-copy"]);
    }

    #[test]
    fn hevc_codec_string_matches_ffprobe_profile_and_level() {
        // ffprobe says: profile Main, level 60 (= level_idc). Main → "1", tier L, level 60.
        let ix = fixture("hevc_ac3.mkv");
        let v = ix.main().unwrap().video.clone().unwrap();
        assert_eq!(v.profile, Some(1));
        assert_eq!(v.level, Some(60));
        let s = hvc1_codecs(&v).unwrap();
        assert!(s.starts_with("hvc1.1."), "{s}");
        assert!(s.contains(".L60"), "{s}");
    }

    #[test]
    fn multi_audio_and_subtitles() {
        let (_, r, m) = master_of("multi_audio_subs.mkv");
        assert_eq!(ids(&r), vec!["v1", "a2", "a3", "s4"]);
        assert_eq!(r[1].name, "English");
        assert_eq!(r[1].language.as_deref(), Some("en"));
        assert!(r[1].default);
        assert_eq!(r[2].name, "Francais");
        assert_eq!(r[2].language.as_deref(), Some("fr"));
        assert!(!r[2].default);
        assert_eq!(r[3].kind, RenditionKind::Subtitle);
        assert_eq!(r[3].language.as_deref(), Some("en"));
        assert_eq!(r[3].name, "English");
        let p = parse(&m);
        let audio: Vec<_> = p
            .alternatives
            .iter()
            .filter(|a| a.media_type == m3u8_rs::AlternativeMediaType::Audio)
            .collect();
        assert_eq!(audio.len(), 2);
        assert_eq!(audio.iter().filter(|a| a.default).count(), 1);
        assert!(audio.iter().all(|a| a.autoselect && a.group_id == "aud"));
        assert_eq!(audio[0].uri.as_deref(), Some("a2/index.m3u8"));
        assert_eq!(audio[0].channels.as_deref(), Some("1"));
        let subs: Vec<_> = p
            .alternatives
            .iter()
            .filter(|a| a.media_type == m3u8_rs::AlternativeMediaType::Subtitles)
            .collect();
        assert_eq!(subs.len(), 1);
        assert_eq!(subs[0].group_id, "sub");
        assert_eq!(subs[0].uri.as_deref(), Some("s4/index.m3u8"));
        assert_eq!(p.variants[0].subtitles.as_deref(), Some("sub"));
    }

    #[test]
    fn caps_choose_what_is_listed_and_its_order() {
        let ix = fixture("hevc_ac3.mkv");
        let r = renditions(&ix, &RenditionOptions::default());
        let listed =
            |caps: &Caps| -> Vec<String> { caps.choose(&r).into_iter().map(|x| x.id).collect() };
        assert_eq!(
            listed(&Caps::default()),
            vec!["v1-h264", "v1", "a2", "a2-51"]
        );
        assert_eq!(
            listed(&Caps::parse("flac,opus", "")),
            vec!["v1-h264", "v1", "a2", "a2-51"]
        );
        // Originals named: listed, before AAC.
        let all = vec!["v1-h264", "v1", "a2-copy", "a2", "a2-51"];
        assert_eq!(listed(&Caps::parse("eac3, AC3,dts", "")), all);
        assert_eq!(listed(&Caps::parse("all", "")), all);
        assert_eq!(listed(&Caps::all()), all);
        // An H.264/AAC-only client: no HEVC, no AC-3.
        assert_eq!(
            listed(&Caps::parse("aac", "h264")),
            vec!["v1-h264", "a2", "a2-51"]
        );
        // An HEVC/E-AC-3/AC-3 client: the copies first.
        assert_eq!(
            listed(&Caps::parse("eac3,ac3", "hevc,h264")),
            vec!["v1", "v1-h264", "a2-copy", "a2", "a2-51"]
        );
        let m = master_playlist(
            &ix,
            &Caps::parse("eac3,ac3", "hevc,h264").choose(&r),
            &plan(&ix, &PlanOptions::default()).unwrap(),
            |r| format!("{}/index.m3u8", r.id),
        );
        let p = parse(&m);
        assert_eq!(
            p.variants[0].codecs.as_deref(),
            Some("hvc1.1.6.L60.90,ac-3"),
            "{m}"
        );
        // A list that would leave no video is ignored.
        assert_eq!(
            listed(&Caps::parse("", "av1")),
            vec!["v1-h264", "v1", "a2", "a2-51"]
        );
    }

    #[test]
    fn vp9_opus_is_transcoded() {
        let (_, r, m) = master_of("vp9_opus.webm");
        assert_eq!(ids(&r), vec!["v1-h264", "a2", "a2-copy"]);
        assert!(matches!(r[1].audio, Some(AudioOutput::Aac { .. })));
        assert_eq!(r[2].codecs, "Opus");
        let p = parse(&m);
        assert_eq!(p.variants.len(), 2);
        assert_eq!(p.variants[1].codecs.as_deref(), Some("avc1.64001e,Opus"));
    }

    #[test]
    fn ts_uses_pids() {
        let (ix, r, _) = master_of("h264_aac.ts");
        let v = ix.main().unwrap().id;
        assert_eq!(r[0].id, format!("v{v}"));
        assert_eq!(r[0].codecs, "avc1.64000d");
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn audio_only_has_one_variant() {
        let (_, r, m) = master_of("aac_only.m4a");
        assert_eq!(ids(&r), vec!["a1"]);
        let p = parse(&m);
        assert_eq!(p.variants.len(), 1);
        assert_eq!(p.variants[0].uri, "a1/index.m3u8");
        assert_eq!(p.variants[0].codecs.as_deref(), Some("mp4a.40.2"));
        assert!(p.alternatives.is_empty());
    }

    fn synthetic(video: VideoInfo, codec: Codec) -> MediaIndex {
        let track = |id, kind, codec, video, audio| Track {
            id,
            kind,
            codec,
            timescale: 1000,
            duration: None,
            language: None,
            title: None,
            default: false,
            forced: false,
            codec_private: vec![],
            video,
            audio,
            start: None,
            default_duration_ns: None,
            codec_delay_ns: None,
        };
        MediaIndex {
            container: Container::Matroska,
            file_size: 1000,
            timescale: 1000,
            start: 0,
            duration: 10_000,
            tracks: vec![
                track(1, TrackKind::Video, codec, Some(video), None),
                track(
                    2,
                    TrackKind::Audio,
                    Codec::Aac,
                    None,
                    Some(AudioInfo {
                        sample_rate: 44100,
                        channels: 2,
                        aac_object_type: Some(5),
                        bits_per_sample: None,
                        bit_rate: Default::default(),
                        block_align: Default::default(),
                    }),
                ),
            ],
            main_track: Some(0),
            keyframes: vec![],
            spans: vec![],
            interleave: 0,
            moov: None,
            format: Default::default(),
        }
    }

    #[test]
    fn the_ladder_has_the_rungs_below_the_top_rendition() {
        let info = |width, height| VideoInfo {
            width,
            height,
            profile: Some(100),
            constraints: Some(0),
            level: Some(51),
            bit_depth: Some(8),
            chroma_format: Some(1),
            frame_rate: Some(probe::Rational { num: 24, den: 1 }),
            ..VideoInfo::default()
        };
        let video = |r: &[Rendition]| -> Vec<(String, u32, u32)> {
            r.iter()
                .filter(|r| r.kind == RenditionKind::Video)
                .map(|r| (r.id.clone(), r.width, r.height))
                .collect()
        };
        let v = |id: &str, w, h| (id.to_string(), w, h);
        // 4K H.264 is copied; the rungs are transcodes from 1080p down.
        let r = renditions(
            &synthetic(info(3840, 2160), Codec::H264),
            &Default::default(),
        );
        assert_eq!(
            video(&r),
            vec![
                v("v1", 3840, 2160),
                v("v1-1080p", 1920, 1080),
                v("v1-720p", 1280, 720),
                v("v1-480p", 852, 480),
                v("v1-360p", 640, 360)
            ]
        );
        assert!(r[1..5].iter().all(|r| !r.default
            && matches!(r.video, Some(VideoOutput::H264 { .. }))
            && r.codecs.starts_with("avc1.6400")));
        assert_eq!(r[2].name, "720p H.264");
        // HEVC 1080p: the H.264 transcode at 1080p is the top; rungs below it.
        let mut hevc = info(1920, 1080);
        hevc.profile = Some(1);
        let r = renditions(&synthetic(hevc, Codec::Hevc), &Default::default());
        assert_eq!(
            video(&r),
            vec![
                v("v1-h264", 1920, 1080),
                v("v1", 1920, 1080),
                v("v1-720p", 1280, 720),
                v("v1-480p", 852, 480),
                v("v1-360p", 640, 360)
            ]
        );
        // A portrait phone video: the rung is the short side, the picture upright.
        let r = renditions(
            &synthetic(info(1080, 1920), Codec::H264),
            &Default::default(),
        );
        assert_eq!(
            video(&r),
            vec![
                v("v1", 1080, 1920),
                v("v1-720p", 720, 1280),
                v("v1-480p", 480, 852),
                v("v1-360p", 360, 640)
            ]
        );
        // The cap applies to rungs too; 360p and below have none; `ladder: false` none at all.
        let capped = RenditionOptions {
            max_height: 480,
            ..Default::default()
        };
        let r = renditions(&synthetic(info(1920, 1080), Codec::H264), &capped);
        assert_eq!(
            video(&r),
            vec![
                v("v1", 1920, 1080),
                v("v1-480p", 852, 480),
                v("v1-360p", 640, 360)
            ]
        );
        let r = renditions(&synthetic(info(640, 360), Codec::H264), &Default::default());
        assert_eq!(video(&r), vec![v("v1", 640, 360)]);
        let off = RenditionOptions {
            ladder: false,
            ..Default::default()
        };
        let r = renditions(&synthetic(info(1920, 1080), Codec::H264), &off);
        assert_eq!(video(&r), vec![v("v1", 1920, 1080)]);
    }

    #[test]
    fn unplayable_video_is_transcoded_and_capped() {
        // The top renditions alone (the ladder below them has its own test).
        let no_ladder = RenditionOptions {
            ladder: false,
            ..Default::default()
        };
        let base = VideoInfo {
            width: 3840,
            height: 2160,
            profile: Some(100),
            constraints: Some(0),
            level: Some(51),
            bit_depth: Some(8),
            chroma_format: Some(1),
            frame_rate: Some(probe::Rational { num: 24, den: 1 }),
            ..VideoInfo::default()
        };
        // 4K H.264 8-bit passes through (no cap on passthrough).
        let r = renditions(&synthetic(base.clone(), Codec::H264), &no_ladder);
        assert_eq!(ids(&r), vec!["v1", "a2"]);
        // HE-AAC (object type 5) is transcoded.
        assert!(matches!(r[1].audio, Some(AudioOutput::Aac { .. })));
        // 10-bit H.264: transcode, capped to 1080p.
        let ten = VideoInfo {
            bit_depth: Some(10),
            ..base.clone()
        };
        let r = renditions(&synthetic(ten, Codec::H264), &no_ladder);
        assert_eq!(ids(&r), vec!["v1-h264", "a2"]);
        assert_eq!((r[0].width, r[0].height), (1920, 1080));
        assert_eq!(r[0].codecs, "avc1.640028");
        // HEVC Main 10 4:2:0 (HDR10 here): the H.264 transcode first, and the copy, named
        // with its range; the master says VIDEO-RANGE=PQ on the copy only.
        let main10 = VideoInfo {
            profile: Some(2),
            bit_depth: Some(10),
            transfer: Some(16),
            ..base.clone()
        };
        let index = synthetic(main10, Codec::Hevc);
        let r = renditions(&index, &no_ladder);
        assert_eq!(ids(&r), vec!["v1-h264", "v1", "a2"]);
        assert_eq!(r[1].name, "2160p HEVC HDR10 (original)");
        assert!(r[1].codecs.starts_with("hvc1.2."), "{}", r[1].codecs);
        // The fixtures, probed: the transfer from the HEVC SPS's VUI (the MP4 has no `colr`, the
        // Matroska no TransferCharacteristics).
        for (name, range) in [("hdr10_pq.mp4", "PQ"), ("hlg.mkv", "HLG")] {
            let (ix, r, m) = master_of(name);
            assert_eq!(
                ix.main()
                    .and_then(|t| t.video.as_ref())
                    .and_then(|v| v.hdr()),
                Some(range)
            );
            assert_eq!(ids(&r)[..2], ["v1-h264", "v1"], "{name}");
            let lines: Vec<&str> = m.lines().collect();
            let variant = |uri: &str| {
                let at = lines.iter().position(|l| *l == uri).unwrap();
                lines[at - 1]
            };
            assert!(
                variant("v1/index.m3u8").contains(&format!(",VIDEO-RANGE={range}")),
                "{m}"
            );
            assert!(
                !variant("v1-h264/index.m3u8").contains("VIDEO-RANGE"),
                "{m}"
            );
        }
        // 4:4:4, odd sizes, HEVC 12-bit, AV1: transcode only.
        for (v, c) in [
            (
                VideoInfo {
                    chroma_format: Some(3),
                    ..base.clone()
                },
                Codec::H264,
            ),
            (
                VideoInfo {
                    width: 641,
                    height: 361,
                    ..base.clone()
                },
                Codec::H264,
            ),
            (
                VideoInfo {
                    profile: Some(4),
                    bit_depth: Some(12),
                    ..base.clone()
                },
                Codec::Hevc,
            ),
            (base.clone(), Codec::Av1),
            (base.clone(), Codec::Mpeg2Video),
        ] {
            let r = renditions(&synthetic(v, c.clone()), &no_ladder);
            assert_eq!(ids(&r), vec!["v1-h264", "a2"], "{c:?}");
            assert_eq!(r[0].width % 2, 0);
            assert_eq!(r[0].height % 2, 0);
        }
    }

    #[test]
    fn sizes_and_levels() {
        assert_eq!(transcode_size(641, 361, 1080), (640, 360));
        assert_eq!(transcode_size(1440, 1080, 720), (960, 720));
        assert_eq!(transcode_size(0, 0, 1080), (1280, 720));
        assert_eq!(transcode_size(1, 1, 1080), (2, 2));
        assert_eq!(h264_level(320, 240, 25.0), 30);
        assert_eq!(h264_level(1280, 720, 30.0), 31);
        assert_eq!(h264_level(1280, 720, 60.0), 32);
        assert_eq!(h264_level(1920, 1080, 30.0), 40);
        assert_eq!(h264_level(1920, 1080, 60.0), 42);
        assert_eq!(maxrate_kbps(1920, 1080, 30.0), 6221);
    }

    #[test]
    fn languages_and_names() {
        assert_eq!(language_tag("eng").as_deref(), Some("en"));
        assert_eq!(language_tag("ger").as_deref(), Some("de"));
        assert_eq!(language_tag("und"), None);
        assert_eq!(language_tag("pt-BR").as_deref(), Some("pt-BR"));
        assert_eq!(language_tag("x\"y"), None);
        assert_eq!(language_name("fr"), "Français");
        let mut used = vec![];
        assert_eq!(unique_name(&mut used, "A".into()), "A");
        assert_eq!(unique_name(&mut used, "A".into()), "A (2)");
        assert_eq!(clean_name("a\"b\nc"), "a'b c");
    }

    #[test]
    fn hostile_names_cannot_break_the_playlist() {
        let mut ix = fixture("multi_audio_subs.mkv");
        ix.tracks[1].title = Some("Evil\",URI=\"http://x\"\n#EXT-X-ENDLIST".into());
        ix.tracks[2].title = ix.tracks[1].title.clone();
        let r = renditions(&ix, &RenditionOptions::default());
        let p = plan(&ix, &PlanOptions::default()).unwrap();
        let m = master_playlist(&ix, &r, &p, |r| format!("{}/index.m3u8", r.id));
        let parsed = parse(&m);
        assert_eq!(parsed.alternatives.len(), 3);
        assert!(!m.contains("http://x\""));
        assert_ne!(r[1].name, r[2].name);
    }
}
