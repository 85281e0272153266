//! Upstreams that answer too much, too slowly or not at all: every read ends with a typed
//! error, within its deadline, without buffering more than it asked for.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{answer, endless_chunked, good_206, serve, stall};
use source::{
    ByteRange, ByteSource, HttpConfig, HttpSource, HttpUpstream, SourceError, TimeoutKind,
};

const SIZE: u64 = 100_000;
const GIB: u64 = 1 << 30;

fn up(cfg: HttpConfig) -> HttpUpstream {
    HttpUpstream::new(cfg).unwrap()
}

fn range_of(req: &common::Req) -> (u64, u64) {
    let (a, b) = req.range.unwrap_or((0, SIZE - 1));
    (a, b.min(SIZE - 1))
}

#[tokio::test]
async fn content_length_over_the_range_is_refused_from_the_headers() {
    // A correct Content-Range, a Content-Length 1 MB longer, then silence: refused at once
    // (waiting for the body would take the idle timeout).
    let u = serve(|req, sock, _| async move {
        let (a, b) = range_of(&req);
        let head = format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {a}-{b}/{SIZE}\r\n\r\n",
            b - a + 1 + 1_000_000
        );
        let mut sock = sock;
        let _ = tokio::io::AsyncWriteExt::write_all(&mut sock, head.as_bytes()).await;
        stall(sock).await;
    })
    .await;
    let t = Instant::now();
    let err = HttpSource::open(&up(common::config()), &u.url("a.mp4"), &[])
        .await
        .unwrap_err();
    assert!(
        matches!(err, SourceError::TooLong { asked: 16384, got } if got == 16384 + 1_000_000),
        "{err:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    assert_eq!(u.hits(), 1, "a too-long reply is not retried");
}

#[tokio::test]
async fn content_range_claiming_more_than_asked_is_refused() {
    // "Here is the rest of the file" to a 16 KiB request.
    let u = serve(|_, sock, sent| async move {
        let head = format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-{}/{GIB}\r\n\
             Transfer-Encoding: chunked\r\n\r\n",
            GIB - 1
        );
        endless_chunked(sock, head, GIB, sent).await;
    })
    .await;
    let t = Instant::now();
    let err = HttpSource::open(&up(common::config()), &u.url("a.mp4"), &[])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            SourceError::TooLong {
                asked: 16384,
                got: GIB
            }
        ),
        "{err:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert!(
        u.wait_done(1, Duration::from_secs(5)).await,
        "the server kept sending"
    );
    assert!(u.sent() < 64 << 20, "{} bytes sent", u.sent());
}

#[tokio::test]
async fn one_byte_more_in_a_chunked_body_is_an_error() {
    // A correct 206 header without a length; the body has one byte too many.
    let u = serve(|req, sock, _| async move {
        let (a, b) = range_of(&req);
        let body = common::bytes(a, b + 1);
        let mut r = format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {a}-{b}/{SIZE}\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(&body);
        r.extend_from_slice(b"\r\n0\r\n\r\n");
        answer(sock, &r).await;
    })
    .await;
    let err = HttpSource::open(&up(common::config()), &u.url("a.mp4"), &[])
        .await
        .unwrap_err();
    match err {
        SourceError::TooLong { asked, got } => {
            assert_eq!(asked, 16384);
            assert!(got > asked);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(u.hits(), 1);
}

#[tokio::test]
async fn an_ignored_range_is_detected_from_the_headers() {
    // 200 with an endless chunked body, and 200 with a 1 GiB Content-Length.
    for chunked in [true, false] {
        let u = serve(move |_, sock, sent| async move {
            let head = if chunked {
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_string()
            } else {
                format!("HTTP/1.1 200 OK\r\nContent-Length: {GIB}\r\n\r\n")
            };
            endless_chunked(sock, head, GIB, sent).await;
        })
        .await;
        let t = Instant::now();
        let err = HttpSource::open(&up(common::config()), &u.url("a.mp4"), &[])
            .await
            .unwrap_err();
        assert!(matches!(err, SourceError::RangeIgnored), "{err:?}");
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert!(
            u.wait_done(1, Duration::from_secs(5)).await,
            "the server kept sending"
        );
        assert!(u.sent() < 64 << 20, "{} bytes sent", u.sent());
    }
}

#[tokio::test]
async fn a_silent_upstream_ends_by_the_deadline() {
    let u = serve(|_, sock, _| stall(sock)).await;
    // The per-attempt wait (5 s by default) is longer than the deadline: the deadline ends it.
    let cfg = HttpConfig {
        read_deadline: Duration::from_secs(2),
        ..common::config()
    };
    let t = Instant::now();
    let err = HttpSource::open(&up(cfg), &u.url("a.mp4"), &[])
        .await
        .unwrap_err();
    let took = t.elapsed();
    assert!(
        matches!(
            err,
            SourceError::Timeout {
                what: TimeoutKind::Deadline,
                after
            } if after == Duration::from_secs(2)
        ),
        "{err:?}"
    );
    assert!(err.is_timeout());
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(3),
        "{took:?}"
    );

    // Shorter per-attempt waits: every attempt times out waiting for the headers, retried,
    // all within the deadline.
    let cfg = HttpConfig {
        first_byte_timeout: Duration::from_millis(300),
        read_deadline: Duration::from_secs(2),
        attempts: 3,
        ..common::config()
    };
    let hits = u.hits();
    let t = Instant::now();
    let err = HttpSource::open(&up(cfg), &u.url("a.mp4"), &[])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            SourceError::Timeout {
                what: TimeoutKind::FirstByte,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(u.hits() - hits, 3);
}

#[tokio::test]
async fn a_body_that_stalls_ends_by_the_deadline() {
    // Headers, 10 bytes of body, then nothing.
    let u = serve(|req, mut sock, _| async move {
        let (a, b) = range_of(&req);
        let mut r = format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {a}-{b}/{SIZE}\r\n\r\n",
            b - a + 1
        )
        .into_bytes();
        r.extend(common::bytes(a, a + 9));
        let _ = tokio::io::AsyncWriteExt::write_all(&mut sock, &r).await;
        stall(sock).await;
    })
    .await;
    let cfg = HttpConfig {
        read_deadline: Duration::from_secs(2),
        ..common::config()
    };
    let t = Instant::now();
    let err = HttpSource::open(&up(cfg), &u.url("a.mp4"), &[])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            SourceError::Timeout {
                what: TimeoutKind::Deadline,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());

    // An idle timeout shorter than the deadline: each attempt gives up, then the read.
    let cfg = HttpConfig {
        idle_timeout: Duration::from_millis(300),
        attempts: 2,
        ..common::config()
    };
    let hits = u.hits();
    let t = Instant::now();
    let err = HttpSource::open(&up(cfg), &u.url("a.mp4"), &[])
        .await
        .unwrap_err();
    assert!(
        matches!(err, SourceError::Timeout { what: TimeoutKind::Idle, after } if after == Duration::from_millis(300)),
        "{err:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(u.hits() - hits, 2);
}

#[tokio::test]
async fn an_upstream_that_fails_twice_then_answers_is_read() {
    // 503, then silence (first-byte timeout), then correct answers.
    let u = serve(|req, sock, _| async move {
        let (a, b) = range_of(&req);
        match req.n {
            0 => {
                answer(
                    sock,
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await
            }
            1 => stall(sock).await,
            _ => answer(sock, &good_206(a, b, SIZE)).await,
        }
    })
    .await;
    let cfg = HttpConfig {
        first_byte_timeout: Duration::from_millis(300),
        read_deadline: Duration::from_secs(3),
        ..common::config()
    };
    let t = Instant::now();
    let src = HttpSource::open(&up(cfg), &u.url("f.bin?sig=secret"), &[])
        .await
        .unwrap();
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert_eq!(u.hits(), 3);
    assert_eq!(src.size(), SIZE);
    let got = src.read(ByteRange::new(50_000, 60_000)).await.unwrap();
    assert_eq!(&got[..], &common::bytes(50_000, 59_999)[..]);
    assert_eq!(u.hits(), 4);
}

#[tokio::test]
async fn retries_give_the_last_typed_error() {
    // Always 503.
    let u = serve(|_, sock, _| async move {
        answer(
            sock,
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .await
    })
    .await;
    let err = HttpSource::open(&up(common::config()), &u.url("a"), &[])
        .await
        .unwrap_err();
    match &err {
        SourceError::Unreachable { attempts: 3, last } => assert!(
            matches!(**last, SourceError::UpstreamStatus { status: 503, .. }),
            "{last:?}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(!err.is_timeout());

    // A backoff that would pass the deadline is not waited for.
    let cfg = HttpConfig {
        backoff: Duration::from_secs(1),
        attempts: 10,
        read_deadline: Duration::from_secs(2),
        ..common::config()
    };
    let t = Instant::now();
    let err = HttpSource::open(&up(cfg), &u.url("a"), &[])
        .await
        .unwrap_err();
    assert!(
        matches!(err, SourceError::Unreachable { attempts: 2, .. }),
        "{err:?}"
    );
    assert!(
        t.elapsed() < Duration::from_millis(1900),
        "{:?}",
        t.elapsed()
    );

    // Always cut short.
    let u = serve(|req, sock, _| async move {
        let (a, b) = range_of(&req);
        let mut r = good_206(a, b, SIZE);
        r.truncate(r.len() - 100);
        answer(sock, &r).await
    })
    .await;
    let err = HttpSource::open(&up(common::config()), &u.url("a"), &[])
        .await
        .unwrap_err();
    match &err {
        SourceError::Unreachable { attempts: 3, last } => assert!(
            matches!(
                **last,
                SourceError::Truncated {
                    asked: 16384,
                    got: 16284
                }
            ),
            "{last:?}"
        ),
        other => panic!("{other:?}"),
    }

    // Nobody listening: connect errors, and no URL in the message.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = HttpSource::open(
        &up(common::config()),
        &format!("http://127.0.0.1:{port}/private/film.mkv?sig=secret"),
        &[],
    )
    .await
    .unwrap_err();
    match &err {
        SourceError::Unreachable { attempts: 3, last } => {
            assert!(matches!(**last, SourceError::Connect(_)), "{last:?}")
        }
        other => panic!("{other:?}"),
    }
    let text = err.to_string();
    assert!(!text.contains("sig=") && !text.contains("film"), "{text}");
    assert!(!text.contains('\n'), "{text}");
}

#[tokio::test]
async fn a_read_after_open_has_its_own_deadline() {
    // Answers the opening read, then stalls every later one.
    let u = serve(|req, sock, _| async move {
        let (a, b) = range_of(&req);
        if req.n == 0 {
            answer(sock, &good_206(a, b, SIZE)).await
        } else {
            stall(sock).await
        }
    })
    .await;
    let cfg = HttpConfig {
        read_deadline: Duration::from_secs(2),
        ..common::config()
    };
    let src = HttpSource::open(&up(cfg), &u.url("a"), &[]).await.unwrap();
    let t = Instant::now();
    let err = src.read(ByteRange::new(20_000, 30_000)).await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}
