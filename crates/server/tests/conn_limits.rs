//! Connection limits of [`server::serve`] on a real listener: a client that sends its headers
//! too slowly (slowloris) or sits idle on a kept-alive connection is disconnected, the number
//! of open connections is capped, and normal requests keep working meanwhile.

#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use server::ConnLimits;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

async fn start(limits: ConnLimits) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/healthz", get(|| async { "ok\n" }));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        server::serve(listener, app, limits, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    (addr, tx)
}

/// One GET on a fresh connection; the status line.
async fn get_status(addr: SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .expect("answer within 5 s")
        .unwrap();
    String::from_utf8_lossy(&buf)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

/// Waits until the server closes `s` (EOF or reset); how long that took.
async fn closed_after(mut s: TcpStream, limit: Duration) -> Option<Duration> {
    let t = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(limit.saturating_sub(t.elapsed()), s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(t.elapsed()),
            Ok(Ok(_)) => {} // a 408 or similar before the close is fine
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_off_and_others_are_served() {
    let limits = ConnLimits {
        header_timeout: Duration::from_secs(1),
        ..ConnLimits::default()
    };
    let (addr, _stop) = start(limits).await;
    // 50 slowloris clients: one header byte, then silence.
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHo").await.unwrap();
        slow.push(s);
    }
    // Normal requests are served meanwhile.
    assert_eq!(get_status(addr).await, "HTTP/1.1 200 OK");
    let waits = futures_util::future::join_all(
        slow.into_iter()
            .map(|s| closed_after(s, Duration::from_secs(5))),
    )
    .await;
    for w in &waits {
        let w = w.expect("a slow-header connection was still open after 5 s");
        assert!(w < Duration::from_secs(3), "closed after {w:?}");
    }
    assert_eq!(get_status(addr).await, "HTTP/1.1 200 OK");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_connections_are_closed() {
    let limits = ConnLimits {
        header_timeout: Duration::from_secs(1),
        ..ConnLimits::default()
    };
    let (addr, _stop) = start(limits).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Kept alive, then idle: closed by the header timer of the next request.
    let w = closed_after(s, Duration::from_secs(5)).await;
    assert!(w.is_some(), "an idle kept-alive connection stayed open 5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_connections_are_capped() {
    let limits = ConnLimits {
        header_timeout: Duration::from_secs(30),
        max_connections: 4,
        ..ConnLimits::default()
    };
    let (addr, _stop) = start(limits).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHo").await.unwrap();
        held.push(s);
    }
    // The fifth connects (kernel backlog) but is not served while four are held.
    let fifth = tokio::spawn(get_status(addr));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!fifth.is_finished(), "served beyond max_connections");
    drop(held);
    let status = tokio::time::timeout(Duration::from_secs(5), fifth)
        .await
        .expect("served once a slot was free")
        .unwrap();
    assert_eq!(status, "HTTP/1.1 200 OK");
}
