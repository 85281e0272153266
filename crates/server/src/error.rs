//! The one HTTP error edge: every failure becomes an [`AppError`], and [`AppError`] alone
//! decides the status and the short plain-text reason the client sees.
//!
//! Reasons are fixed phrases written here. They never contain upstream URLs, forwarded headers,
//! server paths or library messages (which may hold any of those); those go to the log: 5xx at
//! `error` with the whole source chain, 4xx at `warn`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use source::SourceError;

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 400: the request is malformed (the text is ours, never the client's input).
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// 401: an API key or a login is required and was missing or wrong (what the text says).
    #[error("{0}")]
    Unauthorized(&'static str),
    /// 429: too many attempts from this client; retry after this many seconds.
    #[error("too many attempts: {0}")]
    TooMany(&'static str, u32),
    /// 403: the token is not one of ours (forged, tampered, wrong secret, malformed).
    #[error("invalid token")]
    BadToken,
    /// 403: the token was valid but has expired.
    #[error("token expired")]
    Expired,
    /// 403: refused by policy (what the text says).
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// 409: the resource cannot be made from this source (what the text says, and what to use
    /// instead).
    #[error("{0}")]
    Conflict(&'static str),
    /// 404: nothing here.
    #[error("not found: {0}")]
    NotFound(&'static str),
    /// 416: the range is outside the resource of `size` bytes.
    #[error("range not satisfiable (size {size})")]
    RangeNotSatisfiable {
        /// The resource's size, for `Content-Range: bytes */size`.
        size: u64,
    },
    /// 413: the request body is too large.
    #[error("request body too large")]
    TooLarge,
    /// 422: the source is not media we can read.
    #[error("not a media file we can read")]
    NotMedia(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// 502: the upstream failed (status, malformed reply, changed file, refused Range…).
    #[error("upstream failed: {0}")]
    Upstream(
        &'static str,
        #[source] Box<dyn std::error::Error + Send + Sync>,
    ),
    /// 504: the upstream did not answer in time.
    #[error("upstream timed out")]
    UpstreamTimeout(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// 503: overloaded or not ready; retry after this many seconds.
    #[error("unavailable: {0}")]
    Unavailable(&'static str, u32),
    /// 500: our bug or an I/O failure.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Result alias for handlers.
pub type Result<T, E = AppError> = std::result::Result<T, E>;

impl AppError {
    /// An internal error from any error value.
    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        AppError::Internal(Box::new(e))
    }

    /// The same status and reason again, for each request that waited for one failed make;
    /// the shared original is the source of the variants that carry one.
    pub fn replay(self: &std::sync::Arc<Self>) -> AppError {
        let shared = || -> Box<dyn std::error::Error + Send + Sync> { Box::new(self.clone()) };
        match &**self {
            AppError::BadRequest(m) => AppError::BadRequest(m),
            AppError::Unauthorized(m) => AppError::Unauthorized(m),
            AppError::TooMany(m, s) => AppError::TooMany(m, *s),
            AppError::BadToken => AppError::BadToken,
            AppError::Expired => AppError::Expired,
            AppError::Forbidden(m) => AppError::Forbidden(m),
            AppError::Conflict(m) => AppError::Conflict(m),
            AppError::NotFound(m) => AppError::NotFound(m),
            AppError::RangeNotSatisfiable { size } => AppError::RangeNotSatisfiable { size: *size },
            AppError::TooLarge => AppError::TooLarge,
            AppError::NotMedia(_) => AppError::NotMedia(shared()),
            AppError::Upstream(m, _) => AppError::Upstream(m, shared()),
            AppError::UpstreamTimeout(_) => AppError::UpstreamTimeout(shared()),
            AppError::Unavailable(m, s) => AppError::Unavailable(m, *s),
            AppError::Internal(_) => AppError::Internal(shared()),
        }
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::TooMany(..) => StatusCode::TOO_MANY_REQUESTS,
            AppError::BadToken | AppError::Expired | AppError::Forbidden(_) => {
                StatusCode::FORBIDDEN
            }
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            AppError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::NotMedia(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Upstream(..) => StatusCode::BAD_GATEWAY,
            AppError::UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            AppError::Unavailable(..) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The short reason the client sees (fixed text; see the module docs).
    pub fn reason(&self) -> String {
        match self {
            AppError::Upstream(what, _) => format!("upstream failed: {what}"),
            AppError::NotMedia(_) => "not a media file we can read".into(),
            AppError::Internal(_) => "internal error".into(),
            other => other.to_string(),
        }
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    let mut depth = 0;
    let mut last = s.clone();
    while let Some(c) = cur {
        // A wrapper that repeats its source's text adds nothing to the line; a source whose
        // text begins with the wrapper's says the same and more: it replaces it.
        let text = c.to_string();
        if text.starts_with(&last) {
            s.truncate(s.len() - last.len());
            s.push_str(&text);
        } else {
            s.push_str(": ");
            s.push_str(&text);
        }
        last = text;
        cur = c.source();
        depth += 1;
        if depth > 16 {
            break;
        }
    }
    s
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error = %chain(&self), "request failed");
        } else {
            tracing::warn!(status = status.as_u16(), error = %chain(&self), "request refused");
        }
        let mut resp = (status, format!("{}\n", self.reason())).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match &self {
            AppError::RangeNotSatisfiable { size } => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    h.insert(header::CONTENT_RANGE, v);
                }
                h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            }
            AppError::Unavailable(_, secs) => {
                h.insert(header::RETRY_AFTER, HeaderValue::from(*secs));
            }
            AppError::TooMany(_, secs) => {
                h.insert(header::RETRY_AFTER, HeaderValue::from(*secs));
            }
            AppError::Unauthorized(_) => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"hlsgate\""),
                );
            }
            _ => {}
        }
        resp
    }
}

impl From<SourceError> for AppError {
    fn from(e: SourceError) -> Self {
        match e {
            SourceError::OutsideRoot(_) => AppError::Forbidden("path is outside the media root"),
            SourceError::NotFound(_) => AppError::NotFound("no such source"),
            SourceError::Forbidden(_) => AppError::Forbidden("the source cannot be read"),
            SourceError::BadUrl(_) => AppError::BadRequest("bad source URL"),
            SourceError::Blocked(_) => AppError::Forbidden("upstream address refused"),
            SourceError::Probe(p) => AppError::NotMedia(Box::new(p)),
            SourceError::RangeIgnored => {
                AppError::Upstream("it ignores Range requests", Box::new(e))
            }
            SourceError::UpstreamStatus { .. } => {
                AppError::Upstream("unexpected status", Box::new(e))
            }
            SourceError::BadResponse(_) => AppError::Upstream("malformed reply", Box::new(e)),
            SourceError::TooLong { .. } => {
                AppError::Upstream("it sent more than the range asked for", Box::new(e))
            }
            SourceError::Truncated { .. } => {
                AppError::Upstream("it sent less than the range asked for", Box::new(e))
            }
            SourceError::IdentityChanged(_) => {
                AppError::Upstream("the source changed while reading", Box::new(e))
            }
            SourceError::Timeout { .. } => AppError::UpstreamTimeout(Box::new(e)),
            SourceError::Connect(_) | SourceError::Unreachable { .. } => {
                AppError::Upstream("unreachable", Box::new(e))
            }
            SourceError::BadRange { size, .. } => AppError::RangeNotSatisfiable { size },
            SourceError::Io { .. } => AppError::internal(e),
        }
    }
}

impl From<plan::PlanError> for AppError {
    fn from(e: plan::PlanError) -> Self {
        AppError::NotMedia(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_chains_say_each_thing_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("not a media file we can read (first bytes: 6865)")]
        struct Probe;
        let e = AppError::NotMedia(Box::new(Probe));
        assert_eq!(
            chain(&e),
            "not a media file we can read (first bytes: 6865)"
        );
        let e = AppError::Upstream("it ignores Range requests", Box::new(Probe));
        assert_eq!(
            chain(&e),
            "upstream failed: it ignores Range requests: not a media file we can read (first \
             bytes: 6865)"
        );
    }

    #[test]
    fn reasons_never_echo_details() {
        let secret = "http://10.1.2.3/private/film.mkv?sig=abc";
        let errors: Vec<AppError> = vec![
            SourceError::NotFound(secret.into()).into(),
            SourceError::OutsideRoot(secret.into()).into(),
            SourceError::BadUrl(secret.into()).into(),
            SourceError::BadResponse(secret.into()).into(),
            SourceError::IdentityChanged(secret.into()).into(),
            SourceError::Timeout {
                what: source::TimeoutKind::Deadline,
                after: std::time::Duration::from_secs(15),
            }
            .into(),
            SourceError::Unreachable {
                attempts: 3,
                last: Box::new(SourceError::Connect(format!("{secret}: refused"))),
            }
            .into(),
            SourceError::UpstreamStatus {
                status: 500,
                what: secret.into(),
            }
            .into(),
            SourceError::Io {
                path: secret.into(),
                source: std::io::Error::other(secret),
            }
            .into(),
        ];
        let statuses: Vec<u16> = errors.iter().map(|e| e.status().as_u16()).collect();
        assert_eq!(statuses, vec![404, 403, 400, 502, 502, 504, 502, 502, 500]);
        for e in errors {
            assert!(!e.reason().contains("10.1.2.3"), "{}", e.reason());
            assert!(!e.reason().contains("film"), "{}", e.reason());
        }
    }
}
