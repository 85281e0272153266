//! Video transcode to H.264 with libx264, one segment at a time.
//!
//! Decode every packet (from the keyframe at or before `start`), run the pictures through one
//! filter graph (optional `bwdif`, `scale` keeping the display aspect, `format=yuv420p`, `pad` to
//! the exact output size, `setsar=1`), keep those presented in `[start, end)` and encode them
//! with a fresh libx264 whose every parameter comes from [`VideoEncode`] (never from the
//! segment), so the SPS/PPS — and the avcC built from them — are the same for every segment.

use ff::Rescale;
use ffmpeg_next as ff;

use super::codec::{
    check_input, extradata_of, is_again, is_data_error, open_decoder, to_ff_packet,
};
use super::limits::{MAX_DIMENSION, MAX_THREADS};
use super::nal::{annex_b_to_length_prefixed, avcc_from_annex_b};
use super::{AvError, EncodedSample, Packet, StreamParams};
use crate::Cancel;

/// How to encode a video rendition. The same value must be used for every segment of a
/// rendition: the avcC depends on it and only on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoEncode {
    /// Output width in pixels (even). The picture is scaled to fit keeping its display aspect,
    /// then padded (black, centred) to exactly `width` x `height`.
    pub width: u32,
    /// Output height in pixels (even).
    pub height: u32,
    /// x264 preset (`ultrafast` … `placebo`).
    pub preset: String,
    /// x264 constant rate factor (0–51).
    pub crf: u8,
    /// VBV maximum rate in kbit/s (0 = no VBV).
    pub maxrate_kbps: u32,
    /// VBV buffer size in kbit (0 = no VBV).
    pub bufsize_kbps: u32,
    /// Encoder (and decoder) threads: fixed, so the output does not depend on the machine.
    pub threads: u32,
    /// Deinterlace (bwdif) pictures the decoder marks as interlaced.
    pub deinterlace: bool,
    /// The source's nominal frame rate (`num`, `den`), when it has one: x264's rate control and
    /// the SPS timing (the frame rate players show) use it; without it x264 takes one frame per
    /// tick of the timescale (1000 fps for a millisecond clock).
    pub frame_rate: Option<(u32, u32)>,
}

/// A transcoded video segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoOutput {
    /// The `AVCDecoderConfigurationRecord` (avcC body) for the init segment's sample entry.
    pub avcc: Vec<u8>,
    /// Access units in decode order; pts/dts in the input timescale. The first is an IDR.
    pub samples: Vec<EncodedSample>,
}

/// x264's presets, the only values [`VideoEncode::preset`] may take.
const PRESETS: [&str; 10] = [
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
];

/// Frame rate assumed when choosing the H.264 level from the picture size (the level must not
/// depend on the segment, and 60 fps covers what we serve).
const LEVEL_ASSUMED_FPS: u64 = 60;

/// Decodes `packets` (decode order, starting at a keyframe at or before `start`), keeps the
/// pictures presented in `[start, end)` (input timescale) and encodes them to H.264.
pub fn transcode_video(
    input: &StreamParams,
    packets: &[Packet],
    start: i64,
    end: i64,
    enc: &VideoEncode,
) -> Result<VideoOutput, AvError> {
    transcode_video_cancellable(input, packets, start, end, enc, &Cancel::default())
}

/// [`transcode_video`] that checks `cancel` before each packet and stops with
/// [`AvError::Cancelled`] once it is set.
pub fn transcode_video_cancellable(
    input: &StreamParams,
    packets: &[Packet],
    start: i64,
    end: i64,
    enc: &VideoEncode,
    cancel: &Cancel,
) -> Result<VideoOutput, AvError> {
    check_input(input, packets)?;
    check_encode(enc)?;
    if start >= end {
        return Err(AvError::InvalidParams(format!(
            "empty range [{start}, {end})"
        )));
    }
    let mut decoder = open_decoder(input, enc.threads)?
        .video()
        .map_err(AvError::ff("opening the video decoder"))?;
    let mut job = Job {
        input,
        enc,
        start,
        end,
        filter: None,
        encoder: None,
        last_pts: None,
        samples: Vec::new(),
        before: None,
        after: false,
    };
    for p in packets {
        if cancel.is_cancelled() {
            return Err(AvError::Cancelled);
        }
        match decoder.send_packet(&to_ff_packet(p)) {
            Ok(()) => {}
            Err(e) if is_data_error(&e) => continue,
            Err(e) => return Err(AvError::ff("decoding video")(e)),
        }
        drain_decoder(&mut decoder, &mut job)?;
    }
    decoder
        .send_eof()
        .map_err(AvError::ff("flushing the video decoder"))?;
    drain_decoder(&mut decoder, &mut job)?;
    job.finish()
}

/// The `AVCDecoderConfigurationRecord` every segment of the rendition `enc` makes of `input`
/// carries, without encoding anything: the first picture `packets` decode to goes through the
/// rendition's filter (for its colour description, which x264 writes into the SPS), libx264 is
/// opened with global headers exactly as for a segment, and its parameter sets are read. They
/// depend only on the settings and the source's colour description, so this is the avcC of
/// every segment (tested against an encode of segment 0).
pub fn video_config(
    input: &StreamParams,
    packets: &[Packet],
    enc: &VideoEncode,
) -> Result<Vec<u8>, AvError> {
    check_input(input, packets)?;
    check_encode(enc)?;
    let mut decoder = open_decoder(input, enc.threads)?
        .video()
        .map_err(AvError::ff("opening the video decoder"))?;
    let take = |decoder: &mut ff::decoder::Video| {
        let mut frame = ff::frame::Video::empty();
        decoder.receive_frame(&mut frame).is_ok().then_some(frame)
    };
    let mut first = None;
    for p in packets {
        match decoder.send_packet(&to_ff_packet(p)) {
            Ok(()) => {}
            Err(e) if is_data_error(&e) => continue,
            Err(e) => return Err(AvError::ff("decoding video")(e)),
        }
        first = take(&mut decoder);
        if first.is_some() {
            break;
        }
    }
    if first.is_none() {
        decoder
            .send_eof()
            .map_err(AvError::ff("flushing the video decoder"))?;
        first = take(&mut decoder);
    }
    let mut frame = first.ok_or(AvError::NoFrames("video"))?;
    if frame.pts().is_none() {
        frame.set_pts(Some(0));
    }
    let key = FrameKey::of(&frame);
    let mut filter =
        VideoFilter::new(key, input.timescale, &filter_spec(key, enc, input.rotation))?;
    let mut out = filter.push(Some(&frame))?;
    out.extend(filter.push(None)?);
    let filtered = out.first().ok_or(AvError::NoFrames("video"))?;
    let encoder = open_x264(enc, input.timescale, filtered)?;
    avcc_from_annex_b(&extradata_of(&encoder))
}

fn check_encode(enc: &VideoEncode) -> Result<(), AvError> {
    let size_ok = |v: u32| (2..=MAX_DIMENSION).contains(&v) && v.is_multiple_of(2);
    if !size_ok(enc.width) || !size_ok(enc.height) {
        return Err(AvError::InvalidParams(format!(
            "output size {}x{} (even, 2..={MAX_DIMENSION})",
            enc.width, enc.height
        )));
    }
    if !PRESETS.contains(&enc.preset.as_str()) {
        return Err(AvError::InvalidParams(format!(
            "x264 preset {:?}",
            enc.preset
        )));
    }
    if enc.crf > 51 {
        return Err(AvError::InvalidParams(format!("crf {}", enc.crf)));
    }
    if enc.threads == 0 || enc.threads > MAX_THREADS {
        return Err(AvError::InvalidParams(format!(
            "threads {} (1..={MAX_THREADS})",
            enc.threads
        )));
    }
    Ok(())
}

fn drain_decoder(decoder: &mut ff::decoder::Video, job: &mut Job) -> Result<(), AvError> {
    loop {
        let mut frame = ff::frame::Video::empty();
        match decoder.receive_frame(&mut frame) {
            Ok(()) => job.push_decoded(frame)?,
            Err(e) if is_again(&e) || e == ff::Error::Eof => return Ok(()),
            // A broken picture: the decoder has nothing more for this packet.
            Err(e) if is_data_error(&e) => return Ok(()),
            Err(e) => return Err(AvError::ff("decoding video")(e)),
        }
    }
}

/// What identifies a filter graph's input: a change rebuilds the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FrameKey {
    width: u32,
    height: u32,
    format: ff::format::Pixel,
    sar: (i32, i32),
    /// HDR transfer (PQ, HLG): the pictures are tone-mapped to SDR BT.709.
    hdr: bool,
}

impl FrameKey {
    fn of(frame: &ff::frame::Video) -> FrameKey {
        let sar = frame.aspect_ratio();
        let sar = if sar.numerator() > 0 && sar.denominator() > 0 {
            (sar.numerator(), sar.denominator())
        } else {
            (1, 1)
        };
        FrameKey {
            width: frame.width(),
            height: frame.height(),
            format: frame.format(),
            sar,
            hdr: is_hdr(frame),
        }
    }
}

/// Whether `frame` is coded with an HDR transfer: SMPTE ST 2084 (PQ, HDR10) or ARIB STD-B67
/// (HLG), as the bitstream's VUI says.
pub(crate) fn is_hdr(frame: &ff::frame::Video) -> bool {
    use ff::color::TransferCharacteristic as T;
    matches!(
        frame.color_transfer_characteristic(),
        T::SMPTE2084 | T::ARIB_STD_B67
    )
}

/// The filters that turn an HDR picture (PQ or HLG, BT.2020) into SDR BT.709, limited range:
/// to linear light (100 nits = 1.0), BT.709 primaries, Hable's curve (highlights compressed,
/// mid-tones kept), then the BT.709 transfer and matrix (libzimg's `zscale` and FFmpeg's
/// `tonemap`). The output frames carry BT.709 in their colour description, which the H.264
/// encoder writes into its VUI and the JPEG into its headers. Empty for SDR pictures.
pub(crate) fn tone_map(hdr: bool) -> &'static str {
    if hdr {
        "zscale=t=linear:npl=100,format=gbrpf32le,zscale=p=bt709,tonemap=tonemap=hable:desat=0,\
         zscale=t=bt709:m=bt709:r=tv,"
    } else {
        ""
    }
}

/// A filter graph `buffer → spec → buffersink` for frames like `key`, timestamps in
/// `1/timescale`.
pub(crate) struct VideoFilter {
    graph: ff::filter::Graph,
    key: FrameKey,
    timescale: u32,
}

impl VideoFilter {
    fn new(key: FrameKey, timescale: u32, spec: &str) -> Result<VideoFilter, AvError> {
        let stage = "building the video filter graph";
        let mut graph = ff::filter::Graph::new();
        let buffer = ff::filter::find("buffer").ok_or(AvError::MissingCodec {
            kind: "filter",
            name: "buffer".into(),
        })?;
        let sink = ff::filter::find("buffersink").ok_or(AvError::MissingCodec {
            kind: "filter",
            name: "buffersink".into(),
        })?;
        let args = format!(
            "video_size={}x{}:pix_fmt={}:time_base=1/{}:pixel_aspect={}/{}",
            key.width,
            key.height,
            ff::ffi::AVPixelFormat::from(key.format) as i32,
            timescale,
            key.sar.0,
            key.sar.1
        );
        graph
            .add(&buffer, "in", &args)
            .map_err(AvError::ff(stage))?;
        graph.add(&sink, "out", "").map_err(AvError::ff(stage))?;
        graph
            .output("in", 0)
            .and_then(|p| p.input("out", 0))
            .and_then(|p| p.parse(spec))
            .map_err(AvError::ff(stage))?;
        graph.validate().map_err(AvError::ff(stage))?;
        Ok(VideoFilter {
            graph,
            key,
            timescale,
        })
    }

    /// A graph for frames like `frame`.
    pub(crate) fn for_frame(
        frame: &ff::frame::Video,
        timescale: u32,
        spec: &str,
    ) -> Result<VideoFilter, AvError> {
        VideoFilter::new(FrameKey::of(frame), timescale, spec)
    }

    /// Feeds a frame (or, with `None`, the end of stream) and returns what comes out.
    pub(crate) fn push(
        &mut self,
        frame: Option<&ff::frame::Video>,
    ) -> Result<Vec<ff::frame::Video>, AvError> {
        let stage = "filtering video";
        let mut src = self
            .graph
            .get("in")
            .ok_or(AvError::Mismatch("filter graph lost its input".into()))?;
        match frame {
            Some(f) => src.source().add(f).map_err(AvError::ff(stage))?,
            None => src.source().flush().map_err(AvError::ff(stage))?,
        }
        let mut sink = self
            .graph
            .get("out")
            .ok_or(AvError::Mismatch("filter graph lost its output".into()))?;
        // bwdif/yadif halve the time base (for field rate output): bring times back.
        let sink_tb = sink.sink().time_base();
        let ours = ff::Rational::new(1, self.timescale as i32);
        let mut out = Vec::new();
        loop {
            let mut f = ff::frame::Video::empty();
            match sink.sink().frame(&mut f) {
                Ok(()) => {
                    if sink_tb != ours && sink_tb.numerator() > 0 {
                        let pts = f.pts().map(|t| t.rescale(sink_tb, ours));
                        f.set_pts(pts);
                    }
                    out.push(f);
                }
                Err(e) if is_again(&e) || e == ff::Error::Eof => return Ok(out),
                Err(e) => return Err(AvError::ff(stage)(e)),
            }
        }
    }
}

/// The size a `src_w` x `src_h` picture with sample aspect `sar` takes when fitted into
/// `out_w` x `out_h` square pixels keeping its display aspect; both sides even, at least 2.
pub(crate) fn fit(src_w: u32, src_h: u32, sar: (i32, i32), out_w: u32, out_h: u32) -> (u32, u32) {
    let (sn, sd) = (
        u64::from(sar.0.max(1) as u32),
        u64::from(sar.1.max(1) as u32),
    );
    let dw = u64::from(src_w.max(1)) * sn; // display width, in units of 1/sd
    let dh = u64::from(src_h.max(1)) * sd;
    let (ow, oh) = (u64::from(out_w), u64::from(out_h));
    // Nearest even integer to num/den.
    let even = |num: u64, den: u64| ((num + den) / (2 * den)) * 2;
    let (w, h) = if dw * oh >= dh * ow {
        (ow, even(ow * dh, dw))
    } else {
        (even(oh * dw, dh), oh)
    };
    (w.clamp(2, ow) as u32, h.clamp(2, oh) as u32)
}

/// The filters that turn a picture upright for a clockwise display `rotation` (the container's
/// matrix), each followed by a comma; empty for none.
pub(crate) fn upright(rotation: u32) -> &'static str {
    match rotation % 360 {
        90 => "transpose=clock,",
        180 => "hflip,vflip,",
        270 => "transpose=cclock,",
        _ => "",
    }
}

/// A picture's (width, height, sample aspect) once [`upright`]: swapped for a quarter turn.
pub(crate) fn upright_size(
    width: u32,
    height: u32,
    sar: (i32, i32),
    rotation: u32,
) -> (u32, u32, (i32, i32)) {
    if matches!(rotation % 360, 90 | 270) {
        (height, width, (sar.1, sar.0))
    } else {
        (width, height, sar)
    }
}

/// The filter chain for a source picture `key`, displayed turned by `rotation`, into `enc`'s
/// output: deinterlace (on the coded fields), tone-map HDR to SDR, turn upright, scale, pad.
fn filter_spec(key: FrameKey, enc: &VideoEncode, rotation: u32) -> String {
    let (kw, kh, ksar) = upright_size(key.width, key.height, key.sar, rotation);
    let (w, h) = fit(kw, kh, ksar, enc.width, enc.height);
    let rot = upright(rotation);
    let x = ((enc.width - w) / 2) & !1;
    let y = ((enc.height - h) / 2) & !1;
    let deint = if enc.deinterlace {
        "bwdif=mode=send_frame:parity=auto:deint=interlaced,"
    } else {
        ""
    };
    let tone = tone_map(key.hdr);
    // The scaler keeps the transfer and primaries zscale wrote but not the matrix: all three
    // said again, so the H.264 VUI is BT.709 throughout.
    let tags = if key.hdr {
        ",setparams=colorspace=bt709:color_trc=bt709:color_primaries=bt709:range=tv"
    } else {
        ""
    };
    format!(
        "{deint}{tone}{rot}scale=w={w}:h={h}:flags=bicubic+accurate_rnd+full_chroma_int,format=yuv420p,\
         pad=w={}:h={}:x={x}:y={y}:color=black,setsar=1{tags}",
        enc.width, enc.height
    )
}

/// The H.264 level (`level_idc`) for a picture size and VBV rate: the lowest whose frame size,
/// macroblock rate (at [`LEVEL_ASSUMED_FPS`]) and High-profile bit rate allow it (Table A-1).
pub(crate) fn level_for(width: u32, height: u32, maxrate_kbps: u32) -> u8 {
    // (level_idc, MaxFS, MaxMBPS, MaxBR in 1000 bit/s for Baseline/Main)
    const LEVELS: [(u8, u64, u64, u64); 15] = [
        (10, 99, 1_485, 64),
        (11, 396, 3_000, 192),
        (12, 396, 6_000, 384),
        (13, 396, 11_880, 768),
        (20, 396, 11_880, 2_000),
        (21, 792, 19_800, 4_000),
        (22, 1_620, 20_250, 4_000),
        (30, 1_620, 40_500, 10_000),
        (31, 3_600, 108_000, 14_000),
        (32, 5_120, 216_000, 20_000),
        (40, 8_192, 245_760, 20_000),
        (41, 8_192, 245_760, 50_000),
        (42, 8_704, 522_240, 50_000),
        (50, 22_080, 589_824, 135_000),
        (51, 36_864, 983_040, 240_000),
    ];
    let wm = u64::from(width.div_ceil(16));
    let hm = u64::from(height.div_ceil(16));
    let fs = wm * hm;
    for (idc, max_fs, max_mbps, max_br) in LEVELS {
        let fits = fs <= max_fs
            && wm * wm <= 8 * max_fs
            && hm * hm <= 8 * max_fs
            && fs * LEVEL_ASSUMED_FPS <= max_mbps
            // High profile: cpbBrVclFactor 1250 vs 1000.
            && u64::from(maxrate_kbps) * 1000 <= max_br * 1250;
        if fits {
            return idc;
        }
    }
    52
}

struct Job<'a> {
    input: &'a StreamParams,
    enc: &'a VideoEncode,
    start: i64,
    end: i64,
    filter: Option<VideoFilter>,
    encoder: Option<ff::encoder::video::Encoder>,
    last_pts: Option<i64>,
    samples: Vec<EncodedSample>,
    /// The latest picture before `start`, held back: only it goes through the filter (as the
    /// deinterlacer's past), not the whole GOP before the segment.
    before: Option<ff::frame::Video>,
    /// A picture at or after `end` went through the filter (the deinterlacer's future).
    after: bool,
}

impl Job<'_> {
    fn push_decoded(&mut self, mut frame: ff::frame::Video) -> Result<(), AvError> {
        let Some(pts) = frame.timestamp().or(frame.pts()) else {
            return Ok(()); // a picture with no time cannot be placed
        };
        frame.set_pts(Some(pts));
        if pts < self.start {
            self.before = Some(frame);
            return Ok(());
        }
        if let Some(prev) = self.before.take() {
            self.filter_frame(prev)?;
        }
        if pts >= self.end {
            if self.after {
                return Ok(());
            }
            self.after = true;
        }
        self.filter_frame(frame)
    }

    fn filter_frame(&mut self, frame: ff::frame::Video) -> Result<(), AvError> {
        let key = FrameKey::of(&frame);
        if self.filter.as_ref().map(|f| f.key) != Some(key) {
            if let Some(mut old) = self.filter.take() {
                for f in old.push(None)? {
                    self.encode(f)?;
                }
            }
            self.filter = Some(VideoFilter::new(
                key,
                self.input.timescale,
                &filter_spec(key, self.enc, self.input.rotation),
            )?);
        }
        let out = match self.filter.as_mut() {
            Some(f) => f.push(Some(&frame))?,
            None => Vec::new(),
        };
        for f in out {
            self.encode(f)?;
        }
        Ok(())
    }

    fn encode(&mut self, mut frame: ff::frame::Video) -> Result<(), AvError> {
        let Some(pts) = frame.pts() else {
            return Ok(());
        };
        if pts < self.start || pts >= self.end || self.last_pts.is_some_and(|l| l >= pts) {
            return Ok(());
        }
        self.last_pts = Some(pts);
        // Picture types from the source decoder would force keyframes in libx264.
        frame.set_kind(ff::picture::Type::None);
        if self.encoder.is_none() {
            self.encoder = Some(open_x264(self.enc, self.input.timescale, &frame)?);
        }
        if let Some(encoder) = self.encoder.as_mut() {
            encoder
                .send_frame(&frame)
                .map_err(AvError::ff("encoding video"))?;
            drain_encoder(encoder, &mut self.samples)?;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<VideoOutput, AvError> {
        if let Some(mut filter) = self.filter.take() {
            for f in filter.push(None)? {
                self.encode(f)?;
            }
        }
        let Some(mut encoder) = self.encoder.take() else {
            return Err(AvError::NoFrames("video"));
        };
        encoder
            .send_eof()
            .map_err(AvError::ff("flushing the video encoder"))?;
        drain_encoder(&mut encoder, &mut self.samples)?;
        let extradata = extradata_of(&encoder);
        let avcc = avcc_from_annex_b(&extradata)?;
        match self.samples.first() {
            Some(s) if s.keyframe => {}
            _ => {
                return Err(AvError::Mismatch(
                    "first encoded picture is not a keyframe".into(),
                ))
            }
        }
        Ok(VideoOutput {
            avcc,
            samples: self.samples,
        })
    }
}

fn open_x264(
    enc: &VideoEncode,
    timescale: u32,
    first: &ff::frame::Video,
) -> Result<ff::encoder::video::Encoder, AvError> {
    let codec = ff::encoder::find_by_name("libx264").ok_or(AvError::MissingCodec {
        kind: "encoder",
        name: "libx264".into(),
    })?;
    let mut ctx = ff::codec::Context::new_with_codec(codec)
        .encoder()
        .video()
        .map_err(AvError::ff("creating the video encoder"))?;
    ctx.set_width(enc.width);
    ctx.set_height(enc.height);
    ctx.set_format(ff::format::Pixel::YUV420P);
    ctx.set_time_base(ff::Rational::new(1, timescale as i32));
    if let Some((num, den)) = enc.frame_rate {
        let (num, den) = (i32::try_from(num), i32::try_from(den));
        if let (Ok(num), Ok(den)) = (num, den) {
            if num > 0 && den > 0 {
                ctx.set_frame_rate(Some(ff::Rational::new(num, den)));
            }
        }
    }
    ctx.set_aspect_ratio(ff::Rational::new(1, 1));
    ctx.set_flags(ff::codec::Flags::GLOBAL_HEADER | ff::codec::Flags::CLOSED_GOP);
    // Colour description from the source (the same for every segment of one source).
    ctx.set_colorspace(first.color_space());
    ctx.set_color_primaries(first.color_primaries());
    ctx.set_color_transfer_characteristic(first.color_transfer_characteristic());
    ctx.set_color_range(ff::color::Range::MPEG);
    ctx.set_threading(ff::codec::threading::Config {
        kind: ff::codec::threading::Type::Frame,
        count: enc.threads as usize,
        ..Default::default()
    });
    let level = level_for(enc.width, enc.height, enc.maxrate_kbps);
    let mut opts = ff::Dictionary::new();
    opts.set("preset", &enc.preset);
    opts.set("profile", "high");
    opts.set("crf", &enc.crf.to_string());
    if enc.maxrate_kbps > 0 && enc.bufsize_kbps > 0 {
        opts.set("maxrate", &(u64::from(enc.maxrate_kbps) * 1000).to_string());
        opts.set("bufsize", &(u64::from(enc.bufsize_kbps) * 1000).to_string());
    }
    // One IDR (the first picture), no scene-cut keyframes, closed GOP, level from the size.
    // mbtree off: with B-frames, libx264 (core 164) + mbtree gives different bytes for the
    // same input depending on the state of the heap (it reads memory it did not initialise),
    // so two encodes in one process differ; without mbtree they are identical (tested).
    // A source with a constant rate: x264 takes that rate, not the timestamps' clock, for its
    // rate control and the SPS timing (force-cfr); timestamps still pass through unchanged.
    let cfr = if enc.frame_rate.is_some() {
        ":force-cfr=1"
    } else {
        ""
    };
    opts.set(
        "x264-params",
        &format!("keyint=infinite:scenecut=0:open-gop=0:mbtree=0:level={level}{cfr}"),
    );
    ctx.open_as_with(codec, opts)
        .map_err(AvError::ff("opening libx264"))
}

fn drain_encoder(
    encoder: &mut ff::encoder::video::Encoder,
    out: &mut Vec<EncodedSample>,
) -> Result<(), AvError> {
    loop {
        let mut pkt = ff::Packet::empty();
        match encoder.receive_packet(&mut pkt) {
            Ok(()) => {
                let pts = pkt
                    .pts()
                    .ok_or_else(|| AvError::Mismatch("encoded picture without pts".into()))?;
                let dts = pkt.dts().unwrap_or(pts);
                out.push(EncodedSample {
                    data: annex_b_to_length_prefixed(pkt.data().unwrap_or(&[]))?,
                    pts,
                    dts,
                    keyframe: pkt.is_key(),
                });
            }
            Err(e) if is_again(&e) || e == ff::Error::Eof => return Ok(()),
            Err(e) => return Err(AvError::ff("encoding video")(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_keeps_display_aspect() {
        assert_eq!(fit(1920, 1080, (1, 1), 854, 480), (854, 480));
        assert_eq!(fit(1920, 800, (1, 1), 1280, 720), (1280, 534));
        assert_eq!(fit(720, 576, (16, 11), 1024, 576), (1024, 564));
        assert_eq!(fit(640, 480, (1, 1), 1280, 720), (960, 720));
        assert_eq!(fit(1, 1000, (1, 1), 640, 360), (2, 360));
    }

    #[test]
    fn levels_from_size() {
        assert_eq!(level_for(320, 240, 0), 21);
        assert_eq!(level_for(1280, 720, 4000), 32);
        assert_eq!(level_for(1920, 1080, 8000), 42);
        assert_eq!(level_for(3840, 2160, 20000), 52);
        assert_eq!(level_for(3840, 2160, 20000 * 2), 52);
        assert_eq!(level_for(2560, 1440, 20000), 51);
    }
}
