//! A probed source and everything derived from it: the [`Media`] of one grant, memoised
//! in-process by [`MediaStore`] so a source is probed once however many requests it serves.
//!
//! [`Media`] wraps the pipeline's [`pipeline::Media`] (index, plan, renditions, and every output
//! it can make) with the open byte source; outputs are made through [`Jobs`] (cache,
//! coalescing, pools, prefetch). The handlers do the HTTP semantics (ETag, 304, HEAD, caching
//! headers, 404 beyond the plan).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use pipeline::{MediaOptions, Output, PipelineError};
use plan::{Plan, Rendition, RenditionKind};
use probe::MediaIndex;
use source::{ByteSource, ProbeCost};
use tracing::Instrument as _;

use crate::error::{AppError, Result};
use crate::jobs::{Cause, Jobs, Served, Subject};

/// A local file's path, size and modification time when it was opened: compared before each
/// use, so a file replaced on disk is probed again.
pub(crate) type FileCheck = (PathBuf, u64, Option<std::time::SystemTime>);

/// One playable source: the pipeline's view of it and the open byte source.
pub struct Media {
    /// The memo key ([`crate::token::Grant::media_key`]).
    pub key: String,
    /// The opened source (file under the media root, or upstream).
    pub source: Arc<dyn ByteSource>,
    /// What the probe cost.
    pub probe_cost: ProbeCost,
    /// Index, plan, renditions, and the outputs.
    pub pipeline: Arc<pipeline::Media>,
    /// The job runner outputs are made through.
    pub(crate) jobs: Arc<Jobs>,
    /// For local files: the path and (size, mtime) seen at open, re-checked on each lookup so
    /// a replaced file is probed again.
    pub(crate) file_check: Option<FileCheck>,
    /// Upstream requests/bytes already reported to the metrics.
    pub(crate) reported: (std::sync::atomic::AtomicU64, std::sync::atomic::AtomicU64),
    /// When the upstream identity was last known to hold (held while revalidating, so one
    /// request at a time asks the upstream).
    pub(crate) checked: tokio::sync::Mutex<Instant>,
}

impl std::fmt::Debug for Media {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Media")
            .field("key", &self.key)
            .field("pipeline", &self.pipeline)
            .finish_non_exhaustive()
    }
}

impl From<PipelineError> for AppError {
    fn from(e: PipelineError) -> Self {
        match e {
            PipelineError::NoSuchRendition(_) => AppError::NotFound("no such rendition"),
            PipelineError::NoSuchSegment(_) => AppError::NotFound("segment beyond the plan"),
            PipelineError::Plan(p) => p.into(),
            PipelineError::Unsupported(_) | PipelineError::Demux(_) | PipelineError::Empty(_) => {
                AppError::NotMedia(Box::new(e))
            }
            // The source's own bytes (timestamps, a bitstream FFmpeg cannot decode) are the
            // client's input, never our bug: 422 with a plain reason.
            PipelineError::Av(ref av) if av.blames_input() => AppError::NotMedia(Box::new(e)),
            PipelineError::Timing(_) => AppError::NotMedia(Box::new(e)),
            PipelineError::Fmp4(_) | PipelineError::Av(_) => AppError::internal(e),
        }
    }
}

impl From<pipeline::io::LoadError> for AppError {
    fn from(e: pipeline::io::LoadError) -> Self {
        match e {
            pipeline::io::LoadError::Source(s) => s.into(),
            pipeline::io::LoadError::Pipeline(p) => p.into(),
        }
    }
}

impl From<cache::CoalesceError> for AppError {
    fn from(e: cache::CoalesceError) -> Self {
        match e {
            cache::CoalesceError::Busy { .. } => {
                AppError::Unavailable("the segment is still being made; try again", 2)
            }
            cache::CoalesceError::Cancelled => {
                AppError::Unavailable("the segment was not finished; try again", 1)
            }
            other => AppError::internal(other),
        }
    }
}

impl Media {
    /// Probes `source` and plans it.
    pub async fn build(
        key: String,
        source: Arc<dyn ByteSource>,
        opts: MediaOptions,
        jobs: Arc<Jobs>,
        sidecars: Vec<pipeline::Sidecar>,
    ) -> Result<Media> {
        let (loaded, _cached) = jobs
            .probed(&source)
            .instrument(tracing::info_span!("probe", size = source.size()))
            .await?;
        let probe_cost = loaded.cost;
        // Planning is CPU work proportional to the index (100k keyframes, every span): the
        // blocking pool, never an async worker thread.
        let pm = tokio::task::spawn_blocking(move || {
            pipeline::Media::new(loaded.index, loaded.tables.as_deref(), opts)
                .map(|m| m.with_sidecars(sidecars))
        })
        .await
        .map_err(AppError::internal)??;
        if pm.renditions().is_empty() {
            return Err(AppError::NotMedia("no playable track".into()));
        }
        Ok(Media {
            key,
            source,
            probe_cost,
            pipeline: Arc::new(pm),
            jobs,
            file_check: None,
            reported: Default::default(),
            checked: tokio::sync::Mutex::new(Instant::now()),
        })
    }

    /// What the jobs service makes outputs of.
    fn subject(&self) -> Subject {
        Subject {
            pipeline: Arc::clone(&self.pipeline),
            source: Arc::clone(&self.source),
        }
    }

    /// The index.
    pub fn index(&self) -> &MediaIndex {
        self.pipeline.index()
    }

    /// The plan every rendition follows.
    pub fn plan(&self) -> &Plan {
        self.pipeline.plan()
    }

    /// The renditions, in master-playlist order.
    pub fn renditions(&self) -> &[Rendition] {
        self.pipeline.renditions()
    }

    /// The rendition with this id.
    pub fn rendition(&self, id: &str) -> Option<&Rendition> {
        self.pipeline.rendition(id).ok()
    }

    /// The multivariant playlist of what `caps` lists; rendition playlists are at
    /// `{id}/index.m3u8`.
    pub fn master_playlist(&self, caps: &plan::Caps) -> String {
        self.pipeline
            .master_playlist(caps, |r| format!("{}/index.m3u8", r.id))
    }

    /// The media playlist of a rendition (`init.mp4` + `{n}.m4s`, or `{n}.vtt`).
    pub async fn media_playlist(&self, r: &Rendition) -> Result<String> {
        Ok(self.pipeline.media_playlist(&r.id)?)
    }

    /// How many segments every rendition has.
    pub fn segment_count(&self, r: &Rendition) -> Option<usize> {
        let _ = r;
        Some(self.pipeline.segment_count() as usize)
    }

    /// The fMP4 init segment (`ftyp` + `moov`) of a video or audio rendition.
    pub async fn init(self: &Arc<Self>, r: &Rendition) -> Result<Served> {
        self.jobs
            .served(&self.subject(), Output::Init(r.id.clone()), Cause::Request)
            .await
    }

    /// Media segment `n` (`styp`/`moof`/`mdat`) of a video or audio rendition; the next
    /// segments are made ahead in the background.
    pub async fn segment(self: &Arc<Self>, r: &Rendition, n: u32) -> Result<Served> {
        let served = self
            .jobs
            .served(
                &self.subject(),
                Output::Segment(r.id.clone(), n),
                Cause::Request,
            )
            .await?;
        self.jobs.prefetch(&self.subject(), &r.id, n);
        Ok(served)
    }

    /// WebVTT segment `n` of a subtitle rendition.
    pub async fn subtitle(self: &Arc<Self>, r: &Rendition, n: u32) -> Result<Served> {
        self.jobs
            .served(
                &self.subject(),
                Output::Subtitle(r.id.clone(), n),
                Cause::Request,
            )
            .await
    }

    /// A continuous fMP4 of the first video rendition and the default audio rendition from the
    /// segment holding `start_secs`: the init, then one fragment per segment, made as the body
    /// is read.
    pub async fn stream(self: &Arc<Self>, start_secs: f64) -> Result<Body> {
        let first = self.pipeline.segment_at(start_secs);
        let count = self.pipeline.segment_count();
        let init = self
            .jobs
            .output(&self.subject(), Output::StreamInit, Cause::Request)
            .await?;
        let me = Arc::clone(self);
        let fragments = futures_util::stream::unfold(first, move |n| {
            let me = Arc::clone(&me);
            async move {
                if n >= count {
                    return None;
                }
                let r = me
                    .jobs
                    .output(&me.subject(), Output::StreamFragment(n), Cause::Request)
                    .await
                    .map_err(|e| std::io::Error::other(e.to_string()));
                Some((r, n + 1))
            }
        });
        let head = futures_util::stream::once(async move { Ok::<_, std::io::Error>(init) });
        Ok(Body::from_stream(futures_util::StreamExt::chain(
            head, fragments,
        )))
    }

    /// A JPEG of the frame at `ms`, `width` pixels wide.
    pub async fn thumbnail(self: &Arc<Self>, ms: u64, width: u32) -> Result<Served> {
        self.jobs
            .served(
                &self.subject(),
                Output::Thumbnail { ms, width },
                Cause::Request,
            )
            .await
    }

    /// Builds (blocking pool) the `download.mp4` layout of `tracks` from the `moov`, read again
    /// from the source (one range; the index says where it is).
    pub(crate) async fn build_layout(
        &self,
        tracks: Vec<u64>,
    ) -> Result<pipeline::download::Layout> {
        let at = self
            .index()
            .moov
            .ok_or(AppError::Conflict("this MP4 file keeps no sample tables"))?;
        let moov = self
            .source
            .read(source::ByteRange::new(at.start, at.end))
            .await?;
        let pm = Arc::clone(&self.pipeline);
        tokio::task::spawn_blocking(move || {
            pipeline::download::Layout::new(pm.index(), &moov, &tracks)
        })
        .await
        .map_err(AppError::internal)?
        .map_err(|e| AppError::from(PipelineError::from(e)))
    }

    /// Trick-play sheet `n` (JPEG).
    pub async fn sheet(self: &Arc<Self>, n: u32) -> Result<Served> {
        self.jobs
            .served(&self.subject(), Output::Sheet(n), Cause::Request)
            .await
    }

    /// Whether `r` has media segments (`.m4s`), as opposed to WebVTT.
    pub fn has_segments(r: &Rendition) -> bool {
        r.kind != RenditionKind::Subtitle
    }

    /// Upstream requests and bytes not yet reported to the metrics (and marks them reported).
    pub(crate) fn take_unreported(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering;
        let s = self.source.stats();
        let req = s.requests();
        let bytes = s.bytes();
        let r0 = self.reported.0.swap(req, Ordering::Relaxed);
        let b0 = self.reported.1.swap(bytes, Ordering::Relaxed);
        (req.saturating_sub(r0), bytes.saturating_sub(b0))
    }

    /// Whether this is an upstream (HTTP) source.
    pub fn is_upstream(&self) -> bool {
        self.file_check.is_none()
    }
}

/// The in-process memo of [`Media`] by grant key, bounded by **bytes** (each entry weighs what
/// its index, plan, sample tables and `moov` hold, [`pipeline::Media::heap_bytes`]) and by age
/// (`ttl`, then probed again). One probe per key even under concurrent requests: later callers
/// wait for the first (moka's single-flight initialisation). Failed probes are not kept.
pub struct MediaStore {
    memo: moka::future::Cache<String, Arc<Media>>,
}

impl std::fmt::Debug for MediaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaStore")
            .field("entries", &self.memo.entry_count())
            .field("bytes", &self.memo.weighted_size())
            .finish()
    }
}

/// Reports the upstream requests and bytes of `m` not reported yet.
pub(crate) fn report_upstream(m: &Media) {
    let (req, bytes) = m.take_unreported();
    let kind = if m.is_upstream() { "http" } else { "file" };
    metrics::counter!(crate::obs::UPSTREAM_REQUESTS, "kind" => kind).increment(req);
    metrics::counter!(crate::obs::UPSTREAM_BYTES, "kind" => kind).increment(bytes);
}

impl MediaStore {
    /// A memo of at most `budget_bytes` of probed sources, each kept at most `ttl`.
    pub fn new(budget_bytes: u64, ttl: Duration) -> Self {
        let memo = moka::future::Cache::builder()
            .max_capacity(budget_bytes.max(1))
            .weigher(|_k: &String, m: &Arc<Media>| {
                u32::try_from(m.pipeline.heap_bytes()).unwrap_or(u32::MAX)
            })
            .time_to_live(ttl)
            // An evicted source's last upstream counts go to the metrics now; the memo keeps
            // nothing of it (in-flight requests hold their own Arc until they finish).
            .eviction_listener(|_k, m: Arc<Media>, _cause| report_upstream(&m))
            .build();
        MediaStore { memo }
    }

    /// The memoised media for `key`, or `open()`'s result (stored when it succeeds).
    pub async fn get_or_open<F, Fut>(&self, key: &str, open: F) -> Result<Arc<Media>>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Media>>,
    {
        self.memo
            .try_get_with_by_ref(key, async { open().await.map(Arc::new) })
            .await
            .map_err(|e: Arc<AppError>| e.replay())
    }

    /// Whether `key` is memoised (no probe is started).
    pub fn contains(&self, key: &str) -> bool {
        self.memo.contains_key(key)
    }

    /// Forgets `key` (its source changed).
    pub async fn evict(&self, key: &str) {
        self.memo.invalidate(key).await;
    }

    /// Every live media (for the metrics).
    pub(crate) fn all_for_metrics(&self) -> Vec<Arc<Media>> {
        self.memo.iter().map(|(_, m)| m).collect()
    }

    /// Sources held.
    pub fn len(&self) -> u64 {
        self.memo.entry_count()
    }

    /// Bytes held (the sum of the entries' weights).
    pub fn bytes(&self) -> u64 {
        self.memo.weighted_size()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// (bytes, sources) held, after the memo's pending housekeeping (for the metrics; `len` and
    /// `bytes` lag behind recent inserts until it runs).
    pub async fn usage(&self) -> (u64, u64) {
        self.memo.run_pending_tasks().await;
        (self.bytes(), self.len())
    }
}
