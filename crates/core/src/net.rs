//! Addresses as settings write them: the host the gateway binds to (`gateway.bind`, `--bind`)
//! and addresses or networks in CIDR form (`gateway.trustedProxies`), which the settings, the
//! gateway, the CLI and the window all parse here; and this computer's own addresses. Pure but
//! for [`lan_addresses`], which asks the OS.

use std::net::{IpAddr, Ipv6Addr};

/// The address a bind host names: an IP address (IPv6 with or without brackets) or
/// `localhost`, which is `127.0.0.1`. `None` for anything else (host names are not resolved).
pub fn bind_ip(host: &str) -> Option<IpAddr> {
    match host.trim() {
        "localhost" => Some(IpAddr::from([127, 0, 0, 1])),
        h => h.trim_matches(|c| c == '[' || c == ']').parse().ok(),
    }
}

/// This computer's non-loopback addresses (for deriving a setup-code URL, and for the names of
/// the self-signed certificate).
pub fn lan_addresses() -> Vec<IpAddr> {
    if_addrs::get_if_addrs()
        .map(|v| {
            v.into_iter()
                .map(|i| i.ip())
                .filter(|ip| !ip.is_loopback())
                .collect()
        })
        .unwrap_or_default()
}

/// A setting that is not an address or a network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("{0:?} is not an IP address or a network in CIDR form (e.g. 127.0.0.1, 10.0.0.0/8, fd00::/8)")]
    BadEntry(String),
}

/// An address or a network (`10.0.0.0/8`, `fd00::/8`; a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Cidr, CidrError> {
        let bad = || CidrError::BadEntry(s.to_string());
        let t = s.trim();
        let (addr, prefix) = match t.split_once('/') {
            Some((a, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                (a, Some(p.parse::<u8>().map_err(|_| bad())?))
            }
            Some(_) => return Err(bad()),
            None => (t, None),
        };
        let ip = canonical(
            addr.trim_matches(|c| c == '[' || c == ']')
                .parse::<IpAddr>()
                .map_err(|_| bad())?,
        );
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(Cidr {
            net: mask(ip, prefix),
            prefix,
        })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_ipv4() == self.net.is_ipv4() && mask(ip, self.prefix) == self.net
    }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - prefix)
            };
            IpAddr::from((bits & m).to_be_bytes())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - prefix)
            };
            IpAddr::V6(Ipv6Addr::from(bits & m))
        }
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        ip => ip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn bind_hosts_are_addresses_or_localhost() {
        assert_eq!(bind_ip(" 0.0.0.0 "), Some(ip("0.0.0.0")));
        assert_eq!(bind_ip("localhost"), Some(ip("127.0.0.1")));
        assert_eq!(bind_ip("[::1]"), Some(ip("::1")));
        assert_eq!(bind_ip("::"), Some(ip("::")));
        for bad in ["", "not an ip", "example.com", "10.0.0.1:80"] {
            assert_eq!(bind_ip(bad), None, "{bad}");
        }
    }

    #[test]
    fn cidrs_parse_and_match_and_bad_entries_are_refused() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains(ip("10.200.1.1")) && !c.contains(ip("11.0.0.1")));
        assert!(
            c.contains(ip("::ffff:10.1.1.1")),
            "IPv4-mapped counts as IPv4"
        );
        assert!(Cidr::parse("fd00::/8")
            .unwrap()
            .contains(ip("fd12:3456::1")));
        assert!(Cidr::parse("::1").unwrap().contains(ip("::1")));
        assert!(Cidr::parse("127.0.0.1").unwrap().contains(ip("127.0.0.1")));
        assert!(!Cidr::parse("127.0.0.1").unwrap().contains(ip("127.0.0.2")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0/8",
            "example.com",
            "1.2.3.4/x",
        ] {
            assert_eq!(
                Cidr::parse(bad),
                Err(CidrError::BadEntry(bad.into())),
                "{bad}"
            );
        }
    }
}
