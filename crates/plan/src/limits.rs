//! Named caps on what an index may claim before the planner spends anything on it.
//!
//! A [`MediaIndex`](probe::MediaIndex) comes from a file we do not control: its duration, start
//! and timescale are numbers read from a header. [`plan`](crate::plan) compares them with these
//! caps *before* allocating or looping, and answers [`PlanError::Limit`](crate::PlanError)
//! instead of a 6 GiB segment list or a loop of 10^14 steps. Everything the planner allocates is
//! then bounded by [`MAX_SEGMENTS`] (segments, playlist lines) or by the index's own keyframe and
//! span lists (which the probe caps when it reads them).

/// Longest source we plan, in seconds: the probe's cap (7 days), checked again here because a
/// plan can be made from any index (a cached one, a test's). Longer claims are corrupt or
/// hostile headers (a claimed 10^15 s would be a 6–8 GiB plan).
pub const MAX_DURATION_SECS: u64 = probe::limits::MAX_DURATION_SECS;

/// Most segments one plan (and so one media playlist) may have: 2^18 = 262,144.
///
/// 7 days at the default 6 s target is 100,800 segments; keyframe boundaries may fall as early
/// as half the target (3 s), which makes at most 201,600 — both under the cap, so every source
/// within [`MAX_DURATION_SECS`] plans at the default target. A shorter target on a very long
/// source is refused rather than served: at the cap the plan is ~40 MB in memory and its
/// playlist ~7 MB, which every playlist request would otherwise pay.
pub const MAX_SEGMENTS: usize = 1 << 18;

/// Largest distance of the index start from 0, in seconds: 30 days. MPEG-TS timestamps start
/// anywhere in their 33-bit 90 kHz range (up to ~26.5 h) and MP4 edit lists may start slightly
/// before 0; anything beyond a month is a broken header. With this and [`MAX_DURATION_SECS`],
/// every tick value the planner computes (start, end, plus a few targets or the slack) stays
/// below 2^54 for any 32-bit timescale, far from `i64` overflow.
pub const MAX_START_SECS: u64 = 30 * 24 * 3600;

/// Largest [`PlanOptions::range_slack_secs`](crate::PlanOptions) accepted, in seconds: an AAC
/// pre-roll is a few frames (tens of ms); a minute is already absurd, and larger values would
/// only widen every byte range to the whole file.
pub const MAX_RANGE_SLACK_SECS: f64 = 60.0;
