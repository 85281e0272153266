//! Matroska / WebM probe (RFC 9559, on EBML, RFC 8794).
//!
//! What it reads, in order, and what each read costs:
//!
//! 1. **EBML header and Segment header** (RFC 8794 §11.2; RFC 9559 §5.1): from the head the
//!    driver already holds. `DocType` decides Matroska or WebM; `DocTypeReadVersion`,
//!    `EBMLMaxIDLength` ≤ 4 and `EBMLMaxSizeLength` ≤ 8 are checked. A Segment whose declared
//!    size runs past the end of the file is a truncated file. The Segment may have the
//!    reserved unknown size (live or pipe-written files): it then ends with the file.
//! 2. **Top-level layout**: walk the Segment's children header by header (skipping each by its
//!    size) while the bytes are held, up to the first Cluster, and follow the SeekHead
//!    (RFC 9559 §5.1.1), including a SeekHead that points to another SeekHead. SeekHead
//!    positions are Segment Positions (RFC 9559 §16), relative to the Segment's data.
//! 3. **Info** (§5.1.2) and **Tracks** (§5.1.4), fetched whole and decoded by `webm-iterable`.
//!    The index timescale is `1e9 / TimestampScale` ticks per second (§11.1), so Matroska
//!    timestamps are index ticks as they are.
//! 4. **Cues** (§5.1.5), usually at the end of the file (ffmpeg, mkvmerge): one read of a
//!    guessed size, bounded by the next known element, and a second for the rest if the Cues
//!    are larger. A file with Cues costs at most three requests (head, Cues, rest of the
//!    Cues); ffmpeg's files take two.
//! 5. Without Cues for the main video track: **the cluster scan** (`cluster.rs`): each
//!    Cluster's header, Timestamp and first block header (§10.1, §10.2), never its body; the
//!    next Cluster is found from this one's size. A cluster whose first block of the main
//!    video track is a keyframe gives a keyframe (cluster offset, block time).
//! 6. Without an Info `Duration`: the blocks of the last cluster(s) give the end time.
//!
//! Keyframes are the main video track's random access points with the offset of the Cluster
//! that holds them (a player or remuxer starts reading there). Spans are one per cluster the
//! Cues name (or the scan found), from its first timestamp to the next one's.
//!
//! Sub-modules follow the element tree: `ebml.rs` (element headers, the `webm-iterable`
//! bridge, the EBML header), `seekhead.rs`, `info.rs`, `tracks.rs`, `cues.rs`, `cluster.rs`, and
//! `blocks.rs` (the blocks of clusters held in memory: each track's first block time here, and
//! the demuxer's reader).

pub mod blocks;
mod cluster;
mod cues;
pub mod ebml;
mod info;
mod seekhead;
mod tracks;

use std::collections::BTreeMap;

use self::cluster::{Scan, ScannedCluster, Tail};
use self::cues::CueEntry;
use self::ebml::{element_bytes, fetch, header_at, id, malformed, truncated, Fetch};
use self::info::Info;
use self::tracks::TrackEntry;
use crate::{
    choose_main_track, limits, Container, ContainerProbe, Keyframe, MediaIndex, Poll, ProbeError,
    Result, Span, Store, TrackKind, HEAD_BYTES,
};

/// Bytes asked for at once when the top-level walk needs a header it does not hold.
const WALK_WINDOW: u64 = 4096;
/// Top-level elements walked before the first Cluster before we stop walking.
const MAX_TOP_LEVEL: u64 = 4096;
/// SeekHeads followed (the first and those it points to).
const MAX_SEEK_HEADS: usize = 8;
/// Other top-level positions remembered (they bound the last span and read guesses).
const MAX_OTHERS: usize = 256;
/// First read of Info, Tracks or a SeekHead outside the held bytes.
const META_GUESS: u64 = 64 * 1024;
/// First read of the Cues: with the 64 KiB head, one probe stays within 512 KiB.
const CUES_GUESS: u64 = 448 * 1024;
/// Bytes read past the end of the last cluster region, so the tail walk's last header read
/// (at most a 64-byte window) is inside what one request fetched.
const TAIL_SLACK: u64 = 64;
/// Bytes of the first Cluster read (once, when the head does not hold them) for the first
/// block of every audio and video track.
const FIRST_CLUSTER_READ: u64 = 512 * 1024;
/// Blocks of the first Cluster looked at for the tracks' first times.
const MAX_START_BLOCKS: usize = 4096;
/// Blocks looked at per held cluster when counting leading pictures.
const MAX_LEAD_BLOCKS: usize = 4096;

/// Where the Segment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SegmentPos {
    /// First byte of the Segment's data: Segment Position 0.
    data: u64,
    /// One past its last byte (the file size for an unknown-size Segment).
    end: u64,
    /// Matroska or WebM.
    container: Container,
}

/// Positions of top-level elements, from the walk and the SeekHeads.
#[derive(Debug, Default)]
struct Layout {
    /// Next position of the top-level walk; `None` once it is over.
    walk: Option<u64>,
    walked: u64,
    first_cluster: Option<u64>,
    seek_heads: Vec<u64>,
    seek_heads_done: usize,
    info: Option<u64>,
    tracks: Option<u64>,
    cues: Option<u64>,
    others: Vec<u64>,
}

impl Layout {
    /// Records a top-level element at `pos`. The first position found for Info, Tracks and
    /// Cues wins; the walk runs before the SeekHeads are read, so it takes precedence.
    fn note(&mut self, element: u32, pos: u64) {
        match element {
            id::INFO => {
                self.info.get_or_insert(pos);
            }
            id::TRACKS => {
                self.tracks.get_or_insert(pos);
            }
            id::CUES => {
                self.cues.get_or_insert(pos);
            }
            id::SEEK_HEAD => {
                if !self.seek_heads.contains(&pos) && self.seek_heads.len() < MAX_SEEK_HEADS {
                    self.seek_heads.push(pos);
                }
            }
            id::CLUSTER => {
                self.first_cluster = Some(self.first_cluster.map_or(pos, |c| c.min(pos)));
            }
            _ => {
                if self.others.len() < MAX_OTHERS {
                    self.others.push(pos);
                }
            }
        }
    }

    /// The nearest known top-level position after `pos`, if any.
    fn next_after(&self, pos: u64) -> Option<u64> {
        let known = [self.info, self.tracks, self.cues, self.first_cluster];
        known
            .into_iter()
            .flatten()
            .chain(self.seek_heads.iter().copied())
            .chain(self.others.iter().copied())
            .filter(|&p| p > pos)
            .min()
    }
}

/// What the probe does after the metadata, decided once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Plan {
    /// Index ticks per second.
    timescale: u32,
    /// TrackNumber of the main track.
    main_id: u64,
    /// TrackNumber of the main track when it is video (keyframes are its).
    video: Option<u64>,
    /// The main track's DefaultDuration in Segment Ticks.
    per_frame: Option<u64>,
    /// Keyframes and spans come from the Cues (else from the cluster scan).
    use_cues: bool,
    /// No Duration in Info: the end comes from the last cluster's blocks.
    need_tail: bool,
    /// Absolute offset of the last cluster the Cues name.
    last_cued: Option<u64>,
}

/// Probe state machine for Matroska and WebM. Each step's result is kept once computed, so a
/// poll after a push resumes where the last one stopped; a step stopped for bytes changes no
/// state, so polling again without a push asks for the same bytes.
#[derive(Debug)]
pub struct MkvProbe {
    size: u64,
    segment: Option<SegmentPos>,
    layout: Layout,
    info: Option<Info>,
    tracks: Option<Vec<TrackEntry>>,
    cues: Option<Option<Vec<CueEntry>>>,
    plan: Option<Plan>,
    scan: Option<Scan>,
    tail: Tail,
    tail_end: Option<Option<i64>>,
    /// First block time of each track seen at the start of the first cluster.
    starts: Option<BTreeMap<u64, i64>>,
    /// The one extra read of the first cluster was asked for.
    starts_read: bool,
}

impl MkvProbe {
    /// A probe for a file of `size` bytes.
    pub fn new(size: u64) -> Self {
        MkvProbe {
            size,
            segment: None,
            layout: Layout::default(),
            info: None,
            tracks: None,
            cues: None,
            plan: None,
            scan: None,
            tail: Tail::default(),
            tail_end: None,
            starts: None,
            starts_read: false,
        }
    }

    /// Where a read guessed at `pos` should stop: `guess` bytes on, or the next known element,
    /// or the end of the Segment, whichever comes first.
    fn guess_end(&self, seg: SegmentPos, pos: u64, guess: u64) -> u64 {
        let mut end = pos.saturating_add(guess).min(seg.end).min(self.size);
        if let Some(next) = self.layout.next_after(pos) {
            end = end.min(next);
        }
        end.max(pos.saturating_add(ebml::MAX_HEADER).min(self.size))
    }

    /// Steps 1: the EBML header and the Segment header.
    fn segment(&mut self, store: &Store) -> Result<Fetch<SegmentPos>> {
        if let Some(s) = self.segment {
            return Ok(Fetch::Got(s));
        }
        let head_end = HEAD_BYTES.min(self.size);
        let e = fetch!(header_at(store, self.size, 0, head_end));
        if e.id != id::EBML {
            return Err(malformed(0, "no EBML header at the start of the file"));
        }
        let header = ebml::parse_ebml_header(fetch!(element_bytes(store, self.size, &e)), 0)?;
        // RFC 8794 §8: the EBML header is followed by the root element (Void allowed between).
        let mut pos = e.known_end()?;
        let mut skipped = 0;
        let seg = loop {
            let s = fetch!(header_at(
                store,
                self.size,
                pos,
                pos.saturating_add(WALK_WINDOW)
            ));
            match s.id {
                id::SEGMENT => break s,
                id::VOID | id::CRC32 if skipped < 16 => {
                    skipped += 1;
                    pos = s.known_end()?;
                }
                other => {
                    return Err(malformed(
                        pos,
                        format!("expected the Segment after the EBML header, found 0x{other:X}"),
                    ))
                }
            }
        };
        let end = match seg.end() {
            Some(end) if end > self.size => return Err(truncated(end, self.size)),
            Some(end) => end,
            None => self.size,
        };
        let s = SegmentPos {
            data: seg.data,
            end,
            container: if header.doc_type == "webm" {
                Container::WebM
            } else {
                Container::Matroska
            },
        };
        self.segment = Some(s);
        self.layout.walk = Some(seg.data);
        Ok(Fetch::Got(s))
    }

    /// Walks top-level elements from where the walk is, until the first Cluster. Without
    /// `requests`, stops (without ending the walk) at the first header not held.
    fn walk(&mut self, store: &Store, seg: SegmentPos, requests: bool) -> Result<Fetch<()>> {
        while let Some(pos) = self.layout.walk {
            if pos >= seg.end || self.layout.walked >= MAX_TOP_LEVEL {
                self.layout.walk = None;
                break;
            }
            let win = pos.saturating_add(WALK_WINDOW).min(seg.end);
            let e = match header_at(store, self.size, pos, win)? {
                Fetch::Got(e) => e,
                Fetch::Need(r) if requests => return Ok(Fetch::Need(r)),
                Fetch::Need(_) => return Ok(Fetch::Got(())),
            };
            self.layout.walked += 1;
            self.layout.note(e.id, pos);
            self.layout.walk = if e.id == id::CLUSTER { None } else { e.end() };
        }
        Ok(Fetch::Got(()))
    }

    /// Step 2: positions of Info, Tracks, Cues and the first Cluster.
    fn layout(&mut self, store: &Store, seg: SegmentPos) -> Result<Fetch<()>> {
        loop {
            fetch!(self.walk(store, seg, false));
            if let Some(&pos) = self.layout.seek_heads.get(self.layout.seek_heads_done) {
                let win = self.guess_end(seg, pos, META_GUESS);
                let e = fetch!(header_at(store, self.size, pos, win));
                if e.id == id::SEEK_HEAD {
                    let entries =
                        seekhead::parse(fetch!(element_bytes(store, self.size, &e)), pos)?;
                    for s in entries {
                        match seg.data.checked_add(s.position) {
                            Some(abs) if abs < seg.end => self.layout.note(s.id, abs),
                            _ => {}
                        }
                    }
                }
                self.layout.seek_heads_done += 1;
                continue;
            }
            if (self.layout.info.is_none() || self.layout.tracks.is_none())
                && self.layout.walk.is_some()
            {
                fetch!(self.walk(store, seg, true));
                continue;
            }
            return Ok(Fetch::Got(()));
        }
    }

    /// Fetches the element a layout position names, checking its ID.
    fn element_at<'s>(
        &self,
        store: &'s Store,
        seg: SegmentPos,
        pos: u64,
        expect: u32,
        guess: u64,
    ) -> Result<Fetch<Option<&'s [u8]>>> {
        let e = fetch!(header_at(
            store,
            self.size,
            pos,
            self.guess_end(seg, pos, guess)
        ));
        if e.id != expect {
            return Ok(Fetch::Got(None));
        }
        Ok(Fetch::Got(Some(fetch!(element_bytes(
            store, self.size, &e
        )))))
    }

    /// Step 3a: Info (defaults when there is none).
    fn info(&mut self, store: &Store, seg: SegmentPos) -> Result<Fetch<Info>> {
        if let Some(i) = self.info {
            return Ok(Fetch::Got(i));
        }
        let info = match self.layout.info {
            None => Info::default(),
            Some(pos) => match fetch!(self.element_at(store, seg, pos, id::INFO, META_GUESS)) {
                Some(b) => info::parse(b, pos)?,
                None => return Err(malformed(pos, "the SeekHead's Info position holds no Info")),
            },
        };
        self.info = Some(info);
        Ok(Fetch::Got(info))
    }

    /// Step 3b: Tracks.
    fn tracks(&mut self, store: &Store, seg: SegmentPos) -> Result<Fetch<()>> {
        if self.tracks.is_some() {
            return Ok(Fetch::Got(()));
        }
        let Some(pos) = self.layout.tracks else {
            return Err(ProbeError::NoTracks("no Tracks element".into()));
        };
        let entries = match fetch!(self.element_at(store, seg, pos, id::TRACKS, META_GUESS)) {
            Some(b) => tracks::parse(b, pos)?,
            None => {
                return Err(malformed(
                    pos,
                    "the SeekHead's Tracks position holds no Tracks",
                ))
            }
        };
        self.tracks = Some(entries);
        Ok(Fetch::Got(()))
    }

    /// Step 4: Cues, `None` when there are none (or the SeekHead's entry is stale).
    fn cues(&mut self, store: &Store, seg: SegmentPos) -> Result<Fetch<()>> {
        if self.cues.is_some() {
            return Ok(Fetch::Got(()));
        }
        let cues = match self.layout.cues {
            None => None,
            Some(pos) => fetch!(self.element_at(store, seg, pos, id::CUES, CUES_GUESS))
                .map(|b| cues::parse(b, pos))
                .transpose()?,
        };
        self.cues = Some(cues);
        Ok(Fetch::Got(()))
    }

    /// Step 3c: each track's first block time, from the blocks at the start of the first
    /// Cluster that the bytes already held cover. When an audio or video track has no block
    /// there, one more read of up to [`FIRST_CLUSTER_READ`] bytes of that Cluster.
    fn starts(&mut self, store: &Store, seg: SegmentPos) -> Result<Fetch<()>> {
        if self.starts.is_some() {
            return Ok(Fetch::Got(()));
        }
        let Some(first) = self.layout.first_cluster else {
            self.starts = Some(BTreeMap::new());
            return Ok(Fetch::Got(()));
        };
        let held = store.held_until(first);
        let mut found = BTreeMap::new();
        let wanted: Vec<u64> = self
            .tracks
            .as_deref()
            .unwrap_or_default()
            .iter()
            .filter(|t| matches!(t.track.kind, TrackKind::Audio | TrackKind::Video))
            .map(|t| t.track.id)
            .collect();
        if let Some(bytes) = store.get(first, held) {
            let mut reader = blocks::BlockReader::new(bytes, first);
            let mut n = 0;
            // A block that does not read ends the look (the cluster scan reports errors).
            while let Ok(Some(b)) = reader.next_block() {
                let t = found.entry(b.track).or_insert(b.timestamp);
                *t = (*t).min(b.timestamp);
                n += 1;
                if n >= MAX_START_BLOCKS {
                    break;
                }
            }
        }
        // Whether the held bytes end inside the first cluster (else it has been seen whole).
        let cut = store
            .get(first, held)
            .and_then(|b| ebml::read_element(b, first).ok().flatten())
            .is_none_or(|e| e.end().is_none_or(|end| end > held));
        let missing = cut && wanted.iter().any(|id| !found.contains_key(id));
        let end = first
            .saturating_add(FIRST_CLUSTER_READ)
            .min(seg.end)
            .min(self.size);
        if missing && !self.starts_read && end > held && held > first {
            self.starts_read = true;
            return Ok(Fetch::Need(crate::ByteRange::new(held, end)));
        }
        self.starts = Some(found);
        Ok(Fetch::Got(()))
    }

    /// What to do once the metadata is read: decided once, kept for the polls that follow.
    fn plan(&self, info: Info, seg: SegmentPos) -> Result<Plan> {
        let timescale = info.timescale()?;
        let entries = self.tracks.as_deref().unwrap_or_default();
        // Same choice as the index reports (`finish`), made on the same tracks.
        let tracks: Vec<_> = entries.iter().map(|t| t.track.clone()).collect();
        let main = choose_main_track(&tracks);
        let Some(main_entry) = main.and_then(|i| entries.get(i)) else {
            return Err(ProbeError::NoTracks(format!(
                "{} tracks, none audio or video",
                entries.len()
            )));
        };
        let video = (main_entry.track.kind == TrackKind::Video).then_some(main_entry.track.id);
        let cues = self.cues.as_ref().and_then(|c| c.as_deref());
        let cue_keyframes = match (cues, video) {
            (Some(c), Some(v)) => c.iter().any(|e| e.track == v),
            _ => false,
        };
        let use_cues = cues.is_some() && (video.is_none() || cue_keyframes);
        let last_cued = cues
            .and_then(|c| c.iter().map(|e| e.cluster).max())
            .and_then(|p| seg.data.checked_add(p))
            .filter(|&p| p < seg.end);
        Ok(Plan {
            timescale,
            main_id: main_entry.track.id,
            video,
            // DefaultDuration (ns) in Segment Ticks, rounded.
            per_frame: main_entry
                .default_duration
                .map(|ns| ns.saturating_add(info.timestamp_scale / 2) / info.timestamp_scale),
            use_cues,
            // The main track's own end is always wanted: Info's Duration is the longest
            // track's (often audio), and EXTINF must be what the main track presents.
            need_tail: true,
            last_cued,
        })
    }

    /// The whole probe: every step, each resumed or skipped when done.
    fn step(&mut self, store: &mut Store) -> Result<Fetch<MediaIndex>> {
        let seg = fetch!(self.segment(store));
        fetch!(self.layout(store, seg));
        let info = fetch!(self.info(store, seg));
        fetch!(self.tracks(store, seg));
        fetch!(self.starts(store, seg));
        fetch!(self.cues(store, seg));
        let plan = match self.plan {
            Some(p) => p,
            None => *self.plan.insert(self.plan(info, seg)?),
        };

        // Step 5: the cluster scan, for keyframes and spans without Cues, or to find the last
        // cluster for the duration.
        let scan_from = if !plan.use_cues {
            if self.layout.first_cluster.is_none() && self.layout.walk.is_some() {
                fetch!(self.walk(store, seg, true));
            }
            self.layout.first_cluster
        } else if plan.need_tail {
            let from = plan.last_cued.or(self.layout.first_cluster);
            // One read of the last cued cluster(s), up to the next known element (the Cues,
            // for ffmpeg and mkvmerge files): the scan and the tail walk then run in memory,
            // so a file with Cues still costs three requests.
            if let Some(f) = from {
                let end = self
                    .layout
                    .next_after(f)
                    .unwrap_or(seg.end)
                    .min(seg.end)
                    .saturating_add(TAIL_SLACK)
                    .min(self.size);
                let held = store.held_until(f);
                if end > held && end - f <= limits::MAX_READ_BYTES {
                    return Ok(Fetch::Need(crate::ByteRange::new(held, end)));
                }
            }
            from
        } else {
            None
        };
        if let Some(from) = scan_from {
            let scan = self
                .scan
                .get_or_insert_with(|| Scan::new(from, seg.end, plan.video));
            fetch!(scan.run(store, self.size));
        }

        // Step 6: the end time from the last cluster's blocks.
        if plan.need_tail && self.tail_end.is_none() {
            let scanned = self.scan.as_ref().map_or(&[][..], |s| &s.clusters[..]);
            let end =
                fetch!(self
                    .tail
                    .run(store, self.size, scanned, plan.main_id, plan.per_frame));
            self.tail_end = Some(end);
        }
        let mut index = self.finish(seg, info, plan)?;
        if let Some(v) = plan.video {
            let lead = self.leading_frames(store, v, plan.last_cued);
            if let Some(t) = index.tracks.iter_mut().find(|t| t.id == v) {
                if let Some(info) = t.video.as_mut() {
                    info.leading_frames = lead;
                }
            }
        }
        Ok(Fetch::Got(index))
    }

    /// Leading pictures of track `video`'s keyframes in the clusters already held (the first
    /// and the last cued one, read for the start and end times): after a keyframe, in storage
    /// (decode) order, the blocks presented before it, up to the next keyframe. No extra read.
    fn leading_frames(&self, store: &Store, video: u64, last_cued: Option<u64>) -> Option<u32> {
        let mut most = None;
        for cluster in [self.layout.first_cluster, last_cued].into_iter().flatten() {
            let Some(bytes) = store.get(cluster, store.held_until(cluster)) else {
                continue;
            };
            let mut reader = blocks::BlockReader::new(bytes, cluster);
            let mut key: Option<(i64, u32)> = None;
            let mut n = 0;
            while let Ok(Some(b)) = reader.next_block() {
                n += 1;
                if n > MAX_LEAD_BLOCKS {
                    break;
                }
                if b.track != video {
                    continue;
                }
                if b.keyframe {
                    if let Some((_, lead)) = key {
                        most = Some(most.unwrap_or(0).max(lead));
                    }
                    key = Some((b.timestamp, 0));
                } else if let Some((t, lead)) = key.as_mut() {
                    if b.timestamp < *t {
                        *lead += 1;
                    }
                }
            }
            if let Some((_, lead)) = key {
                most = Some(most.unwrap_or(0).max(lead));
            }
        }
        most
    }

    /// Builds the index from what the steps found.
    fn finish(&self, seg: SegmentPos, info: Info, plan: Plan) -> Result<MediaIndex> {
        let entries = self.tracks.as_deref().unwrap_or_default();
        let mut tracks: Vec<_> = entries.iter().map(|t| t.track.clone()).collect();
        for t in &mut tracks {
            t.timescale = plan.timescale;
            t.start = self
                .starts
                .as_ref()
                .and_then(|s| s.get(&t.id).copied())
                .map(|ts| {
                    // CodecDelay (ns) in Segment Ticks, subtracted (RFC 9559 §5.1.4.1.16).
                    let delay = t.codec_delay_ns.map_or(0, |ns| {
                        ns.saturating_add(info.timestamp_scale / 2) / info.timestamp_scale.max(1)
                    });
                    ts.saturating_sub(i64::try_from(delay).unwrap_or(i64::MAX))
                });
        }
        let cues = self.cues.as_ref().and_then(|c| c.as_deref());
        let scanned: &[ScannedCluster] = self.scan.as_ref().map_or(&[], |s| &s.clusters);

        // Keyframes.
        let mut keyframes = Vec::new();
        if let (true, Some(c), Some(v)) = (plan.use_cues, cues, plan.video) {
            for e in c.iter().filter(|e| e.track == v) {
                let pts = i64::try_from(e.time)
                    .map_err(|_| malformed(seg.data, format!("CueTime {} out of range", e.time)))?;
                match seg.data.checked_add(e.cluster) {
                    Some(offset) if offset < seg.end => keyframes.push(Keyframe { pts, offset }),
                    _ => {}
                }
            }
        } else if plan.video.is_some() {
            keyframes.extend(scanned.iter().filter_map(|c| {
                c.keyframe.map(|pts| Keyframe {
                    pts,
                    offset: c.offset,
                })
            }));
        }
        keyframes.sort_by_key(|k| (k.pts, k.offset));
        keyframes.dedup_by_key(|k| k.pts);
        if keyframes.len() > limits::MAX_KEYFRAMES {
            return Err(ProbeError::limit(
                "MAX_KEYFRAMES",
                keyframes.len() as u64,
                limits::MAX_KEYFRAMES as u64,
            ));
        }
        let start = keyframes.first().map_or(0, |k| k.pts);

        // Duration: from the first keyframe to the end of the main track's last block; Info's
        // Duration (an end time, of the longest track) when the blocks gave nothing; else the
        // last cluster's start.
        let last_key = keyframes.last().map_or(i64::MIN, |k| k.pts);
        let end = match (self.tail_end.flatten(), info.duration) {
            // Blocks that end before the last keyframe contradict the Cues: trust Info then.
            (Some(end), Some(d)) if end <= last_key => i64::try_from(d).unwrap_or(i64::MAX),
            (Some(end), _) => end,
            (None, Some(d)) => i64::try_from(d).unwrap_or(i64::MAX),
            (None, None) => scanned
                .last()
                .map_or(0, |c| i64::try_from(c.timestamp).unwrap_or(i64::MAX)),
        };
        let duration = u64::try_from(end.saturating_sub(start)).unwrap_or(0);

        // Spans: (time, start, end) per cluster, in file order first.
        let mut spans: Vec<(i64, u64, u64)> = Vec::new();
        if plan.use_cues {
            let mut by_offset: BTreeMap<u64, u64> = BTreeMap::new();
            for e in cues.unwrap_or_default() {
                if let Some(off) = seg.data.checked_add(e.cluster).filter(|&o| o < seg.end) {
                    let t = by_offset.entry(off).or_insert(e.time);
                    *t = (*t).min(e.time);
                }
            }
            let offsets: Vec<(u64, u64)> = by_offset.into_iter().collect();
            for (i, &(off, time)) in offsets.iter().enumerate() {
                let end = match offsets.get(i + 1) {
                    Some(&(next, _)) => next,
                    // The last cued cluster runs to the next known element (the Cues, Tags)
                    // or the end of the Segment.
                    None => self.layout.next_after(off).unwrap_or(seg.end).min(seg.end),
                };
                let time = i64::try_from(time).unwrap_or(i64::MAX);
                spans.push((time, off, end));
            }
            // Media before the first cued cluster is read with the first span.
            if let (Some(first), Some(s)) = (self.layout.first_cluster, spans.first_mut()) {
                s.1 = s.1.min(first);
            }
        } else {
            for (i, c) in scanned.iter().enumerate() {
                let end = scanned.get(i + 1).map_or(c.end, |n| n.offset);
                let time = i64::try_from(c.timestamp).unwrap_or(i64::MAX);
                spans.push((time, c.offset, end));
            }
        }
        spans.sort_by_key(|&(time, start, _)| (time, start));
        let last_end = start.saturating_add(i64::try_from(duration).unwrap_or(i64::MAX));
        let spans = spans
            .iter()
            .enumerate()
            .map(|(i, &(time, s, e))| Span {
                time,
                end_time: spans.get(i + 1).map_or(last_end.max(time), |n| n.0),
                start: s,
                end: e,
            })
            .collect();

        Ok(MediaIndex {
            container: seg.container,
            file_size: self.size,
            timescale: plan.timescale,
            start,
            duration,
            main_track: choose_main_track(&tracks),
            tracks,
            keyframes,
            spans,
            // Cluster timestamps bound the cluster's first block only; blocks of other tracks
            // are stored up to a few hundred ms away from their time.
            interleave: u64::from(plan.timescale) / 2,
            moov: None,
            format: None,
        })
    }
}

impl ContainerProbe for MkvProbe {
    fn poll(&mut self, store: &mut Store) -> Result<Poll> {
        match self.step(store)? {
            Fetch::Got(index) => Ok(Poll::Done(index)),
            Fetch::Need(r) => Ok(Poll::Need(r)),
        }
    }
}

#[cfg(test)]
mod tests;
