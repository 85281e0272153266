//! Plans for every fixture: boundaries lie on keyframes, EXTINFs sum to the duration (±1 ms),
//! no segment is under 0.5 s, every segment has one byte range, the playlist parses back, and
//! the plan is byte-identical to its golden (refresh with `UPDATE_GOLDEN=1`; a change in plans
//! means bumping `plan::PLAN_VERSION`).

use hlsgate_tests::{fixture, workspace, VIDEO_FIXTURES};
use plan::{PlanOptions, VideoMode};

async fn index_of(name: &str) -> probe::MediaIndex {
    let src = source::FileSource::open_path(&fixture(name)).await.unwrap();
    source::probe(&src).await.unwrap().0
}

#[tokio::test]
async fn plans_keep_their_promises() {
    let golden_dir = workspace().join("fixtures/golden");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut mismatches = Vec::new();
    for &(name, _) in VIDEO_FIXTURES {
        let index = index_of(name).await;
        // Each mode without and with the 2 s lead (`lead_secs`) of a source whose first video
        // is encoded.
        for (mode, lead_secs) in [
            (VideoMode::Passthrough, 0.0),
            (VideoMode::Transcode, 0.0),
            (VideoMode::Passthrough, 2.0),
            (VideoMode::Transcode, 2.0),
        ] {
            let opts = PlanOptions {
                mode,
                lead_secs,
                ..PlanOptions::default()
            };
            let p = plan::plan(&index, &opts).unwrap();
            let again = plan::plan(&index_of(name).await, &opts).unwrap();
            assert_eq!(p, again, "{name}: plan differs between runs");
            // The plan runs from the earliest of the video and audio starts to the video's end.
            let total = p.total_secs();
            let lead = (index.start - p.segments[0].start) as f64 / f64::from(index.timescale);
            assert!(
                (0.0..0.2).contains(&lead),
                "{name}: plan starts {lead} s before the video"
            );
            assert!(
                (total - index.duration_secs() - lead).abs() <= 0.001,
                "{name}: EXTINF sum {total} vs duration {} + {lead}",
                index.duration_secs()
            );
            let keyframes: Vec<i64> = index.keyframes.iter().map(|k| k.pts).collect();
            for (i, s) in p.segments.iter().enumerate() {
                assert!(s.duration >= 0.5, "{name}: segment {i} is {} s", s.duration);
                assert_eq!(
                    s.ranges.len(),
                    1,
                    "{name}: segment {i} needs {:?}",
                    s.ranges
                );
                if p.boundaries == plan::Boundaries::Keyframes {
                    assert!(
                        i == 0 || keyframes.contains(&s.start),
                        "{name}: segment {i} starts at {} which is not a keyframe",
                        s.start
                    );
                }
                if let Some(n) = p.segments.get(i + 1) {
                    assert_eq!(s.end, n.start, "{name}: gap after segment {i}");
                }
            }
            // The playlist read back by m3u8-rs's parser.
            let text = p.media_playlist("init.mp4", |i| format!("{i}.m4s"));
            let parsed = m3u8_rs::parse_media_playlist_res(text.as_bytes()).unwrap();
            let sum: f64 = parsed.segments.iter().map(|s| f64::from(s.duration)).sum();
            assert!(
                (sum - total).abs() <= 0.001,
                "{name}: playlist sums to {sum}"
            );
            assert_eq!(parsed.segments.len(), p.segments.len());
            assert!(parsed.end_list);
            for s in &parsed.segments {
                assert!(
                    (s.duration.round() as u64) <= parsed.target_duration,
                    "{name}: EXTINF {} above TARGETDURATION {}",
                    s.duration,
                    parsed.target_duration
                );
            }
            let variant = if lead_secs > 0.0 {
                format!("{mode:?}-lead{lead_secs}")
            } else {
                format!("{mode:?}")
            };
            let golden = golden_dir.join(format!("{name}.{variant}.plan.txt").to_lowercase());
            let table = p.table();
            if update {
                std::fs::create_dir_all(&golden_dir).unwrap();
                std::fs::write(&golden, &table).unwrap();
            } else {
                match std::fs::read_to_string(&golden) {
                    Ok(want) if want == table => {}
                    Ok(_) => mismatches.push(format!("{} differs", golden.display())),
                    Err(_) => mismatches.push(format!("{} is missing", golden.display())),
                }
            }
            if lead_secs > 0.0 && p.segments.len() > 3 {
                // The lead is a target: the leading segments are the shorter ones, each still
                // within [0.5, 2] × the lead unless the source GOP is longer.
                let first = &p.segments[..2];
                let rest_min = p.segments[2..p.segments.len() - 1]
                    .iter()
                    .map(|s| s.duration)
                    .fold(f64::MAX, f64::min);
                for (i, s) in first.iter().enumerate() {
                    assert!(
                        s.duration <= rest_min + 1e-9 || s.duration <= 2.0 * lead_secs,
                        "{name} {variant}: leading segment {i} is {} s (others from {rest_min} s)",
                        s.duration
                    );
                }
            }
            eprintln!(
                "{name} {variant}: {} segments, {:?}, target {} s, sum {total:.3} s",
                p.segments.len(),
                p.boundaries,
                p.target_duration
            );
        }
    }
    assert!(
        mismatches.is_empty(),
        "plans changed (bump plan::PLAN_VERSION and rerun with UPDATE_GOLDEN=1): {mismatches:#?}"
    );
}

/// The byte ranges a segment names must hold every packet (of every stream, per ffprobe) that
/// presents inside the segment: that is what lets the pipeline fetch a segment in one request.
#[tokio::test]
async fn segment_ranges_hold_their_packets() {
    for &(name, _) in VIDEO_FIXTURES {
        let index = index_of(name).await;
        let p = plan::plan(&index, &PlanOptions::default()).unwrap();
        let ts = f64::from(p.timescale);
        let packets = hlsgate_tests::ffprobe_all_packets(&fixture(name));
        let mut checked = 0;
        for seg in &p.segments {
            let (t0, t1) = (seg.start as f64 / ts, seg.end as f64 / ts);
            for pk in packets.iter().filter(|k| k.pts >= t0 && k.pts < t1) {
                let inside = seg
                    .ranges
                    .iter()
                    .any(|r| r.start <= pk.pos && pk.pos + pk.size <= r.end);
                assert!(
                    inside,
                    "{name}: segment {} [{t0:.3}, {t1:.3}) ranges {:?} miss stream {} packet at \
                     {:.3} s, bytes {}..{}",
                    seg.index,
                    seg.ranges,
                    pk.stream,
                    pk.pts,
                    pk.pos,
                    pk.pos + pk.size
                );
                checked += 1;
            }
        }
        eprintln!("{name}: {checked} packets inside their segment's byte range");
    }
}

/// An audio-only file: presented from 0 for its edit-list duration (the AAC priming is
/// pre-roll), planned on the AAC frame grid, and no segment needs the whole file even though
/// the muxer wrote every sample as one chunk.
#[tokio::test]
async fn audio_only_file_plans_on_the_aac_grid() {
    let name = "aac_only.m4a";
    let index = index_of(name).await;
    let ffprobe = hlsgate_tests::ffprobe_csv(&fixture(name), &["-show_entries", "format=duration"]);
    let truth: f64 = ffprobe.trim().parse().unwrap();
    assert!(
        (index.duration_secs() - truth).abs() <= 0.001,
        "duration {} vs ffprobe {truth}",
        index.duration_secs()
    );
    assert_eq!(index.start, 0);
    let p = plan::plan(&index, &PlanOptions::default()).unwrap();
    assert_eq!(p.boundaries, plan::Boundaries::Grid);
    for s in &p.segments[..p.segments.len() - 1] {
        assert_eq!(
            (s.end - p.segments[0].start) % 1024,
            0,
            "{s:?} is off the AAC grid"
        );
    }
    for s in &p.segments {
        let bytes: u64 = s.ranges.iter().map(|r| r.end - r.start).sum();
        assert!(
            bytes * 2 < index.file_size,
            "segment {} needs {bytes} of {} bytes",
            s.index,
            index.file_size
        );
    }
}
