//! `hlsgate serve`: one layered configuration, then the HTTP server until SIGINT/SIGTERM.
//!
//! Settings are layered with figment, each layer over the one before: the defaults
//! ([`Settings::defaults`], taken from [`server::ServerConfig::new`]), the TOML file
//! (`--config` / `HLSGATE_CONFIG`), the `HLSGATE_*` environment variables ([`EnvLayer`], the
//! only place the environment is read), the command-line flags ([`ServeArgs`], parsed by clap
//! without `env` attributes). The result is one [`Settings`], turned into a
//! [`server::ServerConfig`] by [`Settings::into_config`]. `docs/config.md` lists every key.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Args;
use figment::providers::{Env, Format as _, Serialized, Toml, Yaml};
use figment::value::magic::RelativePathBuf;
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::{Deserialize, Serialize};

/// Default listen address (loopback: open mode is allowed there).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Prefix of the environment variables read (`HLSGATE_LISTEN`, …).
const ENV_PREFIX: &str = "HLSGATE_";

/// Environment variable naming the config file (read with the others, before the file).
const CONFIG_ENV: &str = "config";

/// Flags of `serve`. Each also has an `HLSGATE_<NAME>` environment variable, read by
/// [`EnvLayer`] (not by clap). Serialized as the top layer: unset flags are left out.
#[derive(Debug, Args, Serialize)]
pub struct ServeArgs {
    /// Address to listen on [env: HLSGATE_LISTEN] [default: 127.0.0.1:8080].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// Folder local sources are served from (required, here, in the environment or in the
    /// config file) [env: HLSGATE_MEDIA_ROOT].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_root: Option<PathBuf>,
    /// Token secret (at least 16 bytes). Without it: open mode, loopback only
    /// [env: HLSGATE_SECRET].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// API key required by POST /api/v1/streams (Bearer or X-API-Key) [env: HLSGATE_API_KEY].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// Home mode: the page, the library and the token API need a login with this password
    /// (at least 8 characters); allows a LAN address without a secret [env: HLSGATE_PASSWORD].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Config file, TOML or YAML (`.yaml`/`.yml`), the same keys [env: HLSGATE_CONFIG].
    #[arg(long)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Internal networks upstream URLs may reach (CIDR, repeatable or comma-separated)
    /// [env: HLSGATE_ALLOW_PRIVATE_UPSTREAM].
    #[arg(
        long = "allow-private-upstream",
        value_delimiter = ',',
        value_name = "CIDR"
    )]
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allow_private_upstream: Vec<String>,
    /// Allowed CORS origins (repeatable or comma-separated; default `*`)
    /// [env: HLSGATE_CORS_ORIGIN].
    #[arg(long = "cors-origin", value_delimiter = ',', value_name = "ORIGIN")]
    #[serde(rename = "cors_origins", skip_serializing_if = "Vec::is_empty")]
    pub cors_origin: Vec<String>,
    /// Base of the absolute URLs the API returns (e.g. https://media.example)
    /// [env: HLSGATE_PUBLIC_URL].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Token lifetime when a request names none (e.g. 6h) [env: HLSGATE_DEFAULT_TTL].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_ttl: Option<String>,
    /// Longest token lifetime granted (e.g. 7d) [env: HLSGATE_MAX_TTL].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_ttl: Option<String>,
    /// Shared cache: a Redis URL (redis://127.0.0.1:6379). Memory stays an L1 in front
    /// [env: HLSGATE_REDIS].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<String>,
    /// Memory cache budget in MiB [env: HLSGATE_CACHE_MIB] [default: 512].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_mib: Option<u64>,
    /// How long made segments are kept (e.g. 24h) [env: HLSGATE_SEGMENT_TTL] [default: 24h].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment_ttl: Option<String>,
    /// Concurrent video encodes and thumbnails [env: HLSGATE_TRANSCODE_JOBS]
    /// [default: number of cores].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transcode_jobs: Option<usize>,
    /// Longest wait for a job slot before 503 Retry-After (e.g. 10s) [env: HLSGATE_JOB_WAIT]
    /// [default: 10s].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_wait: Option<String>,
    /// Segments made ahead after each segment request [env: HLSGATE_PREFETCH] [default: 2].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefetch: Option<u32>,
    /// How often an upstream source's identity is checked again (e.g. 60s), shared through
    /// Redis [env: HLSGATE_REVALIDATE] [default: 60s].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revalidate: Option<String>,
    /// Longest time a client may take to send a request's headers (slowloris defence; also
    /// how long an idle kept-alive HTTP/1.1 connection waits for its next request)
    /// [env: HLSGATE_HEADER_TIMEOUT] [default: 10s].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header_timeout: Option<String>,
    /// A client connection with no bytes read or written for this long is closed
    /// [env: HLSGATE_IDLE_TIMEOUT] [default: 120s].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<String>,
    /// Most client connections open at once [env: HLSGATE_MAX_CONNECTIONS] [default: 4096].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    /// Longest an upstream read may take, all retries and backoff included; then 504
    /// [env: HLSGATE_UPSTREAM_DEADLINE] [default: 15s].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_deadline: Option<String>,
}

/// Every `serve` setting, after layering (see the module doc). The file keys are these field
/// names; `docs/config.md` has the table of flags, variables and keys.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address to listen on (`:0` picks a free port).
    pub listen: SocketAddr,
    /// Folder local sources must be under (required). In the file, a relative path is
    /// relative to the file's folder; from a flag or the environment, to the working folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_root: Option<RelativePathBuf>,
    /// Token secret, at least 16 bytes; none (or empty) = open mode, loopback only.
    #[serde(
        default,
        deserialize_with = "secret",
        skip_serializing_if = "Option::is_none"
    )]
    pub secret: Option<String>,
    /// API key required by `POST /api/v1/streams*`; none (or empty) = no key needed.
    #[serde(
        default,
        deserialize_with = "secret",
        skip_serializing_if = "Option::is_none"
    )]
    pub api_key: Option<String>,
    /// Home mode's password (the page asks for it); none (or empty) = no login.
    #[serde(
        default,
        deserialize_with = "secret",
        skip_serializing_if = "Option::is_none"
    )]
    pub password: Option<String>,
    /// Internal networks (CIDR) upstream URLs may reach anyway; empty entries are skipped.
    pub allow_private_upstream: Vec<String>,
    /// Allowed CORS origins; empty = `*`.
    pub cors_origins: Vec<String>,
    /// Base of the absolute URLs the API returns; none = `http://` + the request's `Host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// Token lifetime when a request names none.
    #[serde(with = "human")]
    pub default_ttl: Duration,
    /// Longest token lifetime granted.
    #[serde(with = "human")]
    pub max_ttl: Duration,
    /// MiB of probed sources (index, plan, sample tables) kept in memory (at least 1).
    pub source_memo_mib: u64,
    /// How long an opened source is held in memory (its index stays cached).
    #[serde(with = "human")]
    pub source_ttl: Duration,
    /// How often an upstream source's identity is checked again.
    #[serde(with = "human")]
    pub revalidate: Duration,
    /// Target segment duration, seconds.
    pub target_segment_secs: f64,
    /// Target of the first two segments where the first picture is encoded, seconds (0: none).
    pub lead_segment_secs: f64,
    /// Also offer an H.264 transcode of HEVC video.
    pub h264_for_hevc: bool,
    /// Height cap of transcoded video.
    pub max_height: u32,
    /// Offer the quality ladder (H.264 rungs below the top video rendition).
    pub ladder: bool,
    /// Redis URL of the shared cache; none = memory only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<String>,
    /// Memory cache budget for made outputs, MiB (at least 1).
    pub cache_mib: u64,
    /// How long made outputs are kept.
    #[serde(with = "human")]
    pub segment_ttl: Duration,
    /// Concurrent video encodes and thumbnails (at least 1).
    pub transcode_jobs: usize,
    /// Longest wait for a job slot before 503 + `Retry-After`.
    #[serde(with = "human")]
    pub job_wait: Duration,
    /// Segments made ahead after each segment request.
    pub prefetch: u32,
    /// Longest a client may take to send a request's headers (and to start its next request
    /// on a kept-alive connection).
    #[serde(with = "human")]
    pub header_timeout: Duration,
    /// A client connection with no byte read or written for this long is closed.
    #[serde(with = "human")]
    pub idle_timeout: Duration,
    /// Client connections open at once (at least 1).
    pub max_connections: usize,
    /// Longest one upstream read may take, retries and backoff included.
    #[serde(with = "human")]
    pub upstream_deadline: Duration,
}

impl Settings {
    /// The bottom layer: the defaults of [`server::ServerConfig::new`], no media root.
    pub fn defaults() -> anyhow::Result<Settings> {
        let d = server::ServerConfig::new(PathBuf::new());
        Ok(Settings {
            listen: DEFAULT_LISTEN.parse().context("default listen address")?,
            media_root: None,
            secret: d.secret,
            api_key: d.api_key,
            password: d.password,
            allow_private_upstream: Vec::new(),
            cors_origins: d.cors_origins,
            public_url: d.public_url,
            default_ttl: d.default_ttl,
            max_ttl: d.max_ttl,
            source_memo_mib: d.source_memo_bytes >> 20,
            source_ttl: d.source_ttl,
            revalidate: d.revalidate,
            target_segment_secs: d.target_secs,
            lead_segment_secs: d.lead_secs,
            h264_for_hevc: d.renditions.h264_for_hevc,
            max_height: d.renditions.max_height,
            ladder: d.renditions.ladder,
            redis: d.jobs.redis_url,
            cache_mib: d.jobs.cache_bytes >> 20,
            segment_ttl: d.jobs.ttl,
            transcode_jobs: d.jobs.transcode_jobs,
            job_wait: d.jobs.max_wait,
            prefetch: d.jobs.prefetch,
            header_timeout: d.conn.header_timeout,
            idle_timeout: d.conn.idle_timeout,
            max_connections: d.conn.max_connections,
            upstream_deadline: d.http.read_deadline,
        })
    }

    /// Layers defaults, the config file, the environment and the flags into one `Settings`.
    pub fn load(args: &ServeArgs) -> anyhow::Result<Settings> {
        Settings::layered(args, EnvLayer::read())
    }

    /// [`Settings::load`] with the environment layer given.
    fn layered(args: &ServeArgs, env: EnvLayer) -> anyhow::Result<Settings> {
        let mut fig = Figment::from(Serialized::defaults(Settings::defaults()?));
        if let Some(path) = args.config.clone().or_else(|| env.config.clone()) {
            // Read once here for a clear error naming the file; figment reads it again (no
            // search of parent folders) so that its keys carry the file's path.
            std::fs::File::open(&path)
                .with_context(|| format!("cannot read config file {}", path.display()))?;
            // YAML by its extension (`.yaml`, `.yml`), TOML otherwise: the same keys.
            let yaml = path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
            fig = if yaml {
                fig.merge(Yaml::file_exact(&path))
            } else {
                fig.merge(Toml::file_exact(&path))
            };
        }
        fig.merge(env)
            .merge(FlagsLayer(args))
            .extract()
            .map_err(settings_error)
    }

    /// The server's configuration (the listen address apart), checked.
    pub fn into_config(self) -> anyhow::Result<(SocketAddr, server::ServerConfig)> {
        let Some(media_root) = self.media_root else {
            bail!("--media-root (or HLSGATE_MEDIA_ROOT, or media_root in the config file) is required");
        };
        let mut cfg = server::ServerConfig::new(media_root.relative());
        cfg.secret = self.secret.filter(|s| !s.is_empty());
        cfg.api_key = self.api_key.filter(|s| !s.is_empty());
        cfg.password = self.password.filter(|s| !s.is_empty());
        cfg.allow_private_upstream = self
            .allow_private_upstream
            .iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.parse::<source::Cidr>())
            .collect::<Result<_, _>>()?;
        cfg.cors_origins = self.cors_origins;
        cfg.public_url = self.public_url;
        cfg.default_ttl = self.default_ttl;
        cfg.max_ttl = self.max_ttl;
        cfg.source_memo_bytes = self.source_memo_mib.max(1) << 20;
        cfg.source_ttl = self.source_ttl;
        cfg.revalidate = self.revalidate;
        cfg.target_secs = self.target_segment_secs;
        cfg.lead_secs = self.lead_segment_secs;
        cfg.renditions.h264_for_hevc = self.h264_for_hevc;
        cfg.renditions.max_height = self.max_height;
        cfg.renditions.ladder = self.ladder;
        cfg.jobs.redis_url = self.redis;
        cfg.jobs.cache_bytes = self.cache_mib.max(1) << 20;
        cfg.jobs.ttl = self.segment_ttl;
        cfg.jobs.transcode_jobs = self.transcode_jobs.max(1);
        cfg.jobs.max_wait = self.job_wait;
        cfg.jobs.prefetch = self.prefetch;
        cfg.conn.header_timeout = self.header_timeout;
        cfg.conn.idle_timeout = self.idle_timeout;
        cfg.conn.max_connections = self.max_connections.max(1);
        cfg.http.read_deadline = self.upstream_deadline;
        if let Err(e) = cfg.check(self.listen) {
            bail!("{e}");
        }
        Ok((self.listen, cfg))
    }
}

/// How an environment variable's text becomes a value.
#[derive(Clone, Copy)]
enum Kind {
    /// Taken as it is (no quoting, no parsing: a secret is never altered).
    Text,
    /// Split on commas, like the repeatable flags.
    List,
    /// An unsigned integer (left as text when it is not one, so the error names the key).
    Count,
}

/// The variables read: `HLSGATE_` + name, the settings key, how the value is taken.
/// File-only keys (`source_ttl`, `target_segment_secs`, …) have none.
const ENV_VARS: &[(&str, &str, Kind)] = &[
    ("listen", "listen", Kind::Text),
    ("media_root", "media_root", Kind::Text),
    ("secret", "secret", Kind::Text),
    ("api_key", "api_key", Kind::Text),
    ("password", "password", Kind::Text),
    (
        "allow_private_upstream",
        "allow_private_upstream",
        Kind::List,
    ),
    ("cors_origin", "cors_origins", Kind::List),
    ("public_url", "public_url", Kind::Text),
    ("default_ttl", "default_ttl", Kind::Text),
    ("max_ttl", "max_ttl", Kind::Text),
    ("revalidate", "revalidate", Kind::Text),
    ("redis", "redis", Kind::Text),
    ("cache_mib", "cache_mib", Kind::Count),
    ("segment_ttl", "segment_ttl", Kind::Text),
    ("transcode_jobs", "transcode_jobs", Kind::Count),
    ("job_wait", "job_wait", Kind::Text),
    ("prefetch", "prefetch", Kind::Count),
    ("header_timeout", "header_timeout", Kind::Text),
    ("idle_timeout", "idle_timeout", Kind::Text),
    ("max_connections", "max_connections", Kind::Count),
    ("upstream_deadline", "upstream_deadline", Kind::Text),
];

/// The `HLSGATE_*` layer: the only place the environment is read (clap has no `env`
/// attributes). Figment's [`Env`] selects the variables; their values are taken raw (figment's
/// own value syntax would strip quotes from a secret or turn `true` into a bool). An empty
/// variable counts as set, as it did with clap: `HLSGATE_SECRET=` turns a file's secret off.
struct EnvLayer {
    /// `HLSGATE_CONFIG`, the config file (`--config` wins).
    config: Option<PathBuf>,
    /// The other variables read: name without the prefix, lowercase; value as written.
    vars: Vec<(String, String)>,
}

impl EnvLayer {
    /// Reads the `HLSGATE_*` variables of [`ENV_VARS`] and `HLSGATE_CONFIG`.
    fn read() -> EnvLayer {
        let mut names: Vec<&str> = ENV_VARS.iter().map(|(name, _, _)| *name).collect();
        names.push(CONFIG_ENV);
        let mut layer = EnvLayer {
            config: None,
            vars: Vec::new(),
        };
        for (name, text) in Env::prefixed(ENV_PREFIX).only(&names).iter() {
            if name == CONFIG_ENV {
                layer.config = Some(PathBuf::from(text));
            } else {
                layer.vars.push((name.as_str().to_owned(), text));
            }
        }
        layer
    }
}

impl Provider for EnvLayer {
    fn metadata(&self) -> Metadata {
        Metadata::named("environment variable").interpolater(|_: &Profile, keys: &[&str]| {
            let key = keys.last().copied().unwrap_or_default();
            let name = ENV_VARS
                .iter()
                .find(|(_, k, _)| *k == key)
                .map_or(key, |(name, _, _)| *name);
            format!("{ENV_PREFIX}{}", name.to_ascii_uppercase())
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for (name, text) in &self.vars {
            let Some((_, key, kind)) = ENV_VARS.iter().find(|(n, _, _)| name == n) else {
                continue;
            };
            let value = match kind {
                Kind::Text => Value::from(text.clone()),
                Kind::List => Value::from(text.split(',').map(str::to_owned).collect::<Vec<_>>()),
                Kind::Count => match text.trim().parse::<u64>() {
                    Ok(n) => Value::from(n),
                    Err(_) => Value::from(text.clone()),
                },
            };
            dict.insert((*key).to_owned(), value);
        }
        Ok(Profile::Default.collect(dict))
    }
}

/// The flags layer: only the flags given (unset ones are not serialized).
struct FlagsLayer<'a>(&'a ServeArgs);

impl Provider for FlagsLayer<'_> {
    fn metadata(&self) -> Metadata {
        Metadata::named("command-line flag").interpolater(|_: &Profile, keys: &[&str]| {
            let key = keys.last().copied().unwrap_or_default();
            let flag = if key == "cors_origins" {
                "cors_origin"
            } else {
                key
            };
            format!("--{}", flag.replace('_', "-"))
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Serialized::defaults(self.0).data()
    }
}

/// One message for all of figment's errors, each naming its key as it was given (file key,
/// `HLSGATE_*` variable or `--flag`) and where it came from.
fn settings_error(e: figment::Error) -> anyhow::Error {
    let lines: Vec<String> = e
        .into_iter()
        .map(|e| {
            let kind = without_snippet(&e.kind.to_string());
            let Some(md) = &e.metadata else {
                return kind;
            };
            let origin = match &md.source {
                Some(source) => format!("{} {source}", md.name),
                None => md.name.to_string(),
            };
            if e.path.is_empty() {
                return format!("{origin}: {kind}");
            }
            let key = match md.source {
                Some(_) => e.path.join("."),
                None => md.interpolate(&e.profile.clone().unwrap_or(Profile::Default), &e.path),
            };
            format!("{key} ({origin}): {kind}")
        })
        .collect();
    anyhow::anyhow!("{}", lines.join("; "))
}

/// A TOML parse error without its quoted source lines (`2 | secret = abc`): a line of the
/// file may hold a secret.
fn without_snippet(message: &str) -> String {
    message
        .lines()
        .filter(|line| {
            let rest = line
                .trim_start()
                .trim_start_matches(|c: char| c.is_ascii_digit());
            !rest.trim_start().starts_with('|')
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Deserializes a secret (`secret`, `api_key`): a string, and an error that never shows the
/// value when it is something else.
fn secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a string")
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(V)
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
            Ok(Some(s.to_owned()))
        }
        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Err(hidden())
        }
        fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Err(hidden())
        }
        fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Err(hidden())
        }
        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Err(hidden())
        }
        fn visit_bytes<E: serde::de::Error>(self, _: &[u8]) -> Result<Self::Value, E> {
            Err(hidden())
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(hidden())
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
            Err(hidden())
        }
    }
    fn hidden<E: serde::de::Error>() -> E {
        E::custom("must be a string (the value is not shown)")
    }
    d.deserialize_option(V)
}

/// Durations as humantime text (`90s`, `6h`, `7d`), both ways.
mod human {
    use std::time::Duration;

    /// Writes `d` as humantime text (the defaults layer).
    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }

    /// Reads humantime text; the error shows the text and an example (figment adds the key).
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a duration such as \"90s\" or \"6h\"")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Duration, E> {
                humantime::parse_duration(s)
                    .map_err(|_| E::custom(format!("{s:?} is not a duration (e.g. 6h)")))
            }
        }
        d.deserialize_str(V)
    }
}

/// Merges defaults, file, environment and flags.
pub fn resolve(args: ServeArgs) -> anyhow::Result<(SocketAddr, server::ServerConfig)> {
    Settings::load(&args)?.into_config()
}

/// Runs the server until SIGINT/SIGTERM.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let (listen, cfg) = resolve(args)?;
    let mode = match (cfg.secret.is_some(), cfg.password.is_some()) {
        (_, true) => "home",
        (true, false) => "signed",
        (false, false) => "open",
    };
    let limits = cfg.conn;
    let state = server::AppState::connect(cfg, Vec::new()).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let local = listener.local_addr()?;
    tracing::info!(
        addr = %local,
        mode,
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn flags(list: &[&str]) -> ServeArgs {
        Cli::parse_from(std::iter::once("serve").chain(list.iter().copied())).args
    }

    fn env(vars: &[(&str, &str)]) -> EnvLayer {
        EnvLayer {
            config: None,
            vars: vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn file(body: &str) -> (tempfile::TempDir, String) {
        named_file("hlsgate.toml", body)
    }

    fn named_file(name: &str, body: &str) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        (dir, path.display().to_string())
    }

    /// docs/config.md documents every `serve` flag, its `HLSGATE_*` variable and every config
    /// file key — and nothing that does not exist: its table is compared with clap's arguments
    /// and with the keys `Settings` serializes.
    #[test]
    fn every_flag_and_key_is_documented() {
        use clap::CommandFactory as _;
        let doc = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/config.md"),
        )
        .unwrap();
        let rows: Vec<Vec<String>> = doc
            .lines()
            .filter(|l| l.starts_with("| ") && !l.starts_with("| flag") && !l.starts_with("|---"))
            .map(|l| l.split('|').map(|c| c.trim().to_string()).collect())
            .collect();
        let code = |cell: &str| -> Option<String> {
            let start = cell.find('`')? + 1;
            let len = cell[start..].find('`')?;
            Some(cell[start..start + len].to_string())
        };
        let doc_flags: std::collections::BTreeSet<String> = rows
            .iter()
            .filter_map(|r| code(r.get(1)?))
            .filter_map(|f| Some(f.strip_prefix("--")?.split(' ').next()?.to_string()))
            .collect();
        let doc_env: std::collections::BTreeSet<String> =
            rows.iter().filter_map(|r| code(r.get(2)?)).collect();
        let doc_keys: std::collections::BTreeSet<String> =
            rows.iter().filter_map(|r| code(r.get(3)?)).collect();

        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let cmd = Cli::command();
        let flags: std::collections::BTreeSet<String> = cmd
            .get_arguments()
            .filter_map(|a| a.get_long().map(str::to_string))
            .filter(|l| l != "help" && l != "version")
            .collect();
        assert_eq!(doc_flags, flags, "flags in docs/config.md vs clap");
        let vars: std::collections::BTreeSet<String> = flags
            .iter()
            .filter(|f| *f != "config")
            .map(|f| format!("HLSGATE_{}", f.replace('-', "_").to_uppercase()))
            .chain(["HLSGATE_CONFIG".to_string()])
            .collect();
        for v in &vars {
            assert!(doc_env.contains(v), "{v} is not in docs/config.md");
        }
        // Every field `Settings` deserializes, as serde lists them for an unknown key.
        let err = Figment::from(Toml::string("zz_not_a_key = 1"))
            .extract::<Settings>()
            .unwrap_err();
        let text = err
            .clone()
            .into_iter()
            .map(|e| e.to_string())
            .find(|m| m.contains("one of"))
            .unwrap_or_else(|| panic!("no field list in {err}"));
        let keys: std::collections::BTreeSet<String> = text
            .split("one of")
            .nth(1)
            .unwrap_or_default()
            .split(',')
            .filter_map(|k| Some(k.split('`').nth(1)?.to_string()))
            .collect();
        assert!(keys.contains("listen") && keys.len() > 10, "{text}");
        assert_eq!(doc_keys, keys, "file keys in docs/config.md vs Settings");
    }

    /// A YAML file (by its extension) gives the same settings as the TOML file with the same
    /// keys; a YAML error names the file.
    #[test]
    fn yaml_files_have_the_same_keys() {
        let toml = "media_root = \"media\"\nprefetch = 7\nmax_ttl = \"1d\"\n\
                    cors_origins = [\"https://a\", \"https://b\"]\n";
        let yaml = "media_root: media\nprefetch: 7\nmax_ttl: 1d\n\
                    cors_origins:\n  - https://a\n  - https://b\n";
        let load = |name: &str, body: &str| {
            let (dir, path) = named_file(name, body);
            let s = Settings::layered(&flags(&["--config", &path]), env(&[])).unwrap();
            let root = s.media_root.clone().unwrap().relative();
            assert_eq!(root, dir.path().join("media"), "{name}");
            (s.prefetch, s.max_ttl, s.cors_origins)
        };
        let from_toml = load("hlsgate.toml", toml);
        assert_eq!(from_toml, load("hlsgate.yaml", yaml));
        assert_eq!(from_toml, load("hlsgate.YML", yaml));
        assert_eq!(from_toml.0, 7);
        let (_dir, bad) = named_file("bad.yml", "prefetch: [\n");
        let e = Settings::layered(&flags(&["--config", &bad]), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad.yml"), "{e}");
    }

    #[test]
    fn defaults_are_the_servers() {
        let s = Settings::layered(&flags(&["--media-root", "/m"]), env(&[])).unwrap();
        let (listen, cfg) = s.into_config().unwrap();
        let d = server::ServerConfig::new("/m");
        assert_eq!(listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(format!("{cfg:?}"), format!("{d:?}"));
    }

    #[test]
    fn flags_over_env_over_file() {
        let (dir, path) = file(
            "media_root = \"media\"\nprefetch = 7\ncache_mib = 9\nmax_ttl = \"1d\"\n\
             cors_origins = [\"https://file\"]\nsource_ttl = \"5m\"\n",
        );
        let args = flags(&["--config", &path, "--prefetch", "3", "--cors-origin", "a,b"]);
        let vars = env(&[("prefetch", "5"), ("cache_mib", "11"), ("secret", "\"q\"")]);
        let s = Settings::layered(&args, vars).unwrap();
        assert_eq!(s.prefetch, 3);
        assert_eq!(s.cache_mib, 11);
        assert_eq!(s.max_ttl, Duration::from_secs(86400));
        assert_eq!(s.source_ttl, Duration::from_secs(300));
        assert_eq!(s.cors_origins, ["a", "b"]);
        // Taken as written: no quote stripping.
        assert_eq!(s.secret.as_deref(), Some("\"q\""));
        // Relative to the file's folder.
        let root = s.media_root.unwrap().relative();
        assert_eq!(root, dir.path().join("media"));
    }

    #[test]
    fn env_lists_split_and_empty_values_count() {
        let (_dir, path) = file("media_root = \"/m\"\nsecret = \"file-secret-0123456789\"\n");
        let vars = env(&[
            ("secret", ""),
            ("allow_private_upstream", "10.0.0.0/8,fd00::/8"),
        ]);
        let (_, cfg) = Settings::layered(&flags(&["--config", &path]), vars)
            .unwrap()
            .into_config()
            .unwrap();
        assert_eq!(cfg.secret, None);
        assert_eq!(cfg.allow_private_upstream.len(), 2);
    }

    #[test]
    fn errors_name_the_key_and_hide_secrets() {
        let (_dir, path) = file("media_root = \"/m\"\napi_key = 12345678\n");
        let e = Settings::layered(&flags(&["--config", &path]), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("api_key") && !e.contains("12345678"), "{e}");
        let (_dir, path) = file("secret = abcdefgh\n");
        let e = Settings::layered(&flags(&["--config", &path]), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(!e.contains("abcdefgh"), "{e}");
        let e = Settings::layered(&flags(&[]), env(&[("job_wait", "soon")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("HLSGATE_JOB_WAIT") && e.contains("not a duration"),
            "{e}"
        );
        let e = Settings::layered(&flags(&["--max-ttl", "5"]), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--max-ttl"), "{e}");
    }
}
