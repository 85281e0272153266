//! Async glue between a [`source::ByteSource`] and [`Media`]: probe + plan a source, and fetch
//! the bytes a job needs. The job itself ([`Media::make`]) stays blocking and I/O-free.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use bytes::Bytes;
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
    /// The demuxer's tables beside the index: the `moov` bytes of an MP4 source (its sample
    /// tables), the serialised [`crate::av::lavf::Tables`] of a universal source, else `None`.
    pub tables: Option<Bytes>,
    /// What probing cost.
    pub cost: source::ProbeCost,
}

/// Indexes `src`: with the native probes (MP4, Matroska/WebM, MPEG-TS), and, for a file they
/// do not recognise, with libavformat's packet scan ([`crate::av::lavf`]) on the blocking pool.
/// An MP4 source's `moov` comes with the index (the probe's own read, kept).
pub async fn probe(src: &Arc<dyn ByteSource>) -> Result<Loaded, LoadError> {
    let (index, cost, moov) = match source::probe_keeping_moov(src.as_ref()).await {
        Ok(v) => v,
        Err(source::SourceError::Probe(unknown @ probe::ProbeError::UnknownFormat { .. })) => {
            return match universal(src, false).await {
                // libavformat does not recognise it either: the native probe's answer (with
                // the file's first bytes) is the clearer one.
                Err(LoadError::Pipeline(PipelineError::Av(e))) if e.not_recognised() => {
                    Err(source::SourceError::Probe(unknown).into())
                }
                other => other,
            };
        }
        // A cut file (an interrupted download): libavformat reads the packets that exist, and
        // the index ends at the last whole one.
        Err(source::SourceError::Probe(cut @ probe::ProbeError::Truncated { .. })) => {
            return match universal(src, true).await {
                Ok(l) if l.index.duration > 0 => Ok(l),
                _ => Err(source::SourceError::Probe(cut).into()),
            };
        }
        Err(e) => return Err(e.into()),
    };
    if !natively_decodable(&index) {
        return universal(src, false).await;
    }
    let tables = match (moov, index.moov) {
        (Some(bytes), _) => Some(bytes),
        (None, Some(r)) => Some(src.read(r).await?),
        (None, None) => None,
    };
    Ok(Loaded {
        index,
        tables,
        cost,
    })
}

/// Whether every audio and video track of a natively probed source can be demuxed and decoded
/// from what the native probe knows. A QuickTime file with ProRes or PCM, an `.m4a` with ALAC,
/// need FFmpeg's own parameters (codec by name, sample format, the `alac` atom): such a source is
/// read through libavformat instead.
fn natively_decodable(index: &probe::MediaIndex) -> bool {
    index.tracks.iter().all(|t| match t.kind {
        probe::TrackKind::Video | probe::TrackKind::Audio => {
            !matches!(t.codec, probe::Codec::Other(_) | probe::Codec::Pcm)
                && t.audio.as_ref().is_none_or(|a| a.sample_rate > 0)
        }
        _ => true,
    })
}

/// The libavformat scan of a source, off the async threads.
async fn universal(src: &Arc<dyn ByteSource>, cut: bool) -> Result<Loaded, LoadError> {
    let (requests, bytes) = (src.stats().requests(), src.stats().bytes());
    let handle = tokio::runtime::Handle::current();
    let (a, size) = (Arc::clone(src), src.size());
    let scanned = tokio::task::spawn_blocking(move || {
        // The second reader (the head pieces kept after the scan) shares the first's blocks:
        // the head and the first packet are in the first block, which is never read twice.
        let reader = BlockingReader::new(a, handle);
        let again = reader.sharing();
        crate::av::lavf::scan(reader, move || Ok(again.sharing()), size, cut)
    })
    .await
    .map_err(|e| PipelineError::Unsupported(format!("the scan task failed: {e}")))?
    .map_err(PipelineError::from)?;
    let cost = source::ProbeCost {
        requests: src.stats().requests().saturating_sub(requests),
        bytes: src.stats().bytes().saturating_sub(bytes),
    };
    Ok(Loaded {
        index: scanned.index,
        tables: Some(Bytes::from(scanned.tables.to_bytes())),
        cost,
    })
}

/// Probes and plans `src`.
pub async fn load(src: &Arc<dyn ByteSource>, opts: MediaOptions) -> Result<Media, LoadError> {
    let l = probe(src).await?;
    Ok(Media::new(l.index, l.tables.as_deref(), opts)?)
}

/// Bytes a [`BlockingReader`] reads per request.
const READ_BLOCK: u64 = 1 << 20;

/// A blocking `Read + Seek` over a [`ByteSource`] for libavformat, on a blocking-pool thread:
/// reads whole blocks of [`READ_BLOCK`] bytes (one range request each) and serves smaller reads
/// from the blocks held ([`Blocks`]).
pub struct BlockingReader {
    src: Arc<dyn ByteSource>,
    handle: tokio::runtime::Handle,
    pos: u64,
    blocks: Arc<std::sync::Mutex<Blocks>>,
}

/// Blocks besides the first that a [`BlockingReader`] keeps: demuxers read an index at the end
/// (AVI `idx1`, an MP4 `moov`) before the media from the start, and come back.
const RECENT_BLOCKS: usize = 3;

/// The blocks a [`BlockingReader`] (and the readers [`BlockingReader::sharing`] it) hold: the
/// first block of the file (headers live there, and demuxers come back to them) and the
/// [`RECENT_BLOCKS`] last read.
#[derive(Default)]
struct Blocks {
    first: Option<Bytes>,
    recent: std::collections::VecDeque<(u64, Bytes)>,
}

impl Blocks {
    fn get(&self, pos: u64) -> Option<(u64, Bytes)> {
        let hit = |at: u64, d: &Bytes| pos >= at && pos < at + d.len() as u64;
        if let Some(d) = self.first.as_ref().filter(|d| hit(0, d)) {
            return Some((0, d.clone()));
        }
        self.recent
            .iter()
            .find(|(at, d)| hit(*at, d))
            .map(|(at, d)| (*at, d.clone()))
    }

    fn put(&mut self, at: u64, data: Bytes) {
        if at == 0 {
            self.first = Some(data);
            return;
        }
        if self.recent.len() >= RECENT_BLOCKS {
            self.recent.pop_front();
        }
        self.recent.push_back((at, data));
    }
}

impl BlockingReader {
    /// A reader at offset 0. `handle` is the runtime the source's reads run on; the reader must
    /// be used from a thread outside it (`spawn_blocking`).
    pub fn new(src: Arc<dyn ByteSource>, handle: tokio::runtime::Handle) -> BlockingReader {
        BlockingReader {
            src,
            handle,
            pos: 0,
            blocks: Arc::default(),
        }
    }

    /// Another reader at offset 0 over the same source and the same held blocks.
    pub fn sharing(&self) -> BlockingReader {
        BlockingReader {
            src: Arc::clone(&self.src),
            handle: self.handle.clone(),
            pos: 0,
            blocks: Arc::clone(&self.blocks),
        }
    }
}

impl Read for BlockingReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let size = self.src.size();
        if self.pos >= size || buf.is_empty() {
            return Ok(0);
        }
        let cached = self
            .blocks
            .lock()
            .map_err(|_| std::io::Error::other("block cache poisoned"))?
            .get(self.pos);
        let (at, data) = match cached {
            Some(hit) => hit,
            None => {
                let start = self.pos - self.pos % READ_BLOCK;
                let range = ByteRange::new(start, (start + READ_BLOCK).min(size));
                let src = Arc::clone(&self.src);
                let data = self
                    .handle
                    .block_on(async move { src.read(range).await })
                    .map_err(std::io::Error::other)?;
                if data.is_empty() {
                    return Ok(0);
                }
                let mut b = self
                    .blocks
                    .lock()
                    .map_err(|_| std::io::Error::other("block cache poisoned"))?;
                b.put(start, data.clone());
                (start, data)
            }
        };
        let off = (self.pos - at) as usize;
        let n = (data.len() - off).min(buf.len());
        buf[..n].copy_from_slice(&data[off..off + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for BlockingReader {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let p = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.src.size().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let p = p.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start")
        })?;
        self.pos = p;
        Ok(p)
    }
}

/// Reads `ranges` of `src`, one after the other (a plan gives one range per segment, rarely two).
pub async fn fetch(src: &dyn ByteSource, ranges: &[ByteRange]) -> Result<Fetched, LoadError> {
    let mut pieces = Vec::with_capacity(ranges.len());
    for &r in ranges {
        pieces.push((r.start, src.read(r).await?));
    }
    Ok(Fetched { pieces })
}
