//! Codec configuration parsers shared by every container: H.264 (ISO/IEC 14496-10 §7.3.2.1 SPS,
//! 14496-15 §5.3.3 avcC), HEVC (ITU-T H.265 §7.3.2.2 SPS, 14496-15 §8.3.3 hvcC), AAC
//! (14496-3 §1.6.2.1 AudioSpecificConfig, §1.A.2 ADTS) and Annex B NAL unit framing.
//!
//! All functions return `None` on malformed input; none of them panic or allocate more than the
//! input's size.

use crate::cursor::BitReader;
use crate::{Rational, VideoInfo};

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

/// Iterates over the NAL units of an Annex B byte stream (start codes `00 00 01` or
/// `00 00 00 01`), yielding each unit without its start code.
pub fn annexb_nals(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let n = starts.len();
    (0..n).map(move |k| {
        let s = starts[k];
        let mut e = if k + 1 < n {
            starts[k + 1] - 3
        } else {
            data.len()
        };
        // Trailing zero of a 4-byte start code belongs to the next start code.
        while e > s && data[e - 1] == 0 && k + 1 < n {
            e -= 1;
        }
        &data[s..e]
    })
}

/// H.264.
pub mod h264 {
    use super::*;

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
        if r.bit()? == 1 && r.bits(8)? == 255 {
            r.bits(32)?; // sar_width, sar_height
        }
        if r.bit()? == 1 {
            r.bit()?; // overscan_appropriate_flag
        }
        if r.bit()? == 1 {
            r.bits(4)?; // video_format, video_full_range_flag
            if r.bit()? == 1 {
                r.bits(24)?; // colour description
            }
        }
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
                let g = gcd(scale, den);
                rate = Some(Rational {
                    num: scale / g,
                    den: den / g,
                });
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
}

/// HEVC.
pub mod hevc {
    use super::*;

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
        Some((v, sub_layer_dpb(&mut r, sub_layers)))
    }

    /// The sub-layer ordering info after the bit depths: the highest sub-layer's DPB size.
    fn sub_layer_dpb(r: &mut BitReader<'_>, sub_layers: u32) -> Option<u32> {
        r.ue()?; // bit_depth_chroma_minus8
        r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        let all = r.bit()? == 1;
        let mut dpb = None;
        for _ in (if all { 0 } else { sub_layers })..=sub_layers {
            dpb = Some(r.ue()?.checked_add(1)?); // sps_max_dec_pic_buffering_minus1
            r.ue()?; // sps_max_num_reorder_pics
            r.ue()?; // sps_max_latency_increase_plus1
        }
        dpb.filter(|&d| d <= 16)
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

/// AAC.
pub mod aac {
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

    fn channels_of(config: u32) -> u16 {
        match config {
            1..=6 => config as u16,
            7 => 8,
            _ => 0,
        }
    }

    /// Parses an AudioSpecificConfig.
    pub fn parse_asc(asc: &[u8]) -> Option<Asc> {
        let mut r = super::BitReader::new(asc);
        let mut object_type = r.bits(5)?;
        if object_type == 31 {
            object_type = 32 + r.bits(6)?;
        }
        let rate = |r: &mut super::BitReader<'_>| -> Option<u32> {
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
            let v: u16 = (u16::from(self.object_type) << 11)
                | (u16::from(self.rate_index) << 7)
                | (u16::from(self.channel_config) << 3);
            v.to_be_bytes()
        }
    }

    /// Parses an ADTS header at the start of `b`.
    pub fn parse_adts(b: &[u8]) -> Option<Adts> {
        if b.len() < 7 || b[0] != 0xFF || b[1] & 0xF0 != 0xF0 {
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
}

/// Greatest common divisor (0 when both are 0).
pub fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_emulation_prevention() {
        assert_eq!(unescape_rbsp(&[0, 0, 3, 1, 0, 0, 3]), vec![0, 0, 1, 0, 0]);
    }

    #[test]
    fn splits_annexb() {
        let data = [0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 1, 0x65];
        let nals: Vec<_> = annexb_nals(&data).collect();
        assert_eq!(nals, vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65][..]]);
    }

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
            let _ = annexb_nals(&buf).count();
        }
    }
}
