//! HEVC (ITU-T H.265): the sequence parameter set (§7.3.2.2) and the
//! `HEVCDecoderConfigurationRecord` (hvcC, ISO/IEC 14496-15 §8.3.3.1), read and built.

use super::annexb::unescape_rbsp;
use super::h264::push_u16_prefixed;
use crate::cursor::BitReader;
use crate::VideoInfo;

/// NAL unit type of a video parameter set (Table 7-1).
pub const NAL_VPS: u8 = 32;
/// NAL unit type of a sequence parameter set.
pub const NAL_SPS: u8 = 33;
/// NAL unit type of a picture parameter set.
pub const NAL_PPS: u8 = 34;

/// The NAL unit type of a unit's two-byte header (read from its first byte).
pub fn nal_type(first: u8) -> u8 {
    (first >> 1) & 0x3f
}

/// A VCL NAL unit (types 0–31, Table 7-1): a slice segment of a picture.
pub fn is_vcl(nal_type: u8) -> bool {
    nal_type <= 31
}

/// A slice segment of an IRAP picture (types 16–23: BLA, IDR, CRA): a random access point.
pub fn is_irap(nal_type: u8) -> bool {
    (16..=23).contains(&nal_type)
}

/// Reads `profile_tier_level(1, max_sub_layers_minus1)` general part into `v`.
fn profile_tier_level(r: &mut BitReader<'_>, v: &mut VideoInfo, sub_layers: u32) -> Option<()> {
    let _space = r.bits(2)?;
    v.tier_high = Some(r.bit()? == 1);
    v.profile = Some(r.bits(5)? as u8);
    v.compat_flags = Some(r.bits(32)?);
    let mut c = [0u8; 6];
    for b in &mut c {
        *b = r.bits(8)? as u8;
    }
    v.interlaced = Some(c[0] & 0x40 != 0 && c[0] & 0x80 == 0);
    v.constraint_bytes = Some(c);
    v.level = Some(r.bits(8)? as u8);
    let mut present = Vec::new();
    for _ in 0..sub_layers {
        present.push((r.bit()?, r.bit()?));
    }
    if sub_layers > 0 {
        for _ in sub_layers..8 {
            r.bits(2)?;
        }
    }
    for (p, l) in present {
        if p == 1 {
            r.skip(88)?;
        }
        if l == 1 {
            r.skip(8)?;
        }
    }
    Some(())
}

/// Parses an HEVC SPS NAL unit (two-byte NAL header included, emulation prevention in).
pub fn parse_sps(nal: &[u8]) -> Option<VideoInfo> {
    read_sps(nal).map(|(v, _)| v)
}

/// `sps_max_dec_pic_buffering_minus1 + 1` of the highest sub-layer: the frames the decoder
/// may hold before output (H.265 §7.4.3.2.1). `None` when the SPS is cut short before it.
pub fn sps_dpb_frames(nal: &[u8]) -> Option<u32> {
    read_sps(nal).and_then(|(_, dpb)| dpb)
}

fn read_sps(nal: &[u8]) -> Option<(VideoInfo, Option<u32>)> {
    if (nal.first()? >> 1) & 0x3f != 33 {
        return None;
    }
    let rbsp = unescape_rbsp(nal.get(2..)?);
    let mut r = BitReader::new(&rbsp);
    r.bits(4)?; // sps_video_parameter_set_id
    let sub_layers = r.bits(3)?;
    r.bit()?; // sps_temporal_id_nesting_flag
    let mut v = VideoInfo::default();
    profile_tier_level(&mut r, &mut v, sub_layers)?;
    r.ue()?; // sps_seq_parameter_set_id
    let chroma = r.ue()?;
    if chroma > 3 {
        return None;
    }
    if chroma == 3 {
        r.bit()?;
    }
    let w = r.ue()?;
    let h = r.ue()?;
    let (sub_w, sub_h) = match chroma {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    let (mut cw, mut ch) = (0u32, 0u32);
    if r.bit()? == 1 {
        let (l, rr, t, b) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
        cw = sub_w * l.checked_add(rr)?;
        ch = sub_h * t.checked_add(b)?;
    }
    v.width = w.checked_sub(cw)?;
    v.height = h.checked_sub(ch)?;
    v.bit_depth = Some(u8::try_from(r.ue()?.checked_add(8)?).ok()?);
    v.chroma_format = Some(chroma as u8);
    r.ue()?; // bit_depth_chroma_minus8
    let poc_lsb_bits = r.ue()?.checked_add(4).filter(|b| *b <= 16)?;
    let dpb = sub_layer_dpb(&mut r, sub_layers);
    // The rest of the SPS up to the VUI's colour description; an SPS cut short or using
    // something not followed here only leaves the transfer unknown.
    v.transfer = vui_transfer(&mut r, poc_lsb_bits);
    Some((v, dpb))
}

/// The sub-layer ordering info after `log2_max_pic_order_cnt_lsb_minus4`: the highest
/// sub-layer's DPB size.
fn sub_layer_dpb(r: &mut BitReader<'_>, sub_layers: u32) -> Option<u32> {
    let all = r.bit()? == 1;
    let mut dpb = None;
    for _ in (if all { 0 } else { sub_layers })..=sub_layers {
        dpb = Some(r.ue()?.checked_add(1)?); // sps_max_dec_pic_buffering_minus1
        r.ue()?; // sps_max_num_reorder_pics
        r.ue()?; // sps_max_latency_increase_plus1
    }
    dpb.filter(|&d| d <= 16)
}

/// Most short-term reference picture sets an SPS may have (H.265 §7.4.3.2.1).
const MAX_ST_RPS: u32 = 64;

/// From after the sub-layer ordering info to the VUI's `transfer_characteristics`
/// (H.265 §7.3.2.2.1, E.2.1); `None` when the SPS has no colour description or is cut short.
fn vui_transfer(r: &mut BitReader<'_>, poc_lsb_bits: u32) -> Option<u8> {
    for _ in 0..6 {
        // log2_min_luma_coding_block_size_minus3 … max_transform_hierarchy_depth_intra
        r.ue()?;
    }
    if r.bit()? == 1 && r.bit()? == 1 {
        scaling_list_data(r)?;
    }
    r.bits(2)?; // amp_enabled_flag, sample_adaptive_offset_enabled_flag
    if r.bit()? == 1 {
        r.bits(8)?; // pcm sample bit depths
        r.ue()?;
        r.ue()?;
        r.bit()?; // pcm_loop_filter_disabled_flag
    }
    let sets = r.ue()?;
    if sets > MAX_ST_RPS {
        return None;
    }
    let mut deltas: Vec<u32> = Vec::with_capacity(sets as usize);
    for i in 0..sets {
        let inter = i != 0 && r.bit()? == 1;
        let n = if inter {
            r.bit()?; // delta_rps_sign
            r.ue()?; // abs_delta_rps_minus1
            let reference = *deltas.last()?;
            let mut n = 0u32;
            for _ in 0..=reference {
                let used = r.bit()? == 1;
                let use_delta = used || r.bit()? == 1;
                n += u32::from(use_delta);
            }
            n
        } else {
            let (neg, pos) = (r.ue()?, r.ue()?);
            if neg > 16 || pos > 16 {
                return None;
            }
            for _ in 0..neg + pos {
                r.ue()?; // delta_poc_minus1
                r.bit()?; // used_by_curr_pic_flag
            }
            neg + pos
        };
        deltas.push(n);
    }
    if r.bit()? == 1 {
        let long_term = r.ue()?;
        if long_term > 32 {
            return None;
        }
        for _ in 0..long_term {
            r.bits(poc_lsb_bits)?;
            r.bit()?;
        }
    }
    r.bits(2)?; // sps_temporal_mvp_enabled_flag, strong_intra_smoothing_enabled_flag
    if r.bit()? == 0 {
        return None; // no VUI
    }
    super::vui_colour(r)?
}

/// `scaling_list_data()` (H.265 §7.3.4), skipped.
fn scaling_list_data(r: &mut BitReader<'_>) -> Option<()> {
    for size in 0..4u32 {
        let step = if size == 3 { 3 } else { 1 };
        for _ in (0..6).step_by(step) {
            if r.bit()? == 0 {
                r.ue()?; // scaling_list_pred_matrix_id_delta
            } else {
                let coefs = 64.min(1u32 << (4 + (size << 1)));
                if size > 1 {
                    r.se()?; // scaling_list_dc_coef_minus8
                }
                for _ in 0..coefs {
                    r.se()?;
                }
            }
        }
    }
    Some(())
}

/// Parses an `HEVCDecoderConfigurationRecord` (hvcC, Matroska `V_MPEGH/ISO/HEVC`), using
/// its SPS for the picture size when present.
pub fn parse_hvcc(hvcc: &[u8]) -> Option<VideoInfo> {
    if hvcc.len() < 23 {
        return None;
    }
    let mut v = VideoInfo {
        tier_high: Some(hvcc[1] & 0x20 != 0),
        profile: Some(hvcc[1] & 0x1f),
        compat_flags: Some(u32::from_be_bytes([hvcc[2], hvcc[3], hvcc[4], hvcc[5]])),
        level: Some(hvcc[12]),
        chroma_format: Some(hvcc[16] & 3),
        bit_depth: Some((hvcc[17] & 7) + 8),
        ..VideoInfo::default()
    };
    let mut c = [0u8; 6];
    c.copy_from_slice(&hvcc[6..12]);
    v.constraint_bytes = Some(c);
    for s in hvcc_sps(hvcc)?.into_iter().filter_map(parse_sps) {
        v.width = s.width;
        v.height = s.height;
        v.interlaced = s.interlaced;
        v.transfer = s.transfer;
    }
    Some(v)
}

/// The SPS NAL units of an hvcC record (its NAL arrays walked, bounds-checked); `None` when
/// the arrays are malformed.
pub fn hvcc_sps(hvcc: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    let arrays = usize::from(*hvcc.get(22)?);
    let mut pos = 23usize;
    for _ in 0..arrays {
        let ty = hvcc.get(pos)? & 0x3f;
        let n = usize::from(u16::from_be_bytes([
            *hvcc.get(pos + 1)?,
            *hvcc.get(pos + 2)?,
        ]));
        pos += 3;
        for _ in 0..n {
            let len = usize::from(u16::from_be_bytes([*hvcc.get(pos)?, *hvcc.get(pos + 1)?]));
            let nal = hvcc.get(pos + 2..pos + 2 + len)?;
            pos += 2 + len;
            if ty == 33 {
                out.push(nal);
            }
        }
    }
    Some(out)
}

/// Builds an `HEVCDecoderConfigurationRecord` (ISO/IEC 14496-15 §8.3.3.1) with
/// `lengthSizeMinusOne` = 3 from VPS, SPS and PPS NAL units (NAL headers and emulation
/// prevention in); `info` is the first SPS as [`parse_sps`] reads it. Chroma depth is taken
/// equal to luma; `array_completeness` is 1 (every parameter set is in the sample entry, as
/// `hvc1` needs). `None` when a kind is missing or a unit is too long for the record.
pub fn hvcc(vps: &[&[u8]], sps: &[&[u8]], pps: &[&[u8]], info: &VideoInfo) -> Option<Vec<u8>> {
    let first = *sps.first()?;
    if vps.is_empty() || pps.is_empty() {
        return None;
    }
    // SPS byte 2: vps_id 4 | max_sub_layers_minus1 3 | temporal_id_nesting 1; byte 3:
    // profile_space 2 | tier 1 | profile_idc 5 (no emulation prevention this early: the NAL
    // header is never 00 00).
    let layers = first.get(2).map_or(0, |b| (b >> 1) & 7) + 1;
    let nested = first.get(2).map_or(0, |b| b & 1);
    let space_tier_profile = first.get(3).copied().unwrap_or(0);
    let depth = info.bit_depth.unwrap_or(8).saturating_sub(8) & 7;
    let mut record = vec![1, space_tier_profile];
    record.extend_from_slice(&info.compat_flags.unwrap_or(0).to_be_bytes());
    record.extend_from_slice(&info.constraint_bytes.unwrap_or([0; 6]));
    record.push(info.level.unwrap_or(0));
    // min_spatial_segmentation_idc 0, parallelismType 0, chroma, depths, avgFrameRate 0,
    // constantFrameRate 0, temporal layers, lengthSizeMinusOne 3.
    record.extend_from_slice(&[
        0xF0,
        0x00,
        0xFC,
        0xFC | (info.chroma_format.unwrap_or(1) & 3),
        0xF8 | depth,
        0xF8 | depth,
        0,
        0,
        ((layers & 7) << 3) | (nested << 2) | 3,
        3,
    ]);
    for (ty, list) in [(NAL_VPS, vps), (NAL_SPS, sps), (NAL_PPS, pps)] {
        record.push(0x80 | ty);
        record.extend_from_slice(&u16::try_from(list.len()).ok()?.to_be_bytes());
        for n in list {
            push_u16_prefixed(&mut record, n)?;
        }
    }
    Some(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// x265's SPS of a 320×240 Main 10 HDR10 picture (`transfer=smpte2084`, BT.2020): the
    /// transfer is read from the VUI past the reference picture sets.
    #[test]
    fn the_vui_transfer_of_an_hdr10_sps() {
        let sps = hex(
            "42010102200000030090000003000003003ca00a080f136595952930bc05a84880482000000300200000030321",
        );
        let v = parse_sps(&sps).unwrap();
        assert_eq!((v.width, v.height, v.bit_depth), (320, 240, Some(10)));
        assert_eq!(v.transfer, Some(16));
        assert_eq!(v.hdr(), Some("PQ"));
        // Cut anywhere, the SPS yields no transfer and no panic.
        for n in 2..sps.len() {
            let _ = parse_sps(&sps[..n]);
        }
    }
}
