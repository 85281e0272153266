//! `hlsgate serve` as a process: settings from a TOML file, `HLSGATE_*` variables and flags
//! (flags win over the environment, which wins over the file), one log line per request, and a
//! graceful exit on SIGTERM.

use hlsgate_tests::server::{serve_refused, Hlsgate};
use hlsgate_tests::{fixtures, free_port, Scratch};
use server::token::open_token;

/// A config file in its own scratch folder (removed with the returned guard).
fn config_file(body: &str) -> (Scratch, std::path::PathBuf) {
    let dir = Scratch::new("cli");
    let p = dir.path().join("hlsgate.toml");
    std::fs::write(&p, body).unwrap();
    (dir, p)
}

#[tokio::test]
async fn file_env_and_flags_compose() {
    let port = free_port();
    let (_cfg_dir, cfg) = config_file(&format!(
        "listen = \"127.0.0.1:{port}\"\nmedia_root = \"{}\"\napi_key = \"from-file\"\n\
         cors_origins = [\"https://file.example\"]\ndefault_ttl = \"1h\"\n",
        fixtures().display()
    ));
    let c = reqwest::Client::new();
    let body = serde_json::json!({"source": "file:h264_aac_faststart.mp4"});

    // The file alone: its listen address, its API key.
    let srv = Hlsgate::serve(&["--config", cfg.to_str().unwrap()], &[]);
    assert_eq!(srv.addr.port(), port);
    let post = |key: &'static str| {
        c.post(srv.url("/api/v1/streams"))
            .header("x-api-key", key)
            .json(&body)
            .send()
    };
    assert_eq!(post("from-file").await.unwrap().status(), 201);
    assert_eq!(post("from-env").await.unwrap().status(), 401);
    let r = c
        .get(srv.url("/healthz"))
        .header("origin", "https://file.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://file.example"
    );
    drop(srv);

    // The environment overrides the file; a flag overrides both.
    let srv = Hlsgate::serve(
        &["--config", cfg.to_str().unwrap(), "--listen", "127.0.0.1:0"],
        &[
            ("HLSGATE_API_KEY", "from-env"),
            ("HLSGATE_SECRET", "env-secret-0123456789abcdef"),
        ],
    );
    assert_ne!(srv.addr.port(), port);
    let r = c
        .post(srv.url("/api/v1/streams"))
        .header("authorization", "Bearer from-env")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let j: serde_json::Value = r.json().await.unwrap();
    // Signed mode (the secret came from the environment), 1 h default lifetime from the file.
    assert!(!j["token"].as_str().unwrap().starts_with("f~"));
    assert!(j["expires_at"].is_string());
    let r = c
        .post(srv.url("/api/v1/streams"))
        .header("x-api-key", "from-file")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[test]
fn bad_settings_are_refused() {
    let root = fixtures().display().to_string();
    let (code, err) = serve_refused(&[], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("--media-root"), "{err}");
    let (code, err) = serve_refused(
        &[
            "--media-root",
            &root,
            "--allow-private-upstream",
            "10.0.0.0/33",
        ],
        &[],
    );
    assert_eq!(code, 1);
    assert!(err.contains("not a CIDR"), "{err}");
    let (_cfg_dir, cfg) = config_file("media_root = \"/nope\"\nunknown_key = 1\n");
    let (code, err) = serve_refused(&["--config", cfg.to_str().unwrap()], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown"), "{err}");
    let (code, err) = serve_refused(&["--media-root", "/definitely/not/here"], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("media root"), "{err}");
}

#[tokio::test]
async fn request_log_and_graceful_shutdown() {
    let mut srv = Hlsgate::serve(&["--media-root", &fixtures().display().to_string()], &[]);
    let c = reqwest::Client::new();
    let t = open_token("h264_aac_faststart.mp4");
    let r = c
        .get(srv.url(&format!("/v1/{t}/master.m3u8")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A long body in flight when the signal arrives still completes.
    // 64 MiB: far more than the socket buffers hold, so it is still being sent.
    let big = c
        .get(srv.url(&format!("/v1/{}/file", open_token("long_2h.mkv"))))
        .header("range", "bytes=0-67108863")
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 206);
    let status = tokio::task::spawn_blocking(move || {
        let s = srv.terminate();
        (s, srv.log())
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let body = big.bytes().await.unwrap();
    assert_eq!(body.len(), 64 << 20);
    let (status, log) = status.await.unwrap();
    assert!(status.success(), "exit {status:?}\n{log}");
    assert!(log.contains("shutdown signal received"), "{log}");
    let line = log
        .lines()
        .find(|l| l.contains("route=/v1/{token}/master.m3u8"))
        .unwrap_or_else(|| panic!("no request line in\n{log}"));
    assert!(line.contains("status=200"), "{line}");
    assert!(line.contains("latency_ms="), "{line}");
    assert!(!line.contains(&t), "the token is logged: {line}");
    // The stream id (never the token); the source only on a refusal.
    let id = line
        .split("stream=\"")
        .nth(1)
        .and_then(|r| r.get(..16))
        .unwrap_or_else(|| panic!("no stream id: {line}"));
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{line}");
    assert!(!line.contains("source="), "{line}");
}

/// `--log-format json`: one JSON object per line; a refused request's line names its stream
/// and its source file (not the token, not the folder).
#[tokio::test]
async fn json_request_lines_name_the_stream_and_on_errors_the_source() {
    let mut srv = Hlsgate::serve(
        &[
            "--log-format",
            "json",
            "--media-root",
            &fixtures().display().to_string(),
        ],
        &[],
    );
    let c = reqwest::Client::new();
    let t = open_token("text.mp4");
    let r = c
        .get(srv.url(&format!("/v1/{t}/master.m3u8")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let status = tokio::task::spawn_blocking(move || {
        let s = srv.terminate();
        (s, srv.log())
    });
    let (status, log) = status.await.unwrap();
    assert!(status.success(), "{log}");
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let req = lines
        .iter()
        .find(|v| v["fields"]["message"] == "request" && v["fields"]["status"] == 422)
        .unwrap_or_else(|| panic!("no 422 request line in\n{log}"));
    assert_eq!(req["fields"]["source"], "text.mp4", "{req}");
    assert_eq!(
        req["fields"]["stream"].as_str().map(str::len),
        Some(16),
        "{req}"
    );
    assert!(!log.contains(&t), "the token is logged");
    assert!(!log.contains('\u{1b}'), "colour codes in the log");
}

/// `hlsgate export` (issue 15 item 4): progress lines on stderr when it is not a terminal; the
/// tree appears under its name only when whole (no hidden partial folder left); a second export
/// replaces the first; a folder holding something else is refused and left alone; an export
/// killed mid-way leaves nothing under the target name.
#[test]
fn export_is_atomic_and_shows_progress() {
    use std::process::{Command, Stdio};
    let scratch = Scratch::new("export");
    let out = scratch.path().join("out");
    let src = hlsgate_tests::fixture("h264_aac_faststart.mp4");
    let (code, _, err) =
        hlsgate_tests::hlsgate(&["export", src.to_str().unwrap(), out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("export: ")).collect();
    println!("{}", lines.join("\n"));
    assert!(lines.len() >= 2, "one progress line per rendition: {err}");
    assert!(lines.last().unwrap().contains("100%"), "{err}");
    assert!(out.join("master.m3u8").is_file());
    let leftovers = |s: &std::path::Path| -> Vec<String> {
        std::fs::read_dir(s)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect()
    };
    assert!(
        leftovers(scratch.path()).is_empty(),
        "{:?}",
        leftovers(scratch.path())
    );
    // Again into the same folder: replaced.
    std::fs::write(out.join("stale.txt"), "from before").unwrap();
    let (code, _, err) =
        hlsgate_tests::hlsgate(&["export", src.to_str().unwrap(), out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.join("master.m3u8").is_file() && !out.join("stale.txt").exists());
    // A folder that is not an export is refused and kept.
    let other = scratch.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("keep.txt"), "mine").unwrap();
    let (code, _, err) =
        hlsgate_tests::hlsgate(&["export", src.to_str().unwrap(), other.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not an earlier export"), "{err}");
    assert_eq!(
        std::fs::read_to_string(other.join("keep.txt")).unwrap(),
        "mine"
    );
    // Killed mid-way (a 720p HEVC transcode takes seconds): nothing under the target name.
    let slow = scratch.path().join("slow");
    let mut child = Command::new(hlsgate_tests::hlsgate_bin())
        .arg("export")
        .arg(hlsgate_tests::fixture("bench720_hevc_ac3.mkv"))
        .arg(&slow)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Until the partial folder holds a segment, then SIGKILL.
    let t = std::time::Instant::now();
    let started = loop {
        let partial = leftovers(scratch.path())
            .into_iter()
            .find(|n| n.starts_with(".slow.partial-"));
        if let Some(p) = &partial {
            if scratch.path().join(p).join("master.m3u8").is_file() {
                break true;
            }
        }
        if t.elapsed() > std::time::Duration::from_secs(60) || child.try_wait().unwrap().is_some() {
            break false;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        started,
        "the export never started writing (or ended within the poll)"
    );
    assert!(!slow.exists(), "a killed export left {}", slow.display());
}
