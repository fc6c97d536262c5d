//! `[sip] trusted`: a list of CIDR blocks, IPv4 and IPv6, and whether a
//! source address falls inside one of them.
//!
//! An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, what a dual-stack
//! socket reports for an IPv4 peer) is matched as the IPv4 address it
//! carries, and a block written in that form (`::ffff:10.0.0.0/104`) as the
//! IPv4 block it means, so one list works whatever the socket family.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// One CIDR block: a network address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

/// Why a string is not a CIDR block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("{0:?} is not an IP address or a block like \"10.0.0.0/8\"")]
    Syntax(String),
    #[error("{0:?}: the prefix length must be 0 to {1}")]
    Prefix(String, u8),
    #[error("{0:?} has bits set past its prefix; did you mean \"{1}\"?")]
    HostBits(String, Cidr),
}

impl Cidr {
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.net, canonical(addr)) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = mask32(self.prefix);
                u32::from(a) & mask == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = mask128(self.prefix);
                u128::from(a) & mask == u128::from(net)
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    /// `"10.0.0.0/8"`, `"2001:db8::/32"`, or a bare address (one host).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| CidrError::Syntax(s.to_string()))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => {
                if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(CidrError::Syntax(s.to_string()));
                }
                p.parse::<u8>()
                    .ok()
                    .filter(|p| *p <= max)
                    .ok_or_else(|| CidrError::Prefix(s.to_string(), max))?
            }
        };
        let (net, prefix) = match addr {
            IpAddr::V6(v6) if prefix >= 96 && v6.to_ipv4_mapped().is_some() => (
                IpAddr::V4(v6.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED)),
                prefix - 96,
            ),
            other => (other, prefix),
        };
        let masked = match net {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask32(prefix))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask128(prefix))),
        };
        let cidr = Cidr {
            net: masked,
            prefix,
        };
        if masked != net {
            return Err(CidrError::HostBits(s.to_string(), cidr));
        }
        Ok(cidr)
    }
}

/// `[sip] untrusted`: the answer to a request from outside `[sip] trusted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UntrustedPolicy {
    /// A stateless 403 Forbidden.
    #[default]
    Reject,
    /// Nothing at all.
    Drop,
}

/// The sources rivr trusts: a list of blocks, any match admits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acl {
    blocks: Vec<Cidr>,
}

impl Acl {
    pub fn new(blocks: Vec<Cidr>) -> Self {
        Acl { blocks }
    }

    pub fn allows(&self, addr: IpAddr) -> bool {
        self.blocks.iter().any(|b| b.contains(addr))
    }

    pub fn blocks(&self) -> &[Cidr] {
        &self.blocks
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it carries.
pub fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(prefix.min(128)))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn cidr(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn ipv4_blocks_and_their_edges() {
        let b = cidr("10.0.0.0/8");
        assert!(b.contains(ip("10.0.0.0")));
        assert!(b.contains(ip("10.255.255.255")));
        assert!(!b.contains(ip("9.255.255.255")));
        assert!(!b.contains(ip("11.0.0.0")));
        let host = cidr("192.0.2.7");
        assert_eq!(host, cidr("192.0.2.7/32"));
        assert!(host.contains(ip("192.0.2.7")));
        assert!(!host.contains(ip("192.0.2.6")));
        let odd = cidr("172.16.0.0/12");
        assert!(odd.contains(ip("172.31.255.255")));
        assert!(!odd.contains(ip("172.32.0.0")));
        let all = cidr("0.0.0.0/0");
        assert!(all.contains(ip("255.255.255.255")) && all.contains(ip("0.0.0.0")));
        assert!(!all.contains(ip("::1")), "an IPv4 block never matches IPv6");
    }

    #[test]
    fn ipv6_blocks_and_their_edges() {
        let b = cidr("2001:db8::/32");
        assert!(b.contains(ip("2001:db8::")));
        assert!(b.contains(ip("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")));
        assert!(!b.contains(ip("2001:db9::")));
        assert!(!b.contains(ip("10.0.0.1")));
        let host = cidr("::1");
        assert!(host.contains(ip("::1")) && !host.contains(ip("::2")));
        let all = cidr("::/0");
        assert!(all.contains(ip("fe80::1")));
        let odd = cidr("2001:db8:80::/41");
        assert!(odd.contains(ip("2001:db8:ff::1")));
        assert!(!odd.contains(ip("2001:db8:7f::1")));
    }

    #[test]
    fn ipv4_mapped_addresses_match_ipv4_blocks() {
        let b = cidr("127.0.0.2/32");
        assert!(b.contains(ip("::ffff:127.0.0.2")));
        assert!(!b.contains(ip("::ffff:127.0.0.1")));
        let mapped = cidr("::ffff:10.0.0.0/104");
        assert_eq!(mapped, cidr("10.0.0.0/8"));
        assert!(mapped.contains(ip("10.1.2.3")));
    }

    #[test]
    fn bad_blocks_say_what_is_wrong() {
        for s in [
            "",
            "10.0.0",
            "10.0.0.0/",
            "10.0.0.0/x",
            "10.0.0.0/+8",
            "host/8",
        ] {
            assert!(
                matches!(s.parse::<Cidr>(), Err(CidrError::Syntax(_))),
                "{s:?}"
            );
        }
        assert!(matches!(
            "10.0.0.0/33".parse::<Cidr>(),
            Err(CidrError::Prefix(_, 32))
        ));
        assert!(matches!(
            "::/129".parse::<Cidr>(),
            Err(CidrError::Prefix(_, 128))
        ));
        let e = "10.1.2.3/8".parse::<Cidr>().unwrap_err().to_string();
        assert!(e.contains("did you mean \"10.0.0.0/8\""), "{e}");
    }

    #[test]
    fn an_acl_admits_any_match() {
        let acl = Acl::new(vec![cidr("10.0.0.0/8"), cidr("2001:db8::/32")]);
        assert!(acl.allows(ip("10.9.9.9")));
        assert!(acl.allows(ip("2001:db8::5")));
        assert!(!acl.allows(ip("192.0.2.1")));
        assert!(!Acl::default().allows(ip("10.0.0.1")));
    }
}
