//! The DASH manifest (ISO/IEC 23009-1, `isoff-live` profile) over the same CMAF init and media
//! segments as the HLS playlists: every representation is a rendition, its `SegmentTemplate`
//! names the same `{id}/init.mp4` and `{id}/$Number$.m4s` URLs (so a segment fetched through
//! DASH is the same cache entry as through HLS), and its `SegmentTimeline` lists the segments'
//! exact starts and durations in the rendition's own timescale — the tfdt of each segment and
//! its summed sample durations, the very numbers behind the HLS EXTINF.
//!
//! One `AdaptationSet` per video codec (switching inside one set keeps the codec; AVC before
//! HEVC, as in the master), one per audio rendition (its language and name), and one per
//! subtitle rendition: `text/vtt` segments on the video's timeline, the very `{id}/$Number$.vtt`
//! files the HLS subtitle playlist lists (each a whole WebVTT document holding the cues that
//! start in its window, times on the presentation timeline), read as segmented WebVTT by
//! dash.js (4.x) and ffmpeg's DASH demuxer.

use std::fmt::Write as _;

use crate::{Rendition, RenditionKind};

/// One representation of the manifest.
#[derive(Debug, Clone)]
pub struct DashRepresentation<'a> {
    /// The rendition (id, codecs, sizes, language, name, channels).
    pub rendition: &'a Rendition,
    /// Ticks per second of `segments` (the init's `mdhd` timescale).
    pub timescale: u32,
    /// Each segment's (start, duration) in `timescale` ticks: the tfdt and the sum of the
    /// segment's sample durations.
    pub segments: Vec<(i64, i64)>,
    /// `@bandwidth`, b/s (peak, as HLS BANDWIDTH).
    pub bandwidth: u64,
    /// Audio sample rate (`@audioSamplingRate`), 0 for video.
    pub sample_rate: u32,
    /// The picture's HDR transfer (H.273 code: 16 PQ, 18 HLG) for a copied HDR video, said by
    /// a `SupplementalProperty` (`urn:mpeg:mpegB:cicp:TransferCharacteristics`, ISO/IEC 23001-8
    /// as DASH-IF IOP §6.2.5 uses it); `None` for SDR.
    pub transfer: Option<u8>,
}

/// The MPD of `reps` (static); segment URLs are relative to the manifest.
///
/// `mediaPresentationDuration` is where the latest representation ends — what is produced, as
/// the HLS EXTINF sums are — rounded up to the millisecond. A shorter period (the container's
/// claimed duration, say, when the last AAC frame runs 10 ms past it) lets dash.js stop the
/// presentation at the period end, short of the media's end, where `ended` never comes.
pub fn manifest(reps: &[DashRepresentation<'_>]) -> String {
    let duration_secs = presentation_end(reps);
    let mut s = String::with_capacity(1024 + 128 * reps.len());
    s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        s,
        "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" profiles=\"urn:mpeg:dash:profile:isoff-live:2011\" type=\"static\" mediaPresentationDuration=\"{}\" minBufferTime=\"PT2S\">",
        iso_duration(duration_secs)
    );
    s.push_str("  <Period id=\"0\" start=\"PT0S\">\n");
    // Video sets by codec family (the part before the first dot), in rendition order.
    let mut families: Vec<&str> = Vec::new();
    for r in reps
        .iter()
        .filter(|r| r.rendition.kind == RenditionKind::Video)
    {
        let f = family(&r.rendition.codecs);
        if !families.contains(&f) {
            families.push(f);
        }
    }
    let mut set = 0;
    for f in families {
        let members: Vec<&DashRepresentation<'_>> = reps
            .iter()
            .filter(|r| {
                r.rendition.kind == RenditionKind::Video && family(&r.rendition.codecs) == f
            })
            .collect();
        let _ = writeln!(
            s,
            "    <AdaptationSet id=\"{set}\" contentType=\"video\" mimeType=\"video/mp4\" segmentAlignment=\"true\" startWithSAP=\"1\">"
        );
        set += 1;
        for r in members {
            let v = r.rendition;
            let _ = write!(
                s,
                "      <Representation id=\"{}\" codecs=\"{}\" bandwidth=\"{}\"",
                xml(&v.id),
                xml(&v.codecs),
                r.bandwidth.max(1)
            );
            if v.width > 0 && v.height > 0 {
                let _ = write!(s, " width=\"{}\" height=\"{}\"", v.width, v.height);
            }
            if let Some(fps) = v.frame_rate.filter(|f| f.is_finite() && *f > 0.0) {
                let _ = write!(s, " frameRate=\"{}\"", frame_rate(fps));
            }
            s.push_str(">\n");
            if let Some(t) = r.transfer {
                let _ = writeln!(
                    s,
                    "        <SupplementalProperty schemeIdUri=\"urn:mpeg:mpegB:cicp:TransferCharacteristics\" value=\"{t}\"/>"
                );
            }
            template(&mut s, r);
            s.push_str("      </Representation>\n");
        }
        s.push_str("    </AdaptationSet>\n");
    }
    for r in reps
        .iter()
        .filter(|r| r.rendition.kind == RenditionKind::Audio)
    {
        let a = r.rendition;
        let _ = write!(
            s,
            "    <AdaptationSet id=\"{set}\" contentType=\"audio\" mimeType=\"audio/mp4\" segmentAlignment=\"true\" startWithSAP=\"1\""
        );
        set += 1;
        if let Some(lang) = &a.language {
            let _ = write!(s, " lang=\"{}\"", xml(lang));
        }
        s.push_str(">\n");
        let _ = writeln!(s, "      <Label>{}</Label>", xml(&a.name));
        let role = if a.default { "main" } else { "alternate" };
        let _ = writeln!(
            s,
            "      <Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"{role}\"/>"
        );
        let _ = writeln!(
            s,
            "      <Representation id=\"{}\" codecs=\"{}\" bandwidth=\"{}\" audioSamplingRate=\"{}\">",
            xml(&a.id),
            xml(&a.codecs),
            r.bandwidth.max(1),
            r.sample_rate
        );
        let _ = writeln!(
            s,
            "        <AudioChannelConfiguration schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" value=\"{}\"/>",
            a.channels
        );
        template(&mut s, r);
        s.push_str("      </Representation>\n    </AdaptationSet>\n");
    }
    for r in reps
        .iter()
        .filter(|r| r.rendition.kind == RenditionKind::Subtitle)
    {
        let t = r.rendition;
        let _ = write!(
            s,
            "    <AdaptationSet id=\"{set}\" contentType=\"text\" mimeType=\"text/vtt\" segmentAlignment=\"true\""
        );
        set += 1;
        if let Some(lang) = &t.language {
            let _ = write!(s, " lang=\"{}\"", xml(lang));
        }
        s.push_str(">\n");
        let _ = writeln!(s, "      <Label>{}</Label>", xml(&t.name));
        // DASH roles (ISO/IEC 23009-1 5.8.5.5): forced subtitles are "forced-subtitle".
        let role = if t.forced {
            "forced-subtitle"
        } else {
            "subtitle"
        };
        let _ = writeln!(
            s,
            "      <Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"{role}\"/>"
        );
        let _ = writeln!(
            s,
            "      <Representation id=\"{}\" codecs=\"wvtt\" bandwidth=\"{}\">",
            xml(&t.id),
            r.bandwidth.max(1)
        );
        template(&mut s, r);
        s.push_str("      </Representation>\n    </AdaptationSet>\n");
    }
    s.push_str("  </Period>\n</MPD>\n");
    s
}

/// The `SegmentTemplate` of one representation, with its timeline run-length encoded (`r` counts
/// the repeats of a segment that starts where the previous one ended and lasts as long). WebVTT
/// segments have no initialization segment.
fn template(s: &mut String, r: &DashRepresentation<'_>) {
    let id = xml(&r.rendition.id);
    if r.rendition.kind == RenditionKind::Subtitle {
        let _ = writeln!(
            s,
            "        <SegmentTemplate timescale=\"{}\" media=\"{id}/$Number$.vtt\" startNumber=\"0\">",
            r.timescale.max(1)
        );
    } else {
        let _ = writeln!(
            s,
            "        <SegmentTemplate timescale=\"{}\" initialization=\"{id}/init.mp4\" media=\"{id}/$Number$.m4s\" startNumber=\"0\">",
            r.timescale.max(1)
        );
    }
    s.push_str("          <SegmentTimeline>\n");
    let mut i = 0;
    let segs = &r.segments;
    let mut expected: Option<i64> = None;
    while i < segs.len() {
        let (t, d) = segs[i];
        let mut repeat = 0;
        while i + repeat + 1 < segs.len() {
            let (nt, nd) = segs[i + repeat + 1];
            let prev_end = t.saturating_add(d.saturating_mul(repeat as i64 + 1));
            if nd == d && nt == prev_end {
                repeat += 1;
            } else {
                break;
            }
        }
        // `t` only where the timeline does not simply continue.
        if expected == Some(t) {
            let _ = write!(s, "            <S d=\"{d}\"");
        } else {
            let _ = write!(s, "            <S t=\"{t}\" d=\"{d}\"");
        }
        if repeat > 0 {
            let _ = write!(s, " r=\"{repeat}\"");
        }
        s.push_str("/>\n");
        expected = Some(t.saturating_add(d.saturating_mul(repeat as i64 + 1)));
        i += repeat + 1;
    }
    s.push_str("          </SegmentTimeline>\n        </SegmentTemplate>\n");
}

/// The latest segment end over `reps`, in seconds.
fn presentation_end(reps: &[DashRepresentation<'_>]) -> f64 {
    reps.iter()
        .filter_map(|r| {
            let &(t, d) = r.segments.last()?;
            Some(t.saturating_add(d) as f64 / f64::from(r.timescale.max(1)))
        })
        .fold(0.0, f64::max)
}

/// `avc1` of `avc1.64001e`.
fn family(codecs: &str) -> &str {
    codecs.split('.').next().unwrap_or(codecs)
}

/// `@frameRate`: an integer, or the NTSC fractions as `N/1001`, else milliframes.
fn frame_rate(fps: f64) -> String {
    let round = fps.round();
    if (fps - round).abs() < 1e-6 {
        return format!("{round}");
    }
    let ntsc = (fps * 1001.0).round();
    if (ntsc / 1001.0 - fps).abs() < 1e-6 {
        return format!("{ntsc}/1001");
    }
    format!("{}/1000", (fps * 1000.0).round())
}

/// `PT…S` with millisecond precision, rounded up (never shorter than `secs`).
fn iso_duration(secs: f64) -> String {
    let ms = if secs.is_finite() && secs > 0.0 {
        // The epsilon keeps an exact millisecond (21.021 as 21.0209999…) from gaining one.
        (secs * 1000.0 - 1e-6).ceil() as u64
    } else {
        0
    };
    format!("PT{}.{:03}S", ms / 1000, ms % 1000)
}

/// XML attribute and text escaping.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AudioOutput, VideoOutput};

    fn rendition(id: &str, kind: RenditionKind, codecs: &str) -> Rendition {
        Rendition {
            id: id.to_string(),
            kind,
            track_id: 1,
            video: (kind == RenditionKind::Video).then_some(VideoOutput::Passthrough),
            audio: (kind == RenditionKind::Audio).then_some(AudioOutput::Passthrough),
            codecs: codecs.to_string(),
            language: Some("en".into()),
            name: "English <main>".into(),
            default: true,
            forced: false,
            width: if kind == RenditionKind::Video {
                1920
            } else {
                0
            },
            height: if kind == RenditionKind::Video {
                1080
            } else {
                0
            },
            frame_rate: (kind == RenditionKind::Video).then_some(30000.0 / 1001.0),
            channels: if kind == RenditionKind::Audio { 2 } else { 0 },
        }
    }

    #[test]
    fn timeline_is_run_length_encoded_and_exact() {
        let v = rendition("v1", RenditionKind::Video, "avc1.640028");
        let a = rendition("a2", RenditionKind::Audio, "mp4a.40.2");
        let reps = [
            DashRepresentation {
                rendition: &v,
                timescale: 30000,
                segments: vec![
                    (0, 180180),
                    (180180, 180180),
                    (360360, 180180),
                    (540540, 90090),
                ],
                bandwidth: 5_000_000,
                sample_rate: 0,
                transfer: None,
            },
            DashRepresentation {
                rendition: &a,
                timescale: 48000,
                segments: vec![(0, 288768), (288768, 287744), (576512, 144384)],
                bandwidth: 128_000,
                sample_rate: 48000,
                transfer: None,
            },
        ];
        // The period ends with the video (21.021 s), the longer of the two.
        let m = manifest(&reps);
        assert!(m.contains("mediaPresentationDuration=\"PT21.021S\""), "{m}");
        assert!(
            m.contains("<S t=\"0\" d=\"180180\" r=\"2\"/>\n            <S d=\"90090\"/>"),
            "{m}"
        );
        assert!(m.contains("<S t=\"0\" d=\"288768\"/>\n            <S d=\"287744\"/>\n            <S d=\"144384\"/>"), "{m}");
        assert!(m.contains("frameRate=\"30000/1001\""), "{m}");
        assert!(m.contains(
            "initialization=\"v1/init.mp4\" media=\"v1/$Number$.m4s\" startNumber=\"0\""
        ));
        assert!(m.contains("<Label>English &lt;main&gt;</Label>"), "{m}");
        assert!(m.contains("lang=\"en\""));
        // A gap restarts with an explicit t.
        let gap = DashRepresentation {
            rendition: &v,
            timescale: 1000,
            segments: vec![(0, 1000), (1500, 1000)],
            bandwidth: 1,
            sample_rate: 0,
            transfer: None,
        };
        let m = manifest(&[gap]);
        assert!(m.contains("<S t=\"0\" d=\"1000\"/>\n            <S t=\"1500\" d=\"1000\"/>"));
        assert!(m.contains("mediaPresentationDuration=\"PT2.500S\""), "{m}");
        // Audio alone: its last AAC frame ends at 15.0187 s, and so does the period (rounded up).
        let m = manifest(&reps[1..]);
        assert!(m.contains("mediaPresentationDuration=\"PT15.019S\""), "{m}");
    }

    #[test]
    fn subtitles_are_text_sets_of_the_hls_webvtt_files() {
        let mut t = rendition("s3", RenditionKind::Subtitle, "wvtt");
        t.language = Some("fr".into());
        t.name = "Français".into();
        t.forced = true;
        let rep = DashRepresentation {
            rendition: &t,
            timescale: 1000,
            segments: vec![(0, 6000), (6000, 6000), (12000, 3000)],
            bandwidth: 1,
            sample_rate: 0,
            transfer: None,
        };
        let m = manifest(&[rep]);
        assert!(
            m.contains("contentType=\"text\" mimeType=\"text/vtt\""),
            "{m}"
        );
        assert!(m.contains("lang=\"fr\""), "{m}");
        assert!(m.contains("<Label>Français</Label>"), "{m}");
        assert!(m.contains("value=\"forced-subtitle\""), "{m}");
        // The HLS playlist's own `{n}.vtt` files, no initialization segment.
        assert!(
            m.contains(
                "<SegmentTemplate timescale=\"1000\" media=\"s3/$Number$.vtt\" startNumber=\"0\">"
            ),
            "{m}"
        );
        assert!(!m.contains("initialization"), "{m}");
        assert!(
            m.contains("<S t=\"0\" d=\"6000\" r=\"1\"/>\n            <S d=\"3000\"/>"),
            "{m}"
        );
    }
}
