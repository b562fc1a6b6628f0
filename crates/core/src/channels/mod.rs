//! Chat channels built into the gateway. An adapter reads its chat service's messages, hands
//! each direct message to [`crate::service::Service::dm_inbound`], and sends back what the
//! service decided (a pairing reply, a confirmation after approval). Telegram is the built-in
//! one; what any other adapter would reuse lives here: the reconnect [`Backoff`] and the
//! [`StatusLine`] behind `channel.status` events.

pub mod telegram;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Settings;
use crate::events::Event;
use crate::service::Service;

/// A chat channel built into the gateway. It runs beside a gateway for as long as that
/// gateway runs, and follows the settings itself: idle while it is not configured, started,
/// restarted or stopped as `clawpair.json` changes, so nothing outside it decides when.
pub trait Channel: Sync {
    /// Its name in the settings (`channels.<name>`) and in `channel.status`.
    fn name(&self) -> &'static str;
    /// Runs it beside the gateway listening on `listening`, until `stop` turns true.
    fn spawn(
        &self,
        service: Arc<Service>,
        listening: SocketAddr,
        stop: watch::Receiver<bool>,
    ) -> JoinHandle<()>;
    /// What to say about it when a headless gateway starts (on, off with a reason), if anything.
    fn describe(&self, settings: &Settings) -> Option<String>;
}

/// Every built-in channel: the one place a new one is added.
pub static CHANNELS: &[&dyn Channel] = &[&telegram::Telegram];

/// The channels running beside one gateway.
pub struct Running {
    stop: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
}

/// Starts every built-in channel beside the gateway listening on `listening`.
pub fn start_all(service: &Arc<Service>, listening: SocketAddr) -> Running {
    let (stop, stopped) = watch::channel(false);
    let tasks = CHANNELS
        .iter()
        .map(|c| {
            (
                c.name(),
                c.spawn(service.clone(), listening, stopped.clone()),
            )
        })
        .collect();
    Running { stop, tasks }
}

impl Running {
    /// Tells them to stop (at once), then gives each `wait` to finish what it is sending;
    /// the future returns the names of those that did not stop in time.
    pub fn stop(self, wait: Duration) -> impl std::future::Future<Output = Vec<&'static str>> {
        let _ = self.stop.send(true);
        async move {
            let mut late = Vec::new();
            for (name, task) in self.tasks {
                if tokio::time::timeout(wait, task).await.is_err() {
                    late.push(name);
                }
            }
            late
        }
    }
}

/// A growing delay between attempts after network errors: doubles from `initial` up to `max`,
/// back to `initial` after a success. No jitter: one adapter per bot, nobody to collide with.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// The first wait after an error.
    pub const INITIAL: Duration = Duration::from_secs(1);
    /// The longest wait between two attempts.
    pub const MAX: Duration = Duration::from_secs(60);

    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            next: initial,
        }
    }

    /// The wait before the next attempt; each call doubles the one after, up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    /// After a success: the next error waits `initial` again.
    pub fn reset(&mut self) {
        self.next = self.initial;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(Backoff::INITIAL, Backoff::MAX)
    }
}

/// A channel's status line (connected, or the last error), published as `channel.status` only
/// when it changes, so a flapping connection does not flood subscribers. The error text must
/// already be free of secrets: it is shown in the window and the tray.
#[derive(Debug)]
pub struct StatusLine {
    channel: String,
    last: Option<(bool, Option<String>)>,
}

impl StatusLine {
    pub fn new(channel: &str) -> Self {
        StatusLine {
            channel: channel.to_string(),
            last: None,
        }
    }

    /// Records the state; returns whether it changed (and so was published).
    pub fn set(&mut self, service: &Service, connected: bool, error: Option<String>) -> bool {
        let now = (connected, error);
        if self.last.as_ref() == Some(&now) {
            return false;
        }
        let (connected, error) = now.clone();
        self.last = Some(now);
        service.events().publish(Event::ChannelStatus {
            channel: self.channel.clone(),
            connected,
            error,
            ts: service.now_ms(),
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets_after_success() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
        let waits: Vec<u64> = (0..5).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 5, 5]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_secs(1));
        assert_eq!(Backoff::default().next_delay(), Backoff::INITIAL);
    }

    #[test]
    fn status_line_publishes_only_changes() {
        let tmp = tempfile::tempdir().unwrap();
        let (service, _) = Service::open(
            crate::store::StatePaths::new(tmp.path()),
            std::sync::Arc::new(crate::clock::SystemClock),
        )
        .unwrap();
        let mut rx = service.events().subscribe();
        let mut line = StatusLine::new("telegram");
        assert!(line.set(&service, true, None));
        assert!(!line.set(&service, true, None));
        assert!(line.set(&service, false, Some("offline".into())));
        assert!(!line.set(&service, false, Some("offline".into())));
        let mut seen = Vec::new();
        while let Ok(e) = rx.try_recv() {
            if let Event::ChannelStatus {
                channel,
                connected,
                error,
                ..
            } = e
            {
                seen.push((channel, connected, error));
            }
        }
        assert_eq!(
            seen,
            [
                ("telegram".to_string(), true, None),
                ("telegram".to_string(), false, Some("offline".to_string()))
            ]
        );
    }
}
