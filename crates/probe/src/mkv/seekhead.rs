//! SeekHead (RFC 9559 §5.1.1): where the other top-level elements are, as Segment Positions
//! (RFC 9559 §16: offsets from the first byte of the Segment's data).

use webm_iterable::matroska_spec::{Master, MatroskaSpec};

use super::ebml::{lib_error, malformed, tags};
use crate::Result;

/// One `Seek` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SeekEntry {
    /// The target's element ID (`SeekID`).
    pub id: u32,
    /// The target's Segment Position (`SeekPosition`).
    pub position: u64,
}

/// Most `Seek` entries we keep from one SeekHead (real files have a handful; a second SeekHead
/// indexing every Cluster has thousands, which we do not need).
const MAX_ENTRIES: usize = 4096;

/// Decodes a SeekHead element (`bytes`, header included, found at `base`).
pub(crate) fn parse(bytes: &[u8], base: u64) -> Result<Vec<SeekEntry>> {
    let mut out = Vec::new();
    let (mut id, mut position) = (None, None);
    // Flat Start/End events: see `ebml::tags` on why nothing is buffered.
    for tag in tags(bytes) {
        match tag.map_err(|e| lib_error("SeekHead", base, &e))? {
            MatroskaSpec::Seek(Master::Start) => (id, position) = (None, None),
            MatroskaSpec::SeekID(b) => {
                if b.is_empty() || b.len() > 4 {
                    return Err(malformed(base, format!("SeekID of {} bytes", b.len())));
                }
                id = Some(b.iter().fold(0u32, |a, &x| (a << 8) | u32::from(x)));
            }
            MatroskaSpec::SeekPosition(p) => position = Some(p),
            MatroskaSpec::Seek(Master::End) => {
                if let (Some(id), Some(position)) = (id.take(), position.take()) {
                    if out.len() < MAX_ENTRIES {
                        out.push(SeekEntry { id, position });
                    }
                }
            }
            _ => {}
        }
    }
    Ok(out)
}
