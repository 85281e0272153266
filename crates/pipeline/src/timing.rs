//! Sample timing: from frames with presentation times to fMP4 samples whose decode times,
//! durations and composition offsets make a segment cover exactly its planned window.
//!
//! One rule for every container and for encoder output alike, so joins are exact by
//! construction:
//!
//! - **Video**: frames come in decode order with presentation times. Sorted, the presentation
//!   times of a segment's frames are its decode times: the first frame decodes *and* presents at
//!   the planned start (`tfdt`), each later frame decodes at the next presentation time, and the
//!   last one lasts until the planned end. A frame presented before it is decoded gets a negative
//!   composition offset (trun version 1). So `tfdt(n+1) = tfdt(n) + Σ durations(n)` holds
//!   exactly, the first frame is at the planned start (no `bufferSeekOverHole` in hls.js), and no
//!   container's own DTS (absent in Matroska, rounded elsewhere) is trusted.
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
/// `end`, then only those presented in `[start, end)`.
///
/// Leading pictures of an open GOP that follows the window (decoded after the keyframe at `end`
/// but presented before it) are not decodable without that keyframe and are left out; the
/// previous frame's duration covers them.
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
        if f.pts >= start && f.pts < end {
            out.push(f);
        }
    }
    out
}

/// Video samples covering exactly `[start, end)` from `frames` (decode order, all presented in
/// the window, the first a keyframe). See the module docs for the rule.
pub fn video_run(frames: Vec<Timed>, start: i64, end: i64) -> Result<TrackRun, PipelineError> {
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
    // The first frame decodes at the planned start even when the source's first frame there is
    // a little late (variable frame rate, grid boundaries): it then presents a little late.
    decode[0] = start;
    let n = frames.len();
    let mut samples = Vec::with_capacity(n);
    for (i, f) in frames.into_iter().enumerate() {
        let dts = decode[i];
        let next = if i + 1 < n { decode[i + 1] } else { end };
        let duration = u32::try_from(next - dts)
            .ok()
            .filter(|&d| d > 0 || i + 1 < n)
            .ok_or(PipelineError::Timing("sample duration out of range"))?;
        let composition_offset = i32::try_from(f.pts - dts)
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

/// AAC passthrough samples for grid slots `[first, first + count)`: each frame goes to the slot
/// its presentation time rounds to (`slot_of`); a slot with two frames keeps the first, a
/// missing slot is covered by the previous frame's duration, and missing leading slots repeat
/// the first frame so the segment still starts at its slot.
pub fn audio_run(
    frames: Vec<Timed>,
    slot_of: impl Fn(i64) -> i64,
    first: i64,
    count: u32,
    origin: i64,
) -> Result<TrackRun, PipelineError> {
    const FRAME: i64 = plan::AAC_FRAME;
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
    let base = u64::try_from(origin + first * FRAME)
        .map_err(|_| PipelineError::Timing("audio segment before time 0"))?;
    let n = filled.len();
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let next = if i + 1 < n { filled[i + 1].0 } else { end };
        let duration = u32::try_from((next - filled[i].0) * FRAME)
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
        let run = video_run(frames, 0, 280).unwrap();
        assert_eq!(run.base_decode_time, 0);
        assert_eq!(run.duration(), 280);
        let ctos: Vec<i32> = run.samples.iter().map(|s| s.composition_offset).collect();
        // dts = 0,40,80,...; pts - dts
        assert_eq!(ctos, vec![0, 80, -40, -40, 80, -40, -40]);
        assert!(run.samples.iter().all(|s| s.duration == 40));
    }

    #[test]
    fn consecutive_windows_join_exactly() {
        let mut frames = Vec::new();
        for i in 0..100i64 {
            frames.push(f(i * 40, i % 25 == 0));
        }
        let a = video_run(window(frames.clone(), 0, 2000), 0, 2000).unwrap();
        let b = video_run(window(frames, 2000, 4000), 2000, 4000).unwrap();
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
        let run = video_run(w, 0, 200).unwrap();
        assert_eq!(run.duration(), 200);
    }

    #[test]
    fn a_window_not_starting_on_a_keyframe_is_an_error() {
        assert!(video_run(vec![f(0, false)], 0, 40).is_err());
        assert!(video_run(vec![], 0, 40).is_err());
    }

    #[test]
    fn audio_slots_fill_gaps_and_keep_joins() {
        // Frames at ms timestamps of 1024-sample frames at 48 kHz (21.333 ms), one missing.
        let slot = |pts: i64| plan::rescale(pts * 48, 1, 1024);
        let frames: Vec<Timed> = [0i64, 21, 43, 85, 107]
            .iter()
            .map(|&ms| f(ms, true))
            .collect();
        let run = audio_run(frames, slot, 0, 6, 0).unwrap();
        let d: Vec<u32> = run.samples.iter().map(|s| s.duration).collect();
        assert_eq!(d, vec![1024, 1024, 2048, 1024, 1024]);
        assert_eq!(run.duration(), 6 * 1024);
        // A segment starting at slot 2 whose first frame is missing repeats the first present one.
        let frames: Vec<Timed> = [64i64, 85].iter().map(|&ms| f(ms, true)).collect();
        let run = audio_run(frames, slot, 2, 3, 0).unwrap();
        assert_eq!(run.base_decode_time, 2048);
        assert_eq!(run.duration(), 3 * 1024);
    }
}
