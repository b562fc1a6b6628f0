//! The `connect` request: its parameters, the identity proof, and the access decision
//! (admin token, device token, or setup-code token; hello, pending, or refused).

use serde::Deserialize;
use serde_json::{json, Value};

use crate::clock::Millis;
use crate::config::Settings;
use crate::pairing::device::{
    self, check_device_token, decode_public_key, device_id_for, fingerprint_for, pairing_need,
    scopes_within, PairedMap, SignedFields, TokenCheck, BOOTSTRAP_SCOPES, ROLE_NODE, ROLE_OPERATOR,
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

/// The admin token: an operator with the asked scopes (all when none), or refused.
fn admin_access(
    settings: &Settings,
    p: &ConnectParams,
    dev: Option<&VerifiedDevice>,
    token: &str,
) -> Access {
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
    Access::Granted(Grant {
        role: p.role.clone(),
        scopes,
        device_id: dev.map(|d| d.device_id.clone()),
        new_token: None,
        consume_bootstrap: None,
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
        return TokenStep::Settled(Access::Refused(Refusal::auth_failed("unknown device")));
    };
    match check_device_token(d, &p.role, token) {
        TokenCheck::Refused => TokenStep::Settled(Access::Refused(Refusal::auth_failed(
            "device token revoked or unknown",
        ))),
        TokenCheck::RoleToken => {
            let token_scopes = d
                .tokens
                .get(&p.role)
                .map(|t| t.scopes.as_slice())
                .unwrap_or_default();
            if scopes_within(token_scopes, &p.scopes) {
                TokenStep::Settled(Access::Granted(Grant {
                    role: p.role.clone(),
                    scopes: p.scopes.clone(),
                    device_id: Some(dev.device_id.clone()),
                    new_token: None,
                    consume_bootstrap: None,
                }))
            } else {
                TokenStep::Pending(device::PairingNeed::ScopeUpgrade)
            }
        }
        TokenCheck::OtherRoleToken => {
            match pairing_need(Some(d), &dev.public_key, &p.role, &p.scopes) {
                None => TokenStep::Mint,
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
                "INVALID_REQUEST",
                "a device token or setup code needs a signed device identity",
            )
            .detail("DEVICE_IDENTITY_REQUIRED"),
        );
    }
    Access::Refused(Refusal::auth_failed("no credentials"))
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
    let paired_map = match service.devices.paired() {
        Ok(m) => m,
        Err(e) => return Access::Refused(service_refusal(crate::service::dev_err(e))),
    };
    if let Some(token) = a.device_token.as_deref() {
        return match device_token_step(&paired_map, p, dev, token) {
            TokenStep::Settled(access) => access,
            TokenStep::Mint => mint(service, p, dev, None),
            TokenStep::Pending(need) => pending(service, p, dev, remote_ip, need, true),
        };
    }
    let paired = paired_map.get(&dev.device_id);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Identity;

    fn service() -> (tempfile::TempDir, Service) {
        crate::service::test_service(1_767_323_045_678)
    }

    fn params(auth: Value, role: &str) -> ConnectParams {
        serde_json::from_value(json!({
            "minProtocol": 3, "maxProtocol": 3,
            "client": { "id": "phone", "mode": "node", "platform": "android" },
            "role": role, "scopes": [], "auth": auth,
        }))
        .unwrap()
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
            Access::Pending { .. }
        ));
        let setup = params(json!({ "bootstrapToken": "x" }), ROLE_NODE);
        assert!(decide_cached(&s, &setup, Some(&dev)).is_none());
    }
}
