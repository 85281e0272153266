//! # pipeline — segment jobs (not built yet)
//!
//! Will own the fMP4 init/media writer (mp4-atom), remux, FFmpeg transcode, audio tiling, WebVTT
//! and thumbnails, and `OUTPUT_VERSION`; the only crate that links FFmpeg. See the issue
//! "Segment pipeline". Nothing is implemented here yet: the crate exists so the workspace has its
//! final shape and dependency direction.

/// Version of the bytes this crate writes; goes into cache keys and ETags.
pub const OUTPUT_VERSION: u32 = 0;

pub mod av;
