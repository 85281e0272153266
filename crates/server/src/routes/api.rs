//! `/api/v1/…`: issuing stream tokens (single and batch) and listing the media root.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::error::{AppError, Result};
use crate::state::AppState;
use crate::token::{self, Grant, SourceRef};

/// Most forwarded headers per source.
pub const MAX_HEADERS: usize = 32;
/// Longest source string (bytes).
pub const MAX_SOURCE_LEN: usize = 4096;
/// Most entries listed per folder.
pub const MAX_LIST: usize = 5000;

/// Headers a client may not ask us to forward: they are ours to set.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "range",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
    "proxy-connection",
    "if-range",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "accept-encoding",
];

/// A lifetime: `"6h"`, `"90m"`, `"1d 2h"` (humantime) or a number of seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Ttl {
    /// Seconds.
    Secs(u64),
    /// A human duration.
    Text(String),
}

impl Ttl {
    fn duration(&self) -> Result<Duration> {
        match self {
            Ttl::Secs(s) => Ok(Duration::from_secs(*s)),
            Ttl::Text(t) => {
                humantime::parse_duration(t).map_err(|_| AppError::BadRequest("bad ttl"))
            }
        }
    }
}

/// `POST /api/v1/streams` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamRequest {
    /// `file:<path under the media root>` or an `http(s)://` URL.
    pub source: String,
    /// Headers to forward upstream.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Token lifetime (default from the config, capped by `max_ttl`).
    pub ttl: Option<Ttl>,
}

/// One stream of a reply.
#[derive(Debug, Serialize)]
pub struct StreamReply {
    /// Stable id of the source (same source and headers → same id).
    pub id: String,
    /// The token to put in `/v1/{token}/…`.
    pub token: String,
    /// Multivariant playlist.
    pub master_url: String,
    /// Continuous fMP4.
    pub stream_url: String,
    /// The original bytes (Range).
    pub file_url: String,
    /// RFC 3339 expiry (`null` for open-mode references, which do not expire).
    pub expires_at: Option<String>,
}

/// One source of a batch: a string, or a source with its own headers.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum BatchItem {
    /// Just the source.
    Plain(String),
    /// A source with headers.
    Full {
        /// The source.
        source: String,
        /// Headers to forward upstream (replace the batch's).
        #[serde(default)]
        headers: Option<BTreeMap<String, String>>,
    },
}

/// `POST /api/v1/streams/batch` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// The sources.
    pub sources: Vec<BatchItem>,
    /// Headers for every source that names none.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// One lifetime for the whole batch.
    pub ttl: Option<Ttl>,
}

/// `POST /api/v1/streams/batch` reply.
#[derive(Debug, Serialize)]
pub struct BatchReply {
    /// The batch's expiry (every token's).
    pub expires_at: Option<String>,
    /// One stream per source, in request order.
    pub streams: Vec<StreamReply>,
}

fn json_body<T>(body: std::result::Result<Json<T>, JsonRejection>) -> Result<T> {
    match body {
        Ok(Json(v)) => Ok(v),
        Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(AppError::TooLarge),
        Err(JsonRejection::MissingJsonContentType(_)) => Err(AppError::BadRequest(
            "expected Content-Type: application/json",
        )),
        Err(_) => Err(AppError::BadRequest("invalid JSON body")),
    }
}

/// The base of absolute URLs: the configured public URL, else `http://<Host>`.
fn base_url(st: &AppState, headers: &HeaderMap) -> String {
    if let Some(u) = &st.config().public_url {
        return u.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
        });
    match host {
        Some(h) => format!("http://{h}"),
        None => String::new(),
    }
}

fn check_headers(h: &BTreeMap<String, String>) -> Result<Vec<(String, String)>> {
    if h.len() > MAX_HEADERS {
        return Err(AppError::BadRequest("too many headers"));
    }
    h.iter()
        .map(|(k, v)| {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| AppError::BadRequest("bad header name"))?;
            if RESERVED_HEADERS.contains(&name.as_str()) {
                return Err(AppError::BadRequest("that header cannot be forwarded"));
            }
            HeaderValue::from_str(v).map_err(|_| AppError::BadRequest("bad header value"))?;
            Ok((name.as_str().to_string(), v.clone()))
        })
        .collect()
}

/// Checks a source before issuing a token for it: files must resolve under the media root;
/// URLs must parse, be http(s), and an IP-literal host must pass the SSRF guard now (names are
/// checked at connect time).
async fn check_source(st: &AppState, source: &str) -> Result<()> {
    if source.len() > MAX_SOURCE_LEN {
        return Err(AppError::BadRequest("source too long"));
    }
    match token::parse_source(source)? {
        SourceRef::File(rel) => {
            let root = st.media_root().clone();
            let rel = rel.to_string();
            let path = tokio::task::spawn_blocking(move || root.resolve(&rel))
                .await
                .map_err(AppError::internal)??;
            let meta = tokio::fs::metadata(&path)
                .await
                .map_err(|_| AppError::NotFound("no such source"))?;
            if !meta.is_file() {
                return Err(AppError::NotFound("no such source"));
            }
            Ok(())
        }
        SourceRef::Url(u) => {
            if st.open_mode() {
                return Err(AppError::Forbidden(
                    "open mode serves local files only; configure a secret for URLs",
                ));
            }
            let url = url::Url::parse(u).map_err(|_| AppError::BadRequest("bad source URL"))?;
            if !url.username().is_empty() || url.password().is_some() {
                return Err(AppError::BadRequest(
                    "credentials in URLs are not accepted; send them as headers",
                ));
            }
            let policy =
                source::AddressPolicy::public_only(st.config().allow_private_upstream.clone());
            let ip: Option<std::net::IpAddr> = match url.host() {
                Some(url::Host::Ipv4(ip)) => Some(ip.into()),
                Some(url::Host::Ipv6(ip)) => Some(ip.into()),
                Some(url::Host::Domain(_)) => None,
                None => return Err(AppError::BadRequest("bad source URL")),
            };
            if let Some(ip) = ip {
                policy
                    .check(ip)
                    .map_err(|_| AppError::Forbidden("upstream address refused"))?;
            }
            Ok(())
        }
    }
}

fn expiry(st: &AppState, ttl: Option<&Ttl>) -> Result<Option<u64>> {
    if st.open_mode() {
        return Ok(None);
    }
    let cfg = st.config();
    let d = match ttl {
        Some(t) => t.duration()?,
        None => cfg.default_ttl,
    };
    if d.is_zero() {
        return Err(AppError::BadRequest("ttl must be positive"));
    }
    let d = d.min(cfg.max_ttl);
    Ok(Some(token::now_unix().saturating_add(d.as_secs().max(1))))
}

fn reply(st: &AppState, base: &str, grant: &Grant) -> Result<StreamReply> {
    let token = st.issue(grant)?;
    let id = grant.media_key()[..16].to_string();
    Ok(StreamReply {
        id,
        master_url: format!("{base}/v1/{token}/master.m3u8"),
        stream_url: format!("{base}/v1/{token}/stream.mp4"),
        file_url: format!("{base}/v1/{token}/file"),
        token,
        expires_at: grant.expires.map(token::rfc3339),
    })
}

/// `POST /api/v1/streams`
pub async fn create_stream(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: std::result::Result<Json<StreamRequest>, JsonRejection>,
) -> Result<Response> {
    st.authorize(&headers)?;
    let req = json_body(body)?;
    check_source(&st, &req.source).await?;
    let grant = Grant {
        source: req.source,
        headers: check_headers(&req.headers)?,
        expires: expiry(&st, req.ttl.as_ref())?,
    };
    let r = reply(&st, &base_url(&st, &headers), &grant)?;
    Ok((StatusCode::CREATED, no_store(Json(r))).into_response())
}

fn no_store<T: IntoResponse>(r: T) -> Response {
    let mut resp = r.into_response();
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// `POST /api/v1/streams/batch`
pub async fn create_batch(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: std::result::Result<Json<BatchRequest>, JsonRejection>,
) -> Result<Response> {
    st.authorize(&headers)?;
    let req = json_body(body)?;
    if req.sources.is_empty() {
        return Err(AppError::BadRequest("no sources"));
    }
    if req.sources.len() > st.config().max_batch {
        return Err(AppError::BadRequest("too many sources in one batch"));
    }
    let expires = expiry(&st, req.ttl.as_ref())?;
    let common = check_headers(&req.headers)?;
    let base = base_url(&st, &headers);
    let mut streams = Vec::with_capacity(req.sources.len());
    for item in &req.sources {
        let (source, hdrs) = match item {
            BatchItem::Plain(s) => (s, common.clone()),
            BatchItem::Full { source, headers } => (
                source,
                match headers {
                    Some(h) => check_headers(h)?,
                    None => common.clone(),
                },
            ),
        };
        check_source(&st, source).await?;
        let grant = Grant {
            source: source.clone(),
            headers: hdrs,
            expires,
        };
        streams.push(reply(&st, &base, &grant)?);
    }
    let r = BatchReply {
        expires_at: expires.map(token::rfc3339),
        streams,
    };
    Ok((StatusCode::CREATED, no_store(Json(r))).into_response())
}

/// `GET /api/v1/library` query.
#[derive(Debug, Deserialize)]
pub struct LibraryQuery {
    /// Folder relative to the media root (default: the root).
    #[serde(default)]
    pub dir: String,
}

/// A file in a listing.
#[derive(Debug, Serialize)]
pub struct LibraryFile {
    /// File name.
    pub name: String,
    /// Path relative to the media root.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// A token for it (`/v1/{token}/master.m3u8` plays it).
    pub token: String,
    /// Why it certainly cannot play (empty, text, an image, subtitles…), from its first bytes;
    /// absent when it may ([`crate::semantics::not_media`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_playable: Option<&'static str>,
}

/// A folder listing.
#[derive(Debug, Serialize)]
pub struct Library {
    /// The folder, relative to the root ("" = the root).
    pub dir: String,
    /// Sub-folder names.
    pub dirs: Vec<String>,
    /// Files.
    pub files: Vec<LibraryFile>,
}

/// `GET /api/v1/library?dir=<rel>` (open mode, and home mode after a login): folders and
/// files, sorted by name, hidden entries and anything resolving outside the root skipped. Each
/// file carries a token that plays it (home mode: sealed, with the default lifetime).
pub async fn library(
    State(st): State<AppState>,
    headers: HeaderMap,
    q: std::result::Result<Query<LibraryQuery>, QueryRejection>,
) -> Result<Response> {
    if !st.open_mode() && st.sessions().is_none() {
        return Err(AppError::Forbidden(
            "the library is listed in open and home mode only",
        ));
    }
    st.authorize(&headers)?;
    let Query(q) = q.map_err(|_| AppError::BadRequest("bad query"))?;
    let dir = q.dir.trim_matches('/').to_string();
    let root = st.media_root().clone();
    let expires = expiry(&st, None)?;
    let st2 = st.clone();
    let token = move |rel: &str| {
        st2.issue(&Grant {
            source: format!("file:{rel}"),
            headers: Vec::new(),
            expires,
        })
    };
    let listing = tokio::task::spawn_blocking(move || list(&root, &dir, &token))
        .await
        .map_err(AppError::internal)??;
    Ok(no_store(Json(listing)))
}

/// Up to `n` first bytes of the file at `path` (none when it cannot be read).
fn read_head(path: &std::path::Path, n: u64) -> Vec<u8> {
    use std::io::Read as _;
    let mut head = Vec::new();
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(n).read_to_end(&mut head);
    }
    head
}

fn list(
    root: &source::MediaRoot,
    dir: &str,
    token: &dyn Fn(&str) -> Result<String>,
) -> Result<Library> {
    let path = if dir.is_empty() {
        root.path().to_path_buf()
    } else {
        root.resolve(dir)?
    };
    let rd = std::fs::read_dir(&path).map_err(|_| AppError::NotFound("no such folder"))?;
    let mut dirs = Vec::new();
    let mut files = Vec::new();
    for entry in rd.filter_map(std::result::Result::ok).take(MAX_LIST) {
        let Ok(name) = entry.file_name().into_string() else {
            continue; // not UTF-8: cannot be named in a URL reliably
        };
        if name.starts_with('.') {
            continue;
        }
        let rel = if dir.is_empty() {
            name.clone()
        } else {
            format!("{dir}/{name}")
        };
        // Follows symlinks, and refuses those that lead out of the root.
        let Ok(real) = root.resolve(&rel) else {
            continue;
        };
        let Ok(meta) = std::fs::metadata(&real) else {
            continue;
        };
        if meta.is_dir() {
            dirs.push(name);
        } else if meta.is_file() {
            let head = read_head(&real, crate::semantics::SNIFF_BYTES);
            files.push(LibraryFile {
                token: token(&rel)?,
                not_playable: crate::semantics::not_media(&head, meta.len(), &name),
                name,
                path: rel,
                size: meta.len(),
            });
        }
    }
    dirs.sort_by(|a, b| a.to_lowercase().cmp(&b.to_lowercase()).then(a.cmp(b)));
    files.sort_by(|a, b| {
        a.name
            .to_lowercase()
            .cmp(&b.name.to_lowercase())
            .then(a.name.cmp(&b.name))
    });
    Ok(Library {
        dir: dir.to_string(),
        dirs,
        files,
    })
}
