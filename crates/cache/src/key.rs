//! Cache keys: what identifies a cached object, rendered as a fixed-length Redis-safe name.
//!
//! A key is `hlsgate:v1:<kind>:<64 hex digits>`. The hex part is the SHA-256 of every other part
//! (source identity, `PLAN_VERSION`, `OUTPUT_VERSION`, rendition parameters, index), each string
//! length-prefixed so that no two different part lists hash the same input. The source identity may
//! hold an upstream URL with a query-string secret; only its digest ever reaches Redis.

use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};

/// Version of the key scheme itself; part of every rendered key (`hlsgate:v1:…`).
pub const KEY_SCHEME_VERSION: u32 = 2;

/// Prefix shared by every key this crate writes to Redis.
pub const KEY_PREFIX: &str = "hlsgate:v1:";

/// What kind of object a key names. Part of the rendered key in clear text, so an operator can
/// count or flush one kind in Redis (`SCAN MATCH hlsgate:v1:segment:*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A source's identity as last checked upstream (size, validators), shared by instances
    /// for the revalidation interval.
    Identity,
    /// Probe result (container index) of a source.
    Index,
    /// A source's `moov` box bytes (MP4 sources).
    Moov,
    /// Segment plan of a source.
    Plan,
    /// fMP4 init segment of a rendition.
    Init,
    /// fMP4 media segment of a rendition.
    Segment,
    /// WebVTT subtitle segment.
    Vtt,
    /// Thumbnail image.
    Thumb,
}

impl Kind {
    /// The lower-case name used in rendered keys and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Identity => "identity",
            Kind::Index => "index",
            Kind::Moov => "moov",
            Kind::Plan => "plan",
            Kind::Init => "init",
            Kind::Segment => "segment",
            Kind::Vtt => "vtt",
            Kind::Thumb => "thumb",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The parts a key is made of. Parts that do not apply to a kind are passed as `0` or `""`
/// (e.g. an index key has no rendition and no output version).
#[derive(Debug, Clone, Copy)]
pub struct KeyParts<'a> {
    /// What is cached.
    pub kind: Kind,
    /// Source identity: URL or path plus size and ETag / Last-Modified / mtime. May contain
    /// secrets; it is hashed, never stored in clear.
    pub source: &'a str,
    /// The probe crate's `INDEX_VERSION` (indexes and every output made from one).
    pub index_version: u32,
    /// The plan crate's `PLAN_VERSION` (0 where no plan is involved).
    pub plan_version: u32,
    /// The pipeline crate's `OUTPUT_VERSION`.
    pub output_version: u32,
    /// Rendition parameters in a canonical textual form (e.g. `v:h264:720p:3000k`).
    pub rendition: &'a str,
    /// Segment or thumbnail index (0 where it does not apply).
    pub index: u64,
}

/// A rendered cache key. Cheap to clone (the text is shared).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Key {
    kind: Kind,
    text: Arc<str>,
}

impl Key {
    /// Renders a key from its parts: `hlsgate:v1:<kind>:<sha256 hex>`.
    pub fn new(parts: KeyParts<'_>) -> Self {
        let mut h = Sha256::new();
        h.update(b"hlsgate-key");
        h.update(KEY_SCHEME_VERSION.to_be_bytes());
        h.update(parts.kind.as_str().as_bytes());
        h.update([0u8]);
        update_str(&mut h, parts.source);
        h.update(parts.index_version.to_be_bytes());
        h.update(parts.plan_version.to_be_bytes());
        h.update(parts.output_version.to_be_bytes());
        update_str(&mut h, parts.rendition);
        h.update(parts.index.to_be_bytes());
        let digest = h.finalize();
        let mut text = String::with_capacity(KEY_PREFIX.len() + 8 + 1 + 64);
        text.push_str(KEY_PREFIX);
        text.push_str(parts.kind.as_str());
        text.push(':');
        push_hex(&mut text, digest.as_slice());
        Key {
            kind: parts.kind,
            text: text.into(),
        }
    }

    /// The kind this key names.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The rendered key, as stored in Redis.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The Redis key of the cross-instance generation lock for this key
    /// (`hlsgate:v1:lock:<kind>:<hex>`).
    pub fn lock_key(&self) -> String {
        let rest = self.text.strip_prefix(KEY_PREFIX).unwrap_or(&self.text);
        format!("{KEY_PREFIX}lock:{rest}")
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Key").field(&&*self.text).finish()
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn update_str(h: &mut Sha256, s: &str) {
    h.update((s.len() as u64).to_be_bytes());
    h.update(s.as_bytes());
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts<'a>(source: &'a str, rendition: &'a str, index: u64) -> KeyParts<'a> {
        KeyParts {
            kind: Kind::Segment,
            source,
            index_version: 2,
            plan_version: 3,
            output_version: 7,
            rendition,
            index,
        }
    }

    #[test]
    fn rendered_form_is_fixed_length_and_hides_the_source() {
        let secret = "https://example.com/a.mkv?token=SECRET|size=10|etag=\"x\"";
        let k = Key::new(parts(secret, "v:src", 12));
        let s = k.as_str();
        assert!(s.starts_with("hlsgate:v1:segment:"), "{s}");
        let hex = &s["hlsgate:v1:segment:".len()..];
        assert_eq!(hex.len(), 64);
        assert!(hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        assert!(!s.contains("SECRET") && !s.contains("example"));
        assert_eq!(k, Key::new(parts(secret, "v:src", 12)));
        // Independent check of the digest and its hex form: feed the documented input layout to
        // coreutils' sha256sum.
        let mut input = Vec::new();
        input.extend_from_slice(b"hlsgate-key");
        input.extend_from_slice(&2u32.to_be_bytes());
        input.extend_from_slice(b"segment\0");
        input.extend_from_slice(&(secret.len() as u64).to_be_bytes());
        input.extend_from_slice(secret.as_bytes());
        input.extend_from_slice(&2u32.to_be_bytes());
        input.extend_from_slice(&3u32.to_be_bytes());
        input.extend_from_slice(&7u32.to_be_bytes());
        input.extend_from_slice(&5u64.to_be_bytes());
        input.extend_from_slice(b"v:src");
        input.extend_from_slice(&12u64.to_be_bytes());
        let mut child = std::process::Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), &input).unwrap();
        let out = child.wait_with_output().unwrap();
        let expected = String::from_utf8(out.stdout).unwrap();
        assert_eq!(hex, &expected[..64]);
        assert_eq!(k.lock_key(), format!("hlsgate:v1:lock:segment:{hex}"));
    }

    #[test]
    fn every_part_changes_the_key() {
        let base = Key::new(parts("src", "r", 1));
        let variants = [
            Key::new(parts("src2", "r", 1)),
            Key::new(parts("src", "r2", 1)),
            Key::new(parts("src", "r", 2)),
            Key::new(KeyParts {
                index_version: 3,
                ..parts("src", "r", 1)
            }),
            Key::new(KeyParts {
                plan_version: 4,
                ..parts("src", "r", 1)
            }),
            Key::new(KeyParts {
                output_version: 8,
                ..parts("src", "r", 1)
            }),
            Key::new(KeyParts {
                kind: Kind::Init,
                ..parts("src", "r", 1)
            }),
            // Moving a byte between the two strings must not collide (length prefixes).
            Key::new(parts("sr", "cr", 1)),
        ];
        for v in &variants {
            assert_ne!(&base, v);
            assert_ne!(base.as_str(), v.as_str());
        }
    }
}
