//! A 206 with a correct `Content-Range` and a chunked body that goes on for 1 GiB must cost
//! about the bytes asked for, not the bytes sent. Alone in its test binary so no other test
//! moves the process' RSS.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{endless_chunked, serve};
use source::{ByteRange, ByteSource, HttpSource, HttpUpstream, Identity, SourceError};

const GIB: u64 = 1 << 30;
const TOTAL: u64 = 1 << 40;

/// The process' resident set, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

#[tokio::test]
async fn an_endless_body_costs_the_range_asked_for() {
    // Every request: the range asked for, correctly labelled, then 1 GiB of chunked body.
    let u = serve(|req, sock, sent| async move {
        let (a, b) = req.range.unwrap_or((0, TOTAL - 1));
        let head = format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {a}-{b}/{TOTAL}\r\n\
             Transfer-Encoding: chunked\r\n\r\n"
        );
        endless_chunked(sock, head, GIB, sent).await;
    })
    .await;
    let up = HttpUpstream::new(common::config()).unwrap();
    let url = u.url("big.mp4");
    // Warm up: the client, its pool and the runtime allocate once.
    let _ = HttpSource::open(&up, &url, &[]).await;
    assert!(u.wait_done(1, Duration::from_secs(10)).await);

    let before = rss();
    let sent_before = u.sent();
    let t = Instant::now();
    let err = HttpSource::open(&up, &url, &[]).await.unwrap_err();
    assert!(
        matches!(err, SourceError::TooLong { asked: 16384, .. }),
        "{err:?}"
    );
    // A 1 MiB read of the same upstream.
    let src = HttpSource::known(
        &up,
        &url,
        &[],
        Identity {
            location: url.clone(),
            size: TOTAL,
            etag: None,
            last_modified: None,
            mtime_ns: None,
        },
    )
    .unwrap();
    let err = src
        .read(ByteRange::new(1 << 20, 2 << 20))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SourceError::TooLong { asked, .. } if asked == 1 << 20),
        "{err:?}"
    );
    assert!(
        u.wait_done(3, Duration::from_secs(10)).await,
        "the server kept sending"
    );
    let took = t.elapsed();
    let grew = rss().saturating_sub(before);
    let sent = u.sent() - sent_before;
    eprintln!("rss grew {grew} bytes; server sent {sent} bytes; {took:?}");
    assert!(grew < 8 << 20, "RSS grew by {grew} bytes");
    assert!(
        sent < 64 << 20,
        "the server sent {sent} bytes before the client hung up"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    // What the source kept count of: at most the bytes asked for.
    assert!(src.stats().bytes() <= 1 << 20);
}
