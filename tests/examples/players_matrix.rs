//! The full player matrix (`scripts/players.sh`): every playable fixture through the real
//! `hlsgate serve` × {ffmpeg, hls.js, mpv, VLC, GStreamer playbin, playbin3}, printed as a table
//! (PASS, or FAIL with the first reason) and a non-zero exit on any failure.
//!
//!     cargo run -p hlsgate-tests --example players_matrix [-- --long] [-- FIXTURE…]
//!
//! Fixtures: every MP4/MOV, Matroska/WebM and MPEG-TS file in `fixtures/out` but the
//! deliberately bad ones (truncated*, random.bin, empty.mp4, text.mp4), and the long ones
//! (long_*.mkv, bench720*) only with `--long`.

use std::process::ExitCode;
use std::time::Instant;

use hlsgate_tests::fixtures;
use hlsgate_tests::players::{
    ffmpeg_hls_check, gst_check, hlsjs_check, mpv_check, mpv_check_audio_only, vlc_check,
    GstOptions, HlsJsOptions,
};
use hlsgate_tests::server::Hlsgate;

const PLAYERS: [&str; 6] = ["ffmpeg", "hls.js", "mpv", "VLC", "playbin", "playbin3"];

fn bad(name: &str) -> bool {
    name.starts_with("truncated") || ["random.bin", "empty.mp4", "text.mp4"].contains(&name)
}

fn long(name: &str) -> bool {
    name.starts_with("long_") || name.starts_with("bench720")
}

/// (passed, short reason) of one player on one master.
fn run(player: &str, url: &str, audio_only: bool) -> (bool, String) {
    let first = |f: &[String]| f.first().cloned().unwrap_or_default();
    match player {
        "ffmpeg" => {
            let r = ffmpeg_hls_check(url);
            match std::panic::catch_unwind(|| r.assert_ok()) {
                Ok(()) => (true, String::new()),
                Err(_) => {
                    let why = r
                        .errors
                        .lines()
                        .next()
                        .map(str::to_string)
                        .unwrap_or_else(|| {
                            let s: Vec<String> = r
                                .streams
                                .iter()
                                .map(|s| {
                                    format!(
                                        "{} {:.3}..{:.3} gap {:.3}",
                                        s.media_type, s.start, s.end, s.max_gap
                                    )
                                })
                                .collect();
                            s.join("; ")
                        });
                    (false, why)
                }
            }
        }
        "hls.js" => {
            let r = hlsjs_check(
                url,
                &HlsJsOptions {
                    audio_only,
                    timeout_secs: Some(120),
                    ..HlsJsOptions::default()
                },
            );
            (r.ok, first(&r.failures))
        }
        "mpv" => {
            let r = if audio_only {
                mpv_check_audio_only(url)
            } else {
                mpv_check(url)
            };
            let why = if r.ok {
                String::new()
            } else {
                format!(
                    "{} {}",
                    first(&r.failures),
                    r.messages.first().cloned().unwrap_or_default()
                )
            };
            (r.ok, why)
        }
        "VLC" => {
            let r = vlc_check(url);
            (r.ok, first(&r.failures))
        }
        _ => {
            let r = gst_check(
                url,
                &GstOptions {
                    playbin3: player == "playbin3",
                    ..GstOptions::default()
                },
            );
            (r.ok, first(&r.failures))
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let with_long = args.iter().any(|a| a == "--long");
    let chosen: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let dir = fixtures();
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read fixtures/out")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        // The containers the HLS path reads (MP4/MOV, Matroska/WebM, MPEG-TS): not the
        // subtitle files beside a film, nor the audio files only the Range passthrough serves
        // yet (tone.flac/mp3/ogg/opus/wav, issue 12).
        .filter(|n| {
            let ext = n.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
            !n.starts_with('.')
                && ["mp4", "m4a", "mov", "mkv", "webm", "ts"].contains(&ext)
                && !bad(n)
        })
        .filter(|n| with_long || !long(n))
        .filter(|n| chosen.is_empty() || chosen.contains(&n))
        .collect();
    names.sort();
    let server = Hlsgate::serve(&["--media-root", dir.to_str().expect("utf-8 path")], &[]);
    let mut rows = Vec::new();
    let mut failed = 0;
    for name in &names {
        let url = server.create_stream(&format!("file:{name}"))["master_url"]
            .as_str()
            .expect("master_url")
            .to_string();
        let audio_only = name.ends_with(".m4a");
        let mut cells = Vec::new();
        for p in PLAYERS {
            let t = Instant::now();
            let (ok, why) = run(p, &url, audio_only);
            let secs = t.elapsed().as_secs_f64();
            eprintln!(
                "{name} {p}: {} in {secs:.1} s {why}",
                if ok { "PASS" } else { "FAIL" }
            );
            if !ok {
                failed += 1;
            }
            cells.push((ok, why));
        }
        rows.push((name.clone(), cells));
    }
    println!(
        "\n{:<26} {}",
        "fixture",
        PLAYERS.map(|p| format!("{p:<9}")).join("")
    );
    for (name, cells) in &rows {
        let marks: String = cells
            .iter()
            .map(|(ok, _)| format!("{:<9}", if *ok { "PASS" } else { "FAIL" }))
            .collect();
        println!("{name:<26} {marks}");
    }
    println!("\nfailures:");
    for (name, cells) in &rows {
        for (p, (ok, why)) in PLAYERS.iter().zip(cells) {
            if !ok {
                let why: String = why.chars().take(220).collect();
                println!("  {name} × {p}: {why}");
            }
        }
    }
    println!(
        "\n{} fixtures × {} players: {} failed",
        rows.len(),
        PLAYERS.len(),
        failed
    );
    if failed == 0 && !rows.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
