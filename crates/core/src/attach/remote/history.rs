//! OpenClaw's decided approvals (`approval.history`: exec, plugin and system-agent approvals,
//! newest first, kept 30 days) as entries of ClawPair's activity log, so the window's Activity
//! shows what was decided on OpenClaw, from ClawPair or anywhere else.

use serde_json::{json, Map, Value};

use super::Remote;
use crate::rpc::RpcError;
use crate::sanitize::sanitize;
use crate::store::audit::AuditEntry;

/// The action of these entries in the activity log.
pub const ACTION: &str = "openclaw.approval";

impl Remote {
    /// The last `limit` approvals OpenClaw has settled (at most 100, its page size), oldest
    /// first as the activity log lists its own.
    pub async fn decided_approvals(&self, limit: usize) -> Result<Vec<AuditEntry>, RpcError> {
        let v = self
            .call_raw("approval.history", json!({ "limit": limit.clamp(1, 100) }))
            .await?;
        let mut out: Vec<AuditEntry> = v["items"]
            .as_array()
            .map(|a| a.iter().filter_map(entry).collect())
            .unwrap_or_default();
        out.sort_by_key(|e| e.ts_ms);
        Ok(out)
    }
}

/// One settled approval as an activity entry: what it was for, how it ended and who ended it;
/// every text sanitised. `None` for a record without a time it was settled.
fn entry(v: &Value) -> Option<AuditEntry> {
    let at = v["resolvedAtMs"].as_i64()?;
    let p = &v["presentation"];
    let text = |x: &Value| x.as_str().map(sanitize).unwrap_or_default();
    let kind = text(&p["kind"]);
    let what = match kind.as_str() {
        "exec" => text(&p["commandText"]),
        _ => text(&p["title"]),
    };
    let agent = [&p["agentId"], &v["source"]["agentId"]]
        .into_iter()
        .map(text)
        .find(|a| !a.is_empty())
        .unwrap_or_default();
    let mut d = Map::new();
    for (k, val) in [
        ("kind", kind),
        ("id", text(&v["id"])),
        ("status", text(&v["status"])),
        ("decision", text(&v["decision"])),
        ("reason", text(&v["reason"])),
        ("what", what),
        ("agentId", agent),
        ("host", text(&p["host"])),
        ("resolver", text(&v["resolver"]["kind"])),
    ] {
        if !val.is_empty() {
            d.insert(k.into(), val.into());
        }
    }
    let mut e = AuditEntry::new(at, ACTION, "openclaw", d);
    // Recorded by OpenClaw, not by a credential of ClawPair's.
    e.credential.clear();
    Some(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_settled_approval_reads_as_an_activity_entry() {
        // As OpenClaw 2026.9.6 lists one (approval.history's item schema).
        let v = json!({ "id": "a1", "urlPath": "/approvals/a1", "createdAtMs": 1000, "expiresAtMs": 9000,
            "presentation": { "kind": "exec", "commandText": "rm -rf /srv/\u{202E}cache", "host": "gateway",
                              "agentId": "main", "allowedDecisions": ["allow-once", "deny"] },
            "status": "denied", "decision": "deny", "reason": "reviewer", "resolvedAtMs": 5000,
            "source": { "agentId": "main", "sessionKey": "agent:main:main" }, "resolver": { "kind": "device", "id": "d1" } });
        let e = entry(&v).unwrap();
        assert_eq!((e.action.as_str(), e.ts_ms), (ACTION, 5000));
        assert_eq!(e.details["what"], "rm -rf /srv/cache");
        assert_eq!(e.details["status"], "denied");
        assert_eq!(e.details["resolver"], "device");
        let plugin = json!({ "id": "p1", "presentation": { "kind": "plugin", "title": "Post to the blog" },
            "status": "expired", "reason": "timeout", "resolvedAtMs": 6000 });
        assert_eq!(entry(&plugin).unwrap().details["what"], "Post to the blog");
        assert!(entry(&json!({ "id": "x", "status": "pending" })).is_none());
    }
}
