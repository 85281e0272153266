//! Hostile files (issue 10): deep nesting, absurd durations, sample-count bombs, dense
//! keyframes. Every file is built here byte by byte (the valid MP4 skeleton with mp4-atom's
//! encoder), small, and must end in an error or a sane index: no stack overflow, no huge
//! allocation, no quadratic time.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on broken builders

use std::time::{Duration, Instant};

use mp4_atom::{
    Audio, Avc1, Avcc, Codec, Dinf, Dref, DrefEntry, Encode, FourCC, Hdlr, Mdhd, Mdia, Minf, Moov,
    Mp4a, Mvhd, Smhd, Stbl, Stco, Stsc, StscEntry, Stsd, Stsz, StszSamples, Stts, SttsEntry, Tkhd,
    Trak, Url, Visual, Vmhd,
};
use probe::{probe_bytes, ProbeError};

// ---- byte builder --------------------------------------------------------------------------

/// A box: 32-bit size, type, body (ISO/IEC 14496-12 §4.2).
fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(body.len() + 8);
    v.extend_from_slice(&u32::try_from(body.len() + 8).unwrap().to_be_bytes());
    v.extend_from_slice(kind);
    v.extend_from_slice(body);
    v
}

fn ftyp() -> Vec<u8> {
    bx(b"ftyp", b"isom\0\0\x02\0isomiso2avc1mp41")
}

/// `kinds[0]` around `kinds[1]` around … around `inner`; each level adds `prefix` bytes
/// (a full box's version/flags, a sample entry's fixed fields) before its child.
fn nest(kinds: &[&[u8; 4]], prefix: &[u8], inner: Vec<u8>) -> Vec<u8> {
    let mut b = inner;
    for k in kinds.iter().rev() {
        let mut body = prefix.to_vec();
        body.extend_from_slice(&b);
        b = bx(k, &body);
    }
    b
}

fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .expect("probe thread panicked (stack overflow?)")
}

fn assert_limit(r: Result<probe::MediaIndex, ProbeError>, name: &str) {
    match r {
        Err(ProbeError::Limit { limit, .. }) if limit == name => {}
        other => panic!("expected Limit {name}, got {other:?}"),
    }
}

// ---- MP4 skeleton ----------------------------------------------------------------------------

struct TrackSpec {
    video: bool,
    timescale: u32,
    stts: Vec<SttsEntry>,
    stsz: StszSamples,
    stss: Option<Vec<u32>>,
    samples_per_chunk: u32,
}

fn trak(id: u32, t: &TrackSpec, mdat_at: u32) -> Trak {
    let codec = if t.video {
        Codec::Avc1(Avc1 {
            visual: Visual {
                data_reference_index: 1,
                width: 320,
                height: 240,
                ..Visual::default()
            },
            avcc: Avcc {
                configuration_version: 1,
                avc_profile_indication: 66,
                profile_compatibility: 0,
                avc_level_indication: 30,
                length_size: 4,
                ..Avcc::default()
            },
            ..Avc1::default()
        })
    } else {
        let mp4a = Mp4a {
            audio: Audio {
                data_reference_index: 1,
                channel_count: 2,
                sample_size: 16,
                sample_rate: 44100u16.into(),
            },
            esds: mp4_atom::Esds {
                es_desc: mp4_atom::esds::EsDescriptor {
                    es_id: 0,
                    depends_on_es_id: None,
                    url: None,
                    ocr_es_id: None,
                    stream_priority: 0,
                    dec_config: mp4_atom::esds::DecoderConfig {
                        object_type_indication: 0x40,
                        stream_type: 5,
                        up_stream: 0,
                        buffer_size_db: Default::default(),
                        max_bitrate: 0,
                        avg_bitrate: 0,
                        dec_specific: Some(mp4_atom::esds::DecoderSpecific {
                            profile: 0,
                            freq_index: 0,
                            chan_conf: 0,
                            raw: vec![0x12, 0x10],
                        }),
                    },
                    sl_config: mp4_atom::esds::SLConfig {},
                },
            },
            btrt: None,
            taic: None,
        };
        Codec::Mp4a(mp4a)
    };
    Trak {
        tkhd: Tkhd {
            track_id: id,
            enabled: true,
            ..Tkhd::default()
        },
        mdia: Mdia {
            mdhd: Mdhd {
                timescale: t.timescale,
                language: "und".into(),
                ..Mdhd::default()
            },
            hdlr: Hdlr {
                handler: FourCC::new(if t.video { b"vide" } else { b"soun" }),
                name: String::new(),
            },
            minf: Minf {
                vmhd: t.video.then(Vmhd::default),
                smhd: (!t.video).then(Smhd::default),
                dinf: Dinf {
                    dref: Dref {
                        entries: vec![DrefEntry::Url(Url::default())],
                    },
                },
                stbl: Stbl {
                    stsd: Stsd {
                        codecs: vec![codec],
                    },
                    stts: Stts {
                        entries: t.stts.clone(),
                    },
                    stsc: Stsc {
                        entries: vec![StscEntry {
                            first_chunk: 1,
                            samples_per_chunk: t.samples_per_chunk,
                            sample_description_index: 1,
                        }],
                    },
                    stsz: Stsz {
                        samples: t.stsz.clone(),
                    },
                    stss: t.stss.clone().map(|entries| mp4_atom::Stss { entries }),
                    stco: Some(Stco {
                        entries: vec![mdat_at],
                    }),
                    ..Stbl::default()
                },
                ..Minf::default()
            },
        },
        ..Trak::default()
    }
}

/// ftyp, moov, mdat of `mdat_len` bytes; every track's one chunk starts the mdat.
fn mp4(tracks: &[TrackSpec], mdat_len: usize) -> Vec<u8> {
    let build = |mdat_at: u32| {
        let moov = Moov {
            mvhd: Mvhd {
                timescale: 1000,
                next_track_id: u32::try_from(tracks.len()).unwrap() + 1,
                ..Mvhd::default()
            },
            trak: tracks
                .iter()
                .enumerate()
                .map(|(i, t)| trak(u32::try_from(i).unwrap() + 1, t, mdat_at))
                .collect(),
            ..Moov::default()
        };
        let mut out = ftyp();
        moov.encode(&mut out).unwrap();
        out
    };
    let head_len = build(0).len();
    let mut out = build(u32::try_from(head_len + 8).unwrap());
    assert_eq!(out.len(), head_len);
    out.extend_from_slice(&bx(b"mdat", &vec![0u8; mdat_len]));
    out
}

// ---- 1. nesting --------------------------------------------------------------------------------

fn nested_traks(levels: usize) -> Vec<u8> {
    let kinds = vec![b"trak"; levels];
    let mut f = ftyp();
    f.extend(bx(b"moov", &nest(&kinds, &[], Vec::new())));
    f
}

#[test]
fn nested_traks_400_are_a_limit_not_a_crash() {
    let f = nested_traks(400);
    assert!(f.len() < 4096, "{}", f.len());
    on_small_stack(move || assert_limit(probe_bytes(&f), "MAX_DEPTH"));
}

#[test]
fn nested_traks_5000_are_a_limit_not_a_crash() {
    let f = nested_traks(5000);
    on_small_stack(move || assert_limit(probe_bytes(&f), "MAX_DEPTH"));
}

/// Nesting just inside MAX_DEPTH passes the pre-walk, and mp4-atom's recursion at that depth
/// fits a 2 MiB thread stack (tokio's blocking threads) even in a debug build.
#[test]
fn nesting_at_the_limit_fits_a_2_mib_stack() {
    let f = nested_traks(probe::limits::MAX_DEPTH - 1);
    let r = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || probe_bytes(&f))
        .unwrap()
        .join()
        .expect("stack overflow at MAX_DEPTH");
    // Not a limit: mp4-atom rejects the nonsense tree itself.
    assert!(!matches!(r, Err(ProbeError::Limit { .. })), "{r:?}");
}

/// moov/trak/mdia/minf/stbl/stsd, then 400 `avc1` sample entries each inside the previous
/// (78 bytes of VisualSampleEntry fields before each child): mp4-atom decodes every one.
fn nested_sample_entries(levels: usize) -> Vec<u8> {
    let mut visual = vec![0u8; 78];
    visual[7] = 1; // data_reference_index
    let entries = nest(&vec![b"avc1"; levels], &visual, Vec::new());
    let mut stsd_body = vec![0, 0, 0, 0, 0, 0, 0, 1];
    stsd_body.extend(entries);
    let stsd = bx(b"stsd", &stsd_body);
    let mut f = ftyp();
    f.extend(nest(
        &[b"moov", b"trak", b"mdia", b"minf", b"stbl"],
        &[],
        stsd,
    ));
    f
}

#[test]
fn nesting_through_sample_entries_is_a_limit() {
    let f = nested_sample_entries(400);
    on_small_stack(move || assert_limit(probe_bytes(&f), "MAX_DEPTH"));
}

/// moov/udta/meta/meta/… (full boxes: 4 bytes of version and flags before each child).
#[test]
fn nesting_through_udta_meta_is_a_limit() {
    let mut f = ftyp();
    let metas = nest(&vec![b"meta"; 400], &[0, 0, 0, 0], Vec::new());
    f.extend(nest(&[b"moov", b"udta"], &[], metas));
    on_small_stack(move || assert_limit(probe_bytes(&f), "MAX_DEPTH"));
}

/// An `esds` whose ES_Descriptor holds an ES_Descriptor … 400 deep (mp4-atom dispatches
/// descriptors by tag, so it would recurse through every one).
#[test]
fn nesting_through_esds_descriptors_is_a_limit() {
    let mut d: Vec<u8> = Vec::new();
    for _ in 0..400 {
        let mut body = vec![0, 1, 0]; // ES_ID, flags
        body.extend_from_slice(&d);
        let n = u32::try_from(body.len()).unwrap();
        let mut next = vec![
            3,
            0x80 | ((n >> 21) & 0x7F) as u8,
            0x80 | ((n >> 14) & 0x7F) as u8,
            0x80 | ((n >> 7) & 0x7F) as u8,
            (n & 0x7F) as u8,
        ];
        next.extend(body);
        d = next;
    }
    let mut esds_body = vec![0, 0, 0, 0];
    esds_body.extend(d);
    let mut mp4a = vec![0u8; 28];
    mp4a[7] = 1;
    mp4a.extend(bx(b"esds", &esds_body));
    let mut stsd_body = vec![0, 0, 0, 0, 0, 0, 0, 1];
    stsd_body.extend(bx(b"mp4a", &mp4a));
    let mut f = ftyp();
    f.extend(nest(
        &[b"moov", b"trak", b"mdia", b"minf", b"stbl"],
        &[],
        bx(b"stsd", &stsd_body),
    ));
    on_small_stack(move || assert_limit(probe_bytes(&f), "MAX_DEPTH"));
}

#[test]
fn real_nesting_passes_the_pre_walk() {
    let f = mp4(
        &[
            TrackSpec {
                video: true,
                timescale: 1000,
                stts: vec![SttsEntry {
                    sample_count: 10,
                    sample_delta: 40,
                }],
                stsz: StszSamples::Identical {
                    count: 10,
                    size: 10,
                },
                stss: Some(vec![1]),
                samples_per_chunk: 10,
            },
            TrackSpec {
                video: false,
                timescale: 44100,
                stts: vec![SttsEntry {
                    sample_count: 10,
                    sample_delta: 1024,
                }],
                stsz: StszSamples::Identical {
                    count: 10,
                    size: 10,
                },
                stss: None,
                samples_per_chunk: 10,
            },
        ],
        200,
    );
    // A normal thread stack (mp4-atom's debug-build frames need more than 256 KiB here).
    let ix = probe_bytes(&f).unwrap();
    assert_eq!(ix.tracks.len(), 2);
    assert_eq!(ix.keyframes.len(), 1);
    assert!(ix.heap_bytes() < 64 * 1024, "{}", ix.heap_bytes());
}

// ---- 2. durations ------------------------------------------------------------------------------

#[test]
fn aac_only_mp4_with_absurd_stts_is_a_limit() {
    let f = mp4(
        &[TrackSpec {
            video: false,
            timescale: 1,
            stts: vec![SttsEntry {
                sample_count: 94,
                sample_delta: 0xFFFF_FFFF,
            }],
            stsz: StszSamples::Identical { count: 94, size: 1 },
            stss: None,
            samples_per_chunk: 94,
        }],
        94,
    );
    assert_limit(probe_bytes(&f), "MAX_DURATION_SECS");
}

// ---- 3. sample-count bombs -----------------------------------------------------------------

fn stsz_bomb(tracks: usize) -> Vec<u8> {
    let t = || TrackSpec {
        video: false,
        timescale: 44100,
        stts: vec![SttsEntry {
            sample_count: 10_000_000,
            sample_delta: 1,
        }],
        stsz: StszSamples::Identical {
            count: 10_000_000,
            size: 1,
        },
        stss: None,
        samples_per_chunk: 10_000_000,
    };
    let specs: Vec<_> = (0..tracks).map(|_| t()).collect();
    mp4(&specs, 64)
}

fn assert_bounded_error(f: &[u8]) {
    let t0 = Instant::now();
    let r = probe_bytes(f);
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    match r {
        Err(ProbeError::Malformed { what, .. }) => assert!(what.contains("claims"), "{what}"),
        Err(ProbeError::Limit { .. }) => {}
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn stsz_bomb_one_track_is_rejected_before_allocating() {
    let f = stsz_bomb(1);
    assert!(f.len() < 64 * 1024);
    assert_bounded_error(&f);
}

#[test]
fn stsz_bomb_128_tracks_is_rejected_before_allocating() {
    let f = stsz_bomb(128);
    assert!(f.len() < 128 * 1024, "{}", f.len());
    assert_bounded_error(&f);
}

// ---- 5. dense keyframes ------------------------------------------------------------------------

#[test]
fn mp4_with_100k_keyframes_probes_fast() {
    let n = 100_000u32;
    let f = mp4(
        &[TrackSpec {
            video: true,
            timescale: 1000,
            stts: vec![SttsEntry {
                sample_count: n,
                sample_delta: 6000,
            }],
            stsz: StszSamples::Identical { count: n, size: 1 },
            stss: None,
            samples_per_chunk: n,
        }],
        n as usize,
    );
    let t0 = Instant::now();
    let ix = probe_bytes(&f).unwrap();
    let took = t0.elapsed();
    assert_eq!(ix.keyframes.len(), n as usize);
    assert_eq!(ix.duration, u64::from(n) * 6000);
    assert!(ix.heap_bytes() < 16 << 20, "{}", ix.heap_bytes());
    // Debug builds are ~10x slower than release; a quadratic walk would take minutes.
    assert!(took < Duration::from_secs(3), "{took:?}");
}

// ---- seeds ---------------------------------------------------------------------------------------

/// The crafted MP4 files under 64 KB are the fuzz seeds in `fuzz/seeds/probe_mp4`: each is
/// refused by the probe, and the committed seed is byte-identical to what this code makes.
/// `HLSGATE_WRITE_SEEDS=1 cargo test -p probe --test hostile seeds` rewrites them.
#[test]
fn seeds_are_refused_and_committed() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/probe_mp4");
    std::fs::create_dir_all(&dir).unwrap();
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("nested_trak_400.mp4", nested_traks(400)),
        ("nested_avc1_400.mp4", nested_sample_entries(400)),
        ("stsz_bomb_1.mp4", stsz_bomb(1)),
        (
            "aac_stts_absurd.mp4",
            mp4(
                &[TrackSpec {
                    video: false,
                    timescale: 1,
                    stts: vec![SttsEntry {
                        sample_count: 94,
                        sample_delta: 0xFFFF_FFFF,
                    }],
                    stsz: StszSamples::Identical { count: 94, size: 1 },
                    stss: None,
                    samples_per_chunk: 94,
                }],
                94,
            ),
        ),
    ];
    for (name, bytes) in files {
        assert!(bytes.len() < 64 * 1024, "{name}: {}", bytes.len());
        let b = bytes.clone();
        // A 2 MiB stack, like tokio's blocking threads where the server probes.
        let refused = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || probe_bytes(&b).is_err())
            .unwrap()
            .join()
            .unwrap();
        assert!(refused, "{name}");
        if std::env::var_os("HLSGATE_WRITE_SEEDS").is_some() {
            std::fs::write(dir.join(name), bytes).unwrap();
        } else {
            let committed = std::fs::read(dir.join(name)).unwrap();
            assert!(committed == bytes, "{name}: seed out of date");
        }
    }
}
