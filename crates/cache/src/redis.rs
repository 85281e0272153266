//! Shared backend: Redis through `redis::aio::ConnectionManager`, failing fast and quietly.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script, Value};

use crate::{metric, BoxFuture, Cache, CacheError, Key, Lease, LeaseAttempt, LeaseToken};

/// Settings of [`RedisCache`]. Every field has a default (see [`RedisConfig::new`]).
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://[user:pass@]host:port[/db]` (or `rediss://`, `unix://`).
    pub url: String,
    /// Bound on each Redis operation, connection wait included. Past it the operation counts as
    /// failed: a read is a miss, a write is skipped. Default 200 ms.
    pub op_timeout: Duration,
    /// While Redis is marked down, operations are skipped without touching the network, except
    /// one probe per this interval. Default 1 s.
    pub probe_interval: Duration,
    /// Minimum time between two "Redis unavailable" warnings in the log. Default 60 s.
    pub warn_interval: Duration,
}

impl RedisConfig {
    /// Defaults for `url`: 200 ms operation timeout, 1 s probe interval, one warning a minute.
    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            op_timeout: Duration::from_millis(200),
            probe_interval: Duration::from_secs(1),
            warn_interval: Duration::from_secs(60),
        }
    }
}

/// Result of trying to take a generation lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockAttempt {
    /// The lock is ours (`SET NX` succeeded).
    Acquired,
    /// Another holder has it.
    Held,
    /// Redis is down or did not answer in time: coordinate in-process only.
    Unavailable,
}

/// Compare-and-delete: release the lock only if it still carries our token.
const RELEASE_LUA: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Compare-and-extend: renew the lease only if the lock still carries our token.
const RENEW_LUA: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// Redis cache backend. Cloning shares the connection and the health state.
///
/// Failure behaviour: every operation is bounded by [`RedisConfig::op_timeout`]; a failed or late
/// read is a miss (`Ok(None)`), a failed write is skipped (`Ok(())`), never an error. The first
/// failure marks Redis down (gauge `hlsgate_redis_up` = 0, [`RedisCache::healthy`] = false) and
/// logs a warning (at most one per [`RedisConfig::warn_interval`]); while down, operations return
/// at once except one probe per [`RedisConfig::probe_interval`]. The `ConnectionManager`
/// reconnects in the background; the first successful operation marks Redis up again.
#[derive(Clone)]
pub struct RedisCache {
    inner: Arc<Inner>,
}

struct Inner {
    conn: ConnectionManager,
    cfg: RedisConfig,
    healthy: AtomicBool,
    /// Milliseconds since `epoch` of the last probe while down.
    last_probe_ms: AtomicU64,
    /// Milliseconds since `epoch` of the last warning, plus one (0 = never warned).
    last_warn_ms: AtomicU64,
    epoch: Instant,
    release: Script,
    renew: Script,
    /// Random per process: lease tokens are `<seed>-<counter>`.
    token_seed: u64,
    next_token: AtomicU64,
}

impl RedisCache {
    /// Creates the backend and pings Redis once (bounded by the operation timeout) to set the
    /// initial health. Redis being down is not an error: the backend starts marked down and
    /// reconnects by itself. Errors only for an invalid URL or configuration. Must run inside a
    /// Tokio runtime.
    pub async fn connect(cfg: RedisConfig) -> Result<Self, CacheError> {
        let client = redis::Client::open(cfg.url.as_str()).map_err(|e| CacheError::Config {
            message: format!("redis url: {e}"),
        })?;
        let mgr_cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(cfg.op_timeout))
            .set_response_timeout(Some(cfg.op_timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(20))
            .set_max_delay(Duration::from_millis(200));
        let conn = ConnectionManager::new_lazy_with_config(client, mgr_cfg).map_err(|e| {
            CacheError::Config {
                message: format!("redis connection manager: {e}"),
            }
        })?;
        let cache = RedisCache {
            inner: Arc::new(Inner {
                conn,
                cfg,
                healthy: AtomicBool::new(true),
                last_probe_ms: AtomicU64::new(0),
                last_warn_ms: AtomicU64::new(0),
                epoch: Instant::now(),
                release: Script::new(RELEASE_LUA),
                renew: Script::new(RENEW_LUA),
                token_seed: random_seed(),
                next_token: AtomicU64::new(1),
            }),
        };
        metrics::gauge!(metric::REDIS_UP).set(1.0);
        cache.ping().await;
        Ok(cache)
    }

    /// Whether the last Redis operation succeeded (for `/readyz`).
    pub fn healthy(&self) -> bool {
        self.inner.healthy.load(Ordering::Relaxed)
    }

    /// Sends `PING` (even while marked down) and returns the resulting health.
    pub async fn ping(&self) -> bool {
        let mut c = self.inner.conn.clone();
        let r = self
            .attempt("ping", async move {
                redis::cmd("PING").query_async::<Value>(&mut c).await
            })
            .await;
        r.is_some()
    }

    /// Redis's memory in use (`INFO memory`'s `used_memory`) and the keys of its database
    /// (`DBSIZE`); `None` when Redis does not answer in time.
    pub async fn usage(&self) -> Option<(u64, u64)> {
        if !self.should_try() {
            return None;
        }
        let mut c = self.inner.conn.clone();
        let (info, keys): (String, u64) = self
            .attempt("usage", async move {
                redis::pipe()
                    .cmd("INFO")
                    .arg("memory")
                    .cmd("DBSIZE")
                    .query_async(&mut c)
                    .await
            })
            .await?;
        let bytes = info
            .lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse::<u64>().ok())?;
        Some((bytes, keys))
    }

    /// Reads a value and its remaining TTL (`None` when it has no expiry). A miss, Redis down and
    /// a late answer all give `None`.
    pub async fn get_with_ttl(&self, key: &Key) -> Option<(Bytes, Option<Duration>)> {
        if !self.should_try() {
            return None;
        }
        let mut c = self.inner.conn.clone();
        let k = key.as_str();
        let (v, pttl): (Option<Vec<u8>>, i64) = self
            .attempt("get", async move {
                redis::pipe()
                    .cmd("GET")
                    .arg(k)
                    .cmd("PTTL")
                    .arg(k)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        let ttl = u64::try_from(pttl).ok().map(Duration::from_millis);
        v.map(|v| (Bytes::from(v), ttl))
    }

    /// Reads a value (see [`RedisCache::get_with_ttl`]).
    pub async fn get_value(&self, key: &Key) -> Option<Bytes> {
        if !self.should_try() {
            return None;
        }
        let mut c = self.inner.conn.clone();
        let k = key.as_str();
        let v: Option<Vec<u8>> = self
            .attempt("get", async move {
                redis::cmd("GET").arg(k).query_async(&mut c).await
            })
            .await?;
        v.map(Bytes::from)
    }

    /// `SET key value PX ttl`. Returns whether Redis stored it (false when down or late).
    pub async fn put_value(&self, key: &Key, value: Bytes, ttl: Duration) -> bool {
        let ms = ttl_ms(ttl);
        if ms == 0 || !self.should_try() {
            return false;
        }
        let mut c = self.inner.conn.clone();
        let k = key.as_str();
        self.attempt("set", async move {
            redis::cmd("SET")
                .arg(k)
                .arg(value.as_ref())
                .arg("PX")
                .arg(ms)
                .query_async::<Value>(&mut c)
                .await
        })
        .await
        .is_some()
    }

    /// `SET lock_key token NX PX lease`.
    pub async fn try_lock(&self, lock_key: &str, token: &str, lease: Duration) -> LockAttempt {
        if !self.should_try() {
            return LockAttempt::Unavailable;
        }
        let mut c = self.inner.conn.clone();
        let ms = ttl_ms(lease).max(1);
        let r = self
            .attempt("lock", async move {
                redis::cmd("SET")
                    .arg(lock_key)
                    .arg(token)
                    .arg("NX")
                    .arg("PX")
                    .arg(ms)
                    .query_async::<Value>(&mut c)
                    .await
            })
            .await;
        match r {
            None => LockAttempt::Unavailable,
            Some(Value::Nil) => LockAttempt::Held,
            Some(_) => LockAttempt::Acquired,
        }
    }

    /// Extends the lease if the lock still carries `token`. `Some(false)`: the lock was lost
    /// (expired, maybe taken by another instance); `None`: Redis unavailable.
    pub async fn renew_lock(&self, lock_key: &str, token: &str, lease: Duration) -> Option<bool> {
        if !self.should_try() {
            return None;
        }
        let mut c = self.inner.conn.clone();
        let ms = ttl_ms(lease).max(1);
        let script = &self.inner.renew;
        let n: i64 = self
            .attempt("renew", async move {
                script
                    .key(lock_key)
                    .arg(token)
                    .arg(ms)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Some(n == 1)
    }

    /// Deletes the lock if it still carries `token` (compare-and-delete in one Lua script).
    /// Returns whether it was deleted.
    pub async fn release_lock(&self, lock_key: &str, token: &str) -> bool {
        if !self.should_try() {
            return false;
        }
        let mut c = self.inner.conn.clone();
        let script = &self.inner.release;
        let n: Option<i64> = self
            .attempt("unlock", async move {
                script.key(lock_key).arg(token).invoke_async(&mut c).await
            })
            .await;
        n == Some(1)
    }

    /// Whether an operation should go to the network now: always while healthy; while down, one
    /// caller per probe interval.
    fn should_try(&self) -> bool {
        if self.healthy() {
            return true;
        }
        let now = self.now_ms();
        let last = self.inner.last_probe_ms.load(Ordering::Relaxed);
        let interval = u64::try_from(self.inner.cfg.probe_interval.as_millis()).unwrap_or(u64::MAX);
        now.saturating_sub(last) >= interval
            && self
                .inner
                .last_probe_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// Runs one Redis operation under the timeout and updates the health state.
    async fn attempt<T, F>(&self, what: &'static str, op: F) -> Option<T>
    where
        F: std::future::Future<Output = Result<T, RedisError>>,
    {
        match tokio::time::timeout(self.inner.cfg.op_timeout, op).await {
            Ok(Ok(v)) => {
                self.mark_up();
                Some(v)
            }
            Ok(Err(e)) => {
                if e.is_io_error() || e.is_unrecoverable_error() || e.is_timeout() {
                    self.mark_down(what, &e);
                } else {
                    // A command-level error (e.g. OOM under maxmemory): Redis is reachable.
                    self.warn_limited(what, &e);
                }
                None
            }
            Err(_) => {
                self.mark_down(what, &"timed out");
                None
            }
        }
    }

    fn mark_up(&self) {
        if !self.inner.healthy.swap(true, Ordering::Relaxed) {
            metrics::gauge!(metric::REDIS_UP).set(1.0);
            tracing::info!(url = %redacted(&self.inner.cfg.url), "redis reachable again");
        }
    }

    fn mark_down(&self, what: &'static str, err: &dyn std::fmt::Display) {
        if self.inner.healthy.swap(false, Ordering::Relaxed) {
            metrics::gauge!(metric::REDIS_UP).set(0.0);
            self.inner
                .last_probe_ms
                .store(self.now_ms(), Ordering::Relaxed);
        }
        self.warn_limited(what, err);
    }

    fn warn_limited(&self, what: &'static str, err: &dyn std::fmt::Display) {
        let now = self.now_ms().saturating_add(1);
        let last = self.inner.last_warn_ms.load(Ordering::Relaxed);
        let interval = u64::try_from(self.inner.cfg.warn_interval.as_millis()).unwrap_or(u64::MAX);
        if (last == 0 || now.saturating_sub(last) >= interval)
            && self
                .inner
                .last_warn_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                op = what,
                url = %redacted(&self.inner.cfg.url),
                error = %err,
                "redis unavailable; serving from memory only (next warning in at most {:?})",
                self.inner.cfg.warn_interval
            );
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.inner.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("url", &redacted(&self.inner.cfg.url))
            .field("healthy", &self.healthy())
            .finish()
    }
}

impl Cache for RedisCache {
    fn get<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, Result<Option<Bytes>, CacheError>> {
        Box::pin(async move { Ok(self.get_value(key).await) })
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

/// The generation lock as a [`Lease`]: `SET NX PX` with a token unique per attempt,
/// compare-and-`PEXPIRE` to renew, compare-and-`DEL` to release. Redis down or late is
/// [`LeaseAttempt::Unavailable`].
impl Lease for RedisCache {
    fn try_acquire<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, LeaseAttempt> {
        Box::pin(async move {
            let n = self.inner.next_token.fetch_add(1, Ordering::Relaxed);
            let token = format!("{:016x}-{n:x}", self.inner.token_seed);
            match self.try_lock(key, &token, ttl).await {
                LockAttempt::Acquired => LeaseAttempt::Acquired(LeaseToken::new(token)),
                LockAttempt::Held => LeaseAttempt::Held,
                LockAttempt::Unavailable => LeaseAttempt::Unavailable,
            }
        })
    }

    fn renew<'a>(
        &'a self,
        key: &'a str,
        token: &'a LeaseToken,
        ttl: Duration,
    ) -> BoxFuture<'a, Option<bool>> {
        Box::pin(self.renew_lock(key, token.as_str(), ttl))
    }

    fn release<'a>(&'a self, key: &'a str, token: &'a LeaseToken) -> BoxFuture<'a, bool> {
        Box::pin(self.release_lock(key, token.as_str()))
    }
}

/// A per-process random number (std's randomly keyed hasher over the pid and the time).
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

fn ttl_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The URL without its password, for logs.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redaction_hides_credentials() {
        assert_eq!(
            super::redacted("redis://user:pw@host:6379/0"),
            "redis://***@host:6379/0"
        );
        assert_eq!(super::redacted("redis://host:1"), "redis://host:1");
    }
}
