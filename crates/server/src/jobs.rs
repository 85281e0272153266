//! Making outputs for requests: the cache in front, one generation per key (in-process and,
//! with Redis, across instances), bounded pools for transcode and remux work, and prefetch.
//!
//! A request for an output goes: cache hit → bytes (no upstream traffic); else the coalescer
//! elects one maker per key; the maker waits (bounded) for a slot in its pool — transcodes and
//! remuxes have separate pools, so remuxes never queue behind transcodes — fetches the ranges
//! the output needs, makes it on the blocking pool, and caches it. Past the wait bound the answer
//! is 503 with `Retry-After`. A failed make is never cached.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cache::{Coalescer, CoalescerConfig, Key, KeyParts, Kind, Outcome};
use pipeline::Output;
use plan::{AudioOutput, VideoOutput};
use tokio::sync::Semaphore;

use crate::error::{AppError, Result};
use crate::media::Media;
use crate::obs;

/// Settings of the job runner.
#[derive(Debug, Clone)]
pub struct JobConfig {
    /// Memory cache budget in bytes.
    pub cache_bytes: u64,
    /// Redis URL for the shared cache (`redis://127.0.0.1:6379`), if any.
    pub redis_url: Option<String>,
    /// How long made outputs are kept.
    pub ttl: Duration,
    /// Concurrent transcode jobs (default: the number of cores).
    pub transcode_jobs: usize,
    /// Concurrent remux jobs.
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
}

impl Served {
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
    pub async fn output(&self, media: &Arc<Media>, out: Output, cause: Cause) -> Result<Bytes> {
        Ok(self.served(media, out, cause).await?.bytes)
    }

    /// Like [`Jobs::output`], with what it cost: cache hit or not, and the generation time when
    /// this call made it.
    pub async fn served(&self, media: &Arc<Media>, out: Output, cause: Cause) -> Result<Served> {
        let key = key_of(media, &out);
        let heavy = is_transcode(media, &out);
        let made = Arc::new(std::sync::Mutex::new(None));
        let (bytes, outcome) = self
            .coalescer
            .get_or_make(&key, self.cfg.ttl, || {
                self.make(media, out.clone(), heavy, cause, Arc::clone(&made))
            })
            .await?;
        let took = *made.lock().unwrap_or_else(|p| p.into_inner());
        Ok(Served {
            bytes,
            hit: outcome == Outcome::Hit,
            took,
        })
    }

    async fn make(
        &self,
        media: &Arc<Media>,
        out: Output,
        heavy: bool,
        cause: Cause,
        took: Arc<std::sync::Mutex<Option<Duration>>>,
    ) -> Result<Bytes> {
        let pool = if heavy { &self.transcode } else { &self.remux };
        let _permit = tokio::time::timeout(self.cfg.max_wait, Arc::clone(pool).acquire_owned())
            .await
            .map_err(|_| {
                AppError::Unavailable("too many jobs; try again", retry_after(self.cfg.max_wait))
            })?
            .map_err(AppError::internal)?;
        let started = std::time::Instant::now();
        let pm = Arc::clone(&media.pipeline);
        let ranges = pm.needs(&out).map_err(AppError::from)?;
        let data = pipeline::io::fetch(media.source.as_ref(), &ranges)
            .await
            .map_err(AppError::from)?;
        let kind_label = if heavy { "transcode" } else { "remux" };
        let span = tracing::info_span!("make", kind = kind_label, out = ?out);
        let made = tokio::task::spawn_blocking(move || {
            let _g = span.enter();
            pm.make(&out, &data)
        })
        .await
        .map_err(AppError::internal)??;
        metrics::counter!(obs::SEGMENTS, "kind" => kind_label, "cause" => cause.label())
            .increment(1);
        *took.lock().unwrap_or_else(|p| p.into_inner()) = Some(started.elapsed());
        Ok(Bytes::from(made))
    }

    /// Makes segments `n+1 ..= n+k` of rendition `id` in the background, skipping what is
    /// cached. Each runs within the same pools (a prefetch waits like a request and gives up
    /// quietly past the bound), so prefetch never starves requests of more than the pool.
    pub fn prefetch(self: &Arc<Self>, media: &Arc<Media>, id: &str, n: u32) {
        let count = media.pipeline.segment_count();
        for k in 1..=self.cfg.prefetch {
            let next = n.saturating_add(k);
            if next >= count {
                break;
            }
            let jobs = Arc::clone(self);
            let media = Arc::clone(media);
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

/// Whether `out` needs FFmpeg encoding (transcode pool) rather than a remux.
fn is_transcode(media: &Media, out: &Output) -> bool {
    let pm = &media.pipeline;
    let transcoded = |id: &str| {
        pm.rendition(id).is_ok_and(|r| {
            matches!(r.video, Some(VideoOutput::H264 { .. }))
                || matches!(r.audio, Some(AudioOutput::Aac { .. }))
        })
    };
    match out {
        Output::Init(id) => pm
            .rendition(id)
            .is_ok_and(|r| matches!(r.video, Some(VideoOutput::H264 { .. }))),
        Output::Segment(id, _) => transcoded(id),
        Output::Subtitle(..) => false,
        Output::Thumbnail { .. } => true,
        Output::StreamInit | Output::StreamFragment(_) => {
            let (v, a) = pm.stream_renditions();
            [v, a].into_iter().flatten().any(|r| transcoded(&r.id))
        }
    }
}

/// The cache key of `out`: source identity, plan and output versions, every output-shaping
/// option, the output itself.
fn key_of(media: &Media, out: &Output) -> Key {
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
