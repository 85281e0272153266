//! The probe's typed error. Every variant says *where* it went wrong (box path, element id, byte
//! offset) so the server can answer 422 with a message a person can act on.

use thiserror::Error;

/// Why a source could not be indexed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ProbeError {
    /// The file is empty.
    #[error("empty file")]
    Empty,
    /// The first bytes match no container we read.
    #[error("not a media file we can read (first bytes: {magic})")]
    UnknownFormat {
        /// Up to 8 leading bytes in hex, for the message.
        magic: String,
    },
    /// The container is recognised but structurally broken.
    #[error("malformed {container} at byte {offset}: {what}")]
    Malformed {
        /// Container name, e.g. "mp4", "matroska", "mpeg-ts".
        container: &'static str,
        /// Absolute byte offset of the structure that failed.
        offset: u64,
        /// What was wrong, e.g. "moov/trak/mdia/minf/stbl/stsz: sample count exceeds box".
        what: String,
    },
    /// The file ends before a structure it announces (a truncated download, for instance).
    #[error("truncated {container}: needed bytes up to {needed} but the file has {size}")]
    Truncated {
        /// Container name.
        container: &'static str,
        /// End offset that was needed.
        needed: u64,
        /// The file size.
        size: u64,
    },
    /// A named limit in [`crate::limits`] was exceeded.
    #[error("limit exceeded: {limit} (value {value}, max {max})")]
    Limit {
        /// The limit's name, as in the `limits` module.
        limit: &'static str,
        /// The value found.
        value: u64,
        /// The cap.
        max: u64,
    },
    /// Recognised and well formed, but there is nothing we can stream (no audio or video track).
    #[error("no playable track: {0}")]
    NoTracks(String),
    /// A feature of the container we do not support yet, named.
    #[error("unsupported {container} feature: {what}")]
    Unsupported {
        /// Container name.
        container: &'static str,
        /// The feature.
        what: String,
    },
    /// The driver pushed bytes the probe did not ask for, or out of order.
    #[error("probe driver error: {0}")]
    Driver(String),
}

impl ProbeError {
    /// Shorthand for [`ProbeError::Malformed`].
    pub fn malformed(container: &'static str, offset: u64, what: impl Into<String>) -> Self {
        ProbeError::Malformed {
            container,
            offset,
            what: what.into(),
        }
    }

    /// Shorthand for [`ProbeError::Limit`].
    pub fn limit(limit: &'static str, value: u64, max: u64) -> Self {
        ProbeError::Limit { limit, value, max }
    }
}

/// Result alias for the probe.
pub type Result<T> = std::result::Result<T, ProbeError>;
