//! The writer's typed error.

/// Why an init or media segment could not be written. Every variant names the track (or box)
/// at fault; none of them is a panic.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Fmp4Error {
    /// `init_segment` was given no track.
    #[error("init segment: no tracks")]
    NoTracks,
    /// More tracks than [`crate::limits::MAX_TRACKS`].
    #[error("init segment: {count} tracks, at most {limit}")]
    TooManyTracks {
        /// Tracks given.
        count: usize,
        /// The cap.
        limit: usize,
    },
    /// A track_ID of 0 (track IDs are 1-based) or `u32::MAX` (no room for next_track_ID).
    #[error("track {0}: invalid track_ID")]
    InvalidTrackId(u32),
    /// Two tracks (or two runs of one segment) with the same track_ID.
    #[error("track {0}: given twice")]
    DuplicateTrack(u32),
    /// A timescale of 0.
    #[error("track {0}: timescale 0")]
    ZeroTimescale(u32),
    /// A language that is not three lowercase ASCII letters.
    #[error("track {track}: language {language:?} is not an ISO 639-2/T code (three letters a-z)")]
    BadLanguage {
        /// The track.
        track: u32,
        /// The language given.
        language: String,
    },
    /// A rotation other than 0, 90, 180 or 270.
    #[error("track {track}: rotation {rotation} is not 0, 90, 180 or 270")]
    BadRotation {
        /// The track.
        track: u32,
        /// The rotation given.
        rotation: u16,
    },
    /// A video size of 0 or above [`crate::limits::MAX_DIMENSION`].
    #[error("track {track}: video size {width}x{height} out of range")]
    BadDimensions {
        /// The track.
        track: u32,
        /// Width given.
        width: u32,
        /// Height given.
        height: u32,
    },
    /// An audio track with a sample rate or channel count of 0.
    #[error("track {track}: audio needs a sample rate and channels (got {sample_rate} Hz, {channels} ch)")]
    BadAudio {
        /// The track.
        track: u32,
        /// Sample rate given.
        sample_rate: u32,
        /// Channels given.
        channels: u16,
    },
    /// A codec configuration record that is empty, too large or of an unknown version.
    #[error("track {track}: bad codec configuration: {reason}")]
    BadCodecConfig {
        /// The track.
        track: u32,
        /// What is wrong.
        reason: &'static str,
    },
    /// `media_segment` was given no run.
    #[error("media segment: no runs")]
    NoRuns,
    /// More runs than [`crate::limits::MAX_RUNS`].
    #[error("media segment: {count} runs, at most {limit}")]
    TooManyRuns {
        /// Runs given.
        count: usize,
        /// The cap.
        limit: usize,
    },
    /// A run without samples.
    #[error("track {0}: empty run")]
    EmptyRun(u32),
    /// A run for a track that the init segment does not have.
    #[error("track {0}: unknown track")]
    UnknownTrack(u32),
    /// More samples in one run than [`crate::limits::MAX_SAMPLES_PER_RUN`].
    #[error("track {track}: {count} samples in one run, at most {limit}")]
    TooManySamples {
        /// The track.
        track: u32,
        /// Samples given.
        count: usize,
        /// The cap.
        limit: usize,
    },
    /// The media data does not fit a 32-bit `mdat` / `trun` data_offset.
    #[error(
        "media segment: {bytes} bytes of sample data do not fit a 32-bit mdat and data_offset"
    )]
    DataTooLarge {
        /// Total sample bytes given.
        bytes: u64,
    },
    /// A box grew past 4 GiB (its 32-bit size field).
    #[error("box {0} larger than 4 GiB")]
    BoxTooLarge(String),
    /// mp4-atom refused to encode a box.
    #[error("encoding a box")]
    Encode(#[from] mp4_atom::Error),
}
