//! A stand-in desktop notification server for the end-to-end tests and `clawpair-bench --gui`:
//! it owns `org.freedesktop.Notifications` on a (private) session bus, records `Notify` and
//! `CloseNotification` with the moment each arrived, and presses buttons by emitting
//! `ActionInvoked`, exactly what a real server does when the user clicks. The app never uses it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use zbus::object_server::SignalEmitter;
use zbus::zvariant::OwnedValue;

pub const PATH: &str = "/org/freedesktop/Notifications";

/// One `Notify` call as received.
#[derive(Debug, Clone)]
pub struct Shown {
    pub id: u32,
    /// When the call reached the server.
    pub at: Instant,
    pub app: String,
    pub summary: String,
    pub body: String,
    pub actions: Vec<String>,
    /// The id it asked to replace (`replaces_id`; 0 for a new notification).
    pub replaces: u32,
}

#[derive(Default)]
struct Log {
    shown: Vec<Shown>,
    closed: Vec<u32>,
    /// A click to send on the next notification before `Notify` answers with its id.
    click_before_answer: Option<String>,
}

type SharedLog = Arc<Mutex<Log>>;

fn lock(log: &SharedLog) -> MutexGuard<'_, Log> {
    log.lock().unwrap_or_else(|p| p.into_inner())
}

struct Server {
    next: AtomicU32,
    log: SharedLog,
    /// Whether it advertises `actions` (buttons), as most servers do and dunst does not.
    buttons: bool,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Server {
    async fn get_capabilities(&self) -> Vec<String> {
        if self.buttons {
            vec!["actions".into(), "body".into()]
        } else {
            vec!["body".into()]
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn notify(
        &self,
        app_name: String,
        replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        actions: Vec<String>,
        _hints: HashMap<String, OwnedValue>,
        _expire_timeout: i32,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> u32 {
        let early = {
            let mut log = lock(&self.log);
            // As the specification has it: a notification still open is replaced in place and
            // keeps its id; otherwise this is a new one.
            let open = replaces_id != 0
                && !log.closed.contains(&replaces_id)
                && log.shown.iter().any(|s| s.id == replaces_id);
            let id = if open {
                replaces_id
            } else {
                self.next.fetch_add(1, Ordering::SeqCst) + 1
            };
            log.shown.push(Shown {
                id,
                at: Instant::now(),
                app: app_name,
                summary,
                body,
                actions,
                replaces: replaces_id,
            });
            (id, log.click_before_answer.take())
        };
        let (id, early) = early;
        // A user as quick as the server: the click is on the bus before the id is answered.
        if let Some(action) = early {
            let _ = Server::action_invoked(&emitter, id, &action).await;
        }
        id
    }

    async fn close_notification(
        &self,
        id: u32,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) {
        lock(&self.log).closed.push(id);
        let _ = Server::notification_closed(&emitter, id, 3).await;
    }

    async fn get_server_information(&self) -> (String, String, String, String) {
        (
            "clawpair-stand-in".into(),
            "clawpair".into(),
            "1".into(),
            "1.2".into(),
        )
    }

    #[zbus(signal)]
    async fn action_invoked(
        emitter: &SignalEmitter<'_>,
        id: u32,
        action_key: &str,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn notification_closed(
        emitter: &SignalEmitter<'_>,
        id: u32,
        reason: u32,
    ) -> zbus::Result<()>;
}

/// The running stand-in, on the session bus of this process.
pub struct Notifyd {
    conn: zbus::Connection,
    log: SharedLog,
}

const POLL: Duration = Duration::from_millis(20);

impl Notifyd {
    /// Owns `org.freedesktop.Notifications` on the session bus (`DBUS_SESSION_BUS_ADDRESS`).
    pub async fn start() -> Result<Notifyd, String> {
        Self::serve(true).await
    }

    /// A server that shows no buttons: `GetCapabilities` has no `actions`.
    pub async fn start_without_buttons() -> Result<Notifyd, String> {
        Self::serve(false).await
    }

    async fn serve(buttons: bool) -> Result<Notifyd, String> {
        let log = SharedLog::default();
        let server = Server {
            next: AtomicU32::new(0),
            log: log.clone(),
            buttons,
        };
        let conn = zbus::connection::Builder::session()
            .and_then(|b| b.name("org.freedesktop.Notifications"))
            .and_then(|b| b.serve_at(PATH, server))
            .map_err(|e| {
                format!(
                    "no session bus to serve notifications on (run under dbus-run-session): {e}"
                )
            })?
            .build()
            .await
            .map_err(|e| format!("cannot own org.freedesktop.Notifications: {e}"))?;
        Ok(Notifyd { conn, log })
    }

    /// The next notification is clicked (`action`) before `Notify` answers with its id: the
    /// order a server may send them in, which the app must not lose a click to.
    pub fn click_next_before_answering(&self, action: &str) {
        lock(&self.log).click_before_answer = Some(action.into());
    }

    /// The ids closed so far (`CloseNotification`), in order.
    pub fn closed(&self) -> Vec<u32> {
        lock(&self.log).closed.clone()
    }

    /// Every notification received so far.
    pub fn shown(&self) -> Vec<Shown> {
        lock(&self.log).shown.clone()
    }

    /// Waits for a notification whose summary or body contains `needle`.
    pub async fn wait_shown(&self, needle: &str, wait: Duration) -> Result<Shown, String> {
        let end = Instant::now() + wait;
        loop {
            if let Some(s) = lock(&self.log)
                .shown
                .iter()
                .find(|s| s.summary.contains(needle) || s.body.contains(needle))
            {
                return Ok(s.clone());
            }
            if Instant::now() > end {
                return Err(format!(
                    "no notification mentioning {needle:?} within {wait:?}; shown: {:?}",
                    self.shown()
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the app closed notification `id`.
    pub async fn wait_closed(&self, id: u32, wait: Duration) -> Result<(), String> {
        let end = Instant::now() + wait;
        while !lock(&self.log).closed.contains(&id) {
            if Instant::now() > end {
                return Err(format!("notification {id} was not closed within {wait:?}"));
            }
            tokio::time::sleep(POLL).await;
        }
        Ok(())
    }

    /// Presses a button (or the body, with "default") once.
    pub async fn press(&self, id: u32, action: &str) -> Result<(), String> {
        let iface = self
            .conn
            .object_server()
            .interface::<_, Server>(PATH)
            .await
            .map_err(|e| e.to_string())?;
        Server::action_invoked(iface.signal_emitter(), id, action)
            .await
            .map_err(|e| e.to_string())
    }

    /// Presses a button once, then waits until `done` says the app reacted.
    pub async fn press_and_wait(
        &self,
        id: u32,
        action: &str,
        mut done: impl FnMut() -> bool,
        wait: Duration,
    ) -> Result<(), String> {
        self.press(id, action).await?;
        let end = Instant::now() + wait;
        while !done() {
            if Instant::now() > end {
                return Err(format!(
                    "the app never acted on {action:?} for notification {id}"
                ));
            }
            tokio::time::sleep(POLL).await;
        }
        Ok(())
    }
}
