//! Cross-instance generation leases: at most one instance makes a key at a time.
//!
//! [`Lease`] is what the [`crate::Coalescer`] needs from a lock service; [`crate::RedisCache`]
//! implements it with `SET NX PX` and compare-and-delete / compare-and-`PEXPIRE` scripts,
//! [`NoLease`] is the stand-in without Redis (coordination is then in-process only), and
//! [`MemoryLease`] is an in-process lock table (several coalescers in one process, and tests).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::{BoxFuture, Clock};

/// Proof of holding a lease: renew and release only act while the lock still carries it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeaseToken(String);

impl LeaseToken {
    /// A token with this text (implementations make them unique per attempt).
    pub fn new(text: impl Into<String>) -> Self {
        LeaseToken(text.into())
    }

    /// The token's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Result of [`Lease::try_acquire`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseAttempt {
    /// The lease is ours until its TTL passes (or we release it).
    Acquired(LeaseToken),
    /// Another holder has it.
    Held,
    /// The lock service is absent, down or late: coordinate in-process only.
    Unavailable,
}

/// A lock service with expiring leases, shared by the instances that share a cache.
///
/// A holder that crashes stops renewing and its lease expires after its TTL. Implementations
/// must not fail loudly: an outage is [`LeaseAttempt::Unavailable`] (the caller then makes the
/// value without cross-instance coordination).
pub trait Lease: Send + Sync {
    /// Takes the lock `key` for `ttl` if nobody holds it.
    fn try_acquire<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, LeaseAttempt>;

    /// Extends the lease to `ttl` from now if `token` still holds it. `Some(false)`: lost
    /// (expired, maybe taken by someone else); `None`: the service is unavailable.
    fn renew<'a>(
        &'a self,
        key: &'a str,
        token: &'a LeaseToken,
        ttl: Duration,
    ) -> BoxFuture<'a, Option<bool>>;

    /// Releases the lock if `token` still holds it; whether it did.
    fn release<'a>(&'a self, key: &'a str, token: &'a LeaseToken) -> BoxFuture<'a, bool>;
}

/// No lock service: every attempt is [`LeaseAttempt::Unavailable`], so the coalescer makes in
/// this process only (its in-process single-flight still holds). The default without Redis.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLease;

impl Lease for NoLease {
    fn try_acquire<'a>(&'a self, _key: &'a str, _ttl: Duration) -> BoxFuture<'a, LeaseAttempt> {
        Box::pin(async { LeaseAttempt::Unavailable })
    }

    fn renew<'a>(
        &'a self,
        _key: &'a str,
        _token: &'a LeaseToken,
        _ttl: Duration,
    ) -> BoxFuture<'a, Option<bool>> {
        Box::pin(async { None })
    }

    fn release<'a>(&'a self, _key: &'a str, _token: &'a LeaseToken) -> BoxFuture<'a, bool> {
        Box::pin(async { false })
    }
}

/// An in-process lock table with expiring leases on a [`Clock`]: the same protocol as Redis
/// for coalescers that share one process (and for tests that model two instances).
pub struct MemoryLease {
    clock: Arc<dyn Clock>,
    held: Mutex<HashMap<String, (LeaseToken, std::time::Instant)>>,
    next: AtomicU64,
}

impl MemoryLease {
    /// An empty lock table on `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        MemoryLease {
            clock,
            held: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
        }
    }

    /// Whether `key` is held (and not expired) now.
    pub fn is_held(&self, key: &str) -> bool {
        let now = self.clock.now();
        self.table().get(key).is_some_and(|(_, until)| *until > now)
    }

    fn table(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, (LeaseToken, std::time::Instant)>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for MemoryLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryLease")
            .field("held", &self.table().len())
            .finish()
    }
}

impl Lease for MemoryLease {
    fn try_acquire<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, LeaseAttempt> {
        Box::pin(async move {
            let now = self.clock.now();
            let mut t = self.table();
            if t.get(key).is_some_and(|(_, until)| *until > now) {
                return LeaseAttempt::Held;
            }
            let token = LeaseToken(format!("m{}", self.next.fetch_add(1, Ordering::Relaxed)));
            t.insert(key.to_owned(), (token.clone(), now + ttl));
            LeaseAttempt::Acquired(token)
        })
    }

    fn renew<'a>(
        &'a self,
        key: &'a str,
        token: &'a LeaseToken,
        ttl: Duration,
    ) -> BoxFuture<'a, Option<bool>> {
        Box::pin(async move {
            let now = self.clock.now();
            let mut t = self.table();
            match t.get_mut(key) {
                Some((held, until)) if held == token && *until > now => {
                    *until = now + ttl;
                    Some(true)
                }
                _ => Some(false),
            }
        })
    }

    fn release<'a>(&'a self, key: &'a str, token: &'a LeaseToken) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let mut t = self.table();
            if t.get(key).is_some_and(|(held, _)| held == token) {
                t.remove(key);
                true
            } else {
                false
            }
        })
    }
}
