//! The blocks of a run of Clusters held in memory (RFC 9559 §5.1.3 Cluster, §10.1 Block
//! Structure, §10.2 SimpleBlock Structure, §11 timestamps): the reader the demuxer uses on a
//! segment's byte range, and the probe on the first cluster for each track's start time.
//!
//! [`BlockReader`] walks top-level elements from any position: Clusters are entered, other
//! top-level and global elements (SeekHead, Info, Tracks, Cues, Tags, Void, CRC-32…) are skipped
//! by their size, the EBML header is skipped and the Segment entered, so the whole file can be
//! read too. A position that is not the start of an element we know (a byte range that begins
//! inside a cluster) is resynchronised to the next Cluster ID whose header parses and whose
//! first child is a Timestamp or CRC-32. A Cluster of unknown size ends at the next top-level
//! element. An element that runs past the end of the bytes ends the walk: its block is cut.
//!
//! Blocks are returned with their lacing still in place ([`Block::payload`]); the header's
//! lacing bits are in [`Block::flags`].

use ebml_iterable::tools::read_vint;

use super::ebml::{id, malformed, name, read_element, uint, unsupported, Element};
use crate::Result;

/// Children of one BlockGroup looked at.
const MAX_GROUP_CHILDREN: usize = 64;

/// One Block or SimpleBlock, lacing not undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block<'a> {
    /// TrackNumber.
    pub track: u64,
    /// Cluster Timestamp + the block's relative timestamp, in Segment Ticks.
    pub timestamp: i64,
    /// SimpleBlock keyframe flag, or a BlockGroup without ReferenceBlock.
    pub keyframe: bool,
    /// BlockDuration (BlockGroup only), Segment Ticks.
    pub duration: Option<u64>,
    /// The header's flags byte (bits 0x06: lacing; 0 none, 1 Xiph, 2 fixed, 3 EBML).
    pub flags: u8,
    /// The bytes after the block header: the frame, or the lace header and frames.
    pub payload: &'a [u8],
    /// Absolute offset of the SimpleBlock or BlockGroup element.
    pub offset: u64,
}

impl Block<'_> {
    /// The lacing of the block: 0 none, 1 Xiph, 2 fixed-size, 3 EBML.
    pub fn lacing(&self) -> u8 {
        (self.flags >> 1) & 3
    }
}

#[derive(Debug, Clone, Copy)]
struct ClusterState {
    /// End of the cluster's data; `None` for an unknown-size cluster.
    end: Option<u64>,
    timestamp: Option<u64>,
}

/// Reads the blocks of the clusters in `data` (file bytes from offset `base`), in storage
/// order. See the module docs.
#[derive(Debug, Clone)]
pub struct BlockReader<'a> {
    data: &'a [u8],
    base: u64,
    pos: u64,
    cluster: Option<ClusterState>,
    /// Set when the walk is over (end of data, or a cut element).
    done: bool,
}

/// Top-level and global elements skipped between Clusters.
fn skippable(element: u32) -> bool {
    matches!(
        element,
        id::EBML
            | id::SEEK_HEAD
            | id::INFO
            | id::TRACKS
            | id::CUES
            | id::TAGS
            | id::CHAPTERS
            | id::ATTACHMENTS
            | id::VOID
            | id::CRC32
    )
}

/// IDs that end a Cluster of unknown size (RFC 9559 §6.2: an element that is not its child).
fn ends_unknown_cluster(element: u32) -> bool {
    element == id::CLUSTER || element == id::SEGMENT || skippable(element) && element != id::VOID
}

impl<'a> BlockReader<'a> {
    /// A reader over `data`, the file's bytes from absolute offset `base`.
    pub fn new(data: &'a [u8], base: u64) -> Self {
        BlockReader {
            data,
            base,
            pos: base,
            cluster: None,
            done: false,
        }
    }

    /// One past the last byte held.
    fn data_end(&self) -> u64 {
        self.base + self.data.len() as u64
    }

    /// The bytes `[from, to)` (absolute), if held.
    fn slice(&self, from: u64, to: u64) -> Option<&'a [u8]> {
        let a = usize::try_from(from.checked_sub(self.base)?).ok()?;
        let b = usize::try_from(to.checked_sub(self.base)?).ok()?;
        self.data.get(a..b)
    }

    /// The element header at `pos`; `None` when the bytes end inside it.
    fn header(&self, pos: u64) -> Result<Option<Element>> {
        let Some(rest) = self.slice(pos, self.data_end()) else {
            return Ok(None);
        };
        read_element(rest, pos)
    }

    /// Next Cluster start after `from` whose header reads and whose first child is a
    /// Timestamp or CRC-32.
    fn resync(&self, from: u64) -> Option<u64> {
        const CLUSTER_ID: [u8; 4] = [0x1F, 0x43, 0xB6, 0x75];
        let start = usize::try_from(from.checked_sub(self.base)?).ok()?;
        let tail = self.data.get(start..)?;
        let mut i = 0usize;
        while let Some(w) = tail.get(i..) {
            let at = w.windows(4).position(|x| x == CLUSTER_ID)?;
            let pos = from + (i + at) as u64;
            if let Ok(Some(e)) = self.header(pos) {
                if let Ok(Some(child)) = self.header(e.data) {
                    if child.id == id::TIMESTAMP || child.id == id::CRC32 {
                        return Some(pos);
                    }
                }
            }
            i += at + 1;
        }
        None
    }

    /// The next block, `None` at the end of the bytes (or at a block cut by the end).
    pub fn next_block(&mut self) -> Result<Option<Block<'a>>> {
        while !self.done {
            if let Some(b) = self.step()? {
                return Ok(Some(b));
            }
        }
        Ok(None)
    }

    /// One element: a block, or `None` after moving on (or ending the walk).
    fn step(&mut self) -> Result<Option<Block<'a>>> {
        let data_end = self.data_end();
        if self.pos >= data_end {
            self.done = true;
            return Ok(None);
        }
        let header = self.header(self.pos);
        let Some(mut c) = self.cluster else {
            return match header {
                Ok(Some(e)) => self.top_level(e),
                Ok(None) => {
                    self.done = true;
                    Ok(None)
                }
                // Not an element start: look for the next Cluster.
                Err(_) => {
                    self.resync_from(self.pos + 1);
                    Ok(None)
                }
            };
        };
        let Some(e) = header? else {
            self.done = true;
            return Ok(None);
        };
        if c.end.is_some_and(|end| self.pos >= end) {
            self.cluster = None;
            return Ok(None);
        }
        if c.end.is_none() && ends_unknown_cluster(e.id) {
            self.cluster = None;
            return Ok(None);
        }
        let Some(end) = e.end() else {
            return Err(unsupported(format!(
                "{} (0x{:X}) of unknown size inside a Cluster at byte {}",
                name(e.id),
                e.id,
                e.start
            )));
        };
        if let Some(cend) = c.end {
            if end > cend {
                return Err(malformed(
                    e.start,
                    format!(
                        "{} (0x{:X}) ends at {end}, past its Cluster's end {cend}",
                        name(e.id),
                        e.id
                    ),
                ));
            }
        }
        let Some(body) = self.slice(e.data, end) else {
            // Cut by the end of the bytes.
            self.done = true;
            return Ok(None);
        };
        self.pos = end;
        match e.id {
            id::TIMESTAMP => {
                c.timestamp = Some(uint(body, e.data, "Cluster Timestamp")?);
                self.cluster = Some(c);
                Ok(None)
            }
            id::SIMPLE_BLOCK => {
                let b = block(body, e.data, c.timestamp, e.start)?;
                Ok(Some(Block {
                    keyframe: b.flags & 0x80 != 0,
                    ..b
                }))
            }
            id::BLOCK_GROUP => self.group(body, e.data, c.timestamp, e.start),
            _ => Ok(None),
        }
    }

    /// An element outside any Cluster.
    fn top_level(&mut self, e: Element) -> Result<Option<Block<'a>>> {
        match e.id {
            id::CLUSTER => {
                self.cluster = Some(ClusterState {
                    end: e.end(),
                    timestamp: None,
                });
                self.pos = e.data;
            }
            id::SEGMENT => self.pos = e.data,
            other if skippable(other) => match e.end() {
                Some(end) => self.pos = end,
                None => {
                    return Err(unsupported(format!(
                        "{} (0x{other:X}) of unknown size at byte {}",
                        name(other),
                        e.start
                    )))
                }
            },
            _ => self.resync_from(self.pos + 1),
        }
        Ok(None)
    }

    /// Moves to the next Cluster at or after `from`, or ends the walk.
    fn resync_from(&mut self, from: u64) {
        match self.resync(from) {
            Some(p) => self.pos = p,
            None => self.done = true,
        }
    }

    /// A BlockGroup's children: Block, BlockDuration, ReferenceBlock.
    fn group(
        &self,
        body: &'a [u8],
        at: u64,
        timestamp: Option<u64>,
        offset: u64,
    ) -> Result<Option<Block<'a>>> {
        let mut pos = 0usize;
        let mut found: Option<Block<'a>> = None;
        let mut duration = None;
        let mut referenced = false;
        for _ in 0..MAX_GROUP_CHILDREN {
            let Some(rest) = body.get(pos..).filter(|r| !r.is_empty()) else {
                break;
            };
            let child_at = at + pos as u64;
            let Some(e) = read_element(rest, child_at)? else {
                return Err(malformed(child_at, "BlockGroup child header cut short"));
            };
            let len = e.end().map(|end| end - child_at).ok_or_else(|| {
                malformed(child_at, "BlockGroup child of unknown size".to_string())
            })?;
            let data = usize::try_from(e.data - child_at).unwrap_or(usize::MAX);
            let Some(child) = usize::try_from(len).ok().and_then(|l| rest.get(data..l)) else {
                return Err(malformed(child_at, "BlockGroup child overruns the group"));
            };
            match e.id {
                id::BLOCK => found = Some(block(child, e.data, timestamp, offset)?),
                id::BLOCK_DURATION => duration = Some(uint(child, e.data, "BlockDuration")?),
                id::REFERENCE_BLOCK => referenced = true,
                _ => {}
            }
            pos += usize::try_from(len).unwrap_or(usize::MAX);
        }
        Ok(found.map(|b| Block {
            keyframe: !referenced,
            duration,
            ..b
        }))
    }
}

/// Decodes a Block/SimpleBlock body `b` found at `at`.
fn block<'a>(b: &'a [u8], at: u64, cluster_ts: Option<u64>, offset: u64) -> Result<Block<'a>> {
    let (track, n) = match read_vint(b) {
        Ok(Some(v)) => v,
        _ => return Err(malformed(at, "block header: bad track number")),
    };
    let Some(&[t0, t1, flags]) = b.get(n..n + 3) else {
        return Err(malformed(at, "block header cut short"));
    };
    let ts = cluster_ts.ok_or_else(|| malformed(at, "block before its Cluster's Timestamp"))?;
    let timestamp = i64::try_from(ts)
        .ok()
        .and_then(|t| t.checked_add(i64::from(i16::from_be_bytes([t0, t1]))))
        .ok_or_else(|| malformed(at, format!("Cluster Timestamp {ts} out of range")))?;
    Ok(Block {
        track,
        timestamp,
        keyframe: false,
        duration: None,
        flags,
        payload: b.get(n + 3..).unwrap_or_default(),
        offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Element bytes: ID, a one-byte size (< 127), data.
    fn el(id: &[u8], data: &[u8]) -> Vec<u8> {
        let mut v = id.to_vec();
        v.push(0x80 | u8::try_from(data.len()).unwrap());
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn reads_blocks_and_groups_and_resyncs() {
        let simple = el(&[0xA3], &[0x81, 0x00, 0x05, 0x80, 1, 2, 3]);
        let group = el(
            &[0xA0],
            &[
                el(&[0xA1], &[0x82, 0xFF, 0xFE, 0x00, 9]),
                el(&[0x9B], &[40]),
                el(&[0xFB], &[0x81]),
            ]
            .concat(),
        );
        let cluster = el(
            &[0x1F, 0x43, 0xB6, 0x75],
            &[el(&[0xE7], &[100]), simple, group].concat(),
        );
        // Garbage first: the reader resyncs to the Cluster.
        let mut data = vec![0x42, 0x00, 0x13, 0x1F, 0x43];
        let at = data.len();
        data.extend_from_slice(&cluster);
        let mut r = BlockReader::new(&data, 1000);
        let a = r.next_block().unwrap().unwrap();
        assert_eq!((a.track, a.timestamp, a.keyframe), (1, 105, true));
        assert_eq!(a.payload, &[1, 2, 3]);
        assert_eq!(a.offset, 1000 + at as u64 + 8);
        let b = r.next_block().unwrap().unwrap();
        assert_eq!((b.track, b.timestamp, b.keyframe), (2, 98, false));
        assert_eq!((b.duration, b.payload), (Some(40), &[9][..]));
        assert!(r.next_block().unwrap().is_none());
        // Cut inside the group: the first block only.
        let mut r = BlockReader::new(&data[..data.len() - 3], 0);
        assert!(r.next_block().unwrap().is_some());
        assert!(r.next_block().unwrap().is_none());
    }

    #[test]
    fn garbage_never_panics() {
        let mut x: u32 = 7;
        for len in 0..400 {
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    [
                        0x1F,
                        0x43,
                        0xB6,
                        0x75,
                        0xE7,
                        0x81,
                        0xA3,
                        0xA0,
                        (x >> 16) as u8,
                    ][(x >> 24) as usize % 9]
                })
                .collect();
            let mut r = BlockReader::new(&buf, 0);
            for _ in 0..1000 {
                match r.next_block() {
                    Ok(Some(_)) => {}
                    _ => break,
                }
            }
        }
    }
}
