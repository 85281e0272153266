//! A hand-written HTTP/1.1 upstream on 127.0.0.1:0 that misbehaves on purpose: each test
//! gives a handler that writes whatever raw bytes it wants (or nothing) on the socket.

#![allow(dead_code)] // Each test binary uses part of it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a failed unwrap fails the test.

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One request as the handler sees it.
pub struct Req {
    /// 0 for the first connection, 1 for the second...
    pub n: usize,
    /// The `Range: bytes=a-b` asked for (inclusive end).
    pub range: Option<(u64, u64)>,
}

/// A running upstream.
pub struct Upstream {
    pub port: u16,
    /// Connections accepted.
    pub hits: Arc<AtomicUsize>,
    /// Body bytes the handlers managed to write (they add to it).
    pub sent: Arc<AtomicU64>,
    /// Handlers finished.
    pub done: Arc<AtomicUsize>,
}

impl Upstream {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    /// Waits (up to `limit`) until `n` handlers have finished.
    pub async fn wait_done(&self, n: usize, limit: std::time::Duration) -> bool {
        let end = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < end {
            if self.done.load(Ordering::SeqCst) >= n {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        false
    }
}

/// Serves every connection with `handler` (one request per connection).
pub async fn serve<F, Fut>(handler: F) -> Upstream
where
    F: Fn(Req, TcpStream, Arc<AtomicU64>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let handler = Arc::new(handler);
    let (h, s, d) = (hits.clone(), sent.clone(), done.clone());
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let n = h.fetch_add(1, Ordering::SeqCst);
            let (handler, s, d) = (handler.clone(), s.clone(), d.clone());
            tokio::spawn(async move {
                let range = read_request(&mut sock).await;
                handler(Req { n, range }, sock, s).await;
                d.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    Upstream {
        port,
        hits,
        sent,
        done,
    }
}

/// Reads the request head; returns its `Range`.
async fn read_request(sock: &mut TcpStream) -> Option<(u64, u64)> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    text.lines()
        .find_map(|l| l.strip_prefix("range: bytes="))
        .and_then(|r| r.trim().split_once('-'))
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
}

/// The test file's byte at `i`.
pub fn byte_at(i: u64) -> u8 {
    (i % 251) as u8
}

/// The test file's bytes `[a, b]`.
pub fn bytes(a: u64, b: u64) -> Vec<u8> {
    (a..=b).map(byte_at).collect()
}

/// A correct `206` for `[a, b]` of a `total`-byte file.
pub fn good_206(a: u64, b: u64, total: u64) -> Vec<u8> {
    let body = bytes(a, b);
    let mut r = format!(
        "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {a}-{b}/{total}\r\n\
         ETag: \"v1\"\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(&body);
    r
}

/// Writes `reply` and closes.
pub async fn answer(mut sock: TcpStream, reply: &[u8]) {
    let _ = sock.write_all(reply).await;
    let _ = sock.shutdown().await;
}

/// Holds the socket open without writing until the client goes away.
pub async fn stall(mut sock: TcpStream) {
    let mut buf = [0u8; 256];
    while let Ok(n) = sock.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}

/// Writes `head`, then a chunked body of 64 KiB chunks that goes on for `limit` bytes
/// (generated lazily: one chunk is reused), counting what was written into `sent`, until
/// the client hangs up.
pub async fn endless_chunked(mut sock: TcpStream, head: String, limit: u64, sent: Arc<AtomicU64>) {
    if sock.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let mut chunk = format!("{:x}\r\n", 64 * 1024).into_bytes();
    chunk.extend(bytes(0, 64 * 1024 - 1));
    chunk.extend_from_slice(b"\r\n");
    let mut total = 0u64;
    while total < limit {
        if sock.write_all(&chunk).await.is_err() {
            return;
        }
        total += 64 * 1024;
        sent.fetch_add(64 * 1024, Ordering::SeqCst);
    }
    let _ = sock.write_all(b"0\r\n\r\n").await;
}

/// An upstream config for tests.
pub fn config() -> source::HttpConfig {
    source::HttpConfig {
        backoff: std::time::Duration::from_millis(10),
        ..source::HttpConfig::default()
    }
}
