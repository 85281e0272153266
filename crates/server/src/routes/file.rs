//! `GET|HEAD /v1/{token}/file`: the original bytes, with Range (RFC 9110 §14): `206` with
//! `Content-Range` for one satisfiable range, `416` with `Content-Range: bytes */len` for an
//! unsatisfiable one, `200` otherwise (no range, several ranges, `If-Range` not matching);
//! `ETag`/`Last-Modified` validators, `If-None-Match` → `304`; `Content-Type` from the container
//! the probe recognised, or, for a source not probed (any file: FLAC, MP3, a text file…), sniffed
//! from its first bytes with the extension as the fallback; `Content-Disposition: inline`. No
//! probe is started: what is not media is passed through as well.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, Method, Response};
use bytes::Bytes;
use source::ByteRange;

use crate::error::{AppError, Result};
use crate::semantics::{etag_of_key, ranged, sniff_content_type, Ranged, SNIFF_BYTES};
use crate::state::AppState;

/// Bytes read from the source per body chunk.
pub const CHUNK: u64 = 1 << 20;

/// `GET|HEAD /v1/{token}/file`
pub async fn file(
    State(st): State<AppState>,
    Path(token): Path<String>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response<Body>> {
    let grant = st.verify(&token)?;
    let raw = st.source(&grant).await?;
    let m = std::sync::Arc::new(raw);
    let id = m.source.identity().clone();
    let len = id.size;
    let etag = etag_of_key(&id.key());
    let last_modified: Option<SystemTime> = match (id.mtime_ns, id.last_modified.as_deref()) {
        (Some(ns), _) => u64::try_from(ns / 1_000_000_000)
            .ok()
            .map(|s| UNIX_EPOCH + Duration::from_secs(s)),
        (None, Some(lm)) => httpdate::parse_http_date(lm).ok(),
        (None, None) => None,
    };

    let (mut b, status, start, end) =
        match ranged(&headers, &etag, last_modified, "public, max-age=3600", len)? {
            Ranged::NotModified(r) => return Ok(r),
            Ranged::Serve {
                builder,
                status,
                start,
                end,
            } => (builder, status, start, end),
        };
    let body = method != Method::HEAD && start != end;
    // The first chunk is read before the status line is sent: an upstream that fails or
    // stalls gets its own 502/504, never a cacheable 206 that breaks off.
    let first_to = (start + CHUNK).min(end);
    let first = if body {
        match m.source.read(ByteRange::new(start, first_to)).await {
            Ok(bytes) if bytes.len() as u64 == first_to - start => bytes,
            Ok(_) => {
                return Err(AppError::Upstream(
                    "short read",
                    "the source ended before the range asked for".into(),
                ))
            }
            Err(e) => return Err(evict_if_changed(&st, &m.key, e).await),
        }
    } else {
        Bytes::new()
    };
    // The probe's type when the source was probed; else sniffed from its first bytes (the
    // first chunk when the range starts at 0, else one small read), the name's extension as
    // the fallback.
    let content_type = match m.probed_type {
        Some(t) => t,
        None => {
            let to = SNIFF_BYTES.min(len);
            let head = if body && start == 0 {
                first.slice(..first.len().min(to as usize))
            } else if to == 0 {
                Bytes::new()
            } else {
                m.source.read(ByteRange::new(0, to)).await?
            };
            sniff_content_type(&head, &grant.source)
        }
    };
    b = b
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_DISPOSITION, "inline")
        .header(header::CONTENT_LENGTH, end - start);
    if !body {
        return b.body(Body::empty()).map_err(AppError::internal);
    }
    let head = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(first) });
    let rest = futures_util::stream::unfold(Some(first_to), move |pos| {
        let m = std::sync::Arc::clone(&m);
        let st = st.clone();
        async move {
            let pos = pos?;
            if pos >= end {
                return None;
            }
            let to = (pos + CHUNK).min(end);
            match m.source.read(ByteRange::new(pos, to)).await {
                Ok(bytes) if bytes.len() as u64 == to - pos => {
                    Some((Ok::<Bytes, std::io::Error>(bytes), Some(to)))
                }
                Ok(_) => {
                    tracing::warn!("file body: short read; aborting the response");
                    Some((Err(std::io::Error::other("short read")), None))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "file body: read failed; aborting the response");
                    let _ = evict_if_changed(&st, &m.key, e).await;
                    Some((Err(std::io::Error::other("read failed")), None))
                }
            }
        }
    });
    use futures_util::StreamExt as _;
    b.body(Body::from_stream(head.chain(rest)))
        .map_err(AppError::internal)
}

/// Turns a source error into an [`AppError`], forgetting the memoised media when the source
/// changed under it (the next request probes it again).
pub(crate) async fn evict_if_changed(st: &AppState, key: &str, e: source::SourceError) -> AppError {
    if matches!(e, source::SourceError::IdentityChanged(_)) {
        st.store().evict(key).await;
    }
    e.into()
}
