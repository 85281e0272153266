//! # plan — segment boundaries that never lie
//!
//! `MediaIndex` + [`PlanOptions`] → [`Plan`], pure and deterministic: the same index and options
//! always give the same plan, on any instance, which is what lets any segment be made on its own.
//!
//! - **Passthrough video** ([`VideoMode::Passthrough`]): boundaries are source keyframes, merged
//!   up to the target duration. Every segment lies between 0.5× and 2× the target, except where
//!   the source GOP itself is longer (then the segment is that GOP and `EXT-X-TARGETDURATION` says
//!   so) and the last one, which absorbs a tail rather than leave a sliver under 0.5 s.
//! - **Transcoded video** ([`VideoMode::Transcode`]): the same keyframe boundaries when they keep
//!   to those rules (so ladder rungs and the passthrough rendition switch cleanly), else a fixed
//!   grid on frame boundaries where the encoder will force keyframes.
//! - Audio-only sources get a grid on the AAC frame grid (1024 samples).
//! - With [`PlanOptions::lead_secs`] the first [`LEAD_SEGMENTS`] segments aim at that shorter
//!   target (where the first picture is encoded, its first segment is what the first frame
//!   waits for); the rules above hold for each segment against its own target.
//!
//! Each [`Segment`] carries exact start/end in the index timescale, its EXTINF (the exact duration
//! in seconds), and the byte ranges of the source it needs — normally one range, so the pipeline
//! fetches a segment with one request.
//!
//! Every playlist text (media playlists of video, audio and subtitle renditions, the
//! multivariant playlist) is written by [`playlist`] (RFC 8216), with one EXTINF form for all
//! renditions. [`PLAN_VERSION`] goes into cache keys; bump it whenever a plan for the same index,
//! or the playlist text written from it, could change.
//!
//! The index is hostile input: its claims are checked against [`limits`] before anything is
//! allocated ([`PlanError::Limit`]), and planning is O(n log n) in keyframes and spans
//! ([`SpanIndex`]).

mod audio;
pub mod dash;
#[cfg(test)]
mod hostile_tests;
pub mod limits;
pub mod playlist;
mod spans;
pub mod timeline;
pub mod trickplay;

pub use spans::SpanIndex;
pub use timeline::{Cadence, Timeline};

pub use audio::{audio_plan, rescale, AudioGrid, AudioPlan, AudioSegment, AAC_FRAME};
pub mod renditions;
pub use renditions::{
    bandwidth_estimate, copied_audio, flac_stream_info, master_playlist, renditions, AudioOutput,
    Caps, CopiedAudio, Rendition, RenditionKind, RenditionOptions, VideoOutput,
};

use std::fmt::Write as _;

use probe::{ByteRange, MediaIndex, TrackKind};
use serde::{Deserialize, Serialize};

/// Version of the planning rules and of the playlist text written from a plan; part of every
/// cache key and ETag derived from a plan.
///
/// 3: subtitle playlists are written by [`playlist::media`] like the others (EXTINF as the
/// video's, no EXT-X-MEDIA-SEQUENCE:0, the header in the same order).
/// 4: one output [`Timeline`]: time 0 at the first video frame (not the earliest track), EXTINF
/// in output ticks (video on its frame cadence).
/// 5: the multivariant playlist of a video lists its trick-play images
/// (`EXT-X-IMAGE-STREAM-INF`, [`trickplay`]).
/// 6: [`PlanOptions::lead_secs`]: shorter leading segments where the first picture is encoded.
pub const PLAN_VERSION: u32 = 6;

/// How many segments at the start of a plan aim at [`PlanOptions::lead_secs`] instead of the
/// target.
pub const LEAD_SEGMENTS: usize = 2;

/// Spans closer than this are fetched as one range (cheaper than a second request).
pub const MERGE_GAP: u64 = 1 << 20;

/// The last segment absorbs a tail shorter than this (seconds).
pub const MIN_TAIL_SECS: f64 = 0.5;

/// How the video of a rendition is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum VideoMode {
    /// Source samples are copied: boundaries must be source keyframes.
    #[default]
    Passthrough,
    /// Video is re-encoded: keyframes can be forced anywhere.
    Transcode,
}

/// Planner settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PlanOptions {
    /// Target segment duration in seconds (default 6).
    pub target_secs: f64,
    /// Passthrough or transcode.
    pub mode: VideoMode,
    /// Extra media included on both sides of a segment's byte range, in seconds (for AAC
    /// pre-roll when transcoding). 0 by default: spans overlapping the segment already include
    /// the chunk/cluster/PES run that straddles each boundary.
    pub range_slack_secs: f64,
    /// The target of the first [`LEAD_SEGMENTS`] segments, in seconds; 0 (the default): the
    /// target throughout. Where the picture a player starts with is encoded, its first segment
    /// is what the first frame waits for: a 2 s one encodes in a third of a 6 s one's time.
    /// On keyframe boundaries it is a target like the other (the nearest keyframe); on a grid
    /// the first target's span is cut into lead-long pieces (at most [`LEAD_SEGMENTS`] cuts)
    /// and the grid after it is the one without a lead.
    #[serde(default)]
    pub lead_secs: f64,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            target_secs: 6.0,
            mode: VideoMode::Passthrough,
            range_slack_secs: 0.0,
            lead_secs: 0.0,
        }
    }
}

/// The target of each segment, in ticks: `lead` for the first [`LEAD_SEGMENTS`] when `lead`
/// is set, then `target`.
#[derive(Debug, Clone, Copy)]
struct Targets {
    lead: i64,
    target: i64,
}

impl Targets {
    /// The target of segment `n`.
    fn of(&self, n: usize) -> i64 {
        if self.lead > 0 && n < LEAD_SEGMENTS {
            self.lead
        } else {
            self.target
        }
    }
}

/// How the boundaries were chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Boundaries {
    /// On source keyframes.
    Keyframes,
    /// On a fixed grid (keyframes forced by the encoder).
    Grid,
}

/// One media segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// Position in the playlist (0-based); the file is `{index}.m4s`.
    pub index: u32,
    /// Planned start, in [`Plan::timescale`] ticks (source presentation time).
    pub start: i64,
    /// Planned end (exclusive), in ticks; the next segment's start.
    pub end: i64,
    /// The EXTINF: the segment's length on the output timeline,
    /// `(timeline.video(end) − timeline.video(start)) / timeline.timescale`.
    pub duration: f64,
    /// The bytes of the source this segment needs, merged; normally exactly one range.
    pub ranges: Vec<ByteRange>,
}

/// The plan of a source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// [`PLAN_VERSION`] when made.
    pub version: u32,
    /// Ticks per second of segment times (the index timescale).
    pub timescale: u32,
    /// Source time → output time: the origin every rendition presents from 0, and the clock
    /// video is written on.
    pub timeline: Timeline,
    /// Options it was made with.
    pub options: PlanOptions,
    /// How the boundaries were chosen.
    pub boundaries: Boundaries,
    /// `EXT-X-TARGETDURATION`: the largest EXTINF rounded to the nearest integer (RFC 8216
    /// §4.3.3.1), at least 1.
    pub target_duration: u64,
    /// The segments, contiguous: each starts where the previous ends.
    pub segments: Vec<Segment>,
}

/// Why no plan could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// Nothing to play (zero duration).
    #[error("the source has no duration")]
    Empty,
    /// Passthrough needs keyframes and the index has none for the video track.
    #[error("no keyframe index for the video track; it can only be transcoded")]
    NoKeyframes,
    /// Options out of range.
    #[error("bad plan options: {0}")]
    BadOptions(String),
    /// A claim of the index exceeds one of the [`limits`].
    #[error("{what} ({found}) is over the limit ({limit})")]
    Limit {
        /// What was over (`duration in seconds`, `segments`, …).
        what: &'static str,
        /// The claim, or a bound of it (`more than 262144`).
        found: String,
        /// The limit, in the same unit.
        limit: u64,
    },
}

/// Makes the plan for `index`.
pub fn plan(index: &MediaIndex, opts: &PlanOptions) -> Result<Plan, PlanError> {
    if !(opts.target_secs.is_finite() && (0.5..=60.0).contains(&opts.target_secs)) {
        return Err(PlanError::BadOptions(format!(
            "target {} s is outside 0.5..=60",
            opts.target_secs
        )));
    }
    if opts.range_slack_secs > limits::MAX_RANGE_SLACK_SECS {
        return Err(PlanError::BadOptions(format!(
            "range slack {} s is over {} s",
            opts.range_slack_secs,
            limits::MAX_RANGE_SLACK_SECS
        )));
    }
    if index.duration == 0 || index.timescale == 0 {
        return Err(PlanError::Empty);
    }
    check_claims(index)?;
    let ts = i64::from(index.timescale);
    // The first segment starts at the output origin (see `timeline`): the first video frame,
    // or an audio track's start when it leads the video by more than a second.
    let end = index
        .start
        .saturating_add(i64::try_from(index.duration).unwrap_or(i64::MAX));
    let timeline = Timeline::of(index);
    let start = timeline.origin.min(end);
    // An audio track starting long before the video (0 against a TS video at 26 h) stretches
    // the plan past the duration the index claims: the cap holds for what is planned.
    if u128::from(end.abs_diff(start)) > u128::from(limits::MAX_DURATION_SECS) * ts as u128 {
        return Err(PlanError::Limit {
            what: "duration in seconds from the earliest track",
            found: (end.abs_diff(start) / ts.unsigned_abs()).to_string(),
            limit: limits::MAX_DURATION_SECS,
        });
    }
    let target = secs_to_ticks(opts.target_secs, ts);
    let lead = if opts.lead_secs > 0.0 && opts.lead_secs < opts.target_secs {
        secs_to_ticks(opts.lead_secs, ts).max(1)
    } else {
        0
    };
    let targets = Targets { lead, target };
    let min_tail = secs_to_ticks(MIN_TAIL_SECS, ts);

    let main_is_video = index.main().is_some_and(|t| t.kind == TrackKind::Video);
    // Sorted and without repeats, as `keyframe_cuts` needs (the probe lists keyframes in
    // presentation order; a hostile or corrupt index is not trusted to).
    let mut keyframes: Vec<i64> = index
        .keyframes
        .iter()
        .map(|k| k.pts)
        .filter(|&p| p > start && p < end)
        .collect();
    keyframes.sort_unstable();
    keyframes.dedup();

    let (cuts, kind) = if main_is_video && !index.keyframes.is_empty() {
        let cuts = keyframe_cuts(start, end, &keyframes, targets, min_tail)?;
        if opts.mode == VideoMode::Transcode && !within_rules(start, end, &cuts, targets, min_tail)
        {
            (
                grid_cuts(start, end, targets, quantum(index), min_tail)?,
                Boundaries::Grid,
            )
        } else {
            (cuts, Boundaries::Keyframes)
        }
    } else if main_is_video && opts.mode == VideoMode::Passthrough {
        return Err(PlanError::NoKeyframes);
    } else {
        (
            grid_cuts(start, end, targets, quantum(index), min_tail)?,
            Boundaries::Grid,
        )
    };

    let slack = secs_to_ticks(opts.range_slack_secs.max(0.0), ts);
    let spans = SpanIndex::new(index);
    let mut segments = Vec::with_capacity(cuts.len() + 1);
    let mut a = start;
    for (i, &b) in cuts.iter().chain(std::iter::once(&end)).enumerate() {
        segments.push(Segment {
            index: u32::try_from(i).unwrap_or(u32::MAX),
            start: a,
            end: b,
            duration: timeline.secs(timeline.video(b) - timeline.video(a)),
            ranges: spans.ranges(a - slack, b + slack),
        });
        a = b;
    }
    let target_duration = segments
        .iter()
        .map(|s| s.duration.round() as u64)
        .max()
        .unwrap_or(1)
        .max(1);
    Ok(Plan {
        version: PLAN_VERSION,
        timescale: index.timescale,
        timeline,
        options: *opts,
        boundaries: kind,
        target_duration,
        segments,
    })
}

/// Compares the duration and start the index claims with [`limits`], in exact integer
/// arithmetic (a timescale of 1 with 10^15 ticks and one of 2^32 − 1 are both handled).
fn check_claims(index: &MediaIndex) -> Result<(), PlanError> {
    let ts = u128::from(index.timescale.max(1));
    let duration = u128::from(index.duration);
    if duration > u128::from(limits::MAX_DURATION_SECS) * ts {
        return Err(PlanError::Limit {
            what: "duration in seconds",
            found: duration.div_ceil(ts).to_string(),
            limit: limits::MAX_DURATION_SECS,
        });
    }
    if u128::from(index.start.unsigned_abs()) > u128::from(limits::MAX_START_SECS) * ts {
        return Err(PlanError::Limit {
            what: "distance of the start from 0 in seconds",
            found: (i128::from(index.start) / ts as i128).to_string(),
            limit: limits::MAX_START_SECS,
        });
    }
    Ok(())
}

/// The error for a plan that would have more than [`limits::MAX_SEGMENTS`] segments.
fn too_many_segments(found: String) -> PlanError {
    PlanError::Limit {
        what: "segments",
        found,
        limit: limits::MAX_SEGMENTS as u64,
    }
}

fn secs_to_ticks(secs: f64, ts: i64) -> i64 {
    (secs * ts as f64).round() as i64
}

/// Interior boundaries on keyframes (`kf` sorted, strictly inside `(start, end)`).
///
/// O(n) in keyframes: each step moves past at least half a target, and a keyframe is looked at
/// only in the windows `(cur, cur + 2·target]` that hold it (at most four).
fn keyframe_cuts(
    start: i64,
    end: i64,
    kf: &[i64],
    targets: Targets,
    min_tail: i64,
) -> Result<Vec<i64>, PlanError> {
    let mut cuts = Vec::new();
    let mut cur = start;
    let mut i = 0; // first keyframe > cur
    loop {
        while i < kf.len() && kf[i] <= cur {
            i += 1;
        }
        if i >= kf.len() {
            break;
        }
        let target = targets.of(cuts.len());
        let lo = cur + target / 2;
        let hi = cur + 2 * target;
        let rest = end - cur;
        // The end itself is the boundary when what is left is about one target long (within
        // 1/12: 6.5 s for 6 s, which still rounds to the same TARGETDURATION).
        if rest <= target + target / 12 {
            break;
        }
        // Aim at the target; when at most two targets are left, split them evenly so the last
        // segment is neither a sliver nor stretched (which would raise TARGETDURATION).
        let want = if rest <= 2 * target {
            cur + rest / 2
        } else {
            cur + target
        };
        // Keyframe in [lo, hi] closest to `want` (earlier wins a tie).
        let mut best: Option<i64> = None;
        for &k in kf[i..].iter().take_while(|&&k| k <= hi) {
            if k >= lo && best.is_none_or(|b| (k - want).abs() < (b - want).abs()) {
                best = Some(k);
            }
        }
        let next = match best {
            Some(k) => k,
            // Nothing in the window: the first keyframe past lo (a GOP longer than the window),
            // or, when every remaining keyframe is before lo, the end.
            None => match kf[i..].iter().find(|&&k| k >= lo) {
                Some(&k) => k,
                None => break,
            },
        };
        if end - next < min_tail.max(target / 2) && rest <= 2 * target {
            break; // the tail would be too short: end here instead
        }
        if end - next < min_tail {
            break;
        }
        // The cuts and the end make the segments.
        if cuts.len() + 2 > limits::MAX_SEGMENTS {
            return Err(too_many_segments(format!(
                "more than {}",
                limits::MAX_SEGMENTS
            )));
        }
        cuts.push(next);
        cur = next;
    }
    Ok(cuts)
}

/// Whether keyframe cuts keep every segment in [0.5, 2] × its target (last: ≥ `min_tail`).
fn within_rules(start: i64, end: i64, cuts: &[i64], targets: Targets, min_tail: i64) -> bool {
    let mut a = start;
    let n = cuts.len();
    for (i, &b) in cuts.iter().chain(std::iter::once(&end)).enumerate() {
        let target = targets.of(i);
        let d = b - a;
        let last = i == n;
        if d > 2 * target || (!last && d < target / 2) || (last && d < min_tail && n > 0) {
            return false;
        }
        a = b;
    }
    true
}

/// The tick quantum grid boundaries snap to: one video frame, or one AAC frame (1024 samples).
fn quantum(index: &MediaIndex) -> i64 {
    let Some(main) = index.main() else { return 1 };
    let ts = i64::from(index.timescale);
    match main.kind {
        TrackKind::Video => main
            .video
            .as_ref()
            .and_then(|v| v.frame_rate)
            .filter(|r| r.num > 0 && r.den > 0)
            .and_then(|r| {
                // In i128: a 32-bit timescale times a 32-bit denominator overflows i64.
                let q = i128::from(ts) * i128::from(r.den);
                let num = i128::from(r.num);
                (q % num == 0)
                    .then(|| i64::try_from(q / num).ok())
                    .flatten()
            })
            .unwrap_or(1),
        TrackKind::Audio => {
            let rate = main.audio.as_ref().map_or(0, |a| i64::from(a.sample_rate));
            if rate > 0 && ts % rate == 0 {
                1024 * (ts / rate)
            } else {
                1
            }
        }
        _ => 1,
    }
}

/// Interior boundaries on a fixed grid of `target`, snapped to multiples of `q` from `start`.
///
/// The number of grid points is known before the loop: more than [`limits::MAX_SEGMENTS`] is an
/// error, so the loop and its allocation are bounded whatever `end` claims. In i128, where a
/// frame quantum near `i64::MAX` cannot overflow.
fn grid_cuts(
    start: i64,
    end: i64,
    targets: Targets,
    q: i64,
    min_tail: i64,
) -> Result<Vec<i64>, PlanError> {
    let q = i128::from(q.max(1));
    let snap = |t: i64| ((i128::from(t) + q / 2) / q).max(1) * q;
    let step = snap(targets.target);
    let lead = if targets.lead > 0 {
        snap(targets.lead)
    } else {
        0
    };
    let (start, end, min_tail) = (i128::from(start), i128::from(end), i128::from(min_tail));
    // Grid points strictly inside (start, end): at most those of the step, plus the leading
    // points.
    let points = if end > start {
        (end - start - 1) / step + LEAD_SEGMENTS as i128
    } else {
        0
    };
    if points + 1 > limits::MAX_SEGMENTS as i128 {
        return Err(too_many_segments((points + 1).to_string()));
    }
    let mut cuts = Vec::with_capacity(usize::try_from(points).unwrap_or(0));
    // The lead splits the first step: `lead` apart, never a sliver before the next point; the
    // grid after it is the plan's without a lead.
    let mut t = start + lead;
    while lead > 0 && cuts.len() < LEAD_SEGMENTS && t < start + step && t < end {
        if (start + step).min(end) - t < min_tail.max(lead / 2) {
            break;
        }
        let Ok(cut) = i64::try_from(t) else { break };
        cuts.push(cut);
        t += lead;
    }
    let mut t = start + step;
    while t < end {
        if end - t < min_tail.max(step / 2) {
            break;
        }
        let Ok(cut) = i64::try_from(t) else { break };
        cuts.push(cut);
        t += step;
    }
    Ok(cuts)
}

/// The byte ranges holding media with times overlapping `[t0, t1)`, merged across small gaps.
///
/// Spans overlapping the window count whole. When the index says packets may be stored up to
/// `interleave` ticks outside their span's times (Matroska clusters), the spans just before and
/// just after the window also count: the one before whole (a demuxer can only start reading at a
/// span's start, where the cluster's timestamp is), the one after up to the byte position
/// linearly interpolated at `t1 + interleave` (a frame cut there is dropped by the demuxer).
///
/// Every range returned starts at a span start, so it can be demuxed on its own.
///
/// One scan of every span: right for a single window. For many windows (a whole plan) build a
/// [`SpanIndex`] once; its answers are the same.
pub fn ranges_for(index: &MediaIndex, t0: i64, t1: i64) -> Vec<ByteRange> {
    let m = i64::try_from(index.interleave).unwrap_or(0);
    let overlaps =
        |s: &probe::Span, a: i64, b: i64| s.end_time > a && s.time < b && s.end > s.start;
    let mut parts: Vec<ByteRange> = index
        .spans
        .iter()
        .filter(|s| overlaps(s, t0, t1))
        .map(|s| ByteRange::new(s.start, s.end))
        .collect();
    if m > 0 {
        let (before, after) = (t0.saturating_sub(m), t1.saturating_add(m));
        for s in &index.spans {
            if overlaps(s, t0, t1) {
                continue;
            }
            if overlaps(s, before, t0) {
                parts.push(ByteRange::new(s.start, s.end));
            }
            if overlaps(s, t1, after) {
                parts.push(ByteRange::new(s.start, interpolate(s, after)));
            }
        }
    }
    merge_parts(parts)
}

/// Sorts byte ranges and merges those closer than [`MERGE_GAP`].
pub(crate) fn merge_parts(mut parts: Vec<ByteRange>) -> Vec<ByteRange> {
    parts.sort_by_key(|r| (r.start, r.end));
    let mut out: Vec<ByteRange> = Vec::new();
    for r in parts {
        match out.last_mut() {
            Some(last) if r.start <= last.end.saturating_add(MERGE_GAP) => {
                last.end = last.end.max(r.end);
            }
            _ => out.push(r),
        }
    }
    out
}

/// The byte of span `s` at time `t`, assuming a constant byte rate inside the span (for a
/// span with `end > start`; never past `s.end`).
pub(crate) fn interpolate(s: &probe::Span, t: i64) -> u64 {
    if t <= s.time || s.end_time <= s.time {
        return s.start;
    }
    if t >= s.end_time {
        return s.end;
    }
    // Differences in i128: times anywhere in i64 cannot overflow.
    let frac = (i128::from(t) - i128::from(s.time)) as f64
        / (i128::from(s.end_time) - i128::from(s.time)) as f64;
    let len = s.end.saturating_sub(s.start);
    s.start
        .saturating_add((len as f64 * frac).ceil() as u64)
        .min(s.end.max(s.start))
}

impl Plan {
    /// Sum of all EXTINFs, in seconds.
    pub fn total_secs(&self) -> f64 {
        self.segments.iter().map(|s| s.duration).sum()
    }

    /// The segment holding presentation time `secs` (clamped to the first/last).
    pub fn segment_at(&self, secs: f64) -> Option<&Segment> {
        let first = self.segments.first()?;
        let t = first
            .start
            .saturating_add((secs * f64::from(self.timescale)).round() as i64);
        // Segments are contiguous, so their ends increase: the first ending after `t`.
        let i = self.segments.partition_point(|s| s.end <= t);
        self.segments.get(i).or(self.segments.last())
    }

    /// The fMP4 media playlist (RFC 8216 §4.3.3, written by [`playlist::media`]): VOD,
    /// VERSION 7, INDEPENDENT-SEGMENTS, one EXT-X-MAP, every segment with its EXTINF, ENDLIST.
    /// URIs are relative.
    pub fn media_playlist(&self, init_uri: &str, segment_uri: impl Fn(u32) -> String) -> String {
        self.playlist(Some(init_uri), segment_uri)
    }

    /// The media playlist of a WebVTT subtitle rendition (RFC 8216 §3.5): the same boundaries
    /// and EXTINF lines as [`Plan::media_playlist`], no EXT-X-MAP.
    pub fn subtitle_playlist(&self, segment_uri: impl Fn(u32) -> String) -> String {
        self.playlist(None, segment_uri)
    }

    fn playlist(&self, init_uri: Option<&str>, segment_uri: impl Fn(u32) -> String) -> String {
        playlist::of_plan(
            self.target_duration,
            init_uri,
            self.segments.iter().map(|s| (s.index, s.duration)),
            segment_uri,
        )
    }

    /// A human-readable table (the CLI's `plan` output and `plan.txt`).
    pub fn table(&self) -> String {
        // ~60 bytes a row with one range.
        let mut s = String::with_capacity(128 + 64 * self.segments.len());
        let _ = writeln!(
            s,
            "plan v{}  timescale {}  boundaries {:?}  target {} s  segments {}  total {:.3} s",
            self.version,
            self.timescale,
            self.boundaries,
            self.target_duration,
            self.segments.len(),
            self.total_secs()
        );
        s.push_str("  seg     start_s       end_s    extinf  bytes\n");
        for seg in &self.segments {
            let _ = write!(
                s,
                "{:5} {:11.3} {:11.3} {:9.3}  ",
                seg.index,
                seg.start as f64 / f64::from(self.timescale),
                seg.end as f64 / f64::from(self.timescale),
                seg.duration,
            );
            for (i, r) in seg.ranges.iter().enumerate() {
                let sep = if i == 0 { "" } else { "," };
                let _ = write!(s, "{sep}{}-{}", r.start, r.end);
            }
            s.push('\n');
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use probe::{Codec, Container, Keyframe, Rational, Span, Track, VideoInfo};

    fn index(kf_secs: &[f64], dur: f64) -> MediaIndex {
        let ts = 1000;
        MediaIndex {
            container: Container::Mp4,
            file_size: 1_000_000,
            timescale: ts,
            start: 0,
            duration: (dur * 1000.0) as u64,
            tracks: vec![Track {
                id: 1,
                kind: TrackKind::Video,
                codec: Codec::H264,
                timescale: ts,
                duration: None,
                language: None,
                title: None,
                default: true,
                forced: false,
                codec_private: vec![],
                video: Some(VideoInfo {
                    width: 320,
                    height: 240,
                    frame_rate: Some(Rational { num: 25, den: 1 }),
                    ..VideoInfo::default()
                }),
                audio: None,
                start: Some(0),
                default_duration_ns: None,
                codec_delay_ns: None,
            }],
            main_track: Some(0),
            keyframes: kf_secs
                .iter()
                .enumerate()
                .map(|(i, &s)| Keyframe {
                    pts: (s * 1000.0).round() as i64,
                    offset: i as u64 * 1000,
                })
                .collect(),
            spans: kf_secs
                .iter()
                .enumerate()
                .map(|(i, &s)| Span {
                    time: (s * 1000.0).round() as i64,
                    end_time: kf_secs
                        .get(i + 1)
                        .map_or((dur * 1000.0).round() as i64, |&n| {
                            (n * 1000.0).round() as i64
                        }),
                    start: i as u64 * 1000,
                    end: (i as u64 + 1) * 1000,
                })
                .collect(),
            interleave: 0,
            moov: None,
            format: None,
        }
    }

    fn durations(p: &Plan) -> Vec<f64> {
        p.segments.iter().map(|s| s.duration).collect()
    }

    #[test]
    fn regular_gop_merges_to_target() {
        let kf: Vec<f64> = (0..30).map(|i| i as f64 * 2.0).collect();
        let p = plan(&index(&kf, 60.0), &PlanOptions::default()).unwrap();
        assert_eq!(durations(&p), vec![6.0; 10]);
        assert_eq!(p.target_duration, 6);
        assert_eq!(p.segments[1].ranges, vec![ByteRange::new(3000, 6000)]);
    }

    /// The leading segments aim at `lead_secs`: on keyframes every 2 s, 2 + 2 then 6 s; on a
    /// grid (keyframes 16 s apart, transcoded) the first 6 s in 2 s pieces, then the grid
    /// without a lead.
    #[test]
    fn leading_segments_aim_at_the_lead() {
        let kf: Vec<f64> = (0..30).map(|i| i as f64 * 2.0).collect();
        let lead = PlanOptions {
            lead_secs: 2.0,
            ..PlanOptions::default()
        };
        let p = plan(&index(&kf, 60.0), &lead).unwrap();
        // 56 s after the lead: 6 s segments, the last 8 s split evenly as without a lead.
        let mut want = vec![2.0, 2.0];
        want.extend([6.0; 8]);
        want.extend([4.0, 4.0]);
        assert_eq!(durations(&p), want);
        assert_eq!(p.target_duration, 6);
        let grid = PlanOptions {
            mode: VideoMode::Transcode,
            lead_secs: 2.0,
            ..PlanOptions::default()
        };
        let g = plan(&index(&[0.0, 16.0, 32.0, 48.0], 60.0), &grid).unwrap();
        assert_eq!(g.boundaries, Boundaries::Grid);
        // The lead splits the first 6 s; the grid after it is the one without a lead.
        assert_eq!(durations(&g), [&[2.0; 3][..], &[6.0; 9][..]].concat());
        assert!((g.total_secs() - 60.0).abs() < 1e-9);
        // No lead when it is not shorter than the target.
        let same = PlanOptions {
            lead_secs: 6.0,
            ..PlanOptions::default()
        };
        assert_eq!(
            durations(&plan(&index(&kf, 60.0), &same).unwrap()),
            vec![6.0; 10]
        );
    }

    #[test]
    fn tail_is_absorbed() {
        let kf: Vec<f64> = (0..31).map(|i| i as f64 * 2.0).collect();
        // 60.3 s: a keyframe at 60 would leave a 0.3 s sliver.
        let p = plan(&index(&kf, 60.3), &PlanOptions::default()).unwrap();
        let d = durations(&p);
        assert!(d.iter().all(|&x| x >= 0.5), "{d:?}");
        assert!((p.total_secs() - 60.3).abs() < 1e-9);
        assert!(d.last().copied().unwrap() <= 12.0);
    }

    #[test]
    fn long_gop_is_one_segment() {
        let p = plan(
            &index(&[0.0, 16.0, 32.0, 48.0], 60.0),
            &PlanOptions::default(),
        )
        .unwrap();
        assert_eq!(durations(&p), vec![16.0, 16.0, 16.0, 12.0]);
        assert_eq!(p.target_duration, 16);
        assert_eq!(p.boundaries, Boundaries::Keyframes);
        // Transcoding ignores keyframes that break the rules: a grid of whole frames.
        let opts = PlanOptions {
            mode: VideoMode::Transcode,
            ..PlanOptions::default()
        };
        let p = plan(&index(&[0.0, 16.0, 32.0, 48.0], 60.0), &opts).unwrap();
        assert_eq!(p.boundaries, Boundaries::Grid);
        assert_eq!(durations(&p), vec![6.0; 10]);
    }

    #[test]
    fn irregular_short_gops_stay_in_bounds() {
        let mut kf = vec![0.0];
        let mut t = 0.0;
        let mut x = 7u32;
        while t < 59.0 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            t += 0.2 + f64::from(x >> 16 & 0xff) / 255.0 * 0.3;
            if t < 60.0 {
                kf.push((t * 1000.0).round() / 1000.0);
            }
        }
        let p = plan(&index(&kf, 60.0), &PlanOptions::default()).unwrap();
        for s in &p.segments[..p.segments.len() - 1] {
            assert!(s.duration >= 3.0 && s.duration <= 12.0, "{}", s.duration);
        }
        assert!((p.total_secs() - 60.0).abs() < 1e-9);
        for w in p.segments.windows(2) {
            assert_eq!(w[0].end, w[1].start);
            assert!(kf.contains(&(w[1].start as f64 / 1000.0)));
        }
    }

    #[test]
    fn short_gops_leave_a_balanced_tail() {
        // Keyframes every 0.48 s over 60 s: the last 8.16 s are split, not one stretched segment.
        let kf: Vec<f64> = (0..125).map(|i| f64::from(i) * 0.48).collect();
        let p = plan(&index(&kf, 60.0), &PlanOptions::default()).unwrap();
        let d = durations(&p);
        assert!(d.iter().all(|&x| (3.0..=7.5).contains(&x)), "{d:?}");
        assert_eq!(p.target_duration, 6, "{d:?}");
    }

    #[test]
    fn interleave_widens_ranges_into_neighbour_spans() {
        let kf: Vec<f64> = (0..30).map(|i| f64::from(i) * 2.0).collect();
        let mut ix = index(&kf, 60.0);
        ix.interleave = 500; // 0.5 s: a quarter of a 2 s span of 1000 bytes
        let p = plan(&ix, &PlanOptions::default()).unwrap();
        // Segment 1 is [6 s, 12 s): spans 3..5 whole, span 2 whole (a range can only start where
        // a span starts), 1/4 of span 6.
        assert_eq!(p.segments[1].ranges, vec![ByteRange::new(2000, 6250)]);
    }

    #[test]
    fn segment_at_finds_the_holder() {
        let kf: Vec<f64> = (0..30).map(|i| f64::from(i) * 2.0).collect();
        let p = plan(&index(&kf, 60.0), &PlanOptions::default()).unwrap();
        assert_eq!(p.segment_at(0.0).unwrap().index, 0);
        assert_eq!(p.segment_at(5.999).unwrap().index, 0);
        assert_eq!(p.segment_at(6.0).unwrap().index, 1);
        assert_eq!(p.segment_at(30.0).unwrap().index, 5);
        assert_eq!(p.segment_at(1e6).unwrap().index, 9);
        assert_eq!(p.segment_at(-3.0).unwrap().index, 0);
    }

    #[test]
    fn playlist_is_rfc8216_vod() {
        let kf: Vec<f64> = (0..30).map(|i| i as f64 * 2.0).collect();
        let p = plan(&index(&kf, 60.0), &PlanOptions::default()).unwrap();
        let text = p.media_playlist("init.mp4", |i| format!("{i}.m4s"));
        assert!(text.starts_with("#EXTM3U\n"));
        for tag in [
            "#EXT-X-VERSION:7",
            "#EXT-X-TARGETDURATION:6",
            "#EXT-X-PLAYLIST-TYPE:VOD",
            "#EXT-X-INDEPENDENT-SEGMENTS",
            "#EXT-X-MAP:URI=\"init.mp4\"",
            "#EXTINF:6,",
            "9.m4s",
            "#EXT-X-ENDLIST",
        ] {
            assert!(text.contains(tag), "missing {tag} in\n{text}");
        }
        assert_eq!(text.matches("#EXT-X-MAP").count(), 1);
    }

    #[test]
    fn audio_only_uses_aac_grid() {
        let mut ix = index(&[], 10.0);
        ix.timescale = 48000;
        ix.duration = 480_000;
        ix.tracks[0].kind = TrackKind::Audio;
        ix.tracks[0].timescale = 48000;
        ix.tracks[0].video = None;
        ix.tracks[0].audio = Some(probe::AudioInfo {
            sample_rate: 48000,
            channels: 2,
            ..Default::default()
        });
        let p = plan(&ix, &PlanOptions::default()).unwrap();
        assert_eq!(p.boundaries, Boundaries::Grid);
        assert_eq!(p.segments[0].end % 1024, 0);
        assert_eq!(p.segments.last().unwrap().end, 480_000);
    }

    #[test]
    fn video_without_keyframes_needs_transcode() {
        let ix = index(&[], 10.0);
        assert_eq!(
            plan(&ix, &PlanOptions::default()),
            Err(PlanError::NoKeyframes)
        );
        let opts = PlanOptions {
            mode: VideoMode::Transcode,
            ..PlanOptions::default()
        };
        assert_eq!(plan(&ix, &opts).unwrap().segments.len(), 2);
    }
}
