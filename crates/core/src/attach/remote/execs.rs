//! OpenClaw's exec and plugin approvals (`exec.approval.*`, `plugin.approval.*`) as ClawPair's:
//! one list of both, the one decision the owner gives an approval named by its id, the events,
//! and the approvals asked or settled while detached, announced at reconnect. First answer wins at OpenClaw: a decision that comes
//! too late is refused there and said as such.

use serde_json::{json, Value};

use super::Remote;
use crate::approval::{ApprovalKind, ExecDecision, PendingExec};
use crate::events::Event;
use crate::rpc::RpcError;

impl Remote {
    /// `exec.approval.list` as [`PendingExec`]s: an array, as ClawPair's own gateway answers it.
    pub(super) async fn exec_list(&self) -> Result<Value, RpcError> {
        Ok(json!(self.exec_requests().await?))
    }

    async fn exec_requests(&self) -> Result<Vec<PendingExec>, RpcError> {
        let read = |v: Value| -> Vec<PendingExec> {
            v.as_array()
                .map(|a| a.iter().filter_map(PendingExec::from_openclaw).collect())
                .unwrap_or_default()
        };
        let mut all = read(self.call_raw("exec.approval.list", json!({})).await?);
        // Plugins' requests beside the commands; a gateway without them lists none.
        if let Ok(v) = self.call_raw("plugin.approval.list", json!({})).await {
            all.extend(read(v));
        }
        all.sort_by_key(|r| r.created_at_ms);
        Ok(all)
    }

    /// Answers one approval with the owner's decision.
    pub(super) async fn exec_resolve(
        &self,
        id: &str,
        decision: ExecDecision,
    ) -> Result<Value, RpcError> {
        // Each family answers its own (OpenClaw names plugin approvals `plugin:<uuid>`).
        let method = match kind_of(id) {
            ApprovalKind::Exec => "exec.approval.resolve",
            ApprovalKind::Plugin => "plugin.approval.resolve",
        };
        self.call_raw(method, json!({ "id": id, "decision": decision }))
            .await?;
        self.exec_settled(id, decision.as_str(), 0);
        Ok(json!({ "id": id, "decision": decision }))
    }

    /// An approval is settled: published once, however many ways it is heard of.
    fn exec_settled(&self, id: &str, decision: &str, ts: i64) {
        if self.execs_known.settled(id) {
            self.events.publish(Event::ExecApprovalResolved {
                id: id.to_string(),
                decision: decision.to_string(),
                ts,
            });
        }
    }

    /// `exec.approval.requested` and `exec.approval.resolved` (and the same of plugins), as
    /// ClawPair's events.
    pub(super) fn on_exec_event(&self, name: &str, payload: &Value) {
        match name {
            "exec.approval.requested" | "plugin.approval.requested" => {
                if let Some(r) = PendingExec::from_openclaw(payload) {
                    if self.execs_known.heard(&r.id) {
                        self.events.publish(Event::ExecApprovalRequested(r));
                    }
                }
            }
            "exec.approval.resolved" | "plugin.approval.resolved" => {
                let decision = payload["decision"]
                    .as_str()
                    .and_then(ExecDecision::from_wire)
                    .map(ExecDecision::as_str)
                    .unwrap_or("");
                self.exec_settled(
                    payload["id"].as_str().unwrap_or_default(),
                    decision,
                    payload["ts"].as_i64().unwrap_or_default(),
                );
            }
            _ => {}
        }
    }

    /// At (re)connect: approvals asked or settled while detached are announced too.
    pub(super) async fn relist_execs(&self) {
        let Ok(pending) = self.exec_requests().await else {
            return;
        };
        let ids: Vec<String> = pending.iter().map(|r| r.id.clone()).collect();
        let (new, gone) = self.execs_known.relist(&ids);
        for r in pending.into_iter().filter(|r| new.contains(&r.id)) {
            self.events.publish(Event::ExecApprovalRequested(r));
        }
        for id in gone {
            self.exec_settled(&id, "", 0);
        }
    }
}

/// The family of an approval named by its id, as OpenClaw names them.
fn kind_of(id: &str) -> ApprovalKind {
    if id.starts_with("plugin:") {
        ApprovalKind::Plugin
    } else {
        ApprovalKind::Exec
    }
}
