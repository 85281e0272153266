//! # probe — what is inside a media file, and where every keyframe is
//!
//! Pure parsing, "sans-I/O": the [`Prober`] never reads a file. It says which byte range it needs
//! next ([`Step::Need`]); a driver (the `source` crate, or a test) fetches those bytes and
//! [`Prober::push`]es them; eventually it answers [`Step::Done`] with a [`MediaIndex`]. This keeps
//! the parser free of tokio, HTTP and FFmpeg, lets it be fuzzed on plain byte slices, and makes
//! its upstream cost (requests, bytes) a property we can assert.
//!
//! Containers, detected by magic bytes (never by file name):
//! - ISO BMFF (MP4/MOV, ISO/IEC 14496-12): `moov` at the front or the end, 64-bit box sizes,
//!   `co64`, edit lists; fragmented files through `sidx`, `mfra`/`tfra`, or a `moof` walk.
//!   Box bodies are decoded with `mp4-atom`. See [`mp4`].
//! - Matroska/WebM (RFC 9559): EBML header, SeekHead → Info, Tracks, Cues; without Cues a
//!   bounded cluster scan. Elements are decoded with `ebml-iterable`/`webm-iterable`. See [`mkv`].
//! - MPEG-TS (ISO/IEC 13818-1): PAT/PMT, PES timestamps, random-access points. See [`ts`].
//!
//! The lowest crate, so also the one owner of codec bitstream facts ([`codecs`]: Annex B,
//! H.264, HEVC, AAC, AC-3), timescale arithmetic ([`time`]) and the MP4 box header
//! ([`mp4::boxes`]) that the demuxer and pipeline use too.
//!
//! Hostile input never panics: every read is bounds-checked ([`cursor`]), every count and size is
//! checked against [`limits`] before allocating, and failures are a typed [`ProbeError`].

pub mod codecs;
pub mod cursor;
mod error;
mod index;
pub mod limits;
pub mod mkv;
pub mod mp4;
mod store;
pub mod time;
pub mod ts;

pub use error::{ProbeError, Result};
pub use index::{
    AudioInfo, Codec, Container, Keyframe, MediaIndex, Rational, Span, Track, TrackKind, VideoInfo,
};
pub use store::{ByteRange, Store};

/// Version of what the probe produces for a given file; part of every cache key derived from a
/// [`MediaIndex`]. Bump it whenever the index of the same bytes could change.
pub const INDEX_VERSION: u32 = 2;

/// Bytes read first to recognise the container (and, usually, to find its header structures).
pub const HEAD_BYTES: u64 = 16 * 1024;

/// What the prober wants next.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Fetch these bytes and [`Prober::push`] them (a short read at end of file is fine).
    Need(ByteRange),
    /// Probing is finished.
    Done(Box<MediaIndex>),
}

/// What a container probe answers when polled.
#[derive(Debug)]
pub enum Poll {
    /// Bytes it needs before it can go on.
    Need(ByteRange),
    /// The finished index.
    Done(MediaIndex),
}

/// A container-specific probe state machine. `poll` must be idempotent while the bytes it
/// asked for are missing: it is called again after every push.
pub trait ContainerProbe {
    /// Moves on with what `store` holds.
    fn poll(&mut self, store: &mut Store) -> Result<Poll>;
}

/// Which container a file's first bytes say it is.
pub fn detect(head: &[u8]) -> Option<Container> {
    if head.len() >= 4 && head[..4] == [0x1A, 0x45, 0xDF, 0xA3] {
        // DocType decides Matroska vs WebM; the mkv probe refines it.
        return Some(Container::Matroska);
    }
    if head.len() >= 8 {
        let t = &head[4..8];
        const BOXES: [&[u8; 4]; 10] = [
            b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"styp", b"sidx",
            b"moof",
        ];
        if BOXES.iter().any(|b| t == &b[..]) {
            return Some(Container::Mp4);
        }
    }
    if ts::sync_layout(head).is_some() {
        return Some(Container::MpegTs);
    }
    None
}

enum Stage {
    /// Read the head, then pick the container (or use the forced one).
    Detect(Option<Container>),
    Probe(Box<dyn ContainerProbe + Send>),
    Finished,
}

/// Drives container detection and the container probe. See the crate docs for the loop.
pub struct Prober {
    size: u64,
    store: Store,
    stage: Stage,
    requests: u64,
    bytes: u64,
    pending: Option<ByteRange>,
    /// The `moov` bytes, kept from the store when the probe is done.
    moov: Option<Vec<u8>>,
}

impl std::fmt::Debug for Prober {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prober")
            .field("size", &self.size)
            .field("requests", &self.requests)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl Prober {
    /// A prober for a file of `file_size` bytes.
    pub fn new(file_size: u64) -> Self {
        Prober {
            size: file_size,
            store: Store::default(),
            stage: Stage::Detect(None),
            requests: 0,
            bytes: 0,
            pending: None,
            moov: None,
        }
    }

    /// A prober that skips detection and reads the file as `container` (fuzzing, and callers
    /// that already know the container).
    pub fn for_container(file_size: u64, container: Container) -> Self {
        let mut p = Prober::new(file_size);
        p.stage = Stage::Detect(Some(container));
        p
    }

    /// Requests asked for so far.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// Bytes pushed so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// Once [`Step::Done`]: the `moov` bytes the probe read ([`MediaIndex::moov`]'s range),
    /// when it still held them whole (MP4 with sample tables), so a caller that needs them
    /// does not read them again.
    pub fn take_moov(&mut self) -> Option<Vec<u8>> {
        self.moov.take()
    }

    /// What to do next.
    pub fn poll(&mut self) -> Result<Step> {
        if self.size == 0 {
            return Err(ProbeError::Empty);
        }
        loop {
            match &mut self.stage {
                Stage::Detect(forced) => {
                    let forced = *forced;
                    let end = HEAD_BYTES.min(self.size);
                    let Some(head) = self.store.get(0, end) else {
                        return self.need(ByteRange::new(0, end));
                    };
                    let container = match forced {
                        Some(c) => c,
                        None => detect(head).ok_or_else(|| ProbeError::UnknownFormat {
                            magic: hex_prefix(head),
                        })?,
                    };
                    let probe: Box<dyn ContainerProbe + Send> = match container {
                        Container::Mp4 | Container::FragmentedMp4 => {
                            Box::new(mp4::Mp4Probe::new(self.size))
                        }
                        Container::Matroska | Container::WebM => {
                            Box::new(mkv::MkvProbe::new(self.size))
                        }
                        Container::MpegTs => Box::new(ts::TsProbe::new(self.size)),
                        Container::Universal => {
                            return Err(ProbeError::UnknownFormat {
                                magic: hex_prefix(head),
                            })
                        }
                    };
                    self.stage = Stage::Probe(probe);
                }
                Stage::Probe(p) => match p.poll(&mut self.store)? {
                    Poll::Need(r) => return self.need(r),
                    Poll::Done(mut index) => {
                        self.stage = Stage::Finished;
                        self.moov = index.moov.and_then(|r| self.store.take(r.start, r.end));
                        self.store.clear();
                        check_index(&mut index)?;
                        return Ok(Step::Done(Box::new(index)));
                    }
                },
                Stage::Finished => {
                    return Err(ProbeError::Driver("polled after Done".into()));
                }
            }
        }
    }

    fn need(&mut self, r: ByteRange) -> Result<Step> {
        let r = ByteRange::new(r.start.min(self.size), r.end.min(self.size));
        if r.is_empty() {
            return Err(ProbeError::Truncated {
                container: "file",
                needed: r.end,
                size: self.size,
            });
        }
        if self.pending == Some(r) {
            // Asked again for what we were just given: the probe is not progressing.
            return Err(ProbeError::Driver(format!(
                "bytes {}..{} were pushed but not accepted",
                r.start, r.end
            )));
        }
        self.requests += 1;
        if self.requests > limits::MAX_REQUESTS {
            return Err(ProbeError::limit(
                "MAX_REQUESTS",
                self.requests,
                limits::MAX_REQUESTS,
            ));
        }
        self.pending = Some(r);
        Ok(Step::Need(r))
    }

    /// Hands over the bytes read at `offset` (for the range the last [`Step::Need`] named; a
    /// shorter read means the file ended there).
    pub fn push(&mut self, offset: u64, data: Vec<u8>) -> Result<()> {
        let Some(pending) = self.pending else {
            return Err(ProbeError::Driver("push without a pending request".into()));
        };
        if offset != pending.start || data.len() as u64 > pending.len() {
            return Err(ProbeError::Driver(format!(
                "pushed {} bytes at {offset}, asked for {}..{}",
                data.len(),
                pending.start,
                pending.end
            )));
        }
        if (data.len() as u64) < pending.len() {
            return Err(ProbeError::Truncated {
                container: "file",
                needed: pending.end,
                size: offset + data.len() as u64,
            });
        }
        self.bytes += data.len() as u64;
        // An index-less container (MPEG-TS) is read once in full; nothing needs more than twice
        // the file, and small files keep the fixed cap.
        let cap = (limits::MAX_TOTAL_READ_BYTES + limits::MAX_MOOV_BYTES)
            .max(self.size.saturating_mul(2));
        if self.bytes > cap {
            return Err(ProbeError::limit("MAX_TOTAL_READ_BYTES", self.bytes, cap));
        }
        self.pending = None;
        self.store.push(offset, data)
    }
}

/// Probes an in-memory file: the whole loop, for tests, fuzzing and small inputs.
pub fn probe_bytes(data: &[u8]) -> Result<MediaIndex> {
    drive(Prober::new(data.len() as u64), data)
}

/// Probes an in-memory file as `container`, skipping detection (the fuzz targets use this).
pub fn probe_bytes_as(container: Container, data: &[u8]) -> Result<MediaIndex> {
    if data.is_empty() {
        return Err(ProbeError::Empty);
    }
    drive(Prober::for_container(data.len() as u64, container), data)
}

fn drive(mut p: Prober, data: &[u8]) -> Result<MediaIndex> {
    loop {
        match p.poll()? {
            Step::Need(r) => {
                let a = usize::try_from(r.start)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                let b = usize::try_from(r.end).unwrap_or(usize::MAX).min(data.len());
                p.push(r.start, data[a..b].to_vec())?;
            }
            Step::Done(index) => return Ok(*index),
        }
    }
}

/// Checks a finished index against the limits no container may exceed: times within
/// [`limits::MAX_DURATION_SECS`] (duration, start, every track's start and duration, every
/// keyframe), keyframes no denser than [`limits::MAX_KEYFRAMES_PER_SEC`], and its heap within
/// [`limits::MAX_INDEX_BYTES`]. Vectors are shrunk to their length first so
/// [`MediaIndex::heap_bytes`] is what the caller will hold.
pub fn check_index(index: &mut MediaIndex) -> Result<()> {
    let ts = u64::from(index.timescale.max(1));
    let max_ticks = limits::MAX_DURATION_SECS.saturating_mul(ts);
    // Seconds (rounded up) of `ticks` at `scale`, as the limit error's value.
    let too_long = |ticks: u64, scale: u64| -> ProbeError {
        ProbeError::limit(
            "MAX_DURATION_SECS",
            ticks.div_ceil(scale.max(1)),
            limits::MAX_DURATION_SECS,
        )
    };
    if index.duration > max_ticks {
        return Err(too_long(index.duration, ts));
    }
    if index.start.unsigned_abs() > max_ticks {
        return Err(too_long(index.start.unsigned_abs(), ts));
    }
    for t in &index.tracks {
        let tts = u64::from(t.timescale.max(1));
        let tmax = limits::MAX_DURATION_SECS.saturating_mul(tts);
        if let Some(d) = t.duration.filter(|&d| d > tmax) {
            return Err(too_long(d, tts));
        }
        if let Some(s) = t.start.filter(|s| s.unsigned_abs() > tmax) {
            return Err(too_long(s.unsigned_abs(), tts));
        }
    }
    if let Some(k) = index
        .keyframes
        .iter()
        .find(|k| k.pts.unsigned_abs() > max_ticks.saturating_mul(2))
    {
        return Err(too_long(k.pts.unsigned_abs(), ts));
    }
    let secs = index.duration / ts + 1;
    let max_keys = secs.saturating_mul(limits::MAX_KEYFRAMES_PER_SEC) + 1;
    if index.keyframes.len() as u64 > max_keys {
        return Err(ProbeError::limit(
            "MAX_KEYFRAMES_PER_SEC",
            index.keyframes.len() as u64,
            max_keys,
        ));
    }
    index.keyframes.shrink_to_fit();
    index.spans.shrink_to_fit();
    index.tracks.shrink_to_fit();
    let heap = index.heap_bytes() as u64;
    if heap > limits::MAX_INDEX_BYTES {
        return Err(ProbeError::limit(
            "MAX_INDEX_BYTES",
            heap,
            limits::MAX_INDEX_BYTES,
        ));
    }
    Ok(())
}

fn hex_prefix(b: &[u8]) -> String {
    b.iter().take(8).map(|x| format!("{x:02x}")).collect()
}

/// Chooses the main track: the first video track that is not a cover picture, else the first
/// audio track.
pub fn choose_main_track(tracks: &[Track]) -> Option<usize> {
    tracks
        .iter()
        .position(|t| t.kind == TrackKind::Video)
        .or_else(|| tracks.iter().position(|t| t.kind == TrackKind::Audio))
}
