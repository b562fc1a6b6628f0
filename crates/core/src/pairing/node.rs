//! A node's capability request: a paired device with the `node` role asks to expose new
//! capabilities or commands (OpenClaw's `node.pair.*`). ClawPair's own gateway grants a node
//! its commands with its device; an attached OpenClaw asks again whenever a node widens what it
//! declares, and these are its requests as ClawPair shows them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::clock::Millis;
use crate::pairing::device::SCOPE_ADMIN;
use crate::sanitize::sanitize;

/// A node waiting for the owner to approve what it declares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingNode {
    pub request_id: String,
    /// The node's device id.
    pub node_id: String,
    pub display_name: String,
    pub platform: String,
    /// The node's own version, as it reports it.
    pub version: String,
    /// What it asks to expose: capability families (`system`, `canvas`, …) and commands
    /// (`system.run`, …).
    pub caps: Vec<String>,
    pub commands: Vec<String>,
    /// OS permissions it reports (`screenRecording: true`, …).
    pub permissions: Map<String, Value>,
    /// The scopes an approver must hold (`operator.admin` for commands such as `system.run`).
    pub required_approve_scopes: Vec<String>,
    pub ts: Millis,
}

impl PendingNode {
    /// Reads a request as OpenClaw lists and announces it (`node.pair.list`,
    /// `node.pair.requested`); names and lists sanitised. `None` without a request id.
    pub fn from_openclaw(v: &Value) -> Option<PendingNode> {
        let s = |k: &str| sanitize(v[k].as_str().unwrap_or_default());
        let list = |k: &str| -> Vec<String> {
            v[k].as_array()
                .map(|a| a.iter().filter_map(|x| x.as_str().map(sanitize)).collect())
                .unwrap_or_default()
        };
        let permissions = v["permissions"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(_, v)| v.is_boolean())
                    .map(|(k, v)| (sanitize(k), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        Some(PendingNode {
            request_id: v["requestId"]
                .as_str()
                .filter(|r| !r.is_empty())?
                .to_string(),
            node_id: v["nodeId"].as_str().unwrap_or_default().to_string(),
            display_name: s("displayName"),
            platform: s("platform"),
            version: s("version"),
            caps: list("caps"),
            commands: list("commands"),
            permissions,
            required_approve_scopes: list("requiredApproveScopes"),
            ts: v["ts"].as_i64().unwrap_or_default(),
        })
    }

    /// Whether approving it takes `operator.admin` (a command that runs programs, …): such an
    /// ask is decided in the window, never from a notification's button.
    pub fn needs_admin(&self) -> bool {
        self.required_approve_scopes
            .iter()
            .any(|s| s == SCOPE_ADMIN)
    }

    /// Who asks, as the owner sees it: its name, else the start of its id.
    pub fn name(&self) -> String {
        if self.display_name.is_empty() {
            format!("node {}", self.node_id.chars().take(12).collect::<String>())
        } else {
            self.display_name.clone()
        }
    }

    /// What it asks for, in one line: "commands system.run; capabilities system, canvas".
    pub fn asks(&self) -> String {
        let mut parts = Vec::new();
        if !self.commands.is_empty() {
            parts.push(format!("commands {}", self.commands.join(", ")));
        }
        if !self.caps.is_empty() {
            parts.push(format!("capabilities {}", self.caps.join(", ")));
        }
        let granted: Vec<&str> = self
            .permissions
            .iter()
            .filter(|(_, v)| v.as_bool() == Some(true))
            .map(|(k, _)| k.as_str())
            .collect();
        if !granted.is_empty() {
            parts.push(format!("permissions {}", granted.join(", ")));
        }
        if parts.is_empty() {
            "nothing new to expose".into()
        } else {
            parts.join("; ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A request as OpenClaw 2026.9.6 lists it (`node.pair.list`, taken from the real gateway).
    fn openclaw_request() -> Value {
        json!({ "requestId": "bbf02ff9-dde7-4e16-8b14-119551a2ad97",
            "nodeId": "3d93b9ea7bca18db153d6313704ab91f26fac023a94296acc266840ef82556bf",
            "clientId": "gateway-client", "clientMode": "backend", "displayName": "Build box",
            "platform": "linux", "version": "2026.9.6", "deviceFamily": "Linux",
            "caps": ["system", "canvas"], "commands": ["system.run"],
            "requiredApproveScopes": ["operator.pairing", "operator.admin"], "ts": 1796618146249u64 })
    }

    #[test]
    fn openclaws_request_reads_with_what_it_asks_and_who_may_approve() {
        let r = PendingNode::from_openclaw(&openclaw_request()).unwrap();
        assert_eq!(r.request_id, "bbf02ff9-dde7-4e16-8b14-119551a2ad97");
        assert_eq!(r.name(), "Build box");
        assert_eq!(r.commands, ["system.run"]);
        assert!(r.needs_admin());
        assert_eq!(r.asks(), "commands system.run; capabilities system, canvas");
        let back = serde_json::to_value(&r).unwrap();
        assert_eq!(back["requestId"], "bbf02ff9-dde7-4e16-8b14-119551a2ad97");
        assert_eq!(back["requiredApproveScopes"][1], "operator.admin");
    }

    #[test]
    fn names_are_sanitised_and_a_request_without_an_id_is_none() {
        let mut v = openclaw_request();
        v["displayName"] = json!("evil\u{202e}name\nline");
        v["commands"] = json!(["ok", 5, "bad\u{0007}"]);
        let r = PendingNode::from_openclaw(&v).unwrap();
        assert!(!r.display_name.contains('\u{202e}') && !r.display_name.contains('\n'));
        assert_eq!(r.commands.len(), 2);
        assert!(!r.commands[1].contains('\u{0007}'));
        v["requestId"] = json!("");
        assert!(PendingNode::from_openclaw(&v).is_none());
        assert!(!PendingNode::from_openclaw(&json!({ "requestId": "r" }))
            .unwrap()
            .needs_admin());
    }
}
