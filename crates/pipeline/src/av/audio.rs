//! Audio transcode to AAC-LC on the absolute 1024-sample frame grid.
//!
//! Output sample `n` (at the output rate) is the source signal at `n / rate` seconds of the
//! source timeline (packet pts / timescale). A call makes AAC frames `[first_frame,
//! first_frame + frames)` of that grid, and frame `j` decodes — in a continuous decode of the
//! frames of consecutive, independently made calls — to output samples `[j * 1024, (j + 1) *
//! 1024)`. How:
//!
//! 1. Decode every packet; each decoded frame is downmixed (swresample, no rate change, so no
//!    delay) to planar float at the decoded rate.
//! 2. Place the frames on the absolute input-sample grid. Consecutive frames form a run whose
//!    start is the one integer sample position consistent with *every* frame's pts (each pts
//!    is the true position rounded to the container's tick); estimating it from the whole run,
//!    not from its first packet, makes independently made segments agree to the sample even
//!    with millisecond (Matroska) timestamps. A frame whose pts cannot fit starts a new run:
//!    gaps become silence, overlaps are overwritten.
//! 3. Resample (swresample) from an input position that falls exactly on an output sample
//!    (a multiple of `in_rate / gcd`), so the output grid is the absolute grid, not shifted by
//!    a fraction; swresample's output sample `k` is the input time of sample `k` (its filter
//!    delay is accounted inside; checked by a test against an analytic sine).
//! 4. Encode `[first_frame - PREROLL_FRAMES, first_frame + frames + POSTROLL_FRAMES)` with
//!    FFmpeg's `aac` (it primes 1024 samples: packet pts = input pts − 1024, and packet `P`
//!    decodes, overlapped with packet `P − 1024`, to samples `[P, P + 1024)`), then keep the
//!    packets whose pts lies in `[first_frame, first_frame + frames) * 1024`.

use ff::ChannelLayout;
use ffmpeg_next as ff;
use probe::codecs::aac;
use probe::time::gcd;

use super::codec::{
    check_input, extradata_of, is_again, is_data_error, open_decoder, to_ff_packet,
};
use super::limits::{
    MAX_AUDIO_FRAMES, MAX_AUDIO_FRAME_INDEX, MAX_AUDIO_POSITION, MAX_AUDIO_SAMPLES,
};
use super::{AvError, Packet, StreamParams};

/// AAC frames encoded (and thrown away) before the first wanted frame: they cover the source
/// decoder's warm-up (its first frame lacks overlap), the resampler's start and the AAC
/// encoder's priming frame and MDCT overlap, so the first kept frame is what a continuous
/// encode would make. The caller passes input from `PREROLL_FRAMES * 1024` output samples
/// before the first wanted sample.
pub const PREROLL_FRAMES: u32 = 4;
/// AAC frames encoded after the last wanted frame: the encoder's MDCT block and window
/// look-ahead (1024 + 512 samples) and the resampler's filter tail. The caller passes input
/// through `POSTROLL_FRAMES * 1024` output samples after the last wanted sample.
pub const POSTROLL_FRAMES: u32 = 3;

/// Samples per AAC-LC frame.
const AAC_FRAME: i64 = 1024;
/// Extra input samples resampled on each side (the filter's reach is far below this).
const RESAMPLE_MARGIN: i64 = 256;

/// How to encode an audio rendition (the same for every segment of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioEncode {
    /// Output sample rate in Hz (48000).
    pub sample_rate: u32,
    /// Output channels: 1, 2 (stereo, downmixed from anything wider) or 6 (5.1).
    pub channels: u16,
    /// Bit rate in bit/s (128000).
    pub bitrate: u32,
}

/// The AAC frames of one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioOutput {
    /// The AudioSpecificConfig (the same for every segment of a rendition).
    pub asc: Vec<u8>,
    /// Exactly the requested number of raw AAC-LC frames (no ADTS headers), frame `j` covering
    /// output samples `[(first_frame + j) * 1024, (first_frame + j + 1) * 1024)`.
    pub frames: Vec<Vec<u8>>,
}

/// Transcodes AAC frames `[first_frame, first_frame + frames)` of the absolute output grid.
/// `packets` (decode order) must cover `PREROLL_FRAMES * 1024` output samples before the first
/// and `POSTROLL_FRAMES * 1024` after the last; where the source has nothing (before it starts,
/// in gaps) the output is silence.
pub fn transcode_audio(
    input: &StreamParams,
    packets: &[Packet],
    first_frame: i64,
    frames: u32,
    enc: &AudioEncode,
) -> Result<AudioOutput, AvError> {
    check_input(input, packets)?;
    check_encode(enc)?;
    if frames == 0 || frames > MAX_AUDIO_FRAMES {
        return Err(AvError::Limit {
            what: "AAC frames per call",
            value: u64::from(frames),
            max: u64::from(MAX_AUDIO_FRAMES),
        });
    }
    if first_frame.unsigned_abs() > MAX_AUDIO_FRAME_INDEX {
        return Err(AvError::InvalidParams(format!("first_frame {first_frame}")));
    }
    // 5.1 as FFmpeg's AAC encoder takes it (surrounds at the back: channel configuration 6).
    let layout = match enc.channels {
        1 => ChannelLayout::MONO,
        6 => ChannelLayout::_5POINT1_BACK,
        _ => ChannelLayout::STEREO,
    };
    let runs = decode(input, packets, layout)?;
    let out_start = (first_frame - i64::from(PREROLL_FRAMES)) * AAC_FRAME;
    let out_end = (first_frame + i64::from(frames) + i64::from(POSTROLL_FRAMES)) * AAC_FRAME;
    let pcm = render(&runs, out_start, out_end, enc.sample_rate, layout)?;
    encode(&pcm, out_start, first_frame, frames, enc, layout)
}

fn check_encode(enc: &AudioEncode) -> Result<(), AvError> {
    // A rate AAC signals with a sampling-frequency index (ISO/IEC 14496-3 Table 1.18).
    if aac::rate_index(enc.sample_rate).is_none() {
        return Err(AvError::InvalidParams(format!(
            "AAC sample rate {}",
            enc.sample_rate
        )));
    }
    if !matches!(enc.channels, 1 | 2 | 6) {
        return Err(AvError::InvalidParams(format!(
            "AAC channels {} (1, 2 or 6)",
            enc.channels
        )));
    }
    if !(8_000..=512_000).contains(&enc.bitrate) {
        return Err(AvError::InvalidParams(format!(
            "AAC bit rate {}",
            enc.bitrate
        )));
    }
    Ok(())
}

/// Decoded audio placed on the input-sample grid: `planes[c][i]` is input sample `start + i`.
struct Run {
    rate: u32,
    start: i64,
    planes: Vec<Vec<f32>>,
}

/// A run being built: the interval of start positions (in units of `1/timescale` samples)
/// consistent with every frame's pts so far.
struct Building {
    rate: u32,
    lo: i128,
    hi: i128,
    planes: Vec<Vec<f32>>,
}

impl Building {
    fn len(&self) -> i64 {
        self.planes.first().map_or(0, |p| p.len() as i64)
    }

    /// The run, placed at the integer start nearest the middle of the consistent interval;
    /// `None` when that is beyond [`MAX_AUDIO_POSITION`] (absurd timestamps).
    fn finish(self, timescale: i128) -> Option<Run> {
        let mid2 = self.lo + self.hi; // 2 × middle, in 1/timescale samples
        let start = (mid2 + timescale).div_euclid(2 * timescale);
        let start = i64::try_from(start)
            .ok()
            .filter(|s| s.abs() <= MAX_AUDIO_POSITION)?;
        Some(Run {
            rate: self.rate,
            start,
            planes: self.planes,
        })
    }
}

/// Decodes every packet and places the frames on the input-sample grid (see the module docs).
fn decode(
    input: &StreamParams,
    packets: &[Packet],
    layout: ChannelLayout,
) -> Result<Vec<Run>, AvError> {
    let mut decoder = open_decoder(input, 1)?
        .audio()
        .map_err(AvError::ff("opening the audio decoder"))?;
    let timescale = i128::from(input.timescale);
    let mut placer = Placer {
        timescale,
        layout,
        mixer: None,
        current: None,
        runs: Vec::new(),
        total: 0,
    };
    for p in packets {
        match decoder.send_packet(&to_ff_packet(p)) {
            Ok(()) => {}
            Err(e) if is_data_error(&e) => continue,
            Err(e) => return Err(AvError::ff("decoding audio")(e)),
        }
        drain_decoder(&mut decoder, &mut placer)?;
    }
    decoder
        .send_eof()
        .map_err(AvError::ff("flushing the audio decoder"))?;
    drain_decoder(&mut decoder, &mut placer)?;
    if let Some(run) = placer.current.take().and_then(|b| b.finish(timescale)) {
        placer.runs.push(run);
    }
    Ok(placer.runs)
}

fn drain_decoder(decoder: &mut ff::decoder::Audio, placer: &mut Placer) -> Result<(), AvError> {
    loop {
        let mut frame = ff::frame::Audio::empty();
        match decoder.receive_frame(&mut frame) {
            Ok(()) => placer.push(&frame)?,
            Err(e) if is_again(&e) || e == ff::Error::Eof => return Ok(()),
            Err(e) if is_data_error(&e) => return Ok(()),
            Err(e) => return Err(AvError::ff("decoding audio")(e)),
        }
    }
}

/// The downmixer for one input format.
struct Mixer {
    key: (ff::format::Sample, u64, u32),
    swr: ff::software::resampling::Context,
}

struct Placer {
    timescale: i128,
    layout: ChannelLayout,
    mixer: Option<Mixer>,
    current: Option<Building>,
    runs: Vec<Run>,
    total: u64,
}

impl Placer {
    fn push(&mut self, frame: &ff::frame::Audio) -> Result<(), AvError> {
        let rate = frame.rate();
        let n = frame.samples();
        if rate == 0 || n == 0 {
            return Ok(());
        }
        self.total += n as u64;
        if self.total > MAX_AUDIO_SAMPLES {
            return Err(AvError::Limit {
                what: "decoded audio samples",
                value: self.total,
                max: MAX_AUDIO_SAMPLES,
            });
        }
        let planes = self.downmix(frame)?;
        let pts = frame.timestamp().or(frame.pts());
        let ts = self.timescale;
        let r = i128::from(rate);
        // Half a sample, or one tick, whichever is more: how far a pts may be from the truth.
        let tol = r.max((ts + 1) / 2);
        if let Some(cur) = self.current.as_mut() {
            if cur.rate == rate {
                let fits = match pts {
                    // Start position (× timescale) this frame implies, given the run so far.
                    Some(p) => {
                        let implied = i128::from(p) * r - i128::from(cur.len()) * ts;
                        let (lo, hi) = (cur.lo.max(implied - tol), cur.hi.min(implied + tol));
                        if lo <= hi {
                            cur.lo = lo;
                            cur.hi = hi;
                            true
                        } else {
                            false
                        }
                    }
                    None => true,
                };
                if fits {
                    for (dst, src) in cur.planes.iter_mut().zip(planes) {
                        dst.extend_from_slice(&src);
                    }
                    return Ok(());
                }
            }
        }
        // A new run (first frame, a gap or overlap, or a rate change).
        let Some(p) = pts else {
            return Ok(()); // nothing to anchor it to
        };
        if let Some(run) = self.current.take().and_then(|b| b.finish(ts)) {
            self.runs.push(run);
        }
        let implied = i128::from(p) * r;
        self.current = Some(Building {
            rate,
            lo: implied - tol,
            hi: implied + tol,
            planes,
        });
        Ok(())
    }

    /// The frame as planar float in the output layout, at its own rate.
    fn downmix(&mut self, frame: &ff::frame::Audio) -> Result<Vec<Vec<f32>>, AvError> {
        let stage = "downmixing audio";
        let mut in_layout = frame.channel_layout();
        if in_layout.is_empty() || in_layout.channels() != i32::from(frame.channels()) {
            in_layout = ChannelLayout::default(i32::from(frame.channels()));
        }
        let key = (frame.format(), in_layout.bits(), frame.rate());
        if self.mixer.as_ref().map(|m| m.key) != Some(key) {
            let swr = ff::software::resampling::Context::get(
                frame.format(),
                in_layout,
                frame.rate(),
                ff::format::Sample::F32(ff::format::sample::Type::Planar),
                self.layout,
                frame.rate(),
            )
            .map_err(AvError::ff(stage))?;
            self.mixer = Some(Mixer { key, swr });
        }
        let Some(mixer) = self.mixer.as_mut() else {
            return Err(AvError::Mismatch("downmixer missing".into()));
        };
        // The decoder may leave the layout unset: give swresample the one it was built for.
        let mut input = frame.clone();
        input.set_channel_layout(in_layout);
        let mut out = planar_frame(frame.samples() + 64, self.layout, frame.rate())?;
        mixer
            .swr
            .run(&input, &mut out)
            .map_err(AvError::ff(stage))?;
        read_planes(&out, self.layout)
    }
}

/// A planar float frame with room for `samples`, checked to be allocated.
fn planar_frame(
    samples: usize,
    layout: ChannelLayout,
    rate: u32,
) -> Result<ff::frame::Audio, AvError> {
    let mut f = ff::frame::Audio::new(
        ff::format::Sample::F32(ff::format::sample::Type::Planar),
        samples,
        layout,
    );
    f.set_rate(rate);
    if f.planes() < layout.channels() as usize {
        return Err(AvError::Ffmpeg {
            stage: "allocating an audio frame",
            source: ff::Error::Other {
                errno: ff::util::error::ENOMEM,
            },
        });
    }
    Ok(f)
}

fn read_planes(frame: &ff::frame::Audio, layout: ChannelLayout) -> Result<Vec<Vec<f32>>, AvError> {
    let channels = layout.channels() as usize;
    if frame.samples() > 0 && frame.planes() < channels {
        return Err(AvError::Mismatch("resampler output lacks planes".into()));
    }
    Ok((0..channels)
        .map(|c| {
            if frame.samples() == 0 {
                Vec::new()
            } else {
                frame.plane::<f32>(c).to_vec()
            }
        })
        .collect())
}

/// Output samples `[out_start, out_end)` at `out_rate`, from the placed runs (silence where
/// there are none). Runs of one input rate are laid into one buffer and resampled together, so
/// a run boundary inside the segment costs no resampler restart.
fn render(
    runs: &[Run],
    out_start: i64,
    out_end: i64,
    out_rate: u32,
    layout: ChannelLayout,
) -> Result<Vec<Vec<f32>>, AvError> {
    let channels = layout.channels() as usize;
    let len = (out_end - out_start) as usize;
    let mut out = vec![vec![0f32; len]; channels];
    let mut rates: Vec<u32> = Vec::new();
    for run in runs {
        if !rates.contains(&run.rate) {
            rates.push(run.rate);
        }
    }
    let ro = i64::from(out_rate);
    for rate in rates {
        let ri = i64::from(rate);
        // Start on an input sample that is exactly an output sample.
        let g = i64::try_from(gcd(u64::from(rate), u64::from(out_rate))).unwrap_or(1);
        let step_in = ri / g;
        let step_out = ro / g;
        let lo = ((out_start * ri).div_euclid(ro) - RESAMPLE_MARGIN).div_euclid(step_in) * step_in;
        let hi = (out_end * ri).div_euclid(ro) + 1 + RESAMPLE_MARGIN;
        let n_in = (hi - lo) as u64;
        if n_in > MAX_AUDIO_SAMPLES {
            return Err(AvError::Limit {
                what: "audio samples to resample",
                value: n_in,
                max: MAX_AUDIO_SAMPLES,
            });
        }
        let mut buf = vec![vec![0f32; n_in as usize]; channels];
        // Input span the runs of this rate cover.
        let (mut covered_lo, mut covered_hi) = (i64::MAX, i64::MIN);
        for run in runs.iter().filter(|r| r.rate == rate) {
            let run_len = run.planes.first().map_or(0, Vec::len) as i64;
            let (a, b) = (lo.max(run.start), hi.min(run.start + run_len));
            if a >= b {
                continue;
            }
            covered_lo = covered_lo.min(run.start);
            covered_hi = covered_hi.max(run.start + run_len);
            for (dst, src) in buf.iter_mut().zip(&run.planes) {
                dst[(a - lo) as usize..(b - lo) as usize]
                    .copy_from_slice(&src[(a - run.start) as usize..(b - run.start) as usize]);
            }
        }
        if covered_lo >= covered_hi {
            continue;
        }
        let o0 = lo / step_in * step_out; // output sample of buf[0]
        let resampled = if ri == ro {
            buf
        } else {
            let mut input = planar_frame(n_in as usize, layout, rate)?;
            for (c, src) in buf.iter().enumerate() {
                input.plane_mut::<f32>(c).copy_from_slice(src);
            }
            resample(&input, rate, out_rate, layout)?
        };
        // Write only the output span these runs cover (another rate may own the rest).
        let first = out_start.max((covered_lo * ro).div_euclid(ri));
        let last = out_end
            .min((covered_hi * ro).div_euclid(ri))
            .min(o0 + resampled.first().map_or(0, Vec::len) as i64);
        for (dst, src) in out.iter_mut().zip(&resampled) {
            for n in first.max(o0)..last {
                dst[(n - out_start) as usize] = src[(n - o0) as usize];
            }
        }
    }
    Ok(out)
}

/// Resamples a whole planar buffer; output sample `k` is at the time of input sample
/// `k * in_rate / out_rate` (swresample compensates its filter delay; flushing returns the
/// tail).
fn resample(
    input: &ff::frame::Audio,
    in_rate: u32,
    out_rate: u32,
    layout: ChannelLayout,
) -> Result<Vec<Vec<f32>>, AvError> {
    let stage = "resampling audio";
    let fltp = ff::format::Sample::F32(ff::format::sample::Type::Planar);
    let mut swr =
        ff::software::resampling::Context::get(fltp, layout, in_rate, fltp, layout, out_rate)
            .map_err(AvError::ff(stage))?;
    let expected = (input.samples() as u64 * u64::from(out_rate)).div_ceil(u64::from(in_rate));
    let mut out = planar_frame(expected as usize + 1024, layout, out_rate)?;
    swr.run(input, &mut out).map_err(AvError::ff(stage))?;
    let mut planes = read_planes(&out, layout)?;
    for _ in 0..64 {
        let mut tail = planar_frame(4096, layout, out_rate)?;
        swr.flush(&mut tail).map_err(AvError::ff(stage))?;
        if tail.samples() == 0 {
            break;
        }
        for (dst, src) in planes.iter_mut().zip(read_planes(&tail, layout)?) {
            dst.extend_from_slice(&src);
        }
    }
    Ok(planes)
}

/// Encodes the rendered output (which starts at sample `out_start`) and keeps the wanted frames.
fn encode(
    pcm: &[Vec<f32>],
    out_start: i64,
    first_frame: i64,
    frames: u32,
    enc: &AudioEncode,
    layout: ChannelLayout,
) -> Result<AudioOutput, AvError> {
    let codec = ff::encoder::find_by_name("aac").ok_or(AvError::MissingCodec {
        kind: "encoder",
        name: "aac".into(),
    })?;
    let mut ctx = ff::codec::Context::new_with_codec(codec)
        .encoder()
        .audio()
        .map_err(AvError::ff("creating the AAC encoder"))?;
    ctx.set_rate(enc.sample_rate as i32);
    ctx.set_channel_layout(layout);
    ctx.set_channels(layout.channels());
    ctx.set_format(ff::format::Sample::F32(ff::format::sample::Type::Planar));
    ctx.set_bit_rate(enc.bitrate as usize);
    ctx.set_time_base(ff::Rational::new(1, enc.sample_rate as i32));
    // Global header: the ASC goes to extradata. Bit-exact: no encoder name in the stream.
    ctx.set_flags(ff::codec::Flags::GLOBAL_HEADER | ff::codec::Flags::BITEXACT);
    let mut encoder = ctx
        .open_as(codec)
        .map_err(AvError::ff("opening the AAC encoder"))?;
    if encoder.frame_size() != AAC_FRAME as u32 {
        return Err(AvError::Mismatch(format!(
            "AAC encoder frame size {}",
            encoder.frame_size()
        )));
    }
    let keep_lo = first_frame * AAC_FRAME;
    let keep_hi = (first_frame + i64::from(frames)) * AAC_FRAME;
    let mut kept: Vec<(i64, Vec<u8>)> = Vec::with_capacity(frames as usize);
    let total = pcm.first().map_or(0, Vec::len) / AAC_FRAME as usize;
    let stage = "encoding AAC";
    for m in 0..total {
        let mut frame = planar_frame(AAC_FRAME as usize, layout, enc.sample_rate)?;
        for (c, plane) in pcm.iter().enumerate() {
            let at = m * AAC_FRAME as usize;
            frame
                .plane_mut::<f32>(c)
                .copy_from_slice(&plane[at..at + AAC_FRAME as usize]);
        }
        frame.set_pts(Some(out_start + m as i64 * AAC_FRAME));
        encoder.send_frame(&frame).map_err(AvError::ff(stage))?;
        drain_aac(&mut encoder, keep_lo, keep_hi, &mut kept)?;
    }
    encoder.send_eof().map_err(AvError::ff(stage))?;
    drain_aac(&mut encoder, keep_lo, keep_hi, &mut kept)?;
    let on_grid = kept
        .iter()
        .enumerate()
        .all(|(j, (pts, _))| *pts == keep_lo + j as i64 * AAC_FRAME);
    if kept.len() != frames as usize || !on_grid {
        return Err(AvError::Mismatch(format!(
            "AAC encoder gave {} frames for [{keep_lo}, {keep_hi}), want {frames} on the grid",
            kept.len()
        )));
    }
    Ok(AudioOutput {
        asc: extradata_of(&encoder),
        frames: kept.into_iter().map(|(_, d)| d).collect(),
    })
}

fn drain_aac(
    encoder: &mut ff::encoder::Audio,
    keep_lo: i64,
    keep_hi: i64,
    kept: &mut Vec<(i64, Vec<u8>)>,
) -> Result<(), AvError> {
    loop {
        let mut pkt = ff::Packet::empty();
        match encoder.receive_packet(&mut pkt) {
            Ok(()) => {
                let Some(pts) = pkt.pts() else {
                    return Err(AvError::Mismatch("AAC packet without pts".into()));
                };
                if (keep_lo..keep_hi).contains(&pts) {
                    kept.push((pts, pkt.data().unwrap_or(&[]).to_vec()));
                }
            }
            Err(e) if is_again(&e) || e == ff::Error::Eof => return Ok(()),
            Err(e) => return Err(AvError::ff("encoding AAC")(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resampling a 44.1 kHz sine placed at an input position that is not a multiple of the
    /// rate ratio step gives the 48 kHz sine at the absolute positions: the grid is exact.
    #[test]
    fn resampled_grid_is_absolute() {
        let f = 1000.0f64;
        let ri = 44_100u32;
        let start = 12_345i64; // input sample index of the run
        let n = 20_000usize;
        let s: Vec<f32> = (0..n)
            .map(|i| {
                (2.0 * std::f64::consts::PI * f * (start + i as i64) as f64 / f64::from(ri)).sin()
                    as f32
            })
            .collect();
        let run = Run {
            rate: ri,
            start,
            planes: vec![s.clone(), s],
        };
        let (o_lo, o_hi) = (14_000i64, 30_000i64);
        let out = render(&[run], o_lo, o_hi, 48_000, ChannelLayout::STEREO).unwrap();
        let mut max_err = 0f64;
        for (k, v) in out[0].iter().enumerate().skip(200).take(15_000) {
            let t = (o_lo + k as i64) as f64 / 48_000.0;
            let want = (2.0 * std::f64::consts::PI * f * t).sin();
            max_err = max_err.max((f64::from(*v) - want).abs());
        }
        // A one-sample shift would be an error of up to 2π·1000/48000 ≈ 0.13.
        assert!(max_err < 0.01, "max error {max_err}");
    }

    #[test]
    fn run_start_from_millisecond_pts() {
        // 44.1 kHz frames of 1024 samples from sample 0, pts rounded to the nearest ms (as
        // Matroska stores them). Windows of ~6.5 s starting anywhere must all find the exact
        // sample position of their first frame.
        let ts = 1000i128;
        let r = 44_100i128;
        let tol = r.max((ts + 1) / 2);
        let pts = |k: i128| (k * 1024 * 1000 + 22_050) / 44_100;
        for first in (0..3000i128).step_by(7) {
            let (mut lo, mut hi) = (i128::MIN, i128::MAX);
            for (j, k) in (first..first + 280).enumerate() {
                let implied = pts(k) * r - j as i128 * 1024 * ts;
                lo = lo.max(implied - tol);
                hi = hi.min(implied + tol);
            }
            let run = Building {
                rate: 44_100,
                lo,
                hi,
                planes: Vec::new(),
            };
            assert_eq!(
                run.finish(ts).unwrap().start,
                (first * 1024) as i64,
                "window at frame {first}"
            );
        }
    }
}
