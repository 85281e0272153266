//! Every playlist text hlsgate serves, written here and nowhere else (RFC 8216).
//!
//! - [`media`]: a VOD media playlist (§4.3.3): the fMP4 video and audio renditions (one
//!   `EXT-X-MAP`, §4.3.2.5) and the WebVTT subtitle renditions (no map), each segment with an
//!   optional `EXT-X-BYTERANGE` (§4.3.2.2).
//! - [`master`]: the multivariant playlist (§4.3.4): `EXT-X-MEDIA` renditions, then
//!   `EXT-X-STREAM-INF` variants.
//!
//! One [`extinf`] formats the duration of every segment of every rendition, so two renditions of
//! the same plan print the same `#EXTINF` line for the same segment. Its form is what
//! `m3u8_rs` writes (the `f32` of the duration, shortest round-trip decimal): the media
//! playlists were first written through that crate, and a test pins our bytes to its bytes.
//!
//! Values are sanitized where they are written, whatever their source: a quoted-string
//! (§4.2) never holds `"`, CR or LF ([`quoted_char`]: a track title read from a hostile file
//! becomes a harmless name), and a URI (a URI line or a quoted `URI=`) has its control
//! characters, spaces and `"` percent-encoded, so no value can start a line of its own.
//!
//! Each writer fills one `String` sized up front from what it is given (a plan's segments, a
//! source's renditions), so a playlist costs one allocation and nothing grows with anything but
//! the plan. The image (trick-play) playlists and the WebVTT thumbnails track are written by
//! [`crate::trickplay`] with these helpers; the DASH manifest by [`crate::dash`].

use std::fmt::{self, Write as _};

/// The header every playlist starts with: VERSION 7 (EXT-X-MAP in a playlist without
/// I-frames needs 6, fMP4 needs 7, §7) and INDEPENDENT-SEGMENTS (§4.3.5.1: every segment
/// starts with a keyframe).
const HEADER: &str = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n";

/// A byte range of a resource: `length` bytes from `offset` (RFC 8216 §4.3.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// Number of bytes.
    pub length: u64,
    /// First byte (written explicitly, so a range never depends on the previous one).
    pub offset: u64,
}

/// The media initialization section of fMP4 renditions (`EXT-X-MAP`, §4.3.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Map<'a> {
    /// URI of the initialization section, relative to the playlist.
    pub uri: &'a str,
    /// The part of `uri` that holds it, if not the whole resource.
    pub byte_range: Option<ByteRange>,
}

/// What a media playlist says besides its segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaHeader<'a> {
    /// `EXT-X-TARGETDURATION` (§4.3.3.1): every EXTINF rounded to the nearest integer is at
    /// most this.
    pub target_duration: u64,
    /// `EXT-X-MAP` before the first segment (fMP4), or `None` (WebVTT, §3.5).
    pub map: Option<Map<'a>>,
}

/// One segment of a media playlist.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MediaSegment<U> {
    /// Duration in seconds, written by [`extinf`].
    pub duration: f64,
    /// The segment's URI, relative to the playlist (written sanitized, see [`uri`]).
    pub uri: U,
    /// `EXT-X-BYTERANGE`, when the segment is part of `uri`.
    pub byte_range: Option<ByteRange>,
}

/// A VOD media playlist (§4.3.3): the header, `EXT-X-TARGETDURATION`,
/// `EXT-X-PLAYLIST-TYPE:VOD`, the map (if any) before the first segment, every segment
/// (`EXT-X-BYTERANGE` if any, `EXTINF`, URI) and `EXT-X-ENDLIST`. Tags in the order and bytes
/// `m3u8_rs::MediaPlaylist::write_to` writes them.
///
/// `len` is the number of segments, for sizing (a plan's, so at most
/// [`MAX_SEGMENTS`](crate::limits::MAX_SEGMENTS)); a wrong one costs a reallocation, nothing else.
pub fn media<U: fmt::Display>(
    header: &MediaHeader<'_>,
    len: usize,
    segments: impl IntoIterator<Item = MediaSegment<U>>,
) -> String {
    // A segment is `#EXTINF:<f32>,` and a short URI: ~32 bytes (more with a byte range).
    let map_len = header.map.map_or(0, |m| m.uri.len() + 64);
    let mut out = String::with_capacity(128 + map_len + 32 * len.min(crate::limits::MAX_SEGMENTS));
    out.push_str(HEADER);
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{}", header.target_duration);
    out.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n");
    for (i, seg) in segments.into_iter().enumerate() {
        if let (0, Some(map)) = (i, header.map) {
            out.push_str("#EXT-X-MAP:URI=\"");
            uri(&mut out, map.uri);
            out.push('"');
            if let Some(r) = map.byte_range {
                let _ = write!(out, ",BYTERANGE=\"{}@{}\"", r.length, r.offset);
            }
            out.push('\n');
        }
        if let Some(r) = seg.byte_range {
            let _ = writeln!(out, "#EXT-X-BYTERANGE:{}@{}", r.length, r.offset);
        }
        extinf(&mut out, seg.duration);
        uri(&mut out, seg.uri);
        out.push('\n');
    }
    out.push_str("#EXT-X-ENDLIST\n");
    out
}

/// The media playlist of a plan's segments (`(index, duration)`, as [`Plan`](crate::Plan) and
/// [`AudioPlan`](crate::AudioPlan) hold them), each whole resource `segment_uri(index)`: with
/// the map `init_uri` (fMP4) or without (WebVTT).
pub(crate) fn of_plan(
    target_duration: u64,
    init_uri: Option<&str>,
    segments: impl ExactSizeIterator<Item = (u32, f64)>,
    segment_uri: impl Fn(u32) -> String,
) -> String {
    let header = MediaHeader {
        target_duration,
        map: init_uri.map(|uri| Map {
            uri,
            byte_range: None,
        }),
    };
    let len = segments.len();
    let segments = segments.map(|(index, duration)| MediaSegment {
        duration,
        uri: segment_uri(index),
        byte_range: None,
    });
    media(&header, len, segments)
}

/// `#EXTINF:<duration>,` and a line break (§4.3.2.1), the duration as the shortest decimal that
/// reads back as the same `f32` (`6`, `6.021`, `5.9946666`): what `m3u8_rs` writes and parses.
/// The one EXTINF form of every rendition.
pub fn extinf(out: &mut String, duration: f64) {
    let _ = writeln!(out, "#EXTINF:{},", duration as f32);
}

/// The `TYPE` of an `EXT-X-MEDIA` rendition (§4.3.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    /// `TYPE=AUDIO`.
    Audio,
    /// `TYPE=SUBTITLES`.
    Subtitles,
}

/// An `EXT-X-MEDIA` tag (§4.3.4.1); attributes in the order written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alternative<'a> {
    /// `TYPE`.
    pub media_type: MediaType,
    /// `GROUP-ID` (quoted-string).
    pub group_id: &'a str,
    /// `NAME` (quoted-string), unique in its group.
    pub name: &'a str,
    /// `LANGUAGE` (quoted-string, RFC 5646), if known.
    pub language: Option<&'a str>,
    /// `DEFAULT=YES|NO`.
    pub default: bool,
    /// `AUTOSELECT=YES|NO` (YES whenever `default` is, §4.3.4.1).
    pub autoselect: bool,
    /// `FORCED=YES` (SUBTITLES only; NO is not written).
    pub forced: bool,
    /// `CHANNELS` (quoted-string, AUDIO only): the channel count.
    pub channels: Option<u16>,
    /// `URI` (quoted-string) of the rendition's media playlist.
    pub uri: &'a str,
}

/// An `EXT-X-STREAM-INF` tag and its URI line (§4.3.4.2); attributes in the order written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Variant<'a> {
    /// `BANDWIDTH`: peak bits per second (decimal-integer).
    pub bandwidth: u64,
    /// `AVERAGE-BANDWIDTH`: average bits per second (decimal-integer).
    pub average_bandwidth: u64,
    /// `CODECS` (quoted-string): the RFC 6381 strings of every format in the variant, written
    /// comma-separated.
    pub codecs: &'a [&'a str],
    /// `RESOLUTION=<width>x<height>` (decimal-resolution), for video.
    pub resolution: Option<(u32, u32)>,
    /// `FRAME-RATE` (decimal-floating-point, three decimals), for video.
    pub frame_rate: Option<f64>,
    /// `VIDEO-RANGE` (enumerated-string: `SDR`, `PQ`, `HLG`), for HDR video; absent = SDR.
    pub video_range: Option<&'static str>,
    /// `AUDIO` (quoted-string): the GROUP-ID of its audio renditions.
    pub audio: Option<&'a str>,
    /// `SUBTITLES` (quoted-string): the GROUP-ID of its subtitle renditions.
    pub subtitles: Option<&'a str>,
    /// The URI line: the variant's media playlist.
    pub uri: &'a str,
}

/// The multivariant playlist (§4.3.4): the header, every `EXT-X-MEDIA`, then every
/// `EXT-X-STREAM-INF` with its URI line, in the order given (players pick the first playable
/// variant).
pub fn master(alternatives: &[Alternative<'_>], variants: &[Variant<'_>]) -> String {
    let alt_len: usize = alternatives
        .iter()
        .map(|a| {
            128 + a.group_id.len() + a.name.len() + a.uri.len() + a.language.map_or(0, str::len)
        })
        .sum();
    let var_len: usize = variants
        .iter()
        .map(|v| {
            160 + v.uri.len()
                + v.codecs.iter().map(|c| c.len() + 1).sum::<usize>()
                + v.audio.map_or(0, str::len)
                + v.subtitles.map_or(0, str::len)
        })
        .sum();
    let mut out = String::with_capacity(HEADER.len() + alt_len + var_len);
    out.push_str(HEADER);
    for a in alternatives {
        let kind = match a.media_type {
            MediaType::Audio => "AUDIO",
            MediaType::Subtitles => "SUBTITLES",
        };
        let _ = write!(out, "#EXT-X-MEDIA:TYPE={kind}");
        quoted_attr(&mut out, "GROUP-ID", a.group_id);
        quoted_attr(&mut out, "NAME", a.name);
        if let Some(l) = a.language {
            quoted_attr(&mut out, "LANGUAGE", l);
        }
        let _ = write!(
            out,
            ",DEFAULT={},AUTOSELECT={}",
            yes_no(a.default),
            yes_no(a.autoselect)
        );
        if a.forced {
            out.push_str(",FORCED=YES");
        }
        if let Some(c) = a.channels {
            let _ = write!(out, ",CHANNELS=\"{c}\"");
        }
        out.push_str(",URI=\"");
        uri(&mut out, a.uri);
        out.push_str("\"\n");
    }
    for v in variants {
        let _ = write!(
            out,
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"",
            v.bandwidth, v.average_bandwidth
        );
        for (i, c) in v.codecs.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            quoted(&mut out, c);
        }
        out.push('"');
        if let Some((w, h)) = v.resolution {
            let _ = write!(out, ",RESOLUTION={w}x{h}");
        }
        if let Some(f) = v.frame_rate {
            let _ = write!(out, ",FRAME-RATE={f:.3}");
        }
        if let Some(r) = v.video_range {
            let _ = write!(out, ",VIDEO-RANGE={r}");
        }
        if let Some(g) = v.audio {
            quoted_attr(&mut out, "AUDIO", g);
        }
        if let Some(g) = v.subtitles {
            quoted_attr(&mut out, "SUBTITLES", g);
        }
        out.push('\n');
        uri(&mut out, v.uri);
        out.push('\n');
    }
    out
}

/// `,NAME="value"` with the value sanitized by [`quoted`].
fn quoted_attr(out: &mut String, name: &str, value: &str) {
    let _ = write!(out, ",{name}=\"");
    quoted(out, value);
    out.push('"');
}

/// Writes `value` as the inside of a quoted-string (§4.2): [`quoted_char`] for every char.
pub fn quoted(out: &mut String, value: &str) {
    out.extend(value.chars().map(quoted_char));
}

/// A char as it may stand in a quoted-string (§4.2: no `"`, CR or LF): `"` becomes `'`, every
/// control character and Unicode line or paragraph separator a space; others are kept.
pub fn quoted_char(c: char) -> char {
    match c {
        '"' => '\'',
        '\u{2028}' | '\u{2029}' => ' ',
        c if c.is_control() => ' ',
        c => c,
    }
}

/// Writes a URI (a URI line, or the value of a quoted `URI=` attribute) with every control
/// character, space and `"` percent-encoded (RFC 3986 §2.1), so it is one line and never ends a
/// quoted-string; other characters (`/`, `?`, non-ASCII) are kept as they are.
pub fn uri(out: &mut String, value: impl fmt::Display) {
    let _ = write!(UriWriter(out), "{value}");
}

/// A `fmt::Write` that percent-encodes what may not stand in a URI line as it goes (no copy).
struct UriWriter<'a>(&'a mut String);

impl fmt::Write for UriWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if c == '"' || c == ' ' || c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    write!(self.0, "%{b:02X}")?;
                }
            } else {
                self.0.push(c);
            }
        }
        Ok(())
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "YES"
    } else {
        "NO"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(duration: f64, uri: &str) -> MediaSegment<&str> {
        MediaSegment {
            duration,
            uri,
            byte_range: None,
        }
    }

    #[test]
    fn media_playlist_with_map_and_byte_ranges() {
        let header = MediaHeader {
            target_duration: 6,
            map: Some(Map {
                uri: "file.mp4",
                byte_range: Some(ByteRange {
                    length: 700,
                    offset: 0,
                }),
            }),
        };
        let segs = [
            MediaSegment {
                byte_range: Some(ByteRange {
                    length: 1000,
                    offset: 700,
                }),
                ..seg(6.0, "file.mp4")
            },
            MediaSegment {
                byte_range: Some(ByteRange {
                    length: 900,
                    offset: 1700,
                }),
                ..seg(1.0 / 3.0, "file.mp4")
            },
        ];
        assert_eq!(
            media(&header, segs.len(), segs),
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-TARGETDURATION:6\n\
             #EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MAP:URI=\"file.mp4\",BYTERANGE=\"700@0\"\n\
             #EXT-X-BYTERANGE:1000@700\n#EXTINF:6,\nfile.mp4\n\
             #EXT-X-BYTERANGE:900@1700\n#EXTINF:0.33333334,\nfile.mp4\n#EXT-X-ENDLIST\n"
        );
    }

    #[test]
    fn webvtt_playlist_has_no_map() {
        let header = MediaHeader {
            target_duration: 7,
            map: None,
        };
        assert_eq!(
            media(&header, 1, [seg(6.5, "0.vtt")]),
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-TARGETDURATION:7\n\
             #EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:6.5,\n0.vtt\n#EXT-X-ENDLIST\n"
        );
    }

    #[test]
    fn hostile_values_stay_inside_their_quotes_and_lines() {
        let header = MediaHeader {
            target_duration: 6,
            map: Some(Map {
                uri: "in it\".mp4\n#EXT-X-ENDLIST",
                byte_range: None,
            }),
        };
        let text = media(&header, 1, [seg(6.0, "0.m4s\r\n#EXT-X-ENDLIST")]);
        let tags: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
        assert_eq!(
            tags.iter().filter(|l| **l == "#EXT-X-ENDLIST").count(),
            1,
            "{text}"
        );
        assert_eq!(text.lines().count(), 9, "{text}");
        assert!(text.contains("#EXT-X-MAP:URI=\"in%20it%22.mp4%0A#EXT-X-ENDLIST\"\n"));
        assert!(text.contains("\n0.m4s%0D%0A#EXT-X-ENDLIST\n"));

        let evil = "Evil\",URI=\"http://x\"\n#EXT-X-ENDLIST\u{2028}";
        let m = master(
            &[Alternative {
                media_type: MediaType::Audio,
                group_id: "aud",
                name: evil,
                language: Some(evil),
                default: true,
                autoselect: true,
                forced: false,
                channels: Some(2),
                uri: "a\"1/index.m3u8",
            }],
            &[Variant {
                bandwidth: 1,
                average_bandwidth: 1,
                codecs: &["avc1.64000d", evil],
                resolution: Some((2, 2)),
                frame_rate: Some(25.0),
                video_range: None,
                audio: Some("aud"),
                subtitles: None,
                uri: "v1/index.m3u8\n#EXTM3U",
            }],
        );
        assert_eq!(m.lines().count(), 6, "{m}");
        assert!(!m.contains("http://x\""), "{m}");
        assert!(m.contains(
            "NAME=\"Evil',URI='http://x' #EXT-X-ENDLIST \",LANGUAGE=\"Evil',URI='http://x' \
             #EXT-X-ENDLIST \",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"a%221/index.m3u8\"\n"
        ));
        assert!(m.ends_with("\nv1/index.m3u8%0A#EXTM3U\n"), "{m}");
    }

    #[test]
    fn one_extinf_form() {
        let mut s = String::new();
        for d in [6.0, 6.021, 1024.0 / 48_000.0 * 282.0, 0.5, 10.0 / 3.0] {
            extinf(&mut s, d);
        }
        assert_eq!(
            s,
            "#EXTINF:6,\n#EXTINF:6.021,\n#EXTINF:6.016,\n#EXTINF:0.5,\n#EXTINF:3.3333333,\n"
        );
    }
}
