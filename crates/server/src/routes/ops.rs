//! `/healthz`, `/readyz`, `/metrics`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::semantics::text;
use crate::state::AppState;

/// `GET /healthz`: the process answers.
pub async fn healthz() -> Response {
    text("ok\n".into(), "text/plain; charset=utf-8", "no-store")
}

/// `GET /readyz`: every readiness check passes (media root readable; FFmpeg, Redis when
/// configured). 503 with the failing checks otherwise.
pub async fn readyz(State(st): State<AppState>) -> Response {
    let results = st.readiness().await;
    let mut body = String::new();
    let mut ok = true;
    for (name, r) in results {
        match r {
            Ok(()) => body.push_str(&format!("{name}: ok\n")),
            Err(e) => {
                ok = false;
                body.push_str(&format!("{name}: {e}\n"));
            }
        }
    }
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, text(body, "text/plain; charset=utf-8", "no-store")).into_response()
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(st): State<AppState>) -> Response {
    for m in st.store().all_for_metrics() {
        crate::media::report_upstream(&m);
    }
    use crate::obs;
    if let Some((bytes, entries)) = st.jobs().cache_usage().await {
        metrics::gauge!(obs::CACHE_BYTES).set(bytes as f64);
        metrics::gauge!(obs::CACHE_ENTRIES).set(entries as f64);
    }
    // Set here too: the backend sets it when its health changes, but its first value was set
    // before the recorder existed (the state is built before the router).
    if let Some(r) = st.redis() {
        metrics::gauge!(cache::metric::REDIS_UP).set(if r.healthy() { 1.0 } else { 0.0 });
    }
    if let Some((bytes, keys)) = match st.redis() {
        Some(r) => r.usage().await,
        None => None,
    } {
        metrics::gauge!(cache::metric::REDIS_BYTES).set(bytes as f64);
        metrics::gauge!(cache::metric::REDIS_ENTRIES).set(keys as f64);
    }
    let (source_bytes, sources) = st.store().usage().await;
    metrics::gauge!(obs::SOURCES_BYTES).set(source_bytes as f64);
    metrics::gauge!(obs::SOURCES).set(sources as f64);
    for (pool, slots, running, waiting) in st.jobs().pool_load() {
        metrics::gauge!(obs::JOB_SLOTS, "pool" => pool).set(slots as f64);
        metrics::gauge!(obs::JOBS_RUNNING, "pool" => pool).set(running as f64);
        metrics::gauge!(obs::JOBS_WAITING, "pool" => pool).set(waiting as f64);
    }
    match crate::obs::render() {
        Some(body) => text(body, "text/plain; version=0.0.4; charset=utf-8", "no-store"),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder not installed\n",
        )
            .into_response(),
    }
}
