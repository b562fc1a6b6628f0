//! ClawPair's own methods (the ones the window, the tray and the notifications use) answered on
//! OpenClaw's gateway: each mapped onto OpenClaw's method, or refused with what to do instead.

use serde_json::{json, Map, Value};

use super::views::{paired_view, pending_view};
use super::{unsupported, Remote};
use crate::protocol::{Code, Resolution};
use crate::rpc::RpcError;
use crate::sanitize::sanitize;

impl Remote {
    /// Answers one of ClawPair's own methods (the ones the window, the tray and the
    /// notifications use) on OpenClaw's data. `None`: not something OpenClaw's gateway holds
    /// (settings, the activity log): ClawPair answers it itself.
    pub async fn call(&self, method: &str, params: Value) -> Option<Result<Value, RpcError>> {
        let p = |k: &str| params.get(k).cloned().unwrap_or(Value::Null);
        Some(match method {
            "device.pair.list" => self.device_list().await,
            "device.pair.approve" => {
                if params["withoutAdmin"] == true {
                    return Some(Err(unsupported(
                        "OpenClaw approves what the device asked for; to give it less, reject \
                         the request and let the device ask again with fewer scopes",
                    )));
                }
                self.call_raw(method, json!({ "requestId": p("requestId") })).await
            }
            "device.pair.reject" => self.call_raw(method, json!({ "requestId": p("requestId") })).await,
            "device.pair.remove" => self.call_raw(method, json!({ "deviceId": p("deviceId") })).await,
            "device.pair.rename" => {
                self.call_raw(method, json!({ "deviceId": p("deviceId"), "label": p("label") })).await
            }
            "device.token.rotate" | "device.token.revoke" => {
                self.call_raw(method, json!({ "deviceId": p("deviceId"), "role": p("role") })).await
            }
            "device.setup.create" => {
                let mut q = Map::new();
                if let Some(u) = params["url"].as_str().filter(|u| !u.is_empty()) {
                    q.insert("publicUrl".into(), u.into());
                }
                self.call_raw("device.pair.setupCode", Value::Object(q))
                    .await
                    .map(|v| {
                        json!({ "setupCode": v["setupCode"], "url": v["gatewayUrl"], "expiresAtMs": v["expiresAtMs"] })
                    })
            }
            "device.setup.cleanup" => Err(unsupported(
                "OpenClaw's protocol has no way to invalidate its setup codes; they expire on their own",
            )),
            "device.pair.clear" => Err(unsupported(
                "OpenClaw's protocol removes devices one at a time: remove them from the list",
            )),
            "pairing.list" => self.dm_list(params["channel"].as_str()).await.map(|r| json!({ "requests": r })),
            "pairing.approve" | "pairing.reject" => {
                let id = params["code"].as_str().unwrap_or_default().to_string();
                let known = self.dm_known.lock().ok().and_then(|m| m.get(&id).cloned());
                let Some(r) = known else {
                    return Some(Err(RpcError::new(Code::NotFound, format!("unknown request {}", sanitize(&id)))
                        .with_details(json!({ "reason": "unknown" }))));
                };
                let mut q = json!({ "channel": r.channel, "accountId": r.account_id, "requestId": id });
                let approve = method == "pairing.approve";
                if approve && params["notify"] == true {
                    q["notify"] = true.into();
                }
                let m = if approve { "channels.pairing.approve" } else { "channels.pairing.dismiss" };
                let answer = self.call_raw(m, q).await;
                if answer.is_ok() {
                    self.settled_dm(&r, if approve { Resolution::Approved } else { Resolution::Rejected });
                }
                answer.map(|v| json!({ "channel": r.channel, "accountId": r.account_id, "senderId": v["senderId"], "code": id }))
            }
            "allowlist.list" => self.allow_list(params["channel"].as_str()),
            "allowlist.add" | "allowlist.remove" => Err(unsupported(
                "OpenClaw's protocol does not change allowlists: add senders by approving their \
                 requests, or with openclaw config set channels.<channel>.allowFrom",
            )),
            _ => return None,
        })
    }

    /// `device.pair.list` in ClawPair's shape (fingerprints, names, what each request means).
    async fn device_list(&self) -> Result<Value, RpcError> {
        let v = self.call_raw("device.pair.list", json!({})).await?;
        let pending: Vec<Value> = v["pending"]
            .as_array()
            .map(|a| a.iter().filter_map(pending_view).collect())
            .unwrap_or_default();
        let paired: Vec<Value> = v["paired"]
            .as_array()
            .map(|a| a.iter().map(paired_view).collect())
            .unwrap_or_default();
        Ok(json!({ "pending": pending, "paired": paired }))
    }
}
