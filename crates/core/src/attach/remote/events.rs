//! OpenClaw's device events as ClawPair's (node requests' in `nodes.rs`), and the device requests made or settled while
//! detached, announced at reconnect.

use serde_json::{json, Value};

use super::views::pending_device;
use super::Remote;
use crate::events::Event;
use crate::pairing::device::PendingDevice;
use crate::protocol::Resolution;

impl Remote {
    /// At (re)connect: device requests made or settled while detached are announced too.
    pub(super) async fn relist_devices(&self) {
        let Ok(v) = self.call_raw("device.pair.list", json!({})).await else {
            return;
        };
        let pending: Vec<PendingDevice> = v["pending"]
            .as_array()
            .map(|a| a.iter().filter_map(pending_device).collect())
            .unwrap_or_default();
        let ids: Vec<String> = pending.iter().map(|r| r.request_id.clone()).collect();
        let (new, gone) = self.devices_known.relist(&ids);
        for r in pending.into_iter().filter(|r| new.contains(&r.request_id)) {
            self.events.publish(Event::DevicePairRequested(r));
        }
        for request_id in gone {
            self.devices_known.settled(&request_id);
            self.events.publish(Event::DevicePairResolved {
                request_id,
                device_id: String::new(),
                decision: Resolution::Resolved,
                ts: 0,
            });
        }
    }

    /// OpenClaw's events, as ClawPair's.
    pub(super) fn on_event(&self, name: &str, payload: &Value) {
        match name {
            "device.pair.requested" => {
                if let Some(r) = pending_device(payload) {
                    self.devices_known.heard(&r.request_id);
                    self.events.publish(Event::DevicePairRequested(r));
                }
            }
            "device.pair.resolved" => {
                let request_id = payload["requestId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                self.devices_known.settled(&request_id);
                self.events.publish(Event::DevicePairResolved {
                    request_id,
                    device_id: payload["deviceId"].as_str().unwrap_or_default().to_string(),
                    decision: payload["decision"]
                        .as_str()
                        .and_then(Resolution::from_wire)
                        .unwrap_or(Resolution::Resolved),
                    ts: payload["ts"].as_i64().unwrap_or_default(),
                });
            }
            "device.pair.changed" => self.events.publish(Event::DevicePairChanged {
                device_id: payload["deviceId"].as_str().unwrap_or_default().to_string(),
                ts: 0,
            }),
            "node.pair.requested" | "node.pair.resolved" => self.on_node_event(name, payload),
            "exec.approval.requested"
            | "exec.approval.resolved"
            | "plugin.approval.requested"
            | "plugin.approval.resolved" => self.on_exec_event(name, payload),
            _ => {}
        }
    }
}
