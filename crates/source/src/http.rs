//! HTTP(S) upstreams read with `Range` requests (RFC 9110 §14.2, §15.3.7 206, §14.4
//! Content-Range).

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::{
    HeaderMap, HeaderName, HeaderValue, CONTENT_RANGE, ETAG, LAST_MODIFIED, RANGE,
};
use reqwest::StatusCode;

use crate::guard::{find_blocked, AddressPolicy, Blocked, GuardedResolver};
use crate::{BoxFuture, ByteRange, ByteSource, Identity, Result, SourceError, Stats, TimeoutKind};

/// A redirect chain longer than the configured limit.
#[derive(Debug, thiserror::Error)]
#[error("more than {0} redirects")]
struct TooManyRedirects(usize);

/// Why a URL (the first or a redirect target) may not be fetched.
#[derive(Debug, thiserror::Error)]
enum UrlRefused {
    #[error("scheme {0} is not http(s)")]
    Scheme(String),
    #[error("URL has no host")]
    NoHost,
    #[error(transparent)]
    Blocked(#[from] Blocked),
}

/// Checks a URL's scheme and, when its host is an IP literal (which skips DNS and so the
/// [`GuardedResolver`]), the address.
fn check_url(policy: &AddressPolicy, url: &reqwest::Url) -> std::result::Result<(), UrlRefused> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlRefused::Scheme(url.scheme().to_string()));
    }
    match url.host() {
        Some(url::Host::Ipv4(ip)) => Ok(policy.check(ip.into())?),
        Some(url::Host::Ipv6(ip)) => Ok(policy.check(ip.into())?),
        Some(url::Host::Domain(_)) => Ok(()),
        None => Err(UrlRefused::NoHost),
    }
}

/// Settings of the shared upstream client.
///
/// The waits nest: each attempt connects within `connect_timeout`, gets its response headers
/// within `first_byte_timeout` (connect included) and then never waits more than
/// `idle_timeout` for the next body bytes; a whole [`ByteSource::read`] (or the opening read),
/// with all its attempts and backoff, ends by `read_deadline` with
/// [`SourceError::Timeout`]. A stalled upstream so holds a reader for at most `read_deadline`.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// TCP/TLS connect timeout. Default 5 s.
    pub connect_timeout: Duration,
    /// Time from sending a request to its response headers, connect included. Default 5 s:
    /// an upstream that has not started answering by then is unlikely to be quick, and
    /// leaves room for a retry inside `read_deadline`.
    pub first_byte_timeout: Duration,
    /// Longest gap between two pieces of a response body. Default 5 s.
    pub idle_timeout: Duration,
    /// Total time for one read, all attempts and backoff included; the read then fails with
    /// [`SourceError::Timeout`] ([`TimeoutKind::Deadline`]). Default 15 s: room for three
    /// first-byte waits' worth of retries while a stalled upstream costs a waiting player one
    /// failed request of at most 15 s (it was 3 × 30 s). The limit is per read: a request
    /// that needs several reads (probe, then segment) may take longer in all.
    pub read_deadline: Duration,
    /// Attempts per read (1 = no retry), within `read_deadline`. Default 3.
    pub attempts: u32,
    /// First retry delay; doubles each time. Default 100 ms. A retry whose delay would end
    /// past `read_deadline` is not made.
    pub backoff: Duration,
    /// Idle pooled connections kept per host.
    pub pool_idle_per_host: usize,
    /// Bytes read on open (the probe's first read is served from them).
    pub head_bytes: u64,
    /// Which addresses may be connected to (the SSRF guard). [`AddressPolicy::Unrestricted`]
    /// by default (the CLI: the user chose the URL); servers use
    /// [`AddressPolicy::PublicOnly`].
    pub address_policy: AddressPolicy,
    /// Redirects followed per request (each one re-checked by the address policy).
    pub max_redirects: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            connect_timeout: Duration::from_secs(5),
            first_byte_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(5),
            read_deadline: Duration::from_secs(15),
            attempts: 3,
            backoff: Duration::from_millis(100),
            pool_idle_per_host: 16,
            head_bytes: probe::HEAD_BYTES,
            address_policy: AddressPolicy::Unrestricted,
            max_redirects: 5,
        }
    }
}

/// The pooled client every [`HttpSource`] shares.
#[derive(Debug, Clone)]
pub struct HttpUpstream {
    client: reqwest::Client,
    config: HttpConfig,
}

impl HttpUpstream {
    /// A client with `config`.
    pub fn new(config: HttpConfig) -> Result<Self> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .pool_max_idle_per_host(config.pool_idle_per_host);
        if config.address_policy.is_restricted() {
            let policy = config.address_policy.clone();
            let max = config.max_redirects;
            builder = builder
                // Names are checked on the addresses actually connected to.
                .dns_resolver(GuardedResolver::new(config.address_policy.clone()))
                // A proxy would resolve names itself, out of the guard's sight.
                .no_proxy()
                .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                    if attempt.previous().len() >= max {
                        return attempt.error(TooManyRedirects(max));
                    }
                    match check_url(&policy, attempt.url()) {
                        Ok(()) => attempt.follow(),
                        // The refusal itself, so `find_blocked` sees it in the error chain.
                        Err(UrlRefused::Blocked(b)) => attempt.error(b),
                        Err(e) => attempt.error(e),
                    }
                }));
        } else {
            builder = builder.redirect(reqwest::redirect::Policy::limited(config.max_redirects));
        }
        let client = builder
            .build()
            .map_err(|e| SourceError::BadUrl(format!("cannot build HTTP client: {e}")))?;
        Ok(HttpUpstream { client, config })
    }
}

/// An upstream file read with range requests.
#[derive(Debug)]
pub struct HttpSource {
    upstream: HttpUpstream,
    url: reqwest::Url,
    headers: HeaderMap,
    identity: Identity,
    /// The bytes read on open, `[0, head.len())`.
    head: Bytes,
    stats: Arc<Stats>,
}

/// A parsed `Content-Range: bytes a-b/total`.
fn parse_content_range(v: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let total = if total == "*" {
        None
    } else {
        Some(total.parse().ok()?)
    };
    let (a, b) = range.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?, total))
}

/// One successful range response.
struct RangeReply {
    body: Bytes,
    total: u64,
    etag: Option<String>,
    last_modified: Option<String>,
}

/// Why one attempt failed, and whether another attempt may help.
enum Attempt {
    Retry(SourceError),
    Fatal(SourceError),
}

impl HttpSource {
    /// Opens `url`, forwarding `headers` on every request. Reads the first
    /// [`HttpConfig::head_bytes`] bytes, which fixes the identity (size, ETag, Last-Modified).
    pub async fn open(
        upstream: &HttpUpstream,
        url: &str,
        headers: &[(String, String)],
    ) -> Result<Self> {
        let mut src = HttpSource::prepare(upstream, url, headers)?;
        let want = upstream.config.head_bytes.max(1);
        let reply = src.fetch(0, want, true).await?;
        src.identity.size = reply.total;
        src.identity.etag = reply.etag;
        src.identity.last_modified = reply.last_modified;
        src.head = reply.body;
        Ok(src)
    }

    /// A source for `url` whose identity is already known (checked recently, by this process
    /// or another instance): no request is made now. Every later read still compares the
    /// upstream's size and validators with `identity` and fails with
    /// [`SourceError::IdentityChanged`] when they differ. `identity.location` must be the one
    /// [`HttpSource::open`] gives for this `url`.
    pub fn known(
        upstream: &HttpUpstream,
        url: &str,
        headers: &[(String, String)],
        identity: Identity,
    ) -> Result<Self> {
        let mut src = HttpSource::prepare(upstream, url, headers)?;
        if src.identity.location != identity.location {
            return Err(SourceError::BadUrl(
                "the known identity is of another URL".into(),
            ));
        }
        src.identity = identity;
        Ok(src)
    }

    /// Checks `url` against the address policy and parses `headers`; no request yet.
    fn prepare(upstream: &HttpUpstream, url: &str, headers: &[(String, String)]) -> Result<Self> {
        let url = reqwest::Url::parse(url).map_err(|e| SourceError::BadUrl(format!("{e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(SourceError::BadUrl(format!(
                "scheme {} is not http(s)",
                url.scheme()
            )));
        }
        check_url(&upstream.config.address_policy, &url).map_err(|e| match e {
            UrlRefused::Blocked(b) => SourceError::Blocked(b),
            other => SourceError::BadUrl(other.to_string()),
        })?;
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| SourceError::BadUrl(format!("bad header name {k:?}")))?;
            let value = HeaderValue::from_str(v)
                .map_err(|_| SourceError::BadUrl(format!("bad value for header {k}")))?;
            map.append(name, value);
        }
        let mut location = url.clone();
        location.set_query(None);
        location.set_fragment(None);
        Ok(HttpSource {
            upstream: upstream.clone(),
            url,
            headers: map,
            identity: Identity {
                location: location.to_string(),
                size: 0,
                etag: None,
                last_modified: None,
                mtime_ns: None,
            },
            head: Bytes::new(),
            stats: Arc::new(Stats::default()),
        })
    }

    /// Requests `[start, end)` with retries, all within [`HttpConfig::read_deadline`];
    /// `opening` relaxes the identity check (nothing to compare with yet) and accepts an
    /// empty file.
    async fn fetch(&self, start: u64, end: u64, opening: bool) -> Result<RangeReply> {
        let limit = self.upstream.config.read_deadline;
        let t0 = tokio::time::Instant::now();
        let deadline = t0 + limit;
        let r = tokio::time::timeout_at(deadline, self.retry(start, end, opening, deadline))
            .await
            .unwrap_or(Err(SourceError::Timeout {
                what: TimeoutKind::Deadline,
                after: limit,
            }));
        let outcome = if r.is_ok() { "ok" } else { "error" };
        metrics::histogram!(crate::UPSTREAM_SECONDS, "outcome" => outcome)
            .record(t0.elapsed().as_secs_f64());
        r
    }

    async fn retry(
        &self,
        start: u64,
        end: u64,
        opening: bool,
        deadline: tokio::time::Instant,
    ) -> Result<RangeReply> {
        let cfg = &self.upstream.config;
        let attempts = cfg.attempts.max(1);
        let mut delay = cfg.backoff;
        let mut made = 0;
        loop {
            made += 1;
            let err = match self.attempt(start, end, opening).await {
                Ok(r) => return Ok(r),
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Retry(e)) => e,
            };
            tracing::debug!(url = %self.identity.location, attempt = made, error = %err, "upstream retry");
            if made >= attempts || tokio::time::Instant::now() + delay >= deadline {
                return Err(match err {
                    e @ SourceError::Timeout { .. } => e,
                    last => SourceError::Unreachable {
                        attempts: made,
                        last: Box::new(last),
                    },
                });
            }
            tokio::time::sleep(delay).await;
            delay = delay.saturating_mul(2);
        }
    }

    async fn attempt(
        &self,
        start: u64,
        end: u64,
        opening: bool,
    ) -> std::result::Result<RangeReply, Attempt> {
        let cfg = &self.upstream.config;
        let what = format!("bytes {}-{}", start, end - 1);
        let send = self
            .upstream
            .client
            .get(self.url.clone())
            .headers(self.headers.clone())
            .header(RANGE, format!("bytes={}-{}", start, end - 1))
            .send();
        let resp = match tokio::time::timeout(cfg.first_byte_timeout, send).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                self.stats.record(0);
                if let Some(b) = find_blocked(&e) {
                    return Err(Attempt::Fatal(SourceError::Blocked(b.clone())));
                }
                if e.is_redirect() {
                    return Err(Attempt::Fatal(SourceError::BadResponse(format!(
                        "redirect refused: {}",
                        error_chain(&e.without_url())
                    ))));
                }
                if e.is_timeout() {
                    return Err(Attempt::Retry(SourceError::Timeout {
                        what: TimeoutKind::Connect,
                        after: cfg.connect_timeout,
                    }));
                }
                return Err(Attempt::Retry(SourceError::Connect(error_chain(
                    &e.without_url(),
                ))));
            }
            Err(_) => {
                // Dropping the request future drops its connection.
                self.stats.record(0);
                return Err(Attempt::Retry(SourceError::Timeout {
                    what: TimeoutKind::FirstByte,
                    after: cfg.first_byte_timeout,
                }));
            }
        };
        let status = resp.status();
        let header = |n: &HeaderName| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let etag = header(&ETAG);
        let last_modified = header(&LAST_MODIFIED);
        let content_range = header(&CONTENT_RANGE);
        let declared_len = resp.content_length();
        // Every early return below drops `resp` with its body unread, which closes the
        // connection (it is not pooled): nothing more is read from it.
        match status {
            StatusCode::PARTIAL_CONTENT => {}
            StatusCode::OK => {
                // A small file may legitimately come whole when we asked for more than it has;
                // that is decided from the headers, before any body byte is read.
                let whole = match declared_len {
                    Some(l) if opening && l <= end - start => l,
                    _ => {
                        self.stats.record(0);
                        return Err(Attempt::Fatal(SourceError::RangeIgnored));
                    }
                };
                let body = self.read_body(resp, whole).await?;
                return Ok(RangeReply {
                    body,
                    total: whole,
                    etag,
                    last_modified,
                });
            }
            StatusCode::RANGE_NOT_SATISFIABLE if opening => {
                self.stats.record(0);
                // `bytes */0`: an empty file.
                let total = content_range
                    .as_deref()
                    .and_then(|v| v.trim().strip_prefix("bytes */"))
                    .and_then(|t| t.parse::<u64>().ok());
                return match total {
                    Some(0) => Ok(RangeReply {
                        body: Bytes::new(),
                        total: 0,
                        etag,
                        last_modified,
                    }),
                    _ => Err(Attempt::Fatal(SourceError::UpstreamStatus {
                        status: 416,
                        what,
                    })),
                };
            }
            StatusCode::NOT_FOUND | StatusCode::GONE => {
                self.stats.record(0);
                return Err(Attempt::Fatal(SourceError::NotFound(format!(
                    "upstream answered {}",
                    status.as_u16()
                ))));
            }
            s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
                self.stats.record(0);
                return Err(Attempt::Retry(SourceError::UpstreamStatus {
                    status: s.as_u16(),
                    what,
                }));
            }
            s => {
                self.stats.record(0);
                return Err(Attempt::Fatal(SourceError::UpstreamStatus {
                    status: s.as_u16(),
                    what,
                }));
            }
        }
        let fatal = |e: SourceError| -> std::result::Result<RangeReply, Attempt> {
            self.stats.record(0);
            Err(Attempt::Fatal(e))
        };
        let Some((a, b, total)) = content_range.as_deref().and_then(parse_content_range) else {
            return fatal(SourceError::BadResponse(
                "206 without a valid Content-Range".into(),
            ));
        };
        let Some(total) = total else {
            return fatal(SourceError::BadResponse(
                "Content-Range without the total size".into(),
            ));
        };
        let bad_range =
            || SourceError::BadResponse(format!("asked for {what}, got bytes {a}-{b}/{total}"));
        if a != start || b < a || b >= total {
            return fatal(bad_range());
        }
        // More than asked for (e.g. "the rest of the file"): refused before reading a byte.
        let asked = end - start;
        let len = b - a + 1;
        if len > asked {
            return fatal(SourceError::TooLong { asked, got: len });
        }
        // Less is fine only where the file ends.
        if len < asked && b + 1 != total {
            return fatal(bad_range());
        }
        match declared_len {
            Some(l) if l > len => return fatal(SourceError::TooLong { asked: len, got: l }),
            Some(l) if l < len => {
                return fatal(SourceError::BadResponse(format!(
                    "Content-Length {l} disagrees with Content-Range {a}-{b}"
                )))
            }
            _ => {}
        }
        if !opening {
            let id = &self.identity;
            let changed = total != id.size
                || (id.etag.is_some() && etag.is_some() && etag != id.etag)
                || (id.last_modified.is_some()
                    && last_modified.is_some()
                    && last_modified != id.last_modified);
            if changed {
                return fatal(SourceError::IdentityChanged(format!(
                    "size {} -> {total}, etag {:?} -> {:?}",
                    id.size, id.etag, etag
                )));
            }
        }
        let body = self.read_body(resp, len).await?;
        Ok(RangeReply {
            body,
            total,
            etag,
            last_modified,
        })
    }

    /// Streams a body of exactly `len` bytes into a buffer of that size. One byte more is
    /// [`SourceError::TooLong`] at once (the piece that overflows is not kept, and dropping
    /// `resp` drops the connection); fewer is [`SourceError::Truncated`]; a gap longer than
    /// [`HttpConfig::idle_timeout`] is [`SourceError::Timeout`]. Counts the bytes received.
    async fn read_body(
        &self,
        mut resp: reqwest::Response,
        len: u64,
    ) -> std::result::Result<Bytes, Attempt> {
        let idle = self.upstream.config.idle_timeout;
        let Ok(cap) = usize::try_from(len) else {
            self.stats.record(0);
            return Err(Attempt::Fatal(SourceError::TooLong {
                asked: usize::MAX as u64,
                got: len,
            }));
        };
        let mut buf = BytesMut::with_capacity(cap);
        let outcome = loop {
            let piece = match tokio::time::timeout(idle, resp.chunk()).await {
                Ok(Ok(Some(piece))) => piece,
                Ok(Ok(None)) => break Ok(()),
                Ok(Err(e)) => {
                    tracing::debug!(url = %self.identity.location, error = %error_chain(&e.without_url()), "upstream body failed");
                    break Err(Attempt::Retry(SourceError::Truncated {
                        asked: len,
                        got: buf.len() as u64,
                    }));
                }
                Err(_) => {
                    break Err(Attempt::Retry(SourceError::Timeout {
                        what: TimeoutKind::Idle,
                        after: idle,
                    }))
                }
            };
            let got = buf.len() as u64 + piece.len() as u64;
            if got > len {
                break Err(Attempt::Fatal(SourceError::TooLong { asked: len, got }));
            }
            buf.extend_from_slice(&piece);
        };
        self.stats.record(buf.len() as u64);
        outcome?;
        if buf.len() as u64 != len {
            return Err(Attempt::Retry(SourceError::Truncated {
                asked: len,
                got: buf.len() as u64,
            }));
        }
        Ok(buf.freeze())
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

impl ByteSource for HttpSource {
    fn identity(&self) -> &Identity {
        &self.identity
    }

    fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    fn read(&self, range: ByteRange) -> BoxFuture<'_, Result<Bytes>> {
        Box::pin(async move {
            let end = crate::clamp_range(range, self.identity.size)?;
            if end == range.start {
                return Ok(Bytes::new());
            }
            // Served from the bytes read on open: no request.
            if end <= self.head.len() as u64 {
                let a = usize::try_from(range.start).unwrap_or(usize::MAX);
                let b = usize::try_from(end).unwrap_or(usize::MAX);
                return Ok(self.head.slice(a..b));
            }
            Ok(self.fetch(range.start, end, false).await?.body)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-answer HTTP server on `ip:0`: every request gets `reply(port)`; counts requests.
    async fn tiny_server(
        ip: &str,
        reply: impl Fn(u16) -> String + Send + Sync + 'static,
    ) -> (u16, Arc<AtomicUsize>) {
        let l = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
        let port = l.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let h = Arc::clone(&hits);
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                h.fetch_add(1, Ordering::SeqCst);
                let mut buf = vec![0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(reply(port).as_bytes()).await;
                let _ = s.shutdown().await;
            }
        });
        (port, hits)
    }

    fn guarded(allow: &[&str]) -> HttpUpstream {
        HttpUpstream::new(HttpConfig {
            address_policy: AddressPolicy::public_only(
                allow.iter().map(|c| c.parse().unwrap()).collect(),
            ),
            attempts: 1,
            ..HttpConfig::default()
        })
        .unwrap()
    }

    const MEDIA: &str = "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-3/4\r\nContent-Length: 4\r\nConnection: close\r\n\r\nabcd";

    #[tokio::test]
    async fn guard_refuses_literals_names_and_redirects() {
        // The real target, on 127.0.0.1: reachable if any check fails open.
        let (target, target_hits) = tiny_server("127.0.0.1", |_| MEDIA.to_string()).await;
        // Unguarded, it works (the test can fail).
        let open = HttpUpstream::new(HttpConfig::default()).unwrap();
        let url = format!("http://127.0.0.1:{target}/a.mp4");
        assert_eq!(HttpSource::open(&open, &url, &[]).await.unwrap().size(), 4);
        assert_eq!(target_hits.load(Ordering::SeqCst), 1);

        let up = guarded(&[]);
        for url in [
            format!("http://127.0.0.1:{target}/a.mp4"),
            format!("http://[::ffff:127.0.0.1]:{target}/a.mp4"),
            format!("http://2130706433:{target}/a.mp4"),
            format!("http://localhost:{target}/a.mp4"),
            "http://[::1]/a".to_string(),
            "http://10.0.0.1/a".to_string(),
            "http://169.254.169.254/latest/meta-data/".to_string(),
        ] {
            match HttpSource::open(&up, &url, &[]).await {
                Err(SourceError::Blocked(b)) => assert!(!b.to_string().is_empty()),
                other => panic!("{url}: {other:?}"),
            }
        }
        assert_eq!(
            target_hits.load(Ordering::SeqCst),
            1,
            "guarded requests reached the target"
        );

        // An allowed host (127.0.0.2) that redirects to the refused target, by address and by
        // a name that resolves to loopback.
        for location in [
            format!("http://127.0.0.1:{target}/a.mp4"),
            format!("http://localhost:{target}/a.mp4"),
        ] {
            let loc = location.clone();
            let (hop, hop_hits) = tiny_server("127.0.0.2", move |_| {
                format!(
                    "HTTP/1.1 302 Found\r\nLocation: {loc}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
            })
            .await;
            let up = guarded(&["127.0.0.2/32"]);
            let url = format!("http://127.0.0.2:{hop}/start.mp4");
            match HttpSource::open(&up, &url, &[]).await {
                Err(SourceError::Blocked(b)) => assert!(b.addr.is_loopback(), "{b}"),
                other => panic!("redirect to {location}: {other:?}"),
            }
            assert_eq!(hop_hits.load(Ordering::SeqCst), 1);
        }
        assert_eq!(
            target_hits.load(Ordering::SeqCst),
            1,
            "a redirect reached the target"
        );

        // Allow-listing the target lets it through.
        let up = guarded(&["127.0.0.1/32"]);
        let url = format!("http://127.0.0.1:{target}/a.mp4");
        assert_eq!(HttpSource::open(&up, &url, &[]).await.unwrap().size(), 4);
    }

    #[test]
    fn parses_content_range() {
        assert_eq!(
            parse_content_range("bytes 0-99/1000"),
            Some((0, 99, Some(1000)))
        );
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, 9, None)));
        assert_eq!(parse_content_range("bytes 5-/10"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
    }
}
