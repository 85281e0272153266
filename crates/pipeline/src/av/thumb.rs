//! Thumbnails: the picture presented at a time, scaled, as a baseline JPEG (FFmpeg's mjpeg).

use ffmpeg_next as ff;

use super::codec::{check_input, is_again, is_data_error, open_decoder, to_ff_packet};
use super::limits::MAX_DIMENSION;
use super::video::{fit, upright, upright_size, VideoFilter};
use super::{AvError, Packet, StreamParams};

/// JPEG quantiser scale (2 = best … 31 = worst).
const JPEG_QSCALE: i32 = 3;

/// A JPEG of the picture presented at `at` (input timescale): the last one with pts ≤ `at`
/// (the first one, when all come later), turned upright ([`StreamParams::rotation`]), scaled
/// to `width` keeping its display aspect, with an even height. `packets` start at a keyframe at or before `at`.
pub fn thumbnail(
    input: &StreamParams,
    packets: &[Packet],
    at: i64,
    width: u32,
) -> Result<Vec<u8>, AvError> {
    check_input(input, packets)?;
    if !(2..=MAX_DIMENSION).contains(&width) {
        return Err(AvError::InvalidParams(format!(
            "thumbnail width {width} (2..={MAX_DIMENSION})"
        )));
    }
    let picture = pick(input, packets, at)?;
    let sar = picture.aspect_ratio();
    let sar = if sar.numerator() > 0 && sar.denominator() > 0 {
        (sar.numerator(), sar.denominator())
    } else {
        (1, 1)
    };
    // Upright first (the container's rotation), then fit into width x (tall enough for any
    // aspect): the width decides.
    let (pw, ph, sar) = upright_size(picture.width(), picture.height(), sar, input.rotation);
    let (w, h) = fit(pw, ph, sar, width, MAX_DIMENSION * 4);
    let rot = upright(input.rotation);
    let spec = format!(
        "{rot}scale=w={w}:h={h}:flags=bicubic+accurate_rnd+full_chroma_int,setsar=1,format=yuvj420p"
    );
    let mut filter = VideoFilter::for_frame(&picture, input.timescale, &spec)?;
    let mut out = filter.push(Some(&picture))?;
    out.extend(filter.push(None)?);
    let Some(mut scaled) = out.into_iter().next() else {
        return Err(AvError::NoFrames("thumbnail scaler"));
    };
    encode_jpeg(&mut scaled, input.timescale)
}

/// Decodes until the picture presented at `at` is known.
fn pick(input: &StreamParams, packets: &[Packet], at: i64) -> Result<ff::frame::Video, AvError> {
    let mut decoder = open_decoder(input, 1)?
        .video()
        .map_err(AvError::ff("opening the video decoder"))?;
    let mut best: Option<(i64, ff::frame::Video)> = None;
    let mut earliest: Option<(i64, ff::frame::Video)> = None;
    let mut past = false;
    let mut take = |frame: ff::frame::Video, past: &mut bool| {
        let Some(pts) = frame.timestamp().or(frame.pts()) else {
            return;
        };
        if pts <= at {
            if best.as_ref().is_none_or(|(b, _)| pts >= *b) {
                best = Some((pts, frame));
            }
        } else {
            // Decoders output in presentation order: nothing later can be ≤ at.
            *past = true;
            if earliest.as_ref().is_none_or(|(e, _)| pts < *e) {
                earliest = Some((pts, frame));
            }
        }
    };
    for p in packets {
        if past {
            break;
        }
        match decoder.send_packet(&to_ff_packet(p)) {
            Ok(()) => {}
            Err(e) if is_data_error(&e) => continue,
            Err(e) => return Err(AvError::ff("decoding video")(e)),
        }
        drain(&mut decoder, &mut |f| take(f, &mut past))?;
    }
    if !past {
        decoder
            .send_eof()
            .map_err(AvError::ff("flushing the video decoder"))?;
        drain(&mut decoder, &mut |f| take(f, &mut past))?;
    }
    best.or(earliest)
        .map(|(_, f)| f)
        .ok_or(AvError::NoFrames("thumbnail"))
}

fn drain(
    decoder: &mut ff::decoder::Video,
    take: &mut dyn FnMut(ff::frame::Video),
) -> Result<(), AvError> {
    loop {
        let mut frame = ff::frame::Video::empty();
        match decoder.receive_frame(&mut frame) {
            Ok(()) => take(frame),
            Err(e) if is_again(&e) || e == ff::Error::Eof => return Ok(()),
            Err(e) if is_data_error(&e) => return Ok(()),
            Err(e) => return Err(AvError::ff("decoding video")(e)),
        }
    }
}

fn encode_jpeg(frame: &mut ff::frame::Video, timescale: u32) -> Result<Vec<u8>, AvError> {
    let codec = ff::encoder::find(ff::codec::Id::MJPEG).ok_or(AvError::MissingCodec {
        kind: "encoder",
        name: "mjpeg".into(),
    })?;
    let mut ctx = ff::codec::Context::new_with_codec(codec)
        .encoder()
        .video()
        .map_err(AvError::ff("creating the JPEG encoder"))?;
    ctx.set_width(frame.width());
    ctx.set_height(frame.height());
    ctx.set_format(ff::format::Pixel::YUVJ420P);
    ctx.set_time_base(ff::Rational::new(1, timescale as i32));
    ctx.set_aspect_ratio(ff::Rational::new(1, 1));
    ctx.set_flags(ff::codec::Flags::QSCALE);
    let lambda = JPEG_QSCALE * ff::ffi::FF_QP2LAMBDA;
    ctx.set_global_quality(lambda);
    let mut encoder = ctx
        .open_as(codec)
        .map_err(AvError::ff("opening the JPEG encoder"))?;
    frame.set_kind(ff::picture::Type::None);
    // SAFETY: `frame` is a valid, exclusively borrowed AVFrame; `quality` is a plain int the
    // encoder reads as the picture's lambda when QSCALE is set.
    unsafe {
        (*frame.as_mut_ptr()).quality = lambda;
    }
    let stage = "encoding JPEG";
    encoder.send_frame(frame).map_err(AvError::ff(stage))?;
    encoder.send_eof().map_err(AvError::ff(stage))?;
    let mut pkt = ff::Packet::empty();
    encoder
        .receive_packet(&mut pkt)
        .map_err(AvError::ff(stage))?;
    match pkt.data() {
        Some(d) if !d.is_empty() => Ok(d.to_vec()),
        _ => Err(AvError::NoFrames("JPEG encoder")),
    }
}
