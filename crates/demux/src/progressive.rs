//! A progressive MP4 (`ftyp`, `moov`, `mdat` — `moov` first) of chosen tracks of an MP4 file,
//! laid out from the file's sample tables alone: the `download.mp4` of the server.
//!
//! The source's `moov` is kept but for the tracks not chosen, and its chunk offsets are
//! rewritten: the output's `mdat` holds the chosen tracks' chunks in the source's byte order,
//! back to back. So the whole file — its size, its head, and which source bytes each output byte
//! is — is known before a media byte is read ([`Layout`]); any byte range is answered by
//! reading only the source ranges under it ([`Layout::pieces_in`], [`reads`]).
//!
//! The `moov` is hostile input like everything else: its nesting and sample claims are checked
//! by the probe's rules before it is decoded, chunks may not overlap (the output never grows
//! past the source), and at most [`MAX_CHUNKS`] are laid out.

use bytes::Bytes;
use mp4_atom::{Co64, Decode as _, Encode as _, FourCC, Ftyp, Moov, Stco};
use probe::{Container, MediaIndex};

use crate::DemuxError;

const NAME: &str = "download";

fn unsupported(what: impl Into<String>) -> DemuxError {
    DemuxError::Unsupported(what.into())
}

/// Version of the layout rules; part of the download's ETag.
pub const DOWNLOAD_VERSION: u32 = 1;
/// Most chunks of all chosen tracks (a 10-hour film with one chunk per sample has ~3.2 M).
pub const MAX_CHUNKS: usize = 4_000_000;

/// Where output bytes come from: `len` bytes at output offset `out` are source bytes from
/// `src`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// Output offset.
    pub out: u64,
    /// Source offset.
    pub src: u64,
    /// Length.
    pub len: u64,
}

/// One source read serving one or more output pieces: `len` bytes from `src`, of which the
/// `parts` (offset in the read, length) are output bytes, in order (the rest is a gap between
/// chosen tracks' chunks, read rather than asked for separately).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    /// Source offset.
    pub src: u64,
    /// Bytes to read.
    pub len: u64,
    /// The output bytes in it: (offset within the read, length).
    pub parts: Vec<(u64, u64)>,
}

/// Source bytes of a gap read through rather than requested apart (the chunks of a track left
/// out sit between the chosen ones).
pub const READ_THROUGH_GAP: u64 = 256 << 10;
/// Largest single source read.
pub const MAX_READ: u64 = 1 << 20;

/// The reads that bring `pieces` (in output order): pieces closer than [`READ_THROUGH_GAP`]
/// in the source share a read, no read exceeds [`MAX_READ`] (a longer piece is cut).
pub fn reads(pieces: &[Piece]) -> Vec<Read> {
    let mut out: Vec<Read> = Vec::new();
    for p in pieces {
        let mut done = 0;
        while done < p.len {
            let src = p.src + done;
            let take = (p.len - done).min(MAX_READ);
            let joined = out.last_mut().is_some_and(|r| {
                let end = r.src + r.len;
                if src >= end && src - end <= READ_THROUGH_GAP && src + take - r.src <= MAX_READ {
                    r.parts.push((src - r.src, take));
                    r.len = src + take - r.src;
                    true
                } else {
                    false
                }
            });
            if !joined {
                out.push(Read {
                    src,
                    len: take,
                    parts: vec![(0, take)],
                });
            }
            done += take;
        }
    }
    out
}

/// The whole output: its head (`ftyp`, `moov`, the `mdat` header), then source pieces.
#[derive(Debug, Clone)]
pub struct Layout {
    /// `ftyp` + `moov` + the `mdat` header.
    pub head: Bytes,
    /// The `mdat` payload, in output order, contiguous from `head.len()`.
    pub pieces: Vec<Piece>,
    /// Total size in bytes.
    pub size: u64,
    /// A fingerprint of the head (which determines every byte's place), for validators.
    pub fingerprint: u64,
}

/// One chunk of a chosen track: (track position, chunk number in the track, source offset,
/// length).
struct Chunk {
    track: usize,
    number: usize,
    src: u64,
    len: u64,
}

impl Layout {
    /// Lays out the tracks `track_ids` (their order in `moov` is kept) of the MP4 source whose
    /// index is `index` and whose `moov` box is `moov_bytes`. Blocking (it decodes the sample
    /// tables).
    pub fn new(
        index: &MediaIndex,
        moov_bytes: &[u8],
        track_ids: &[u64],
    ) -> Result<Layout, DemuxError> {
        if index.container != Container::Mp4 {
            return Err(unsupported(
                "a progressive copy is made from MP4 files with sample tables",
            ));
        }
        probe::mp4::check_nesting(moov_bytes).map_err(DemuxError::from)?;
        let mut slice = moov_bytes;
        let mut moov = Moov::decode(&mut slice)
            .map_err(|e| DemuxError::malformed(NAME, 0, format!("moov: {e}")))?;
        probe::mp4::check_sample_claims(&moov, index.file_size).map_err(DemuxError::from)?;
        moov.trak
            .retain(|t| track_ids.contains(&u64::from(t.tkhd.track_id)));
        if moov.trak.is_empty() {
            return Err(unsupported("no track to download"));
        }
        moov.mvex = None;
        // Boxes that hold offsets into the source file would point at the wrong bytes: item
        // locations in `meta`, sample auxiliary information (`saiz`/`saio`, `senc`).
        moov.meta = None;
        for trak in &mut moov.trak {
            trak.meta = None;
            trak.senc = None;
            let stbl = &mut trak.mdia.minf.stbl;
            stbl.saiz.clear();
            stbl.saio.clear();
        }

        // Every chunk of every chosen track, from its samples (contiguous within a chunk), by
        // its index in the track's chunk offset table; chunks without samples keep an entry.
        let mut chunks: Vec<Chunk> = Vec::new();
        let mut per_track: Vec<usize> = Vec::with_capacity(moov.trak.len());
        for (ti, trak) in moov.trak.iter().enumerate() {
            let stbl = &trak.mdia.minf.stbl;
            let entries = match (&stbl.co64, &stbl.stco) {
                (Some(c), _) => c.entries.len(),
                (None, Some(c)) => c.entries.len(),
                (None, None) => 0,
            };
            per_track.push(entries);
            let samples = probe::mp4::sample_table(trak).map_err(DemuxError::from)?;
            let mut current: Option<Chunk> = None;
            for s in samples {
                let size = u64::from(s.size);
                let end = s.offset.checked_add(size).filter(|e| *e <= index.file_size);
                if end.is_none() {
                    return Err(unsupported(format!(
                        "track {}: a sample lies beyond the end of the file",
                        trak.tkhd.track_id
                    )));
                }
                let number = s.chunk as usize;
                match current.as_mut() {
                    Some(c) if c.number == number && !s.chunk_start => {
                        if c.src + c.len != s.offset {
                            return Err(unsupported(format!(
                                "track {}: a chunk whose samples are not contiguous",
                                trak.tkhd.track_id
                            )));
                        }
                        c.len += size;
                    }
                    _ => {
                        if let Some(done) = current.take() {
                            chunks.push(done);
                        }
                        if number >= entries {
                            return Err(unsupported(format!(
                                "track {}: a sample in chunk {number} of {entries}",
                                trak.tkhd.track_id
                            )));
                        }
                        current = Some(Chunk {
                            track: ti,
                            number,
                            src: s.offset,
                            len: size,
                        });
                    }
                }
                if chunks.len() > MAX_CHUNKS {
                    return Err(unsupported(format!("more than {MAX_CHUNKS} chunks")));
                }
            }
            chunks.extend(current);
        }
        chunks.sort_by_key(|c| (c.src, c.track));
        // Chunks never share bytes (a crafted table could name the same bytes again and again:
        // the output would grow without bound).
        if chunks.windows(2).any(|w| w[0].src + w[0].len > w[1].src) {
            return Err(unsupported("chunks that overlap in the file"));
        }
        let payload: u64 = chunks.iter().map(|c| c.len).sum();

        // The head's size does not depend on the offsets' values, only on their width: lay
        // out once with zeros, then with the real offsets.
        let ftyp = Ftyp {
            major_brand: FourCC::new(b"isom"),
            minor_version: 512,
            compatible_brands: [b"isom", b"iso2", b"avc1", b"mp41"]
                .iter()
                .map(|b| FourCC::new(b))
                .collect(),
        };
        // 32-bit offsets unless the file reaches 4 GB (the head counted generously: it is at
        // most the source's moov and a little).
        let wide =
            payload.saturating_add(moov_bytes.len() as u64 * 2 + (1 << 20)) > u64::from(u32::MAX);
        let mdat_header: u64 = if wide { 16 } else { 8 };
        let set_offsets = |moov: &mut Moov, offsets: &[Vec<u64>]| -> Result<(), DemuxError> {
            for (trak, offs) in moov.trak.iter_mut().zip(offsets) {
                let stbl = &mut trak.mdia.minf.stbl;
                if wide {
                    stbl.stco = None;
                    stbl.co64 = Some(Co64 {
                        entries: offs.clone(),
                    });
                } else {
                    stbl.co64 = None;
                    let entries = offs
                        .iter()
                        .map(|o| u32::try_from(*o))
                        .collect::<Result<Vec<u32>, _>>()
                        .map_err(|_| unsupported("chunk offset over 4 GB"))?;
                    stbl.stco = Some(Stco { entries });
                }
            }
            Ok(())
        };
        let zeros: Vec<Vec<u64>> = per_track.iter().map(|n| vec![0; *n]).collect();
        set_offsets(&mut moov, &zeros)?;
        let encode = |moov: &Moov| -> Result<Vec<u8>, DemuxError> {
            let mut head = Vec::new();
            ftyp.encode(&mut head)
                .map_err(|e| unsupported(format!("ftyp: {e}")))?;
            moov.encode(&mut head)
                .map_err(|e| unsupported(format!("moov: {e}")))?;
            Ok(head)
        };
        let head_len = encode(&moov)?.len() as u64 + mdat_header;

        // Chunks without samples point at the start of the payload (never read).
        let mut offsets: Vec<Vec<u64>> = per_track.iter().map(|n| vec![head_len; *n]).collect();
        let mut pieces: Vec<Piece> = Vec::with_capacity(chunks.len());
        let mut at = head_len;
        for c in &chunks {
            if let Some(slot) = offsets.get_mut(c.track).and_then(|o| o.get_mut(c.number)) {
                *slot = at;
            }
            match pieces.last_mut() {
                Some(p) if p.src + p.len == c.src => p.len += c.len,
                _ => pieces.push(Piece {
                    out: at,
                    src: c.src,
                    len: c.len,
                }),
            }
            at += c.len;
        }
        set_offsets(&mut moov, &offsets)?;
        let mut head = encode(&moov)?;
        if head.len() as u64 + mdat_header != head_len {
            return Err(unsupported("the moov changed size between its two layouts"));
        }
        let mdat_size = mdat_header + payload;
        if wide {
            head.extend_from_slice(&1u32.to_be_bytes());
            head.extend_from_slice(b"mdat");
            head.extend_from_slice(&mdat_size.to_be_bytes());
        } else {
            let size = u32::try_from(mdat_size).map_err(|_| unsupported("mdat over 4 GB"))?;
            head.extend_from_slice(&size.to_be_bytes());
            head.extend_from_slice(b"mdat");
        }
        let fingerprint = {
            use std::hash::{Hash as _, Hasher as _};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            head.hash(&mut h);
            h.finish()
        };
        Ok(Layout {
            head: Bytes::from(head),
            pieces,
            size: head_len + payload,
            fingerprint,
        })
    }

    /// Heap bytes held (the head and the piece list).
    pub fn heap_bytes(&self) -> usize {
        self.head.len() + self.pieces.capacity() * std::mem::size_of::<Piece>()
    }

    /// The part of the head and the source pieces that make output bytes `[start, end)`:
    /// (head bytes, pieces clipped to the range).
    pub fn pieces_in(&self, start: u64, end: u64) -> (Bytes, Vec<Piece>) {
        let end = end.min(self.size);
        let head_len = self.head.len() as u64;
        let head = if start < head_len {
            self.head.slice(start as usize..end.min(head_len) as usize)
        } else {
            Bytes::new()
        };
        let first = self.pieces.partition_point(|p| p.out + p.len <= start);
        let mut out = Vec::new();
        for p in &self.pieces[first..] {
            if p.out >= end {
                break;
            }
            let a = p.out.max(start);
            let b = (p.out + p.len).min(end);
            out.push(Piece {
                out: a,
                src: p.src + (a - p.out),
                len: b - a,
            });
        }
        (head, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout {
            head: Bytes::from_static(b"0123456789"),
            pieces: vec![
                Piece {
                    out: 10,
                    src: 100,
                    len: 5,
                },
                Piece {
                    out: 15,
                    src: 200,
                    len: 5,
                },
            ],
            size: 20,
            fingerprint: 0,
        }
    }

    #[test]
    fn close_pieces_share_a_read() {
        let pieces = [
            Piece {
                out: 10,
                src: 100,
                len: 5,
            },
            Piece {
                out: 15,
                src: 200,
                len: 5,
            },
            Piece {
                out: 20,
                src: 200 + READ_THROUGH_GAP + 10,
                len: 5,
            },
            Piece {
                out: 25,
                src: 10_000_000,
                len: MAX_READ + 3,
            },
        ];
        let r = reads(&pieces);
        assert_eq!(
            r,
            vec![
                Read {
                    src: 100,
                    len: 105,
                    parts: vec![(0, 5), (100, 5)]
                },
                Read {
                    src: 200 + READ_THROUGH_GAP + 10,
                    len: 5,
                    parts: vec![(0, 5)]
                },
                Read {
                    src: 10_000_000,
                    len: MAX_READ,
                    parts: vec![(0, MAX_READ)]
                },
                Read {
                    src: 10_000_000 + MAX_READ,
                    len: 3,
                    parts: vec![(0, 3)]
                },
            ]
        );
    }

    #[test]
    fn ranges_map_to_the_head_and_source_pieces() {
        let l = layout();
        let (h, p) = l.pieces_in(0, 20);
        assert_eq!(&h[..], b"0123456789");
        assert_eq!(p, l.pieces);
        let (h, p) = l.pieces_in(8, 12);
        assert_eq!(&h[..], b"89");
        assert_eq!(
            p,
            vec![Piece {
                out: 10,
                src: 100,
                len: 2
            }]
        );
        let (h, p) = l.pieces_in(13, 17);
        assert!(h.is_empty());
        assert_eq!(
            p,
            vec![
                Piece {
                    out: 13,
                    src: 103,
                    len: 2
                },
                Piece {
                    out: 15,
                    src: 200,
                    len: 2
                }
            ]
        );
        let (h, p) = l.pieces_in(19, 40);
        assert!(h.is_empty());
        assert_eq!(
            p,
            vec![Piece {
                out: 19,
                src: 204,
                len: 1
            }]
        );
    }
}
