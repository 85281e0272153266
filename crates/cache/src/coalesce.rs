//! Request coalescing: one `make` per key at a time, in-process and (with Redis) across instances.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::{metric, Cache, Key, LockAttempt, RedisCache};

/// Settings of a [`Coalescer`].
#[derive(Debug, Clone)]
pub struct CoalescerConfig {
    /// Lease of the cross-instance lock: how long a crashed holder blocks others. Default 30 s.
    pub lease: Duration,
    /// How often a holder renews its lease while making. Default 10 s (a third of the lease).
    pub renew_every: Duration,
    /// How often a waiter polls Redis for the value (or a free lock). Default 30 ms.
    pub poll_interval: Duration,
    /// Bound on the total time a caller waits for someone else's generation (in-process or on
    /// another instance) before [`CoalesceError::Busy`]. Time spent making is not counted.
    /// Default 30 s.
    pub max_wait: Duration,
}

impl Default for CoalescerConfig {
    fn default() -> Self {
        CoalescerConfig {
            lease: Duration::from_secs(30),
            renew_every: Duration::from_secs(10),
            poll_interval: Duration::from_millis(30),
            max_wait: Duration::from_secs(30),
        }
    }
}

/// How [`Coalescer::get_or_make`] obtained its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Found in the cache at once.
    Hit,
    /// This call ran `make`.
    Made,
    /// Another caller (in this process or another instance) made it while this one waited.
    Waited,
}

impl Outcome {
    /// Lower-case name (metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Hit => "hit",
            Outcome::Made => "made",
            Outcome::Waited => "waited",
        }
    }
}

/// Errors the coalescer itself produces. The caller's error type must convert from it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CoalesceError {
    /// Someone else is making the value and it did not appear within `max_wait`.
    #[error("busy: value not ready after waiting {waited:?}")]
    Busy {
        /// How long this call waited.
        waited: Duration,
    },
    /// The caller this one waited for failed (its error, as text). Nothing was cached.
    #[error("the generation this request waited for failed: {message}")]
    MakerFailed {
        /// The maker's error, rendered with `Display`.
        message: String,
    },
}

#[derive(Clone)]
enum FlightState {
    Pending,
    Done(Bytes),
    Failed(Arc<str>),
}

struct Flight {
    id: u64,
    rx: watch::Receiver<FlightState>,
}

type Flights = Mutex<HashMap<Arc<str>, Flight>>;

/// Single-flight front of a [`Cache`], optionally coordinating through Redis locks.
///
/// Cheap to share behind an `Arc`; one per process (two coalescers in one process coordinate only
/// through Redis, like two processes).
pub struct Coalescer {
    cache: Arc<dyn Cache>,
    redis: Option<RedisCache>,
    cfg: CoalescerConfig,
    flights: Flights,
    next_id: AtomicU64,
    token_seed: u64,
}

impl std::fmt::Debug for Coalescer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coalescer")
            .field("redis", &self.redis)
            .field("cfg", &self.cfg)
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

/// Removes the flight from the map when the leader finishes or is dropped; dropping the sender
/// without a result wakes the waiters so one of them takes over.
struct FlightGuard<'a> {
    flights: &'a Flights,
    key: Arc<str>,
    id: u64,
    tx: Option<watch::Sender<FlightState>>,
}

impl FlightGuard<'_> {
    fn finish(mut self, state: FlightState) {
        self.remove();
        if let Some(tx) = self.tx.take() {
            tx.send_replace(state);
        }
    }

    fn remove(&self) {
        let mut map = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
        if map.get(&self.key).is_some_and(|f| f.id == self.id) {
            map.remove(&self.key);
        }
    }
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        if self.tx.is_some() {
            self.remove();
        }
    }
}

/// A held Redis lock; released explicitly, or from a spawned task if dropped while held.
struct HeldLock {
    redis: RedisCache,
    lock_key: String,
    token: String,
    held: bool,
}

impl HeldLock {
    async fn release(mut self) {
        self.held = false;
        self.redis.release_lock(&self.lock_key, &self.token).await;
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        if !self.held {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let redis = self.redis.clone();
            let lock_key = std::mem::take(&mut self.lock_key);
            let token = std::mem::take(&mut self.token);
            rt.spawn(async move {
                redis.release_lock(&lock_key, &token).await;
            });
        }
        // Without a runtime the lease expires on its own.
    }
}

enum Role<'a> {
    Leader(FlightGuard<'a>),
    Follower(watch::Receiver<FlightState>),
}

impl Coalescer {
    /// A coalescer over `cache`; with `redis`, generations are also coordinated across instances
    /// through locks in that Redis (normally the same one that is `cache`'s L2).
    pub fn new(cache: Arc<dyn Cache>, redis: Option<RedisCache>, cfg: CoalescerConfig) -> Self {
        let mut h = RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        Coalescer {
            cache,
            redis,
            cfg,
            flights: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            token_seed: h.finish(),
        }
    }

    /// The cache in front of which this coalescer sits.
    pub fn cache(&self) -> &Arc<dyn Cache> {
        &self.cache
    }

    /// The configuration.
    pub fn config(&self) -> &CoalescerConfig {
        &self.cfg
    }

    /// Keys currently being made (or awaited from another instance) by a leader in this process.
    pub fn in_flight(&self) -> usize {
        self.flights
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Returns the cached value of `key`, or makes it with `make` — at most one `make` per key at
    /// a time in this process and, with Redis, across instances — caches it for `ttl` and returns
    /// it. Other callers for the same key wait for that result. A failed `make` is never cached;
    /// callers that waited for it get [`CoalesceError::MakerFailed`]. If this call is dropped
    /// while making, a waiting caller takes over. Waiting is bounded by
    /// [`CoalescerConfig::max_wait`] ([`CoalesceError::Busy`]).
    ///
    /// Cache errors are treated as misses (and failed stores are ignored): the cache never makes a
    /// request fail.
    pub async fn get_or_make<F, Fut, E>(
        &self,
        key: &Key,
        ttl: Duration,
        make: F,
    ) -> Result<(Bytes, Outcome), E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, E>>,
        E: From<CoalesceError> + Display,
    {
        let kind = key.kind().as_str();
        let r = self.get_or_make_inner(key, ttl, make).await;
        let label = match &r {
            Ok((_, o)) => o.as_str(),
            Err(Failure::Busy(_)) => "busy",
            Err(Failure::Failed(_)) => "failed",
        };
        metrics::counter!(metric::COALESCE, "kind" => kind, "outcome" => label).increment(1);
        r.map_err(|f| match f {
            Failure::Busy(e) | Failure::Failed(e) => e,
        })
    }

    async fn get_or_make_inner<F, Fut, E>(
        &self,
        key: &Key,
        ttl: Duration,
        make: F,
    ) -> Result<(Bytes, Outcome), Failure<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, E>>,
        E: From<CoalesceError> + Display,
    {
        let start = Instant::now();
        let deadline = start + self.cfg.max_wait;
        let mut waited = false;
        loop {
            if let Some(v) = self.lookup(key).await {
                return Ok((
                    v,
                    if waited {
                        Outcome::Waited
                    } else {
                        Outcome::Hit
                    },
                ));
            }
            match self.join(key) {
                Role::Leader(guard) => {
                    return self
                        .lead(key, ttl, make, guard, start, deadline, waited)
                        .await;
                }
                Role::Follower(mut rx) => {
                    waited = true;
                    let r = tokio::time::timeout_at(
                        deadline,
                        rx.wait_for(|s| !matches!(s, FlightState::Pending)),
                    )
                    .await;
                    match r {
                        Err(_elapsed) => {
                            return Err(Failure::Busy(
                                CoalesceError::Busy {
                                    waited: start.elapsed(),
                                }
                                .into(),
                            ))
                        }
                        // The leader was dropped before finishing: try again (maybe lead).
                        Ok(Err(_closed)) => continue,
                        Ok(Ok(state)) => match &*state {
                            FlightState::Done(v) => return Ok((v.clone(), Outcome::Waited)),
                            FlightState::Failed(m) => {
                                return Err(Failure::Failed(
                                    CoalesceError::MakerFailed {
                                        message: m.to_string(),
                                    }
                                    .into(),
                                ))
                            }
                            FlightState::Pending => continue,
                        },
                    }
                }
            }
        }
    }

    /// Joins the flight for `key`, or starts one and becomes its leader.
    fn join(&self, key: &Key) -> Role<'_> {
        let mut map = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(f) = map.get(key.as_str()) {
            return Role::Follower(f.rx.clone());
        }
        let (tx, rx) = watch::channel(FlightState::Pending);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let k: Arc<str> = Arc::from(key.as_str());
        map.insert(k.clone(), Flight { id, rx });
        Role::Leader(FlightGuard {
            flights: &self.flights,
            key: k,
            id,
            tx: Some(tx),
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn lead<F, Fut, E>(
        &self,
        key: &Key,
        ttl: Duration,
        make: F,
        guard: FlightGuard<'_>,
        start: Instant,
        deadline: Instant,
        mut waited: bool,
    ) -> Result<(Bytes, Outcome), Failure<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, E>>,
        E: From<CoalesceError> + Display,
    {
        let Some(redis) = &self.redis else {
            return self.make_and_store(key, ttl, make, guard, None).await;
        };
        let lock_key = key.lock_key();
        let token = self.new_token();
        loop {
            // Double-check: a value may have been stored since the caller's lookup (or since the
            // last poll).
            if let Some(v) = self.lookup(key).await {
                guard.finish(FlightState::Done(v.clone()));
                return Ok((
                    v,
                    if waited {
                        Outcome::Waited
                    } else {
                        Outcome::Hit
                    },
                ));
            }
            match redis.try_lock(&lock_key, &token, self.cfg.lease).await {
                LockAttempt::Acquired => {
                    let lock = HeldLock {
                        redis: redis.clone(),
                        lock_key: lock_key.clone(),
                        token: token.clone(),
                        held: true,
                    };
                    // The previous holder may have stored the value and released the lock
                    // between our GET and our SET NX.
                    if let Some(v) = self.lookup(key).await {
                        lock.release().await;
                        guard.finish(FlightState::Done(v.clone()));
                        return Ok((
                            v,
                            if waited {
                                Outcome::Waited
                            } else {
                                Outcome::Hit
                            },
                        ));
                    }
                    return self.make_and_store(key, ttl, make, guard, Some(lock)).await;
                }
                LockAttempt::Unavailable => {
                    return self.make_and_store(key, ttl, make, guard, None).await;
                }
                LockAttempt::Held => {
                    waited = true;
                    let next = Instant::now() + self.cfg.poll_interval;
                    if next > deadline {
                        // Dropping the guard lets local waiters retry under their own deadlines.
                        drop(guard);
                        return Err(Failure::Busy(
                            CoalesceError::Busy {
                                waited: start.elapsed(),
                            }
                            .into(),
                        ));
                    }
                    tokio::time::sleep_until(next).await;
                }
            }
        }
    }

    /// Runs `make` (renewing the lock's lease meanwhile), stores a success, releases the lock and
    /// hands the result to local waiters.
    async fn make_and_store<F, Fut, E>(
        &self,
        key: &Key,
        ttl: Duration,
        make: F,
        guard: FlightGuard<'_>,
        lock: Option<HeldLock>,
    ) -> Result<(Bytes, Outcome), Failure<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, E>>,
        E: From<CoalesceError> + Display,
    {
        let fut = make();
        let result = match &lock {
            None => fut.await,
            Some(l) => {
                tokio::pin!(fut);
                let period = self.cfg.renew_every.max(Duration::from_millis(1));
                let mut tick = tokio::time::interval_at(Instant::now() + period, period);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        r = &mut fut => break r,
                        _ = tick.tick() => {
                            if l.redis.renew_lock(&l.lock_key, &l.token, self.cfg.lease).await
                                == Some(false)
                            {
                                tracing::debug!(key = %key, "generation lock lost while making");
                            }
                        }
                    }
                }
            }
        };
        match result {
            Ok(v) => {
                if let Err(e) = self.cache.put(key, v.clone(), ttl).await {
                    tracing::warn!(key = %key, error = %e, "cache store failed");
                }
                if let Some(l) = lock {
                    l.release().await;
                }
                guard.finish(FlightState::Done(v.clone()));
                Ok((v, Outcome::Made))
            }
            Err(e) => {
                if let Some(l) = lock {
                    l.release().await;
                }
                guard.finish(FlightState::Failed(Arc::from(e.to_string())));
                Err(Failure::Failed(e))
            }
        }
    }

    async fn lookup(&self, key: &Key) -> Option<Bytes> {
        match self.cache.get(key).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(key = %key, error = %e, "cache lookup failed; treating as a miss");
                None
            }
        }
    }

    fn new_token(&self) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        format!("{:016x}-{n:x}", self.token_seed)
    }
}

/// Internal result split, so the metric label knows why a call failed.
enum Failure<E> {
    Busy(E),
    Failed(E),
}
