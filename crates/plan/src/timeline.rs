//! The output timeline of a source: where time 0 is, and the clock video is written on.
//!
//! Every rendition of a source presents from 0: one **origin** (a source time, in index ticks)
//! is subtracted from every track, so audio/video sync is what the source says. The origin is
//! the first video frame's time, so the first frame presents at 0 and lasts one frame; audio
//! that starts before it (AAC priming, a TS whose audio leads by a few frames) starts at the
//! first AAC frame at or after it. Only an audio track leading by more than
//! [`MAX_AUDIO_LEAD_SECS`] (and not implausibly, [`MAX_BELIEVED_LEAD_SECS`]) moves the origin
//! to the audio's start (the first picture then shows from 0, held until the next frame).
//! Audio-only sources start at their first frame.
//!
//! Video is written on the source's **cadence** when it has one: a constant-rate source stored
//! with a coarse clock (Matroska's milliseconds: 29.97 fps as 33 and 34 ms steps) is written
//! with timescale `T` and frame duration `T·den/num` (30000 and 1001), each frame on the frame
//! slot its timestamp rounds to, so the output's frame rate is the source's exactly. A frame
//! whose time is more than [`CADENCE_TOLERANCE_MS`] (or a quarter frame) off its slot keeps its
//! own time: true variable-rate video stays variable. Without a stated rate, or where the
//! source clock already holds whole frames (25 fps in ms, 29.97 fps in 90 kHz), `T` is the
//! source's timescale and times map exactly.

use probe::time::{gcd, rescale};
use probe::{MediaIndex, Rational, TrackKind};
use serde::{Deserialize, Serialize};

/// An audio track starting more than this before the first video frame sets the origin
/// instead (its lead is kept rather than dropped), seconds.
pub const MAX_AUDIO_LEAD_SECS: f64 = 1.0;

/// An audio start further than this before the video is not believed (a broken or hostile
/// index: a TS video at 26 h with its audio at 0): the origin stays at the video, seconds.
pub const MAX_BELIEVED_LEAD_SECS: f64 = 600.0;

/// A frame time within this of its cadence slot is on the cadence (covers millisecond
/// rounding of the frame and of the anchor), milliseconds; at least one source tick and at most
/// a quarter frame.
pub const CADENCE_TOLERANCE_MS: i64 = 1;

/// Largest output video timescale a cadence may need (`lcm(source timescale, rate numerator)`).
const MAX_TIMESCALE: u64 = 1 << 24;

/// A constant frame rate video is written on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cadence {
    /// The nominal frame rate.
    pub rate: Rational,
    /// One frame, in output ticks ([`Timeline::timescale`]).
    pub frame: u32,
    /// Source time (index ticks) of a frame on the cadence: the first video frame.
    pub anchor: i64,
}

/// Source time → output time for one source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    /// The source time (index ticks) presented at output time 0.
    pub origin: i64,
    /// Ticks per second of the index (the source times given to [`Timeline::video`]).
    pub index_timescale: u32,
    /// Ticks per second of video output times (the `mdhd` timescale of video renditions).
    pub timescale: u32,
    /// The cadence video frames are put on, when the source has one.
    pub cadence: Option<Cadence>,
}

impl Timeline {
    /// The timeline of `index`: origin as the module docs say, cadence from the main video
    /// track's nominal frame rate.
    pub fn of(index: &MediaIndex) -> Timeline {
        let its = index.timescale.max(1);
        let video = index.main().filter(|t| t.kind == TrackKind::Video);
        // The index's start is its main track's first presentation time.
        let first_frame = index.start;
        let origin = match video {
            Some(_) => {
                let ticks = |secs: f64| (secs * f64::from(its)).round() as i64;
                let (lead, believed) = (ticks(MAX_AUDIO_LEAD_SECS), ticks(MAX_BELIEVED_LEAD_SECS));
                let earliest_audio = index
                    .tracks
                    .iter()
                    .filter(|t| t.kind == TrackKind::Audio)
                    .filter_map(|t| {
                        Some(rescale(
                            t.start?,
                            i64::from(its),
                            i64::from(t.timescale.max(1)),
                        ))
                    })
                    .min();
                match earliest_audio {
                    Some(a)
                        if first_frame.saturating_sub(a) > lead
                            && first_frame.saturating_sub(a) <= believed =>
                    {
                        a
                    }
                    _ => first_frame,
                }
            }
            None => index.start,
        };
        let cadence = video
            .and_then(|t| t.video.as_ref()?.frame_rate?.nominal())
            .and_then(|rate| cadence(rate, its, first_frame));
        Timeline {
            origin,
            index_timescale: its,
            timescale: cadence.map_or(its, |(t, _)| t),
            cadence: cadence.map(|(_, c)| c),
        }
    }

    /// A timeline with no cadence: output ticks are index ticks, shifted by `origin`.
    #[cfg(test)]
    pub fn plain(origin: i64, index_timescale: u32) -> Timeline {
        Timeline {
            origin,
            index_timescale: index_timescale.max(1),
            timescale: index_timescale.max(1),
            cadence: None,
        }
    }

    /// Output time ([`Timeline::timescale`] ticks, 0 at the origin) of source time `t` (index
    /// ticks): on the cadence slot `t` rounds to when it is close enough, else `t` rescaled.
    pub fn video(&self, t: i64) -> i64 {
        self.absolute(t).saturating_sub(self.absolute(self.origin))
    }

    /// [`Timeline::video`] of a time in `ts` ticks (a track's own timescale).
    pub fn video_in(&self, t: i64, ts: u32) -> i64 {
        if ts == self.index_timescale {
            self.video(t)
        } else {
            self.video(rescale(
                t,
                i64::from(self.index_timescale),
                i64::from(ts.max(1)),
            ))
        }
    }

    /// The origin in `rate` ticks (an audio track's sample rate): subtract it from source
    /// sample times to get output times.
    pub fn origin_in(&self, rate: u32) -> i64 {
        rescale(
            self.origin,
            i64::from(rate),
            i64::from(self.index_timescale),
        )
    }

    /// Seconds of output ticks.
    pub fn secs(&self, ticks: i64) -> f64 {
        ticks as f64 / f64::from(self.timescale)
    }

    /// Output ticks of source time `t`, not yet shifted by the origin.
    fn absolute(&self, t: i64) -> i64 {
        let its = i64::from(self.index_timescale);
        let ts = i64::from(self.timescale);
        let plain = rescale(t, ts, its);
        let Some(c) = self.cadence else { return plain };
        let rel = i128::from(t) - i128::from(c.anchor);
        // Slot n = round(rel · num / (its · den)).
        let num = i128::from(c.rate.num);
        let den = i128::from(its) * i128::from(c.rate.den);
        let n = (2 * rel * num + den).div_euclid(2 * den);
        let slot = n * i128::from(c.frame);
        let Ok(slot) = i64::try_from(slot) else {
            return plain;
        };
        let anchor = rescale(c.anchor, ts, its);
        let back = c.anchor.saturating_add(rescale(slot, its, ts));
        let tolerance = ((its * CADENCE_TOLERANCE_MS + 999) / 1000).max(1).min(
            // A quarter frame, in index ticks.
            rescale(i64::from(c.frame), its, ts) / 4,
        );
        if back.abs_diff(t) <= tolerance.unsigned_abs() {
            anchor.saturating_add(slot)
        } else {
            plain
        }
    }
}

/// The output timescale and cadence for `rate` over an index clock of `its` ticks:
/// `lcm(its, rate.num)` so that a frame is whole ticks and every index tick maps exactly.
fn cadence(rate: Rational, its: u32, anchor: i64) -> Option<(u32, Cadence)> {
    if rate.num == 0 || rate.den == 0 {
        return None;
    }
    let its64 = u64::from(its);
    let num = u64::from(rate.num);
    let t = its64 / gcd(its64, num) * num;
    // At most ~1000 fps and a timescale a 32-bit field holds.
    if t > MAX_TIMESCALE || u64::from(rate.num) > 1000 * u64::from(rate.den) {
        return None;
    }
    let frame = t / num * u64::from(rate.den);
    Some((
        u32::try_from(t).ok()?,
        Cadence {
            rate,
            frame: u32::try_from(frame).ok().filter(|&f| f > 0)?,
            anchor,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ntsc_ms() -> Timeline {
        let (timescale, c) = cadence(
            Rational {
                num: 30000,
                den: 1001,
            },
            1000,
            21,
        )
        .unwrap();
        Timeline {
            origin: 21,
            index_timescale: 1000,
            timescale,
            cadence: Some(c),
        }
    }

    #[test]
    fn millisecond_ntsc_lands_on_1001_steps() {
        let tl = ntsc_ms();
        assert_eq!(tl.timescale, 30000);
        assert_eq!(tl.cadence.unwrap().frame, 1001);
        // Frames k at 21 + round(k · 33.3667) ms.
        for k in 0..2000i64 {
            let ms = 21 + (k as f64 * 1001.0 / 30.0).round() as i64;
            assert_eq!(tl.video(ms), k * 1001, "frame {k} at {ms} ms");
        }
        // A frame 5 ms off its slot keeps its own time (variable rate stays variable).
        assert_eq!(tl.video(21 + 100 + 5), rescale(105, 30000, 1000));
    }

    #[test]
    fn whole_frame_clocks_keep_their_timescale() {
        // 25 fps in ms, 29.97 in 90 kHz: the source clock already holds whole frames.
        let (t, c) = cadence(Rational { num: 25, den: 1 }, 1000, 0).unwrap();
        assert_eq!((t, c.frame), (1000, 40));
        let (t, c) = cadence(
            Rational {
                num: 30000,
                den: 1001,
            },
            90000,
            0,
        )
        .unwrap();
        assert_eq!((t, c.frame), (90000, 3003));
        let (t, c) = cadence(Rational { num: 24, den: 1 }, 1000, 0).unwrap();
        assert_eq!((t, c.frame), (3000, 125));
        // No cadence for nonsense rates.
        assert!(cadence(Rational { num: 0, den: 1 }, 1000, 0).is_none());
        assert!(cadence(
            Rational {
                num: 100_000,
                den: 1
            },
            1000,
            0
        )
        .is_none());
        assert!(cadence(
            Rational {
                num: 4_294_967_291,
                den: 1
            },
            1000,
            0
        )
        .is_none());
    }

    #[test]
    fn origin_shifts_every_time() {
        let tl = Timeline::plain(126_000, 90000);
        assert_eq!(tl.video(126_000), 0);
        assert_eq!(tl.video(126_000 + 3600), 3600);
        assert_eq!(tl.origin_in(48000), 67_200);
        // Times far outside saturate rather than overflow.
        let _ = tl.video(i64::MIN);
        let _ = tl.video(i64::MAX);
    }
}
