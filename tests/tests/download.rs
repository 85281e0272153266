//! `download.mp4` (issue 15 item 3) and `hlsgate download`, through the real binary: a 2-hour
//! MP4 whose `moov` sits at its end comes out progressive with `moov` first; its size is the
//! `Content-Length` the first answer announced; every packet equals the source's (FFmpeg's
//! packet hashes); 100 random Range requests return the bytes of the full download; Chromium's
//! `<video>` plays it and seeks; what cannot be downloaded is refused with 409.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use hlsgate_tests::players::video_check;
use hlsgate_tests::server::Hlsgate;
use hlsgate_tests::{fixture, fixtures, hlsgate, Scratch};

fn server() -> Hlsgate {
    Hlsgate::serve(&["--media-root", fixtures().to_str().expect("utf-8")], &[])
}

fn url_of(srv: &Hlsgate, name: &str, query: &str) -> String {
    srv.url(&format!(
        "/v1/{}/download.mp4{query}",
        server::token::open_token(name)
    ))
}

/// Top-level box types in order, read from the file's box headers.
fn top_level_boxes(path: &Path) -> Vec<String> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut f = std::fs::File::open(path).expect("open");
    let len = f.metadata().expect("meta").len();
    let mut at = 0u64;
    let mut out = Vec::new();
    while at + 8 <= len {
        let mut h = [0u8; 16];
        f.seek(SeekFrom::Start(at)).expect("seek");
        f.read_exact(&mut h[..8]).expect("header");
        let mut size = u64::from(u32::from_be_bytes([h[0], h[1], h[2], h[3]]));
        if size == 1 {
            f.read_exact(&mut h[8..]).expect("largesize");
            size = u64::from_be_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]]);
        } else if size == 0 {
            size = len - at;
        }
        out.push(String::from_utf8_lossy(&h[4..8]).into_owned());
        assert!(size >= 8, "box size {size} at {at}");
        at += size;
    }
    assert_eq!(at, len, "the boxes end where the file ends");
    out
}

/// FFmpeg's per-packet hashes (stream, dts, pts, duration, size, MD5) of every stream.
fn packet_hashes(path: &Path) -> Vec<String> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-map", "0", "-c", "copy", "-f", "framemd5", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// A tiny deterministic generator (xorshift) for the random ranges.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_hour_mp4_downloads_moov_first_with_exact_ranges() {
    let name = "long_2h.mp4";
    let src = fixture(name);
    assert_eq!(
        top_level_boxes(&src).last().map(String::as_str),
        Some("moov"),
        "the fixture keeps its moov at the end"
    );
    let srv = server();
    let url = url_of(&srv, name, "");
    let c = reqwest::Client::new();

    // First answer: the source is probed and the layout made from its sample tables; the
    // second (another client) finds both in memory.
    let t0 = Instant::now();
    let head = c.head(&url).send().await.expect("HEAD");
    let cold = t0.elapsed();
    assert_eq!(head.status().as_u16(), 200);
    let len: u64 = head
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Content-Length");
    let etag = head.headers().get("etag").cloned().expect("ETag");
    let t1 = Instant::now();
    let mut r = c.get(&url).send().await.expect("GET");
    let first_chunk = r.chunk().await.expect("first bytes").expect("a chunk");
    let warm = t1.elapsed();
    println!(
        "download.mp4 of {name}: {len} bytes; first HEAD {cold:?} (probe + layout), first body \
         bytes of a GET {warm:?}"
    );
    assert!(warm < Duration::from_millis(100), "first bytes in {warm:?}");
    assert!(first_chunk.starts_with(&[0, 0, 0]) && &first_chunk[4..8] == b"ftyp");
    drop(r);

    // The whole file.
    let scratch = Scratch::new("download");
    let full = scratch.path().join("full.mp4");
    let body = c
        .get(&url)
        .send()
        .await
        .expect("GET")
        .bytes()
        .await
        .expect("body");
    assert_eq!(
        body.len() as u64,
        len,
        "the size is the Content-Length announced"
    );
    std::fs::write(&full, &body).expect("write");
    assert_eq!(
        top_level_boxes(&full),
        ["ftyp", "moov", "mdat"],
        "moov before mdat"
    );
    let probe = hlsgate_tests::ffprobe_csv(
        &full,
        &[
            "-show_entries",
            "format=format_name,duration:stream=codec_name",
        ],
    );
    println!("ffprobe: {}", probe.replace('\n', " | "));
    assert!(
        probe.contains("h264") && probe.contains("aac") && probe.contains("mov,mp4"),
        "{probe}"
    );
    let (ours, theirs) = (packet_hashes(&full), packet_hashes(&src));
    assert_eq!(ours.len(), theirs.len(), "packet count");
    assert!(
        ours == theirs,
        "every packet equals the source's (dts, pts, size, MD5)"
    );
    println!("{} packets, each equal to the source's", ours.len());

    // 100 random ranges, each the same bytes as the full download.
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for i in 0..100 {
        let a = rng.next() % len;
        let n = 1 + rng.next() % if i % 10 == 0 { 4 << 20 } else { 70_000 };
        let b = (a + n).min(len) - 1;
        let r = c
            .get(&url)
            .header("range", format!("bytes={a}-{b}"))
            .header("if-range", etag.clone())
            .send()
            .await
            .expect("range GET");
        assert_eq!(r.status().as_u16(), 206, "range {a}-{b}");
        assert_eq!(
            r.headers()
                .get("content-range")
                .and_then(|v| v.to_str().ok()),
            Some(format!("bytes {a}-{b}/{len}").as_str())
        );
        let got = r.bytes().await.expect("range body");
        assert!(
            got[..] == body[a as usize..=b as usize],
            "range {a}-{b} differs"
        );
    }
    let r = c
        .get(&url)
        .header("range", format!("bytes={len}-"))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status().as_u16(), 416);
    let r = c
        .get(&url)
        .header("if-none-match", etag)
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status().as_u16(), 304);
    println!("100 random ranges identical; past the end 416; If-None-Match 304");

    // A browser plays it and seeks to the middle.
    let v = tokio::task::spawn_blocking(move || video_check(&url, 3600.0))
        .await
        .expect("join");
    v.assert_ok();
    println!(
        "Chromium <video>: duration {:?} s, played in {:?} ms, seek to 3600 s in {:?} ms",
        v.duration, v.play_ms, v.seek_ms
    );
}

#[tokio::test]
async fn other_sources_are_refused_with_what_to_use() {
    let srv = server();
    let c = reqwest::Client::new();
    for (name, query, status, words) in [
        ("h264_aac.ts", "", 409, "MP4 files only"),
        ("hevc_ac3.mkv", "", 409, "MP4 files only"),
        ("h264_aac_faststart.mp4", "?audio=dts", 400, "aac or all"),
    ] {
        let r = c.get(url_of(&srv, name, query)).send().await.expect("GET");
        let got = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        println!("{name}{query}: {got} {}", text.trim());
        assert_eq!(got, status, "{name}{query}: {text}");
        assert!(text.contains(words), "{name}: {text}");
    }
    // E-AC-3 stays out by default, comes with ?audio=all.
    let streams = |q: &'static str| {
        let c = c.clone();
        let url = url_of(&srv, "h264_eac3_51.mp4", q);
        async move {
            let body = c
                .get(url)
                .send()
                .await
                .expect("GET")
                .bytes()
                .await
                .expect("body");
            let s = Scratch::new("download-eac3");
            let p = s.path().join("d.mp4");
            std::fs::write(&p, &body).expect("write");
            hlsgate_tests::ffprobe_csv(&p, &["-show_entries", "stream=codec_name"])
                .lines()
                .map(|l| l.trim().trim_end_matches(','))
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(",")
        }
    };
    let (plain, all) = (streams("").await, streams("?audio=all").await);
    println!("h264_eac3_51.mp4: default [{plain}], ?audio=all [{all}]");
    assert_eq!(plain, "h264");
    assert_eq!(all, "h264,eac3");
}

/// `hlsgate download` writes the same bytes as the server, atomically.
#[test]
fn the_cli_writes_the_same_file() {
    let srv = server();
    let scratch = Scratch::new("download-cli");
    let out = scratch.path().join("film.mp4");
    let src = fixture("h264_aac_moov_end.mp4");
    let (code, stdout, stderr) = hlsgate(&[
        "download",
        src.to_str().expect("utf-8"),
        out.to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    println!("{}{}", stdout.trim(), stderr.trim());
    let (status, _, body) =
        hlsgate_tests::server::http_get(&url_of(&srv, "h264_aac_moov_end.mp4", ""));
    assert_eq!(status, 200);
    assert!(
        std::fs::read(&out).expect("read") == body,
        "CLI and server bytes are the same"
    );
    let leftovers: Vec<_> = std::fs::read_dir(scratch.path())
        .expect("dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "no partial file left: {leftovers:?}");
    assert!(
        stderr.contains("download: 100%"),
        "progress lines off a terminal: {stderr}"
    );
}
