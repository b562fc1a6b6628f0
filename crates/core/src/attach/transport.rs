//! How OpenClaw's admin token may travel to the gateway ClawPair attaches to (SPEC §6): over
//! `wss://` with the gateway's certificate pinned to any gateway not on loopback; over plain
//! `ws://` only on loopback, and then only to a socket this user (or root) owns. The listener
//! is checked right before connecting, and the socket that accepted the connection once it is
//! made, before a byte goes out. Every refusal says why, and comes before anything is sent.
//!
//! [`plan`] decides from the URL and the pin alone (pure); [`connect_loopback`] is the edge that
//! reads the kernel's socket tables ([`super::owner`]) and connects.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::net::TcpStream;

use super::owner::{self, Owner, SocketEntry};
use crate::net::canonical;
use crate::pairing::pin::normalize_fingerprint;

/// How the connection to the attached gateway is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// `wss://`, accepting only the certificate with this SHA-256 (canonical hex). Without a
    /// pin (allowed on loopback only) the system's certificate authorities decide.
    Tls { pin: Option<String> },
    /// Plain `ws://` on loopback: to the first of these addresses something listens on (both
    /// families for `localhost`), once its owner is checked ([`connect_loopback`]).
    Loopback { candidates: Vec<SocketAddr> },
}

impl Transport {
    /// The certificate pin to connect with.
    pub fn pin(&self) -> Option<String> {
        match self {
            Transport::Tls { pin } => pin.clone(),
            Transport::Loopback { .. } => None,
        }
    }
}

/// Why the token is not sent (or the gateway not reached).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("{0:?} is not a ws:// or wss:// URL")]
    NotWebSocket(String),
    #[error("refusing to send OpenClaw's token in clear to {host}: use wss:// with the certificate's SHA-256 pinned (--tls-fingerprint)")]
    ClearToNetwork { host: String },
    #[error("refusing to send OpenClaw's token to {host} without a pinned certificate: give the gateway certificate's SHA-256 (--tls-fingerprint, or Settings → OpenClaw)")]
    Unpinned { host: String },
    #[error(
        "{0:?} is not a certificate's SHA-256 fingerprint (64 hex digits, with or without colons)"
    )]
    BadPin(String),
    #[error("a certificate pin is given but {0} is plain ws://: use wss://")]
    PinWithoutTls(String),
    #[error("nothing listens on {at} (is the gateway running?)")]
    NoListener { at: String },
    #[error("refusing to send OpenClaw's token to {at}: the socket there belongs to uid {uid}, not to this user (uid {me}) or root")]
    OtherOwner { at: SocketAddr, uid: u32, me: u32 },
    #[error("refusing to send OpenClaw's token in clear to {at}: cannot tell whose socket it is ({why})")]
    Unverifiable { at: String, why: String },
    #[error("cannot reach the gateway at {at}: {why}")]
    Unreachable { at: SocketAddr, why: String },
}

/// A certificate pin in the canonical form setup codes use, or why it is not one.
pub fn normalize_pin(pin: &str) -> Result<String, TransportError> {
    normalize_fingerprint(pin).ok_or_else(|| TransportError::BadPin(pin.trim().to_string()))
}

/// How the token may travel to `url` with the certificate pin `pin` (any form
/// [`normalize_pin`] reads; blank is none), or why it may not.
pub fn plan(url: &str, pin: Option<&str>) -> Result<Transport, TransportError> {
    let not_ws = || TransportError::NotWebSocket(url.to_string());
    let parsed = url::Url::parse(url.trim()).map_err(|_| not_ws())?;
    let pin = pin
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(normalize_pin)
        .transpose()?;
    let host = parsed.host().ok_or_else(not_ws)?;
    let port = parsed.port_or_known_default().ok_or_else(not_ws)?;
    let loopback = loopback_addresses(&host);
    match parsed.scheme() {
        "wss" if pin.is_none() && loopback.is_empty() => Err(TransportError::Unpinned {
            host: host.to_string(),
        }),
        "wss" => Ok(Transport::Tls { pin }),
        "ws" if loopback.is_empty() => Err(TransportError::ClearToNetwork {
            host: host.to_string(),
        }),
        "ws" if pin.is_some() => Err(TransportError::PinWithoutTls(url.trim().to_string())),
        "ws" => Ok(Transport::Loopback {
            candidates: loopback
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect(),
        }),
        _ => Err(not_ws()),
    }
}

/// A URL and pin as the owner gives them (`--attach URL --tls-fingerprint SHA256`, Settings):
/// refused at once when the token could not travel to that gateway (no URL: the one OpenClaw's
/// config names, which is checked at connect). Returns the pin in canonical form.
pub fn check(url: Option<&str>, pin: Option<&str>) -> Result<Option<String>, TransportError> {
    let pin = pin.map(str::trim).filter(|p| !p.is_empty());
    if let Some(u) = url.map(str::trim).filter(|u| !u.is_empty()) {
        plan(u, pin)?;
    }
    pin.map(normalize_pin).transpose()
}

/// The addresses a host names when it is this computer's loopback (127.0.0.0/8, `::1`, an
/// IPv4-mapped loopback address, `localhost`); empty for anything else. Names other than
/// `localhost` are not resolved: what they resolve to can change under us.
fn loopback_addresses(host: &url::Host<&str>) -> Vec<IpAddr> {
    let ip = match host {
        url::Host::Domain(d) if d.eq_ignore_ascii_case("localhost") => {
            return vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()]
        }
        url::Host::Domain(_) => return vec![],
        url::Host::Ipv4(ip) => IpAddr::V4(*ip),
        url::Host::Ipv6(ip) => canonical(IpAddr::V6(*ip)),
    };
    if ip.is_loopback() {
        vec![ip]
    } else {
        vec![]
    }
}

/// A plain TCP connection to a loopback gateway, for the token to travel on: only to a listener
/// this user or root owns, looked at immediately before connecting, and only when the socket
/// that accepted the connection is theirs too (the port can change hands in between, e.g. while
/// OpenClaw restarts). Nothing has been sent on it yet.
pub async fn connect_loopback(
    candidates: &[SocketAddr],
    wait: Duration,
) -> Result<TcpStream, TransportError> {
    let me = current_uid();
    let shown = candidates
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" or ");
    let tables = read_tables().map_err(|why| TransportError::Unverifiable {
        at: shown.clone(),
        why,
    })?;
    let (to, owners) =
        owner::destination(&tables, candidates).ok_or(TransportError::NoListener { at: shown })?;
    if let Some(uid) = owners
        .into_iter()
        .find(|&u| owner::judge(u, me) != Owner::Trusted)
    {
        return Err(TransportError::OtherOwner { at: to, uid, me });
    }
    let unreachable = |why: String| TransportError::Unreachable { at: to, why };
    let stream = tokio::time::timeout(wait, TcpStream::connect(to))
        .await
        .map_err(|_| unreachable(format!("no connection within {wait:?}")))?
        .map_err(|e| unreachable(e.to_string()))?;
    let unverifiable = |why: String| TransportError::Unverifiable {
        at: to.to_string(),
        why,
    };
    let local = stream
        .local_addr()
        .map_err(|e| unverifiable(e.to_string()))?;
    let peer = stream
        .peer_addr()
        .map_err(|e| unverifiable(e.to_string()))?;
    // The accepting end is in the table once the handshake is done; should the kernel still be
    // finishing it (SYN cookies), it shows a moment later.
    let mut found = None;
    for attempt in 0..5 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        found = owner::accepting_uid(&read_tables().map_err(unverifiable)?, local, peer);
        if found.is_some() {
            break;
        }
    }
    match found.map(|uid| (uid, owner::judge(uid, me))) {
        Some((_, Owner::Trusted)) => {
            // As the client does for the connections it makes itself: frames go out at once.
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        Some((uid, Owner::Other(_))) => Err(TransportError::OtherOwner { at: to, uid, me }),
        None => Err(unverifiable(
            "the accepting socket is not in /proc/net/tcp".into(),
        )),
    }
}

/// This process's effective user id.
pub fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// This network namespace's TCP sockets, IPv4 and IPv6 (`/proc/self/net` is the namespace of
/// the process reading it). No IPv6 table means IPv6 is off: no sockets there.
pub fn read_tables() -> Result<Vec<SocketEntry>, String> {
    let read = |path: &str, optional: bool| match std::fs::read_to_string(path) {
        Ok(t) => Ok(owner::parse_table(&t)),
        Err(e) if optional && e.kind() == std::io::ErrorKind::NotFound => Ok(vec![]),
        Err(e) => Err(format!("cannot read {path}: {e}")),
    };
    let mut all = read("/proc/self/net/tcp", false)?;
    all.extend(read("/proc/self/net/tcp6", true)?);
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin() -> String {
        "ab".repeat(32)
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn plain_ws_to_another_computer_is_refused_naming_the_host() {
        for (url, host) in [
            ("ws://10.0.0.5:18789", "10.0.0.5"),
            ("ws://gateway.lan:18789/", "gateway.lan"),
            ("ws://[fd00::5]:18789", "[fd00::5]"),
            // Not resolved: a name could point anywhere by the time we connect.
            ("ws://localhost.example:18789", "localhost.example"),
            ("ws://0.0.0.0:18789", "0.0.0.0"),
        ] {
            let e = plan(url, None).unwrap_err();
            assert_eq!(e, TransportError::ClearToNetwork { host: host.into() });
            assert!(e.to_string().contains("in clear to"), "{e}");
            assert!(e.to_string().contains("wss://"), "says what to do: {e}");
        }
    }

    #[test]
    fn plain_ws_is_for_loopback_only_and_localhost_means_both_families() {
        assert_eq!(
            plan("ws://127.0.0.1:18789", None),
            Ok(Transport::Loopback {
                candidates: vec![sa("127.0.0.1:18789")]
            })
        );
        assert_eq!(
            plan("ws://127.3.2.1:1", Some("  ")),
            Ok(Transport::Loopback {
                candidates: vec![sa("127.3.2.1:1")]
            })
        );
        assert_eq!(
            plan("ws://[::1]:18789/", None),
            Ok(Transport::Loopback {
                candidates: vec![sa("[::1]:18789")]
            })
        );
        assert_eq!(
            plan("ws://[::ffff:127.0.0.1]:18789/", None),
            Ok(Transport::Loopback {
                candidates: vec![sa("127.0.0.1:18789")]
            })
        );
        assert_eq!(
            plan("ws://LocalHost", None),
            Ok(Transport::Loopback {
                candidates: vec![sa("127.0.0.1:80"), sa("[::1]:80")]
            })
        );
        // A pin means the owner expects TLS: plain ws:// then is a mistake, said so.
        assert_eq!(
            plan("ws://127.0.0.1:18789", Some(&pin())),
            Err(TransportError::PinWithoutTls("ws://127.0.0.1:18789".into()))
        );
    }

    #[test]
    fn wss_to_another_computer_needs_a_pin_in_any_form_setup_codes_take() {
        assert_eq!(
            plan("wss://10.0.0.5:18789", None),
            Err(TransportError::Unpinned {
                host: "10.0.0.5".into()
            })
        );
        let colons = vec!["AB"; 32].join(":");
        for given in [pin(), colons, format!("sha256:{}", pin().to_uppercase())] {
            assert_eq!(
                plan("wss://10.0.0.5:18789", Some(&given)),
                Ok(Transport::Tls { pin: Some(pin()) }),
                "{given}"
            );
        }
        assert_eq!(
            plan("wss://10.0.0.5:18789", Some("abcd")),
            Err(TransportError::BadPin("abcd".into()))
        );
        // On loopback the system's authorities may decide; a pin is still honoured.
        assert_eq!(
            plan("wss://127.0.0.1:18789", None),
            Ok(Transport::Tls { pin: None })
        );
        assert_eq!(
            plan("wss://localhost:18789", Some(&pin())).unwrap().pin(),
            Some(pin())
        );
    }

    #[test]
    fn what_the_owner_gives_is_checked_before_it_is_kept_and_the_pin_kept_canonical() {
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(
            check(Some("wss://10.0.0.5:18789"), Some(&colons)),
            Ok(Some(pin()))
        );
        assert_eq!(check(Some(" ws://127.0.0.1:18789 "), Some("")), Ok(None));
        assert!(matches!(
            check(Some("ws://10.0.0.5:18789"), None),
            Err(TransportError::ClearToNetwork { .. })
        ));
        // No URL: the one OpenClaw's config names, checked at connect; the pin is still read.
        assert_eq!(check(None, None), Ok(None));
        assert_eq!(check(None, Some(&pin())), Ok(Some(pin())));
        assert!(matches!(
            check(None, Some("nope")),
            Err(TransportError::BadPin(_))
        ));
    }

    #[test]
    fn what_is_not_a_websocket_url_is_refused() {
        for bad in ["", "10.0.0.5:18789", "http://127.0.0.1:18789", "ws://"] {
            assert!(
                matches!(plan(bad, None), Err(TransportError::NotWebSocket(_))),
                "{bad}: {:?}",
                plan(bad, None)
            );
        }
    }
}
