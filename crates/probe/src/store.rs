//! The bytes a probe has been given so far. Container probes ask the store for a range; when it
//! is not there they answer [`Poll::Need`](crate::Poll) and the driver fetches it. Adjacent pushes
//! are merged so a structure that straddles two reads is one contiguous slice.

use crate::limits;
use crate::{ProbeError, Result};

/// A half-open byte range `[start, end)` of the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl ByteRange {
    /// `[start, end)`.
    pub fn new(start: u64, end: u64) -> Self {
        ByteRange { start, end }
    }

    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

/// Fetched byte chunks, keyed by start offset, never overlapping.
#[derive(Debug, Default)]
pub struct Store {
    chunks: Vec<(u64, Vec<u8>)>,
    held: u64,
}

/// Most bytes the store holds at once; older chunks are dropped first past this.
const MAX_HELD: u64 = limits::MAX_MOOV_BYTES + limits::MAX_READ_BYTES;

impl Store {
    /// The bytes `[start, end)` if one chunk holds them all.
    pub fn get(&self, start: u64, end: u64) -> Option<&[u8]> {
        if end < start {
            return None;
        }
        self.chunks.iter().find_map(|(off, data)| {
            let chunk_end = off + data.len() as u64;
            if *off <= start && end <= chunk_end {
                let a = usize::try_from(start - off).ok()?;
                let b = usize::try_from(end - off).ok()?;
                data.get(a..b)
            } else {
                None
            }
        })
    }

    /// Takes bytes `[start, end)` out of the store when one held chunk covers them: the chunk
    /// itself when it is exactly that range (no copy), else a copy of the part.
    pub fn take(&mut self, start: u64, end: u64) -> Option<Vec<u8>> {
        let at = self.chunks.iter().position(|(off, data)| {
            *off <= start && start <= end && end <= off + data.len() as u64
        })?;
        let (off, len) = (self.chunks[at].0, self.chunks[at].1.len() as u64);
        if off == start && len == end - start {
            let (_, data) = self.chunks.swap_remove(at);
            self.held = self.held.saturating_sub(len);
            return Some(data);
        }
        self.get(start, end).map(<[u8]>::to_vec)
    }

    /// End of the held bytes that run contiguously from `start` (`start` itself when none).
    pub fn held_until(&self, start: u64) -> u64 {
        self.chunks
            .iter()
            .find(|(off, d)| *off <= start && start < off + d.len() as u64)
            .map_or(start, |(off, d)| off + d.len() as u64)
    }

    /// Whether `[start, end)` is held.
    pub fn has(&self, start: u64, end: u64) -> bool {
        self.get(start, end).is_some()
    }

    /// Adds bytes read at `offset`, merging with a chunk that ends exactly there.
    pub(crate) fn push(&mut self, offset: u64, data: Vec<u8>) -> Result<()> {
        let len = data.len() as u64;
        if let Some((_, prev)) = self
            .chunks
            .iter_mut()
            .find(|(off, d)| off + d.len() as u64 == offset)
        {
            prev.extend_from_slice(&data);
        } else {
            // Drop any chunk this one covers entirely (a re-read) to keep chunks disjoint.
            self.chunks
                .retain(|(off, d)| !(offset <= *off && off + d.len() as u64 <= offset + len));
            self.chunks.push((offset, data));
        }
        self.held = self.chunks.iter().map(|(_, d)| d.len() as u64).sum();
        while self.held > MAX_HELD && self.chunks.len() > 1 {
            let (_, old) = self.chunks.remove(0);
            self.held -= old.len() as u64;
        }
        if self.held > MAX_HELD {
            return Err(ProbeError::limit("store held bytes", self.held, MAX_HELD));
        }
        Ok(())
    }

    /// Forgets everything (a probe that moves on to a new region calls this).
    pub fn clear(&mut self) {
        self.chunks.clear();
        self.held = 0;
    }
}
