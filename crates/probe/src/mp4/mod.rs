//! ISO BMFF (MP4/MOV, ISO/IEC 14496-12) probe.
//!
//! Top-level boxes are walked by their headers only (§4.2: 32-bit size, `size == 1` → 64-bit
//! `largesize`, `size == 0` → to end of file), skipping `mdat` without reading it, so a file with
//! `moov` at the end costs: the head, one read at the end of `mdat`, and at most one more for the
//! rest of a large `moov`. Box *bodies* (`moov`, `moof`) are decoded with `mp4-atom`.
//!
//! From `moov/trak/mdia/minf/stbl` (§8.6–8.7: `stts`, `ctts`, `stss`, `stsc`, `stsz`, `stco`/`co64`)
//! and `edts/elst` (§8.6.6) every sample's presentation time and byte offset is derived; the main
//! video track's sync samples become [`Keyframe`]s and every chunk of every track becomes a
//! [`Span`]. Fragmented files (`mvex` present, empty sample tables) are indexed by walking each
//! `moof` (§8.8: `tfhd`, `tfdt`, `trun` with `trex` defaults) and skipping its `mdat`.

pub mod boxes;
mod nesting;

pub use nesting::check_nesting;

use mp4_atom::{Codec as AtomCodec, Decode, Encode, Moof, Moov, StszSamples, Trak};

use crate::codecs::{aac, h264, hevc};
use crate::time::rescale;
use crate::{
    choose_main_track, limits, AudioInfo, ByteRange, Codec, Container, ContainerProbe, Keyframe,
    MediaIndex, Poll, ProbeError, Rational, Result, Span, Store, Track, TrackKind, VideoInfo,
};

const NAME: &str = "mp4";
/// Largest span cut from one chunk (see [`SampleTables::build`]); a second of media is the
/// other bound.
const SPAN_MAX_BYTES: u64 = 1 << 20;
/// How much to read past a box header we need, to save a round trip for small boxes.
const READAHEAD: u64 = 64 * 1024;
/// Smallest read when walking fragments. Each read is sized to the previous `moof` plus the
/// next `mdat` header, so one request per fragment is the norm.
const FRAGMENT_READ_MIN: u64 = 2 * 1024;

/// A top-level box: its type and where it lies in the file.
#[derive(Debug, Clone, Copy)]
struct PlacedBox {
    kind: [u8; 4],
    /// Absolute offset of the box start.
    start: u64,
    /// Absolute end (exclusive).
    end: u64,
}

#[derive(Debug)]
enum State {
    /// Walking top-level boxes looking for `moov`.
    FindMoov { offset: u64 },
    /// Walking `moof` boxes of a fragmented file.
    Fragments { offset: u64 },
}

/// Per-track facts a fragment walk accumulates.
#[derive(Debug, Clone)]
struct FragTrack {
    track_id: u32,
    timescale: u32,
    /// Presentation shift from the edit list, in media ticks.
    shift: i64,
    /// The edit list's presented window.
    window: Window,
    trex_duration: u32,
    trex_size: u32,
    trex_flags: u32,
    /// Next decode time when a `traf` has no `tfdt`.
    next_dts: u64,
    /// Smallest presentation time seen.
    min_pts: Option<i64>,
    /// Largest presentation end seen.
    max_end: i64,
}

/// Probe state machine for MP4/MOV and fragmented MP4.
#[derive(Debug)]
pub struct Mp4Probe {
    size: u64,
    state: State,
    boxes: u64,
    /// Built from `moov`; finished by the fragment walk for fragmented files.
    partial: Option<MediaIndex>,
    frag: Vec<FragTrack>,
    /// Samples seen in all fragments so far (capped by `MAX_SAMPLES`).
    frag_samples: u64,
    /// Size of the last `moof`, to size the next fragment's read.
    last_moof: u64,
}

impl Mp4Probe {
    /// A probe for a file of `size` bytes.
    pub fn new(size: u64) -> Self {
        Mp4Probe {
            size,
            state: State::FindMoov { offset: 0 },
            boxes: 0,
            partial: None,
            frag: Vec::new(),
            frag_samples: 0,
            last_moof: 0,
        }
    }

    /// Reads the box header at `offset`, or says which bytes are needed. `Ok(None)` at the end.
    fn header(&self, store: &Store, offset: u64, readahead: u64) -> Result<Got<Option<PlacedBox>>> {
        if offset + 8 > self.size {
            return Ok(Got::Ready(None));
        }
        let want_end = (offset + 16).min(self.size);
        let Some(b) = store.get(offset, want_end) else {
            return Ok(Got::Need(ByteRange::new(
                offset,
                (offset + readahead).min(self.size),
            )));
        };
        let h = match boxes::BoxHeader::parse(b) {
            Ok(Some(h)) => h,
            // The store holds up to 16 bytes or the end of the file: a largesize cut by it.
            Ok(None) => {
                return Err(ProbeError::Truncated {
                    container: NAME,
                    needed: offset + 16,
                    size: self.size,
                })
            }
            Err(e) => return Err(ProbeError::malformed(NAME, offset, e.to_string())),
        };
        h.check_kind()
            .map_err(|e| ProbeError::malformed(NAME, offset, e.to_string()))?;
        let end = offset
            .checked_add(h.size_within(self.size - offset))
            .ok_or_else(|| ProbeError::malformed(NAME, offset, "box size overflows"))?;
        let kind = h.kind;
        Ok(Got::Ready(Some(PlacedBox {
            kind,
            start: offset,
            end,
        })))
    }

    /// The whole box `h`, or the range still missing.
    fn body<'s>(
        &self,
        store: &'s Store,
        h: &PlacedBox,
        max: u64,
        what: &'static str,
    ) -> Result<Got<&'s [u8]>> {
        let len = h.end - h.start;
        if len > max {
            return Err(ProbeError::limit(what, len, max));
        }
        if h.end > self.size {
            return Err(ProbeError::Truncated {
                container: NAME,
                needed: h.end,
                size: self.size,
            });
        }
        match store.get(h.start, h.end) {
            Some(b) => Ok(Got::Ready(b)),
            None => {
                let from = store.held_until(h.start);
                Ok(Got::Need(ByteRange::new(from, h.end)))
            }
        }
    }

    fn count_box(&mut self) -> Result<()> {
        self.boxes += 1;
        if self.boxes > limits::MAX_TOP_LEVEL_BOXES {
            return Err(ProbeError::limit(
                "MAX_TOP_LEVEL_BOXES",
                self.boxes,
                limits::MAX_TOP_LEVEL_BOXES,
            ));
        }
        Ok(())
    }
}

/// Either a value or the bytes needed to compute it.
enum Got<T> {
    Ready(T),
    Need(ByteRange),
}

macro_rules! ready {
    ($e:expr) => {
        match $e? {
            Got::Ready(v) => v,
            Got::Need(r) => return Ok(Poll::Need(r)),
        }
    };
}

impl ContainerProbe for Mp4Probe {
    fn poll(&mut self, store: &mut Store) -> Result<Poll> {
        loop {
            match self.state {
                State::FindMoov { offset } => {
                    let Some(h) = ready!(self.header(store, offset, READAHEAD)) else {
                        return Err(ProbeError::malformed(
                            NAME,
                            offset,
                            "no moov box in the file",
                        ));
                    };
                    self.count_box()?;
                    if &h.kind != b"moov" {
                        if h.end <= offset {
                            return Err(ProbeError::malformed(
                                NAME,
                                offset,
                                "box does not advance",
                            ));
                        }
                        if h.end > self.size {
                            // A box (usually mdat) runs past the end before any moov: a cut
                            // download of a file whose moov was at the end.
                            return Err(ProbeError::Truncated {
                                container: NAME,
                                needed: h.end,
                                size: self.size,
                            });
                        }
                        self.state = State::FindMoov { offset: h.end };
                        continue;
                    }
                    let body =
                        ready!(self.body(store, &h, limits::MAX_MOOV_BYTES, "MAX_MOOV_BYTES"));
                    check_nesting(body)?;
                    let mut slice = body;
                    let moov = Moov::decode(&mut slice)
                        .map_err(|e| ProbeError::malformed(NAME, h.start, format!("moov: {e}")))?;
                    let (index, frag) =
                        index_from_moov(&moov, ByteRange::new(h.start, h.end), self.size)?;
                    if frag.is_empty() {
                        return Ok(Poll::Done(index));
                    }
                    self.partial = Some(index);
                    self.frag = frag;
                    store.clear();
                    self.state = State::Fragments { offset: h.end };
                }
                State::Fragments { offset } => {
                    let read = FRAGMENT_READ_MIN.max(self.last_moof + self.last_moof / 4 + 32);
                    let Some(h) = ready!(self.header(store, offset, read)) else {
                        return self.finish_fragments();
                    };
                    self.count_box()?;
                    if h.end <= offset {
                        return Err(ProbeError::malformed(NAME, offset, "box does not advance"));
                    }
                    if &h.kind == b"moof" {
                        let body =
                            ready!(self.body(store, &h, limits::MAX_READ_BYTES, "moof size"));
                        check_nesting(body)?;
                        let mut slice = body;
                        let moof = Moof::decode(&mut slice).map_err(|e| {
                            ProbeError::malformed(NAME, h.start, format!("moof: {e}"))
                        })?;
                        // A fragment whose samples run past the end of the file was cut off (a
                        // file still being written, or a cut download): index the complete
                        // fragments before it and stop.
                        let (kf, sp, frag) = match &self.partial {
                            Some(ix) => (ix.keyframes.len(), ix.spans.len(), self.frag.clone()),
                            None => (0, 0, self.frag.clone()),
                        };
                        self.add_fragment(&moof, h.start)?;
                        let cut = self.partial.as_ref().is_some_and(|ix| {
                            ix.spans
                                .get(sp..)
                                .unwrap_or(&[])
                                .iter()
                                .any(|s| s.end > self.size)
                        });
                        if cut {
                            if let Some(ix) = self.partial.as_mut() {
                                ix.keyframes.truncate(kf);
                                ix.spans.truncate(sp);
                            }
                            self.frag = frag;
                            return self.finish_fragments();
                        }
                        self.last_moof = h.end - h.start;
                    }
                    if !store.has(h.end, (h.end + 16).min(self.size)) {
                        store.clear();
                    }
                    self.state = State::Fragments { offset: h.end };
                }
            }
        }
    }
}

impl Mp4Probe {
    /// Adds one `moof`'s samples: keyframes of the main track and a span per `trun`.
    fn add_fragment(&mut self, moof: &Moof, moof_start: u64) -> Result<()> {
        let Some(index) = self.partial.as_mut() else {
            return Err(ProbeError::Driver("fragment before moov".into()));
        };
        let main_id = index.main().map(|t| t.id);
        let index_ts = index.timescale;
        for traf in &moof.traf {
            let Some(ft) = self
                .frag
                .iter_mut()
                .find(|f| f.track_id == traf.tfhd.track_id)
            else {
                continue;
            };
            let trex = TrexDefaults {
                duration: ft.trex_duration,
                size: ft.trex_size,
                flags: ft.trex_flags,
            };
            let count: u64 = traf.trun.iter().map(|t| t.samples.len() as u64).sum();
            self.frag_samples = self.frag_samples.saturating_add(count);
            // A sample holds at least one byte of the file (a trun without per-sample fields
            // costs nothing per sample, so its count is a bare claim).
            if self.frag_samples > self.size {
                return Err(ProbeError::malformed(
                    NAME,
                    moof_start,
                    format!(
                        "fragments claim {} samples in a {}-byte file",
                        self.frag_samples, self.size
                    ),
                ));
            }
            if self.frag_samples > limits::MAX_SAMPLES {
                return Err(ProbeError::limit(
                    "MAX_SAMPLES",
                    self.frag_samples,
                    limits::MAX_SAMPLES,
                ));
            }
            let (samples, dts) = traf_samples(traf, moof_start, ft.next_dts, trex)?;
            // One span per trun; it starts at the `moof`, which a reader needs first to find
            // the samples (§8.8.4), and ends after the run's last sample.
            let mut k = 0usize;
            while k < samples.len() {
                let run = samples[k].run;
                let (mut run_t0, mut run_t1, mut run_end) = (i64::MAX, i64::MIN, 0u64);
                let (mut run_first, mut seen) = (u64::MAX, false);
                while let Some(s) = samples.get(k).filter(|s| s.run == run) {
                    k += 1;
                    let pts = i64::try_from(s.dts)
                        .unwrap_or(i64::MAX)
                        .saturating_add(s.cts)
                        .saturating_sub(ft.shift);
                    let end = pts.saturating_add(i64::from(s.duration));
                    ft.min_pts = Some(ft.min_pts.map_or(pts, |m| m.min(pts)));
                    ft.max_end = ft.max_end.max(end);
                    run_t0 = run_t0.min(pts);
                    run_t1 = run_t1.max(end);
                    run_first = run_first.min(s.offset);
                    run_end = run_end.max(s.offset.saturating_add(u64::from(s.size)));
                    seen |= s.size > 0;
                    if s.sync && Some(u64::from(ft.track_id)) == main_id {
                        if index.keyframes.len() >= limits::MAX_KEYFRAMES {
                            return Err(ProbeError::limit(
                                "MAX_KEYFRAMES",
                                index.keyframes.len() as u64,
                                limits::MAX_KEYFRAMES as u64,
                            ));
                        }
                        index.keyframes.push(Keyframe {
                            pts: rescale(pts, index_ts.into(), ft.timescale.into()),
                            offset: s.offset,
                        });
                    }
                }
                if seen && run_t0 <= run_t1 {
                    index.spans.push(Span {
                        time: rescale(run_t0, index_ts.into(), ft.timescale.into()),
                        end_time: rescale(run_t1, index_ts.into(), ft.timescale.into()),
                        start: moof_start.min(run_first),
                        end: run_end,
                    });
                }
            }
            ft.next_dts = dts;
        }
        Ok(())
    }

    fn finish_fragments(&mut self) -> Result<Poll> {
        let Some(mut index) = self.partial.take() else {
            return Err(ProbeError::Driver("fragments finished before moov".into()));
        };
        for ft in &self.frag {
            if let Some(track) = index
                .tracks
                .iter_mut()
                .find(|t| t.id == u64::from(ft.track_id))
            {
                track.start = ft.min_pts;
                if let Some(min) = ft.min_pts {
                    let (a, b) = presented(ft.window, min, ft.max_end);
                    track.duration = u64::try_from(b.saturating_sub(a)).ok();
                }
            }
        }
        let main = index.main().map(|t| t.id);
        let Some(ft) = self
            .frag
            .iter()
            .find(|f| Some(u64::from(f.track_id)) == main)
        else {
            return Err(ProbeError::NoTracks(
                "fragmented file without a main track".into(),
            ));
        };
        let (start, end) = presented(ft.window, ft.min_pts.unwrap_or(0), ft.max_end);
        index.start = rescale(start, index.timescale.into(), ft.timescale.into());
        index.duration = u64::try_from(rescale(
            end.saturating_sub(start),
            index.timescale.into(),
            ft.timescale.into(),
        ))
        .unwrap_or(0);
        index.keyframes.sort_by_key(|k| k.pts);
        index.spans.sort_by_key(|s| (s.time, s.start));
        if index.spans.is_empty() {
            return Err(ProbeError::malformed(
                NAME,
                0,
                "fragmented file without samples",
            ));
        }
        Ok(Poll::Done(index))
    }
}

/// The defaults of a track's fragments (`trex`, §8.8.3), which `tfhd` may override.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrexDefaults {
    /// `default_sample_duration`.
    pub duration: u32,
    /// `default_sample_size`.
    pub size: u32,
    /// `default_sample_flags`.
    pub flags: u32,
}

impl TrexDefaults {
    /// The `trex` of `track_id` in `moov` (zeros when there is none).
    pub fn of(moov: &Moov, track_id: u32) -> Self {
        moov.mvex
            .as_ref()
            .and_then(|m| m.trex.iter().find(|x| x.track_id == track_id))
            .map_or_else(TrexDefaults::default, |x| TrexDefaults {
                duration: x.default_sample_duration,
                size: x.default_sample_size,
                flags: x.default_sample_flags,
            })
    }
}

/// One sample of a track fragment run (§8.8.8 `trun`), in decode order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragSample {
    /// Position of its `trun` in the `traf`.
    pub run: usize,
    /// Absolute byte offset of its first byte.
    pub offset: u64,
    /// Size in bytes.
    pub size: u32,
    /// Decode time in media ticks (`tfdt` + the durations before it), before any edit list.
    pub dts: u64,
    /// Duration in media ticks.
    pub duration: u32,
    /// Composition offset: pts = dts + cts − the edit shift.
    pub cts: i64,
    /// `sample_is_non_sync_sample` is clear.
    pub sync: bool,
}

/// Every sample of `traf` (one `traf` of the `moof` box that starts at `moof_start`), with
/// per-sample values, else the `tfhd` defaults, else `trex`. `next_dts`: the decode time to
/// use when the `traf` has no `tfdt` (the end of the track's previous fragment). Returns the
/// samples and the decode time after the last one. The caller caps the sample count (each
/// `trun`'s count is known before this is called: [`mp4_atom::TrunSamples::len`]).
pub fn traf_samples(
    traf: &mp4_atom::Traf,
    moof_start: u64,
    next_dts: u64,
    trex: TrexDefaults,
) -> Result<(Vec<FragSample>, u64)> {
    let mut dts = traf
        .tfdt
        .as_ref()
        .map_or(next_dts, |t| t.base_media_decode_time);
    let base = traf.tfhd.base_data_offset.unwrap_or(moof_start);
    let mut next_offset = base;
    let mut out = Vec::new();
    for (run, trun) in traf.trun.iter().enumerate() {
        let mut offset = match trun.data_offset {
            Some(d) => base.checked_add_signed(i64::from(d)).ok_or_else(|| {
                ProbeError::malformed(NAME, moof_start, "trun data_offset underflows")
            })?,
            None => next_offset,
        };
        for s in trun.samples.iter() {
            let duration = s
                .duration
                .or(traf.tfhd.default_sample_duration)
                .unwrap_or(trex.duration);
            let size = s
                .size
                .or(traf.tfhd.default_sample_size)
                .unwrap_or(trex.size);
            let flags = s
                .flags
                .or(traf.tfhd.default_sample_flags)
                .unwrap_or(trex.flags);
            out.push(FragSample {
                run,
                offset,
                size,
                dts,
                duration,
                cts: s.cts.unwrap_or(0),
                sync: flags & 0x0001_0000 == 0,
            });
            dts = dts.saturating_add(u64::from(duration));
            offset = offset.saturating_add(u64::from(size));
        }
        next_offset = offset;
    }
    Ok((out, dts))
}

/// The facts one `trak` yields before sample tables.
struct TrackFacts {
    track: Track,
    /// Presentation shift (edit list), in media ticks: pts = dts + cts − shift.
    shift: i64,
    /// The presented window `[start, end)` the edit list declares, in media ticks (after the
    /// shift); samples outside it are pre-roll (AAC priming) or trimmed padding.
    window: Window,
}

/// An edit window: presented `[start, end)` in media ticks; `end` `None` = to the end.
type Window = Option<(i64, Option<i64>)>;

/// Clamps a track's sample range `[min_pts, max_end)` to its edit window.
fn presented(window: Window, min_pts: i64, max_end: i64) -> (i64, i64) {
    match window {
        None => (min_pts, max_end),
        Some((a, b)) => {
            let start = min_pts.max(a);
            let end = b.map_or(max_end, |b| max_end.min(b)).max(start);
            (start, end)
        }
    }
}

/// Builds the index from a decoded `moov`. For fragmented files it returns the track list and the
/// per-track fragment state to walk `moof`s with (non-empty second element).
fn index_from_moov(
    moov: &Moov,
    moov_range: ByteRange,
    file_size: u64,
) -> Result<(MediaIndex, Vec<FragTrack>)> {
    if moov.trak.len() > limits::MAX_TRACKS {
        return Err(ProbeError::limit(
            "MAX_TRACKS",
            moov.trak.len() as u64,
            limits::MAX_TRACKS as u64,
        ));
    }
    check_sample_claims(moov, file_size)?;
    let movie_ts = moov.mvhd.timescale.max(1);
    let mut facts = Vec::new();
    for trak in &moov.trak {
        facts.push(track_facts(trak, movie_ts)?);
    }
    let mut tracks: Vec<Track> = facts.iter().map(|f| f.track.clone()).collect();
    mark_defaults(&mut tracks);
    let main = choose_main_track(&tracks)
        .ok_or_else(|| ProbeError::NoTracks("no audio or video track in moov".into()))?;
    let timescale = tracks[main].timescale;
    let samples: u64 = moov.trak.iter().map(sample_count).sum();
    let fragmented = moov.mvex.is_some() && samples == 0;

    let mut index = MediaIndex {
        container: if fragmented {
            Container::FragmentedMp4
        } else {
            Container::Mp4
        },
        file_size,
        timescale,
        start: 0,
        duration: 0,
        tracks,
        main_track: Some(main),
        keyframes: Vec::new(),
        spans: Vec::new(),
        interleave: 0,
        moov: Some(moov_range),
        format: None,
    };

    if fragmented {
        let trex = moov.mvex.as_ref().map(|m| m.trex.as_slice()).unwrap_or(&[]);
        let frag = index
            .tracks
            .iter()
            .zip(&facts)
            .map(|(t, f)| {
                let x = trex.iter().find(|x| u64::from(x.track_id) == t.id);
                FragTrack {
                    track_id: u32::try_from(t.id).unwrap_or(0),
                    timescale: t.timescale,
                    shift: f.shift,
                    window: f.window,
                    trex_duration: x.map_or(0, |x| x.default_sample_duration),
                    trex_size: x.map_or(0, |x| x.default_sample_size),
                    trex_flags: x.map_or(0, |x| x.default_sample_flags),
                    next_dts: 0,
                    min_pts: None,
                    max_end: 0,
                }
            })
            .collect();
        return Ok((index, frag));
    }

    for (i, (trak, f)) in moov.trak.iter().zip(&facts).enumerate() {
        let tables = SampleTables::build(trak, f.shift, file_size)?;
        let (start, end) = presented(f.window, tables.min_pts, tables.max_end);
        if let Some(t) = index.tracks.get_mut(i) {
            if tables.count > 0 {
                t.duration = u64::try_from(end.saturating_sub(start)).ok();
                t.start = Some(tables.min_pts);
            }
        }
        for c in &tables.chunks {
            index.spans.push(Span {
                time: rescale(c.time, timescale.into(), f.track.timescale.into()),
                end_time: rescale(c.end_time, timescale.into(), f.track.timescale.into()),
                start: c.start,
                end: c.end,
            });
        }
        if i == main {
            index.start = start;
            index.duration = u64::try_from(end.saturating_sub(start)).unwrap_or(0);
            index.keyframes = tables.keyframes;
            if let Some(v) = index.tracks.get_mut(i).and_then(|t| t.video.as_mut()) {
                if v.frame_rate.is_none() {
                    v.frame_rate = tables.frame_rate;
                }
            }
        }
    }
    if index.tracks[main].kind != TrackKind::Video {
        index.keyframes.clear();
    }
    index.spans.sort_by_key(|s| (s.time, s.start));
    Ok((index, Vec::new()))
}

/// Checks the sample counts `moov` claims against the file's bytes, before any table is built:
/// a sample holds at least one byte of media, so a track's count (and, for a constant `stsz`
/// size, count × size) cannot exceed the file, and the sum over tracks is checked against
/// [`limits::MAX_TOTAL_SAMPLES`] and the file size. A constant-size `stsz` costs 20 bytes
/// whatever its count, so without this 10 million samples in a 32 KB file cost 450 MB.
pub fn check_sample_claims(moov: &Moov, file_size: u64) -> Result<()> {
    let mut total = 0u64;
    for trak in &moov.trak {
        let id = trak.tkhd.track_id;
        let count = sample_count(trak);
        if count > limits::MAX_SAMPLES {
            return Err(ProbeError::limit("MAX_SAMPLES", count, limits::MAX_SAMPLES));
        }
        let bytes = match &trak.mdia.minf.stbl.stsz.samples {
            StszSamples::Identical { size, .. } => count.checked_mul(u64::from(*size)),
            StszSamples::Different { .. } => Some(count),
        };
        if bytes.is_none_or(|b| b > file_size) || count > file_size {
            return Err(ProbeError::malformed(
                NAME,
                0,
                format!(
                    "track {id} claims {count} samples ({} bytes) in a {file_size}-byte file",
                    bytes.map_or_else(|| "overflowing".to_string(), |b| b.to_string())
                ),
            ));
        }
        total = total.saturating_add(count);
    }
    if total > limits::MAX_TOTAL_SAMPLES {
        return Err(ProbeError::limit(
            "MAX_TOTAL_SAMPLES",
            total,
            limits::MAX_TOTAL_SAMPLES,
        ));
    }
    if total > file_size {
        return Err(ProbeError::malformed(
            NAME,
            0,
            format!("tracks claim {total} samples in a {file_size}-byte file"),
        ));
    }
    Ok(())
}

fn sample_count(trak: &Trak) -> u64 {
    match &trak.mdia.minf.stbl.stsz.samples {
        StszSamples::Identical { count, .. } => u64::from(*count),
        StszSamples::Different { sizes } => sizes.len() as u64,
    }
}

/// Of the enabled tracks of each kind (tkhd `enabled`), only the first stays the default.
fn mark_defaults(tracks: &mut [Track]) {
    for kind in [TrackKind::Video, TrackKind::Audio, TrackKind::Subtitle] {
        let mut seen = false;
        for t in tracks.iter_mut().filter(|t| t.kind == kind) {
            if t.default && !seen {
                seen = true;
            } else {
                t.default = false;
            }
        }
    }
}

fn track_facts(trak: &Trak, movie_ts: u32) -> Result<TrackFacts> {
    let mdhd = &trak.mdia.mdhd;
    let timescale = mdhd.timescale;
    if timescale == 0 {
        return Err(ProbeError::malformed(
            NAME,
            0,
            format!("track {}: mdhd timescale is 0", trak.tkhd.track_id),
        ));
    }
    let handler = trak.mdia.hdlr.handler.to_string();
    let stsd_codec = trak.mdia.minf.stbl.stsd.codecs.first();
    let (codec, codec_private, mut video, audio) = match stsd_codec {
        Some(c) => describe_codec(c),
        None => (Codec::Other("none".into()), Vec::new(), None, None),
    };
    let mut kind = match handler.as_str() {
        "vide" => TrackKind::Video,
        "soun" => TrackKind::Audio,
        "text" | "sbtl" | "subt" | "clcp" => TrackKind::Subtitle,
        _ => TrackKind::Other,
    };
    if kind == TrackKind::Other && codec.kind() != TrackKind::Other {
        kind = codec.kind();
    }
    if let Some(v) = video.as_mut() {
        v.rotation = rotation(&trak.tkhd.matrix);
    }
    let language = {
        let l = mdhd.language.trim().to_string();
        (!l.is_empty() && l != "und").then_some(l)
    };
    let title = trak
        .mdia
        .hdlr
        .name
        .trim()
        .trim_matches(char::from(0))
        .to_string();
    let title = (!title.is_empty() && !title.ends_with("Handler")).then(|| truncate(title));

    let (shift, window) = edit_list(trak, movie_ts);
    Ok(TrackFacts {
        track: Track {
            id: u64::from(trak.tkhd.track_id),
            kind,
            codec,
            timescale,
            duration: None,
            language,
            title,
            default: trak.tkhd.enabled,
            forced: false,
            codec_private,
            video,
            audio,
            start: None,
            default_duration_ns: None,
            codec_delay_ns: None,
        },
        shift,
        window,
    })
}

/// The edit list (§8.6.6) of `trak` as a presentation shift and window, in media ticks:
/// pts = dts + cts − shift. Leading empty edits delay the track; the first media edit's
/// `media_time` is where presentation starts. `movie_ts`: the `mvhd` timescale the edit
/// durations are in. No edit list: shift 0, no window.
pub fn edit_list(trak: &Trak, movie_ts: u32) -> (i64, Option<(i64, Option<i64>)>) {
    let timescale = trak.mdia.mdhd.timescale;
    let mut shift = 0i64;
    let mut window = None;
    if let Some(elst) = trak.edts.as_ref().and_then(|e| e.elst.as_ref()) {
        let mut empty = 0i64;
        for e in &elst.entries {
            let dur = rescale(
                i64::try_from(e.segment_duration).unwrap_or(0),
                timescale.into(),
                movie_ts.max(1).into(),
            );
            match e.media_time {
                None => empty = empty.saturating_add(dur),
                Some(m) => {
                    shift = i64::try_from(m).unwrap_or(0).saturating_sub(empty);
                    // A zero duration (fragmented files) means "to the end of the media".
                    window = Some((empty, (dur > 0).then(|| empty.saturating_add(dur))));
                    break;
                }
            }
        }
    }
    (shift, window)
}

fn truncate(mut s: String) -> String {
    if s.len() > limits::MAX_STRING {
        let mut cut = limits::MAX_STRING;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}

/// Clockwise rotation from the `tkhd` matrix (§8.3.2): only the four right angles.
fn rotation(m: &mp4_atom::Matrix) -> u16 {
    const ONE: i32 = 0x0001_0000;
    match (m.a, m.b, m.c, m.d) {
        (0, ONE, x, 0) if x == -ONE => 90,
        (x, 0, 0, y) if x == -ONE && y == -ONE => 180,
        (0, x, ONE, 0) if x == -ONE => 270,
        _ => 0,
    }
}

/// An atom's body bytes (its encoding without the 8-byte header).
fn atom_body<T: Encode>(atom: &T) -> Vec<u8> {
    let mut buf = Vec::new();
    if atom.encode(&mut buf).is_ok() && buf.len() >= 8 {
        buf.split_off(8)
    } else {
        Vec::new()
    }
}

fn visual_info(v: &mp4_atom::Visual) -> VideoInfo {
    VideoInfo {
        width: u32::from(v.width),
        height: u32::from(v.height),
        ..VideoInfo::default()
    }
}

fn with_avcc(
    avcc: &mp4_atom::Avcc,
    visual: &mp4_atom::Visual,
) -> (Codec, Vec<u8>, Option<VideoInfo>, Option<AudioInfo>) {
    let private = atom_body(avcc);
    let mut v = h264::parse_avcc(&private)
        .map(|(v, _)| v)
        .unwrap_or_default();
    if v.width == 0 {
        v.width = u32::from(visual.width);
        v.height = u32::from(visual.height);
    }
    (Codec::H264, private, Some(v), None)
}

fn with_hvcc(
    hvcc: &mp4_atom::Hvcc,
    visual: &mp4_atom::Visual,
) -> (Codec, Vec<u8>, Option<VideoInfo>, Option<AudioInfo>) {
    let private = atom_body(hvcc);
    let mut v = hevc::parse_hvcc(&private).unwrap_or_default();
    if v.width == 0 {
        v.width = u32::from(visual.width);
        v.height = u32::from(visual.height);
    }
    (Codec::Hevc, private, Some(v), None)
}

/// The sample entry's `colr` (ISO/IEC 14496-12 §12.1.5, `nclx`/`nclc`) says the transfer
/// characteristics, over what the stream's VUI said.
fn with_colr(
    described: (Codec, Vec<u8>, Option<VideoInfo>, Option<AudioInfo>),
    colr: Option<&mp4_atom::Colr>,
) -> (Codec, Vec<u8>, Option<VideoInfo>, Option<AudioInfo>) {
    let (codec, private, mut video, audio) = described;
    let transfer = match colr {
        Some(mp4_atom::Colr::Nclx {
            transfer_characteristics,
            ..
        })
        | Some(mp4_atom::Colr::Nclc {
            transfer_characteristics,
            ..
        }) => u8::try_from(*transfer_characteristics).ok(),
        _ => None,
    };
    // 2 is "unspecified": the stream's own word stands.
    if let (Some(v), Some(t)) = (video.as_mut(), transfer.filter(|t| *t != 2)) {
        v.transfer = Some(t);
    }
    (codec, private, video, audio)
}

fn audio_info(a: &mp4_atom::Audio) -> AudioInfo {
    AudioInfo {
        sample_rate: u32::from(a.sample_rate.integer()),
        channels: a.channel_count,
        aac_object_type: None,
        bits_per_sample: None,
        ..AudioInfo::default()
    }
}

/// Maps a sample entry to our codec, its private bytes and video/audio facts.
fn describe_codec(c: &AtomCodec) -> (Codec, Vec<u8>, Option<VideoInfo>, Option<AudioInfo>) {
    match c {
        AtomCodec::Avc1(x) => with_colr(with_avcc(&x.avcc, &x.visual), x.colr.as_ref()),
        AtomCodec::Avc3(x) => with_colr(with_avcc(&x.avcc, &x.visual), x.colr.as_ref()),
        AtomCodec::Hvc1(x) => with_colr(with_hvcc(&x.hvcc, &x.visual), x.colr.as_ref()),
        AtomCodec::Hev1(x) => with_colr(with_hvcc(&x.hvcc, &x.visual), x.colr.as_ref()),
        AtomCodec::Vp08(x) => (Codec::Vp8, Vec::new(), Some(visual_info(&x.visual)), None),
        AtomCodec::Vp09(x) => (Codec::Vp9, Vec::new(), Some(visual_info(&x.visual)), None),
        AtomCodec::Av01(x) => (Codec::Av1, Vec::new(), Some(visual_info(&x.visual)), None),
        AtomCodec::Mp4a(x) => {
            let mut info = audio_info(&x.audio);
            let dc = &x.esds.es_desc.dec_config;
            let (codec, private) = match dc.object_type_indication {
                0x40 | 0x66 | 0x67 | 0x68 => {
                    let raw = dc
                        .dec_specific
                        .as_ref()
                        .map(|d| d.raw.clone())
                        .unwrap_or_default();
                    if let Some(asc) = aac::parse_asc(&raw) {
                        info.aac_object_type = Some(asc.object_type);
                        if asc.sample_rate > 0 {
                            info.sample_rate = asc.sample_rate;
                        }
                        if asc.channels > 0 {
                            info.channels = asc.channels;
                        }
                    }
                    (Codec::Aac, raw)
                }
                0x69 | 0x6B => (Codec::Mp3, Vec::new()),
                0xA5 => (Codec::Ac3, Vec::new()),
                0xA6 => (Codec::Eac3, Vec::new()),
                0xA9 | 0xAC => (Codec::Dts, Vec::new()),
                0xAD => (Codec::Opus, Vec::new()),
                o => (Codec::Other(format!("mp4a/0x{o:02x}")), Vec::new()),
            };
            (codec, private, None, Some(info))
        }
        AtomCodec::Mp3(x) => (Codec::Mp3, Vec::new(), None, Some(audio_info(&x.audio))),
        AtomCodec::Opus(x) => (Codec::Opus, Vec::new(), None, Some(audio_info(&x.audio))),
        AtomCodec::Flac(x) => (Codec::Flac, Vec::new(), None, Some(audio_info(&x.audio))),
        // The AudioSampleEntry's channel count is 2 by convention for (E-)AC-3; the dac3/dec3
        // box says the layout.
        AtomCodec::Ac3(x) => {
            let mut info = audio_info(&x.audio);
            info.channels = crate::codecs::ac3::channels(x.dac3.acmod, x.dac3.lfeon);
            (Codec::Ac3, Vec::new(), None, Some(info))
        }
        AtomCodec::Eac3(x) => {
            let mut info = audio_info(&x.audio);
            if let Some(sub) = x.dec3.substreams.first() {
                info.channels = crate::codecs::ac3::channels(sub.acmod, sub.lfeon);
            }
            (Codec::Eac3, Vec::new(), None, Some(info))
        }
        AtomCodec::Tx3g(_) => (Codec::MovText, Vec::new(), None, None),
        AtomCodec::Wvtt(_) => (Codec::WebVtt, Vec::new(), None, None),
        AtomCodec::Ipcm(_)
        | AtomCodec::Fpcm(_)
        | AtomCodec::Sowt(_)
        | AtomCodec::Twos(_)
        | AtomCodec::Lpcm(_)
        | AtomCodec::In24(_)
        | AtomCodec::In32(_)
        | AtomCodec::Fl32(_)
        | AtomCodec::Fl64(_)
        | AtomCodec::S16l(_) => (Codec::Pcm, Vec::new(), None, Some(AudioInfo::default())),
        AtomCodec::Unknown(k, _) => {
            let name = k.to_string();
            let codec = match name.as_str() {
                "mp4v" => Codec::Mpeg4Part2,
                "mp2v" | "m2v1" => Codec::Mpeg2Video,
                "dvh1" | "dvhe" => Codec::Hevc,
                "text" => Codec::MovText,
                _ => Codec::Other(name),
            };
            (codec, Vec::new(), None, None)
        }
        other => (
            Codec::Other(format!("{other:?}").chars().take(16).collect()),
            Vec::new(),
            None,
            None,
        ),
    }
}

/// A chunk (§8.7.4) as a span in the track's own timescale.
struct ChunkSpan {
    time: i64,
    end_time: i64,
    start: u64,
    end: u64,
}

/// What the sample tables of one track yield.
struct SampleTables {
    count: u64,
    min_pts: i64,
    max_end: i64,
    keyframes: Vec<Keyframe>,
    chunks: Vec<ChunkSpan>,
    frame_rate: Option<Rational>,
}

/// One sample of a track's sample tables (§8.6–8.7), in decode order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Absolute byte offset of its first byte (`stco`/`co64` + `stsc` + `stsz`).
    pub offset: u64,
    /// Size in bytes (`stsz`).
    pub size: u32,
    /// Decode time in media ticks, from 0 (`stts`), before any edit list.
    pub dts: i64,
    /// Decode duration in media ticks (the `stts` delta; the last delta repeats past the table).
    pub duration: u32,
    /// Composition offset (`ctts`, 0 without one): pts = dts + cts − the edit shift.
    pub cts: i64,
    /// A sync sample (`stss`; every sample when there is no `stss`).
    pub sync: bool,
    /// The first sample of its chunk.
    pub chunk_start: bool,
    /// Its chunk: the 0-based index into `stco`/`co64` (chunks without samples are counted).
    pub chunk: u32,
}

/// Every sample of `trak`, in decode order, from its sample tables: the one reading of
/// `stts`/`ctts`/`stsc`/`stco`/`co64`/`stsz`/`stss` that both the probe and the demuxer use.
/// Counts are checked against [`limits::MAX_SAMPLES`] and [`limits::MAX_CHUNKS`] first.
pub fn sample_table(trak: &Trak) -> Result<Vec<Sample>> {
    let stbl = &trak.mdia.minf.stbl;
    let id = trak.tkhd.track_id;
    let err = |what: String| ProbeError::malformed(NAME, 0, format!("track {id}: {what}"));
    let count = sample_count(trak);
    if count > limits::MAX_SAMPLES {
        return Err(ProbeError::limit("MAX_SAMPLES", count, limits::MAX_SAMPLES));
    }
    let n = usize::try_from(count).map_err(|_| err("sample count".into()))?;
    let size_of = |i: usize| -> u32 {
        match &stbl.stsz.samples {
            StszSamples::Identical { size, .. } => *size,
            StszSamples::Different { sizes } => sizes.get(i).copied().unwrap_or(0),
        }
    };
    let mut samples = Vec::with_capacity(n);

    // Decode times (stts).
    let mut t: i64 = 0;
    'stts: for e in &stbl.stts.entries {
        for _ in 0..e.sample_count {
            if samples.len() >= n {
                break 'stts;
            }
            let i = samples.len();
            samples.push(Sample {
                offset: 0,
                size: size_of(i),
                dts: t,
                duration: e.sample_delta,
                cts: 0,
                sync: stbl.stss.is_none(),
                chunk_start: false,
                chunk: 0,
            });
            t = t.saturating_add(i64::from(e.sample_delta));
        }
    }
    let last_delta = stbl.stts.entries.last().map_or(0, |e| e.sample_delta);
    while samples.len() < n {
        let i = samples.len();
        samples.push(Sample {
            offset: 0,
            size: size_of(i),
            dts: t,
            duration: last_delta,
            cts: 0,
            sync: stbl.stss.is_none(),
            chunk_start: false,
            chunk: 0,
        });
        t = t.saturating_add(i64::from(last_delta));
    }

    // Composition offsets (ctts).
    if let Some(ctts) = &stbl.ctts {
        let mut i = 0usize;
        'ctts: for e in &ctts.entries {
            for _ in 0..e.sample_count {
                let Some(s) = samples.get_mut(i) else {
                    break 'ctts;
                };
                s.cts = e.sample_offset;
                i += 1;
            }
        }
    }

    // Chunk offsets (stco/co64) and samples per chunk (stsc) give every sample's offset.
    let chunk_offsets: Vec<u64> = match (&stbl.co64, &stbl.stco) {
        (Some(c), _) => c.entries.clone(),
        (None, Some(c)) => c.entries.iter().map(|&o| u64::from(o)).collect(),
        (None, None) => Vec::new(),
    };
    if chunk_offsets.len() as u64 > limits::MAX_CHUNKS {
        return Err(ProbeError::limit(
            "MAX_CHUNKS",
            chunk_offsets.len() as u64,
            limits::MAX_CHUNKS,
        ));
    }
    let stsc = &stbl.stsc.entries;
    let mut sample = 0usize;
    // stsc runs are sorted by first_chunk: walk them alongside the chunks (§8.7.4).
    let mut run = 0usize;
    for (ci, &chunk_start) in chunk_offsets.iter().enumerate() {
        if sample >= n {
            break;
        }
        let chunk_no = u32::try_from(ci + 1).unwrap_or(u32::MAX);
        while stsc.get(run + 1).is_some_and(|e| e.first_chunk <= chunk_no) {
            run += 1;
        }
        let per = stsc
            .get(run)
            .filter(|e| e.first_chunk <= chunk_no)
            .map_or(0, |e| e.samples_per_chunk);
        let per = usize::try_from(per).unwrap_or(usize::MAX).min(n - sample);
        let mut off = chunk_start;
        for k in 0..per {
            if let Some(s) = samples.get_mut(sample) {
                s.offset = off;
                s.chunk_start = k == 0;
                s.chunk = u32::try_from(ci).unwrap_or(u32::MAX);
                off = off.saturating_add(u64::from(s.size));
            }
            sample += 1;
        }
    }
    if sample < n {
        return Err(err(format!(
            "sample tables describe {sample} of {n} samples (stsc/stco too short)"
        )));
    }

    // Sync samples (stss, 1-based).
    if let Some(stss) = &stbl.stss {
        if stss.entries.len() > limits::MAX_KEYFRAMES {
            return Err(ProbeError::limit(
                "MAX_KEYFRAMES",
                stss.entries.len() as u64,
                limits::MAX_KEYFRAMES as u64,
            ));
        }
        for &k in &stss.entries {
            if let Some(s) = usize::try_from(k)
                .ok()
                .and_then(|k| k.checked_sub(1))
                .and_then(|i| samples.get_mut(i))
            {
                s.sync = true;
            }
        }
    }
    Ok(samples)
}

impl SampleTables {
    fn build(trak: &Trak, shift: i64, file_size: u64) -> Result<Self> {
        let stbl = &trak.mdia.minf.stbl;
        let samples = sample_table(trak)?;
        let n = samples.len();
        let count = n as u64;
        let pts_of = |s: &Sample| s.dts.saturating_add(s.cts).saturating_sub(shift);
        let end_of = |s: &Sample| pts_of(s).saturating_add(i64::from(s.duration));

        let mut deltas: Vec<(u32, u64)> = Vec::new();
        for e in &stbl.stts.entries {
            match deltas.iter().position(|(d, _)| *d == e.sample_delta) {
                Some(p) => deltas[p].1 += u64::from(e.sample_count),
                None if deltas.len() < 64 => {
                    deltas.push((e.sample_delta, u64::from(e.sample_count)))
                }
                None => {}
            }
        }

        let mut min_pts = i64::MAX;
        let mut max_end = i64::MIN;
        for s in &samples {
            min_pts = min_pts.min(pts_of(s));
            max_end = max_end.max(end_of(s));
        }
        if n == 0 {
            min_pts = 0;
            max_end = 0;
        }

        // Presentation range of each run of samples (with B-frames, wider than its decode
        // range: the keyframe that opens a segment presents after it is decoded). A chunk is
        // cut into runs of at most a second or a MiB: a single-track file may be one chunk,
        // and a segment must not need all of it.
        let max_run = i64::from(trak.mdia.mdhd.timescale);
        let mut chunks = Vec::new();
        let mut i = 0usize;
        while i < n {
            // One chunk: samples[i..j].
            let mut j = i + 1;
            while samples.get(j).is_some_and(|s| !s.chunk_start) {
                j += 1;
            }
            let mut off = samples[i].offset;
            let (mut t0, mut t1, mut run_start) = (i64::MAX, i64::MIN, off);
            for (k, s) in samples[i..j].iter().enumerate() {
                off = off.saturating_add(u64::from(s.size));
                t0 = t0.min(pts_of(s));
                t1 = t1.max(end_of(s));
                let long = t1.saturating_sub(t0) >= max_run || off - run_start >= SPAN_MAX_BYTES;
                if long && i + k + 1 < j {
                    chunks.push(ChunkSpan {
                        time: t0,
                        end_time: t1,
                        start: run_start,
                        end: off,
                    });
                    (t0, t1, run_start) = (i64::MAX, i64::MIN, off);
                }
            }
            if off > file_size {
                // The tables describe media past the end: a truncated file.
                return Err(ProbeError::Truncated {
                    container: NAME,
                    needed: off,
                    size: file_size,
                });
            }
            chunks.push(ChunkSpan {
                time: t0,
                end_time: t1,
                start: run_start,
                end: off,
            });
            i = j;
        }

        // Sync samples; no stss means every sample is a sync sample.
        let syncs = samples.iter().filter(|s| s.sync).count();
        if syncs > limits::MAX_KEYFRAMES {
            return Err(ProbeError::limit(
                "MAX_KEYFRAMES",
                syncs as u64,
                limits::MAX_KEYFRAMES as u64,
            ));
        }
        let mut keyframes: Vec<Keyframe> = samples
            .iter()
            .filter(|s| s.sync)
            .map(|s| Keyframe {
                pts: pts_of(s),
                offset: s.offset,
            })
            .collect();
        keyframes.sort_by_key(|k| k.pts);
        keyframes.dedup_by_key(|k| k.pts);

        let frame_rate = deltas
            .iter()
            .max_by_key(|(_, c)| *c)
            .filter(|(d, _)| *d > 0)
            .and_then(|&(d, _)| {
                Rational::reduced(u64::from(trak.mdia.mdhd.timescale), u64::from(d))
            });

        Ok(SampleTables {
            count,
            min_pts,
            max_end,
            keyframes,
            chunks,
            frame_rate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_sizes_are_checked() {
        // size 4 (< 8)
        let mut data = vec![0, 0, 0, 4, b'f', b't', b'y', b'p'];
        data.resize(64, 0);
        assert!(crate::probe_bytes(&data).is_err());
        // largesize smaller than the header
        let mut data = vec![0, 0, 0, 1, b'f', b't', b'y', b'p', 0, 0, 0, 0, 0, 0, 0, 8];
        data.resize(64, 0);
        assert!(crate::probe_bytes(&data).is_err());
        // huge moov size
        let mut data = vec![0, 0, 0, 16, b'f', b't', b'y', b'p', 0, 0, 0, 0, 0, 0, 0, 0];
        data.extend_from_slice(&[0xFF, 0xFF, 0xFF, 0xF0, b'm', b'o', b'o', b'v']);
        data.resize(128, 0);
        assert!(crate::probe_bytes(&data).is_err());
        // no moov at all
        let mut data = vec![0, 0, 0, 16, b'f', b't', b'y', b'p', 0, 0, 0, 0, 0, 0, 0, 0];
        data.extend_from_slice(&[0, 0, 0, 16, b'f', b'r', b'e', b'e', 0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(matches!(
            crate::probe_bytes(&data),
            Err(ProbeError::Malformed { .. })
        ));
    }
}
