//! Pins the pipeline's output bytes: the SHA-256 of every remuxed output (init and segments of
//! each passthrough video and audio rendition, WebVTT segments) of every fixture, with the
//! `OUTPUT_VERSION` and `PLAN_VERSION` they were made under, in `fixtures/golden/outputs.sha256`.
//!
//! Outputs are cached under keys that carry both versions (a new plan moves segment
//! boundaries, so segment `n` holds other frames), so bytes that change without a bump of
//! either would mix old and new bytes in one cache. This test fails when that happens ("brittle,
//! which is the point"): bump `pipeline::OUTPUT_VERSION`, then refresh with `UPDATE_GOLDEN=1`.
//! Transcoded outputs are left out: their bytes belong to x264/FFmpeg's AAC encoder builds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fmt::Write as _;
use std::sync::Arc;

use common::fixture;
use pipeline::{Media, MediaOptions, Output};
use plan::{AudioOutput, RenditionKind, VideoOutput};
use sha2::{Digest as _, Sha256};

/// Fixtures whose remuxed outputs are pinned (every container and codec shape we copy).
const FIXTURES: &[&str] = &[
    "h264_aac_faststart.mp4",
    "h264_aac_moov_end.mp4",
    "h264_aac_fragmented.mp4",
    "h264_bframes.mkv",
    "h264_aac.ts",
    "multi_audio_subs.mkv",
    "aac_only.m4a",
    "hevc_ac3.mkv",
];

fn digest(b: &[u8]) -> String {
    Sha256::digest(b).iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

fn make(m: &Media, src: &Arc<dyn source::ByteSource>, out: &Output) -> Vec<u8> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ranges = m.needs(out).unwrap();
    let data = rt
        .block_on(pipeline::io::fetch(src.as_ref(), &ranges))
        .unwrap();
    m.make(out, &data).unwrap()
}

/// `fixture rendition output sha256` lines of every pinned output of `name`.
fn lines_of(name: &str) -> Vec<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let path = fixture(name);
    let src: Arc<dyn source::ByteSource> =
        Arc::new(rt.block_on(source::FileSource::open_path(&path)).unwrap());
    let loaded = rt.block_on(pipeline::io::probe(&src)).unwrap();
    drop(rt);
    let m = Media::new(
        loaded.index,
        loaded.tables.as_deref(),
        MediaOptions::default(),
    )
    .unwrap();
    let count = m.segment_count();
    let picks: Vec<u32> = [0, 1, count.saturating_sub(1)]
        .into_iter()
        .filter(|&n| n < count)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut out = Vec::new();
    for r in m.renditions() {
        let copied = match r.kind {
            RenditionKind::Video => matches!(r.video, Some(VideoOutput::Passthrough)),
            RenditionKind::Audio => matches!(r.audio, Some(AudioOutput::Passthrough)),
            RenditionKind::Subtitle => true,
        };
        if !copied {
            continue;
        }
        let mut outputs = Vec::new();
        if r.kind == RenditionKind::Subtitle {
            outputs.extend(picks.iter().map(|&n| Output::Subtitle(r.id.clone(), n)));
        } else {
            outputs.push(Output::Init(r.id.clone()));
            outputs.extend(picks.iter().map(|&n| Output::Segment(r.id.clone(), n)));
        }
        for o in outputs {
            let bytes = make(&m, &src, &o);
            out.push(format!("{name} {} {}", o.key_text(), digest(&bytes)));
        }
    }
    assert!(!out.is_empty(), "{name}: nothing remuxed to pin");
    out
}

#[test]
fn remuxed_bytes_change_only_with_output_version() {
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/golden/outputs.sha256");
    let versions = format!(
        "output_version {} plan_version {}",
        pipeline::OUTPUT_VERSION,
        plan::PLAN_VERSION
    );
    let mut text = format!("{versions}\n");
    for name in FIXTURES {
        for l in lines_of(name) {
            text.push_str(&l);
            text.push('\n');
        }
    }
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&golden)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", golden.display()));
    let version_line = want.lines().next().unwrap_or("");
    let same_version = version_line == versions;
    if want == text {
        return;
    }
    let changed: Vec<String> = text
        .lines()
        .filter(|l| !want.lines().any(|w| w == *l))
        .map(str::to_string)
        .collect();
    if same_version {
        panic!(
            "remuxed output bytes changed but the versions are still '{versions}': bump \
             pipeline::OUTPUT_VERSION (or plan::PLAN_VERSION for a plan change), then refresh \
             with UPDATE_GOLDEN=1. Changed:\n{}",
            changed.join("\n")
        );
    }
    panic!(
        "the versions are '{versions}' but the golden was made under '{version_line}': refresh \
         it with UPDATE_GOLDEN=1"
    );
}
