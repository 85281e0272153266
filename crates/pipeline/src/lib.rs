//! # pipeline — init, segments, WebVTT and thumbnails, each made on its own
//!
//! Given a source's [`probe::MediaIndex`], its [`plan::Plan`] and renditions, [`Media`] makes
//! any output — init, media segment `n` of any rendition, a WebVTT segment, a fragment of the
//! continuous stream, a thumbnail — from just the source bytes that output needs, so any
//! instance can make any segment in any order and get the same bytes.
//!
//! - [`media`]: the jobs (what bytes each needs, and making it);
//! - [`timing`]: the one rule that gives every sample its decode time, duration and
//!   composition offset, so `tfdt(n+1) = tfdt(n) + Σ durations(n)` exactly;
//! - [`av`]: FFmpeg (decode, scale, x264, AAC encode on the absolute frame grid, JPEG) — the
//!   only module with `unsafe`;
//! - [`vtt`]: subtitles as WebVTT with a correct `X-TIMESTAMP-MAP`.
//! - [`download`]: the layout of `download.mp4` (a progressive MP4 of an MP4 source's copied
//!   tracks, `moov` first) from the sample tables alone.
//!
//! The fMP4 boxes are written by the `fmp4` crate, samples are read by the `demux` crate.
//! [`OUTPUT_VERSION`] goes into every cache key and ETag: bump it whenever the bytes made for the
//! same inputs change.

pub mod av;
pub mod cancel;
pub mod download;
pub mod io;
pub mod media;
pub mod sidecar;
pub mod timing;
pub mod vtt;

pub use cancel::Cancel;
pub use media::{Fetched, Media, MediaOptions, Output};
pub use sidecar::Sidecar;

/// Version of the bytes this crate writes; goes into cache keys and ETags.
///
/// 3: one output timeline (`plan::Timeline`): every rendition presents from 0 (the first video
/// frame), video on its frame cadence (Matroska 29.97 fps at timescale 30000), WebVTT cue
/// times and thumbnails on the same timeline.
/// 4: transcoded video tells x264 the source's frame rate (SPS timing and rate control were
/// per timescale tick: "1000 fps" for a millisecond clock).
/// 5: transcodes and thumbnails of HDR sources (PQ, HLG) are tone-mapped to SDR BT.709.
pub const OUTPUT_VERSION: u32 = 5;

/// Why an output could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The window holds nothing to write.
    #[error("nothing to write: {0}")]
    Empty(&'static str),
    /// Timestamps that cannot be written.
    #[error("timing: {0}")]
    Timing(&'static str),
    /// The rendition does not exist (or has no such output).
    #[error("no rendition {0:?}")]
    NoSuchRendition(String),
    /// The segment index is beyond the plan.
    #[error("no segment {0}")]
    NoSuchSegment(u32),
    /// Something this source has that hlsgate cannot make.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The plan could not be made.
    #[error(transparent)]
    Plan(#[from] plan::PlanError),
    /// The source bytes could not be demuxed.
    #[error(transparent)]
    Demux(#[from] demux::DemuxError),
    /// Writing fMP4 failed.
    #[error(transparent)]
    Fmp4(#[from] fmp4::Fmp4Error),
    /// FFmpeg failed.
    #[error(transparent)]
    Av(#[from] av::AvError),
}
