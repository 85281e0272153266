//! [`Media`]: one source, planned, with its renditions — and every output it can make.
//!
//! The flow of every job is the same three steps, which is what makes each output a pure
//! function of (source bytes, plan, rendition, n):
//!
//! 1. [`Media::needs`] says which byte ranges of the source the output needs (normally one);
//! 2. the caller fetches them (from a file or an upstream, through its cache);
//! 3. [`Media::make`] demuxes those bytes, times the samples ([`crate::timing`]), transcodes
//!    where the rendition says so ([`crate::av`]) and writes fMP4 ([`fmp4`]) or WebVTT.
//!
//! `make` is blocking (FFmpeg runs in it for transcodes): call it on a blocking pool.

use std::collections::BTreeMap;

use bytes::Bytes;
use demux::Frame;
use plan::trickplay::Trickplay;
use plan::{
    audio_plan, rescale, AudioGrid, AudioOutput, AudioPlan, Plan, PlanOptions, Rendition,
    RenditionKind, RenditionOptions, VideoMode, VideoOutput,
};
use probe::codecs::aac;
use probe::{ByteRange, Codec, MediaIndex, Track};

use crate::av;
use crate::timing::{aac_run, audio_run, video_run, window, Timed, TrackRun};
use crate::vtt;
use crate::Cancel;
use crate::PipelineError;

/// Settings that shape the outputs (all of them are part of the cache key via
/// [`Media::params_key`]).
#[derive(Debug, Clone, PartialEq)]
pub struct MediaOptions {
    /// Segment target duration, seconds.
    pub target_secs: f64,
    /// The target of the first two segments ([`plan::LEAD_SEGMENTS`]) when the video a player
    /// starts with — the first listed — is encoded: its first segment is what the first frame
    /// waits for (2 s by default; 0: the target throughout). Sources whose first video is
    /// copied keep the target.
    pub lead_secs: f64,
    /// Which renditions to offer.
    pub renditions: RenditionOptions,
    /// x264 preset of transcoded video.
    pub x264_preset: String,
    /// Encoder threads (fixed, so output bytes do not depend on the machine).
    pub encoder_threads: u32,
}

impl Default for MediaOptions {
    fn default() -> Self {
        MediaOptions {
            target_secs: 6.0,
            lead_secs: 2.0,
            renditions: RenditionOptions::default(),
            x264_preset: "veryfast".into(),
            encoder_threads: 2,
        }
    }
}

/// Something [`Media`] can make.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Output {
    /// `init.mp4` of a video or audio rendition.
    Init(String),
    /// `{n}.m4s` of a video or audio rendition.
    Segment(String, u32),
    /// `{n}.vtt` of a subtitle rendition.
    Subtitle(String, u32),
    /// A JPEG of the frame at `ms`, `width` pixels wide.
    Thumbnail {
        /// Presentation time, milliseconds from the start.
        ms: u64,
        /// Width in pixels.
        width: u32,
    },
    /// The init of the continuous stream (video + default audio in one file).
    StreamInit,
    /// Fragment `n` of the continuous stream (video segment `n` + audio segment `n`).
    StreamFragment(u32),
    /// Trick-play sheet `n` ([`plan::trickplay`]): a JPEG of keyframe tiles.
    Sheet(u32),
}

impl Output {
    /// A stable text naming this output, for cache keys (explicit; never `Debug` output).
    pub fn key_text(&self) -> String {
        match self {
            Output::Init(r) => format!("init:{r}"),
            Output::Segment(r, n) => format!("segment:{r}:{n}"),
            Output::Subtitle(r, n) => format!("vtt:{r}:{n}"),
            Output::Thumbnail { ms, width } => format!("thumb:{ms}:{width}"),
            Output::StreamInit => "stream-init".into(),
            Output::StreamFragment(n) => format!("stream-fragment:{n}"),
            Output::Sheet(n) => format!("sheet:{n}"),
        }
    }

    /// Short kind for metrics and cache keys.
    pub fn kind(&self) -> &'static str {
        match self {
            Output::Init(_) | Output::StreamInit => "init",
            Output::Segment(..) | Output::StreamFragment(_) => "segment",
            Output::Subtitle(..) => "vtt",
            Output::Thumbnail { .. } => "thumb",
            Output::Sheet(_) => "sheet",
        }
    }
}

/// Source bytes fetched for a job: `(file offset, bytes)` pieces.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    /// The pieces, one per range of [`Media::needs`].
    pub pieces: Vec<(u64, Bytes)>,
}

/// A source ready to make outputs.
pub struct Media {
    index: MediaIndex,
    plan: Plan,
    renditions: Vec<Rendition>,
    audio_plans: BTreeMap<String, AudioPlan>,
    demuxer: SourceDemuxer,
    /// The index's spans, sorted once: byte ranges of any time window in O(log n).
    spans: plan::SpanIndex,
    opts: MediaOptions,
    /// Subtitle files next to the source, by rendition id ([`Media::with_sidecars`]).
    sidecars: Vec<(String, crate::Sidecar)>,
    /// Trick-play tiles, for a source with video.
    trickplay: Option<Trickplay>,
}

impl std::fmt::Debug for Media {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Media")
            .field("container", &self.index.container)
            .field("segments", &self.plan.segments.len())
            .field("renditions", &self.renditions.len())
            .finish()
    }
}

/// The trick-play image playlist's URI, relative to the master.
pub const TRICKPLAY_PLAYLIST: &str = "trickplay/index.m3u8";

/// The output track id of single-track renditions (and of video in the stream).
const TRACK: u32 = 1;
/// The audio track id in the continuous stream.
const STREAM_AUDIO: u32 = 2;

impl Media {
    /// Plans `index`. `tables` are the demuxer's tables beside the index: the bytes of
    /// `index.moov` for MP4 sources (sample tables), the serialised [`av::lavf::Tables`] of a
    /// universal source; `None` for the others.
    pub fn new(
        index: MediaIndex,
        tables: Option<&[u8]>,
        opts: MediaOptions,
    ) -> Result<Media, PipelineError> {
        let renditions = plan::renditions(&index, &opts.renditions);
        // One plan per source: keyframe boundaries when any rendition copies the video (the
        // transcoded rungs force keyframes at the same boundaries, so players switch cleanly),
        // else whatever the transcode rules give.
        let passthrough = renditions
            .iter()
            .any(|r| matches!(r.video, Some(VideoOutput::Passthrough)));
        let has_video = renditions.iter().any(|r| r.kind == RenditionKind::Video);
        let mode = if passthrough || !has_video {
            VideoMode::Passthrough
        } else {
            VideoMode::Transcode
        };
        // The first listed video is the one players start with: when it is encoded, shorter
        // leading segments let its first frame come sooner.
        let starts_encoded = renditions
            .iter()
            .find(|r| r.kind == RenditionKind::Video)
            .is_some_and(|r| matches!(r.video, Some(VideoOutput::H264 { .. })));
        let plan = plan::plan(
            &index,
            &PlanOptions {
                target_secs: opts.target_secs,
                mode,
                range_slack_secs: 0.0,
                lead_secs: if starts_encoded { opts.lead_secs } else { 0.0 },
            },
        )?;
        let mut audio_plans = BTreeMap::new();
        for r in renditions.iter().filter(|r| r.kind == RenditionKind::Audio) {
            let track = track(&index, r.track_id)?;
            let grid = match r.audio {
                Some(AudioOutput::Aac { sample_rate, .. }) => AudioGrid {
                    frame: 1024,
                    rate: sample_rate,
                    origin: 0,
                    preroll_frames: av::PREROLL_FRAMES,
                    postroll_frames: av::POSTROLL_FRAMES,
                },
                _ => AudioGrid::passthrough(
                    track.audio.as_ref().map_or(0, |a| a.sample_rate),
                    plan::copied_audio(track).map_or(0, |c| c.frame),
                    track.start.unwrap_or(0),
                    track.timescale,
                ),
            };
            if grid.rate == 0 || grid.frame == 0 {
                return Err(PipelineError::Unsupported(format!(
                    "audio track {} has no sample rate",
                    track.id
                )));
            }
            audio_plans.insert(r.id.clone(), audio_plan(&index, &plan, &grid));
        }
        let demuxer = SourceDemuxer::new(&index, tables)?;
        let spans = plan::SpanIndex::new(&index);
        let display = renditions
            .iter()
            .find(|r| r.kind == RenditionKind::Video && r.width > 0 && r.height > 0)
            .map(|r| (r.width, r.height));
        let trickplay = index
            .main()
            .filter(|t| t.kind == probe::TrackKind::Video)
            .and(display)
            .and_then(|d| Trickplay::new(plan.total_secs(), d, median_keyframe_ms(&index)));
        Ok(Media {
            index,
            plan,
            renditions,
            audio_plans,
            demuxer,
            spans,
            opts,
            sidecars: Vec::new(),
            trickplay,
        })
    }

    /// Adds a WebVTT subtitle rendition (`x1`, `x2`, …) for each subtitle file found next to
    /// the source: language and `FORCED` from the file's name, cues made from memory (no source
    /// bytes are read for them).
    pub fn with_sidecars(mut self, sidecars: Vec<crate::Sidecar>) -> Media {
        for (i, sc) in sidecars.into_iter().enumerate() {
            let id = format!("x{}", i + 1);
            let language = sc
                .language
                .as_deref()
                .and_then(plan::renditions::language_tag);
            let base = language
                .as_deref()
                .map(plan::renditions::language_name)
                .unwrap_or_else(|| sc.file_name.clone());
            let taken = |n: &str| self.renditions.iter().any(|r| r.name == n);
            let mut name = if sc.forced {
                format!("{base} (forced)")
            } else {
                base
            };
            if taken(&name) {
                name = format!("{name} ({})", sc.file_name);
            }
            self.renditions.push(Rendition {
                id: id.clone(),
                kind: RenditionKind::Subtitle,
                track_id: u64::MAX - i as u64,
                video: None,
                audio: None,
                codecs: "wvtt".to_string(),
                language,
                name,
                default: false,
                forced: sc.forced,
                width: 0,
                height: 0,
                frame_rate: None,
                channels: 0,
            });
            self.sidecars.push((id, sc));
        }
        self
    }

    fn sidecar(&self, id: &str) -> Option<&crate::Sidecar> {
        self.sidecars.iter().find(|(r, _)| r == id).map(|(_, s)| s)
    }

    /// Heap bytes this source holds: its index, plan, audio plans and demuxer tables. What a
    /// memo of sources weighs each entry by.
    pub fn heap_bytes(&self) -> usize {
        let plan = |segments: usize, ranges: usize| {
            segments * std::mem::size_of::<plan::Segment>()
                + ranges * std::mem::size_of::<probe::ByteRange>()
        };
        let ranges: usize = self.plan.segments.iter().map(|s| s.ranges.capacity()).sum();
        let audio: usize = self
            .audio_plans
            .values()
            .map(|a| a.segments.capacity() * std::mem::size_of::<plan::AudioSegment>())
            .sum();
        std::mem::size_of::<Self>()
            + self.index.heap_bytes()
            + plan(self.plan.segments.capacity(), ranges)
            + audio
            + self.demuxer.heap_bytes()
            + self.spans.heap_bytes()
            + self
                .sidecars
                .iter()
                .map(|(id, s)| id.len() + s.heap_bytes())
                .sum::<usize>()
    }

    /// The index.
    pub fn index(&self) -> &MediaIndex {
        &self.index
    }

    /// The (video) plan.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// All renditions, in master-playlist order.
    pub fn renditions(&self) -> &[Rendition] {
        &self.renditions
    }

    /// A rendition by id.
    pub fn rendition(&self, id: &str) -> Result<&Rendition, PipelineError> {
        self.renditions
            .iter()
            .find(|r| r.id == id)
            .ok_or_else(|| PipelineError::NoSuchRendition(id.to_string()))
    }

    /// The audio segments of an audio rendition.
    pub fn audio_plan(&self, id: &str) -> Option<&AudioPlan> {
        self.audio_plans.get(id)
    }

    /// What, besides source identity and the output versions, changes the bytes of outputs:
    /// put it into cache keys.
    pub fn params_key(&self) -> String {
        // An explicit encoding (never `Debug` output, which changes when a field is renamed):
        // every option that shapes the bytes, named and in a fixed order.
        let r = &self.opts.renditions;
        let mut key = format!(
            "target={};lead={};preset={};threads={};h264_for_hevc={};max_height={};crf={};ladder={}",
            self.opts.target_secs,
            self.opts.lead_secs,
            self.opts.x264_preset,
            self.opts.encoder_threads,
            u8::from(r.h264_for_hevc),
            r.max_height,
            r.crf,
            u8::from(r.ladder)
        );
        // Subtitle files next to the source: which, and their bytes.
        for (id, sc) in &self.sidecars {
            key.push_str(&format!(";{id}={}", sc.digest));
        }
        key
    }

    /// The multivariant playlist of the renditions `caps` lists; `uri` gives each rendition's
    /// media playlist URI.
    /// With video, the trick-play image playlist (`trickplay/index.m3u8`) is listed last.
    pub fn master_playlist(&self, caps: &plan::Caps, uri: impl Fn(&Rendition) -> String) -> String {
        let listed = caps.choose(&self.renditions);
        let mut text = plan::master_playlist(&self.index, &listed, &self.plan, uri);
        if let Some(tp) = &self.trickplay {
            let (w, h) = tp.sheet_size();
            // A sheet of JPEG tiles at quality 3 holds about 0.3 bytes per pixel.
            let sheet_bytes = u64::from(w) * u64::from(h) * 3 / 10;
            plan::trickplay::image_stream_inf(&mut text, tp, sheet_bytes, TRICKPLAY_PLAYLIST);
        }
        text
    }

    /// The trick-play tiles, for a source with video.
    pub fn trickplay(&self) -> Option<&Trickplay> {
        self.trickplay.as_ref()
    }

    /// The trick-play image playlist (sheets named `{n}.jpg` beside it).
    pub fn image_playlist(&self) -> Option<String> {
        let tp = self.trickplay.as_ref()?;
        Some(plan::trickplay::image_playlist(tp, |n| format!("{n}.jpg")))
    }

    /// The WebVTT thumbnails track (served beside the master: sheets at `trickplay/{n}.jpg`).
    pub fn thumbnails_vtt(&self) -> Option<String> {
        let tp = self.trickplay.as_ref()?;
        Some(plan::trickplay::vtt(tp, |n| format!("trickplay/{n}.jpg")))
    }

    /// The keyframe (index ticks) tile `i` shows: the last at or before its time.
    fn tile_keyframe(&self, tp: &Trickplay, i: u32) -> i64 {
        self.keyframe_before(self.thumb_time(tp.tile_ms(i)))
    }

    /// The distinct keyframes (index ticks, ascending) sheet `n` shows.
    fn sheet_keyframes(&self, n: u32) -> Result<(Trickplay, Vec<i64>), PipelineError> {
        let tp = self
            .trickplay
            .ok_or(PipelineError::Empty("the source has no video"))?;
        let tiles = tp.sheet_tiles(n);
        if tiles.is_empty() {
            return Err(PipelineError::NoSuchSegment(n));
        }
        let mut kfs: Vec<i64> = tiles.map(|i| self.tile_keyframe(&tp, i)).collect();
        kfs.dedup();
        Ok((tp, kfs))
    }

    /// The DASH manifest over the same init and media segments ([`plan::dash`]): the video,
    /// audio and subtitle renditions `caps` lists, each segment's exact start and duration in
    /// the rendition's timescale (subtitle segments on the video's).
    pub fn dash_manifest(&self, caps: &plan::Caps) -> String {
        let tl = &self.plan.timeline;
        let video: Vec<(i64, i64)> = self
            .plan
            .segments
            .iter()
            .map(|s| {
                let (a, b) = (tl.video(s.start), tl.video(s.end));
                (a, b.saturating_sub(a))
            })
            .collect();
        let listed = caps.choose(&self.renditions);
        // A copied HDR picture keeps its transfer; transcodes are SDR.
        let hdr_transfer = self
            .index()
            .main()
            .and_then(|t| t.video.as_ref())
            .filter(|v| v.hdr().is_some())
            .and_then(|v| v.transfer);
        let reps: Vec<plan::dash::DashRepresentation<'_>> = listed
            .iter()
            .filter_map(|r| {
                let (timescale, segments, sample_rate) = match r.kind {
                    RenditionKind::Video => (tl.timescale, video.clone(), 0),
                    RenditionKind::Audio => {
                        let ap = self.audio_plans.get(&r.id)?;
                        let frame = i64::from(ap.frame);
                        let segs = ap
                            .segments
                            .iter()
                            .map(|s| (s.start, i64::from(s.frames).saturating_mul(frame)))
                            .collect();
                        (ap.rate, segs, ap.rate)
                    }
                    // The subtitle segments are the video's windows.
                    RenditionKind::Subtitle => (tl.timescale, video.clone(), 0),
                };
                Some(plan::dash::DashRepresentation {
                    rendition: r,
                    timescale,
                    segments,
                    bandwidth: plan::bandwidth_estimate(r, &self.plan),
                    sample_rate,
                    transfer: match r.video {
                        Some(plan::VideoOutput::Passthrough) => hdr_transfer,
                        _ => None,
                    },
                })
            })
            .collect();
        plan::dash::manifest(&reps)
    }

    /// The media playlist of a rendition (relative URIs `init.mp4`, `{n}.m4s` / `{n}.vtt`).
    pub fn media_playlist(&self, id: &str) -> Result<String, PipelineError> {
        let r = self.rendition(id)?;
        Ok(match r.kind {
            RenditionKind::Video => self.plan.media_playlist("init.mp4", |n| format!("{n}.m4s")),
            RenditionKind::Audio => self
                .audio_plans
                .get(id)
                .ok_or_else(|| PipelineError::NoSuchRendition(id.to_string()))?
                .media_playlist("init.mp4", |n| format!("{n}.m4s")),
            RenditionKind::Subtitle => self.plan.subtitle_playlist(|n| format!("{n}.vtt")),
        })
    }

    /// Number of segments of every rendition (they pair one to one).
    pub fn segment_count(&self) -> u32 {
        u32::try_from(self.plan.segments.len()).unwrap_or(u32::MAX)
    }

    /// The segment holding `secs` seconds from the start (for the continuous stream).
    pub fn segment_at(&self, secs: f64) -> u32 {
        self.plan.segment_at(secs.max(0.0)).map_or(0, |s| s.index)
    }

    /// The video rendition of the continuous stream (the first, which is the browser-safe
    /// one) and its default audio rendition.
    pub fn stream_renditions(&self) -> (Option<&Rendition>, Option<&Rendition>) {
        let video = self
            .renditions
            .iter()
            .find(|r| r.kind == RenditionKind::Video);
        let audio = self
            .renditions
            .iter()
            .filter(|r| r.kind == RenditionKind::Audio)
            .find(|r| r.default)
            .or_else(|| {
                self.renditions
                    .iter()
                    .find(|r| r.kind == RenditionKind::Audio)
            });
        (video, audio)
    }

    /// The source byte ranges `out` needs.
    pub fn needs(&self, out: &Output) -> Result<Vec<ByteRange>, PipelineError> {
        match out {
            Output::Init(id) => {
                let r = self.rendition(id)?;
                match r.video {
                    // The encoder's avcC: x264 opened (nothing encoded) with the colour
                    // description of the first picture, decoded from the first keyframe.
                    Some(VideoOutput::H264 { .. }) => {
                        let seg = self.video_segment(0)?;
                        let from = self.keyframe_before(seg.start);
                        Ok(self.spans.ranges(from, from.saturating_add(1)))
                    }
                    // dac3/dec3 describe the stream as its first sync frame does.
                    None if r.audio == Some(AudioOutput::Passthrough)
                        && matches!(
                            track(&self.index, r.track_id)?.codec,
                            Codec::Ac3 | Codec::Eac3
                        ) =>
                    {
                        Ok(self.audio_segment(id, 0)?.ranges.clone())
                    }
                    _ => Ok(Vec::new()),
                }
            }
            Output::Segment(id, n) => {
                let r = self.rendition(id)?;
                match r.kind {
                    RenditionKind::Video => {
                        let seg = self.video_segment(*n)?;
                        match r.video {
                            Some(VideoOutput::H264 { .. }) => {
                                // Decode from the keyframe at or before the start.
                                let from = self.keyframe_before(seg.start);
                                Ok(self.spans.ranges(from, seg.end))
                            }
                            _ => Ok(seg.ranges.clone()),
                        }
                    }
                    RenditionKind::Audio => Ok(self.audio_segment(id, *n)?.ranges.clone()),
                    RenditionKind::Subtitle => Err(PipelineError::NoSuchRendition(id.clone())),
                }
            }
            Output::Subtitle(id, _) if self.sidecar(id).is_some() => Ok(Vec::new()),
            Output::Subtitle(id, n) => {
                self.rendition(id)?;
                Ok(self.video_segment(*n)?.ranges.clone())
            }
            Output::Thumbnail { ms, .. } => {
                let at = self.thumb_time(*ms);
                let from = self.keyframe_before(at);
                Ok(self.spans.ranges(from, at + 1))
            }
            Output::Sheet(n) => {
                let (_, kfs) = self.sheet_keyframes(*n)?;
                let mut all = Vec::new();
                for k in kfs {
                    all.extend(self.spans.ranges(k, k + 1));
                }
                Ok(merge(all))
            }
            Output::StreamInit => match self.stream_renditions().0 {
                Some(v) => self.needs(&Output::Init(v.id.clone())),
                None => Ok(Vec::new()),
            },
            Output::StreamFragment(n) => {
                let (v, a) = self.stream_renditions();
                let mut all = Vec::new();
                for r in [v, a].into_iter().flatten() {
                    all.extend(self.needs(&Output::Segment(r.id.clone(), *n))?);
                }
                Ok(merge(all))
            }
        }
    }

    /// Makes `out` from the bytes of [`Media::needs`]. Blocking.
    pub fn make(&self, out: &Output, data: &Fetched) -> Result<Vec<u8>, PipelineError> {
        self.make_cancellable(out, data, &Cancel::default())
    }

    /// [`Media::make`] that stops early (with [`av::AvError::Cancelled`]) once `cancel` is set;
    /// video transcodes check it before each source frame.
    pub fn make_cancellable(
        &self,
        out: &Output,
        data: &Fetched,
        cancel: &Cancel,
    ) -> Result<Vec<u8>, PipelineError> {
        match out {
            Output::Init(id) => {
                let r = self.rendition(id)?;
                let spec = self.track_spec(r, TRACK, data, cancel)?;
                Ok(fmp4::init_segment(&[spec])?)
            }
            Output::Segment(id, n) => {
                let r = self.rendition(id)?;
                let run = self.run(r, *n, data, cancel)?;
                fragment(*n, &[(TRACK, run)])
            }
            Output::Subtitle(id, n) => Ok(self.subtitle(id, *n, data)?.into_bytes()),
            Output::Thumbnail { ms, width } => self.thumbnail(*ms, *width, data),
            Output::Sheet(n) => self.sheet(*n, data),
            Output::StreamInit => {
                let (v, a) = self.stream_renditions();
                let mut specs = Vec::new();
                if let Some(v) = v {
                    specs.push(self.track_spec(v, TRACK, data, cancel)?);
                }
                if let Some(a) = a {
                    let id = if v.is_some() { STREAM_AUDIO } else { TRACK };
                    specs.push(self.track_spec(a, id, data, cancel)?);
                }
                Ok(fmp4::init_segment(&specs)?)
            }
            Output::StreamFragment(n) => {
                let (v, a) = self.stream_renditions();
                let mut runs = Vec::new();
                if let Some(v) = v {
                    runs.push((TRACK, self.run(v, *n, data, cancel)?));
                }
                if let Some(a) = a {
                    let id = if v.is_some() { STREAM_AUDIO } else { TRACK };
                    runs.push((id, self.run(a, *n, data, cancel)?));
                }
                fragment(*n, &runs)
            }
        }
    }

    fn video_segment(&self, n: u32) -> Result<&plan::Segment, PipelineError> {
        self.plan
            .segments
            .get(n as usize)
            .ok_or(PipelineError::NoSuchSegment(n))
    }

    fn audio_segment(&self, id: &str, n: u32) -> Result<&plan::AudioSegment, PipelineError> {
        self.audio_plans
            .get(id)
            .ok_or_else(|| PipelineError::NoSuchRendition(id.to_string()))?
            .segments
            .get(n as usize)
            .ok_or(PipelineError::NoSuchSegment(n))
    }

    /// The last keyframe at or before `t` (index ticks), or the start.
    fn keyframe_before(&self, t: i64) -> i64 {
        self.index
            .keyframes
            .iter()
            .map(|k| k.pts)
            .rfind(|&p| p <= t)
            .unwrap_or(self.index.start)
    }

    /// Presentation time (index ticks) of thumbnail `ms`, clamped into the source.
    fn thumb_time(&self, ms: u64) -> i64 {
        let ticks = rescale(
            i64::try_from(ms).unwrap_or(i64::MAX),
            i64::from(self.index.timescale),
            1000,
        );
        let last = self.index.start + i64::try_from(self.index.duration).unwrap_or(0) - 1;
        let origin = self.plan.timeline.origin;
        (origin + ticks).min(last).max(self.index.start)
    }

    /// Frames of track `id` in the fetched bytes, in storage order.
    fn frames(&self, data: &Fetched, id: u64) -> Result<Vec<Frame>, PipelineError> {
        let mut pieces: Vec<&(u64, Bytes)> = data.pieces.iter().collect();
        pieces.sort_by_key(|(o, _)| *o);
        let mut out = Vec::new();
        for (offset, bytes) in pieces {
            let mut d = self.demuxer.frames(bytes, *offset)?;
            if let Some(f) = d.tracks.remove(&id) {
                out.extend(f);
            }
        }
        Ok(out)
    }

    /// The samples rendition `r` contributes to segment `n`.
    fn run(
        &self,
        r: &Rendition,
        n: u32,
        data: &Fetched,
        cancel: &Cancel,
    ) -> Result<TrackRun, PipelineError> {
        let track = track(&self.index, r.track_id)?;
        let frames = self.frames(data, track.id)?;
        match r.kind {
            RenditionKind::Video => {
                let seg = self.video_segment(n)?;
                let ts = i64::from(track.timescale);
                let its = i64::from(self.index.timescale);
                // Output times (see `plan::Timeline`): from 0, on the video's cadence.
                let tl = &self.plan.timeline;
                let (start, end) = (tl.video(seg.start), tl.video(seg.end));
                let on_timeline = |pts: i64| tl.video_in(pts, track.timescale);
                match &r.video {
                    Some(VideoOutput::H264 { .. }) => {
                        let (src_start, src_end) =
                            (rescale(seg.start, ts, its), rescale(seg.end, ts, its));
                        let out =
                            self.transcode_video(r, track, &frames, src_start, src_end, cancel)?;
                        let offset = presentation_offset(track, tl.timescale, &out.avcc, false, 0);
                        let timed = out
                            .samples
                            .into_iter()
                            .map(|s| Timed {
                                pts: on_timeline(s.pts),
                                keyframe: s.keyframe,
                                data: s.data,
                            })
                            .collect();
                        video_run(timed, start, end, offset)
                    }
                    _ => {
                        let offset = copied_offset(track, tl.timescale);
                        let timed = frames
                            .into_iter()
                            .map(|f| Timed {
                                pts: on_timeline(f.pts),
                                keyframe: f.keyframe,
                                data: f.data,
                            })
                            .collect();
                        video_run(window(timed, start, end), start, end, offset)
                    }
                }
            }
            RenditionKind::Audio => {
                let seg = self.audio_segment(&r.id, n)?;
                let ap = self
                    .audio_plans
                    .get(&r.id)
                    .ok_or_else(|| PipelineError::NoSuchRendition(r.id.clone()))?;
                match &r.audio {
                    Some(AudioOutput::Aac {
                        sample_rate,
                        channels,
                        bitrate,
                    }) => {
                        let packets: Vec<av::Packet<'_>> = frames.iter().map(packet).collect();
                        let out = av::transcode_audio(
                            &stream_params(track),
                            &packets,
                            seg.first_frame,
                            seg.frames,
                            &av::AudioEncode {
                                sample_rate: *sample_rate,
                                channels: *channels,
                                bitrate: *bitrate,
                            },
                        )?;
                        if out.frames.len() != seg.frames as usize {
                            return Err(PipelineError::Timing("encoder gave a wrong frame count"));
                        }
                        aac_run(out.frames, seg.first_frame, ap.origin - ap.timeline_origin)
                    }
                    _ => {
                        let rate = i64::from(ap.rate);
                        let ts = i64::from(track.timescale);
                        let origin = ap.origin;
                        let frame = i64::from(ap.frame.max(1));
                        let slot = move |pts: i64| {
                            let s = rescale(pts, rate, ts) - origin;
                            (s + frame / 2).div_euclid(frame)
                        };
                        audio_run(
                            timed(frames),
                            slot,
                            seg.first_frame,
                            seg.frames,
                            ap.frame,
                            origin - ap.timeline_origin,
                        )
                    }
                }
            }
            RenditionKind::Subtitle => Err(PipelineError::NoSuchRendition(r.id.clone())),
        }
    }

    fn video_encode(&self, r: &Rendition, track: &Track) -> av::VideoEncode {
        let (width, height, crf, maxrate) = match r.video {
            Some(VideoOutput::H264 {
                width,
                height,
                crf,
                maxrate_kbps,
            }) => (width, height, crf, maxrate_kbps),
            _ => (r.width, r.height, 23, 0),
        };
        av::VideoEncode {
            width,
            height,
            preset: self.opts.x264_preset.clone(),
            crf,
            maxrate_kbps: maxrate,
            bufsize_kbps: maxrate.saturating_mul(2),
            threads: self.opts.encoder_threads,
            deinterlace: track
                .video
                .as_ref()
                .and_then(|v| v.interlaced)
                .unwrap_or(false),
            frame_rate: self.plan.timeline.cadence.map(|c| (c.rate.num, c.rate.den)),
        }
    }

    fn transcode_video(
        &self,
        r: &Rendition,
        track: &Track,
        frames: &[Frame],
        start: i64,
        end: i64,
        cancel: &Cancel,
    ) -> Result<av::VideoOutput, PipelineError> {
        // From the keyframe at or before the start, up to the first keyframe at or after the end.
        let first = frames
            .iter()
            .rposition(|f| f.keyframe && f.pts <= start)
            .or_else(|| frames.iter().position(|f| f.keyframe))
            .ok_or(PipelineError::Empty("no keyframe to decode from"))?;
        let packets: Vec<av::Packet<'_>> = frames[first..].iter().map(packet).collect();
        Ok(av::transcode_video_cancellable(
            &stream_params(track),
            &packets,
            start,
            end,
            &self.video_encode(r, track),
            cancel,
        )?)
    }

    fn track_spec(
        &self,
        r: &Rendition,
        id: u32,
        data: &Fetched,
        cancel: &Cancel,
    ) -> Result<fmp4::TrackSpec, PipelineError> {
        let track = track(&self.index, r.track_id)?;
        let language = track
            .language
            .clone()
            .filter(|l| l.len() == 3 && l.bytes().all(|b| b.is_ascii_lowercase()));
        let mut spec = fmp4::TrackSpec {
            id,
            timescale: track.timescale,
            entry: fmp4::SampleEntry::Aac { asc: Vec::new() },
            width: 0,
            height: 0,
            rotation: 0,
            sample_rate: 0,
            channels: 0,
            language,
            avg_bitrate: 0,
            max_bitrate: 0,
            presentation_offset: 0,
        };
        match (&r.video, &r.audio) {
            (Some(VideoOutput::Passthrough), _) => {
                let v = track.video.as_ref();
                spec.width = v.map_or(r.width, |v| v.width);
                spec.height = v.map_or(r.height, |v| v.height);
                spec.rotation = v.map_or(0, |v| v.rotation);
                spec.timescale = self.plan.timeline.timescale;
                spec.presentation_offset = copied_offset(track, self.plan.timeline.timescale);
                spec.entry = match track.codec {
                    Codec::H264 => fmp4::SampleEntry::Avc {
                        config: with_length_size_4(&track.codec_private, 4)?,
                    },
                    Codec::Hevc => fmp4::SampleEntry::Hevc {
                        config: with_length_size_4(&track.codec_private, 21)?,
                    },
                    ref c => {
                        return Err(PipelineError::Unsupported(format!(
                            "{} video cannot be copied",
                            c.name()
                        )))
                    }
                };
            }
            (Some(VideoOutput::H264 { width, height, .. }), _) => {
                spec.width = *width;
                spec.height = *height;
                // The transcode turns the pictures upright: no display matrix.
                spec.rotation = 0;
                // The encoder's avcC: identical for every segment of the rendition, read from
                // x264 opened with the rendition's settings (nothing encoded).
                let frames = self.frames(data, track.id)?;
                let first = frames
                    .iter()
                    .position(|f| f.keyframe)
                    .ok_or(PipelineError::Empty("no keyframe to decode from"))?;
                if cancel.is_cancelled() {
                    return Err(av::AvError::Cancelled.into());
                }
                let packets: Vec<av::Packet<'_>> = frames[first..].iter().map(packet).collect();
                let avcc = av::video_config(
                    &stream_params(track),
                    &packets,
                    &self.video_encode(r, track),
                )?;
                spec.timescale = self.plan.timeline.timescale;
                spec.presentation_offset =
                    presentation_offset(track, self.plan.timeline.timescale, &avcc, false, 0);
                spec.entry = fmp4::SampleEntry::Avc { config: avcc };
            }
            (
                None,
                Some(AudioOutput::Aac {
                    sample_rate,
                    channels,
                    bitrate,
                }),
            ) => {
                spec.timescale = *sample_rate;
                spec.sample_rate = *sample_rate;
                spec.channels = *channels;
                spec.avg_bitrate = *bitrate;
                spec.max_bitrate = *bitrate;
                spec.entry = fmp4::SampleEntry::Aac {
                    asc: aac_lc_config(*sample_rate, *channels)?,
                };
            }
            (None, Some(AudioOutput::Passthrough)) => {
                let a = track.audio.as_ref();
                let rate = a.map_or(0, |a| a.sample_rate);
                spec.timescale = rate;
                spec.sample_rate = rate;
                spec.channels = a.map_or(2, |a| a.channels);
                spec.entry = self.copied_entry(track, data)?;
            }
            _ => return Err(PipelineError::NoSuchRendition(r.id.clone())),
        }
        Ok(spec)
    }

    /// The sample entry of audio copied as it is ([`plan::copied_audio`]): AAC's
    /// AudioSpecificConfig, AC-3/E-AC-3's from the first sync frame in `data`, FLAC's
    /// STREAMINFO, Opus's identification header, MP3's none.
    fn copied_entry(
        &self,
        track: &Track,
        data: &Fetched,
    ) -> Result<fmp4::SampleEntry, PipelineError> {
        let bad =
            |what: &str| PipelineError::Unsupported(format!("{} copy: {what}", track.codec.name()));
        Ok(match track.codec {
            Codec::Aac => fmp4::SampleEntry::Aac {
                asc: track.codec_private.clone(),
            },
            Codec::Ac3 | Codec::Eac3 => {
                let frames = self.frames(data, track.id)?;
                let sync = frames
                    .iter()
                    .find_map(|f| probe::codecs::ac3::parse(&f.data))
                    .ok_or_else(|| bad("no sync frame in the first segment"))?;
                let (kind, config_kind, config) = if sync.eac3 {
                    (*b"ec-3", *b"dec3", sync.dec3().to_vec())
                } else {
                    (*b"ac-3", *b"dac3", sync.dac3().to_vec())
                };
                fmp4::SampleEntry::Copied {
                    kind,
                    config_kind,
                    config,
                }
            }
            Codec::Flac => {
                let info = plan::flac_stream_info(&track.codec_private)
                    .ok_or_else(|| bad("no STREAMINFO"))?;
                // dfLa: a full box (version 0, flags 0) holding metadata blocks: STREAMINFO,
                // flagged last, type 0, 34 bytes.
                let mut config = vec![0, 0, 0, 0, 0x80, 0, 0, 34];
                config.extend_from_slice(info);
                fmp4::SampleEntry::Copied {
                    kind: *b"fLaC",
                    config_kind: *b"dfLa",
                    config,
                }
            }
            Codec::Opus => fmp4::SampleEntry::Copied {
                kind: *b"Opus",
                config_kind: *b"dOps",
                config: dops(&track.codec_private).ok_or_else(|| bad("no OpusHead"))?,
            },
            Codec::Mp3 => fmp4::SampleEntry::MpegAudio,
            _ => return Err(bad("not a codec fMP4 carries")),
        })
    }

    fn subtitle(&self, id: &str, n: u32, data: &Fetched) -> Result<String, PipelineError> {
        if let Some(sc) = self.sidecar(id) {
            // Output seconds: the window of video segment `n` on the output timeline.
            let seg = self.video_segment(n)?;
            let tl = &self.plan.timeline;
            let (start, end) = (tl.secs(tl.video(seg.start)), tl.secs(tl.video(seg.end)));
            let last = n + 1 == self.segment_count();
            let cues: Vec<vtt::Cue> = sc
                .cues
                .iter()
                .filter(|c| {
                    c.start >= start && (c.start < end || last) || (n == 0 && c.start < start)
                })
                .cloned()
                .collect();
            return Ok(vtt::segment(&cues));
        }
        let r = self.rendition(id)?;
        if r.kind != RenditionKind::Subtitle {
            return Err(PipelineError::NoSuchRendition(id.to_string()));
        }
        let track = track(&self.index, r.track_id)?;
        let seg = self.video_segment(n)?;
        let its = f64::from(self.index.timescale.max(1));
        let (start, end) = (seg.start as f64 / its, seg.end as f64 / its);
        let ts = f64::from(track.timescale.max(1));
        // Cue times on the output timeline (0 at the origin, as every rendition).
        let origin = self.plan.timeline.origin as f64 / its;
        let mut cues: Vec<vtt::Cue> = self
            .frames(data, track.id)?
            .into_iter()
            .filter_map(|f| {
                let t = f.pts as f64 / ts;
                if t < start || t >= end {
                    return None;
                }
                let text = vtt::cue_text(&track.codec, &f.data)?;
                let stop = f.duration.map_or(end, |d| t + f64::from(d) / ts);
                Some(vtt::Cue {
                    start: t - origin,
                    end: stop - origin,
                    text,
                })
            })
            .collect();
        cues.sort_by(|a, b| a.start.total_cmp(&b.start));
        Ok(vtt::segment(&cues))
    }

    fn sheet(&self, n: u32, data: &Fetched) -> Result<Vec<u8>, PipelineError> {
        let main = self
            .index
            .main()
            .filter(|t| t.kind == probe::TrackKind::Video)
            .ok_or(PipelineError::Empty("the source has no video"))?;
        let (tp, kfs) = self.sheet_keyframes(n)?;
        let ts = i64::from(main.timescale);
        let its = i64::from(self.index.timescale);
        let frames = self.frames(data, main.id)?;
        // Each wanted keyframe's frame: the keyframe whose time is nearest (the index and the
        // demuxer may round a rescaled time differently by a tick).
        let keyed: Vec<&Frame> = frames.iter().filter(|f| f.keyframe).collect();
        let mut chosen: Vec<Option<usize>> = Vec::with_capacity(kfs.len());
        for k in &kfs {
            let want = rescale(*k, ts, its);
            chosen.push(
                keyed
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, f)| (f.pts - want).unsigned_abs())
                    .filter(|(_, f)| (f.pts - want).unsigned_abs() <= (ts / 100).max(1) as u64)
                    .map(|(i, _)| i),
            );
        }
        // Only the keyframes a tile shows are decoded, each once.
        let mut packets: Vec<av::Packet<'_>> = Vec::with_capacity(kfs.len());
        let mut slot: Vec<Option<usize>> = Vec::with_capacity(kfs.len());
        for c in &chosen {
            slot.push(c.and_then(|i| keyed.get(i)).map(|f| {
                packets.push(packet(f));
                packets.len() - 1
            }));
        }
        let tiles: Vec<Option<usize>> = tp
            .sheet_tiles(n)
            .map(|i| {
                let k = self.tile_keyframe(&tp, i);
                kfs.iter()
                    .position(|x| *x == k)
                    .and_then(|p| slot.get(p).copied().flatten())
            })
            .collect();
        Ok(av::sheet(
            &stream_params(main),
            &packets,
            &tiles,
            av::SheetLayout {
                tile: tp.tile,
                grid: tp.layout,
            },
        )?)
    }

    fn thumbnail(&self, ms: u64, width: u32, data: &Fetched) -> Result<Vec<u8>, PipelineError> {
        let main = self
            .index
            .main()
            .filter(|t| t.kind == probe::TrackKind::Video)
            .ok_or(PipelineError::Empty("the source has no video"))?;
        let at_index = self.thumb_time(ms);
        let ts = i64::from(main.timescale);
        let its = i64::from(self.index.timescale);
        let at = rescale(at_index, ts, its);
        let from = rescale(self.keyframe_before(at_index), ts, its);
        let frames = self.frames(data, main.id)?;
        let first = frames
            .iter()
            .position(|f| f.keyframe && f.pts >= from)
            .or_else(|| frames.iter().position(|f| f.keyframe))
            .ok_or(PipelineError::Empty(
                "no keyframe before the thumbnail time",
            ))?;
        let packets: Vec<av::Packet<'_>> = frames[first..].iter().map(packet).collect();
        Ok(av::thumbnail(
            &stream_params(main),
            &packets,
            at,
            width.clamp(16, 1920),
        )?)
    }
}

/// The median distance between keyframes, milliseconds (0 with fewer than two).
fn median_keyframe_ms(index: &MediaIndex) -> u64 {
    let mut gaps: Vec<i64> = index
        .keyframes
        .windows(2)
        .map(|w| w[1].pts.saturating_sub(w[0].pts))
        .filter(|g| *g > 0)
        .collect();
    if gaps.is_empty() || index.timescale == 0 {
        return 0;
    }
    let mid = gaps.len() / 2;
    let (_, m, _) = gaps.select_nth_unstable(mid);
    u64::try_from(rescale(*m, 1000, i64::from(index.timescale))).unwrap_or(0)
}

fn track(index: &MediaIndex, id: u64) -> Result<&Track, PipelineError> {
    index
        .tracks
        .iter()
        .find(|t| t.id == id)
        .ok_or(PipelineError::Empty(
            "the rendition's track is not in the index",
        ))
}

/// Reordering depth assumed when the codec record states none (the most frames any H.264 or
/// HEVC level lets a decoder hold).
const DEFAULT_REORDER_FRAMES: u32 = 16;

/// Frame duration assumed (as 1/rate seconds) when the source states no frame rate.
const DEFAULT_FRAME_RATE: u32 = 24;

/// The presentation offset of a video rendition (its init's `elst` media_time, in `timescale`
/// ticks): how far ahead every composition offset is written so that none is negative (see
/// [`crate::timing`]): the reordering depth the codec record's SPS states plus `leading`
/// frames, in frame durations. `leading`: the open-GOP leading pictures of copied H.264
/// ([`probe::VideoInfo::leading_frames`]), which decode after their keyframe (at the segment's
/// start) and present before it, so their offsets reach down to −(depth + leading) frames
/// (HEVC's depth, the DPB size, already bounds them; encoder output has closed GOPs).
/// hls.js reads presentation times without the edit, so its view of a fragment's start is late
/// by this much (the browser's own, edit applied, is exact): the bound is kept tight.
/// [`presentation_offset`] of a rendition that copies `track`'s video.
fn copied_offset(track: &Track, timescale: u32) -> u32 {
    let hevc = track.codec == Codec::Hevc;
    let leading = match track.video.as_ref().and_then(|v| v.leading_frames) {
        Some(l) if !hevc => l,
        _ => 0,
    };
    presentation_offset(track, timescale, &track.codec_private, hevc, leading)
}

fn presentation_offset(
    track: &Track,
    timescale: u32,
    record: &[u8],
    hevc: bool,
    leading: u32,
) -> u32 {
    let depth = probe::codecs::reorder_depth(record, hevc)
        .unwrap_or(DEFAULT_REORDER_FRAMES)
        .saturating_add(leading.min(DEFAULT_REORDER_FRAMES));
    let ts = u64::from(timescale);
    let frame = match track.video.as_ref().and_then(|v| v.frame_rate) {
        Some(r) if r.num > 0 => (ts * u64::from(r.den)).div_ceil(u64::from(r.num)),
        _ => ts.div_ceil(u64::from(DEFAULT_FRAME_RATE)),
    };
    // At most two seconds, whatever the timescale says.
    let offset = frame.saturating_mul(u64::from(depth)).min(2 * ts);
    u32::try_from(offset).unwrap_or(0)
}

fn timed(frames: Vec<Frame>) -> Vec<Timed> {
    frames
        .into_iter()
        .map(|f| Timed {
            pts: f.pts,
            keyframe: f.keyframe,
            data: f.data,
        })
        .collect()
}

fn packet(f: &Frame) -> av::Packet<'_> {
    av::Packet {
        data: &f.data,
        pts: f.pts,
        dts: f.dts,
        keyframe: f.keyframe,
    }
}

/// The demuxer of a source: the pure-Rust one of the native containers, or libavformat's.
#[derive(Debug)]
enum SourceDemuxer {
    Native(demux::Demuxer),
    Lavf(av::lavf::LavfDemuxer),
}

impl SourceDemuxer {
    fn new(index: &MediaIndex, tables: Option<&[u8]>) -> Result<SourceDemuxer, PipelineError> {
        Ok(match index.container {
            probe::Container::Universal => {
                let bytes = tables.ok_or_else(|| {
                    PipelineError::Unsupported("a universal source without its tables".into())
                })?;
                let tables = av::lavf::Tables::from_bytes(bytes)?;
                SourceDemuxer::Lavf(av::lavf::LavfDemuxer::new(index, tables))
            }
            _ => SourceDemuxer::Native(demux::Demuxer::new(index, tables)?),
        })
    }

    fn heap_bytes(&self) -> usize {
        match self {
            SourceDemuxer::Native(d) => d.heap_bytes(),
            SourceDemuxer::Lavf(d) => d.heap_bytes(),
        }
    }

    fn frames(&self, bytes: &[u8], offset: u64) -> Result<demux::Demuxed, PipelineError> {
        Ok(match self {
            SourceDemuxer::Native(d) => d.frames(bytes, offset)?,
            SourceDemuxer::Lavf(d) => d.frames(bytes, offset)?,
        })
    }
}

/// The body of an ISO BMFF `dOps` box (Opus in ISOBMFF §4.3.2) from Ogg's `OpusHead`
/// (RFC 7845 §5.1): the same fields, big-endian, version 0, without the magic.
fn dops(head: &[u8]) -> Option<Vec<u8>> {
    let h = head.strip_prefix(b"OpusHead")?;
    let &[_version, channels, s0, s1, r0, r1, r2, r3, g0, g1, family, ref rest @ ..] = h else {
        return None;
    };
    let mut out = vec![0, channels];
    out.extend_from_slice(&u16::from_le_bytes([s0, s1]).to_be_bytes());
    out.extend_from_slice(&u32::from_le_bytes([r0, r1, r2, r3]).to_be_bytes());
    out.extend_from_slice(&i16::from_le_bytes([g0, g1]).to_be_bytes());
    out.push(family);
    if family != 0 {
        // stream count, coupled count, one mapping byte per channel.
        out.extend_from_slice(rest.get(..2 + usize::from(channels))?);
    }
    Some(out)
}

fn stream_params(track: &Track) -> av::StreamParams {
    av::StreamParams {
        codec: track.codec.clone(),
        extradata: track.codec_private.clone(),
        timescale: track.timescale,
        width: track.video.as_ref().map_or(0, |v| v.width),
        height: track.video.as_ref().map_or(0, |v| v.height),
        sample_rate: track.audio.as_ref().map_or(0, |a| a.sample_rate),
        channels: track.audio.as_ref().map_or(0, |a| a.channels),
        block_align: track
            .audio
            .as_ref()
            .and_then(|a| a.block_align)
            .unwrap_or(0),
        bit_rate: track.audio.as_ref().and_then(|a| a.bit_rate).unwrap_or(0),
        rotation: track.video.as_ref().map_or(0, |v| u32::from(v.rotation)),
    }
}

/// Writes one fragment with sequence number `n + 1`.
fn fragment(n: u32, runs: &[(u32, TrackRun)]) -> Result<Vec<u8>, PipelineError> {
    let runs: Vec<fmp4::Run<'_>> = runs
        .iter()
        .map(|(id, run)| fmp4::Run {
            track_id: *id,
            base_decode_time: run.base_decode_time,
            samples: run
                .samples
                .iter()
                .map(|s| fmp4::Sample {
                    data: &s.data,
                    duration: s.duration,
                    composition_offset: s.composition_offset,
                    keyframe: s.keyframe,
                })
                .collect(),
        })
        .collect();
    Ok(fmp4::media_segment(n.saturating_add(1), &runs)?)
}

/// The decoder configuration record with its NAL length size set to 4 bytes (the demuxer
/// rewrites samples to 4-byte lengths). `at` is the byte holding `lengthSizeMinusOne` in its
/// low two bits: 4 in avcC (ISO/IEC 14496-15 §5.3.3.1), 21 in hvcC (§8.3.3.1).
fn with_length_size_4(record: &[u8], at: usize) -> Result<Vec<u8>, PipelineError> {
    let mut r = record.to_vec();
    let b = r.get_mut(at).ok_or(PipelineError::Unsupported(
        "the video has no decoder configuration record".into(),
    ))?;
    *b |= 0x03;
    Ok(r)
}

/// AudioSpecificConfig of AAC-LC (ISO/IEC 14496-3 §1.6.2.1): object type 2, the rate's index,
/// the channel configuration of the count.
fn aac_lc_config(rate: u32, channels: u16) -> Result<Vec<u8>, PipelineError> {
    let idx = aac::rate_index(rate)
        .ok_or_else(|| PipelineError::Unsupported(format!("AAC rate {rate}")))?;
    let ch = aac::channel_config(channels)
        .ok_or_else(|| PipelineError::Unsupported(format!("{channels} AAC channels")))?;
    Ok(aac::asc(2, idx, ch).to_vec())
}

/// Sorts and merges overlapping or touching ranges.
fn merge(mut ranges: Vec<ByteRange>) -> Vec<ByteRange> {
    ranges.sort_by_key(|r| (r.start, r.end));
    let mut out: Vec<ByteRange> = Vec::new();
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aac_lc_config_matches_known_values() {
        assert_eq!(aac_lc_config(48000, 2).unwrap(), vec![0x11, 0x90]);
        assert_eq!(aac_lc_config(44100, 2).unwrap(), vec![0x12, 0x10]);
        assert!(aac_lc_config(1234, 2).is_err());
        // channelConfiguration 7 is 7.1: eight channels have one, seven have none.
        assert_eq!(aac_lc_config(48000, 8).unwrap(), vec![0x11, 0xB8]);
        assert!(aac_lc_config(48000, 7).is_err());
    }

    /// Leading segments are short only where the first-listed video is encoded: HEVC (the
    /// H.264 transcode listed first) gets 2.4 + 2.4 s (its keyframes are 2.4 s apart), H.264
    /// (copied first) keeps 6 s, and `lead_secs: 0` turns the lead off.
    #[test]
    fn the_lead_follows_the_first_listed_video() {
        let media = |name: &str, lead_secs: f64| {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../fixtures/out")
                .join(name);
            let data = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (run fixtures/make.sh)", path.display()));
            let opts = MediaOptions {
                lead_secs,
                ..MediaOptions::default()
            };
            Media::new(probe::probe_bytes(&data).unwrap(), None, opts).unwrap()
        };
        let firsts = |m: &Media| -> Vec<f64> {
            m.plan.segments.iter().take(3).map(|s| s.duration).collect()
        };
        let hevc = media("hevc_ac3.mkv", 2.0);
        let first = hevc
            .renditions()
            .iter()
            .find(|r| r.kind == RenditionKind::Video)
            .unwrap();
        assert!(
            matches!(first.video, Some(VideoOutput::H264 { .. })),
            "{first:?}"
        );
        assert_eq!(firsts(&hevc), vec![2.4, 2.4, 4.8]);
        assert_eq!(firsts(&media("hevc_ac3.mkv", 0.0)), vec![4.8, 4.8, 4.8]);
        assert_eq!(firsts(&media("h264_bframes.mkv", 2.0)), vec![6.0, 6.0, 6.0]);
        assert_ne!(
            hevc.params_key(),
            media("hevc_ac3.mkv", 0.0).params_key(),
            "the lead is part of the cache key"
        );
    }

    /// The playlists a source serves: its subtitle rendition repeats the video's EXTINF lines
    /// (one writer, `plan::playlist`), and every rendition's playlist is a media playlist.
    #[test]
    fn subtitle_playlist_repeats_the_video_extinf_lines() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/out/multi_audio_subs.mkv");
        let data = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run fixtures/make.sh)", path.display()));
        let media = Media::new(
            probe::probe_bytes(&data).unwrap(),
            None,
            MediaOptions::default(),
        )
        .unwrap();
        let extinfs = |id: &str| -> Vec<String> {
            let text = media.media_playlist(id).unwrap();
            assert!(text.ends_with("#EXT-X-ENDLIST\n"), "{id}: {text}");
            text.lines()
                .filter(|l| l.starts_with("#EXTINF:"))
                .map(str::to_string)
                .collect()
        };
        let video = extinfs("v1");
        assert_eq!(video.len(), media.segment_count() as usize);
        assert_eq!(extinfs("s4"), video);
        assert_eq!(extinfs("a2").len(), video.len());
    }

    #[test]
    fn merges_ranges() {
        let r = merge(vec![
            ByteRange::new(10, 20),
            ByteRange::new(0, 5),
            ByteRange::new(15, 30),
        ]);
        assert_eq!(r, vec![ByteRange::new(0, 5), ByteRange::new(10, 30)]);
    }
}
