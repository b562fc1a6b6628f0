//! ClawPair's own methods (the ones the window, the tray and the notifications use) answered on
//! OpenClaw's gateway: each mapped onto OpenClaw's method, or refused with what to do instead.

use serde_json::{json, Map, Value};

use super::views::{paired_view, pending_view};
use super::{unsupported, Remote};
use crate::owner::OwnerRequest;
use crate::protocol::{Code, Resolution};
use crate::rpc::RpcError;
use crate::sanitize::sanitize;
use crate::service::{DeviceList, DmApproved};

impl Remote {
    /// Answers one of the owner's actions on OpenClaw's data, each mapped onto OpenClaw's
    /// method or refused with what to do instead. `None`: what ClawPair keeps itself (its
    /// activity log, its own admin token), answered by ClawPair's own service. Every action is
    /// named here, with no catch-all: a new one must be decided for companion mode.
    pub async fn answer(&self, req: &OwnerRequest) -> Option<Result<Value, RpcError>> {
        let method = req.method();
        Some(match req {
            OwnerRequest::DeviceList {} => self.device_list().await,
            OwnerRequest::DeviceApprove {
                request_id,
                without_admin,
            } => {
                if *without_admin {
                    return Some(Err(unsupported(
                        "OpenClaw approves what the device asked for; to give it less, reject \
                         the request and let the device ask again with fewer scopes",
                    )));
                }
                self.call_raw(method, json!({ "requestId": request_id })).await
            }
            OwnerRequest::DeviceReject { request_id } => {
                self.call_raw(method, json!({ "requestId": request_id })).await
            }
            OwnerRequest::DeviceRemove { device_id } => {
                self.call_raw(method, json!({ "deviceId": device_id })).await
            }
            OwnerRequest::DeviceRename { device_id, label } => {
                self.call_raw(method, json!({ "deviceId": device_id, "label": label }))
                    .await
            }
            OwnerRequest::TokenRotate { device_id, role }
            | OwnerRequest::TokenRevoke { device_id, role } => {
                self.call_raw(method, json!({ "deviceId": device_id, "role": role }))
                    .await
            }
            OwnerRequest::SetupCreate { url, .. } => {
                let mut q = Map::new();
                if let Some(u) = url.as_deref().filter(|u| !u.is_empty()) {
                    q.insert("publicUrl".into(), u.into());
                }
                self.call_raw("device.pair.setupCode", Value::Object(q))
                    .await
                    .map(|v| {
                        json!({ "setupCode": v["setupCode"], "url": v["gatewayUrl"], "expiresAtMs": v["expiresAtMs"] })
                    })
            }
            OwnerRequest::SetupCleanup {} => Err(unsupported(
                "OpenClaw's protocol has no way to invalidate its setup codes; they expire on their own",
            )),
            OwnerRequest::DeviceClear { .. } => Err(unsupported(
                "OpenClaw's protocol removes devices one at a time: remove them from the list",
            )),
            OwnerRequest::NodeList {} => self.node_list().await,
            OwnerRequest::NodeApprove { request_id } => self.node_decide(request_id, true).await,
            OwnerRequest::NodeReject { request_id } => self.node_decide(request_id, false).await,
            OwnerRequest::ExecList {} => self.exec_list().await,
            OwnerRequest::ExecResolve { id, decision } => self.exec_resolve(id, *decision).await,
            OwnerRequest::DmList { channel } => self
                .dm_list(channel.as_deref())
                .await
                .map(|r| json!({ "requests": r })),
            OwnerRequest::DmApprove { code, notify, .. } => self.dm_decide(code, true, *notify).await,
            OwnerRequest::DmReject { code, .. } => self.dm_decide(code, false, false).await,
            OwnerRequest::AllowList { channel } => self.allow_list(channel.as_deref()),
            OwnerRequest::AllowAdd { .. } | OwnerRequest::AllowRemove { .. } => Err(unsupported(
                "OpenClaw's protocol does not change allowlists: add senders by approving their \
                 requests, or with openclaw config set channels.<channel>.allowFrom",
            )),
            // ClawPair's own: its activity log, and its own gateway's admin token.
            OwnerRequest::AuditTail { .. } | OwnerRequest::AdminTokenRotate {} => return None,
        })
    }

    /// Approves or dismisses a chat sender's request OpenClaw listed (`code` is its request id).
    async fn dm_decide(&self, code: &str, approve: bool, notify: bool) -> Result<Value, RpcError> {
        let known = self.dm_known.lock().ok().and_then(|m| m.get(code).cloned());
        let Some(r) = known else {
            return Err(RpcError::new(
                Code::NotFound,
                format!("unknown request {}", sanitize(code)),
            )
            .with_details(json!({ "reason": "unknown" })));
        };
        let mut q = json!({ "channel": r.channel, "accountId": r.account_id, "requestId": code });
        if approve && notify {
            q["notify"] = true.into();
        }
        let m = if approve {
            "channels.pairing.approve"
        } else {
            "channels.pairing.dismiss"
        };
        let answer = self.call_raw(m, q).await;
        if answer.is_ok() {
            self.settled_dm(
                &r,
                if approve {
                    Resolution::Approved
                } else {
                    Resolution::Rejected
                },
            );
        }
        answer.map(|v| {
            json!(DmApproved {
                sender_id: v["senderId"]
                    .as_str()
                    .map_or_else(|| r.id.clone(), sanitize),
                channel: r.channel,
                account_id: r.account_id,
                code: code.to_string(),
            })
        })
    }

    /// `device.pair.list` in ClawPair's shape (fingerprints, names, what each request means).
    async fn device_list(&self) -> Result<Value, RpcError> {
        let v = self.call_raw("device.pair.list", json!({})).await?;
        let list = |k: &str| v[k].as_array().map(Vec::as_slice).unwrap_or_default();
        Ok(json!(DeviceList {
            pending: list("pending").iter().filter_map(pending_view).collect(),
            paired: list("paired").iter().map(paired_view).collect(),
        }))
    }
}
