//! A stand-in desktop notification server: owns `org.freedesktop.Notifications` on the test's
//! private session bus, records `Notify` and `CloseNotification`, and presses buttons by
//! emitting `ActionInvoked` — exactly what a real server does when the user clicks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zbus::object_server::SignalEmitter;
use zbus::zvariant::OwnedValue;

pub const PATH: &str = "/org/freedesktop/Notifications";

#[derive(Debug, Clone)]
pub struct Shown {
    pub id: u32,
    pub app: String,
    pub summary: String,
    pub body: String,
    pub actions: Vec<String>,
}

#[derive(Default)]
struct Log {
    shown: Vec<Shown>,
    closed: Vec<u32>,
}

pub struct Server {
    next: AtomicU32,
    log: Arc<Mutex<Log>>,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Server {
    async fn get_capabilities(&self) -> Vec<String> {
        vec!["actions".into(), "body".into()]
    }

    #[allow(clippy::too_many_arguments)]
    async fn notify(
        &self,
        app_name: String,
        _replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        actions: Vec<String>,
        _hints: HashMap<String, OwnedValue>,
        _expire_timeout: i32,
    ) -> u32 {
        let id = self.next.fetch_add(1, Ordering::SeqCst) + 1;
        self.log.lock().unwrap().shown.push(Shown {
            id,
            app: app_name,
            summary,
            body,
            actions,
        });
        id
    }

    async fn close_notification(
        &self,
        id: u32,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) {
        self.log.lock().unwrap().closed.push(id);
        let _ = Server::notification_closed(&emitter, id, 3).await;
    }

    async fn get_server_information(&self) -> (String, String, String, String) {
        (
            "clawpair-test-notifyd".into(),
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
    log: Arc<Mutex<Log>>,
}

impl Notifyd {
    pub async fn start() -> Notifyd {
        let log = Arc::new(Mutex::new(Log::default()));
        let server = Server {
            next: AtomicU32::new(0),
            log: log.clone(),
        };
        let conn = zbus::connection::Builder::session()
            .expect("a session bus (run under dbus-run-session)")
            .name("org.freedesktop.Notifications")
            .expect("bus name")
            .serve_at(PATH, server)
            .expect("serve")
            .build()
            .await
            .expect("own org.freedesktop.Notifications");
        Notifyd { conn, log }
    }

    /// Waits for a notification whose summary and body contain `needle`.
    pub async fn wait_shown(&self, needle: &str, wait: Duration) -> Shown {
        let end = Instant::now() + wait;
        loop {
            if let Some(s) = self
                .log
                .lock()
                .unwrap()
                .shown
                .iter()
                .find(|s| s.summary.contains(needle) || s.body.contains(needle))
                .cloned()
            {
                return s;
            }
            assert!(
                Instant::now() < end,
                "no notification mentioning {needle:?} within {wait:?}; shown: {:?}",
                self.log.lock().unwrap().shown
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_closed(&self, id: u32, wait: Duration) {
        let end = Instant::now() + wait;
        while !self.log.lock().unwrap().closed.contains(&id) {
            assert!(
                Instant::now() < end,
                "notification {id} was not closed within {wait:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Presses a button until `done` says the app reacted. notify-rust starts listening for the
    /// click only after `Notify` has returned; a person never clicks within those milliseconds,
    /// but a test can, so the stand-in presses again (every half second) like a person would
    /// if nothing happened. A press after the app reacted is ignored by it.
    pub async fn press_until(&self, id: u32, action: &str, mut done: impl FnMut() -> bool) {
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            self.press(id, action).await;
            for _ in 0..5 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if done() {
                    return;
                }
            }
            assert!(
                Instant::now() < end,
                "the app never acted on {action:?} for notification {id}"
            );
        }
    }

    /// Presses a button (or the body, with "default") once.
    pub async fn press(&self, id: u32, action: &str) {
        let iface = self
            .conn
            .object_server()
            .interface::<_, Server>(PATH)
            .await
            .expect("interface");
        Server::action_invoked(iface.signal_emitter(), id, action)
            .await
            .expect("emit ActionInvoked");
    }
}
