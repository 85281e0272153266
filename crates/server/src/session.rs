//! Home mode: one password protects the page, the library and the token API of a server that
//! other devices of a home network reach (`--listen 0.0.0.0:8080 --password …`).
//!
//! A browser logs in once (`POST /login`) and gets a session cookie; players keep getting
//! tokened URLs (`/v1/{token}/…`) that need no header and no cookie. The cookie holds its expiry
//! and an HMAC-SHA256 of it under a key derived (HKDF) from the token secret and the password:
//! nothing is stored on the server, a new password ends every session, and so does a restart
//! when the secret is the random one home mode makes without `--secret`.
//!
//! Guessing is slowed per client address (an IPv6 client's whole /64, which one host can
//! rotate through): after [`MAX_LOGIN_FAILURES`] wrong passwords within [`FAILURE_WINDOW`], that
//! address is answered 429 until the window passes. An attempt is counted before the password is
//! compared, so parallel guesses cannot slip past the count.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "hlsgate_session";
/// How long a login lasts.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// Shortest password accepted at start.
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest password compared (longer input is wrong without hashing it).
pub const MAX_PASSWORD_LEN: usize = 1024;
/// Wrong passwords one client address may send within [`FAILURE_WINDOW`].
pub const MAX_LOGIN_FAILURES: u32 = 10;
/// The window the failures of one address are counted in.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Most client addresses whose failures are remembered (the oldest are forgotten first).
pub const MAX_TRACKED_ADDRESSES: u64 = 65_536;
/// Longest cookie value looked at.
const MAX_COOKIE_LEN: usize = 256;
/// Version prefix of the cookie value.
const COOKIE_VERSION: &str = "v1";

/// The password, the session key and the failure counts of home mode.
pub struct Sessions {
    key: [u8; 32],
    password_digest: [u8; 32],
    failures: moka::future::Cache<IpAddr, Arc<AtomicU32>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sessions(..)")
    }
}

impl Sessions {
    /// Sessions for `password`, their key derived from the token `secret` and the password.
    pub fn new(secret: &[u8], password: &str) -> Self {
        let password_digest: [u8; 32] = Sha256::digest(password.as_bytes()).into();
        let mut key = [0u8; 32];
        hkdf::Hkdf::<Sha256>::new(Some(&password_digest), secret)
            .expand(b"hlsgate session v1", &mut key)
            .unwrap_or_else(|_| unreachable!("32 bytes is far below HKDF-SHA256's 8160"));
        Sessions {
            key,
            password_digest,
            failures: moka::future::Cache::builder()
                .max_capacity(MAX_TRACKED_ADDRESSES)
                .time_to_live(FAILURE_WINDOW)
                .build(),
        }
    }

    /// Whether `given` is the password (digests compared in constant time).
    pub fn password_matches(&self, given: &str) -> bool {
        if given.len() > MAX_PASSWORD_LEN {
            return false;
        }
        let d = Sha256::digest(given.as_bytes());
        bool::from(d.as_slice().ct_eq(&self.password_digest))
    }

    fn mac(&self, expires: u64) -> Hmac<Sha256> {
        let mut m = <Hmac<Sha256>>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        m.update(COOKIE_VERSION.as_bytes());
        m.update(&expires.to_be_bytes());
        m
    }

    /// A cookie value valid until `now` + [`SESSION_LIFETIME`] (Unix seconds).
    pub fn issue(&self, now: u64) -> String {
        let expires = now.saturating_add(SESSION_LIFETIME.as_secs());
        let tag = self.mac(expires).finalize().into_bytes();
        format!("{COOKIE_VERSION}.{expires}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// Whether `value` is a cookie value of ours that has not expired at `now`.
    pub fn valid(&self, value: &str, now: u64) -> bool {
        if value.len() > MAX_COOKIE_LEN {
            return false;
        }
        let mut parts = value.split('.');
        let (Some(COOKIE_VERSION), Some(exp), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let Ok(expires) = exp.parse::<u64>() else {
            return false;
        };
        let Ok(tag) = URL_SAFE_NO_PAD.decode(tag) else {
            return false;
        };
        self.mac(expires).verify_slice(&tag).is_ok() && now < expires
    }

    /// Whether the request carries a valid session cookie.
    pub fn logged_in(&self, headers: &HeaderMap, now: u64) -> bool {
        cookie_values(headers, SESSION_COOKIE).any(|v| self.valid(v, now))
    }

    /// Counts an attempt from `ip` as a failure until [`Sessions::succeeded`] says otherwise;
    /// `false` when `ip` had used up its failures already (answer 429, compare nothing).
    pub async fn attempt(&self, ip: IpAddr) -> bool {
        let n = self
            .failures
            .get_with(bucket(ip), async { Arc::new(AtomicU32::new(0)) })
            .await;
        let before = n.fetch_add(1, Ordering::SeqCst);
        if before >= MAX_LOGIN_FAILURES {
            // Stay at the limit (no overflow however long the guessing goes on).
            n.store(MAX_LOGIN_FAILURES, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Forgets the failures of `ip` (it logged in).
    pub async fn succeeded(&self, ip: IpAddr) {
        self.failures.invalidate(&bucket(ip)).await;
    }
}

/// Whose failures an address counts towards: an IPv4 address (also written as IPv4-mapped
/// IPv6), or an IPv6 client's /64.
fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The values of the cookies named `name` in every `Cookie` header.
fn cookie_values<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(move |pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k.trim() == name).then(|| v.trim())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn passwords_compare_whole() {
        let s = Sessions::new(b"secret-0123456789abcdef", "correct horse");
        assert!(s.password_matches("correct horse"));
        assert!(!s.password_matches("correct hors"));
        assert!(!s.password_matches("correct horse "));
        assert!(!s.password_matches(""));
        assert!(!s.password_matches(&"x".repeat(MAX_PASSWORD_LEN + 1)));
    }

    #[test]
    fn cookies_expire_and_resist_forgery() {
        let s = Sessions::new(b"secret-0123456789abcdef", "correct horse");
        let v = s.issue(NOW);
        assert!(s.valid(&v, NOW));
        assert!(s.valid(&v, NOW + SESSION_LIFETIME.as_secs() - 1));
        assert!(!s.valid(&v, NOW + SESSION_LIFETIME.as_secs()));
        // A later expiry with the old tag.
        let (_, tag) = v.rsplit_once('.').expect("three parts");
        let forged = format!("v1.{}.{tag}", u64::MAX);
        assert!(!s.valid(&forged, NOW));
        // Another password or another secret: other sessions.
        assert!(!Sessions::new(b"secret-0123456789abcdef", "other password").valid(&v, NOW));
        assert!(!Sessions::new(b"another-secret-0123456789", "correct horse").valid(&v, NOW));
        for bad in [
            "",
            "v1",
            "v1..",
            "v2.1.x",
            "v1.x.y",
            &format!("{v}.x"),
            &"v".repeat(300),
        ] {
            assert!(!s.valid(bad, NOW), "{bad}");
        }
    }

    #[test]
    fn cookie_is_found_among_others() {
        let s = Sessions::new(b"secret-0123456789abcdef", "correct horse");
        let v = s.issue(NOW);
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; b=2"));
        assert!(!s.logged_in(&h, NOW));
        h.append(
            header::COOKIE,
            HeaderValue::from_str(&format!("x=y; {SESSION_COOKIE}={v}")).expect("header"),
        );
        assert!(s.logged_in(&h, NOW));
    }

    #[tokio::test]
    async fn failures_lock_one_address() {
        let s = Sessions::new(b"secret-0123456789abcdef", "correct horse");
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        for _ in 0..MAX_LOGIN_FAILURES {
            assert!(s.attempt(a).await);
        }
        assert!(!s.attempt(a).await, "the 11th attempt is refused");
        assert!(s.attempt(b).await, "another address is not");
        s.succeeded(a).await;
        assert!(s.attempt(a).await, "a login forgets the failures");
        // One IPv6 /64 is one client; IPv4-mapped addresses are their IPv4 address.
        let v6 = |x: &str| -> IpAddr { x.parse().expect("ip") };
        for i in 0..MAX_LOGIN_FAILURES {
            assert!(s.attempt(v6(&format!("2001:db8:1:2::{:x}", i + 1))).await);
        }
        assert!(!s.attempt(v6("2001:db8:1:2:ffff::9")).await);
        assert!(s.attempt(v6("2001:db8:1:3::1")).await);
        let c: IpAddr = "198.51.100.7".parse().expect("ip");
        for _ in 0..MAX_LOGIN_FAILURES {
            assert!(s.attempt(c).await);
        }
        assert!(!s.attempt(v6("::ffff:198.51.100.7")).await);
    }
}
