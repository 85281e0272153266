//! AC-3 and E-AC-3 sync frame headers (ATSC A/52: `syncinfo` §5.3.1 and `bsi` §5.3.2 for
//! AC-3, Annex E §E.1.2 for E-AC-3).

use crate::cursor::BitReader;

/// The sync word that starts every sync frame.
pub const SYNC: [u8; 2] = [0x0B, 0x77];

/// `fscod` → sample rate (Table 5.6; E-AC-3 `fscod` 0–2, Table E.1.4).
const RATES: [u32; 3] = [48_000, 44_100, 32_000];
/// E-AC-3 `fscod2` → reduced sample rate, when `fscod` is 3 (Table E.1.5).
const HALF_RATES: [u32; 3] = [24_000, 22_050, 16_000];
/// E-AC-3 `numblkscod` → audio blocks per frame (Table E.1.6).
const BLOCKS: [u32; 4] = [1, 2, 3, 6];
/// `acmod` → full-bandwidth channels (Table 5.8).
const CHANNELS: [u16; 8] = [2, 1, 2, 3, 3, 4, 4, 5];
/// AC-3 frame sizes in 16-bit words at 48 kHz for `frmsizecod / 2` (Table 5.18): twice the
/// bit rate in kb/s.
const KBPS: [u32; 19] = [
    32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448, 512, 576, 640,
];

/// Channels of an `acmod` (Table 5.8) plus one for `lfeon`: what `dac3`/`dec3` boxes describe.
pub fn channels(acmod: u8, lfeon: bool) -> u16 {
    CHANNELS.get(usize::from(acmod & 7)).copied().unwrap_or(2) + u16::from(lfeon)
}

/// What a sync frame's header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncFrame {
    /// E-AC-3 (`bsid` 11–16) rather than AC-3 (`bsid` ≤ 10).
    pub eac3: bool,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// Channels: full-bandwidth ones from `acmod`, plus one for `lfeon`.
    pub channels: u16,
    /// The whole frame's length in bytes, sync word included.
    pub frame_bytes: usize,
    /// Samples per channel the frame decodes to (1536 for AC-3; 256 per block for E-AC-3).
    pub samples: u32,
    /// `fscod` (E-AC-3: 3 for the reduced rates).
    pub fscod: u8,
    /// `bsid`.
    pub bsid: u8,
    /// `bsmod` (AC-3; 0, complete main, for E-AC-3, whose `bsmod` sits deep in `bsi`).
    pub bsmod: u8,
    /// `acmod`: the channel layout (Table 5.8).
    pub acmod: u8,
    /// `lfeon`.
    pub lfeon: bool,
    /// AC-3 `frmsizecod` (0 for E-AC-3).
    pub frmsizecod: u8,
}

impl SyncFrame {
    /// Bit rate in kb/s that the frame carries.
    pub fn kbps(&self) -> u32 {
        let bits = self.frame_bytes as u64 * 8 * u64::from(self.sample_rate);
        (bits / (u64::from(self.samples.max(1)) * 1000)) as u32
    }

    /// The body of an ISO BMFF `dac3` box (ETSI TS 102 366 §F.4): fscod 2 | bsid 5 | bsmod 3 |
    /// acmod 3 | lfeon 1 | bit_rate_code 5 | reserved 5.
    pub fn dac3(&self) -> [u8; 3] {
        let v: u32 = (u32::from(self.fscod & 3) << 22)
            | (u32::from(self.bsid & 0x1F) << 17)
            | (u32::from(self.bsmod & 7) << 14)
            | (u32::from(self.acmod & 7) << 11)
            | (u32::from(self.lfeon) << 10)
            | (u32::from((self.frmsizecod >> 1) & 0x1F) << 5);
        let [_, a, b, c] = v.to_be_bytes();
        [a, b, c]
    }

    /// The body of an ISO BMFF `dec3` box (ETSI TS 102 366 §F.6) for a stream of this one
    /// independent substream and no dependent ones: data_rate 13 | num_ind_sub 3, then
    /// fscod 2 | bsid 5 | reserved 1 | asvc 1 | bsmod 3 | acmod 3 | lfeon 1 | reserved 3 |
    /// num_dep_sub 4 | reserved 1.
    pub fn dec3(&self) -> [u8; 5] {
        let head: u16 = (self.kbps().min(0x1FFF) as u16) << 3;
        let sub: u32 = (u32::from(self.fscod & 3) << 22)
            | (u32::from(self.bsid & 0x1F) << 17)
            | (u32::from(self.bsmod & 7) << 12)
            | (u32::from(self.acmod & 7) << 9)
            | (u32::from(self.lfeon) << 8);
        let [h0, h1] = head.to_be_bytes();
        let [_, a, b, c] = sub.to_be_bytes();
        [h0, h1, a, b, c]
    }
}

/// Reads the sync frame header at the start of `b`: `None` without a sync word, with a
/// reserved `fscod`, `frmsizecod` or `bsid`, or when `b` ends inside the header.
pub fn parse(b: &[u8]) -> Option<SyncFrame> {
    let &[s0, s1, b2, b3, b4, b5, ..] = b else {
        return None;
    };
    if [s0, s1] != SYNC {
        return None;
    }
    let bsid = b5 >> 3;
    let fscod = usize::from(b4 >> 6);
    if bsid <= 10 {
        // syncinfo: syncword 16 | crc1 16 | fscod 2 | frmsizecod 6; bsi: bsid 5 | bsmod 3 |
        // acmod 3 | [cmixlev 2] [surmixlev 2] [dsurmod 2] | lfeon 1.
        let code = usize::from(b4 & 0x3F);
        let kbps = *KBPS.get(code / 2)?;
        let words = match fscod {
            0 => kbps * 2,
            1 => kbps * 320 / 147 + (code as u32 & 1),
            2 => kbps * 3,
            _ => return None,
        };
        let sample_rate = *RATES.get(fscod)?;
        let mut r = BitReader::new(b.get(6..)?);
        let acmod = r.bits(3)?;
        if acmod & 1 != 0 && acmod != 1 {
            r.skip(2)?; // cmixlev
        }
        if acmod & 4 != 0 {
            r.skip(2)?; // surmixlev
        }
        if acmod == 2 {
            r.skip(2)?; // dsurmod
        }
        let lfe = r.bit()? as u16;
        Some(SyncFrame {
            eac3: false,
            sample_rate,
            channels: CHANNELS.get(acmod as usize)? + lfe,
            frame_bytes: words as usize * 2,
            samples: 1536,
            fscod: fscod as u8,
            bsid,
            bsmod: b5 & 7,
            acmod: acmod as u8,
            lfeon: lfe == 1,
            frmsizecod: code as u8,
        })
    } else if bsid <= 16 {
        // E-AC-3 syncinfo: syncword 16; bsi: strmtyp 2 | substreamid 3 | frmsiz 11 | fscod 2 |
        // fscod2/numblkscod 2 | acmod 3 | lfeon 1 | bsid 5.
        let words = ((usize::from(b2 & 7) << 8) | usize::from(b3)) + 1;
        let code2 = usize::from((b4 >> 4) & 3);
        let (sample_rate, blocks) = if fscod == 3 {
            (*HALF_RATES.get(code2)?, 6)
        } else {
            (*RATES.get(fscod)?, *BLOCKS.get(code2)?)
        };
        Some(SyncFrame {
            eac3: true,
            sample_rate,
            channels: CHANNELS.get(usize::from((b4 >> 1) & 7))? + u16::from(b4 & 1),
            frame_bytes: words * 2,
            samples: blocks * 256,
            fscod: fscod as u8,
            bsid,
            bsmod: 0,
            acmod: (b4 >> 1) & 7,
            lfeon: b4 & 1 == 1,
            frmsizecod: 0,
        })
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ac3_and_eac3_headers() {
        // AC-3, 48 kHz, frmsizecod 14 (112 kb/s → 224 words), acmod 7 (3/2) + LFE: 5.1.
        let f = parse(&[0x0B, 0x77, 0, 0, 0x0E, 0x40, 0xE1, 0x40]).unwrap();
        assert_eq!(
            (f.eac3, f.sample_rate, f.channels, f.frame_bytes, f.samples),
            (false, 48_000, 6, 448, 1536)
        );
        // dac3: fscod 0 | bsid 8 | bsmod 0 | acmod 7 | lfeon 1 | bit_rate_code 7 (112 kb/s).
        assert_eq!(f.dac3(), [0x10, 0x3C, 0xE0]);
        assert_eq!(f.kbps(), 112);
        // 44.1 kHz, frmsizecod 1: the odd code adds a word.
        let f = parse(&[0x0B, 0x77, 0, 0, 0x41, 0x40, 0x40, 0]).unwrap();
        assert_eq!(
            (f.sample_rate, f.frame_bytes),
            (44_100, 2 * (32 * 320 / 147 + 1))
        );
        // E-AC-3: frmsiz 0x7F → 256 bytes, 48 kHz, 6 blocks, acmod 2, bsid 16.
        let f = parse(&[0x0B, 0x77, 0, 0x7F, 0x34, 0x80]).unwrap();
        assert_eq!(
            (f.eac3, f.sample_rate, f.channels, f.frame_bytes, f.samples),
            (true, 48_000, 2, 256, 1536)
        );
        // dec3: data_rate 64 kb/s, one substream: fscod 0 | bsid 16 | acmod 2 | no LFE.
        assert_eq!(f.dec3(), [0x02, 0x00, 0x20, 0x04, 0x00]);
        // E-AC-3 reduced rate (fscod 3, fscod2 1): 22.05 kHz, always 6 blocks.
        let f = parse(&[0x0B, 0x77, 0, 9, 0xD4, 0x80]).unwrap();
        assert_eq!((f.sample_rate, f.samples), (22_050, 1536));
    }

    #[test]
    fn rejects_reserved_codes() {
        // frmsizecod 38 and up are reserved (Table 5.18).
        assert_eq!(parse(&[0x0B, 0x77, 0, 0, 0x26, 0x40, 0xE1, 0x40]), None);
        // fscod 3 is reserved for AC-3.
        assert_eq!(parse(&[0x0B, 0x77, 0, 0, 0xC0, 0x40, 0xE1, 0x40]), None);
        // bsid 17 and up are not AC-3.
        assert_eq!(parse(&[0x0B, 0x77, 0, 0, 0x00, 0x88, 0xE1, 0x40]), None);
        // Cut inside the bsi.
        assert_eq!(parse(&[0x0B, 0x77, 0, 0, 0x0E, 0x40]), None);
        assert_eq!(parse(&[0x0B, 0x77]), None);
    }
}
