//! The `connect` request's parameters as they arrive, the checks of shape and size serde
//! cannot make, and the device's proof of identity (its signature over the challenge).

use serde::Deserialize;

use super::{negotiate, Refusal, VerifiedDevice};
use crate::clock::Millis;
use crate::gateway::limits::{MAX_CONNECT_FIELD, MAX_SCOPES, MAX_SCOPE_LEN};
use crate::pairing::device::{
    self, device_id_for, fingerprint_for, SignedFields, ROLE_NODE, ROLE_OPERATOR,
};
use crate::protocol::Code;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientInfo {
    pub id: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub platform: String,
    #[serde(default)]
    pub mode: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub device_family: Option<String>,
}

/// The credential of `connect`. Its `Debug` says which are present, never their text.
#[derive(Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthParams {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub device_token: Option<String>,
    #[serde(default)]
    pub bootstrap_token: Option<String>,
}

/// How a secret shows in `Debug`: whether it is there, not what it is.
fn hidden(secret: &Option<String>) -> Option<&'static str> {
    secret.as_ref().map(|_| "<hidden>")
}

impl std::fmt::Debug for AuthParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthParams")
            .field("token", &hidden(&self.token))
            .field("device_token", &hidden(&self.device_token))
            .field("bootstrap_token", &hidden(&self.bootstrap_token))
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceProof {
    pub id: String,
    pub public_key: String,
    pub signature: String,
    pub signed_at: i64,
    pub nonce: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectParams {
    pub min_protocol: u32,
    pub max_protocol: u32,
    pub client: ClientInfo,
    pub role: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub auth: AuthParams,
    #[serde(default)]
    pub device: Option<DeviceProof>,
    #[serde(default)]
    pub wait_for_approval: bool,
}

fn too_long(s: &str) -> bool {
    s.len() > MAX_CONNECT_FIELD
}

/// Checks shapes and sizes that serde cannot: protocol range, role, field lengths. Returns
/// the protocol version the connection speaks.
pub fn validate(p: &ConnectParams) -> Result<u32, Refusal> {
    let Some(protocol) = negotiate(p.min_protocol, p.max_protocol) else {
        return Err(Refusal::protocol_mismatch(p));
    };
    if p.role != ROLE_OPERATOR && p.role != ROLE_NODE {
        return Err(
            Refusal::new(Code::InvalidRequest, "role must be operator or node")
                .detail("INVALID_ROLE"),
        );
    }
    if p.scopes.len() > MAX_SCOPES
        || p.scopes
            .iter()
            .any(|s| s.is_empty() || s.len() > MAX_SCOPE_LEN || s.contains(['|', ',']))
    {
        return Err(Refusal::new(
            Code::InvalidRequest,
            "scopes must be at most 32 names of 1-64 characters",
        )
        .detail("INVALID_SCOPES"));
    }
    let c = &p.client;
    let strings = [
        Some(c.id.as_str()),
        Some(c.version.as_str()),
        Some(c.platform.as_str()),
        Some(c.mode.as_str()),
        c.display_name.as_deref(),
        c.device_family.as_deref(),
        p.auth.token.as_deref(),
        p.auth.device_token.as_deref(),
        p.auth.bootstrap_token.as_deref(),
    ];
    if strings.iter().flatten().any(|s| too_long(s)) || c.id.is_empty() {
        return Err(Refusal::new(
            Code::InvalidRequest,
            "client fields must be 1-512 characters",
        )
        .detail("INVALID_CLIENT"));
    }
    Ok(protocol)
}

fn first_token(a: &AuthParams) -> &str {
    a.token
        .as_deref()
        .or(a.device_token.as_deref())
        .or(a.bootstrap_token.as_deref())
        .unwrap_or("")
}

/// The identity checks, in the protocol's order; each failure counts toward the rate limit.
pub fn verify_device(
    p: &ConnectParams,
    nonce: &str,
    now: Millis,
) -> Result<Option<VerifiedDevice>, Refusal> {
    let Some(d) = &p.device else { return Ok(None) };
    let fields = SignedFields {
        device_id: &d.id,
        client_id: &p.client.id,
        client_mode: &p.client.mode,
        role: &p.role,
        scopes: &p.scopes,
        signed_at: d.signed_at,
        token: first_token(&p.auth),
        nonce: &d.nonce,
        platform: &p.client.platform,
        device_family: p.client.device_family.as_deref().unwrap_or(""),
    };
    match device::verify_identity(&fields, &d.public_key, &d.signature, nonce, now) {
        Ok(key) => Ok(Some(VerifiedDevice {
            device_id: device_id_for(&key),
            public_key: d.public_key.trim().trim_end_matches('=').to_string(),
            fingerprint: fingerprint_for(&key),
        })),
        Err(e) => Err(Refusal::new(Code::InvalidRequest, e.to_string())
            .detail(e.code())
            .counted()),
    }
}
