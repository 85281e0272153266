//! Router tests driven with `oneshot` (no listener): routing, status codes, headers, tokens,
//! the API key, open mode, the library, errors that must not leak. The media root is the
//! shared fixtures folder (made by `fixtures/make.sh`).

// Test code: unwrap is how a test fails (helpers outside #[test] fns are not covered by
// clippy.toml's allow-unwrap-in-tests).
#![allow(clippy::unwrap_used, clippy::expect_used)]
use std::path::PathBuf;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt as _;
use server::token::{open_token, Grant, TokenKeys};
use server::{app, AppState, ServerConfig};
use tower::ServiceExt as _;

const SECRET: &str = "router-test-secret-0123456789";

fn fixtures() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/out");
    assert!(
        p.join("h264_aac_faststart.mp4").exists(),
        "fixtures missing: run fixtures/make.sh"
    );
    p
}

fn open_app() -> Router {
    app(AppState::new(ServerConfig::new(fixtures())).unwrap())
}

fn signed_config() -> ServerConfig {
    ServerConfig {
        secret: Some(SECRET.into()),
        ..ServerConfig::new(fixtures())
    }
}

fn signed_app(api_key: Option<&str>) -> Router {
    app(AppState::new(ServerConfig {
        api_key: api_key.map(str::to_string),
        ..signed_config()
    })
    .unwrap())
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }
    fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(&name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }
}

async fn send(app: &Router, req: Request<Body>) -> Reply {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

async fn get(app: &Router, uri: &str) -> Reply {
    send(app, Request::get(uri).body(Body::empty()).unwrap()).await
}

async fn post_json(app: &Router, uri: &str, body: &str, extra: &[(&str, &str)]) -> Reply {
    let mut b = Request::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::HOST, "proxy.test:8080");
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    send(app, b.body(Body::from(body.to_string())).unwrap()).await
}

fn parse_master(text: &str) -> m3u8_rs::MasterPlaylist {
    match m3u8_rs::parse_playlist_res(text.as_bytes()) {
        Ok(m3u8_rs::Playlist::MasterPlaylist(p)) => p,
        other => panic!("not a master playlist: {other:?}\n{text}"),
    }
}

fn parse_media(text: &str) -> m3u8_rs::MediaPlaylist {
    match m3u8_rs::parse_playlist_res(text.as_bytes()) {
        Ok(m3u8_rs::Playlist::MediaPlaylist(p)) => p,
        other => panic!("not a media playlist: {other:?}\n{text}"),
    }
}

#[tokio::test]
async fn open_mode_master_and_video_playlist() {
    let app = open_app();
    let t = open_token("h264_aac_faststart.mp4");
    let r = get(&app, &format!("/v1/{t}/master.m3u8")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header(header::CONTENT_TYPE),
        "application/vnd.apple.mpegurl"
    );
    assert!(r.header(header::CACHE_CONTROL).contains("max-age="));
    let m = parse_master(&r.text());
    assert_eq!(m.variants.len(), 1);
    assert_eq!(m.variants[0].uri, "v1/index.m3u8");
    assert_eq!(
        m.variants[0].codecs.as_deref(),
        Some("avc1.64000d,mp4a.40.2")
    );

    let r = get(&app, &format!("/v1/{t}/v1/index.m3u8")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let pl = parse_media(&r.text());
    assert!(pl.end_list);
    let n = pl.segments.len();
    assert!(n >= 5, "{n} segments");
    let total: f64 = pl.segments.iter().map(|s| f64::from(s.duration)).sum();
    assert!((total - 60.0).abs() < 0.1, "{total}");
    assert_eq!(pl.segments[0].uri, "0.m4s");

    // Beyond the plan: 404. Inside it: not a 404/403 (the pipeline makes it).
    let r = get(&app, &format!("/v1/{t}/v1/{n}.m4s")).await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = get(&app, &format!("/v1/{t}/v1/{}.m4s", n - 1)).await;
    assert!(!matches!(r.status.as_u16(), 403 | 404), "{}", r.status);
    for bad in [
        "x.m4s",
        "-1.m4s",
        "+1.m4s",
        "1.mp4",
        "01x.m4s",
        "9999999999.m4s",
    ] {
        let r = get(&app, &format!("/v1/{t}/v1/{bad}")).await;
        assert_eq!(r.status, 404, "{bad}");
    }
    let r = get(&app, &format!("/v1/{t}/v9/index.m3u8")).await;
    assert_eq!(r.status, 404);

    // HEAD: same status and headers, no body.
    let r = send(
        &app,
        Request::head(format!("/v1/{t}/master.m3u8"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    assert_eq!(
        r.header(header::CONTENT_TYPE),
        "application/vnd.apple.mpegurl"
    );
}

#[tokio::test]
async fn playlists_are_gzipped_and_cors_is_open() {
    let app = open_app();
    let t = open_token("h264_aac_faststart.mp4");
    let r = send(
        &app,
        Request::get(format!("/v1/{t}/v1/index.m3u8"))
            .header(header::ACCEPT_ENCODING, "gzip")
            .header(header::ORIGIN, "https://player.example")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header(header::CONTENT_ENCODING), "gzip");
    assert_eq!(r.header(header::ACCESS_CONTROL_ALLOW_ORIGIN), "*");
    // Decompress with flate2-free check: gzip magic.
    assert_eq!(&r.body[..2], &[0x1f, 0x8b]);

    // A configured origin list answers only those origins.
    let app = server::app(
        AppState::new(ServerConfig {
            cors_origins: vec!["https://ok.example".into()],
            ..ServerConfig::new(fixtures())
        })
        .unwrap(),
    );
    let ok = send(
        &app,
        Request::get("/healthz")
            .header(header::ORIGIN, "https://ok.example")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(
        ok.header(header::ACCESS_CONTROL_ALLOW_ORIGIN),
        "https://ok.example"
    );
    let other = send(
        &app,
        Request::get("/healthz")
            .header(header::ORIGIN, "https://evil.example")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(other
        .headers
        .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .is_none());
}

#[tokio::test]
async fn multi_audio_master_and_hevc_order() {
    let app = open_app();
    let t = open_token("multi_audio_subs.mkv");
    let r = get(&app, &format!("/v1/{t}/master.m3u8")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let m = parse_master(&r.text());
    assert_eq!(m.alternatives.len(), 3);
    assert_eq!(m.variants[0].audio.as_deref(), Some("aud"));
    assert_eq!(m.variants[0].subtitles.as_deref(), Some("sub"));

    let t = open_token("hevc_ac3.mkv");
    let r = get(&app, &format!("/v1/{t}/master.m3u8")).await;
    let m = parse_master(&r.text());
    assert_eq!(m.variants.len(), 2);
    assert!(m.variants[0]
        .codecs
        .as_deref()
        .unwrap()
        .starts_with("avc1."));
    assert!(m.variants[1]
        .codecs
        .as_deref()
        .unwrap()
        .starts_with("hvc1."));
    // The transcode's playlist comes from the plan too.
    let r = get(&app, &format!("/v1/{t}/v1-h264/index.m3u8")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    parse_media(&r.text());
}

/// What the client decodes, in the query (issue 14 item 5): an H.264/AAC-only master lists no
/// HEVC and no AC-3 variant; an HEVC/E-AC-3/AC-3 one lists the copies first; the MPD follows the
/// same choice.
#[tokio::test]
async fn caps_in_the_query_choose_the_variants() {
    let app = open_app();
    let t = open_token("hevc_ac3.mkv");
    let r = get(&app, &format!("/v1/{t}/master.m3u8?video=h264&audio=aac")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    let m = parse_master(&text);
    assert!(!m.variants.is_empty());
    for v in &m.variants {
        let c = v.codecs.as_deref().unwrap();
        assert!(c.starts_with("avc1.") && c.ends_with("mp4a.40.2"), "{c}");
    }
    assert!(!text.contains("ac-3") && !text.contains("hvc1"), "{text}");
    let r = get(
        &app,
        &format!("/v1/{t}/master.m3u8?video=hevc,h264&audio=eac3,ac3"),
    )
    .await;
    let text = r.text();
    let m = parse_master(&text);
    assert_eq!(
        m.variants[0].codecs.as_deref(),
        Some("hvc1.1.6.L60.90,ac-3"),
        "{text}"
    );
    assert_eq!(m.variants.len(), 4, "{text}");
    let r = get(&app, &format!("/v1/{t}/manifest.mpd?video=h264")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header(header::CONTENT_TYPE), "application/dash+xml");
    let mpd = r.text();
    assert!(
        mpd.contains("codecs=\"avc1.") && !mpd.contains("hvc1"),
        "{mpd}"
    );
}

#[tokio::test]
async fn not_media_is_422_and_missing_is_404() {
    let app = open_app();
    for f in ["text.mp4", "random.bin", "empty.mp4"] {
        let r = get(&app, &format!("/v1/{}/master.m3u8", open_token(f))).await;
        assert_eq!(r.status, 422, "{f}: {}", r.text());
        assert_eq!(r.header(header::CONTENT_TYPE), "text/plain; charset=utf-8");
        assert_eq!(r.text(), "not a media file we can read\n");
    }
    let r = get(&app, &format!("/v1/{}/master.m3u8", open_token("nope.mkv"))).await;
    assert_eq!(r.status, 404);
    assert!(!r.text().contains("nope"), "{}", r.text());
}

#[tokio::test]
async fn paths_cannot_escape_the_root() {
    let app = open_app();
    for bad in [
        "../make.sh",
        "../../Cargo.toml",
        "/etc/passwd",
        "a/../../make.sh",
    ] {
        let r = get(&app, &format!("/v1/{}/file", open_token(bad))).await;
        assert_eq!(r.status, 403, "{bad}: {}", r.text());
        assert!(!r.text().contains("passwd") && !r.text().contains("make.sh"));
        let r = post_json(
            &app,
            "/api/v1/streams",
            &format!(r#"{{"source":"file:{bad}"}}"#),
            &[],
        )
        .await;
        assert_eq!(r.status, 403, "{bad}: {}", r.text());
    }
    let r = get(&app, "/api/v1/library?dir=..").await;
    assert_eq!(r.status, 403);
    let r = get(&app, "/api/v1/library?dir=/etc").await;
    assert!(r.status == 404 || r.status == 403, "{}", r.status);
}

#[tokio::test]
async fn tokens_forged_tampered_expired_and_cross_mode() {
    let app = signed_app(None);
    let keys = TokenKeys::from_secret(SECRET.as_bytes());
    let now = server::token::now_unix();
    let good = keys
        .seal(&Grant {
            source: "file:h264_aac_faststart.mp4".into(),
            headers: vec![],
            expires: Some(now + 600),
        })
        .unwrap();
    let r = get(&app, &format!("/v1/{good}/master.m3u8")).await;
    assert_eq!(r.status, 200, "{}", r.text());

    // Tampered: change one character in the middle.
    let mut chars: Vec<char> = good.chars().collect();
    let mid = chars.len() / 2;
    chars[mid] = if chars[mid] == 'A' { 'B' } else { 'A' };
    let tampered: String = chars.into_iter().collect();
    let expired = keys
        .seal(&Grant {
            source: "file:h264_aac_faststart.mp4".into(),
            headers: vec![],
            expires: Some(now - 1),
        })
        .unwrap();
    let other_secret = TokenKeys::from_secret(b"some other secret, 32 bytes long")
        .seal(&Grant {
            source: "file:h264_aac_faststart.mp4".into(),
            headers: vec![],
            expires: Some(now + 600),
        })
        .unwrap();
    let cases = [
        ("tampered", tampered, "invalid token\n"),
        ("expired", expired, "token expired\n"),
        ("other secret", other_secret, "invalid token\n"),
        (
            "forged",
            "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMk".into(),
            "invalid token\n",
        ),
        (
            "open ref in signed mode",
            open_token("h264_aac_faststart.mp4"),
            "invalid token\n",
        ),
        ("garbage", "%3Cscript%3E".into(), "invalid token\n"),
    ];
    for (what, tok, reason) in cases {
        for path in [
            "master.m3u8",
            "file",
            "v1/index.m3u8",
            "v1/0.m4s",
            "probe.json",
        ] {
            let r = get(&app, &format!("/v1/{tok}/{path}")).await;
            assert_eq!(r.status, 403, "{what} {path}: {}", r.text());
            assert_eq!(r.text(), reason, "{what}");
        }
    }

    // A sealed token means nothing in open mode.
    let r = get(&open_app(), &format!("/v1/{good}/master.m3u8")).await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn two_instances_with_one_secret_accept_each_others_tokens() {
    let a = signed_app(None);
    let b = signed_app(None);
    let r = post_json(
        &a,
        "/api/v1/streams",
        r#"{"source":"file:h264_bframes.mkv"}"#,
        &[],
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let token = r.json()["token"].as_str().unwrap().to_string();
    let r = get(&b, &format!("/v1/{token}/master.m3u8")).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn api_key_is_required_when_configured() {
    let app = signed_app(Some("k3y"));
    let body = r#"{"source":"file:h264_aac_faststart.mp4","ttl":"2h"}"#;
    let r = post_json(&app, "/api/v1/streams", body, &[]).await;
    assert_eq!(r.status, 401);
    assert!(r.headers.contains_key(header::WWW_AUTHENTICATE));
    let r = post_json(
        &app,
        "/api/v1/streams",
        body,
        &[("authorization", "Bearer nope")],
    )
    .await;
    assert_eq!(r.status, 401);
    let r = post_json(&app, "/api/v1/streams", body, &[("x-api-key", "k3y ")]).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = post_json(
        &app,
        "/api/v1/streams",
        body,
        &[("authorization", "Bearer k3y")],
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let j = r.json();
    for k in [
        "id",
        "token",
        "master_url",
        "stream_url",
        "file_url",
        "expires_at",
    ] {
        assert!(j.get(k).is_some(), "{k} missing in {j}");
    }
    let token = j["token"].as_str().unwrap();
    assert_eq!(
        j["master_url"].as_str().unwrap(),
        format!("http://proxy.test:8080/v1/{token}/master.m3u8")
    );
    assert!(!token.contains("h264"), "the token reveals the path");
    // expires_at is ~2 h away.
    let exp = j["expires_at"].as_str().unwrap();
    assert!(exp.ends_with('Z') && exp.len() == 20, "{exp}");
    // The playback routes need no key: the token is the credential.
    let r = get(&app, &format!("/v1/{token}/master.m3u8")).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn stream_api_validation() {
    let app = signed_app(None);
    for (body, status) in [
        (r#"{"source":"ftp://x/y"}"#, 400),
        (r#"{"source":"file:nope.mkv"}"#, 404),
        (
            r#"{"source":"file:h264_aac_faststart.mp4","ttl":"soon"}"#,
            400,
        ),
        (r#"{"source":"file:h264_aac_faststart.mp4","bogus":1}"#, 400),
        (
            r#"{"source":"https://a.example/x","headers":{"Host":"x"}}"#,
            400,
        ),
        (
            r#"{"source":"https://a.example/x","headers":{"bad header":"x"}}"#,
            400,
        ),
        (r#"{"source":"https://user:pw@a.example/x"}"#, 400),
        (r#"not json"#, 400),
        (
            r#"{"source":"https://a.example/film.mp4","headers":{"Cookie":"s=1"},"ttl":60}"#,
            201,
        ),
    ] {
        let r = post_json(&app, "/api/v1/streams", body, &[]).await;
        assert_eq!(r.status, status, "{body}: {}", r.text());
    }
    // Open mode: URLs refused, files fine and never expiring.
    let open = open_app();
    let r = post_json(
        &open,
        "/api/v1/streams",
        r#"{"source":"https://a.example/x"}"#,
        &[],
    )
    .await;
    assert_eq!(r.status, 403);
    let r = post_json(
        &open,
        "/api/v1/streams",
        r#"{"source":"file:h264_bframes.mkv"}"#,
        &[],
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let j = r.json();
    assert!(j["token"].as_str().unwrap().starts_with("f~"));
    assert!(j["expires_at"].is_null());
}

#[tokio::test]
async fn body_size_is_bounded() {
    let app = signed_app(None);
    let big = format!(
        r#"{{"source":"file:h264_aac_faststart.mp4","headers":{{"x-pad":"{}"}}}}"#,
        "a".repeat(100 * 1024)
    );
    let r = post_json(&app, "/api/v1/streams", &big, &[]).await;
    assert_eq!(r.status, 413, "{}", r.text());
    // Oversized request headers: 431.
    let mut b = Request::get("/healthz");
    for i in 0..80 {
        b = b.header(format!("x-h{i}"), "v");
    }
    let r = send(&app, b.body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, 431);
}

#[tokio::test]
async fn batch_has_one_expiry_and_one_token_per_source() {
    let app = signed_app(None);
    let body = r#"{"sources":["file:h264_aac_faststart.mp4",
        {"source":"https://a.example/b.mkv","headers":{"Authorization":"Bearer up"}},
        "file:multi_audio_subs.mkv"], "ttl":"6h"}"#;
    let r = post_json(&app, "/api/v1/streams/batch", body, &[]).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let j = r.json();
    let streams = j["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 3);
    let keys = TokenKeys::from_secret(SECRET.as_bytes());
    let mut expiries = vec![];
    let mut tokens = std::collections::HashSet::new();
    for s in streams {
        let t = s["token"].as_str().unwrap();
        assert!(tokens.insert(t.to_string()));
        assert_eq!(s["expires_at"], j["expires_at"]);
        let g = keys.open(t, server::token::now_unix()).unwrap();
        expiries.push(g.expires.unwrap());
    }
    assert!(expiries.iter().all(|e| *e == expiries[0]));
    let now = server::token::now_unix();
    assert!((expiries[0] as i64 - (now + 6 * 3600) as i64).abs() <= 2);
    let g = keys
        .open(streams[1]["token"].as_str().unwrap(), now)
        .unwrap();
    assert_eq!(
        g.headers,
        vec![("authorization".into(), "Bearer up".into())]
    );
    // Empty and oversized batches are refused.
    let r = post_json(&app, "/api/v1/streams/batch", r#"{"sources":[]}"#, &[]).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn library_lists_the_root_in_open_mode_only() {
    let app = open_app();
    let r = get(&app, "/api/v1/library").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    assert_eq!(j["dir"], "");
    let names: Vec<&str> = j["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"h264_aac_faststart.mp4"));
    assert!(
        !names.iter().any(|n| n.starts_with('.')),
        "hidden files listed"
    );
    let mut sorted = names.clone();
    sorted.sort_by_key(|n| n.to_lowercase());
    assert_eq!(names, sorted);
    let f = j["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "h264_aac_faststart.mp4")
        .unwrap();
    assert_eq!(f["path"], "h264_aac_faststart.mp4");
    assert_eq!(
        f["size"].as_u64().unwrap(),
        std::fs::metadata(fixtures().join("h264_aac_faststart.mp4"))
            .unwrap()
            .len()
    );
    // Its token plays.
    let t = f["token"].as_str().unwrap();
    assert_eq!(get(&app, &format!("/v1/{t}/master.m3u8")).await.status, 200);
    assert_eq!(get(&signed_app(None), "/api/v1/library").await.status, 403);
}

#[tokio::test]
async fn debug_twins() {
    let app = open_app();
    let t = open_token("h264_aac_faststart.mp4");
    let r = get(&app, &format!("/v1/{t}/probe.txt")).await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("container  mp4"), "{}", r.text());
    let r = get(&app, &format!("/v1/{t}/probe.json")).await;
    let j = r.json();
    assert_eq!(j["index"]["container"], "mp4");
    assert_eq!(j["renditions"][0]["id"], "v1");
    let r = get(&app, &format!("/v1/{t}/plan.txt")).await;
    assert!(r.text().starts_with("plan v"), "{}", r.text());
    let r = get(&app, &format!("/v1/{t}/plan.json")).await;
    assert!(r.json()["plan"]["segments"].as_array().unwrap().len() >= 5);
}

#[tokio::test]
async fn ops_routes() {
    let app = open_app();
    let r = get(&app, "/healthz").await;
    assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "ok\n"));
    let r = get(&app, "/readyz").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("media_root: ok"));
    let t = open_token("h264_aac_faststart.mp4");
    let _ = get(&app, &format!("/v1/{t}/master.m3u8")).await;
    // The same segment twice: made (a miss), then served from memory (a hit), without Redis.
    for _ in 0..2 {
        assert_eq!(get(&app, &format!("/v1/{t}/v1/2.m4s")).await.status, 200);
    }
    let r = get(&app, "/metrics").await;
    assert_eq!(r.status, 200);
    let m = r.text();
    for needle in [
        "hlsgate_requests_total{route=\"/v1/{token}/master.m3u8\",status=\"200\"}",
        "hlsgate_request_duration_seconds_bucket",
        "hlsgate_segments_generated_total{kind=\"transcode\",cause=\"prefetch\"}",
        "hlsgate_upstream_requests_total{kind=\"file\"}",
        "hlsgate_upstream_bytes_total{kind=\"http\"}",
        "hlsgate_job_slots{pool=\"transcode\"}",
        "hlsgate_jobs_running{pool=\"remux\"}",
        "hlsgate_jobs_waiting{pool=\"transcode\"}",
        "hlsgate_build_info{version=\"",
    ] {
        assert!(m.contains(needle), "{needle} missing in\n{m}");
    }
    let value = |name: &str| -> f64 {
        m.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert!(
        value("hlsgate_cache_hits_total{") >= 1.0,
        "no memory hit in\n{m}"
    );
    assert!(
        value("hlsgate_cache_misses_total{") >= 1.0,
        "no miss in\n{m}"
    );
    assert!(value("hlsgate_cache_memory_bytes") > 0.0, "{m}");
    assert!(value("hlsgate_cache_memory_entries") >= 1.0, "{m}");
    assert!(value("hlsgate_sources_open") >= 1.0, "{m}");
    assert!(value("hlsgate_sources_memory_bytes") > 0.0, "{m}");
    let r = get(&app, "/").await;
    assert_eq!(r.status, 200);
    assert!(r.header(header::CONTENT_TYPE).starts_with("text/html"));
    assert_eq!(get(&app, "/nope/nope/nope").await.status, 404);
}

#[test]
fn open_mode_is_loopback_only() {
    let cfg = ServerConfig::new(fixtures());
    assert!(cfg.check("127.0.0.1:8080".parse().unwrap()).is_ok());
    assert!(cfg.check("[::1]:8080".parse().unwrap()).is_ok());
    assert!(cfg.check("0.0.0.0:8080".parse().unwrap()).is_err());
    assert!(cfg.check("192.168.1.10:8080".parse().unwrap()).is_err());
    let cfg = signed_config();
    assert!(cfg.check("0.0.0.0:8080".parse().unwrap()).is_ok());
    let short = ServerConfig {
        secret: Some("short".into()),
        ..ServerConfig::new(fixtures())
    };
    assert!(short.check("127.0.0.1:1".parse().unwrap()).is_err());
    assert!(AppState::new(short).is_err());
}
