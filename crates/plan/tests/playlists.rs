//! Whole-string goldens of every playlist text `plan` writes, for fixtures: the media playlists
//! of a video, an audio and a subtitle rendition and the multivariant playlists of three shapes
//! of source. A difference fails; if it is intended, bump `plan::PLAN_VERSION` and refresh with
//! `UPDATE_GOLDEN=1 cargo test -p plan --test playlists` (the same variable as the plan goldens).

// Test code: unwrap/expect are how a test fails (as in the hlsgate-tests crate).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use plan::{
    audio_plan, master_playlist, plan, renditions, AudioGrid, Plan, PlanOptions, Rendition,
    RenditionKind, RenditionOptions, VideoMode,
};
use probe::MediaIndex;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(name: &str) -> MediaIndex {
    let path = workspace().join("fixtures/out").join(name);
    let data = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run fixtures/make.sh)", path.display()));
    probe::probe_bytes(&data).unwrap()
}

/// The plan a server makes for the fixture: keyframe boundaries, else the transcode rules.
fn plan_of(ix: &MediaIndex) -> Plan {
    plan(ix, &PlanOptions::default())
        .or_else(|_| {
            plan(
                ix,
                &PlanOptions {
                    mode: VideoMode::Transcode,
                    ..PlanOptions::default()
                },
            )
        })
        .unwrap()
}

/// Compares `text` with `fixtures/golden/{file}` as whole strings (or writes it when
/// `UPDATE_GOLDEN` is set); returns a line for each mismatch.
fn golden(file: &str, text: &str, mismatches: &mut Vec<String>) {
    let path = workspace().join("fixtures/golden").join(file);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, text).unwrap();
        return;
    }
    match std::fs::read_to_string(&path) {
        Ok(want) if want == text => {}
        Ok(want) => mismatches.push(format!(
            "{} differs:\n--- golden\n{want}\n--- now\n{text}",
            path.display()
        )),
        Err(e) => mismatches.push(format!("{}: {e}", path.display())),
    }
}

fn first(r: &[Rendition], kind: RenditionKind) -> &Rendition {
    r.iter().find(|r| r.kind == kind).unwrap()
}

#[test]
fn playlists_match_their_goldens() {
    let mut mismatches = Vec::new();
    for name in ["multi_audio_subs.mkv", "hevc_ac3.mkv", "aac_only.m4a"] {
        let ix = fixture(name);
        let r = renditions(&ix, &RenditionOptions::default());
        let p = plan_of(&ix);
        let m = master_playlist(&ix, &r, &p, |r| format!("{}/index.m3u8", r.id));
        golden(&format!("{name}.master.m3u8"), &m, &mut mismatches);
    }

    let name = "multi_audio_subs.mkv";
    let ix = fixture(name);
    let r = renditions(&ix, &RenditionOptions::default());
    let p = plan_of(&ix);
    let video = p.media_playlist("init.mp4", |n| format!("{n}.m4s"));
    golden(&format!("{name}.video.m3u8"), &video, &mut mismatches);

    let a = first(&r, RenditionKind::Audio);
    let track = ix.tracks.iter().find(|t| t.id == a.track_id).unwrap();
    let grid = AudioGrid::passthrough(
        track.audio.as_ref().unwrap().sample_rate,
        1024,
        track.start.unwrap_or(0),
        track.timescale,
    );
    let audio = audio_plan(&ix, &p, &grid).media_playlist("init.mp4", |n| format!("{n}.m4s"));
    golden(&format!("{name}.audio.m3u8"), &audio, &mut mismatches);

    let subtitles = p.subtitle_playlist(|n| format!("{n}.vtt"));
    golden(
        &format!("{name}.subtitles.m3u8"),
        &subtitles,
        &mut mismatches,
    );

    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// The `#EXTINF` lines of a media playlist, in order.
fn extinfs(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.starts_with("#EXTINF:")).collect()
}

#[test]
fn renditions_of_one_plan_print_the_same_extinf_lines() {
    for name in [
        "multi_audio_subs.mkv",
        "h264_aac_faststart.mp4",
        "hevc_ac3.mkv",
    ] {
        let ix = fixture(name);
        let p = plan_of(&ix);
        let video = p.media_playlist("init.mp4", |n| format!("{n}.m4s"));
        let subtitles = p.subtitle_playlist(|n| format!("{n}.vtt"));
        assert_eq!(extinfs(&video).len(), p.segments.len(), "{name}");
        assert_eq!(extinfs(&video), extinfs(&subtitles), "{name}");
        // Without the map and with other URIs, the subtitle playlist is the video's, line for
        // line.
        let without_map = video.replace("#EXT-X-MAP:URI=\"init.mp4\"\n", "");
        assert_eq!(without_map.replace(".m4s", ".vtt"), subtitles, "{name}");
        // An audio plan whose AAC frame is one tick of the plan lands on the video's own
        // boundaries: the same durations, so the same lines again.
        let same = AudioGrid {
            frame: 1024,
            rate: p.timescale * plan::AAC_FRAME as u32,
            origin: p.segments[0].start * plan::AAC_FRAME,
            preroll_frames: 0,
            postroll_frames: 0,
        };
        let a = audio_plan(&ix, &p, &same);
        let audio = a.media_playlist("init.mp4", |n| format!("{n}.m4s"));
        assert_eq!(audio, video, "{name}");
    }
}
