//! DASH over the same segments (issue 15 item 2): `/v1/{token}/manifest.mpd` read by an
//! independent parser of our own making here (the XML's SegmentTemplate and SegmentTimeline,
//! against the segments' own tfdt and sample durations read with mp4-atom), then played by
//! dash.js in headless Chromium, ffmpeg's DASH demuxer and GStreamer (`playbin` with
//! `dashdemux`, `playbin3` with `dashdemux2`).

use std::process::Command;

use hlsgate_tests::fixtures;
use hlsgate_tests::mp4check::fragments;
use hlsgate_tests::players::{dashjs_check, ffmpeg_check_streams};
use hlsgate_tests::server::Hlsgate;

fn server() -> Hlsgate {
    Hlsgate::serve(&["--media-root", fixtures().to_str().unwrap()], &[])
}

fn get(url: &str) -> Vec<u8> {
    let out = Command::new("curl").args(["-sf", url]).output().unwrap();
    assert!(out.status.success(), "GET {url}");
    out.stdout
}

/// The value of `attr="…"` in `tag`.
fn attr<'a>(tag: &'a str, attr: &str) -> Option<&'a str> {
    let key = format!(" {attr}=\"");
    let at = tag.find(&key)? + key.len();
    tag[at..].split('"').next()
}

/// A representation of the MPD: id, timescale, (start, duration) of each segment.
type Rep = (String, u64, Vec<(u64, u64)>);

/// Each media (video, audio) representation's id, timescale and (start, duration) list, and
/// each text one's, from the MPD text.
fn representations(mpd: &str) -> (Vec<Rep>, Vec<Rep>) {
    let (mut media, mut text) = (Vec::new(), Vec::new());
    for set in mpd.split("<AdaptationSet ").skip(1) {
        let set_head = format!(" {}", set.split('>').next().unwrap());
        let is_text = attr(&set_head, "contentType") == Some("text");
        if is_text {
            assert_eq!(attr(&set_head, "mimeType"), Some("text/vtt"), "{set_head}");
        }
        for rep in set.split("<Representation ").skip(1) {
            let r = representation(rep, is_text);
            if is_text {
                text.push(r);
            } else {
                media.push(r);
            }
        }
    }
    (media, text)
}

/// One `<Representation …>…` of the MPD: id, timescale, segments.
fn representation(rep: &str, is_text: bool) -> Rep {
    {
        let head = format!(" {}", rep.split('>').next().unwrap());
        let id = attr(&head, "id").unwrap().to_string();
        let tmpl = rep.split("<SegmentTemplate").nth(1).unwrap();
        let tmpl_head = tmpl.split('>').next().unwrap();
        let timescale: u64 = attr(tmpl_head, "timescale").unwrap().parse().unwrap();
        if is_text {
            // The HLS subtitle playlist's own WebVTT files; no initialization segment.
            assert_eq!(
                attr(tmpl_head, "media"),
                Some(format!("{id}/$Number$.vtt").as_str())
            );
            assert_eq!(attr(tmpl_head, "initialization"), None);
        } else {
            assert_eq!(
                attr(tmpl_head, "media"),
                Some(format!("{id}/$Number$.m4s").as_str())
            );
            assert_eq!(
                attr(tmpl_head, "initialization"),
                Some(format!("{id}/init.mp4").as_str())
            );
        }
        assert_eq!(attr(tmpl_head, "startNumber"), Some("0"));
        let timeline = tmpl.split("</SegmentTimeline>").next().unwrap();
        let mut segs = Vec::new();
        let mut t = 0u64;
        for s in timeline.split("<S ").skip(1) {
            let s = s.split("/>").next().unwrap();
            let s = format!(" {s}");
            if let Some(v) = attr(&s, "t") {
                t = v.parse().unwrap();
            }
            let d: u64 = attr(&s, "d").unwrap().parse().unwrap();
            let r: u64 = attr(&s, "r").map_or(0, |v| v.parse().unwrap());
            for _ in 0..=r {
                segs.push((t, d));
                t += d;
            }
        }
        (id, timescale, segs)
    }
}

/// GStreamer plays `url` to EOS with fake sinks: (exit ok, last video pts, last audio pts).
fn gst_play(element: &str, url: &str) -> (bool, Option<f64>, Option<f64>, String) {
    let out = Command::new("timeout")
        .args(["120", "gst-launch-1.0", "-v", element])
        .arg(format!("uri={url}"))
        .arg("video-sink=fakesink name=vs sync=false silent=false")
        .arg("audio-sink=fakesink name=as sync=false silent=false")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let last = |sink: &str| -> Option<f64> {
        text.lines()
            .filter(|l| l.contains(&format!("({sink}:sink)")) && l.contains("chain"))
            .filter_map(|l| {
                let pts = l.split("pts: ").nth(1)?.split(',').next()?;
                let mut secs = 0.0;
                for part in pts.split(':') {
                    secs = secs * 60.0 + part.parse::<f64>().ok()?;
                }
                let dur = l.split("duration: ").nth(1)?.split(',').next()?;
                let mut d = 0.0;
                for part in dur.split(':') {
                    d = d * 60.0 + part.parse::<f64>().ok()?;
                }
                Some(secs + d)
            })
            .next_back()
    };
    let ok = out.status.success() && text.contains("EOS");
    let tail: String = String::from_utf8_lossy(&out.stderr)
        .chars()
        .take(400)
        .collect();
    (ok, last("vs"), last("as"), tail)
}

/// Every source shape through DASH: a remuxed MP4, a Matroska with two audio tracks, an HEVC +
/// AC-3 film (H.264 transcode and HEVC passthrough: two video sets), an audio-only FLAC file.
/// For each: the MPD's timeline equals the segments' own timing (tfdt = t, summed durations =
/// d, for every segment of every representation), its URLs are the HLS ones, and the players
/// play it to the end.
#[test]
fn dash_manifest_plays_in_dashjs_ffmpeg_and_gstreamer() {
    let s = server();
    for (source, video) in [
        ("file:h264_aac_faststart.mp4", true),
        ("file:multi_audio_subs.mkv", true),
        ("file:hevc_ac3.mkv", true),
        ("file:audio.flac", false),
    ] {
        let master = s.create_stream(source)["master_url"]
            .as_str()
            .unwrap()
            .to_string();
        let mpd_url = master.replace("master.m3u8", "manifest.mpd");
        let base = master.trim_end_matches("master.m3u8").to_string();
        let mpd = String::from_utf8(get(&mpd_url)).unwrap();
        let (reps, texts) = representations(&mpd);
        assert!(!reps.is_empty(), "{source}: no representation:\n{mpd}");
        let duration: f64 = mpd
            .split("mediaPresentationDuration=\"PT")
            .nth(1)
            .and_then(|d| d.split('S').next())
            .and_then(|d| d.parse().ok())
            .unwrap();
        // The MPD's templates name the HLS URLs: segment 1 of the first representation asked
        // for through the MPD is then a cache hit for its HLS playlist's URI.
        let (first_id, _, first_segs) = &reps[0];
        let template = mpd
            .split("<SegmentTemplate ")
            .map(|t| t.split('>').next().unwrap_or(""))
            .find(|t| t.contains(&format!("media=\"{first_id}/")))
            .unwrap_or_else(|| panic!("{source}: a SegmentTemplate for {first_id}"));
        let media = attr(template, "media").expect("media=");
        let start: u32 = attr(template, "startNumber")
            .and_then(|v| v.parse().ok())
            .expect("startNumber");
        if first_segs.len() > 1 {
            let via_dash = format!(
                "{base}{}",
                media.replace("$Number$", &(start + 1).to_string())
            );
            let playlist = String::from_utf8(get(&format!("{base}{first_id}/index.m3u8"))).unwrap();
            let uri = playlist
                .lines()
                .filter(|l| l.ends_with(".m4s"))
                .nth(1)
                .expect("segment 1");
            let via_hls = format!("{base}{first_id}/{uri}");
            assert_eq!(
                via_dash, via_hls,
                "{source}: DASH and HLS name one resource"
            );
            let hits = || s.metric("hlsgate_cache_hits_total", "kind=\"segment\"");
            let dash_bytes = get(&via_dash);
            let before = hits();
            assert_eq!(get(&via_hls), dash_bytes);
            assert!(
                hits() > before,
                "{source}: the HLS request is a cache hit ({before} hits before it)"
            );
        }
        let mut latest_end = 0.0f64;
        for (id, timescale, segs) in &reps {
            // The same segments as the HLS playlist of the rendition.
            let playlist = String::from_utf8(get(&format!("{base}{id}/index.m3u8"))).unwrap();
            let hls: Vec<&str> = playlist.lines().filter(|l| l.ends_with(".m4s")).collect();
            assert_eq!(hls.len(), segs.len(), "{source} {id}: segment counts");
            for (n, (t, d)) in segs.iter().enumerate() {
                assert_eq!(hls[n], format!("{n}.m4s"));
                let bytes = get(&format!("{base}{id}/{n}.m4s"));
                let traf = fragments(&bytes)[0].trafs[0].clone();
                assert_eq!(traf.tfdt, *t, "{source} {id} segment {n}: tfdt vs t");
                assert_eq!(
                    traf.duration(),
                    *d,
                    "{source} {id} segment {n}: durations vs d"
                );
            }
            let total = segs.iter().map(|(_, d)| d).sum::<u64>() as f64 / *timescale as f64;
            assert!(
                (total - duration).abs() < 0.1,
                "{source} {id}: {total} s of segments, the MPD says {duration} s"
            );
            // The period covers the representation's last sample: a period ending short of
            // the media lets dash.js stop there and never fire `ended` (seen with an AAC
            // transcode of a 20.000 s FLAC whose last frame ends at 20.0107 s).
            let end = segs
                .last()
                .map_or(0.0, |(t, d)| (t + d) as f64 / *timescale as f64);
            assert!(
                end <= duration + 1e-9,
                "{source} {id}: ends at {end} s, after the MPD's {duration} s"
            );
            latest_end = latest_end.max(end);
        }
        assert!(
            duration - latest_end < 0.001,
            "{source}: the MPD's {duration} s is longer than the media ({latest_end} s)"
        );
        // Subtitles: one text set per subtitle rendition of the master, on the video's
        // timeline (the same windows and times as the video representation), naming the HLS
        // subtitle playlist's WebVTT files.
        let master_text = String::from_utf8(get(&master)).unwrap();
        let subtitle_ids: Vec<String> = master_text
            .lines()
            .filter(|l| l.starts_with("#EXT-X-MEDIA:TYPE=SUBTITLES"))
            .filter_map(|l| {
                l.split("URI=\"")
                    .nth(1)?
                    .split('/')
                    .next()
                    .map(String::from)
            })
            .collect();
        let text_ids: Vec<String> = texts.iter().map(|(id, ..)| id.clone()).collect();
        assert_eq!(
            text_ids, subtitle_ids,
            "{source}: text sets = subtitle renditions"
        );
        for (id, timescale, segs) in &texts {
            let (_, vts, vsegs) = &reps[0];
            assert_eq!(
                (timescale, segs),
                (vts, vsegs),
                "{source} {id}: video timeline"
            );
            let playlist = String::from_utf8(get(&format!("{base}{id}/index.m3u8"))).unwrap();
            let hls: Vec<&str> = playlist.lines().filter(|l| l.ends_with(".vtt")).collect();
            let dash: Vec<String> = (0..segs.len()).map(|n| format!("{n}.vtt")).collect();
            assert_eq!(hls, dash, "{source} {id}: the HLS WebVTT files");
        }
        println!(
            "{source}: {} representations + {} text, {duration} s",
            reps.len(),
            texts.len()
        );

        // Video and audio to the end. (With `-map 0` FFmpeg 5.1 also maps the text set and
        // then stops every stream where it stops reading text: see below.)
        let ff = ffmpeg_check_streams(&mpd_url, &["-map", "0:v?", "-map", "0:a?"]);
        ff.assert_ok();
        assert!(
            (ff.decoded_duration - duration).abs() < 0.5,
            "{source}: ffmpeg decoded {} s of {duration}",
            ff.decoded_duration
        );
        println!(
            "{source}: ffmpeg (DASH demuxer) decoded {:.3} s",
            ff.decoded_duration
        );
        if !texts.is_empty() {
            // The fixture's SRT, read by ffmpeg's DASH demuxer from the WebVTT segments. FFmpeg
            // 5.1 asks only for the first two (`0.vtt`, `1.vtt`): it sees the first two cues,
            // at their times.
            let subs = ffmpeg_check_streams(&mpd_url, &["-map", "0:s", "-c", "copy"]);
            let ff_cues: Vec<(f64, f64)> = subs
                .of_type("subtitle")
                .iter()
                .flat_map(|s| s.cues.clone())
                .collect();
            println!("{source}: ffmpeg subtitle packets {ff_cues:?}");
            assert!(
                subs.success && subs.errors.trim().is_empty(),
                "{}",
                subs.errors
            );
            assert!(!ff_cues.is_empty(), "{source}: ffmpeg read no cue");
            let want = [(2.0, 4.0), (10.5, 12.0), (30.0, 33.0)];
            for (n, (s, e)) in ff_cues.iter().enumerate() {
                let (ws, we) = want[n];
                assert!(
                    (s - ws).abs() < 0.002 && (e - we).abs() < 0.002,
                    "{source}: ffmpeg cue {s}–{e}, the SRT says {ws}–{we}"
                );
            }
        }

        let d = dashjs_check(&mpd_url, !video, !texts.is_empty());
        d.assert_ok();
        println!(
            "{source}: dash.js started in {:?} ms, seeks {:?}",
            d.start_ms, d.seeks
        );
        if source == "file:multi_audio_subs.mkv" {
            // The cues of the fixture's SRT (2 s, 10.5 s, 30 s): dash.js shows the first from
            // the start and the third after the seek to the middle, at the source's times.
            let cues: Vec<(f64, f64, String)> = d
                .text_cues
                .iter()
                .map(|c| (c.start, c.end, c.text.clone()))
                .collect();
            println!("{source}: dash.js text cues {cues:?}");
            for (start, end, text) in [(2.0, 4.0, "First cue"), (30.0, 33.0, "Half way")] {
                assert!(
                    cues.iter().any(|(s, e, t)| (s - start).abs() < 0.002
                        && (e - end).abs() < 0.002
                        && t == text),
                    "{source}: dash.js has no cue {text:?} at {start}–{end} s: {cues:?}"
                );
            }
        }

        for element in ["playbin", "playbin3"] {
            let (ok, v, a, err) = gst_play(element, &mpd_url);
            assert!(ok, "{source}: GStreamer {element} did not reach EOS: {err}");
            let a = a.unwrap_or_else(|| panic!("{source}: {element} played no audio"));
            assert!(
                (a - duration).abs() < 0.5,
                "{source}: {element} audio ends at {a} s of {duration}"
            );
            if video {
                let v = v.unwrap_or_else(|| panic!("{source}: {element} played no video"));
                assert!(
                    (v - duration).abs() < 0.5,
                    "{source}: {element} video ends at {v} s of {duration}"
                );
            }
            println!("{source}: GStreamer {element} to EOS, video end {v:?}, audio end {a:.3}");
        }
    }
}
