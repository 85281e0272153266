//! Server settings and the shared state every handler gets.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use plan::RenditionOptions;
use source::{
    AddressPolicy, ByteSource as _, Cidr, FileSource, HttpConfig, HttpSource, HttpUpstream,
    MediaRoot,
};

use crate::error::{AppError, Result};
use crate::jobs::{JobConfig, Jobs};
use crate::media::{FileCheck, Media, MediaStore};

/// Most subtitle files taken next to one video.
const MAX_SIDECARS: usize = 32;

/// A source opened for the Range passthrough ([`AppState::source`]).
pub struct RawSource {
    /// The media key (the memo key of its probed media).
    pub key: String,
    /// The bytes.
    pub source: Arc<dyn source::ByteSource>,
    /// `Content-Type` from the probe, when the source was probed already.
    pub probed_type: Option<&'static str>,
}
use crate::token::{self, Grant, SourceRef, TokenKeys};

/// Everything the server is configured with (the binary fills it from flags, env and file).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Local sources must be under this folder.
    pub media_root: PathBuf,
    /// Token secret. `None` = open mode (loopback only; local files; plain path references).
    pub secret: Option<String>,
    /// When set, `POST /api/v1/streams*` need `Authorization: Bearer <key>` or `X-API-Key`.
    pub api_key: Option<String>,
    /// Home mode ([`crate::session`]): the page, the library and the token API need a login
    /// with this password (or the API key); a non-loopback `listen` is allowed without a
    /// secret (a random one is made at start: tokens and logins then end with the process).
    pub password: Option<String>,
    /// Allowed CORS origins; empty or `*` = any origin.
    pub cors_origins: Vec<String>,
    /// Internal networks upstream URLs may reach anyway (the SSRF guard's allow-list).
    pub allow_private_upstream: Vec<Cidr>,
    /// Base of the absolute URLs the API returns (`https://media.example`); default: from the
    /// request's `Host` as `http://host`.
    pub public_url: Option<String>,
    /// Token lifetime when the request names none.
    pub default_ttl: Duration,
    /// Longest token lifetime granted.
    pub max_ttl: Duration,
    /// Bytes of probed sources kept in memory (index, plan, sample tables, `moov`), each
    /// weighed by what it really holds.
    pub source_memo_bytes: u64,
    /// How long a source is held in memory (index, plan, open connection) after it was opened.
    /// Its index stays in the cache, so reopening it does not probe again.
    pub source_ttl: Duration,
    /// How often an upstream source's identity (size, ETag, Last-Modified) is checked again:
    /// at most once per interval per source, shared by the instances of one Redis.
    pub revalidate: Duration,
    /// Target segment duration (seconds).
    pub target_secs: f64,
    /// Target of the leading segments where the first picture is encoded (seconds; 0: none;
    /// [`pipeline::MediaOptions::lead_secs`]).
    pub lead_secs: f64,
    /// Which renditions to offer.
    pub renditions: RenditionOptions,
    /// Upstream client settings (its address policy is replaced by the guard's).
    pub http: HttpConfig,
    /// Most sources in one batch request.
    pub max_batch: usize,
    /// Cache, pools, prefetch.
    pub jobs: JobConfig,
    /// x264 preset of transcoded video.
    pub x264_preset: String,
    /// Client connection limits (slow or idle clients cannot hold sockets forever).
    pub conn: crate::ConnLimits,
}

impl ServerConfig {
    /// Defaults for a media root.
    pub fn new(media_root: impl Into<PathBuf>) -> Self {
        ServerConfig {
            media_root: media_root.into(),
            secret: None,
            api_key: None,
            password: None,
            cors_origins: Vec::new(),
            allow_private_upstream: Vec::new(),
            public_url: None,
            default_ttl: Duration::from_secs(6 * 3600),
            max_ttl: Duration::from_secs(7 * 24 * 3600),
            source_memo_bytes: 128 << 20,
            source_ttl: Duration::from_secs(600),
            revalidate: Duration::from_secs(60),
            target_secs: 6.0,
            lead_secs: pipeline::MediaOptions::default().lead_secs,
            renditions: RenditionOptions::default(),
            http: HttpConfig::default(),
            max_batch: 100,
            jobs: JobConfig::default(),
            x264_preset: "veryfast".into(),
            conn: crate::ConnLimits::default(),
        }
    }

    /// Whether this configuration runs in open mode (no secret, no password).
    pub fn open_mode(&self) -> bool {
        self.secret.is_none() && self.password.is_none()
    }

    /// Refuses settings that are unsafe on `listen`: neither a secret nor a password on a
    /// non-loopback address, a secret or password that is too short.
    pub fn check(&self, listen: SocketAddr) -> std::result::Result<(), String> {
        if let Some(p) = &self.password {
            if p.chars().count() < crate::session::MIN_PASSWORD_LEN {
                return Err(format!(
                    "the password must be at least {} characters",
                    crate::session::MIN_PASSWORD_LEN
                ));
            }
        }
        match &self.secret {
            None if self.password.is_none() && !listen.ip().is_loopback() => Err(format!(
                "refusing to listen on {listen} without a secret or a password: open mode is \
                 for loopback only; for a home network set --password (the page asks for it), \
                 for a service --secret / HLSGATE_SECRET"
            )),
            Some(s) if s.len() < token::MIN_SECRET_LEN => Err(format!(
                "the secret must be at least {} bytes",
                token::MIN_SECRET_LEN
            )),
            _ => Ok(()),
        }
    }
}

/// A readiness probe (`GET /readyz`): FFmpeg usable, Redis reachable, …
pub trait ReadyCheck: Send + Sync {
    /// Short name shown in the readiness report.
    fn name(&self) -> &'static str;
    /// `Ok` when ready; the error text is shown in the report (no secrets).
    fn check(&self) -> futures_util::future::BoxFuture<'_, std::result::Result<(), String>>;
}

/// The media root is a readable folder.
struct MediaRootCheck(PathBuf);

impl ReadyCheck for MediaRootCheck {
    fn name(&self) -> &'static str {
        "media_root"
    }
    fn check(&self) -> futures_util::future::BoxFuture<'_, std::result::Result<(), String>> {
        Box::pin(async move {
            match tokio::fs::read_dir(&self.0).await {
                Ok(_) => Ok(()),
                Err(e) => Err(format!("not readable: {}", e.kind())),
            }
        })
    }
}

/// FFmpeg has the decoders and encoders the pipeline needs.
struct FfmpegCheck;

impl ReadyCheck for FfmpegCheck {
    fn name(&self) -> &'static str {
        "ffmpeg"
    }
    fn check(&self) -> futures_util::future::BoxFuture<'_, std::result::Result<(), String>> {
        Box::pin(async move {
            pipeline::av::check_ffmpeg()
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }
}

/// The shared cache answers (the server keeps serving from memory when it does not).
struct RedisCheck(cache::RedisCache);

impl ReadyCheck for RedisCheck {
    fn name(&self) -> &'static str {
        "redis"
    }
    fn check(&self) -> futures_util::future::BoxFuture<'_, std::result::Result<(), String>> {
        Box::pin(async move {
            if self.0.ping().await {
                Ok(())
            } else {
                Err("unreachable (serving from memory)".into())
            }
        })
    }
}

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The media root is missing or unreadable.
    #[error("media root: {0}")]
    MediaRoot(#[source] source::SourceError),
    /// The upstream client could not be built.
    #[error("upstream client: {0}")]
    Http(#[source] source::SourceError),
    /// A setting is invalid.
    #[error("{0}")]
    Config(String),
}

pub(crate) struct Inner {
    pub config: ServerConfig,
    pub keys: Option<TokenKeys>,
    pub sessions: Option<crate::session::Sessions>,
    pub redis: Option<cache::RedisCache>,
    /// Layouts of `download.mp4` by media key and tracks, weighed by their bytes.
    pub downloads: moka::future::Cache<String, Arc<pipeline::download::Layout>>,
    pub root: MediaRoot,
    pub upstream: HttpUpstream,
    pub store: MediaStore,
    pub ready: Vec<Arc<dyn ReadyCheck>>,
    pub jobs: Arc<Jobs>,
}

/// Most bytes of `download.mp4` layouts kept (heads and piece lists).
pub const DOWNLOAD_LAYOUT_BYTES: u64 = 64 << 20;

/// The state handlers share: cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("open_mode", &self.open_mode())
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State for `config`: canonicalises the media root, derives the token keys, builds the
    /// guarded upstream client.
    pub fn new(config: ServerConfig) -> std::result::Result<Self, StartError> {
        Self::with_checks(config, Vec::new())
    }

    /// Like [`AppState::with_checks`], with the shared cache of `config.jobs` (Redis when
    /// configured) and readiness checks for FFmpeg and Redis.
    pub async fn connect(
        config: ServerConfig,
        mut checks: Vec<Arc<dyn ReadyCheck>>,
    ) -> std::result::Result<Self, StartError> {
        let backends = build_backends(&config.jobs)
            .await
            .map_err(|e| StartError::Config(format!("cache: {e}")))?;
        checks.push(Arc::new(FfmpegCheck));
        if let Some(redis) = &backends.redis {
            checks.push(Arc::new(RedisCheck(redis.clone())));
        }
        let jobs = Arc::new(Jobs::new(
            config.jobs.clone(),
            backends.cache,
            backends.lease,
            backends.clock,
        ));
        Self::assemble(config, checks, jobs, backends.redis)
    }

    /// The `download.mp4` layout of `tracks` of `m`, made once (blocking pool) and kept while
    /// used (at most [`DOWNLOAD_LAYOUT_BYTES`] of them).
    pub async fn download_layout(
        &self,
        m: &Arc<crate::media::Media>,
        tracks: &[u64],
    ) -> Result<Arc<pipeline::download::Layout>> {
        let key = format!("{}|{tracks:?}", m.key);
        let m2 = Arc::clone(m);
        let tracks = tracks.to_vec();
        self.inner
            .downloads
            .try_get_with(
                key,
                async move { m2.build_layout(tracks).await.map(Arc::new) },
            )
            .await
            .map_err(|e: Arc<AppError>| e.replay())
    }

    /// The Redis tier, when one is configured.
    pub fn redis(&self) -> Option<&cache::RedisCache> {
        self.inner.redis.as_ref()
    }

    /// Like [`AppState::new`], with extra readiness checks (FFmpeg, Redis…).
    pub fn with_checks(
        config: ServerConfig,
        checks: Vec<Arc<dyn ReadyCheck>>,
    ) -> std::result::Result<Self, StartError> {
        let jobs = Arc::new(Jobs::memory(config.jobs.clone()));
        Self::assemble(config, checks, jobs, None)
    }

    fn assemble(
        config: ServerConfig,
        checks: Vec<Arc<dyn ReadyCheck>>,
        jobs: Arc<Jobs>,
        redis: Option<cache::RedisCache>,
    ) -> std::result::Result<Self, StartError> {
        let root = MediaRoot::new(&config.media_root).map_err(StartError::MediaRoot)?;
        if let Some(s) = &config.secret {
            if s.len() < token::MIN_SECRET_LEN {
                return Err(StartError::Config(format!(
                    "the secret must be at least {} bytes",
                    token::MIN_SECRET_LEN
                )));
            }
        }
        if let Some(p) = &config.password {
            if p.chars().count() < crate::session::MIN_PASSWORD_LEN {
                return Err(StartError::Config(format!(
                    "the password must be at least {} characters",
                    crate::session::MIN_PASSWORD_LEN
                )));
            }
        }
        // Home mode without a secret: a random one, for this process only.
        let secret: Option<Vec<u8>> = match (&config.secret, &config.password) {
            (Some(s), _) => Some(s.as_bytes().to_vec()),
            (None, Some(_)) => {
                let mut b = vec![0u8; 32];
                getrandom::getrandom(&mut b)
                    .map_err(|e| StartError::Config(format!("no random secret: {e}")))?;
                Some(b)
            }
            (None, None) => None,
        };
        let keys = secret.as_deref().map(TokenKeys::from_secret);
        let sessions = match (&secret, &config.password) {
            (Some(s), Some(p)) => Some(crate::session::Sessions::new(s, p)),
            _ => None,
        };
        let http = HttpConfig {
            address_policy: AddressPolicy::public_only(config.allow_private_upstream.clone()),
            ..config.http.clone()
        };
        let upstream = HttpUpstream::new(http).map_err(StartError::Http)?;
        let store = MediaStore::new(config.source_memo_bytes, config.source_ttl);
        let mut ready: Vec<Arc<dyn ReadyCheck>> =
            vec![Arc::new(MediaRootCheck(root.path().to_path_buf()))];
        ready.extend(checks);
        Ok(AppState {
            inner: Arc::new(Inner {
                config,
                keys,
                sessions,
                redis,
                downloads: moka::future::Cache::builder()
                    .max_capacity(DOWNLOAD_LAYOUT_BYTES)
                    .weigher(|_k: &String, l: &Arc<pipeline::download::Layout>| {
                        u32::try_from(l.heap_bytes()).unwrap_or(u32::MAX)
                    })
                    .time_to_idle(Duration::from_secs(600))
                    .build(),
                root,
                upstream,
                store,
                ready,
                jobs,
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// Open mode: no secret; plain file references; local files only.
    pub fn open_mode(&self) -> bool {
        self.inner.keys.is_none()
    }

    /// Home mode's sessions, when a password is configured.
    pub fn sessions(&self) -> Option<&crate::session::Sessions> {
        self.inner.sessions.as_ref()
    }

    /// The gate of the page, the library and the token API: the API key when one is
    /// configured (`Authorization: Bearer <key>` or `X-API-Key`, digests compared in constant
    /// time) or, in home mode, a session cookie. With neither configured, everyone passes.
    pub fn authorize(&self, headers: &axum::http::HeaderMap) -> Result<()> {
        let key = self.config().api_key.as_deref();
        let sessions = self.sessions();
        if key.is_none() && sessions.is_none() {
            return Ok(());
        }
        if let Some(k) = key {
            if api_key_matches(k, headers) {
                return Ok(());
            }
        }
        if let Some(s) = sessions {
            if s.logged_in(headers, token::now_unix()) {
                return Ok(());
            }
            return Err(AppError::Unauthorized("log in first (or send the API key)"));
        }
        Err(AppError::Unauthorized("missing or wrong API key"))
    }

    /// The media root.
    pub fn media_root(&self) -> &MediaRoot {
        &self.inner.root
    }

    /// The memo of probed sources.
    pub fn store(&self) -> &MediaStore {
        &self.inner.store
    }

    /// Seals a grant (signed mode), or makes an open-mode reference (open mode, files only).
    pub fn issue(&self, grant: &Grant) -> Result<String> {
        match &self.inner.keys {
            Some(k) => k.seal(grant),
            None => match grant.source_ref()? {
                SourceRef::File(rel) if grant.headers.is_empty() => Ok(token::open_token(rel)),
                SourceRef::File(_) => Err(AppError::BadRequest("headers apply to URLs only")),
                SourceRef::Url(_) => Err(AppError::Forbidden(
                    "open mode serves local files only; configure a secret for URLs",
                )),
            },
        }
    }

    /// The grant a token carries: open-mode references only without a secret, sealed tokens
    /// only with one.
    pub fn verify(&self, token: &str) -> Result<Grant> {
        match &self.inner.keys {
            Some(k) => k.open(token, token::now_unix()),
            None => match token::parse_open_token(token) {
                Some(Ok(rel)) => Ok(Grant {
                    source: format!("file:{rel}"),
                    headers: Vec::new(),
                    expires: None,
                }),
                Some(Err(e)) => Err(e),
                None => Err(AppError::BadToken),
            },
        }
    }

    /// The probed media of a grant, from the memo or opened and probed now.
    pub async fn media(&self, grant: &Grant) -> Result<Arc<Media>> {
        let key = grant.media_key();
        let store = &self.inner.store;
        let m = store.get_or_open(&key, || self.open(grant, &key)).await?;
        // A local file that changed since it was probed is probed again; an upstream source
        // is checked again once per revalidation interval.
        let changed = if m.is_upstream() {
            self.upstream_changed(grant, &key, &m).await?
        } else if file_unchanged(&m).await {
            None
        } else {
            Some(None)
        };
        match changed {
            None => Ok(m),
            Some(reopened) => {
                store.evict(&key).await;
                let reopened = std::sync::Mutex::new(reopened);
                store
                    .get_or_open(&key, || async {
                        let src = reopened.lock().unwrap_or_else(|p| p.into_inner()).take();
                        match src {
                            Some(src) => self.build(&key, Arc::new(src)).await,
                            None => self.open(grant, &key).await,
                        }
                    })
                    .await
            }
        }
    }

    /// Whether the upstream file of `m` changed: `None` = still the same (or not checked: the
    /// interval has not passed, or the upstream could not be asked — the cache keeps serving),
    /// `Some(source)` = changed, with the source opened on the new file when this call asked
    /// the upstream.
    async fn upstream_changed(
        &self,
        grant: &Grant,
        key: &str,
        m: &Media,
    ) -> Result<Option<Option<HttpSource>>> {
        let every = self.inner.config.revalidate;
        // While one request asks the upstream, the others go on with what is known.
        let Ok(mut checked) = m.checked.try_lock() else {
            return Ok(None);
        };
        if checked.elapsed() < every {
            return Ok(None);
        }
        let jobs = &self.inner.jobs;
        let current = m.source.identity();
        if let Some(known) = jobs.known_identity(key).await {
            if known == *current {
                *checked = std::time::Instant::now();
                return Ok(None);
            }
            return Ok(Some(None));
        }
        let SourceRef::Url(url) = grant.source_ref()? else {
            return Ok(None);
        };
        match HttpSource::open(&self.inner.upstream, url, &grant.headers).await {
            Ok(src) => {
                jobs.remember_identity(key, src.identity(), every).await;
                *checked = std::time::Instant::now();
                if src.identity() == current {
                    Ok(None)
                } else {
                    tracing::info!("upstream source changed; opening it again");
                    Ok(Some(Some(src)))
                }
            }
            Err(e) => {
                // Keep serving what is cached; ask again after the interval.
                tracing::warn!(error = %e, "upstream revalidation failed; serving the cached index");
                *checked = std::time::Instant::now();
                Ok(None)
            }
        }
    }

    /// A [`Media`] for an opened source.
    async fn build(&self, key: &str, src: Arc<dyn source::ByteSource>) -> Result<Media> {
        self.build_with(key, src, Vec::new()).await
    }

    async fn build_with(
        &self,
        key: &str,
        src: Arc<dyn source::ByteSource>,
        sidecars: Vec<pipeline::Sidecar>,
    ) -> Result<Media> {
        Media::build(
            key.to_string(),
            src,
            self.media_options(),
            Arc::clone(&self.inner.jobs),
            sidecars,
        )
        .await
    }

    async fn open(&self, grant: &Grant, key: &str) -> Result<Media> {
        let (src, file_check) = self.open_source(grant, key).await?;
        let sidecars = match grant.source_ref()? {
            SourceRef::File(rel) => self.sidecars(rel).await,
            SourceRef::Url(_) => Vec::new(),
        };
        let mut m = self.build_with(key, src, sidecars).await?;
        m.file_check = file_check;
        Ok(m)
    }

    /// The subtitle files next to the local file `rel` (`film.srt`, `film.en.srt`, `film.fr.ass`
    /// beside `film.mkv`), each resolved inside the media root, bounded in size and parsed; one
    /// that cannot be read or parsed is skipped (with a warning), never an error of the video.
    async fn sidecars(&self, rel: &str) -> Vec<pipeline::Sidecar> {
        let (dir, video) = rel.rsplit_once('/').unwrap_or(("", rel));
        let Ok(folder) = self
            .inner
            .root
            .resolve(if dir.is_empty() { "." } else { dir })
        else {
            return Vec::new();
        };
        let video = video.to_string();
        let root = self.inner.root.clone();
        let dir = dir.to_string();
        tokio::task::spawn_blocking(move || {
            let Ok(entries) = std::fs::read_dir(&folder) else {
                return Vec::new();
            };
            let mut names: Vec<String> = entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| pipeline::sidecar::belongs_to(&video, n))
                .collect();
            names.sort();
            names.truncate(MAX_SIDECARS);
            let mut out = Vec::new();
            for name in names {
                let rel = if dir.is_empty() {
                    name.clone()
                } else {
                    format!("{dir}/{name}")
                };
                let read = root.resolve(&rel).map_err(|e| e.to_string()).and_then(|p| {
                    let len = std::fs::metadata(&p).map_err(|e| e.to_string())?.len();
                    if len > pipeline::sidecar::MAX_SIDECAR_BYTES {
                        return Err(format!("{len} bytes"));
                    }
                    std::fs::read(&p).map_err(|e| e.to_string())
                });
                match read.and_then(|b| {
                    pipeline::Sidecar::parse(&name, &video, &b).map_err(|e| e.to_string())
                }) {
                    Ok(sc) => out.push(sc),
                    Err(e) => tracing::warn!(file = %name, error = %e, "subtitle file skipped"),
                }
            }
            out
        })
        .await
        .unwrap_or_default()
    }

    /// Opens the source `grant` names, without probing it: a file under the media root (with
    /// what [`Media::file_check`] compares later), or an upstream URL (identity from the cache
    /// when another request or instance checked it within the revalidation interval).
    async fn open_source(
        &self,
        grant: &Grant,
        key: &str,
    ) -> Result<(Arc<dyn source::ByteSource>, Option<FileCheck>)> {
        match grant.source_ref()? {
            SourceRef::File(rel) => {
                let src = FileSource::open(&self.inner.root, rel).await?;
                let path = src.path().to_path_buf();
                let meta = tokio::fs::metadata(&path)
                    .await
                    .map_err(AppError::internal)?;
                Ok((
                    Arc::new(src),
                    Some((path, meta.len(), meta.modified().ok())),
                ))
            }
            SourceRef::Url(url) => {
                if self.open_mode() {
                    return Err(AppError::Forbidden("open mode serves local files only"));
                }
                // An identity checked within the interval (here or by another instance) is
                // trusted without asking the upstream; every read still verifies it.
                let jobs = &self.inner.jobs;
                let known = match jobs.known_identity(key).await {
                    Some(id) => {
                        HttpSource::known(&self.inner.upstream, url, &grant.headers, id).ok()
                    }
                    None => None,
                };
                let src = match known {
                    Some(src) => src,
                    None => {
                        let src =
                            HttpSource::open(&self.inner.upstream, url, &grant.headers).await?;
                        let every = self.inner.config.revalidate;
                        jobs.remember_identity(key, src.identity(), every).await;
                        src
                    }
                };
                Ok((Arc::new(src), None))
            }
        }
    }

    /// The bytes of what `grant` names, for the Range passthrough: the probed media's source
    /// (revalidated as for every request) with its `Content-Type` when it is open already, else
    /// the source opened without a probe — any file can be passed through, media or not.
    pub async fn source(&self, grant: &Grant) -> Result<RawSource> {
        let key = grant.media_key();
        if self.inner.store.contains(&key) {
            let m = self.media(grant).await?;
            return Ok(RawSource {
                key,
                source: Arc::clone(&m.source),
                probed_type: Some(crate::semantics::content_type(m.index())),
            });
        }
        let (source, _) = self.open_source(grant, &key).await?;
        Ok(RawSource {
            key,
            source,
            probed_type: None,
        })
    }

    /// What shapes the outputs of every source.
    pub fn media_options(&self) -> pipeline::MediaOptions {
        let c = &self.inner.config;
        pipeline::MediaOptions {
            target_secs: c.target_secs,
            lead_secs: c.lead_secs,
            renditions: c.renditions,
            x264_preset: c.x264_preset.clone(),
            ..pipeline::MediaOptions::default()
        }
    }

    /// The job runner.
    pub fn jobs(&self) -> &Arc<Jobs> {
        &self.inner.jobs
    }

    /// Runs the readiness checks: (name, result) each.
    pub async fn readiness(&self) -> Vec<(&'static str, std::result::Result<(), String>)> {
        let mut out = Vec::new();
        for c in &self.inner.ready {
            out.push((c.name(), c.check().await));
        }
        out
    }
}

/// The one place where the concrete cache backends are chosen: a memory cache, with Redis
/// (values and generation leases) behind it when configured. An unreachable Redis at start is
/// not fatal: the cache works from memory and reconnects by itself.
pub async fn build_backends(
    cfg: &JobConfig,
) -> std::result::Result<cache::Backends, cache::CacheError> {
    cache::Backends::connect(
        cfg.cache_bytes,
        cfg.redis_url.as_deref().map(cache::RedisConfig::new),
    )
    .await
}

async fn file_unchanged(m: &Media) -> bool {
    let Some((path, len, mtime)) = &m.file_check else {
        return true;
    };
    match tokio::fs::metadata(path).await {
        Ok(meta) => meta.len() == *len && meta.modified().ok() == *mtime,
        Err(_) => false,
    }
}

/// Whether the request carries `expected` as `Authorization: Bearer <key>` or `X-API-Key`.
fn api_key_matches(expected: &str, headers: &axum::http::HeaderMap) -> bool {
    use axum::http::header;
    use sha2::{Digest as _, Sha256};
    use subtle::ConstantTimeEq as _;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .or_else(|| {
            headers
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        });
    let Some(given) = given else {
        return false;
    };
    let a = Sha256::digest(given.as_bytes());
    let b = Sha256::digest(expected.as_bytes());
    bool::from(a.as_slice().ct_eq(b.as_slice()))
}
