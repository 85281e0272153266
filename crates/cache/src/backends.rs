//! The one place where concrete backends are chosen: memory only, or memory in front of Redis.

use std::sync::Arc;

use crate::{
    Cache, CacheError, Clock, Lease, MemoryCache, NoLease, RedisCache, RedisConfig, Tiered,
    TokioClock,
};

/// The services a [`crate::Coalescer`] (and the server's job runner) depend on, as traits, plus
/// the concrete Redis handle for health checks.
#[derive(Clone)]
pub struct Backends {
    /// Values: a [`MemoryCache`], or a [`Tiered`] memory L1 + Redis L2.
    pub cache: Arc<dyn Cache>,
    /// Generation locks: the [`RedisCache`], or [`NoLease`] without Redis.
    pub lease: Arc<dyn Lease>,
    /// Time: [`TokioClock`].
    pub clock: Arc<dyn Clock>,
    /// The Redis backend when configured, for readiness checks (`PING`) only; nothing else
    /// should depend on the concrete type.
    pub redis: Option<RedisCache>,
}

impl Backends {
    /// A memory cache of `memory_bytes`, no lock service, tokio's clock.
    pub fn memory(memory_bytes: u64) -> Self {
        Backends {
            cache: Arc::new(MemoryCache::new(memory_bytes)),
            lease: Arc::new(NoLease),
            clock: Arc::new(TokioClock),
            redis: None,
        }
    }

    /// A memory cache of `memory_bytes`, and Redis behind it (values and leases) when `redis` is
    /// given. An unreachable Redis at start is not an error (it starts marked down and
    /// reconnects by itself); an invalid URL is. Must run inside a Tokio runtime.
    pub async fn connect(
        memory_bytes: u64,
        redis: Option<RedisConfig>,
    ) -> Result<Self, CacheError> {
        let Some(cfg) = redis else {
            return Ok(Backends::memory(memory_bytes));
        };
        let redis = RedisCache::connect(cfg).await?;
        Ok(Backends {
            cache: Arc::new(Tiered::new(MemoryCache::new(memory_bytes), redis.clone())),
            lease: Arc::new(redis.clone()),
            clock: Arc::new(TokioClock),
            redis: Some(redis),
        })
    }
}

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backends")
            .field("redis", &self.redis)
            .finish_non_exhaustive()
    }
}
