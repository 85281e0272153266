//! Security tests against the real `hlsgate serve` (the list is in docs/security.md):
//! SSRF (loopback, [::1], 10/8, 169.254.169.254, mapped and numeric forms, a name that resolves
//! to loopback, redirects from an allowed host to a refused one), paths out of the media root,
//! forged/tampered/expired tokens, error bodies that must not leak, open mode on a public
//! address. Every refused fetch is also checked at the target: nginx logs no request.

use hlsgate_tests::server::{serve_refused, Hlsgate, Redirector};
use hlsgate_tests::{fixtures, Nginx};
use server::token::{open_token, Grant, TokenKeys};

const SECRET: &str = "security-test-secret-0123456789";
const MEDIA: &str = "h264_aac_faststart.mp4";

fn root() -> String {
    fixtures().display().to_string()
}

fn seal(source: &str, expires_in: i64) -> String {
    let now = server::token::now_unix() as i64;
    TokenKeys::from_secret(SECRET.as_bytes())
        .seal(&Grant {
            source: source.to_string(),
            headers: vec![],
            expires: Some((now + expires_in) as u64),
        })
        .unwrap()
}

async fn post(c: &reqwest::Client, srv: &Hlsgate, source: &str) -> (u16, String) {
    let r = c
        .post(srv.url("/api/v1/streams"))
        .json(&serde_json::json!({ "source": source }))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn get(c: &reqwest::Client, url: &str) -> (u16, String) {
    let r = c.get(url).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Asserts that a reply body reveals nothing of the source.
fn no_leak(body: &str, needles: &[&str]) {
    for n in needles {
        assert!(!body.contains(n), "reply leaks {n:?}: {body:?}");
    }
}

#[tokio::test]
async fn ssrf_is_refused_at_issue_and_at_fetch() {
    let nginx = Nginx::start(fixtures());
    let port = nginx.port;
    // Only 127.0.0.2 (the redirector) is allow-listed; nginx on 127.0.0.1 is not.
    let srv = Hlsgate::serve(
        &[
            "--media-root",
            &root(),
            "--secret",
            SECRET,
            "--allow-private-upstream",
            "127.0.0.2/32",
        ],
        &[],
    );
    let c = reqwest::Client::new();
    let leaks = [
        "127.0.0.1",
        "localhost",
        MEDIA,
        "10.0.0.1",
        "169.254",
        "::1",
    ];

    // IP literals: refused when the token is requested, and (with a token made directly)
    // when fetched.
    for url in [
        format!("http://127.0.0.1:{port}/{MEDIA}"),
        format!("http://[::1]:{port}/{MEDIA}"),
        format!("http://[::ffff:127.0.0.1]:{port}/{MEDIA}"),
        format!("http://2130706433:{port}/{MEDIA}"),
        format!("http://0.0.0.0:{port}/{MEDIA}"),
        "http://10.0.0.1/film.mp4".to_string(),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://[fd00::1]/film.mp4".to_string(),
        "http://100.64.0.1/film.mp4".to_string(),
    ] {
        let (status, body) = post(&c, &srv, &url).await;
        assert_eq!(status, 403, "POST {url}: {body}");
        assert_eq!(body, "forbidden: upstream address refused\n");
        let (status, body) = get(
            &c,
            &srv.url(&format!("/v1/{}/master.m3u8", seal(&url, 600))),
        )
        .await;
        assert_eq!(status, 403, "GET {url}: {body}");
        no_leak(&body, &leaks);
    }

    // A name that resolves to loopback: accepted at issue (names are not resolved then),
    // refused at connect time.
    let url = format!("http://localhost:{port}/{MEDIA}");
    let (status, body) = post(&c, &srv, &url).await;
    assert_eq!(status, 201, "{body}");
    let token = serde_json::from_str::<serde_json::Value>(&body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    for path in ["master.m3u8", "file", "probe.json"] {
        let (status, body) = get(&c, &srv.url(&format!("/v1/{token}/{path}"))).await;
        assert_eq!(status, 403, "localhost {path}: {body}");
        no_leak(&body, &leaks);
    }

    // Redirects from an allowed host to refused ones (by address and by name).
    for target in [
        format!("http://127.0.0.1:{port}/{MEDIA}"),
        format!("http://localhost:{port}/{MEDIA}"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
    ] {
        let hop = Redirector::start("127.0.0.2", &target);
        let url = format!("http://127.0.0.2:{}/start.mp4", hop.port);
        let (status, body) = post(&c, &srv, &url).await;
        assert_eq!(status, 201, "{body}");
        let (status, body) = get(
            &c,
            &srv.url(&format!("/v1/{}/master.m3u8", seal(&url, 600))),
        )
        .await;
        assert_eq!(status, 403, "redirect to {target}: {body}");
        no_leak(&body, &leaks);
        assert!(hop.hits() >= 1, "the allowed host was never asked");
    }

    // Nothing above reached nginx.
    assert_eq!(
        nginx.logged_requests(),
        0,
        "a refused fetch reached the target"
    );

    // Control: the same URL with nginx allow-listed plays (so the refusals above are the
    // guard's doing).
    let open = Hlsgate::serve(
        &[
            "--media-root",
            &root(),
            "--secret",
            SECRET,
            "--allow-private-upstream",
            "127.0.0.1/32,127.0.0.2/32",
        ],
        &[],
    );
    let url = format!("http://127.0.0.1:{port}/{MEDIA}");
    let (status, body) = get(
        &c,
        &open.url(&format!("/v1/{}/master.m3u8", seal(&url, 600))),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(nginx.logged_requests() >= 1);
    // A redirect to an allow-listed host is followed.
    let hop = Redirector::start("127.0.0.2", &url);
    let via = format!("http://127.0.0.2:{}/start.mp4", hop.port);
    let (status, body) = get(
        &c,
        &open.url(&format!("/v1/{}/master.m3u8", seal(&via, 600))),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn upstream_failures_are_4xx_5xx_without_details() {
    let nginx = Nginx::start(fixtures());
    let srv = Hlsgate::serve(
        &[
            "--media-root",
            &root(),
            "--secret",
            SECRET,
            "--allow-private-upstream",
            "127.0.0.1/32",
        ],
        &[],
    );
    let c = reqwest::Client::new();
    let closed = hlsgate_tests::free_port();
    for (url, status, reason) in [
        (nginx.url("missing.mp4"), 404, "not found: no such source\n"),
        (nginx.url("text.mp4"), 422, "not a media file we can read\n"),
        (
            format!("http://127.0.0.1:{closed}/film.mp4"),
            502,
            "upstream failed: unreachable\n",
        ),
    ] {
        let (s, body) = get(
            &c,
            &srv.url(&format!("/v1/{}/master.m3u8", seal(&url, 600))),
        )
        .await;
        assert_eq!((s, body.as_str()), (status, reason), "{url}");
    }
    // The log has the details the client did not get.
    let log = srv.log();
    assert!(log.contains("status=502"), "{log}");
}

#[tokio::test]
async fn paths_cannot_leave_the_media_root() {
    let srv = Hlsgate::serve(&["--media-root", &root(), "--secret", SECRET], &[]);
    let c = reqwest::Client::new();
    for rel in [
        "../make.sh",
        "../../Cargo.toml",
        "/etc/passwd",
        "a/../../make.sh",
        "///etc/passwd",
    ] {
        let (status, body) = post(&c, &srv, &format!("file:{rel}")).await;
        assert_eq!(status, 403, "POST {rel}: {body}");
        let (status, body) = get(
            &c,
            &srv.url(&format!("/v1/{}/file", seal(&format!("file:{rel}"), 600))),
        )
        .await;
        assert_eq!(status, 403, "GET {rel}: {body}");
        no_leak(&body, &["passwd", "make.sh", "Cargo", "/work"]);
    }
    // Open mode, the same.
    let open = Hlsgate::serve(&["--media-root", &root()], &[]);
    for rel in ["../make.sh", "/etc/passwd"] {
        let (status, _) = get(&c, &open.url(&format!("/v1/{}/file", open_token(rel)))).await;
        assert_eq!(status, 403, "{rel}");
    }
    let (status, _) = get(&c, &open.url("/api/v1/library?dir=../")).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn bad_tokens_are_refused() {
    let srv = Hlsgate::serve(&["--media-root", &root(), "--secret", SECRET], &[]);
    let c = reqwest::Client::new();
    let good = seal(&format!("file:{MEDIA}"), 600);
    let (status, _) = get(&c, &srv.url(&format!("/v1/{good}/master.m3u8"))).await;
    assert_eq!(status, 200);
    let mut tampered = good.clone().into_bytes();
    let i = tampered.len() - 3;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let other = TokenKeys::from_secret(b"not the server's secret at all")
        .seal(&Grant {
            source: format!("file:{MEDIA}"),
            headers: vec![],
            expires: Some(server::token::now_unix() + 600),
        })
        .unwrap();
    for (what, tok, status) in [
        ("expired", seal(&format!("file:{MEDIA}"), -5), 403),
        ("tampered", tampered, 403),
        ("other secret", other, 403),
        ("forged", "AQ".to_string() + &"x".repeat(60), 403),
        ("open reference", open_token(MEDIA), 403),
    ] {
        for path in [
            "master.m3u8",
            "file",
            "v1/index.m3u8",
            "v1/0.m4s",
            "plan.txt",
        ] {
            let (s, body) = get(&c, &srv.url(&format!("/v1/{tok}/{path}"))).await;
            assert_eq!(s, status, "{what} {path}: {body}");
        }
    }
}

#[test]
fn open_mode_refuses_public_addresses() {
    let (code, err) = serve_refused(&["--media-root", &root(), "--listen", "0.0.0.0:0"], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("without a secret"), "{err}");
    let (code, err) = serve_refused(
        &[
            "--media-root",
            &root(),
            "--listen",
            "0.0.0.0:0",
            "--secret",
            "short",
        ],
        &[],
    );
    assert_eq!(code, 1);
    assert!(err.contains("at least 16 bytes"), "{err}");
}
