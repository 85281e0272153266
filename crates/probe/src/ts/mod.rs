//! MPEG-TS probe (ISO/IEC 13818-1 / ITU-T H.222.0, transport streams: §2.4).
//!
//! A transport stream has no index, so the probe reads **every packet**, front to back, in big
//! sequential chunks, and keeps only small per-stream state:
//!
//! 1. Packets (§2.4.3.2): 188 bytes, or 192 in Blu-ray M2TS/BDAV (a 4-byte timecode first).
//!    Sync is checked on every packet and re-acquired (bounded by
//!    [`limits::MAX_TS_RESYNC_BYTES`]) when lost; packets with `transport_error_indicator`,
//!    bad adaptation fields (§2.4.3.4) or scrambling are counted and skipped. See `packet`.
//! 2. PSI (§2.4.4): the PAT on PID 0 names the first program's PMT, whose entries give each
//!    elementary stream's PID, `stream_type` (Table 2-34) and descriptors (§2.6). Section CRCs
//!    are checked. See `psi`.
//! 3. PES (§2.4.3.6): each PES start (`payload_unit_start_indicator`) gives a PTS/DTS,
//!    unwrapped from 33 bits. For video, the payload up to the first coded picture tells
//!    whether the access unit is a random access point and carries the parameter sets. See
//!    `pes` and `es`.
//!
//! Keyframes are the PES starts of the main video stream flagged by `random_access_indicator`
//! (§2.4.3.5) or holding an IDR/IRAP/I picture (see `assemble` for the exact rule). Their
//! offset is the packet (M2TS: the 192-byte unit) that starts the PES, as ffprobe reports it.
//! Track ids are PIDs, timestamps are 90 kHz, and each [`crate::Span`] is the exact byte
//! range of the PES packets of one keyframe interval.

mod assemble;
mod es;
pub mod packet;
pub mod pes;
mod psi;

use crate::limits;
use crate::VideoInfo;
use crate::{AudioInfo, ByteRange, Codec, ContainerProbe, Poll, ProbeError, Result, Store};
use packet::{PACKET_LEN, SYNC_BYTE};

const CONTAINER: &str = "mpeg-ts";

/// Packet layout of a transport stream: 188-byte packets, or 192 (M2TS, 4-byte timecode first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TsLayout {
    /// Bytes per packet (188 or 192).
    pub packet_size: usize,
    /// Offset of the first sync byte (0x47) in the file.
    pub sync_offset: usize,
}

/// Recognises a transport stream by sync bytes at a regular stride.
pub fn sync_layout(head: &[u8]) -> Option<TsLayout> {
    for (packet_size, sync_offset) in [(188usize, 0usize), (192, 4)] {
        let ok = (0..3).all(|i| head.get(sync_offset + i * packet_size) == Some(&0x47));
        if ok {
            return Some(TsLayout {
                packet_size,
                sync_offset,
            });
        }
    }
    None
}

/// First chunk read after the head; doubled on every read up to [`MAX_CHUNK`].
const FIRST_CHUNK: u64 = 1 << 20;
/// Largest chunk read at once (fewer requests on long files; memory stays one chunk).
const MAX_CHUNK: u64 = 8 << 20;
const _: () = assert!(MAX_CHUNK <= limits::MAX_READ_BYTES);
// A resync that starts at the front of a chunk always completes inside it (no livelock).
const _: () = assert!(limits::MAX_TS_RESYNC_BYTES as u64 + 3 * 192 < FIRST_CHUNK);

// A PES header always fits in the bytes kept of a PES's start.
const _: () = assert!(pes::MAX_HEADER < limits::MAX_PES_HEAD_BYTES);

/// Bytes of an audio PES payload kept to read the first frame header.
const AUDIO_CONFIG_BYTES: usize = 4096;
/// PES packets of a stream inspected for its codec configuration before giving up.
const MAX_CONFIG_ATTEMPTS: u32 = 2000;

/// Record flag: `random_access_indicator` was set on the PES's first packet.
pub(crate) const FLAG_RAI: u8 = 1;
/// Record flag: the first picture of the PES is an IDR / IRAP / I picture.
pub(crate) const FLAG_KEY_PICTURE: u8 = 2;

/// One PES packet: its timestamps (90 kHz, unwrapped) and the bytes of the packets holding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Record {
    /// Presentation time.
    pub pts: i64,
    /// Decode time (the PTS when the header has no DTS).
    pub dts: i64,
    /// Offset of the packet (unit) with the PES start.
    pub start: u64,
    /// One past the last packet (unit) holding its bytes.
    pub end: u64,
    /// [`FLAG_RAI`] | [`FLAG_KEY_PICTURE`].
    pub flags: u8,
}

/// What the scan learnt about one elementary stream.
#[derive(Debug)]
pub(crate) struct TrackData {
    /// The PMT entry (codec refined from the bitstream).
    pub es: psi::EsInfo,
    /// Video facts, once parsed.
    pub video: Option<VideoInfo>,
    /// Audio facts, once parsed.
    pub audio: Option<AudioInfo>,
    /// avcC / hvcC / AudioSpecificConfig.
    pub codec_private: Vec<u8>,
    /// Every timestamped PES, in file order.
    pub records: Vec<Record>,
}

/// The PES header facts of the PES being read.
#[derive(Debug, Clone, Copy)]
struct OpenHeader {
    pts: Option<i64>,
    dts: Option<i64>,
    es_start: usize,
}

/// Per-stream scan state.
#[derive(Debug)]
struct Stream {
    data: TrackData,
    syntax: Option<es::Syntax>,
    /// A private-data stream whose payload is checked for a known audio frame header.
    sniff: bool,
    config_done: bool,
    config_attempts: u32,
    /// The last unwrapped timestamp of this stream.
    reference: Option<i64>,
    // The PES being read.
    open: bool,
    start: u64,
    end: u64,
    rai: bool,
    head: Vec<u8>,
    collecting: bool,
    header: Option<OpenHeader>,
    header_bad: bool,
    scan_pos: usize,
    picture: Option<bool>,
    /// The codec configuration was looked for in this PES already.
    config_tried: bool,
}

/// Counters and the first problem of each kind, for diagnostics.
#[derive(Debug, Default)]
struct Stats {
    packets: u64,
    tei: u64,
    bad_packets: u64,
    scrambled: u64,
    resyncs: u64,
    bad_pes: u64,
    first_psi_error: Option<ProbeError>,
}

/// State shared by all streams of the scan.
#[derive(Debug)]
struct Shared {
    /// The last unwrapped PTS of any stream (the reference for a stream's first one).
    last_pts: Option<i64>,
    stats: Stats,
    /// PES records still allowed ([`limits::MAX_SAMPLES`] over all streams).
    budget: u64,
    /// An error found while appending (a PTS jump), returned by the packet loop.
    fatal: Option<ProbeError>,
}

impl Shared {
    /// Unwraps a 33-bit PTS (§2.4.3.7) against the stream's previous one, or the last of any
    /// stream for its first.
    ///
    /// A real wrap is a step from near 2^33 to near 0, which unwraps to a small step forward.
    /// Any step farther than [`limits::MAX_TS_PTS_JUMP_SECS`] from the last PTS of any stream
    /// (streams are muxed within seconds of each other) is a discontinuity, or a hostile file
    /// climbing by 2^32−1 a packet that nearest-unwrapping would unroll into 13 h a step: it is
    /// not unrolled but recorded in `fatal`, and the scan stops with that error.
    fn unwrap(&mut self, stream_ref: &mut Option<i64>, raw: u64, at: u64) -> Option<i64> {
        let reference = stream_ref
            .or(self.last_pts)
            .unwrap_or((raw & ((1 << 33) - 1)) as i64);
        let v = pes::unwrap(raw, reference);
        let max = i64::try_from(limits::MAX_TS_PTS_JUMP_SECS * 90_000).unwrap_or(i64::MAX);
        if let Some(last) = self.last_pts {
            let step = v.saturating_sub(last);
            if step.unsigned_abs() > max.unsigned_abs() {
                self.fatal.get_or_insert_with(|| {
                    ProbeError::malformed(
                        CONTAINER,
                        at,
                        format!(
                            "PTS jumps by {} s, over the {} s limit (MAX_TS_PTS_JUMP_SECS): a discontinuity we do not unroll",
                            step / 90_000,
                            limits::MAX_TS_PTS_JUMP_SECS
                        ),
                    )
                });
                return None;
            }
        }
        *stream_ref = Some(v);
        self.last_pts = Some(v);
        Some(v)
    }
}

impl Stream {
    fn new(es: psi::EsInfo) -> Stream {
        let syntax = es::Syntax::of(&es.codec);
        let mut audio = None;
        let parsable = syntax.is_some()
            || matches!(
                es.codec,
                Codec::Aac
                    | Codec::Ac3
                    | Codec::Eac3
                    | Codec::Mp2
                    | Codec::Mp3
                    | Codec::Dts
                    | Codec::Pcm
            )
            || es.codec == Codec::Other("aac_latm".into());
        let sniff = es.stream_type == 0x06 && es.codec == Codec::Other("private_data".into());
        if es.codec == Codec::Opus {
            audio = Some(AudioInfo {
                sample_rate: 48_000,
                channels: es.opus_channels.unwrap_or(2),
                ..AudioInfo::default()
            });
        }
        Stream {
            data: TrackData {
                es,
                video: None,
                audio,
                codec_private: Vec::new(),
                records: Vec::new(),
            },
            syntax,
            sniff,
            config_done: !parsable && !sniff,
            config_attempts: 0,
            reference: None,
            open: false,
            start: 0,
            end: 0,
            rai: false,
            head: Vec::new(),
            collecting: false,
            header: None,
            header_bad: false,
            scan_pos: 0,
            picture: None,
            config_tried: false,
        }
    }

    /// A packet with `payload_unit_start_indicator`: closes the open PES, opens a new one.
    fn start_pes(
        &mut self,
        rai: bool,
        payload: &[u8],
        (start, end): (u64, u64),
        shared: &mut Shared,
    ) -> Result<()> {
        self.finish_pes(shared)?;
        self.open = true;
        self.start = start;
        self.end = end;
        self.rai = rai;
        self.head.clear();
        self.header = None;
        self.header_bad = false;
        self.scan_pos = 0;
        self.picture = None;
        self.config_tried = false;
        self.collecting = true;
        self.append(payload, shared);
        Ok(())
    }

    /// A continuation packet of the open PES.
    fn continue_pes(&mut self, payload: &[u8], end: u64, shared: &mut Shared) {
        if !self.open {
            return;
        }
        self.end = end;
        if self.collecting {
            self.append(payload, shared);
        }
    }

    fn append(&mut self, payload: &[u8], shared: &mut Shared) {
        let room = limits::MAX_PES_HEAD_BYTES.saturating_sub(self.head.len());
        self.head
            .extend_from_slice(payload.get(..room.min(payload.len())).unwrap_or(&[]));
        let header = match self.header {
            Some(h) => h,
            None => match pes::parse(&self.head) {
                pes::Parsed::NeedMore(_) => return,
                pes::Parsed::Bad(_) => {
                    self.header_bad = true;
                    self.collecting = false;
                    shared.stats.bad_pes += 1;
                    return;
                }
                pes::Parsed::Header(h) => {
                    let pts = h
                        .pts
                        .and_then(|raw| shared.unwrap(&mut self.reference, raw, self.start));
                    let dts = match (h.dts, pts) {
                        (Some(raw), Some(p)) => Some(pes::unwrap(raw, p)),
                        _ => None,
                    };
                    let open = OpenHeader {
                        pts,
                        dts,
                        es_start: h.payload_offset,
                    };
                    self.header = Some(open);
                    self.scan_pos = h.payload_offset;
                    open
                }
            },
        };
        let full = self.head.len() >= limits::MAX_PES_HEAD_BYTES;
        if let Some(syntax) = self.syntax {
            if self.picture.is_none() {
                match es::scan_picture(syntax, &self.head, self.scan_pos) {
                    es::Scan::Picture { key } => {
                        self.picture = Some(key);
                        self.try_config();
                    }
                    es::Scan::Resume(at) => self.scan_pos = at.max(header.es_start),
                }
            }
            self.collecting = self.picture.is_none() && !full;
        } else {
            self.collecting = !self.config_done
                && !full
                && self.head.len() < header.es_start + AUDIO_CONFIG_BYTES;
        }
    }

    /// Reads the codec configuration from the open PES's payload, if still unknown.
    fn try_config(&mut self) {
        if self.config_done || self.config_tried {
            return;
        }
        let Some(h) = self.header else { return };
        let es = self.head.get(h.es_start..).unwrap_or(&[]);
        if es.is_empty() {
            return;
        }
        self.config_tried = true;
        self.config_attempts += 1;
        if let Some(syntax) = self.syntax {
            if let Some(c) = es::video_config(syntax, es) {
                self.data.video = Some(c.info);
                self.data.codec_private = c.codec_private;
                self.config_done = true;
            }
        } else if let Some(c) = if self.sniff {
            es::sniff_private(es)
        } else {
            es::audio_config(&self.data.es.codec, es)
        } {
            if self.sniff {
                self.data.es.kind = crate::TrackKind::Audio;
            }
            if let Some(codec) = c.codec {
                self.data.es.codec = codec;
            }
            self.data.audio = Some(c.info);
            self.data.codec_private = c.codec_private;
            self.config_done = true;
        }
        if self.config_attempts >= MAX_CONFIG_ATTEMPTS {
            self.config_done = true;
        }
    }

    /// Closes the open PES and records it.
    fn finish_pes(&mut self, shared: &mut Shared) -> Result<()> {
        if !self.open {
            return Ok(());
        }
        self.open = false;
        self.collecting = false;
        if self.header.is_none() && !self.header_bad {
            // The next PES started before this one's header was complete.
            shared.stats.bad_pes += 1;
        }
        self.try_config();
        let pts = self.header.and_then(|h| h.pts);
        let Some(pts) = pts else {
            // No timestamp: its bytes belong with the PES before it.
            if let Some(last) = self.data.records.last_mut() {
                last.end = last.end.max(self.end);
            }
            return Ok(());
        };
        let dts = self.header.and_then(|h| h.dts).unwrap_or(pts);
        if shared.budget == 0 {
            return Err(ProbeError::limit(
                "MAX_SAMPLES (PES packets)",
                limits::MAX_SAMPLES + 1,
                limits::MAX_SAMPLES,
            ));
        }
        shared.budget -= 1;
        let mut flags = 0;
        if self.rai {
            flags |= FLAG_RAI;
        }
        if self.picture == Some(true) {
            flags |= FLAG_KEY_PICTURE;
        }
        self.data.records.push(Record {
            pts,
            dts,
            start: self.start,
            end: self.end,
            flags,
        });
        Ok(())
    }
}

/// "No stream" in the PID table.
const NO_SLOT: u8 = u8::MAX;
const _: () = assert!(limits::MAX_TRACKS < NO_SLOT as usize);

/// Probe state machine for MPEG-TS: a sequential scan of every packet.
pub struct TsProbe {
    size: u64,
    /// Bytes per packet unit (188 or 192) once the head has been seen.
    unit: Option<usize>,
    /// Offset of the next unit to read.
    pos: u64,
    /// Size of the next read.
    chunk: u64,
    /// PID → index in `streams`.
    slots: Vec<u8>,
    pat: psi::Assembler,
    pmt: psi::Assembler,
    /// `(program_number, PMT PID)` from the PAT.
    program: Option<(u16, u16)>,
    have_pmt: bool,
    sections: Vec<Result<psi::Section>>,
    streams: Vec<Stream>,
    shared: Shared,
}

impl std::fmt::Debug for TsProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsProbe")
            .field("size", &self.size)
            .field("unit", &self.unit)
            .field("pos", &self.pos)
            .field("program", &self.program)
            .field("streams", &self.streams.len())
            .field("stats", &self.shared.stats)
            .finish_non_exhaustive()
    }
}

impl TsProbe {
    /// A probe for a file of `size` bytes.
    pub fn new(size: u64) -> Self {
        TsProbe {
            size,
            unit: None,
            pos: 0,
            chunk: FIRST_CHUNK,
            slots: vec![NO_SLOT; 1 << 13],
            pat: psi::Assembler::default(),
            pmt: psi::Assembler::default(),
            program: None,
            have_pmt: false,
            sections: Vec::new(),
            streams: Vec::new(),
            shared: Shared {
                fatal: None,
                last_pts: None,
                stats: Stats::default(),
                budget: limits::MAX_SAMPLES,
            },
        }
    }

    /// Reads whole units from `data` (file bytes at `base`); returns how many bytes it used.
    /// Less than `data.len()` means: read on from there (a partial unit, or a resync that
    /// needs bytes past the chunk).
    fn scan(&mut self, data: &[u8], base: u64, at_eof: bool, unit: usize) -> Result<usize> {
        let prefix = unit - PACKET_LEN;
        let mut i = 0usize;
        while let Some(bytes) = data.get(i + prefix..i + unit) {
            let Ok(pkt) = <&[u8; PACKET_LEN]>::try_from(bytes) else {
                break;
            };
            if pkt[0] == SYNC_BYTE {
                let start = base + i as u64;
                self.packet(pkt, start, start + unit as u64, prefix)?;
                i += unit;
                continue;
            }
            match resync(data, i, unit, at_eof) {
                Resync::Found(j) => {
                    self.shared.stats.resyncs += 1;
                    i = j;
                }
                Resync::NeedMore => return Ok(i),
                Resync::End => return Ok(data.len()),
                Resync::Lost => {
                    return Err(ProbeError::malformed(
                        CONTAINER,
                        base + i as u64,
                        format!(
                            "lost packet sync (no 0x47 every {unit} bytes within the next {} \
                             bytes)",
                            limits::MAX_TS_RESYNC_BYTES
                        ),
                    ))
                }
            }
        }
        Ok(i)
    }

    /// One packet at file offset `start` (its unit ends at `end`).
    fn packet(
        &mut self,
        pkt: &[u8; PACKET_LEN],
        start: u64,
        end: u64,
        prefix: usize,
    ) -> Result<()> {
        self.shared.stats.packets += 1;
        let h = packet::header(pkt);
        if h.tei {
            self.shared.stats.tei += 1;
            return Ok(());
        }
        let slot = self
            .slots
            .get(usize::from(h.pid))
            .copied()
            .unwrap_or(NO_SLOT);
        if slot == NO_SLOT {
            if !self.have_pmt && (h.pid == 0 || self.program.is_some_and(|(_, p)| p == h.pid)) {
                self.psi_packet(pkt, h, start + prefix as u64);
            }
            return Ok(());
        }
        let body = match packet::body(pkt) {
            Ok(b) => b,
            Err(_) => {
                self.shared.stats.bad_packets += 1;
                return Ok(());
            }
        };
        if body.scrambled {
            self.shared.stats.scrambled += 1;
            return Ok(());
        }
        let Some(stream) = self.streams.get_mut(usize::from(slot)) else {
            return Ok(());
        };
        if h.pusi {
            stream.start_pes(body.rai, body.payload, (start, end), &mut self.shared)?;
        } else {
            stream.continue_pes(body.payload, end, &mut self.shared);
        }
        match self.shared.fatal.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// A packet of the PAT or PMT PID (`at`: offset of its sync byte).
    fn psi_packet(&mut self, pkt: &[u8; PACKET_LEN], h: packet::Header, at: u64) {
        let body = match packet::body(pkt) {
            Ok(b) if !b.scrambled => b,
            Ok(_) => {
                self.shared.stats.scrambled += 1;
                return;
            }
            Err(e) => {
                self.shared.stats.bad_packets += 1;
                self.note_psi_error(ProbeError::malformed(
                    CONTAINER,
                    at,
                    format!("packet of PID {:#06x}: {e:?}", h.pid),
                ));
                return;
            }
        };
        let payload_at = at + (PACKET_LEN - body.payload.len()) as u64;
        let mut sections = std::mem::take(&mut self.sections);
        sections.clear();
        let assembler = if h.pid == 0 {
            &mut self.pat
        } else {
            &mut self.pmt
        };
        assembler.push(h.pid, h.pusi, body.payload, payload_at, &mut sections);
        for section in sections.drain(..) {
            match section {
                Ok((offset, bytes)) => self.section(h.pid, &bytes, offset),
                Err(e) => self.note_psi_error(e),
            }
        }
        self.sections = sections;
    }

    fn section(&mut self, pid: u16, bytes: &[u8], offset: u64) {
        if self.have_pmt {
            // One PMT is enough (a packet may complete two sections).
            return;
        }
        if pid == 0 {
            match psi::parse_pat(bytes, offset) {
                Ok(Some(program)) => {
                    self.program.get_or_insert(program);
                }
                Ok(None) => {}
                Err(e) => self.note_psi_error(e),
            }
            return;
        }
        let Some((number, _)) = self.program else {
            return;
        };
        let hdmv = self.unit == Some(192);
        match psi::parse_pmt(bytes, offset, pid, hdmv) {
            Ok(Some(pmt)) if pmt.program == number => {
                for es in pmt.streams {
                    if let Some(slot) = self.slots.get_mut(usize::from(es.pid)) {
                        *slot = self.streams.len() as u8;
                        self.streams.push(Stream::new(es));
                    }
                }
                self.have_pmt = true;
            }
            Ok(_) => {}
            Err(e) => self.note_psi_error(e),
        }
    }

    fn note_psi_error(&mut self, e: ProbeError) {
        self.shared.stats.first_psi_error.get_or_insert(e);
    }

    /// Why there is no program to index.
    fn no_program(&mut self) -> ProbeError {
        if let Some(e) = self.shared.stats.first_psi_error.take() {
            return e;
        }
        let what = match self.program {
            None => "no PAT (PID 0) with a program".to_string(),
            Some((n, pid)) => format!("no PMT for program {n} on PID {pid:#06x}"),
        };
        ProbeError::malformed(
            CONTAINER,
            0,
            format!(
                "{what} in bytes 0..{} ({} packets, {} with transport_error_indicator)",
                self.pos, self.shared.stats.packets, self.shared.stats.tei
            ),
        )
    }

    fn finish(&mut self) -> Result<crate::MediaIndex> {
        if !self.have_pmt {
            return Err(self.no_program());
        }
        for s in &mut self.streams {
            s.finish_pes(&mut self.shared)?;
        }
        let tracks: Vec<TrackData> = std::mem::take(&mut self.streams)
            .into_iter()
            .map(|s| s.data)
            .collect();
        let stats = &self.shared.stats;
        if tracks.iter().all(|t| t.records.is_empty()) {
            if stats.scrambled > 0 {
                return Err(ProbeError::Unsupported {
                    container: CONTAINER,
                    what: format!("scrambled streams ({} packets)", stats.scrambled),
                });
            }
            return Err(ProbeError::NoTracks(format!(
                "mpeg-ts: the PMT lists {} streams but none carries a timestamped PES \
                 ({} malformed PES headers, {} bad packets)",
                tracks.len(),
                stats.bad_pes,
                stats.bad_packets
            )));
        }
        assemble::build(self.size, tracks)
    }
}

/// The outcome of looking for sync again.
enum Resync {
    /// Packets start again at this position.
    Found(usize),
    /// The search needs bytes past the chunk.
    NeedMore,
    /// The file ends before another packet.
    End,
    /// No packet pattern within the bound.
    Lost,
}

/// Looks for the next unit start after `i`: a sync byte confirmed by the next two units.
fn resync(data: &[u8], i: usize, unit: usize, at_eof: bool) -> Resync {
    let prefix = unit - PACKET_LEN;
    for j in i + 1..=i + limits::MAX_TS_RESYNC_BYTES {
        let Some(&b) = data.get(j + prefix) else {
            return if at_eof {
                Resync::End
            } else {
                Resync::NeedMore
            };
        };
        if b != SYNC_BYTE {
            continue;
        }
        let mut confirmed = true;
        for k in 1..=2 {
            match data.get(j + prefix + k * unit) {
                Some(&SYNC_BYTE) => {}
                Some(_) => {
                    confirmed = false;
                    break;
                }
                None if at_eof => break,
                None => return Resync::NeedMore,
            }
        }
        if confirmed {
            return Resync::Found(j);
        }
    }
    Resync::Lost
}

impl ContainerProbe for TsProbe {
    fn poll(&mut self, store: &mut Store) -> Result<Poll> {
        let head_end = crate::HEAD_BYTES.min(self.size);
        let unit = match self.unit {
            Some(u) => u,
            None => {
                let Some(head) = store.get(0, head_end) else {
                    return Ok(Poll::Need(ByteRange::new(0, head_end)));
                };
                let layout = sync_layout(head).ok_or_else(|| {
                    ProbeError::malformed(CONTAINER, 0, "no packet sync (0x47) at the start")
                })?;
                self.pos = (layout.sync_offset + PACKET_LEN - layout.packet_size) as u64;
                self.unit = Some(layout.packet_size);
                layout.packet_size
            }
        };
        loop {
            if self.pos + unit as u64 > self.size {
                // Done (a trailing partial packet is ignored).
                return self.finish().map(Poll::Done);
            }
            let stride = unit as u64;
            let want_end = (self.pos + self.chunk / stride * stride).min(self.size);
            let (data, end) = match store.get(self.pos, want_end) {
                Some(d) => (d, want_end),
                // The head the prober read first is still there: use it before reading on.
                None => match store.get(self.pos, head_end) {
                    Some(d) if head_end > self.pos => (d, head_end),
                    _ => return Ok(Poll::Need(ByteRange::new(self.pos, want_end))),
                },
            };
            let at_eof = end == self.size;
            let base = self.pos;
            let used = self.scan(data, base, at_eof, unit)?;
            store.clear();
            if end == want_end {
                self.chunk = (self.chunk * 2).min(MAX_CHUNK);
            }
            if at_eof {
                self.pos = self.size;
            } else if used == 0 {
                return Err(ProbeError::malformed(
                    CONTAINER,
                    base,
                    "no packet could be read from this position",
                ));
            } else {
                self.pos = base + used as u64;
            }
            if !self.have_pmt && self.pos >= limits::MAX_TS_PSI_SCAN_BYTES.min(self.size) {
                return Err(self.no_program());
            }
        }
    }
}

#[cfg(test)]
mod tests;
