//! The cache format of a probe result: what [`super::Jobs::probed`] stores under the index key.

use bytes::Bytes;

use crate::error::AppError;

/// First bytes of a cached index: a name and a format version (2: the index in postcard, not
/// JSON).
const PROBED_MAGIC: &[u8; 4] = b"HGI2";

/// A probe result as cache bytes: magic, the index in postcard's compact binary serde format
/// (length-prefixed, u32 BE), then a flag byte and the demuxer tables (`moov`, universal tables)
/// when there are some. Postcard, not JSON: a 2-hour MP4's index holds 360,000 spans, 20 MB
/// and 77 ms of JSON on the first request's path, 5 MB and a few ms in postcard.
pub(super) fn encode_probed(l: &pipeline::io::Loaded) -> std::result::Result<Bytes, AppError> {
    let packed = postcard::to_allocvec(&l.index).map_err(AppError::internal)?;
    let len = u32::try_from(packed.len())
        .map_err(|_| AppError::Internal("index too large to cache".into()))?;
    let tables = l.tables.as_deref().unwrap_or_default();
    let mut out = Vec::with_capacity(4 + 4 + packed.len() + 1 + tables.len());
    out.extend_from_slice(PROBED_MAGIC);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&packed);
    out.push(u8::from(l.tables.is_some()));
    out.extend_from_slice(tables);
    Ok(Bytes::from(out))
}

/// The inverse of [`encode_probed`]; `None` for anything else. The cost is zero (nothing was
/// read from the source).
pub(super) fn decode_probed(b: &Bytes) -> Option<pipeline::io::Loaded> {
    let rest = b.strip_prefix(PROBED_MAGIC.as_slice())?;
    let len = usize::try_from(u32::from_be_bytes(rest.get(..4)?.try_into().ok()?)).ok()?;
    let packed = rest.get(4..4usize.checked_add(len)?)?;
    let index: probe::MediaIndex = postcard::from_bytes(packed).ok()?;
    let at = 4 + 4 + len;
    let tables = match b.get(at)? {
        0 => None,
        1 => Some(b.slice(at + 1..)),
        _ => return None,
    };
    Some(pipeline::io::Loaded {
        index,
        tables,
        cost: source::ProbeCost {
            requests: 0,
            bytes: 0,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use probe::{
        AudioInfo, ByteRange, Codec, Container, Keyframe, MediaIndex, Rational, Span, Track,
        TrackKind, VideoInfo,
    };

    /// Every kind of field the index has (options set and unset, enums with data, bytes,
    /// negative times) survives the cache format unchanged; anything else is `None`.
    #[test]
    fn an_index_round_trips_and_damage_is_refused() {
        let video = Track {
            id: 1,
            kind: TrackKind::Video,
            codec: Codec::H264,
            timescale: 30000,
            duration: Some(1_801_800),
            language: None,
            title: Some("Main — «film»".into()),
            default: true,
            forced: false,
            codec_private: vec![1, 0x64, 0, 0x1f, 0xff],
            video: Some(VideoInfo {
                width: 1920,
                height: 1080,
                frame_rate: Some(Rational {
                    num: 30000,
                    den: 1001,
                }),
                rotation: 90,
                profile: Some(100),
                leading_frames: Some(2),
                ..VideoInfo::default()
            }),
            audio: None,
            start: Some(-2002),
            default_duration_ns: Some(33_366_667),
            codec_delay_ns: None,
        };
        let audio = Track {
            id: 2,
            kind: TrackKind::Audio,
            codec: Codec::Other("wmav2".into()),
            language: Some("fra".into()),
            codec_private: Vec::new(),
            video: None,
            audio: Some(AudioInfo {
                sample_rate: 44100,
                channels: 6,
                aac_object_type: None,
                bits_per_sample: Some(24),
                block_align: Some(4096),
                bit_rate: Some(192_000),
            }),
            start: None,
            default_duration_ns: None,
            ..video.clone()
        };
        let index = MediaIndex {
            container: Container::Universal,
            file_size: 1 << 40,
            timescale: 30000,
            start: -1001,
            duration: 1_801_800,
            tracks: vec![video, audio],
            main_track: Some(0),
            keyframes: (0..1000)
                .map(|i| Keyframe {
                    pts: i * 60060 - 1001,
                    offset: 48 + i as u64 * 1_000_003,
                })
                .collect(),
            spans: (0..5000)
                .map(|i| Span {
                    time: i * 1001 - 1001,
                    end_time: i * 1001,
                    start: i as u64 * 7919,
                    end: i as u64 * 7919 + 7000,
                })
                .collect(),
            interleave: 90,
            moov: Some(ByteRange::new(100, 2000)),
            format: Some("asf".into()),
        };
        let loaded = pipeline::io::Loaded {
            index: index.clone(),
            tables: Some(Bytes::from_static(b"moov tables")),
            cost: source::ProbeCost {
                requests: 3,
                bytes: 9,
            },
        };
        let bytes = encode_probed(&loaded).expect("encodes");
        let back = decode_probed(&bytes).expect("decodes");
        assert_eq!(back.index, index);
        assert_eq!(back.tables.as_deref(), Some(b"moov tables".as_slice()));
        let without = pipeline::io::Loaded {
            tables: None,
            ..loaded
        };
        let b = encode_probed(&without).expect("encodes");
        assert_eq!(decode_probed(&b).expect("decodes").tables, None);
        // Another version's record, a cut one, a bad flag: not an index.
        let mut old = bytes.to_vec();
        old[3] = b'1';
        assert!(decode_probed(&Bytes::from(old)).is_none());
        assert!(decode_probed(&bytes.slice(..bytes.len() / 2)).is_none());
        let mut flag = b.to_vec();
        let last = flag.len() - 1;
        flag[last] = 7;
        assert!(decode_probed(&Bytes::from(flag)).is_none());
    }
}
