//! `/v1/{token}/…`: playlists, init and media segments, subtitles, the continuous stream,
//! thumbnails and the debug twins (probe/plan as text and JSON).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use plan::RenditionKind;
use serde::Deserialize;

use crate::error::{AppError, Result};
use crate::media::Media;
use crate::semantics::{text, M3U8, MPD, PLAYLIST_CACHE, VTT};
use crate::state::AppState;

/// Verifies the token and returns the (memoised) media.
pub(crate) async fn media_of(st: &AppState, token: &str) -> Result<Arc<Media>> {
    let grant = st.verify(token)?;
    st.media(&grant).await
}

/// A segment number: ASCII digits only (no sign, no spaces), at most 9 of them.
fn parse_index(s: &str) -> Option<u32> {
    (!s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Query of `master.m3u8` and `manifest.mpd`: what the client decodes ([`plan::Caps`]).
#[derive(Debug, Deserialize)]
pub struct MasterQuery {
    /// Audio codecs the client decodes besides AAC (`ac3,eac3,flac,opus,mp3` or `all`): the
    /// originals copied in those codecs are listed too, first.
    pub audio: Option<String>,
    /// Video codecs the client decodes (`h264`, `hevc`): only those are listed; naming `hevc`
    /// puts the copied video first.
    pub video: Option<String>,
}

impl MasterQuery {
    fn caps(&self) -> plan::Caps {
        plan::Caps::parse(
            self.audio.as_deref().unwrap_or(""),
            self.video.as_deref().unwrap_or(""),
        )
    }
}

/// `GET /v1/{token}/master.m3u8[?audio=ac3,eac3,flac,opus,mp3][&video=h264,hevc]`
pub async fn master(
    State(st): State<AppState>,
    Path(token): Path<String>,
    Query(q): Query<MasterQuery>,
) -> Result<Response> {
    let m = media_of(&st, &token).await?;
    Ok(text(m.master_playlist(&q.caps()), M3U8, PLAYLIST_CACHE))
}

/// `GET /v1/{token}/manifest.mpd[?audio=…]`: DASH over the same segments as the master
/// (`?audio=` as for the master).
pub async fn dash_manifest(
    State(st): State<AppState>,
    Path(token): Path<String>,
    Query(q): Query<MasterQuery>,
) -> Result<Response> {
    let m = media_of(&st, &token).await?;
    Ok(text(
        m.pipeline.dash_manifest(&q.caps()),
        MPD,
        PLAYLIST_CACHE,
    ))
}

/// `GET /v1/{token}/trickplay/index.m3u8`: the trick-play image playlist (404 without video).
pub async fn image_playlist(
    State(st): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response> {
    let m = media_of(&st, &token).await?;
    let text_body = m.pipeline.image_playlist().ok_or(AppError::NotFound(
        "no trick-play images: the source has no video",
    ))?;
    Ok(text(text_body, M3U8, PLAYLIST_CACHE))
}

/// `GET /v1/{token}/trickplay.vtt`: the WebVTT thumbnails track (404 without video).
pub async fn thumbnails_vtt(
    State(st): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response> {
    let m = media_of(&st, &token).await?;
    let body = m.pipeline.thumbnails_vtt().ok_or(AppError::NotFound(
        "no trick-play images: the source has no video",
    ))?;
    Ok(text(body, VTT, PLAYLIST_CACHE))
}

/// `GET /v1/{token}/trickplay/{n}.jpg`: trick-play sheet `n`.
pub async fn sheet(
    State(st): State<AppState>,
    Path((token, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    let n = file
        .strip_suffix(".jpg")
        .filter(|s| !s.is_empty() && s.len() <= 6 && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u32>().ok())
        .ok_or(AppError::NotFound("no such sheet"))?;
    let m = media_of(&st, &token).await?;
    let sheets = m
        .pipeline
        .trickplay()
        .ok_or(AppError::NotFound(
            "no trick-play images: the source has no video",
        ))?
        .sheets();
    if n >= sheets {
        return Err(AppError::NotFound("no such sheet"));
    }
    let served = m.sheet(n).await?;
    Ok(served.respond(&headers, "image/jpeg"))
}

/// `GET /v1/{token}/{rendition}/index.m3u8`
pub async fn media_playlist(
    State(st): State<AppState>,
    Path((token, rid)): Path<(String, String)>,
) -> Result<Response> {
    let m = media_of(&st, &token).await?;
    let r = m
        .rendition(&rid)
        .ok_or(AppError::NotFound("no such rendition"))?;
    Ok(text(m.media_playlist(r).await?, M3U8, PLAYLIST_CACHE))
}

fn mp4_type(kind: RenditionKind) -> &'static str {
    match kind {
        RenditionKind::Audio => "audio/mp4",
        _ => "video/mp4",
    }
}

/// `GET /v1/{token}/{rendition}/init.mp4`
pub async fn init(
    State(st): State<AppState>,
    Path((token, rid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    let m = media_of(&st, &token).await?;
    let r = m
        .rendition(&rid)
        .ok_or(AppError::NotFound("no such rendition"))?;
    if r.kind == RenditionKind::Subtitle {
        return Err(AppError::NotFound(
            "subtitle renditions have no init segment",
        ));
    }
    let served = m.init(r).await?;
    Ok(served.respond(&headers, mp4_type(r.kind)))
}

/// `GET /v1/{token}/{rendition}/{n}.m4s` and `…/{n}.vtt`
pub async fn segment(
    State(st): State<AppState>,
    Path((token, rid, file)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    let m = media_of(&st, &token).await?;
    let (n, ext) = match file.rsplit_once('.') {
        Some((n, ext @ ("m4s" | "vtt"))) => (parse_index(n), ext),
        _ => return Err(AppError::NotFound("no such file")),
    };
    let n = n.ok_or(AppError::NotFound("no such segment"))?;
    let r = m
        .rendition(&rid)
        .ok_or(AppError::NotFound("no such rendition"))?;
    if let Some(count) = m.segment_count(r) {
        if n as usize >= count {
            return Err(AppError::NotFound("segment beyond the plan"));
        }
    }
    match (ext, r.kind) {
        ("m4s", RenditionKind::Video | RenditionKind::Audio) => {
            let served = m.segment(r, n).await?;
            Ok(served.respond(&headers, mp4_type(r.kind)))
        }
        ("vtt", RenditionKind::Subtitle) => {
            let served = m.subtitle(r, n).await?;
            Ok(served.respond(&headers, VTT))
        }
        _ => Err(AppError::NotFound("no such segment for this rendition")),
    }
}

/// Query of `stream.mp4`.
#[derive(Debug, Deserialize)]
pub struct StreamQuery {
    /// Start in seconds (default 0).
    pub start: Option<f64>,
}

/// `GET /v1/{token}/stream.mp4?start=S`
pub async fn stream(
    State(st): State<AppState>,
    Path(token): Path<String>,
    Query(q): Query<StreamQuery>,
) -> Result<Response> {
    let start = q.start.unwrap_or(0.0);
    if !start.is_finite() || start < 0.0 {
        return Err(AppError::BadRequest(
            "start must be a number of seconds >= 0",
        ));
    }
    let m = media_of(&st, &token).await?;
    if start >= m.plan().total_secs() {
        return Err(AppError::NotFound("start is beyond the end"));
    }
    let body = m.stream(start).await?;
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// Query of thumbnails.
#[derive(Debug, Deserialize)]
pub struct ThumbQuery {
    /// Width in pixels (default 320, 16..=1920).
    pub w: Option<u32>,
}

/// Default thumbnail width.
pub const THUMB_WIDTH: u32 = 320;

/// `GET /v1/{token}/thumb/{ms}.jpg?w=320`
pub async fn thumb(
    State(st): State<AppState>,
    Path((token, file)): Path<(String, String)>,
    Query(q): Query<ThumbQuery>,
    headers: HeaderMap,
) -> Result<Response> {
    let ms = file
        .strip_suffix(".jpg")
        .and_then(|s| {
            (!s.is_empty() && s.len() <= 12 && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u64>().ok())
                .flatten()
        })
        .ok_or(AppError::NotFound("no such thumbnail"))?;
    let w = q.w.unwrap_or(THUMB_WIDTH);
    if !(16..=1920).contains(&w) {
        return Err(AppError::BadRequest("w must be between 16 and 1920"));
    }
    let m = media_of(&st, &token).await?;
    if ms as f64 / 1000.0 >= m.plan().total_secs() {
        return Err(AppError::NotFound("time is beyond the end"));
    }
    let served = m.thumbnail(ms, w).await?;
    Ok(served.respond(&headers, "image/jpeg"))
}

fn probe_text(m: &Media) -> String {
    use std::fmt::Write as _;
    let ix = m.index();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "container  {}  ({} bytes)",
        ix.container.name(),
        ix.file_size
    );
    let _ = writeln!(
        s,
        "duration   {:.3} s (start {:.3} s)",
        ix.duration_secs(),
        ix.secs(ix.start)
    );
    for t in &ix.tracks {
        let mut line = format!("track {:<5} {:?} {}", t.id, t.kind, t.codec.name());
        if let Some(v) = &t.video {
            let _ = write!(line, " {}x{}", v.width, v.height);
            if let Some(f) = v.frame_rate {
                let _ = write!(line, " {:.3} fps", f.as_f64());
            }
            if let Some(b) = v.bit_depth {
                let _ = write!(line, " {b}-bit");
            }
        }
        if let Some(a) = &t.audio {
            let _ = write!(line, " {} Hz {} ch", a.sample_rate, a.channels);
        }
        if let Some(l) = &t.language {
            let _ = write!(line, " [{l}]");
        }
        if t.default {
            line.push_str(" default");
        }
        let _ = writeln!(s, "{line}");
    }
    let _ = writeln!(s, "keyframes  {}", ix.keyframes.len());
    let _ = writeln!(
        s,
        "probe      {} requests, {} bytes",
        m.probe_cost.requests, m.probe_cost.bytes
    );
    for r in m.renditions() {
        let _ = writeln!(
            s,
            "rendition  {:<10} {:?} {} \"{}\"{}",
            r.id,
            r.kind,
            r.codecs,
            r.name,
            if r.default { " default" } else { "" }
        );
    }
    s
}

/// `GET /v1/{token}/probe.txt`
pub async fn probe_txt(State(st): State<AppState>, Path(token): Path<String>) -> Result<Response> {
    let m = media_of(&st, &token).await?;
    Ok(text(
        probe_text(&m),
        "text/plain; charset=utf-8",
        "no-cache",
    ))
}

/// `GET /v1/{token}/probe.json`
pub async fn probe_json(State(st): State<AppState>, Path(token): Path<String>) -> Result<Response> {
    let m = media_of(&st, &token).await?;
    let v = serde_json::json!({
        "index": m.index(),
        "probe_cost": m.probe_cost,
        "renditions": m.renditions(),
    });
    Ok(text(v.to_string(), "application/json", "no-cache"))
}

/// `GET /v1/{token}/plan.txt`
pub async fn plan_txt(State(st): State<AppState>, Path(token): Path<String>) -> Result<Response> {
    let m = media_of(&st, &token).await?;
    let mut s = m.plan().table();
    for r in m.renditions() {
        if let Some(a) = m.pipeline.audio_plan(&r.id) {
            s.push_str(&format!(
                "\naudio {}: {} Hz, origin {}, {} segments, total {:.6} s\n",
                r.id,
                a.rate,
                a.origin,
                a.segments.len(),
                a.total_secs()
            ));
            for seg in &a.segments {
                s.push_str(&format!(
                    "{:5} first_frame {:8} frames {:5} extinf {:.6}\n",
                    seg.index, seg.first_frame, seg.frames, seg.duration
                ));
            }
        }
    }
    Ok(text(s, "text/plain; charset=utf-8", "no-cache"))
}

/// `GET /v1/{token}/plan.json`
pub async fn plan_json(State(st): State<AppState>, Path(token): Path<String>) -> Result<Response> {
    let m = media_of(&st, &token).await?;
    let audio: serde_json::Map<String, serde_json::Value> = m
        .renditions()
        .iter()
        .filter_map(|r| {
            let a = m.pipeline.audio_plan(&r.id)?;
            Some((r.id.clone(), serde_json::to_value(a).ok()?))
        })
        .collect();
    let v = serde_json::json!({
        "plan": m.plan(),
        "audio": audio,
    });
    Ok(text(v.to_string(), "application/json", "no-cache"))
}
