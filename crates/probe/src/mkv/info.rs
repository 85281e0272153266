//! Info (RFC 9559 §5.1.2): `TimestampScale` and `Duration`, and how they become the index
//! timescale (RFC 9559 §11.1: Segment Ticks are `TimestampScale` nanoseconds).

use webm_iterable::matroska_spec::MatroskaSpec;

use super::ebml::{lib_error, malformed, tags, unsupported};
use crate::Result;

/// Default `TimestampScale`: 1 ms.
pub(crate) const DEFAULT_TIMESTAMP_SCALE: u64 = 1_000_000;

/// Longest duration we believe, in ticks (about 29 years at 1 ns ticks).
const MAX_DURATION_TICKS: f64 = 1e18;

/// The facts of Info the index needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Info {
    /// Nanoseconds per Segment Tick.
    pub timestamp_scale: u64,
    /// Segment duration in Segment Ticks, rounded, when the writer stated it.
    pub duration: Option<u64>,
}

impl Default for Info {
    fn default() -> Self {
        Info {
            timestamp_scale: DEFAULT_TIMESTAMP_SCALE,
            duration: None,
        }
    }
}

impl Info {
    /// Ticks per second: `1e9 / TimestampScale`, which must be a whole number so that index
    /// ticks and Matroska ticks are the same thing.
    pub fn timescale(&self) -> Result<u32> {
        let ts = self.timestamp_scale;
        if ts == 0 || 1_000_000_000 % ts != 0 {
            return Err(unsupported(format!(
                "TimestampScale {ts} ns does not divide one second"
            )));
        }
        u32::try_from(1_000_000_000 / ts)
            .map_err(|_| unsupported(format!("TimestampScale {ts} ns")))
    }
}

/// Decodes an Info element (`bytes`, header included, found at `base`).
pub(crate) fn parse(bytes: &[u8], base: u64) -> Result<Info> {
    let mut info = Info::default();
    for tag in tags(bytes) {
        match tag.map_err(|e| lib_error("Info", base, &e))? {
            MatroskaSpec::TimestampScale(v) => {
                if v == 0 {
                    return Err(malformed(base, "Info: TimestampScale 0"));
                }
                info.timestamp_scale = v;
            }
            MatroskaSpec::Duration(d) => {
                if !d.is_finite() || !(0.0..=MAX_DURATION_TICKS).contains(&d) {
                    return Err(malformed(base, format!("Info: Duration {d}")));
                }
                // In range by the check above, so the cast is exact enough.
                info.duration = Some(d.round() as u64);
            }
            _ => {}
        }
    }
    Ok(info)
}
