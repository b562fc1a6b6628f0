//! Abuse limits kept per client address: unauthenticated connections at once, authenticated
//! sessions at once, and failed authentications (after too many within the window, every
//! attempt is refused for a while). With `exemptLoopback`, loopback clients skip them. IPv6 clients count per /64 (one host
//! commonly holds a whole /64), and the tables are bounded, so a client with many addresses
//! cannot grow them without end.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::RateLimitSettings;

/// The address the limits count against: IPv4 as is (an IPv4-mapped IPv6 address as its
/// IPv4), IPv6 by its /64.
pub fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// What an address slot counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Preauth,
    Session,
}

#[derive(Default)]
struct State {
    /// Live unauthenticated connections per address: bounded by the connection limit, since
    /// every entry belongs to an open socket.
    preauth: HashMap<IpAddr, u32>,
    /// Live authenticated sessions per address (bounded the same way).
    sessions: HashMap<IpAddr, u32>,
    /// Recent failures per address, at most `max_tracked` addresses.
    failures: HashMap<IpAddr, Vec<Instant>>,
    /// Lockouts per address, at most `max_tracked` addresses.
    locked_until: HashMap<IpAddr, Instant>,
}

#[derive(Clone)]
pub struct Guard {
    state: Arc<Mutex<State>>,
    /// The most addresses the failure and lockout tables hold (see [`super::Limits`]).
    max_tracked: usize,
}

impl Default for Guard {
    fn default() -> Self {
        Guard::new(super::Limits::default().max_tracked_addresses)
    }
}

impl State {
    fn counts(&mut self, kind: Kind) -> &mut HashMap<IpAddr, u32> {
        match kind {
            Kind::Preauth => &mut self.preauth,
            Kind::Session => &mut self.sessions,
        }
    }
}

/// Holds one of an address's slots (unauthenticated, or a session) until dropped.
pub struct AddressSlot {
    guard: Guard,
    ip: Option<IpAddr>,
    kind: Kind,
}

/// An unauthenticated connection's slot.
pub type PreauthSlot = AddressSlot;

impl AddressSlot {
    /// The slot is given back: for an unauthenticated one, the connection authenticated.
    pub fn release(&mut self) {
        if let Some(ip) = self.ip.take() {
            if let Ok(mut s) = self.guard.state.lock() {
                let counts = s.counts(self.kind);
                if let Some(n) = counts.get_mut(&ip) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        counts.remove(&ip);
                    }
                }
            }
        }
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        self.release();
    }
}

impl Guard {
    pub fn new(max_tracked: usize) -> Guard {
        Guard {
            state: Arc::default(),
            max_tracked: max_tracked.max(1),
        }
    }

    /// A slot for a new unauthenticated connection, or `None` when the address has `max`
    /// already.
    pub fn enter_preauth(&self, ip: IpAddr, exempt: bool, max: u32) -> Option<AddressSlot> {
        self.enter(Kind::Preauth, ip, exempt, max)
    }

    /// A slot for a new authenticated session, or `None` when the address holds `max`
    /// sessions already.
    pub fn enter_session(&self, ip: IpAddr, exempt: bool, max: u32) -> Option<AddressSlot> {
        self.enter(Kind::Session, ip, exempt, max)
    }

    fn enter(&self, kind: Kind, ip: IpAddr, exempt: bool, max: u32) -> Option<AddressSlot> {
        if exempt {
            return Some(AddressSlot {
                guard: self.clone(),
                ip: None,
                kind,
            });
        }
        let ip = bucket(ip);
        let mut s = self.state.lock().ok()?;
        let n = s.counts(kind).entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            guard: self.clone(),
            ip: Some(ip),
            kind,
        })
    }

    /// How long the IP stays locked out, if it is.
    pub fn locked_for(&self, ip: IpAddr, exempt: bool) -> Option<Duration> {
        if exempt {
            return None;
        }
        let ip = bucket(ip);
        let mut s = self.state.lock().ok()?;
        let until = *s.locked_until.get(&ip)?;
        let now = Instant::now();
        if until > now {
            Some(until - now)
        } else {
            s.locked_until.remove(&ip);
            None
        }
    }

    /// Counts a failed authentication; returns true when the IP is now locked out.
    pub fn record_failure(&self, ip: IpAddr, exempt: bool, rl: &RateLimitSettings) -> bool {
        if exempt {
            return false;
        }
        let ip = bucket(ip);
        let Ok(mut s) = self.state.lock() else {
            return false;
        };
        let now = Instant::now();
        let window = Duration::from_secs(rl.window_seconds.max(1));
        if !s.failures.contains_key(&ip) && s.failures.len() >= self.max_tracked {
            // Forget addresses that stopped failing; if all are recent, the one whose last
            // failure is oldest.
            s.failures
                .retain(|_, v| v.iter().any(|t| now.duration_since(*t) < window));
            if s.failures.len() >= self.max_tracked {
                let oldest = s
                    .failures
                    .iter()
                    .min_by_key(|(_, v)| v.last().copied())
                    .map(|(k, _)| *k);
                if let Some(k) = oldest {
                    s.failures.remove(&k);
                }
            }
        }
        let list = s.failures.entry(ip).or_default();
        list.retain(|t| now.duration_since(*t) < window);
        list.push(now);
        // At most `max_failures` instants per address.
        let max = rl.max_failures.max(1) as usize;
        if list.len() >= max {
            s.failures.remove(&ip);
            if !s.locked_until.contains_key(&ip) && s.locked_until.len() >= self.max_tracked {
                s.locked_until.retain(|_, until| *until > now);
                if s.locked_until.len() >= self.max_tracked {
                    let first = s
                        .locked_until
                        .iter()
                        .min_by_key(|(_, until)| **until)
                        .map(|(k, _)| *k);
                    if let Some(k) = first {
                        s.locked_until.remove(&k);
                    }
                }
            }
            s.locked_until
                .insert(ip, now + Duration::from_secs(rl.lockout_seconds));
            return true;
        }
        false
    }

    /// How many addresses the failure and lockout tables hold (for tests and the bench).
    pub fn tracked(&self) -> (usize, usize) {
        self.state
            .lock()
            .map(|s| (s.failures.len(), s.locked_until.len()))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rl() -> RateLimitSettings {
        RateLimitSettings {
            max_failures: 3,
            window_seconds: 60,
            lockout_seconds: 300,
            exempt_loopback: false,
        }
    }

    #[test]
    fn preauth_slots_are_capped_per_ip_and_returned() {
        let g = Guard::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let a = g.enter_preauth(ip, false, 2).unwrap();
        let mut b = g.enter_preauth(ip, false, 2).unwrap();
        assert!(g.enter_preauth(ip, false, 2).is_none());
        assert!(g
            .enter_preauth("10.0.0.2".parse().unwrap(), false, 2)
            .is_some());
        b.release();
        assert!(g.enter_preauth(ip, false, 2).is_some());
        drop(a);
        assert!(
            g.enter_preauth(ip, true, 0).is_some(),
            "exempt ignores the cap"
        );
    }

    #[test]
    fn sessions_are_capped_per_ip_apart_from_unauthenticated_connections() {
        let g = Guard::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let _pre = g.enter_preauth(ip, false, 1).unwrap();
        let a = g.enter_session(ip, false, 2).unwrap();
        let _b = g.enter_session(ip, false, 2).unwrap();
        assert!(g.enter_session(ip, false, 2).is_none());
        assert!(g.enter_preauth(ip, false, 1).is_none(), "its own cap");
        drop(a);
        assert!(g.enter_session(ip, false, 2).is_some());
        assert!(g.enter_session(ip, true, 0).is_some(), "exempt ignores it");
    }

    #[test]
    fn ipv6_clients_count_per_64_and_ipv4_mapped_as_ipv4() {
        let g = Guard::default();
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().unwrap();
        let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        for _ in 0..3 {
            g.record_failure(a, false, &rl());
        }
        assert!(
            g.locked_for(same_64, false).is_some(),
            "the whole /64 is locked"
        );
        assert!(g.locked_for(other_64, false).is_none());
        let _s = g.enter_preauth(a, false, 1).unwrap();
        assert!(
            g.enter_preauth(same_64, false, 1).is_none(),
            "one /64, one cap"
        );
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(bucket(mapped), "10.1.2.3".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn failure_and_lockout_tables_stay_bounded() {
        let g = Guard::new(64);
        let one = RateLimitSettings {
            max_failures: 1,
            ..rl()
        };
        for i in 0..5_000u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            g.record_failure(ip, false, &rl());
            let v6 = IpAddr::from(std::net::Ipv6Addr::from(
                (0x2001_0db8_u128 << 96) | ((i as u128) << 64),
            ));
            g.record_failure(v6, false, &one);
        }
        let (failures, lockouts) = g.tracked();
        assert!(failures <= 64 && lockouts <= 64, "{failures} {lockouts}");
        // The newest lockout is kept.
        let last = IpAddr::from(std::net::Ipv6Addr::from(
            (0x2001_0db8_u128 << 96) | (4_999u128 << 64),
        ));
        assert!(g.locked_for(last, false).is_some());
    }

    #[test]
    fn lockout_after_max_failures() {
        let g = Guard::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(!g.record_failure(ip, false, &rl()));
        assert!(!g.record_failure(ip, false, &rl()));
        assert!(g.locked_for(ip, false).is_none());
        assert!(g.record_failure(ip, false, &rl()));
        let left = g.locked_for(ip, false).unwrap();
        assert!(left > Duration::from_secs(290));
        assert!(g.locked_for(ip, true).is_none(), "exempt never locked");
    }
}
