//! A probed source and everything derived from it: the [`Media`] of one grant, memoised
//! in-process by [`MediaStore`] so a source is probed once however many requests it serves.
//!
//! **Seam with the segment pipeline.** The handlers do the HTTP semantics (ETag, 304, HEAD,
//! caching headers, 404 beyond the plan); the bytes come from the async methods here. Those the
//! pipeline makes — [`Media::init`], [`Media::segment`], [`Media::subtitle`], [`Media::stream`],
//! [`Media::thumbnail`], [`Media::audio_playlist`], [`Media::subtitle_playlist`] — answer
//! [`AppError::NotImplemented`] (501) until the pipeline fills them in.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use plan::{Plan, PlanOptions, Rendition, RenditionKind, RenditionOptions, VideoMode, VideoOutput};
use probe::MediaIndex;
use source::{ByteSource, ProbeCost};
use tokio::sync::OnceCell;
use tracing::Instrument as _;

use crate::error::{AppError, Result};

/// One playable source: its index, plans and renditions, and the open byte source.
pub struct Media {
    /// The memo key ([`crate::token::Grant::media_key`]).
    pub key: String,
    /// The opened source (file under the media root, or upstream).
    pub source: Arc<dyn ByteSource>,
    /// What the probe found.
    pub index: MediaIndex,
    /// What the probe cost.
    pub probe_cost: ProbeCost,
    /// The main plan: passthrough boundaries when the main track can be passed through (or
    /// is audio), else the transcode plan.
    pub plan: Plan,
    /// The plan of H.264 transcodes, when there is one (same boundaries as [`Media::plan`]
    /// whenever the source keyframes keep to the rules, else a frame grid).
    pub transcode_plan: Option<Plan>,
    /// Video, audio and subtitle renditions (see [`plan::renditions`]).
    pub renditions: Vec<Rendition>,
    /// For local files: the path and (size, mtime) seen at open, re-checked on each lookup so
    /// a replaced file is probed again.
    pub(crate) file_check: Option<(PathBuf, u64, Option<std::time::SystemTime>)>,
    /// Upstream requests/bytes already reported to the metrics.
    pub(crate) reported: (std::sync::atomic::AtomicU64, std::sync::atomic::AtomicU64),
}

impl std::fmt::Debug for Media {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Media")
            .field("key", &self.key)
            .field("renditions", &self.renditions.len())
            .finish_non_exhaustive()
    }
}

impl Media {
    /// Probes `source` and plans it.
    pub async fn build(
        key: String,
        source: Arc<dyn ByteSource>,
        opts: &RenditionOptions,
        target_secs: f64,
    ) -> Result<Media> {
        let (index, probe_cost) = source::probe(source.as_ref())
            .instrument(tracing::info_span!("probe", size = source.size()))
            .await?;
        let renditions = plan::renditions(&index, opts);
        let passthrough = PlanOptions {
            target_secs,
            mode: VideoMode::Passthrough,
            ..PlanOptions::default()
        };
        let transcode = PlanOptions {
            mode: VideoMode::Transcode,
            ..passthrough
        };
        let wants_transcode = renditions
            .iter()
            .any(|r| matches!(r.video, Some(VideoOutput::H264 { .. })));
        let transcode_plan = if wants_transcode {
            Some(plan::plan(&index, &transcode)?)
        } else {
            None
        };
        let plan = match plan::plan(&index, &passthrough) {
            Ok(p) => p,
            Err(plan::PlanError::NoKeyframes) => match &transcode_plan {
                Some(p) => p.clone(),
                None => plan::plan(&index, &transcode)?,
            },
            Err(e) => return Err(e.into()),
        };
        if renditions.is_empty() {
            return Err(AppError::NotMedia("no playable track".into()));
        }
        Ok(Media {
            key,
            source,
            index,
            probe_cost,
            plan,
            transcode_plan,
            renditions,
            file_check: None,
            reported: Default::default(),
        })
    }

    /// The rendition with this id.
    pub fn rendition(&self, id: &str) -> Option<&Rendition> {
        self.renditions.iter().find(|r| r.id == id)
    }

    /// The plan a video rendition's segments follow.
    pub fn plan_for(&self, r: &Rendition) -> &Plan {
        match (r.video, &self.transcode_plan) {
            (Some(VideoOutput::H264 { .. }), Some(p)) => p,
            _ => &self.plan,
        }
    }

    /// The multivariant playlist; rendition playlists are at `{id}/index.m3u8`.
    pub fn master_playlist(&self) -> String {
        plan::master_playlist(&self.index, &self.renditions, &self.plan, |r| {
            format!("{}/index.m3u8", r.id)
        })
    }

    /// The media playlist of a rendition: video from its plan (init `init.mp4`, segments
    /// `{n}.m4s`); audio and subtitles from the pipeline.
    pub async fn media_playlist(&self, r: &Rendition) -> Result<String> {
        match r.kind {
            RenditionKind::Video => Ok(self
                .plan_for(r)
                .media_playlist("init.mp4", |i| format!("{i}.m4s"))),
            RenditionKind::Audio => self.audio_playlist(r).await,
            RenditionKind::Subtitle => self.subtitle_playlist(r).await,
        }
    }

    /// How many segments a rendition has, when known here (video: its plan).
    pub fn segment_count(&self, r: &Rendition) -> Option<usize> {
        (r.kind == RenditionKind::Video).then(|| self.plan_for(r).segments.len())
    }

    /// The media playlist of an audio rendition (segments on the AAC frame grid, aligned with
    /// the video boundaries). Pipeline seam.
    pub async fn audio_playlist(&self, r: &Rendition) -> Result<String> {
        let _ = r;
        Err(AppError::NotImplemented)
    }

    /// The media playlist of a subtitle rendition (`{n}.vtt`). Pipeline seam.
    pub async fn subtitle_playlist(&self, r: &Rendition) -> Result<String> {
        let _ = r;
        Err(AppError::NotImplemented)
    }

    /// The fMP4 init segment (`ftyp` + `moov`) of a video or audio rendition. Pipeline seam.
    pub async fn init(&self, r: &Rendition) -> Result<Bytes> {
        let _ = r;
        Err(AppError::NotImplemented)
    }

    /// Media segment `n` (`styp`/`moof`/`mdat`) of a video or audio rendition. Pipeline seam.
    pub async fn segment(&self, r: &Rendition, n: u32) -> Result<Bytes> {
        let _ = (r, n);
        Err(AppError::NotImplemented)
    }

    /// WebVTT segment `n` of a subtitle rendition. Pipeline seam.
    pub async fn subtitle(&self, r: &Rendition, n: u32) -> Result<String> {
        let _ = (r, n);
        Err(AppError::NotImplemented)
    }

    /// A continuous fMP4 of the default renditions from `start_secs`. Pipeline seam.
    pub async fn stream(&self, start_secs: f64) -> Result<Body> {
        let _ = start_secs;
        Err(AppError::NotImplemented)
    }

    /// A JPEG of the frame at `ms`, `width` pixels wide. Pipeline seam.
    pub async fn thumbnail(&self, ms: u64, width: u32) -> Result<Bytes> {
        let _ = (ms, width);
        Err(AppError::NotImplemented)
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

type Slot = Arc<OnceCell<Arc<Media>>>;

#[derive(Default)]
struct Slots {
    map: HashMap<String, (Slot, Instant)>,
    order: VecDeque<String>,
}

/// The in-process memo of [`Media`] by grant key: bounded (oldest out), one probe per key even
/// under concurrent requests (later callers wait for the first). Failed probes are not kept.
pub struct MediaStore {
    capacity: usize,
    ttl: Duration,
    slots: Mutex<Slots>,
    /// Media evicted since the last metrics scrape (their unreported upstream counts).
    evicted: Mutex<Vec<Arc<Media>>>,
}

impl std::fmt::Debug for MediaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaStore")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl MediaStore {
    /// A memo of at most `capacity` sources, each kept at most `ttl` (then probed again).
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        MediaStore {
            capacity: capacity.max(1),
            ttl,
            slots: Mutex::new(Slots::default()),
            evicted: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        // A poisoned lock only means another thread panicked mid-update of a plain map.
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The memoised media for `key`, or `open()`'s result (stored when it succeeds).
    pub async fn get_or_open<F, Fut>(&self, key: &str, open: F) -> Result<Arc<Media>>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Media>>,
    {
        let slot = {
            let mut s = self.lock();
            let fresh = s
                .map
                .get(key)
                .filter(|(_, at)| at.elapsed() < self.ttl)
                .map(|(slot, _)| Arc::clone(slot));
            match fresh {
                Some(slot) => slot,
                None => {
                    let slot: Slot = Arc::new(OnceCell::new());
                    if let Some((old, _)) = s
                        .map
                        .insert(key.to_string(), (Arc::clone(&slot), Instant::now()))
                    {
                        self.retire(&old);
                    } else {
                        s.order.push_back(key.to_string());
                    }
                    while s.map.len() > self.capacity {
                        let Some(k) = s.order.pop_front() else { break };
                        if let Some((old, _)) = s.map.remove(&k) {
                            self.retire(&old);
                        }
                    }
                    slot
                }
            }
        };
        let media = slot
            .get_or_try_init(|| async { open().await.map(Arc::new) })
            .await;
        match media {
            Ok(m) => Ok(Arc::clone(m)),
            Err(e) => {
                // Do not keep the failed slot: the next request tries again.
                let mut s = self.lock();
                if s.map.get(key).is_some_and(|(sl, _)| Arc::ptr_eq(sl, &slot)) {
                    s.map.remove(key);
                    s.order.retain(|k| k != key);
                }
                Err(e)
            }
        }
    }

    /// Forgets `key` (its source changed).
    pub fn evict(&self, key: &str) {
        let mut s = self.lock();
        if let Some((old, _)) = s.map.remove(key) {
            self.retire(&old);
        }
        s.order.retain(|k| k != key);
    }

    fn retire(&self, slot: &Slot) {
        if let Some(m) = slot.get() {
            self.evicted
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(Arc::clone(m));
        }
    }

    /// Every live media, plus those evicted since the last call (drained).
    pub(crate) fn all_for_metrics(&self) -> Vec<Arc<Media>> {
        let mut out: Vec<Arc<Media>> = self
            .lock()
            .map
            .values()
            .filter_map(|(slot, _)| slot.get().cloned())
            .collect();
        out.append(&mut self.evicted.lock().unwrap_or_else(|p| p.into_inner()));
        out
    }

    /// Sources held.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
