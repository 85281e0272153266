//! Trick play: sprite sheets of small pictures at a fixed interval, for scrub previews.
//!
//! A [`Trickplay`] is a pure function of the output duration and the video's display size:
//! one picture ("tile") every [`Trickplay::interval_ms`] from output time 0, [`TILE_WIDTH`]
//! pixels wide, laid out [`COLUMNS`] × [`ROWS`] per sheet (a JPEG). The interval is the
//! shortest of [`INTERVALS_MS`] that keeps the tiles at most [`MAX_TILES`] and is not shorter
//! than the source's usual keyframe distance (a 1-minute clip with a keyframe every 2 s: one
//! tile per 2 s; a 2-hour film: one per 10 s, 8 sheets). Tile `i` shows the keyframe presented
//! last at or before `i × interval` — a sheet is made by decoding keyframes only, so tiles
//! closer than the keyframes would repeat pictures.
//!
//! Two ways to read them, both written here:
//! - [`image_playlist`]: an HLS image media playlist (`EXT-X-IMAGES-ONLY`, one `EXT-X-TILES`
//!   per sheet), listed in the multivariant playlist by [`image_stream_inf`] — the Apple/Roku
//!   form TV players read;
//! - [`vtt`]: a WebVTT track whose cues name a sheet and a tile (`0.jpg#xywh=320,0,320,180`) —
//!   the form web players (and hlsgate's page) read.

use std::fmt::Write as _;
use std::ops::Range;

use crate::playlist;

/// Width of a tile, pixels.
pub const TILE_WIDTH: u32 = 320;
/// Tiles per row of a sheet.
pub const COLUMNS: u32 = 10;
/// Rows of a sheet.
pub const ROWS: u32 = 10;
/// Tallest tile (a portrait video's tile is cut to this, keeping the width).
pub const MAX_TILE_HEIGHT: u32 = 640;
/// Intervals between tiles to choose from, milliseconds.
pub const INTERVALS_MS: [u32; 7] = [1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000];
/// Most tiles of one source (with the longest interval, a longer film gets more).
pub const MAX_TILES: u64 = 800;
/// Most tiles of one source at any interval (1 000 hours at 60 s: a plan never gets there).
pub const HARD_MAX_TILES: u64 = 60_000;

/// The tiles of one source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trickplay {
    /// Output time between two tiles.
    pub interval_ms: u32,
    /// Tile size, pixels (both even).
    pub tile: (u32, u32),
    /// Tiles per row and rows per sheet.
    pub layout: (u32, u32),
    /// Tiles in all.
    pub tiles: u32,
    /// Output duration, milliseconds (the last tile ends there).
    pub total_ms: u64,
}

impl Trickplay {
    /// The tiles of a video of `total_secs` output seconds shown at `display` (width, height;
    /// upright) whose keyframes are usually `keyframe_ms` apart (the median distance). `None`
    /// without a picture or a duration.
    pub fn new(total_secs: f64, display: (u32, u32), keyframe_ms: u64) -> Option<Trickplay> {
        let (w, h) = display;
        if w == 0 || h == 0 || !total_secs.is_finite() || total_secs <= 0.0 {
            return None;
        }
        let total_ms = (total_secs * 1000.0).round() as u64;
        if total_ms == 0 {
            return None;
        }
        let count = |interval: u32| total_ms.div_ceil(u64::from(interval));
        let interval_ms = INTERVALS_MS
            .iter()
            .copied()
            .find(|&i| count(i) <= MAX_TILES && u64::from(i) >= keyframe_ms)
            .unwrap_or(INTERVALS_MS[INTERVALS_MS.len() - 1]);
        let tiles = u32::try_from(count(interval_ms).min(HARD_MAX_TILES)).ok()?;
        let height = (u64::from(TILE_WIDTH) * u64::from(h) / u64::from(w))
            .clamp(2, u64::from(MAX_TILE_HEIGHT));
        let height = u32::try_from(height).ok()? & !1;
        Some(Trickplay {
            interval_ms,
            tile: (TILE_WIDTH, height.max(2)),
            layout: (COLUMNS, ROWS),
            tiles,
            total_ms,
        })
    }

    /// Tiles per sheet.
    pub fn per_sheet(&self) -> u32 {
        self.layout.0 * self.layout.1
    }

    /// Number of sheets.
    pub fn sheets(&self) -> u32 {
        self.tiles.div_ceil(self.per_sheet())
    }

    /// The tiles of sheet `n` (empty beyond the last).
    pub fn sheet_tiles(&self, n: u32) -> Range<u32> {
        let start = n.saturating_mul(self.per_sheet()).min(self.tiles);
        start..start.saturating_add(self.per_sheet()).min(self.tiles)
    }

    /// Output time of tile `i`, milliseconds.
    pub fn tile_ms(&self, i: u32) -> u64 {
        u64::from(i) * u64::from(self.interval_ms)
    }

    /// When tile `i` stops being the one shown, milliseconds (the end for the last).
    pub fn tile_end_ms(&self, i: u32) -> u64 {
        self.tile_ms(i.saturating_add(1)).min(self.total_ms)
    }

    /// Where tile `i` sits in its sheet: (x, y) of its top left corner, pixels.
    pub fn tile_origin(&self, i: u32) -> (u32, u32) {
        let k = i % self.per_sheet();
        (
            (k % self.layout.0) * self.tile.0,
            (k / self.layout.0) * self.tile.1,
        )
    }

    /// Size of a sheet, pixels (every sheet has the whole layout; unused tiles are black).
    pub fn sheet_size(&self) -> (u32, u32) {
        (self.tile.0 * self.layout.0, self.tile.1 * self.layout.1)
    }

    /// Seconds of output sheet `n` covers.
    pub fn sheet_secs(&self, n: u32) -> f64 {
        let r = self.sheet_tiles(n);
        if r.is_empty() {
            return 0.0;
        }
        (self.tile_end_ms(r.end - 1) - self.tile_ms(r.start)) as f64 / 1000.0
    }
}

/// The HLS image media playlist: one segment per sheet (`EXTINF` = the time its tiles cover,
/// `EXT-X-TILES` with the tile size, layout and per-tile duration), `uri(n)` naming sheet `n`.
pub fn image_playlist(tp: &Trickplay, uri: impl Fn(u32) -> String) -> String {
    let sheets = tp.sheets();
    let mut out = String::with_capacity(200 + sheets as usize * 100);
    let longest = (0..sheets).map(|n| tp.sheet_secs(n)).fold(0.0, f64::max);
    let _ = write!(
        out,
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:0\n\
         #EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-IMAGES-ONLY\n",
        longest.ceil() as u64
    );
    for n in 0..sheets {
        playlist::extinf(&mut out, tp.sheet_secs(n));
        let _ = writeln!(
            out,
            "#EXT-X-TILES:RESOLUTION={}x{},LAYOUT={}x{},DURATION={:.3}",
            tp.tile.0,
            tp.tile.1,
            tp.layout.0,
            tp.layout.1,
            f64::from(tp.interval_ms) / 1000.0
        );
        playlist::uri(&mut out, uri(n));
        out.push('\n');
    }
    out.push_str("#EXT-X-ENDLIST\n");
    out
}

/// The multivariant playlist's line for the image playlist at `uri` (`EXT-X-IMAGE-STREAM-INF`,
/// the tile size as `RESOLUTION`, `CODECS="jpeg"`); `sheet_bytes` is a sheet's typical size,
/// for `BANDWIDTH`.
pub fn image_stream_inf(out: &mut String, tp: &Trickplay, sheet_bytes: u64, uri: &str) {
    let per_sheet_secs = (u64::from(tp.per_sheet()) * u64::from(tp.interval_ms)).max(1);
    let bandwidth = (sheet_bytes * 8 * 1000).div_ceil(per_sheet_secs).max(1);
    let _ = write!(
        out,
        "#EXT-X-IMAGE-STREAM-INF:BANDWIDTH={bandwidth},RESOLUTION={}x{},CODECS=\"jpeg\",URI=\"",
        tp.tile.0, tp.tile.1
    );
    playlist::uri(out, uri);
    out.push_str("\"\n");
}

/// The WebVTT thumbnails track: one cue per tile, its text `uri(sheet)#xywh=x,y,w,h`.
pub fn vtt(tp: &Trickplay, uri: impl Fn(u32) -> String) -> String {
    let mut out = String::with_capacity(16 + tp.tiles as usize * 64);
    out.push_str("WEBVTT\n");
    for n in 0..tp.sheets() {
        let sheet = uri(n);
        for i in tp.sheet_tiles(n) {
            let (x, y) = tp.tile_origin(i);
            out.push('\n');
            vtt_time(&mut out, tp.tile_ms(i));
            out.push_str(" --> ");
            vtt_time(&mut out, tp.tile_end_ms(i));
            out.push('\n');
            playlist::uri(&mut out, &sheet);
            let _ = writeln!(out, "#xywh={x},{y},{},{}", tp.tile.0, tp.tile.1);
        }
    }
    out
}

fn vtt_time(out: &mut String, ms: u64) {
    let _ = write!(
        out,
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_follows_the_duration() {
        let a = Trickplay::new(60.0, (1280, 720), 0).expect("video");
        assert_eq!((a.interval_ms, a.tiles, a.sheets()), (1000, 60, 1));
        assert_eq!(a.tile, (320, 180));
        let b = Trickplay::new(7200.0, (1920, 1080), 0).expect("video");
        assert_eq!((b.interval_ms, b.tiles, b.sheets()), (10_000, 720, 8));
        let c = Trickplay::new(100.5, (320, 240), 0).expect("video");
        assert_eq!((c.interval_ms, c.tiles, c.tile), (1000, 101, (320, 240)));
        assert_eq!(c.sheet_tiles(1), 100..101);
        assert!((c.sheet_secs(1) - 0.5).abs() < 1e-9);
        // Portrait: the height is capped; odd heights become even.
        assert_eq!(
            Trickplay::new(10.0, (1080, 1920), 0).expect("v").tile,
            (320, 568)
        );
        assert_eq!(
            Trickplay::new(10.0, (100, 1000), 0).expect("v").tile.1,
            MAX_TILE_HEIGHT
        );
        assert_eq!(Trickplay::new(10.0, (1000, 333), 0).expect("v").tile.1, 106);
        // Keyframes every 2 s: no tile closer than that; every 90 s: the longest interval.
        assert_eq!(
            Trickplay::new(60.0, (320, 240), 2000)
                .expect("v")
                .interval_ms,
            2000
        );
        assert_eq!(
            Trickplay::new(60.0, (320, 240), 2001)
                .expect("v")
                .interval_ms,
            5000
        );
        assert_eq!(
            Trickplay::new(60.0, (320, 240), 90_000)
                .expect("v")
                .interval_ms,
            60_000
        );
        assert!(Trickplay::new(0.0, (320, 240), 0).is_none());
        assert!(Trickplay::new(10.0, (0, 240), 0).is_none());
        assert!(Trickplay::new(f64::NAN, (320, 240), 0).is_none());
        // 10 000 hours: the longest interval, tiles capped.
        let huge = Trickplay::new(3.6e7, (320, 240), 0).expect("video");
        assert_eq!(huge.interval_ms, 60_000);
        assert_eq!(huge.tiles as u64, HARD_MAX_TILES);
    }

    #[test]
    fn playlists_cover_the_duration() {
        let tp = Trickplay::new(100.5, (320, 240), 0).expect("video");
        let pl = image_playlist(&tp, |n| format!("{n}.jpg"));
        assert!(pl.contains("#EXT-X-IMAGES-ONLY\n"), "{pl}");
        assert!(pl.contains("#EXTINF:100,\n#EXT-X-TILES:RESOLUTION=320x240,LAYOUT=10x10,DURATION=1.000\n0.jpg\n"), "{pl}");
        assert!(pl.contains("#EXTINF:0.5,\n#EXT-X-TILES:RESOLUTION=320x240,LAYOUT=10x10,DURATION=1.000\n1.jpg\n"), "{pl}");
        assert!(pl.ends_with("#EXT-X-ENDLIST\n"));
        let v = vtt(&tp, |n| format!("{n}.jpg"));
        assert!(
            v.starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:01.000\n0.jpg#xywh=0,0,320,240\n"),
            "{v}"
        );
        assert!(
            v.contains("00:00:11.000 --> 00:00:12.000\n0.jpg#xywh=320,240,320,240\n"),
            "{v}"
        );
        assert!(
            v.ends_with("00:01:40.000 --> 00:01:40.500\n1.jpg#xywh=0,0,320,240\n"),
            "{v}"
        );
        let mut m = String::new();
        image_stream_inf(&mut m, &tp, 100_000, "trickplay/index.m3u8");
        assert_eq!(
            m,
            "#EXT-X-IMAGE-STREAM-INF:BANDWIDTH=8000,RESOLUTION=320x240,CODECS=\"jpeg\",URI=\"trickplay/index.m3u8\"\n"
        );
    }
}
