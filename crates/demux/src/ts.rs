//! MPEG-TS (ISO/IEC 13818-1): packets (`probe::ts::packet`) of the index's PIDs are gathered
//! into PES packets (`probe::ts::pes`), whose payloads become frames: H.264/HEVC access units
//! rewritten from Annex B, ADTS (ISO/IEC 14496-3 §1.A.2) and AC-3 / E-AC-3 (ATSC A/52 §5.3,
//! Annex E) split into their frames.

use std::collections::BTreeMap;

use probe::codecs::{aac, ac3};
use probe::time::rescale;
use probe::ts::packet::{self, PACKET_LEN, SYNC_BYTE};
use probe::ts::pes;
use probe::{limits, Codec, MediaIndex, TrackKind};

use crate::{DemuxError, Demuxed, Frame, TrackInfo};

const NAME: &str = "mpeg-ts";
/// MPEG-TS timestamps tick at 90 kHz.
const TS_HZ: i64 = 90_000;

#[derive(Debug)]
struct TsTrack {
    info: TrackInfo,
    kind: TrackKind,
}

/// The MPEG-TS demuxer.
#[derive(Debug)]
pub(crate) struct Ts {
    tracks: BTreeMap<u16, TsTrack>,
    /// `(start, end, time)` of the index's spans: the time near a byte offset, to unwrap
    /// 33-bit timestamps against.
    spans: Vec<(u64, u64, i64)>,
    /// Where spans end, sorted: the end of the last packet of some PES.
    span_ends: Vec<u64>,
    start: i64,
    file_size: u64,
}

/// A PES being gathered.
#[derive(Debug, Default)]
struct Open {
    /// Offset of the unit that starts it.
    at: u64,
    rai: bool,
    buf: Vec<u8>,
}

/// A PES read whole, before its payload is turned into frames.
#[derive(Debug)]
struct RawPes {
    at: u64,
    pts: i64,
    dts: i64,
    rai: bool,
    es: Vec<u8>,
}

#[derive(Debug, Default)]
struct PidState {
    open: Option<Open>,
    last: Option<i64>,
    done: Vec<RawPes>,
}

impl Ts {
    /// Heap bytes of the span tables.
    pub fn heap_bytes(&self) -> usize {
        self.spans.capacity() * std::mem::size_of::<(u64, u64, i64)>()
            + self.span_ends.capacity() * 8
    }

    pub fn new(index: &MediaIndex) -> Ts {
        Ts {
            tracks: index
                .tracks
                .iter()
                .filter_map(|t| {
                    let pid = u16::try_from(t.id).ok().filter(|&p| p < 0x1FFF)?;
                    Some((
                        pid,
                        TsTrack {
                            info: TrackInfo::of(t, index.container),
                            kind: t.kind,
                        },
                    ))
                })
                .collect(),
            spans: index
                .spans
                .iter()
                .map(|s| (s.start, s.end, s.time))
                .collect(),
            span_ends: {
                let mut v: Vec<u64> = index.spans.iter().map(|s| s.end).collect();
                v.sort_unstable();
                v.dedup();
                v
            },
            start: index.start,
            file_size: index.file_size,
        }
    }

    /// The index time of the media stored at byte `offset`: the earliest span holding it,
    /// else the nearest span starting after it, else the index start.
    fn reference(&self, offset: u64) -> i64 {
        let holding = self
            .spans
            .iter()
            .filter(|&&(s, e, _)| s <= offset && offset < e)
            .map(|&(_, _, t)| t)
            .min();
        holding
            .or_else(|| {
                self.spans
                    .iter()
                    .filter(|&&(s, _, _)| s >= offset)
                    .min_by_key(|&&(s, _, _)| s)
                    .map(|&(_, _, t)| t)
            })
            .unwrap_or(self.start)
    }

    pub fn frames(&self, bytes: &[u8], offset: u64, out: &mut Demuxed) -> Result<(), DemuxError> {
        let Some(unit) = unit_size(bytes) else {
            if bytes.is_empty() {
                return Ok(());
            }
            return Err(DemuxError::malformed(
                NAME,
                offset,
                "the range does not start at a transport packet (no 0x47 sync byte)",
            ));
        };
        let prefix = unit - PACKET_LEN;
        let reference = self.reference(offset);
        let mut state: BTreeMap<u16, PidState> = BTreeMap::new();
        let mut last_pid = None;
        let mut i = 0usize;
        while let Some(raw) = bytes.get(i + prefix..i + unit) {
            let Ok(pkt) = <&[u8; PACKET_LEN]>::try_from(raw) else {
                break;
            };
            if pkt[0] != SYNC_BYTE {
                i = resync(bytes, i, unit).ok_or_else(|| {
                    DemuxError::malformed(
                        NAME,
                        offset + i as u64,
                        format!(
                            "lost packet sync (no 0x47 every {unit} bytes within {} bytes)",
                            limits::MAX_TS_RESYNC_BYTES
                        ),
                    )
                })?;
                continue;
            }
            let at = offset + i as u64;
            i += unit;
            let h = packet::header(pkt);
            if h.tei || !self.tracks.contains_key(&h.pid) {
                continue;
            }
            let Ok(body) = packet::body(pkt) else {
                continue;
            };
            if body.scrambled {
                continue;
            }
            let st = state.entry(h.pid).or_default();
            if h.pusi {
                if let Some(o) = st.open.take() {
                    close(o, st, reference, offset);
                }
                st.open = Some(Open {
                    at,
                    rai: body.rai,
                    buf: body.payload.to_vec(),
                });
            } else if let Some(o) = st.open.as_mut() {
                o.buf.extend_from_slice(body.payload);
            }
            if !body.payload.is_empty() {
                last_pid = Some(h.pid);
            }
        }
        // An unbounded PES open at the end is whole when the range ends where a span ends (the
        // end of a PES, by the index) and its packet is the range's last, or when the range
        // reaches the end of the media (the last span's end: no stream has a PES after it; an
        // M2TS file often ends with packets of other streams) or of the file.
        let end = offset + bytes.len() as u64;
        let at_span_end = self.span_ends.binary_search(&end).is_ok();
        let at_media_end = self.span_ends.last().is_some_and(|&e| end >= e);
        for (&pid, st) in state.iter_mut() {
            if let Some(o) = st.open.take() {
                let last =
                    (at_span_end && Some(pid) == last_pid) || at_media_end || end >= self.file_size;
                if complete(&o, last) {
                    close(o, st, reference, offset);
                }
            }
        }
        for (pid, st) in state {
            let Some(t) = self.tracks.get(&pid) else {
                continue;
            };
            let frames = out.tracks.entry(t.info.id).or_default();
            for p in st.done {
                t.push_frames(p, frames)?;
            }
        }
        Ok(())
    }
}

/// Whether a PES open at the end of the range is whole: its `PES_packet_length` says so, or
/// (for an unbounded PES) `last`: its packets end the range (or the file).
fn complete(o: &Open, last: bool) -> bool {
    match pes::parse(&o.buf) {
        pes::Parsed::Header(h) if h.packet_length > 0 => o.buf.len() >= 6 + h.packet_length,
        pes::Parsed::Header(_) => last,
        _ => false,
    }
}

/// A whole PES: parses its header, unwraps its timestamps, keeps its payload. A PES without a
/// PTS continues the one before it.
fn close(o: Open, st: &mut PidState, reference: i64, _offset: u64) {
    let pes::Parsed::Header(h) = pes::parse(&o.buf) else {
        return;
    };
    let end = if h.packet_length > 0 {
        (6 + h.packet_length).min(o.buf.len())
    } else {
        o.buf.len()
    };
    let es = o.buf.get(h.payload_offset..end).unwrap_or_default();
    let Some(raw_pts) = h.pts else {
        if let Some(prev) = st.done.last_mut() {
            prev.es.extend_from_slice(es);
        }
        return;
    };
    let pts = pes::unwrap(raw_pts, st.last.unwrap_or(reference));
    st.last = Some(pts);
    let dts = h.dts.map_or(pts, |d| pes::unwrap(d, pts));
    st.done.push(RawPes {
        at: o.at,
        pts,
        dts,
        rai: o.rai,
        es: es.to_vec(),
    });
}

impl TsTrack {
    fn push_frames(&self, p: RawPes, out: &mut Vec<Frame>) -> Result<(), DemuxError> {
        if let Some(f) = self.info.nal {
            let (data, idr) = f.rewrite_au(&p.es, p.at)?;
            out.push(Frame {
                pts: p.pts,
                dts: Some(p.dts),
                duration: None,
                keyframe: idr || p.rai,
                data,
            });
            return Ok(());
        }
        let split: Option<Vec<(&[u8], i64, i64)>> = match self.info.codec {
            Codec::Aac => Some(
                split_adts(&p.es)
                    .into_iter()
                    .map(|(d, rate)| (d, 1024, i64::from(rate)))
                    .collect(),
            ),
            Codec::Ac3 | Codec::Eac3 => Some(
                split_ac3(&p.es)
                    .into_iter()
                    .map(|(d, samples, rate)| (d, i64::from(samples), i64::from(rate)))
                    .collect(),
            ),
            _ => None,
        };
        let key = self.kind != TrackKind::Video || p.rai;
        match split {
            Some(frames) => {
                let mut samples = 0i64;
                for (data, n, rate) in frames {
                    let shift = rescale(samples, TS_HZ, rate);
                    out.push(Frame {
                        pts: p.pts.saturating_add(shift),
                        dts: Some(p.dts.saturating_add(shift)),
                        duration: None,
                        keyframe: true,
                        data: data.to_vec(),
                    });
                    samples = samples.saturating_add(n);
                }
            }
            None => out.push(Frame {
                pts: p.pts,
                dts: Some(p.dts),
                duration: None,
                keyframe: key,
                data: p.es,
            }),
        }
        Ok(())
    }
}

/// Bytes per unit: 188, or 192 (M2TS: a 4-byte timecode, then the packet).
fn unit_size(bytes: &[u8]) -> Option<usize> {
    if let Some(l) = probe::ts::sync_layout(bytes) {
        return Some(l.packet_size);
    }
    // Fewer than three packets.
    if bytes.first() == Some(&SYNC_BYTE) {
        Some(188)
    } else if bytes.get(4) == Some(&SYNC_BYTE) {
        Some(192)
    } else {
        None
    }
}

/// The next unit start after `i` whose sync byte is confirmed by the next unit's (or by the
/// end of the bytes), within [`limits::MAX_TS_RESYNC_BYTES`].
fn resync(bytes: &[u8], i: usize, unit: usize) -> Option<usize> {
    let prefix = unit - PACKET_LEN;
    (i + 1..=i + limits::MAX_TS_RESYNC_BYTES)
        .take_while(|j| j + prefix < bytes.len())
        .find(|&j| {
            bytes.get(j + prefix) == Some(&SYNC_BYTE)
                && bytes.get(j + prefix + unit).is_none_or(|&b| b == SYNC_BYTE)
        })
}

/// Splits ADTS frames (ISO/IEC 14496-3 §1.A.2): each raw access unit (header stripped) with
/// its sample rate. Bytes before a sync word are skipped; a frame cut by the end is dropped.
pub fn split_adts(es: &[u8]) -> Vec<(&[u8], u32)> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while let Some(rest) = es.get(pos..).filter(|r| r.len() >= 7) {
        let Some(h) = aac::parse_adts(rest) else {
            pos += 1;
            continue;
        };
        let len = usize::from(h.frame_length);
        let Some(data) = rest.get(usize::from(h.header_length)..len) else {
            break;
        };
        out.push((data, h.sample_rate()));
        pos += len;
    }
    out
}

/// Splits AC-3 and E-AC-3 sync frames (ATSC A/52 §5.3.1, Annex E §E.1.2.1): each frame with
/// its sample count and rate. Bytes before a sync word are skipped; a cut frame is dropped.
pub fn split_ac3(es: &[u8]) -> Vec<(&[u8], u32, u32)> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while let Some(b) = es.get(pos..).filter(|r| r.len() >= 6) {
        let Some(f) = ac3::parse(b) else {
            pos += 1;
            continue;
        };
        let Some(data) = b.get(..f.frame_bytes) else {
            break;
        };
        out.push((data, f.samples, f.sample_rate));
        pos += f.frame_bytes;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ADTS header for an AAC-LC 48 kHz stereo frame of `len` bytes in all.
    fn adts(len: usize) -> Vec<u8> {
        let l = len as u16;
        vec![
            0xFF,
            0xF1,
            0x4C,
            0x80 | ((l >> 11) as u8 & 3),
            (l >> 3) as u8,
            (((l & 7) as u8) << 5) | 0x1F,
            0xFC,
        ]
    }

    #[test]
    fn splits_adts_frames() {
        let mut es = adts(10);
        es.extend([1, 1, 1]);
        es.extend(adts(9));
        es.extend([2, 2]);
        // A cut third frame.
        es.extend(adts(20));
        es.extend([3]);
        let f = split_adts(&es);
        assert_eq!(f, vec![(&[1u8, 1, 1][..], 48_000), (&[2u8, 2][..], 48_000)]);
        // Junk before the first sync word is skipped.
        let mut junk = vec![0, 1, 2];
        junk.extend(adts(8));
        junk.push(9);
        assert_eq!(split_adts(&junk), vec![(&[9u8][..], 48_000)]);
        assert!(split_adts(&[0xFF, 0xF1]).is_empty());
    }

    #[test]
    fn adts_frames_get_interpolated_times() {
        let t = TsTrack {
            info: TrackInfo {
                id: 257,
                codec: Codec::Aac,
                timescale: 90_000,
                sample_rate: 44_100,
                nal: None,
                default_duration_ns: None,
                delay: 0,
            },
            kind: TrackKind::Audio,
        };
        let mut es = Vec::new();
        for _ in 0..3 {
            es.extend(adts(8));
            es.push(0xAB);
        }
        // 44.1 kHz header.
        for i in 0..3 {
            es[i * 8 + 2] = 0x50;
        }
        let mut out = Vec::new();
        t.push_frames(
            RawPes {
                at: 0,
                pts: 1000,
                dts: 1000,
                rai: false,
                es,
            },
            &mut out,
        )
        .unwrap();
        let pts: Vec<i64> = out.iter().map(|f| f.pts).collect();
        // 1024 × 90000 / 44100 = 2089.8 ticks per frame.
        assert_eq!(pts, [1000, 3090, 5180]);
        assert!(out.iter().all(|f| f.keyframe && f.data == [0xAB]));
    }

    #[test]
    fn splits_ac3_frames() {
        // AC-3 48 kHz, frmsizecod 0 (32 kb/s): 64 words = 128 bytes.
        let mut frame = vec![0x0B, 0x77, 0, 0, 0x00, 0x40];
        frame.resize(128, 0);
        let mut es = frame.clone();
        es.extend(&frame);
        es.extend(&frame[..50]);
        let f = split_ac3(&es);
        assert_eq!(f.len(), 2);
        assert_eq!((f[0].0.len(), f[0].1, f[0].2), (128, 1536, 48_000));
        // E-AC-3: frmsiz 9 → 20 bytes, 48 kHz, 6 blocks.
        let mut e = vec![0x0B, 0x77, 0x00, 0x09, 0x34, 0x80];
        e.resize(20, 0);
        let f = split_ac3(&e);
        assert_eq!((f[0].0.len(), f[0].1, f[0].2), (20, 1536, 48_000));
    }
}
