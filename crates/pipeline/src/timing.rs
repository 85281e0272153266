//! Sample timing: from frames with presentation times to fMP4 samples whose decode times,
//! durations and composition offsets make a segment cover exactly its planned window.
//!
//! One rule for every container and for encoder output alike, so joins are exact by
//! construction:
//!
//! - **Video**: frames come in decode order with presentation times. A segment's decode times
//!   are its frames' presentation times, sorted: the first frame (a keyframe) decodes *and*
//!   presents at the planned start (`tfdt`), each later frame decodes at the next presentation
//!   time, and the last one lasts until the planned end. So `tfdt(n+1) = tfdt(n) + Σ
//!   durations(n)` holds exactly, the first frame is at the planned start (no
//!   `bufferSeekOverHole` in hls.js), and no container's own DTS (absent in Matroska, rounded
//!   elsewhere) is trusted.
//! - **Presentation offset**: a reordered frame (a B-frame) presents before it decodes. Its
//!   composition offset is written `offset` ahead — the rendition's constant, the init's edit
//!   (`elst` media_time) — so no offset is negative and the edit takes `offset` off again.
//!   FFmpeg shifts a track by its most negative offset (growing as it reads fragments, which
//!   made B-frame video late by up to 80 ms against audio in mpv); with none negative it uses
//!   the times as written.
//! - **Open GOPs**: the leading pictures of a keyframe (HEVC RASL/RADL after a CRA, decoded after
//!   it and presented before it) stay in the keyframe's segment, presented before `tfdt`, where
//!   the previous segment left a hole for them; that segment's last frame lasts until the
//!   planned end in decode time. Decode times move later by the lead (the keyframe still decodes
//!   at `tfdt`); when the next keyframe's lead is so much shorter that they would pass the
//!   planned end, they are spread evenly over the window instead.
//! - **Audio**: frames sit on an absolute grid of 1024-sample slots (see `plan::AudioPlan`);
//!   a segment owns slots `[K, K+F)`, so it starts where the previous one ended.

use crate::PipelineError;

/// A frame ready to be written: presentation time in the output timescale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timed {
    /// Presentation time.
    pub pts: i64,
    /// Whether it can start decoding.
    pub keyframe: bool,
    /// Sample bytes.
    pub data: Vec<u8>,
}

/// An fMP4 sample with owned data: what one track contributes to a fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedSample {
    /// Sample bytes.
    pub data: Vec<u8>,
    /// Duration in the track timescale.
    pub duration: u32,
    /// `pts − dts`.
    pub composition_offset: i32,
    /// Sync sample.
    pub keyframe: bool,
}

/// One track's part of a fragment: its decode start and samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackRun {
    /// `tfdt`: decode time of the first sample, in the track timescale.
    pub base_decode_time: u64,
    /// The samples in decode order.
    pub samples: Vec<OwnedSample>,
}

impl TrackRun {
    /// Sum of the sample durations.
    pub fn duration(&self) -> u64 {
        self.samples.iter().map(|s| u64::from(s.duration)).sum()
    }
}

/// Keeps the frames of one GOP-aligned window, in decode order: from the first keyframe
/// presented at or after `start` up to (not including) the first keyframe presented at or after
/// `end`, those presented before `end`.
///
/// Frames after the starting keyframe that present before `start` are its leading pictures (an
/// open GOP) and are kept: they present in the hole the previous window leaves, since that
/// window stops at this keyframe in decode order.
pub fn window(frames: Vec<Timed>, start: i64, end: i64) -> Vec<Timed> {
    let mut out = Vec::new();
    let mut started = false;
    for f in frames {
        if f.keyframe && f.pts >= end {
            break;
        }
        if !started {
            if f.keyframe && f.pts >= start {
                started = true;
            } else {
                continue;
            }
        }
        if f.pts < end {
            out.push(f);
        }
    }
    out
}

/// Video samples covering exactly `[start, end)` in decode time from `frames` (decode order,
/// the first a keyframe), with composition offsets `offset` ahead (the rendition's presentation
/// offset, see the module docs).
pub fn video_run(
    frames: Vec<Timed>,
    start: i64,
    end: i64,
    offset: u32,
) -> Result<TrackRun, PipelineError> {
    let first = frames
        .first()
        .ok_or(PipelineError::Empty("no video frame in the segment window"))?;
    if !first.keyframe {
        return Err(PipelineError::Empty(
            "the segment does not start with a keyframe",
        ));
    }
    let base = u64::try_from(start).map_err(|_| PipelineError::Timing("negative start"))?;
    let mut frames = frames;
    // The earliest presented frame presents at the planned start even when it is a little late
    // (a video starting after its audio, variable frame rate, grid boundaries): a player must
    // find no hole at the start of a segment.
    if let Some(first_shown) = frames.iter_mut().min_by_key(|f| f.pts) {
        first_shown.pts = first_shown.pts.min(start);
    }
    let mut decode: Vec<i64> = frames.iter().map(|f| f.pts).collect();
    decode.sort_unstable();
    let n = frames.len();
    // Leading pictures present before the start: decode times move later by as much.
    let lead = start - decode[0];
    for d in &mut decode {
        *d += lead;
    }
    if decode[n - 1] >= end {
        // The next keyframe's leading pictures take more of this window's end than ours took
        // of its start: spread the decode times evenly.
        let span = i128::from(end - start);
        for (i, d) in decode.iter_mut().enumerate() {
            let step = span * i as i128 / n as i128;
            *d = start + i64::try_from(step).map_err(|_| PipelineError::Timing("window span"))?;
        }
    }
    let mut samples = Vec::with_capacity(n);
    for (i, f) in frames.into_iter().enumerate() {
        let dts = decode[i];
        let next = if i + 1 < n { decode[i + 1] } else { end };
        let duration = u32::try_from(next - dts)
            .ok()
            .filter(|&d| d > 0 || i + 1 < n)
            .ok_or(PipelineError::Timing("sample duration out of range"))?;
        let composition_offset = i32::try_from(f.pts - dts + i64::from(offset))
            .map_err(|_| PipelineError::Timing("composition offset out of range"))?;
        samples.push(OwnedSample {
            data: f.data,
            duration,
            composition_offset,
            keyframe: f.keyframe,
        });
    }
    Ok(TrackRun {
        base_decode_time: base,
        samples,
    })
}

/// Copied audio samples for grid slots `[first, first + count)` of `frame` samples each: each
/// frame goes to the slot its presentation time rounds to (`slot_of`); a slot with two frames
/// keeps the first, a missing slot is covered by the previous frame's duration, and missing
/// leading slots repeat the first frame so the segment still starts at its slot.
pub fn audio_run(
    frames: Vec<Timed>,
    slot_of: impl Fn(i64) -> i64,
    first: i64,
    count: u32,
    frame: u32,
    origin: i64,
) -> Result<TrackRun, PipelineError> {
    let frame_len = i64::from(frame.max(1));
    let end = first + i64::from(count);
    let mut slotted: Vec<(i64, Vec<u8>)> = frames
        .into_iter()
        .map(|f| (slot_of(f.pts), f.data))
        .filter(|(k, _)| *k >= first && *k < end)
        .collect();
    slotted.sort_by_key(|(k, _)| *k);
    slotted.dedup_by_key(|(k, _)| *k);
    let Some((k0, data0)) = slotted.first().cloned() else {
        return Err(PipelineError::Empty("no audio frame in the segment window"));
    };
    let mut filled: Vec<(i64, Vec<u8>)> = (first..k0).map(|k| (k, data0.clone())).collect();
    filled.extend(slotted);
    let base = u64::try_from(origin + first * frame_len)
        .map_err(|_| PipelineError::Timing("audio segment before time 0"))?;
    let n = filled.len();
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let next = if i + 1 < n { filled[i + 1].0 } else { end };
        let duration = u32::try_from((next - filled[i].0) * frame_len)
            .map_err(|_| PipelineError::Timing("audio gap too long"))?;
        samples.push(OwnedSample {
            data: std::mem::take(&mut filled[i].1),
            duration,
            composition_offset: 0,
            keyframe: true,
        });
    }
    Ok(TrackRun {
        base_decode_time: base,
        samples,
    })
}

/// Samples of encoder output frames that each last one AAC frame, from slot `first`.
pub fn aac_run(frames: Vec<Vec<u8>>, first: i64, origin: i64) -> Result<TrackRun, PipelineError> {
    let base = u64::try_from(origin + first * plan::AAC_FRAME)
        .map_err(|_| PipelineError::Timing("audio segment before time 0"))?;
    Ok(TrackRun {
        base_decode_time: base,
        samples: frames
            .into_iter()
            .map(|data| OwnedSample {
                data,
                duration: 1024,
                composition_offset: 0,
                keyframe: true,
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(pts: i64, keyframe: bool) -> Timed {
        Timed {
            pts,
            keyframe,
            data: vec![pts as u8],
        }
    }

    #[test]
    fn b_frames_get_negative_offsets_and_the_window_is_exact() {
        // Decode order I0 P3 B1 B2 P6 B4 B5 (frame = 40 ticks), window [0, 280).
        let order = [0, 3, 1, 2, 6, 4, 5];
        let frames: Vec<Timed> = order.iter().map(|&i| f(i * 40, i == 0)).collect();
        let run = video_run(frames.clone(), 0, 280, 0).unwrap();
        assert_eq!(run.base_decode_time, 0);
        assert_eq!(run.duration(), 280);
        let ctos: Vec<i32> = run.samples.iter().map(|s| s.composition_offset).collect();
        // dts = 0,40,80,...; pts - dts
        assert_eq!(ctos, vec![0, 80, -40, -40, 80, -40, -40]);
        assert!(run.samples.iter().all(|s| s.duration == 40));
        // With a presentation offset every offset moves ahead by it: none is negative, and
        // the keyframe's offset is the edit, so it presents at tfdt.
        let run = video_run(frames, 0, 280, 80).unwrap();
        let ctos: Vec<i32> = run.samples.iter().map(|s| s.composition_offset).collect();
        assert_eq!(ctos, vec![80, 160, 40, 40, 160, 40, 40]);
    }

    #[test]
    fn leading_pictures_stay_with_their_keyframe() {
        // 40-tick frames; the CRAs at 200 and 400 each have one leading picture (160, 360),
        // decoded after them and presented before them (open GOP).
        // Decode order: I0 P120 B40 B80 | CRA200 B160 P320 B240 B280 | CRA400 B360
        let frames = vec![
            f(0, true),
            f(120, false),
            f(40, false),
            f(80, false),
            f(200, true),
            f(160, false),
            f(320, false),
            f(240, false),
            f(280, false),
            f(400, true),
            f(360, false),
        ];
        let a = window(frames.clone(), 0, 200);
        assert_eq!(
            a.iter().map(|x| x.pts).collect::<Vec<_>>(),
            vec![0, 120, 40, 80]
        );
        let b = window(frames, 200, 400);
        assert_eq!(
            b.iter().map(|x| x.pts).collect::<Vec<_>>(),
            vec![200, 160, 320, 240, 280],
            "the leading picture at 160 stays with its CRA"
        );
        let ra = video_run(a, 0, 200, 120).unwrap();
        let rb = video_run(b, 200, 400, 120).unwrap();
        assert_eq!(ra.base_decode_time + ra.duration(), rb.base_decode_time);
        assert_eq!(rb.duration(), 200);
        // Decode times 200, 240, .. (presentation 160.. moved by the 40-tick lead).
        let mut dts = rb.base_decode_time as i64;
        let mut shown = Vec::new();
        for s in &rb.samples {
            assert!(s.composition_offset >= 0, "no negative offset");
            shown.push(dts + i64::from(s.composition_offset) - 120);
            dts += i64::from(s.duration);
        }
        assert_eq!(
            shown,
            vec![200, 160, 320, 240, 280],
            "every frame at its own time"
        );
    }

    #[test]
    fn a_short_next_lead_spreads_decode_times_over_the_window() {
        // A keyframe at 200 with two leading pictures (lead 80), the window ending at 400
        // right after a frame at 360: shifted decode times would pass the end.
        let frames = vec![f(200, true), f(120, false), f(160, false), f(360, false)];
        let w = window(frames, 200, 400);
        let run = video_run(w, 200, 400, 200).unwrap();
        assert_eq!(run.duration(), 200);
        assert!(run.samples.iter().all(|s| s.duration == 50));
        let mut dts = 200i64;
        for (s, pts) in run.samples.iter().zip([200, 120, 160, 360]) {
            assert_eq!(dts + i64::from(s.composition_offset) - 200, pts);
            dts += i64::from(s.duration);
        }
    }

    #[test]
    fn consecutive_windows_join_exactly() {
        let mut frames = Vec::new();
        for i in 0..100i64 {
            frames.push(f(i * 40, i % 25 == 0));
        }
        let a = video_run(window(frames.clone(), 0, 2000), 0, 2000, 0).unwrap();
        let b = video_run(window(frames, 2000, 4000), 2000, 4000, 0).unwrap();
        assert_eq!(a.base_decode_time + a.duration(), b.base_decode_time);
        assert_eq!(b.samples.len(), 50);
    }

    #[test]
    fn window_skips_leading_pictures_of_the_next_gop() {
        // Keyframe at 200 decoded before B-frames presented at 160..200 (open GOP).
        let frames = vec![
            f(0, true),
            f(40, false),
            f(80, false),
            f(200, true),
            f(160, false),
        ];
        let w = window(frames, 0, 200);
        assert_eq!(w.iter().map(|x| x.pts).collect::<Vec<_>>(), vec![0, 40, 80]);
        let run = video_run(w, 0, 200, 0).unwrap();
        assert_eq!(run.duration(), 200);
    }

    #[test]
    fn a_window_not_starting_on_a_keyframe_is_an_error() {
        assert!(video_run(vec![f(0, false)], 0, 40, 0).is_err());
        assert!(video_run(vec![], 0, 40, 0).is_err());
    }

    #[test]
    fn audio_slots_fill_gaps_and_keep_joins() {
        // Frames at ms timestamps of 1024-sample frames at 48 kHz (21.333 ms), one missing.
        let slot = |pts: i64| plan::rescale(pts * 48, 1, 1024);
        let frames: Vec<Timed> = [0i64, 21, 43, 85, 107]
            .iter()
            .map(|&ms| f(ms, true))
            .collect();
        let run = audio_run(frames, slot, 0, 6, 1024, 0).unwrap();
        let d: Vec<u32> = run.samples.iter().map(|s| s.duration).collect();
        assert_eq!(d, vec![1024, 1024, 2048, 1024, 1024]);
        assert_eq!(run.duration(), 6 * 1024);
        // A segment starting at slot 2 whose first frame is missing repeats the first present one.
        let frames: Vec<Timed> = [64i64, 85].iter().map(|&ms| f(ms, true)).collect();
        let run = audio_run(frames, slot, 2, 3, 1024, 0).unwrap();
        assert_eq!(run.base_decode_time, 2048);
        assert_eq!(run.duration(), 3 * 1024);
    }
}
