//! # server — the HTTP front end
//!
//! An axum (hyper 1) router over an [`AppState`]: stream tokens in the URL path, playlists
//! made from the plan, segment bytes from the pipeline (through the [`media`] seam), the
//! original file with Range, the token API, the player page, health and metrics. `docs/api.md`
//! is the route reference; `docs/security.md` the threat model and its tests.
//!
//! - [`app`] builds the router; [`serve`] runs it on a listener until a shutdown signal.
//! - [`error::AppError`] is the single error edge: status + short plain-text reason.
//! - [`token`]: signed, encrypted, expiring grants (HMAC-SHA256 + ChaCha20-Poly1305), or
//!   open-mode path references when no secret is configured (loopback only).
//! - [`media::MediaStore`] memoises the probed [`media::Media`] of each source in-process.
//! - [`semantics`]: RFC 9110 ranges, conditionals, ETags; content types.
//! - [`obs`]: Prometheus metrics and the one-line-per-request log.

pub mod error;
pub mod jobs;
pub mod media;
pub mod obs;
pub mod routes;
pub mod semantics;
pub mod state;
pub mod token;

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::routing::{get, post};
use axum::Router;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;

pub use error::AppError;
pub use state::{AppState, ReadyCheck, ServerConfig, StartError};

/// Largest request body (bytes).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

fn cors(origins: &[String]) -> CorsLayer {
    let any = origins.is_empty() || origins.iter().any(|o| o.trim() == "*");
    let allow = if any {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o.trim()).ok())
                .collect::<Vec<_>>(),
        )
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::HEAD, Method::POST, Method::OPTIONS])
        .allow_headers([
            header::RANGE,
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::IF_NONE_MATCH,
            header::IF_RANGE,
            HeaderName::from_static("x-api-key"),
        ])
        .expose_headers([
            header::CONTENT_RANGE,
            header::CONTENT_LENGTH,
            header::ACCEPT_RANGES,
            header::ETAG,
        ])
        .max_age(Duration::from_secs(3600))
}

/// Gzip only text: playlists, JSON, plain text, the page (never media, never ranges).
fn compressible(
    _status: axum::http::StatusCode,
    _version: axum::http::Version,
    headers: &axum::http::HeaderMap,
    _ext: &axum::http::Extensions,
) -> bool {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let big = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_none_or(|n| n >= 256);
    big && !headers.contains_key(header::CONTENT_RANGE)
        && (ct.starts_with(semantics::M3U8)
            || ct.starts_with("text/")
            || ct.starts_with("application/json"))
}

/// The router: every route of `docs/api.md` over `state`.
pub fn app(state: AppState) -> Router {
    let _ = obs::handle();
    let cors = cors(&state.config().cors_origins);
    use routes::{api, assets, file, hls, ops};
    Router::new()
        .route("/", get(assets::index))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/api/v1/streams", post(api::create_stream))
        .route("/api/v1/streams/batch", post(api::create_batch))
        .route("/api/v1/library", get(api::library))
        .route("/v1/{token}/master.m3u8", get(hls::master))
        .route("/v1/{token}/file", get(file::file))
        .route("/v1/{token}/stream.mp4", get(hls::stream))
        .route("/v1/{token}/probe.txt", get(hls::probe_txt))
        .route("/v1/{token}/probe.json", get(hls::probe_json))
        .route("/v1/{token}/plan.txt", get(hls::plan_txt))
        .route("/v1/{token}/plan.json", get(hls::plan_json))
        .route("/v1/{token}/thumb/{file}", get(hls::thumb))
        .route(
            "/v1/{token}/{rendition}/index.m3u8",
            get(hls::media_playlist),
        )
        .route("/v1/{token}/{rendition}/init.mp4", get(hls::init))
        .route("/v1/{token}/{rendition}/{file}", get(hls::segment))
        .route("/assets/{*path}", get(assets::asset))
        .route("/{name}", get(assets::asset))
        .fallback(|| async { AppError::NotFound("no such route") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(
            CompressionLayer::new()
                .gzip(true)
                .compress_when(compressible),
        )
        .layer(cors)
        .layer(axum::middleware::from_fn(obs::track))
        .with_state(state)
}

/// Serves `app` on `listener` until `shutdown` resolves, then finishes in-flight requests
/// (graceful shutdown).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
