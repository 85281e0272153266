//! The coalescer against fakes: an in-memory shared "Redis" (one fake cache and one fake lock
//! table shared by two coalescers that play two instances), cancellation, priority.

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use cache::{
    BoxFuture, Cache, CacheError, Coalescer, CoalescerConfig, Key, Lease, LeaseAttempt, LeaseToken,
    MemoryLease, Outcome, Priority, TokioClock,
};
use support::{key, payload, TestError};

const TTL: Duration = Duration::from_secs(60);

/// A shared value store (what Redis is to two instances), counting puts.
#[derive(Default)]
struct FakeCache {
    values: Mutex<HashMap<String, Bytes>>,
    puts: AtomicUsize,
}

impl Cache for FakeCache {
    fn get<'a>(&'a self, key: &'a Key) -> BoxFuture<'a, Result<Option<Bytes>, CacheError>> {
        Box::pin(async move {
            Ok(self
                .values
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(key.as_str())
                .cloned())
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a Key,
        value: Bytes,
        _ttl: Duration,
    ) -> BoxFuture<'a, Result<(), CacheError>> {
        Box::pin(async move {
            self.puts.fetch_add(1, Ordering::SeqCst);
            self.values
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(key.as_str().to_owned(), value);
            Ok(())
        })
    }
}

/// A lock table (the in-process [`MemoryLease`]) counting successful acquisitions.
struct FakeLock {
    inner: MemoryLease,
    acquired: AtomicUsize,
}

impl Lease for FakeLock {
    fn try_acquire<'a>(&'a self, key: &'a str, ttl: Duration) -> BoxFuture<'a, LeaseAttempt> {
        Box::pin(async move {
            let r = self.inner.try_acquire(key, ttl).await;
            if matches!(r, LeaseAttempt::Acquired(_)) {
                self.acquired.fetch_add(1, Ordering::SeqCst);
            }
            r
        })
    }
    fn renew<'a>(
        &'a self,
        key: &'a str,
        token: &'a LeaseToken,
        ttl: Duration,
    ) -> BoxFuture<'a, Option<bool>> {
        self.inner.renew(key, token, ttl)
    }
    fn release<'a>(&'a self, key: &'a str, token: &'a LeaseToken) -> BoxFuture<'a, bool> {
        self.inner.release(key, token)
    }
}

fn cfg() -> CoalescerConfig {
    CoalescerConfig {
        poll_interval: Duration::from_millis(5),
        ..CoalescerConfig::default()
    }
}

fn counter() -> &'static AtomicUsize {
    Box::leak(Box::new(AtomicUsize::new(0)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_fake_lock_and_cache_make_once() {
    let store = Arc::new(FakeCache::default());
    let lock = Arc::new(FakeLock {
        inner: MemoryLease::new(Arc::new(TokioClock)),
        acquired: AtomicUsize::new(0),
    });
    let instance = || {
        Coalescer::new(
            store.clone() as Arc<dyn Cache>,
            lock.clone() as Arc<dyn Lease>,
            Arc::new(TokioClock),
            cfg(),
        )
    };
    let (a, b) = (instance(), instance());
    let k = key("fake-two", 1);
    let makes = counter();
    let call = |co: &Coalescer| {
        let (co, k) = (co.clone(), k.clone());
        async move {
            co.get_or_make(&k, TTL, move |_| async move {
                makes.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok::<_, TestError>(payload(7, 1000))
            })
            .await
        }
    };
    let (r1, r2, r3, r4) = tokio::join!(call(&a), call(&b), call(&a), call(&b));
    let rs = [r1.unwrap(), r2.unwrap(), r3.unwrap(), r4.unwrap()];
    assert_eq!(
        makes.load(Ordering::SeqCst),
        1,
        "one make over two instances"
    );
    assert_eq!(store.puts.load(Ordering::SeqCst), 1);
    assert_eq!(lock.acquired.load(Ordering::SeqCst), 1);
    assert!(rs.iter().all(|(v, _)| *v == payload(7, 1000)));
    assert_eq!(rs.iter().filter(|(_, o)| *o == Outcome::Made).count(), 1);
    assert!(!lock.inner.is_held(&k.lock_key()), "released after storing");
    assert_eq!((a.in_flight(), b.in_flight()), (0, 0));
}

/// A make that reports when its cancel token fires; it never finishes on its own.
fn endless(
    makes: &'static AtomicUsize,
    fired: tokio::sync::oneshot::Sender<()>,
) -> impl FnOnce(cache::MakeCtx) -> BoxFuture<'static, Result<Bytes, TestError>> {
    move |ctx| {
        Box::pin(async move {
            makes.fetch_add(1, Ordering::SeqCst);
            let cancel = ctx.cancel().clone();
            // Report from a task of its own: the coalescer drops this future once cancelled.
            tokio::spawn(async move {
                cancel.cancelled().await;
                let _ = fired.send(());
            });
            std::future::pending::<()>().await;
            Ok(payload(0, 1))
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_waiter_leaving_cancels_the_make() {
    let store = Arc::new(FakeCache::default());
    let co = Coalescer::new(
        store.clone(),
        Arc::new(cache::NoLease),
        Arc::new(TokioClock),
        cfg(),
    );
    let k = key("fake-cancel", 1);
    let makes = counter();
    let (fired_tx, mut fired) = tokio::sync::oneshot::channel();
    let first = {
        let (co, k) = (co.clone(), k.clone());
        tokio::spawn(async move { co.get_or_make(&k, TTL, endless(makes, fired_tx)).await })
    };
    let second = {
        let (co, k) = (co.clone(), k.clone());
        tokio::spawn(async move {
            co.get_or_make(&k, TTL, |_| async { Ok::<_, TestError>(payload(1, 1)) })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(makes.load(Ordering::SeqCst), 1);
    // One of two waiters leaves: the make goes on.
    first.abort();
    let _ = first.await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(fired.try_recv().is_err(), "not cancelled while one waits");
    assert_eq!(co.in_flight(), 1);
    // The last one leaves: the token fires, nothing is cached, the flight is gone.
    second.abort();
    let _ = second.await;
    tokio::time::timeout(Duration::from_secs(2), fired)
        .await
        .expect("cancel token fired")
        .unwrap();
    assert_eq!(co.in_flight(), 0);
    assert_eq!(store.puts.load(Ordering::SeqCst), 0);
    // A new request starts a new make.
    let r = co
        .get_or_make(&k, TTL, move |_| async move {
            makes.fetch_add(1, Ordering::SeqCst);
            Ok::<_, TestError>(payload(2, 2))
        })
        .await
        .unwrap();
    assert_eq!(r, (payload(2, 2), Outcome::Made));
    assert_eq!(makes.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_joining_background_work_raises_its_priority() {
    let co = Coalescer::new(
        Arc::new(FakeCache::default()),
        Arc::new(cache::NoLease),
        Arc::new(TokioClock),
        cfg(),
    );
    let k = key("fake-priority", 1);
    let (seen_tx, seen_rx) = tokio::sync::oneshot::channel();
    let (raised_tx, raised_rx) = tokio::sync::oneshot::channel();
    let prefetch = {
        let (co, k) = (co.clone(), k.clone());
        tokio::spawn(async move {
            co.get_or_make_as(&k, TTL, Priority::Background, move |ctx| async move {
                let _ = seen_tx.send(ctx.priority().get());
                let mut p = ctx.priority().clone();
                p.foreground().await;
                let _ = raised_tx.send(());
                Ok::<_, TestError>(payload(5, 5))
            })
            .await
        })
    };
    assert_eq!(seen_rx.await.unwrap(), Priority::Background);
    let request = co
        .get_or_make(&k, TTL, |_| async { Ok::<_, TestError>(payload(6, 6)) })
        .await
        .unwrap();
    raised_rx.await.unwrap();
    assert_eq!(request, (payload(5, 5), Outcome::Waited));
    assert_eq!(prefetch.await.unwrap().unwrap().1, Outcome::Made);
}
