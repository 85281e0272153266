//! The SSRF guard: which upstream addresses the proxy may connect to.
//!
//! A server that fetches URLs chosen by its clients must not become a way into the network it
//! runs in. [`AddressPolicy::PublicOnly`] refuses every address that is not globally routable —
//! loopback, RFC 1918 private, link-local (169.254.0.0/16, which holds the cloud metadata
//! service 169.254.169.254, and fe80::/10), unique-local fc00::/7, CGNAT 100.64.0.0/10,
//! unspecified, multicast, broadcast and reserved ranges, and the IPv4-mapped, IPv4-compatible,
//! NAT64 and 6to4 IPv6 forms of any of those — unless the address is inside an allow-listed
//! [`Cidr`].
//!
//! It is applied where the address is finally known:
//! - host names: by [`GuardedResolver`], the HTTP client's DNS resolver, on the addresses it
//!   connects to (so a name that resolves to a private address, or re-resolves to one later —
//!   DNS rebinding — is refused at connect time);
//! - IP-literal URLs (which skip DNS): before the request, in `HttpSource::open`;
//! - every redirect: the client's redirect policy re-checks the target (IP literals directly,
//!   names again through the resolver when the redirect connects).
//!
//! A proxy configured through the environment (`HTTP_PROXY`) would resolve names itself, so a
//! guarded client never uses one.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

/// An IP network in CIDR notation (`10.0.0.0/8`, `fd00::/8`, or a single address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// A CIDR that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a CIDR network: {0:?} (expected e.g. 10.0.0.0/8 or fd00::/8)")]
pub struct BadCidr(pub String);

impl Cidr {
    /// The network `addr/prefix`; `None` when the prefix is longer than the address.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Cidr> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Cidr { addr, prefix })
    }

    /// Whether `ip` lies in this network (IPv4-mapped IPv6 addresses match IPv4 networks).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = BadCidr;

    fn from_str(s: &str) -> Result<Cidr, BadCidr> {
        let bad = || BadCidr(s.to_string());
        let s = s.trim();
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| bad())?;
        let prefix = match p {
            Some(p) => p.parse::<u8>().map_err(|_| bad())?,
            None if addr.is_ipv4() => 32,
            None => 128,
        };
        Cidr::new(addr, prefix).ok_or_else(bad)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// An address the policy refuses, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("address {addr} is {reason}; refused (allow-list it to permit)")]
pub struct Blocked {
    /// The refused address.
    pub addr: IpAddr,
    /// The range it is in ("loopback", "private", …).
    pub reason: &'static str,
}

/// Which addresses upstream requests may reach.
#[derive(Debug, Clone, Default)]
pub enum AddressPolicy {
    /// Anything (the CLI, where the user typed the URL). The default of [`crate::HttpConfig`].
    #[default]
    Unrestricted,
    /// Only globally routable addresses, plus these allow-listed networks (the server).
    PublicOnly(Arc<Vec<Cidr>>),
}

impl AddressPolicy {
    /// Public addresses only, plus `allow`.
    pub fn public_only(allow: Vec<Cidr>) -> Self {
        AddressPolicy::PublicOnly(Arc::new(allow))
    }

    /// Whether this policy restricts anything.
    pub fn is_restricted(&self) -> bool {
        matches!(self, AddressPolicy::PublicOnly(_))
    }

    /// `Ok` when a connection to `ip` is allowed.
    pub fn check(&self, ip: IpAddr) -> Result<(), Blocked> {
        match self {
            AddressPolicy::Unrestricted => Ok(()),
            AddressPolicy::PublicOnly(allow) => {
                let Some(reason) = special_range(ip) else {
                    return Ok(());
                };
                if allow.iter().any(|c| c.contains(ip)) {
                    return Ok(());
                }
                Err(Blocked {
                    addr: canonical(ip),
                    reason,
                })
            }
        }
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as the IPv4 address it is; others unchanged.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn in_v6(ip: Ipv6Addr, net: u128, prefix: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    u128::from(ip) & mask == net & mask
}

/// The non-public range `ip` is in, if any.
pub fn special_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => special_v4(v4),
        IpAddr::V6(v6) => special_v6(v6),
    }
}

fn special_v4(ip: Ipv4Addr) -> Option<&'static str> {
    const RANGES: &[([u8; 4], u32, &str)] = &[
        ([0, 0, 0, 0], 8, "unspecified (\"this network\")"),
        ([127, 0, 0, 0], 8, "loopback"),
        ([10, 0, 0, 0], 8, "private"),
        ([172, 16, 0, 0], 12, "private"),
        ([192, 168, 0, 0], 16, "private"),
        ([169, 254, 0, 0], 16, "link-local (cloud metadata)"),
        ([100, 64, 0, 0], 10, "shared address space (CGNAT)"),
        ([192, 0, 0, 0], 24, "reserved (IETF protocol assignments)"),
        ([192, 0, 2, 0], 24, "reserved (documentation)"),
        ([198, 51, 100, 0], 24, "reserved (documentation)"),
        ([203, 0, 113, 0], 24, "reserved (documentation)"),
        ([198, 18, 0, 0], 15, "reserved (benchmarking)"),
        ([224, 0, 0, 0], 4, "multicast"),
        ([240, 0, 0, 0], 4, "reserved (incl. broadcast)"),
    ];
    RANGES
        .iter()
        .find(|(net, p, _)| in_v4(ip, *net, *p))
        .map(|r| r.2)
}

fn special_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let bits = u128::from(ip);
    // Forms that embed an IPv4 address are judged by that address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return special_v4(v4);
    }
    if in_v6(ip, 0x0064_ff9b << 96, 96) {
        // NAT64 well-known prefix 64:ff9b::/96.
        return special_v4(Ipv4Addr::from((bits & 0xffff_ffff) as u32));
    }
    if in_v6(ip, 0x2002 << 112, 16) {
        // 6to4 2002:V4ADDR::/48.
        return special_v4(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32));
    }
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    const RANGES: &[(u128, u32, &str)] = &[
        // ::/96 holds the deprecated IPv4-compatible addresses (::a.b.c.d), and :: / ::1.
        (0, 96, "reserved (IPv4-compatible)"),
        (0xfe80 << 112, 10, "link-local"),
        (0xfec0 << 112, 10, "site-local (deprecated)"),
        (0xfc00 << 112, 7, "unique-local"),
        (0xff00 << 112, 8, "multicast"),
        (0x0100 << 112, 64, "reserved (discard-only)"),
        (0x2001_0db8 << 96, 32, "reserved (documentation)"),
    ];
    RANGES
        .iter()
        .find(|(net, p, _)| in_v6(ip, *net, *p))
        .map(|r| r.2)
}

/// The DNS resolver of a guarded client: the system resolver, then the policy on every address
/// it returned. Refused addresses are dropped; when none is left the lookup fails with
/// [`Blocked`] (found again by walking the request error's source chain).
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    policy: AddressPolicy,
}

impl GuardedResolver {
    /// A resolver applying `policy`.
    pub fn new(policy: AddressPolicy) -> Self {
        GuardedResolver { policy }
    }
}

/// Caps how many addresses of one name are tried.
const MAX_ADDRS: usize = 16;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .take(MAX_ADDRS)
                .collect();
            let mut first_refusal = None;
            let mut ok = Vec::new();
            for a in found {
                match policy.check(a.ip()) {
                    Ok(()) => ok.push(a),
                    Err(b) => {
                        first_refusal.get_or_insert(b);
                    }
                }
            }
            if ok.is_empty() {
                let err: Box<dyn std::error::Error + Send + Sync> = match first_refusal {
                    Some(b) => Box::new(b),
                    None => Box::new(std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "no address",
                    )),
                };
                return Err(err);
            }
            let addrs: reqwest::dns::Addrs = Box::new(ok.into_iter());
            Ok(addrs)
        })
    }
}

/// The [`Blocked`] refusal somewhere in an error's source chain, if any.
pub fn find_blocked<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a Blocked> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut depth = 0;
    while let Some(err) = cur {
        if let Some(b) = err.downcast_ref::<Blocked>() {
            return Some(b);
        }
        depth += 1;
        if depth > 32 {
            break;
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guarded(allow: &[&str]) -> AddressPolicy {
        AddressPolicy::public_only(allow.iter().map(|c| c.parse().unwrap()).collect())
    }

    #[test]
    fn refuses_internal_ranges() {
        let p = guarded(&[]);
        for bad in [
            "127.0.0.1",
            "127.255.0.9",
            "0.0.0.0",
            "10.0.0.1",
            "172.16.5.4",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::1",
        ] {
            let ip: IpAddr = bad.parse().unwrap();
            assert!(p.check(ip).is_err(), "{bad} was allowed");
        }
        for good in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            let ip: IpAddr = good.parse().unwrap();
            assert!(p.check(ip).is_ok(), "{good} was refused");
        }
        assert!(AddressPolicy::Unrestricted
            .check("127.0.0.1".parse().unwrap())
            .is_ok());
    }

    #[test]
    fn allow_list_opens_exactly_its_networks() {
        let p = guarded(&["127.0.0.1/32", "10.1.0.0/16", "fd00::/8"]);
        assert!(p.check("127.0.0.1".parse().unwrap()).is_ok());
        assert!(p.check("::ffff:127.0.0.1".parse().unwrap()).is_ok());
        assert!(p.check("127.0.0.2".parse().unwrap()).is_err());
        assert!(p.check("10.1.200.3".parse().unwrap()).is_ok());
        assert!(p.check("10.2.0.1".parse().unwrap()).is_err());
        assert!(p.check("fd00::5".parse().unwrap()).is_ok());
        assert!(p.check("::1".parse().unwrap()).is_err());
    }

    #[test]
    fn parses_cidrs() {
        assert_eq!(
            "10.0.0.0/8".parse::<Cidr>().unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert_eq!("::1".parse::<Cidr>().unwrap().to_string(), "::1/128");
        assert_eq!("[::1]/128".parse::<Cidr>().unwrap().to_string(), "::1/128");
        for bad in ["10.0.0.0/33", "::/129", "nope", "10.0.0.0/x", ""] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("127.0.0.1".parse().unwrap()));
    }

    #[tokio::test]
    async fn resolver_refuses_localhost() {
        use reqwest::dns::Resolve;
        let r = GuardedResolver::new(guarded(&[]));
        let err = match r.resolve("localhost".parse().unwrap()).await {
            Ok(addrs) => panic!("localhost resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(e) => e,
        };
        let b = find_blocked(err.as_ref()).expect("a Blocked error");
        assert!(b.addr.is_loopback(), "{b}");
        let open = GuardedResolver::new(guarded(&["127.0.0.0/8", "::1/128"]));
        let addrs: Vec<_> = open
            .resolve("localhost".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert!(!addrs.is_empty());
    }
}
