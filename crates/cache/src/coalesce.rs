//! Request coalescing: one make per key at a time, detached from the callers that wait for it,
//! cancelled when the last of them leaves, coordinated across instances through a [`Lease`].

use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{oneshot, watch};

use crate::{metric, Backends, Cache, Cancel, Clock, Key, Lease, LeaseAttempt, LeaseToken};

/// Settings of a [`Coalescer`].
#[derive(Debug, Clone)]
pub struct CoalescerConfig {
    /// Lease of the cross-instance lock: how long a crashed holder blocks others. Default 30 s.
    pub lease: Duration,
    /// How often a holder renews its lease while making. Default 10 s (a third of the lease).
    pub renew_every: Duration,
    /// How often a make that waits for another instance polls for the value (or a free lock).
    /// Default 30 ms.
    pub poll_interval: Duration,
    /// Bound on the time a make waits for another instance's generation before every caller
    /// waiting for it gets [`CoalesceError::Busy`]. Time spent making is not counted. Default
    /// 30 s.
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
    /// This call started the make that produced it.
    Made,
    /// Another caller's make (in this process or on another instance) produced it.
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

/// Who waits for a make: requests go before background work (prefetch) in whatever queue the
/// make waits in (see [`MakeCtx::priority`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Only background work (prefetch) waits for it.
    Background,
    /// A request waits for it.
    Foreground,
}

/// Errors the coalescer itself produces. The caller's error type must convert from it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CoalesceError {
    /// Another instance is making the value and it did not appear within `max_wait`.
    #[error("busy: value not ready after waiting {waited:?}")]
    Busy {
        /// How long the make waited.
        waited: Duration,
    },
    /// The make this caller waited for failed (its error, as text). Nothing was cached.
    #[error("the generation this request waited for failed: {message}")]
    MakerFailed {
        /// The maker's error, rendered with `Display`.
        message: String,
    },
    /// The make was cancelled (its token fired) before it finished. Nothing was cached.
    #[error("the generation this request waited for was cancelled")]
    Cancelled,
}

/// What a make is handed: its cancellation token and the priority of those waiting for it.
#[derive(Debug, Clone)]
pub struct MakeCtx {
    cancel: Cancel,
    priority: PriorityWatch,
}

impl MakeCtx {
    /// A context outside any coalescer (tests, direct calls): never cancelled by anyone else.
    pub fn new(priority: Priority) -> Self {
        let (tx, rx) = watch::channel(priority);
        MakeCtx {
            cancel: Cancel::new(),
            priority: PriorityWatch {
                rx,
                _tx: Some(Arc::new(tx)),
            },
        }
    }

    /// Fires when nobody waits for the make any more (the coalescer then also drops the make's
    /// future), or when a pool takes a background make's slot back for a request.
    pub fn cancel(&self) -> &Cancel {
        &self.cancel
    }

    /// The priority of the waiters, which rises to [`Priority::Foreground`] as soon as a request
    /// joins (it never falls back).
    pub fn priority(&self) -> &PriorityWatch {
        &self.priority
    }
}

/// The current priority of a make's waiters, and its changes.
#[derive(Debug, Clone)]
pub struct PriorityWatch {
    rx: watch::Receiver<Priority>,
    /// Keeps the channel open for a context made without a coalescer.
    _tx: Option<Arc<watch::Sender<Priority>>>,
}

impl PriorityWatch {
    /// The priority now.
    pub fn get(&self) -> Priority {
        *self.rx.borrow()
    }

    /// Completes when the priority is [`Priority::Foreground`] (never, for background work that
    /// nobody requests).
    pub async fn foreground(&mut self) {
        if self
            .rx
            .wait_for(|p| *p == Priority::Foreground)
            .await
            .is_err()
        {
            std::future::pending::<()>().await;
        }
    }
}

#[derive(Clone, Debug)]
enum FlightState {
    Pending,
    Done {
        value: Bytes,
        made: bool,
        waited: bool,
    },
    Failed(Arc<str>),
    Busy(Duration),
    Cancelled,
}

struct Flight {
    id: u64,
    waiters: usize,
    cancel: Cancel,
    priority: Arc<watch::Sender<Priority>>,
    state: watch::Receiver<FlightState>,
}

type Flights = Mutex<HashMap<Arc<str>, Flight>>;

struct Shared {
    cache: Arc<dyn Cache>,
    lease: Arc<dyn Lease>,
    clock: Arc<dyn Clock>,
    cfg: CoalescerConfig,
    flights: Flights,
    next_id: AtomicU64,
}

/// Single-flight front of a [`Cache`]: the one coalescing mechanism of hlsgate.
///
/// - **In-process**: the first caller for a key starts a *flight*; later callers join it.
/// - **Detached**: the make runs on a task of its own, so a caller that goes away (client
///   disconnected) leaves it running for the others. When the **last** waiter goes, the make's
///   [`Cancel`] fires and its future is dropped; nothing is cached.
/// - **Across instances**: before making, the flight takes a [`Lease`] on the key's lock name;
///   while another instance holds it, the flight polls for the value (bounded by
///   [`CoalescerConfig::max_wait`] → [`CoalesceError::Busy`]).
/// - **Failures** are never cached; the caller that started the make gets its own typed error,
///   the others [`CoalesceError::MakerFailed`].
///
/// Cheap to clone (clones share the flights). Must be used inside a Tokio runtime.
#[derive(Clone)]
pub struct Coalescer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Coalescer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coalescer")
            .field("cfg", &self.shared.cfg)
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

/// One caller's membership of a flight; dropping the last one cancels the make.
struct Waiting {
    shared: Arc<Shared>,
    key: Arc<str>,
    id: u64,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut map = self.shared.flights();
        let Some(f) = map.get_mut(&self.key) else {
            return;
        };
        if f.id != self.id {
            return;
        }
        f.waiters = f.waiters.saturating_sub(1);
        if f.waiters == 0 {
            if let Some(f) = map.remove(&self.key) {
                f.cancel.cancel();
                tracing::debug!(key = %self.key, "make cancelled: nobody waits for it");
            }
        }
    }
}

/// Removes the flight from the map when its task ends (normally, or dropped at shutdown).
struct Landing {
    shared: Arc<Shared>,
    key: Arc<str>,
    id: u64,
}

impl Drop for Landing {
    fn drop(&mut self) {
        let mut map = self.shared.flights();
        if map.get(&self.key).is_some_and(|f| f.id == self.id) {
            map.remove(&self.key);
        }
    }
}

/// A held lease; released explicitly, or from a spawned task if dropped while held (the make
/// was cancelled).
struct HeldLease {
    lease: Arc<dyn Lease>,
    key: String,
    token: Option<LeaseToken>,
}

impl HeldLease {
    async fn release(mut self) {
        if let Some(t) = self.token.take() {
            self.lease.release(&self.key, &t).await;
        }
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        let Some(token) = self.token.take() else {
            return;
        };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let lease = Arc::clone(&self.lease);
            let key = std::mem::take(&mut self.key);
            rt.spawn(async move {
                lease.release(&key, &token).await;
            });
        }
        // Without a runtime the lease expires on its own.
    }
}

/// How a caller is attached to a flight.
struct Joined<E> {
    state: watch::Receiver<FlightState>,
    _waiting: Waiting,
    /// The typed error of the make, for the caller that started it.
    started: Option<oneshot::Receiver<E>>,
}

impl Coalescer {
    /// A coalescer over `cache`, coordinating across instances through `lease` (use
    /// [`crate::NoLease`] for in-process only), timing with `clock`.
    pub fn new(
        cache: Arc<dyn Cache>,
        lease: Arc<dyn Lease>,
        clock: Arc<dyn Clock>,
        cfg: CoalescerConfig,
    ) -> Self {
        Coalescer {
            shared: Arc::new(Shared {
                cache,
                lease,
                clock,
                cfg,
                flights: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
            }),
        }
    }

    /// A coalescer over the services of `backends`.
    pub fn with_backends(backends: &Backends, cfg: CoalescerConfig) -> Self {
        Coalescer::new(
            Arc::clone(&backends.cache),
            Arc::clone(&backends.lease),
            Arc::clone(&backends.clock),
            cfg,
        )
    }

    /// The cache in front of which this coalescer sits.
    pub fn cache(&self) -> &Arc<dyn Cache> {
        &self.shared.cache
    }

    /// The clock it times with.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.shared.clock
    }

    /// The configuration.
    pub fn config(&self) -> &CoalescerConfig {
        &self.shared.cfg
    }

    /// Keys with a make in flight (or waiting for another instance's) in this coalescer.
    pub fn in_flight(&self) -> usize {
        self.shared.flights().len()
    }

    /// [`Coalescer::get_or_make_as`] for a request ([`Priority::Foreground`]).
    pub async fn get_or_make<F, Fut, E>(
        &self,
        key: &Key,
        ttl: Duration,
        make: F,
    ) -> Result<(Bytes, Outcome), E>
    where
        F: FnOnce(MakeCtx) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Bytes, E>> + Send + 'static,
        E: From<CoalesceError> + Display + Send + 'static,
    {
        self.get_or_make_as(key, ttl, Priority::Foreground, make)
            .await
    }

    /// Returns the cached value of `key`, or joins the make in flight for it, or starts one
    /// with `make` — on a task of its own — and waits for it. A made value is cached for `ttl`.
    ///
    /// - At most one make per key at a time in this coalescer and, through the [`Lease`], across
    ///   instances.
    /// - Dropping this future leaves the make running for the other callers; when the last
    ///   caller goes, the make's [`MakeCtx::cancel`] fires and its future is dropped.
    /// - A failed make is never cached: the caller that started it gets its error, the others
    ///   [`CoalesceError::MakerFailed`].
    /// - `priority` joins the make's [`MakeCtx::priority`] (a request raises it).
    ///
    /// Cache errors are treated as misses (and failed stores are ignored): the cache never makes
    /// a request fail.
    pub async fn get_or_make_as<F, Fut, E>(
        &self,
        key: &Key,
        ttl: Duration,
        priority: Priority,
        make: F,
    ) -> Result<(Bytes, Outcome), E>
    where
        F: FnOnce(MakeCtx) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Bytes, E>> + Send + 'static,
        E: From<CoalesceError> + Display + Send + 'static,
    {
        let kind = key.kind().as_str();
        let r = self.wait_or_make(key, ttl, priority, make).await;
        let label = match &r {
            Ok((_, o)) => o.as_str(),
            Err((label, _)) => label,
        };
        metrics::counter!(metric::COALESCE, "kind" => kind, "outcome" => label).increment(1);
        r.map_err(|(_, e)| e)
    }

    async fn wait_or_make<F, Fut, E>(
        &self,
        key: &Key,
        ttl: Duration,
        priority: Priority,
        make: F,
    ) -> Result<(Bytes, Outcome), (&'static str, E)>
    where
        F: FnOnce(MakeCtx) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Bytes, E>> + Send + 'static,
        E: From<CoalesceError> + Display + Send + 'static,
    {
        if let Some(v) = self.shared.lookup(key).await {
            return Ok((v, Outcome::Hit));
        }
        let Joined {
            mut state,
            _waiting,
            started,
        } = self.join(key, ttl, priority, make);
        let ended = state
            .wait_for(|s| !matches!(s, FlightState::Pending))
            .await
            .map(|s| s.clone());
        let failed = |message: String| -> (&'static str, E) {
            ("failed", CoalesceError::MakerFailed { message }.into())
        };
        match ended {
            Ok(FlightState::Done {
                value,
                made,
                waited,
            }) => {
                let outcome = match (started.is_some(), made, waited) {
                    (true, true, _) => Outcome::Made,
                    (true, false, false) => Outcome::Hit,
                    _ => Outcome::Waited,
                };
                Ok((value, outcome))
            }
            Ok(FlightState::Failed(message)) => {
                match started.and_then(|mut rx| rx.try_recv().ok()) {
                    Some(own) => Err(("failed", own)),
                    None => Err(failed(message.to_string())),
                }
            }
            Ok(FlightState::Busy(waited)) => Err(("busy", CoalesceError::Busy { waited }.into())),
            Ok(FlightState::Cancelled) => Err(("cancelled", CoalesceError::Cancelled.into())),
            Ok(FlightState::Pending) | Err(_) => {
                Err(failed("the make ended without a result".into()))
            }
        }
    }

    /// Joins the flight for `key`, or starts one (spawning its task) and joins it.
    fn join<F, Fut, E>(&self, key: &Key, ttl: Duration, priority: Priority, make: F) -> Joined<E>
    where
        F: FnOnce(MakeCtx) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Bytes, E>> + Send + 'static,
        E: From<CoalesceError> + Display + Send + 'static,
    {
        let shared = &self.shared;
        let mut map = shared.flights();
        if let Some(f) = map.get_mut(key.as_str()) {
            f.waiters += 1;
            if priority == Priority::Foreground {
                f.priority.send_if_modified(|p| {
                    let raise = *p == Priority::Background;
                    *p = Priority::Foreground;
                    raise
                });
            }
            return Joined {
                state: f.state.clone(),
                _waiting: Waiting {
                    shared: Arc::clone(shared),
                    key: Arc::from(key.as_str()),
                    id: f.id,
                },
                started: None,
            };
        }
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        let k: Arc<str> = Arc::from(key.as_str());
        let (state_tx, state_rx) = watch::channel(FlightState::Pending);
        let (prio_tx, prio_rx) = watch::channel(priority);
        let prio_tx = Arc::new(prio_tx);
        let cancel = Cancel::new();
        let (err_tx, err_rx) = oneshot::channel();
        map.insert(
            Arc::clone(&k),
            Flight {
                id,
                waiters: 1,
                cancel: cancel.clone(),
                priority: Arc::clone(&prio_tx),
                state: state_rx.clone(),
            },
        );
        drop(map);
        let ctx = MakeCtx {
            cancel,
            priority: PriorityWatch {
                rx: prio_rx,
                _tx: None,
            },
        };
        let landing = Landing {
            shared: Arc::clone(shared),
            key: Arc::clone(&k),
            id,
        };
        let task_shared = Arc::clone(shared);
        let task_key = key.clone();
        tokio::spawn(async move {
            // The sender lives as long as the flight: priority raises reach the make.
            let _prio = prio_tx;
            let cancel = ctx.cancel.clone();
            let end = tokio::select! {
                biased;
                () = cancel.cancelled() => FlightState::Cancelled,
                s = task_shared.fly(&task_key, ttl, make, ctx, err_tx) => s,
            };
            // Out of the map first: a caller arriving now finds the value in the cache (or,
            // after a failure, starts again) instead of this finished flight.
            drop(landing);
            state_tx.send_replace(end);
        });
        Joined {
            state: state_rx,
            _waiting: Waiting {
                shared: Arc::clone(shared),
                key: k,
                id,
            },
            started: Some(err_rx),
        }
    }
}

impl Shared {
    fn flights(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Flight>> {
        // A poisoned lock only means a thread panicked mid-update of a plain map.
        self.flights.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The flight: wait for the lease (or the value made elsewhere), then make and store.
    async fn fly<F, Fut, E>(
        &self,
        key: &Key,
        ttl: Duration,
        make: F,
        ctx: MakeCtx,
        err_tx: oneshot::Sender<E>,
    ) -> FlightState
    where
        F: FnOnce(MakeCtx) -> Fut,
        Fut: Future<Output = Result<Bytes, E>>,
        E: Display,
    {
        let start = self.clock.now();
        let deadline = start + self.cfg.max_wait;
        let lock_key = key.lock_key();
        let mut waited = false;
        loop {
            // A value may have been stored since the caller's lookup (or the last poll).
            if let Some(value) = self.lookup(key).await {
                return FlightState::Done {
                    value,
                    made: false,
                    waited,
                };
            }
            match self.lease.try_acquire(&lock_key, self.cfg.lease).await {
                LeaseAttempt::Acquired(token) => {
                    let held = HeldLease {
                        lease: Arc::clone(&self.lease),
                        key: lock_key.clone(),
                        token: Some(token),
                    };
                    // The previous holder may have stored the value and released the lock
                    // between our lookup and our acquire.
                    if let Some(value) = self.lookup(key).await {
                        held.release().await;
                        return FlightState::Done {
                            value,
                            made: false,
                            waited,
                        };
                    }
                    return self
                        .make(key, ttl, make, ctx, Some(held), err_tx, waited)
                        .await;
                }
                LeaseAttempt::Unavailable => {
                    return self.make(key, ttl, make, ctx, None, err_tx, waited).await;
                }
                LeaseAttempt::Held => {
                    waited = true;
                    let now = self.clock.now();
                    if now + self.cfg.poll_interval > deadline {
                        return FlightState::Busy(now.saturating_duration_since(start));
                    }
                    self.clock.sleep(self.cfg.poll_interval).await;
                }
            }
        }
    }

    /// Runs `make` (renewing the lease meanwhile), stores a success, releases the lease.
    #[allow(clippy::too_many_arguments)]
    async fn make<F, Fut, E>(
        &self,
        key: &Key,
        ttl: Duration,
        make: F,
        ctx: MakeCtx,
        held: Option<HeldLease>,
        err_tx: oneshot::Sender<E>,
        waited: bool,
    ) -> FlightState
    where
        F: FnOnce(MakeCtx) -> Fut,
        Fut: Future<Output = Result<Bytes, E>>,
        E: Display,
    {
        let fut = make(ctx);
        let result = match &held {
            None => fut.await,
            Some(h) => {
                tokio::pin!(fut);
                let period = self.cfg.renew_every.max(Duration::from_millis(1));
                let mut tick = self.clock.sleep(period);
                loop {
                    tokio::select! {
                        r = &mut fut => break r,
                        () = &mut tick => {
                            if let Some(token) = &h.token {
                                if self.lease.renew(&h.key, token, self.cfg.lease).await
                                    == Some(false)
                                {
                                    tracing::debug!(key = %key, "generation lock lost while making");
                                }
                            }
                            tick = self.clock.sleep(period);
                        }
                    }
                }
            }
        };
        match result {
            Ok(value) => {
                if let Err(e) = self.cache.put(key, value.clone(), ttl).await {
                    tracing::warn!(key = %key, error = %e, "cache store failed");
                }
                if let Some(h) = held {
                    h.release().await;
                }
                FlightState::Done {
                    value,
                    made: true,
                    waited,
                }
            }
            Err(e) => {
                if let Some(h) = held {
                    h.release().await;
                }
                let message: Arc<str> = Arc::from(e.to_string());
                // The starter may have left; then only the text reaches the others.
                let _ = err_tx.send(e);
                FlightState::Failed(message)
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
}
