//! Transport packet header and adaptation field (ISO/IEC 13818-1 §2.4.3.2, §2.4.3.4, §2.4.3.5).
//!
//! ```text
//! sync_byte 8 (0x47) | transport_error_indicator 1 | payload_unit_start_indicator 1 |
//! transport_priority 1 | PID 13 | transport_scrambling_control 2 |
//! adaptation_field_control 2 | continuity_counter 4 | [adaptation_field] [payload]
//! ```

/// Bytes in a transport packet, sync byte included.
pub const PACKET_LEN: usize = 188;
/// The sync byte that starts every packet.
pub const SYNC_BYTE: u8 = 0x47;
/// The null packet PID (§2.4.3.3, Table 2-3), stuffing only.
pub const NULL_PID: u16 = 0x1FFF;

/// What one packet says about itself.
#[derive(Debug, Clone, Copy)]
pub struct Header {
    /// `transport_error_indicator`: a demodulator flagged the packet as damaged.
    pub tei: bool,
    /// `payload_unit_start_indicator`: a PES packet or a PSI section starts here.
    pub pusi: bool,
    /// The packet identifier.
    pub pid: u16,
}

/// Reads the first four bytes of a packet (sync byte already checked by the caller).
pub fn header(p: &[u8; PACKET_LEN]) -> Header {
    Header {
        tei: p[1] & 0x80 != 0,
        pusi: p[1] & 0x40 != 0,
        pid: u16::from_be_bytes([p[1] & 0x1F, p[2]]),
    }
}

/// The parts of a packet after its header.
#[derive(Debug, Clone, Copy)]
pub struct Body<'a> {
    /// `transport_scrambling_control` is not `00`: the payload is encrypted.
    pub scrambled: bool,
    /// `random_access_indicator` of the adaptation field (§2.4.3.5).
    pub rai: bool,
    /// The payload (empty when the packet has none).
    pub payload: &'a [u8],
}

/// Why a packet's body cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// `adaptation_field_control == 00` (reserved; decoders discard the packet).
    ReservedControl,
    /// `adaptation_field_length` runs past the packet (> 183, or > 182 with a payload).
    AdaptationLength(u8),
}

/// Splits a packet into its adaptation-field flags and payload.
pub fn body(p: &[u8; PACKET_LEN]) -> Result<Body<'_>, BodyError> {
    let scrambled = p[3] & 0xC0 != 0;
    let control = (p[3] >> 4) & 3;
    let (rai, payload_start) = match control {
        0b01 => (false, 4),
        0b10 | 0b11 => {
            let len = p[4];
            // §2.4.3.5: 0..=182 with a payload, 183 without one.
            let max = if control == 0b11 { 182 } else { 183 };
            if len > max {
                return Err(BodyError::AdaptationLength(len));
            }
            let rai = len > 0 && p[5] & 0x40 != 0;
            (
                rai,
                if control == 0b11 {
                    5 + usize::from(len)
                } else {
                    PACKET_LEN
                },
            )
        }
        _ => return Err(BodyError::ReservedControl),
    };
    Ok(Body {
        scrambled,
        rai,
        payload: p.get(payload_start..).unwrap_or(&[]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(b3: u8, af: &[u8]) -> [u8; PACKET_LEN] {
        let mut p = [0xFFu8; PACKET_LEN];
        p[..4].copy_from_slice(&[SYNC_BYTE, 0x41, 0x00, b3]);
        p[4..4 + af.len()].copy_from_slice(af);
        p
    }

    #[test]
    fn reads_header_and_rai() {
        let p = packet(0x30, &[7, 0x40]);
        let h = header(&p);
        assert!(h.pusi && !h.tei);
        assert_eq!(h.pid, 0x100);
        let b = body(&p).unwrap();
        assert!(b.rai && !b.scrambled);
        assert_eq!(b.payload.len(), PACKET_LEN - 12);
    }

    #[test]
    fn rejects_bad_adaptation_lengths() {
        assert_eq!(
            body(&packet(0x30, &[183])).unwrap_err(),
            BodyError::AdaptationLength(183)
        );
        assert_eq!(
            body(&packet(0x20, &[200])).unwrap_err(),
            BodyError::AdaptationLength(200)
        );
        assert!(body(&packet(0x20, &[183])).unwrap().payload.is_empty());
        assert_eq!(
            body(&packet(0x00, &[])).unwrap_err(),
            BodyError::ReservedControl
        );
    }
}
