//! Memory L1 in front of Redis L2.

use std::time::Duration;

use bytes::Bytes;

use crate::{metric, BoxFuture, Cache, CacheError, Key, MemoryCache, RedisCache};

/// TTL given to an L1 copy of an L2 entry that has no expiry in Redis (not written by us).
const FILL_TTL_WITHOUT_EXPIRY: Duration = Duration::from_secs(3600);

/// Two tiers: reads try memory, then Redis (an L2 hit is copied into L1 for the entry's remaining
/// TTL); writes go to both. Redis outages degrade to memory only (see [`RedisCache`]).
#[derive(Clone, Debug)]
pub struct Tiered {
    l1: MemoryCache,
    l2: RedisCache,
}

impl Tiered {
    /// Puts `l1` in front of `l2`.
    pub fn new(l1: MemoryCache, l2: RedisCache) -> Self {
        Tiered { l1, l2 }
    }

    /// The memory tier.
    pub fn memory(&self) -> &MemoryCache {
        &self.l1
    }

    /// The Redis tier.
    pub fn redis(&self) -> &RedisCache {
        &self.l2
    }
}

impl Cache for Tiered {
    fn get<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, Result<Option<Bytes>, CacheError>> {
        Box::pin(async move {
            let kind = key.kind().as_str();
            if let Some(v) = self.l1.get_value(key).await {
                metrics::counter!(metric::CACHE_HITS, "kind" => kind, "tier" => "memory")
                    .increment(1);
                return Ok(Some(v));
            }
            match self.l2.get_with_ttl(key).await {
                Some((v, ttl)) => {
                    metrics::counter!(metric::CACHE_HITS, "kind" => kind, "tier" => "redis")
                        .increment(1);
                    let ttl = ttl.unwrap_or(FILL_TTL_WITHOUT_EXPIRY);
                    self.l1.put_value(key, v.clone(), ttl).await;
                    Ok(Some(v))
                }
                None => {
                    metrics::counter!(metric::CACHE_MISSES, "kind" => kind).increment(1);
                    Ok(None)
                }
            }
        })
    }

    fn usage(&self) -> BoxFuture<'_, Option<(u64, u64)>> {
        self.l1.usage()
    }

    fn put<'a>(
        &'a self,
        key: &'a Key,
        value: Bytes,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), CacheError>> {
        Box::pin(async move {
            self.l1.put_value(key, value.clone(), ttl).await;
            self.l2.put_value(key, value, ttl).await;
            Ok(())
        })
    }
}
