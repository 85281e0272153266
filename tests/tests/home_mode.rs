//! Home mode (issue 16): `hlsgate serve --password …` on another address of the machine
//! (127.0.0.2 stands for the LAN) — the page, the library and the token API answer 401 without a
//! login; player URLs need only their token (403 without a valid one); a login through the form
//! gives a cookie that opens them; guessing is cut off with 429. Then a real browser logs in
//! through the page, browses the library and plays.

use std::time::Duration;

use hlsgate_tests::fixtures;
use hlsgate_tests::players::{artifacts_dir, ffmpeg_hls_check, page_check_with, PageOptions};
use hlsgate_tests::server::{serve_refused, Hlsgate};

const PASSWORD: &str = "correct horse battery";
/// Stands for another machine's view of the server: a second loopback address.
const LAN: &str = "127.0.0.2:0";
const MEDIA: &str = "h264_aac_faststart.mp4";

fn home_server() -> Hlsgate {
    Hlsgate::serve(
        &[
            "--listen",
            LAN,
            "--media-root",
            fixtures().to_str().expect("utf-8 path"),
            "--password",
            PASSWORD,
        ],
        &[],
    )
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

async fn status_of(r: reqwest::RequestBuilder) -> (u16, String) {
    let r = r.send().await.expect("request");
    let s = r.status().as_u16();
    (s, r.text().await.unwrap_or_default())
}

async fn login(c: &reqwest::Client, srv: &Hlsgate, password: &str) -> reqwest::Response {
    c.post(srv.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "password={}",
            url::form_urlencoded::byte_serialize(password.as_bytes()).collect::<String>()
        ))
        .send()
        .await
        .expect("POST /login")
}

#[tokio::test]
async fn home_mode_guards_the_page_library_and_api_with_a_login() {
    let srv = home_server();
    assert_eq!(srv.addr.ip().to_string(), "127.0.0.2");
    let c = client();
    let stream_body = serde_json::json!({ "source": format!("file:{MEDIA}") });

    // Without a login: 401 for the page, the library, the token API and the session; 403 for
    // a player URL without a valid token.
    let mut seen = Vec::new();
    for (what, req) in [
        ("page", c.get(srv.url("/"))),
        ("page by name", c.get(srv.url("/index.html"))),
        ("library", c.get(srv.url("/api/v1/library"))),
        ("session", c.get(srv.url("/api/v1/session"))),
        (
            "token API",
            c.post(srv.url("/api/v1/streams")).json(&stream_body),
        ),
        (
            "batch API",
            c.post(srv.url("/api/v1/streams/batch"))
                .json(&serde_json::json!({ "sources": [format!("file:{MEDIA}")] })),
        ),
    ] {
        let (s, body) = status_of(req).await;
        seen.push(format!("{what}: {s}"));
        assert_eq!(s, 401, "{what} without a login: {s} {body}");
        if what.starts_with("page") {
            assert!(
                body.contains("login-form"),
                "{what}: the login page: {body}"
            );
        }
    }
    for path in [
        "/v1/not-a-token/master.m3u8",
        &format!("/v1/{}/master.m3u8", server::token::open_token(MEDIA)),
    ] {
        let (s, _) = status_of(c.get(srv.url(path))).await;
        seen.push(format!("{path}: {s}"));
        assert_eq!(s, 403, "{path} without a valid token");
    }
    // A forged cookie opens nothing.
    let (s, _) = status_of(
        c.get(srv.url("/api/v1/library"))
            .header("cookie", "hlsgate_session=v1.99999999999.AAAA"),
    )
    .await;
    assert_eq!(s, 401, "forged cookie");

    // A wrong password: the login page again, 401.
    let r = login(&c, &srv, "wrong password").await;
    assert_eq!(r.status().as_u16(), 401);
    assert!(r
        .text()
        .await
        .unwrap_or_default()
        .contains("Wrong password"));

    // The right one: a cookie, HttpOnly and SameSite=Strict, and a redirect to the page.
    let r = login(&c, &srv, PASSWORD).await;
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(
        r.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("/")
    );
    let set = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("Set-Cookie")
        .to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/"),
        "{set}"
    );
    let cookie = set.split(';').next().expect("name=value").to_string();
    println!("login: 303, {set}");

    let (s, body) = status_of(c.get(srv.url("/")).header("cookie", &cookie)).await;
    assert_eq!(s, 200, "page after the login");
    assert!(body.contains("data-testid=\"library\""), "the player page");
    let (s, body) = status_of(c.get(srv.url("/api/v1/session")).header("cookie", &cookie)).await;
    assert_eq!(s, 200);
    let session: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(session["mode"], "home", "{body}");
    assert_eq!(session["library"], true, "{body}");

    // The library lists the media folder; each file's token plays without any cookie.
    let (s, body) = status_of(c.get(srv.url("/api/v1/library")).header("cookie", &cookie)).await;
    assert_eq!(s, 200, "library after the login: {body}");
    let lib: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let files = lib["files"].as_array().expect("files");
    let entry = files
        .iter()
        .find(|f| f["name"] == MEDIA)
        .unwrap_or_else(|| panic!("{MEDIA} listed: {body}"));
    let token = entry["token"].as_str().expect("token");
    assert!(
        !token.starts_with("f~"),
        "a sealed token, not an open-mode path: {token}"
    );
    let (s, m3u8) = status_of(c.get(srv.url(&format!("/v1/{token}/master.m3u8")))).await;
    assert_eq!(s, 200, "master from a library token, no cookie");
    assert!(m3u8.starts_with("#EXTM3U"));
    println!(
        "library: {} files, {} folders",
        files.len(),
        lib["dirs"].as_array().map_or(0, Vec::len)
    );

    // The token API with the cookie; its URL plays to the end in ffmpeg, no cookie needed.
    let r = c
        .post(srv.url("/api/v1/streams"))
        .header("cookie", &cookie)
        .json(&stream_body)
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status().as_u16(), 201);
    let reply: serde_json::Value = r.json().await.expect("JSON");
    let master = reply["master_url"]
        .as_str()
        .expect("master_url")
        .to_string();
    assert!(master.starts_with("http://127.0.0.2:"), "{master}");
    let ff = tokio::task::spawn_blocking(move || ffmpeg_hls_check(&master))
        .await
        .expect("join");
    ff.assert_ok();

    // Logging out clears the cookie.
    let r = c
        .post(srv.url("/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("POST /logout");
    assert_eq!(r.status().as_u16(), 303);
    let cleared = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");

    // Guessing: after 10 wrong passwords (the login above forgot the earlier one) this
    // address gets 429, even with the right one, until the window passes.
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(login(&c, &srv, "guess").await.status().as_u16());
    }
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    let r = login(&c, &srv, PASSWORD).await;
    assert_eq!(r.status().as_u16(), 429, "locked out after 10 failures");
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .expect("Retry-After");
    assert!(retry >= 60, "{retry}");
    println!("without login: {seen:?}; after 10 wrong passwords: 429, Retry-After {retry} s");
    assert!(
        srv.log().contains("wrong password") && srv.log().contains("127.0.0."),
        "the log names the client of a wrong password"
    );
}

/// Open mode stays loopback-only; home mode takes a LAN address without a secret but not a
/// short password.
#[test]
fn modes_and_addresses() {
    let root = fixtures().display().to_string();
    let (code, err) = serve_refused(&["--listen", "0.0.0.0:0", "--media-root", &root], &[]);
    assert_ne!(code, 0);
    assert!(
        err.contains("--password"),
        "the refusal names home mode: {err}"
    );
    let (code, err) = serve_refused(
        &[
            "--listen",
            "0.0.0.0:0",
            "--media-root",
            &root,
            "--password",
            "short",
        ],
        &[],
    );
    assert_ne!(code, 0);
    assert!(err.contains("at least 8 characters"), "{err}");
}

/// A real browser on the "other machine": the page asks for the password (401), the login
/// form opens the library, a film plays. Screenshots of both go to the test artifacts.
#[test]
fn home_mode_page_logs_in_and_plays() {
    let srv = home_server();
    let shot = artifacts_dir().join("home-mode-page.png");
    let r = page_check_with(
        &srv.url("/"),
        &shot,
        &PageOptions {
            file: Some(MEDIA.into()),
            password: Some(PASSWORD.into()),
            ..Default::default()
        },
    );
    r.assert_ok();
    let login = r.login.as_ref().expect("the login happened");
    println!(
        "page: {} before the login ({:?}), {} after; logout button {}; {} files listed; played \
         {:?} in {:?} ms; screenshots {} and {}",
        login.status_before,
        login.errors_before,
        login.status_after,
        login.logout_button,
        r.files_listed,
        r.file,
        r.play_ms,
        login.screenshot,
        shot.display()
    );
    assert_eq!(login.status_before, 401);
    assert_eq!(login.status_after, 200);
    assert!(r.files_listed > 3);
}
