//! # cache — probe results, plans, init and media segments, shared across instances
//!
//! This crate owns the [`Cache`] trait, its backends, the key scheme and request coalescing.
//! It knows nothing of HTTP, FFmpeg or the other hlsgate crates: versions arrive as plain `u32`s
//! and values as [`Bytes`].
//!
//! ## Backends
//!
//! - [`MemoryCache`]: in-process moka cache bounded by **bytes** (weight = key length + value
//!   length; default [`DEFAULT_MEMORY_BUDGET`] = 512 MiB) with a TTL per entry. The default when no
//!   Redis is configured.
//! - [`RedisCache`]: Redis through `redis::aio::ConnectionManager` (`GET`, `SET … PX`).
//! - [`Tiered`]: a [`MemoryCache`] L1 in front of a [`RedisCache`] L2; an L2 hit fills L1 with
//!   the entry's remaining TTL.
//!
//! ## Key scheme
//!
//! A [`Key`] is rendered as `hlsgate:v1:<kind>:<sha256 hex>` where `<kind>` is one of
//! `index|moov|plan|init|segment|vtt|thumb` and the digest covers, length-prefixed, the source
//! identity (URL or path + size + ETag/Last-Modified/mtime), `PLAN_VERSION`, `OUTPUT_VERSION`,
//! the rendition parameters and the index. Names are fixed-length and never contain the source
//! URL (which may carry credentials). A changed source or a bumped version is a different key, so
//! nothing is ever invalidated, only left to expire. The generation lock of a key is
//! `hlsgate:v1:lock:<kind>:<sha256 hex>`.
//!
//! ## Services as traits
//!
//! [`Cache`] (values), [`Lease`] (cross-instance generation locks: [`RedisCache`], [`NoLease`],
//! [`MemoryLease`]) and [`Clock`] ([`TokioClock`]) are what the [`Coalescer`] and the server's
//! job runner depend on, as `Arc<dyn …>`, so tests inject fakes. [`Backends`] is the one place
//! the concrete types are chosen.
//!
//! ## Coalescing and the lock protocol
//!
//! [`Coalescer::get_or_make`] returns the cached value or makes it exactly once:
//!
//! 1. Look the key up (L1, then L2). Hit → [`Outcome::Hit`].
//! 2. In-process: the first caller starts a *flight* whose `make` runs on a task of its own;
//!    later callers join it ([`Outcome::Waited`]). A caller that goes away leaves the make
//!    running for the others; when the last one goes, the make's [`Cancel`] fires and its
//!    future is dropped. If `make` fails, the starter gets its error, the others
//!    [`CoalesceError::MakerFailed`], and nothing is cached. The make's [`MakeCtx`] also carries
//!    the [`Priority`] of its waiters (a request raises it), for the pools it waits in.
//! 3. Across instances, through the [`Lease`]: the flight loops { `GET` value → done if present;
//!    `try_acquire` → on success check the value once more, else make it, renewing the lease
//!    every `renew_every`, store the value, then release; if held, sleep `poll_interval` and
//!    loop; if unavailable, make in-process only }. A crashed holder's lock expires after its
//!    lease. A cancelled holder releases its lock from a spawned task.
//! 4. Waiting for another instance is bounded by `max_wait`; past it every waiter gets
//!    [`CoalesceError::Busy`] (the server answers 503 + Retry-After).
//!
//! ## Failure behaviour
//!
//! Redis is an optimisation, never a dependency: each Redis operation has a short timeout
//! (default 200 ms); a failed read is a miss and a failed write is skipped, without an error. The
//! first failure marks Redis down (gauge `hlsgate_redis_up` = 0, [`RedisCache::healthy`] = false,
//! a warning at most once a minute); while down, Redis operations are skipped except one probe a
//! second, and coalescing is in-process only. The connection manager reconnects by itself; the
//! first successful operation marks Redis up again.
//!
//! ## Metrics (through the `metrics` facade)
//!
//! See [`metric`] for names and labels. `docs/caching.md` has the same material for operators,
//! with the test list.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use bytes::Bytes;

mod backends;
mod cancel;
mod clock;
mod coalesce;
mod key;
mod lease;
mod memory;
mod redis;
mod tiered;

pub use backends::Backends;
pub use cancel::Cancel;
pub use clock::{Clock, TokioClock};
pub use coalesce::{
    CoalesceError, Coalescer, CoalescerConfig, MakeCtx, Outcome, Priority, PriorityWatch,
};
pub use key::{Key, KeyParts, Kind, KEY_PREFIX, KEY_SCHEME_VERSION};
pub use lease::{Lease, LeaseAttempt, LeaseToken, MemoryLease, NoLease};
pub use memory::{MemoryCache, DEFAULT_MEMORY_BUDGET};
pub use redis::{LockAttempt, RedisCache, RedisConfig};
pub use tiered::Tiered;

/// A boxed, sendable future (the return type of [`Cache`] methods).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Errors of this crate's backends.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// Invalid configuration (e.g. a malformed Redis URL).
    #[error("cache configuration: {message}")]
    Config {
        /// What is wrong.
        message: String,
    },
    /// A backend failed in a way it could not hide (the built-in backends hide Redis outages as
    /// misses; this is for other implementations of [`Cache`]).
    #[error("cache backend {backend}: {message}")]
    Backend {
        /// Which backend.
        backend: &'static str,
        /// What failed.
        message: String,
    },
}

/// A byte cache. Implementations are cheap to share (`Arc<dyn Cache>`); tests may inject fakes.
pub trait Cache: Send + Sync {
    /// Looks a key up. `Ok(None)` is a miss.
    fn get<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, Result<Option<Bytes>, CacheError>>;

    /// Stores a value for `ttl`. A zero TTL stores nothing.
    fn put<'a>(
        &'a self,
        key: &'a Key,
        value: Bytes,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), CacheError>>;

    /// (bytes, entries) held in this process's memory, when the cache has a memory tier (for
    /// the metrics; pending housekeeping runs first, so the figures are current).
    fn usage(&self) -> BoxFuture<'_, Option<(u64, u64)>> {
        Box::pin(async { None })
    }
}

/// Metric names (and their labels) this crate records through the `metrics` facade.
pub mod metric {
    /// Gauge: 1 when the last Redis operation succeeded, 0 when Redis is marked down.
    pub const REDIS_UP: &str = "hlsgate_redis_up";
    /// Counter, labels `kind` (key kind) and `tier` (`memory`|`redis`): lookups through
    /// [`crate::Tiered`] served by a tier.
    pub const CACHE_HITS: &str = "hlsgate_cache_hits_total";
    /// Counter, label `kind`: lookups through [`crate::Tiered`] that missed both tiers.
    pub const CACHE_MISSES: &str = "hlsgate_cache_misses_total";
    /// Counter, labels `kind` and `outcome` (`hit`|`made`|`waited`|`busy`|`failed`|`cancelled`):
    /// results of [`crate::Coalescer::get_or_make`].
    pub const COALESCE: &str = "hlsgate_coalesce_total";
    /// Gauge: Redis's `used_memory` (the whole Redis server, set at each scrape).
    pub const REDIS_BYTES: &str = "hlsgate_cache_redis_bytes";
    /// Gauge: keys in hlsgate's Redis database (`DBSIZE`, set at each scrape).
    pub const REDIS_ENTRIES: &str = "hlsgate_cache_redis_entries";
}
