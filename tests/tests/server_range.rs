//! `GET|HEAD /v1/{token}/file` through the real `hlsgate serve` on a loopback listener: Range
//! per RFC 9110 (206, 416 with `bytes */len`, HEAD, If-Range with an entity tag and a date,
//! If-None-Match), bytes compared with the file on disk, types sniffed from the bytes; and the
//! same for an upstream source served by nginx.

use hlsgate_tests::server::Hlsgate;
use hlsgate_tests::{fixture, fixtures, Nginx};
use reqwest::header;
use server::token::open_token;

fn root() -> String {
    fixtures().display().to_string()
}

async fn get(c: &reqwest::Client, url: &str, hdrs: &[(&str, &str)]) -> reqwest::Response {
    let mut rb = c.get(url);
    for (k, v) in hdrs {
        rb = rb.header(*k, *v);
    }
    rb.send().await.unwrap()
}

fn h(r: &reqwest::Response, name: header::HeaderName) -> String {
    r.headers()
        .get(&name)
        .unwrap_or_else(|| panic!("no {name}"))
        .to_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn range_requests_per_rfc9110() {
    let srv = Hlsgate::serve(&["--media-root", &root()], &[]);
    let c = reqwest::Client::new();
    let name = "h264_bframes.mkv";
    let data = std::fs::read(fixture(name)).unwrap();
    let len = data.len();
    let url = srv.url(&format!("/v1/{}/file", open_token(name)));

    // Whole file.
    let r = get(&c, &url, &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(h(&r, header::ACCEPT_RANGES), "bytes");
    assert_eq!(h(&r, header::CONTENT_TYPE), "video/x-matroska");
    assert_eq!(h(&r, header::CONTENT_DISPOSITION), "inline");
    assert_eq!(h(&r, header::CONTENT_LENGTH), len.to_string());
    let etag = h(&r, header::ETAG);
    let last_modified = h(&r, header::LAST_MODIFIED);
    assert!(etag.starts_with('"') && !etag.starts_with("W/"), "{etag}");
    assert!(r.headers().get(header::CONTENT_RANGE).is_none());
    assert_eq!(r.bytes().await.unwrap(), data);

    // 206 cases: (Range, expected start, expected end exclusive).
    for (range, a, b) in [
        ("bytes=100-199".to_string(), 100, 200),
        ("bytes=0-0".to_string(), 0, 1),
        ("bytes=-500".to_string(), len - 500, len),
        (format!("bytes={}-", len - 10), len - 10, len),
        (format!("bytes=5-{}", len + 1000), 5, len),
        (format!("bytes=-{}", len * 2), 0, len),
        // Spanning several 1 MiB read chunks.
        ("bytes=1000000-2500000".to_string(), 1_000_000, 2_500_001),
    ] {
        let r = get(&c, &url, &[("range", &range)]).await;
        assert_eq!(r.status(), 206, "{range}");
        assert_eq!(
            h(&r, header::CONTENT_RANGE),
            format!("bytes {a}-{}/{len}", b - 1),
            "{range}"
        );
        assert_eq!(h(&r, header::CONTENT_LENGTH), (b - a).to_string());
        assert_eq!(h(&r, header::ETAG), etag);
        assert_eq!(r.bytes().await.unwrap(), &data[a..b], "{range}");
    }

    // 416 with the current length.
    for range in [
        format!("bytes={len}-"),
        format!("bytes={}-{}", len + 5, len + 9),
        "bytes=-0".into(),
    ] {
        let r = get(&c, &url, &[("range", &range)]).await;
        assert_eq!(r.status(), 416, "{range}");
        assert_eq!(h(&r, header::CONTENT_RANGE), format!("bytes */{len}"));
    }

    // Ignored Range: the whole file with 200.
    for range in ["bytes=0-1,5-6", "items=0-9", "bytes=9-1", "bytes=x-"] {
        let r = get(&c, &url, &[("range", range)]).await;
        assert_eq!(r.status(), 200, "{range}");
        assert_eq!(r.bytes().await.unwrap().len(), len, "{range}");
    }

    // HEAD: same headers, no body.
    let r = c.head(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(h(&r, header::CONTENT_LENGTH), len.to_string());
    assert!(r.bytes().await.unwrap().is_empty());
    let r = c
        .head(&url)
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(h(&r, header::CONTENT_RANGE), format!("bytes 10-19/{len}"));
    assert_eq!(h(&r, header::CONTENT_LENGTH), "10");

    // If-Range: the current ETag or Last-Modified applies the range; anything else (another
    // tag, a weak tag, another date) gets the whole file.
    for (if_range, partial) in [
        (etag.clone(), true),
        (last_modified.clone(), true),
        ("\"stale\"".to_string(), false),
        (format!("W/{etag}"), false),
        ("Thu, 01 Jan 1970 00:00:00 GMT".to_string(), false),
    ] {
        let r = get(&c, &url, &[("range", "bytes=0-9"), ("if-range", &if_range)]).await;
        let expect = if partial { 206 } else { 200 };
        assert_eq!(r.status(), expect, "If-Range {if_range}");
        let n = r.bytes().await.unwrap().len();
        assert_eq!(n, if partial { 10 } else { len });
    }

    // If-None-Match: 304 with the validators, no body.
    let r = get(&c, &url, &[("if-none-match", &etag)]).await;
    assert_eq!(r.status(), 304);
    assert_eq!(h(&r, header::ETAG), etag);
    assert!(r.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn content_type_is_sniffed_from_bytes() {
    let srv = Hlsgate::serve(&["--media-root", &root()], &[]);
    let c = reqwest::Client::new();
    for (name, ty) in [
        ("h264_aac_faststart.mp4", "video/mp4"),
        ("vp9_opus.webm", "video/webm"),
        ("h264_aac.ts", "video/mp2t"),
        ("aac_only.m4a", "audio/mp4"),
        ("multi_audio_subs.mkv", "video/x-matroska"),
    ] {
        let url = srv.url(&format!("/v1/{}/file", open_token(name)));
        let r = c.head(&url).send().await.unwrap();
        assert_eq!(r.status(), 200, "{name}");
        assert_eq!(h(&r, header::CONTENT_TYPE), ty, "{name}");
    }
    // Not media: the HLS routes answer 422.
    let r = get(
        &c,
        &srv.url(&format!("/v1/{}/master.m3u8", open_token("text.mp4"))),
        &[],
    )
    .await;
    assert_eq!(r.status(), 422);
}

/// The Range passthrough serves every file, probe or no probe (issue 12): every universal
/// fixture, cut files, text, random bytes, an empty file — with 200/206/416/HEAD as for
/// media and the type sniffed from the bytes (the extension when they say nothing).
#[tokio::test]
async fn any_file_is_passed_through() {
    let srv = Hlsgate::serve(&["--media-root", &root()], &[]);
    let c = reqwest::Client::new();
    for (name, ty) in [
        ("tone.flac", "audio/flac"),
        ("tone.mp3", "audio/mpeg"),
        ("tone.ogg", "audio/ogg"),
        ("tone.opus", "audio/ogg"),
        ("tone.wav", "audio/wav"),
        ("audio.flac", "audio/flac"),
        ("audio_cbr.mp3", "audio/mpeg"),
        ("audio_vbr.mp3", "audio/mpeg"),
        ("audio_vorbis.ogg", "audio/ogg"),
        ("audio_opus.opus", "audio/ogg"),
        ("audio.wav", "audio/wav"),
        ("audio.aiff", "audio/aiff"),
        ("audio_alac.m4a", "audio/mp4"),
        ("mpeg4_mp3.avi", "video/x-msvideo"),
        ("h264_aac.flv", "video/x-flv"),
        ("h264_ac3_51.m2ts", "video/mp2t"),
        ("wmv2_wma.wmv", "video/x-ms-asf"),
        ("prores_pcm.mov", "video/quicktime"),
        ("truncated.mp4", "video/mp4"),
        ("truncated.mkv", "video/x-matroska"),
        ("truncated.ts", "video/mp2t"),
        ("text.mp4", "video/mp4"),
        ("random.bin", "application/octet-stream"),
        ("empty.mp4", "video/mp4"),
        ("subs.srt", "application/x-subrip"),
    ] {
        let data = std::fs::read(fixture(name)).unwrap();
        let len = data.len();
        let url = srv.url(&format!("/v1/{}/file", open_token(name)));
        let r = c.head(&url).send().await.unwrap();
        assert_eq!(r.status(), 200, "{name} HEAD");
        assert_eq!(h(&r, header::CONTENT_TYPE), ty, "{name}");
        assert_eq!(h(&r, header::CONTENT_LENGTH), len.to_string(), "{name}");
        assert_eq!(h(&r, header::ACCEPT_RANGES), "bytes", "{name}");
        let r = get(&c, &url, &[]).await;
        assert_eq!(r.status(), 200, "{name}");
        assert_eq!(r.bytes().await.unwrap(), data, "{name}");
        if len > 20 {
            let r = get(&c, &url, &[("range", "bytes=10-19")]).await;
            assert_eq!(r.status(), 206, "{name}");
            assert_eq!(h(&r, header::CONTENT_RANGE), format!("bytes 10-19/{len}"));
            assert_eq!(h(&r, header::CONTENT_TYPE), ty, "{name} 206");
            assert_eq!(r.bytes().await.unwrap(), &data[10..20], "{name}");
        }
        let r = get(&c, &url, &[("range", &format!("bytes={len}-"))]).await;
        assert_eq!(r.status(), 416, "{name}");
        assert_eq!(h(&r, header::CONTENT_RANGE), format!("bytes */{len}"));
    }
    // A file that does not exist is still 404.
    let r = get(
        &c,
        &srv.url(&format!("/v1/{}/file", open_token("nope.flac"))),
        &[],
    )
    .await;
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn upstream_source_through_nginx() {
    let nginx = Nginx::start(fixtures());
    let secret = "range-test-secret-0123456789";
    let srv = Hlsgate::serve(
        &[
            "--media-root",
            &root(),
            "--secret",
            secret,
            "--allow-private-upstream",
            "127.0.0.1/32",
        ],
        &[],
    );
    let c = reqwest::Client::new();
    let name = "h264_aac_moov_end.mp4";
    let data = std::fs::read(fixture(name)).unwrap();
    let issue = |source: String| {
        let c = c.clone();
        let url = srv.url("/api/v1/streams");
        async move {
            let r = c
                .post(url)
                .json(&serde_json::json!({"source": source, "headers": {"X-Forwarded-Test": "1"}}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            r.json::<serde_json::Value>().await.unwrap()
        }
    };
    let up = issue(nginx.url(name)).await;
    let local = issue(format!("file:{name}")).await;
    let token = up["token"].as_str().unwrap();
    assert!(!token.contains("127.0.0.1") && !token.contains("moov"));

    let before = nginx.logged_requests();
    // Eight players at once: one probe.
    let mut all = Vec::new();
    for _ in 0..8 {
        let c = c.clone();
        let u = up["master_url"].as_str().unwrap().to_string();
        all.push(tokio::spawn(async move {
            let r = c.get(u).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.text().await.unwrap()
        }));
    }
    let mut masters = Vec::new();
    for h in all {
        masters.push(h.await.unwrap());
    }
    assert!(masters.windows(2).all(|w| w[0] == w[1]));
    let master_up = masters.swap_remove(0);
    // The same bytes give the same playlists wherever they come from.
    let master_local = get(&c, local["master_url"].as_str().unwrap(), &[])
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(master_up, master_local);
    let pl = |t: &str| srv.url(&format!("/v1/{t}/v1/index.m3u8"));
    let media_up = get(&c, &pl(token), &[]).await.text().await.unwrap();
    let media_local = get(&c, &pl(local["token"].as_str().unwrap()), &[])
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(media_up, media_local);
    // Probed once (moov at the end: a handful of requests), then memoised.
    let probe_requests = nginx.logged_requests() - before;
    assert!(
        (1..=4).contains(&probe_requests),
        "{probe_requests} upstream requests"
    );

    // Range passthrough of the upstream bytes.
    let file = up["file_url"].as_str().unwrap();
    let r = get(&c, file, &[("range", "bytes=2000000-2000099")]).await;
    assert_eq!(r.status(), 206);
    assert_eq!(
        h(&r, header::CONTENT_RANGE),
        format!("bytes 2000000-2000099/{}", data.len())
    );
    assert_eq!(h(&r, header::CONTENT_TYPE), "video/mp4");
    assert_eq!(r.bytes().await.unwrap(), &data[2_000_000..2_000_100]);
    let r = get(&c, file, &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap(), data);
    let r = get(&c, file, &[("range", &format!("bytes={}-", data.len()))]).await;
    assert_eq!(r.status(), 416);
    assert_eq!(
        h(&r, header::CONTENT_RANGE),
        format!("bytes */{}", data.len())
    );

    // The upstream counters reached /metrics.
    let m = get(&c, &srv.url("/metrics"), &[])
        .await
        .text()
        .await
        .unwrap();
    let line = m
        .lines()
        .find(|l| l.starts_with("hlsgate_upstream_requests_total{kind=\"http\"}"))
        .unwrap_or_else(|| panic!("no upstream counter in\n{m}"));
    let n: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n >= probe_requests as f64, "{line}");
}
