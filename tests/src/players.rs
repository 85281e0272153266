//! Real players against an HLS master URL, for the end-to-end tests.
//!
//! - [`hlsjs_check`]: hls.js in Debian's headless Chromium (driven by playwright-core from npm,
//!   never a downloaded browser): plays from 0, seeks to the middle and to 4 s before the end,
//!   waits for `ended`, optionally switches audio track and checks subtitles; every hls.js
//!   `ERROR` event, fatal or not, fails it (but for the non-fatal `aborted` that hls.js emits
//!   when it cancels its own load on a seek, counted in `hls_aborted_loads`).
//! - [`page_check`]: the player page at `/`: click the first file, it plays, screenshot.
//! - [`mpv_check`]: mpv (`--vo=null --ao=null --untimed`) to EOF with no warning.
//! - [`ffmpeg_hls_check`]: FFmpeg's HLS demuxer decodes every stream of the master to the end,
//!   with per-stream timing of the decoded frames (holes show).
//! - [`vlc_check`]: VLC 3 (`cvlc` as uid 65534, its own adaptive demuxer) to the end, played
//!   duration against the playlist, and a seek to the middle segment.
//! - [`gst_check`]: GStreamer `playbin` (hlsdemux) or `playbin3` (hlsdemux2) into fakesinks:
//!   buffer times to the end and after an accurate seek, exact to the frame.
//!
//! The browser checks are the Node scripts in `tests/players/` (their header comments say what
//! each checks); they print one JSON line, parsed here. [`make_static_hls`] builds a reference
//! HLS with the ffmpeg CLI (optionally broken on purpose) and [`FakeApi`] stands in for the
//! page's API, so `tests/tests/players_harness.rs` proves the checks pass on a good stream and
//! fail on a broken one, independently of hlsgate's own server.
//!
//! Needs `chromium`, `mpv`, `vlc-bin`, GStreamer with its Python bindings, `node` and `npm ci`
//! in `tests/players` (`scripts/install-deps.sh`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde::Deserialize;

use crate::workspace;

/// `tests/players`, checked to be installed.
pub fn harness_dir() -> PathBuf {
    let dir = workspace().join("tests/players");
    assert!(
        dir.join("node_modules/playwright-core").is_dir()
            && dir.join("node_modules/hls.js").is_dir(),
        "{}/node_modules is missing: run scripts/install-deps.sh (npm ci there)",
        dir.display()
    );
    dir
}

/// Where tests keep what a person may want to look at afterwards (screenshots): the
/// `HLSGATE_TEST_ARTIFACTS` env var, else `<cargo target dir>/test-artifacts`. Created.
pub fn artifacts_dir() -> PathBuf {
    let dir = match std::env::var_os("HLSGATE_TEST_ARTIFACTS") {
        Some(d) => PathBuf::from(d),
        None => {
            // target/<profile>/deps/<test binary> → target/test-artifacts
            let exe = std::env::current_exe().expect("current exe");
            exe.ancestors()
                .nth(3)
                .map(|t| t.join("test-artifacts"))
                .unwrap_or_else(|| std::env::temp_dir().join("hlsgate-test-artifacts"))
        }
    };
    std::fs::create_dir_all(&dir).expect("create the test artifacts dir");
    dir
}

/// Options of [`hlsjs_check`].
#[derive(Debug, Clone, Default)]
pub struct HlsJsOptions {
    /// After the middle seek, switch to audio track 1: `AUDIO_TRACK_SWITCHED`, a fragment of
    /// track 1 buffered, playback still advancing. Needs two audio tracks.
    pub audio_switch: bool,
    /// Enable subtitle track 0 and require a cue to become active in the played range (from 0
    /// for `min_play` seconds, the middle for ≥ 0.5 s, the last 4 s).
    pub subtitles: bool,
    /// Serve the test page from the other loopback name (`localhost` ↔ `127.0.0.1`), so every
    /// request is cross-origin and needs the server's CORS headers.
    pub cross_origin: bool,
    /// Global time bound of the check, seconds (default 60).
    pub timeout_secs: Option<u32>,
    /// How far playback from 0 must get before the first seek, seconds (default 0.5).
    pub min_play_secs: Option<f64>,
    /// Stop at the first hls.js ERROR event instead of playing on (for negative tests).
    pub stop_on_error: bool,
    /// An audio-only master: no video frame is expected.
    pub audio_only: bool,
    /// Force the next quality level every this many seconds of playing (cycling through all),
    /// and require a fragment of every level to be buffered.
    pub level_switch_secs: Option<f64>,
}

/// One seek of [`hlsjs_check`].
#[derive(Debug, Clone, Deserialize)]
pub struct SeekReport {
    /// "middle" or "end".
    pub label: String,
    /// Requested position, seconds.
    pub target: f64,
    /// `currentTime` at the `seeked` event.
    pub landed: f64,
    /// Milliseconds from setting `currentTime` to `seeked`.
    pub seeked_ms: f64,
    /// Milliseconds from setting `currentTime` until it had advanced 0.5 s past `landed`.
    pub advance_ms: f64,
}

/// The audio switch of [`hlsjs_check`].
#[derive(Debug, Clone, Deserialize)]
pub struct AudioSwitchReport {
    /// Milliseconds to `AUDIO_TRACK_SWITCHED`.
    pub switched_ms: f64,
    /// `hls.audioTrack` afterwards (1 when it worked).
    pub audio_track: i64,
    /// Fragments of audio track 1 buffered.
    pub track1_fragments: u64,
}

/// One subtitle cue that became active.
#[derive(Debug, Clone, Deserialize)]
pub struct CueReport {
    /// Index of the `TextTrack` on the video element.
    pub track: u32,
    /// Cue start, seconds.
    pub start: f64,
    /// Cue end, seconds.
    pub end: f64,
    /// Cue text.
    pub text: String,
    /// `currentTime` when it was seen active.
    pub at: f64,
}

/// The subtitles part of [`hlsjs_check`].
#[derive(Debug, Clone, Deserialize)]
pub struct SubtitlesReport {
    /// Cues seen active, in order.
    pub cues: Vec<CueReport>,
}

/// A video rendition as hls.js parsed it from the master.
#[derive(Debug, Clone, Deserialize)]
pub struct LevelReport {
    /// RESOLUTION width (0 when absent).
    pub width: Option<u32>,
    /// RESOLUTION height.
    pub height: Option<u32>,
    /// BANDWIDTH.
    pub bitrate: Option<f64>,
    /// CODECS (video, audio).
    pub codecs: String,
}

/// An audio or subtitle rendition as hls.js parsed it.
#[derive(Debug, Clone, Deserialize)]
pub struct TrackReport {
    /// NAME.
    pub name: String,
    /// LANGUAGE.
    pub lang: Option<String>,
}

/// One hls.js `ERROR` event.
#[derive(Debug, Clone, Deserialize)]
pub struct HlsErrorReport {
    /// `networkError`, `mediaError`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// `fragLoadError`, `bufferSeekOverHole`, …
    pub details: String,
    /// Whether hls.js gave up.
    pub fatal: bool,
    /// The URL involved, when there is one.
    pub url: Option<String>,
    /// HTTP status, for network errors.
    pub code: Option<i64>,
    /// hls.js's reason text.
    pub reason: Option<String>,
}

/// Decoded video frames (`getVideoPlaybackQuality`).
#[derive(Debug, Clone, Deserialize)]
pub struct FramesReport {
    /// Frames decoded.
    pub total: u64,
    /// Frames dropped.
    pub dropped: u64,
}

/// What [`hlsjs_check`] saw. `ok` is the verdict; `failures` says why not.
#[derive(Debug, Clone, Deserialize)]
pub struct PlayerReport {
    /// Every check passed.
    pub ok: bool,
    /// Why not, one line each.
    pub failures: Vec<String>,
    /// hls.js version used.
    pub hls_version: String,
    /// `video.duration` once playing, seconds.
    pub duration: Option<f64>,
    /// Milliseconds from `loadSource` to the first presented video frame.
    pub first_frame_ms: Option<f64>,
    /// Milliseconds from `loadSource` until `currentTime` passed `min_play`.
    pub start_ms: Option<f64>,
    /// The seeks, in order.
    pub seeks: Vec<SeekReport>,
    /// `ended` fired.
    pub ended: bool,
    /// The audio switch, when asked for and reached.
    pub audio_switch: Option<AudioSwitchReport>,
    /// The subtitle cues, when asked for.
    pub subtitles: Option<SubtitlesReport>,
    /// With `level_switch_secs`: the forced switches, hls.js's LEVEL_SWITCHED events, and the
    /// fragments buffered per `type:level`.
    #[serde(default)]
    pub level_switch: Option<serde_json::Value>,
    /// Video renditions.
    pub levels: Vec<LevelReport>,
    /// Audio renditions.
    pub audio_tracks: Vec<TrackReport>,
    /// Subtitle renditions.
    pub subtitle_tracks: Vec<TrackReport>,
    /// Decoded frames.
    pub frames: Option<FramesReport>,
    /// Every hls.js ERROR event, less the non-fatal `aborted` ones.
    pub hls_errors: Vec<HlsErrorReport>,
    /// Non-fatal `aborted` ERROR events: hls.js cancelling its own load on a seek or a track
    /// switch (hls.js 1.7 reports those as errors); not failures.
    pub hls_aborted_loads: u64,
    /// Console errors and page exceptions.
    pub console_errors: Vec<String>,
    /// HTTP statuses ≥ 400 and failed requests (cancelled loads excluded).
    pub http_errors: Vec<String>,
    /// The whole JSON line, for anything not typed above.
    #[serde(skip)]
    pub raw: String,
}

impl PlayerReport {
    /// Panics with the failures and the whole report unless `ok`.
    pub fn assert_ok(&self) {
        assert!(
            self.ok,
            "hls.js check failed:\n  {}\nreport: {}",
            self.failures.join("\n  "),
            self.raw
        );
    }
}

/// What [`page_check`] saw.
#[derive(Debug, Clone, Deserialize)]
pub struct PageReport {
    /// Every check passed.
    pub ok: bool,
    /// Why not.
    pub failures: Vec<String>,
    /// The file clicked (its listed name).
    pub file: Option<String>,
    /// Files listed at the root.
    pub files_listed: u32,
    /// Files listed greyed, as `name|reason · size|disabled`.
    #[serde(default)]
    pub unplayable: Vec<String>,
    /// Milliseconds from the click until `currentTime` > 1 s.
    pub play_ms: Option<f64>,
    /// `currentTime` at the end.
    pub current_time: Option<f64>,
    /// The screenshot's path, when taken.
    pub screenshot: Option<String>,
    /// The page's error box, when shown.
    pub error_box: Option<String>,
    /// The scrub preview (`--thumb`): `kind` (`sheet` or `single`), `src`, and `requests`
    /// (`single`: thumbnail requests, `sheets`: the sheets asked for).
    #[serde(default)]
    pub thumb: Option<serde_json::Value>,
    /// Home mode: what the login met (`--password`).
    #[serde(default)]
    pub login: Option<PageLogin>,
    /// The whole JSON line.
    #[serde(skip)]
    pub raw: String,
}

/// What the page check met while logging in (home mode).
#[derive(Debug, Clone, Deserialize)]
pub struct PageLogin {
    /// Status of the page before the login (401 expected).
    pub status_before: u16,
    /// Status of the page the login form led to.
    pub status_after: u16,
    /// HTTP errors before the login (the page's 401 only).
    pub errors_before: Vec<String>,
    /// Screenshot of the login form.
    pub screenshot: String,
    /// Whether the page showed its logout button after the login.
    pub logout_button: bool,
}

impl PageReport {
    /// Panics with the failures and the whole report unless `ok`.
    pub fn assert_ok(&self) {
        assert!(
            self.ok,
            "page check failed:\n  {}\nreport: {}",
            self.failures.join("\n  "),
            self.raw
        );
    }
}

/// Options of [`page_check_with`].
#[derive(Debug, Clone, Default)]
pub struct PageOptions {
    /// Click the file with this listed name instead of the first one.
    pub file: Option<String>,
    /// Also hover the seek bar's middle until the thumbnail preview loads.
    pub thumb: bool,
    /// Global time bound, seconds (default 60).
    pub timeout_secs: Option<u32>,
    /// The file must not play: the page's error box must show this text (the server's reason).
    pub expect_error: Option<String>,
    /// Home mode: log in through the page's form with this password first.
    pub password: Option<String>,
}

/// What [`mpv_check`] saw.
#[derive(Debug, Clone, Deserialize)]
pub struct MpvReport {
    /// Every check passed.
    pub ok: bool,
    /// Why not.
    pub failures: Vec<String>,
    /// mpv's exit status (124 = killed by the timeout).
    pub exit_code: i32,
    /// Wall time, ms.
    pub elapsed_ms: u64,
    /// mpv's end-file reason (`eof` when it played to the end).
    pub end_reason: Option<String>,
    /// Last playback position, seconds.
    pub last_pos: Option<f64>,
    /// Duration as mpv saw it, seconds.
    pub duration: Option<f64>,
    /// Decoded video width (0 = no video).
    pub video_width: u32,
    /// Warning/error lines (each one fails the check).
    pub messages: Vec<String>,
    /// Known-harmless lines that were let through.
    pub allowed: Vec<String>,
    /// Runs of mpv (more than 1 when the earlier ones only warned about A/V desynchronisation).
    pub attempts: u32,
    /// The whole JSON line.
    #[serde(skip)]
    pub raw: String,
}

impl MpvReport {
    /// Panics with the failures and the whole report unless `ok`.
    pub fn assert_ok(&self) {
        assert!(
            self.ok,
            "mpv check failed:\n  {}\nreport: {}",
            self.failures.join("\n  "),
            self.raw
        );
    }
}

/// One decoded stream of [`ffmpeg_hls_check`], from FFmpeg's `framecrc` of the decoded frames.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedStream {
    /// Output stream index.
    pub index: u32,
    /// `audio`, `video`, …
    pub media_type: String,
    /// Decoded frames.
    pub frames: u64,
    /// First frame's presentation time, seconds.
    pub start: f64,
    /// Last frame's presentation time plus its duration, seconds.
    pub end: f64,
    /// Largest hole between one frame's end and the next frame's start, seconds (0 = none).
    pub max_gap: f64,
    /// Largest overlap between consecutive frames, seconds (0 = none).
    pub max_overlap: f64,
    /// For subtitle streams (copied, not decoded): each packet's (start, end), seconds.
    pub cues: Vec<(f64, f64)>,
}

/// What [`ffmpeg_hls_check`] saw.
#[derive(Debug, Clone)]
pub struct FfmpegReport {
    /// ffmpeg exited 0.
    pub success: bool,
    /// The latest decoded end over all streams, seconds.
    pub decoded_duration: f64,
    /// Every decoded stream (every rendition of the master: video, each audio track).
    pub streams: Vec<DecodedStream>,
    /// ffmpeg's warnings and errors (`-v warning`), less the known-harmless ones: empty when
    /// the master decoded cleanly.
    pub errors: String,
    /// Known-harmless lines let through (FFmpeg 5.1's HLS demuxer skips WebVTT renditions).
    pub allowed: Vec<String>,
}

/// Holes longer than this between decoded frames fail [`FfmpegReport::assert_ok`], seconds.
pub const MAX_DECODE_GAP: f64 = 0.1;

/// A stream ending more than this before the longest one fails [`FfmpegReport::assert_ok`]
/// (FFmpeg goes on silently when a segment fails to parse, and that stream just stops), seconds.
pub const MAX_END_SPREAD: f64 = 1.0;

/// A stream starting more than this after the earliest one fails [`FfmpegReport::assert_ok`]:
/// audio and video must begin together (one frame at 24 fps), seconds. FFmpeg-based players
/// (mpv, Kodi) show a video late by its most negative composition offset; this catches it.
pub const MAX_START_SPREAD: f64 = 0.042;

impl FfmpegReport {
    /// Panics unless ffmpeg succeeded, printed no warning or error, decoded at least one
    /// stream, no stream has a hole longer than [`MAX_DECODE_GAP`], and every stream ends within
    /// [`MAX_END_SPREAD`] of the longest, and every stream starts within [`MAX_START_SPREAD`]
    /// of the earliest.
    /// Subtitle streams (sparse by nature) are left out of these bounds.
    pub fn assert_ok(&self) {
        let media = || self.streams.iter().filter(|s| s.media_type != "subtitle");
        let first = media().map(|s| s.start).fold(f64::INFINITY, f64::min);
        let bad: Vec<&DecodedStream> = media()
            .filter(|s| {
                s.max_gap > MAX_DECODE_GAP
                    || s.end < self.decoded_duration - MAX_END_SPREAD
                    || s.start > first + MAX_START_SPREAD
            })
            .collect();
        assert!(
            self.success && self.errors.trim().is_empty() && !self.streams.is_empty() && bad.is_empty(),
            "ffmpeg's HLS demuxer failed (success {}, decoded {:.3} s, streams with holes, late or short: {bad:?}):\n{}\nstreams: {:?}",
            self.success,
            self.decoded_duration,
            self.errors,
            self.streams
        );
    }

    /// The decoded streams of one media type (`video`, `audio`).
    pub fn of_type(&self, media_type: &str) -> Vec<&DecodedStream> {
        self.streams
            .iter()
            .filter(|s| s.media_type == media_type)
            .collect()
    }
}

/// Lines FFmpeg prints at `-v warning` on a healthy master.
const FFMPEG_ALLOWED: &[&str] = &["Can't support the subtitle"];

/// Parses FFmpeg's `framecrc` output into per-stream timing.
pub fn parse_framecrc(text: &str) -> Vec<DecodedStream> {
    use std::collections::BTreeMap;
    // stream → (timebase num, den), media type, frames (pts, duration) in ticks
    let mut tb: BTreeMap<u32, (f64, f64)> = BTreeMap::new();
    let mut kind: BTreeMap<u32, String> = BTreeMap::new();
    let mut frames: BTreeMap<u32, Vec<(i64, i64)>> = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("#tb ") {
            if let Some((idx, v)) = rest.split_once(": ") {
                if let (Ok(i), Some((n, d))) = (idx.parse::<u32>(), v.trim().split_once('/')) {
                    if let (Ok(n), Ok(d)) = (n.parse::<f64>(), d.parse::<f64>()) {
                        tb.insert(i, (n, d));
                    }
                }
            }
        } else if let Some(rest) = line.strip_prefix("#media_type ") {
            if let Some((idx, v)) = rest.split_once(": ") {
                if let Ok(i) = idx.parse::<u32>() {
                    kind.insert(i, v.trim().to_string());
                }
            }
        } else if !line.starts_with('#') {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            if f.len() >= 4 {
                if let (Ok(i), Ok(pts), Ok(dur)) = (
                    f[0].parse::<u32>(),
                    f[2].parse::<i64>(),
                    f[3].parse::<i64>(),
                ) {
                    frames.entry(i).or_default().push((pts, dur));
                }
            }
        }
    }
    frames
        .into_iter()
        .map(|(index, mut fr)| {
            let (n, d) = tb.get(&index).copied().unwrap_or((1.0, 1.0));
            let secs = |t: i64| t as f64 * n / d;
            fr.sort_unstable();
            let (mut max_gap, mut max_overlap) = (0i64, 0i64);
            for w in fr.windows(2) {
                let hole = w[1].0 - (w[0].0 + w[0].1);
                max_gap = max_gap.max(hole);
                max_overlap = max_overlap.max(-hole);
            }
            let start = fr.first().map_or(0, |f| f.0);
            let end = fr.iter().map(|f| f.0 + f.1).max().unwrap_or(0);
            DecodedStream {
                index,
                media_type: kind.get(&index).cloned().unwrap_or_default(),
                frames: fr.len() as u64,
                start: secs(start),
                end: secs(end),
                max_gap: secs(max_gap),
                max_overlap: secs(max_overlap),
                cues: if kind.get(&index).map(String::as_str) == Some("subtitle") {
                    fr.iter().map(|&(p, d)| (secs(p), secs(p + d))).collect()
                } else {
                    Vec::new()
                },
            }
        })
        .collect()
}

/// Runs a harness command and parses the JSON line it prints (its last line starting with `{`).
fn run_json<T: for<'de> Deserialize<'de>>(mut cmd: Command, what: &str) -> (T, String) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| {
            panic!(
                "{what} printed no report (status {}):\nstdout: {stdout}\nstderr: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .to_string();
    let report: T = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("{what} printed an unreadable report ({e}): {line}"));
    (report, line)
}

fn node(script: &str) -> Command {
    let dir = harness_dir();
    let mut cmd = Command::new("node");
    cmd.arg(dir.join(script)).current_dir(dir);
    cmd
}

/// hls.js in headless Chromium against `master_url` (see [`HlsJsOptions`] and
/// `tests/players/hlsjs-check.mjs`). Panics only when the harness itself cannot run; a failed
/// playback is `ok == false` with the reasons in `failures` (see [`PlayerReport::assert_ok`]).
pub fn hlsjs_check(master_url: &str, opts: &HlsJsOptions) -> PlayerReport {
    let mut cmd = node("hlsjs-check.mjs");
    cmd.arg(master_url);
    if opts.audio_switch {
        cmd.arg("--audio-switch");
    }
    if opts.subtitles {
        cmd.arg("--subtitles");
    }
    if opts.cross_origin {
        cmd.arg("--cross-origin");
    }
    if opts.stop_on_error {
        cmd.arg("--stop-on-error");
    }
    if opts.audio_only {
        cmd.arg("--audio-only");
    }
    if let Some(t) = opts.timeout_secs {
        cmd.args(["--timeout", &t.to_string()]);
    }
    if let Some(m) = opts.min_play_secs {
        cmd.args(["--min-play", &m.to_string()]);
    }
    if let Some(n) = opts.level_switch_secs {
        cmd.args(["--level-switch", &n.to_string()]);
    }
    let (mut r, raw): (PlayerReport, _) = run_json(cmd, "hlsjs-check.mjs");
    r.raw = raw;
    r
}

/// The player page at `base_url` (`http://127.0.0.1:PORT`): the first listed file plays;
/// the screenshot goes to `screenshot`. See [`page_check_with`].
pub fn page_check(base_url: &str, screenshot: &Path) -> PageReport {
    page_check_with(base_url, screenshot, &PageOptions::default())
}

/// [`page_check`] with options (`tests/players/page-check.mjs`).
pub fn page_check_with(base_url: &str, screenshot: &Path, opts: &PageOptions) -> PageReport {
    let mut cmd = node("page-check.mjs");
    cmd.arg(base_url).arg(screenshot);
    if let Some(f) = &opts.file {
        cmd.args(["--file", f]);
    }
    if opts.thumb {
        cmd.arg("--thumb");
    }
    if let Some(t) = opts.timeout_secs {
        cmd.args(["--timeout", &t.to_string()]);
    }
    if let Some(e) = &opts.expect_error {
        cmd.args(["--expect-error", e]);
    }
    if let Some(p) = &opts.password {
        cmd.args(["--password", p]);
    }
    let (mut r, raw): (PageReport, _) = run_json(cmd, "page-check.mjs");
    r.raw = raw;
    r
}

/// mpv plays `url` to EOF, untimed, bounded to 120 s (`tests/players/mpv-check.sh`).
pub fn mpv_check(url: &str) -> MpvReport {
    mpv_check_with(url, 120)
}

/// [`mpv_check`] with another time bound.
pub fn mpv_check_with(url: &str, timeout_secs: u32) -> MpvReport {
    mpv_run(url, timeout_secs, false)
}

/// [`mpv_check`] of an audio-only master: to EOF with no warning, no video expected, the end
/// position not compared (see `mpv-check.sh`).
pub fn mpv_check_audio_only(url: &str) -> MpvReport {
    mpv_run(url, 120, true)
}

fn mpv_run(url: &str, timeout_secs: u32, audio_only: bool) -> MpvReport {
    let mut cmd = Command::new(workspace().join("tests/players/mpv-check.sh"));
    cmd.arg(url).arg(timeout_secs.to_string());
    if audio_only {
        cmd.arg("audio-only");
    }
    let (mut r, raw): (MpvReport, _) = run_json(cmd, "mpv-check.sh");
    r.raw = raw;
    r
}

/// `ffmpeg -v warning -i MASTER -map 0 -c:s copy -f framecrc -`: FFmpeg's HLS (or DASH)
/// demuxer reads every rendition and decodes it to the end; the checksum muxer lists every
/// decoded frame, so holes (a segment skipped after a 404 or a parse failure — FFmpeg goes on
/// silently after those) show in [`DecodedStream::max_gap`]. FFmpeg 5.1 cannot seek in fMP4
/// HLS, so this plays from 0 only; its HLS demuxer skips WebVTT renditions (the one allowed
/// warning).
pub fn ffmpeg_hls_check(master_url: &str) -> FfmpegReport {
    ffmpeg_check_streams(master_url, &["-map", "0", "-c:s", "copy"])
}

/// [`ffmpeg_hls_check`] with other stream selection (`maps`: `-map 0:v? -map 0:a?`, or
/// `-map 0:s -c copy` to list the subtitle packets in [`DecodedStream::cues`]).
pub fn ffmpeg_check_streams(master_url: &str, maps: &[&str]) -> FfmpegReport {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-v", "warning", "-nostats"])
        .args(["-i", master_url])
        .args(maps)
        .args(["-f", "framecrc", "-"])
        .stdin(Stdio::null())
        .output()
        .expect("run ffmpeg");
    let streams = parse_framecrc(&String::from_utf8_lossy(&out.stdout));
    let decoded_duration = streams.iter().map(|s| s.end).fold(0.0, f64::max);
    let mut errors = String::new();
    let mut allowed = Vec::new();
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        if FFMPEG_ALLOWED.iter().any(|a| line.contains(a)) {
            allowed.push(line.to_string());
        } else if !line.trim().is_empty() {
            errors.push_str(line);
            errors.push('\n');
        }
    }
    FfmpegReport {
        success: out.status.success(),
        decoded_duration,
        streams,
        errors,
        allowed,
    }
}

/// How [`make_static_hls`] breaks its output on purpose (to prove a check can fail).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breakage {
    /// A video segment the playlist lists is deleted (404 mid-stream).
    MissingSegment,
    /// A video segment is overwritten with random bytes.
    CorruptSegment,
    /// The video init segment is truncated to 40 bytes.
    BadInit,
}

impl Breakage {
    fn as_arg(self) -> &'static str {
        match self {
            Breakage::MissingSegment => "missing-segment",
            Breakage::CorruptSegment => "corrupt-segment",
            Breakage::BadInit => "bad-init",
        }
    }
}

/// Makes a static fMP4 HLS of `input` in `out` (removed first) with the ffmpeg CLI
/// (`tests/players/make-static-hls.sh`: H.264 without B-frames, AAC, each audio track as an
/// EXT-X-MEDIA rendition, subtitles as one WebVTT segment), optionally broken. Returns the
/// master playlist's path.
pub fn make_static_hls(input: &Path, out: &Path, breakage: Option<Breakage>) -> PathBuf {
    let mut cmd = Command::new(workspace().join("tests/players/make-static-hls.sh"));
    cmd.arg(input).arg(out);
    if let Some(b) = breakage {
        cmd.arg(b.as_arg());
    }
    let status = cmd
        .stdout(Stdio::null())
        .status()
        .expect("run make-static-hls.sh");
    assert!(
        status.success(),
        "make-static-hls.sh failed on {}",
        input.display()
    );
    out.join("master.m3u8")
}

/// Breaks a static HLS made by [`make_static_hls`] in place (`make-static-hls.sh --break`).
pub fn break_static_hls(dir: &Path, breakage: Breakage) {
    let status = Command::new(workspace().join("tests/players/make-static-hls.sh"))
        .arg("--break")
        .arg(breakage.as_arg())
        .arg(dir)
        .status()
        .expect("run make-static-hls.sh --break");
    assert!(
        status.success(),
        "make-static-hls.sh --break failed on {}",
        dir.display()
    );
}

/// A stand-in for hlsgate's page API (`tests/players/fake-api.mjs`) serving the real page
/// assets from `crates/server/assets`: folders of `hls_root` holding a `master.m3u8` are listed
/// as playable files, `POST /api/v1/streams` answers with their static master URL, every
/// thumbnail is `thumb`. Killed on drop.
pub struct FakeApi {
    child: Child,
    /// The port on 127.0.0.1.
    pub port: u16,
}

impl FakeApi {
    /// Starts it on a free port and waits until it listens.
    pub fn start(hls_root: &Path, thumb: Option<&Path>) -> FakeApi {
        let assets = workspace().join("crates/server/assets");
        assert!(
            assets.join("hls.min.js").is_file(),
            "crates/server/assets/hls.min.js is missing: run scripts/install-deps.sh"
        );
        let mut cmd = node("fake-api.mjs");
        cmd.arg("--assets")
            .arg(&assets)
            .arg("--hls-root")
            .arg(hls_root);
        if let Some(t) = thumb {
            cmd.arg("--thumb").arg(t);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start fake-api.mjs");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read fake-api.mjs's port");
        #[derive(Deserialize)]
        struct Ready {
            port: u16,
        }
        let ready: Ready = match serde_json::from_str(line.trim()) {
            Ok(r) => r,
            Err(e) => {
                let _ = child.kill();
                panic!("fake-api.mjs did not start ({e}): {line:?}");
            }
        };
        FakeApi {
            child,
            port: ready.port,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What [`vlc_check`] saw (`tests/players/vlc-check.py`): VLC 3 from 0 to the end at 4x and a
/// seek to the middle segment at 1x. `failures` is the verdict.
#[derive(Debug, Clone, Deserialize)]
pub struct VlcReport {
    /// Every check passed.
    pub ok: bool,
    /// Why not, one line each.
    pub failures: Vec<String>,
    /// Sum of the first media playlist's EXTINFs, seconds.
    pub expected_duration: Option<f64>,
    /// The seek target: the start of the middle segment, seconds.
    pub seek_target: Option<f64>,
    /// Seconds played per stream (`audio`: blocks played by the audio output; `video`, only
    /// without audio: decoded pictures / frame rate).
    pub played: std::collections::BTreeMap<String, f64>,
    /// VLC's position when playback moved on after the seek (it reports whole seconds of
    /// playback, so up to ~1.25 s past the target).
    pub landed: Option<f64>,
    /// VLC's last reported position from 0 (1 s steps at 1x, 4 s at 4x: informative).
    pub last_time: Option<f64>,
    /// Exit codes of the two runs (124 = killed at the time bound).
    pub exit_codes: Vec<i32>,
    /// Wall time of both runs, ms.
    pub elapsed_ms: u64,
    /// Error lines and timing warnings (each one fails the check).
    pub errors: Vec<String>,
    /// Known-harmless lines that were let through.
    pub allowed: Vec<String>,
    /// The whole JSON line.
    #[serde(skip)]
    pub raw: String,
}

impl VlcReport {
    /// Panics with the failures and the whole report unless `ok`.
    pub fn assert_ok(&self) {
        assert!(
            self.ok,
            "VLC check failed:\n  {}\nreport: {}",
            self.failures.join("\n  "),
            self.raw
        );
    }
}

/// VLC 3 (`cvlc`, as uid 65534 when run as root) plays `master_url` from 0 to the end and
/// seeks to the middle (`tests/players/vlc-check.py`), bounded to 150 s. Panics only when the
/// harness cannot run; a failed playback is `ok == false`.
pub fn vlc_check(master_url: &str) -> VlcReport {
    let mut cmd = Command::new(workspace().join("tests/players/vlc-check.py"));
    cmd.arg(master_url).args(["--timeout", "150"]);
    let (mut r, raw): (VlcReport, _) = run_json(cmd, "vlc-check.py");
    r.raw = raw;
    r
}

/// Options of [`gst_check`].
#[derive(Debug, Clone, Default)]
pub struct GstOptions {
    /// `playbin3` (hlsdemux2) instead of `playbin` (hlsdemux).
    pub playbin3: bool,
    /// Time bound of both runs, seconds (default 120).
    pub timeout_secs: Option<u32>,
}

/// One stream's timing in [`GstReport`], seconds of stream time.
pub type GstTimes = std::collections::BTreeMap<String, f64>;

/// What [`gst_check`] saw (`tests/players/gst-check.py`). `failures` is the verdict.
#[derive(Debug, Clone, Deserialize)]
pub struct GstReport {
    /// Every check passed.
    pub ok: bool,
    /// Why not, one line each.
    pub failures: Vec<String>,
    /// `playbin` or `playbin3`.
    pub element: String,
    /// Sum of the first media playlist's EXTINFs, seconds.
    pub expected_duration: Option<f64>,
    /// The seek target: the start of the middle segment, seconds.
    pub seek_target: Option<f64>,
    /// End of the last decoded buffer per stream (`audio`, `video`), played from 0.
    pub played: GstTimes,
    /// Start of the first decoded buffer per stream, played from 0.
    pub starts: GstTimes,
    /// Start of the first decoded buffer per stream after the seek.
    pub landed: GstTimes,
    /// End of the last decoded buffer per stream after the seek.
    pub end_after_seek: GstTimes,
    /// Largest hole between consecutive buffers, per stream and run.
    pub max_gap: GstTimes,
    /// Bus ERROR and WARNING messages (each one fails the check).
    pub bus: Vec<String>,
    /// GStreamer log lines at ERROR, and WARN lines naming a timing fault (each one fails).
    pub log_errors: Vec<String>,
    /// Other WARN lines (the first 30), let through.
    pub allowed: Vec<String>,
    /// Wall time, ms.
    pub elapsed_ms: u64,
    /// The whole JSON line.
    #[serde(skip)]
    pub raw: String,
}

impl GstReport {
    /// Panics with the failures and the whole report unless `ok`.
    pub fn assert_ok(&self) {
        assert!(
            self.ok,
            "GStreamer {} check failed:\n  {}\nreport: {}",
            self.element,
            self.failures.join("\n  "),
            self.raw
        );
    }
}

/// GStreamer's `playbin` or `playbin3` plays `master_url` into fakesinks from 0 to EOS and
/// after an accurate seek to the middle segment (`tests/players/gst-check.py`, Debian's python3
/// with the GStreamer bindings). Panics only when the harness cannot run.
pub fn gst_check(master_url: &str, opts: &GstOptions) -> GstReport {
    let mut cmd = Command::new(workspace().join("tests/players/gst-check.py"));
    cmd.arg(master_url)
        .args(["--timeout", &opts.timeout_secs.unwrap_or(120).to_string()]);
    if opts.playbin3 {
        cmd.arg("--playbin3");
    }
    let (mut r, raw): (GstReport, _) = run_json(cmd, "gst-check.py");
    r.raw = raw;
    r
}

/// What [`dashjs_check`] saw (`tests/players/dashjs-check.mjs`).
#[derive(Debug, Clone, Deserialize)]
pub struct DashJsReport {
    /// Every check passed.
    pub ok: bool,
    /// Why not.
    pub failures: Vec<String>,
    /// The media element's duration, seconds.
    pub duration: Option<f64>,
    /// Milliseconds from `initialize` until currentTime > 0.5 s.
    pub start_ms: Option<u64>,
    /// The seeks (label, target, landed).
    pub seeks: Vec<serde_json::Value>,
    /// `ended` fired.
    pub ended: bool,
    /// The cues the page's text tracks received (with `--text`).
    #[serde(default)]
    pub text_cues: Vec<TextCue>,
    /// The whole JSON line.
    #[serde(skip)]
    pub raw: String,
}

/// One cue of a browser text track.
#[derive(Debug, Clone, Deserialize)]
pub struct TextCue {
    /// Start, seconds.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
    /// Payload.
    pub text: String,
}

impl DashJsReport {
    /// Panics with the failures and the whole report unless `ok`.
    pub fn assert_ok(&self) {
        assert!(
            self.ok,
            "dash.js check failed:\n  {}\nreport: {}",
            self.failures.join("\n  "),
            self.raw
        );
    }
}

/// dash.js in headless Chromium against `mpd_url`: plays from 0, seeks to the middle and to 4 s
/// before the end, `ended` fires, no dash.js error (`tests/players/dashjs-check.mjs`); with
/// `text`, the first text track is shown and the cues it received are reported.
pub fn dashjs_check(mpd_url: &str, audio_only: bool, text: bool) -> DashJsReport {
    let mut cmd = node("dashjs-check.mjs");
    cmd.arg(mpd_url).args(["--timeout", "120"]);
    if audio_only {
        cmd.arg("--audio-only");
    }
    if text {
        cmd.arg("--text");
    }
    let (mut r, raw): (DashJsReport, _) = run_json(cmd, "dashjs-check.mjs");
    r.raw = raw;
    r
}

/// What [`video_check`] saw.
#[derive(Debug, Clone, Deserialize)]
pub struct VideoReport {
    /// Every check passed.
    pub ok: bool,
    /// Why not.
    pub failures: Vec<String>,
    /// The element's duration, seconds.
    pub duration: Option<f64>,
    /// Milliseconds until `currentTime` > 1 s.
    pub play_ms: Option<f64>,
    /// Milliseconds from the seek until it played on past the target.
    pub seek_ms: Option<f64>,
    /// `currentTime` at the end.
    pub current_time: Option<f64>,
    /// The whole JSON line.
    #[serde(skip)]
    pub raw: String,
}

impl VideoReport {
    /// Panics with the failures and the whole report unless `ok`.
    pub fn assert_ok(&self) {
        assert!(
            self.ok,
            "video check failed:\n  {}\nreport: {}",
            self.failures.join("\n  "),
            self.raw
        );
    }
}

/// A progressive file `url` in a plain `<video>` of headless Chromium: plays, seeks to
/// `seek_secs`, plays on (`tests/players/video-check.mjs`).
pub fn video_check(url: &str, seek_secs: f64) -> VideoReport {
    let mut cmd = node("video-check.mjs");
    cmd.arg(url).arg(format!("{seek_secs}"));
    let (mut r, raw): (VideoReport, _) = run_json(cmd, "video-check.mjs");
    r.raw = raw;
    r
}
