//! What callers are shown of requests, devices, allowlists and setup codes: sanitised, and
//! never a token or its hash.

use serde::{Deserialize, Serialize};

use super::*;

/// An allowed sender as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AllowView {
    pub channel: String,
    pub account_id: String,
    pub sender_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved_via: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_message_at: Option<String>,
    /// Listed from a store ClawPair may not change (OpenClaw's, in companion mode).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    /// How to remove it where ClawPair cannot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove_with: Option<String>,
}

/// An approved DM request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DmApproved {
    pub channel: String,
    pub account_id: String,
    pub sender_id: String,
    pub code: String,
}

/// A pending device request as listed (with its expiry).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingDeviceView {
    #[serde(flatten)]
    pub request: PendingDevice,
    /// The name to show: the device's own, else its client id, else its short id.
    pub name: String,
    /// What approving it means, in words ("new device", "asks for more scopes", …).
    pub kind: String,
    /// OpenClaw's list of the roles asked for (one, here).
    pub roles: Vec<String>,
    /// OpenClaw's flag for requests approved without a prompt; never, here.
    pub silent: bool,
    pub expires_at_ms: Millis,
}

impl PendingDeviceView {
    /// A request as listed, expiring at `expires_at_ms`.
    pub fn of(request: PendingDevice, expires_at_ms: Millis) -> Self {
        PendingDeviceView {
            name: request.shown_name(),
            kind: request.kind_in_words().to_string(),
            roles: vec![request.role.clone()],
            silent: false,
            expires_at_ms,
            request,
        }
    }
}

/// A role's token as listed: everything but the hash.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TokenView {
    pub role: String,
    pub scopes: Vec<String>,
    pub created_at_ms: Millis,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotated_at_ms: Option<Millis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at_ms: Option<Millis>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at_ms: Option<Millis>,
}

/// A paired device as listed: no token material, ever. Read leniently (what a gateway leaves
/// out is empty): OpenClaw's own records list less than ClawPair's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PairedDeviceView {
    pub device_id: String,
    /// The name to show: the owner's label, else the device's own name, else its client id,
    /// else its short id.
    pub name: String,
    pub public_key: String,
    pub display_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator_label: Option<String>,
    pub platform: String,
    pub device_family: String,
    pub client_id: String,
    pub client_mode: String,
    /// The first role approved (OpenClaw's `role`); `roles` has them all.
    pub role: String,
    pub roles: Vec<String>,
    /// Every scope approved, as OpenClaw lists it; `approvedScopes` is the same set.
    pub scopes: Vec<String>,
    pub approved_scopes: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub withheld_scopes: Vec<String>,
    /// Not seen for longer than `devices.staleAfterDays` (false when that is off).
    pub stale: bool,
    pub remote_ip: String,
    pub fingerprint: String,
    pub created_at_ms: Millis,
    pub approved_at_ms: Millis,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen_at_ms: Option<Millis>,
    pub tokens: Vec<TokenView>,
}

impl From<&PairedDevice> for PairedDeviceView {
    fn from(d: &PairedDevice) -> Self {
        PairedDeviceView {
            device_id: d.device_id.clone(),
            name: d.shown_name(),
            public_key: d.public_key.clone(),
            display_name: sanitize(&d.display_name),
            operator_label: d.operator_label.as_deref().map(sanitize),
            platform: sanitize(&d.platform),
            device_family: sanitize(&d.device_family),
            client_id: sanitize(&d.client_id),
            client_mode: sanitize(&d.client_mode),
            role: d.roles.first().cloned().unwrap_or_default(),
            roles: d.roles.clone(),
            scopes: d.approved_scopes.clone(),
            approved_scopes: d.approved_scopes.clone(),
            withheld_scopes: d.withheld_scopes.clone(),
            stale: false,
            remote_ip: sanitize(&d.remote_ip),
            fingerprint: d.fingerprint.clone(),
            created_at_ms: d.created_at_ms,
            approved_at_ms: d.approved_at_ms,
            last_seen_at_ms: d.last_seen_at_ms,
            tokens: d
                .tokens
                .iter()
                .map(|(role, t)| TokenView {
                    role: role.clone(),
                    scopes: t.scopes.clone(),
                    created_at_ms: t.created_at_ms,
                    rotated_at_ms: t.rotated_at_ms,
                    revoked_at_ms: t.revoked_at_ms,
                    last_used_at_ms: t.last_used_at_ms,
                })
                .collect(),
        }
    }
}

/// `device.pair.list`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceList {
    pub pending: Vec<PendingDeviceView>,
    pub paired: Vec<PairedDeviceView>,
}

/// A new setup code (shown once: it carries the bootstrap token, so `Debug` hides it).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetupCode {
    pub setup_code: String,
    pub url: String,
    pub expires_at_ms: Millis,
}

impl std::fmt::Debug for SetupCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetupCode")
            .field("setup_code", &"<hidden>")
            .field("url", &self.url)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish()
    }
}
