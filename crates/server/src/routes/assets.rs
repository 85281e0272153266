//! The player page: files from `crates/server/assets/`, embedded at build time (see `build.rs`).
//! `/` is `index.html`; every other file is served at `/<name>` and `/assets/<name>`.

use axum::body::Body;
use axum::extract::Path;
use axum::http::{header, HeaderMap, Response, StatusCode};

use crate::error::{AppError, Result};
use crate::semantics::{etag_of, none_match};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/assets.rs"));
}

/// The embedded files: (path relative to `assets/`, bytes).
pub fn all() -> &'static [(&'static str, &'static [u8])] {
    embedded::ASSETS
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, e)| e) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("txt") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn serve(name: &str, headers: &HeaderMap) -> Result<Response<Body>> {
    let (_, bytes) = all()
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or(AppError::NotFound("no such page"))?;
    let etag = etag_of(bytes);
    // The page itself is revalidated every time; its scripts may be cached a little.
    let cache = if name.ends_with(".html") {
        "no-cache"
    } else {
        "public, max-age=300"
    };
    let b = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::CACHE_CONTROL, cache);
    if none_match(headers, &etag) {
        return b
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .map_err(AppError::internal);
    }
    b.status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type(name))
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .body(Body::from(*bytes))
        .map_err(AppError::internal)
}

/// `GET /`: the player page; in home mode without a login, the login page (401).
pub async fn index(
    axum::extract::State(st): axum::extract::State<crate::state::AppState>,
    headers: HeaderMap,
) -> Result<Response<Body>> {
    if st.sessions().is_some() && st.authorize(&headers).is_err() {
        return super::login::login_page(StatusCode::UNAUTHORIZED, "");
    }
    serve("index.html", &headers)
}

/// `GET /{name}` and `GET /assets/{*path}` (`index.html` is [`index`], behind its gate).
pub async fn asset(
    st: axum::extract::State<crate::state::AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response<Body>> {
    if name == "index.html" {
        return index(st, headers).await;
    }
    serve(&name, &headers)
}
