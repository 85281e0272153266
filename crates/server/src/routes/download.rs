//! `GET|HEAD /v1/{token}/download.mp4[?audio=all]`: one progressive MP4 (`moov` first) of an
//! MP4 source's copied tracks ([`pipeline::download`]). Its size, `Content-Length`, ETag and
//! every byte's origin are known from the sample tables before a media byte is read; a Range
//! request reads only the source bytes under it. Sources that are not MP4, and video that must
//! be transcoded, are refused with 409 and a pointer to `stream.mp4` (a fragmented MP4 made on
//! the fly, without Range).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, Method, Response};
use bytes::Bytes;
use pipeline::download::{Read, DOWNLOAD_VERSION};
use serde::Deserialize;
use source::{ByteRange, ByteSource};

use crate::error::{AppError, Result};
use crate::semantics::{etag_of_key, ranged, Ranged};
use crate::state::AppState;

/// `?audio=`: `all` for every audio track; the AAC tracks otherwise.
#[derive(Debug, Deserialize)]
pub struct DownloadQuery {
    /// `all`, or absent.
    #[serde(default)]
    pub audio: Option<String>,
}

/// A name for `Content-Disposition`: the source's file name with `.mp4`, reduced to safe
/// characters.
fn file_name(source: &str) -> String {
    let last = source
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .rsplit('/')
        .next()
        .unwrap_or("");
    let stem = last.rsplit_once('.').map_or(last, |(s, _)| s);
    let clean: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    if clean.trim_matches('_').is_empty() {
        "download.mp4".into()
    } else {
        format!("{clean}.mp4")
    }
}

/// `GET|HEAD /v1/{token}/download.mp4`
pub async fn download(
    State(st): State<AppState>,
    Path(token): Path<String>,
    Query(q): Query<DownloadQuery>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response<Body>> {
    let grant = st.verify(&token)?;
    let m = st.media(&grant).await?;
    let all_audio = match q.audio.as_deref() {
        None | Some("") | Some("aac") => false,
        Some("all") => true,
        Some(_) => return Err(AppError::BadRequest("audio must be aac or all")),
    };
    let tracks = pipeline::download::tracks(&m.pipeline, all_audio).map_err(AppError::Conflict)?;
    let layout = st.download_layout(&m, &tracks).await?;
    let len = layout.size;
    let etag = etag_of_key(&format!(
        "{}|download.mp4|{DOWNLOAD_VERSION}|{tracks:?}|{:x}",
        m.source.identity().key(),
        layout.fingerprint
    ));
    let (mut b, status, start, end) =
        match ranged(&headers, &etag, None, "public, max-age=3600", len)? {
            Ranged::NotModified(r) => return Ok(r),
            Ranged::Serve {
                builder,
                status,
                start,
                end,
            } => (builder, status, start, end),
        };
    b = b
        .status(status)
        .header(header::CONTENT_TYPE, "video/mp4")
        .header(
            header::CONTENT_DISPOSITION,
            format!("inline; filename=\"{}\"", file_name(&grant.source)),
        )
        .header(header::CONTENT_LENGTH, end - start);
    if method == Method::HEAD || start == end {
        return b.body(Body::empty()).map_err(AppError::internal);
    }
    let (head, pieces) = layout.pieces_in(start, end);
    // The first read is made before the status line goes out: a failing upstream gets its own
    // 502/504, never a 200 that breaks off at once.
    let mut reads = pipeline::download::reads(&pieces).into_iter();
    let first = match reads.next() {
        Some(r) => read(&*m.source, &r).await?,
        None => Vec::new(),
    };
    let source = Arc::clone(&m.source);
    let lead = futures_util::stream::iter(
        std::iter::once(head)
            .chain(first)
            .filter(|b| !b.is_empty())
            .map(Ok::<Bytes, std::io::Error>),
    );
    let rest = futures_util::stream::unfold(Some(reads), move |it| {
        let source = Arc::clone(&source);
        async move {
            let mut it = it?;
            let r = it.next()?;
            match read(&*source, &r).await {
                Ok(parts) => Some((Ok(parts), Some(it))),
                Err(e) => {
                    tracing::warn!(error = %e, "download body: read failed; aborting the response");
                    Some((Err(std::io::Error::other("read failed")), None))
                }
            }
        }
    });
    use futures_util::StreamExt as _;
    let rest = rest.flat_map(|r: std::io::Result<Vec<Bytes>>| {
        futures_util::stream::iter(match r {
            Ok(parts) => parts.into_iter().map(Ok).collect::<Vec<_>>(),
            Err(e) => vec![Err(e)],
        })
    });
    b.body(Body::from_stream(lead.chain(rest)))
        .map_err(AppError::internal)
}

/// Reads `r` from the source: its output parts.
async fn read(source: &dyn ByteSource, r: &Read) -> Result<Vec<Bytes>> {
    let bytes = source.read(ByteRange::new(r.src, r.src + r.len)).await?;
    if bytes.len() as u64 != r.len {
        return Err(AppError::Upstream(
            "short read",
            "the source ended before the range asked for".into(),
        ));
    }
    Ok(r.parts
        .iter()
        .map(|(at, len)| bytes.slice(*at as usize..(*at + *len) as usize))
        .collect())
}
