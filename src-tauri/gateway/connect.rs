//! The `connect` request: its parameters, the identity proof, and the access decision
//! (admin token, device token, or setup-code token; hello, pending, or refused).

use serde::Deserialize;
use serde_json::{json, Value};

use crate::clock::Millis;
use crate::config::Settings;
use crate::pairing::device::{
    self, check_device_token, decode_public_key, device_id_for, fingerprint_for, pairing_need,
    role_can_hold, scopes_within, PairedMap, SignedFields, TokenCheck, ROLE_NODE, ROLE_OPERATOR,
    SCOPE_ADMIN,
};
use crate::pairing::token::secrets_equal;
use crate::protocol::Code;
use crate::service::{DeviceAsk, Service, ServiceError};
use crate::store::devices::DeviceStoreError;

use super::limits::{MAX_CONNECT_FIELD, MAX_SCOPES, MAX_SCOPE_LEN};

pub use crate::protocol::{MAX_PROTOCOL, MIN_PROTOCOL};

/// WebSocket close codes the handshake uses.
pub const CLOSE_POLICY: u16 = 1008;
pub const CLOSE_PROTOCOL: u16 = 1002;

/// The highest version both sides speak, if any.
pub fn negotiate(client_min: u32, client_max: u32) -> Option<u32> {
    (MIN_PROTOCOL..=MAX_PROTOCOL)
        .rev()
        .find(|v| (client_min..=client_max).contains(v))
}

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

/// A refusal of `connect`: an error answer, then the socket is closed (1008 unless said).
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub code: Code,
    pub message: String,
    pub details: Option<Value>,
    /// Counted by the failed-auth rate limiter.
    pub counts: bool,
    /// The WebSocket close code that follows the answer.
    pub close: u16,
    /// The close frame's reason, when it says more than the message (at most 123 bytes).
    pub close_reason: Option<String>,
}

/// Which credential failed, as OpenClaw's clients read it (`details.code`): a client drops a
/// dead device token on `AUTH_DEVICE_TOKEN_MISMATCH` and stops retrying a used setup code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No credential at all.
    Missing,
    /// A gateway token that is not the admin token.
    TokenMismatch,
    /// A device token that is unknown, revoked or rotated, or for a device not paired here.
    DeviceTokenMismatch,
    /// A setup code that is unknown, expired, used, revoked or bound to another device.
    BootstrapInvalid,
}

impl AuthFailure {
    pub fn code(self) -> &'static str {
        match self {
            AuthFailure::Missing => "AUTH_TOKEN_MISSING",
            AuthFailure::TokenMismatch => "AUTH_TOKEN_MISMATCH",
            AuthFailure::DeviceTokenMismatch => "AUTH_DEVICE_TOKEN_MISMATCH",
            AuthFailure::BootstrapInvalid => "AUTH_BOOTSTRAP_TOKEN_INVALID",
        }
    }
    fn reason(self) -> &'static str {
        match self {
            AuthFailure::Missing => "token_missing",
            AuthFailure::TokenMismatch => "token_mismatch",
            AuthFailure::DeviceTokenMismatch => "device_token_mismatch",
            AuthFailure::BootstrapInvalid => "bootstrap_token_invalid",
        }
    }
    fn next_step(self) -> &'static str {
        match self {
            AuthFailure::Missing => "update_auth_configuration",
            AuthFailure::TokenMismatch
            | AuthFailure::DeviceTokenMismatch
            | AuthFailure::BootstrapInvalid => "update_auth_credentials",
        }
    }
}

impl Refusal {
    fn new(code: Code, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
            details: None,
            counts: false,
            close: CLOSE_POLICY,
            close_reason: None,
        }
    }
    fn detail(mut self, code: &str) -> Self {
        self.details = Some(json!({ "code": code }));
        self
    }
    fn counted(mut self) -> Self {
        self.counts = true;
        self
    }
    /// Top-level `AUTH_FAILED` (the protocol's), with OpenClaw's `details.code` beneath it.
    pub fn auth_failed(kind: AuthFailure, reason: &str) -> Self {
        let mut r = Refusal::new(Code::AuthFailed, format!("authentication failed: {reason}"));
        r.details = Some(json!({
            "code": kind.code(),
            "authReason": kind.reason(),
            "canRetryWithDeviceToken": false,
            "recommendedNextStep": kind.next_step(),
        }));
        r.counted()
    }
    /// Too many failed attempts from this address (the details say for how long).
    pub fn rate_limited(message: impl Into<String>) -> Self {
        Refusal::new(Code::RateLimited, message)
    }
    /// The gateway could not decide (a failed thread): try again, not counted.
    pub fn internal() -> Self {
        Refusal::new(Code::Unavailable, "the gateway could not decide; try again")
    }
    /// No protocol version in common: OpenClaw's answer, so its node host falls back.
    fn protocol_mismatch(p: &ConnectParams) -> Self {
        let mut r = Refusal::new(Code::InvalidRequest, "protocol mismatch");
        r.details = Some(json!({
            "code": "PROTOCOL_MISMATCH",
            "clientMinProtocol": p.min_protocol,
            "clientMaxProtocol": p.max_protocol,
            "expectedProtocol": MAX_PROTOCOL,
            "minimumProbeProtocol": MIN_PROTOCOL,
        }));
        r.close = CLOSE_PROTOCOL;
        r
    }
    /// `NOT_PAIRED` for a device that must wait for the owner, with the details OpenClaw's
    /// clients act on: retry the same connect (the request is refreshed, not duplicated) and
    /// get in once approved.
    pub fn pairing_required(p: &PendingAccess) -> Self {
        let need = match p.reason.as_str() {
            "role-upgrade" => "device is asking for a higher role than currently approved",
            "scope-upgrade" => "device is asking for more scopes than currently approved",
            _ => "device is not approved yet",
        };
        let mut r = Refusal::new(Code::NotPaired, format!("pairing required: {need}"));
        let mut details = json!({
            "code": "PAIRING_REQUIRED",
            "reason": p.reason,
            "requestId": p.request_id,
            "fingerprint": p.fingerprint,
            "deviceId": p.device_id,
            "requestedRole": p.role,
            "remediationHint": format!(
                "Ask the owner to approve request {} (fingerprint {}) in ClawPair.",
                p.request_id, p.fingerprint
            ),
            "recommendedNextStep": "wait_then_retry",
            "retryable": true,
            "pauseReconnect": false,
            "expiresAtMs": p.expires_at_ms,
        });
        if !p.scopes.is_empty() {
            details["requestedScopes"] = json!(p.scopes);
        }
        if !p.approved_roles.is_empty() {
            details["approvedRoles"] = json!(p.approved_roles);
            details["approvedScopes"] = json!(p.approved_scopes);
        }
        r.details = Some(details);
        // OpenClaw's CLI reads the request id from the close reason.
        let full = format!("{} (requestId: {})", r.message, p.request_id);
        r.close_reason = Some(if full.len() <= 123 {
            full
        } else {
            format!("pairing required (requestId: {})", p.request_id)
        });
        r
    }
}

/// A device whose signature checked out.
#[derive(Debug, Clone)]
pub struct VerifiedDevice {
    pub device_id: String,
    pub public_key: String,
    pub fingerprint: String,
}

/// The credential a connect was granted by (`hello-ok.auth.method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Token,
    DeviceToken,
    BootstrapToken,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Token => "token",
            AuthMethod::DeviceToken => "device-token",
            AuthMethod::BootstrapToken => "bootstrap-token",
        }
    }
}

/// What the gateway grants. Its `Debug` hides a new token.
#[derive(Clone)]
pub struct Grant {
    pub role: String,
    pub scopes: Vec<String>,
    pub method: AuthMethod,
    pub device_id: Option<String>,
    /// A token minted now (shown once in hello-ok), with its issue time.
    pub new_token: Option<(String, Millis)>,
}

impl std::fmt::Debug for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grant")
            .field("role", &self.role)
            .field("scopes", &self.scopes)
            .field("method", &self.method)
            .field("device_id", &self.device_id)
            .field(
                "new_token",
                &self.new_token.as_ref().map(|(_, at)| ("<hidden>", at)),
            )
            .finish()
    }
}

/// A device that must wait for the owner: its request and what it asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingAccess {
    pub request_id: String,
    pub fingerprint: String,
    pub expires_at_ms: Millis,
    pub reason: String,
    pub device_id: String,
    pub role: String,
    pub scopes: Vec<String>,
    /// What the device already holds, when it is paired (an upgrade).
    pub approved_roles: Vec<String>,
    pub approved_scopes: Vec<String>,
}

#[derive(Debug, Clone)]
pub enum Access {
    Granted(Grant),
    /// The owner must decide first.
    Pending(PendingAccess),
    Refused(Refusal),
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

fn service_refusal(e: ServiceError) -> Refusal {
    let code = e.code();
    Refusal::new(code, e.to_string())
}

/// The admin token: an operator with the asked scopes (all when none), or refused.
fn admin_access(
    settings: &Settings,
    p: &ConnectParams,
    dev: Option<&VerifiedDevice>,
    token: &str,
) -> Access {
    if !secrets_equal(token, &settings.gateway.auth.token) {
        return Access::Refused(Refusal::auth_failed(
            AuthFailure::TokenMismatch,
            "wrong gateway token",
        ));
    }
    if p.role == ROLE_NODE {
        return Access::Refused(
            Refusal::new(
                Code::InvalidRequest,
                "the gateway token is for operators; a node pairs with a setup code",
            )
            .detail("ROLE_NOT_ALLOWED"),
        );
    }
    let scopes = if p.scopes.is_empty() {
        vec![SCOPE_ADMIN.to_string()]
    } else {
        p.scopes.clone()
    };
    Access::Granted(Grant {
        role: p.role.clone(),
        scopes,
        method: AuthMethod::Token,
        device_id: dev.map(|d| d.device_id.clone()),
        new_token: None,
    })
}

/// Where a device token leads: settled from the paired devices alone, or to a write (a
/// token minted for an approved role, or a pending request).
enum TokenStep {
    Settled(Access),
    Mint,
    Pending(device::PairingNeed),
}

fn device_token_step(
    paired: &PairedMap,
    p: &ConnectParams,
    dev: &VerifiedDevice,
    token: &str,
) -> TokenStep {
    let Some(d) = paired.get(&dev.device_id) else {
        return TokenStep::Settled(Access::Refused(Refusal::auth_failed(
            AuthFailure::DeviceTokenMismatch,
            "unknown device",
        )));
    };
    match check_device_token(d, &p.role, token) {
        TokenCheck::Refused => TokenStep::Settled(Access::Refused(Refusal::auth_failed(
            AuthFailure::DeviceTokenMismatch,
            "device token revoked or unknown",
        ))),
        TokenCheck::RoleToken => {
            let token_scopes = d
                .tokens
                .get(&p.role)
                .map(|t| t.scopes.as_slice())
                .unwrap_or_default();
            let scopes = d.grantable(&p.scopes);
            if scopes_within(token_scopes, &scopes) {
                TokenStep::Settled(Access::Granted(Grant {
                    role: p.role.clone(),
                    scopes,
                    method: AuthMethod::DeviceToken,
                    device_id: Some(dev.device_id.clone()),
                    new_token: None,
                }))
            } else {
                TokenStep::Pending(device::PairingNeed::ScopeUpgrade)
            }
        }
        TokenCheck::OtherRoleToken => {
            match pairing_need(Some(d), &dev.public_key, &p.role, &p.scopes) {
                // A role approved but never connected: its first token, now.
                None if !d.tokens.contains_key(&p.role) => TokenStep::Mint,
                // The role has its own token: another role's token never stands in for it.
                None => TokenStep::Settled(Access::Refused(Refusal::auth_failed(
                    AuthFailure::DeviceTokenMismatch,
                    "this token is for another role; present the role's own token",
                ))),
                Some(need) => TokenStep::Pending(need),
            }
        }
    }
}

/// A connect with no device identity and no admin token.
fn without_device(a: &AuthParams) -> Access {
    if a.device_token.is_some() || a.bootstrap_token.is_some() {
        return Access::Refused(
            Refusal::new(
                Code::InvalidRequest,
                "a device token or setup code needs a signed device identity",
            )
            .detail("DEVICE_IDENTITY_REQUIRED"),
        );
    }
    Access::Refused(Refusal::auth_failed(AuthFailure::Missing, "no credentials"))
}

/// Refuses a device asking for a scope its role can never hold (no owner could grant it).
fn role_scope_refusal(p: &ConnectParams) -> Option<Access> {
    let s = p.scopes.iter().find(|s| !role_can_hold(&p.role, s))?;
    Some(Access::Refused(
        Refusal::new(
            Code::InvalidRequest,
            format!(
                "a {} cannot hold scope {}",
                p.role,
                crate::sanitize::sanitize(s)
            ),
        )
        .detail("AUTH_SCOPE_MISMATCH"),
    ))
}

/// [`decide`] when the cached settings and paired devices settle it with no disk read and no
/// write — the admin token, or a paired device reconnecting with its token (the common case) —
/// so the connection's own task can answer at once. `None`: run `decide` on a blocking thread.
pub fn decide_cached(
    service: &Service,
    p: &ConnectParams,
    dev: Option<&VerifiedDevice>,
) -> Option<Access> {
    let a = &p.auth;
    if let Some(token) = a.token.as_deref() {
        return Some(admin_access(&*service.settings_cached()?, p, dev, token));
    }
    let Some(dev) = dev else {
        return Some(without_device(a));
    };
    if let Some(refused) = role_scope_refusal(p) {
        return Some(refused);
    }
    let token = a.device_token.as_deref()?;
    match device_token_step(&*service.devices.paired_cached()?, p, dev, token) {
        TokenStep::Settled(access) => Some(access),
        TokenStep::Mint | TokenStep::Pending(_) => None,
    }
}

/// Decides what a verified `connect` gets. Runs again for a waiting socket once the owner
/// decided (without the signature checks, which were done at connect time).
pub fn decide(
    service: &Service,
    p: &ConnectParams,
    dev: Option<&VerifiedDevice>,
    remote_ip: &str,
) -> Access {
    let a = &p.auth;
    if let Some(token) = a.token.as_deref() {
        return admin_access(&service.settings(), p, dev, token);
    }
    let Some(dev) = dev else {
        return without_device(a);
    };
    if let Some(refused) = role_scope_refusal(p) {
        return refused;
    }
    let paired_map = match service.devices.paired() {
        Ok(m) => m,
        Err(e) => return Access::Refused(service_refusal(crate::service::dev_err(e))),
    };
    if let Some(token) = a.device_token.as_deref() {
        return match device_token_step(&paired_map, p, dev, token) {
            TokenStep::Settled(access) => access,
            TokenStep::Mint => mint(
                service,
                p,
                dev,
                AuthMethod::DeviceToken,
                None,
                paired_map.get(&dev.device_id),
            ),
            TokenStep::Pending(need) => pending(
                service,
                p,
                dev,
                remote_ip,
                need,
                paired_map.get(&dev.device_id),
                None,
            ),
        };
    }
    let paired = paired_map.get(&dev.device_id);
    if let Some(token) = a.bootstrap_token.as_deref() {
        // Checked, not bound: the code is bound only once the request it opens passes.
        let code = match service.devices.bootstrap_check(token, &dev.device_id) {
            Ok(rec) => rec.token_hash,
            Err(DeviceStoreError::Bootstrap(b)) => {
                return Access::Refused(Refusal::auth_failed(
                    AuthFailure::BootstrapInvalid,
                    &b.to_string(),
                ))
            }
            Err(other) => return Access::Refused(service_refusal(crate::service::dev_err(other))),
        };
        // A setup code may ask for any scope its role allows: the request carries exactly
        // that, and the owner decides (admin is never one click on a notification).
        return match pairing_need(paired, &dev.public_key, &p.role, &p.scopes) {
            // Approved and never connected: the first token, and the code is used up with it.
            None if paired.is_some_and(|d| !d.tokens.contains_key(&p.role)) => mint(
                service,
                p,
                dev,
                AuthMethod::BootstrapToken,
                Some(&code),
                paired,
            ),
            // The role holds a token already: a new code does not replace it behind the
            // owner's back; pairing again is the owner's decision.
            None => pending(
                service,
                p,
                dev,
                remote_ip,
                device::PairingNeed::NotPaired,
                paired,
                Some(&code),
            ),
            Some(need) => pending(service, p, dev, remote_ip, need, paired, Some(&code)),
        };
    }
    Access::Refused(Refusal::auth_failed(AuthFailure::Missing, "no credentials"))
}

fn mint(
    service: &Service,
    p: &ConnectParams,
    dev: &VerifiedDevice,
    method: AuthMethod,
    bootstrap_hash: Option<&str>,
    paired: Option<&device::PairedDevice>,
) -> Access {
    let scopes = paired.map_or_else(|| p.scopes.clone(), |d| d.grantable(&p.scopes));
    match service.token_issue_redeeming(&dev.device_id, &p.role, bootstrap_hash) {
        Ok((token, at)) => Access::Granted(Grant {
            role: p.role.clone(),
            scopes,
            method,
            device_id: Some(dev.device_id.clone()),
            new_token: Some((token, at)),
        }),
        Err(crate::service::ServiceError::Refused(why)) if bootstrap_hash.is_some() => {
            Access::Refused(Refusal::auth_failed(AuthFailure::BootstrapInvalid, &why))
        }
        Err(e) => Access::Refused(service_refusal(e)),
    }
}

fn pending(
    service: &Service,
    p: &ConnectParams,
    dev: &VerifiedDevice,
    remote_ip: &str,
    need: device::PairingNeed,
    paired: Option<&device::PairedDevice>,
    bootstrap_hash: Option<&str>,
) -> Access {
    let repair = paired.is_some();
    let regains = need == device::PairingNeed::RoleUpgrade
        && paired.is_some_and(|d| d.tokens.get(&p.role).is_some_and(|t| !t.is_live()));
    let ask = DeviceAsk {
        device_id: dev.device_id.clone(),
        public_key: dev.public_key.clone(),
        fingerprint: dev.fingerprint.clone(),
        display_name: p.client.display_name.clone().unwrap_or_default(),
        platform: p.client.platform.clone(),
        device_family: p.client.device_family.clone().unwrap_or_default(),
        client_id: p.client.id.clone(),
        client_mode: p.client.mode.clone(),
        role: p.role.clone(),
        scopes: p.scopes.clone(),
        remote_ip: remote_ip.to_string(),
        reason: need.as_str().to_string(),
        is_repair: repair,
        regains,
    };
    let (approved_roles, approved_scopes) = paired
        .filter(|d| d.public_key == dev.public_key)
        .map(|d| (d.roles.clone(), d.approved_scopes.clone()))
        .unwrap_or_default();
    let recorded = service.device_request(ask);
    if let (Ok(_), Some(code)) = (&recorded, bootstrap_hash) {
        // The request passed every check: now the code is this device's.
        match service
            .devices
            .bootstrap_bind(code, &dev.device_id, &dev.public_key)
        {
            Ok(()) => {}
            Err(DeviceStoreError::Bootstrap(b)) => {
                return Access::Refused(Refusal::auth_failed(
                    AuthFailure::BootstrapInvalid,
                    &b.to_string(),
                ))
            }
            Err(other) => return Access::Refused(service_refusal(crate::service::dev_err(other))),
        }
    }
    match recorded {
        Ok((rec, expires)) => Access::Pending(PendingAccess {
            request_id: rec.request.request_id,
            fingerprint: rec.request.fingerprint,
            expires_at_ms: expires,
            reason: need.as_str().to_string(),
            device_id: rec.request.device_id,
            role: rec.request.role,
            scopes: rec.request.scopes,
            approved_roles,
            approved_scopes,
        }),
        Err(e) => Access::Refused(service_refusal(e)),
    }
}

/// Checks a public key parses before anything is stored for it.
pub fn key_is_valid(b64: &str) -> bool {
    decode_public_key(b64).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Identity;

    fn service() -> (tempfile::TempDir, Service) {
        crate::service::test_service(1_767_323_045_678)
    }

    fn params(auth: Value, role: &str) -> ConnectParams {
        serde_json::from_value(json!({
            "minProtocol": 3, "maxProtocol": 4,
            "client": { "id": "phone", "mode": "node", "platform": "android" },
            "role": role, "scopes": [], "auth": auth,
        }))
        .unwrap()
    }

    #[test]
    fn debug_output_of_connect_params_and_grants_never_shows_a_token() {
        let secret = "tok-0123456789-secret";
        for key in ["token", "deviceToken", "bootstrapToken"] {
            let p = params(json!({ key: secret }), "node");
            let shown = format!("{p:?}");
            assert!(
                !shown.contains(secret) && shown.contains("<hidden>"),
                "{shown}"
            );
        }
        let g = Grant {
            role: "node".into(),
            scopes: vec![],
            method: AuthMethod::DeviceToken,
            device_id: None,
            new_token: Some((secret.into(), 1)),
        };
        assert!(!format!("{g:?}").contains(secret));
        let code = crate::pairing::setup::SetupPayload {
            url: "ws://127.0.0.1:1".into(),
            bootstrap_token: secret.into(),
            expires_at_ms: None,
            tls_fingerprint: None,
        };
        assert!(!format!("{code:?}").contains(secret));
        let made = crate::service::SetupCode {
            setup_code: crate::pairing::setup::encode_setup_code(&code),
            url: code.url.clone(),
            expires_at_ms: 1,
        };
        assert!(!format!("{made:?}").contains(&made.setup_code));
    }

    /// A device paired for `node`, with its token.
    fn paired(s: &Service) -> (VerifiedDevice, String) {
        let id = Identity::generate();
        let dev = VerifiedDevice {
            device_id: id.device_id(),
            public_key: id.public_key(),
            fingerprint: id.fingerprint(),
        };
        let ask = DeviceAsk {
            device_id: dev.device_id.clone(),
            public_key: dev.public_key.clone(),
            fingerprint: dev.fingerprint.clone(),
            role: ROLE_NODE.into(),
            reason: "not-paired".into(),
            ..Default::default()
        };
        let (rec, _) = s.device_request(ask).unwrap();
        s.device_approve(&rec.request.request_id, "test").unwrap();
        let (token, _) = s.token_issue_on_connect(&dev.device_id, ROLE_NODE).unwrap();
        (dev, token)
    }

    fn same(a: &Access, b: &Access) -> bool {
        match (a, b) {
            (Access::Granted(x), Access::Granted(y)) => {
                x.role == y.role && x.scopes == y.scopes && x.device_id == y.device_id
            }
            (Access::Refused(x), Access::Refused(y)) => x == y,
            _ => false,
        }
    }

    #[test]
    fn cached_decision_settles_reconnects_and_admin_tokens_like_the_full_one() {
        let (_tmp, s) = service();
        let (dev, token) = paired(&s);
        crate::store::fs::backdate_for_tests(s.paths().root());
        let admin = s.settings().gateway.auth.token.clone();
        let node = params(json!({ "deviceToken": token }), ROLE_NODE);
        assert!(
            decide_cached(&s, &node, Some(&dev)).is_none(),
            "paired devices not read yet"
        );
        let full = decide(&s, &node, Some(&dev), "127.0.0.1");
        assert!(matches!(full, Access::Granted(_)), "{full:?}");
        let cached = decide_cached(&s, &node, Some(&dev)).expect("settled from the cache");
        assert!(same(&cached, &full), "{cached:?} vs {full:?}");

        let wrong = params(json!({ "deviceToken": "not-it" }), ROLE_NODE);
        let cached = decide_cached(&s, &wrong, Some(&dev)).unwrap();
        assert!(same(&cached, &decide(&s, &wrong, Some(&dev), "127.0.0.1")));
        assert!(matches!(cached, Access::Refused(ref r) if r.code == "AUTH_FAILED" && r.counts));

        for (auth, role) in [
            (json!({ "token": admin }), ROLE_OPERATOR),
            (json!({ "token": "guess" }), ROLE_OPERATOR),
            (json!({ "token": admin }), ROLE_NODE),
            (json!({}), ROLE_OPERATOR),
        ] {
            let p = params(auth, role);
            let cached = decide_cached(&s, &p, None).expect("settled from settings");
            assert!(
                same(&cached, &decide(&s, &p, None, "127.0.0.1")),
                "{cached:?}"
            );
        }
    }

    #[test]
    fn decisions_that_write_are_left_to_the_full_decision() {
        let (_tmp, s) = service();
        let (dev, token) = paired(&s);
        s.devices.paired().unwrap();
        // A node token asking for the operator role: a role upgrade, which writes a request.
        let upgrade = params(json!({ "deviceToken": token }), ROLE_OPERATOR);
        assert!(decide_cached(&s, &upgrade, Some(&dev)).is_none());
        assert!(matches!(
            decide(&s, &upgrade, Some(&dev), "127.0.0.1"),
            Access::Pending(_)
        ));
        let setup = params(json!({ "bootstrapToken": "x" }), ROLE_NODE);
        assert!(decide_cached(&s, &setup, Some(&dev)).is_none());
    }
}
