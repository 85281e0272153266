//! The quality ladder (issue 14, item 1) on a 720p H.264 film (`bench720.mkv`): the master lists
//! the copied 720p and the 480p and 360p H.264 rungs with exact attributes (parsed with
//! m3u8-rs), every rung's segments lie on the same boundaries as the copied video's (tfdt and
//! duration of each segment read with mp4-atom), and hls.js in Chromium plays it to the end
//! while a new level is switched to every 2 s, buffering fragments of every level, with no error.
//! Each rung's joins and start are checked with ffprobe in `timeline.rs` (the 4:4:4 fixture
//! has rungs too).

use hlsgate_tests::mp4check::{fragments, timescales};
use hlsgate_tests::players::{hlsjs_check, HlsJsOptions};
use hlsgate_tests::server::Hlsgate;
use hlsgate_tests::{fixtures, Scratch};
use m3u8_rs::Playlist;

fn get(url: &str) -> Vec<u8> {
    let out = std::process::Command::new("curl")
        .args(["-sf", url])
        .output()
        .expect("curl");
    assert!(out.status.success(), "GET {url}");
    out.stdout
}

#[test]
fn a_720p_film_gets_480p_and_360p_rungs_that_switch_in_hlsjs() {
    let s = Hlsgate::serve(&["--media-root", fixtures().to_str().unwrap()], &[]);
    let master_url = s.create_stream("file:bench720.mkv")["master_url"]
        .as_str()
        .unwrap()
        .to_string();
    let base = master_url.trim_end_matches("master.m3u8").to_string();
    let scratch = Scratch::new("ladder");
    let text = get(&master_url);
    let Ok(Playlist::MasterPlaylist(master)) = m3u8_rs::parse_playlist_res(&text) else {
        panic!("not a master playlist:\n{}", String::from_utf8_lossy(&text));
    };
    let variants: Vec<(String, u64, u64, String, f64, u64)> = master
        .variants
        .iter()
        .map(|v| {
            let r = v.resolution.expect("RESOLUTION");
            (
                v.uri.clone(),
                r.width,
                r.height,
                v.codecs.clone().expect("CODECS"),
                v.frame_rate.expect("FRAME-RATE"),
                v.bandwidth,
            )
        })
        .collect();
    println!("variants: {variants:#?}");
    let uris: Vec<&str> = variants.iter().map(|v| v.0.as_str()).collect();
    assert_eq!(
        uris,
        ["v1/index.m3u8", "v1-480p/index.m3u8", "v1-360p/index.m3u8"],
        "the copied 720p first, then the rungs below it"
    );
    let sizes: Vec<(u64, u64)> = variants.iter().map(|v| (v.1, v.2)).collect();
    assert_eq!(sizes, [(1280, 720), (852, 480), (640, 360)]);
    for (uri, _, h, codecs, fps, bandwidth) in &variants {
        assert!((fps - 25.0).abs() < 1e-6, "{uri}: FRAME-RATE {fps}");
        assert!(codecs.ends_with(",mp4a.40.2"), "{uri}: CODECS {codecs}");
        if *h < 720 {
            // Level 3.0 holds 852×480 and 640×360 at 25 fps; High profile.
            assert!(codecs.starts_with("avc1.64001e,"), "{uri}: CODECS {codecs}");
        }
        assert!(*bandwidth > 100_000, "{uri}: BANDWIDTH {bandwidth}");
    }
    // Smaller rungs announce less.
    assert!(variants[1].5 > variants[2].5, "480p BANDWIDTH above 360p's");

    // The same plan: segment n of every rung starts and lasts what segment n of the copy does.
    let playlist = |id: &str| String::from_utf8(get(&format!("{base}{id}/index.m3u8"))).unwrap();
    let count = playlist("v1")
        .lines()
        .filter(|l| l.ends_with(".m4s"))
        .count();
    assert!(count >= 9, "{count} segments");
    let timing = |id: &str, n: usize| -> (f64, f64) {
        let init = get(&format!("{base}{id}/init.mp4"));
        let scale = timescales(&init)[0].1 as f64;
        let seg = get(&format!("{base}{id}/{n}.m4s"));
        let traf = fragments(&seg)[0].trafs[0].clone();
        (traf.tfdt as f64 / scale, traf.duration() as f64 / scale)
    };
    for id in ["v1-480p", "v1-360p"] {
        assert_eq!(
            playlist(id).lines().filter(|l| l.ends_with(".m4s")).count(),
            count,
            "{id}: segment count"
        );
        for n in [0, 1, count / 2, count - 1] {
            let (copy, rung) = (timing("v1", n), timing(id, n));
            assert!(
                (copy.0 - rung.0).abs() < 0.001 && (copy.1 - rung.1).abs() < 0.001,
                "{id} segment {n}: starts/lasts {rung:?} s, the copy {copy:?} s"
            );
        }
        // The rung's pictures have the announced size.
        let init = get(&format!("{base}{id}/init.mp4"));
        let probe = scratch.path().join(format!("{id}.mp4"));
        let mut bytes = init.clone();
        bytes.extend(get(&format!("{base}{id}/0.m4s")));
        std::fs::write(&probe, bytes).unwrap();
        let dims = hlsgate_tests::ffprobe_csv(&probe, &["-show_entries", "stream=width,height"]);
        let want = if id == "v1-480p" {
            "852,480"
        } else {
            "640,360"
        };
        assert!(dims.contains(want), "{id}: ffprobe says {dims}");
    }

    // hls.js: a new level every 2 s of playing (12 s from 0 before the seeks: every level
    // at least once), through the seeks, to `ended`.
    let r = hlsjs_check(
        &master_url,
        &HlsJsOptions {
            timeout_secs: Some(180),
            min_play_secs: Some(12.0),
            level_switch_secs: Some(2.0),
            ..HlsJsOptions::default()
        },
    );
    println!(
        "hls.js: levels {:?}; level switching {}",
        r.levels
            .iter()
            .map(|l| (l.width, l.height, l.bitrate))
            .collect::<Vec<_>>(),
        r.level_switch
            .as_ref()
            .map(|v| v.to_string())
            .unwrap_or_default()
    );
    r.assert_ok();
    assert_eq!(r.levels.len(), 3, "hls.js sees the three levels");
    assert!(r.ended);
}
