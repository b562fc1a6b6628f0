//! Time as an injected dependency: the core asks a `Clock`, so tests can move time by hand.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

pub trait Clock: Send + Sync {
    fn now_ms(&self) -> Millis;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> Millis {
        chrono::Utc::now().timestamp_millis()
    }
}

/// A clock that only moves when told to; shared by cloning.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(start_ms: Millis) -> Self {
        ManualClock(Arc::new(AtomicI64::new(start_ms)))
    }
    pub fn advance_ms(&self, ms: Millis) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
    pub fn set_ms(&self, ms: Millis) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> Millis {
        self.0.load(Ordering::SeqCst)
    }
}

/// ISO-8601 UTC with milliseconds and `Z`, the shape OpenClaw writes (`2026-01-02T03:04:05.678Z`).
pub fn iso_from_ms(ms: Millis) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        None => String::new(),
    }
}

/// Parses an ISO-8601 / RFC 3339 time; `None` when it is missing or not a time.
pub fn ms_from_iso(s: &str) -> Option<Millis> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.timestamp_millis())
}

/// A compact UTC stamp for file names (`20260102T030405.678Z`).
pub fn file_stamp(ms: Millis) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t.format("%Y%m%dT%H%M%S%.3fZ").to_string(),
        None => ms.to_string(),
    }
}

/// "3m", "2h 5m", "45s": a short human duration for tables.
pub fn human_duration(ms: Millis) -> String {
    let s = (ms.max(0) + 500) / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => {
            let m = (s % 3600) / 60;
            if m == 0 {
                format!("{}h", s / 3600)
            } else {
                format!("{}h {}m", s / 3600, m)
            }
        }
        _ => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_round_trip_keeps_milliseconds_and_z() {
        let s = iso_from_ms(1_767_323_045_678);
        assert_eq!(s, "2026-01-02T03:04:05.678Z");
        assert_eq!(ms_from_iso(&s), Some(1_767_323_045_678));
        assert_eq!(ms_from_iso("not a time"), None);
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::new(1000);
        assert_eq!(c.now_ms(), 1000);
        c.advance_ms(3_600_000);
        assert_eq!(c.now_ms(), 3_601_000);
    }

    #[test]
    fn human_durations_read_well() {
        assert_eq!(human_duration(45_000), "45s");
        assert_eq!(human_duration(180_000), "3m");
        assert_eq!(human_duration(7_500_000), "2h 5m");
    }
}
