//! Trick play (issue 15 item 1) through the real server, checked with independent tools: the
//! image playlist with m3u8-rs, the WebVTT thumbnails track with FFmpeg's WebVTT demuxer, every
//! sheet decoded by FFmpeg as a JPEG of the stated grid, and tiles compared with frames FFmpeg
//! extracts from the source at the keyframe ffprobe says each tile shows.

use std::path::Path;
use std::process::Command;

use hlsgate_tests::server::{http_get, Hlsgate};
use hlsgate_tests::{ffprobe_keyframe_times, ffprobe_video_packets, fixture, fixtures, Scratch};

/// Mean absolute difference (0–255) below which a tile is the frame (JPEG at two sizes).
const SAME_PICTURE: f64 = 12.0;

fn server() -> Hlsgate {
    Hlsgate::serve(&["--media-root", fixtures().to_str().expect("utf-8")], &[])
}

fn get_ok(url: &str) -> Vec<u8> {
    let (status, _, body) = http_get(url);
    assert_eq!(status, 200, "GET {url}");
    body
}

/// What the image playlist and the master say about the tiles.
#[derive(Debug)]
struct Tiles {
    tile: (u32, u32),
    layout: (u32, u32),
    interval: f64,
    sheets: Vec<(f64, String)>,
}

fn attr<'a>(list: &'a str, name: &str) -> Option<&'a str> {
    list.split(',')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

fn pair(v: &str) -> (u32, u32) {
    let (a, b) = v.split_once('x').expect("WxH");
    (a.parse().expect("w"), b.parse().expect("h"))
}

/// The image playlist, parsed by m3u8-rs (EXT-X-TILES is not a tag it knows: it keeps it).
fn image_playlist(base: &str) -> Tiles {
    let text = get_ok(&format!("{base}/trickplay/index.m3u8"));
    let pl = match m3u8_rs::parse_playlist_res(&text).expect("m3u8-rs parses the image playlist") {
        m3u8_rs::Playlist::MediaPlaylist(p) => p,
        m3u8_rs::Playlist::MasterPlaylist(_) => panic!("a media playlist expected"),
    };
    assert!(pl.end_list, "VOD with ENDLIST");
    assert!(
        String::from_utf8_lossy(&text).contains("#EXT-X-IMAGES-ONLY"),
        "EXT-X-IMAGES-ONLY"
    );
    let mut tiles = None;
    let mut sheets = Vec::new();
    for s in &pl.segments {
        let t = s
            .unknown_tags
            .iter()
            .find(|t| t.tag == "X-TILES")
            .and_then(|t| t.rest.clone())
            .unwrap_or_else(|| panic!("EXT-X-TILES before {}", s.uri));
        let this = (
            pair(attr(&t, "RESOLUTION").expect("RESOLUTION")),
            pair(attr(&t, "LAYOUT").expect("LAYOUT")),
            attr(&t, "DURATION")
                .and_then(|d| d.parse::<f64>().ok())
                .expect("DURATION"),
        );
        assert!(
            tiles.is_none_or(|x| x == this),
            "one tile grid for all sheets"
        );
        tiles = Some(this);
        sheets.push((f64::from(s.duration), s.uri.clone()));
    }
    let (tile, layout, interval) = tiles.expect("at least one sheet");
    Tiles {
        tile,
        layout,
        interval,
        sheets,
    }
}

/// The WebVTT thumbnails track as FFmpeg's WebVTT demuxer reads it (converted to SRT by
/// ffmpeg): (start s, end s, text) per cue.
fn vtt_cues(base: &str, dir: &Path) -> Vec<(f64, f64, String)> {
    let vtt = dir.join("thumbs.vtt");
    std::fs::write(&vtt, get_ok(&format!("{base}/trickplay.vtt"))).expect("write vtt");
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&vtt)
        .args(["-f", "srt", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg reads the WebVTT: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let srt = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    let t = |s: &str| -> f64 {
        let (hms, ms) = s.trim().split_once(',').expect("h:m:s,ms");
        let p: Vec<f64> = hms.split(':').map(|x| x.parse().expect("n")).collect();
        p[0] * 3600.0 + p[1] * 60.0 + p[2] + ms.parse::<f64>().expect("ms") / 1000.0
    };
    srt.split("\n\n")
        .filter_map(|block| {
            let lines: Vec<&str> = block.lines().collect();
            let i = lines.iter().position(|l| l.contains("-->"))?;
            let (a, b) = lines[i].split_once("-->")?;
            Some((t(a), t(b), lines.get(i + 1)?.to_string()))
        })
        .collect()
}

/// Gray pixels of `input` (an image or a video at `at` seconds), filtered by `vf`, as FFmpeg
/// decodes them.
fn gray(input: &Path, at: Option<f64>, vf: &str) -> Vec<u8> {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-v", "error"]);
    if let Some(t) = at {
        cmd.args(["-ss", &format!("{t:.6}")]);
    }
    cmd.arg("-i").arg(input);
    cmd.args([
        "-frames:v",
        "1",
        "-vf",
        &format!("{vf},format=gray"),
        "-f",
        "rawvideo",
        "-",
    ]);
    let out = cmd.output().expect("run ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg {vf}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len(), "same picture size");
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(x.abs_diff(*y)))
        .sum::<f64>()
        / a.len() as f64
}

/// Checks one source: playlists parse and agree, sheets decode with the stated grid, and each
/// checked tile is the source's picture at the keyframe it stands for (closer to it than to the
/// keyframes before and after). Returns (sheets, tiles checked).
fn check_source(srv: &Hlsgate, name: &str, max_tiles_checked: usize) -> (usize, usize) {
    let scratch = Scratch::new("trickplay");
    let base = srv.url(&format!("/v1/{}", server::token::open_token(name)));
    let master = String::from_utf8(get_ok(&format!("{base}/master.m3u8"))).expect("utf-8");
    let line = master
        .lines()
        .find(|l| l.starts_with("#EXT-X-IMAGE-STREAM-INF:"))
        .unwrap_or_else(|| panic!("{name}: the master lists the images:\n{master}"));
    assert!(
        line.contains("URI=\"trickplay/index.m3u8\"") && line.contains("CODECS=\"jpeg\""),
        "{line}"
    );
    // The master still parses for m3u8-rs with the image line in it.
    assert!(matches!(
        m3u8_rs::parse_playlist_res(master.as_bytes()),
        Ok(m3u8_rs::Playlist::MasterPlaylist(_))
    ));
    let tiles = image_playlist(&base);
    assert_eq!(
        attr(
            line.trim_start_matches("#EXT-X-IMAGE-STREAM-INF:"),
            "RESOLUTION"
        )
        .map(pair),
        Some(tiles.tile)
    );
    let total: f64 = tiles.sheets.iter().map(|(d, _)| d).sum();
    // The first variant's EXTINFs: the video's duration.
    let variant = master
        .lines()
        .skip_while(|l| !l.starts_with("#EXT-X-STREAM-INF:"))
        .nth(1)
        .expect("a variant");
    let video_secs: f64 = String::from_utf8(get_ok(&format!("{base}/{variant}")))
        .expect("utf-8")
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .filter_map(|l| l.trim_end_matches(',').parse::<f64>().ok())
        .sum();
    assert!(
        (total - video_secs).abs() < 0.002,
        "{name}: the sheets cover the video ({total} s vs {video_secs} s)"
    );

    let cues = vtt_cues(&base, scratch.path());
    let per_sheet = (tiles.layout.0 * tiles.layout.1) as usize;
    let n_tiles = cues.len();
    assert_eq!(
        n_tiles.div_ceil(per_sheet),
        tiles.sheets.len(),
        "{name}: cues and sheets"
    );
    for (i, (a, b, text)) in cues.iter().enumerate() {
        let want_start = i as f64 * tiles.interval;
        assert!(
            (a - want_start).abs() < 0.0015,
            "{name}: cue {i} starts at {a}"
        );
        assert!(
            b > a && *b <= want_start + tiles.interval + 0.0015,
            "{name}: cue {i} ends at {b}"
        );
        let sheet = i / per_sheet;
        let k = (i % per_sheet) as u32;
        let (x, y) = (
            (k % tiles.layout.0) * tiles.tile.0,
            (k / tiles.layout.0) * tiles.tile.1,
        );
        assert_eq!(
            text,
            &format!(
                "trickplay/{sheet}.jpg#xywh={x},{y},{},{}",
                tiles.tile.0, tiles.tile.1
            ),
            "{name}: cue {i}"
        );
    }
    assert!(
        (cues.last().expect("cues").1 - total).abs() < 0.002,
        "{name}: the last cue ends at the end"
    );

    // Every sheet: a JPEG of the whole grid.
    let (sw, sh) = (tiles.tile.0 * tiles.layout.0, tiles.tile.1 * tiles.layout.1);
    let mut sheet_files = Vec::new();
    for (n, (_, uri)) in tiles.sheets.iter().enumerate() {
        let bytes = get_ok(&format!("{base}/trickplay/{uri}"));
        let path = scratch.path().join(format!("sheet{n}.jpg"));
        std::fs::write(&path, &bytes).expect("write sheet");
        let probe =
            hlsgate_tests::ffprobe_csv(&path, &["-show_entries", "stream=codec_name,width,height"]);
        assert_eq!(
            probe.trim(),
            format!("mjpeg,{sw},{sh}"),
            "{name}: sheet {n}"
        );
        sheet_files.push(path);
    }

    // Tiles against the source's pictures at the keyframes they stand for (ffprobe's).
    let src = fixture(name);
    let first_pts = ffprobe_video_packets(&src)
        .iter()
        .map(|p| p.pts)
        .fold(f64::INFINITY, f64::min);
    let keys: Vec<f64> = ffprobe_keyframe_times(&src)
        .into_iter()
        .map(|t| t - first_pts)
        .collect();
    let step = (n_tiles / max_tiles_checked).max(1);
    let mut checked = 0;
    let mut worst: f64 = 0.0;
    for i in (0..n_tiles).step_by(step) {
        let t = i as f64 * tiles.interval;
        let Some(ki) = keys.iter().rposition(|k| *k <= t + 0.0005) else {
            continue;
        };
        let (x, y) = {
            let k = (i % per_sheet) as u32;
            (
                (k % tiles.layout.0) * tiles.tile.0,
                (k / tiles.layout.0) * tiles.tile.1,
            )
        };
        let tile = gray(
            &sheet_files[i / per_sheet],
            None,
            &format!("crop={}:{}:{x}:{y}", tiles.tile.0, tiles.tile.1),
        );
        let scale = format!(
            "scale={}:{}:force_original_aspect_ratio=decrease,pad={}:{}:(ow-iw)/2:(oh-ih)/2",
            tiles.tile.0, tiles.tile.1, tiles.tile.0, tiles.tile.1
        );
        let frame_at = |k: f64| gray(&src, Some((k + first_pts).max(0.0)), &scale);
        let own = mean_abs_diff(&tile, &frame_at(keys[ki]));
        worst = worst.max(own);
        assert!(
            own < SAME_PICTURE,
            "{name}: tile {i} (t = {t} s) differs from the keyframe at {} s by {own:.1}",
            keys[ki]
        );
        for other in [ki.checked_sub(1), Some(ki + 1)].into_iter().flatten() {
            if let Some(k) = keys.get(other) {
                let d = mean_abs_diff(&tile, &frame_at(*k));
                assert!(
                    own < d,
                    "{name}: tile {i} is closer to the keyframe at {k} s ({d:.1}) than to its own at {} s ({own:.1})",
                    keys[ki]
                );
            }
        }
        checked += 1;
    }
    println!(
        "{name}: {} tiles of {}x{} every {} s in {} sheet(s) of {sw}x{sh}; {checked} tiles \
         checked, worst difference {worst:.2} (of 255)",
        n_tiles,
        tiles.tile.0,
        tiles.tile.1,
        tiles.interval,
        tiles.sheets.len()
    );
    (tiles.sheets.len(), checked)
}

#[test]
fn sheets_show_the_keyframes_at_their_times() {
    let srv = server();
    // MP4, Matroska with HEVC, a rotated phone video (tiles upright, portrait), and a file read
    // through libavformat (FLV).
    for (name, checked) in [
        ("h264_aac_faststart.mp4", 12),
        ("hevc_ac3.mkv", 8),
        ("rotated_portrait.mp4", 6),
        ("h264_aac.flv", 6),
    ] {
        let (sheets, n) = check_source(&srv, name, checked);
        assert!(
            sheets >= 1 && n >= checked / 2,
            "{name}: {sheets} sheets, {n} tiles checked"
        );
    }
}

#[test]
fn a_two_hour_film_has_few_sheets_and_each_is_cached() {
    let srv = server();
    let base = srv.url(&format!("/v1/{}", server::token::open_token("long_2h.mkv")));
    let tiles = image_playlist(&base);
    println!(
        "long_2h.mkv: {} sheets, a tile every {} s, {:?}",
        tiles.sheets.len(),
        tiles.interval,
        tiles.tile
    );
    assert!(
        tiles.interval >= 10.0 && tiles.sheets.len() <= 8,
        "{tiles:?}"
    );
    let url = format!("{base}/trickplay/3.jpg");
    let hits = || srv.metric("hlsgate_cache_hits_total", "thumb");
    let t0 = std::time::Instant::now();
    let a = get_ok(&url);
    let cold = t0.elapsed();
    let before = hits();
    let t1 = std::time::Instant::now();
    let b = get_ok(&url);
    let warm = t1.elapsed();
    assert_eq!(a, b, "the same sheet twice");
    assert_eq!(hits(), before + 1.0, "the second request is a cache hit");
    println!(
        "sheet 3: {} bytes, made in {cold:?}, again from the cache in {warm:?}",
        a.len()
    );
    // Beyond the last sheet, and an audio-only source: 404, and no image line in its master.
    let (status, _, _) = http_get(&format!("{base}/trickplay/{}.jpg", tiles.sheets.len()));
    assert_eq!(status, 404);
    let audio = srv.url(&format!(
        "/v1/{}",
        server::token::open_token("aac_only.m4a")
    ));
    assert_eq!(http_get(&format!("{audio}/trickplay/index.m3u8")).0, 404);
    assert_eq!(http_get(&format!("{audio}/trickplay.vtt")).0, 404);
    let master = String::from_utf8(get_ok(&format!("{audio}/master.m3u8"))).expect("utf-8");
    assert!(!master.contains("IMAGE-STREAM-INF"), "{master}");
}
