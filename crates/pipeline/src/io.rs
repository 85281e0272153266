//! Async glue between a [`source::ByteSource`] and [`Media`]: probe + plan a source, and fetch
//! the bytes a job needs. The job itself ([`Media::make`]) stays blocking and I/O-free.

use probe::ByteRange;
use source::ByteSource;

use crate::{Fetched, Media, MediaOptions, PipelineError};

/// Why a source could not be loaded or read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Reading the source failed.
    #[error(transparent)]
    Source(#[from] source::SourceError),
    /// The source was read but cannot be planned.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
}

/// What [`load`] found, for callers that cache the pieces.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The index.
    pub index: probe::MediaIndex,
    /// The `moov` bytes of an MP4 source (its sample tables), else `None`.
    pub moov: Option<bytes::Bytes>,
    /// What probing cost.
    pub cost: source::ProbeCost,
}

/// Probes `src` and reads its `moov` when the index says it has one (one more read: the
/// probe's own reads are not kept).
pub async fn probe(src: &dyn ByteSource) -> Result<Loaded, LoadError> {
    let (index, cost) = source::probe(src).await?;
    let moov = match index.moov {
        Some(r) => Some(src.read(r).await?),
        None => None,
    };
    Ok(Loaded { index, moov, cost })
}

/// Probes and plans `src`.
pub async fn load(src: &dyn ByteSource, opts: MediaOptions) -> Result<Media, LoadError> {
    let l = probe(src).await?;
    Ok(Media::new(l.index, l.moov.as_deref(), opts)?)
}

/// Reads `ranges` of `src`, one after the other (a plan gives one range per segment, rarely two).
pub async fn fetch(src: &dyn ByteSource, ranges: &[ByteRange]) -> Result<Fetched, LoadError> {
    let mut pieces = Vec::with_capacity(ranges.len());
    for &r in ranges {
        pieces.push((r.start, src.read(r).await?));
    }
    Ok(Fetched { pieces })
}
