//! What we write, read back with mp4-atom's decoder (a parser we did not write), field by field.

// Test code: unwrap/expect are how a test fails (as in the hlsgate-tests crate).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mp4_atom::{Codec, Decode, DrefEntry, Ftyp, Mdat, Moof, Moov, StszSamples, Styp};

use fmp4::{init_segment, media_segment, Run, Sample, SampleEntry, TrackSpec};

/// A baseline-profile avcC: version 1, profile 66, level 30, 4-byte lengths, one SPS, one PPS.
const AVCC: &[u8] = &[
    1, 66, 0xC0, 30, 0xFF, 0xE1, 0, 4, 0x67, 0x42, 0xC0, 0x1E, 1, 0, 2, 0x68, 0xCE,
];
/// An hvcC with no parameter-set arrays: version 1, Main profile, level 93, 4-byte lengths.
const HVCC: &[u8] = &[
    1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 93, 0xF0, 0, 0xFC, 0xFD, 0xF8, 0xF8, 0, 0, 0x0F, 0,
];
/// AAC-LC, 96 kHz (index 3), stereo.
const ASC: &[u8] = &[0x11, 0x90];

fn tracks() -> Vec<TrackSpec> {
    vec![
        TrackSpec {
            id: 1,
            timescale: 12_800,
            entry: SampleEntry::Avc {
                config: AVCC.to_vec(),
            },
            width: 320,
            height: 240,
            rotation: 90,
            sample_rate: 0,
            channels: 0,
            language: Some("eng".into()),
            avg_bitrate: 0,
            max_bitrate: 0,
            presentation_offset: 0,
        },
        TrackSpec {
            id: 2,
            timescale: 96_000,
            entry: SampleEntry::Aac { asc: ASC.to_vec() },
            width: 0,
            height: 0,
            rotation: 0,
            sample_rate: 96_000,
            channels: 2,
            language: None,
            avg_bitrate: 128_000,
            max_bitrate: 160_000,
            presentation_offset: 0,
        },
        TrackSpec {
            id: 7,
            timescale: 90_000,
            entry: SampleEntry::Hevc {
                config: HVCC.to_vec(),
            },
            width: 1920,
            height: 1080,
            rotation: 270,
            sample_rate: 0,
            channels: 0,
            language: Some("fra".into()),
            avg_bitrate: 5_000_000,
            max_bitrate: 8_000_000,
            presentation_offset: 3_000,
        },
    ]
}

/// The payload of the box `kind` found by searching `bytes` (each such box occurs once).
fn payload<'a>(bytes: &'a [u8], kind: &[u8; 4]) -> &'a [u8] {
    let at = bytes.windows(4).position(|w| w == kind).unwrap();
    let size = u32::from_be_bytes(bytes[at - 4..at].try_into().unwrap()) as usize;
    &bytes[at + 4..at - 4 + size]
}

#[test]
fn init_segment_decodes_with_mp4_atom() {
    let tracks = tracks();
    let bytes = init_segment(&tracks).unwrap();
    let mut buf = &bytes[..];
    let ftyp = Ftyp::decode(&mut buf).unwrap();
    let moov = Moov::decode(&mut buf).unwrap();
    assert!(buf.is_empty(), "nothing after moov");

    assert_eq!(ftyp.major_brand, b"iso6".into());
    assert_eq!(ftyp.minor_version, 0);
    // Three tracks: not a CMAF header, so no cmfc.
    let brands: Vec<_> = [b"iso6", b"mp41", b"iso5", b"dash"]
        .iter()
        .map(|b| mp4_atom::FourCC::new(b))
        .collect();
    assert_eq!(ftyp.compatible_brands, brands);

    assert_eq!(moov.mvhd.timescale, 1000);
    assert_eq!(moov.mvhd.duration, 0);
    assert_eq!(moov.mvhd.creation_time, 0);
    assert_eq!(moov.mvhd.modification_time, 0);
    assert_eq!(moov.mvhd.next_track_id, 8);
    assert_eq!(moov.trak.len(), 3);

    for (trak, spec) in moov.trak.iter().zip(&tracks) {
        let video = spec.entry.is_video();
        let tkhd = &trak.tkhd;
        assert_eq!(tkhd.track_id, spec.id);
        assert!(tkhd.enabled && tkhd.in_movie);
        assert_eq!((tkhd.duration, tkhd.creation_time), (0, 0));
        assert_eq!(tkhd.width.integer(), spec.width as u16);
        assert_eq!(tkhd.height.integer(), spec.height as u16);
        assert_eq!(tkhd.volume.integer(), if video { 0 } else { 1 });
        let m = &tkhd.matrix;
        let one = 0x1_0000;
        let (w, h) = ((spec.width as i32) << 16, (spec.height as i32) << 16);
        let expect = match spec.rotation {
            0 => [one, 0, 0, one, 0, 0],
            90 => [0, one, -one, 0, h, 0],
            270 => [0, -one, one, 0, 0, w],
            r => panic!("rotation {r} not in this test"),
        };
        assert_eq!([m.a, m.b, m.c, m.d, m.x, m.y], expect, "track {}", spec.id);
        assert_eq!((m.u, m.v, m.w), (0, 0, 0x4000_0000));
        if spec.presentation_offset == 0 {
            assert!(trak.edts.is_none(), "track {}: no edit list", spec.id);
        } else {
            let elst = trak.edts.as_ref().and_then(|e| e.elst.as_ref()).unwrap();
            assert_eq!(elst.entries.len(), 1, "track {}: one edit", spec.id);
            let e = &elst.entries[0];
            assert_eq!(e.segment_duration, 0);
            assert_eq!(e.media_time, Some(u64::from(spec.presentation_offset)));
            assert_eq!(e.media_rate, mp4_atom::FixedPoint::from(1i16));
        }

        let mdia = &trak.mdia;
        assert_eq!(mdia.mdhd.timescale, spec.timescale);
        assert_eq!(mdia.mdhd.duration, 0);
        assert_eq!(
            mdia.mdhd.language,
            spec.language.clone().unwrap_or_else(|| "und".into())
        );
        assert_eq!(
            mdia.hdlr.handler,
            mp4_atom::FourCC::new(if video { b"vide" } else { b"soun" })
        );
        let minf = &mdia.minf;
        assert_eq!(minf.vmhd.is_some(), video);
        assert_eq!(minf.smhd.is_some(), !video);
        match &minf.dinf.dref.entries[..] {
            [DrefEntry::Url(url)] => assert_eq!(url.location, ""),
            other => panic!("dref {other:?}"),
        }
        let stbl = &minf.stbl;
        assert!(stbl.stts.entries.is_empty());
        assert!(stbl.stsc.entries.is_empty());
        assert_eq!(stbl.stsz.samples, StszSamples::Different { sizes: vec![] });
        assert!(stbl.stco.as_ref().unwrap().entries.is_empty());
        assert!(stbl.ctts.is_none() && stbl.stss.is_none());
        assert_eq!(stbl.stsd.codecs.len(), 1);
        match (&stbl.stsd.codecs[0], &spec.entry) {
            (Codec::Avc1(avc1), SampleEntry::Avc { .. }) => {
                assert_eq!(avc1.visual.width, 320);
                assert_eq!(avc1.visual.height, 240);
                assert_eq!(avc1.visual.data_reference_index, 1);
                assert_eq!(avc1.avcc.avc_profile_indication, 66);
                assert_eq!(avc1.avcc.avc_level_indication, 30);
                assert_eq!(avc1.avcc.length_size, 4);
                assert_eq!(
                    avc1.avcc.sequence_parameter_sets,
                    vec![AVCC[8..12].to_vec()]
                );
                assert_eq!(avc1.avcc.picture_parameter_sets, vec![AVCC[15..].to_vec()]);
                assert!(avc1.btrt.is_none(), "no bitrate, no btrt");
                assert_eq!(payload(&bytes, b"avcC"), AVCC, "avcC copied byte for byte");
            }
            (Codec::Hvc1(hvc1), SampleEntry::Hevc { .. }) => {
                assert_eq!((hvc1.visual.width, hvc1.visual.height), (1920, 1080));
                assert_eq!(hvc1.hvcc.general_profile_idc, 1);
                assert_eq!(hvc1.hvcc.general_level_idc, 93);
                assert_eq!(hvc1.hvcc.length_size_minus_one, 3);
                let btrt = hvc1.btrt.as_ref().unwrap();
                assert_eq!((btrt.avg_bitrate, btrt.max_bitrate), (5_000_000, 8_000_000));
                assert_eq!(payload(&bytes, b"hvcC"), HVCC, "hvcC copied byte for byte");
            }
            (Codec::Mp4a(mp4a), SampleEntry::Aac { .. }) => {
                assert_eq!(mp4a.audio.channel_count, 2);
                assert_eq!(mp4a.audio.sample_size, 16);
                assert_eq!(mp4a.audio.data_reference_index, 1);
                // 96 kHz does not fit the 16.16 field: 0, the ASC says the rate.
                assert_eq!(mp4a.audio.sample_rate.integer(), 0);
                let es = &mp4a.esds.es_desc;
                assert_eq!(es.es_id, 0);
                let dc = &es.dec_config;
                assert_eq!(dc.object_type_indication, 0x40);
                assert_eq!(dc.stream_type, 5);
                assert_eq!(u32::from(dc.buffer_size_db), 768 * 2);
                assert_eq!((dc.avg_bitrate, dc.max_bitrate), (128_000, 160_000));
                let ds = dc.dec_specific.as_ref().unwrap();
                assert_eq!(ds.raw, ASC);
                assert_eq!((ds.profile, ds.freq_index, ds.chan_conf), (2, 3, 2));
                let btrt = mp4a.btrt.as_ref().unwrap();
                assert_eq!((btrt.avg_bitrate, btrt.max_bitrate), (128_000, 160_000));
            }
            (codec, entry) => panic!("{codec:?} written for {entry:?}"),
        }
    }

    let mvex = moov.mvex.as_ref().unwrap();
    assert!(mvex.mehd.is_none());
    assert_eq!(
        mvex.trex.iter().map(|t| t.track_id).collect::<Vec<_>>(),
        vec![1, 2, 7]
    );
    for trex in &mvex.trex {
        assert_eq!(trex.default_sample_description_index, 1);
    }
}

#[test]
fn single_track_init_claims_cmaf() {
    let bytes = init_segment(&tracks()[..1]).unwrap();
    let ftyp = Ftyp::decode(&mut &bytes[..]).unwrap();
    assert!(ftyp.compatible_brands.contains(&b"cmfc".into()));
}

/// Deterministic pseudo-random sample bytes.
fn data(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn media_segment_decodes_with_mp4_atom() {
    let video_data: Vec<Vec<u8>> = (0..5).map(|i| data(i, 100 + 37 * i as usize)).collect();
    let audio_data: Vec<Vec<u8>> = (0..3).map(|i| data(50 + i, 20 + i as usize)).collect();
    let hevc_data = data(99, 1000);
    // I P B B P in decode order, presented I B B P P: offsets relative to dts.
    let offsets = [0, 1536, -512, -512, 512];
    let runs = vec![
        Run {
            track_id: 1,
            base_decode_time: 1_234_567_890_123,
            samples: video_data
                .iter()
                .enumerate()
                .map(|(i, d)| Sample {
                    data: d,
                    duration: 512,
                    composition_offset: offsets[i],
                    keyframe: i == 0,
                })
                .collect(),
        },
        Run {
            track_id: 2,
            base_decode_time: 48_000,
            samples: audio_data
                .iter()
                .map(|d| Sample {
                    data: d,
                    duration: 1024,
                    composition_offset: 0,
                    keyframe: true,
                })
                .collect(),
        },
        Run {
            track_id: 7,
            base_decode_time: 0,
            samples: vec![Sample {
                data: &hevc_data,
                duration: 3000,
                composition_offset: 0,
                keyframe: false,
            }],
        },
    ];
    let bytes = media_segment(42, &runs).unwrap();

    let mut buf = &bytes[..];
    let styp = Styp::decode(&mut buf).unwrap();
    assert_eq!(styp.major_brand, b"msdh".into());
    assert!(styp.compatible_brands.contains(&b"msdh".into()));
    assert!(styp.compatible_brands.contains(&b"iso6".into()));
    let moof_start = bytes.len() - buf.len();
    let moof = Moof::decode(&mut buf).unwrap();
    let mdat_start = bytes.len() - buf.len();
    let mdat = Mdat::decode(&mut buf).unwrap();
    assert!(buf.is_empty(), "nothing after mdat");

    assert_eq!(moof.mfhd.sequence_number, 42);
    assert_eq!(moof.traf.len(), 3);
    let mut all_data = Vec::new();
    for (traf, run) in moof.traf.iter().zip(&runs) {
        let tfhd = &traf.tfhd;
        assert_eq!(tfhd.track_id, run.track_id);
        assert!(tfhd.default_base_is_moof);
        assert_eq!(tfhd.base_data_offset, None);
        assert_eq!(tfhd.sample_description_index, None);
        assert_eq!(tfhd.default_sample_duration, None);
        assert_eq!(tfhd.default_sample_size, None);
        assert_eq!(tfhd.default_sample_flags, None);
        assert_eq!(
            traf.tfdt.as_ref().unwrap().base_media_decode_time,
            run.base_decode_time
        );
        assert_eq!(traf.trun.len(), 1);
        let trun = &traf.trun[0];
        let entries: Vec<_> = trun.samples.iter().collect();
        assert_eq!(entries.len(), run.samples.len());
        let with_cts = run.samples.iter().any(|s| s.composition_offset != 0);
        for (e, s) in entries.iter().zip(&run.samples) {
            assert_eq!(e.duration, Some(s.duration));
            assert_eq!(e.size, Some(s.data.len() as u32));
            // §8.8.3.1: sample_depends_on (bits 24-25), is_non_sync_sample (bit 16).
            let flags = e.flags.unwrap();
            assert_eq!(flags >> 24 & 3, if s.keyframe { 2 } else { 1 });
            assert_eq!(flags >> 16 & 1, u32::from(!s.keyframe));
            assert_eq!(flags & !0x0301_0000, 0, "no other flag bit");
            // Negative offsets survive only in a version 1 trun.
            assert_eq!(e.cts, with_cts.then_some(i64::from(s.composition_offset)));
        }
        // data_offset counts from the moof's first byte to this run's first sample byte.
        let run_data: Vec<u8> = run.samples.iter().flat_map(|s| s.data.to_vec()).collect();
        let at = moof_start + trun.data_offset.unwrap() as usize;
        assert!(at >= mdat_start + 8, "data_offset points into mdat");
        assert_eq!(&bytes[at..at + run_data.len()], &run_data[..]);
        all_data.extend(run_data);
    }
    assert_eq!(mdat.data, all_data);
}
