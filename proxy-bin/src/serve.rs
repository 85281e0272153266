//! `hlsgate serve`: settings from flags, `HLSGATE_*` environment variables and a TOML file (in
//! that order of precedence, then the defaults), then the HTTP server until SIGINT/SIGTERM.
//! `docs/config.md` lists every key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Args;
use serde::Deserialize;

/// Default listen address (loopback: open mode is allowed there).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Flags of `serve`; each also reads `HLSGATE_<NAME>` from the environment.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "HLSGATE_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Folder local sources are served from (required, here or in the config file).
    #[arg(long, env = "HLSGATE_MEDIA_ROOT")]
    pub media_root: Option<PathBuf>,
    /// Token secret (at least 16 bytes). Without it: open mode, loopback only.
    #[arg(long, env = "HLSGATE_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// API key required by POST /api/v1/streams (Bearer or X-API-Key).
    #[arg(long, env = "HLSGATE_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// TOML config file.
    #[arg(long, env = "HLSGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Internal networks upstream URLs may reach (CIDR, repeatable or comma-separated).
    #[arg(
        long = "allow-private-upstream",
        env = "HLSGATE_ALLOW_PRIVATE_UPSTREAM",
        value_delimiter = ',',
        value_name = "CIDR"
    )]
    pub allow_private_upstream: Vec<String>,
    /// Allowed CORS origins (repeatable or comma-separated; default `*`).
    #[arg(
        long = "cors-origin",
        env = "HLSGATE_CORS_ORIGIN",
        value_delimiter = ',',
        value_name = "ORIGIN"
    )]
    pub cors_origin: Vec<String>,
    /// Base of the absolute URLs the API returns (e.g. https://media.example).
    #[arg(long, env = "HLSGATE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Token lifetime when a request names none (e.g. 6h).
    #[arg(long, env = "HLSGATE_DEFAULT_TTL")]
    pub default_ttl: Option<String>,
    /// Longest token lifetime granted (e.g. 7d).
    #[arg(long, env = "HLSGATE_MAX_TTL")]
    pub max_ttl: Option<String>,
    /// Shared cache: a Redis URL (redis://127.0.0.1:6379). Memory stays an L1 in front.
    #[arg(long, env = "HLSGATE_REDIS")]
    pub redis: Option<String>,
    /// Memory cache budget in MiB [default: 512].
    #[arg(long, env = "HLSGATE_CACHE_MIB")]
    pub cache_mib: Option<u64>,
    /// How long made segments are kept (e.g. 24h) [default: 24h].
    #[arg(long, env = "HLSGATE_SEGMENT_TTL")]
    pub segment_ttl: Option<String>,
    /// Concurrent video encodes and thumbnails [default: number of cores].
    #[arg(long, env = "HLSGATE_TRANSCODE_JOBS")]
    pub transcode_jobs: Option<usize>,
    /// Longest wait for a job slot before 503 Retry-After (e.g. 10s) [default: 10s].
    #[arg(long, env = "HLSGATE_JOB_WAIT")]
    pub job_wait: Option<String>,
    /// Segments made ahead after each segment request [default: 2].
    #[arg(long, env = "HLSGATE_PREFETCH")]
    pub prefetch: Option<u32>,
    /// How often an upstream source's identity is checked again (e.g. 60s), shared through
    /// Redis [default: 60s].
    #[arg(long, env = "HLSGATE_REVALIDATE")]
    pub revalidate: Option<String>,
    /// Longest time a client may take to send a request's headers (slowloris defence; also
    /// how long an idle kept-alive HTTP/1.1 connection waits for its next request) [default: 10s].
    #[arg(long, env = "HLSGATE_HEADER_TIMEOUT")]
    pub header_timeout: Option<String>,
    /// A client connection with no bytes read or written for this long is closed [default: 120s].
    #[arg(long, env = "HLSGATE_IDLE_TIMEOUT")]
    pub idle_timeout: Option<String>,
    /// Most client connections open at once [default: 4096].
    #[arg(long, env = "HLSGATE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Longest an upstream read may take, all retries and backoff included; then 504
    /// [default: 15s].
    #[arg(long, env = "HLSGATE_UPSTREAM_DEADLINE")]
    pub upstream_deadline: Option<String>,
}

/// The config file (`--config`); every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Listen address.
    pub listen: Option<SocketAddr>,
    /// Media root (relative paths are relative to the config file's folder).
    pub media_root: Option<PathBuf>,
    /// Token secret.
    pub secret: Option<String>,
    /// API key.
    pub api_key: Option<String>,
    /// SSRF allow-list.
    #[serde(default)]
    pub allow_private_upstream: Vec<String>,
    /// CORS origins.
    #[serde(default)]
    pub cors_origins: Vec<String>,
    /// Public base URL.
    pub public_url: Option<String>,
    /// Default token lifetime.
    pub default_ttl: Option<String>,
    /// Longest token lifetime.
    pub max_ttl: Option<String>,
    /// MiB of probed sources kept in memory (index, plan, sample tables).
    pub source_memo_mib: Option<u64>,
    /// How long an opened source is held in memory (its index stays cached).
    pub source_ttl: Option<String>,
    /// How often an upstream source's identity is checked again.
    pub revalidate: Option<String>,
    /// Target segment duration in seconds.
    pub target_segment_secs: Option<f64>,
    /// Offer an H.264 transcode of HEVC video.
    pub h264_for_hevc: Option<bool>,
    /// Height cap of transcodes.
    pub max_height: Option<u32>,
    /// Redis URL of the shared cache.
    pub redis: Option<String>,
    /// Memory cache budget in MiB.
    pub cache_mib: Option<u64>,
    /// How long made segments are kept.
    pub segment_ttl: Option<String>,
    /// Concurrent transcode jobs.
    pub transcode_jobs: Option<usize>,
    /// Longest wait for a job slot.
    pub job_wait: Option<String>,
    /// Segments made ahead.
    pub prefetch: Option<u32>,
    /// Header-read timeout of client connections.
    pub header_timeout: Option<String>,
    /// Idle timeout of client connections.
    pub idle_timeout: Option<String>,
    /// Most client connections open at once.
    pub max_connections: Option<usize>,
    /// Longest upstream read, retries included.
    pub upstream_deadline: Option<String>,
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let mut cfg: FileConfig =
        toml::from_str(&text).with_context(|| format!("bad config file {}", path.display()))?;
    if let (Some(root), Some(dir)) = (&cfg.media_root, path.parent()) {
        if root.is_relative() {
            cfg.media_root = Some(dir.join(root));
        }
    }
    Ok(cfg)
}

fn duration(what: &str, s: &str) -> anyhow::Result<Duration> {
    humantime::parse_duration(s)
        .with_context(|| format!("{what}: {s:?} is not a duration (e.g. 6h)"))
}

/// Merges flags/env over the file over the defaults.
pub fn resolve(args: ServeArgs) -> anyhow::Result<(SocketAddr, server::ServerConfig)> {
    let file = match &args.config {
        Some(p) => read_file(p)?,
        None => FileConfig::default(),
    };
    let listen = match args.listen.or(file.listen) {
        Some(a) => a,
        None => DEFAULT_LISTEN.parse().context("default listen address")?,
    };
    let Some(media_root) = args.media_root.or(file.media_root) else {
        bail!("--media-root (or HLSGATE_MEDIA_ROOT, or media_root in the config file) is required");
    };
    let mut cfg = server::ServerConfig::new(media_root);
    cfg.secret = args.secret.or(file.secret).filter(|s| !s.is_empty());
    cfg.api_key = args.api_key.or(file.api_key).filter(|s| !s.is_empty());
    let allow = if args.allow_private_upstream.is_empty() {
        file.allow_private_upstream
    } else {
        args.allow_private_upstream
    };
    cfg.allow_private_upstream = allow
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.parse::<source::Cidr>())
        .collect::<Result<_, _>>()?;
    cfg.cors_origins = if args.cors_origin.is_empty() {
        file.cors_origins
    } else {
        args.cors_origin
    };
    cfg.public_url = args.public_url.or(file.public_url);
    if let Some(t) = args.default_ttl.or(file.default_ttl) {
        cfg.default_ttl = duration("default_ttl", &t)?;
    }
    if let Some(t) = args.max_ttl.or(file.max_ttl) {
        cfg.max_ttl = duration("max_ttl", &t)?;
    }
    if let Some(t) = file.source_ttl {
        cfg.source_ttl = duration("source_ttl", &t)?;
    }
    if let Some(t) = args.revalidate.or(file.revalidate) {
        cfg.revalidate = duration("revalidate", &t)?;
    }
    if let Some(n) = file.source_memo_mib {
        cfg.source_memo_bytes = n.max(1) << 20;
    }
    if let Some(s) = file.target_segment_secs {
        cfg.target_secs = s;
    }
    if let Some(b) = file.h264_for_hevc {
        cfg.renditions.h264_for_hevc = b;
    }
    if let Some(h) = file.max_height {
        cfg.renditions.max_height = h;
    }
    cfg.jobs.redis_url = args.redis.or(file.redis);
    if let Some(m) = args.cache_mib.or(file.cache_mib) {
        cfg.jobs.cache_bytes = m.max(1) << 20;
    }
    if let Some(t) = args.segment_ttl.or(file.segment_ttl) {
        cfg.jobs.ttl = duration("segment_ttl", &t)?;
    }
    if let Some(n) = args.transcode_jobs.or(file.transcode_jobs) {
        cfg.jobs.transcode_jobs = n.max(1);
    }
    if let Some(t) = args.job_wait.or(file.job_wait) {
        cfg.jobs.max_wait = duration("job_wait", &t)?;
    }
    if let Some(n) = args.prefetch.or(file.prefetch) {
        cfg.jobs.prefetch = n;
    }
    if let Some(t) = args.header_timeout.or(file.header_timeout) {
        cfg.conn.header_timeout = duration("header_timeout", &t)?;
    }
    if let Some(t) = args.idle_timeout.or(file.idle_timeout) {
        cfg.conn.idle_timeout = duration("idle_timeout", &t)?;
    }
    if let Some(n) = args.max_connections.or(file.max_connections) {
        cfg.conn.max_connections = n.max(1);
    }
    if let Some(t) = args.upstream_deadline.or(file.upstream_deadline) {
        cfg.http.read_deadline = duration("upstream_deadline", &t)?;
    }
    if let Err(e) = cfg.check(listen) {
        bail!("{e}");
    }
    Ok((listen, cfg))
}

/// Runs the server until SIGINT/SIGTERM.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let (listen, cfg) = resolve(args)?;
    let open = cfg.open_mode();
    let limits = cfg.conn;
    let state = server::AppState::connect(cfg, Vec::new()).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let local = listener.local_addr()?;
    tracing::info!(
        addr = %local,
        mode = if open { "open" } else { "signed" },
        "hlsgate listening"
    );
    // One line on stderr that scripts (and the tests) can wait for.
    eprintln!("hlsgate: listening on http://{local}");
    server::serve(
        listener,
        server::app(state),
        limits,
        server::shutdown_signal(),
    )
    .await?;
    tracing::info!("hlsgate stopped");
    Ok(())
}
