//! Matroska / WebM (RFC 9559): blocks from `probe::mkv::blocks::BlockReader`, lacing undone
//! (§10.3: Xiph, EBML and fixed-size lacing), frame times interpolated inside a lace.

use std::collections::BTreeMap;

use ebml_iterable::tools::read_vint;
use probe::mkv::blocks::{Block, BlockReader};
use probe::time::rescale;
use probe::{Codec, MediaIndex};

use crate::{DemuxError, Demuxed, Frame, TrackInfo};

const NAME: &str = "matroska";

/// Samples per AAC frame (ISO/IEC 14496-3; 1024 for AAC-LC and the AAC core of HE-AAC).
const AAC_FRAME: i64 = 1024;

/// The Matroska demuxer.
#[derive(Debug)]
pub(crate) struct Mkv {
    tracks: BTreeMap<u64, TrackInfo>,
}

impl Mkv {
    pub fn new(index: &MediaIndex) -> Mkv {
        Mkv {
            tracks: index
                .tracks
                .iter()
                .map(|t| (t.id, TrackInfo::of(t, index.container)))
                .collect(),
        }
    }

    pub fn frames(&self, bytes: &[u8], offset: u64, out: &mut Demuxed) -> Result<(), DemuxError> {
        let mut reader = BlockReader::new(bytes, offset);
        while let Some(b) = reader.next_block()? {
            let Some(t) = self.tracks.get(&b.track) else {
                continue;
            };
            let frames = out.tracks.entry(t.id).or_default();
            block_frames(t, &b, frames)?;
        }
        Ok(())
    }
}

/// Ticks of one frame: AAC 1024 samples at the track's rate, else DefaultDuration.
fn frame_ticks(t: &TrackInfo) -> Option<(i64, i64)> {
    // As a fraction (numerator, denominator) of ticks, so lace times do not accumulate rounding.
    let ts = i64::from(t.timescale);
    if t.codec == Codec::Aac && t.sample_rate > 0 {
        return Some((AAC_FRAME * ts, i64::from(t.sample_rate)));
    }
    let ns = i64::try_from(t.default_duration_ns?).ok()?;
    Some((ns.checked_mul(ts)?, 1_000_000_000))
}

fn block_frames(t: &TrackInfo, b: &Block<'_>, out: &mut Vec<Frame>) -> Result<(), DemuxError> {
    let per = frame_ticks(t);
    let default_ticks = t
        .default_duration_ns
        .and_then(|ns| i64::try_from(ns).ok())
        .map(|ns| rescale(ns, i64::from(t.timescale), 1_000_000_000))
        .and_then(|d| u32::try_from(d).ok());
    let block_duration = b.duration.and_then(|d| u32::try_from(d).ok());
    let timestamp = b.timestamp.saturating_sub(t.delay);
    if b.lacing() == 0 {
        out.push(Frame {
            pts: timestamp,
            dts: None,
            duration: block_duration.or(default_ticks),
            keyframe: b.keyframe,
            data: t.convert(b.payload, b.offset)?,
        });
        return Ok(());
    }
    let laced = unlace(b.lacing(), b.payload).map_err(|what| {
        DemuxError::malformed(NAME, b.offset, format!("track {}: {what}", b.track))
    })?;
    let n = laced.len() as i64;
    for (i, data) in laced.into_iter().enumerate() {
        let i = i as i64;
        let (pts, duration) = match (per, block_duration) {
            (Some((num, den)), _) => (
                timestamp.saturating_add(rescale(i, num, den)),
                u32::try_from(rescale(1, num, den)).ok(),
            ),
            (None, Some(d)) => (
                timestamp.saturating_add(rescale(i, i64::from(d), n)),
                u32::try_from(rescale(1, i64::from(d), n)).ok(),
            ),
            (None, None) => (timestamp, None),
        };
        out.push(Frame {
            pts,
            dts: None,
            duration,
            keyframe: b.keyframe,
            data: t.convert(data, b.offset)?,
        });
    }
    Ok(())
}

/// Splits a laced block's payload (after the block header: the frame count − 1, the lace
/// sizes, the frames) into its frames. `lacing`: 1 Xiph, 2 fixed-size, 3 EBML (RFC 9559
/// §10.3); 0 means no lacing (one frame).
pub fn unlace(lacing: u8, payload: &[u8]) -> Result<Vec<&[u8]>, String> {
    if lacing == 0 {
        return Ok(vec![payload]);
    }
    let (&count, mut rest) = payload
        .split_first()
        .ok_or_else(|| "laced block without a frame count".to_string())?;
    let n = usize::from(count) + 1;
    let mut sizes: Vec<usize> = Vec::with_capacity(n);
    match lacing {
        1 => {
            for _ in 0..n - 1 {
                let mut size = 0usize;
                loop {
                    let (&b, r) = rest
                        .split_first()
                        .ok_or_else(|| "Xiph lace sizes cut short".to_string())?;
                    rest = r;
                    size += usize::from(b);
                    if b != 255 {
                        break;
                    }
                }
                sizes.push(size);
            }
        }
        3 => {
            let mut prev: i64 = 0;
            for k in 0..n - 1 {
                let (v, len) = match read_vint(rest) {
                    Ok(Some(v)) => v,
                    _ => return Err("EBML lace size cut short or invalid".to_string()),
                };
                rest = rest.get(len..).unwrap_or_default();
                let v = i64::try_from(v).map_err(|_| "EBML lace size too large".to_string())?;
                let size = if k == 0 {
                    v
                } else {
                    // A signed VINT: the raw value minus 2^(7·len − 1) − 1.
                    let bias = (1i64 << (7 * len as u32 - 1)) - 1;
                    prev.checked_add(v - bias)
                        .ok_or_else(|| "EBML lace size overflows".to_string())?
                };
                if size < 0 {
                    return Err(format!("EBML lace size {size}"));
                }
                prev = size;
                sizes.push(usize::try_from(size).map_err(|_| "lace size".to_string())?);
            }
        }
        2 => {
            if rest.len() % n != 0 {
                return Err(format!(
                    "fixed-size lacing of {n} frames over {} bytes",
                    rest.len()
                ));
            }
            sizes.resize(n - 1, rest.len() / n);
        }
        other => return Err(format!("lacing {other}")),
    }
    let listed: usize = sizes
        .iter()
        .try_fold(0usize, |a, &s| a.checked_add(s))
        .unwrap_or(usize::MAX);
    if listed > rest.len() {
        return Err(format!(
            "lace sizes add up to {listed} bytes, the block has {}",
            rest.len()
        ));
    }
    sizes.push(rest.len() - listed);
    let mut frames = Vec::with_capacity(n);
    for s in sizes {
        let (f, r) = rest.split_at(s);
        frames.push(f);
        rest = r;
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlaces_xiph() {
        // 3 frames: 300, 2, and the rest (4).
        let mut p = vec![2, 255, 45, 2];
        p.extend(std::iter::repeat_n(7u8, 300));
        p.extend([8, 8]);
        p.extend([9, 9, 9, 9]);
        let f = unlace(1, &p).unwrap();
        assert_eq!(f.iter().map(|x| x.len()).collect::<Vec<_>>(), [300, 2, 4]);
        assert!(f[0].iter().all(|&b| b == 7) && f[2] == [9, 9, 9, 9]);
        // Sizes past the end.
        assert!(unlace(1, &[1, 200, 1, 2]).is_err());
        assert!(unlace(1, &[1, 255]).is_err());
    }

    #[test]
    fn unlaces_ebml() {
        // 4 frames: 5, 7 (+2), 4 (−3), rest 2. Signed 1-byte VINTs: value + 63.
        let mut p = vec![3, 0x85, 0x80 | (2 + 63), 0x80 | (63 - 3)];
        p.extend(std::iter::repeat_n(1u8, 5 + 7 + 4 + 2));
        let f = unlace(3, &p).unwrap();
        assert_eq!(f.iter().map(|x| x.len()).collect::<Vec<_>>(), [5, 7, 4, 2]);
        // A negative size.
        assert!(unlace(3, &[2, 0x81, 0x80, 0, 0]).is_err());
    }

    #[test]
    fn unlaces_fixed() {
        let f = unlace(2, &[2, 1, 1, 2, 2, 3, 3]).unwrap();
        assert_eq!(f, vec![&[1, 1][..], &[2, 2], &[3, 3]]);
        assert!(unlace(2, &[2, 1, 1, 2, 2, 3]).is_err());
        assert!(unlace(2, &[]).is_err());
        assert_eq!(unlace(0, &[5, 6]).unwrap(), vec![&[5, 6][..]]);
    }

    #[test]
    fn laced_aac_times_follow_the_frame_grid() {
        let t = TrackInfo {
            id: 2,
            codec: Codec::Aac,
            timescale: 1000,
            sample_rate: 48_000,
            nal: None,
            default_duration_ns: None,
            delay: 0,
        };
        let b = Block {
            track: 2,
            timestamp: 100,
            keyframe: true,
            duration: None,
            flags: 0x80 | (2 << 1),
            payload: &[2, 1, 2, 3],
            offset: 0,
        };
        let mut out = Vec::new();
        block_frames(&t, &b, &mut out).unwrap();
        let pts: Vec<i64> = out.iter().map(|f| f.pts).collect();
        // 1024 / 48000 s = 21.333 ms.
        assert_eq!(pts, [100, 121, 143]);
        assert_eq!(out[1].data, vec![2]);
    }
}
