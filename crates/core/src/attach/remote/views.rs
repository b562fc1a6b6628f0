//! OpenClaw's records in ClawPair's shapes: a pending device request (fingerprint computed,
//! names sanitised), the window's views of pending and paired devices, a chat-sender request.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::clock::Millis;
use crate::events::DmRequestView;
use crate::pairing::device::{decode_public_key, fingerprint_for, PendingDevice};
use crate::sanitize::sanitize;
use crate::service::{PairedDeviceView, PendingDeviceView};

/// A pending device request of OpenClaw's, as ClawPair keeps one (fingerprint computed from
/// the key; names sanitised).
pub(super) fn pending_device(v: &Value) -> Option<PendingDevice> {
    let s = |k: &str| sanitize(v[k].as_str().unwrap_or_default());
    let key = decode_public_key(v["publicKey"].as_str()?).ok()?;
    let is_repair = v["isRepair"].as_bool().unwrap_or(false);
    Some(PendingDevice {
        request_id: v["requestId"].as_str()?.to_string(),
        device_id: v["deviceId"].as_str()?.to_string(),
        public_key: v["publicKey"].as_str()?.to_string(),
        display_name: s("displayName"),
        platform: s("platform"),
        device_family: s("deviceFamily"),
        client_id: s("clientId"),
        client_mode: s("clientMode"),
        role: v["role"].as_str().unwrap_or("operator").to_string(),
        scopes: v["scopes"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_str().map(sanitize)).collect())
            .unwrap_or_default(),
        remote_ip: s("remoteIp"),
        fingerprint: fingerprint_for(&key),
        is_repair,
        reason: if is_repair {
            "role-upgrade"
        } else {
            "not-paired"
        }
        .into(),
        regains: false,
        ts: v["ts"].as_i64().unwrap_or_default(),
        extra: Map::new(),
    })
}

/// How long OpenClaw keeps a device request, for the window's countdown.
const OPENCLAW_PENDING_TTL_MS: Millis = 5 * 60_000;

/// A pending device request of OpenClaw's as listed.
pub(super) fn pending_view(v: &Value) -> Option<PendingDeviceView> {
    let r = pending_device(v)?;
    let expires = r.ts + OPENCLAW_PENDING_TTL_MS;
    Some(PendingDeviceView::of(r, expires))
}

/// A paired device of OpenClaw's as listed: what ClawPair lists of its own, as far as OpenClaw's
/// record has it (names sanitised, fingerprint from the key).
pub(super) fn paired_view(v: &Value) -> PairedDeviceView {
    let mut d = PairedDeviceView::deserialize(v).unwrap_or_default();
    let s = |k: &str| sanitize(v[k].as_str().unwrap_or_default());
    d.device_id = v["deviceId"].as_str().unwrap_or_default().to_string();
    d.display_name = s("displayName");
    d.operator_label = Some(s("operatorLabel")).filter(|l| !l.is_empty());
    d.platform = s("platform");
    d.device_family = s("deviceFamily");
    d.client_id = s("clientId");
    d.client_mode = s("clientMode");
    d.remote_ip = s("remoteIp");
    d.name = [s("operatorLabel"), s("displayName"), s("clientId")]
        .into_iter()
        .find(|n| !n.is_empty())
        .unwrap_or_else(|| d.device_id.chars().take(12).collect());
    d.fingerprint = decode_public_key(&d.public_key)
        .map(|k| fingerprint_for(&k))
        .unwrap_or_default();
    if d.approved_scopes.is_empty() {
        d.approved_scopes = d.scopes.clone();
    }
    if d.role.is_empty() {
        d.role = d.roles.first().cloned().unwrap_or_default();
    }
    d.stale = false;
    d
}

/// A chat-sender request of OpenClaw's, as ClawPair shows one. OpenClaw names requests by an
/// id, not the code the sender got: the id stands in the code's place.
pub(super) fn dm_view(v: &Value) -> Option<DmRequestView> {
    let s = |k: &str| sanitize(v[k].as_str().unwrap_or_default());
    let meta = v["metadata"]
        .as_object()
        .map(crate::service::clean_meta)
        .unwrap_or_default();
    Some(DmRequestView {
        channel: s("channel"),
        account_id: s("accountId"),
        id: s("senderId"),
        code: v["requestId"].as_str()?.to_string(),
        created_at: s("createdAt"),
        last_seen_at: s("lastSeenAt"),
        expires_at: s("expiresAt"),
        meta,
        invalid_name: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn openclaws_paired_devices_read_as_clawpairs() {
        // A paired node as OpenClaw 2026.9.6 lists it (extra fields and all).
        let id = crate::client::Identity::generate();
        let v = json!({ "deviceId": id.device_id(), "publicKey": id.public_key(), "displayName": "v4cap\u{202E} node",
                        "platform": "linux", "deviceFamily": "Linux", "clientId": "node-host", "clientMode": "node",
                        "role": "node", "roles": ["node"], "scopes": [], "approvedVia": "owner", "connected": true,
                        "createdAtMs": 1, "approvedAtMs": 2, "lastSeenAtMs": 3, "lastSeenReason": "connect",
                        "tokens": [{ "role": "node", "scopes": [], "createdAtMs": 1 }] });
        let d = paired_view(&v);
        assert_eq!(d.name, "v4cap node");
        assert_eq!(d.fingerprint, id.fingerprint());
        assert_eq!(
            (d.role.as_str(), d.approved_at_ms, d.last_seen_at_ms),
            ("node", 2, Some(3))
        );
        assert_eq!(d.tokens.len(), 1);
        // A record that lists little still shows, named by its id.
        let d = paired_view(&json!({ "deviceId": "abcdef0123456789", "tokens": "not a list" }));
        assert_eq!(
            (d.name.as_str(), d.fingerprint.as_str()),
            ("abcdef012345", "")
        );
    }

    #[test]
    fn openclaws_device_requests_read_as_clawpairs() {
        let id = crate::client::Identity::generate();
        let v = json!({ "requestId": "r1", "deviceId": id.device_id(), "publicKey": id.public_key(),
                        "displayName": "Pixel\u{202E}9", "platform": "android", "clientId": "openclaw-android",
                        "clientMode": "node", "role": "node", "roles": ["node"], "scopes": [], "silent": false,
                        "isRepair": false, "ts": 1000 });
        let r = pending_device(&v).unwrap();
        assert_eq!(r.fingerprint, id.fingerprint());
        assert_eq!(r.display_name, "Pixel9");
        let view = pending_view(&v).unwrap();
        assert_eq!(view.expires_at_ms, 1000 + OPENCLAW_PENDING_TTL_MS);
        assert_eq!(view.kind, "new device");
        assert!(pending_device(
            &json!({ "requestId": "r", "deviceId": "d", "publicKey": "not a key" })
        )
        .is_none());

        let d = dm_view(&json!({ "requestId": "telegram:ABCD2345", "channel": "telegram", "accountId": "default",
                                 "senderId": "42", "metadata": { "username": "dave" }, "createdAt": "x" }))
            .unwrap();
        assert_eq!(
            (d.code.as_str(), d.id.as_str()),
            ("telegram:ABCD2345", "42")
        );
        assert_eq!(d.meta["username"], "dave");
    }
}
