//! Redis backend, tiering and cross-instance coalescing against a real `redis-server`.
//! Each test starts its own server on a free loopback port; two `Stack`s on one server play two
//! hlsgate processes (separate memory caches, connections and coalescers).

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cache::{Cache, CoalescerConfig, Outcome};
use redis::Commands;
use support::{key, payload, RedisServer, Stack, TestError};

const TTL: Duration = Duration::from_secs(600);

/// A make counter the detached makes can hold (`'static`; leaked, test-only).
fn counter() -> &'static AtomicUsize {
    Box::leak(Box::new(AtomicUsize::new(0)))
}

/// One request through `st`: get or make `value` (the make sleeps `delay` first). Returns the
/// result and how long the call took.
async fn fetch(
    st: &Stack,
    k: &cache::Key,
    makes: &'static AtomicUsize,
    value: bytes::Bytes,
    delay: Duration,
) -> (Result<(bytes::Bytes, Outcome), TestError>, Duration) {
    let t0 = Instant::now();
    let r = st
        .coalescer
        .get_or_make(k, TTL, move |_| async move {
            makes.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            Ok::<_, TestError>(value)
        })
        .await;
    (r, t0.elapsed())
}

fn cfg() -> CoalescerConfig {
    CoalescerConfig {
        lease: Duration::from_secs(5),
        renew_every: Duration::from_millis(1500),
        poll_interval: Duration::from_millis(25),
        max_wait: Duration::from_secs(10),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_makes_b_hits_without_making() {
    let server = RedisServer::start();
    let a = Stack::new(&server.url(), cfg()).await;
    let b = Stack::new(&server.url(), cfg()).await;
    assert!(a.redis().healthy() && b.redis().healthy());
    let k = key("https://u:pw@host/a.mkv?sig=SECRET", 3);
    let makes = counter();
    let ra = a
        .coalescer
        .get_or_make(&k, TTL, move |_| async move {
            makes.fetch_add(1, Ordering::SeqCst);
            Ok::<_, TestError>(payload(1, 300_000))
        })
        .await
        .unwrap();
    assert_eq!(ra.1, Outcome::Made);
    assert_eq!(b.tiered.memory().get_value(&k).await, None);
    let rb = b
        .coalescer
        .get_or_make(&k, TTL, move |_| async move {
            makes.fetch_add(1, Ordering::SeqCst);
            Ok::<_, TestError>(payload(2, 10))
        })
        .await
        .unwrap();
    assert_eq!(rb, (payload(1, 300_000), Outcome::Hit));
    assert_eq!(makes.load(Ordering::SeqCst), 1);
    // The L2 hit filled B's L1.
    assert_eq!(
        b.tiered.memory().get_value(&k).await,
        Some(payload(1, 300_000))
    );
    // Independent view of Redis: the value is there under the hashed name with a TTL, the lock
    // is gone, and no key name leaks the source.
    let mut raw = server.raw();
    let stored: Vec<u8> = raw.get(k.as_str()).unwrap();
    assert_eq!(stored, payload(1, 300_000).to_vec());
    let pttl: i64 = raw.pttl(k.as_str()).unwrap();
    assert!(pttl > 590_000 && pttl <= 600_000, "{pttl}");
    let keys: Vec<String> = raw.keys("*").unwrap();
    assert_eq!(keys, vec![k.as_str().to_owned()]);
    assert!(!keys[0].contains("SECRET") && keys[0].len() == "hlsgate:v1:segment:".len() + 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_a_and_b_make_once_in_total() {
    let server = RedisServer::start();
    let a = Stack::new(&server.url(), cfg()).await;
    let b = Stack::new(&server.url(), cfg()).await;
    let makes = counter();
    for round in 0..3u64 {
        let k = key("concurrent", round);
        let v = payload(round as u8, 200_000);
        let d = Duration::from_millis(300);
        // Two requests on each "process", all at once.
        let ((r1, _), (r2, _), (r3, _), (r4, _)) = tokio::join!(
            fetch(&a, &k, makes, v.clone(), d),
            fetch(&b, &k, makes, v.clone(), d),
            fetch(&a, &k, makes, v.clone(), d),
            fetch(&b, &k, makes, v.clone(), d)
        );
        let rs = [r1.unwrap(), r2.unwrap(), r3.unwrap(), r4.unwrap()];
        assert_eq!(
            makes.load(Ordering::SeqCst),
            round as usize + 1,
            "round {round}"
        );
        for (got, _) in &rs {
            assert_eq!(got, &v);
        }
        let made = rs.iter().filter(|(_, o)| *o == Outcome::Made).count();
        assert_eq!(made, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_holders_lock_expires_and_another_takes_over() {
    let server = RedisServer::start();
    let b = Stack::new(&server.url(), cfg()).await;
    let k = key("crash", 1);
    // A "process" took the lock and died: nobody will renew or release it.
    let lease_ms = 1200u64;
    let mut raw = server.raw();
    let set: Option<String> = redis::cmd("SET")
        .arg(k.lock_key())
        .arg("dead-process-token")
        .arg("NX")
        .arg("PX")
        .arg(lease_ms)
        .query(&mut raw)
        .unwrap();
    assert_eq!(set.as_deref(), Some("OK"));
    let t0 = Instant::now();
    let r = b
        .coalescer
        .get_or_make(&k, TTL, move |_| async move {
            Ok::<_, TestError>(payload(4, 1000))
        })
        .await
        .unwrap();
    let took = t0.elapsed();
    assert_eq!(r, (payload(4, 1000), Outcome::Made));
    assert!(
        took >= Duration::from_millis(lease_ms - 100)
            && took < Duration::from_millis(lease_ms + 800),
        "{took:?}"
    );
    // B released its own lock after storing.
    let exists: bool = raw.exists(k.lock_key()).unwrap();
    assert!(!exists);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_holder_releases_its_lock_for_the_other_instance() {
    let server = RedisServer::start();
    let a = Arc::new(Stack::new(&server.url(), cfg()).await);
    let b = Stack::new(&server.url(), cfg()).await;
    let k = key("dropped", 1);
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let holder = {
        let (a, k) = (a.clone(), k.clone());
        tokio::spawn(async move {
            a.coalescer
                .get_or_make(&k, TTL, move |_| async move {
                    let _ = started_tx.send(());
                    std::future::pending::<()>().await;
                    Ok::<_, TestError>(payload(0, 1))
                })
                .await
        })
    };
    started_rx.await.unwrap();
    let mut raw = server.raw();
    assert!(raw.exists::<_, bool>(k.lock_key()).unwrap());
    let waiter = async {
        let t0 = Instant::now();
        let r = b
            .coalescer
            .get_or_make(&k, TTL, move |_| async move {
                Ok::<_, TestError>(payload(6, 500))
            })
            .await;
        (r, t0.elapsed())
    };
    let killer = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        holder.abort();
    };
    let ((r, took), ()) = tokio::join!(waiter, killer);
    assert_eq!(r.unwrap(), (payload(6, 500), Outcome::Made));
    // Well under the 5 s lease: the dropped holder released the lock.
    assert!(took < Duration::from_millis(1500), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_is_renewed_while_making() {
    let server = RedisServer::start();
    let short = CoalescerConfig {
        lease: Duration::from_millis(400),
        renew_every: Duration::from_millis(100),
        ..cfg()
    };
    let a = Stack::new(&server.url(), short.clone()).await;
    let b = Stack::new(&server.url(), short).await;
    let k = key("renew", 1);
    let makes = counter();
    // The make takes much longer than the lease: only renewal keeps B out.
    let v = payload(8, 100);
    let d = Duration::from_millis(1500);
    let b_later = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        fetch(&b, &k, makes, v.clone(), d).await
    };
    let ((ra, _), (rb, _)) = tokio::join!(fetch(&a, &k, makes, v.clone(), d), b_later);
    assert_eq!(makes.load(Ordering::SeqCst), 1);
    assert_eq!(ra.unwrap().0, payload(8, 100));
    assert_eq!(rb.unwrap(), (payload(8, 100), Outcome::Waited));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_make_is_not_cached_in_redis() {
    let server = RedisServer::start();
    let a = Stack::new(&server.url(), cfg()).await;
    let b = Stack::new(&server.url(), cfg()).await;
    let k = key("failed", 1);
    let err = a
        .coalescer
        .get_or_make(&k, TTL, move |_| async move {
            Err::<bytes::Bytes, _>(TestError::Make("boom".into()))
        })
        .await
        .unwrap_err();
    assert_eq!(err, TestError::Make("boom".into()));
    let mut raw = server.raw();
    let keys: Vec<String> = raw.keys("*").unwrap();
    assert!(keys.is_empty(), "{keys:?}");
    let r = b
        .coalescer
        .get_or_make(&k, TTL, move |_| async move {
            Ok::<_, TestError>(payload(2, 20))
        })
        .await
        .unwrap();
    assert_eq!(r, (payload(2, 20), Outcome::Made));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_then_restarted() {
    let mut server = RedisServer::start();
    let port = server.port;
    let url = server.url();
    let a = Stack::new(&url, cfg()).await;
    let makes = counter();
    let get = |tag: u8| payload(tag, 50_000);
    let z = Duration::ZERO;
    let (r, _) = fetch(&a, &key("kill", 0), makes, get(0), z).await;
    assert_eq!(r.unwrap().1, Outcome::Made);

    server.kill();
    // Requests keep working from memory, quickly and without errors.
    for n in 1..=20u64 {
        let (r, took) = fetch(&a, &key("kill", n % 5), makes, get(n as u8), z).await;
        let (v, _) = r.unwrap();
        assert_eq!(v.len(), 50_000);
        assert!(
            took < Duration::from_millis(600),
            "request {n} took {took:?}"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert!(!a.redis().healthy());
    // Keys 1..=4 were made once each while Redis was down, key 0 came from L1.
    assert_eq!(makes.load(Ordering::SeqCst), 5);
    // A "process" started while Redis is down works too (memory only).
    let c = Stack::new(&url, cfg()).await;
    assert!(!c.redis().healthy());
    let (r, took) = fetch(&c, &key("kill", 0), makes, get(0), z).await;
    assert_eq!(r.unwrap().1, Outcome::Made);
    assert!(took < Duration::from_millis(600), "{took:?}");
    // Concurrent identical requests still coalesce in-process.
    let before = makes.load(Ordering::SeqCst);
    let k99 = key("kill", 99);
    let ((x, _), (y, _)) = tokio::join!(
        fetch(&a, &k99, makes, payload(99, 10), Duration::from_millis(100)),
        fetch(&a, &k99, makes, payload(99, 10), z)
    );
    assert_eq!(x.unwrap().0, y.unwrap().0);
    assert_eq!(makes.load(Ordering::SeqCst), before + 1);

    // Restart on the same port (empty: no persistence). A reconnects by itself.
    let server = RedisServer::start_on(port);
    let t0 = Instant::now();
    let mut n = 1000u64;
    loop {
        // Ordinary traffic is what brings A back: no explicit ping.
        let (r, _) = fetch(&a, &key("kill", n), makes, get(1), z).await;
        r.unwrap();
        n += 1;
        if a.redis().healthy() {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "A did not reconnect"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("A reconnected {:?} after the restart", t0.elapsed());
    let k = key("after-restart", 1);
    let (r, _) = fetch(&a, &k.clone(), makes, get(42), z).await;
    assert_eq!(r.unwrap().1, Outcome::Made);
    let mut raw = server.raw();
    assert!(raw.exists::<_, bool>(k.as_str()).unwrap());
    // A fresh "process" B sees it through L2 without making.
    let b = Stack::new(&url, cfg()).await;
    let before = makes.load(Ordering::SeqCst);
    let (r, _) = fetch(&b, &k.clone(), makes, get(7), z).await;
    assert_eq!(r.unwrap(), (payload(42, 50_000), Outcome::Hit));
    assert_eq!(makes.load(Ordering::SeqCst), before);
    // C (created while Redis was down) recovers as well.
    let t0 = Instant::now();
    while !c.redis().healthy() {
        c.tiered.get(&key("probe", 0)).await.unwrap();
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "C did not reconnect"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (r, _) = fetch(&c, &k, makes, get(7), z).await;
    assert_eq!(r.unwrap(), (payload(42, 50_000), Outcome::Hit));
}

#[test]
fn redis_up_gauge_follows_health() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let gauge = move || {
        snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .find(|(k, ..)| k.key().name() == cache::metric::REDIS_UP)
            .map(|(.., v)| match v {
                DebugValue::Gauge(g) => g.into_inner(),
                other => panic!("{other:?}"),
            })
    };
    // Current-thread runtime: the thread-local recorder sees every metric call.
    let _guard = metrics::set_default_local_recorder(&recorder);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut server = RedisServer::start();
        let r = cache::RedisCache::connect(cache::RedisConfig::new(server.url()))
            .await
            .unwrap();
        assert_eq!(gauge(), Some(1.0));
        server.kill();
        assert!(!r.ping().await);
        assert!(!r.healthy());
        assert_eq!(gauge(), Some(0.0));
        let _server = RedisServer::start_on(server.port);
        let t0 = Instant::now();
        while !r.ping().await {
            assert!(t0.elapsed() < Duration::from_secs(10));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(gauge(), Some(1.0));
    });
}
