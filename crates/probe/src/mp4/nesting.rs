//! A nesting pre-walk for box bytes handed to `mp4-atom` (ISO/IEC 14496-12 §4.2 box headers,
//! ISO/IEC 14496-1 §8.3.3 descriptors inside `esds`).
//!
//! `mp4-atom` 0.17 decodes nested boxes by recursion, and the depth is the file's: 400 nested
//! `trak` headers (3 KB) overflow a 2 MiB thread stack and abort the process. [`check_nesting`]
//! walks the same bytes first, with an explicit stack, and rejects nesting deeper than
//! [`limits::MAX_DEPTH`] before any `Moov::decode` / `Moof::decode` runs.
//!
//! # Why it cannot under-count
//!
//! The walk does not mirror `mp4-atom` box by box (its decoders are too many and some read a
//! variable prefix before their children); it over-approximates it:
//!
//! 1. `mp4-atom` reads boxes out of a box body only in the decoders of the kinds in
//!    [`AT_ZERO`] and [`SCANNED`] (audited in its 0.17 source: every `decode_body` calling
//!    `Any::decode*`, `Header::decode_maybe`, `decode_atom`, `nested!`, `Codec::decode`,
//!    `DrefEntry::decode`), plus the `mebx` key table (`keys`: every entry, whatever its type,
//!    holds boxes) and `esds` descriptors (tags 3 and 4 hold descriptors). Its `Any` dispatch is
//!    global (by four-character code, whatever the parent), so the walk applies the same rule at
//!    every position, not only where the spec allows a box. A few kinds it does not descend into
//!    (`sinf`, `schi`, `rinf`, `dvh1`, …) are treated as containers too: that can only add depth.
//! 2. Children are looked for at every offset `mp4-atom` could start them: 0 for plain
//!    containers; every offset in the first [`SCAN_PREFIX`] bytes for full boxes and sample
//!    entries (the largest fixed prefix is a QuickTime v2 sound entry, 64 bytes; a visual entry
//!    is 78); every offset of the body for entries with strings before their children
//!    (`mett`, `metx`). A run of siblings is followed by their sizes exactly as `mp4-atom` does
//!    (size 0 = to the end of the parent, 1 = 64-bit size); the walk stops a run only where
//!    `mp4-atom` would stop or fail (a size below the header, a child past its parent).
//! 3. Every box and descriptor the walk meets counts one level of depth; the walk keeps the
//!    deepest level it reached at each (position, parent end) and skips a run it has already
//!    walked at least as deep, so the extra offsets cost linear, not exponential, work (and
//!    [`limits::MAX_NESTING_STEPS`] caps it).
//!
//! So any chain of boxes `mp4-atom` would recurse through is a chain this walk visits, and a
//! file it accepts is decoded with at most `MAX_DEPTH` levels of recursion. Real files nest 8 to
//! 12 levels (`moov/trak/mdia/minf/stbl/stsd/mp4a/esds` + three descriptors).

use std::collections::HashMap;

use super::boxes::BoxHeader;
use crate::{limits, ProbeError, Result};

/// Containers whose children start at body offset 0 (`nested!` decoders and friends).
const AT_ZERO: &[&[u8; 4]] = &[
    b"moov", b"trak", b"mdia", b"minf", b"stbl", b"dinf", b"edts", b"mvex", b"moof", b"traf",
    b"mfra", b"udta", b"ilst", b"iprp", b"ipco", b"wave", b"sinf", b"schi", b"rinf", b"tref",
    b"sv3d", b"proj", b"keys",
];

/// Full boxes and sample entries: a fixed prefix (≤ [`SCAN_PREFIX`] bytes) before children.
const SCANNED: &[&[u8; 4]] = &[
    b"meta", b"stsd", b"dref", b"avc1", b"avc3", b"hvc1", b"hev1", b"dvh1", b"dvhe", b"vp08",
    b"vp09", b"av01", b"jpeg", b"uncv", b"mp4v", b"encv", b"mp4a", b".mp3", b"Opus", b"fLaC",
    b"ac-3", b"ec-3", b"samr", b"sowt", b"twos", b"lpcm", b"ipcm", b"fpcm", b"in24", b"in32",
    b"fl32", b"fl64", b"s16l", b"enca", b"tx3g", b"text", b"wvtt", b"urim", b"camm", b"evte",
    b"mebx",
];

/// Sample entries with null-terminated strings before their children: every offset is tried.
const WHOLE_BODY: &[&[u8; 4]] = &[b"mett", b"metx"];

/// Body bytes scanned for the first child of a [`SCANNED`] box: more than any fixed prefix
/// `mp4-atom` reads (v2 sound entry 64, visual entry 78, `tx3g` 38, full box + count 8).
pub const SCAN_PREFIX: usize = 128;

/// Body bytes scanned for the first child descriptor of an ES_Descriptor (tag 3: 3 fixed bytes,
/// optional 2, a URL of up to 1 + 255, optional 2) or DecoderConfig (tag 4: 13 bytes).
const DESCRIPTOR_PREFIX: usize = 3 + 2 + 256 + 2;

/// A run of siblings to walk: boxes (or descriptors) from `pos` to `end`, each at `depth`.
#[derive(Debug, Clone, Copy)]
struct Run {
    pos: usize,
    end: usize,
    depth: usize,
    kind: RunKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum RunKind {
    Boxes,
    /// The entries of a `mebx` `keys` box: every entry holds boxes, whatever its type.
    KeyEntries,
    /// MPEG-4 descriptors (inside `esds`).
    Descriptors,
}

/// Rejects box nesting deeper than [`limits::MAX_DEPTH`] in `boxes` (a sequence of whole boxes,
/// e.g. a `moov` or `moof` with its header), with [`ProbeError::Limit`] `MAX_DEPTH`. Call it
/// before any `mp4-atom` decode of untrusted bytes. Never recurses; see the module docs for why
/// it never under-counts what `mp4-atom` would recurse through.
pub fn check_nesting(boxes: &[u8]) -> Result<()> {
    let mut stack = vec![Run {
        pos: 0,
        end: boxes.len(),
        depth: 1,
        kind: RunKind::Boxes,
    }];
    // Deepest level a sibling at (position, parent end, kind) was walked at.
    let mut seen: HashMap<(usize, usize, RunKind), usize> = HashMap::new();
    let mut steps: u64 = 0;
    while let Some(run) = stack.pop() {
        let mut pos = run.pos;
        loop {
            steps += 1;
            if steps > limits::MAX_NESTING_STEPS {
                return Err(ProbeError::limit(
                    "MAX_NESTING_STEPS",
                    steps,
                    limits::MAX_NESTING_STEPS,
                ));
            }
            let key = (pos, run.end, run.kind);
            if seen.get(&key).is_some_and(|&d| d >= run.depth) {
                break;
            }
            let (body, next) = match run.kind {
                RunKind::Boxes | RunKind::KeyEntries => match box_at(boxes, pos, run.end) {
                    Some(b) => b,
                    None => break,
                },
                RunKind::Descriptors => match descriptor_at(boxes, pos, run.end) {
                    Some(b) => b,
                    None => break,
                },
            };
            seen.insert(key, run.depth);
            if run.depth > limits::MAX_DEPTH {
                return Err(ProbeError::limit(
                    "MAX_DEPTH",
                    run.depth as u64,
                    limits::MAX_DEPTH as u64,
                ));
            }
            let children = match run.kind {
                RunKind::KeyEntries => Some((0..=0, RunKind::Boxes)),
                RunKind::Boxes => box_children(boxes, pos, body.end - body.start),
                RunKind::Descriptors => {
                    let tag = boxes.get(pos).copied().unwrap_or(0);
                    matches!(tag, 3 | 4).then(|| {
                        let last = DESCRIPTOR_PREFIX.min(body.end - body.start);
                        (0..=last, RunKind::Descriptors)
                    })
                }
            };
            if let Some((offsets, kind)) = children {
                for o in offsets {
                    if body.start + o < body.end {
                        stack.push(Run {
                            pos: body.start + o,
                            end: body.end,
                            depth: run.depth + 1,
                            kind,
                        });
                    }
                }
            }
            if next <= pos || next >= run.end {
                break;
            }
            pos = next;
        }
    }
    Ok(())
}

/// The body range of the box at `pos` (within `..end`) and where its next sibling starts, or
/// `None` where `mp4-atom` stops reading siblings (too few bytes, size below the header, a box
/// past its parent).
fn box_at(b: &[u8], pos: usize, end: usize) -> Option<(std::ops::Range<usize>, usize)> {
    let h = b.get(pos..end)?;
    let header = BoxHeader::parse(h).ok()??;
    let size = usize::try_from(header.size_within(h.len() as u64)).ok()?;
    let header_len = usize::from(header.header_len);
    if size < header_len || size > h.len() {
        return None;
    }
    Some((pos + header_len..pos + size, pos + size))
}

/// Which child runs the box at `pos` (body `len` bytes) holds: the offsets to try and their kind.
fn box_children(
    b: &[u8],
    pos: usize,
    len: usize,
) -> Option<(std::ops::RangeInclusive<usize>, RunKind)> {
    let kind: [u8; 4] = b.get(pos + 4..pos + 8)?.try_into().ok()?;
    // One integer compare per listed kind (this runs for every box and every scanned offset).
    let code = u32::from_be_bytes(kind);
    let is = |list: &[&[u8; 4]]| list.iter().any(|k| u32::from_be_bytes(**k) == code);
    if &kind == b"esds" {
        // A full box (4 bytes of version and flags), then descriptors.
        return Some((4..=4, RunKind::Descriptors));
    }
    if &kind == b"keys" {
        // `mebx` key table: entries of any type, each holding boxes (offsets 0..=8 also cover
        // the full-box `keys` of `meta`).
        return Some((0..=8.min(len), RunKind::KeyEntries));
    }
    if is(AT_ZERO) {
        return Some((0..=0, RunKind::Boxes));
    }
    if is(SCANNED) {
        return Some((0..=SCAN_PREFIX.min(len), RunKind::Boxes));
    }
    if is(WHOLE_BODY) {
        return Some((0..=len, RunKind::Boxes));
    }
    None
}

/// The body range of the descriptor at `pos` and where the next starts (tag, then a size of
/// up to four 7-bit groups, as `mp4-atom` reads it).
fn descriptor_at(b: &[u8], pos: usize, end: usize) -> Option<(std::ops::Range<usize>, usize)> {
    let d = b.get(pos..end)?;
    let mut size = 0usize;
    let mut i = 1usize;
    loop {
        let byte = *d.get(i)?;
        size = (size << 7) | usize::from(byte & 0x7F);
        i += 1;
        if byte & 0x80 == 0 {
            break;
        }
        if i == 5 {
            return None;
        }
    }
    let body_end = i.checked_add(size)?;
    if body_end > d.len() {
        return None;
    }
    Some((pos + i..pos + body_end, pos + body_end))
}
