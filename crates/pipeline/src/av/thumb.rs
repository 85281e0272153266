//! Thumbnails: the picture presented at a time, scaled, as a baseline JPEG (FFmpeg's mjpeg);
//! and trick-play sheets: keyframes decoded alone, scaled into the tiles of one JPEG.

use ffmpeg_next as ff;

use super::codec::{check_input, is_again, is_data_error, open_decoder, to_ff_packet};
use super::limits::MAX_DIMENSION;
use super::video::{fit, is_hdr, tone_map, upright, upright_size, VideoFilter};
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
    let tone = tone_map(is_hdr(&picture));
    let spec = format!(
        "{tone}{rot}scale=w={w}:h={h}:flags=bicubic+accurate_rnd+full_chroma_int,setsar=1,format=yuvj420p"
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

/// The tile grid of a trick-play sheet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SheetLayout {
    /// Tile size, pixels (even).
    pub tile: (u32, u32),
    /// Tiles per row, rows.
    pub grid: (u32, u32),
}

/// Most tiles of one sheet.
pub const MAX_SHEET_TILES: usize = 400;

/// A trick-play sheet: `keyframes` (random-access packets, in presentation order) are decoded
/// one by one — nothing else is — and tile `i` of `tiles` shows the picture of
/// `keyframes[tiles[i]]`, turned upright, fitted into the tile (black bars when the aspect
/// differs); a `None` tile, a tile past `tiles` or a keyframe that does not decode is black.
/// When no keyframe decodes: [`AvError::NoFrames`].
pub fn sheet(
    input: &StreamParams,
    keyframes: &[Packet],
    tiles: &[Option<usize>],
    layout: SheetLayout,
) -> Result<Vec<u8>, AvError> {
    check_input(input, keyframes)?;
    let (tw, th) = layout.tile;
    let (cols, rows) = layout.grid;
    let cells = (cols as usize).saturating_mul(rows as usize);
    if tw < 2
        || th < 2
        || tw % 2 == 1
        || th % 2 == 1
        || cells == 0
        || cells > MAX_SHEET_TILES
        || tiles.len() > cells
        || u64::from(tw) * u64::from(cols) > u64::from(MAX_DIMENSION)
        || u64::from(th) * u64::from(rows) > u64::from(MAX_DIMENSION)
    {
        return Err(AvError::InvalidParams(format!(
            "sheet of {cols}x{rows} tiles of {tw}x{th} for {} tiles",
            tiles.len()
        )));
    }
    let (w, h) = (tw * cols, th * rows);
    let mut sheet = ff::frame::Video::new(ff::format::Pixel::YUVJ420P, w, h);
    // Black in full-range YUV.
    for (plane, value) in [(0, 0u8), (1, 128), (2, 128)] {
        sheet.data_mut(plane).fill(value);
    }
    // Square pixels first (an anamorphic picture is shown at its display aspect), then
    // upright, then fitted into the tile.
    let rot = upright(input.rotation);
    let spec = |hdr: bool| {
        format!(
            "{}scale=trunc(iw*sar/2)*2:ih,setsar=1,{rot}\
             scale=w={tw}:h={th}:force_original_aspect_ratio=decrease:flags=bicubic,\
             pad={tw}:{th}:(ow-iw)/2:(oh-ih)/2:black,setsar=1,format=yuvj420p",
            tone_map(hdr)
        )
    };
    // Each picture becomes its small tile as soon as it is decoded: only tiles are kept.
    let scaled = decode_each(input, keyframes, &mut |frame| {
        let mut f = VideoFilter::for_frame(frame, input.timescale, &spec(is_hdr(frame)))?;
        let mut out = f.push(Some(frame))?;
        out.extend(f.push(None)?);
        Ok(out.into_iter().next())
    })?;
    // A sheet whose keyframes all fail to decode shows nothing: the source's fault, not a
    // black picture.
    if tiles
        .iter()
        .flatten()
        .all(|k| scaled.get(*k).is_none_or(Option::is_none))
    {
        return Err(AvError::NoFrames("trick-play sheet (no keyframe decoded)"));
    }
    for (i, k) in tiles.iter().enumerate() {
        let Some(tile) = k.and_then(|k| scaled.get(k)).and_then(Option::as_ref) else {
            continue;
        };
        if tile.width() != tw || tile.height() != th {
            continue;
        }
        let (col, row) = (i as u32 % cols, i as u32 / cols);
        for plane in 0..3 {
            let (sub_w, sub_h) = if plane == 0 { (1, 1) } else { (2, 2) };
            let (x0, y0) = ((col * tw / sub_w) as usize, (row * th / sub_h) as usize);
            let (pw, ph) = ((tw / sub_w) as usize, (th / sub_h) as usize);
            let src_stride = tile.stride(plane);
            let dst_stride = sheet.stride(plane);
            let src = tile.data(plane);
            let dst = sheet.data_mut(plane);
            for y in 0..ph {
                let s = y * src_stride;
                let d = (y0 + y) * dst_stride + x0;
                if let (Some(from), Some(to)) = (src.get(s..s + pw), dst.get_mut(d..d + pw)) {
                    to.copy_from_slice(from);
                }
            }
        }
    }
    encode_jpeg(&mut sheet, input.timescale)
}

/// What [`decode_each`] does with each decoded picture.
type Convert<'a> = dyn FnMut(&ff::frame::Video) -> Result<Option<ff::frame::Video>, AvError> + 'a;

/// Decodes each packet on its own (they are random-access points) and turns its picture into
/// what `convert` makes of it, in the order given; `None` where one gives no picture.
fn decode_each(
    input: &StreamParams,
    keyframes: &[Packet],
    convert: &mut Convert<'_>,
) -> Result<Vec<Option<ff::frame::Video>>, AvError> {
    let mut decoder = open_decoder(input, 1)?
        .video()
        .map_err(AvError::ff("opening the video decoder"))?;
    let mut out = Vec::with_capacity(keyframes.len());
    for p in keyframes {
        let mut picture = None;
        match decoder.send_packet(&to_ff_packet(p)) {
            Ok(()) => {}
            Err(e) if is_data_error(&e) => {
                out.push(None);
                continue;
            }
            Err(e) => return Err(AvError::ff("decoding video")(e)),
        }
        // Drain this packet's picture (a decoder with a reorder delay holds it until flushed).
        decoder
            .send_eof()
            .map_err(AvError::ff("flushing the video decoder"))?;
        drain(&mut decoder, &mut |f| {
            if picture.is_none() {
                picture = Some(f);
            }
        })?;
        decoder.flush();
        out.push(match picture {
            Some(p) => convert(&p)?,
            None => None,
        });
    }
    Ok(out)
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
