//! Audio segments on a frame grid.
//!
//! An audio segment can only begin and end between frames: 1024 samples for AAC (copied or
//! encoded), the codec's own constant frame for a track copied in its codec (AC-3 1536, MP3
//! 1152, Opus 960, a FLAC block). Below, `F` is that frame and 1024 the AAC example.
//! Each audio rendition therefore gets its own segment list, derived from the video plan: segment
//! `n` holds the grid frames `[K(n), K(n+1))`, where `K(n)` is the frame boundary nearest to the
//! video boundary `n` (so audio and video segment edges differ by at most half a frame, ~10.7 ms
//! at 48 kHz, which keeps players that seek onto a boundary happy).
//!
//! The grid is absolute: frame `k` starts at sample `origin + k·F` of the output rate, with
//! the same origin for every segment. So segment `n+1` starts exactly where `n` ends — by
//! construction, whichever instance makes them and in whatever order — and the EXTINF of every
//! audio segment is `frames · F / rate` exactly.
//!
//! - Copied audio (AAC or its own codec): the origin is the source track's first frame, so source frames sit on the
//!   grid (frame `k` is the source frame whose timestamp rounds to slot `k`).
//! - Transcoded audio: the origin is 0 (sample 0 of the source timeline).
//!
//! Output times are source sample times minus the grid frame boundary nearest to the plan's
//! [`crate::Timeline`] origin, so every rendition presents from 0; audio before it (AAC
//! priming, a TS whose audio leads the first picture) is not played.

use crate::{playlist, Plan, SpanIndex};
use probe::{ByteRange, MediaIndex};
use serde::{Deserialize, Serialize};

/// `v · num / den`, rounded to nearest: [`probe::time::rescale`], re-exported for the
/// planner's callers.
pub use probe::time::rescale;

/// Samples in one AAC-LC frame.
pub const AAC_FRAME: i64 = 1024;

/// Serde default of [`AudioPlan::frame`] (plans cached before it existed were AAC).
fn aac_frame() -> u32 {
    AAC_FRAME as u32
}

/// One audio segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioSegment {
    /// Position in the playlist (0-based), the same as the video segment it pairs with.
    pub index: u32,
    /// First grid frame (absolute: frame `k` starts at `origin + k·frame`).
    pub first_frame: i64,
    /// Number of frames.
    pub frames: u32,
    /// Output time of the first sample (`origin + first_frame·frame − timeline_origin`, at
    /// [`AudioPlan::rate`]): the tfdt.
    pub start: i64,
    /// `frames · frame / rate`: the EXTINF.
    pub duration: f64,
    /// The source bytes holding the frames (with the requested pre- and post-roll).
    pub ranges: Vec<ByteRange>,
}

/// The audio segments of one audio rendition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioPlan {
    /// Output sample rate: ticks per second of [`AudioSegment::start`].
    pub rate: u32,
    /// Samples per frame of the grid ([`AudioGrid::frame`]).
    #[serde(default = "aac_frame")]
    pub frame: u32,
    /// Source sample of frame 0.
    pub origin: i64,
    /// Source sample presented at output time 0: the grid frame boundary nearest to the plan's
    /// timeline origin.
    pub timeline_origin: i64,
    /// `EXT-X-TARGETDURATION`.
    pub target_duration: u64,
    /// Contiguous segments, one per video segment.
    pub segments: Vec<AudioSegment>,
}

/// Where audio rendition frames come from, for [`audio_plan`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AudioGrid {
    /// Output sample rate.
    pub rate: u32,
    /// Samples per frame: 1024 for AAC (copied or encoded); for a codec copied as it is, its
    /// own constant frame (1536 for AC-3, 1152 for MP3, 960 for 20 ms Opus, FLAC's block).
    pub frame: u32,
    /// Sample (at `rate`) where frame 0 starts.
    pub origin: i64,
    /// Frames of source needed before a segment's first frame (encoder pre-roll); 0 for
    /// passthrough.
    pub preroll_frames: u32,
    /// Frames of source needed after a segment's last frame (encoder look-ahead).
    pub postroll_frames: u32,
}

impl AudioGrid {
    /// The grid of a copied track with `frame` samples per frame: frame 0 at the track's first
    /// frame (`start`, in `timescale` ticks).
    pub fn passthrough(rate: u32, frame: u32, start: i64, timescale: u32) -> AudioGrid {
        AudioGrid {
            rate,
            frame,
            origin: rescale(start, i64::from(rate), i64::from(timescale.max(1))),
            preroll_frames: 0,
            postroll_frames: 0,
        }
    }
}

/// The audio segments pairing with the video `plan` of `index` on `grid`.
///
/// One segment per video segment, so as bounded as the plan; O(n log n) in spans (one
/// [`SpanIndex`] for all segments). Frame and tick arithmetic saturates: an absurd `origin`
/// gives a useless plan, never an overflow.
pub fn audio_plan(index: &MediaIndex, plan: &Plan, grid: &AudioGrid) -> AudioPlan {
    let rate = i64::from(grid.rate.max(1));
    let frame = i64::from(grid.frame.max(1));
    let ts = i64::from(plan.timescale.max(1));
    // Grid frame nearest to a video boundary (in plan ticks).
    let slot = |t: i64| {
        let s = rescale(t, rate, ts).saturating_sub(grid.origin);
        s.div_euclid(frame) + i64::from(s.rem_euclid(frame) * 2 >= frame)
    };
    let mut bounds: Vec<i64> = Vec::with_capacity(plan.segments.len() + 1);
    for seg in &plan.segments {
        bounds.push(slot(seg.start));
    }
    if let Some(last) = plan.segments.last() {
        bounds.push(slot(last.end));
    }
    // Never before the timeline origin (output time 0: tfdt is unsigned), and strictly
    // increasing (a segment has at least one frame). A copied track that starts after the
    // video starts with its first frame repeated (the pipeline fills missing leading slots), so
    // both start together.
    // Output time 0 is the grid frame boundary nearest to the timeline origin: the first
    // audio frame presents at exactly 0, like the first video frame (players align the tracks
    // by their first times: hls.js seeks over a "hole" when they differ), at the cost of up to
    // half a frame (10.7 ms at 48 kHz) of A/V offset, far below what anyone hears.
    let origin_frame = {
        let s = plan
            .timeline
            .origin_in(grid.rate.max(1))
            .saturating_sub(grid.origin);
        s.div_euclid(frame) + i64::from(s.rem_euclid(frame) * 2 >= frame)
    };
    let timeline_origin = grid
        .origin
        .saturating_add(origin_frame.saturating_mul(frame));
    if let Some(b) = bounds.first_mut() {
        *b = (*b).max(origin_frame);
    }
    for i in 1..bounds.len() {
        if bounds[i] <= bounds[i - 1] {
            bounds[i] = bounds[i - 1].saturating_add(1);
        }
    }
    // Sample of frame `k`.
    let frame_sample = |k: i64| grid.origin.saturating_add(k.saturating_mul(frame));
    let frame_ticks = |k: i64| rescale(frame_sample(k), ts, rate);
    let spans = SpanIndex::new(index);
    let segments: Vec<AudioSegment> = bounds
        .windows(2)
        .enumerate()
        .map(|(i, w)| {
            let (k0, k1) = (w[0], w[1]);
            let frames = u32::try_from(k1.saturating_sub(k0)).unwrap_or(u32::MAX);
            // One frame of margin on each side for timestamps that round (Matroska's ms).
            let a = frame_ticks(k0.saturating_sub(i64::from(grid.preroll_frames) + 1));
            let b = frame_ticks(k1.saturating_add(i64::from(grid.postroll_frames) + 1));
            AudioSegment {
                index: u32::try_from(i).unwrap_or(u32::MAX),
                first_frame: k0,
                frames,
                start: frame_sample(k0).saturating_sub(timeline_origin),
                duration: (i128::from(k1) - i128::from(k0)) as f64 * frame as f64 / rate as f64,
                ranges: spans.ranges(a, b),
            }
        })
        .collect();
    let target_duration = segments
        .iter()
        .map(|s| s.duration.round() as u64)
        .max()
        .unwrap_or(1)
        .max(1);
    AudioPlan {
        rate: grid.rate,
        frame: grid.frame.max(1),
        origin: grid.origin,
        timeline_origin,
        target_duration,
        segments,
    }
}

impl AudioPlan {
    /// The media playlist (same shape as [`Plan::media_playlist`], by [`playlist::media`]).
    pub fn media_playlist(&self, init_uri: &str, segment_uri: impl Fn(u32) -> String) -> String {
        playlist::of_plan(
            self.target_duration,
            Some(init_uri),
            self.segments.iter().map(|s| (s.index, s.duration)),
            segment_uri,
        )
    }

    /// Sum of all EXTINFs, in seconds.
    pub fn total_secs(&self) -> f64 {
        self.segments.iter().map(|s| s.duration).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{plan, PlanOptions};
    use probe::{Codec, Container, Keyframe, Span, Track, TrackKind};

    /// A 60 s video at 25 fps (timescale 1000) with keyframes every 2 s and one audio track.
    fn index() -> MediaIndex {
        let track = |id, kind, codec| Track {
            id,
            kind,
            codec,
            timescale: 1000,
            duration: Some(60_000),
            language: None,
            title: None,
            default: true,
            forced: false,
            codec_private: vec![],
            video: None,
            audio: None,
            start: None,
            default_duration_ns: None,
            codec_delay_ns: None,
        };
        MediaIndex {
            container: Container::Matroska,
            file_size: 6_000_000,
            timescale: 1000,
            start: 0,
            duration: 60_000,
            tracks: vec![
                track(1, TrackKind::Video, Codec::H264),
                track(2, TrackKind::Audio, Codec::Aac),
            ],
            main_track: Some(0),
            keyframes: (0..30)
                .map(|i| Keyframe {
                    pts: i * 2000,
                    offset: i as u64 * 200_000,
                })
                .collect(),
            spans: (0..30)
                .map(|i| Span {
                    time: i * 2000,
                    end_time: i * 2000 + 2000,
                    start: i as u64 * 200_000,
                    end: i as u64 * 200_000 + 200_000,
                })
                .collect(),
            interleave: 500,
            moov: None,
            format: Default::default(),
        }
    }

    #[test]
    fn segments_tile_the_grid_and_follow_video_boundaries() {
        let idx = index();
        let p = plan(&idx, &PlanOptions::default()).unwrap();
        let a = audio_plan(&idx, &p, &AudioGrid::passthrough(48_000, 1024, 0, 1000));
        assert_eq!(a.segments.len(), p.segments.len());
        let mut next = a.segments[0].first_frame;
        assert_eq!(next, 0);
        for (s, v) in a.segments.iter().zip(&p.segments) {
            assert_eq!(s.first_frame, next, "joins are exact");
            assert_eq!(s.start, a.origin + s.first_frame * AAC_FRAME);
            next = s.first_frame + i64::from(s.frames);
            // Edges within half a frame of the video boundary.
            let video_start = v.start as f64 / 1000.0;
            let audio_start = s.start as f64 / 48_000.0;
            assert!((video_start - audio_start).abs() <= 512.0 / 48_000.0 + 1e-9);
            assert!((s.duration - s.frames as f64 * 1024.0 / 48_000.0).abs() < 1e-12);
            assert!(!s.ranges.is_empty());
        }
        let total = a.total_secs();
        assert!((total - 60.0).abs() <= 512.0 / 48_000.0, "{total}");
    }

    #[test]
    fn transcode_grid_has_preroll_in_ranges_and_origin_zero() {
        let idx = index();
        let p = plan(&idx, &PlanOptions::default()).unwrap();
        let grid = AudioGrid {
            frame: 1024,
            rate: 48_000,
            origin: 0,
            preroll_frames: 8,
            postroll_frames: 4,
        };
        let a = audio_plan(&idx, &p, &grid);
        // Segment 1 starts near 6 s; its range must begin at or before the cluster holding
        // 6 s − 9 frames (≈ 5.81 s), i.e. the span starting at 4 s.
        let s1 = &a.segments[1];
        assert!(s1.ranges[0].start <= 400_000, "{:?}", s1.ranges);
    }

    #[test]
    fn a_passthrough_origin_off_the_zero_grid_is_respected() {
        let idx = index();
        let p = plan(&idx, &PlanOptions::default()).unwrap();
        // Source audio starting 7 ms after the video: its grid keeps the source frames (frame 0
        // at sample 336); output time 0 is the grid boundary nearest the video's first frame
        // (less than half a frame from it), so the first audio frame presents at 0.
        let a = audio_plan(&idx, &p, &AudioGrid::passthrough(48_000, 1024, 7, 1000));
        assert_eq!(a.origin, 336);
        assert_eq!(a.timeline_origin, 336);
        assert_eq!(a.segments[0].start, 0);
        // 30 ms late (more than half a frame): frame 0 is a frame after output 0; the leading
        // slot is filled (the pipeline repeats the first frame) so both start at 0.
        let late = audio_plan(&idx, &p, &AudioGrid::passthrough(48_000, 1024, 30, 1000));
        assert_eq!(late.timeline_origin, 1440 - 1024);
        assert_eq!(late.segments[0].first_frame, -1);
        assert_eq!(late.segments[0].start, 0);
        for w in a.segments.windows(2) {
            assert_eq!(w[0].start + i64::from(w[0].frames) * AAC_FRAME, w[1].start);
        }
    }

    #[test]
    fn rescale_rounds_to_nearest() {
        assert_eq!(rescale(1, 48_000, 1000), 48);
        assert_eq!(rescale(21, 1000, 48_000), 0);
        assert_eq!(rescale(-1, 1, 2), -1);
        assert_eq!(rescale(3, 1, 2), 2);
    }
}
