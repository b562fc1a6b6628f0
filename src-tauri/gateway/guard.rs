//! Abuse limits kept per client IP: unauthenticated connections at once, and failed
//! authentications (after too many within the window, every attempt is refused for a while).
//! With `exemptLoopback`, loopback clients skip both.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::RateLimitSettings;

#[derive(Default)]
struct State {
    preauth: HashMap<IpAddr, u32>,
    failures: HashMap<IpAddr, Vec<Instant>>,
    locked_until: HashMap<IpAddr, Instant>,
}

#[derive(Default, Clone)]
pub struct Guard {
    state: Arc<Mutex<State>>,
}

/// Holds one of an IP's unauthenticated slots until dropped (or until authenticated).
pub struct PreauthSlot {
    guard: Guard,
    ip: Option<IpAddr>,
}

impl PreauthSlot {
    /// The connection authenticated: it no longer counts against the IP.
    pub fn release(&mut self) {
        if let Some(ip) = self.ip.take() {
            if let Ok(mut s) = self.guard.state.lock() {
                if let Some(n) = s.preauth.get_mut(&ip) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        s.preauth.remove(&ip);
                    }
                }
            }
        }
    }
}

impl Drop for PreauthSlot {
    fn drop(&mut self) {
        self.release();
    }
}

impl Guard {
    /// A slot for a new unauthenticated connection, or `None` when the IP has `max` already.
    pub fn enter_preauth(&self, ip: IpAddr, exempt: bool, max: u32) -> Option<PreauthSlot> {
        if exempt {
            return Some(PreauthSlot {
                guard: self.clone(),
                ip: None,
            });
        }
        let mut s = self.state.lock().ok()?;
        let n = s.preauth.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(PreauthSlot {
            guard: self.clone(),
            ip: Some(ip),
        })
    }

    /// How long the IP stays locked out, if it is.
    pub fn locked_for(&self, ip: IpAddr, exempt: bool) -> Option<Duration> {
        if exempt {
            return None;
        }
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
        let Ok(mut s) = self.state.lock() else {
            return false;
        };
        let now = Instant::now();
        let window = Duration::from_secs(rl.window_seconds.max(1));
        let list = s.failures.entry(ip).or_default();
        list.retain(|t| now.duration_since(*t) < window);
        list.push(now);
        if list.len() as u32 >= rl.max_failures.max(1) {
            s.failures.remove(&ip);
            s.locked_until
                .insert(ip, now + Duration::from_secs(rl.lockout_seconds));
            return true;
        }
        // Forget IPs that stopped failing, so the map cannot grow without bound.
        if s.failures.len() > 10_000 {
            s.failures
                .retain(|_, v| v.iter().any(|t| now.duration_since(*t) < window));
        }
        false
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
