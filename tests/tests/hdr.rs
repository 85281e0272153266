//! HDR sources (issue 14, item 3): HEVC Main10 in BT.2020 with PQ (HDR10, mastering metadata)
//! or HLG transfer. Their H.264 transcode is tone-mapped to SDR: BT.709 primaries, transfer and
//! matrix in the stream's parameter sets (the init's avcC, read back by ffprobe), and pictures
//! whose luma sits in SDR range — the fixture's ~1000-nit PQ patch comes out near white, where
//! a plain conversion (PQ code values shown as BT.709) leaves it at 75 % grey, the washed-out
//! look. The thumbnails are tone-mapped too. The HEVC Main 10 original is offered beside it,
//! copied, with `VIDEO-RANGE=PQ`/`HLG` in the master, its pictures still BT.2020 with the HDR
//! transfer and HDR10's mastering display and light level SEI (ffprobe on the copied init +
//! segment 1). 10-bit SDR HEVC is copied as well, without a range, and not tone-mapped.

use std::path::Path;
use std::process::Command;

use hlsgate_tests::server::Hlsgate;
use hlsgate_tests::{fixtures, Scratch};

fn get(url: &str) -> Vec<u8> {
    let out = Command::new("curl")
        .args(["-sf", url])
        .output()
        .expect("curl");
    assert!(out.status.success(), "GET {url}");
    out.stdout
}

/// ffprobe's `key=value` lines for the first video stream's `entries`.
fn stream_fields(path: &Path, entries: &str) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .arg(format!("stream={entries}"))
        .args(["-of", "default=nw=1"])
        .arg(path)
        .output()
        .expect("ffprobe");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Mean luma (8-bit, as stored) of the `w`×`h` area at (`x`, `y`) of the first picture.
fn mean_luma(path: &Path, x: u32, y: u32, w: u32, h: u32) -> f64 {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-i"])
        .arg(path)
        .args(["-frames:v", "1", "-vf"])
        .arg(format!(
            "crop={w}:{h}:{x}:{y},signalstats,metadata=print:key=lavfi.signalstats.YAVG"
        ))
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    let text = String::from_utf8_lossy(&out.stderr);
    text.split("YAVG=")
        .nth(1)
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no YAVG for {}: {text}", path.display()))
}

#[test]
fn pq_and_hlg_transcodes_are_tone_mapped_to_bt709() {
    let s = Hlsgate::serve(&["--media-root", fixtures().to_str().unwrap()], &[]);
    let scratch = Scratch::new("hdr");
    // (fixture, the bright patch's least luma after tone mapping)
    for (name, bright_min) in [("hdr10_pq.mp4", 215.0), ("hlg.mkv", 150.0)] {
        let master_url = s.create_stream(&format!("file:{name}"))["master_url"]
            .as_str()
            .unwrap()
            .to_string();
        let base = master_url.trim_end_matches("master.m3u8").to_string();
        let master = String::from_utf8(get(&master_url)).unwrap();
        let Ok(m3u8_rs::Playlist::MasterPlaylist(parsed)) =
            m3u8_rs::parse_playlist_res(master.as_bytes())
        else {
            panic!("{name}: not a master playlist:\n{master}");
        };
        let range = if name.starts_with("hdr10") {
            "PQ"
        } else {
            "HLG"
        };
        let variants: Vec<(String, String, Option<String>)> = parsed
            .variants
            .iter()
            .map(|v| {
                (
                    v.uri.clone(),
                    v.codecs.clone().unwrap_or_default(),
                    v.other_attributes
                        .as_ref()
                        .and_then(|o| o.get("VIDEO-RANGE"))
                        .map(|r| r.to_string()),
                )
            })
            .collect();
        println!("{name}: variants {variants:?}");
        // The SDR H.264 transcode first (browsers), then the HEVC Main 10 copy with its range.
        assert_eq!(variants[0].0, "v1-h264/index.m3u8", "{name}");
        assert_eq!(variants[0].2, None, "{name}: the transcode is SDR");
        assert_eq!(variants[1].0, "v1/index.m3u8", "{name}");
        assert!(
            variants[1].1.starts_with("hvc1.2."),
            "{name}: {:?}",
            variants[1]
        );
        assert_eq!(
            variants[1].2.as_deref(),
            Some(range),
            "{name}: {:?}",
            variants[1]
        );
        // DASH says it too, on the copy's representation only.
        let mpd = String::from_utf8(get(&format!("{base}manifest.mpd"))).unwrap();
        let code = if range == "PQ" { 16 } else { 18 };
        let prop = format!(
            "<SupplementalProperty schemeIdUri=\"urn:mpeg:mpegB:cicp:TransferCharacteristics\" value=\"{code}\"/>"
        );
        assert_eq!(mpd.matches(&prop).count(), 1, "{name}:\n{mpd}");
        let copy_rep = mpd.split("<Representation id=\"v1\"").nth(1).unwrap_or("");
        assert!(
            copy_rep
                .split("</Representation>")
                .next()
                .unwrap_or("")
                .contains(&prop),
            "{name}: the property is the copy's:\n{mpd}"
        );
        let mut copy = get(&format!("{base}v1/init.mp4"));
        copy.extend(get(&format!("{base}v1/1.m4s")));
        let copy_path = scratch.path().join(format!("{name}.copy.mp4"));
        std::fs::write(&copy_path, copy).unwrap();
        let copied = stream_fields(&copy_path, "profile,pix_fmt,color_transfer,color_primaries");
        let trc = if range == "PQ" {
            "smpte2084"
        } else {
            "arib-std-b67"
        };
        for want in [
            "profile=Main 10".to_string(),
            "pix_fmt=yuv420p10le".to_string(),
            format!("color_transfer={trc}"),
            "color_primaries=bt2020".to_string(),
        ] {
            assert!(
                copied.contains(&want),
                "{name} copy: no {want} in\n{copied}"
            );
        }
        if range == "PQ" {
            // HDR10's static metadata travels in the copied stream: the mastering display and
            // content light level SEI of segment 1's first picture.
            let out = Command::new("ffprobe")
                .args(["-v", "error", "-show_frames", "-read_intervals", "%+#1"])
                .args(["-show_entries", "frame_side_data"])
                .arg(&copy_path)
                .output()
                .expect("ffprobe");
            let side = String::from_utf8_lossy(&out.stdout);
            for want in [
                "side_data_type=Mastering display metadata",
                "max_luminance=10000000/10000",
                "side_data_type=Content light level metadata",
                "max_content=1000",
                "max_average=400",
            ] {
                assert!(side.contains(want), "{name} copy: no {want} in\n{side}");
            }
        }
        let mut bytes = get(&format!("{base}v1-h264/init.mp4"));
        bytes.extend(get(&format!("{base}v1-h264/0.m4s")));
        let out = scratch.path().join(format!("{name}.mp4"));
        std::fs::write(&out, bytes).unwrap();
        let fields = stream_fields(
            &out,
            "pix_fmt,color_range,color_space,color_transfer,color_primaries",
        );
        println!("{name}: {}", fields.replace('\n', " "));
        for want in [
            "pix_fmt=yuv420p",
            "color_range=tv",
            "color_space=bt709",
            "color_transfer=bt709",
            "color_primaries=bt709",
        ] {
            assert!(fields.contains(want), "{name}: no {want} in\n{fields}");
        }
        // 320×240: the dark patch on the left, the bright one on the right (away from the
        // edge between them, which the scaler blends).
        let (dark, bright) = (
            mean_luma(&out, 20, 20, 100, 200),
            mean_luma(&out, 200, 20, 100, 200),
        );
        println!("{name}: transcode luma dark {dark:.1}, bright {bright:.1}");
        assert!(
            (16.0..=100.0).contains(&dark),
            "{name}: dark patch at {dark}"
        );
        assert!(
            bright >= bright_min && bright <= 235.5,
            "{name}: bright patch at {bright} (SDR white is 235)"
        );

        let thumb = scratch.path().join(format!("{name}.jpg"));
        std::fs::write(&thumb, get(&format!("{base}thumb/1000.jpg?w=320"))).unwrap();
        let (dark, bright) = (
            mean_luma(&thumb, 20, 20, 100, 200),
            mean_luma(&thumb, 200, 20, 100, 200),
        );
        println!("{name}: thumbnail luma dark {dark:.1}, bright {bright:.1}");
        assert!(dark < 100.0 && bright > dark + 80.0, "{name}: thumbnail");
    }

    // 10-bit SDR HEVC: copied too, no VIDEO-RANGE; its transcode is not tone-mapped (the
    // patches keep their levels: grey 0x40 and 0xC0 in limited range, luma 71 and 181 — the
    // levels PQ pictures would show without tone mapping).
    let master_url = s.create_stream("file:hevc10_sdr.mkv")["master_url"]
        .as_str()
        .unwrap()
        .to_string();
    let master = String::from_utf8(get(&master_url)).unwrap();
    assert!(
        master.contains("hvc1.2.4.") && !master.contains("VIDEO-RANGE"),
        "{master}"
    );
    let base = master_url.trim_end_matches("master.m3u8").to_string();
    let mut bytes = get(&format!("{base}v1-h264/init.mp4"));
    bytes.extend(get(&format!("{base}v1-h264/0.m4s")));
    let out = scratch.path().join("hevc10_sdr.mp4");
    std::fs::write(&out, bytes).unwrap();
    let (dark, bright) = (
        mean_luma(&out, 20, 20, 100, 200),
        mean_luma(&out, 200, 20, 100, 200),
    );
    println!("hevc10_sdr.mkv: transcode luma dark {dark:.1}, bright {bright:.1}");
    assert!(
        (dark - 71.0).abs() < 3.0 && (bright - 181.0).abs() < 3.0,
        "SDR levels changed: {dark}, {bright}"
    );
}
