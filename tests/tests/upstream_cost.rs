//! Probing through a real Range-capable HTTP server (nginx on 127.0.0.1): how many requests and
//! bytes each container costs, counted by our source and by nginx's access log; and the
//! upstream failure cases (Range ignored, file changed, 404, connection refused).

use hlsgate_tests::{fixture, fixtures, Nginx, NoRangeServer, Scratch};
use source::{ByteSource, HttpConfig, HttpSource, HttpUpstream, SourceError};

fn upstream() -> HttpUpstream {
    HttpUpstream::new(HttpConfig::default()).unwrap()
}

/// Loads `name` through nginx as the server does (`pipeline::io::probe`: the index and the
/// demuxer's tables, an MP4's `moov`); returns (requests, bytes, file size) as counted by the
/// source, after checking nginx logged the same number of requests.
async fn cost(nginx: &Nginx, name: &str) -> (u64, u64, u64) {
    let before = nginx.logged_requests();
    let src = HttpSource::open(&upstream(), &nginx.url(name), &[])
        .await
        .unwrap();
    let src: std::sync::Arc<dyn ByteSource> = std::sync::Arc::new(src);
    let loaded = pipeline::io::probe(&src).await.unwrap();
    assert!(!loaded.index.tracks.is_empty());
    let s = src.stats();
    if loaded.index.container == probe::Container::Mp4 {
        // The demuxer's tables are the probe's own read of the moov: nothing is read after
        // the probe (its first read is the source's opening request).
        assert!(
            loaded.tables.is_some(),
            "{name}: the moov comes with the index"
        );
        assert_eq!(
            s.requests(),
            loaded.cost.requests,
            "{name}: read again after the probe"
        );
    }
    // nginx writes its log line after the response; give it a moment.
    let mut logged = 0;
    for _ in 0..50 {
        logged = nginx.logged_requests() - before;
        if logged as u64 == s.requests() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        logged as u64,
        s.requests(),
        "{name}: nginx logged {logged}, we counted {}",
        s.requests()
    );
    eprintln!(
        "{name}: {} requests, {} bytes of {}",
        s.requests(),
        s.bytes(),
        src.size()
    );
    (s.requests(), s.bytes(), src.size())
}

#[tokio::test]
async fn probe_costs_through_http() {
    let nginx = Nginx::start(fixtures());
    const KIB: u64 = 1024;
    for name in [
        "h264_aac_faststart.mp4",
        "h264_bframes.mkv",
        "hevc_ac3.mkv",
        "multi_audio_subs.mkv",
        "vp9_opus.webm",
    ] {
        let (req, bytes, _) = cost(&nginx, name).await;
        assert!(req <= 3, "{name}: {req} requests");
        assert!(bytes <= 512 * KIB, "{name}: {bytes} bytes");
    }
    // moov at the end: ≤ 3 requests, bytes ≤ 512 KiB + the moov itself.
    let (req, bytes, _) = cost(&nginx, "h264_aac_moov_end.mp4").await;
    let moov = moov_size(&fixture("h264_aac_moov_end.mp4"));
    assert!(req <= 3, "moov at end: {req} requests");
    assert!(
        bytes <= 512 * KIB + moov,
        "moov at end: {bytes} bytes (moov {moov})"
    );
    // No Cues: a cluster scan reading ≤ 2 % of the file.
    let (_, bytes, size) = cost(&nginx, "mkv_no_cues.mkv").await;
    assert!(bytes * 50 <= size, "no cues: {bytes} of {size} bytes");
    // 2-hour MKV: < 1 % of its bytes.
    let (req, bytes, size) = cost(&nginx, "long_2h.mkv").await;
    assert!(bytes * 100 < size, "2 h: {bytes} of {size} bytes");
    assert!(req <= 3, "2 h: {req} requests");
    // MPEG-TS has no index: one sequential pass in large reads; each read re-fetches at most the
    // partial packet at its edge (the 2 % goal is not met; see docs/probe.md).
    let (req, bytes, size) = cost(&nginx, "h264_aac.ts").await;
    assert!(
        bytes <= size + 188 * req,
        "ts: {bytes} of {size} bytes in {req} requests: more than one pass"
    );
    assert!(req <= 1 + size.div_ceil(1 << 20), "ts: {req} requests");
}

/// The size of the top-level moov box, read independently of our parser.
fn moov_size(path: &std::path::Path) -> u64 {
    let data = std::fs::read(path).unwrap();
    let mut off = 0usize;
    while off + 8 <= data.len() {
        let size = u32::from_be_bytes(data[off..off + 4].try_into().unwrap()) as usize;
        if &data[off + 4..off + 8] == b"moov" {
            return size as u64;
        }
        off += size.max(8);
    }
    panic!("no moov");
}

#[tokio::test]
async fn upstream_that_ignores_range_is_refused() {
    let server = NoRangeServer::start(fixtures());
    let url = format!("http://127.0.0.1:{}/h264_bframes.mkv", server.port);
    let err = HttpSource::open(&upstream(), &url, &[]).await.unwrap_err();
    assert!(matches!(err, SourceError::RangeIgnored), "{err}");
    assert!(err.to_string().contains("ignores Range"));
}

#[tokio::test]
async fn file_changed_between_reads_is_detected() {
    let scratch = Scratch::new("changed");
    let dir = scratch.path();
    let path = dir.join("a.mkv");
    std::fs::copy(fixture("h264_bframes.mkv"), &path).unwrap();
    let nginx = Nginx::start(dir);
    let src = HttpSource::open(&upstream(), &nginx.url("a.mkv"), &[])
        .await
        .unwrap();
    // Change the file: nginx's ETag (mtime + size) and the size change.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let mut data = std::fs::read(&path).unwrap();
    data.extend_from_slice(&[0u8; 100]);
    std::fs::write(&path, data).unwrap();
    let err = src
        .read(source::ByteRange::new(1_000_000, 1_001_000))
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::IdentityChanged(_)), "{err}");
    // Missing object: 404 → NotFound, no retries.
    let err = HttpSource::open(&upstream(), &nginx.url("missing.mkv"), &[])
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::NotFound(_)), "{err}");
}

#[tokio::test]
async fn connection_refused_is_retried_then_reported() {
    let port = hlsgate_tests::free_port();
    let cfg = HttpConfig {
        attempts: 3,
        backoff: std::time::Duration::from_millis(10),
        ..HttpConfig::default()
    };
    let up = HttpUpstream::new(cfg).unwrap();
    let err = HttpSource::open(&up, &format!("http://127.0.0.1:{port}/x.mkv"), &[])
        .await
        .unwrap_err();
    match err {
        SourceError::Unreachable { attempts, .. } => assert_eq!(attempts, 3),
        other => panic!("expected Unreachable, got {other}"),
    }
}

/// A real HTTP/1.1 listener on 127.0.0.1 that misbehaves on purpose: the first request gets
/// 503, the second a 206 whose body is cut short, the rest a correct 206 for a 100 000-byte
/// file. Returns the port and a counter of requests served.
async fn flaky_upstream() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let served = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = served.clone();
    const SIZE: u64 = 100_000;
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let n = counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut req = vec![0u8; 4096];
                let len = sock.read(&mut req).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&req[..len]).to_lowercase();
                let range = req
                    .lines()
                    .find_map(|l| l.strip_prefix("range: bytes="))
                    .and_then(|r| r.trim().split_once('-'))
                    .map(|(a, b)| (a.parse::<u64>().unwrap(), b.parse::<u64>().unwrap()))
                    .unwrap_or((0, SIZE - 1));
                let (a, b) = (range.0, range.1.min(SIZE - 1));
                let body: Vec<u8> = (a..=b).map(|i| (i % 251) as u8).collect();
                let head = |status: &str, len: usize| {
                    format!(
                        "HTTP/1.1 {status}\r\nContent-Length: {len}\r\nContent-Range: bytes {a}-{b}/{SIZE}\r\n\
                         ETag: \"v1\"\r\nConnection: close\r\n\r\n"
                    )
                };
                let reply = match n {
                    0 => "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_string()
                        .into_bytes(),
                    1 => {
                        // Announces the full length, sends half, closes: a short body.
                        let mut r = head("206 Partial Content", body.len()).into_bytes();
                        r.extend_from_slice(&body[..body.len() / 2]);
                        r
                    }
                    _ => {
                        let mut r = head("206 Partial Content", body.len()).into_bytes();
                        r.extend_from_slice(&body);
                        r
                    }
                };
                let _ = sock.write_all(&reply).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (port, served)
}

#[tokio::test]
async fn server_errors_and_short_bodies_are_retried() {
    let (port, served) = flaky_upstream().await;
    let cfg = HttpConfig {
        attempts: 3,
        backoff: std::time::Duration::from_millis(10),
        ..HttpConfig::default()
    };
    let up = HttpUpstream::new(cfg).unwrap();
    let src = HttpSource::open(&up, &format!("http://127.0.0.1:{port}/f.bin"), &[])
        .await
        .unwrap();
    // 503, then a short body, then success: three attempts for the opening read.
    assert_eq!(served.load(std::sync::atomic::Ordering::SeqCst), 3);
    assert_eq!(src.size(), 100_000);
    assert_eq!(src.stats().requests(), 3);
    let bytes = src
        .read(source::ByteRange::new(50_000, 50_010))
        .await
        .unwrap();
    assert_eq!(
        &bytes[..],
        &(50_000u64..50_010)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<_>>()[..]
    );
}

/// nginx in front of the fixtures that answers 403 unless the request carries the cookie and
/// the bearer token: the headers given to the CLI must reach every upstream request.
#[test]
fn forwarded_headers_reach_the_upstream() {
    let nginx = Nginx::start_with(
        fixtures(),
        "if ($http_authorization != \"Bearer s3cret\") { return 403; }\n\
         if ($http_cookie != \"session=abc\") { return 403; }",
    );
    let url = nginx.url("h264_bframes.mkv");
    let (code, out, err) = hlsgate_tests::hlsgate(&[
        "probe",
        &url,
        "-H",
        "Authorization: Bearer s3cret",
        "--header",
        "Cookie: session=abc",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("keyframes  30"), "{out}");
    let (code, _, err) = hlsgate_tests::hlsgate(&["probe", &url]);
    assert_eq!(code, 1);
    assert!(err.contains("403"), "{err}");
}

/// The universal (libavformat) path through nginx: requests and bytes of the probe (a scan that
/// reads the whole file: it builds the packet table from every packet) and of the middle segment
/// of the first rendition (its byte span, read in the source's blocks), counted by the source
/// and checked against nginx's log. The table goes to the note of issue 12.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn universal_costs_through_http() {
    use std::sync::Arc;
    let nginx = Nginx::start(fixtures());
    let mut table = vec![format!(
        "{:<18} {:>9} | {:>5} {:>9} | {:>4} {:>8} | {:>4} {:>8}",
        "fixture", "size", "probe", "", "seg", "", "seg#", "of"
    )];
    for &name in hlsgate_tests::UNIVERSAL_FIXTURES {
        let before = nginx.logged_requests();
        let src: Arc<dyn ByteSource> = Arc::new(
            HttpSource::open(&upstream(), &nginx.url(name), &[])
                .await
                .unwrap(),
        );
        let media = pipeline::io::load(&src, pipeline::MediaOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let probe = (src.stats().requests(), src.stats().bytes());
        let size = src.size();
        assert!(
            probe.1 <= size + 64 * 1024,
            "{name}: probe read {} bytes of a {size}-byte file",
            probe.1
        );
        let r = media
            .renditions()
            .iter()
            .find(|r| r.kind != plan::RenditionKind::Subtitle)
            .expect("a rendition");
        let n = media.segment_count() / 2;
        let out = pipeline::Output::Segment(r.id.clone(), n);
        let ranges = media.needs(&out).unwrap();
        let fetched = pipeline::io::fetch(src.as_ref(), &ranges).await.unwrap();
        let seg = (
            src.stats().requests() - probe.0,
            src.stats().bytes() - probe.1,
        );
        let m4s = media.make(&out, &fetched).unwrap();
        assert!(!m4s.is_empty(), "{name}: empty segment");
        // A segment reads its span, not the file: at most the span rounded out to the source's
        // 1 MiB blocks plus one block.
        let span: u64 = ranges.iter().map(|r| r.len()).sum();
        assert!(
            seg.1 <= span + 2 * 1024 * 1024,
            "{name}: segment read {} bytes for a {span}-byte span",
            seg.1
        );
        // nginx's own log agrees with our count.
        let mut logged = 0;
        for _ in 0..50 {
            logged = nginx.logged_requests() - before;
            if logged as u64 == probe.0 + seg.0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(logged as u64, probe.0 + seg.0, "{name}: nginx log");
        table.push(format!(
            "{name:<18} {size:>9} | {:>5} {:>9} | {:>4} {:>8} | {:>4} {:>8}",
            probe.0,
            probe.1,
            seg.0,
            seg.1,
            n,
            media.segment_count()
        ));
    }
    eprintln!("{}", table.join("\n"));
}
