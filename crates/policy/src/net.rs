//! Addresses: CIDR blocks, parsed strictly and matched exactly.

use serde::{Serialize, Serializer};
use std::fmt;
use std::net::IpAddr;

/// An IPv4 or IPv6 block, normalised (host bits cleared).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// Parse `a.b.c.d/n`, `x::y/n`, or a bare address (a single host).
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("`{s}` is not a CIDR block (e.g. 10.0.0.0/8)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max && !p.starts_with('+') => n,
                _ => return Err(format!("`{s}`: prefix length must be 0..={max}")),
            },
        };
        Ok(Cidr {
            addr: mask(addr, prefix),
            prefix,
        })
    }

    /// The single-host block of an address as events spell it (IPv4-mapped IPv6 is IPv4).
    pub fn host(ip: &str) -> Option<Cidr> {
        let addr = canonical(ip)?;
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        Some(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: &str) -> bool {
        match canonical(ip) {
            Some(a) if a.is_ipv4() == self.addr.is_ipv4() => mask(a, self.prefix) == self.addr,
            _ => false,
        }
    }
}

/// Parse an event's address; `::ffff:1.2.3.4` becomes `1.2.3.4` so one policy covers both.
pub fn canonical(ip: &str) -> Option<IpAddr> {
    ip.parse::<IpAddr>().ok().map(|a| a.to_canonical())
}

fn mask(a: IpAddr, prefix: u8) -> IpAddr {
    match a {
        IpAddr::V4(v) => {
            let bits = u32::from(v);
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix))
            };
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(v) => {
            let bits = u128::from(v);
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix))
            };
            IpAddr::V6((bits & m).into())
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_contain() {
        let c = Cidr::parse("10.1.2.3/8").unwrap();
        assert_eq!(c.to_string(), "10.0.0.0/8");
        assert!(c.contains("10.9.9.9"));
        assert!(!c.contains("11.0.0.1"));
        assert!(Cidr::parse("127.0.0.1/32")
            .unwrap()
            .contains("::ffff:127.0.0.1"));
        assert!(Cidr::parse("::1/128").unwrap().contains("::1"));
        assert!(Cidr::parse("1.2.3.4/33").is_err());
        assert!(Cidr::parse("1.2.3/8").is_err());
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains("8.8.8.8"));
        assert!(!Cidr::parse("0.0.0.0/0").unwrap().contains("::1"));
        assert!(Cidr::parse("x").is_err());
    }
}
