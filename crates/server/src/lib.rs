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
pub mod session;
pub mod state;
pub mod token;

use std::sync::Arc;
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
    use routes::{api, assets, download, file, hls, login, ops};
    Router::new()
        .route("/", get(assets::index))
        .route("/login", get(login::login_form).post(login::login))
        .route("/logout", post(login::logout))
        .route("/api/v1/session", get(login::session))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/api/v1/streams", post(api::create_stream))
        .route("/api/v1/streams/batch", post(api::create_batch))
        .route("/api/v1/library", get(api::library))
        .route("/v1/{token}/master.m3u8", get(hls::master))
        .route("/v1/{token}/manifest.mpd", get(hls::dash_manifest))
        .route("/v1/{token}/file", get(file::file))
        .route("/v1/{token}/stream.mp4", get(hls::stream))
        .route("/v1/{token}/download.mp4", get(download::download))
        .route("/v1/{token}/probe.txt", get(hls::probe_txt))
        .route("/v1/{token}/probe.json", get(hls::probe_json))
        .route("/v1/{token}/plan.txt", get(hls::plan_txt))
        .route("/v1/{token}/plan.json", get(hls::plan_json))
        .route("/v1/{token}/thumb/{file}", get(hls::thumb))
        .route("/v1/{token}/trickplay.vtt", get(hls::thumbnails_vtt))
        .route("/v1/{token}/trickplay/index.m3u8", get(hls::image_playlist))
        .route("/v1/{token}/trickplay/{file}", get(hls::sheet))
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
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            tag_stream,
        ))
        .layer(axum::middleware::from_fn(obs::track))
        .with_state(state)
}

/// Middleware: tags the response of a `/v1/{token}/…` request with its stream
/// ([`obs::StreamTag`]) for the request log line.
async fn tag_stream(
    axum::extract::State(st): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let tag = stream_tag(&st, req.uri().path());
    let mut resp = next.run(req).await;
    if let Some(t) = tag {
        resp.extensions_mut().insert(t);
    }
    resp
}

/// The stream a request path names, when its token is valid.
fn stream_tag(st: &AppState, path: &str) -> Option<obs::StreamTag> {
    let token = path.strip_prefix("/v1/")?.split('/').next()?;
    let grant = st.verify(token).ok()?;
    let source = match grant.source_ref().ok()? {
        token::SourceRef::File(rel) => rel.rsplit('/').next().unwrap_or(rel).to_string(),
        token::SourceRef::Url(u) => url::Url::parse(u)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| "upstream".into()),
    };
    Some(obs::StreamTag {
        id: grant.media_key().get(..16)?.to_string(),
        source,
    })
}

/// Upper bound of [`ConnLimits::max_connections`] (and of the semaphore behind it).
pub const MAX_CONNECTIONS_CAP: usize = 1 << 20;
/// Longest wait for connections to finish their requests after a shutdown signal.
pub const SHUTDOWN_DRAIN: Duration = Duration::from_secs(30);

/// Limits on client connections: what a slow, idle or greedy client may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// Longest time a client may take to send a request's headers, and to start the next
    /// request on a kept-alive HTTP/1.1 connection (hyper's header-read timer runs from the
    /// moment the connection waits for a request head). Defends against slowloris.
    pub header_timeout: Duration,
    /// Longest time an HTTP/2 connection may go without answering a PING, or a connection
    /// of either kind may stay open with no bytes read or written; then it is closed
    /// gracefully (requests in flight finish).
    pub idle_timeout: Duration,
    /// Most client connections open at once; further connections wait in the kernel's
    /// accept backlog until one closes.
    pub max_connections: usize,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            max_connections: 4096,
        }
    }
}

/// Serves `app` on `listener` with `limits` until `shutdown` resolves, then finishes in-flight
/// requests (graceful shutdown).
///
/// This is axum's `serve` loop with the limits it does not offer: a header-read timeout
/// (hyper's HTTP/1 timer), an idle timeout and a cap on open connections.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: ConnLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;
    use tower::ServiceExt as _;

    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(limits.idle_timeout / 2))
        .keep_alive_timeout(limits.header_timeout);
    let builder = Arc::new(builder);
    let max = limits.max_connections.clamp(1, MAX_CONNECTIONS_CAP);
    let permits = Arc::new(tokio::sync::Semaphore::new(max));
    // Raised once on shutdown: every connection finishes its request in flight and closes.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE/ENFILE and aborted handshakes: wait a little, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let activity = idle::Activity::new();
        let io = TokioIo::new(idle::Tracked::new(stream, activity.clone()));
        // The peer's address for handlers that count per client (home mode's login).
        let service = TowerToHyperService::new(app.clone().map_request(
            move |mut r: axum::http::Request<hyper::body::Incoming>| {
                r.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                r
            },
        ));
        let builder = Arc::clone(&builder);
        let mut stop = stop_rx.clone();
        let idle_timeout = limits.idle_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            let conn = builder.serve_connection_with_upgrades(io, service);
            let mut conn = std::pin::pin!(conn);
            let mut closing = false;
            loop {
                let wait = activity.until_idle(idle_timeout);
                tokio::select! {
                    r = conn.as_mut() => {
                        if let Err(e) = r {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    () = tokio::time::sleep(wait), if !closing => {
                        if activity.idle_for() >= idle_timeout {
                            closing = true;
                            conn.as_mut().graceful_shutdown();
                        }
                    }
                    r = stop.changed(), if !closing => {
                        let _ = r;
                        closing = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a permit until it has closed: all of them back = all closed.
    // A continuous stream can last as long as its film: past the drain bound it is cut off.
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    if tokio::time::timeout(SHUTDOWN_DRAIN, permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain bound; closing them");
    }
    Ok(())
}

mod idle {
    //! Last-activity tracking of a client connection, for the idle timeout.

    use std::pin::Pin;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Poll};
    use std::time::{Duration, Instant};

    use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

    /// When the connection last read or wrote a byte (milliseconds since `origin`).
    #[derive(Clone)]
    pub(crate) struct Activity {
        origin: Instant,
        last_ms: Arc<AtomicU64>,
    }

    impl Activity {
        pub(crate) fn new() -> Self {
            Activity {
                origin: Instant::now(),
                last_ms: Arc::new(AtomicU64::new(0)),
            }
        }

        fn touch(&self) {
            let ms = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.last_ms.store(ms, Ordering::Relaxed);
        }

        /// How long the connection has done nothing.
        pub(crate) fn idle_for(&self) -> Duration {
            let now = self.origin.elapsed();
            now.saturating_sub(Duration::from_millis(self.last_ms.load(Ordering::Relaxed)))
        }

        /// How long until it will have been idle for `limit`, if nothing happens meanwhile.
        pub(crate) fn until_idle(&self, limit: Duration) -> Duration {
            limit
                .saturating_sub(self.idle_for())
                .max(Duration::from_millis(100))
        }
    }

    /// A stream that records its activity.
    pub(crate) struct Tracked<S> {
        inner: S,
        activity: Activity,
    }

    impl<S> Tracked<S> {
        pub(crate) fn new(inner: S, activity: Activity) -> Self {
            Tracked { inner, activity }
        }
    }

    impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            let before = buf.filled().len();
            let r = Pin::new(&mut self.inner).poll_read(cx, buf);
            if buf.filled().len() > before {
                self.activity.touch();
            }
            r
        }
    }

    impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            let r = Pin::new(&mut self.inner).poll_write(cx, buf);
            if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
                self.activity.touch();
            }
            r
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[std::io::IoSlice<'_>],
        ) -> Poll<std::io::Result<usize>> {
            let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
            if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
                self.activity.touch();
            }
            r
        }

        fn is_write_vectored(&self) -> bool {
            self.inner.is_write_vectored()
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }

        fn poll_shutdown(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }
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
