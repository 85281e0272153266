//! # source — byte-range sources with identity and request accounting
//!
//! A [`ByteSource`] reads byte ranges of one media file and knows its [`Identity`] (size plus
//! ETag/Last-Modified for HTTP, size plus mtime for files), which cache keys are built from.
//! Two kinds:
//! - [`FileSource`]: a local file; [`MediaRoot::resolve`] refuses every path that escapes the
//!   configured root (`..`, absolute paths, symlinks that point outside).
//! - [`HttpSource`]: an upstream read with `Range` requests (RFC 9110 §14) through a pooled
//!   reqwest client: checks `206` + `Content-Range`, forwards configured headers, retries with
//!   backoff on connect errors, 5xx, timeouts and short bodies, and fails clearly when the
//!   upstream ignores `Range` or the file changes between reads. Upstream replies are hostile
//!   input: a body is streamed into a buffer of exactly the length asked for and one byte
//!   more is an error ([`SourceError::TooLong`]), never buffered; every wait has a timeout and
//!   each read a deadline across its retries ([`HttpConfig`]). With
//!   [`AddressPolicy::PublicOnly`] (what the server uses) the [`guard`] refuses loopback,
//!   private, link-local, unique-local and other internal addresses — checked on the resolved
//!   address at connect time and on every redirect — unless allow-listed.
//!
//! Local paths we were given never produce an internal error: missing files, symlink loops
//! and paths through non-directories are [`SourceError::NotFound`], unreadable ones
//! [`SourceError::Forbidden`].
//!
//! Every request and byte is counted in [`Stats`] so tests can assert on upstream cost.
//! [`probe`] drives the sans-I/O `probe::Prober` with a source.

mod file;
pub mod guard;
mod http;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

pub use file::{FileSource, MediaRoot};

/// Histogram, label `outcome` (`ok`|`error`): seconds one upstream range read took, retries
/// included, from the request until its last byte (or its failure).
pub const UPSTREAM_SECONDS: &str = "hlsgate_upstream_read_seconds";
pub use guard::{AddressPolicy, Blocked, Cidr};
pub use http::{HttpConfig, HttpSource, HttpUpstream};
pub use probe::ByteRange;

/// What makes a source's bytes what they are; any change means cached results are stale.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identity {
    /// Where the bytes come from: the path under the media root, or the URL.
    pub location: String,
    /// Size in bytes.
    pub size: u64,
    /// HTTP entity tag, when the upstream sends one.
    pub etag: Option<String>,
    /// HTTP Last-Modified, when the upstream sends one.
    pub last_modified: Option<String>,
    /// File modification time in nanoseconds since the epoch, for local files.
    pub mtime_ns: Option<u128>,
}

impl Identity {
    /// A stable string for cache keys (location, size and validators).
    pub fn key(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}",
            self.location,
            self.size,
            self.etag.as_deref().unwrap_or(""),
            self.last_modified.as_deref().unwrap_or(""),
            self.mtime_ns.map(|m| m.to_string()).unwrap_or_default()
        )
    }
}

/// Why reading a source failed.
///
/// Display messages are plain one-liners without URLs, query strings or headers (a signed
/// upstream URL must not reach the logs through an error); the variant says what kind of
/// failure it was, so callers match on it rather than on the text.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The path is outside the media root (or absolute, or uses `..`).
    #[error("path is outside the media root: {0}")]
    OutsideRoot(String),
    /// No such file (also: a symlink loop, a path through a non-directory, a name too long,
    /// not a regular file), or no such upstream object (404/410).
    #[error("not found: {0}")]
    NotFound(String),
    /// A local file or folder we may not read (`EACCES`, `EPERM`).
    #[error("permission denied: {0}")]
    Forbidden(String),
    /// A local I/O error that is not about the path we were given (e.g. `EIO`).
    #[error("i/o error on {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The upstream answered with an unexpected status (a 5xx or 429 only after retries, as
    /// the `last` of [`SourceError::Unreachable`]).
    #[error("upstream answered {status} for {what}")]
    UpstreamStatus {
        /// The HTTP status.
        status: u16,
        /// The request, e.g. "bytes 0-65535".
        what: String,
    },
    /// The upstream answered `200` with the whole body to a `Range` request.
    #[error("upstream ignores Range requests (answered 200 to a range request)")]
    RangeIgnored,
    /// The upstream's reply was malformed (bad or missing `Content-Range`, lengths that
    /// disagree, a refused redirect).
    #[error("bad upstream response: {0}")]
    BadResponse(String),
    /// The upstream sent, or announced (`Content-Length`, `Content-Range`), more bytes than
    /// were asked for. Detected before the excess is buffered; the connection is dropped.
    #[error("upstream reply too long: asked for {asked} bytes, got at least {got}")]
    TooLong {
        /// Bytes asked for.
        asked: u64,
        /// Bytes sent or announced (at least this many).
        got: u64,
    },
    /// The upstream's body ended (closed or reset) before the bytes asked for.
    #[error("upstream reply cut short: {got} of {asked} bytes")]
    Truncated {
        /// Bytes asked for.
        asked: u64,
        /// Bytes received.
        got: u64,
    },
    /// The upstream could not be connected to, or the connection failed before a response.
    #[error("upstream connection failed: {0}")]
    Connect(String),
    /// The upstream was too slow: a per-attempt wait, or the read's whole deadline
    /// ([`HttpConfig::read_deadline`]) across its retries. Returned as is (not inside
    /// [`SourceError::Unreachable`]) whenever the last failure was a timeout.
    #[error("upstream timed out waiting for {what} ({after:?})")]
    Timeout {
        /// Which wait ran out.
        what: TimeoutKind,
        /// Its limit.
        after: std::time::Duration,
    },
    /// Every attempt failed with a retryable error that is not a timeout; `last` is the
    /// last one ([`SourceError::Connect`], [`SourceError::UpstreamStatus`] 5xx/429,
    /// [`SourceError::Truncated`]).
    #[error("upstream failed after {attempts} attempts: {last}")]
    Unreachable {
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        last: Box<SourceError>,
    },
    /// The file changed (size, ETag, Last-Modified or mtime) between reads.
    #[error("source changed while reading: {0}")]
    IdentityChanged(String),
    /// A range outside the file.
    #[error("range {start}-{end} is outside the file (size {size})")]
    BadRange {
        /// Requested start.
        start: u64,
        /// Requested end (exclusive).
        end: u64,
        /// File size.
        size: u64,
    },
    /// The URL is not one we can fetch (scheme, syntax).
    #[error("bad source URL: {0}")]
    BadUrl(String),
    /// The upstream address is refused by the SSRF guard ([`AddressPolicy`]).
    #[error(transparent)]
    Blocked(#[from] Blocked),
    /// The container probe failed on the bytes.
    #[error(transparent)]
    Probe(#[from] probe::ProbeError),
}

impl SourceError {
    /// True for [`SourceError::Timeout`] (the upstream was too slow).
    pub fn is_timeout(&self) -> bool {
        matches!(self, SourceError::Timeout { .. })
    }
}

/// Which wait of an upstream read ran out (see [`HttpConfig`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutKind {
    /// The TCP/TLS connect ([`HttpConfig::connect_timeout`]).
    Connect,
    /// The response headers after sending the request ([`HttpConfig::first_byte_timeout`]).
    FirstByte,
    /// The next body bytes ([`HttpConfig::idle_timeout`]).
    Idle,
    /// The whole read with its retries and backoff ([`HttpConfig::read_deadline`]).
    Deadline,
}

impl std::fmt::Display for TimeoutKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TimeoutKind::Connect => "the connection",
            TimeoutKind::FirstByte => "the response headers",
            TimeoutKind::Idle => "more body bytes",
            TimeoutKind::Deadline => "the read to finish, retries included",
        })
    }
}

/// Result alias.
pub type Result<T> = std::result::Result<T, SourceError>;

/// A boxed future, so [`ByteSource`] stays object-safe (`Arc<dyn ByteSource>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Upstream (or disk) requests and bytes, counted.
#[derive(Debug, Default)]
pub struct Stats {
    requests: AtomicU64,
    bytes: AtomicU64,
}

impl Stats {
    /// Counts one request of `bytes` bytes.
    pub fn record(&self, bytes: u64) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Requests so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Bytes so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// Reads byte ranges of one media file.
pub trait ByteSource: Send + Sync {
    /// What the bytes are; fixed when the source was opened.
    fn identity(&self) -> &Identity;

    /// Reads `[range.start, range.end)`; the end is clamped to the file size.
    fn read(&self, range: ByteRange) -> BoxFuture<'_, Result<Bytes>>;

    /// Requests and bytes this source has made/read.
    fn stats(&self) -> &Arc<Stats>;

    /// Size in bytes.
    fn size(&self) -> u64 {
        self.identity().size
    }
}

/// Checks `range` against a file of `size` bytes and returns its end clamped to the size.
pub(crate) fn clamp_range(range: ByteRange, size: u64) -> Result<u64> {
    if range.start > range.end || range.start > size {
        return Err(SourceError::BadRange {
            start: range.start,
            end: range.end,
            size,
        });
    }
    Ok(range.end.min(size))
}

/// What a probe cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeCost {
    /// Reads the probe asked for.
    pub requests: u64,
    /// Bytes it read.
    pub bytes: u64,
}

/// Indexes a source: runs the sans-I/O prober, fetching each range it asks for.
/// The cost counts the probe's reads (an HTTP source also counts its opening request in
/// [`ByteSource::stats`]).
pub async fn probe(source: &dyn ByteSource) -> Result<(probe::MediaIndex, ProbeCost)> {
    probe_keeping_moov(source)
        .await
        .map(|(index, cost, _)| (index, cost))
}

/// [`probe`], also handing back the `moov` bytes the probe read (MP4 sources; `None` for other
/// containers), which the demuxer needs as its sample tables: read once, not twice (the 2-hour
/// fixture's `moov` is 5.4 MB).
pub async fn probe_keeping_moov(
    source: &dyn ByteSource,
) -> Result<(probe::MediaIndex, ProbeCost, Option<Bytes>)> {
    let mut prober = probe::Prober::new(source.size());
    let mut fetched: Option<(u64, Vec<u8>)> = None;
    loop {
        // Parsing is CPU work whose size the input decides (a `moov` of 256 MiB, a 100k-entry
        // Cues): it runs on the blocking pool, never on an async worker thread.
        let (back, step) = tokio::task::spawn_blocking(move || {
            let step = match fetched {
                Some((at, bytes)) => prober.push(at, bytes).and_then(|()| prober.poll()),
                None => prober.poll(),
            };
            (prober, step)
        })
        .await
        .map_err(|e| SourceError::Io {
            path: "probe task".into(),
            source: std::io::Error::other(e.to_string()),
        })?;
        prober = back;
        match step? {
            probe::Step::Need(r) => {
                let bytes = source.read(r).await?;
                // No copy when the buffer is uniquely owned (file reads, HTTP bodies).
                fetched = Some((r.start, Vec::from(bytes)));
            }
            probe::Step::Done(index) => {
                let cost = ProbeCost {
                    requests: prober.requests(),
                    bytes: prober.bytes_read(),
                };
                let moov = prober.take_moov().map(Bytes::from);
                return Ok((*index, cost, moov));
            }
        }
    }
}

/// Opens a source from a CLI-style argument: `http://` / `https://` URLs go upstream (with
/// `headers` on every request), anything else is a local file path (trusted: the CLI user
/// chose it, so no media root applies).
pub async fn open_arg(
    arg: &str,
    http: &HttpUpstream,
    headers: &[(String, String)],
) -> Result<Arc<dyn ByteSource>> {
    if arg.starts_with("http://") || arg.starts_with("https://") {
        Ok(Arc::new(HttpSource::open(http, arg, headers).await?))
    } else {
        Ok(Arc::new(
            FileSource::open_path(std::path::Path::new(arg)).await?,
        ))
    }
}
