//! # av — the FFmpeg glue (ffmpeg-next over the system FFmpeg 5.1)
//!
//! The only module of the workspace allowed `unsafe` (each block carries a `// SAFETY:` line);
//! everything else uses ffmpeg-next's safe API. Every function here is blocking CPU work: callers
//! run it on a blocking pool. Input is already-demuxed compressed packets ([`Packet`]) with the
//! stream's parameters ([`StreamParams`]); output is raw samples for the fMP4 writer.
//!
//! - [`transcode_video`]: decode → (deinterlace) → scale/pad to yuv420p → libx264 → avcC + samples.
//! - [`transcode_audio`]: decode → downmix → resample → place on the absolute sample grid →
//!   `aac` with pre-roll → exactly the AAC frames of the requested slice of the 1024-sample grid.
//! - [`thumbnail`]: the frame presented at a time, scaled, as JPEG; [`sheet`]: keyframes tiled
//!   into one JPEG (trick play).
//! - [`check_ffmpeg`]: the readiness check.
#![allow(unsafe_code)]

mod audio;
mod codec;
mod error;
pub mod lavf;
pub mod limits;
pub mod nal;
mod thumb;
mod video;

pub use audio::{transcode_audio, AudioEncode, AudioOutput, POSTROLL_FRAMES, PREROLL_FRAMES};
pub use error::AvError;
pub use thumb::{sheet, thumbnail, SheetLayout, MAX_SHEET_TILES};

pub use video::{
    transcode_video, transcode_video_cancellable, video_config, VideoEncode, VideoOutput,
};

use ffmpeg_next as ff;

/// One compressed packet of the source stream, as the demuxer gives it.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// The packet's bytes. H.264/HEVC: 4-byte length-prefixed NAL units (avcC/hvcC form).
    pub data: &'a [u8],
    /// Presentation time in [`StreamParams::timescale`] ticks.
    pub pts: i64,
    /// Decode time, when the container says.
    pub dts: Option<i64>,
    /// A random-access point.
    pub keyframe: bool,
}

/// What the decoder needs to know about the source stream.
#[derive(Debug, Clone)]
pub struct StreamParams {
    /// The codec.
    pub codec: probe::Codec,
    /// Codec configuration as the container stores it (avcC, hvcC, AAC ASC, Matroska
    /// CodecPrivate); empty when there is none.
    pub extradata: Vec<u8>,
    /// Ticks per second of [`Packet::pts`] / [`Packet::dts`].
    pub timescale: u32,
    /// Video: coded width (a hint; the decoder's own value wins).
    pub width: u32,
    /// Video: coded height (a hint).
    pub height: u32,
    /// Audio: sample rate in Hz (a hint; the decoded frames' rate wins).
    pub sample_rate: u32,
    /// Audio: channel count (a hint).
    pub channels: u16,
    /// Audio: bytes per coded block, for the decoders that need it (WMA, ADPCM); 0 = unknown.
    pub block_align: u32,
    /// Audio: coded bit rate, for the decoders that need it (WMA); 0 = unknown.
    pub bit_rate: u64,
    /// Video: clockwise display rotation in degrees (0, 90, 180, 270; the container's matrix).
    /// Every output that renders pictures (transcodes, thumbnails) turns them upright.
    pub rotation: u32,
}

/// One encoded access unit / audio frame.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EncodedSample {
    /// The sample's bytes (H.264: 4-byte length-prefixed NAL units).
    pub data: Vec<u8>,
    /// Presentation time, in the input timescale.
    pub pts: i64,
    /// Decode time, in the input timescale; non-decreasing across the samples.
    pub dts: i64,
    /// A sync sample (IDR).
    pub keyframe: bool,
}

/// Initialises FFmpeg (idempotent) and quiets its own logging to fatal errors: hostile input
/// must not flood stderr; what went wrong comes back as an [`AvError`].
pub(crate) fn init() -> Result<(), AvError> {
    ff::init().map_err(AvError::Init)?;
    ff::util::log::set_level(ff::util::log::Level::Fatal);
    Ok(())
}

/// Initialises FFmpeg and checks that every codec the pipeline uses is there: the libx264, aac
/// and mjpeg encoders and the h264 and hevc decoders. Returns a version line for `/readyz`.
pub fn check_ffmpeg() -> Result<String, AvError> {
    init()?;
    for name in ["libx264", "aac", "mjpeg"] {
        if ff::encoder::find_by_name(name).is_none() {
            return Err(AvError::MissingCodec {
                kind: "encoder",
                name: name.into(),
            });
        }
    }
    for (id, name) in [(ff::codec::Id::H264, "h264"), (ff::codec::Id::HEVC, "hevc")] {
        if ff::decoder::find(id).is_none() {
            return Err(AvError::MissingCodec {
                kind: "decoder",
                name: name.into(),
            });
        }
    }
    // SAFETY: av_version_info returns a pointer to a static NUL-terminated string (never null
    // in FFmpeg ≥ 2.x); we copy it out immediately.
    let version = unsafe {
        let p = ff::ffi::av_version_info();
        if p.is_null() {
            String::from("unknown")
        } else {
            std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    };
    let v = ff::codec::version();
    Ok(format!(
        "FFmpeg {version} (libavcodec {}.{}.{}; libx264, aac, mjpeg)",
        v >> 16,
        (v >> 8) & 0xff,
        v & 0xff
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn check_ffmpeg_reports_a_version() {
        let line = super::check_ffmpeg().unwrap();
        assert!(
            line.starts_with("FFmpeg ") && line.contains("libavcodec "),
            "{line}"
        );
        eprintln!("{line}");
    }
}
