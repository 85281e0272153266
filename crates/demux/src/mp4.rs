//! MP4 and fragmented MP4 (ISO/IEC 14496-12).
//!
//! - Sample tables (§8.7, `probe::mp4::sample_table`): every sample of every track is known
//!   from `moov`, so a range's frames are the samples whose bytes lie inside it. The bytes are
//!   not parsed, only cut.
//! - Fragments (§8.8): the range's top-level boxes are walked; each `moof` is decoded and its
//!   `traf`s give the samples (`probe::mp4::traf_samples`, with the `trex` defaults from
//!   `moov`); samples inside the range are kept. The planner's fragmented ranges start at a
//!   `moof` (the index's spans do).

use std::collections::BTreeMap;

use mp4_atom::{Decode, Moof, Moov};
use probe::mp4::boxes::{BoxHeader, BoxHeaderError};
use probe::mp4::{edit_list, sample_table, traf_samples, Sample, TrexDefaults};
use probe::{limits, Container, MediaIndex};

use crate::{DemuxError, Demuxed, Frame, TrackInfo};

const NAME: &str = "mp4";
/// Samples of one `traf` allowed beyond one per byte of the range (empty samples).
const MAX_EMPTY_SAMPLES: u64 = 4096;

/// One track's facts.
#[derive(Debug)]
struct Mp4Track {
    info: TrackInfo,
    /// Edit-list shift: pts = dts + cts − shift.
    shift: i64,
    /// Samples (non-fragmented files), in decode order.
    samples: Vec<Sample>,
    /// Sample indices sorted by offset, when decode order is not already offset order.
    by_offset: Option<Vec<u32>>,
    trex: TrexDefaults,
}

impl Mp4Track {
    /// The frame of the sample at file offset `at` (`size` bytes) when it lies wholly in
    /// `bytes` (file offset `offset`). `timing`: decode time and composition offset in media
    /// ticks before the edit shift, duration, sync flag.
    fn frame(
        &self,
        bytes: &[u8],
        offset: u64,
        at: u64,
        size: u32,
        (dts, cts, duration, sync): (i64, i64, u32, bool),
    ) -> Result<Option<Frame>, DemuxError> {
        let Some(a) = at.checked_sub(offset).and_then(|a| usize::try_from(a).ok()) else {
            return Ok(None);
        };
        let Some(data) = a.checked_add(size as usize).and_then(|b| bytes.get(a..b)) else {
            return Ok(None);
        };
        let dts = dts.saturating_sub(self.shift);
        Ok(Some(Frame {
            pts: dts.saturating_add(cts),
            dts: Some(dts),
            duration: Some(duration),
            keyframe: sync,
            data: self.info.convert(data, at)?,
        }))
    }
}

/// The MP4 demuxer.
#[derive(Debug)]
pub(crate) struct Mp4 {
    fragmented: bool,
    tracks: BTreeMap<u32, Mp4Track>,
}

impl Mp4 {
    /// Heap bytes of the sample tables.
    pub fn heap_bytes(&self) -> usize {
        self.tracks
            .values()
            .map(|t| {
                t.samples.capacity() * std::mem::size_of::<Sample>()
                    + t.by_offset.as_ref().map_or(0, |v| v.capacity() * 4)
            })
            .sum()
    }

    pub fn new(index: &MediaIndex, moov_bytes: &[u8]) -> Result<Mp4, DemuxError> {
        let at = index.moov.map_or(0, |r| r.start);
        // mp4-atom recurses as deep as the boxes nest: bound it first (probe issue 10).
        probe::mp4::check_nesting(moov_bytes)?;
        let mut slice = moov_bytes;
        let moov = Moov::decode(&mut slice)
            .map_err(|e| DemuxError::malformed(NAME, at, format!("moov: {e}")))?;
        probe::mp4::check_sample_claims(&moov, index.file_size)?;
        let fragmented = index.container == Container::FragmentedMp4;
        let movie_ts = moov.mvhd.timescale.max(1);
        let mut tracks = BTreeMap::new();
        let mut total: u64 = 0;
        for t in &index.tracks {
            let trak = moov
                .trak
                .iter()
                .find(|k| u64::from(k.tkhd.track_id) == t.id)
                .ok_or(DemuxError::MoovMismatch(t.id))?;
            let id = trak.tkhd.track_id;
            let (shift, _) = edit_list(trak, movie_ts);
            let samples = if fragmented {
                Vec::new()
            } else {
                sample_table(trak)?
            };
            total = total.saturating_add(samples.len() as u64);
            if total > limits::MAX_SAMPLES * 4 {
                return Err(DemuxError::Limit {
                    limit: "MAX_SAMPLES (all tracks)",
                    value: total,
                    max: limits::MAX_SAMPLES * 4,
                });
            }
            let sorted = samples.windows(2).all(|w| w[0].offset <= w[1].offset);
            let by_offset = (!sorted).then(|| {
                let mut v: Vec<u32> = (0..samples.len())
                    .map(|i| u32::try_from(i).unwrap_or(u32::MAX))
                    .collect();
                v.sort_by_key(|&i| samples.get(i as usize).map_or(0, |s| s.offset));
                v
            });
            tracks.insert(
                id,
                Mp4Track {
                    info: TrackInfo::of(t, index.container),
                    shift,
                    samples,
                    by_offset,
                    trex: TrexDefaults::of(&moov, id),
                },
            );
        }
        Ok(Mp4 { fragmented, tracks })
    }

    pub fn frames(&self, bytes: &[u8], offset: u64, out: &mut Demuxed) -> Result<(), DemuxError> {
        if self.fragmented {
            self.fragment_frames(bytes, offset, out)
        } else {
            self.table_frames(bytes, offset, out)
        }
    }

    /// Non-fragmented: the samples inside the range, from the tables.
    fn table_frames(&self, bytes: &[u8], offset: u64, out: &mut Demuxed) -> Result<(), DemuxError> {
        let end = offset + bytes.len() as u64;
        for t in self.tracks.values() {
            let inside = |s: &Sample| {
                s.offset >= offset && s.offset.saturating_add(u64::from(s.size)) <= end
            };
            let mut picked: Vec<usize> = match &t.by_offset {
                None => {
                    let a = t.samples.partition_point(|s| s.offset < offset);
                    let b = t.samples.partition_point(|s| s.offset < end);
                    (a..b)
                        .filter(|&i| t.samples.get(i).is_some_and(inside))
                        .collect()
                }
                Some(order) => {
                    let key = |i: &u32| t.samples.get(*i as usize).map_or(0, |s| s.offset);
                    let a = order.partition_point(|i| key(i) < offset);
                    let b = order.partition_point(|i| key(i) < end);
                    let mut v: Vec<usize> = order
                        .get(a..b)
                        .unwrap_or_default()
                        .iter()
                        .map(|&i| i as usize)
                        .filter(|&i| t.samples.get(i).is_some_and(inside))
                        .collect();
                    v.sort_unstable();
                    v
                }
            };
            if picked.is_empty() {
                continue;
            }
            let frames = out.tracks.entry(t.info.id).or_default();
            for i in picked.drain(..) {
                let Some(s) = t.samples.get(i) else { continue };
                let timing = (s.dts, s.cts, s.duration, s.sync);
                frames.extend(t.frame(bytes, offset, s.offset, s.size, timing)?);
            }
        }
        Ok(())
    }

    /// Fragmented: walk the top-level boxes of the range, decode each `moof`.
    fn fragment_frames(
        &self,
        bytes: &[u8],
        offset: u64,
        out: &mut Demuxed,
    ) -> Result<(), DemuxError> {
        let mut pos = 0usize;
        let mut next_dts: BTreeMap<u32, u64> = BTreeMap::new();
        let mut boxes = 0u64;
        while let Some((h, size)) = box_header(bytes, pos, offset)? {
            boxes += 1;
            if boxes > limits::MAX_TOP_LEVEL_BOXES {
                return Err(DemuxError::Limit {
                    limit: "MAX_TOP_LEVEL_BOXES",
                    value: boxes,
                    max: limits::MAX_TOP_LEVEL_BOXES,
                });
            }
            let box_start = offset + pos as u64;
            if &h.kind == b"moof" {
                let Some(body) = bytes.get(pos..pos.saturating_add(size)) else {
                    // A moof cut by the end of the range: nothing of it is whole.
                    break;
                };
                probe::mp4::check_nesting(body)?;
                let mut slice = body;
                let moof = Moof::decode(&mut slice)
                    .map_err(|e| DemuxError::malformed(NAME, box_start, format!("moof: {e}")))?;
                self.moof_frames(&moof, box_start, bytes, offset, &mut next_dts, out)?;
            }
            match pos.checked_add(size) {
                Some(p) if p > pos => pos = p,
                _ => break,
            }
        }
        Ok(())
    }

    fn moof_frames(
        &self,
        moof: &Moof,
        moof_start: u64,
        bytes: &[u8],
        offset: u64,
        next_dts: &mut BTreeMap<u32, u64>,
        out: &mut Demuxed,
    ) -> Result<(), DemuxError> {
        for traf in &moof.traf {
            let id = traf.tfhd.track_id;
            let Some(t) = self.tracks.get(&id) else {
                continue;
            };
            // A run of samples without per-sample fields costs no bytes in the moof, so its
            // count is capped by the bytes they could occupy (plus room for empty samples).
            let count: u64 = traf.trun.iter().map(|r| r.samples.len() as u64).sum();
            let max =
                limits::MAX_SAMPLES.min((bytes.len() as u64).saturating_add(MAX_EMPTY_SAMPLES));
            if count > max {
                return Err(DemuxError::Limit {
                    limit: "samples in one traf (MAX_SAMPLES, or the range's bytes)",
                    value: count,
                    max,
                });
            }
            let prev = match (traf.tfdt.as_ref(), next_dts.get(&id)) {
                (Some(_), _) => 0,
                (None, Some(&d)) => d,
                (None, None) => {
                    return Err(DemuxError::Unsupported(format!(
                        "track {id}: traf without tfdt at the start of a range (byte {moof_start})"
                    )))
                }
            };
            let (samples, after) = traf_samples(traf, moof_start, prev, t.trex)?;
            next_dts.insert(id, after);
            let frames = out.tracks.entry(t.info.id).or_default();
            for s in samples {
                let dts = i64::try_from(s.dts).unwrap_or(i64::MAX);
                let timing = (dts, s.cts, s.duration, s.sync);
                frames.extend(t.frame(bytes, offset, s.offset, s.size, timing)?);
            }
        }
        Ok(())
    }
}

/// The top-level box header at `pos` of `bytes` (file offset `base + pos`) and the box's whole
/// size; `None` when the bytes end inside the header. Size 0 runs to the end of the bytes.
fn box_header(
    bytes: &[u8],
    pos: usize,
    base: u64,
) -> Result<Option<(BoxHeader, usize)>, DemuxError> {
    let at = base + pos as u64;
    let rest = bytes.get(pos..).unwrap_or_default();
    let malformed = |e: BoxHeaderError| DemuxError::malformed(NAME, at, e.to_string());
    let Some(h) = BoxHeader::parse(rest).map_err(malformed)? else {
        return Ok(None);
    };
    h.check_kind().map_err(malformed)?;
    let size = usize::try_from(h.size_within(rest.len() as u64)).unwrap_or(usize::MAX);
    Ok(Some((h, size)))
}
