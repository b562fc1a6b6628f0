//! Who a connection comes from when it arrives through a reverse proxy or a tunnel (the usual
//! way to get `wss://`): the `Forwarded` (RFC 7239) and `X-Forwarded-For` headers, believed
//! only from a peer in `gateway.trustedProxies`. Pure: headers and addresses in, an address out.
//!
//! A connection that carries any forwarding header (`Forwarded`, `X-Forwarded-*`, `X-Real-IP`)
//! is never treated as a local client, whoever sent it: behind a proxy on this computer every
//! client would otherwise look like loopback.

use std::net::{IpAddr, Ipv6Addr};

pub use crate::net::{canonical, Cidr, CidrError};

/// `gateway.trustedProxies`, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    pub fn parse(entries: &[String]) -> Result<TrustedProxies, CidrError> {
        entries
            .iter()
            .map(|e| Cidr::parse(e))
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }
}

/// Where a connection comes from, as far as the gateway can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr {
    /// The client's address: from a trusted proxy's headers, else the TCP peer's.
    pub ip: IpAddr,
    /// The request carried forwarding headers (trusted or not): it is not a local client.
    pub forwarded: bool,
}

impl ClientAddr {
    /// A client that arrived straight from this computer.
    pub fn direct(ip: IpAddr) -> ClientAddr {
        ClientAddr {
            ip: canonical(ip),
            forwarded: false,
        }
    }

    /// Whether the loopback exemption (`gateway.rateLimit.exemptLoopback`) applies: a loopback
    /// peer with no forwarding headers.
    pub fn is_local(&self) -> bool {
        !self.forwarded && self.ip.is_loopback()
    }
}

/// Whether a header name is evidence of forwarding.
pub fn is_forwarding_header(name: &str) -> bool {
    const PREFIX: &str = "x-forwarded-";
    name.eq_ignore_ascii_case("forwarded")
        || name.eq_ignore_ascii_case("x-real-ip")
        || name
            .get(..PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(PREFIX))
}

/// The client of a connection from `peer` whose request carried `headers` (name, value).
///
/// From an untrusted peer the headers are ignored (but still mark the connection as
/// forwarded). From a trusted proxy the chain of `Forwarded: for=` (or else
/// `X-Forwarded-For`) is read from the right: the first hop that is not itself a trusted
/// proxy is the client; a hop that names no address (`unknown`, an obfuscated `_name`, garbage)
/// stops the walk at the nearest trusted proxy. When both headers are present and name
/// different clients, one of them came from the client, and the proxy's own address is used.
pub fn resolve<'a>(
    peer: IpAddr,
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    trusted: &TrustedProxies,
) -> ClientAddr {
    let peer = canonical(peer);
    let mut forwarded = false;
    let mut rfc7239: Option<String> = None;
    let mut xff: Option<String> = None;
    for (name, value) in headers {
        if !is_forwarding_header(name) {
            continue;
        }
        forwarded = true;
        let value = String::from_utf8_lossy(value);
        let slot = if name.eq_ignore_ascii_case("forwarded") {
            &mut rfc7239
        } else if name.eq_ignore_ascii_case("x-forwarded-for") {
            &mut xff
        } else {
            continue;
        };
        // Several header lines are one comma-separated list (RFC 7230 §3.2.2).
        match slot {
            Some(s) => {
                s.push(',');
                s.push_str(&value);
            }
            None => *slot = Some(value.into_owned()),
        }
    }
    if !trusted.contains(peer) {
        return ClientAddr {
            ip: peer,
            forwarded,
        };
    }
    let from_rfc = rfc7239.map(|v| walk(&forwarded_chain(&v), peer, trusted));
    let from_xff = xff.map(|v| walk(&xff_chain(&v), peer, trusted));
    let ip = match (from_rfc, from_xff) {
        (Some(a), Some(b)) if a != b => peer,
        (Some(a), _) | (None, Some(a)) => a,
        (None, None) => peer,
    };
    ClientAddr { ip, forwarded }
}

/// The client in a chain of hops (leftmost first), seen from a trusted `peer`.
fn walk(chain: &[Option<IpAddr>], peer: IpAddr, trusted: &TrustedProxies) -> IpAddr {
    let mut nearest = peer;
    for hop in chain.iter().rev() {
        match hop {
            Some(ip) if trusted.contains(*ip) => nearest = *ip,
            Some(ip) => return *ip,
            None => return nearest,
        }
    }
    nearest
}

/// Splits on `sep` outside double quotes.
fn split_unquoted(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            out.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    out.push(&s[start..]);
    out
}

/// A quoted-string's content (backslash escapes undone), or a token as is.
fn unquote(v: &str) -> String {
    let v = v.trim();
    match v.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(inner) => {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                if c == '\\' {
                    if let Some(n) = chars.next() {
                        out.push(n);
                    }
                } else {
                    out.push(c);
                }
            }
            out
        }
        None => v.to_string(),
    }
}

/// The `for=` of each element of a `Forwarded` value, leftmost first.
fn forwarded_chain(value: &str) -> Vec<Option<IpAddr>> {
    split_unquoted(value, ',')
        .into_iter()
        .filter(|e| !e.trim().is_empty())
        .map(|element| {
            split_unquoted(element, ';').into_iter().find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                k.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| node_addr(&unquote(v)))
            })?
        })
        .collect()
}

/// The hops of an `X-Forwarded-For` value, leftmost first.
fn xff_chain(value: &str) -> Vec<Option<IpAddr>> {
    value
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(node_addr)
        .collect()
}

/// A node as proxies write it: `192.0.2.43`, `192.0.2.43:47011`, `[2001:db8::1]`,
/// `[2001:db8::1]:4711`, or a bare IPv6 address. `None` for `unknown`, an obfuscated name or
/// anything else.
fn node_addr(node: &str) -> Option<IpAddr> {
    let n = node.trim();
    if let Some(rest) = n.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        return inside
            .parse::<Ipv6Addr>()
            .ok()
            .map(|v6| canonical(IpAddr::V6(v6)));
    }
    if let Ok(ip) = n.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    let (host, port) = n.rsplit_once(':')?;
    if !is_port(port) {
        return None;
    }
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

fn is_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn trusted(list: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn from(
        peer: &str,
        headers: &[(&'static str, &'static str)],
        t: &TrustedProxies,
    ) -> ClientAddr {
        resolve(ip(peer), headers.iter().map(|(n, v)| (*n, v.as_bytes())), t)
    }

    #[test]
    fn forwarding_headers_are_known_in_any_case() {
        for name in [
            "Forwarded",
            "x-real-ip",
            "X-Forwarded-For",
            "x-forwarded-proto",
        ] {
            assert!(is_forwarding_header(name), "{name}");
        }
        for name in [
            "forwarded-x",
            "x-forwarded",
            "x-real-ipv6",
            "origin",
            "x-forwardé-for",
            "",
        ] {
            assert!(!is_forwarding_header(name), "{name}");
        }
    }

    #[test]
    fn headers_from_an_untrusted_peer_are_ignored_but_mark_it_forwarded() {
        let none = TrustedProxies::default();
        let c = from("127.0.0.1", &[("X-Forwarded-For", "203.0.113.9")], &none);
        assert_eq!(
            c,
            ClientAddr {
                ip: ip("127.0.0.1"),
                forwarded: true
            }
        );
        assert!(!c.is_local(), "forwarded loopback is not local");
        for h in [
            "Forwarded",
            "X-Real-IP",
            "X-Forwarded-Host",
            "x-forwarded-proto",
        ] {
            assert!(from("127.0.0.1", &[(h, "x")], &none).forwarded, "{h}");
        }
        assert!(from("127.0.0.1", &[("Host", "x")], &none).is_local());
    }

    #[test]
    fn x_forwarded_for_is_read_from_the_right_past_trusted_hops() {
        let t = trusted(&["127.0.0.1", "10.0.0.0/8"]);
        let c = |v: &'static str| from("127.0.0.1", &[("X-Forwarded-For", v)], &t).ip;
        assert_eq!(c("203.0.113.9"), ip("203.0.113.9"));
        // What the client wrote comes first; the proxies append on the right.
        assert_eq!(c("6.6.6.6, 203.0.113.9"), ip("203.0.113.9"));
        assert_eq!(c("6.6.6.6, 203.0.113.9, 10.1.1.1"), ip("203.0.113.9"));
        assert_eq!(c("203.0.113.9:5555"), ip("203.0.113.9"));
        assert_eq!(c("2001:db8::7"), ip("2001:db8::7"));
        assert_eq!(c("[2001:db8::7]:443"), ip("2001:db8::7"));
        // Nothing usable: the nearest trusted proxy stands for the client.
        assert_eq!(c("unknown"), ip("127.0.0.1"));
        assert_eq!(c("6.6.6.6, garbage, 10.1.1.1"), ip("10.1.1.1"));
        assert_eq!(c(""), ip("127.0.0.1"));
        // Every hop a trusted proxy: the first of them.
        assert_eq!(c("10.9.9.9, 10.1.1.1"), ip("10.9.9.9"));
        // Several header lines are one list.
        let two = from(
            "127.0.0.1",
            &[
                ("X-Forwarded-For", "6.6.6.6"),
                ("X-Forwarded-For", "198.51.100.4"),
            ],
            &t,
        );
        assert_eq!(two.ip, ip("198.51.100.4"));
    }

    #[test]
    fn forwarded_is_parsed_as_rfc_7239_writes_it() {
        let t = trusted(&["127.0.0.1"]);
        let c = |v: &'static str| from("127.0.0.1", &[("Forwarded", v)], &t).ip;
        assert_eq!(
            c("for=192.0.2.60;proto=http;by=203.0.113.43"),
            ip("192.0.2.60")
        );
        assert_eq!(
            c(r#"For="[2001:db8:cafe::17]:4711""#),
            ip("2001:db8:cafe::17")
        );
        assert_eq!(c(r#"for="192.0.2.43:47011""#), ip("192.0.2.43"));
        assert_eq!(c("for=192.0.2.43, for=198.51.100.17"), ip("198.51.100.17"));
        assert_eq!(
            c(r#"for="6.6.6.6,1.1.1.1", for=198.51.100.17"#),
            ip("198.51.100.17")
        );
        assert_eq!(c(r#"for="_hidden""#), ip("127.0.0.1"));
        assert_eq!(c("for=unknown"), ip("127.0.0.1"));
        assert_eq!(c("proto=https"), ip("127.0.0.1"), "an element without for=");
        assert_eq!(c(r#"for="[2001:db8::1]junk""#), ip("127.0.0.1"));
        assert_eq!(c(r#"for="[::ffff:192.0.2.5]""#), ip("192.0.2.5"));
    }

    #[test]
    fn both_headers_must_agree_or_the_proxy_stands_for_the_client() {
        let t = trusted(&["127.0.0.1"]);
        let agree = from(
            "127.0.0.1",
            &[
                ("Forwarded", "for=198.51.100.4"),
                ("X-Forwarded-For", "198.51.100.4"),
            ],
            &t,
        );
        assert_eq!(agree.ip, ip("198.51.100.4"));
        // The proxy appended to one header; the client wrote the other.
        let forged = from(
            "127.0.0.1",
            &[
                ("Forwarded", "for=6.6.6.6"),
                ("X-Forwarded-For", "6.6.6.6, 198.51.100.4"),
            ],
            &t,
        );
        assert_eq!(forged.ip, ip("127.0.0.1"));
        assert!(forged.forwarded);
    }
}
