//! Reads fMP4 outputs with mp4-atom — a parser independent of hlsgate's writer logic — so tests
//! can check tfdt, sample durations and flags from the bytes alone.

use mp4_atom::{Any, DecodeMaybe};

/// One track fragment as read back.
#[derive(Debug, Clone)]
pub struct TrafInfo {
    /// tfhd track_ID.
    pub track_id: u32,
    /// tfdt base media decode time.
    pub tfdt: u64,
    /// Per-sample durations.
    pub durations: Vec<u32>,
    /// Per-sample composition offsets (0 when absent).
    pub ctos: Vec<i64>,
    /// Per-sample flags (0 when absent).
    pub flags: Vec<u32>,
}

impl TrafInfo {
    /// Σ durations.
    pub fn duration(&self) -> u64 {
        self.durations.iter().map(|&d| u64::from(d)).sum()
    }

    /// Presentation times of the samples, in decode order: decode time + composition offset −
    /// `edit` (the init's `elst` media_time, see [`presentation_offsets`]).
    pub fn presentation_times(&self, edit: u64) -> Vec<i64> {
        let mut dts = self.tfdt as i64;
        let mut out = Vec::with_capacity(self.durations.len());
        for (d, c) in self.durations.iter().zip(&self.ctos) {
            out.push(dts + c - edit as i64);
            dts += i64::from(*d);
        }
        out
    }

    /// The earliest presentation time in the run (decode time + composition offset).
    pub fn first_pts(&self) -> i64 {
        let mut dts = self.tfdt as i64;
        let mut best = i64::MAX;
        for (d, c) in self.durations.iter().zip(&self.ctos) {
            best = best.min(dts + c);
            dts += i64::from(*d);
        }
        best
    }
}

/// One `moof` as read back.
#[derive(Debug, Clone)]
pub struct FragmentInfo {
    /// mfhd sequence number.
    pub sequence: u32,
    /// Its track fragments.
    pub trafs: Vec<TrafInfo>,
}

/// Every top-level box of `bytes`, decoded.
fn atoms(bytes: &[u8]) -> Vec<Any> {
    let mut buf = bytes;
    let mut out = Vec::new();
    while !buf.is_empty() {
        match Any::decode_maybe(&mut buf) {
            Ok(Some(a)) => out.push(a),
            Ok(None) => panic!("truncated box with {} bytes left", buf.len()),
            Err(e) => panic!("undecodable box: {e}"),
        }
    }
    out
}

/// The fragments of a media segment (or a whole concatenated stream).
pub fn fragments(bytes: &[u8]) -> Vec<FragmentInfo> {
    atoms(bytes)
        .into_iter()
        .filter_map(|a| match a {
            Any::Moof(m) => Some(m),
            _ => None,
        })
        .map(|m| FragmentInfo {
            sequence: m.mfhd.sequence_number,
            trafs: m
                .traf
                .iter()
                .map(|t| {
                    let mut info = TrafInfo {
                        track_id: t.tfhd.track_id,
                        tfdt: t.tfdt.as_ref().map_or(0, |d| d.base_media_decode_time),
                        durations: vec![],
                        ctos: vec![],
                        flags: vec![],
                    };
                    for run in &t.trun {
                        for e in run.samples.iter() {
                            info.durations.push(
                                e.duration
                                    .or(t.tfhd.default_sample_duration)
                                    .expect("sample duration"),
                            );
                            info.ctos.push(e.cts.unwrap_or(0));
                            info.flags
                                .push(e.flags.or(t.tfhd.default_sample_flags).unwrap_or(0));
                        }
                    }
                    info
                })
                .collect(),
        })
        .collect()
}

/// `track_ID → elst media_time` of an init segment: where each track's presentation starts on
/// its composition timeline (0 without an edit list).
pub fn presentation_offsets(init: &[u8]) -> Vec<(u32, u64)> {
    atoms(init)
        .into_iter()
        .filter_map(|a| match a {
            Any::Moov(m) => Some(m),
            _ => None,
        })
        .flat_map(|m| {
            m.trak
                .iter()
                .map(|t| {
                    let edit = t.edts.as_ref().and_then(|e| e.elst.as_ref());
                    if let Some(elst) = edit {
                        assert_eq!(elst.entries.len(), 1, "one edit");
                    }
                    let time = edit
                        .and_then(|e| e.entries.first())
                        .and_then(|e| e.media_time)
                        .unwrap_or(0);
                    (t.tkhd.track_id, time)
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `track_ID → mdhd timescale` of an init segment.
pub fn timescales(init: &[u8]) -> Vec<(u32, u32)> {
    atoms(init)
        .into_iter()
        .filter_map(|a| match a {
            Any::Moov(m) => Some(m),
            _ => None,
        })
        .flat_map(|m| {
            m.trak
                .iter()
                .map(|t| (t.tkhd.track_id, t.mdia.mdhd.timescale))
                .collect::<Vec<_>>()
        })
        .collect()
}
