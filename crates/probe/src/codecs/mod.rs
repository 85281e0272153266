//! Codec bitstream facts, one owner for every crate: Annex B framing ([`annexb`]), H.264
//! ([`h264`]: SPS, avcC), HEVC ([`hevc`]: SPS, hvcC), AAC ([`aac`]: AudioSpecificConfig,
//! ADTS) and AC-3 / E-AC-3 ([`ac3`]: sync frame headers). The probe reads them to describe
//! tracks; the demuxer splits and rewrites frames with them; the pipeline builds its output's
//! configuration records with them.
//!
//! Every reader returns `None` on malformed input; none of them panics or allocates more than
//! its input's size.

pub mod aac;
pub mod ac3;
pub mod annexb;
pub mod h264;
pub mod hevc;

use crate::cursor::BitReader;

/// The start of a VUI, the same in H.264 (§E.1.1) and H.265 (§E.2.1): aspect ratio, overscan,
/// video signal type. `Some(transfer_characteristics)` when a colour description is present,
/// `Some(None)` when not; `None` when cut short. Leaves the reader after the colour
/// description.
fn vui_colour(r: &mut BitReader<'_>) -> Option<Option<u8>> {
    if r.bit()? == 1 && r.bits(8)? == 255 {
        r.bits(32)?; // sar_width, sar_height
    }
    if r.bit()? == 1 {
        r.bit()?; // overscan_appropriate_flag
    }
    if r.bit()? == 1 {
        r.bits(4)?; // video_format, video_full_range_flag
        if r.bit()? == 1 {
            r.bits(8)?; // colour_primaries
            let transfer = u8::try_from(r.bits(8)?).ok();
            r.bits(8)?; // matrix_coeffs
            return Some(transfer);
        }
    }
    Some(None)
}

/// Frames a decoder may hold before output, from an avcC (`hevc == false`) or hvcC record's
/// first SPS: H.264 `max_dec_frame_buffering` (or the level's limit), HEVC
/// `sps_max_dec_pic_buffering`. `None` when the record holds no readable SPS.
pub fn dpb_frames(record: &[u8], hevc: bool) -> Option<u32> {
    if hevc {
        hevc::hvcc_sps(record)?
            .into_iter()
            .find_map(hevc::sps_dpb_frames)
    } else {
        h264::parse_avcc(record)?.1.map(|s| s.dpb_frames)
    }
}

/// How many frames a frame's presentation can trail its decoding, from an avcC or hvcC record:
/// H.264 `max_num_reorder_frames` when the VUI states it, else the DPB size; HEVC the DPB size
/// (an open GOP's leading pictures, decoded after their CRA and presented before it, come on
/// top of the reordering, and the DPB bounds both in practice). `None` without a readable SPS.
pub fn reorder_depth(record: &[u8], hevc: bool) -> Option<u32> {
    if hevc {
        dpb_frames(record, true)
    } else {
        let sps = h264::parse_avcc(record)?.1?;
        Some(sps.reorder_frames.unwrap_or(sps.dpb_frames))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_asc_and_adts() {
        // AAC-LC, 48 kHz, stereo.
        let asc = aac::parse_asc(&[0x11, 0x90]).unwrap();
        assert_eq!(
            (asc.object_type, asc.sample_rate, asc.channels),
            (2, 48000, 2)
        );
        let adts = aac::parse_adts(&[0xFF, 0xF1, 0x4C, 0x80, 0x2E, 0x7F, 0xFC]).unwrap();
        assert_eq!(adts.sample_rate(), 48000);
        assert_eq!(adts.channels(), 2);
        assert_eq!(adts.to_asc(), [0x11, 0x90]);
    }

    #[test]
    fn garbage_never_panics() {
        let mut x: u32 = 12345;
        for len in 0..200 {
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            let _ = h264::parse_sps(&buf);
            let _ = h264::parse_avcc(&buf);
            let _ = hevc::parse_sps(&buf);
            let _ = hevc::parse_hvcc(&buf);
            let _ = aac::parse_asc(&buf);
            let _ = aac::parse_adts(&buf);
            let _ = ac3::parse(&buf);
            let _ = annexb::nal_units(&buf).count();
            let nals: Vec<&[u8]> = annexb::nal_units(&buf).collect();
            let _ = h264::avcc(&nals, &nals);
        }
    }
}
