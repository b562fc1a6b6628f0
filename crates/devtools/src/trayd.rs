//! A stand-in system tray host for the end-to-end tests: it owns `org.kde.StatusNotifierWatcher`
//! on a (private) session bus and records the tray icons (StatusNotifierItems) that register,
//! as a desktop's panel does. The tray travels over D-Bus, not X11, so this is how a tray is
//! seen to work on Wayland. The app never uses it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zbus::message::Header;
use zbus::object_server::SignalEmitter;

const PATH: &str = "/StatusNotifierWatcher";

#[derive(Default)]
struct Watcher {
    items: Arc<Mutex<Vec<String>>>,
}

#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    async fn register_status_notifier_item(
        &self,
        service: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) {
        // An item gives its object path or its bus name; with a path, the sender is the name.
        let item = if service.starts_with('/') {
            let sender = header.sender().map(|s| s.to_string()).unwrap_or_default();
            format!("{sender}{service}")
        } else {
            service
        };
        if let Ok(mut items) = self.items.lock() {
            items.push(item.clone());
        }
        let _ = Self::status_notifier_item_registered(&emitter, &item).await;
    }

    async fn register_status_notifier_host(&self, _service: String) {}

    #[zbus(property)]
    async fn registered_status_notifier_items(&self) -> Vec<String> {
        self.items.lock().map(|i| i.clone()).unwrap_or_default()
    }

    #[zbus(property)]
    async fn is_status_notifier_host_registered(&self) -> bool {
        true
    }

    #[zbus(property)]
    async fn protocol_version(&self) -> i32 {
        0
    }

    #[zbus(signal)]
    async fn status_notifier_item_registered(
        emitter: &SignalEmitter<'_>,
        service: &str,
    ) -> zbus::Result<()>;
}

/// The running stand-in tray host.
pub struct Trayd {
    _conn: zbus::Connection,
    items: Arc<Mutex<Vec<String>>>,
}

impl Trayd {
    /// Owns `org.kde.StatusNotifierWatcher` on the session bus (`DBUS_SESSION_BUS_ADDRESS`).
    pub async fn start() -> Result<Trayd, String> {
        let items = Arc::new(Mutex::new(Vec::new()));
        let watcher = Watcher {
            items: items.clone(),
        };
        let conn = zbus::connection::Builder::session()
            .and_then(|b| b.name("org.kde.StatusNotifierWatcher"))
            .and_then(|b| b.serve_at(PATH, watcher))
            .map_err(|e| {
                format!("no session bus for a tray host (run under dbus-run-session): {e}")
            })?
            .build()
            .await
            .map_err(|e| format!("cannot own org.kde.StatusNotifierWatcher: {e}"))?;
        Ok(Trayd { _conn: conn, items })
    }

    /// Waits for a tray icon to register; returns what it registered as.
    pub async fn wait_item(&self, wait: Duration) -> Result<String, String> {
        let end = Instant::now() + wait;
        loop {
            if let Some(i) = self.items.lock().ok().and_then(|i| i.first().cloned()) {
                return Ok(i);
            }
            if Instant::now() > end {
                return Err(format!("no tray icon registered within {wait:?}"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
