//! The init segment: `ftyp` + `moov` (see the crate docs for the tree).

use mp4_atom::{
    Btrt, Dinf, Dref, DrefEntry, Edts, Elst, ElstEntry, Encode, FixedPoint, FourCC, Ftyp, Hdlr,
    Matrix, Mdhd, Mp4a, Mvex, Mvhd, Smhd, Stco, Stsc, Stsz, Stts, Tkhd, Trex, Url, Visual, Vmhd,
};

use crate::boxes::{atom, write_box, write_full_box};
use crate::{limits, Fmp4Error, SampleEntry, TrackSpec};

/// mvhd timescale: the movie header carries no durations here (all 0), so any value works;
/// 1000 is the common choice.
const MOVIE_TIMESCALE: u32 = 1000;

/// ftyp + moov for `tracks`, in the given order.
pub fn init_segment(tracks: &[TrackSpec]) -> Result<Vec<u8>, Fmp4Error> {
    if tracks.is_empty() {
        return Err(Fmp4Error::NoTracks);
    }
    if tracks.len() > limits::MAX_TRACKS {
        return Err(Fmp4Error::TooManyTracks {
            count: tracks.len(),
            limit: limits::MAX_TRACKS,
        });
    }
    for (i, track) in tracks.iter().enumerate() {
        validate(track)?;
        if tracks[..i].iter().any(|t| t.id == track.id) {
            return Err(Fmp4Error::DuplicateTrack(track.id));
        }
    }
    // validate() caps ids below u32::MAX, so this cannot overflow.
    let next_track_id = tracks.iter().map(|t| t.id).max().unwrap_or(0) + 1;

    let mut out = Vec::with_capacity(1024);
    // ftyp: §4.3.
    atom(
        &mut out,
        &Ftyp {
            major_brand: FourCC::new(b"iso6"),
            minor_version: 0,
            compatible_brands: crate::brands(tracks.len())
                .into_iter()
                .map(FourCC::from)
                .collect(),
        },
    )?;
    // moov: §8.2.1, a plain container.
    write_box(&mut out, b"moov", |out| {
        atom(
            out,
            &Mvhd {
                creation_time: 0,
                modification_time: 0,
                timescale: MOVIE_TIMESCALE,
                duration: 0,
                rate: FixedPoint::from(1u16),
                volume: FixedPoint::from(1u8),
                matrix: Matrix::default(),
                next_track_id,
            },
        )?;
        for track in tracks {
            trak(out, track)?;
        }
        atom(
            out,
            &Mvex {
                mehd: None,
                trex: tracks
                    .iter()
                    .map(|t| Trex {
                        track_id: t.id,
                        default_sample_description_index: 1,
                        default_sample_duration: 0,
                        default_sample_size: 0,
                        default_sample_flags: 0,
                    })
                    .collect(),
            },
        )
    })?;
    Ok(out)
}

fn validate(t: &TrackSpec) -> Result<(), Fmp4Error> {
    if t.id == 0 || t.id == u32::MAX {
        return Err(Fmp4Error::InvalidTrackId(t.id));
    }
    if t.timescale == 0 {
        return Err(Fmp4Error::ZeroTimescale(t.id));
    }
    if let Some(lang) = &t.language {
        if lang.len() != 3 || !lang.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(Fmp4Error::BadLanguage {
                track: t.id,
                language: lang.clone(),
            });
        }
    }
    let bad_config = |reason| Fmp4Error::BadCodecConfig {
        track: t.id,
        reason,
    };
    let config: &[u8] = match &t.entry {
        SampleEntry::Avc { config }
        | SampleEntry::Hevc { config }
        | SampleEntry::Copied { config, .. } => config,
        SampleEntry::Aac { asc } => asc,
        SampleEntry::MpegAudio => &[],
    };
    if config.len() > limits::MAX_CONFIG_BYTES {
        return Err(bad_config("larger than limits::MAX_CONFIG_BYTES"));
    }
    match &t.entry {
        SampleEntry::Avc { config } | SampleEntry::Hevc { config } => {
            // Both records open with configurationVersion = 1 (14496-15 §5.3.3.1, §8.3.3.1);
            // avcC is at least 7 bytes, hvcC at least 23.
            let min = if matches!(t.entry, SampleEntry::Avc { .. }) {
                7
            } else {
                23
            };
            if config.len() < min {
                return Err(bad_config("decoder configuration record too short"));
            }
            if config.first() != Some(&1) {
                return Err(bad_config("configurationVersion is not 1"));
            }
            if !matches!(t.rotation, 0 | 90 | 180 | 270) {
                return Err(Fmp4Error::BadRotation {
                    track: t.id,
                    rotation: t.rotation,
                });
            }
            let ok = |d: u32| (1..=limits::MAX_DIMENSION).contains(&d);
            if !ok(t.width) || !ok(t.height) {
                return Err(Fmp4Error::BadDimensions {
                    track: t.id,
                    width: t.width,
                    height: t.height,
                });
            }
        }
        SampleEntry::Aac { .. } | SampleEntry::MpegAudio | SampleEntry::Copied { .. } => {
            // An AudioSpecificConfig is at least 2 bytes (object type, frequency index,
            // channel configuration: 14496-3 §1.6.2.1); every other configuration box has a
            // body (dac3 3 bytes, dec3 5, dfLa and dOps more).
            match &t.entry {
                SampleEntry::Aac { asc } if asc.len() < 2 => {
                    return Err(bad_config("AudioSpecificConfig shorter than 2 bytes"));
                }
                SampleEntry::Copied { config, .. } if config.len() < 3 => {
                    return Err(bad_config("audio configuration box shorter than 3 bytes"));
                }
                _ => {}
            }
            if t.sample_rate == 0 || t.channels == 0 {
                return Err(Fmp4Error::BadAudio {
                    track: t.id,
                    sample_rate: t.sample_rate,
                    channels: t.channels,
                });
            }
        }
    }
    Ok(())
}

/// tkhd matrix (§8.3.2.3, §6.2.2) for a clockwise display rotation of a `width` x `height`
/// picture: the rotation, then a translation that brings the picture back into the positive
/// quadrant. a, b, c, d, x, y are 16.16; w is 2.30.
fn rotation_matrix(rotation: u16, width: u32, height: u32) -> Matrix {
    const ONE: i32 = 0x0001_0000;
    // validate() caps both dimensions at limits::MAX_DIMENSION (< 2^15), so << 16 fits an i32.
    let w = (width as i32) << 16;
    let h = (height as i32) << 16;
    let (a, b, c, d, x, y) = match rotation {
        90 => (0, ONE, -ONE, 0, h, 0),
        180 => (-ONE, 0, 0, -ONE, w, h),
        270 => (0, -ONE, ONE, 0, 0, w),
        _ => (ONE, 0, 0, ONE, 0, 0),
    };
    Matrix {
        a,
        b,
        u: 0,
        c,
        d,
        v: 0,
        x,
        y,
        w: 0x4000_0000,
    }
}

fn trak(out: &mut Vec<u8>, t: &TrackSpec) -> Result<(), Fmp4Error> {
    let video = t.entry.is_video();
    // trak: §8.3.1.
    write_box(out, b"trak", |out| {
        // tkhd: §8.3.2. flags 3 (enabled | in_movie; mp4-atom mirrors in_movie into
        // in_preview, giving 7), duration 0 (unknown: the fragments carry the samples).
        atom(
            out,
            &Tkhd {
                creation_time: 0,
                modification_time: 0,
                track_id: t.id,
                duration: 0,
                layer: 0,
                alternate_group: 0,
                enabled: true,
                in_movie: true,
                size_is_aspect_ratio: false,
                volume: if video {
                    FixedPoint::from(0u8)
                } else {
                    FixedPoint::from(1u8)
                },
                matrix: if video {
                    rotation_matrix(t.rotation, t.width, t.height)
                } else {
                    Matrix::default()
                },
                // validate() keeps video sizes within u16; audio has 0.
                width: FixedPoint::from(if video { t.width as u16 } else { 0 }),
                height: FixedPoint::from(if video { t.height as u16 } else { 0 }),
            },
        )?;
        // edts/elst: §8.6.5–6. Duration 0: the edit spans the whole (fragmented) media.
        if t.presentation_offset > 0 {
            atom(
                out,
                &Edts {
                    elst: Some(Elst {
                        entries: vec![ElstEntry {
                            segment_duration: 0,
                            media_time: Some(u64::from(t.presentation_offset)),
                            media_rate: FixedPoint::from(1i16),
                        }],
                    }),
                },
            )?;
        }
        // mdia: §8.4.1.
        write_box(out, b"mdia", |out| {
            // mdhd: §8.4.2, language packed as three 5-bit letters (validated a-z).
            atom(
                out,
                &Mdhd {
                    creation_time: 0,
                    modification_time: 0,
                    timescale: t.timescale,
                    duration: 0,
                    language: t.language.clone().unwrap_or_else(|| "und".to_owned()),
                },
            )?;
            // hdlr: §8.4.3.
            atom(
                out,
                &Hdlr {
                    handler: FourCC::new(if video { b"vide" } else { b"soun" }),
                    name: if video {
                        "VideoHandler"
                    } else {
                        "SoundHandler"
                    }
                    .to_owned(),
                },
            )?;
            // minf: §8.4.4.
            write_box(out, b"minf", |out| {
                if video {
                    // vmhd: §12.1.2 (version 0, flags 1).
                    atom(out, &Vmhd::default())?;
                } else {
                    // smhd: §12.2.2, balance 0.
                    atom(out, &Smhd::default())?;
                }
                // dinf/dref: §8.7.1-2, one `url ` entry with flag 1: media in this file.
                atom(
                    out,
                    &Dinf {
                        dref: Dref {
                            entries: vec![DrefEntry::Url(Url::default())],
                        },
                    },
                )?;
                stbl(out, t)
            })
        })
    })
}

fn stbl(out: &mut Vec<u8>, t: &TrackSpec) -> Result<(), Fmp4Error> {
    // stbl: §8.5.1. The sample tables are empty: every sample is in a movie fragment.
    write_box(out, b"stbl", |out| {
        // stsd: §8.5.2, a FullBox with entry_count then the sample entries.
        write_full_box(out, b"stsd", 0, 0, |out| {
            out.extend_from_slice(&1u32.to_be_bytes());
            sample_entry(out, t)
        })?;
        atom(out, &Stts::default())?;
        atom(out, &Stsc::default())?;
        atom(out, &Stsz::default())?;
        atom(out, &Stco::default())
    })
}

fn btrt(t: &TrackSpec, buffer_size_db: u32) -> Option<Btrt> {
    // btrt: §8.5.2.2, written only when a bitrate is known.
    (t.avg_bitrate != 0 || t.max_bitrate != 0).then_some(Btrt {
        buffer_size_db,
        max_bitrate: t.max_bitrate,
        avg_bitrate: t.avg_bitrate,
    })
}

fn sample_entry(out: &mut Vec<u8>, t: &TrackSpec) -> Result<(), Fmp4Error> {
    match &t.entry {
        SampleEntry::Avc { config } => visual_entry(out, t, b"avc1", b"avcC", config),
        SampleEntry::Hevc { config } => visual_entry(out, t, b"hvc1", b"hvcC", config),
        SampleEntry::Aac { asc } => {
            // AAC decoder input buffer: 6144 bits per channel (14496-3 §4.5.3.1).
            let buffer = (768 * u32::from(t.channels)).min(0x00FF_FFFF);
            // objectTypeIndication 0x40 (MPEG-4 Audio), the AudioSpecificConfig verbatim as
            // DecoderSpecificInfo (§7.2.6.7).
            let dsi = mp4_atom::esds::DecoderSpecific {
                profile: 0,
                freq_index: 0,
                chan_conf: 0,
                // Non-empty (validated): mp4-atom writes it verbatim.
                raw: asc.clone(),
            };
            mp4a(out, t, 0x40, buffer, Some(dsi))
        }
        // objectTypeIndication 0x6B (ISO/IEC 11172-3 audio, the value browsers and the MP4
        // registration give MP3), no DecoderSpecificInfo: the frame headers carry the
        // configuration.
        SampleEntry::MpegAudio => mp4a(out, t, 0x6B, 0x600, None),
        SampleEntry::Copied {
            kind,
            config_kind,
            config,
        } => write_box(out, kind, |out| {
            // AudioSampleEntry (§12.2.3): the rate field is 16.16 and 0 above 65535 (the
            // configuration box is authoritative).
            let sample_rate = u16::try_from(t.sample_rate).unwrap_or(0);
            mp4_atom::Audio {
                data_reference_index: 1,
                channel_count: t.channels,
                sample_size: 16,
                sample_rate: FixedPoint::from(sample_rate),
            }
            .encode(out)?;
            write_box(out, config_kind, |out| {
                out.extend_from_slice(config);
                Ok(())
            })?;
            if let Some(btrt) = btrt(t, 0) {
                atom(out, &btrt)?;
            }
            Ok(())
        }),
    }
}

/// mp4a (14496-14 §5.6; AudioSampleEntry fields §12.2.3) with an esds around an
/// ES_Descriptor (14496-1 §7.2.6.5): ES_ID 0 (the track is the stream), a
/// DecoderConfigDescriptor (§7.2.6.6) of `object_type` and streamType 5 (audio), the decoder
/// buffer `buffer` bytes, `dsi` as its DecoderSpecificInfo, and an SLConfigDescriptor with
/// predefined = 2 (reserved for MP4 files, §7.3.2.3). The samplerate field is 16.16: a rate
/// above 65535 is written as 0 (the configuration is authoritative).
fn mp4a(
    out: &mut Vec<u8>,
    t: &TrackSpec,
    object_type: u8,
    buffer: u32,
    dsi: Option<mp4_atom::esds::DecoderSpecific>,
) -> Result<(), Fmp4Error> {
    let [_, b1, b2, b3] = buffer.min(0x00FF_FFFF).to_be_bytes();
    let sample_rate = u16::try_from(t.sample_rate).unwrap_or(0);
    let mp4a = Mp4a {
        audio: mp4_atom::Audio {
            data_reference_index: 1,
            channel_count: t.channels,
            sample_size: 16,
            sample_rate: FixedPoint::from(sample_rate),
        },
        esds: mp4_atom::Esds {
            es_desc: mp4_atom::esds::EsDescriptor {
                es_id: 0,
                depends_on_es_id: None,
                url: None,
                ocr_es_id: None,
                stream_priority: 0,
                dec_config: mp4_atom::esds::DecoderConfig {
                    object_type_indication: object_type,
                    stream_type: 5,
                    up_stream: 0,
                    buffer_size_db: mp4_atom::u24::from([b1, b2, b3]),
                    max_bitrate: t.max_bitrate,
                    avg_bitrate: t.avg_bitrate,
                    dec_specific: dsi,
                },
                sl_config: mp4_atom::esds::SLConfig {},
            },
        },
        btrt: btrt(t, buffer),
        taic: None,
    };
    atom(out, &mp4a)
}

/// avc1/hvc1 (14496-15 §5.4.2.1, §8.4.1.1): a VisualSampleEntry (14496-12 §12.1.3) whose
/// configuration box carries the record given, byte for byte. mp4-atom would parse and
/// re-encode the record, so the entry is written here.
fn visual_entry(
    out: &mut Vec<u8>,
    t: &TrackSpec,
    kind: &[u8; 4],
    config_kind: &[u8; 4],
    config: &[u8],
) -> Result<(), Fmp4Error> {
    write_box(out, kind, |out| {
        atom(
            out,
            &Visual {
                data_reference_index: 1,
                // validate() keeps both within u16.
                width: t.width as u16,
                height: t.height as u16,
                ..Visual::default()
            },
        )?;
        write_box(out, config_kind, |out| {
            out.extend_from_slice(config);
            Ok(())
        })?;
        if let Some(btrt) = btrt(t, 0) {
            atom(out, &btrt)?;
        }
        Ok(())
    })
}
