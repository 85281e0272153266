//! Making outputs for requests: the cache in front, the coalescer's one generation per key,
//! bounded pools for transcode and remux work, and prefetch.
//!
//! A request for an output goes: cache hit → bytes (no upstream traffic); else
//! [`cache::Coalescer`] starts (or joins) the one make of that key — detached from the request,
//! cancelled when every waiting request has left, coordinated across instances through the
//! injected [`cache::Lease`]. The make waits (bounded) for a slot in its [`pool::Pool`] —
//! transcodes and remuxes have separate pools, and requests go before prefetch in both —
//! fetches the ranges the output needs, makes it on the blocking pool, and the coalescer caches
//! it. Past the wait bound the answer is 503 with `Retry-After`. A failed make is never cached.
//!
//! The service depends on traits only (`Arc<dyn Cache>`, `Arc<dyn Lease>`, `Arc<dyn Clock>`);
//! the concrete backends are chosen in `state.rs` ([`cache::Backends`]).
//!
//! - [`keys`]: the cache keys of outputs, indexes and identities;
//! - [`index_record`]: the cache format of a probe result;
//! - [`pool`]: the job pools with request priority.

mod index_record;
mod keys;
pub mod pool;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use cache::{
    Cache, Clock, CoalesceError, Coalescer, CoalescerConfig, Lease, MakeCtx, Outcome, Priority,
};
use pipeline::Output;
use plan::{AudioOutput, VideoOutput};

use source::ByteSource;

use crate::error::{AppError, Result};
use crate::obs;
use pool::Pool;

/// What outputs are made of: a planned source and its bytes. The jobs service knows nothing
/// else of the server's view of a source.
#[derive(Clone)]
pub struct Subject {
    /// Index, plan, renditions, and how to make each output.
    pub pipeline: Arc<pipeline::Media>,
    /// Where the source bytes are read from.
    pub source: Arc<dyn ByteSource>,
}

/// Settings of the job runner.
#[derive(Debug, Clone)]
pub struct JobConfig {
    /// Memory cache budget in bytes.
    pub cache_bytes: u64,
    /// Redis URL for the shared cache (`redis://127.0.0.1:6379`), if any.
    pub redis_url: Option<String>,
    /// How long made outputs are kept.
    pub ttl: Duration,
    /// Concurrent video encodes and thumbnails (default: the number of cores).
    pub transcode_jobs: usize,
    /// Concurrent light jobs: remuxes, AAC encodes, WebVTT.
    pub remux_jobs: usize,
    /// Longest wait for a job slot (or for another maker) before 503.
    pub max_wait: Duration,
    /// Segments made ahead after segment `n` is asked for.
    pub prefetch: u32,
}

impl Default for JobConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        JobConfig {
            cache_bytes: cache::DEFAULT_MEMORY_BUDGET,
            redis_url: None,
            ttl: Duration::from_secs(24 * 3600),
            transcode_jobs: cores,
            remux_jobs: 4 * cores,
            max_wait: Duration::from_secs(10),
            prefetch: 2,
        }
    }
}

/// An output and what serving it cost.
#[derive(Debug, Clone)]
pub struct Served {
    /// The bytes.
    pub bytes: Bytes,
    /// Whether they came from a cache (memory or Redis).
    pub hit: bool,
    /// How long making them took, when this request made them.
    pub took: Option<Duration>,
    /// Strong entity tag: from the output's cache key, which names these exact bytes (outputs
    /// are deterministic), so no hash of the bytes per response.
    pub etag: String,
}

impl Served {
    /// The HTTP response for a request with headers `req` (304 when its `If-None-Match`
    /// matches), marked for the log line.
    pub fn respond(
        &self,
        req: &http::HeaderMap,
        content_type: &'static str,
    ) -> http::Response<axum::body::Body> {
        let mut resp =
            crate::semantics::immutable_bytes(req, self.bytes.clone(), &self.etag, content_type);
        self.mark(&mut resp);
        resp
    }

    /// Marks `resp` for the request log line (cache hit/miss, generation time).
    pub fn mark<B>(&self, resp: &mut http::Response<B>) {
        resp.extensions_mut().insert(if self.hit {
            obs::CacheStatus::Hit
        } else {
            obs::CacheStatus::Miss
        });
        if let Some(t) = self.took {
            resp.extensions_mut().insert(obs::GenerationTime(t));
        }
    }
}

/// Why a job was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// A client asked for it.
    Request,
    /// Made ahead of the playhead.
    Prefetch,
}

impl Cause {
    fn label(self) -> &'static str {
        match self {
            Cause::Request => "request",
            Cause::Prefetch => "prefetch",
        }
    }
}

/// The job runner shared by every request.
pub struct Jobs {
    coalescer: Coalescer,
    clock: Arc<dyn Clock>,
    transcode: Arc<Pool>,
    remux: Arc<Pool>,
    cfg: JobConfig,
}

/// Errors inside the coalescer: ours, or its own (busy, the maker we waited for failed).
#[derive(Debug)]
enum JobError {
    App(AppError),
    Coalesce(CoalesceError),
}

impl From<CoalesceError> for JobError {
    fn from(e: CoalesceError) -> Self {
        JobError::Coalesce(e)
    }
}

impl From<AppError> for JobError {
    fn from(e: AppError) -> Self {
        JobError::App(e)
    }
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobError::App(e) => e.fmt(f),
            JobError::Coalesce(e) => e.fmt(f),
        }
    }
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs").field("cfg", &self.cfg).finish()
    }
}

/// Stops a make's pipeline work and counts the cancellation when the make's future is dropped
/// because its cancel token fired (the coalescer then drops it): a video transcode stops before
/// its next frame; the pool slot is released when the blocking work ends.
struct StopOnDrop {
    token: cache::Cancel,
    cancel: pipeline::Cancel,
    armed: bool,
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if self.armed && self.token.is_cancelled() {
            self.cancel.cancel();
            metrics::counter!(obs::CANCELLED).increment(1);
        }
    }
}

impl Jobs {
    /// A runner over these services: `cache` for values, `lease` for cross-instance generation
    /// locks ([`cache::NoLease`] for one instance), `clock` for every wait bound.
    pub fn new(
        cfg: JobConfig,
        cache: Arc<dyn Cache>,
        lease: Arc<dyn Lease>,
        clock: Arc<dyn Clock>,
    ) -> Jobs {
        let coalescer = Coalescer::new(
            cache,
            lease,
            Arc::clone(&clock),
            CoalescerConfig {
                max_wait: cfg.max_wait,
                ..CoalescerConfig::default()
            },
        );
        // Video encodes have the cores while a request runs in either pool: an audio segment
        // a player waits for does not share them with a prefetch encode either.
        let transcode = Pool::for_cores(cfg.transcode_jobs);
        Jobs {
            coalescer,
            clock,
            remux: Pool::yielding_to(cfg.remux_jobs, Arc::clone(&transcode)),
            transcode,
            cfg,
        }
    }

    /// Load of each pool now: (name, slots, running, waiting), for the metrics.
    pub fn pool_load(&self) -> [(&'static str, usize, usize, usize); 2] {
        let (ts, tr, tq) = self.transcode.load();
        let (rs, rr, rq) = self.remux.load();
        [("transcode", ts, tr, tq), ("remux", rs, rr, rq)]
    }

    /// The memory cache's (bytes, entries) now, for the metrics.
    pub async fn cache_usage(&self) -> Option<(u64, u64)> {
        self.coalescer.cache().usage().await
    }

    /// A runner with a memory cache only (no Redis, whatever `cfg.redis_url` says).
    pub fn memory(cfg: JobConfig) -> Jobs {
        let b = cache::Backends::memory(cfg.cache_bytes);
        Jobs::new(cfg, b.cache, b.lease, b.clock)
    }

    /// The settings.
    pub fn config(&self) -> &JobConfig {
        &self.cfg
    }

    /// `out` of `media`: from the cache, or made once.
    pub async fn output(
        self: &Arc<Self>,
        media: &Subject,
        out: Output,
        cause: Cause,
    ) -> Result<Bytes> {
        Ok(self.served(media, out, cause).await?.bytes)
    }

    /// Like [`Jobs::output`], with what it cost: cache hit or not, and the generation time when
    /// this call started the make.
    ///
    /// The make runs detached from the request that started it (the coalescer's flight): a
    /// request that goes away (client disconnected) leaves it running for the others that wait
    /// for the same output, and the last one to go cancels it. A request whose maker failed
    /// (another request's make, in this process or another instance) tries once more itself.
    pub async fn served(
        self: &Arc<Self>,
        media: &Subject,
        out: Output,
        cause: Cause,
    ) -> Result<Served> {
        let key = keys::key_of(media, &out);
        let work = work_of(media, &out);
        let priority = match cause {
            Cause::Request => Priority::Foreground,
            Cause::Prefetch => Priority::Background,
        };
        let took = Arc::new(Mutex::new(None));
        let mut tries = 0;
        loop {
            tries += 1;
            let make = {
                let (jobs, media, out, took) = (
                    Arc::clone(self),
                    media.clone(),
                    out.clone(),
                    Arc::clone(&took),
                );
                move |ctx: MakeCtx| async move {
                    let (bytes, t) = jobs.make(&media, out, work, cause, ctx).await?;
                    *took.lock().unwrap_or_else(|p| p.into_inner()) = Some(t);
                    Ok::<_, JobError>(bytes)
                }
            };
            let r = self
                .coalescer
                .get_or_make_as(&key, self.cfg.ttl, priority, make)
                .await;
            let (bytes, outcome) = match r {
                Ok(v) => v,
                Err(JobError::App(e)) => return Err(e),
                Err(JobError::Coalesce(
                    e @ (CoalesceError::MakerFailed { .. } | CoalesceError::Cancelled),
                )) if tries < 2 => {
                    tracing::debug!(error = %e, "the make this request waited for ended without bytes; trying");
                    continue;
                }
                Err(JobError::Coalesce(e)) => return Err(e.into()),
            };
            let took = *took.lock().unwrap_or_else(|p| p.into_inner());
            return Ok(Served {
                bytes,
                hit: outcome == Outcome::Hit,
                took: took.filter(|_| outcome == Outcome::Made),
                etag: crate::semantics::etag_of_key(key.as_str()),
            });
        }
    }

    /// One make: a pool slot (bounded wait), the source ranges, the pipeline on the blocking
    /// pool. Dropped by the coalescer when its cancel token fires.
    async fn make(
        &self,
        media: &Subject,
        out: Output,
        work: Work,
        cause: Cause,
        ctx: MakeCtx,
    ) -> Result<(Bytes, Duration)> {
        let mut stop = StopOnDrop {
            token: ctx.cancel().clone(),
            cancel: pipeline::Cancel::new(),
            armed: true,
        };
        let pool = if work.heavy {
            &self.transcode
        } else {
            &self.remux
        };
        let slot = tokio::select! {
            slot = pool.acquire(&ctx) => slot,
            () = self.clock.sleep(self.cfg.max_wait) => {
                return Err(AppError::Unavailable(
                    "too many jobs; try again",
                    retry_after(self.cfg.max_wait),
                ));
            }
        };
        let started = self.clock.now();
        let pm = Arc::clone(&media.pipeline);
        let ranges = pm.needs(&out).map_err(AppError::from)?;
        let data = pipeline::io::fetch(media.source.as_ref(), &ranges)
            .await
            .map_err(AppError::from)?;
        let kind_label = if work.encodes { "transcode" } else { "remux" };
        let span = tracing::info_span!("make", kind = kind_label, out = ?out);
        let cancel = stop.cancel.clone();
        let made = tokio::task::spawn_blocking(move || {
            // The pool slot is held until the blocking work ends, cancelled or not.
            let _slot = slot;
            let _g = span.enter();
            pm.make_cancellable(&out, &data, &cancel)
        })
        .await
        .map_err(AppError::internal);
        stop.armed = false;
        let made = match made? {
            Err(pipeline::PipelineError::Av(pipeline::av::AvError::Cancelled)) => {
                return Err(AppError::Unavailable("cancelled: nobody waits for it", 1))
            }
            other => other?,
        };
        metrics::counter!(obs::SEGMENTS, "kind" => kind_label, "cause" => cause.label())
            .increment(1);
        // Cached bytes hold exactly their length (the writer's Vec may have grown to twice
        // it): the memory budget weighs lengths.
        Ok((
            Bytes::from(made.into_boxed_slice()),
            self.clock.now().saturating_duration_since(started),
        ))
    }

    /// The index (and `moov`) of `source`: from the cache (memory, or Redis where another
    /// instance probed it), or probed now — once per source identity at a time, in this
    /// process and across instances — and cached for the output TTL. The flag says whether it
    /// came from the cache.
    pub async fn probed(
        &self,
        source: &Arc<dyn ByteSource>,
    ) -> Result<(pipeline::io::Loaded, bool)> {
        let key = keys::index_key(&source.identity().key());
        let fresh = Arc::new(Mutex::new(None));
        let make = {
            let (source, fresh) = (Arc::clone(source), Arc::clone(&fresh));
            move |_ctx: MakeCtx| async move {
                let loaded = pipeline::io::probe(&source)
                    .await
                    .map_err(|e| JobError::App(e.into()))?;
                let (loaded, bytes) = tokio::task::spawn_blocking(move || {
                    let bytes = index_record::encode_probed(&loaded);
                    (loaded, bytes)
                })
                .await
                .map_err(|e| JobError::App(AppError::internal(e)))?;
                let bytes = bytes.map_err(JobError::App)?;
                *fresh.lock().unwrap_or_else(|p| p.into_inner()) = Some(loaded);
                Ok::<_, JobError>(bytes)
            }
        };
        let r = self.coalescer.get_or_make(&key, self.cfg.ttl, make).await;
        let (bytes, _) = match r {
            Ok(v) => v,
            Err(JobError::App(e)) => return Err(e),
            Err(JobError::Coalesce(e)) => return Err(e.into()),
        };
        if let Some(loaded) = fresh.lock().unwrap_or_else(|p| p.into_inner()).take() {
            metrics::counter!(obs::PROBES, "result" => "made").increment(1);
            return Ok((loaded, false));
        }
        let decoded = tokio::task::spawn_blocking(move || index_record::decode_probed(&bytes))
            .await
            .map_err(AppError::internal)?;
        match decoded {
            Some(loaded) => {
                metrics::counter!(obs::PROBES, "result" => "cached").increment(1);
                Ok((loaded, true))
            }
            None => {
                // Written by another version or damaged: probe here, and replace it.
                tracing::warn!(%key, "cached index unreadable; probing again");
                let loaded = pipeline::io::probe(source).await?;
                if let Ok(b) = index_record::encode_probed(&loaded) {
                    if let Err(e) = self.coalescer.cache().put(&key, b, self.cfg.ttl).await {
                        tracing::debug!(error = %e, "index not cached");
                    }
                }
                metrics::counter!(obs::PROBES, "result" => "made").increment(1);
                Ok((loaded, false))
            }
        }
    }

    /// The identity of the source `reference` names, as some instance found it upstream within
    /// the revalidation interval (stored by [`Jobs::remember_identity`]).
    pub async fn known_identity(&self, reference: &str) -> Option<source::Identity> {
        let bytes = self
            .coalescer
            .cache()
            .get(&keys::identity_key(reference))
            .await
            .ok()??;
        serde_json::from_slice(&bytes).ok()
    }

    /// Shares the identity just found upstream for `reference`, for `ttl`.
    pub async fn remember_identity(
        &self,
        reference: &str,
        identity: &source::Identity,
        ttl: Duration,
    ) {
        let Ok(json) = serde_json::to_vec(identity) else {
            return;
        };
        let key = keys::identity_key(reference);
        if let Err(e) = self.coalescer.cache().put(&key, json.into(), ttl).await {
            tracing::debug!(error = %e, "identity not shared");
        }
    }

    /// Makes segments `n+1 ..= n+k` of rendition `id` in the background, skipping what is
    /// cached. Prefetch is background work in the pools: it starts only on an idle slot, a
    /// request goes before it, and a request that finds no free slot takes one back from it.
    pub fn prefetch(self: &Arc<Self>, media: &Subject, id: &str, n: u32) {
        let count = media.pipeline.segment_count();
        for k in 1..=self.cfg.prefetch {
            let next = n.saturating_add(k);
            if next >= count {
                break;
            }
            let jobs = Arc::clone(self);
            let media = media.clone();
            let out = Output::Segment(id.to_string(), next);
            tokio::spawn(async move {
                if let Err(e) = jobs.output(&media, out, Cause::Prefetch).await {
                    tracing::debug!(error = %e, "prefetch skipped");
                }
            });
        }
    }
}

fn retry_after(wait: Duration) -> u32 {
    u32::try_from(wait.as_secs().clamp(1, 60)).unwrap_or(5)
}

/// What making `out` costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Work {
    /// It encodes (video or audio): the metric label is `transcode`, else `remux`.
    encodes: bool,
    /// It encodes video or decodes pictures (x264, thumbnails): the transcode pool, sized to
    /// the cores. Everything else — remuxes, and AAC encodes of a few hundred milliseconds of
    /// CPU — takes the light pool, so a first audio segment never waits behind video encodes.
    heavy: bool,
}

fn work_of(media: &Subject, out: &Output) -> Work {
    let pm = &media.pipeline;
    let video = |id: &str| {
        pm.rendition(id)
            .is_ok_and(|r| matches!(r.video, Some(VideoOutput::H264 { .. })))
    };
    let audio = |id: &str| {
        pm.rendition(id)
            .is_ok_and(|r| matches!(r.audio, Some(AudioOutput::Aac { .. })))
    };
    let (v, a) = match out {
        Output::Init(id) => (video(id), false),
        Output::Segment(id, _) => (video(id), audio(id)),
        Output::Subtitle(..) => (false, false),
        Output::Thumbnail { .. } | Output::Sheet(_) => (true, false),
        Output::StreamInit | Output::StreamFragment(_) => {
            let (sv, sa) = pm.stream_renditions();
            let any = |f: &dyn Fn(&str) -> bool| [sv, sa].into_iter().flatten().any(|r| f(&r.id));
            (
                any(&video),
                any(&audio) && !matches!(out, Output::StreamInit),
            )
        }
    };
    Work {
        encodes: v || a,
        heavy: v,
    }
}
