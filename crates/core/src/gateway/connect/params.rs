//! The `connect` request's parameters, parsed where they arrive (the role and scopes into
//! their types, refused with the reason when they are not exactly names this gateway knows),
//! the checks of size serde cannot make, and the device's proof of identity (its signature
//! over the challenge).

use serde::Deserialize;
use serde_json::Value;

use super::{negotiate, Refusal, VerifiedDevice};
use crate::clock::Millis;
use crate::gateway::limits::{MAX_CONNECT_FIELD, MAX_SCOPES};
use crate::pairing::device::{self, SignedFields};
use crate::pairing::keys::KnownKeys;
use crate::pairing::scope::{Role, Scope};
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
    pub role: Role,
    #[serde(default)]
    pub scopes: Vec<Scope>,
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

/// Parses `connect`'s params. The role and each scope are looked at first, so a refusal names
/// the one that is wrong and why (`details.code` `INVALID_ROLE` or `INVALID_SCOPES`); nothing
/// is trimmed or normalised.
pub fn parse(params: Value) -> Result<ConnectParams, Refusal> {
    if let Some(Value::String(role)) = params.get("role") {
        if let Err(e) = Role::parse(role) {
            return Err(Refusal::new(Code::InvalidRequest, e.to_string()).detail("INVALID_ROLE"));
        }
    }
    if let Some(Value::Array(scopes)) = params.get("scopes") {
        if scopes.len() > MAX_SCOPES {
            return Err(Refusal::new(
                Code::InvalidRequest,
                format!("at most {MAX_SCOPES} scopes may be asked for"),
            )
            .detail("INVALID_SCOPES"));
        }
        for name in scopes.iter().filter_map(Value::as_str) {
            if let Err(e) = Scope::parse(name) {
                return Err(
                    Refusal::new(Code::InvalidRequest, e.to_string()).detail("INVALID_SCOPES")
                );
            }
        }
    }
    serde_json::from_value(params)
        .map_err(|e| Refusal::new(Code::InvalidRequest, format!("invalid connect params: {e}")))
}

/// Checks what serde cannot: the protocol range and field lengths. Returns the protocol
/// version the connection speaks.
pub fn validate(p: &ConnectParams) -> Result<u32, Refusal> {
    let Some(protocol) = negotiate(p.min_protocol, p.max_protocol) else {
        return Err(Refusal::protocol_mismatch(p));
    };
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
    verify_device_known(p, nonce, now, &KnownKeys::new(0))
}

/// [`verify_device`], with the keys that signed before taken from `known` (and a key that
/// signs now remembered there): the same checks and answers, without decoding a known key
/// again.
pub fn verify_device_known(
    p: &ConnectParams,
    nonce: &str,
    now: Millis,
    known: &KnownKeys,
) -> Result<Option<VerifiedDevice>, Refusal> {
    let Some(d) = &p.device else { return Ok(None) };
    let scopes = p
        .scopes
        .iter()
        .map(Scope::as_str)
        .collect::<Vec<_>>()
        .join(",");
    let fields = SignedFields {
        device_id: &d.id,
        client_id: &p.client.id,
        client_mode: &p.client.mode,
        role: p.role.as_str(),
        scopes: &scopes,
        signed_at: d.signed_at,
        token: first_token(&p.auth),
        nonce: &d.nonce,
        platform: &p.client.platform,
        device_family: p.client.device_family.as_deref().unwrap_or(""),
    };
    match device::verify_identity_known(&fields, &d.public_key, &d.signature, nonce, now, known) {
        Ok(key) => Ok(Some(VerifiedDevice {
            device_id: key.device_id.clone(),
            public_key: d.public_key.trim().trim_end_matches('=').to_string(),
            fingerprint: key.fingerprint.clone(),
        })),
        Err(e) => Err(Refusal::new(Code::InvalidRequest, e.to_string())
            .detail(e.code())
            .counted()),
    }
}
