//! Opening decoders from [`StreamParams`] and turning [`Packet`]s into FFmpeg packets.

use ff::codec::Id;
use ffmpeg_next as ff;

use super::limits::{MAX_EXTRADATA, MAX_PACKETS};
use super::{AvError, Packet, StreamParams};

/// FFmpeg's codec id for a probed codec; subtitles and unknown codecs are not decodable here.
pub(crate) fn codec_id(codec: &probe::Codec) -> Result<Id, AvError> {
    use probe::Codec as C;
    Ok(match codec {
        C::H264 => Id::H264,
        C::Hevc => Id::HEVC,
        C::Av1 => Id::AV1,
        C::Vp8 => Id::VP8,
        C::Vp9 => Id::VP9,
        C::Mpeg2Video => Id::MPEG2VIDEO,
        C::Mpeg4Part2 => Id::MPEG4,
        C::Aac => Id::AAC,
        C::Ac3 => Id::AC3,
        C::Eac3 => Id::EAC3,
        C::Dts => Id::DTS,
        C::TrueHd => Id::TRUEHD,
        C::Mp3 => Id::MP3,
        C::Mp2 => Id::MP2,
        C::Opus => Id::OPUS,
        C::Vorbis => Id::VORBIS,
        C::Flac => Id::FLAC,
        other => return Err(AvError::UnsupportedCodec(other.name().to_string())),
    })
}

/// Checks the parts of the input every entry point relies on.
pub(crate) fn check_input(input: &StreamParams, packets: &[Packet]) -> Result<(), AvError> {
    if input.timescale == 0 || input.timescale > i32::MAX as u32 {
        return Err(AvError::InvalidParams(format!(
            "timescale {}",
            input.timescale
        )));
    }
    if input.extradata.len() > MAX_EXTRADATA {
        return Err(AvError::Limit {
            what: "extradata bytes",
            value: input.extradata.len() as u64,
            max: MAX_EXTRADATA as u64,
        });
    }
    if packets.len() > MAX_PACKETS {
        return Err(AvError::Limit {
            what: "packets",
            value: packets.len() as u64,
            max: MAX_PACKETS as u64,
        });
    }
    Ok(())
}

/// Opens a decoder for `input` with `threads` frame threads (0 = FFmpeg's choice; decoders are
/// bit-exact whatever the thread count). Packet timestamps are in `1/timescale`.
pub(crate) fn open_decoder(
    input: &StreamParams,
    threads: u32,
) -> Result<ff::decoder::Opened, AvError> {
    super::init()?;
    let missing = || AvError::MissingCodec {
        kind: "decoder",
        name: input.codec.name().to_string(),
    };
    let codec = match &input.codec {
        // A codec known by FFmpeg's decoder name (universal sources: "wmav2", "pcm_s16le"…).
        probe::Codec::Other(name) => ff::decoder::find_by_name(name).ok_or_else(missing)?,
        c => ff::decoder::find(codec_id(c)?).ok_or_else(missing)?,
    };
    let mut ctx = ff::codec::Context::new_with_codec(codec);
    let timescale = i32::try_from(input.timescale)
        .map_err(|_| AvError::InvalidParams(format!("timescale {}", input.timescale)))?;
    let extradata = &input.extradata;
    // SAFETY: `ctx` owns a freshly allocated, not yet opened AVCodecContext. We only write plain
    // fields; the extradata buffer is allocated with av_mallocz (padding zeroed, as FFmpeg
    // requires) and ownership passes to the context, which av_freep's it when freed.
    unsafe {
        let p = ctx.as_mut_ptr();
        let tb = ff::ffi::AVRational {
            num: 1,
            den: timescale,
        };
        (*p).pkt_timebase = tb;
        (*p).time_base = tb;
        if !extradata.is_empty() {
            let padding = ff::ffi::AV_INPUT_BUFFER_PADDING_SIZE as usize;
            let buf = ff::ffi::av_mallocz(extradata.len() + padding) as *mut u8;
            if buf.is_null() {
                return Err(AvError::Ffmpeg {
                    stage: "allocating extradata",
                    source: ff::Error::Other {
                        errno: ff::util::error::ENOMEM,
                    },
                });
            }
            std::ptr::copy_nonoverlapping(extradata.as_ptr(), buf, extradata.len());
            (*p).extradata = buf;
            // Fits: MAX_EXTRADATA is far below i32::MAX (checked by check_input).
            (*p).extradata_size = extradata.len() as i32;
        }
        match codec.medium() {
            ff::media::Type::Video => {
                (*p).width = i32::try_from(input.width).unwrap_or(0);
                (*p).height = i32::try_from(input.height).unwrap_or(0);
            }
            ff::media::Type::Audio => {
                (*p).sample_rate = i32::try_from(input.sample_rate).unwrap_or(0);
                (*p).block_align = i32::try_from(input.block_align).unwrap_or(0);
                (*p).bit_rate = i64::try_from(input.bit_rate).unwrap_or(0);
                if input.channels > 0 {
                    (*p).channels = i32::from(input.channels);
                    (*p).channel_layout =
                        ff::ffi::av_get_default_channel_layout(i32::from(input.channels)) as u64;
                }
            }
            _ => {}
        }
    }
    if threads > 0 {
        ctx.set_threading(ff::codec::threading::Config {
            kind: ff::codec::threading::Type::Frame,
            count: threads as usize,
            ..Default::default()
        });
    }
    ctx.decoder()
        .open_as(codec)
        .map_err(AvError::ff("opening the decoder"))
}

/// An FFmpeg packet carrying a copy of `p`.
pub(crate) fn to_ff_packet(p: &Packet) -> ff::Packet {
    let mut pkt = ff::Packet::copy(p.data);
    pkt.set_pts(Some(p.pts));
    pkt.set_dts(p.dts);
    if p.keyframe {
        pkt.set_flags(ff::packet::Flags::KEY);
    }
    pkt
}

/// Whether a decode error is about the data (skip the packet and go on, as players do) rather
/// than about the decoder itself.
pub(crate) fn is_data_error(e: &ff::Error) -> bool {
    match e {
        ff::Error::InvalidData | ff::Error::PatchWelcome | ff::Error::Bug | ff::Error::Bug2 => true,
        ff::Error::Other { errno } => {
            *errno != ff::util::error::EAGAIN && *errno != ff::util::error::ENOMEM
        }
        _ => false,
    }
}

/// FFmpeg's "try again after draining" answer.
pub(crate) fn is_again(e: &ff::Error) -> bool {
    matches!(e, ff::Error::Other { errno } if *errno == ff::util::error::EAGAIN)
}

/// A copy of an open codec context's extradata (empty when it has none).
pub(crate) fn extradata_of(ctx: &ff::codec::Context) -> Vec<u8> {
    // SAFETY: `ctx` is a live AVCodecContext; extradata/extradata_size describe a buffer it
    // owns (written by the codec at open) that outlives this borrow; we copy it out.
    unsafe {
        let p = ctx.as_ptr();
        let (data, size) = ((*p).extradata, (*p).extradata_size);
        if data.is_null() || size <= 0 {
            Vec::new()
        } else {
            std::slice::from_raw_parts(data, size as usize).to_vec()
        }
    }
}
