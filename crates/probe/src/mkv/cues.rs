//! Cues (RFC 9559 §5.1.5): the seek index. Each `CuePoint` names a time (`CueTime`, Segment
//! Ticks) and, per track, the Segment Position (RFC 9559 §16) of the Cluster that holds the
//! block to start decoding from.

use webm_iterable::matroska_spec::{Master, MatroskaSpec};

use super::ebml::{lib_error, tags};
use crate::{limits, ProbeError, Result};

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

/// Decodes a Cues element (`bytes`, header included, found at `base`). Incomplete points
/// (no time, track or position) are skipped, as players do.
pub(crate) fn parse(bytes: &[u8], base: u64) -> Result<Vec<CueEntry>> {
    let mut out = Vec::new();
    let mut time = None;
    // (track, cluster) of the CuePoint being read; CueTime may come after them.
    let mut pending: Vec<(u64, u64)> = Vec::new();
    let (mut track, mut cluster) = (None, None);
    // Flat Start/End events: see `ebml::tags` on why nothing is buffered.
    for tag in tags(bytes) {
        match tag.map_err(|e| lib_error("Cues", base, &e))? {
            MatroskaSpec::CuePoint(Master::Start) => {
                time = None;
                pending.clear();
            }
            MatroskaSpec::CueTime(t) => time = Some(t),
            MatroskaSpec::CueTrackPositions(Master::Start) => (track, cluster) = (None, None),
            MatroskaSpec::CueTrack(t) => track = Some(t),
            MatroskaSpec::CueClusterPosition(c) => cluster = Some(c),
            MatroskaSpec::CueTrackPositions(Master::End) => {
                if let (Some(t), Some(c)) = (track.take(), cluster.take()) {
                    if out.len() + pending.len() >= limits::MAX_KEYFRAMES {
                        return Err(ProbeError::limit(
                            "MAX_KEYFRAMES",
                            (out.len() + pending.len()) as u64 + 1,
                            limits::MAX_KEYFRAMES as u64,
                        ));
                    }
                    pending.push((t, c));
                }
            }
            MatroskaSpec::CuePoint(Master::End) => {
                if let Some(time) = time.take() {
                    out.extend(pending.drain(..).map(|(track, cluster)| CueEntry {
                        time,
                        track,
                        cluster,
                    }));
                }
                pending.clear();
            }
            _ => {}
        }
    }
    Ok(out)
}
