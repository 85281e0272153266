//! Clusters and blocks (RFC 9559 §5.1.3; §10.1 Block Structure, §10.2 SimpleBlock Structure;
//! §11 timestamps): the cluster scan for files without usable Cues, and the walk of the last
//! cluster for files without a Duration.
//!
//! Both read headers only. A cluster's children are visited one header at a time, skipping
//! block data by size, so a 2 s cluster of a few hundred KiB costs a few hundred bytes. Block
//! headers are four bytes we decode here (track number VINT, signed 16-bit relative timestamp,
//! flags): `webm-iterable`'s `SimpleBlock`/`Block` types parse whole frames, lacing included,
//! which needs the whole block.

use ebml_iterable::tools::read_vint;

use super::ebml::{
    data_prefix, fetch, header_at, id, malformed, name, uint, unsupported, Element, Fetch,
    MAX_HEADER,
};
use crate::{limits, ProbeError, Result, Store};

/// Bytes read at a cluster's start: its header, CRC-32, Timestamp and the first block's header
/// and, when that block is a small audio frame (~250 bytes at 96 kb/s AAC), the next header.
/// Measured on `mkv_no_cues.mkv` (88 clusters): 128 bytes → 284 requests, 320 → 198 requests
/// and 1.8 % of the file, 384 → 197 requests and 2.0 %.
const SCAN_WINDOW: u64 = 320;
/// Bytes read to reach one more child header inside a cluster: an element header (≤ 12), a
/// BlockGroup's Block header (≤ 12) and the block header (≤ 11) fit in 64.
const HOP_WINDOW: u64 = 64;
/// Bytes read per hop when walking every block of the last cluster. Blocks are larger than
/// any window that would save requests (a window over a few audio frames still needs one read
/// per video frame), so it reads headers only: one small read per block, a few KiB in all.
const TAIL_WINDOW: u64 = 64;
/// Children of one cluster the scan looks at before giving up on finding the main track's
/// first block (each may cost a request). Muxers interleave by time, so the video track's
/// first block comes after a few audio frames at most.
const MAX_SCAN_CHILDREN: u32 = 16;
/// Children of one cluster the tail walk visits.
const MAX_TAIL_CHILDREN: u32 = 1 << 20;
/// Clusters the tail walk steps back over when the last ones hold no block of the main track.
const MAX_TAIL_CLUSTERS: usize = 8;
/// Bytes of a block's data holding its header: track number (up to 8), timestamp (2), flags.
const BLOCK_HEADER_MAX: u64 = 11;

/// What a block header says (RFC 9559 §10.1/§10.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockHeader {
    /// TrackNumber.
    pub track: u64,
    /// Timestamp relative to the Cluster Timestamp, in Segment Ticks.
    pub rel: i16,
    /// Flags byte (SimpleBlock: 0x80 keyframe).
    pub flags: u8,
}

/// Decodes a block header from the first bytes of a Block/SimpleBlock's data at `at`.
pub(crate) fn block_header(b: &[u8], at: u64) -> Result<BlockHeader> {
    let (track, n) = match read_vint(b) {
        Ok(Some(v)) => v,
        _ => return Err(malformed(at, "block header: bad track number")),
    };
    let Some(&[t0, t1, flags]) = b.get(n..n + 3) else {
        return Err(malformed(at, "block header cut short"));
    };
    Ok(BlockHeader {
        track,
        rel: i16::from_be_bytes([t0, t1]),
        flags,
    })
}

/// A cluster found by the scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScannedCluster {
    /// Absolute offset of the Cluster element.
    pub offset: u64,
    /// One past its last byte (clipped to the file for a cut last cluster).
    pub end: u64,
    /// Cluster Timestamp, Segment Ticks.
    pub timestamp: u64,
    /// Presentation time of the main video track's first block here, when it is a keyframe.
    pub keyframe: Option<i64>,
}

/// One block of the track we follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Block {
    pts: i64,
    key: bool,
    duration: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
struct Group {
    end: u64,
    pts: Option<i64>,
    duration: Option<u64>,
    referenced: bool,
}

/// Where a walk inside one cluster is. Positions only move forward when a child is fully
/// handled, so a walk that stops for bytes resumes where it was.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    offset: u64,
    end: u64,
    clipped: bool,
    timestamp: Option<u64>,
    pos: u64,
    children: u32,
    group: Option<Group>,
}

impl Cursor {
    fn new(offset: u64, data: u64, end: u64, file_size: u64) -> Self {
        Cursor {
            offset,
            end: end.min(file_size),
            clipped: end > file_size,
            timestamp: None,
            pos: data,
            children: 0,
            group: None,
        }
    }

    fn advance(&mut self, to: u64) {
        self.pos = to;
        self.children += 1;
    }

    fn pts(&self, rel: i16, at: u64) -> Result<i64> {
        let ts = self
            .timestamp
            .ok_or_else(|| malformed(at, "block before its Cluster's Timestamp"))?;
        i64::try_from(ts)
            .ok()
            .and_then(|t| t.checked_add(i64::from(rel)))
            .ok_or_else(|| malformed(at, format!("Cluster Timestamp {ts} out of range")))
    }

    /// Walks to the next block of `track` (or, with `track == None`, just to the Timestamp).
    /// `Got(None)`: the cluster has no more (or we stopped looking after `max_children`).
    fn next_block(
        &mut self,
        store: &Store,
        file_size: u64,
        track: Option<u64>,
        window: u64,
        max_children: u32,
    ) -> Result<Fetch<Option<Block>>> {
        loop {
            if track.is_none() && self.timestamp.is_some() {
                return Ok(Fetch::Got(None));
            }
            if let Some(g) = self.group {
                if self.pos >= g.end {
                    self.group = None;
                    if let Some(pts) = g.pts {
                        return Ok(Fetch::Got(Some(Block {
                            pts,
                            key: !g.referenced,
                            duration: g.duration,
                        })));
                    }
                    continue;
                }
            }
            if self.pos >= self.end || self.children >= max_children {
                return Ok(Fetch::Got(None));
            }
            let win = self.pos.saturating_add(window).min(self.end);
            let e: Element = fetch!(header_at(store, file_size, self.pos, win));
            let limit = self.group.map_or(self.end, |g| g.end);
            let e_end = match e.end() {
                Some(end) if end <= limit => end,
                // A cut last cluster: its last child is not all there.
                Some(_) if self.clipped => return Ok(Fetch::Got(None)),
                Some(end) => {
                    return Err(malformed(
                        e.start,
                        format!(
                            "{} (0x{:X}) ends at {end}, past its parent's end {limit}",
                            name(e.id),
                            e.id
                        ),
                    ))
                }
                None => {
                    return Err(unsupported(format!(
                        "{} (0x{:X}) of unknown size inside the Cluster at byte {}",
                        name(e.id),
                        e.id,
                        self.offset
                    )))
                }
            };
            match (self.group.is_some(), e.id) {
                (false, id::TIMESTAMP) => {
                    let b = fetch!(data_prefix(store, file_size, &e, 8, win));
                    self.timestamp = Some(uint(b, e.data, "Cluster Timestamp")?);
                    self.advance(e_end);
                }
                (false, id::SIMPLE_BLOCK) => {
                    let b = fetch!(data_prefix(store, file_size, &e, BLOCK_HEADER_MAX, win));
                    let h = block_header(b, e.data)?;
                    let pts = self.pts(h.rel, e.start)?;
                    self.advance(e_end);
                    if Some(h.track) == track {
                        return Ok(Fetch::Got(Some(Block {
                            pts,
                            key: h.flags & 0x80 != 0,
                            duration: None,
                        })));
                    }
                }
                (false, id::BLOCK_GROUP) => {
                    self.group = Some(Group {
                        end: e_end,
                        pts: None,
                        duration: None,
                        referenced: false,
                    });
                    self.advance(e.data);
                }
                (true, id::BLOCK) => {
                    let b = fetch!(data_prefix(store, file_size, &e, BLOCK_HEADER_MAX, win));
                    let h = block_header(b, e.data)?;
                    let pts = self.pts(h.rel, e.start)?;
                    if let Some(g) = &mut self.group {
                        if Some(h.track) == track {
                            g.pts = Some(pts);
                            self.advance(e_end);
                        } else {
                            // Another track's group: skip the rest of it.
                            let end = g.end;
                            self.advance(end);
                        }
                    }
                }
                (true, id::BLOCK_DURATION) => {
                    let b = fetch!(data_prefix(store, file_size, &e, 8, win));
                    let d = uint(b, e.data, "BlockDuration")?;
                    if let Some(g) = &mut self.group {
                        g.duration = Some(d);
                    }
                    self.advance(e_end);
                }
                (true, id::REFERENCE_BLOCK) => {
                    if let Some(g) = &mut self.group {
                        g.referenced = true;
                    }
                    self.advance(e_end);
                }
                _ => self.advance(e_end),
            }
        }
    }
}

/// The cluster scan: visits every top-level element from a start position to the end of the
/// Segment, and in each Cluster reads the Timestamp and the first block of the followed track.
#[derive(Debug)]
pub(crate) struct Scan {
    next: u64,
    end: u64,
    track: Option<u64>,
    cur: Option<Cursor>,
    visited: u64,
    /// Clusters found, in file order.
    pub clusters: Vec<ScannedCluster>,
}

impl Scan {
    /// A scan of `[start, end)` (end: Segment end or file size) following `track`'s blocks for
    /// keyframes (`None`: timestamps only).
    pub fn new(start: u64, end: u64, track: Option<u64>) -> Self {
        Scan {
            next: start,
            end,
            track,
            cur: None,
            visited: 0,
            clusters: Vec::new(),
        }
    }

    /// Goes on scanning with what `store` holds. Forgets the store's bytes whenever the next
    /// cluster is not held: nothing behind the scan is needed again, and a scan of thousands
    /// of small reads would otherwise make every store lookup slow. (A file the head holds
    /// whole is never forgotten.)
    pub fn run(&mut self, store: &mut Store, file_size: u64) -> Result<Fetch<()>> {
        loop {
            if let Some(cur) = &mut self.cur {
                let first = fetch!(cur.next_block(
                    store,
                    file_size,
                    self.track,
                    HOP_WINDOW,
                    MAX_SCAN_CHILDREN
                ));
                let timestamp = cur.timestamp.ok_or_else(|| {
                    malformed(cur.offset, "Cluster without a Timestamp before its blocks")
                })?;
                self.clusters.push(ScannedCluster {
                    offset: cur.offset,
                    end: cur.end,
                    timestamp,
                    keyframe: first.filter(|b| b.key).map(|b| b.pts),
                });
                self.next = if cur.clipped { self.end } else { cur.end };
                self.cur = None;
                // About to read past everything held (reads only go forward): forget it.
                let next_header = self.next.saturating_add(MAX_HEADER).min(file_size);
                if self.next < self.end.min(file_size) && !store.has(self.next, next_header) {
                    store.clear();
                }
                continue;
            }
            let stop = self.end.min(file_size);
            if self.next >= stop {
                return Ok(Fetch::Got(()));
            }
            let win = self.next.saturating_add(SCAN_WINDOW).min(stop);
            let e = fetch!(header_at(store, file_size, self.next, win));
            self.visited += 1;
            if self.visited > limits::MAX_CLUSTERS {
                return Err(ProbeError::limit(
                    "MAX_CLUSTERS",
                    self.visited,
                    limits::MAX_CLUSTERS,
                ));
            }
            if e.id == id::CLUSTER {
                let end = e.end().ok_or_else(|| {
                    unsupported(format!(
                        "Cluster of unknown size at byte {} (live-written file without Cues)",
                        e.start
                    ))
                })?;
                self.cur = Some(Cursor::new(e.start, e.data, end, file_size));
            } else {
                self.next = e.known_end()?;
            }
        }
    }
}

/// Walks the blocks of the last cluster(s) for the end time of the followed track: the largest
/// block timestamp plus its duration (BlockDuration, else the track's DefaultDuration).
#[derive(Debug, Default)]
pub(crate) struct Tail {
    tried: usize,
    cur: Option<Cursor>,
    best: Option<i64>,
}

impl Tail {
    /// Goes on with what `store` holds. `default_duration`: the track's frame duration in
    /// Segment Ticks. `Got(None)`: no block of `track` in the last clusters.
    pub fn run(
        &mut self,
        store: &Store,
        file_size: u64,
        clusters: &[ScannedCluster],
        track: u64,
        default_duration: Option<u64>,
    ) -> Result<Fetch<Option<i64>>> {
        loop {
            if let Some(cur) = &mut self.cur {
                match fetch!(cur.next_block(
                    store,
                    file_size,
                    Some(track),
                    TAIL_WINDOW,
                    MAX_TAIL_CHILDREN
                )) {
                    Some(b) => {
                        let d = b.duration.or(default_duration).unwrap_or(0);
                        let end = b.pts.saturating_add(i64::try_from(d).unwrap_or(i64::MAX));
                        self.best = Some(self.best.map_or(end, |x| x.max(end)));
                    }
                    None => {
                        self.cur = None;
                        self.tried += 1;
                        if self.best.is_some() {
                            return Ok(Fetch::Got(self.best));
                        }
                    }
                }
                continue;
            }
            if self.tried >= MAX_TAIL_CLUSTERS {
                return Ok(Fetch::Got(self.best));
            }
            let Some(c) = clusters
                .len()
                .checked_sub(self.tried + 1)
                .and_then(|i| clusters.get(i))
            else {
                return Ok(Fetch::Got(self.best));
            };
            // The Cluster header again (the scan forgot its bytes); the Timestamp is met
            // again on the way through the children.
            let win = c.offset.saturating_add(TAIL_WINDOW).min(c.end);
            let e = fetch!(header_at(store, file_size, c.offset, win));
            self.cur = Some(Cursor::new(c.offset, e.data, c.end, file_size));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_block_headers() {
        let h = block_header(&[0x81, 0x00, 0x28, 0x80], 0).unwrap();
        assert_eq!((h.track, h.rel, h.flags), (1, 40, 0x80));
        let h = block_header(&[0x40, 0x02, 0xFF, 0xF6, 0x00], 0).unwrap();
        assert_eq!((h.track, h.rel), (2, -10));
        assert!(block_header(&[0x81, 0x00], 0).is_err());
        assert!(block_header(&[0x00, 0, 0, 0], 0).is_err());
        assert!(block_header(&[], 0).is_err());
    }
}
