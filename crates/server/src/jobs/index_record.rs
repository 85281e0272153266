//! The cache format of a probe result: what [`super::Jobs::probed`] stores under the index key.

use bytes::Bytes;

use crate::error::AppError;

/// First bytes of a cached index: a name and a format version.
const PROBED_MAGIC: &[u8; 4] = b"HGI1";

/// A probe result as cache bytes: magic, the index as JSON (length-prefixed, u32 BE), then a
/// flag byte and the demuxer tables (`moov`, universal tables) when there are some.
pub(super) fn encode_probed(l: &pipeline::io::Loaded) -> std::result::Result<Bytes, AppError> {
    let json = serde_json::to_vec(&l.index).map_err(AppError::internal)?;
    let len = u32::try_from(json.len())
        .map_err(|_| AppError::Internal("index too large to cache".into()))?;
    let tables = l.tables.as_deref().unwrap_or_default();
    let mut out = Vec::with_capacity(4 + 4 + json.len() + 1 + tables.len());
    out.extend_from_slice(PROBED_MAGIC);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&json);
    out.push(u8::from(l.tables.is_some()));
    out.extend_from_slice(tables);
    Ok(Bytes::from(out))
}

/// The inverse of [`encode_probed`]; `None` for anything else. The cost is zero (nothing was
/// read from the source).
pub(super) fn decode_probed(b: &Bytes) -> Option<pipeline::io::Loaded> {
    let rest = b.strip_prefix(PROBED_MAGIC.as_slice())?;
    let len = usize::try_from(u32::from_be_bytes(rest.get(..4)?.try_into().ok()?)).ok()?;
    let json = rest.get(4..4usize.checked_add(len)?)?;
    let index: probe::MediaIndex = serde_json::from_slice(json).ok()?;
    let at = 4 + 4 + len;
    let tables = match b.get(at)? {
        0 => None,
        1 => Some(b.slice(at + 1..)),
        _ => return None,
    };
    Some(pipeline::io::Loaded {
        index,
        tables,
        cost: source::ProbeCost {
            requests: 0,
            bytes: 0,
        },
    })
}
