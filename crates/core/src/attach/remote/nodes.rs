//! OpenClaw's node capability approvals (`node.pair.*`) as ClawPair's: the list in ClawPair's
//! shapes, the decisions, the events, and the requests made or settled while detached,
//! announced at reconnect (a node's request waits until decided: it never expires).

use serde_json::{json, Value};

use super::Remote;
use crate::events::Event;
use crate::owner::{NodeList, PairedNodeView};
use crate::pairing::node::PendingNode;
use crate::protocol::Resolution;
use crate::rpc::RpcError;
use crate::sanitize::sanitize;

impl Remote {
    /// `node.pair.list`: the requests as [`PendingNode`]s, and the paired nodes with what
    /// each may expose.
    pub(super) async fn node_list(&self) -> Result<Value, RpcError> {
        let (pending, v) = self.node_requests().await?;
        let list = |n: &Value, k: &str| -> Vec<String> {
            n[k].as_array()
                .map(|a| a.iter().filter_map(|x| x.as_str().map(sanitize)).collect())
                .unwrap_or_default()
        };
        let s = |n: &Value, k: &str| sanitize(n[k].as_str().unwrap_or_default());
        let paired: Vec<PairedNodeView> = v["paired"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|n| PairedNodeView {
                        node_id: n["nodeId"].as_str().unwrap_or_default().to_string(),
                        display_name: s(n, "displayName"),
                        platform: s(n, "platform"),
                        caps: list(n, "caps"),
                        commands: list(n, "commands"),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(json!(NodeList { pending, paired }))
    }

    /// OpenClaw's node requests read as [`PendingNode`]s, beside its whole answer.
    async fn node_requests(&self) -> Result<(Vec<PendingNode>, Value), RpcError> {
        let v = self.call_raw("node.pair.list", json!({})).await?;
        let pending = v["pending"]
            .as_array()
            .map(|a| a.iter().filter_map(PendingNode::from_openclaw).collect())
            .unwrap_or_default();
        Ok((pending, v))
    }

    /// Approves or rejects one node request, named by its id (never "the latest").
    pub(super) async fn node_decide(
        &self,
        request_id: &str,
        approve: bool,
    ) -> Result<Value, RpcError> {
        let method = if approve {
            "node.pair.approve"
        } else {
            "node.pair.reject"
        };
        let answer = self
            .call_raw(method, json!({ "requestId": request_id }))
            .await?;
        // OpenClaw announces the decision too; this one is not left waiting for it.
        self.node_settled(
            request_id,
            answer["node"]["nodeId"]
                .as_str()
                .or(answer["nodeId"].as_str())
                .unwrap_or_default(),
            if approve {
                Resolution::Approved
            } else {
                Resolution::Rejected
            },
            0,
        );
        Ok(json!({ "requestId": request_id, "approved": approve }))
    }

    /// A request is settled: published once, however many ways it is heard of.
    fn node_settled(&self, request_id: &str, node_id: &str, decision: Resolution, ts: i64) {
        if self.nodes_known.settled(request_id) {
            self.events.publish(Event::NodePairResolved {
                request_id: request_id.to_string(),
                node_id: node_id.to_string(),
                decision,
                ts,
            });
        }
    }

    /// `node.pair.requested` and `node.pair.resolved`, as ClawPair's events.
    pub(super) fn on_node_event(&self, name: &str, payload: &Value) {
        match name {
            "node.pair.requested" => {
                if let Some(r) = PendingNode::from_openclaw(payload) {
                    if self.nodes_known.heard(&r.request_id) {
                        self.events.publish(Event::NodePairRequested(r));
                    }
                }
            }
            "node.pair.resolved" => {
                let s = |k: &str| payload[k].as_str().unwrap_or_default();
                self.node_settled(
                    s("requestId"),
                    s("nodeId"),
                    payload["decision"]
                        .as_str()
                        .and_then(Resolution::from_wire)
                        .unwrap_or(Resolution::Resolved),
                    payload["ts"].as_i64().unwrap_or_default(),
                );
            }
            _ => {}
        }
    }

    /// At (re)connect: node requests made or settled while detached are announced too.
    pub(super) async fn relist_nodes(&self) {
        let Ok((pending, _)) = self.node_requests().await else {
            return;
        };
        let ids: Vec<String> = pending.iter().map(|r| r.request_id.clone()).collect();
        let (new, gone) = self.nodes_known.relist(&ids);
        for r in pending.into_iter().filter(|r| new.contains(&r.request_id)) {
            self.events.publish(Event::NodePairRequested(r));
        }
        for request_id in gone {
            self.node_settled(&request_id, "", Resolution::Resolved, 0);
        }
    }
}
