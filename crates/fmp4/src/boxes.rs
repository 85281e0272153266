//! The one box writer: every box that mp4-atom does not encode for us goes through
//! [`write_box`] / [`write_full_box`] (ISO/IEC 14496-12 §4.2: `size`, `type`, then for a
//! FullBox `version` and 24-bit `flags`). The 32-bit size is written as a placeholder and
//! backpatched once the body is known; a box over 4 GiB is an error (we never write
//! `largesize`).

use mp4_atom::Encode;

use crate::Fmp4Error;

/// Writes `kind` with the body `body` appends to `out`, then backpatches its size.
pub fn write_box<F>(out: &mut Vec<u8>, kind: &[u8; 4], body: F) -> Result<(), Fmp4Error>
where
    F: FnOnce(&mut Vec<u8>) -> Result<(), Fmp4Error>,
{
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(kind);
    body(out)?;
    let size = u32::try_from(out.len() - start)
        .map_err(|_| Fmp4Error::BoxTooLarge(String::from_utf8_lossy(kind).into_owned()))?;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

/// Writes a FullBox (§4.2.2): like [`write_box`], with `version` and the low 24 bits of
/// `flags` before the body.
pub fn write_full_box<F>(
    out: &mut Vec<u8>,
    kind: &[u8; 4],
    version: u8,
    flags: u32,
    body: F,
) -> Result<(), Fmp4Error>
where
    F: FnOnce(&mut Vec<u8>) -> Result<(), Fmp4Error>,
{
    write_box(out, kind, |out| {
        let [_, f1, f2, f3] = flags.to_be_bytes();
        out.extend_from_slice(&[version, f1, f2, f3]);
        body(out)
    })
}

/// Appends a box encoded by mp4-atom.
pub(crate) fn atom(out: &mut Vec<u8>, atom: &impl Encode) -> Result<(), Fmp4Error> {
    atom.encode(out)?;
    Ok(())
}
