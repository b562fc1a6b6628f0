//! The `connect` request: its parameters, the identity proof, and the access decision
//! (admin token, device token, or setup-code token; hello, pending, or refused).

use serde::Deserialize;
use serde_json::{json, Value};

use crate::clock::Millis;
use crate::pairing::device::{
    self, check_device_token, decode_public_key, device_id_for, fingerprint_for, pairing_need,
    scopes_within, SignedFields, TokenCheck, BOOTSTRAP_SCOPES, ROLE_NODE, ROLE_OPERATOR,
    SCOPE_ADMIN,
};
use crate::pairing::token::secrets_equal;
use crate::service::{DeviceAsk, Service, ServiceError};
use crate::store::devices::DeviceStoreError;

pub const PROTOCOL: u32 = 3;
const MAX_FIELD: usize = 512;
const MAX_SCOPES: usize = 32;

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

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthParams {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub device_token: Option<String>,
    #[serde(default)]
    pub bootstrap_token: Option<String>,
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

/// A refusal of `connect`: always followed by close 1008.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
    /// Counted by the failed-auth rate limiter.
    pub counts: bool,
}

impl Refusal {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
            details: None,
            counts: false,
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
    pub fn auth_failed(reason: &str) -> Self {
        Refusal::new("AUTH_FAILED", format!("authentication failed: {reason}")).counted()
    }
}

/// A device whose signature checked out.
#[derive(Debug, Clone)]
pub struct VerifiedDevice {
    pub device_id: String,
    pub public_key: String,
    pub fingerprint: String,
}

/// What the gateway grants.
#[derive(Debug, Clone)]
pub struct Grant {
    pub role: String,
    pub scopes: Vec<String>,
    pub device_id: Option<String>,
    /// A token minted now (shown once in hello-ok), with its issue time.
    pub new_token: Option<(String, Millis)>,
    /// The setup-code token to consume once hello-ok is sent.
    pub consume_bootstrap: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Access {
    Granted(Grant),
    /// The owner must decide first.
    Pending {
        request_id: String,
        fingerprint: String,
        expires_at_ms: Millis,
        reason: String,
    },
    Refused(Refusal),
}

fn too_long(s: &str) -> bool {
    s.len() > MAX_FIELD
}

/// Checks shapes and sizes that serde cannot: protocol range, role, field lengths.
pub fn validate(p: &ConnectParams) -> Result<(), Refusal> {
    if p.min_protocol > PROTOCOL || p.max_protocol < PROTOCOL {
        return Err(Refusal::new(
            "INVALID_REQUEST",
            format!(
                "protocol {PROTOCOL} is not within {}..={}",
                p.min_protocol, p.max_protocol
            ),
        )
        .detail("PROTOCOL_UNSUPPORTED"));
    }
    if p.role != ROLE_OPERATOR && p.role != ROLE_NODE {
        return Err(
            Refusal::new("INVALID_REQUEST", "role must be operator or node").detail("INVALID_ROLE"),
        );
    }
    if p.scopes.len() > MAX_SCOPES
        || p.scopes
            .iter()
            .any(|s| s.is_empty() || s.len() > 64 || s.contains(['|', ',']))
    {
        return Err(Refusal::new(
            "INVALID_REQUEST",
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
        return Err(
            Refusal::new("INVALID_REQUEST", "client fields must be 1-512 characters")
                .detail("INVALID_CLIENT"),
        );
    }
    Ok(())
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
        Err(e) => Err(Refusal::new("INVALID_REQUEST", e.to_string())
            .detail(e.code())
            .counted()),
    }
}

fn service_refusal(e: ServiceError) -> Refusal {
    let code = e.code();
    Refusal::new(code, e.to_string())
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
        let settings = service.settings();
        if !secrets_equal(token, &settings.gateway.auth.token) {
            return Access::Refused(Refusal::auth_failed("wrong gateway token"));
        }
        if p.role == ROLE_NODE {
            return Access::Refused(
                Refusal::new(
                    "INVALID_REQUEST",
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
        return Access::Granted(Grant {
            role: p.role.clone(),
            scopes,
            device_id: dev.map(|d| d.device_id.clone()),
            new_token: None,
            consume_bootstrap: None,
        });
    }
    let Some(dev) = dev else {
        if a.device_token.is_some() || a.bootstrap_token.is_some() {
            return Access::Refused(
                Refusal::new(
                    "INVALID_REQUEST",
                    "a device token or setup code needs a signed device identity",
                )
                .detail("DEVICE_IDENTITY_REQUIRED"),
            );
        }
        return Access::Refused(Refusal::auth_failed("no credentials"));
    };
    let paired_map = match service.devices.paired() {
        Ok(m) => m,
        Err(e) => return Access::Refused(service_refusal(crate::service::dev_err(e))),
    };
    let paired = paired_map.get(&dev.device_id);
    if let Some(token) = a.device_token.as_deref() {
        let Some(d) = paired else {
            return Access::Refused(Refusal::auth_failed("unknown device"));
        };
        return match check_device_token(d, &p.role, token) {
            TokenCheck::Refused => {
                Access::Refused(Refusal::auth_failed("device token revoked or unknown"))
            }
            TokenCheck::RoleToken => {
                let token_scopes = d
                    .tokens
                    .get(&p.role)
                    .map(|t| t.scopes.clone())
                    .unwrap_or_default();
                if scopes_within(&token_scopes, &p.scopes) {
                    Access::Granted(Grant {
                        role: p.role.clone(),
                        scopes: p.scopes.clone(),
                        device_id: Some(dev.device_id.clone()),
                        new_token: None,
                        consume_bootstrap: None,
                    })
                } else {
                    pending(
                        service,
                        p,
                        dev,
                        remote_ip,
                        device::PairingNeed::ScopeUpgrade,
                        true,
                    )
                }
            }
            TokenCheck::OtherRoleToken => {
                match pairing_need(Some(d), &dev.public_key, &p.role, &p.scopes) {
                    None => mint(service, p, dev, None),
                    Some(need) => pending(service, p, dev, remote_ip, need, true),
                }
            }
        };
    }
    if let Some(token) = a.bootstrap_token.as_deref() {
        if let Err(e) = service
            .devices
            .bootstrap_use(token, &dev.device_id, &dev.public_key)
        {
            return match e {
                DeviceStoreError::Bootstrap(b) => {
                    Access::Refused(Refusal::auth_failed(&b.to_string()))
                }
                other => Access::Refused(service_refusal(crate::service::dev_err(other))),
            };
        }
        if let Some(s) = p
            .scopes
            .iter()
            .find(|s| !BOOTSTRAP_SCOPES.contains(&s.as_str()))
        {
            return Access::Refused(Refusal::new(
                "FORBIDDEN",
                format!(
                    "a setup code cannot grant scope {}",
                    crate::sanitize::sanitize(s)
                ),
            ));
        }
        let hash = crate::pairing::token::hash_token(token);
        return match pairing_need(paired, &dev.public_key, &p.role, &p.scopes) {
            None => mint(service, p, dev, Some(hash)),
            Some(need) => pending(service, p, dev, remote_ip, need, paired.is_some()),
        };
    }
    Access::Refused(Refusal::auth_failed("no credentials"))
}

fn mint(
    service: &Service,
    p: &ConnectParams,
    dev: &VerifiedDevice,
    bootstrap_hash: Option<String>,
) -> Access {
    match service.token_issue_on_connect(&dev.device_id, &p.role) {
        Ok((token, at)) => Access::Granted(Grant {
            role: p.role.clone(),
            scopes: p.scopes.clone(),
            device_id: Some(dev.device_id.clone()),
            new_token: Some((token, at)),
            consume_bootstrap: bootstrap_hash,
        }),
        Err(e) => Access::Refused(service_refusal(e)),
    }
}

fn pending(
    service: &Service,
    p: &ConnectParams,
    dev: &VerifiedDevice,
    remote_ip: &str,
    need: device::PairingNeed,
    repair: bool,
) -> Access {
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
    };
    match service.device_request(ask) {
        Ok((rec, expires)) => Access::Pending {
            request_id: rec.request.request_id,
            fingerprint: rec.request.fingerprint,
            expires_at_ms: expires,
            reason: need.as_str().to_string(),
        },
        Err(e) => Access::Refused(service_refusal(e)),
    }
}

/// Checks a public key parses before anything is stored for it.
pub fn key_is_valid(b64: &str) -> bool {
    decode_public_key(b64).is_ok()
}
