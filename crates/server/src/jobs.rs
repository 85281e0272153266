//! Making outputs for requests: the cache in front, one generation per key (in-process and,
//! with Redis, across instances), bounded pools for transcode and remux work, and prefetch.
//!
//! A request for an output goes: cache hit → bytes (no upstream traffic); else the coalescer
//! elects one maker per key; the maker waits (bounded) for a slot in its pool — transcodes and
//! remuxes have separate pools, so remuxes never queue behind transcodes — fetches the ranges
//! the output needs, makes it on the blocking pool, and caches it. Past the wait bound the answer
//! is 503 with `Retry-After`. A failed make is never cached.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use cache::{Coalescer, CoalescerConfig, Key, KeyParts, Kind, Outcome};
use pipeline::{Cancel, Output};
use plan::{AudioOutput, VideoOutput};
use tokio::sync::{watch, Semaphore};

use source::ByteSource;

use crate::error::{AppError, Result};
use crate::obs;

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
    redis: Option<cache::RedisCache>,
    transcode: Arc<Semaphore>,
    remux: Arc<Semaphore>,
    cfg: JobConfig,
    /// Per output key: the requests (and prefetches) waiting for it, and its running make.
    interest: Mutex<HashMap<Arc<str>, Interest>>,
    next_job: AtomicU64,
}

/// What a make ends with: the bytes and how long making took, or the error every request that
/// waited for it gets.
type JobEnd = Option<std::result::Result<(Bytes, Duration), Arc<AppError>>>;

/// A make in progress, detached from the request that started it: it runs until it ends or
/// until nobody waits for it any more ([`Interest`]).
struct Running {
    id: u64,
    cancel: Cancel,
    end: watch::Receiver<JobEnd>,
}

/// The requests interested in one output key, and the make running for it.
#[derive(Default)]
struct Interest {
    waiting: usize,
    running: Option<Arc<Running>>,
}

/// One request's interest in a key; when the last one goes (the clients disconnected), the
/// running make is cancelled.
struct Interested<'a> {
    jobs: &'a Jobs,
    key: Arc<str>,
}

impl Drop for Interested<'_> {
    fn drop(&mut self) {
        let mut map = self.jobs.interest_map();
        let Some(e) = map.get_mut(&self.key) else {
            return;
        };
        e.waiting = e.waiting.saturating_sub(1);
        if e.waiting == 0 {
            if let Some(r) = map.remove(&self.key).and_then(|e| e.running) {
                r.cancel.cancel();
                metrics::counter!(obs::CANCELLED).increment(1);
                tracing::debug!(key = %self.key, "make cancelled: nobody waits for it");
            }
        }
    }
}

/// Errors inside the coalescer: ours, or its own (busy, the maker we waited for failed).
#[derive(Debug)]
enum JobError {
    App(AppError),
    Coalesce(cache::CoalesceError),
}

impl From<cache::CoalesceError> for JobError {
    fn from(e: cache::CoalesceError) -> Self {
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

impl Jobs {
    /// A runner with a memory cache only (no Redis, whatever `cfg.redis_url` says).
    pub fn memory(cfg: JobConfig) -> Jobs {
        let store: Arc<dyn cache::Cache> = Arc::new(cache::MemoryCache::new(cfg.cache_bytes));
        Jobs::assemble(cfg, store, None)
    }

    fn assemble(
        cfg: JobConfig,
        store: Arc<dyn cache::Cache>,
        redis: Option<cache::RedisCache>,
    ) -> Jobs {
        let coalescer = Coalescer::new(
            store,
            redis.clone(),
            CoalescerConfig {
                max_wait: cfg.max_wait,
                ..CoalescerConfig::default()
            },
        );
        Jobs {
            coalescer,
            redis,
            transcode: Arc::new(Semaphore::new(cfg.transcode_jobs.max(1))),
            remux: Arc::new(Semaphore::new(cfg.remux_jobs.max(1))),
            cfg,
            interest: Mutex::new(HashMap::new()),
            next_job: AtomicU64::new(0),
        }
    }

    /// A runner with a memory cache, and Redis behind it when configured (an unreachable Redis
    /// at start is not fatal: the cache works from memory and reconnects by itself).
    pub async fn new(cfg: JobConfig) -> std::result::Result<Jobs, cache::CacheError> {
        let memory = cache::MemoryCache::new(cfg.cache_bytes);
        let (store, redis): (Arc<dyn cache::Cache>, Option<cache::RedisCache>) =
            match &cfg.redis_url {
                Some(url) => {
                    let redis = cache::RedisCache::connect(cache::RedisConfig::new(url)).await?;
                    (
                        Arc::new(cache::Tiered::new(memory, redis.clone())),
                        Some(redis),
                    )
                }
                None => (Arc::new(memory), None),
            };
        Ok(Jobs::assemble(cfg, store, redis))
    }

    /// The settings.
    pub fn config(&self) -> &JobConfig {
        &self.cfg
    }

    /// The Redis backend, when configured (for `/readyz`).
    pub fn redis(&self) -> Option<&cache::RedisCache> {
        self.redis.as_ref()
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
    /// this call made it.
    ///
    /// The make runs detached from the request that started it: a request that goes away
    /// (client disconnected) leaves it running for the others that wait for the same output,
    /// and the last one to go cancels it. A request whose maker failed (another request's
    /// make, in this process or another instance) tries once more itself.
    pub async fn served(
        self: &Arc<Self>,
        media: &Subject,
        out: Output,
        cause: Cause,
    ) -> Result<Served> {
        let key = key_of(media, &out);
        let _interest = self.interested(&key);
        let work = work_of(media, &out);
        let made = Arc::new(std::sync::Mutex::new(None));
        let mut tries = 0;
        loop {
            tries += 1;
            let r = self
                .coalescer
                .get_or_make(&key, self.cfg.ttl, || {
                    self.attach_or_start(media, &key, out.clone(), work, cause, Arc::clone(&made))
                })
                .await;
            let (bytes, outcome) = match r {
                Ok(v) => v,
                Err(JobError::App(e)) => return Err(e),
                Err(JobError::Coalesce(cache::CoalesceError::MakerFailed { message })) => {
                    if tries < 2 {
                        tracing::debug!(%message, "the make this request waited for failed; trying");
                        continue;
                    }
                    return Err(cache::CoalesceError::MakerFailed { message }.into());
                }
                Err(JobError::Coalesce(e)) => return Err(e.into()),
            };
            let took = *made.lock().unwrap_or_else(|p| p.into_inner());
            return Ok(Served {
                bytes,
                hit: outcome == Outcome::Hit,
                took,
                etag: crate::semantics::etag_of_key(key.as_str()),
            });
        }
    }

    fn interest_map(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Interest>> {
        // A poisoned lock only means another thread panicked mid-update of a plain map.
        self.interest.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn interested(&self, key: &Key) -> Interested<'_> {
        let key: Arc<str> = Arc::from(key.as_str());
        self.interest_map()
            .entry(Arc::clone(&key))
            .or_default()
            .waiting += 1;
        Interested { jobs: self, key }
    }

    /// Waits for the make of `key` running in this process, or starts one.
    async fn attach_or_start(
        self: &Arc<Self>,
        media: &Subject,
        key: &Key,
        out: Output,
        work: Work,
        cause: Cause,
        took: Arc<std::sync::Mutex<Option<Duration>>>,
    ) -> std::result::Result<Bytes, JobError> {
        let running = {
            let mut map = self.interest_map();
            let e = map.entry(Arc::from(key.as_str())).or_default();
            match &e.running {
                Some(r) => Arc::clone(r),
                None => {
                    let r = self.start(media, key, out, work, cause);
                    e.running = Some(Arc::clone(&r));
                    r
                }
            }
        };
        let mut end = running.end.clone();
        let ended = end
            .wait_for(Option::is_some)
            .await
            .map_err(|_| AppError::Internal("the make ended without a result".into()))?;
        match ended.as_ref() {
            Some(Ok((bytes, t))) => {
                *took.lock().unwrap_or_else(|p| p.into_inner()) = Some(*t);
                Ok(bytes.clone())
            }
            Some(Err(e)) => Err(JobError::App(e.replay())),
            None => Err(JobError::App(AppError::Internal(
                "the make ended without a result".into(),
            ))),
        }
    }

    /// Starts making `out` on a task of its own.
    fn start(
        self: &Arc<Self>,
        media: &Subject,
        key: &Key,
        out: Output,
        work: Work,
        cause: Cause,
    ) -> Arc<Running> {
        let (tx, rx) = watch::channel(None);
        let cancel = Cancel::new();
        let id = self.next_job.fetch_add(1, Ordering::Relaxed);
        let running = Arc::new(Running {
            id,
            cancel: cancel.clone(),
            end: rx,
        });
        let jobs = Arc::clone(self);
        let media = media.clone();
        let key: Arc<str> = Arc::from(key.as_str());
        tokio::spawn(async move {
            let r = jobs.make(&media, out, work, cause, cancel).await;
            tx.send_replace(Some(r.map_err(Arc::new)));
            let mut map = jobs.interest_map();
            if let Some(e) = map.get_mut(&key) {
                if e.running.as_ref().is_some_and(|r| r.id == id) {
                    e.running = None;
                }
            }
        });
        running
    }

    async fn make(
        &self,
        media: &Subject,
        out: Output,
        work: Work,
        cause: Cause,
        cancel: Cancel,
    ) -> Result<(Bytes, Duration)> {
        let pool = if work.heavy {
            &self.transcode
        } else {
            &self.remux
        };
        let permit = tokio::time::timeout(self.cfg.max_wait, Arc::clone(pool).acquire_owned())
            .await
            .map_err(|_| {
                AppError::Unavailable("too many jobs; try again", retry_after(self.cfg.max_wait))
            })?
            .map_err(AppError::internal)?;
        let cancelled = || AppError::Unavailable("cancelled: nobody waits for it", 1);
        if cancel.is_cancelled() {
            return Err(cancelled());
        }
        let started = std::time::Instant::now();
        let pm = Arc::clone(&media.pipeline);
        let ranges = pm.needs(&out).map_err(AppError::from)?;
        let data = pipeline::io::fetch(media.source.as_ref(), &ranges)
            .await
            .map_err(AppError::from)?;
        if cancel.is_cancelled() {
            return Err(cancelled());
        }
        let kind_label = if work.encodes { "transcode" } else { "remux" };
        let span = tracing::info_span!("make", kind = kind_label, out = ?out);
        let made = tokio::task::spawn_blocking(move || {
            // The pool slot is held until the blocking work ends, cancelled or not.
            let _permit = permit;
            let _g = span.enter();
            pm.make_cancellable(&out, &data, &cancel)
        })
        .await
        .map_err(AppError::internal)?;
        let made = match made {
            Err(pipeline::PipelineError::Av(pipeline::av::AvError::Cancelled)) => {
                return Err(cancelled())
            }
            other => other?,
        };
        metrics::counter!(obs::SEGMENTS, "kind" => kind_label, "cause" => cause.label())
            .increment(1);
        // Cached bytes hold exactly their length (the writer's Vec may have grown to twice
        // it): the memory budget weighs lengths.
        Ok((Bytes::from(made.into_boxed_slice()), started.elapsed()))
    }

    /// The index (and `moov`) of `source`: from the cache (memory, or Redis where another
    /// instance probed it), or probed now — once per source identity at a time, in this
    /// process and across instances — and cached for the output TTL. The flag says whether it
    /// came from the cache.
    pub async fn probed(&self, source: &dyn ByteSource) -> Result<(pipeline::io::Loaded, bool)> {
        let identity = source.identity().key();
        let key = Key::new(KeyParts {
            kind: Kind::Index,
            source: &identity,
            plan_version: probe::INDEX_VERSION,
            output_version: 0,
            rendition: "",
            index: 0,
        });
        let fresh = Arc::new(std::sync::Mutex::new(None));
        let r = self
            .coalescer
            .get_or_make(&key, self.cfg.ttl, || async {
                let loaded = pipeline::io::probe(source)
                    .await
                    .map_err(|e| JobError::App(e.into()))?;
                let (loaded, bytes) = tokio::task::spawn_blocking(move || {
                    let bytes = encode_probed(&loaded);
                    (loaded, bytes)
                })
                .await
                .map_err(|e| JobError::App(AppError::internal(e)))?;
                let bytes = bytes.map_err(JobError::App)?;
                *fresh.lock().unwrap_or_else(|p| p.into_inner()) = Some(loaded);
                Ok::<_, JobError>(bytes)
            })
            .await;
        let (bytes, _) = match r {
            Ok(v) => v,
            Err(JobError::App(e)) => return Err(e),
            Err(JobError::Coalesce(e)) => return Err(e.into()),
        };
        if let Some(loaded) = fresh.lock().unwrap_or_else(|p| p.into_inner()).take() {
            metrics::counter!(obs::PROBES, "result" => "made").increment(1);
            return Ok((loaded, false));
        }
        let decoded = tokio::task::spawn_blocking(move || decode_probed(&bytes))
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
                if let Ok(b) = encode_probed(&loaded) {
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
            .get(&identity_key(reference))
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
        let key = identity_key(reference);
        if let Err(e) = self.coalescer.cache().put(&key, json.into(), ttl).await {
            tracing::debug!(error = %e, "identity not shared");
        }
    }

    /// Makes segments `n+1 ..= n+k` of rendition `id` in the background, skipping what is
    /// cached. Each runs within the same pools (a prefetch waits like a request and gives up
    /// quietly past the bound), so prefetch never starves requests of more than the pool.
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
        Output::Thumbnail { .. } => (true, false),
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

/// The cache key of `out`: source identity, plan and output versions, every output-shaping
/// option, the output itself.
fn key_of(media: &Subject, out: &Output) -> Key {
    let (kind, index) = match out {
        Output::Init(_) | Output::StreamInit => (Kind::Init, 0),
        Output::Segment(_, n) | Output::StreamFragment(n) => (Kind::Segment, u64::from(*n)),
        Output::Subtitle(_, n) => (Kind::Vtt, u64::from(*n)),
        Output::Thumbnail { ms, .. } => (Kind::Thumb, *ms),
    };
    let rendition = format!("{}|{out:?}", media.pipeline.params_key());
    Key::new(KeyParts {
        kind,
        source: &media.source.identity().key(),
        plan_version: plan::PLAN_VERSION,
        output_version: pipeline::OUTPUT_VERSION,
        rendition: &rendition,
        index,
    })
}

/// The key of the identity record of a source reference (URL and forwarded headers).
fn identity_key(reference: &str) -> Key {
    Key::new(KeyParts {
        kind: Kind::Identity,
        source: reference,
        plan_version: 0,
        output_version: 0,
        rendition: "",
        index: 0,
    })
}

/// First bytes of a cached index: a name and a format version.
const PROBED_MAGIC: &[u8; 4] = b"HGI1";

/// A probe result as cache bytes: magic, the index as JSON (length-prefixed, u32 BE), then a
/// flag byte and the `moov` bytes when there is one.
fn encode_probed(l: &pipeline::io::Loaded) -> std::result::Result<Bytes, AppError> {
    let json = serde_json::to_vec(&l.index).map_err(AppError::internal)?;
    let len = u32::try_from(json.len())
        .map_err(|_| AppError::Internal("index too large to cache".into()))?;
    let moov = l.moov.as_deref().unwrap_or_default();
    let mut out = Vec::with_capacity(4 + 4 + json.len() + 1 + moov.len());
    out.extend_from_slice(PROBED_MAGIC);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&json);
    out.push(u8::from(l.moov.is_some()));
    out.extend_from_slice(moov);
    Ok(Bytes::from(out))
}

/// The inverse of [`encode_probed`]; `None` for anything else. The cost is zero (nothing was
/// read from the source).
fn decode_probed(b: &Bytes) -> Option<pipeline::io::Loaded> {
    let rest = b.strip_prefix(PROBED_MAGIC.as_slice())?;
    let len = usize::try_from(u32::from_be_bytes(rest.get(..4)?.try_into().ok()?)).ok()?;
    let json = rest.get(4..4usize.checked_add(len)?)?;
    let index: probe::MediaIndex = serde_json::from_slice(json).ok()?;
    let at = 4 + 4 + len;
    let moov = match b.get(at)? {
        0 => None,
        1 => Some(b.slice(at + 1..)),
        _ => return None,
    };
    Some(pipeline::io::Loaded {
        index,
        moov,
        cost: source::ProbeCost {
            requests: 0,
            bytes: 0,
        },
    })
}
