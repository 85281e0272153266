//! AAC (ISO/IEC 14496-3): the AudioSpecificConfig (§1.6.2.1), read and built, and the ADTS
//! frame header (§1.A.2).

use crate::cursor::BitReader;

/// Sampling frequencies by index (14496-3 Table 1.18).
pub const RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// The facts of an AudioSpecificConfig.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asc {
    /// Audio object type (2 = AAC-LC).
    pub object_type: u8,
    /// Sample rate in Hz (the extension rate for SBR/PS).
    pub sample_rate: u32,
    /// Channels (from channelConfiguration; 7 → 8 channels).
    pub channels: u16,
}

/// Channels of a `channelConfiguration` (Table 1.19): 1–6 as many, 7 is 7.1 (8 channels);
/// 0 (a program config element says) and reserved values give 0.
pub fn channels_of(config: u32) -> u16 {
    match config {
        1..=6 => config as u16,
        7 => 8,
        _ => 0,
    }
}

/// The `channelConfiguration` that signals `channels` (the inverse of [`channels_of`]): `None`
/// for counts no configuration signals (7 channels, more than 8).
pub fn channel_config(channels: u16) -> Option<u8> {
    match channels {
        1..=6 => u8::try_from(channels).ok(),
        8 => Some(7),
        _ => None,
    }
}

/// The `samplingFrequencyIndex` of a rate (Table 1.18), `None` when only the explicit 24-bit
/// form could carry it.
pub fn rate_index(rate: u32) -> Option<u8> {
    RATES
        .iter()
        .position(|&r| r == rate)
        .and_then(|i| u8::try_from(i).ok())
}

/// The two-byte AudioSpecificConfig (§1.6.2.1) of an object type below 31 with a sampling
/// frequency index and channel configuration: `objectType 5 | index 4 | channels 4 | 0 3`.
pub fn asc(object_type: u8, rate_index: u8, channel_config: u8) -> [u8; 2] {
    let v: u16 = (u16::from(object_type & 0x1f) << 11)
        | (u16::from(rate_index & 0xf) << 7)
        | (u16::from(channel_config & 0xf) << 3);
    v.to_be_bytes()
}

/// Parses an AudioSpecificConfig.
pub fn parse_asc(asc: &[u8]) -> Option<Asc> {
    let mut r = BitReader::new(asc);
    let mut object_type = r.bits(5)?;
    if object_type == 31 {
        object_type = 32 + r.bits(6)?;
    }
    let rate = |r: &mut BitReader<'_>| -> Option<u32> {
        let idx = r.bits(4)?;
        if idx == 15 {
            r.bits(24)
        } else {
            RATES.get(idx as usize).copied()
        }
    };
    let mut sample_rate = rate(&mut r)?;
    let channels = channels_of(r.bits(4)?);
    if object_type == 5 || object_type == 29 {
        sample_rate = rate(&mut r)?;
    }
    Some(Asc {
        object_type: u8::try_from(object_type).ok()?,
        sample_rate,
        channels,
    })
}

/// An ADTS frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adts {
    /// Audio object type (profile + 1).
    pub object_type: u8,
    /// Sampling frequency index.
    pub rate_index: u8,
    /// Channel configuration.
    pub channel_config: u8,
    /// Whole frame length including the header.
    pub frame_length: u16,
    /// Header length (7, or 9 with CRC).
    pub header_length: u8,
}

impl Adts {
    /// Sample rate in Hz.
    pub fn sample_rate(&self) -> u32 {
        RATES
            .get(usize::from(self.rate_index))
            .copied()
            .unwrap_or(0)
    }

    /// Channel count.
    pub fn channels(&self) -> u16 {
        channels_of(u32::from(self.channel_config))
    }

    /// The equivalent two-byte AudioSpecificConfig.
    pub fn to_asc(&self) -> [u8; 2] {
        asc(self.object_type, self.rate_index, self.channel_config)
    }
}

/// Whether `b` starts with an ADTS sync: `syncword` 12 | `ID` 1 | `layer` 2 (always `00`) |
/// `protection_absent` 1. The layer bits tell ADTS from an MPEG audio frame with the same
/// sync word.
pub fn is_adts_sync(b: &[u8]) -> bool {
    matches!(b, [0xFF, b1, ..] if b1 & 0xF6 == 0xF0)
}

/// Parses an ADTS header at the start of `b`.
pub fn parse_adts(b: &[u8]) -> Option<Adts> {
    if b.len() < 7 || !is_adts_sync(b) {
        return None;
    }
    let protection_absent = b[1] & 1;
    let profile = b[2] >> 6;
    let rate_index = (b[2] >> 2) & 0xF;
    if rate_index > 12 {
        return None;
    }
    let channel_config = ((b[2] & 1) << 2) | (b[3] >> 6);
    let frame_length =
        (u16::from(b[3] & 3) << 11) | (u16::from(b[4]) << 3) | (u16::from(b[5]) >> 5);
    let header_length = if protection_absent == 1 { 7 } else { 9 };
    if frame_length < u16::from(header_length) {
        return None;
    }
    Some(Adts {
        object_type: profile + 1,
        rate_index,
        channel_config,
        frame_length,
        header_length,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_and_channel_codes_round_trip() {
        assert_eq!(rate_index(48_000), Some(3));
        assert_eq!(rate_index(7350), Some(12));
        assert_eq!(rate_index(1234), None);
        assert_eq!(asc(2, 3, 2), [0x11, 0x90]);
        assert_eq!(asc(2, 4, 2), [0x12, 0x10]);
        for ch in 0..=9u16 {
            if let Some(c) = channel_config(ch) {
                assert_eq!(channels_of(u32::from(c)), ch);
            }
        }
        // 7 channels have no channelConfiguration (7 means 7.1).
        assert_eq!(channel_config(7), None);
        assert_eq!(channel_config(8), Some(7));
    }

    /// One reader checked the layer bits, the others did not: a header with layer ≠ 00 is an
    /// MPEG audio frame, not ADTS (§1.A.2.2.1).
    #[test]
    fn adts_needs_layer_zero() {
        let h = [0xFF, 0xF1, 0x4C, 0x80, 0x2E, 0x7F, 0xFC];
        assert!(parse_adts(&h).is_some());
        let mut mp3 = h;
        mp3[1] = 0xFB;
        assert_eq!(parse_adts(&mp3), None);
        assert!(!is_adts_sync(&[0xFF]));
    }
}
