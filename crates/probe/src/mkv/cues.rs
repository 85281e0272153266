//! Cues (RFC 9559 §5.1.5): the seek index. Each `CuePoint` names a time (`CueTime`, Segment
//! Ticks) and, per track, the Segment Position (RFC 9559 §16) of the Cluster that holds the
//! block to start decoding from.

use super::ebml::{malformed, read_element, uint, Element};
use crate::{limits, ProbeError, Result};

/// Element IDs read here (RFC 9559 §5.1.5).
const CUE_POINT: u32 = 0xBB;
const CUE_TIME: u32 = 0xB3;
const CUE_TRACK_POSITIONS: u32 = 0xB7;
const CUE_TRACK: u32 = 0xF7;
const CUE_CLUSTER_POSITION: u32 = 0xF1;

/// One (CuePoint, CueTrackPositions) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CueEntry {
    /// `CueTime`, in Segment Ticks.
    pub time: u64,
    /// `CueTrack`: the TrackNumber this entry is for.
    pub track: u64,
    /// `CueClusterPosition`: Segment Position of the Cluster.
    pub cluster: u64,
}

/// The children of the element body `buf[from..to]` (absolute offset of `buf[0]` is `base`):
/// each child's header and its body. Sizes are checked against the parent's end; an unknown
/// size (legal only for Segment and Cluster) is malformed here.
fn children(buf: &[u8], base: u64, from: usize, to: usize) -> Children<'_> {
    Children {
        buf,
        base,
        at: from,
        end: to,
    }
}

struct Children<'a> {
    buf: &'a [u8],
    base: u64,
    at: usize,
    end: usize,
}

impl<'a> Iterator for Children<'a> {
    type Item = Result<(Element, usize, usize)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.end {
            return None;
        }
        let pos = self.base + self.at as u64;
        let r = (|| {
            let head = self.buf.get(self.at..self.end).unwrap_or_default();
            let e = read_element(head, pos)?
                .ok_or_else(|| malformed(pos, "Cues: element header cut off"))?;
            let size = e
                .size
                .ok_or_else(|| malformed(pos, "Cues: child of unknown size"))?;
            let data = usize::try_from(e.data - self.base)
                .map_err(|_| malformed(pos, "Cues: offset overflows"))?;
            let end = usize::try_from(size)
                .ok()
                .and_then(|s| data.checked_add(s))
                .filter(|&end| end <= self.end)
                .ok_or_else(|| malformed(pos, "Cues: child larger than its parent"))?;
            Ok((e, data, end))
        })();
        match &r {
            Ok((_, _, end)) => self.at = *end,
            Err(_) => self.at = self.end,
        }
        Some(r)
    }
}

/// Decodes a Cues element (`bytes`, header included, found at `base`). Incomplete points
/// (no time, track or position) are skipped, as players do.
///
/// The Cues schema is two fixed levels deep (CuePoint → CueTrackPositions), so this walks
/// exactly those levels with the bounds-checked header reader — no recursion the input
/// controls, no generic tag machinery: 100 000 cue points parse in milliseconds. Unknown
/// children (CRC-32, Void, CueRelativePosition, CueReference…) are skipped by their size.
pub(crate) fn parse(bytes: &[u8], base: u64) -> Result<Vec<CueEntry>> {
    let cues = read_element(bytes, base)?.ok_or_else(|| malformed(base, "Cues: header cut off"))?;
    let body_end = cues
        .size
        .and_then(|s| {
            usize::try_from(cues.data - base)
                .ok()?
                .checked_add(usize::try_from(s).ok()?)
        })
        .map_or(bytes.len(), |e| e.min(bytes.len()));
    let body_start =
        usize::try_from(cues.data - base).map_err(|_| malformed(base, "Cues: offset overflows"))?;
    // A CuePoint takes at least ~12 bytes: never reserve more than the bytes can hold.
    let mut out = Vec::with_capacity((body_end.saturating_sub(body_start) / 12).min(1 << 16));
    for point in children(bytes, base, body_start, body_end) {
        let (e, from, to) = point?;
        if e.id != CUE_POINT {
            continue;
        }
        let mut time = None;
        let first = out.len();
        for child in children(bytes, base, from, to) {
            let (c, cf, ct) = child?;
            match c.id {
                CUE_TIME => time = Some(uint(&bytes[cf..ct], c.data, "CueTime")?),
                CUE_TRACK_POSITIONS => {
                    let (mut track, mut cluster) = (None, None);
                    for pos in children(bytes, base, cf, ct) {
                        let (p, pf, pt) = pos?;
                        match p.id {
                            CUE_TRACK => track = Some(uint(&bytes[pf..pt], p.data, "CueTrack")?),
                            CUE_CLUSTER_POSITION => {
                                cluster = Some(uint(&bytes[pf..pt], p.data, "CueClusterPosition")?)
                            }
                            _ => {}
                        }
                    }
                    if let (Some(track), Some(cluster)) = (track, cluster) {
                        if out.len() >= limits::MAX_KEYFRAMES {
                            return Err(ProbeError::limit(
                                "MAX_KEYFRAMES",
                                out.len() as u64 + 1,
                                limits::MAX_KEYFRAMES as u64,
                            ));
                        }
                        // The time is filled in below: CueTime may follow the positions.
                        out.push(CueEntry {
                            time: 0,
                            track,
                            cluster,
                        });
                    }
                }
                _ => {}
            }
        }
        match time {
            Some(t) => out[first..].iter_mut().for_each(|c| c.time = t),
            None => out.truncate(first),
        }
    }
    Ok(out)
}
