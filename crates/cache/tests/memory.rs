//! Memory backend and in-process coalescing (no Redis).

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cache::{
    Cache, Coalescer, CoalescerConfig, Lease, MemoryCache, MemoryLease, NoLease, Outcome,
    TokioClock,
};
use support::{key, payload, TestError};

const MIB: usize = 1 << 20;

fn coalescer(cfg: CoalescerConfig) -> Coalescer {
    Coalescer::new(
        Arc::new(MemoryCache::new(64 << 20)),
        Arc::new(NoLease),
        Arc::new(TokioClock),
        cfg,
    )
}

/// A make counter the detached makes can hold (`'static`; leaked, test-only).
fn counter() -> &'static AtomicUsize {
    Box::leak(Box::new(AtomicUsize::new(0)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_is_bounded_by_bytes() {
    let budget = 64 * MIB as u64;
    let c = MemoryCache::new(budget);
    let keys: Vec<_> = (0..200).map(|n| key("src", n)).collect();
    for (n, k) in keys.iter().enumerate() {
        c.put(
            k,
            bytes::Bytes::from(vec![n as u8; MIB]),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    }
    c.run_pending_tasks().await;
    // Count what is actually retrievable, independently of moka's own weight counter.
    let mut present = 0usize;
    let mut bytes = 0usize;
    for k in &keys {
        if let Some(v) = c.get(k).await.unwrap() {
            assert_eq!(v.len(), MIB);
            present += 1;
            bytes += v.len() + k.as_str().len();
        }
    }
    println!(
        "retrievable: {present} entries, {bytes} bytes; moka weighted_size {}",
        c.weighted_size()
    );
    assert!(c.weighted_size() <= budget, "{}", c.weighted_size());
    assert!(bytes as u64 <= budget, "{bytes}");
    assert!(present > 0 && present < 64, "{present}");
}

/// Without anyone calling `run_pending_tasks`, what the cache holds (every value still
/// retrievable) stays within the budget plus one sweep fraction (1/16) and one entry at any
/// point of a stream of large inserts. Before the sweep was added, 200 × 1 MiB left 150+ MiB
/// retrievable in a 64 MiB cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_inserts_are_evicted_as_they_come() {
    let budget = 64 * MIB as u64;
    let c = MemoryCache::new(budget);
    let keys: Vec<_> = (0..200).map(|n| key("sweep", n)).collect();
    let mut worst = 0u64;
    for (n, k) in keys.iter().enumerate() {
        c.put(
            k,
            bytes::Bytes::from(vec![n as u8; MIB]),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
        if n % 20 == 19 {
            let mut held = 0u64;
            for k in &keys[..=n] {
                if let Some(v) = c.get(k).await.unwrap() {
                    held += (v.len() + k.as_str().len()) as u64;
                }
            }
            worst = worst.max(held);
        }
    }
    println!(
        "most held at a check: {} MiB of a {} MiB budget",
        worst >> 20,
        budget >> 20
    );
    assert!(worst <= budget + budget / 16 + MIB as u64, "{worst}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_expire_after_their_own_ttl() {
    let c = MemoryCache::new(8 * MIB as u64);
    let short = key("ttl", 1);
    let long = key("ttl", 2);
    c.put(&short, payload(1, 100), Duration::from_millis(300))
        .await
        .unwrap();
    c.put(&long, payload(2, 100), Duration::from_secs(30))
        .await
        .unwrap();
    assert!(c.get(&short).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(c.get(&short).await.unwrap(), None);
    assert_eq!(c.get(&long).await.unwrap(), Some(payload(2, 100)));
    // Zero TTL stores nothing.
    let zero = key("ttl", 3);
    c.put(&zero, payload(3, 10), Duration::ZERO).await.unwrap();
    assert_eq!(c.get(&zero).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_concurrent_identical_requests_make_once() {
    let co = coalescer(CoalescerConfig::default());
    let k = key("three", 7);
    let makes = counter();
    let call = || async {
        co.get_or_make(&k, Duration::from_secs(60), move |_| async move {
            makes.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(200)).await;
            Ok::<_, TestError>(payload(9, 100_000))
        })
        .await
    };
    let (a, b, c) = tokio::join!(call(), call(), call());
    let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
    assert_eq!(makes.load(Ordering::SeqCst), 1);
    assert_eq!(a.0, b.0);
    assert_eq!(b.0, c.0);
    assert_eq!(a.0, payload(9, 100_000));
    let mut outcomes = vec![a.1, b.1, c.1];
    outcomes.sort_by_key(|o| o.as_str());
    assert_eq!(outcomes, [Outcome::Made, Outcome::Waited, Outcome::Waited]);
    assert_eq!(co.in_flight(), 0);
    // Then a plain hit, no make.
    let d = co
        .get_or_make(&k, Duration::from_secs(60), move |_| async move {
            makes.fetch_add(1, Ordering::SeqCst);
            Ok::<_, TestError>(payload(0, 1))
        })
        .await
        .unwrap();
    assert_eq!(d.1, Outcome::Hit);
    assert_eq!(d.0, a.0);
    assert_eq!(makes.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_make_reaches_waiters_and_is_not_cached() {
    let co = coalescer(CoalescerConfig::default());
    let k = key("fail", 1);
    let makes = counter();
    let failing = || async {
        co.get_or_make(&k, Duration::from_secs(60), move |_| async move {
            makes.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(150)).await;
            Err::<bytes::Bytes, _>(TestError::Make("upstream 502".into()))
        })
        .await
    };
    let (a, b) = tokio::join!(failing(), failing());
    assert_eq!(makes.load(Ordering::SeqCst), 1);
    let mut errs = vec![a.unwrap_err(), b.unwrap_err()];
    errs.sort_by_key(|e| e.to_string());
    assert!(
        matches!(&errs[0], TestError::Coalesce(m) if m.contains("upstream 502")),
        "{errs:?}"
    );
    // The caller that started the make gets its own typed error.
    assert_eq!(errs[1], TestError::Make("upstream 502".into()));
    assert_eq!(co.cache().get(&k).await.unwrap(), None);
    // The next request makes again and succeeds.
    let ok = co
        .get_or_make(&k, Duration::from_secs(60), move |_| async move {
            makes.fetch_add(1, Ordering::SeqCst);
            Ok::<_, TestError>(payload(5, 10))
        })
        .await
        .unwrap();
    assert_eq!(ok, (payload(5, 10), Outcome::Made));
    assert_eq!(makes.load(Ordering::SeqCst), 2);
}

/// The make is detached from the caller that started it: that caller's client going away
/// leaves it running for the waiter, which gets its bytes (no second make, no hang).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_starter_leaves_the_make_running_for_a_waiter() {
    let co = Arc::new(coalescer(CoalescerConfig::default()));
    let k = key("drop", 1);
    let makes = counter();
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let starter = {
        let (co, k) = (co.clone(), k.clone());
        tokio::spawn(async move {
            co.get_or_make(&k, Duration::from_secs(60), move |ctx| async move {
                makes.fetch_add(1, Ordering::SeqCst);
                let _ = started_tx.send(());
                let _ = go_rx.await;
                assert!(!ctx.cancel().is_cancelled());
                Ok::<_, TestError>(payload(3, 1000))
            })
            .await
        })
    };
    started_rx.await.unwrap();
    let waiter = {
        let (co, k) = (co.clone(), k.clone());
        tokio::spawn(async move {
            co.get_or_make(&k, Duration::from_secs(60), move |_| async move {
                makes.fetch_add(1, Ordering::SeqCst);
                Ok::<_, TestError>(payload(4, 1))
            })
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiter.is_finished(), "waiter must wait for the make");
    starter.abort(); // the client of the starter went away
    let _ = starter.await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(co.in_flight(), 1, "the make goes on");
    go_tx.send(()).unwrap();
    let r = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("waiter hung")
        .unwrap()
        .unwrap();
    assert_eq!(r, (payload(3, 1000), Outcome::Waited));
    assert_eq!(makes.load(Ordering::SeqCst), 1);
    assert_eq!(co.in_flight(), 0);
}

/// Waiting for another instance's generation is bounded by `max_wait`: a lock held elsewhere
/// (and never released) gives `Busy`, to every caller of the flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_another_instance_is_bounded_by_max_wait() {
    let lease = Arc::new(MemoryLease::new(Arc::new(TokioClock)));
    let k = key("busy", 1);
    // "Another instance" holds the lock for longer than we wait.
    assert!(matches!(
        lease
            .try_acquire(&k.lock_key(), Duration::from_secs(60))
            .await,
        cache::LeaseAttempt::Acquired(_)
    ));
    let co = Coalescer::new(
        Arc::new(MemoryCache::new(1 << 20)),
        lease,
        Arc::new(TokioClock),
        CoalescerConfig {
            max_wait: Duration::from_millis(200),
            poll_interval: Duration::from_millis(20),
            ..CoalescerConfig::default()
        },
    );
    let makes = counter();
    let call = || async {
        let t0 = Instant::now();
        let r = co
            .get_or_make(&k, Duration::from_secs(60), move |_| async move {
                makes.fetch_add(1, Ordering::SeqCst);
                Ok::<_, TestError>(payload(2, 10))
            })
            .await;
        (r, t0.elapsed())
    };
    let ((a, ta), (b, _)) = tokio::join!(call(), call());
    assert_eq!(a.unwrap_err(), TestError::Busy);
    assert_eq!(b.unwrap_err(), TestError::Busy);
    assert_eq!(makes.load(Ordering::SeqCst), 0);
    assert!(
        ta >= Duration::from_millis(150) && ta < Duration::from_millis(800),
        "{ta:?}"
    );
}
