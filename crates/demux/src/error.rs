//! The demuxer's typed error: every variant says where (container, byte offset, track).

use thiserror::Error;

/// Why the frames of a range could not be read.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DemuxError {
    /// A container structure in the range (or in `moov`) is broken; the probe's readers say
    /// where and what.
    #[error(transparent)]
    Probe(#[from] probe::ProbeError),
    /// A frame's content is broken (a NAL unit length past the frame, a bad lace header).
    #[error("malformed {container} at byte {offset}: {what}")]
    Malformed {
        /// Container or codec name.
        container: &'static str,
        /// Absolute byte offset of the structure that failed.
        offset: u64,
        /// What was wrong.
        what: String,
    },
    /// A universal source (libavformat's) is demuxed by the pipeline, not here.
    #[error("a universal source is demuxed by libavformat")]
    Universal,
    /// An MP4 or fragmented MP4 source was given without its `moov` bytes.
    #[error("an MP4 demuxer needs the bytes of the index's moov box")]
    MissingMoov,
    /// The `moov` bytes do not hold a track the index names (the bytes are not this file's).
    #[error("moov has no track {0} of the index")]
    MoovMismatch(u64),
    /// `offset + bytes.len()` overflows.
    #[error("byte range at {offset} overflows")]
    Range {
        /// The offset given.
        offset: u64,
    },
    /// Something the demuxer does not read yet, named.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// A named cap was exceeded.
    #[error("limit exceeded: {limit} (value {value}, max {max})")]
    Limit {
        /// The limit's name.
        limit: &'static str,
        /// The value found.
        value: u64,
        /// The cap.
        max: u64,
    },
}

impl DemuxError {
    /// Shorthand for [`DemuxError::Malformed`].
    pub(crate) fn malformed(container: &'static str, offset: u64, what: impl Into<String>) -> Self {
        DemuxError::Malformed {
            container,
            offset,
            what: what.into(),
        }
    }
}
