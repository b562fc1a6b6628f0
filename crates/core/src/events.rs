//! The one event stream: the core publishes what changed; the gateway forwards events to
//! operator sockets, the tray app to the window and to notifications. Nobody polls.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::broadcast;

use crate::approval::PendingExec;
use crate::clock::Millis;
use crate::pairing::device::{PendingDevice, SCOPE_PAIRING, SCOPE_READ};
use crate::pairing::node::PendingNode;
pub use crate::protocol::{DeviceChange, Resolution, SetupChange};

/// A pending DM request as shown to operators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DmRequestView {
    pub channel: String,
    /// As the pairing file names it, sanitised.
    pub account_id: String,
    /// The stored account is not a valid name: the request is listed so the owner can reject
    /// it, and approving it is refused. Sent only when true.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub invalid_name: bool,
    pub id: String,
    pub code: String,
    pub created_at: String,
    pub last_seen_at: String,
    pub expires_at: String,
    pub meta: Map<String, Value>,
}

impl DmRequestView {
    /// Who is asking, as shown to the owner: their name (from the channel's metadata) and
    /// their id, or the id alone; sanitised.
    pub fn who(&self) -> String {
        let name = ["username", "name", "firstName"]
            .iter()
            .find_map(|k| self.meta.get(*k).and_then(|v| v.as_str()))
            .map(crate::sanitize::sanitize)
            .filter(|n| !n.is_empty());
        let id = crate::sanitize::sanitize(&self.id);
        match name {
            Some(n) => format!("{n} ({id})"),
            None => id,
        }
    }
}

/// Everything that changes, in wire names (`event` and `payload` of an event frame).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", content = "payload")]
pub enum Event {
    #[serde(rename = "device.pair.requested")]
    DevicePairRequested(PendingDevice),
    #[serde(rename = "device.pair.resolved", rename_all = "camelCase")]
    DevicePairResolved {
        request_id: String,
        device_id: String,
        decision: Resolution,
        ts: Millis,
    },
    /// The owner renamed a device (OpenClaw's name for it; the payload is ClawPair's).
    #[serde(rename = "device.pair.changed", rename_all = "camelCase")]
    DevicePairChanged { device_id: String, ts: Millis },
    #[serde(rename = "device.changed", rename_all = "camelCase")]
    DeviceChanged {
        device_id: String,
        change: DeviceChange,
        role: Option<String>,
        ts: Millis,
    },
    /// A node asks to expose new capabilities or commands (an attached OpenClaw's; ClawPair's
    /// own gateway grants a node its commands with its device).
    #[serde(rename = "node.pair.requested")]
    NodePairRequested(PendingNode),
    #[serde(rename = "node.pair.resolved", rename_all = "camelCase")]
    NodePairResolved {
        request_id: String,
        node_id: String,
        decision: Resolution,
        ts: Millis,
    },
    /// An agent asks to run a command (an attached OpenClaw's exec approval).
    #[serde(rename = "exec.approval.requested")]
    ExecApprovalRequested(PendingExec),
    #[serde(rename = "exec.approval.resolved", rename_all = "camelCase")]
    ExecApprovalResolved {
        id: String,
        /// `allow-once`, `allow-always`, `deny`, or empty when it ended otherwise (expired).
        decision: String,
        ts: Millis,
    },
    #[serde(rename = "pairing.requested")]
    PairingRequested(DmRequestView),
    #[serde(rename = "pairing.resolved", rename_all = "camelCase")]
    PairingResolved {
        channel: String,
        account_id: String,
        sender_id: String,
        code: String,
        decision: Resolution,
        /// The owner asked for the sender to be told (channel bridges send the confirmation).
        notify: bool,
    },
    #[serde(rename = "pairing.dropped", rename_all = "camelCase")]
    PairingDropped {
        channel: String,
        account_id: String,
        reason: String,
        ts: Millis,
    },
    #[serde(rename = "allowlist.changed", rename_all = "camelCase")]
    AllowlistChanged { channel: String, account_id: String },
    #[serde(rename = "chat.message", rename_all = "camelCase")]
    ChatMessage {
        channel: String,
        account_id: String,
        sender_id: String,
        text: String,
        meta: Map<String, Value>,
        ts: Millis,
    },
    #[serde(rename = "setup.changed", rename_all = "camelCase")]
    SetupChanged {
        change: SetupChange,
        expires_at_ms: Option<Millis>,
    },
    #[serde(rename = "store.corrupt", rename_all = "camelCase")]
    StoreCorrupt {
        file: String,
        moved_to: String,
        reason: String,
    },
    #[serde(rename = "settings.changed")]
    SettingsChanged {},
    #[serde(rename = "audit.appended")]
    AuditAppended(crate::store::audit::AuditEntry),
    /// The owner replaced the gateway's admin token: every session that used the old one is
    /// closed.
    #[serde(rename = "gateway.token.rotated", rename_all = "camelCase")]
    GatewayTokenRotated { ts: Millis },
    /// Companion mode: whether ClawPair is attached to an OpenClaw gateway, in one line.
    #[serde(rename = "attach.status", rename_all = "camelCase")]
    AttachStatus { line: String, attached: bool },
    #[serde(rename = "gateway.status", rename_all = "camelCase")]
    GatewayStatus {
        listening: bool,
        address: Option<String>,
        error: Option<String>,
    },
    #[serde(rename = "channel.status", rename_all = "camelCase")]
    ChannelStatus {
        channel: String,
        connected: bool,
        error: Option<String>,
        ts: Millis,
    },
}

/// Every event a gateway connection may see (`hello-ok.features.events`): the handshake's, the
/// keep-alive, and the stream's.
pub const WIRE_EVENTS: &[&str] = &[
    "connect.challenge",
    "device.pair.pending",
    "tick",
    "events.dropped",
    "device.pair.requested",
    "device.pair.resolved",
    "device.pair.changed",
    "device.changed",
    "node.pair.requested",
    "node.pair.resolved",
    "exec.approval.requested",
    "exec.approval.resolved",
    "pairing.requested",
    "pairing.resolved",
    "pairing.dropped",
    "allowlist.changed",
    "chat.message",
    "setup.changed",
    "store.corrupt",
    "settings.changed",
    "audit.appended",
    "gateway.token.rotated",
    "attach.status",
    "gateway.status",
    "channel.status",
];

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::DevicePairRequested(_) => "device.pair.requested",
            Event::DevicePairResolved { .. } => "device.pair.resolved",
            Event::DevicePairChanged { .. } => "device.pair.changed",
            Event::DeviceChanged { .. } => "device.changed",
            Event::NodePairRequested(_) => "node.pair.requested",
            Event::NodePairResolved { .. } => "node.pair.resolved",
            Event::ExecApprovalRequested(_) => "exec.approval.requested",
            Event::ExecApprovalResolved { .. } => "exec.approval.resolved",
            Event::PairingRequested(_) => "pairing.requested",
            Event::PairingResolved { .. } => "pairing.resolved",
            Event::PairingDropped { .. } => "pairing.dropped",
            Event::AllowlistChanged { .. } => "allowlist.changed",
            Event::ChatMessage { .. } => "chat.message",
            Event::SetupChanged { .. } => "setup.changed",
            Event::StoreCorrupt { .. } => "store.corrupt",
            Event::SettingsChanged {} => "settings.changed",
            Event::AuditAppended(_) => "audit.appended",
            Event::GatewayTokenRotated { .. } => "gateway.token.rotated",
            Event::AttachStatus { .. } => "attach.status",
            Event::GatewayStatus { .. } => "gateway.status",
            Event::ChannelStatus { .. } => "channel.status",
        }
    }

    /// The scope an operator needs to receive this event (admin receives everything).
    pub fn required_scope(&self) -> &'static str {
        match self {
            Event::ChatMessage { .. } => SCOPE_READ,
            _ => SCOPE_PAIRING,
        }
    }

    /// The payload as JSON (the `payload` of an event frame).
    pub fn payload(&self) -> Value {
        match serde_json::to_value(self) {
            Ok(Value::Object(mut m)) => m.remove("payload").unwrap_or(Value::Null),
            _ => Value::Null,
        }
    }
}

impl Event {
    /// What a change is about, for telling the state watcher's copy of an event from the one
    /// this process already published (see [`EventBus::publish_unless_recent`]). `None` for
    /// events the watcher never derives.
    fn change_key(&self) -> Option<String> {
        Some(match self {
            Event::DevicePairRequested(r) => format!("request {}", r.request_id),
            Event::DevicePairResolved { request_id, .. } => format!("resolved {request_id}"),
            Event::DevicePairChanged { device_id, .. } => format!("label {device_id}"),
            Event::DeviceChanged {
                device_id,
                change,
                role,
                ..
            } => format!(
                "device {device_id} {change} {}",
                role.as_deref().unwrap_or("")
            ),
            Event::PairingRequested(r) => {
                format!("dm {} {} {}", r.channel, r.account_id, r.code)
            }
            Event::PairingResolved {
                channel,
                account_id,
                code,
                ..
            } => format!("dm-resolved {channel} {account_id} {code}"),
            Event::AllowlistChanged {
                channel,
                account_id,
            } => format!("allow {channel} {account_id}"),
            Event::SettingsChanged {} => "settings".into(),
            Event::GatewayTokenRotated { .. } => "admin-token".into(),
            _ => return None,
        })
    }
}

/// How long an event this process published stands for the same change seen on disk.
const RECENT_FOR: Duration = Duration::from_secs(10);
/// At most this many recent changes are remembered (older ones are forgotten first).
const RECENT_MAX: usize = 512;

/// A function run inside `publish`, before any subscriber can see the event.
type Hook = Arc<dyn Fn(&Event) + Send + Sync>;

/// The broadcast channel every subscriber listens on. A slow subscriber loses the oldest
/// events (and is told so by `RecvError::Lagged`); publishers never block.
///
/// Beside it, hooks: what must have happened by the time `publish` returns (the gateway
/// closing the sessions of a credential just taken away) runs in the publisher's thread, and
/// so can neither lag nor come after the answer that reports the change.
#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Event>,
    /// Changes published lately, each standing for one copy the state watcher may derive
    /// from the files this process wrote.
    recent: Arc<Mutex<VecDeque<(Instant, String)>>>,
    hooks: Arc<std::sync::RwLock<Vec<(u64, Hook)>>>,
}

/// Keeps a hook of [`EventBus::on_publish`] in place; dropping it removes the hook.
pub struct HookGuard {
    hooks: Arc<std::sync::RwLock<Vec<(u64, Hook)>>>,
    id: u64,
}

impl Drop for HookGuard {
    fn drop(&mut self) {
        if let Ok(mut h) = self.hooks.write() {
            h.retain(|(id, _)| *id != self.id);
        }
    }
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new(1024)
    }
}

impl EventBus {
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity);
        EventBus {
            tx,
            recent: Arc::default(),
            hooks: Arc::default(),
        }
    }

    /// Runs `f` on every event, in the publisher's thread, before subscribers get it, until
    /// the returned guard is dropped. `f` must be quick and must not publish.
    pub fn on_publish(&self, f: impl Fn(&Event) + Send + Sync + 'static) -> HookGuard {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Ok(mut h) = self.hooks.write() {
            h.push((id, Arc::new(f)));
        }
        HookGuard {
            hooks: self.hooks.clone(),
            id,
        }
    }

    fn run_hooks(&self, e: &Event) {
        if let Ok(h) = self.hooks.read() {
            for (_, f) in h.iter() {
                f(e);
            }
        }
    }

    pub fn publish(&self, e: Event) {
        self.run_hooks(&e);
        if let Some(key) = e.change_key() {
            if let Ok(mut recent) = self.recent.lock() {
                let now = Instant::now();
                while recent.len() >= RECENT_MAX
                    || recent.front().is_some_and(|(at, _)| now - *at > RECENT_FOR)
                {
                    recent.pop_front();
                }
                recent.push_back((now, key));
            }
        }
        let _ = self.tx.send(e);
    }

    /// Publishes a change another process made, unless this process published the same change
    /// lately (then the file change was its own write, and the event already went out; that
    /// record is used up). Returns whether it was published.
    pub fn publish_unless_recent(&self, e: Event) -> bool {
        if let (Some(key), Ok(mut recent)) = (e.change_key(), self.recent.lock()) {
            let now = Instant::now();
            if let Some(i) = recent
                .iter()
                .position(|(at, k)| *k == key && now - *at <= RECENT_FOR)
            {
                recent.remove(i);
                return false;
            }
        }
        self.run_hooks(&e);
        let _ = self.tx.send(e);
        true
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialise_with_wire_names() {
        let e = Event::AllowlistChanged {
            channel: "telegram".into(),
            account_id: "default".into(),
        };
        assert_eq!(e.name(), "allowlist.changed");
        assert_eq!(
            e.payload(),
            serde_json::json!({"channel": "telegram", "accountId": "default"})
        );
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["event"], "allowlist.changed");
    }

    #[test]
    fn a_change_published_here_is_not_published_again_from_the_files() {
        let bus = EventBus::default();
        let mut rx = bus.subscribe();
        let allow = || Event::AllowlistChanged {
            channel: "telegram".into(),
            account_id: "default".into(),
        };
        bus.publish(allow());
        // The watcher's copy of the same change is dropped once…
        assert!(!bus.publish_unless_recent(allow()));
        // …and a second change on disk is another process's, published.
        assert!(bus.publish_unless_recent(allow()));
        assert_eq!(rx.try_recv().unwrap(), allow());
        assert_eq!(rx.try_recv().unwrap(), allow());
        assert!(rx.try_recv().is_err());
        // Events the watcher never derives are not remembered.
        let status = || Event::GatewayStatus {
            listening: true,
            address: None,
            error: None,
        };
        bus.publish(status());
        assert!(bus.publish_unless_recent(status()));
        // A rotation of the admin token is: its copy from clawpair.json must not close the
        // sessions that came in with the new token.
        bus.publish(Event::GatewayTokenRotated { ts: 0 });
        assert!(!bus.publish_unless_recent(Event::GatewayTokenRotated { ts: 5 }));
    }

    #[test]
    fn hooks_run_before_subscribers_and_stop_when_dropped() {
        let bus = EventBus::default();
        let mut rx = bus.subscribe();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let guard = bus.on_publish(move |e| {
            if let Ok(mut v) = s.lock() {
                v.push(e.name());
            }
        });
        bus.publish(Event::GatewayTokenRotated { ts: 1 });
        assert_eq!(*seen.lock().unwrap(), vec!["gateway.token.rotated"]);
        assert!(rx.try_recv().is_ok());
        drop(guard);
        bus.publish(Event::GatewayTokenRotated { ts: 2 });
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[test]
    fn every_event_is_announced_in_hello_ok() {
        let all = [
            Event::DevicePairChanged {
                device_id: "d".into(),
                ts: 0,
            },
            Event::DeviceChanged {
                device_id: "d".into(),
                change: DeviceChange::Removed,
                role: None,
                ts: 0,
            },
            Event::PairingDropped {
                channel: "c".into(),
                account_id: "a".into(),
                reason: "r".into(),
                ts: 0,
            },
            Event::AllowlistChanged {
                channel: "c".into(),
                account_id: "a".into(),
            },
            Event::SetupChanged {
                change: SetupChange::Created,
                expires_at_ms: None,
            },
            Event::StoreCorrupt {
                file: "f".into(),
                moved_to: "m".into(),
                reason: "r".into(),
            },
            Event::SettingsChanged {},
            Event::GatewayTokenRotated { ts: 0 },
            Event::ExecApprovalResolved {
                id: "e".into(),
                decision: "deny".into(),
                ts: 0,
            },
            Event::NodePairResolved {
                request_id: "r".into(),
                node_id: "n".into(),
                decision: Resolution::Approved,
                ts: 0,
            },
            Event::AttachStatus {
                line: String::new(),
                attached: false,
            },
            Event::GatewayStatus {
                listening: true,
                address: None,
                error: None,
            },
            Event::ChannelStatus {
                channel: "c".into(),
                connected: true,
                error: None,
                ts: 0,
            },
        ];
        for e in all {
            assert!(WIRE_EVENTS.contains(&e.name()), "{}", e.name());
        }
        for name in [
            "device.pair.requested",
            "device.pair.resolved",
            "pairing.requested",
            "pairing.resolved",
            "chat.message",
            "audit.appended",
        ] {
            assert!(WIRE_EVENTS.contains(&name), "{name}");
        }
    }
}
