//! H.264 / HEVC access units in the `avc1`/`hvc1` sample format (ISO/IEC 14496-15 §5.3.2,
//! §8.3.2): NAL units each preceded by a 4-byte big-endian length, without access unit
//! delimiters, filler data or parameter sets (those live in the sample entry's avcC / hvcC).
//!
//! NAL unit types: H.264 Table 7-1 (5 IDR, 7 SPS, 8 PPS, 9 AUD, 12 filler); HEVC Table 7-1
//! (16–23 IRAP, 32 VPS, 33 SPS, 34 PPS, 35 AUD, 38 filler).

use probe::codecs::{annexb, h264, hevc};
use probe::Codec;

use crate::DemuxError;

/// Which picture syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NalSyntax {
    /// H.264: one-byte NAL header, type in the low 5 bits.
    H264,
    /// HEVC: two-byte NAL header, type in bits 1..7 of the first byte.
    Hevc,
}

/// How a source frames NAL units, and how they are rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NalFormat {
    /// H.264 or HEVC.
    pub syntax: NalSyntax,
    /// `Some(n)`: each NAL unit is preceded by an n-byte length (avcC/hvcC
    /// `lengthSizeMinusOne + 1`); `None`: an Annex B byte stream (start codes, MPEG-TS).
    pub length_size: Option<u8>,
}

impl NalFormat {
    /// The format of a track: `None` for codecs other than H.264 and HEVC. The length size
    /// comes from the avcC (byte 4) or hvcC (byte 21) record, 4 when the record is missing.
    pub fn of(codec: &Codec, codec_private: &[u8], annexb: bool) -> Option<NalFormat> {
        let (syntax, at) = match codec {
            Codec::H264 => (NalSyntax::H264, 4),
            Codec::Hevc => (NalSyntax::Hevc, 21),
            _ => return None,
        };
        let length_size = if annexb {
            None
        } else {
            Some(codec_private.get(at).map_or(4, |b| (b & 3) + 1))
        };
        Some(NalFormat {
            syntax,
            length_size,
        })
    }

    /// The NAL unit type of a unit's first byte.
    fn nal_type(self, first: u8) -> u8 {
        match self.syntax {
            NalSyntax::H264 => h264::nal_type(first),
            NalSyntax::Hevc => hevc::nal_type(first),
        }
    }

    /// Dropped from the output: AUD, filler data and parameter sets.
    fn dropped(self, t: u8) -> bool {
        match self.syntax {
            NalSyntax::H264 => matches!(t, 7 | 8 | 9 | 12),
            NalSyntax::Hevc => matches!(t, 32..=35 | 38),
        }
    }

    /// An IDR (H.264) or IRAP (HEVC) picture.
    fn random_access(self, t: u8) -> bool {
        match self.syntax {
            NalSyntax::H264 => h264::is_idr(t),
            NalSyntax::Hevc => hevc::is_irap(t),
        }
    }

    /// Rewrites one access unit (found at file offset `at`) to 4-byte length-prefixed NAL units
    /// without AUD, filler and parameter sets.
    pub fn rewrite(self, data: &[u8], at: u64) -> Result<Vec<u8>, DemuxError> {
        self.rewrite_au(data, at).map(|(v, _)| v)
    }

    /// [`NalFormat::rewrite`], also saying whether the unit holds an IDR / IRAP picture.
    pub fn rewrite_au(self, data: &[u8], at: u64) -> Result<(Vec<u8>, bool), DemuxError> {
        let mut out = Vec::with_capacity(data.len() + 16);
        let mut key = false;
        let mut push = |nal: &[u8]| {
            let Some(&first) = nal.first() else { return };
            let t = self.nal_type(first);
            key |= self.random_access(t);
            if self.dropped(t) {
                return;
            }
            // A NAL unit longer than 4 GiB cannot be in a frame we hold.
            let len = u32::try_from(nal.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(nal);
        };
        match self.length_size {
            // Trailing zero bytes are stripped by the splitter (H.264 §B.1.1).
            None => annexb::nal_units(data).for_each(&mut push),
            Some(n) => {
                let n = usize::from(n);
                let mut pos = 0usize;
                while pos < data.len() {
                    let Some(len_bytes) = data.get(pos..pos + n) else {
                        return Err(DemuxError::malformed(
                            "nal",
                            at + pos as u64,
                            format!(
                                "NAL unit length cut short ({} bytes left)",
                                data.len() - pos
                            ),
                        ));
                    };
                    let len = len_bytes
                        .iter()
                        .fold(0usize, |a, &b| (a << 8) | usize::from(b));
                    let start = pos + n;
                    let Some(nal) = start.checked_add(len).and_then(|e| data.get(start..e)) else {
                        return Err(DemuxError::malformed(
                            "nal",
                            at + pos as u64,
                            format!(
                                "NAL unit of {len} bytes runs past its frame ({} bytes left)",
                                data.len() - start
                            ),
                        ));
                    };
                    push(nal);
                    pos = start + len;
                }
            }
        }
        Ok((out, key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H264_4: NalFormat = NalFormat {
        syntax: NalSyntax::H264,
        length_size: Some(4),
    };

    #[test]
    fn drops_aud_and_parameter_sets_and_widens_lengths() {
        // 2-byte lengths: AUD, SPS, IDR slice.
        let src = [0, 2, 0x09, 0xF0, 0, 3, 0x67, 1, 2, 0, 2, 0x65, 0x88];
        let f = NalFormat {
            length_size: Some(2),
            ..H264_4
        };
        let (out, key) = f.rewrite_au(&src, 0).unwrap();
        assert_eq!(out, vec![0, 0, 0, 2, 0x65, 0x88]);
        assert!(key);
        // Untouched when nothing is dropped and lengths are 4 bytes.
        let src = [0, 0, 0, 2, 0x41, 0x9A, 0, 0, 0, 1, 0x06];
        assert_eq!(H264_4.rewrite(&src, 0).unwrap(), src.to_vec());
        // A length past the end is an error.
        assert!(H264_4.rewrite(&[0, 0, 0, 9, 0x41], 0).is_err());
        assert!(H264_4.rewrite(&[0, 0], 0).is_err());
    }

    #[test]
    fn converts_annexb() {
        let f = NalFormat {
            syntax: NalSyntax::Hevc,
            length_size: None,
        };
        // AUD (35), VPS (32), IDR_W_RADL (19), trailing zeros.
        let src = [
            0, 0, 0, 1, 0x46, 0x01, 0x50, 0, 0, 1, 0x40, 0x01, 0x0C, 0, 0, 1, 0x26, 0x01, 0xAF, 0,
            0,
        ];
        let (out, key) = f.rewrite_au(&src, 0).unwrap();
        assert_eq!(out, vec![0, 0, 0, 3, 0x26, 0x01, 0xAF]);
        assert!(key);
    }

    #[test]
    fn reads_length_size_from_records() {
        let avcc = [1, 0x64, 0, 0x1F, 0xFD];
        assert_eq!(
            NalFormat::of(&Codec::H264, &avcc, false)
                .unwrap()
                .length_size,
            Some(2)
        );
        assert_eq!(
            NalFormat::of(&Codec::H264, &[], false).unwrap().length_size,
            Some(4)
        );
        assert_eq!(NalFormat::of(&Codec::Aac, &avcc, false), None);
    }
}
