//! The access decision for a verified `connect`: the admin token, a paired device's token, or a
//! setup code; granted, pending the owner's decision, or refused. `decide_cached` settles the
//! common reconnects from memory; `decide` may read the store, mint a token or record a request.

use super::{
    Access, AuthFailure, AuthMethod, AuthParams, ConnectParams, Grant, PendingAccess, Refusal,
    VerifiedDevice,
};
use std::sync::Arc;

use crate::config::Settings;
use crate::pairing::device::{
    self, check_device_token, pairing_need, scopes_within, PairedMap, TokenCheck,
};
use crate::pairing::scope::{Role, Scope};
use crate::pairing::token::matches_secret;
use crate::protocol::Code;
use crate::service::{DeviceAsk, Service, ServiceError};
use crate::store::devices::DeviceStoreError;

fn service_refusal(e: ServiceError) -> Refusal {
    let code = e.code();
    Refusal::new(code, e.to_string())
}

/// The admin token: an operator with the asked scopes (all when none), or refused.
fn admin_access(
    service: &Service,
    settings: &Arc<Settings>,
    p: &ConnectParams,
    dev: Option<&VerifiedDevice>,
    token: &str,
) -> Access {
    if !matches_secret(token, service.admin_digest(settings).as_ref()) {
        return Access::Refused(Refusal::auth_failed(
            AuthFailure::TokenMismatch,
            "wrong gateway token",
        ));
    }
    if p.role == Role::Node {
        return Access::Refused(
            Refusal::new(
                Code::InvalidRequest,
                "the gateway token is for operators; a node pairs with a setup code",
            )
            .detail("ROLE_NOT_ALLOWED"),
        );
    }
    let scopes = if p.scopes.is_empty() {
        vec![Scope::admin()]
    } else {
        p.scopes.clone()
    };
    Access::Granted(Grant {
        role: p.role,
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
    match check_device_token(d, p.role.as_str(), token) {
        TokenCheck::Refused => TokenStep::Settled(Access::Refused(Refusal::auth_failed(
            AuthFailure::DeviceTokenMismatch,
            "device token revoked or unknown",
        ))),
        TokenCheck::RoleToken => {
            let token_scopes = d
                .tokens
                .get(p.role.as_str())
                .map(|t| t.scopes.as_slice())
                .unwrap_or_default();
            let scopes = d.grantable(&p.scopes);
            if scopes_within(token_scopes, &scopes) {
                TokenStep::Settled(Access::Granted(Grant {
                    role: p.role,
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
            match pairing_need(Some(d), &dev.public_key, p.role.as_str(), &p.scopes) {
                // A role approved but never connected: its first token, now.
                None if !d.tokens.contains_key(p.role.as_str()) => TokenStep::Mint,
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
    let s = p.scopes.iter().find(|s| s.holder() != p.role)?;
    Some(Access::Refused(
        Refusal::new(
            Code::InvalidRequest,
            format!("a {} cannot hold scope {}", p.role, s),
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
        return Some(admin_access(
            service,
            &service.settings_cached()?,
            p,
            dev,
            token,
        ));
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
        return admin_access(service, &service.settings(), p, dev, token);
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
        return match pairing_need(paired, &dev.public_key, p.role.as_str(), &p.scopes) {
            // Approved and never connected: the first token, and the code is used up with it.
            None if paired.is_some_and(|d| !d.tokens.contains_key(p.role.as_str())) => mint(
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
    match service.token_issue_redeeming(&dev.device_id, p.role.as_str(), bootstrap_hash) {
        Ok((token, at)) => Access::Granted(Grant {
            role: p.role,
            scopes,
            method,
            device_id: Some(dev.device_id.clone()),
            new_token: Some((token, at)),
        }),
        Err(ServiceError::SetupCode(why)) => Access::Refused(Refusal::auth_failed(
            AuthFailure::BootstrapInvalid,
            &why.to_string(),
        )),
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
        && paired.is_some_and(|d| d.tokens.get(p.role.as_str()).is_some_and(|t| !t.is_live()));
    let ask = DeviceAsk {
        device_id: dev.device_id.clone(),
        public_key: dev.public_key.clone(),
        fingerprint: dev.fingerprint.clone(),
        display_name: p.client.display_name.clone().unwrap_or_default(),
        platform: p.client.platform.clone(),
        device_family: p.client.device_family.clone().unwrap_or_default(),
        client_id: p.client.id.clone(),
        client_mode: p.client.mode.clone(),
        role: p.role.as_str().to_string(),
        scopes: p.scopes.iter().map(Scope::to_string).collect(),
        remote_ip: remote_ip.to_string(),
        reason: need.as_str().to_string(),
        is_repair: repair,
        regains,
        setup_code: bootstrap_hash.map(str::to_string),
    };
    let (approved_roles, approved_scopes) = paired
        .filter(|d| d.public_key == dev.public_key)
        .map(|d| (d.roles.clone(), d.approved_scopes.clone()))
        .unwrap_or_default();
    let recorded = service.device_request(ask);
    match recorded {
        // The code went to another device a moment ago, or was used up or revoked: this
        // device left no request behind.
        Err(ServiceError::SetupCode(why)) => Access::Refused(Refusal::auth_failed(
            AuthFailure::BootstrapInvalid,
            &why.to_string(),
        )),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Identity;
    use crate::pairing::device::{ROLE_NODE, ROLE_OPERATOR};
    use serde_json::{json, Value};

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
            role: Role::Node,
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
