//! In-process backend: a moka cache bounded by bytes, with a TTL per entry.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use moka::policy::Expiry;

use crate::{metric, BoxFuture, Cache, CacheError, Key};

/// Default byte budget of [`MemoryCache`]: 512 MiB.
pub const DEFAULT_MEMORY_BUDGET: u64 = 512 * 1024 * 1024;

/// A stored value and the TTL it was stored with.
#[derive(Clone)]
struct Entry {
    value: Bytes,
    ttl: Duration,
}

/// Per-entry expiry: an entry lives for the TTL given at insertion (replacing it restarts it);
/// reads do not extend it.
struct PerEntryTtl;

impl Expiry<Arc<str>, Entry> for PerEntryTtl {
    fn expire_after_create(
        &self,
        _key: &Arc<str>,
        value: &Entry,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }

    fn expire_after_update(
        &self,
        _key: &Arc<str>,
        value: &Entry,
        _updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// In-process cache (moka), bounded by the total bytes of keys plus values.
///
/// The weight of an entry is `key length + value length` (saturated at `u32::MAX`); moka evicts by
/// its TinyLFU policy once the sum passes the budget. A value larger than the whole budget is not
/// kept. Cloning shares the same store.
#[derive(Clone)]
pub struct MemoryCache {
    inner: moka::future::Cache<Arc<str>, Entry>,
    budget: u64,
    /// Bytes inserted since moka's housekeeping last ran (shared by clones).
    unswept: Arc<AtomicU64>,
}

/// Housekeeping (eviction) runs once this fraction of the budget was inserted since the last
/// run: moka evicts only in its housekeeping, which on its own runs after hundreds of writes —
/// with multi-megabyte segments that let the cache hold several times its budget.
const SWEEP_FRACTION: u64 = 16;

impl MemoryCache {
    /// A cache that holds at most `budget_bytes` of keys plus values.
    pub fn new(budget_bytes: u64) -> Self {
        let inner = moka::future::Cache::builder()
            .max_capacity(budget_bytes)
            .weigher(|k: &Arc<str>, e: &Entry| {
                u32::try_from(k.len().saturating_add(e.value.len())).unwrap_or(u32::MAX)
            })
            .expire_after(PerEntryTtl)
            .build();
        MemoryCache {
            inner,
            budget: budget_bytes,
            unswept: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The configured byte budget.
    pub fn budget(&self) -> u64 {
        self.budget
    }

    /// Current total weight (bytes of keys plus values) as moka counts it. Eviction runs in
    /// moka's housekeeping, so this may briefly exceed the budget until
    /// [`MemoryCache::run_pending_tasks`] (or later traffic) runs it.
    pub fn weighted_size(&self) -> u64 {
        self.inner.weighted_size()
    }

    /// Number of entries (approximate, like [`MemoryCache::weighted_size`]).
    pub fn entry_count(&self) -> u64 {
        self.inner.entry_count()
    }

    /// Runs moka's pending housekeeping (eviction, expiry) now.
    pub async fn run_pending_tasks(&self) {
        self.inner.run_pending_tasks().await;
    }

    /// Looks a key up (inherent form of [`Cache::get`]).
    pub async fn get_value(&self, key: &Key) -> Option<Bytes> {
        self.inner.get(key.as_str()).await.map(|e| e.value)
    }

    /// Stores a value for `ttl` (inherent form of [`Cache::put`]). A zero TTL stores nothing.
    pub async fn put_value(&self, key: &Key, value: Bytes, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        let weight = (key.as_str().len() + value.len()) as u64;
        self.inner
            .insert(Arc::from(key.as_str()), Entry { value, ttl })
            .await;
        let unswept = self.unswept.fetch_add(weight, Ordering::Relaxed) + weight;
        if unswept >= self.budget / SWEEP_FRACTION {
            self.unswept.store(0, Ordering::Relaxed);
            self.inner.run_pending_tasks().await;
        }
    }

    /// Removes a key.
    pub async fn remove(&self, key: &Key) {
        self.inner.invalidate(key.as_str()).await;
    }
}

impl Default for MemoryCache {
    fn default() -> Self {
        MemoryCache::new(DEFAULT_MEMORY_BUDGET)
    }
}

impl std::fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCache")
            .field("budget", &self.budget)
            .field("weighted_size", &self.inner.weighted_size())
            .finish()
    }
}

impl Cache for MemoryCache {
    /// A lookup counted like [`crate::Tiered`]'s (`tier="memory"` hit, or a miss), so the hit
    /// ratio exists without Redis too.
    fn get<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, Result<Option<Bytes>, CacheError>> {
        Box::pin(async move {
            let kind = key.kind().as_str();
            let v = self.get_value(key).await;
            match v {
                Some(_) => {
                    metrics::counter!(metric::CACHE_HITS, "kind" => kind, "tier" => "memory")
                        .increment(1)
                }
                None => metrics::counter!(metric::CACHE_MISSES, "kind" => kind).increment(1),
            }
            Ok(v)
        })
    }

    fn usage(&self) -> BoxFuture<'_, Option<(u64, u64)>> {
        Box::pin(async move {
            self.run_pending_tasks().await;
            Some((self.weighted_size(), self.entry_count()))
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a Key,
        value: Bytes,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), CacheError>> {
        Box::pin(async move {
            self.put_value(key, value, ttl).await;
            Ok(())
        })
    }
}
