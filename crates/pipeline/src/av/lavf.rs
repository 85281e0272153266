//! Sources the native probes do not parse (FLAC, MP3, Ogg, WAV, AIFF, AVI, FLV, ASF/WMV, M2TS,
//! MPEG-PS…), read through libavformat.
//!
//! **Index** ([`scan`]): libavformat opens the file through a blocking `Read + Seek` over the
//! source (range reads), then reads every packet once, without decoding, and records per packet
//! its track, byte position, size, timestamps and keyframe flag: the *packet table*. From it come
//! the same [`MediaIndex`] the native probes give (tracks, keyframes with positions, spans from
//! time ranges to byte ranges, exact durations), so planning, EXTINF and joins follow the same
//! rules as for every other source. The table and the file's head (the bytes before its first
//! packet, plus a margin) are kept beside the index as the demuxer's tables ([`Tables`]).
//!
//! **Segments** ([`LavfDemuxer::frames`]): libavformat opens a *sparse* file holding only the
//! head and the segment's byte range (reads elsewhere are end of file), seeks by byte to the
//! range, and reads packets. Each packet is matched to its table entry by track, position and
//! size; timestamps and keyframe flags come from the table, never from a demuxer that started in
//! the middle of a file, so a segment's frames are the same whichever segment was made first.
//!
//! Limits ([`MAX_TABLE_PACKETS`], [`MAX_HEAD_BYTES`], [`MAX_STREAMS`], [`MAX_PACKET_BYTES`],
//! [`SCAN_DEADLINE`]) bound what a file may claim or cost; everything here is blocking work.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ff::format::context::StreamIo;
use ffmpeg_next as ff;
use probe::codecs::{annexb, h264, hevc};
use probe::time::rescale;
use probe::{
    AudioInfo, Codec, Container, Keyframe, MediaIndex, Rational, Span, Track, TrackKind, VideoInfo,
};

use super::AvError;

/// Most packets a universal source may have (≈ 10 h of 25 fps video with 48 kHz AAC).
pub const MAX_TABLE_PACKETS: usize = 3_000_000;
/// Most bytes kept of what libavformat reads while opening a file (its header structures, see
/// [`Tables`]); what is read beyond it is not kept (a demuxer then meets end of file there).
pub const MAX_HEAD_BYTES: u64 = 16 << 20;
/// Most separate pieces of held bytes.
const MAX_HELD_PIECES: usize = 4096;
/// Bytes of media kept from the first packet on, so a demuxer that reads its first frame while
/// opening (MP3's Xing header) finds it.
pub const HEAD_MARGIN: u64 = 64 << 10;
/// Most streams a universal source may declare.
pub const MAX_STREAMS: usize = 64;
/// Largest single packet.
pub const MAX_PACKET_BYTES: usize = 64 << 20;
/// How long the packet scan of one file may take.
pub const SCAN_DEADLINE: Duration = Duration::from_secs(300);
/// Read errors in a row after which a scan stops (what was read so far is the file).
const MAX_READ_ERRORS: u32 = 64;
/// Bytes libavformat may read to detect the format and stream parameters.
const PROBE_SIZE: &str = "5000000";
/// Microseconds of media libavformat may analyse for stream parameters.
const ANALYZE_US: &str = "5000000";
/// Most table entries looked at for the packet a demuxer read at a position (an Ogg page or an
/// ASF packet holds several).
const MAX_SAME_POSITION: usize = 1024;
/// Bytes a span reaches back before its first packet (see `index_of`).
const SYNC_LEAD: u64 = 4096;
/// Spans of audio-only sources: one per this many packets.
const AUDIO_SPAN_PACKETS: usize = 32;
/// Magic of the serialised [`Tables`].
const MAGIC: &[u8; 8] = b"HLSGLAV1";

/// Containers libavformat recognises that are not media files we should play (images, text,
/// playlists, device and virtual inputs).
const REFUSED_FORMATS: &[&str] = &[
    "image2",
    "tty",
    "hls",
    "dash",
    "concat",
    "lavfi",
    "ffmetadata",
    "srt",
    "ass",
    "webvtt",
    "subviewer",
    "microdvd",
    "mpl2",
    "jacosub",
    "sami",
    "realtext",
    "subviewer1",
    "vplayer",
    "pjs",
    "stl",
    "lrc",
    "scc",
    "mcc",
    "sup",
    "vobsub",
    "txt",
    "bin",
    "data",
];

/// One packet of the table. Times are in the track's ticks ([`Track::timescale`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    pos: u64,
    pts: i64,
    dts: i64,
    size: u32,
    duration: u32,
    track: u16,
    key: bool,
    /// FNV-1a of the packet's bytes: packets that share a position (several in one Ogg page,
    /// one ASF packet) and a size are told apart by it.
    sum: u32,
}

const ENTRY_BYTES: usize = 8 + 8 + 8 + 4 + 4 + 2 + 1 + 4;

/// FNV-1a (32 bits) of `data`: an identity check of a packet, not a security measure.
fn fnv1a(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// What a universal source's demuxer keeps beside its index: the head bytes and the packet
/// table, with each track's tick multiplier (libavformat's time base `num/den` becomes a
/// timescale of `den` with timestamps multiplied by `num`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tables {
    /// The bytes libavformat read while opening the file (its header structures: an MP4
    /// `moov` at the end, Ogg's setup pages, a FLAC picture), as sorted `(offset, bytes)`
    /// pieces, plus the first packet's bytes.
    held: Vec<(u64, Vec<u8>)>,
    /// Per libavformat stream index: the track id, or `None` for streams not kept.
    streams: Vec<Option<StreamMap>>,
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StreamMap {
    track: u16,
    mult: i64,
}

impl Tables {
    /// Serialises the tables (the index cache stores them beside the index).
    pub fn to_bytes(&self) -> Vec<u8> {
        let held: usize = self.held.iter().map(|(_, b)| 12 + b.len()).sum();
        let mut out = Vec::with_capacity(
            MAGIC.len() + 12 + held + self.streams.len() * 11 + self.entries.len() * ENTRY_BYTES,
        );
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.held.len() as u32).to_be_bytes());
        for (at, b) in &self.held {
            out.extend_from_slice(&at.to_be_bytes());
            out.extend_from_slice(&(b.len() as u32).to_be_bytes());
            out.extend_from_slice(b);
        }
        out.extend_from_slice(&(self.streams.len() as u32).to_be_bytes());
        for s in &self.streams {
            match s {
                Some(m) => {
                    out.push(1);
                    out.extend_from_slice(&m.track.to_be_bytes());
                    out.extend_from_slice(&m.mult.to_be_bytes());
                }
                None => out.push(0),
            }
        }
        out.extend_from_slice(&(self.entries.len() as u32).to_be_bytes());
        for e in &self.entries {
            out.extend_from_slice(&e.pos.to_be_bytes());
            out.extend_from_slice(&e.pts.to_be_bytes());
            out.extend_from_slice(&e.dts.to_be_bytes());
            out.extend_from_slice(&e.size.to_be_bytes());
            out.extend_from_slice(&e.duration.to_be_bytes());
            out.extend_from_slice(&e.track.to_be_bytes());
            out.push(u8::from(e.key));
            out.extend_from_slice(&e.sum.to_be_bytes());
        }
        out
    }

    /// Reads what [`Tables::to_bytes`] wrote; every count is checked against the limits and the
    /// bytes that exist before anything is allocated.
    pub fn from_bytes(b: &[u8]) -> Result<Tables, AvError> {
        let bad = |what: &str| AvError::InvalidParams(format!("universal tables: {what}"));
        let mut r = Cursor { b, at: 0 };
        if r.take(MAGIC.len()).ok_or_else(|| bad("short"))? != MAGIC {
            return Err(bad("not ours"));
        }
        let n_held = r.u32().ok_or_else(|| bad("short"))? as usize;
        if n_held > MAX_HELD_PIECES {
            return Err(bad("too many held pieces"));
        }
        let mut held = Vec::with_capacity(n_held);
        let mut total = 0u64;
        for _ in 0..n_held {
            let at = r.u64().ok_or_else(|| bad("short"))?;
            let len = r.u32().ok_or_else(|| bad("short"))?;
            total += u64::from(len);
            if total > MAX_HEAD_BYTES {
                return Err(bad("held bytes over the limit"));
            }
            let b = r
                .take(len as usize)
                .ok_or_else(|| bad("short piece"))?
                .to_vec();
            held.push((at, b));
        }
        let n_streams = r.u32().ok_or_else(|| bad("short"))? as usize;
        if n_streams > MAX_STREAMS {
            return Err(bad("too many streams"));
        }
        let mut streams = Vec::with_capacity(n_streams);
        for _ in 0..n_streams {
            match r.take(1).ok_or_else(|| bad("short"))?[0] {
                0 => streams.push(None),
                _ => {
                    let track = r.u16().ok_or_else(|| bad("short"))?;
                    let mult = r.i64().ok_or_else(|| bad("short"))?;
                    streams.push(Some(StreamMap { track, mult }));
                }
            }
        }
        let n = r.u32().ok_or_else(|| bad("short"))? as usize;
        if n > MAX_TABLE_PACKETS || n.saturating_mul(ENTRY_BYTES) > b.len() - r.at {
            return Err(bad("packet count over the limit or the bytes"));
        }
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            let e = (|| {
                Some(Entry {
                    pos: r.u64()?,
                    pts: r.i64()?,
                    dts: r.i64()?,
                    size: r.u32()?,
                    duration: r.u32()?,
                    track: r.u16()?,
                    key: r.take(1)?[0] != 0,
                    sum: r.u32()?,
                })
            })()
            .ok_or_else(|| bad("short entry"))?;
            entries.push(e);
        }
        Ok(Tables {
            held,
            streams,
            entries,
        })
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.held
            .iter()
            .map(|(_, b)| b.capacity() + 8)
            .sum::<usize>()
            + self.streams.capacity() * std::mem::size_of::<Option<StreamMap>>()
            + self.entries.capacity() * std::mem::size_of::<Entry>()
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
}

/// Where a scan's reads go.
pub trait ScanRead: Read + Seek + Send + 'static {}
impl<T: Read + Seek + Send + 'static> ScanRead for T {}

fn open<R: ScanRead>(reader: R, deadline: Instant) -> Result<ff::format::context::Input, AvError> {
    super::init()?;
    let io = StreamIo::from_read_seek(reader).map_err(AvError::ff("opening the reader"))?;
    let mut opts = ff::Dictionary::new();
    opts.set("probesize", PROBE_SIZE);
    opts.set("analyzeduration", ANALYZE_US);
    ff::format::input_from_stream_with_interrupt(io, None, Some(opts), move || {
        Instant::now() > deadline
    })
    .map_err(AvError::ff("opening the container"))
}

/// A file libavformat read: its index and its demuxer's tables.
#[derive(Debug)]
pub struct Scanned {
    /// The index (container [`Container::Universal`]).
    pub index: MediaIndex,
    /// The demuxer's tables.
    pub tables: Tables,
}

/// Indexes a file the native probes do not know: open, read every packet (no decoding), build
/// the [`MediaIndex`] and the packet table. `reader` reads the file; `size` is its length.
///
/// `cut`: the file is known to be cut short (the native probe found a structure running past
/// its end). A cut or damaged file is indexed up to where every track is whole
/// ([`trim_to_whole`]).
pub fn scan<R: ScanRead, F: FnOnce() -> Result<R, std::io::Error>>(
    reader: R,
    reopen: F,
    size: u64,
    cut: bool,
) -> Result<Scanned, AvError> {
    let deadline = Instant::now() + SCAN_DEADLINE;
    let log = Arc::new(Mutex::new(ReadLog::default()));
    let mut ictx = open(
        Recorder {
            inner: reader,
            pos: 0,
            log: Arc::clone(&log),
        },
        deadline,
    )?;
    let opened = {
        let mut l = log.lock().unwrap_or_else(|p| p.into_inner());
        l.done = true;
        std::mem::take(&mut l.ranges)
    };
    let format = ictx.format().name().to_string();
    if REFUSED_FORMATS.contains(&format.as_str()) || format.ends_with("_pipe") {
        return Err(AvError::UnsupportedCodec(format!(
            "{format} is not a media container"
        )));
    }
    if ictx.nb_streams() as usize > MAX_STREAMS {
        return Err(AvError::Limit {
            what: "streams",
            value: u64::from(ictx.nb_streams()),
            max: MAX_STREAMS as u64,
        });
    }
    let mut tracks = Vec::new();
    let mut streams = Vec::new();
    // Where each track's presentation starts, as libavformat says (after an encoder delay that
    // MP3's LAME header, Opus's pre-skip or a Vorbis priming packet state).
    let mut presented: HashMap<u16, i64> = HashMap::new();
    for st in ictx.streams() {
        let t = track_of(&st);
        match t {
            Some((track, mult)) => {
                let st_start = st.start_time();
                if st_start != ff::ffi::AV_NOPTS_VALUE {
                    presented.insert(track.id as u16, st_start.saturating_mul(mult));
                }
                streams.push(Some(StreamMap {
                    track: track.id as u16,
                    mult,
                }));
                tracks.push(track);
            }
            None => streams.push(None),
        }
    }
    if tracks
        .iter()
        .all(|t| !matches!(t.kind, TrackKind::Video | TrackKind::Audio))
    {
        return Err(AvError::NoFrames("no audio or video stream"));
    }
    let mut entries: Vec<Entry> = Vec::new();
    let mut next_dts: HashMap<u16, i64> = HashMap::new();
    let mut errors = 0u32;
    // Read errors and packets libavformat flagged corrupt: a damaged or cut file.
    let mut damaged = 0u64;
    let mut first_pos = u64::MAX;
    let mut padding: HashMap<u16, u32> = HashMap::new();
    let mut ends: Vec<u64> = Vec::new();
    loop {
        let mut pkt = ff::Packet::empty();
        match pkt.read(&mut ictx) {
            Ok(()) => errors = 0,
            Err(ff::Error::Eof) => break,
            Err(ff::Error::Exit) => {
                return Err(AvError::Limit {
                    what: "seconds to read the file",
                    value: SCAN_DEADLINE.as_secs(),
                    max: SCAN_DEADLINE.as_secs(),
                })
            }
            Err(_) => {
                // A damaged stretch: libavformat resynchronises on the next read; a file that
                // only fails has ended (a truncated download plays to its last packet).
                errors += 1;
                damaged += 1;
                if errors >= MAX_READ_ERRORS {
                    break;
                }
                continue;
            }
        }
        let Some(Some(map)) = streams.get(pkt.stream()).copied() else {
            continue;
        };
        if pkt.is_corrupt() {
            damaged += 1;
            continue;
        }
        if pkt.size() == 0 {
            continue;
        }
        if pkt.size() > MAX_PACKET_BYTES {
            return Err(AvError::Limit {
                what: "packet bytes",
                value: pkt.size() as u64,
                max: MAX_PACKET_BYTES as u64,
            });
        }
        let Ok(pos) = u64::try_from(pkt.position()) else {
            return Err(AvError::InvalidParams(format!(
                "{format}: packets without a byte position cannot be indexed"
            )));
        };
        if pos >= size {
            continue;
        }
        if entries.len() >= MAX_TABLE_PACKETS {
            return Err(AvError::Limit {
                what: "packets",
                value: entries.len() as u64 + 1,
                max: MAX_TABLE_PACKETS as u64,
            });
        }
        let m = map.mult;
        // Encoder padding (MP3's LAME header, as libavformat reports it): samples to drop at
        // the end of this packet.
        for sd in pkt.side_data() {
            if sd.kind() == ff::codec::packet::side_data::Type::SkipSamples {
                if let Some(b) = sd.data().get(4..8) {
                    padding.insert(map.track, u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                }
            }
        }
        let dur = pkt.duration().max(0).saturating_mul(m);
        let guess = next_dts.get(&map.track).copied();
        let dts = pkt.dts().map(|d| d.saturating_mul(m)).or(guess);
        let pts = pkt.pts().map(|p| p.saturating_mul(m)).or(dts).or(guess);
        // A stream's very first packet without times starts at 0.
        let (pts, dts) = match (pts, dts.or(pts)) {
            (Some(p), Some(d)) => (p, d),
            _ => (0, 0),
        };
        next_dts.insert(map.track, dts.saturating_add(dur));
        first_pos = first_pos.min(pos);
        entries.push(Entry {
            pos,
            pts,
            dts,
            size: pkt.size() as u32,
            duration: u32::try_from(dur).unwrap_or(0),
            track: map.track,
            key: pkt.is_key(),
            sum: fnv1a(pkt.data().unwrap_or_default()),
        });
        // How far the demuxer had read to give this packet: its stored bytes end there at the
        // latest (an ASF or Ogg packet continues in later container packets or pages).
        // SAFETY: `ictx` is a live, opened input; `pb` is its AVIOContext and a zero SEEK_CUR
        // seek only reports the position.
        let read_to = unsafe { ff::ffi::avio_seek((*ictx.as_ptr()).pb, 0, 1) };
        ends.push(
            u64::try_from(read_to)
                .unwrap_or(0)
                .max(pos.saturating_add(pkt.size() as u64))
                .min(size),
        );
    }
    drop(ictx);
    fill_durations(&mut entries);
    if cut || damaged > 0 {
        trim_to_whole(&mut entries, &mut ends, &tracks);
    }
    apply_padding(&mut entries, &tracks, &padding);
    let index = index_of(&format, size, tracks, &entries, &ends, &presented)?;
    // Held: what the demuxer read while opening, and the start of the media (a demuxer that
    // reads its first frame while opening, MP3's Xing header, finds it), within the budget.
    let mut ranges = opened;
    if first_pos != u64::MAX {
        ranges.push((first_pos, first_pos.saturating_add(HEAD_MARGIN).min(size)));
    }
    let ranges = merge_ranges(ranges);
    let mut held = Vec::new();
    let mut budget = MAX_HEAD_BYTES;
    let mut r = reopen().map_err(|e| AvError::InvalidParams(format!("reading the head: {e}")))?;
    for (a, b) in ranges {
        let b = b.min(size).min(a.saturating_add(budget));
        if b <= a || held.len() >= MAX_HELD_PIECES {
            continue;
        }
        let mut buf = vec![0u8; (b - a) as usize];
        r.seek(SeekFrom::Start(a))
            .and_then(|_| r.read_exact(&mut buf))
            .map_err(|e| AvError::InvalidParams(format!("reading the head: {e}")))?;
        budget -= b - a;
        held.push((a, buf));
    }
    Ok(Scanned {
        index,
        tables: Tables {
            held,
            streams,
            entries,
        },
    })
}

/// Byte ranges read through a [`Recorder`].
#[derive(Debug, Default)]
struct ReadLog {
    ranges: Vec<(u64, u64)>,
    /// Logging stopped (opening is over).
    done: bool,
}

/// A reader that logs the ranges read through it (while opening: see [`scan`]).
struct Recorder<R> {
    inner: R,
    pos: u64,
    log: Arc<Mutex<ReadLog>>,
}

impl<R: Read> Read for Recorder<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
            if !log.done && log.ranges.len() < MAX_HELD_PIECES * 4 {
                log.ranges.push((self.pos, self.pos + n as u64));
            }
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Seek> Seek for Recorder<R> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        self.pos = self.inner.seek(to)?;
        Ok(self.pos)
    }
}

/// Sorted, merged copies of `ranges` (touching ranges join).
fn merge_ranges(mut ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    ranges.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
    for (a, b) in ranges {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// Encoder padding of MPEG audio (the LAME header's, as libavformat reports it in the last
/// packet's side data, samples at the track's rate): the MP3 demuxer leaves the last frame its
/// full length, so it is shortened here and the track ends where the encoder's input ended.
/// (Ogg's demuxer already gives the last packet its trimmed duration.)
fn apply_padding(entries: &mut [Entry], tracks: &[Track], padding: &HashMap<u16, u32>) {
    for t in tracks {
        if !matches!(t.codec, Codec::Mp3 | Codec::Mp2) {
            continue;
        }
        let Some(&pad) = padding.get(&(t.id as u16)) else {
            continue;
        };
        let rate = t.audio.as_ref().map_or(0, |a| a.sample_rate);
        if rate == 0 || pad == 0 {
            continue;
        }
        let pad = rescale(i64::from(pad), i64::from(t.timescale), i64::from(rate));
        if let Some(e) = entries.iter_mut().rev().find(|e| e.track == t.id as u16) {
            let d = i64::from(e.duration).saturating_sub(pad).max(0);
            e.duration = u32::try_from(d).unwrap_or(0);
        }
    }
}

/// Ends every audio and video track where the first of them stops being whole: each track's
/// frames, in presentation order, are followed until the first gap of more than half a frame (a
/// frame stored past the cut, B-frames missing before a P-frame that made it); every frame
/// that would end after the earliest such end is dropped from the table, so all tracks stop
/// together (no rendition's playlist claims what another's bytes lack).
fn trim_to_whole(entries: &mut Vec<Entry>, ends: &mut Vec<u64>, tracks: &[Track]) {
    let mut cut_secs = f64::INFINITY;
    for t in tracks {
        if !matches!(t.kind, TrackKind::Video | TrackKind::Audio) || t.timescale == 0 {
            continue;
        }
        let id = t.id as u16;
        let mut frames: Vec<(i64, i64)> = entries
            .iter()
            .filter(|e| e.track == id)
            .map(|e| (e.pts, i64::from(e.duration)))
            .collect();
        if frames.is_empty() {
            continue;
        }
        frames.sort_unstable();
        let mut durs: Vec<i64> = frames.iter().map(|f| f.1).collect();
        durs.sort_unstable();
        let typical = durs[durs.len() / 2].max(1);
        let mut end = frames[0].0 + frames[0].1;
        for w in frames.windows(2) {
            if w[1].0 - (w[0].0 + w[0].1) > typical / 2 {
                break;
            }
            end = w[1].0 + w[1].1;
        }
        cut_secs = cut_secs.min(end as f64 / f64::from(t.timescale));
    }
    if !cut_secs.is_finite() {
        return;
    }
    let scale: HashMap<u16, u32> = tracks.iter().map(|t| (t.id as u16, t.timescale)).collect();
    let keep: Vec<bool> = entries
        .iter()
        .map(|e| {
            let ts = f64::from(scale.get(&e.track).copied().unwrap_or(1).max(1));
            ((e.pts + i64::from(e.duration)) as f64) / ts <= cut_secs + 1e-9
        })
        .collect();
    let mut k = keep.iter();
    entries.retain(|_| *k.next().unwrap_or(&true));
    let mut k = keep.iter();
    ends.retain(|_| *k.next().unwrap_or(&true));
}

/// A zero duration (libavformat did not know it) becomes the gap to the track's next packet in
/// decode order, or the track's previous duration for its last packet.
fn fill_durations(entries: &mut [Entry]) {
    let mut last: HashMap<u16, usize> = HashMap::new();
    for i in 0..entries.len() {
        let t = entries[i].track;
        if let Some(&p) = last.get(&t) {
            if entries[p].duration == 0 {
                let gap = entries[i].dts.saturating_sub(entries[p].dts);
                entries[p].duration = u32::try_from(gap.max(0)).unwrap_or(0);
            }
        }
        last.insert(t, i);
    }
    let mut prev: HashMap<u16, u32> = HashMap::new();
    for e in entries.iter_mut() {
        if e.duration == 0 {
            e.duration = prev.get(&e.track).copied().unwrap_or(0);
        }
        prev.insert(e.track, e.duration);
    }
}

/// The track of a libavformat stream, with its tick multiplier; `None` for streams not played
/// (cover pictures, data, attachments).
fn track_of(st: &ff::format::stream::Stream) -> Option<(Track, i64)> {
    use ff::codec::Id;
    let par = st.parameters();
    let kind = match par.medium() {
        ff::media::Type::Video => TrackKind::Video,
        ff::media::Type::Audio => TrackKind::Audio,
        ff::media::Type::Subtitle => TrackKind::Subtitle,
        _ => return None,
    };
    if st
        .disposition()
        .contains(ff::format::stream::Disposition::ATTACHED_PIC)
    {
        return None;
    }
    let tb = st.time_base();
    let (num, den) = (tb.numerator(), tb.denominator());
    if num <= 0 || den <= 0 {
        return None;
    }
    let id = par.id();
    let codec = match id {
        Id::H264 => Codec::H264,
        Id::HEVC => Codec::Hevc,
        Id::AV1 => Codec::Av1,
        Id::VP8 => Codec::Vp8,
        Id::VP9 => Codec::Vp9,
        Id::MPEG2VIDEO | Id::MPEG1VIDEO => Codec::Mpeg2Video,
        Id::MPEG4 => Codec::Mpeg4Part2,
        Id::AAC => Codec::Aac,
        Id::AC3 => Codec::Ac3,
        Id::EAC3 => Codec::Eac3,
        Id::DTS => Codec::Dts,
        Id::TRUEHD => Codec::TrueHd,
        Id::MP3 => Codec::Mp3,
        Id::MP2 | Id::MP1 => Codec::Mp2,
        Id::OPUS => Codec::Opus,
        Id::VORBIS => Codec::Vorbis,
        Id::FLAC => Codec::Flac,
        Id::SUBRIP | Id::TEXT => Codec::Srt,
        Id::ASS | Id::SSA => Codec::Ass,
        Id::WEBVTT => Codec::WebVtt,
        Id::MOV_TEXT => Codec::MovText,
        Id::None => return None,
        // Everything else is decoded by FFmpeg's decoder of that name and transcoded.
        other => {
            let name = ff::decoder::find(other)?.name().to_string();
            Codec::Other(name)
        }
    };
    // SAFETY: `par` wraps the stream's live AVCodecParameters (owned by the format context,
    // which outlives this borrow); we read plain fields and copy the extradata out.
    let (extradata, sample_rate, channels, bits, block_align, bit_rate, width, height) = unsafe {
        let p = par.as_ptr();
        let extra = if (*p).extradata.is_null() || (*p).extradata_size <= 0 {
            Vec::new()
        } else {
            std::slice::from_raw_parts((*p).extradata, (*p).extradata_size as usize).to_vec()
        };
        (
            extra,
            (*p).sample_rate,
            (*p).channels,
            (*p).bits_per_coded_sample,
            (*p).block_align,
            (*p).bit_rate,
            (*p).width,
            (*p).height,
        )
    };
    if extradata.len() > super::limits::MAX_EXTRADATA {
        return None;
    }
    let mut track = Track {
        id: st.index() as u64 + 1,
        kind,
        codec,
        timescale: u32::try_from(den).ok()?,
        duration: None,
        language: st
            .metadata()
            .get("language")
            .filter(|l| !l.is_empty() && *l != "und")
            .map(str::to_string),
        title: st.metadata().get("title").map(str::to_string),
        default: st
            .disposition()
            .contains(ff::format::stream::Disposition::DEFAULT),
        forced: st
            .disposition()
            .contains(ff::format::stream::Disposition::FORCED),
        codec_private: extradata,
        video: None,
        audio: None,
        start: None,
        default_duration_ns: None,
        codec_delay_ns: None,
    };
    match kind {
        TrackKind::Video => {
            let rate = [st.avg_frame_rate(), st.rate()]
                .into_iter()
                .filter(|r| r.numerator() > 0 && r.denominator() > 0)
                .find_map(|r| Rational::reduced(r.numerator() as u64, r.denominator() as u64));
            let mut v = VideoInfo {
                width: u32::try_from(width).unwrap_or(0),
                height: u32::try_from(height).unwrap_or(0),
                frame_rate: rate,
                ..VideoInfo::default()
            };
            video_config(&mut track, &mut v);
            track.video = Some(v);
        }
        TrackKind::Audio => {
            track.audio = Some(AudioInfo {
                sample_rate: u32::try_from(sample_rate).unwrap_or(0),
                channels: u16::try_from(channels).unwrap_or(0),
                aac_object_type: None,
                bits_per_sample: u16::try_from(bits).ok().filter(|&b| b > 0),
                block_align: u32::try_from(block_align).ok().filter(|&b| b > 0),
                bit_rate: u64::try_from(bit_rate).ok().filter(|&b| b > 0),
            });
            if track.codec == Codec::Aac && track.codec_private.len() >= 2 {
                if let Some(a) = track.audio.as_mut() {
                    a.aac_object_type = Some(track.codec_private[0] >> 3);
                }
            } else if track.codec == Codec::Aac {
                // ADTS in the packets and no AudioSpecificConfig: decoded and re-encoded.
                track.codec = Codec::Other("aac".into());
            }
        }
        _ => {}
    }
    Some((track, i64::from(num)))
}

/// H.264 / HEVC: the configuration record the output needs (avcC / hvcC) and the facts in it.
/// Annex B parameter sets (AVI, MPEG-PS, M2TS extradata) are rewritten as a record; a stream
/// whose record cannot be built is decoded by name and transcoded.
fn video_config(track: &mut Track, v: &mut VideoInfo) {
    let cp = &track.codec_private;
    match track.codec {
        Codec::H264 => {
            if cp.first() != Some(&1) {
                let nals: Vec<&[u8]> = annexb::nal_units(cp).collect();
                let sps: Vec<&[u8]> = nals
                    .iter()
                    .copied()
                    .filter(|n| n.first().map(|&b| h264::nal_type(b)) == Some(7))
                    .collect();
                let pps: Vec<&[u8]> = nals
                    .iter()
                    .copied()
                    .filter(|n| n.first().map(|&b| h264::nal_type(b)) == Some(8))
                    .collect();
                match h264::avcc(&sps, &pps) {
                    Some(rec) => track.codec_private = rec,
                    None => {
                        track.codec = Codec::Other("h264".into());
                        return;
                    }
                }
            }
            if let Some((info, _)) = h264::parse_avcc(&track.codec_private) {
                merge_video(v, info);
            }
        }
        Codec::Hevc => {
            if cp.first() != Some(&1) {
                // hvcC from Annex B needs every parameter set; decoded and transcoded instead.
                track.codec = Codec::Other("hevc".into());
                return;
            }
            if let Some(info) = hevc::parse_hvcc(&track.codec_private) {
                merge_video(v, info);
            }
        }
        _ => {}
    }
}

fn merge_video(v: &mut VideoInfo, info: VideoInfo) {
    let (w, h, rate) = (v.width, v.height, v.frame_rate);
    *v = info;
    if v.width == 0 {
        v.width = w;
    }
    if v.height == 0 {
        v.height = h;
    }
    if rate.is_some() {
        v.frame_rate = rate;
    }
}

fn index_of(
    format: &str,
    size: u64,
    mut tracks: Vec<Track>,
    entries: &[Entry],
    ends: &[u64],
    presented: &HashMap<u16, i64>,
) -> Result<MediaIndex, AvError> {
    // Per track: first presented time and end of the last.
    let mut bounds: HashMap<u16, (i64, i64)> = HashMap::new();
    for e in entries {
        let b = bounds.entry(e.track).or_insert((i64::MAX, i64::MIN));
        b.0 = b.0.min(e.pts);
        b.1 = b.1.max(e.pts.saturating_add(i64::from(e.duration)));
    }
    tracks.retain(|t| bounds.contains_key(&(t.id as u16)));
    for t in &mut tracks {
        if let Some(&(s, e)) = bounds.get(&(t.id as u16)) {
            // `start` is the first frame (priming included, as for MP4); the duration is what
            // is presented: from libavformat's start time when it is later (an edit list or
            // an encoder delay hides the first samples).
            let shown = presented
                .get(&(t.id as u16))
                .copied()
                .filter(|&p| p > s && p < e)
                .unwrap_or(s);
            t.start = Some(s);
            t.duration = u64::try_from(e.saturating_sub(shown)).ok();
        }
    }
    let main = tracks
        .iter()
        .position(|t| t.kind == TrackKind::Video)
        .or_else(|| tracks.iter().position(|t| t.kind == TrackKind::Audio))
        .ok_or(AvError::NoFrames("no audio or video packet"))?;
    let mt = &tracks[main];
    let (main_id, ts) = (mt.id as u16, mt.timescale);
    let tss: HashMap<u16, u32> = tracks.iter().map(|t| (t.id as u16, t.timescale)).collect();
    let to_main = |track: u16, t: i64| -> i64 {
        let from = tss.get(&track).copied().unwrap_or(ts);
        if from == ts {
            t
        } else {
            rescale(t, i64::from(ts), i64::from(from))
        }
    };
    // An audio-only file presents from where libavformat says its audio starts (frames before
    // it decode but are not shown, as AAC priming in an MP4); video from its first frame.
    let first = mt.start.unwrap_or(0);
    let end = first.saturating_add(i64::try_from(mt.duration.unwrap_or(0)).unwrap_or(i64::MAX));
    let start = match presented.get(&main_id) {
        Some(&p) if mt.kind == TrackKind::Audio && p > first && p < end => p,
        _ => first,
    };
    let duration = u64::try_from(end.saturating_sub(start)).unwrap_or(0);
    let video = mt.kind == TrackKind::Video;
    let mut keyframes: Vec<Keyframe> = entries
        .iter()
        .filter(|e| video && e.track == main_id && e.key)
        .map(|e| Keyframe {
            pts: e.pts,
            offset: e.pos,
        })
        .collect();
    keyframes.sort_by_key(|k| k.pts);
    // Spans: storage runs cut at each main keyframe (video) or every few packets (audio), each
    // covering the decode-to-presentation times of all its packets.
    let mut spans: Vec<Span> = Vec::new();
    let mut cur: Option<Span> = None;
    let mut in_run = 0usize;
    for (i, e) in entries.iter().enumerate() {
        let cut = if video {
            e.track == main_id && e.key
        } else {
            in_run >= AUDIO_SPAN_PACKETS
        };
        if cut {
            if let Some(s) = cur.take() {
                spans.push(s);
            }
            in_run = 0;
        }
        let t0 = to_main(e.track, e.dts.min(e.pts));
        let t1 = to_main(
            e.track,
            e.pts.max(e.dts).saturating_add(i64::from(e.duration)),
        );
        let end = ends
            .get(i)
            .copied()
            .unwrap_or(0)
            .max(e.pos.saturating_add(u64::from(e.size)))
            .min(size);
        // A span starts a little before its first packet: the container's own header of that
        // packet (an AVI chunk id, an FLV tag header) may precede the position libavformat
        // reports, and a demuxer placed after it skips the packet.
        let from = e.pos.saturating_sub(SYNC_LEAD);
        let s = cur.get_or_insert(Span {
            time: t0,
            end_time: t1,
            start: from,
            end,
        });
        s.time = s.time.min(t0);
        s.end_time = s.end_time.max(t1);
        s.start = s.start.min(from);
        s.end = s.end.max(end);
        in_run += 1;
    }
    if let Some(s) = cur {
        spans.push(s);
    }
    Ok(MediaIndex {
        container: Container::Universal,
        file_size: size,
        timescale: ts,
        start,
        duration,
        tracks,
        main_track: Some(main),
        keyframes,
        spans,
        interleave: 0,
        moov: None,
        format: Some(format.to_string()),
    })
}

/// The frames of byte ranges of a universal source (see the module docs).
#[derive(Debug)]
pub struct LavfDemuxer {
    tables: Tables,
    size: u64,
    /// (track, pos) → first table entry with that position.
    by_pos: HashMap<(u16, u64), u32>,
    /// How H.264/HEVC packets are framed, per track id.
    nal: HashMap<u16, Option<demux::NalFormat>>,
    /// Every entry's position, sorted: how many packets a range holds.
    positions: Vec<u64>,
    /// The first packet's position.
    first_pos: u64,
    /// The main track's id when it is video.
    main_video: Option<u16>,
}

impl LavfDemuxer {
    /// A demuxer for the source `index` describes, from its [`Tables`].
    pub fn new(index: &MediaIndex, tables: Tables) -> LavfDemuxer {
        let mut by_pos = HashMap::with_capacity(tables.entries.len());
        for (i, e) in tables.entries.iter().enumerate() {
            by_pos.entry((e.track, e.pos)).or_insert(i as u32);
        }
        let nal = index
            .tracks
            .iter()
            .map(|t| {
                let annexb = t.codec_private.first() != Some(&1);
                (
                    t.id as u16,
                    demux::NalFormat::of(&t.codec, &t.codec_private, annexb),
                )
            })
            .collect();
        let mut positions: Vec<u64> = tables.entries.iter().map(|e| e.pos).collect();
        positions.sort_unstable();
        let first_pos = positions.first().copied().unwrap_or(0);
        LavfDemuxer {
            tables,
            size: index.file_size,
            by_pos,
            nal,
            positions,
            first_pos,
            main_video: index
                .main()
                .filter(|t| t.kind == TrackKind::Video)
                .map(|t| t.id as u16),
        }
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.tables.heap_bytes() + self.by_pos.capacity() * 24 + self.positions.capacity() * 8
    }

    /// Frames of every track whose packets start inside `bytes` (the file's bytes from
    /// `offset`), per track, in storage order, with the table's times.
    ///
    /// Demuxers differ in how they find a position: index-driven ones (MP4, AVI with `idx1`,
    /// ASF) follow their own index and need a time seek; raw and page-based ones (MP3, FLAC,
    /// Ogg, WAV) resynchronise after a byte seek. Both are tried, a time seek first, until
    /// every packet the table places in the range was read.
    pub fn frames(&self, bytes: &[u8], offset: u64) -> Result<demux::Demuxed, AvError> {
        let end = offset.saturating_add(bytes.len() as u64);
        let lo = self.positions.partition_point(|&p| p < offset);
        let hi = self.positions.partition_point(|&p| p < end);
        let expected = hi - lo;
        if expected == 0 {
            return Ok(demux::Demuxed::default());
        }
        // The first packet stored in the range: where a time seek aims.
        let first = self
            .tables
            .entries
            .iter()
            .filter(|e| e.pos >= offset && e.pos < end)
            .min_by_key(|e| e.pos)
            .copied();
        let mut best: Option<(demux::Demuxed, usize)> = None;
        let mut last_err = None;
        // Byte seeks: to the range's start (which reaches a little before its first packet, so
        // a demuxer that resynchronises finds the packet's header), and to the first packet's
        // own position (a demuxer that cannot resynchronise mid-packet, FLV).
        // Time seeks: to the range's first keyframe of the main video track (a demuxer that
        // seeks every stream to one time aligns the others there), then to its first packet.
        let key = self
            .main_video
            .and_then(|t| {
                self.tables
                    .entries
                    .iter()
                    .filter(|e| e.track == t && e.key && e.pos >= offset && e.pos < end)
                    .min_by_key(|e| e.pos)
            })
            .copied();
        let mut ways: Vec<Option<Seek2>> = key.map(|k| Some(Seek2::Time(k))).into_iter().collect();
        if let Some(e) = first.filter(|e| Some(*e) != key) {
            ways.push(Some(Seek2::Time(e)));
        }
        ways.push(Some(Seek2::Byte(offset)));
        if let Some(e) = first.filter(|e| e.pos != offset) {
            ways.push(Some(Seek2::Byte(e.pos)));
        }
        ways.push(None);
        for how in ways {
            if how.is_none() && offset > self.first_pos {
                continue;
            }
            let got = self.read_range(bytes, offset, end, how);
            match got {
                Ok((out, n)) if n >= expected => return Ok(out),
                Ok((out, n)) => {
                    if best.as_ref().is_none_or(|(_, m)| n > *m) {
                        best = Some((out, n));
                    }
                }
                Err(e) => last_err = Some(e),
            }
        }
        match (best, last_err) {
            (Some((out, _)), _) => Ok(out),
            (None, Some(e)) => Err(e),
            (None, None) => Ok(demux::Demuxed::default()),
        }
    }

    /// One attempt of [`LavfDemuxer::frames`]: open the sparse file, move by `how` (`None`:
    /// read from where opening left off), read and match. Returns the frames and how many
    /// table entries were matched.
    fn read_range(
        &self,
        bytes: &[u8],
        offset: u64,
        end: u64,
        how: Option<Seek2>,
    ) -> Result<(demux::Demuxed, usize), AvError> {
        let sparse = Sparse {
            held: self.tables.held.clone(),
            piece: bytes.to_vec(),
            piece_at: offset,
            size: self.size,
            pos: 0,
        };
        let mut ictx = open(sparse, Instant::now() + SCAN_DEADLINE)?;
        match how {
            Some(Seek2::Byte(at)) => seek_bytes(&mut ictx, at)?,
            Some(Seek2::Time(e)) => {
                let (stream, m) = self
                    .tables
                    .streams
                    .iter()
                    .enumerate()
                    .find_map(|(i, s)| s.filter(|s| s.track == e.track).map(|s| (i, s.mult)))
                    .ok_or_else(|| AvError::InvalidParams("no stream for a track".into()))?;
                seek_time(&mut ictx, stream, e.dts.min(e.pts) / m.max(1))?;
            }
            None => {}
        }
        let mut out = demux::Demuxed::default();
        let mut matched = 0usize;
        // Per track: the table entry the next packet should be.
        let mut next: HashMap<u16, usize> = HashMap::new();
        let mut errors = 0u32;
        loop {
            let mut pkt = ff::Packet::empty();
            match pkt.read(&mut ictx) {
                Ok(()) => errors = 0,
                Err(ff::Error::Eof) => break,
                Err(_) => {
                    errors += 1;
                    if errors >= MAX_READ_ERRORS {
                        break;
                    }
                    continue;
                }
            }
            let Some(Some(map)) = self.tables.streams.get(pkt.stream()).copied() else {
                continue;
            };
            let Some(data) = pkt.data().filter(|d| !d.is_empty()) else {
                continue;
            };
            let Ok(pos) = u64::try_from(pkt.position()) else {
                continue;
            };
            if pos < offset || pos >= end {
                continue;
            }
            // The entry: the next one of the track when it matches, else the one stored at this
            // position with these bytes.
            let (size, sum) = (data.len(), fnv1a(data));
            let same = |e: &Entry| e.track == map.track && e.size as usize == size && e.sum == sum;
            let expected = next
                .get(&map.track)
                .copied()
                .filter(|&i| self.tables.entries.get(i).is_some_and(same));
            let found = expected.or_else(|| {
                let from = *self.by_pos.get(&(map.track, pos))? as usize;
                self.tables.entries[from..]
                    .iter()
                    .take(MAX_SAME_POSITION)
                    .position(|e| e.pos == pos && same(e))
                    .map(|k| from + k)
            });
            let Some(i) = found else { continue };
            let e = self.tables.entries[i];
            let after = self.tables.entries[i + 1..]
                .iter()
                .position(|n| n.track == map.track)
                .map(|k| i + 1 + k);
            match after {
                Some(a) => next.insert(map.track, a),
                None => next.remove(&map.track),
            };
            let data = match self.nal.get(&map.track).copied().flatten() {
                Some(f) => f
                    .rewrite(data, pos)
                    .map_err(|err| AvError::InvalidParams(err.to_string()))?,
                None => data.to_vec(),
            };
            matched += 1;
            out.tracks
                .entry(u64::from(map.track))
                .or_default()
                .push(demux::Frame {
                    pts: e.pts,
                    dts: Some(e.dts),
                    duration: Some(e.duration),
                    keyframe: e.key,
                    data,
                });
        }
        out.tracks.retain(|_, v| !v.is_empty());
        Ok((out, matched))
    }
}

/// How [`LavfDemuxer::read_range`] moves to its range.
#[derive(Debug, Clone, Copy)]
enum Seek2 {
    /// The demuxer's own seek (its index, or a search) to this packet's time.
    Time(Entry),
    /// A byte seek to this offset.
    Byte(u64),
}

/// Seeks stream `stream` to the last keyframe at or before `ts` (its time base).
fn seek_time(ictx: &mut ff::format::context::Input, stream: usize, ts: i64) -> Result<(), AvError> {
    let idx = i32::try_from(stream).map_err(|_| AvError::InvalidParams("stream".into()))?;
    // SAFETY: `ictx` owns a live, opened AVFormatContext and `idx` is one of its streams.
    let r = unsafe { ff::ffi::avformat_seek_file(ictx.as_mut_ptr(), idx, i64::MIN, ts, ts, 0) };
    if r >= 0 {
        Ok(())
    } else {
        Err(AvError::InvalidParams(format!("cannot seek to {ts}")))
    }
}

/// Moves the demuxer to byte `pos`: by libavformat's byte seek, else by repositioning its reader.
fn seek_bytes(ictx: &mut ff::format::context::Input, pos: u64) -> Result<(), AvError> {
    let at = i64::try_from(pos).map_err(|_| AvError::InvalidParams(format!("offset {pos}")))?;
    // SAFETY: `ictx` owns a live, opened AVFormatContext; avformat_seek_file and avio_seek are
    // called on it and its own AVIOContext, which stay valid for the call.
    let ok = unsafe {
        let p = ictx.as_mut_ptr();
        let r = ff::ffi::avformat_seek_file(p, -1, at, at, at, ff::ffi::AVSEEK_FLAG_BYTE);
        if r >= 0 {
            true
        } else {
            ff::ffi::avformat_flush(p);
            ff::ffi::avio_seek((*p).pb, at, 0) >= 0
        }
    };
    if ok {
        Ok(())
    } else {
        Err(AvError::InvalidParams(format!("cannot seek to byte {pos}")))
    }
}

/// A file of `size` bytes of which only the held pieces and one more are there; reads past the
/// range end the file, reads in a hole before it fail.
struct Sparse {
    held: Vec<(u64, Vec<u8>)>,
    piece: Vec<u8>,
    piece_at: u64,
    size: u64,
    pos: u64,
}

impl Read for Sparse {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let from = |src: &[u8], at: u64, pos: u64, buf: &mut [u8]| -> Option<usize> {
            let off = usize::try_from(pos.checked_sub(at)?).ok()?;
            let avail = src.get(off..)?;
            if avail.is_empty() {
                return None;
            }
            let n = avail.len().min(buf.len());
            buf[..n].copy_from_slice(&avail[..n]);
            Some(n)
        };
        let pos = self.pos;
        let n = from(&self.piece, self.piece_at, pos, buf)
            .or_else(|| {
                self.held
                    .iter()
                    .find_map(|(at, b)| from(b, *at, pos, &mut *buf))
            })
            .unwrap_or(0);
        if n == 0 && pos < self.piece_at {
            // A hole before the range (a packet of an earlier segment the demuxer's index points
            // at): an error, which skips that packet; past the range the file ends.
            return Err(std::io::Error::other("bytes outside the range"));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Sparse {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let p = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.size.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match p {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "seek before the start",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Tables {
        Tables {
            held: vec![(0, b"fLaC head".to_vec()), (4096, vec![7; 300])],
            streams: vec![Some(StreamMap { track: 1, mult: 1 }), None],
            entries: (0..50)
                .map(|i| Entry {
                    pos: 5000 + i * 400,
                    pts: i as i64 * 1152,
                    dts: i as i64 * 1152,
                    size: 400,
                    duration: 1152,
                    track: 1,
                    key: true,
                    sum: i as u32,
                })
                .collect(),
        }
    }

    #[test]
    fn tables_round_trip() {
        let t = sample();
        assert_eq!(Tables::from_bytes(&t.to_bytes()).expect("read"), t);
    }

    /// Every prefix of a valid blob is refused with an error, never a panic.
    #[test]
    fn every_cut_of_the_tables_is_refused() {
        let b = sample().to_bytes();
        for n in 0..b.len() {
            assert!(
                Tables::from_bytes(&b[..n]).is_err(),
                "prefix of {n} bytes read"
            );
        }
    }

    /// Counts beyond the limits or the bytes are refused before allocating.
    #[test]
    fn absurd_counts_are_refused() {
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(Tables::from_bytes(&b).is_err());
        // One held piece claiming 4 GiB.
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&1u32.to_be_bytes());
        b.extend_from_slice(&0u64.to_be_bytes());
        b.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(Tables::from_bytes(&b).is_err());
        // No pieces, no streams, u32::MAX packets over 0 bytes.
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&0u32.to_be_bytes());
        b.extend_from_slice(&0u32.to_be_bytes());
        b.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(Tables::from_bytes(&b).is_err());
        // Streams over the limit.
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&0u32.to_be_bytes());
        b.extend_from_slice(&(MAX_STREAMS as u32 + 1).to_be_bytes());
        assert!(Tables::from_bytes(&b).is_err());
    }

    /// Random bytes after the magic, and random flips in a valid blob: no panic.
    #[test]
    fn junk_never_panics() {
        let good = sample().to_bytes();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..2000 {
            let mut b = if round % 2 == 0 {
                let mut b = MAGIC.to_vec();
                b.extend((0..(next() % 512)).map(|_| next() as u8));
                b
            } else {
                good.clone()
            };
            for _ in 0..4 {
                let i = (next() as usize) % b.len();
                if i >= MAGIC.len() {
                    b[i] = next() as u8;
                }
            }
            let _ = Tables::from_bytes(&b);
        }
    }
}
