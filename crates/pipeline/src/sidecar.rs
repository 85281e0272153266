//! Subtitle files next to a local video (`film.srt`, `film.en.srt`, `film.fr.ass`, `film.vtt`
//! beside `film.mkv`): parsed once into cues, offered as WebVTT subtitle renditions like the
//! embedded text tracks (see [`crate::Media::with_sidecars`]).
//!
//! Cue times are output times: a sidecar's 0 is where playback starts, which is output time 0
//! (every rendition presents from 0, see `plan::Timeline`). Sizes and counts are bounded
//! ([`MAX_SIDECAR_BYTES`], [`MAX_CUES`]); a file that does not parse is skipped by the caller.

use crate::vtt::{self, Cue};
use crate::PipelineError;

/// Largest subtitle file read.
pub const MAX_SIDECAR_BYTES: u64 = 8 << 20;
/// Most cues kept from one file.
pub const MAX_CUES: usize = 100_000;
/// The extensions taken as subtitle files.
pub const EXTENSIONS: [&str; 4] = ["srt", "vtt", "ass", "ssa"];

/// One parsed subtitle file.
#[derive(Debug, Clone, PartialEq)]
pub struct Sidecar {
    /// Its file name (no folders).
    pub file_name: String,
    /// The language its name states (`film.en.srt` → `en`), as written.
    pub language: Option<String>,
    /// Forced subtitles (`film.en.forced.srt`).
    pub forced: bool,
    /// The cues, by start time.
    pub cues: Vec<Cue>,
    /// SHA-256 of the file's bytes, hex: part of the cache keys of what is made from it.
    pub digest: String,
}

impl Sidecar {
    /// Parses `bytes`, the file `file_name` next to the video `video` (SubRip, WebVTT or
    /// ASS/SSA, by the extension; UTF-8, a BOM allowed, invalid bytes replaced). The language
    /// and `forced` come from the tags between the video's name and the extension.
    pub fn parse(file_name: &str, video: &str, bytes: &[u8]) -> Result<Sidecar, PipelineError> {
        use sha2::Digest as _;
        if bytes.len() as u64 > MAX_SIDECAR_BYTES {
            return Err(PipelineError::Unsupported(format!(
                "{file_name}: subtitle file over {MAX_SIDECAR_BYTES} bytes"
            )));
        }
        let text = String::from_utf8_lossy(bytes);
        let text = text.trim_start_matches('\u{feff}').replace("\r\n", "\n");
        let ext = extension(file_name).unwrap_or_default();
        let mut cues = match ext.as_str() {
            "ass" | "ssa" => parse_ass(&text),
            // SubRip and WebVTT share the block shape: an optional id line, a timing line, text.
            _ => parse_blocks(&text),
        };
        cues.retain(|c| c.end > c.start && !c.text.trim().is_empty());
        cues.sort_by(|a, b| a.start.total_cmp(&b.start));
        cues.truncate(MAX_CUES);
        if cues.is_empty() {
            return Err(PipelineError::Unsupported(format!(
                "{file_name}: no subtitle cue found"
            )));
        }
        let stem = video.rsplit_once('.').map_or(video, |(s, _)| s);
        let rest = file_name
            .strip_prefix(stem)
            .and_then(|r| r.strip_prefix('.'))
            .unwrap_or(file_name);
        let parts: Vec<&str> = rest.split('.').collect();
        let tags = parts.get(..parts.len().saturating_sub(1)).unwrap_or(&[]);
        let forced = tags.iter().any(|t| t.eq_ignore_ascii_case("forced"));
        let language = tags
            .iter()
            .rev()
            .find(|t| is_language(t))
            .map(|t| (*t).to_string());
        Ok(Sidecar {
            file_name: file_name.to_string(),
            language,
            forced,
            cues,
            digest: sha2::Sha256::digest(bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        })
    }

    /// Heap bytes held (for the memo's weigher).
    pub fn heap_bytes(&self) -> usize {
        self.cues
            .iter()
            .map(|c| std::mem::size_of::<Cue>() + c.text.len())
            .sum::<usize>()
            + self.file_name.len()
    }
}

/// Whether `name` (a file next to `video`) is one of its subtitle files: the video's name
/// without its extension, then optional `.tag`s (language, `forced`), then a subtitle extension.
pub fn belongs_to(video: &str, name: &str) -> bool {
    let Some((stem, _)) = video.rsplit_once('.') else {
        return false;
    };
    if name
        .strip_prefix(stem)
        .and_then(|r| r.strip_prefix('.'))
        .is_none()
    {
        return false;
    }
    extension(name).is_some_and(|e| EXTENSIONS.contains(&e.as_str()))
}

fn extension(name: &str) -> Option<String> {
    name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase())
}

/// A BCP 47-ish tag: 2–3 letters, optionally a region (`en`, `fre`, `pt-BR`).
fn is_language(t: &str) -> bool {
    let (lang, region) = t.split_once(['-', '_']).unwrap_or((t, ""));
    (2..=3).contains(&lang.len())
        && lang.bytes().all(|b| b.is_ascii_alphabetic())
        && (region.is_empty() || (2..=4).contains(&region.len()))
        && !t.eq_ignore_ascii_case("sdh")
}

/// `[HH:]MM:SS[.,]mmm` in seconds.
fn timestamp(s: &str) -> Option<f64> {
    let s = s.trim();
    let (hms, frac) = s.split_once(['.', ',']).unwrap_or((s, "0"));
    let mut parts: Vec<f64> = Vec::new();
    for p in hms.split(':') {
        parts.push(p.trim().parse::<u32>().ok()? as f64);
    }
    let secs = match parts.as_slice() {
        [h, m, s] => h * 3600.0 + m * 60.0 + s,
        [m, s] => m * 60.0 + s,
        _ => return None,
    };
    let digits = frac.trim();
    if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let f = digits.parse::<u32>().ok()? as f64 / 10f64.powi(digits.len() as i32);
    Some(secs + f)
}

/// SubRip / WebVTT: blocks separated by blank lines; the timing line holds `-->`.
fn parse_blocks(text: &str) -> Vec<Cue> {
    let mut cues = Vec::new();
    for block in text.split("\n\n") {
        let mut lines = block.lines().skip_while(|l| !l.contains("-->"));
        let Some(timing) = lines.next() else { continue };
        let Some((a, b)) = timing.split_once("-->") else {
            continue;
        };
        // WebVTT cue settings follow the end time.
        let b = b.split_whitespace().next().unwrap_or("");
        let (Some(start), Some(end)) = (timestamp(a), timestamp(b)) else {
            continue;
        };
        let body: Vec<&str> = lines.collect();
        let payload = body.join("\n");
        if let Some(text) = vtt::cue_text(&probe::Codec::Srt, payload.as_bytes()) {
            cues.push(Cue { start, end, text });
        }
        if cues.len() > MAX_CUES {
            break;
        }
    }
    cues
}

/// ASS/SSA: the `[Events]` section's `Dialogue:` lines, fields by its `Format:` line.
fn parse_ass(text: &str) -> Vec<Cue> {
    let mut cues = Vec::new();
    let mut in_events = false;
    let mut format: Vec<String> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_events = line.eq_ignore_ascii_case("[events]");
            continue;
        }
        if !in_events {
            continue;
        }
        if let Some(f) = line.strip_prefix("Format:") {
            format = f
                .split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .collect();
            continue;
        }
        let Some(d) = line.strip_prefix("Dialogue:") else {
            continue;
        };
        if format.is_empty() {
            continue;
        }
        let fields: Vec<&str> = d.splitn(format.len(), ',').collect();
        let field = |name: &str| {
            format
                .iter()
                .position(|f| f == name)
                .and_then(|i| fields.get(i))
                .map(|s| s.trim())
        };
        let (Some(start), Some(end), Some(raw)) = (
            field("start").and_then(timestamp),
            field("end").and_then(timestamp),
            field("text"),
        ) else {
            continue;
        };
        // The Matroska form of an ASS event is "ReadOrder,Layer,Style,Name,…,Text": give the
        // text in that shape to the one ASS text cleaner.
        let sample = format!("0,0,,,,,,,{raw}");
        if let Some(text) = vtt::cue_text(&probe::Codec::Ass, sample.as_bytes()) {
            cues.push(Cue { start, end, text });
        }
        if cues.len() > MAX_CUES {
            break;
        }
    }
    cues
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srt_vtt_and_ass_give_the_same_cues() {
        let srt = "\u{feff}1\r\n00:00:02,000 --> 00:00:04,500\r\nFirst <i>cue</i>\r\nline two\r\n\r\n2\r\n00:01:10,250 --> 00:01:12,000\r\nA & B\r\n";
        let vtt = "WEBVTT\n\nNOTE a comment\n\n00:02.000 --> 00:04.500 align:start\nFirst <i>cue</i>\nline two\n\nid-2\n01:10.250 --> 01:12.000\nA & B\n";
        let ass = "[Script Info]\nTitle: x\n\n[Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\nDialogue: 0,0:00:02.00,0:00:04.50,Default,,0,0,0,,First {\\i1}cue{\\i0}\\Nline two\nDialogue: 0,0:01:10.25,0:01:12.00,Default,,0,0,0,,A & B, with a comma\n";
        let s = Sidecar::parse("film.en.srt", "film.mkv", srt.as_bytes()).unwrap();
        let v = Sidecar::parse("film.vtt", "film.mkv", vtt.as_bytes()).unwrap();
        let a = Sidecar::parse("film.fr.forced.ass", "film.mkv", ass.as_bytes()).unwrap();
        // Tags come after the video's own name: "The.End" is not a language.
        let t = Sidecar::parse("The.End.srt", "The.End.mkv", srt.as_bytes()).unwrap();
        assert_eq!(t.language, None);
        assert_eq!(s.cues.len(), 2);
        assert_eq!(s.cues, v.cues);
        assert_eq!((s.cues[0].start, s.cues[0].end), (2.0, 4.5));
        assert_eq!(s.cues[0].text, "First <i>cue</i>\nline two");
        assert_eq!(s.cues[1].start, 70.25);
        assert_eq!(s.cues[1].text, "A &amp; B");
        assert_eq!(a.cues[0].text, "First cue\nline two");
        assert_eq!(a.cues[1].text, "A &amp; B, with a comma");
        assert_eq!((a.cues[1].start, a.cues[1].end), (70.25, 72.0));
        assert_eq!(s.language.as_deref(), Some("en"));
        assert_eq!(v.language, None);
        assert_eq!((a.language.as_deref(), a.forced), (Some("fr"), true));
        assert_ne!(s.digest, v.digest);
    }

    #[test]
    fn names_that_belong_to_a_video() {
        for (name, yes) in [
            ("film.srt", true),
            ("film.en.srt", true),
            ("film.pt-BR.forced.ass", true),
            ("film.VTT", true),
            ("film2.srt", false),
            ("film.mkv", false),
            ("other.en.srt", false),
            ("film.en.txt", false),
        ] {
            assert_eq!(belongs_to("film.mkv", name), yes, "{name}");
        }
    }

    #[test]
    fn garbage_is_refused_not_a_panic() {
        assert!(Sidecar::parse("x.srt", "x.mkv", b"").is_err());
        assert!(Sidecar::parse("x.srt", "x.mkv", b"1\n99:99 --> ??\nx\n").is_err());
        assert!(Sidecar::parse("x.ass", "x.mkv", b"Dialogue: 0,1,2,3\n").is_err());
        let big = vec![b'a'; (MAX_SIDECAR_BYTES + 1) as usize];
        assert!(Sidecar::parse("x.srt", "x.mkv", &big).is_err());
        let mut x: u32 = 7;
        for len in 0..300 {
            let junk: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    b"0123456789:,.->\n \r\x01["[(x >> 16) as usize % 16]
                })
                .collect();
            let _ = Sidecar::parse("j.srt", "j.mkv", &junk);
            let _ = Sidecar::parse("j.ass", "j.mkv", &junk);
        }
    }
}
