//! The EBML layer (RFC 8794) under Matroska: element headers read at any offset, and the bridge
//! that hands a fully fetched element to `webm-iterable` for typed decoding.
//!
//! Why a small header reader of our own: `WebmIterator` reads a *stream* from its start and wants
//! every byte of an element before it yields it. The probe instead jumps around a file it does
//! not hold: it reads one header at an arbitrary offset (a Cluster, a SeekHead target), decides
//! from the ID and size whether to skip, descend or fetch, and asks for bytes it is missing. That
//! needs "ID and size at offset N, or tell me you need more" — [`read_element`], a dozen
//! bounds-checked lines (RFC 8794 §5 Element ID, §6 Element Data Size, §6.2 unknown size). The
//! size VINT itself is decoded by `ebml_iterable::tools::read_vint`.
//!
//! Everything with typed children (EBML header, SeekHead, Info, Tracks, Cues) is decoded by
//! `tags`, a `WebmIterator` over the element's bytes. Before handing bytes over we check the
//! element's size against [`limits::MAX_EBML_ELEMENT`] and cap the iterator's own tag-size limit
//! at the slice length: the iterator grows its buffer to a child's *declared* size before it
//! checks that the bytes exist, so an uncapped hostile size would be a huge allocation.

use ebml_iterable::error::{CorruptedFileError, TagIteratorError, ToolError};
use ebml_iterable::iterator::AllowableErrors;
use webm_iterable::matroska_spec::MatroskaSpec;
use webm_iterable::WebmIterator;

use crate::{limits, ByteRange, ProbeError, Result, Store};

/// Container name used in errors.
pub const CONTAINER: &str = "matroska";

/// Longest element header we accept: a 4-byte ID (EBMLMaxIDLength) and an 8-byte size
/// (EBMLMaxSizeLength).
pub const MAX_HEADER: u64 = 12;

/// Element IDs the probe navigates by (RFC 9559 §5.1; RFC 8794 §11.2 for the EBML header).
pub mod id {
    /// EBML header.
    pub const EBML: u32 = 0x1A45_DFA3;
    /// Segment, the root element.
    pub const SEGMENT: u32 = 0x1853_8067;
    /// SeekHead: positions of the other top-level elements.
    pub const SEEK_HEAD: u32 = 0x114D_9B74;
    /// Info: TimestampScale, Duration.
    pub const INFO: u32 = 0x1549_A966;
    /// Tracks.
    pub const TRACKS: u32 = 0x1654_AE6B;
    /// Cues: the seek index.
    pub const CUES: u32 = 0x1C53_BB6B;
    /// Cluster: a run of blocks.
    pub const CLUSTER: u32 = 0x1F43_B675;
    /// Tags.
    pub const TAGS: u32 = 0x1254_C367;
    /// Chapters.
    pub const CHAPTERS: u32 = 0x1043_A770;
    /// Attachments.
    pub const ATTACHMENTS: u32 = 0x1941_A469;
    /// Void (global padding).
    pub const VOID: u32 = 0xEC;
    /// CRC-32 (global).
    pub const CRC32: u32 = 0xBF;
    /// Cluster Timestamp.
    pub const TIMESTAMP: u32 = 0xE7;
    /// SimpleBlock.
    pub const SIMPLE_BLOCK: u32 = 0xA3;
    /// BlockGroup.
    pub const BLOCK_GROUP: u32 = 0xA0;
    /// Block (inside a BlockGroup).
    pub const BLOCK: u32 = 0xA1;
    /// BlockDuration (inside a BlockGroup).
    pub const BLOCK_DURATION: u32 = 0x9B;
    /// ReferenceBlock (inside a BlockGroup): present means "not a keyframe".
    pub const REFERENCE_BLOCK: u32 = 0xFB;
}

/// A readable name for the IDs we navigate by, for error messages.
pub fn name(element: u32) -> &'static str {
    match element {
        id::EBML => "EBML",
        id::SEGMENT => "Segment",
        id::SEEK_HEAD => "SeekHead",
        id::INFO => "Info",
        id::TRACKS => "Tracks",
        id::CUES => "Cues",
        id::CLUSTER => "Cluster",
        id::TAGS => "Tags",
        id::CHAPTERS => "Chapters",
        id::ATTACHMENTS => "Attachments",
        id::VOID => "Void",
        id::CRC32 => "CRC-32",
        id::TIMESTAMP => "Timestamp",
        id::SIMPLE_BLOCK => "SimpleBlock",
        id::BLOCK_GROUP => "BlockGroup",
        id::BLOCK => "Block",
        id::BLOCK_DURATION => "BlockDuration",
        id::REFERENCE_BLOCK => "ReferenceBlock",
        _ => "element",
    }
}

/// Shorthand for a [`ProbeError::Malformed`] in this container.
pub(crate) fn malformed(offset: u64, what: impl Into<String>) -> ProbeError {
    ProbeError::malformed(CONTAINER, offset, what)
}

/// Shorthand for a [`ProbeError::Unsupported`] in this container.
pub(crate) fn unsupported(what: impl Into<String>) -> ProbeError {
    ProbeError::Unsupported {
        container: CONTAINER,
        what: what.into(),
    }
}

/// Shorthand for a [`ProbeError::Truncated`] in this container.
pub(crate) fn truncated(needed: u64, size: u64) -> ProbeError {
    ProbeError::Truncated {
        container: CONTAINER,
        needed,
        size,
    }
}

/// An element header: where the element is and how big it says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Element {
    /// The element ID, marker bits included (as the specs write them: `0x1A45DFA3`).
    pub id: u32,
    /// Absolute offset of the first ID byte.
    pub start: u64,
    /// Absolute offset of the first data byte.
    pub data: u64,
    /// Data size; `None` for the reserved "unknown size" (all VINT_DATA bits set, RFC 8794 §6.2).
    pub size: Option<u64>,
}

impl Element {
    /// Absolute offset one past the element, when its size is known (overflow was checked when
    /// the header was read).
    pub fn end(&self) -> Option<u64> {
        self.size.map(|s| self.data + s)
    }

    /// The end, or an error naming the element when its size is unknown.
    pub fn known_end(&self) -> Result<u64> {
        self.end().ok_or_else(|| {
            unsupported(format!(
                "{} (0x{:X}) of unknown size at byte {}",
                name(self.id),
                self.id,
                self.start
            ))
        })
    }
}

/// Reads the element header at the start of `buf`, which sits at absolute offset `at`.
/// `Ok(None)`: `buf` ends inside the header.
pub fn read_element(buf: &[u8], at: u64) -> Result<Option<Element>> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    // RFC 8794 §5: the ID is a VINT whose marker bit gives its length; Matroska caps it at 4.
    let id_len = first.leading_zeros() as usize + 1;
    if id_len > 4 {
        return Err(malformed(
            at,
            format!("element ID longer than 4 bytes (first byte 0x{first:02X})"),
        ));
    }
    let Some(id_bytes) = buf.get(..id_len) else {
        return Ok(None);
    };
    let id = id_bytes.iter().fold(0u32, |a, &b| (a << 8) | u32::from(b));
    let rest = buf.get(id_len..).unwrap_or_default();
    let (value, size_len) = match ebml_iterable::tools::read_vint(rest) {
        Ok(Some(v)) => v,
        Ok(None) => return Ok(None),
        Err(_) => {
            return Err(malformed(
                at,
                format!("{} (0x{id:X}): data size longer than 8 bytes", name(id)),
            ))
        }
    };
    // RFC 8794 §6.2: all VINT_DATA bits set means "unknown size", at any length.
    let unknown = size_len <= 8 && value == (1u64 << (7 * size_len)) - 1;
    let header_len = (id_len + size_len) as u64;
    let data = at
        .checked_add(header_len)
        .ok_or_else(|| malformed(at, "element offset overflows"))?;
    let size = if unknown {
        None
    } else {
        data.checked_add(value).ok_or_else(|| {
            malformed(
                at,
                format!("{} (0x{id:X}): size {value} overflows", name(id)),
            )
        })?;
        Some(value)
    };
    Ok(Some(Element {
        id,
        start: at,
        data,
        size,
    }))
}

/// Either a value, or the byte range that is missing to compute it.
#[derive(Debug)]
pub(crate) enum Fetch<T> {
    /// Here it is.
    Got(T),
    /// Fetch these bytes first.
    Need(ByteRange),
}

/// Unwraps a `Result<Fetch<T>>` inside a function returning `Result<Fetch<U>>`: passes a
/// [`Fetch::Need`] (and errors) up.
macro_rules! fetch {
    ($e:expr) => {
        match $e? {
            $crate::mkv::ebml::Fetch::Got(v) => v,
            $crate::mkv::ebml::Fetch::Need(r) => {
                return Ok($crate::mkv::ebml::Fetch::Need(r));
            }
        }
    };
}
pub(crate) use fetch;

/// The largest `e <= max` such that the store holds `[pos, e)` in one chunk; `None` when it does
/// not hold `pos` at all. Used to ask only for what is missing, so the driver's push lands
/// right after what we have and the store merges the two into one contiguous slice.
pub(crate) fn held_until(store: &Store, pos: u64, max: u64) -> Option<u64> {
    store.get(pos, pos)?;
    let (mut lo, mut hi) = (pos, max.max(pos));
    if store.has(pos, hi) {
        return Some(hi);
    }
    // Invariant: [pos, lo) held, [pos, hi) not.
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if store.has(pos, mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(lo)
}

/// The range to ask for when `[pos, want_end)` is missing: from the end of what is held at
/// `pos` (if anything) up to `want_end`, clipped to the file.
pub(crate) fn missing(store: &Store, pos: u64, want_end: u64, file_size: u64) -> ByteRange {
    let end = want_end.min(file_size);
    let from = held_until(store, pos, end).unwrap_or(pos);
    ByteRange::new(from, end)
}

/// The header of the element at `pos`. When its bytes are missing, asks for
/// `[pos, window_end)` (at least the header, at most the file).
pub(crate) fn header_at(
    store: &Store,
    file_size: u64,
    pos: u64,
    window_end: u64,
) -> Result<Fetch<Element>> {
    if pos >= file_size {
        return Err(truncated(pos.saturating_add(1), file_size));
    }
    let avail = (file_size - pos).min(MAX_HEADER);
    match store.get(pos, pos + avail) {
        Some(buf) => match read_element(buf, pos)? {
            Some(e) => Ok(Fetch::Got(e)),
            None => Err(truncated(pos + avail + 1, file_size)),
        },
        None => Ok(Fetch::Need(missing(
            store,
            pos,
            window_end.max(pos + avail),
            file_size,
        ))),
    }
}

/// All bytes of element `e` (header included), fetched whole. Checks the size against
/// [`limits::MAX_EBML_ELEMENT`] and the file size first.
pub(crate) fn element_bytes<'s>(
    store: &'s Store,
    file_size: u64,
    e: &Element,
) -> Result<Fetch<&'s [u8]>> {
    let end = e.known_end()?;
    let len = end - e.start;
    if len > limits::MAX_EBML_ELEMENT {
        return Err(ProbeError::limit(
            "MAX_EBML_ELEMENT",
            len,
            limits::MAX_EBML_ELEMENT,
        ));
    }
    if end > file_size {
        return Err(truncated(end, file_size));
    }
    match store.get(e.start, end) {
        Some(b) => Ok(Fetch::Got(b)),
        None => Ok(Fetch::Need(missing(store, e.start, end, file_size))),
    }
}

/// The data bytes `[e.data, e.data + n)` of element `e` (n clipped to its size), asking for
/// `[e.data, window_end)` when missing.
pub(crate) fn data_prefix<'s>(
    store: &'s Store,
    file_size: u64,
    e: &Element,
    n: u64,
    window_end: u64,
) -> Result<Fetch<&'s [u8]>> {
    let size = e.size.ok_or_else(|| {
        unsupported(format!(
            "{} of unknown size at byte {}",
            name(e.id),
            e.start
        ))
    })?;
    let end = e.data + n.min(size);
    if end > file_size {
        return Err(truncated(end, file_size));
    }
    match store.get(e.data, end) {
        Some(b) => Ok(Fetch::Got(b)),
        None => Ok(Fetch::Need(missing(
            store,
            e.data,
            window_end.max(end),
            file_size,
        ))),
    }
}

/// Reads a big-endian unsigned integer element body (RFC 8794 §7.2: 0 to 8 bytes).
pub fn uint(body: &[u8], at: u64, what: &str) -> Result<u64> {
    if body.len() > 8 {
        return Err(malformed(
            at,
            format!("{what}: integer of {} bytes", body.len()),
        ));
    }
    Ok(body.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b)))
}

/// A `WebmIterator` over one fully fetched element, yielding flat `Master::Start`/`End` events.
///
/// Unknown IDs (CRC-32, Void, elements newer than the crate's schema) come out as `RawTag`s
/// instead of errors; the per-tag size limit is the slice length so no declared size can make
/// it allocate more than we hold. Nothing is buffered into `Master::Full`: the iterator
/// buffers a master by recursing once per *sibling* (each buffered master's end is found while
/// the next one starts), so 3 600 CuePoints of a 2-hour file, or a hostile Tracks of a million
/// empty TrackEntries, would overflow the stack.
///
/// The iterator keeps a stack entry per open master, so 100 000 nested masters of unknown size
/// (two bytes each) would grow it without bound: [`Tags`] counts `Start`/`End` events and stops
/// with [`TagError::Depth`] past [`limits::MAX_DEPTH`], before the iterator reads further.
pub(crate) fn tags(bytes: &[u8]) -> Tags<'_> {
    let mut it = WebmIterator::with_capacity(bytes, &[], bytes.len().max(16));
    it.allow_errors(&[AllowableErrors::InvalidTagIds]);
    it.set_max_allowable_tag_size(Some(bytes.len()));
    Tags {
        inner: it,
        depth: 0,
        done: false,
    }
}

/// [`tags`]' iterator: `WebmIterator` events with a bound on master nesting.
pub(crate) struct Tags<'a> {
    inner: WebmIterator<&'a [u8]>,
    depth: usize,
    done: bool,
}

/// An error of [`Tags`].
#[derive(Debug)]
pub(crate) enum TagError {
    /// The library's.
    Lib(TagIteratorError),
    /// Masters nested deeper than [`limits::MAX_DEPTH`].
    Depth(usize),
}

impl Iterator for Tags<'_> {
    type Item = std::result::Result<MatroskaSpec, TagError>;

    fn next(&mut self) -> Option<Self::Item> {
        use ebml_iterable::specs::{EbmlTag, Master};
        if self.done {
            return None;
        }
        let tag = match self.inner.next()? {
            Ok(t) => t,
            Err(e) => {
                self.done = true;
                return Some(Err(TagError::Lib(e)));
            }
        };
        match tag.as_master() {
            Some(Master::Start) => {
                self.depth += 1;
                if self.depth > limits::MAX_DEPTH {
                    self.done = true;
                    return Some(Err(TagError::Depth(self.depth)));
                }
            }
            Some(Master::End) => self.depth = self.depth.saturating_sub(1),
            _ => {}
        }
        Some(Ok(tag))
    }
}

/// Turns an iterator error into a [`ProbeError::Malformed`] naming the element we were decoding
/// and an absolute offset (the iterator's positions are relative to the slice at `base`).
/// Messages stay short: the library's own `Display` may dump whole byte arrays.
pub(crate) fn lib_error(element: &str, base: u64, e: &TagError) -> ProbeError {
    let e = match e {
        TagError::Lib(e) => e,
        TagError::Depth(d) => {
            return ProbeError::limit("MAX_DEPTH", *d as u64, limits::MAX_DEPTH as u64)
        }
    };
    let (rel, what) = match e {
        TagIteratorError::CorruptedFileData(c) => match c {
            CorruptedFileError::InvalidTagId { position, tag_id } => {
                (Some(*position), format!("invalid element ID 0x{tag_id:X}"))
            }
            CorruptedFileError::InvalidTagData { position, tag_id } => (
                Some(*position),
                format!("invalid data in element 0x{tag_id:X}"),
            ),
            CorruptedFileError::HierarchyError {
                found_tag_id,
                current_parent_id,
            } => (
                None,
                format!(
                    "element 0x{found_tag_id:X} not allowed in {}",
                    current_parent_id.map_or("the root".to_string(), |p| format!("0x{p:X}"))
                ),
            ),
            CorruptedFileError::OversizedChildElement {
                position, tag_id, ..
            } => (
                Some(*position),
                format!("element 0x{tag_id:X} overruns its parent"),
            ),
            CorruptedFileError::InvalidTagSize {
                position,
                tag_id,
                size,
            } => (
                Some(*position),
                format!("element 0x{tag_id:X} declares {size} bytes, more than there are"),
            ),
        },
        TagIteratorError::UnexpectedEOF {
            tag_start, tag_id, ..
        } => (
            Some(*tag_start),
            match tag_id {
                Some(t) => format!("element 0x{t:X} ends past its parent"),
                None => "element header cut short".to_string(),
            },
        ),
        TagIteratorError::CorruptedTagData { tag_id, problem } => (
            None,
            format!(
                "element 0x{tag_id:X}: {}",
                match problem {
                    ToolError::FromUtf8Error(..) => "invalid UTF-8",
                    ToolError::ReadU64Overflow(_) | ToolError::ReadI64Overflow(_) =>
                        "integer longer than 8 bytes",
                    ToolError::ReadF64Mismatch(_) => "float not 4 or 8 bytes",
                    _ => "bad value",
                }
            ),
        ),
        TagIteratorError::ReadError { .. } => (None, "read error".to_string()),
    };
    let offset = base.saturating_add(rel.map_or(0, |r| r as u64));
    malformed(offset, format!("{element}: {what}"))
}

/// What the EBML header says (RFC 8794 §11.2; the DocType values are RFC 9559's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EbmlHeader {
    /// `DocType`: "matroska" or "webm".
    pub doc_type: String,
}

/// Newest Matroska version whose files we can read (`DocTypeReadVersion`).
const MAX_DOC_TYPE_READ_VERSION: u64 = 4;

/// Decodes and checks the EBML header element `bytes` (header included) found at `base`.
pub(crate) fn parse_ebml_header(bytes: &[u8], base: u64) -> Result<EbmlHeader> {
    let mut doc_type = None;
    for tag in tags(bytes) {
        let tag = tag.map_err(|e| lib_error("EBML header", base, &e))?;
        match tag {
            MatroskaSpec::EbmlReadVersion(v) if v > 1 => {
                return Err(unsupported(format!("EBMLReadVersion {v}")));
            }
            MatroskaSpec::EbmlMaxIdLength(v) if v > 4 => {
                return Err(unsupported(format!("EBMLMaxIDLength {v} (more than 4)")));
            }
            MatroskaSpec::EbmlMaxSizeLength(v) if v == 0 || v > 8 => {
                return Err(unsupported(format!("EBMLMaxSizeLength {v} (not 1 to 8)")));
            }
            MatroskaSpec::DocTypeReadVersion(v) if v > MAX_DOC_TYPE_READ_VERSION => {
                return Err(unsupported(format!("DocTypeReadVersion {v}")));
            }
            MatroskaSpec::DocType(t) => doc_type = Some(t),
            _ => {}
        }
    }
    let doc_type = doc_type.ok_or_else(|| malformed(base, "EBML header without DocType"))?;
    // Writers sometimes pad strings with NULs (RFC 8794 §7.4 allows it).
    let doc_type = doc_type.trim_end_matches('\0').to_string();
    if doc_type != "matroska" && doc_type != "webm" {
        return Err(unsupported(format!(
            "DocType {:?}",
            doc_type.chars().take(32).collect::<String>()
        )));
    }
    Ok(EbmlHeader { doc_type })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_headers() {
        // Segment, 8-byte unknown size.
        let b = [
            0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
        ];
        let e = read_element(&b, 40).unwrap().unwrap();
        assert_eq!((e.id, e.data, e.size), (id::SEGMENT, 52, None));
        // One-byte unknown size too.
        let e = read_element(&[0x1F, 0x43, 0xB6, 0x75, 0xFF], 0)
            .unwrap()
            .unwrap();
        assert_eq!(e.size, None);
        // Known size.
        let e = read_element(&[0xE7, 0x81, 0x05], 7).unwrap().unwrap();
        assert_eq!(
            (e.id, e.data, e.size, e.end()),
            (0xE7, 9, Some(1), Some(10))
        );
        // Short input.
        assert_eq!(read_element(&[0x1A, 0x45], 0).unwrap(), None);
        assert_eq!(read_element(&[0xE7], 0).unwrap(), None);
        assert_eq!(read_element(&[0xE7, 0x40], 0).unwrap(), None);
        // 5-byte ID, 9-byte size: errors.
        assert!(read_element(&[0x08, 1, 2, 3, 4, 0x81], 0).is_err());
        assert!(read_element(&[0xE7, 0x00, 1, 2, 3, 4, 5, 6, 7, 8], 0).is_err());
        // Size overflowing u64 offsets.
        let b = [0xE7, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE];
        assert!(read_element(&b, u64::MAX - 20).is_err());
    }
}
