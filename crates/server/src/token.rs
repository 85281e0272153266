//! Stream tokens: self-contained, authenticated, encrypted, expiring grants carried in the URL
//! path.
//!
//! A [`Grant`] says which source may be played (`file:<path under the media root>` or an
//! upstream URL), which headers to forward upstream, and until when. It is sealed with a key
//! derived from the server secret, so any instance with the same secret opens it and nothing
//! is stored anywhere:
//!
//! ```text
//! key     = HKDF-SHA256(ikm = secret, salt = "hlsgate", info = "hlsgate token v2"), 64 bytes
//! payload = JSON(grant)
//! token   = base64url( 0x02 ‖ AES-256-SIV(key, AD = [0x02], payload) )
//! ```
//!
//! AES-SIV (RFC 5297, RustCrypto's reviewed `aes-siv`) is a deterministic AEAD: the same grant
//! always gives the same token (cache-friendly URLs), and nonce misuse is impossible by
//! construction. The version byte is authenticated as associated data. Opening checks the SIV
//! tag, then the expiry. The player sees only ciphertext: no upstream URL, header or path.
//!
//! Version 1 tokens (a hand-made HMAC + ChaCha20-Poly1305 construction) are no longer accepted:
//! services re-issue tokens through the API.
//!
//! **Open mode** (no secret, loopback bind): a token may instead be `f~<base64url(path)>`, a
//! plain reference to a file under the media root; it never expires and names only local files.

use aes_siv::siv::Aes256Siv;
use aes_siv::KeyInit as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::AppError;

/// Version byte of sealed tokens (2: AES-256-SIV with an HKDF-derived key).
pub const TOKEN_VERSION: u8 = 2;
/// Longest token accepted (characters), checked before decoding.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Bytes of the SIV tag at the front of the ciphertext.
const TAG_LEN: usize = 16;
/// Prefix of open-mode file references.
pub const OPEN_PREFIX: &str = "f~";
/// Shortest secret accepted (bytes).
pub const MIN_SECRET_LEN: usize = 16;

/// What a token grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The source: `file:<relative path>` or an `http(s)://` URL.
    #[serde(rename = "s")]
    pub source: String,
    /// Headers forwarded on every upstream request (name, value).
    #[serde(rename = "h", default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    /// Expiry, seconds since the Unix epoch; `None` = never (open-mode references only).
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
}

/// A grant's source, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceRef<'a> {
    /// A file under the media root (relative, `/`-separated).
    File(&'a str),
    /// An upstream URL.
    Url(&'a str),
}

impl Grant {
    /// The parsed source.
    pub fn source_ref(&self) -> Result<SourceRef<'_>, AppError> {
        parse_source(&self.source)
    }

    /// The key that identifies what this grant plays (source and headers, not the expiry):
    /// the in-process memo key, and the public stream id's basis.
    pub fn media_key(&self) -> String {
        use sha2::Digest as _;
        let mut h = Sha256::new();
        h.update(self.source.as_bytes());
        for (k, v) in &self.headers {
            h.update([0]);
            h.update(k.to_ascii_lowercase().as_bytes());
            h.update([1]);
            h.update(v.as_bytes());
        }
        hex(&h.finalize())
    }
}

/// Parses `file:<path>` or an `http(s)://` URL.
pub fn parse_source(s: &str) -> Result<SourceRef<'_>, AppError> {
    if let Some(rel) = s.strip_prefix("file:") {
        let rel = rel.trim_start_matches("//");
        if rel.is_empty() {
            return Err(AppError::BadRequest("empty file path"));
        }
        Ok(SourceRef::File(rel))
    } else if s.starts_with("http://") || s.starts_with("https://") {
        Ok(SourceRef::Url(s))
    } else {
        Err(AppError::BadRequest(
            "source must be file:<path> or an http(s) URL",
        ))
    }
}

/// Lowercase hex.
pub fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(char::from(b"0123456789abcdef"[usize::from(x >> 4)]));
        s.push(char::from(b"0123456789abcdef"[usize::from(x & 15)]));
    }
    s
}

/// The key derived from the server secret.
#[derive(Clone)]
pub struct TokenKeys {
    key: [u8; 64],
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKeys(..)")
    }
}

impl TokenKeys {
    /// The key for `secret` (callers enforce [`MIN_SECRET_LEN`]).
    pub fn from_secret(secret: &[u8]) -> Self {
        let mut key = [0u8; 64];
        hkdf::Hkdf::<Sha256>::new(Some(b"hlsgate"), secret)
            .expand(b"hlsgate token v2", &mut key)
            .unwrap_or_else(|_| unreachable!("64 bytes is far below HKDF-SHA256's 8160"));
        TokenKeys { key }
    }

    fn cipher(&self) -> Aes256Siv {
        Aes256Siv::new((&self.key).into())
    }

    /// Seals `grant` into a token.
    pub fn seal(&self, grant: &Grant) -> Result<String, AppError> {
        let payload = serde_json::to_vec(grant).map_err(AppError::internal)?;
        let ct = self
            .cipher()
            .encrypt([[TOKEN_VERSION].as_slice()], &payload)
            .map_err(|_| AppError::Internal("token encryption failed".into()))?;
        let mut raw = Vec::with_capacity(1 + ct.len());
        raw.push(TOKEN_VERSION);
        raw.extend_from_slice(&ct);
        Ok(URL_SAFE_NO_PAD.encode(raw))
    }

    /// Opens a sealed token: authenticity (the SIV tag, which covers the version byte), then
    /// the expiry against `now` (Unix seconds).
    pub fn open(&self, token: &str, now: u64) -> Result<Grant, AppError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(AppError::BadToken);
        }
        let raw = URL_SAFE_NO_PAD
            .decode(token)
            .map_err(|_| AppError::BadToken)?;
        if raw.len() < 1 + TAG_LEN || raw[0] != TOKEN_VERSION {
            return Err(AppError::BadToken);
        }
        let payload = self
            .cipher()
            .decrypt([[TOKEN_VERSION].as_slice()], &raw[1..])
            .map_err(|_| AppError::BadToken)?;
        let grant: Grant = serde_json::from_slice(&payload).map_err(|_| AppError::BadToken)?;
        match grant.expires {
            Some(e) if e > now => Ok(grant),
            // A sealed grant always carries an expiry; one without is not ours.
            None => Err(AppError::BadToken),
            Some(_) => Err(AppError::Expired),
        }
    }
}

/// The open-mode reference to a file under the media root.
pub fn open_token(rel: &str) -> String {
    format!("{OPEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(rel.as_bytes()))
}

/// The path an open-mode reference names, if `token` is one.
pub fn parse_open_token(token: &str) -> Option<Result<String, AppError>> {
    let b64 = token.strip_prefix(OPEN_PREFIX)?;
    if token.len() > MAX_TOKEN_LEN {
        return Some(Err(AppError::BadToken));
    }
    Some(
        URL_SAFE_NO_PAD
            .decode(b64)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .filter(|s| !s.is_empty())
            .ok_or(AppError::BadToken),
    )
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// RFC 3339 UTC timestamp of Unix seconds (`2025-01-31T12:00:00Z`).
pub fn rfc3339(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(expires: u64) -> Grant {
        Grant {
            source: "https://media.example/secret/film.mkv?sig=xyz".into(),
            headers: vec![("Authorization".into(), "Bearer upstream-secret".into())],
            expires: Some(expires),
        }
    }

    #[test]
    fn round_trip_and_determinism() {
        let k = TokenKeys::from_secret(b"0123456789abcdef0123");
        let t = k.seal(&grant(2000)).unwrap();
        assert_eq!(t, k.seal(&grant(2000)).unwrap(), "deterministic");
        assert_ne!(t, k.seal(&grant(2001)).unwrap());
        assert!(t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(k.open(&t, 1000).unwrap(), grant(2000));
        // Another instance with the same secret.
        let k2 = TokenKeys::from_secret(b"0123456789abcdef0123");
        assert_eq!(k2.open(&t, 1999).unwrap(), grant(2000));
    }

    #[test]
    fn token_reveals_nothing() {
        let k = TokenKeys::from_secret(b"0123456789abcdef0123");
        let t = k.seal(&grant(2000)).unwrap();
        let raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
        let text = String::from_utf8_lossy(&raw);
        for needle in ["media.example", "secret", "Bearer", "film"] {
            assert!(!text.contains(needle), "{needle}");
            assert!(!t.contains(needle), "{needle}");
        }
    }

    #[test]
    fn refuses_expired_tampered_forged() {
        let k = TokenKeys::from_secret(b"0123456789abcdef0123");
        let t = k.seal(&grant(2000)).unwrap();
        assert!(matches!(k.open(&t, 2000), Err(AppError::Expired)));
        assert!(matches!(k.open(&t, 5000), Err(AppError::Expired)));
        // Every single-byte flip of the raw token is refused.
        let raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
        for i in 0..raw.len() {
            let mut r = raw.clone();
            r[i] ^= 0x01;
            let bad = URL_SAFE_NO_PAD.encode(&r);
            assert!(
                matches!(k.open(&bad, 1000), Err(AppError::BadToken)),
                "flip at {i}"
            );
        }
        // Another secret.
        let other = TokenKeys::from_secret(b"another secret, also long");
        assert!(matches!(other.open(&t, 1000), Err(AppError::BadToken)));
        // Garbage.
        for bad in ["", "x", "!!!!", &"A".repeat(MAX_TOKEN_LEN + 1)] {
            assert!(matches!(k.open(bad, 1000), Err(AppError::BadToken)));
        }
        // A grant without expiry is never accepted from a sealed token.
        let forever = Grant {
            expires: None,
            ..grant(0)
        };
        let t = k.seal(&forever).unwrap();
        assert!(matches!(k.open(&t, 1), Err(AppError::BadToken)));
    }

    #[test]
    fn open_tokens() {
        let t = open_token("films/a b.mkv");
        assert!(t.starts_with("f~"));
        assert_eq!(parse_open_token(&t).unwrap().unwrap(), "films/a b.mkv");
        assert!(parse_open_token("abc").is_none());
        assert!(parse_open_token("f~!!").unwrap().is_err());
        assert!(parse_open_token("f~").unwrap().is_err());
    }

    #[test]
    fn sources_and_dates() {
        assert_eq!(
            parse_source("file:a/b.mkv").unwrap(),
            SourceRef::File("a/b.mkv")
        );
        assert_eq!(
            parse_source("https://x/y").unwrap(),
            SourceRef::Url("https://x/y")
        );
        assert!(parse_source("ftp://x").is_err());
        assert!(parse_source("/etc/passwd").is_err());
        assert!(parse_source("file:").is_err());
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_735_689_599), "2024-12-31T23:59:59Z");
    }
}
