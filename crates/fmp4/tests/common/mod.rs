//! Test support: the samples of a progressive MP4 fixture, read with mp4-atom (not with our
//! writer), and ffprobe helpers.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

use mp4_atom::{Any, Codec, DecodeMaybe, StszSamples};

/// One sample of a fixture track, as its moov tables say.
#[derive(Debug, Clone, Copy)]
pub struct FxSample {
    pub offset: u64,
    pub size: u32,
    pub duration: u32,
    /// ctts offset (0 without ctts).
    pub cts: i64,
    pub sync: bool,
}

/// A fixture track: its codec setup and samples in decode order.
#[derive(Debug, Clone)]
pub struct FxTrack {
    pub video: bool,
    pub timescale: u32,
    /// avcC payload (video) or AudioSpecificConfig (audio), as stored.
    pub config: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub sample_rate: u32,
    pub channels: u16,
    pub samples: Vec<FxSample>,
}

/// The payload of the first box of type `kind` found anywhere in `file` (a byte search: good
/// enough for a fixture where `avcC` occurs once).
fn raw_box_payload(file: &[u8], kind: &[u8; 4]) -> Vec<u8> {
    let at = file
        .windows(4)
        .position(|w| w == kind)
        .expect("box in fixture");
    let size = u32::from_be_bytes(file[at - 4..at].try_into().unwrap()) as usize;
    file[at + 4..at - 4 + size].to_vec()
}

/// Reads a progressive MP4's moov and expands its sample tables.
pub fn read_mp4(path: &Path) -> (Vec<u8>, Vec<FxTrack>) {
    let file = std::fs::read(path).unwrap();
    let mut buf = &file[..];
    let mut moov = None;
    while let Some(atom) = Any::decode_maybe(&mut buf).unwrap() {
        if let Any::Moov(m) = atom {
            moov = Some(m);
        }
    }
    let moov = moov.expect("moov");
    let mut tracks = Vec::new();
    for trak in &moov.trak {
        let stbl = &trak.mdia.minf.stbl;
        let (video, config, width, height, sample_rate, channels) = match &stbl.stsd.codecs[0] {
            Codec::Avc1(avc1) => (
                true,
                raw_box_payload(&file, b"avcC"),
                u32::from(avc1.visual.width),
                u32::from(avc1.visual.height),
                0,
                0,
            ),
            Codec::Mp4a(mp4a) => (
                false,
                mp4a.esds
                    .es_desc
                    .dec_config
                    .dec_specific
                    .as_ref()
                    .unwrap()
                    .raw
                    .clone(),
                0,
                0,
                u32::from(mp4a.audio.sample_rate.integer()),
                mp4a.audio.channel_count,
            ),
            other => panic!("unexpected codec {other:?}"),
        };

        let sizes: Vec<u32> = match &stbl.stsz.samples {
            StszSamples::Identical { count, size } => vec![*size; *count as usize],
            StszSamples::Different { sizes } => sizes.clone(),
        };
        let n = sizes.len();
        let durations: Vec<u32> = stbl
            .stts
            .entries
            .iter()
            .flat_map(|e| std::iter::repeat_n(e.sample_delta, e.sample_count as usize))
            .collect();
        let cts: Vec<i64> = match &stbl.ctts {
            Some(ctts) => ctts
                .entries
                .iter()
                .flat_map(|e| std::iter::repeat_n(e.sample_offset, e.sample_count as usize))
                .collect(),
            None => vec![0; n],
        };
        let chunks: Vec<u64> = match (&stbl.stco, &stbl.co64) {
            (Some(stco), _) => stco.entries.iter().map(|&o| u64::from(o)).collect(),
            (None, Some(co64)) => co64.entries.clone(),
            _ => panic!("no chunk offsets"),
        };
        // stsc: samples per chunk, by chunk (1-based first_chunk runs).
        let mut offsets = Vec::with_capacity(n);
        for (c, &chunk_offset) in chunks.iter().enumerate() {
            let per_chunk = stbl
                .stsc
                .entries
                .iter()
                .rev()
                .find(|e| e.first_chunk as usize <= c + 1)
                .unwrap()
                .samples_per_chunk;
            let mut at = chunk_offset;
            for _ in 0..per_chunk {
                let i = offsets.len();
                if i == n {
                    break;
                }
                offsets.push(at);
                at += u64::from(sizes[i]);
            }
        }
        assert_eq!(offsets.len(), n);
        assert_eq!(durations.len(), n);
        assert_eq!(cts.len(), n);
        let sync: Vec<bool> = match &stbl.stss {
            Some(stss) => (1..=n as u32).map(|i| stss.entries.contains(&i)).collect(),
            None => vec![true; n],
        };
        tracks.push(FxTrack {
            video,
            timescale: trak.mdia.mdhd.timescale,
            config,
            width,
            height,
            sample_rate,
            channels,
            samples: (0..n)
                .map(|i| FxSample {
                    offset: offsets[i],
                    size: sizes[i],
                    duration: durations[i],
                    cts: cts[i],
                    sync: sync[i],
                })
                .collect(),
        });
    }
    (file, tracks)
}

/// Runs ffprobe and returns stdout (asserting success).
pub fn ffprobe(path: &Path, args: &[&str]) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(args)
        .arg(path)
        .output()
        .expect("run ffprobe");
    assert!(
        out.status.success(),
        "ffprobe {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A packet as ffprobe reports it, in stream time base units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbePacket {
    pub stream: u32,
    pub pts: i64,
    pub dts: i64,
    /// `None` where ffprobe prints N/A.
    pub duration: Option<i64>,
    pub size: u64,
    pub key: bool,
}

/// Every packet of `path`, per ffprobe.
pub fn probe_packets(path: &Path) -> Vec<ProbePacket> {
    ffprobe(
        path,
        &[
            "-show_entries",
            "packet=stream_index,pts,dts,duration,size,flags",
            "-of",
            "csv=p=0",
        ],
    )
    .lines()
    .map(|l| {
        let f: Vec<&str> = l.split(',').collect();
        assert_eq!(f.len(), 6, "packet line {l:?}");
        ProbePacket {
            stream: f[0].parse().unwrap(),
            pts: f[1].parse().unwrap(),
            dts: f[2].parse().unwrap(),
            duration: f[3].parse().ok().or_else(|| {
                assert_eq!(f[3], "N/A", "packet line {l:?}");
                None
            }),
            size: f[4].parse().unwrap(),
            key: f[5].starts_with('K'),
        }
    })
    .collect()
}
