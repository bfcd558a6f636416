//! Address ranges that validation never connects to (`[acme.validation] deny_ranges`): an
//! [`IpRange`] is a CIDR block, and [`DenyList`] matches an address against all of them.
//! IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are matched as the IPv4 address they carry, and
//! a range written inside `::ffff:0:0/96` is stored as the IPv4 range it covers, so neither
//! spelling slips past the other.

use std::{fmt, net::IpAddr, str::FromStr};

/// A CIDR block (`10.0.0.0/8`, `fc00::/7`; a bare address is a single-address block).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    network: IpAddr,
    prefix: u8,
}

/// An IPv4-mapped IPv6 address as the IPv4 address it carries; any other address unchanged.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn bits(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

/// The `prefix` leading bits of a `width`-bit number, as a mask.
fn mask(prefix: u8, width: u8) -> u128 {
    if prefix == 0 {
        return 0;
    }
    let all = if width == 128 { u128::MAX } else { (1u128 << width) - 1 };
    all & !((1u128 << (width - prefix)) - 1)
}

impl IpRange {
    /// Whether `ip` lies in the range (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        if ip.is_ipv4() != self.network.is_ipv4() {
            return false;
        }
        let (value, width) = bits(ip);
        let (network, _) = bits(self.network);
        value & mask(self.prefix, width) == network
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl FromStr for IpRange {
    type Err = String;

    /// Parses `address/prefix` or a bare address. The address must be the first of its block
    /// (`10.1.0.0/8` is refused rather than silently widened).
    fn from_str(s: &str) -> Result<Self, String> {
        let (address, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let address: IpAddr =
            address.trim().parse().map_err(|_| format!("`{s}` is not an IPv4 or IPv6 address with a /prefix"))?;
        let width = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= width)
                .ok_or_else(|| format!("`{s}`: the prefix length must be 0 to {width}"))?,
            None => width,
        };
        let (value, _) = bits(address);
        if value & !mask(prefix, width) != 0 {
            let network = match address {
                IpAddr::V4(_) => IpAddr::V4(u32::try_from(value & mask(prefix, width)).unwrap_or(0).into()),
                IpAddr::V6(_) => IpAddr::V6((value & mask(prefix, width)).into()),
            };
            return Err(format!("`{s}` has host bits set; did you mean {network}/{prefix}?"));
        }
        // A range inside ::ffff:0:0/96 is the IPv4 range it maps.
        if let (IpAddr::V6(v6), true) = (address, prefix >= 96) {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return Ok(Self { network: IpAddr::V4(v4), prefix: prefix - 96 });
            }
        }
        Ok(Self { network: address, prefix })
    }
}

/// The configured ranges; empty denies nothing.
#[derive(Debug, Clone, Default)]
pub struct DenyList(Vec<IpRange>);

impl DenyList {
    /// A list of `ranges`.
    pub fn new(ranges: Vec<IpRange>) -> Self {
        Self(ranges)
    }

    /// The first range holding `ip`, if any.
    pub fn matching(&self, ip: IpAddr) -> Option<&IpRange> {
        self.0.iter().find(|r| r.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn list(ranges: &[&str]) -> DenyList {
        DenyList::new(ranges.iter().map(|r| r.parse().unwrap()).collect())
    }

    #[test]
    fn ipv4_ranges() {
        let deny = list(&["127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"]);
        for denied in ["127.0.0.1", "127.255.255.255", "10.1.2.3", "172.31.255.1", "192.168.0.1", "169.254.169.254"] {
            assert!(deny.matching(ip(denied)).is_some(), "{denied} passed");
        }
        for allowed in ["128.0.0.1", "11.0.0.1", "172.32.0.1", "172.15.255.255", "192.169.0.1", "8.8.8.8"] {
            assert!(deny.matching(ip(allowed)).is_none(), "{allowed} denied");
        }
        assert_eq!(deny.matching(ip("172.20.0.9")).unwrap().to_string(), "172.16.0.0/12");
        let single = list(&["127.0.0.2/32"]);
        assert!(single.matching(ip("127.0.0.2")).is_some());
        assert!(single.matching(ip("127.0.0.1")).is_none() && single.matching(ip("127.0.0.3")).is_none());
        let everything = list(&["0.0.0.0/0"]);
        assert!(everything.matching(ip("203.0.113.7")).is_some());
        assert!(everything.matching(ip("2001:db8::1")).is_none(), "an IPv4 range never holds an IPv6 address");
    }

    #[test]
    fn ipv6_ranges() {
        let deny = list(&["::1/128", "fe80::/10", "fc00::/7", "2001:db8:1::/48"]);
        for denied in ["::1", "fe80::1", "febf:ffff::1", "fd12:3456::1", "fc00::", "2001:db8:1:ffff::9"] {
            assert!(deny.matching(ip(denied)).is_some(), "{denied} passed");
        }
        for allowed in ["::2", "fec0::1", "fe00::1", "2001:db8:2::1", "2606:4700::1111", "127.0.0.1"] {
            assert!(deny.matching(ip(allowed)).is_none(), "{allowed} denied");
        }
        assert!(list(&["::/0"]).matching(ip("2001:db8::1")).is_some());
    }

    #[test]
    fn ipv4_mapped_ipv6_addresses_match_as_ipv4() {
        let deny = list(&["127.0.0.0/8", "10.0.0.0/8"]);
        assert!(deny.matching(ip("::ffff:127.0.0.1")).is_some());
        assert!(deny.matching(ip("::ffff:7f00:1")).is_some());
        assert!(deny.matching(ip("::ffff:10.9.8.7")).is_some());
        assert!(deny.matching(ip("::ffff:11.9.8.7")).is_none());
        // A range written in mapped form denies the plain IPv4 addresses as well.
        let mapped = list(&["::ffff:192.168.0.0/112"]);
        assert_eq!(mapped.matching(ip("192.168.4.4")).unwrap().to_string(), "192.168.0.0/16");
        assert!(mapped.matching(ip("::ffff:192.168.4.4")).is_some());
        assert!(mapped.matching(ip("192.169.0.1")).is_none());
        assert_eq!(canonical(ip("::ffff:1.2.3.4")), ip("1.2.3.4"));
        assert_eq!(canonical(ip("::1")), ip("::1"), "loopback is not a mapped address");
    }

    #[test]
    fn parsing() {
        assert_eq!("10.0.0.0/8".parse::<IpRange>().unwrap().to_string(), "10.0.0.0/8");
        assert_eq!("127.0.0.2".parse::<IpRange>().unwrap().to_string(), "127.0.0.2/32");
        assert_eq!("::1".parse::<IpRange>().unwrap().to_string(), "::1/128");
        let host_bits = "10.1.0.0/8".parse::<IpRange>().unwrap_err();
        assert!(host_bits.contains("did you mean 10.0.0.0/8"), "{host_bits}");
        assert!("fe80::1/10".parse::<IpRange>().unwrap_err().contains("fe80::/10"));
        assert!("10.0.0.0/33".parse::<IpRange>().unwrap_err().contains("0 to 32"));
        assert!("::/129".parse::<IpRange>().is_err());
        assert!("example.com/8".parse::<IpRange>().is_err());
        assert!("10.0.0.0/".parse::<IpRange>().is_err());
        assert!("".parse::<IpRange>().is_err());
    }
}
