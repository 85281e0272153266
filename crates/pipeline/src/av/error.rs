//! The one error type of the FFmpeg glue.

/// What went wrong in a decode, filter or encode. The variant says where; FFmpeg's own error
/// is kept as the source.
#[derive(Debug, thiserror::Error)]
pub enum AvError {
    /// The make was cancelled ([`crate::Cancel`]): nobody waits for it any more.
    #[error("cancelled")]
    Cancelled,
    /// FFmpeg could not be initialised.
    #[error("FFmpeg initialisation failed")]
    Init(#[source] ffmpeg_next::Error),
    /// A codec this build of FFmpeg lacks (decoder for the source, or one of our encoders).
    #[error("FFmpeg has no {kind} named {name}")]
    MissingCodec {
        /// `decoder` or `encoder`.
        kind: &'static str,
        /// The codec's FFmpeg name.
        name: String,
    },
    /// The source codec is one we do not decode (subtitles, PCM without a layout, unknown).
    #[error("codec {0} is not supported for transcoding")]
    UnsupportedCodec(String),
    /// The caller's parameters make no sense (zero timescale, odd output size, empty range…).
    #[error("invalid parameters: {0}")]
    InvalidParams(String),
    /// A request over one of the named limits in [`crate::av::limits`].
    #[error("over the limit: {what} is {value}, at most {max}")]
    Limit {
        /// Which quantity.
        what: &'static str,
        /// What was asked.
        value: u64,
        /// The limit.
        max: u64,
    },
    /// An FFmpeg call failed.
    #[error("FFmpeg failed while {stage}")]
    Ffmpeg {
        /// What we were doing ("opening the decoder", "encoding", …).
        stage: &'static str,
        /// FFmpeg's error.
        #[source]
        source: ffmpeg_next::Error,
    },
    /// The packets decoded to no frame at all in the requested range.
    #[error("no decodable frame in the requested range ({0})")]
    NoFrames(&'static str),
    /// The encoder did not produce what the grid demands (a bug, or a broken FFmpeg build).
    #[error("encoder output does not match the request: {0}")]
    Mismatch(String),
}

impl AvError {
    /// Whether libavformat did not recognise a file as media it plays (no container detected,
    /// a non-media container such as an image or subtitle file, no audio or video stream).
    pub fn not_recognised(&self) -> bool {
        match self {
            AvError::Ffmpeg { stage, .. } => *stage == "opening the container",
            AvError::UnsupportedCodec(_) | AvError::NoFrames(_) => true,
            _ => false,
        }
    }

    /// Whether the source's bytes are to blame (undecodable bitstream, a codec or parameters
    /// we cannot take, nothing decodable in range), as opposed to our encoders or FFmpeg
    /// itself. The server answers the first with 422, the rest with 500.
    pub fn blames_input(&self) -> bool {
        match self {
            AvError::UnsupportedCodec(_)
            | AvError::InvalidParams(_)
            | AvError::Limit { .. }
            | AvError::NoFrames(_) => true,
            // Demuxers and decoders read the source; the filter graph is built from what they decoded
            // (its size, pixel format, sample layout), so it fails on the same bad input.
            AvError::Ffmpeg { stage, .. } => {
                stage.contains("decod")
                    || stage.contains("container")
                    || stage.contains("filter")
                    || stage.contains("downmixing")
                    || stage.contains("resampling")
            }
            AvError::Cancelled | AvError::Init(_) | AvError::MissingCodec { .. } => false,
            AvError::Mismatch(_) => false,
        }
    }

    /// Wraps an FFmpeg error with the stage it happened in.
    pub(crate) fn ff(stage: &'static str) -> impl FnOnce(ffmpeg_next::Error) -> AvError {
        move |source| AvError::Ffmpeg { stage, source }
    }
}
