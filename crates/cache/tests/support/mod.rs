//! Test helpers: a real `redis-server` on a free loopback port, killed on drop, and cache stacks.
// Test-only helpers: panicking on a broken test environment is the point.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cache::{
    Cache, Coalescer, CoalescerConfig, Lease, MemoryCache, RedisCache, RedisConfig, Tiered,
    TokioClock,
};

/// A `redis-server` child process; killed (and reaped) on drop.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
}

impl RedisServer {
    /// Starts on a free port.
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port)
    }

    /// Starts on `port` (used to restart on the same port), waiting until it answers PING.
    pub fn start_on(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed");
        let server = RedisServer {
            child: Some(child),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(client) = redis::Client::open(server.url()) {
                if let Ok(mut c) = client.get_connection() {
                    if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                        break;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server now (SIGKILL: a crash, not a clean shutdown).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A plain synchronous connection, independent of the code under test.
    pub fn raw(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One "process": its own memory L1, its own Redis connection and its own coalescer.
pub struct Stack {
    pub tiered: Tiered,
    pub coalescer: Coalescer,
}

impl Stack {
    pub async fn new(url: &str, cfg: CoalescerConfig) -> Self {
        let redis = RedisCache::connect(RedisConfig::new(url)).await.unwrap();
        let tiered = Tiered::new(MemoryCache::new(64 << 20), redis.clone());
        let cache: Arc<dyn Cache> = Arc::new(tiered.clone());
        let lease: Arc<dyn Lease> = Arc::new(redis);
        Stack {
            tiered,
            coalescer: Coalescer::new(cache, lease, Arc::new(TokioClock), cfg),
        }
    }

    pub fn redis(&self) -> &RedisCache {
        self.tiered.redis()
    }
}

/// Error type used by test makers.
#[derive(Debug, Clone, PartialEq)]
pub enum TestError {
    Make(String),
    Coalesce(String),
    Busy,
    Cancelled,
}

impl std::fmt::Display for TestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl From<cache::CoalesceError> for TestError {
    fn from(e: cache::CoalesceError) -> Self {
        match e {
            cache::CoalesceError::Busy { .. } => TestError::Busy,
            cache::CoalesceError::Cancelled => TestError::Cancelled,
            other => TestError::Coalesce(other.to_string()),
        }
    }
}

pub fn key(source: &str, n: u64) -> cache::Key {
    cache::Key::new(cache::KeyParts {
        kind: cache::Kind::Segment,
        source,
        index_version: 1,
        plan_version: 1,
        output_version: 1,
        rendition: "v:src",
        index: n,
    })
}

/// Deterministic payload for (tag, n) of `len` bytes.
pub fn payload(tag: u8, len: usize) -> bytes::Bytes {
    bytes::Bytes::from(
        (0..len)
            .map(|i| tag.wrapping_add((i % 251) as u8))
            .collect::<Vec<u8>>(),
    )
}
