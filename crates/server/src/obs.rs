//! Observability: the Prometheus recorder, the metric names, and the per-request middleware
//! (one log line and two metrics per request).
//!
//! Metrics:
//! - `hlsgate_requests_total{route,status}` — counter; `route` is the matched route pattern
//!   (`/v1/{token}/master.m3u8`), never the token.
//! - `hlsgate_request_duration_seconds{route}` — histogram.
//! - `hlsgate_upstream_requests_total{kind}` / `hlsgate_upstream_bytes_total{kind}` — counters
//!   of source reads (`kind="http"` upstream, `kind="file"` local), from `source::Stats`,
//!   brought up to date at each scrape.
//! - `hlsgate_segments_generated_total{kind="remux|transcode",cause="request|prefetch"}` —
//!   counter, registered here, incremented by the pipeline.
//! - `hlsgate_jobs_cancelled_total` — counter: makes stopped because every request waiting for
//!   them went away.
//! - `hlsgate_probes_total{result="made|cached"}` — counter: source indexes probed here, or
//!   taken from the cache (memory or Redis: another instance probed the source).
//! - `hlsgate_upstream_read_seconds{outcome="ok|error"}` — histogram of upstream range reads
//!   (retries included), recorded by `source`.
//! - Gauges, set at each scrape: `hlsgate_cache_memory_bytes`, `hlsgate_cache_memory_entries`,
//!   `hlsgate_cache_redis_bytes` (Redis `used_memory`), `hlsgate_cache_redis_entries` (`DBSIZE`),
//!   `hlsgate_sources_memory_bytes`, `hlsgate_sources_open`, `hlsgate_job_slots{pool}`,
//!   `hlsgate_jobs_running{pool}`, `hlsgate_jobs_waiting{pool}` (`pool="transcode|remux"`), and
//!   `hlsgate_build_info{version}` = 1.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Requests by route and status.
pub const REQUESTS: &str = "hlsgate_requests_total";
/// Request latency.
pub const DURATION: &str = "hlsgate_request_duration_seconds";
/// Source reads.
pub const UPSTREAM_REQUESTS: &str = "hlsgate_upstream_requests_total";
/// Source bytes.
pub const UPSTREAM_BYTES: &str = "hlsgate_upstream_bytes_total";
/// Segments made, by kind and cause.
pub const SEGMENTS: &str = "hlsgate_segments_generated_total";
/// Makes cancelled because nobody waited for them any more.
pub const CANCELLED: &str = "hlsgate_jobs_cancelled_total";
/// Source indexes probed or taken from the cache.
pub const PROBES: &str = "hlsgate_probes_total";
/// Gauge: bytes of made outputs in the memory cache.
pub const CACHE_BYTES: &str = "hlsgate_cache_memory_bytes";
/// Gauge: entries in the memory cache.
pub const CACHE_ENTRIES: &str = "hlsgate_cache_memory_entries";
/// Gauge: bytes of probed sources held (index, plan, tables).
pub const SOURCES_BYTES: &str = "hlsgate_sources_memory_bytes";
/// Gauge: probed sources held.
pub const SOURCES: &str = "hlsgate_sources_open";
/// Gauge, label `pool`: slots of a job pool.
pub const JOB_SLOTS: &str = "hlsgate_job_slots";
/// Gauge, label `pool`: makes running in a pool.
pub const JOBS_RUNNING: &str = "hlsgate_jobs_running";
/// Gauge, label `pool`: makes waiting for a slot.
pub const JOBS_WAITING: &str = "hlsgate_jobs_waiting";
/// Gauge 1, label `version`: what is running.
pub const BUILD_INFO: &str = "hlsgate_build_info";

/// Largest total size of request headers (bytes); larger requests get 431.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Most request headers; more get 431.
pub const MAX_HEADERS: usize = 64;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide Prometheus recorder once and describes the metrics. `None` when
/// another recorder was installed first.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(DURATION.to_string()), &buckets)
                .ok()?
                .set_buckets_for_metric(
                    Matcher::Full(source::UPSTREAM_SECONDS.to_string()),
                    &buckets,
                )
                .ok()?;
            let h = builder.install_recorder().ok()?;
            metrics::describe_counter!(REQUESTS, "HTTP requests by route and status");
            metrics::describe_histogram!(
                DURATION,
                metrics::Unit::Seconds,
                "HTTP request latency by route"
            );
            metrics::describe_counter!(UPSTREAM_REQUESTS, "source reads (upstream HTTP or file)");
            metrics::describe_counter!(
                UPSTREAM_BYTES,
                metrics::Unit::Bytes,
                "bytes read from sources"
            );
            metrics::describe_counter!(SEGMENTS, "segments made, by kind and cause");
            for kind in ["remux", "transcode"] {
                for cause in ["request", "prefetch"] {
                    metrics::counter!(SEGMENTS, "kind" => kind, "cause" => cause).increment(0);
                }
            }
            metrics::describe_counter!(CANCELLED, "makes cancelled: nobody waited any more");
            metrics::counter!(CANCELLED).increment(0);
            metrics::describe_counter!(PROBES, "source indexes probed here or found cached");
            for result in ["made", "cached"] {
                metrics::counter!(PROBES, "result" => result).increment(0);
            }
            for kind in ["http", "file"] {
                metrics::counter!(UPSTREAM_REQUESTS, "kind" => kind).increment(0);
                metrics::counter!(UPSTREAM_BYTES, "kind" => kind).increment(0);
            }
            metrics::describe_histogram!(
                source::UPSTREAM_SECONDS,
                metrics::Unit::Seconds,
                "upstream range reads, retries included, by outcome"
            );
            metrics::describe_gauge!(
                cache::metric::REDIS_BYTES,
                metrics::Unit::Bytes,
                "Redis used_memory (the whole Redis server)"
            );
            metrics::describe_gauge!(cache::metric::REDIS_ENTRIES, "keys in the Redis database");
            metrics::describe_gauge!(CACHE_BYTES, metrics::Unit::Bytes, "memory cache content");
            metrics::describe_gauge!(CACHE_ENTRIES, "memory cache entries");
            metrics::describe_gauge!(
                SOURCES_BYTES,
                metrics::Unit::Bytes,
                "probed sources held (index, plan, sample tables)"
            );
            metrics::describe_gauge!(SOURCES, "probed sources held");
            metrics::describe_gauge!(JOB_SLOTS, "slots of each job pool");
            metrics::describe_gauge!(JOBS_RUNNING, "makes running, per pool");
            metrics::describe_gauge!(JOBS_WAITING, "makes waiting for a slot, per pool");
            metrics::describe_gauge!(BUILD_INFO, "1, labelled with the running version");
            metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            Some(h)
        })
        .as_ref()
}

/// Renders the text format (callers bring their counters up to date first).
pub fn render() -> Option<String> {
    let h = handle()?;
    h.run_upkeep();
    Some(h.render())
}

/// What the handler reports about cache use, for the request log line (set as a response
/// extension by handlers that use a cache).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// Served from a cache.
    Hit,
    /// Made now.
    Miss,
}

/// Which stream a request was for (response extension), for the request log line: the public
/// stream id (never the token) and the source's file name or upstream host, which the line shows
/// on 4xx/5xx.
#[derive(Debug, Clone)]
pub struct StreamTag {
    /// The stream id the API returns (16 hex digits).
    pub id: String,
    /// The file's name (no folders) or the upstream's host.
    pub source: String,
}

/// How long making the body took (response extension), for the request log line.
#[derive(Debug, Clone, Copy)]
pub struct GenerationTime(pub std::time::Duration);

/// Middleware: bounds header sizes (431), then logs one line per request (method, route,
/// status, latency, cache, generation time) and records the request metrics.
pub async fn track(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().clone();
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    let resp = if header_bytes > MAX_HEADER_BYTES || req.headers().len() > MAX_HEADERS {
        let mut r = (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request headers too large\n",
        )
            .into_response();
        r.headers_mut().insert(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r
    } else {
        next.run(req).await
    };
    let status = resp.status().as_u16();
    let latency = start.elapsed();
    let _ = handle();
    metrics::counter!(REQUESTS, "route" => route.clone(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!(DURATION, "route" => route.clone()).record(latency.as_secs_f64());
    let cache = match resp.extensions().get::<CacheStatus>() {
        Some(CacheStatus::Hit) => "hit",
        Some(CacheStatus::Miss) => "miss",
        None => "-",
    };
    let gen_ms = resp
        .extensions()
        .get::<GenerationTime>()
        .map(|g| (g.0.as_secs_f64() * 1e6).round() / 1e3);
    let tag = resp.extensions().get::<StreamTag>();
    let stream = tag.map(|t| t.id.as_str());
    // The source only where it helps an operator: a refused or failed request.
    let source = tag.filter(|_| status >= 400).map(|t| t.source.as_str());
    tracing::info!(
        %method,
        route = %route,
        status,
        latency_ms = (latency.as_secs_f64() * 1e6).round() / 1e3,
        cache,
        generation_ms = gen_ms,
        stream,
        source,
        "request"
    );
    resp
}
