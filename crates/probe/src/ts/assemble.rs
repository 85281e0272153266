//! From the scan's per-stream PES records to a [`MediaIndex`]: tracks, keyframes, start,
//! duration and spans. Pure functions of the records.
//!
//! **Keyframes.** A PES of the main video stream starts a keyframe when its first packet has
//! `random_access_indicator` (ISO/IEC 13818-1 §2.4.3.5) or its first picture is an IDR / IRAP /
//! I picture. When a muxer sets the indicator on most PES packets while the bitstream shows
//! that most are not random access points, the indicator is ignored.
//!
//! **Spans.** One per keyframe interval `[kf_i, kf_i+1)` (presentation time; the last one ends
//! at `start + duration`), holding the smallest byte range with:
//! - every PES of the main video stream from keyframe *i* up to keyframe *i+1* in decode
//!   (file) order — that is, the PES whose DTS lies in `[dts(kf_i), dts(kf_i+1))`;
//! - every audio PES whose samples overlap the interval: `[pts, next pts)`, capped at one
//!   second, so that the PES that starts just before a boundary and plays across it is in both
//!   spans (audio is muxed ahead of or behind video, so these bytes can be far from the
//!   keyframe's packet);
//! - every subtitle PES and PES of another video stream whose DTS lies in the interval.
//!
//! Video PES before the first keyframe, and data streams (`TrackKind::Other`), are in no span.
//! Audio-only files have no keyframes; their spans group the main audio PES by one second.

use super::{Record, TrackData, FLAG_KEY_PICTURE, FLAG_RAI};
use crate::limits;
use crate::{
    choose_main_track, Container, Keyframe, MediaIndex, ProbeError, Result, Span, Track, TrackKind,
    VideoInfo,
};

/// Ticks per second of every MPEG-TS timestamp.
pub(crate) const TIMESCALE: u32 = 90_000;
/// Longest an audio PES is assumed to play.
const MAX_AUDIO_PES_TICKS: i64 = TIMESCALE as i64;
/// Target length of an audio-only span.
const AUDIO_SPAN_TICKS: i64 = TIMESCALE as i64;
/// Video PES looked at for the frame duration.
const RATE_SAMPLE: usize = 128;

/// Builds the index of a file of `file_size` bytes from the scan's streams (PMT order).
pub(crate) fn build(file_size: u64, streams: Vec<TrackData>) -> Result<MediaIndex> {
    let mut tracks: Vec<Track> = Vec::new();
    let mut records: Vec<Vec<Record>> = Vec::new();
    for s in streams {
        if s.records.is_empty() {
            // Listed in the PMT but never sent: nothing to play.
            continue;
        }
        let kind = s.es.kind;
        let default = !tracks.iter().any(|t| t.kind == kind);
        let frame = frame_ticks(&s.records);
        let mut video = (kind == TrackKind::Video).then(|| s.video.unwrap_or_default());
        if let Some(v) = &mut video {
            if v.frame_rate.is_none() {
                v.frame_rate = frame.and_then(super::es::rate_from_ticks);
            }
        }
        let audio = (kind == TrackKind::Audio).then(|| s.audio.unwrap_or_default());
        let duration = track_duration(kind, &s.records, video.as_ref());
        tracks.push(Track {
            id: u64::from(s.es.pid),
            kind,
            codec: s.es.codec,
            timescale: TIMESCALE,
            duration,
            language: s.es.language,
            title: None,
            default,
            forced: false,
            codec_private: s.codec_private,
            video,
            audio,
            start: s.records.iter().map(|r| r.pts).min(),
            default_duration_ns: None,
            codec_delay_ns: None,
        });
        records.push(s.records);
    }
    let main = choose_main_track(&tracks).ok_or_else(|| {
        ProbeError::NoTracks("mpeg-ts: no audio or video stream carries data".into())
    })?;
    let main_track = tracks
        .get(main)
        .ok_or_else(|| ProbeError::NoTracks("mpeg-ts".into()))?;
    let main_records = records.get(main).map_or(&[][..], Vec::as_slice);
    let (start, duration, keyframes, mut spans) = if main_track.kind == TrackKind::Video {
        video_timeline(main_track, main_records)?
    } else {
        audio_timeline(main_track, main_records)
    };
    for (i, (track, recs)) in tracks.iter().zip(&records).enumerate() {
        if i != main {
            cover_track(&mut spans, track.kind, recs);
        }
    }
    Ok(MediaIndex {
        container: Container::MpegTs,
        file_size,
        timescale: TIMESCALE,
        start,
        duration,
        tracks,
        main_track: Some(main),
        keyframes,
        spans,
        interleave: 0,
        moov: None,
        format: None,
    })
}

/// The median gap between the first presentation times of a stream: its frame duration.
fn frame_ticks(records: &[Record]) -> Option<u64> {
    let mut pts: Vec<i64> = records.iter().take(RATE_SAMPLE).map(|r| r.pts).collect();
    pts.sort_unstable();
    let mut gaps: Vec<u64> = pts
        .windows(2)
        .filter_map(|w| match *w {
            [a, b] => u64::try_from(b.saturating_sub(a)).ok().filter(|&g| g > 0),
            _ => None,
        })
        .collect();
    gaps.sort_unstable();
    gaps.get(gaps.len() / 2).copied()
}

/// A frame duration in ticks from a nominal rate, when it is a sane one (1–1000 fps).
fn ticks_of_rate(v: &VideoInfo) -> Option<u64> {
    let r = v.frame_rate?;
    if r.num == 0 || r.den == 0 {
        return None;
    }
    let ticks = (u64::from(TIMESCALE) * u64::from(r.den) + u64::from(r.num) / 2) / u64::from(r.num);
    (90..=90_000).contains(&ticks).then_some(ticks)
}

/// How long one video PES lasts: measured, else from the nominal rate.
fn video_frame(records: &[Record], video: Option<&VideoInfo>) -> u64 {
    frame_ticks(records)
        .or_else(|| video.and_then(ticks_of_rate))
        .unwrap_or(0)
}

/// The length of the last audio PES, guessed from the gap before it.
fn last_gap(records: &[Record]) -> Option<u64> {
    match records {
        [.., a, b] => u64::try_from(b.pts.saturating_sub(a.pts))
            .ok()
            .filter(|&g| g > 0 && g <= MAX_AUDIO_PES_TICKS as u64),
        _ => None,
    }
}

fn track_duration(kind: TrackKind, records: &[Record], video: Option<&VideoInfo>) -> Option<u64> {
    let min = records.iter().map(|r| r.pts).min()?;
    let max = records.iter().map(|r| r.pts).max()?;
    let span = u64::try_from(max.saturating_sub(min)).ok()?;
    match kind {
        TrackKind::Video => Some(span.saturating_add(video_frame(records, video))),
        TrackKind::Audio => Some(span.saturating_add(last_gap(records).unwrap_or(0))),
        _ => None,
    }
}

/// A run of PES starting at a sync point, before spans are made of them.
#[derive(Debug, Clone, Copy)]
struct Group {
    pts: i64,
    offset: u64,
    start: u64,
    end: u64,
}

impl Group {
    fn of(r: &Record) -> Group {
        Group {
            pts: r.pts,
            offset: r.start,
            start: r.start,
            end: r.end,
        }
    }

    fn add(&mut self, r: &Record) {
        self.start = self.start.min(r.start);
        self.end = self.end.max(r.end);
    }
}

type Timeline = (i64, u64, Vec<Keyframe>, Vec<Span>);

/// Spans from groups sorted by time; the last ends at `end`.
fn spans_of(groups: &[Group], end: i64) -> Vec<Span> {
    let mut spans: Vec<Span> = groups
        .windows(2)
        .filter_map(|w| match *w {
            [a, b] => Some(Span {
                time: a.pts,
                end_time: b.pts,
                start: a.start,
                end: a.end,
            }),
            _ => None,
        })
        .collect();
    if let Some(last) = groups.last() {
        spans.push(Span {
            time: last.pts,
            end_time: end.max(last.pts),
            start: last.start,
            end: last.end,
        });
    }
    spans
}

fn video_timeline(track: &Track, records: &[Record]) -> Result<Timeline> {
    let n = records.len();
    let rai = records.iter().filter(|r| r.flags & FLAG_RAI != 0).count();
    let pictures = records
        .iter()
        .filter(|r| r.flags & FLAG_KEY_PICTURE != 0)
        .count();
    // A muxer that flags (nearly) every PES while the pictures say otherwise: ignore the flag.
    let rai_meaningless = rai * 2 > n && pictures > 0 && pictures * 2 < n;
    let is_key = |r: &Record| {
        r.flags & FLAG_KEY_PICTURE != 0 || (!rai_meaningless && r.flags & FLAG_RAI != 0)
    };
    let mut groups: Vec<Group> = Vec::new();
    for r in records {
        if is_key(r) {
            if groups.len() >= limits::MAX_KEYFRAMES {
                return Err(ProbeError::limit(
                    "MAX_KEYFRAMES",
                    groups.len() as u64 + 1,
                    limits::MAX_KEYFRAMES as u64,
                ));
            }
            groups.push(Group::of(r));
        } else if let Some(g) = groups.last_mut() {
            g.add(r);
        }
    }
    groups.sort_by_key(|g| g.pts);
    let Some(first) = groups.first() else {
        return Err(ProbeError::Unsupported {
            container: super::CONTAINER,
            what: format!(
                "video PID {:#06x} has no random access point (no random_access_indicator, \
                 no IDR/IRAP picture) in {n} PES packets",
                track.id
            ),
        });
    };
    let start = first.pts;
    let max_pts = records.iter().map(|r| r.pts).max().unwrap_or(start);
    let frame = video_frame(records, track.video.as_ref());
    let end = max_pts.saturating_add(i64::try_from(frame).unwrap_or(0));
    let duration = u64::try_from(end.saturating_sub(start)).unwrap_or(0);
    let keyframes = groups
        .iter()
        .map(|g| Keyframe {
            pts: g.pts,
            offset: g.offset,
        })
        .collect();
    let spans = spans_of(&groups, start.saturating_add_unsigned(duration));
    Ok((start, duration, keyframes, spans))
}

fn audio_timeline(track: &Track, records: &[Record]) -> Timeline {
    let start = records.iter().map(|r| r.pts).min().unwrap_or(0);
    let duration = track.duration.unwrap_or(0);
    let mut groups: Vec<Group> = Vec::new();
    for r in records {
        match groups.last_mut() {
            Some(g) if r.pts < g.pts.saturating_add(AUDIO_SPAN_TICKS) => g.add(r),
            _ => groups.push(Group::of(r)),
        }
    }
    groups.sort_by_key(|g| g.pts);
    let spans = spans_of(&groups, start.saturating_add_unsigned(duration));
    (start, duration, Vec::new(), spans)
}

/// Widens the spans that the PES of a non-main track belong to (see the module docs).
fn cover_track(spans: &mut [Span], kind: TrackKind, records: &[Record]) {
    let last = last_gap(records).map_or(1, |g| g as i64);
    for (i, r) in records.iter().enumerate() {
        let from = r.dts;
        let to = match kind {
            TrackKind::Audio => {
                let next = records
                    .get(i + 1)
                    .map_or(from.saturating_add(last), |n| n.dts);
                next.clamp(
                    from.saturating_add(1),
                    from.saturating_add(MAX_AUDIO_PES_TICKS),
                )
            }
            TrackKind::Video | TrackKind::Subtitle => from.saturating_add(1),
            TrackKind::Other => continue,
        };
        let first = spans.partition_point(|s| s.end_time <= from);
        for s in spans.iter_mut().skip(first) {
            if s.time >= to {
                break;
            }
            s.start = s.start.min(r.start);
            s.end = s.end.max(r.end);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(pts: i64, start: u64, end: u64, flags: u8) -> Record {
        Record {
            pts,
            dts: pts,
            start,
            end,
            flags,
        }
    }

    #[test]
    fn spans_hold_audio_muxed_away_from_video() {
        let spans = &mut [
            Span {
                time: 0,
                end_time: 100,
                start: 1000,
                end: 2000,
            },
            Span {
                time: 100,
                end_time: 200,
                start: 2000,
                end: 3000,
            },
        ];
        // Audio [90, 130) sits in the file before the first span and plays across the join.
        let audio = [rec(90, 500, 600, 0), rec(130, 3000, 3100, 0)];
        cover_track(spans, TrackKind::Audio, &audio);
        assert_eq!((spans[0].start, spans[0].end), (500, 2000));
        assert_eq!((spans[1].start, spans[1].end), (500, 3100));
    }

    #[test]
    fn every_flagged_pes_is_not_a_keyframe() {
        // RAI on every PES, pictures say one keyframe in four.
        let recs: Vec<Record> = (0..40)
            .map(|i| {
                let key = if i % 4 == 0 { FLAG_KEY_PICTURE } else { 0 };
                rec(
                    i * 3600,
                    i as u64 * 188,
                    (i as u64 + 1) * 188,
                    FLAG_RAI | key,
                )
            })
            .collect();
        let track = Track {
            id: 256,
            kind: TrackKind::Video,
            codec: crate::Codec::H264,
            timescale: TIMESCALE,
            duration: None,
            language: None,
            title: None,
            default: true,
            forced: false,
            codec_private: Vec::new(),
            video: None,
            audio: None,
            start: None,
            default_duration_ns: None,
            codec_delay_ns: None,
        };
        let (start, duration, kf, spans) = video_timeline(&track, &recs).unwrap();
        assert_eq!((start, duration), (0, 40 * 3600));
        assert_eq!(kf.len(), 10);
        assert_eq!(spans.len(), 10);
        assert_eq!((spans[1].time, spans[1].end_time), (4 * 3600, 8 * 3600));
        assert_eq!((spans[1].start, spans[1].end), (4 * 188, 8 * 188));
    }
}
