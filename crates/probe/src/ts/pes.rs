//! PES packet header (ISO/IEC 13818-1 §2.4.3.6–2.4.3.7) and 33-bit timestamps (§2.4.3.7 PTS/DTS).
//!
//! ```text
//! 00 00 01 | stream_id 8 | PES_packet_length 16 | '10' flags 6 | PTS_DTS_flags 2 … |
//! PES_header_data_length 8 | [PTS 40] [DTS 40] … | payload
//! ```

/// Timestamps wrap at 2^33 ticks of 90 kHz (about 26.5 hours).
pub const WRAP: i64 = 1 << 33;

/// Longest PES header: 9 fixed bytes + `PES_header_data_length` ≤ 255.
pub const MAX_HEADER: usize = 9 + 255;

/// What a PES header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PesHeader {
    /// Raw 33-bit PTS.
    pub pts: Option<u64>,
    /// Raw 33-bit DTS.
    pub dts: Option<u64>,
    /// Offset of the elementary stream payload from the `00 00 01` prefix.
    pub payload_offset: usize,
    /// `PES_packet_length`: bytes after the length field; 0 = unbounded (video).
    pub packet_length: usize,
}

/// The outcome of reading a PES header from the bytes gathered so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// The header needs this many bytes in all.
    NeedMore(usize),
    /// The header.
    Header(PesHeader),
    /// Not a valid PES header.
    Bad(&'static str),
}

/// Stream ids whose PES packets have no optional header (§2.4.3.7, Table 2-22 conditions).
fn no_optional_header(stream_id: u8) -> bool {
    matches!(
        stream_id,
        0xBC | 0xBE | 0xBF | 0xF0 | 0xF1 | 0xF2 | 0xF8 | 0xFF
    )
}

/// Reads a 5-byte PTS/DTS field (marker bits are not checked, as decoders do not).
fn timestamp(b: &[u8]) -> Option<u64> {
    let &[a, b1, c, d, e] = b.get(..5)? else {
        return None;
    };
    Some(
        (u64::from(a >> 1) & 7) << 30
            | u64::from(b1) << 22
            | u64::from(c >> 1) << 15
            | u64::from(d) << 7
            | u64::from(e >> 1),
    )
}

/// Parses the header at the start of `b` (the first bytes of a PES packet).
pub fn parse(b: &[u8]) -> Parsed {
    let Some(&[p0, p1, p2, stream_id, l0, l1]) = b.get(..6) else {
        if b.len() >= 3 && b.get(..3) != Some(&[0, 0, 1]) {
            return Parsed::Bad("packet_start_code_prefix is not 00 00 01");
        }
        return Parsed::NeedMore(9);
    };
    if [p0, p1, p2] != [0, 0, 1] {
        return Parsed::Bad("packet_start_code_prefix is not 00 00 01");
    }
    let packet_length = usize::from(u16::from_be_bytes([l0, l1]));
    if no_optional_header(stream_id) {
        return Parsed::Header(PesHeader {
            pts: None,
            dts: None,
            payload_offset: 6,
            packet_length,
        });
    }
    let Some(&[f0, f1, header_len]) = b.get(6..9) else {
        return Parsed::NeedMore(9);
    };
    if f0 & 0xC0 != 0x80 {
        return Parsed::Bad("optional header does not start with '10'");
    }
    let total = 9 + usize::from(header_len);
    if packet_length != 0 && total > 6 + packet_length {
        return Parsed::Bad("PES_header_data_length runs past PES_packet_length");
    }
    let flags = f1 >> 6;
    let needed = match flags {
        0 => 0,
        2 => 5,
        3 => 10,
        _ => return Parsed::Bad("PTS_DTS_flags is '01' (forbidden)"),
    };
    if usize::from(header_len) < needed {
        return Parsed::Bad("PES_header_data_length too short for its PTS/DTS");
    }
    let Some(fields) = b.get(9..total) else {
        return Parsed::NeedMore(total);
    };
    let pts = if flags >= 2 { timestamp(fields) } else { None };
    let dts = if flags == 3 {
        fields.get(5..).and_then(timestamp)
    } else {
        None
    };
    Parsed::Header(PesHeader {
        pts,
        dts,
        payload_offset: total,
        packet_length,
    })
}

/// Unwraps a 33-bit timestamp to the value nearest `reference` (a jump back by more than
/// 2^32 is a wrap-around: +2^33, and the other way round).
pub fn unwrap(raw: u64, reference: i64) -> i64 {
    let raw = (raw & ((1 << 33) - 1)) as i64;
    let epoch = reference.div_euclid(WRAP);
    let mut v = epoch.saturating_mul(WRAP).saturating_add(raw);
    let half = WRAP / 2;
    if v.saturating_sub(reference) > half {
        v = v.saturating_sub(WRAP);
    } else if reference.saturating_sub(v) > half {
        v = v.saturating_add(WRAP);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts_bytes(prefix: u8, v: u64) -> [u8; 5] {
        [
            (prefix << 4) | (((v >> 30) as u8 & 7) << 1) | 1,
            (v >> 22) as u8,
            (((v >> 15) as u8) << 1) | 1,
            (v >> 7) as u8,
            ((v as u8) << 1) | 1,
        ]
    }

    #[test]
    fn reads_pts_and_dts() {
        let mut b = vec![0, 0, 1, 0xE0, 0, 0, 0x80, 0xC0, 10];
        b.extend_from_slice(&ts_bytes(3, 133_200));
        b.extend_from_slice(&ts_bytes(1, (1 << 33) - 5));
        b.extend_from_slice(&[0, 0, 0, 1, 9]);
        let Parsed::Header(h) = parse(&b) else {
            panic!("{:?}", parse(&b))
        };
        assert_eq!(h.pts, Some(133_200));
        assert_eq!(h.dts, Some((1 << 33) - 5));
        assert_eq!(h.payload_offset, 19);
        assert_eq!(parse(&b[..12]), Parsed::NeedMore(19));
        assert_eq!(parse(&b[..4]), Parsed::NeedMore(9));
    }

    #[test]
    fn rejects_bad_headers() {
        assert!(matches!(parse(&[0, 0, 2, 0xE0]), Parsed::Bad(_)));
        // PTS flag with a 2-byte header.
        assert!(matches!(
            parse(&[0, 0, 1, 0xE0, 0, 0, 0x80, 0x80, 2, 0, 0]),
            Parsed::Bad(_)
        ));
        // Header longer than the PES packet.
        assert!(matches!(
            parse(&[0, 0, 1, 0xC0, 0, 4, 0x80, 0x80, 200]),
            Parsed::Bad(_)
        ));
    }

    #[test]
    fn unwraps_33_bit_wraparound() {
        let top = WRAP - 900;
        assert_eq!(unwrap(100, top), WRAP + 100);
        assert_eq!(unwrap((WRAP - 10) as u64, 50), -10);
        assert_eq!(unwrap(5000, 4000), 5000);
        assert_eq!(unwrap(5000, 3 * WRAP + 10), 3 * WRAP + 5000);
    }
}
