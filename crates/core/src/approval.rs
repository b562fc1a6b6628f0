//! Approvals an agent waits on: an agent asks to run a command (OpenClaw's `exec.approval.*`)
//! or a plugin asks before it acts (`plugin.approval.*`), and the owner allows it once, always,
//! or denies it. ClawPair's own gateway runs no agents, so these come only from an attached
//! OpenClaw; this is how ClawPair reads and shows one. A pending approval is decided only by the
//! owner, by its id: never by default, by timeout or as "the latest".

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clock::Millis;
pub use crate::protocol::ExecDecision;
use crate::sanitize::sanitize;

/// Which family an approval is of.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalKind {
    /// An agent's command (`exec.approval.*`).
    #[default]
    Exec,
    /// A plugin's request (`plugin.approval.*`; OpenClaw names them `plugin:<uuid>`).
    Plugin,
}

/// An approval waiting for the owner (an agent's command, or a plugin's request), as ClawPair
/// shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingExec {
    pub id: String,
    #[serde(default)]
    pub kind: ApprovalKind,
    /// The command line as the gateway shows it, or a plugin's title (sanitised).
    pub command: String,
    /// A plugin's request: what it asks, in its own words.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// A plugin's request: how much it matters to it (`info`, `warning`, `critical`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub severity: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub plugin_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tool_name: String,
    pub cwd: String,
    /// Where it runs: `gateway`, or `node` with `node_id`.
    pub host: String,
    pub node_id: String,
    pub agent_id: String,
    pub session_key: String,
    /// The answers the gateway accepts for it (`allow-always` may be withheld).
    pub allowed_decisions: Vec<ExecDecision>,
    /// The gateway's own warnings about the command.
    pub warnings: Vec<String>,
    pub created_at_ms: Millis,
    pub expires_at_ms: Millis,
}

impl PendingExec {
    /// Reads an approval as OpenClaw lists and announces it (`exec.approval.list`,
    /// `exec.approval.requested`: `{id, request: {…}, createdAtMs, expiresAtMs}`). `None`
    /// without an id or a command.
    pub fn from_openclaw(v: &Value) -> Option<PendingExec> {
        let r = if v["request"].is_object() {
            &v["request"]
        } else {
            v
        };
        let s = |k: &str| sanitize(r[k].as_str().unwrap_or_default());
        let id = v["id"].as_str().filter(|i| !i.is_empty())?.to_string();
        let kind = if v["approvalKind"] == "plugin"
            || id.starts_with("plugin:")
            || (r["command"].is_null() && r["title"].is_string())
        {
            ApprovalKind::Plugin
        } else {
            ApprovalKind::Exec
        };
        let command = match kind {
            ApprovalKind::Exec => s("command"),
            ApprovalKind::Plugin => s("title"),
        };
        if command.is_empty() {
            return None;
        }
        let mut allowed: Vec<ExecDecision> = r["allowedDecisions"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|d| d.as_str().and_then(ExecDecision::from_wire))
                    .collect()
            })
            .unwrap_or_default();
        if allowed.is_empty() {
            allowed = vec![ExecDecision::AllowOnce, ExecDecision::Deny];
        }
        let mut warnings: Vec<String> = r["commandAnalysis"]["warningLines"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_str().map(sanitize)).collect())
            .unwrap_or_default();
        if let Some(w) = r["warningText"].as_str().filter(|w| !w.is_empty()) {
            warnings.insert(0, sanitize(w));
        }
        Some(PendingExec {
            id,
            kind,
            command,
            description: s("description"),
            severity: s("severity"),
            plugin_id: s("pluginId"),
            tool_name: s("toolName"),
            cwd: s("cwd"),
            host: s("host"),
            node_id: s("nodeId"),
            agent_id: s("agentId"),
            session_key: s("sessionKey"),
            allowed_decisions: allowed,
            warnings,
            created_at_ms: v["createdAtMs"].as_i64().unwrap_or_default(),
            expires_at_ms: v["expiresAtMs"].as_i64().unwrap_or_default(),
        })
    }

    /// Whether the gateway accepts `d` for it.
    pub fn allows(&self, d: ExecDecision) -> bool {
        self.allowed_decisions.contains(&d)
    }

    /// Where and for whom it would run, in one line: "in /srv on the gateway · agent main ·
    /// session agent:main:main" (for a plugin: "plugin blog · tool post · agent main").
    pub fn context(&self) -> String {
        let mut parts = Vec::new();
        if !self.plugin_id.is_empty() {
            parts.push(format!("plugin {}", self.plugin_id));
        }
        if !self.tool_name.is_empty() {
            parts.push(format!("tool {}", self.tool_name));
        }
        if !self.cwd.is_empty() {
            parts.push(format!("in {}", self.cwd));
        }
        match (self.host.as_str(), self.node_id.as_str()) {
            ("node", id) if !id.is_empty() => parts.push(format!("on node {id}")),
            ("", _) => {}
            (h, _) => parts.push(format!("on the {h}")),
        }
        if !self.agent_id.is_empty() {
            parts.push(format!("agent {}", self.agent_id));
        }
        if !self.session_key.is_empty() {
            parts.push(format!("session {}", self.session_key));
        }
        parts.join(" · ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// An approval as OpenClaw 2026.9.6 lists it (`exec.approval.list`, from the real gateway).
    fn openclaw_approval() -> Value {
        json!({ "approvalKind": "exec", "createdAtMs": 1796619265892u64, "expiresAtMs": 1796619325892u64,
            "id": "46d5ebd9-6c83-4380-8ec4-ed61db93f3cf",
            "request": { "agentId": "main", "allowedDecisions": ["allow-once", "allow-always", "deny"],
                "ask": null, "command": "ls -la /srv",
                "commandAnalysis": { "commandCount": 1, "nestedCommandCount": 0, "riskKinds": [], "warningLines": [] },
                "commandArgv": ["ls", "-la", "/srv"], "cwd": "/home/me", "host": "gateway", "nodeId": null,
                "sessionKey": "agent:main:main", "warningText": null } })
    }

    #[test]
    fn openclaws_approval_reads_with_its_command_context_and_decisions() {
        let r = PendingExec::from_openclaw(&openclaw_approval()).unwrap();
        assert_eq!(r.id, "46d5ebd9-6c83-4380-8ec4-ed61db93f3cf");
        assert_eq!(r.command, "ls -la /srv");
        assert_eq!(
            r.context(),
            "in /home/me · on the gateway · agent main · session agent:main:main"
        );
        assert!(r.allows(ExecDecision::AllowAlways));
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v["allowedDecisions"],
            json!(["allow-once", "allow-always", "deny"])
        );
    }

    #[test]
    fn a_plugins_request_reads_with_its_title_and_words() {
        let v = json!({ "id": "plugin:9b1f", "createdAtMs": 1, "expiresAtMs": 2,
            "request": { "pluginId": "blog", "title": "Post \u{202E}to the blog", "description": "Publishes the draft",
                "severity": "warning", "toolName": "post", "agentId": "main",
                "allowedDecisions": ["allow-once", "deny"] } });
        let r = PendingExec::from_openclaw(&v).unwrap();
        assert_eq!(r.kind, ApprovalKind::Plugin);
        assert_eq!(r.command, "Post to the blog");
        assert_eq!(r.description, "Publishes the draft");
        assert_eq!(r.context(), "plugin blog · tool post · agent main");
        assert!(!r.allows(ExecDecision::AllowAlways));
        let exec = PendingExec::from_openclaw(&openclaw_approval()).unwrap();
        assert_eq!(exec.kind, ApprovalKind::Exec);
        assert_eq!(serde_json::to_value(&exec).unwrap()["kind"], "exec");
    }

    #[test]
    fn a_command_is_shown_sanitised_and_unknown_decisions_are_left_out() {
        let mut v = openclaw_approval();
        v["request"]["command"] = json!("rm -rf /\u{202e}gnp.txt\u{0007}");
        v["request"]["allowedDecisions"] = json!(["allow-once", "allow-forever", "deny"]);
        v["request"]["warningText"] = json!("deletes files");
        let r = PendingExec::from_openclaw(&v).unwrap();
        assert!(!r.command.contains('\u{202e}') && !r.command.contains('\u{0007}'));
        assert!(!r.allows(ExecDecision::AllowAlways));
        assert_eq!(r.warnings, ["deletes files"]);
        v["request"]["command"] = json!("");
        assert!(PendingExec::from_openclaw(&v).is_none());
    }
}
