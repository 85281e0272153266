//! HTTP semantics shared by the handlers (RFC 9110): byte ranges (§14), conditional requests
//! (§13: `If-None-Match`, `If-Range`), entity tags (§8.8.3), and content types from the
//! probed container.

use std::time::SystemTime;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use bytes::Bytes;
use sha2::{Digest as _, Sha256};

use crate::token::hex;

/// What a `Range` header asks of a representation of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No (usable) range: send the whole representation with 200. Covers an absent header,
    /// another unit, bad syntax and several ranges (RFC 9110 §14.2 lets a server ignore
    /// `Range`; we serve single ranges only).
    Full,
    /// Send `[start, end)` with 206.
    Partial {
        /// First byte.
        start: u64,
        /// One past the last byte.
        end: u64,
    },
    /// A valid range that does not overlap the representation: 416.
    Unsatisfiable,
}

/// Longest `Range` header value looked at.
const MAX_RANGE_HEADER: usize = 1024;

/// Parses a `Range` header value against a length (RFC 9110 §14.1.2, §14.2).
pub fn parse_range(value: &str, len: u64) -> RangeRequest {
    if value.len() > MAX_RANGE_HEADER {
        return RangeRequest::Full;
    }
    let Some((unit, set)) = value.split_once('=') else {
        return RangeRequest::Full;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return RangeRequest::Full;
    }
    let specs: Vec<&str> = set
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if specs.len() != 1 {
        return RangeRequest::Full;
    }
    let Some((first, last)) = specs[0].split_once('-') else {
        return RangeRequest::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if first.is_empty() {
        // Suffix range: the last N bytes.
        if !digits(last) {
            return RangeRequest::Full;
        }
        let Ok(n) = last.parse::<u64>() else {
            // More digits than u64 holds: a suffix longer than any file, i.e. all of it.
            return if len == 0 {
                RangeRequest::Unsatisfiable
            } else {
                RangeRequest::Partial { start: 0, end: len }
            };
        };
        if n == 0 || len == 0 {
            return RangeRequest::Unsatisfiable;
        }
        return RangeRequest::Partial {
            start: len.saturating_sub(n),
            end: len,
        };
    }
    if !digits(first) || !(last.is_empty() || digits(last)) {
        return RangeRequest::Full;
    }
    let Ok(start) = first.parse::<u64>() else {
        return RangeRequest::Unsatisfiable;
    };
    let end = if last.is_empty() {
        len
    } else {
        match last.parse::<u64>() {
            Ok(l) if l < start => return RangeRequest::Full, // invalid: ignored
            Ok(l) => l.saturating_add(1).min(len),
            Err(_) => len,
        }
    };
    if start >= len {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Partial { start, end }
}

/// A strong entity tag from bytes' SHA-256 (the whole digest, hex).
pub fn etag_of(bytes: &[u8]) -> String {
    format!("\"{}\"", hex(&Sha256::digest(bytes)))
}

/// A strong entity tag from a string that identifies a representation (first 128 bits of its
/// SHA-256).
pub fn etag_of_key(key: &str) -> String {
    format!("\"{}\"", &hex(&Sha256::digest(key.as_bytes()))[..32])
}

/// `If-None-Match` (RFC 9110 §13.1.2, weak comparison): whether `etag` matches the list.
pub fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    let ours = etag.trim_start_matches("W/");
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/") == ours)
}

/// `If-Range` (RFC 9110 §13.1.5): whether the range may be applied. An entity tag must match
/// strongly (a weak tag never does); a date must equal `Last-Modified` exactly. An absent header
/// allows the range.
pub fn if_range_allows(headers: &HeaderMap, etag: &str, last_modified: Option<SystemTime>) -> bool {
    let Some(v) = headers.get(header::IF_RANGE) else {
        return true;
    };
    let Ok(v) = v.to_str() else { return false };
    let v = v.trim();
    if v.starts_with("W/") {
        return false;
    }
    if v.starts_with('"') {
        return v == etag;
    }
    match (httpdate::parse_http_date(v), last_modified) {
        (Ok(d), Some(lm)) => httpdate::fmt_http_date(d) == httpdate::fmt_http_date(lm),
        _ => false,
    }
}

/// What a byte-addressed resource of `len` bytes answers, from the request's validators and
/// `Range` (RFC 9110 §13–14): `304`, or the response to serve — `builder` already holds
/// `Accept-Ranges`, `ETag`, `Cache-Control` and (for one satisfiable range) `Content-Range`,
/// and the bytes are `[start, end)`. An unsatisfiable range is [`AppError::RangeNotSatisfiable`].
pub(crate) enum Ranged {
    /// `304 Not Modified`, ready.
    NotModified(Response<Body>),
    /// Serve `[start, end)` with `status` (200 or 206) through `builder`.
    Serve {
        /// The response so far (add type, length, body).
        builder: axum::http::response::Builder,
        /// 200 or 206.
        status: StatusCode,
        /// First byte.
        start: u64,
        /// One past the last byte.
        end: u64,
    },
}

/// [`Ranged`] for a resource of `len` bytes with `etag` (and `last_modified`, when known),
/// cached for `cache_control`.
pub(crate) fn ranged(
    headers: &HeaderMap,
    etag: &str,
    last_modified: Option<SystemTime>,
    cache_control: &str,
    len: u64,
) -> crate::error::Result<Ranged> {
    use crate::error::AppError;
    let mut b = Response::builder()
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, etag)
        .header(header::CACHE_CONTROL, cache_control);
    if let Some(lm) = last_modified {
        b = b.header(header::LAST_MODIFIED, httpdate::fmt_http_date(lm));
    }
    if none_match(headers, etag) {
        return b
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .map(Ranged::NotModified)
            .map_err(AppError::internal);
    }
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(v) if if_range_allows(headers, etag, last_modified) => parse_range(v, len),
        _ => RangeRequest::Full,
    };
    let (status, start, end) = match range {
        RangeRequest::Full => (StatusCode::OK, 0, len),
        RangeRequest::Partial { start, end } => {
            b = b.header(
                header::CONTENT_RANGE,
                format!("bytes {start}-{}/{len}", end - 1),
            );
            (StatusCode::PARTIAL_CONTENT, start, end)
        }
        RangeRequest::Unsatisfiable => return Err(AppError::RangeNotSatisfiable { size: len }),
    };
    Ok(Ranged::Serve {
        builder: b,
        status,
        start,
        end,
    })
}

/// `Content-Type` of a probed file: from the container its magic bytes were recognised as
/// (never from the name), `audio/…` when it has no video track.
pub fn content_type(index: &probe::MediaIndex) -> &'static str {
    let video = index
        .tracks
        .iter()
        .any(|t| t.kind == probe::TrackKind::Video);
    match (index.container, video) {
        (probe::Container::Mp4 | probe::Container::FragmentedMp4, true) => "video/mp4",
        (probe::Container::Mp4 | probe::Container::FragmentedMp4, false) => "audio/mp4",
        (probe::Container::Matroska, true) => "video/x-matroska",
        (probe::Container::Matroska, false) => "audio/x-matroska",
        (probe::Container::WebM, true) => "video/webm",
        (probe::Container::WebM, false) => "audio/webm",
        (probe::Container::MpegTs, _) => "video/mp2t",
        (probe::Container::Universal, _) => match (index.format.as_deref().unwrap_or(""), video) {
            ("mp3", _) => "audio/mpeg",
            ("flac", _) => "audio/flac",
            ("ogg", true) => "video/ogg",
            ("ogg", false) => "audio/ogg",
            ("wav" | "w64", _) => "audio/wav",
            ("aiff", _) => "audio/aiff",
            ("avi", _) => "video/x-msvideo",
            ("flv", _) => "video/x-flv",
            ("asf", true) => "video/x-ms-asf",
            ("asf", false) => "audio/x-ms-wma",
            ("mpegts", _) => "video/mp2t",
            ("mpeg", _) => "video/mpeg",
            ("aac", _) => "audio/aac",
            ("ac3", _) => "audio/ac3",
            _ => "application/octet-stream",
        },
    }
}

/// Bytes of a file's start [`sniff_content_type`] looks at.
pub const SNIFF_BYTES: u64 = 64;

/// `Content-Type` of a file that was not probed (the Range passthrough of anything): from its
/// first bytes (`head`, up to [`SNIFF_BYTES`]), else from the extension of `name`, else
/// `application/octet-stream`. Browsers play what they can of it directly.
pub fn sniff_content_type(head: &[u8], name: &str) -> &'static str {
    sniff_media(head).unwrap_or_else(|| type_of_extension(name))
}

/// The media type a file's first bytes (`head`) show, from their magic alone; `None` when they
/// show none this knows.
pub fn sniff_media(head: &[u8]) -> Option<&'static str> {
    let at = |i: usize, m: &[u8]| head.get(i..i + m.len()) == Some(m);
    if at(4, b"ftyp") {
        // M4A/M4B brands are audio; everything else ISO-BMFF is played as video/mp4.
        return Some(if at(8, b"M4A ") || at(8, b"M4B ") {
            "audio/mp4"
        } else if at(8, b"qt  ") {
            "video/quicktime"
        } else {
            "video/mp4"
        });
    }
    if at(0, &[0x1A, 0x45, 0xDF, 0xA3]) {
        let webm = head.windows(4).any(|w| w == b"webm");
        return Some(if webm {
            "video/webm"
        } else {
            "video/x-matroska"
        });
    }
    if at(0, b"fLaC") {
        return Some("audio/flac");
    }
    if at(0, b"OggS") {
        let video = head.windows(6).any(|w| w == b"theora");
        return Some(if video { "video/ogg" } else { "audio/ogg" });
    }
    if at(0, b"RIFF") && at(8, b"WAVE") {
        return Some("audio/wav");
    }
    if at(0, b"RIFF") && at(8, b"AVI ") {
        return Some("video/x-msvideo");
    }
    if at(0, b"FORM") && (at(8, b"AIFF") || at(8, b"AIFC")) {
        return Some("audio/aiff");
    }
    if at(0, b"FLV\x01") {
        return Some("video/x-flv");
    }
    if at(0, &[0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11]) {
        return Some("video/x-ms-asf");
    }
    if at(0, b"ID3")
        || (head.len() >= 2 && head[0] == 0xFF && head[1] & 0xE0 == 0xE0 && head[1] & 0x06 != 0)
    {
        // An ADTS header (layer bits 00) is AAC, not MP3.
        return Some("audio/mpeg");
    }
    if head.len() >= 2 && head[0] == 0xFF && head[1] & 0xF6 == 0xF0 {
        return Some("audio/aac");
    }
    if head.first() == Some(&0x47) && head.get(188).is_none_or(|&b| b == 0x47) {
        return Some("video/mp2t");
    }
    if at(4, &[0x47]) && head.get(196).is_none_or(|&b| b == 0x47) {
        // M2TS: 192-byte packets, a 4-byte timecode before each sync byte.
        return Some("video/mp2t");
    }
    None
}

/// Why a file of `len` bytes, named `name`, whose first bytes are `head`, is certainly not
/// playable media: empty, a subtitle file (it plays beside the video of the same name), an
/// image, a document or an archive by its magic, or text. `None` when it may play: media magic,
/// or bytes this does not know (libavformat reads more containers than any sniffing list, so the
/// unknown are tried, not hidden).
pub fn not_media(head: &[u8], len: u64, name: &str) -> Option<&'static str> {
    if len == 0 {
        return Some("empty file");
    }
    if sniff_media(head).is_some() {
        return None;
    }
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    if matches!(
        ext.as_str(),
        "srt" | "ass" | "ssa" | "vtt" | "sub" | "idx" | "sup"
    ) {
        return Some("subtitles: they play with the video of the same name");
    }
    let at = |i: usize, m: &[u8]| head.get(i..i + m.len()) == Some(m);
    let magic: [(&[u8], &str); 9] = [
        (b"\x89PNG", "an image (PNG)"),
        (&[0xFF, 0xD8, 0xFF], "an image (JPEG)"),
        (b"GIF8", "an image (GIF)"),
        (b"%PDF", "a document (PDF)"),
        (b"PK\x03\x04", "an archive (ZIP)"),
        (&[0x1F, 0x8B], "an archive (gzip)"),
        (b"Rar!", "an archive (RAR)"),
        (b"7z\xBC\xAF", "an archive (7z)"),
        (b"\x7FELF", "a program"),
    ];
    if let Some((_, what)) = magic.iter().find(|(m, _)| at(0, m)) {
        return Some(what);
    }
    if at(0, b"RIFF") && at(8, b"WEBP") {
        return Some("an image (WebP)");
    }
    // Text: printable UTF-8 and whitespace only.
    let text = std::str::from_utf8(head)
        .map_or_else(|e| std::str::from_utf8(&head[..e.valid_up_to()]).ok(), Some);
    let printable = text.is_some_and(|t| {
        t.len() + 4 >= head.len() && t.chars().all(|c| !c.is_control() || c.is_whitespace())
    });
    printable.then_some("text, not media")
}

/// `Content-Type` from a file name's extension; `application/octet-stream` for others.
fn type_of_extension(name: &str) -> &'static str {
    let ext = name
        .rsplit('/')
        .next()
        .and_then(|n| n.split(['?', '#']).next())
        .and_then(|n| n.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("mp4" | "m4v") => "video/mp4",
        Some("m4a" | "m4b") => "audio/mp4",
        Some("mov") => "video/quicktime",
        Some("mkv") => "video/x-matroska",
        Some("mka") => "audio/x-matroska",
        Some("webm") => "video/webm",
        Some("ts" | "m2ts" | "mts") => "video/mp2t",
        Some("mp3") => "audio/mpeg",
        Some("aac") => "audio/aac",
        Some("flac") => "audio/flac",
        Some("ogg" | "oga" | "opus") => "audio/ogg",
        Some("ogv") => "video/ogg",
        Some("wav") => "audio/wav",
        Some("aif" | "aiff") => "audio/aiff",
        Some("avi") => "video/x-msvideo",
        Some("flv") => "video/x-flv",
        Some("wmv" | "asf") => "video/x-ms-asf",
        Some("wma") => "audio/x-ms-wma",
        Some("srt") => "application/x-subrip",
        Some("vtt") => "text/vtt",
        _ => "application/octet-stream",
    }
}

/// Cache-Control of things that never change for a URL (segments, init, thumbnails).
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Cache-Control of playlists (short: a changed source shows up soon).
pub const PLAYLIST_CACHE: &str = "public, max-age=10";
/// The HLS playlist media type (RFC 8216 §4).
pub const M3U8: &str = "application/vnd.apple.mpegurl";
/// WebVTT (subtitle segments, the trick-play thumbnails track).
pub const VTT: &str = "text/vtt; charset=utf-8";
/// `Content-Type` of the DASH manifest.
pub const MPD: &str = "application/dash+xml";

/// A response of bytes that never change under `etag` (a strong entity tag naming exactly these
/// bytes: [`etag_of`], or [`etag_of_key`] of a deterministic output's cache key): immutable
/// caching, `304 Not Modified` when `If-None-Match` matches.
pub fn immutable_bytes(
    req: &HeaderMap,
    bytes: Bytes,
    etag: &str,
    content_type: &'static str,
) -> Response<Body> {
    let not_modified = none_match(req, etag);
    let mut b = Response::builder()
        .header(header::ETAG, etag)
        .header(header::CACHE_CONTROL, IMMUTABLE);
    let resp = if not_modified {
        b = b.status(StatusCode::NOT_MODIFIED);
        b.body(Body::empty())
    } else {
        b = b
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::CONTENT_LENGTH, bytes.len());
        b.body(Body::from(bytes))
    };
    // Only header values we built ourselves: cannot fail.
    resp.unwrap_or_else(|_| Response::new(Body::empty()))
}

/// A text response with a content type and cache policy.
pub fn text(body: String, content_type: &'static str, cache: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    r
}

#[cfg(test)]
mod tests {
    use super::sniff_content_type as sniff;

    #[test]
    fn tells_what_is_not_media() {
        assert_eq!(not_media(b"", 0, "a.mp4"), Some("empty file"));
        assert_eq!(
            not_media(b"hello, world\n", 13, "text.mp4"),
            Some("text, not media")
        );
        assert_eq!(
            not_media(b"1\n00:00:01,000 --> 00:00:02,000\nHi\n", 40, "film.en.srt"),
            Some("subtitles: they play with the video of the same name")
        );
        assert_eq!(
            not_media(b"\x89PNG\r\n\x1a\n", 100, "cover.png"),
            Some("an image (PNG)")
        );
        assert_eq!(
            not_media(&[0xFF, 0xD8, 0xFF, 0xE0], 100, "x.jpg"),
            Some("an image (JPEG)")
        );
        // Media, and bytes nobody here knows (MPEG-PS): tried, not greyed.
        assert_eq!(not_media(b"fLaC\0\0\0\x22", 100, "a.flac"), None);
        assert_eq!(
            not_media(&[0, 0, 1, 0xBA, 0x44, 0, 4, 0], 100, "film.mpg"),
            None
        );
        assert_eq!(not_media(&[0xFF, 0xFB, 0x90, 0x64], 100, "a.mp3"), None);
    }

    #[test]
    fn sniffs_containers_by_their_magic_bytes() {
        let riff = |kind: &[u8]| [b"RIFF\0\0\0\0".as_slice(), kind].concat();
        let mut m2ts = vec![0u8; 200];
        m2ts[4] = 0x47;
        m2ts[196] = 0x47;
        let asf = [0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11, 0xA6, 0xD9];
        for (head, want) in [
            (b"\0\0\0\x20ftypisom".to_vec(), "video/mp4"),
            (b"\0\0\0\x20ftypM4A ".to_vec(), "audio/mp4"),
            (b"\0\0\0\x14ftypqt  ".to_vec(), "video/quicktime"),
            (
                [&[0x1A, 0x45, 0xDF, 0xA3][..], b"\x42\x82\x84webm"].concat(),
                "video/webm",
            ),
            (
                [&[0x1A, 0x45, 0xDF, 0xA3][..], b"\x42\x82\x88matroska"].concat(),
                "video/x-matroska",
            ),
            (b"fLaC\0\0\0\x22".to_vec(), "audio/flac"),
            (b"OggS\0\x02".to_vec(), "audio/ogg"),
            (riff(b"WAVEfmt "), "audio/wav"),
            (riff(b"AVI LIST"), "video/x-msvideo"),
            (b"FORM\0\0\0\0AIFF".to_vec(), "audio/aiff"),
            (b"FLV\x01\x05".to_vec(), "video/x-flv"),
            (asf.to_vec(), "video/x-ms-asf"),
            (b"ID3\x04\0".to_vec(), "audio/mpeg"),
            (vec![0xFF, 0xFB, 0x90, 0x00], "audio/mpeg"),
            (vec![0xFF, 0xF1, 0x50, 0x80], "audio/aac"),
            (m2ts, "video/mp2t"),
        ] {
            assert_eq!(sniff(&head, "x"), want, "{head:02x?}");
        }
        // Nothing recognisable: the extension, then octet-stream.
        assert_eq!(sniff(b"hello", "a/b/Film.MKV?x=1"), "video/x-matroska");
        assert_eq!(sniff(b"hello", "https://h/x.flac#t"), "audio/flac");
        assert_eq!(sniff(b"", "noext"), "application/octet-stream");
    }

    use super::*;
    use RangeRequest::*;

    #[test]
    fn ranges_per_rfc9110() {
        let n = 1000;
        assert_eq!(
            parse_range("bytes=0-499", n),
            Partial { start: 0, end: 500 }
        );
        assert_eq!(
            parse_range("bytes=500-", n),
            Partial {
                start: 500,
                end: 1000
            }
        );
        assert_eq!(
            parse_range("bytes=-200", n),
            Partial {
                start: 800,
                end: 1000
            }
        );
        assert_eq!(
            parse_range("bytes=-2000", n),
            Partial {
                start: 0,
                end: 1000
            }
        );
        assert_eq!(
            parse_range("bytes=900-5000", n),
            Partial {
                start: 900,
                end: 1000
            }
        );
        assert_eq!(parse_range("Bytes = 1-1", n), Partial { start: 1, end: 2 });
        assert_eq!(
            parse_range("bytes=999-999", n),
            Partial {
                start: 999,
                end: 1000
            }
        );
        assert_eq!(parse_range("bytes=1000-", n), Unsatisfiable);
        assert_eq!(parse_range("bytes=1000-1001", n), Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", n), Unsatisfiable);
        assert_eq!(
            parse_range("bytes=99999999999999999999999-", n),
            Unsatisfiable
        );
        assert_eq!(parse_range("bytes=0-", 0), Unsatisfiable);
        // Ignored: bad syntax, other units, several ranges, last < first.
        for v in [
            "bytes=5-1",
            "items=0-1",
            "bytes=0-1,5-6",
            "bytes=a-b",
            "bytes=",
            "bytes=-",
            "0-1",
            "bytes=1-2-3",
            "bytes=+1-2",
        ] {
            assert_eq!(parse_range(v, n), Full, "{v}");
        }
    }

    #[test]
    fn conditionals() {
        let etag = "\"abc\"";
        let mut h = HeaderMap::new();
        assert!(!none_match(&h, etag));
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"x\", W/\"abc\""),
        );
        assert!(none_match(&h, etag));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(none_match(&h, etag));

        let lm = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        let mut h = HeaderMap::new();
        assert!(if_range_allows(&h, etag, Some(lm)));
        h.insert(header::IF_RANGE, HeaderValue::from_static("\"abc\""));
        assert!(if_range_allows(&h, etag, Some(lm)));
        h.insert(header::IF_RANGE, HeaderValue::from_static("W/\"abc\""));
        assert!(!if_range_allows(&h, etag, Some(lm)));
        h.insert(header::IF_RANGE, HeaderValue::from_static("\"old\""));
        assert!(!if_range_allows(&h, etag, Some(lm)));
        h.insert(
            header::IF_RANGE,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
        );
        assert!(if_range_allows(&h, etag, Some(lm)));
        assert!(!if_range_allows(&h, etag, None));
        h.insert(
            header::IF_RANGE,
            HeaderValue::from_static("Sun, 06 Nov 1994 08:49:38 GMT"),
        );
        assert!(!if_range_allows(&h, etag, Some(lm)));
    }

    #[test]
    fn immutable_bytes_honours_if_none_match() {
        let body = Bytes::from_static(b"segment bytes");
        let tag = etag_of(&body);
        let r = immutable_bytes(&HeaderMap::new(), body.clone(), &tag, "video/mp4");
        assert_eq!(r.status(), 200);
        let etag = r.headers()[header::ETAG].clone();
        assert_eq!(etag.to_str().unwrap(), etag_of(&body));
        assert_eq!(r.headers()[header::CACHE_CONTROL], IMMUTABLE);
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, etag);
        let r = immutable_bytes(&h, body, &tag, "video/mp4");
        assert_eq!(r.status(), 304);
        assert!(r.headers().get(header::CONTENT_TYPE).is_none());
    }
}
