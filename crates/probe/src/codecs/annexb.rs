//! The Annex B byte stream (ITU-T H.264 Annex B, H.265 Annex B): NAL units behind start codes
//! (`00 00 01`, or `00 00 00 01` with its `zero_byte`), and emulation prevention (§7.4.1).

/// Removes emulation-prevention bytes (`00 00 03` → `00 00`) from a NAL unit payload.
pub fn unescape_rbsp(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// The NAL units of an Annex B byte stream, each without its start code, in order.
///
/// Bytes before the first start code are not a NAL unit and are skipped. A NAL unit never ends
/// with a zero byte (§7.4.1: its last byte holds the `rbsp_stop_one_bit`, or the `03` of an
/// escaped `cabac_zero_word`), so the zero bytes before the next start code —
/// `trailing_zero_8bits` (§B.1) or the `zero_byte` of a 4-byte start code — are stripped, and a
/// unit left empty is not yielded.
pub fn nal_units(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = first_start_code(data).map_or(&[][..], |p| &data[p..]);
    std::iter::from_fn(move || loop {
        if rest.is_empty() {
            return None;
        }
        let (unit, next) = match first_start_code(rest) {
            Some(p) => (&rest[..p - 3], &rest[p..]),
            None => (rest, &[][..]),
        };
        rest = next;
        let end = unit.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        if end > 0 {
            return Some(&unit[..end]);
        }
    })
}

/// The position just after the first `00 00 01` in `data`.
fn first_start_code(data: &[u8]) -> Option<usize> {
    data.windows(3).position(|w| w == [0, 0, 1]).map(|p| p + 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_emulation_prevention() {
        assert_eq!(unescape_rbsp(&[0, 0, 3, 1, 0, 0, 3]), vec![0, 0, 1, 0, 0]);
    }

    #[test]
    fn splits_three_and_four_byte_start_codes() {
        let data = [0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 1, 0x65];
        let nals: Vec<_> = nal_units(&data).collect();
        assert_eq!(nals, vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65][..]]);
    }

    /// The copies this replaced disagreed: one kept the last unit's trailing zeros and yielded
    /// empty units. trailing_zero_8bits belong to the byte stream (§B.1), wherever they are.
    #[test]
    fn strips_trailing_zeros_and_never_yields_empty_units() {
        let data = [
            9, 9, 0, 0, 1, 0x67, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0x65, 7, 0, 0,
        ];
        let nals: Vec<_> = nal_units(&data).collect();
        assert_eq!(nals, vec![&[0x67, 1][..], &[0x65, 7][..]]);
        assert_eq!(nal_units(&[0, 0, 1, 0, 0]).count(), 0);
        assert_eq!(nal_units(&[1, 2, 3]).count(), 0);
        assert_eq!(nal_units(&[]).count(), 0);
        assert_eq!(nal_units(&[0, 0, 1]).count(), 0);
    }
}
