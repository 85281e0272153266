//! H.264 (ITU-T H.264): the sequence parameter set (§7.3.2.1.1, VUI §E.1.1) and the
//! `AVCDecoderConfigurationRecord` (avcC, ISO/IEC 14496-15 §5.3.3.1), read and built.

use super::annexb::unescape_rbsp;
use crate::cursor::BitReader;
use crate::{Rational, VideoInfo};

/// NAL unit type of a sequence parameter set (Table 7-1).
pub const NAL_SPS: u8 = 7;
/// NAL unit type of a picture parameter set (Table 7-1).
pub const NAL_PPS: u8 = 8;

/// The NAL unit type of a unit's one-byte header.
pub fn nal_type(first: u8) -> u8 {
    first & 0x1f
}

/// A coded slice (types 1–5, Table 7-1): the VCL units that make up a picture.
pub fn is_slice(nal_type: u8) -> bool {
    (1..=5).contains(&nal_type)
}

/// A slice of an IDR picture (type 5): a random access point.
pub fn is_idr(nal_type: u8) -> bool {
    nal_type == 5
}

/// The facts of a sequence parameter set we need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sps {
    /// `profile_idc`.
    pub profile_idc: u8,
    /// The constraint flags byte.
    pub constraints: u8,
    /// `level_idc`.
    pub level_idc: u8,
    /// `chroma_format_idc` (1 when the profile does not code it).
    pub chroma_format_idc: u8,
    /// Luma bit depth.
    pub bit_depth: u8,
    /// Cropped width.
    pub width: u32,
    /// Cropped height.
    pub height: u32,
    /// `frame_mbs_only_flag == 0`: field coding possible.
    pub interlaced: bool,
    /// Frame rate from VUI timing info (`time_scale / (2 × num_units_in_tick)`).
    pub frame_rate: Option<Rational>,
    /// Frames the decoder may hold before output: VUI `max_dec_frame_buffering` when the
    /// stream states it, else the level's limit (`MaxDpbMbs` / picture size, at most 16;
    /// Annex A, Table A-1). Bounds how far presentation can lag decoding, in frames.
    pub dpb_frames: u32,
    /// VUI `max_num_reorder_frames`, when the stream states it: the most frames that
    /// precede any frame in decoding order and follow it in output order.
    pub reorder_frames: Option<u32>,
}

fn scaling_list(r: &mut BitReader<'_>, size: usize) -> Option<()> {
    let (mut last, mut next) = (8i32, 8i32);
    for _ in 0..size {
        if next != 0 {
            let delta = r.se()?;
            next = (last + delta + 256).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Some(())
}

/// Parses an SPS NAL unit (with its one-byte NAL header, emulation prevention still in).
pub fn parse_sps(nal: &[u8]) -> Option<Sps> {
    if nal.first()? & 0x1f != 7 {
        return None;
    }
    let rbsp = unescape_rbsp(nal.get(1..)?);
    let mut r = BitReader::new(&rbsp);
    let profile_idc = r.bits(8)? as u8;
    let constraints = r.bits(8)? as u8;
    let level_idc = r.bits(8)? as u8;
    r.ue()?; // seq_parameter_set_id
    let mut chroma_format_idc = 1u32;
    let mut bit_depth = 8u32;
    if matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format_idc = r.ue()?;
        if chroma_format_idc > 3 {
            return None;
        }
        if chroma_format_idc == 3 {
            r.bit()?; // separate_colour_plane_flag
        }
        bit_depth = r.ue()?.checked_add(8)?;
        r.ue()?; // bit_depth_chroma_minus8
        r.bit()?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? == 1 {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? == 1 {
                    scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?;
        }
        1 => {
            r.bit()?;
            r.se()?;
            r.se()?;
            let n = r.ue()?;
            if n > 255 {
                return None;
            }
            for _ in 0..n {
                r.se()?;
            }
        }
        2 => {}
        _ => return None,
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps_in_frame_num_value_allowed_flag
    let w_mbs = r.ue()?.checked_add(1)?;
    let h_units = r.ue()?.checked_add(1)?;
    let frame_mbs_only = r.bit()?;
    if frame_mbs_only == 0 {
        r.bit()?; // mb_adaptive_frame_field_flag
    }
    r.bit()?; // direct_8x8_inference_flag
    let (mut cl, mut cr, mut ct, mut cb) = (0, 0, 0, 0);
    if r.bit()? == 1 {
        cl = r.ue()?;
        cr = r.ue()?;
        ct = r.ue()?;
        cb = r.ue()?;
    }
    let (sub_w, sub_h) = match chroma_format_idc {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    let crop_x = if chroma_format_idc == 0 { 1 } else { sub_w };
    let crop_y = (if chroma_format_idc == 0 { 1 } else { sub_h }) * (2 - frame_mbs_only);
    let width = w_mbs
        .checked_mul(16)?
        .checked_sub(crop_x * cl.checked_add(cr)?)?;
    let height = h_units
        .checked_mul(16)?
        .checked_mul(2 - frame_mbs_only)?
        .checked_sub(crop_y * ct.checked_add(cb)?)?;
    let vui = if r.bit() == Some(1) {
        vui(&mut r)
    } else {
        Vui::default()
    };
    let pic_mbs = w_mbs.saturating_mul(h_units.saturating_mul(2 - frame_mbs_only));
    let dpb_frames = vui
        .max_dec_frame_buffering
        .unwrap_or_else(|| level_dpb_frames(level_idc, constraints, pic_mbs))
        .clamp(1, 16);
    let frame_rate = vui.frame_rate;
    let reorder_frames = vui.max_num_reorder_frames;
    Some(Sps {
        profile_idc,
        constraints,
        level_idc,
        chroma_format_idc: chroma_format_idc as u8,
        bit_depth: u8::try_from(bit_depth).ok()?,
        width,
        height,
        interlaced: frame_mbs_only == 0,
        frame_rate,
        dpb_frames,
        reorder_frames,
    })
}

/// `MaxDpbFrames` of Annex A: the level's `MaxDpbMbs` over the picture size in macroblocks,
/// at most 16 (16 when the level is unknown).
fn level_dpb_frames(level_idc: u8, constraints: u8, pic_mbs: u32) -> u32 {
    let max_dpb_mbs: u32 = match level_idc {
        // Level 1b is level_idc 11 with constraint_set3_flag (Baseline/Main/Extended).
        11 if constraints & 0x10 != 0 => 396,
        9 | 10 => 396,
        11 => 900,
        12 | 13 | 20 => 2376,
        21 => 4752,
        22 | 30 => 8100,
        31 => 18000,
        32 => 20480,
        40 | 41 => 32768,
        42 => 34816,
        50 => 110_400,
        51 | 52 => 184_320,
        60..=62 => 696_320,
        _ => return 16,
    };
    (max_dpb_mbs / pic_mbs.max(1)).min(16)
}

/// What the VUI says that we use; fields stay `None` where it is silent or cut short.
#[derive(Default)]
struct Vui {
    frame_rate: Option<Rational>,
    max_num_reorder_frames: Option<u32>,
    max_dec_frame_buffering: Option<u32>,
}

/// Reads `vui_parameters()` (§E.1.1) up to the bitstream restriction.
fn vui(r: &mut BitReader<'_>) -> Vui {
    let mut v = Vui::default();
    let Some(timing) = vui_timing(r) else {
        return v;
    };
    v.frame_rate = timing;
    if let Some((reorder, dpb)) = vui_restriction(r) {
        v.max_num_reorder_frames = Some(reorder.min(16));
        v.max_dec_frame_buffering = Some(dpb);
    }
    v
}

/// `hrd_parameters()` (§E.1.2), skipped.
fn skip_hrd(r: &mut BitReader<'_>) -> Option<()> {
    let cpb_cnt = r.ue()?.checked_add(1)?;
    if cpb_cnt > 32 {
        return None;
    }
    r.bits(8)?; // bit_rate_scale, cpb_size_scale
    for _ in 0..cpb_cnt {
        r.ue()?; // bit_rate_value_minus1
        r.ue()?; // cpb_size_value_minus1
        r.bit()?; // cbr_flag
    }
    r.bits(20)?; // four delay/offset lengths, 5 bits each
    Some(())
}

/// The VUI after the timing info: HRD, then `(max_num_reorder_frames,
/// max_dec_frame_buffering)` when `bitstream_restriction_flag` is set.
fn vui_restriction(r: &mut BitReader<'_>) -> Option<(u32, u32)> {
    let nal_hrd = r.bit()?;
    if nal_hrd == 1 {
        skip_hrd(r)?;
    }
    let vcl_hrd = r.bit()?;
    if vcl_hrd == 1 {
        skip_hrd(r)?;
    }
    if nal_hrd == 1 || vcl_hrd == 1 {
        r.bit()?; // low_delay_hrd_flag
    }
    r.bit()?; // pic_struct_present_flag
    if r.bit()? == 0 {
        return None;
    }
    r.bit()?; // motion_vectors_over_pic_boundaries_flag
    for _ in 0..4 {
        r.ue()?; // max_bytes_per_pic_denom .. log2_max_mv_length_vertical
    }
    let reorder = r.ue()?;
    Some((reorder, r.ue()?))
}

/// The VUI up to and including the timing info: `Some(frame rate)` when it was read whole
/// (the rate itself `None` when not stated), `None` when cut short.
fn vui_timing(r: &mut BitReader<'_>) -> Option<Option<Rational>> {
    super::vui_colour(r)?;
    if r.bit()? == 1 {
        r.ue()?;
        r.ue()?;
    }
    let mut rate = None;
    if r.bit()? == 1 {
        let units = r.bits(32)?;
        let scale = r.bits(32)?;
        if units > 0 && scale > 0 {
            let den = units.checked_mul(2)?;
            rate = Rational::reduced(u64::from(scale), u64::from(den));
        }
        // fixed_frame_rate_flag; a stream cut short here still has its rate (and the
        // restriction read after it then finds nothing).
        let _ = r.bit();
    }
    Some(rate)
}

/// Parses an `AVCDecoderConfigurationRecord` (avcC, and Matroska's `V_MPEG4/ISO/AVC`
/// CodecPrivate) into video facts, using its first SPS for chroma, depth and size.
pub fn parse_avcc(avcc: &[u8]) -> Option<(VideoInfo, Option<Sps>)> {
    if avcc.len() < 7 || avcc[0] != 1 {
        return None;
    }
    let n_sps = usize::from(avcc[5] & 0x1f);
    let mut sps = None;
    if n_sps > 0 {
        let len = usize::from(u16::from_be_bytes([*avcc.get(6)?, *avcc.get(7)?]));
        let nal = avcc.get(8..8 + len)?;
        sps = parse_sps(nal);
    }
    let mut v = VideoInfo {
        profile: Some(avcc[1]),
        constraints: Some(avcc[2]),
        level: Some(avcc[3]),
        ..VideoInfo::default()
    };
    if let Some(s) = &sps {
        v.bit_depth = Some(s.bit_depth);
        v.chroma_format = Some(s.chroma_format_idc);
        v.width = s.width;
        v.height = s.height;
        v.interlaced = Some(s.interlaced);
        v.frame_rate = s.frame_rate;
    }
    Some((v, sps))
}

/// Video facts from an SPS found in the bitstream (MPEG-TS).
pub fn video_info(s: &Sps) -> VideoInfo {
    VideoInfo {
        width: s.width,
        height: s.height,
        frame_rate: s.frame_rate,
        profile: Some(s.profile_idc),
        constraints: Some(s.constraints),
        level: Some(s.level_idc),
        bit_depth: Some(s.bit_depth),
        chroma_format: Some(s.chroma_format_idc),
        interlaced: Some(s.interlaced),
        ..VideoInfo::default()
    }
}

/// Builds an `AVCDecoderConfigurationRecord` (ISO/IEC 14496-15 §5.3.3.1) with
/// `lengthSizeMinusOne` = 3 from SPS and PPS NAL units (each with its NAL header, emulation
/// prevention in). Profile, compatibility and level are the first SPS's bytes 1–3. The High
/// profiles (100, 110, 122, 144) get the §5.3.3.1.2 extension: chroma format and bit depth
/// from the first SPS (chroma depth taken equal to luma), or the values the syntax infers when
/// it is absent (4:2:0, 8 bits) if the SPS cannot be read; no SPS extensions.
///
/// `None` when the record cannot hold them: no SPS or PPS, a first SPS under 4 bytes, more
/// than 31 SPS or 255 PPS, a unit over 65535 bytes.
pub fn avcc(sps: &[&[u8]], pps: &[&[u8]]) -> Option<Vec<u8>> {
    let first = *sps.first()?;
    let &[_, profile, compat, level, ..] = first else {
        return None;
    };
    if pps.is_empty() {
        return None;
    }
    let n_sps = u8::try_from(sps.len()).ok().filter(|&n| n <= 31)?;
    let n_pps = u8::try_from(pps.len()).ok()?;
    let mut out = vec![1, profile, compat, level, 0xfc | 3, 0xe0 | n_sps];
    for s in sps {
        push_u16_prefixed(&mut out, s)?;
    }
    out.push(n_pps);
    for p in pps {
        push_u16_prefixed(&mut out, p)?;
    }
    if matches!(profile, 100 | 110 | 122 | 144) {
        let (chroma, depth) = parse_sps(first).map_or((1, 0), |s| {
            (s.chroma_format_idc & 3, s.bit_depth.saturating_sub(8) & 7)
        });
        out.extend_from_slice(&[0xfc | chroma, 0xf8 | depth, 0xf8 | depth, 0]);
    }
    Some(out)
}

/// Appends `nal` with its 16-bit length (the parameter set arrays of avcC and hvcC).
pub(crate) fn push_u16_prefixed(out: &mut Vec<u8>, nal: &[u8]) -> Option<()> {
    let len = u16::try_from(nal.len()).ok()?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(nal);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avcc_for_high_profile_without_a_readable_sps() {
        let record = avcc(&[&[0x67, 100, 0, 30, 0xaa]], &[&[0x68, 0xbb]]).unwrap();
        assert_eq!(
            record,
            [
                1, 100, 0, 30, 0xff, 0xe1, 0, 5, 0x67, 100, 0, 30, 0xaa, 1, 0, 2, 0x68, 0xbb, 0xfd,
                0xf8, 0xf8, 0
            ]
        );
        assert_eq!(avcc(&[], &[&[0x68]]), None);
        assert_eq!(avcc(&[&[0x67, 66, 0, 30]], &[]), None);
        assert_eq!(avcc(&[&[0x67, 66]], &[&[0x68]]), None);
        let big = vec![0x68; 70_000];
        assert_eq!(avcc(&[&[0x67, 66, 0, 30]], &[&big]), None);
    }
}
