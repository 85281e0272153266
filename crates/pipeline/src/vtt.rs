//! Subtitle segments as WebVTT (W3C WebVTT; RFC 8216 §3.5 for HLS).
//!
//! Each segment of a subtitle rendition holds the cues that start in the video segment's window.
//! Cue times are the source's presentation times, and the header
//! `X-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000` says that WebVTT time 0 is media time 0 of the
//! fMP4 timeline (tfdt 0), so a cue at 10.5 s in the source shows at the moment the video frame
//! presented at 10.5 s does — whatever the source's start time is.

use probe::Codec;

/// One subtitle cue in seconds of the source timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Cue {
    /// Start, seconds.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
    /// Text (WebVTT cue payload, already escaped).
    pub text: String,
}

/// The text of one subtitle sample in `codec`'s storage form, as WebVTT cue payload; `None` for
/// an empty cue.
pub fn cue_text(codec: &Codec, data: &[u8]) -> Option<String> {
    let raw = match codec {
        // mov_text / tx3g: 16-bit length, then UTF-8 text (then style boxes, ignored).
        Codec::MovText => {
            let len = usize::from(u16::from_be_bytes([*data.first()?, *data.get(1)?]));
            String::from_utf8_lossy(data.get(2..2 + len.min(data.len().saturating_sub(2)))?)
                .into_owned()
        }
        // Matroska S_TEXT/ASS: "ReadOrder,Layer,Style,Name,MarginL,MarginR,MarginV,Effect,Text".
        Codec::Ass => {
            let s = String::from_utf8_lossy(data);
            let text = s.splitn(9, ',').nth(8).unwrap_or("").to_string();
            strip_ass(&text)
        }
        _ => String::from_utf8_lossy(data).into_owned(),
    };
    let text = escape(raw.trim_matches(['\r', '\n', ' ', '\0']));
    (!text.trim().is_empty()).then_some(text)
}

/// Removes ASS override blocks (`{\i1}`) and turns `\N`/`\n` into line breaks, `\h` into a space.
fn strip_ass(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut depth = 0u32;
    for c in s.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.replace("\\N", "\n")
        .replace("\\n", "\n")
        .replace("\\h", " ")
}

/// Escapes `&` and `<`/`>` except the WebVTT/SRT tags players understand (`<i>`, `<b>`, `<u>`).
fn escape(s: &str) -> String {
    let mut out = s.replace("\r\n", "\n").replace('&', "&amp;");
    // Protect the simple style tags, escape the rest, restore.
    const TAGS: [&str; 6] = ["<i>", "</i>", "<b>", "</b>", "<u>", "</u>"];
    for (i, t) in TAGS.iter().enumerate() {
        out = out.replace(t, &format!("\u{1}{i}\u{2}"));
    }
    out = out.replace('<', "&lt;").replace('>', "&gt;");
    for (i, t) in TAGS.iter().enumerate() {
        out = out.replace(&format!("\u{1}{i}\u{2}"), t);
    }
    // A blank line would end the cue early.
    while out.contains("\n\n") {
        out = out.replace("\n\n", "\n");
    }
    out.replace("-->", "--&gt;")
}

/// `HH:MM:SS.mmm`.
fn timestamp(secs: f64) -> String {
    let ms = (secs.max(0.0) * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// A WebVTT segment with the cues given (sorted by start).
pub fn segment(cues: &[Cue]) -> String {
    let mut out = String::from("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n\n");
    for c in cues {
        out.push_str(&format!(
            "{} --> {}\n{}\n\n",
            timestamp(c.start),
            timestamp(c.end.max(c.start + 0.001)),
            c.text
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_cues_with_the_timestamp_map() {
        let s = segment(&[Cue {
            start: 10.5,
            end: 12.0,
            text: "Hello".into(),
        }]);
        assert_eq!(
            s,
            "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n\n00:00:10.500 --> 00:00:12.000\nHello\n\n"
        );
        assert_eq!(timestamp(3725.0424), "01:02:05.042");
    }

    #[test]
    fn converts_each_text_codec() {
        assert_eq!(
            cue_text(&Codec::Srt, b"<i>Hi</i> & <font>x</font>\r\n\r\nbye").unwrap(),
            "<i>Hi</i> &amp; &lt;font&gt;x&lt;/font&gt;\nbye"
        );
        assert_eq!(
            cue_text(
                &Codec::Ass,
                b"3,0,Default,,0,0,0,,{\\i1}Hi{\\i0}\\Nthere, you"
            )
            .unwrap(),
            "Hi\nthere, you"
        );
        assert_eq!(
            cue_text(&Codec::MovText, b"\x00\x02Hi\x00\x00").unwrap(),
            "Hi"
        );
        assert_eq!(cue_text(&Codec::MovText, b"\x00\x00"), None);
        assert_eq!(cue_text(&Codec::MovText, b"\x00"), None);
        assert_eq!(cue_text(&Codec::MovText, b"\x00\x09Hi"), Some("Hi".into()));
        assert_eq!(
            cue_text(&Codec::WebVtt, b"a --> b"),
            Some("a --&gt; b".into())
        );
    }
}
