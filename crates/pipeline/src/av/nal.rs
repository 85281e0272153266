//! H.264 NAL unit plumbing for the encoder's output (ITU-T H.264 Annex B byte streams and the
//! ISO/IEC 14496-15 §5.3 `AVCDecoderConfigurationRecord`). Pure and safe.

use super::AvError;

/// NAL unit type of a sequence parameter set (H.264 Table 7-1).
const NAL_SPS: u8 = 7;
/// NAL unit type of a picture parameter set.
const NAL_PPS: u8 = 8;

/// Splits an Annex B byte stream into NAL unit payloads (without start codes). Bytes before the
/// first start code are ignored; trailing zero bytes of a NAL unit (`trailing_zero_8bits`, or
/// the leading zero of the next 4-byte start code) are dropped.
pub fn split_annex_b(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new(); // (start of start code, start of payload)
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push((i, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut nals = Vec::with_capacity(starts.len());
    for (k, &(_, payload)) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map_or(data.len(), |&(sc, _)| sc);
        let mut nal = &data[payload..end];
        while let [rest @ .., 0] = nal {
            nal = rest;
        }
        if !nal.is_empty() {
            nals.push(nal);
        }
    }
    nals
}

/// Converts an Annex B access unit into 4-byte length-prefixed NAL units (the `avc1` sample
/// format, ISO/IEC 14496-15 §5.3.2 with `lengthSizeMinusOne` = 3).
pub fn annex_b_to_length_prefixed(data: &[u8]) -> Result<Vec<u8>, AvError> {
    let nals = split_annex_b(data);
    let mut out = Vec::with_capacity(data.len() + 4 * nals.len());
    for nal in nals {
        let len = u32::try_from(nal.len())
            .map_err(|_| AvError::Mismatch("NAL unit longer than 4 GiB".into()))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(nal);
    }
    Ok(out)
}

/// Builds an `AVCDecoderConfigurationRecord` (avcC body) from Annex B SPS/PPS NAL units, as x264
/// writes them into the encoder's extradata. For the High profiles the record carries the
/// §5.3.3.1.2 extension: 4:2:0, 8-bit luma and chroma (the only format we encode).
pub fn avcc_from_annex_b(extradata: &[u8]) -> Result<Vec<u8>, AvError> {
    let nals = split_annex_b(extradata);
    let sps: Vec<&[u8]> = nals
        .iter()
        .copied()
        .filter(|n| n[0] & 0x1f == NAL_SPS)
        .collect();
    let pps: Vec<&[u8]> = nals
        .iter()
        .copied()
        .filter(|n| n[0] & 0x1f == NAL_PPS)
        .collect();
    let first = sps
        .first()
        .ok_or_else(|| AvError::Mismatch("encoder extradata has no SPS".into()))?;
    if first.len() < 4 || pps.is_empty() || sps.len() > 31 || pps.len() > 255 {
        return Err(AvError::Mismatch(format!(
            "encoder extradata: {} SPS, {} PPS",
            sps.len(),
            pps.len()
        )));
    }
    let (profile, compat, level) = (first[1], first[2], first[3]);
    let mut out = vec![1, profile, compat, level, 0xfc | 3, 0xe0 | sps.len() as u8];
    for s in &sps {
        push_u16_prefixed(&mut out, s)?;
    }
    out.push(pps.len() as u8);
    for p in &pps {
        push_u16_prefixed(&mut out, p)?;
    }
    if matches!(profile, 100 | 110 | 122 | 144) {
        // chroma_format_idc = 1, bit depths 8 (minus 8 = 0), no SPS extensions.
        out.extend_from_slice(&[0xfc | 1, 0xf8, 0xf8, 0]);
    }
    Ok(out)
}

fn push_u16_prefixed(out: &mut Vec<u8>, nal: &[u8]) -> Result<(), AvError> {
    let len = u16::try_from(nal.len())
        .map_err(|_| AvError::Mismatch("parameter set longer than 65535 bytes".into()))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(nal);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_three_and_four_byte_start_codes() {
        let data = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 0, 1, 0x65, 9,
        ];
        let nals = split_annex_b(&data);
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
