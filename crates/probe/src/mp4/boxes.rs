//! The box header (ISO/IEC 14496-12 §4.2), read in one place for every walker of box bytes:
//! the probe's top-level walk, the nesting pre-walk, the demuxer's fragment walk.
//!
//! `size` is 32 bits; `size == 1` means a 64-bit `largesize` follows the type; `size == 0`
//! means the box runs to the end of its container (the file, for a top-level box). A size
//! smaller than the header it needs is an error.

use std::fmt;

/// A box header as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoxHeader {
    /// The box type (four bytes; see [`BoxHeader::check_kind`]).
    pub kind: [u8; 4],
    /// Bytes of the header: 8, or 16 with a `largesize`.
    pub header_len: u8,
    /// The whole box's size, header included; `None` for `size == 0` (to the end of the
    /// container, see [`BoxHeader::size_within`]).
    pub size: Option<u64>,
}

/// Why a box header is not one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoxHeaderError {
    /// `size` (2 to 7) is smaller than the 8-byte header.
    SizeBelowHeader {
        /// The box type.
        kind: [u8; 4],
        /// The size found.
        size: u32,
    },
    /// `largesize` is smaller than the 16-byte header.
    LargesizeBelowHeader {
        /// The box type.
        kind: [u8; 4],
        /// The largesize found.
        size: u64,
    },
    /// The type is not printable ASCII: these bytes are not a box start.
    NotFourcc([u8; 4]),
}

impl fmt::Display for BoxHeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BoxHeaderError::SizeBelowHeader { kind, size } => {
                write!(f, "box '{}' size {size} < 8", fourcc(*kind))
            }
            BoxHeaderError::LargesizeBelowHeader { kind, size } => {
                write!(f, "box '{}' largesize {size} < 16", fourcc(*kind))
            }
            BoxHeaderError::NotFourcc(kind) => {
                write!(f, "box type {kind:02x?} is not a four-character code")
            }
        }
    }
}

impl std::error::Error for BoxHeaderError {}

impl BoxHeader {
    /// Reads the box header at the start of `b`. `Ok(None)` when `b` ends inside the header
    /// (fewer than 8 bytes, or fewer than 16 for a `largesize`). The type is not checked here:
    /// walkers of top-level boxes call [`BoxHeader::check_kind`]; the nesting walk must not
    /// (it follows `mp4-atom`, which accepts any type).
    pub fn parse(b: &[u8]) -> Result<Option<BoxHeader>, BoxHeaderError> {
        let Some(&[s0, s1, s2, s3, k0, k1, k2, k3]) = b.get(..8) else {
            return Ok(None);
        };
        let kind = [k0, k1, k2, k3];
        let (header_len, size) = match u32::from_be_bytes([s0, s1, s2, s3]) {
            0 => (8, None),
            1 => {
                let Some(&[l0, l1, l2, l3, l4, l5, l6, l7]) = b.get(8..16) else {
                    return Ok(None);
                };
                let large = u64::from_be_bytes([l0, l1, l2, l3, l4, l5, l6, l7]);
                if large < 16 {
                    return Err(BoxHeaderError::LargesizeBelowHeader { kind, size: large });
                }
                (16, Some(large))
            }
            s if s < 8 => return Err(BoxHeaderError::SizeBelowHeader { kind, size: s }),
            s => (8, Some(u64::from(s))),
        };
        Ok(Some(BoxHeader {
            kind,
            header_len,
            size,
        }))
    }

    /// The whole box's size when `rest` bytes remain in its container from the box's start
    /// (what `size == 0` stands for).
    pub fn size_within(&self, rest: u64) -> u64 {
        self.size.unwrap_or(rest)
    }

    /// Checks that the type is a four-character code (printable ASCII or space), as every
    /// box type is: anything else means the bytes are not a box start.
    pub fn check_kind(&self) -> Result<(), BoxHeaderError> {
        if self.kind.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
            Ok(())
        } else {
            Err(BoxHeaderError::NotFourcc(self.kind))
        }
    }
}

/// The type as text, `?` for bytes that are not printable.
pub fn fourcc(k: [u8; 4]) -> String {
    k.iter()
        .map(|&c| {
            if c.is_ascii_graphic() {
                char::from(c)
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_three_size_forms() {
        let h = BoxHeader::parse(b"\0\0\0\x10ftypisom").unwrap().unwrap();
        assert_eq!((h.kind, h.header_len, h.size), (*b"ftyp", 8, Some(16)));
        let h = BoxHeader::parse(b"\0\0\0\0mdat").unwrap().unwrap();
        assert_eq!((h.size, h.size_within(100)), (None, 100));
        let h = BoxHeader::parse(b"\0\0\0\x01mdat\0\0\0\x01\0\0\0\0")
            .unwrap()
            .unwrap();
        assert_eq!((h.header_len, h.size), (16, Some(1 << 32)));
    }

    #[test]
    fn short_bytes_are_none_and_bad_sizes_errors() {
        assert_eq!(BoxHeader::parse(b""), Ok(None));
        assert_eq!(BoxHeader::parse(b"\0\0\0\x10fty"), Ok(None));
        assert_eq!(BoxHeader::parse(b"\0\0\0\x01mdat\0\0\0"), Ok(None));
        assert!(matches!(
            BoxHeader::parse(b"\0\0\0\x04ftyp"),
            Err(BoxHeaderError::SizeBelowHeader { size: 4, .. })
        ));
        assert!(matches!(
            BoxHeader::parse(b"\0\0\0\x01mdat\0\0\0\0\0\0\0\x08"),
            Err(BoxHeaderError::LargesizeBelowHeader { size: 8, .. })
        ));
        let h = BoxHeader::parse(b"\0\0\0\x08\x01abc").unwrap().unwrap();
        assert_eq!(h.check_kind(), Err(BoxHeaderError::NotFourcc(*b"\x01abc")));
        assert_eq!(
            BoxHeader::parse(b"\0\0\0\x08free")
                .unwrap()
                .unwrap()
                .check_kind(),
            Ok(())
        );
    }
}
