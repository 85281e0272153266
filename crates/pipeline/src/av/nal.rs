//! H.264 NAL unit plumbing for the encoder's output (ITU-T H.264 Annex B byte streams and the
//! ISO/IEC 14496-15 §5.3 `AVCDecoderConfigurationRecord`). Pure and safe.

use probe::codecs::{annexb, h264};

use super::AvError;

/// Converts an Annex B access unit into 4-byte length-prefixed NAL units (the `avc1` sample
/// format, ISO/IEC 14496-15 §5.3.2 with `lengthSizeMinusOne` = 3). The units are split by
/// [`annexb::nal_units`] (trailing zero bytes dropped, no empty units).
pub fn annex_b_to_length_prefixed(data: &[u8]) -> Result<Vec<u8>, AvError> {
    let mut out = Vec::with_capacity(data.len() + 16);
    for nal in annexb::nal_units(data) {
        let len = u32::try_from(nal.len())
            .map_err(|_| AvError::Mismatch("NAL unit longer than 4 GiB".into()))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(nal);
    }
    Ok(out)
}

/// Builds an `AVCDecoderConfigurationRecord` (avcC body) from Annex B SPS/PPS NAL units, as x264
/// writes them into the encoder's extradata ([`h264::avcc`]: for the High profiles the record
/// carries the §5.3.3.1.2 extension read from the SPS).
pub fn avcc_from_annex_b(extradata: &[u8]) -> Result<Vec<u8>, AvError> {
    let (mut sps, mut pps) = (Vec::new(), Vec::new());
    for nal in annexb::nal_units(extradata) {
        match nal.first().map(|&b| h264::nal_type(b)) {
            Some(h264::NAL_SPS) => sps.push(nal),
            Some(h264::NAL_PPS) => pps.push(nal),
            _ => {}
        }
    }
    h264::avcc(&sps, &pps).ok_or_else(|| {
        AvError::Mismatch(format!(
            "encoder extradata: {} SPS, {} PPS (no avcC holds them)",
            sps.len(),
            pps.len()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_three_and_four_byte_start_codes() {
        let data = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 0, 1, 0x65, 9,
        ];
        let nals: Vec<_> = annexb::nal_units(&data).collect();
        assert_eq!(
            nals,
            vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 9][..]]
        );
        let lp = annex_b_to_length_prefixed(&data).unwrap();
        assert_eq!(
            lp,
            [0, 0, 0, 3, 0x67, 1, 2, 0, 0, 0, 2, 0x68, 3, 0, 0, 0, 2, 0x65, 9]
        );
    }

    #[test]
    fn avcc_for_high_profile() {
        let data = [0, 0, 0, 1, 0x67, 100, 0, 30, 0xaa, 0, 0, 1, 0x68, 0xbb];
        let avcc = avcc_from_annex_b(&data).unwrap();
        assert_eq!(
            avcc,
            [
                1, 100, 0, 30, 0xff, 0xe1, 0, 5, 0x67, 100, 0, 30, 0xaa, 1, 0, 2, 0x68, 0xbb, 0xfd,
                0xf8, 0xf8, 0
            ]
        );
        assert!(avcc_from_annex_b(&[0, 0, 1, 0x68, 1]).is_err());
        assert!(avcc_from_annex_b(&[]).is_err());
    }
}
