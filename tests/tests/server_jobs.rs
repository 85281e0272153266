//! The job runner through the real server: one generation for concurrent identical requests,
//! no upstream traffic on a hit, and a bounded transcode pool that answers 503 + Retry-After
//! instead of hanging.

use hlsgate_tests::server::{http_get as get, Hlsgate};
use hlsgate_tests::{fixtures, Nginx};

const SECRET: &str = "server-jobs-secret-0123456789";

/// The stream's base URL (its master URL without `master.m3u8`).
fn post_stream(server: &Hlsgate, source: &str) -> String {
    let v = server.create_stream(source);
    let master = v["master_url"].as_str().unwrap();
    master.trim_end_matches("master.m3u8").to_string()
}

#[test]
fn concurrent_identical_requests_make_one_segment_and_hits_cost_no_upstream_request() {
    let nginx = Nginx::start(fixtures());
    let s = Hlsgate::serve(
        &[
            "--media-root",
            fixtures().to_str().unwrap(),
            "--secret",
            SECRET,
            "--allow-private-upstream",
            "127.0.0.1/32",
            "--prefetch",
            "0",
        ],
        &[],
    );
    let base = post_stream(&s, &nginx.url("hevc_ac3.mkv"));
    // The playlist loads the source (probe); then three identical cold transcodes at once.
    assert_eq!(get(&format!("{base}master.m3u8")).0, 200);
    let before = s.metric("hlsgate_segments_generated_total", "transcode");
    let url = format!("{base}v1-h264/4.m4s");
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let u = url.clone();
            std::thread::spawn(move || get(&u))
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    for r in &results {
        assert_eq!(r.0, 200);
        assert_eq!(r.2, results[0].2, "identical bytes");
    }
    let after = s.metric("hlsgate_segments_generated_total", "transcode");
    println!("transcode generations: {before} → {after} for 3 concurrent requests");
    assert_eq!(after - before, 1.0);
    // A repeat is a hit: no upstream request.
    let up = s.metric("hlsgate_upstream_requests_total", "");
    let again = get(&url);
    assert_eq!(again.2, results[0].2);
    let up2 = s.metric("hlsgate_upstream_requests_total", "");
    println!("upstream requests before/after the repeat: {up} / {up2}");
    assert_eq!(up, up2);
    assert_eq!(
        s.metric("hlsgate_segments_generated_total", "transcode"),
        after
    );
}

#[test]
fn a_full_transcode_pool_answers_503_with_retry_after() {
    let s = Hlsgate::serve(
        &[
            "--media-root",
            fixtures().to_str().unwrap(),
            "--transcode-jobs",
            "1",
            "--job-wait",
            "2s",
            "--prefetch",
            "0",
        ],
        &[],
    );
    let base = post_stream(&s, "file:bench720_hevc_ac3.mkv");
    assert_eq!(get(&format!("{base}master.m3u8")).0, 200);
    let started = std::time::Instant::now();
    let threads: Vec<_> = (0..4)
        .map(|n| {
            let u = format!("{base}v1-h264/{n}.m4s");
            std::thread::spawn(move || get(&u))
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let statuses: Vec<u16> = results.iter().map(|r| r.0).collect();
    println!("statuses {statuses:?} in {:?}", started.elapsed());
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 503),
        "{statuses:?}"
    );
    assert!(
        statuses.contains(&200) && statuses.contains(&503),
        "{statuses:?}"
    );
    for r in results.iter().filter(|r| r.0 == 503) {
        assert!(r.1.is_some(), "503 without Retry-After");
    }
}
