//! The approval ceiling: who may say yes to what. A caller grants only what it holds itself
//! (`operator.admin` grants anything, so approving admin needs admin), acts only on devices
//! that hold nothing it lacks, and no device approves a request of its own. The owner on this
//! computer (the window, tray, notifications and the CLI) acts with admin.

use super::device::{PairedDevice, PendingDevice};
use super::scope::{first_missing, scope_granted, Role, Scope, SCOPE_ADMIN};

/// What the caller of an owner action may grant: its role and scopes, and the device it speaks
/// for when its authority comes from a device token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authority {
    pub role: Role,
    pub scopes: Vec<Scope>,
    /// Set for a session authenticated by a device token (or a setup code): that device's
    /// requests are never its own to approve.
    pub device_id: Option<String>,
}

/// Why an action is beyond the caller (`FORBIDDEN`, with `details.reason`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Beyond {
    #[error("a device cannot approve its own request; the owner must")]
    OwnRequest,
    #[error("granting the {0} role needs operator.admin")]
    Role(String),
    #[error("{0} is not among this caller's scopes, so it cannot grant it (only a caller holding {0} or operator.admin can)")]
    Scope(String),
    #[error("device {device} holds {what}, which this caller does not; only a caller holding it (or operator.admin) may act on that device")]
    Device { device: String, what: String },
}

impl Beyond {
    /// The `details.reason` on the wire.
    pub fn reason(&self) -> &'static str {
        match self {
            Beyond::OwnRequest => "own-request",
            Beyond::Role(_) => "role-beyond-caller",
            Beyond::Scope(_) => "scope-beyond-caller",
            Beyond::Device { .. } => "device-beyond-caller",
        }
    }
    /// The scope or role the caller lacks, when one is to blame.
    pub fn missing(&self) -> Option<&str> {
        match self {
            Beyond::OwnRequest => None,
            Beyond::Role(r) => Some(r),
            Beyond::Scope(s) => Some(s),
            Beyond::Device { what, .. } => Some(what),
        }
    }
}

impl Authority {
    /// The owner on this computer: every scope.
    pub fn owner() -> Authority {
        Authority {
            role: Role::Operator,
            scopes: vec![Scope::admin()],
            device_id: None,
        }
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Operator && self.scopes.iter().any(|s| s == SCOPE_ADMIN)
    }

    /// May this caller approve `req`, granting its role and every scope in `granted` (the
    /// request's scopes less what the approval withholds)?
    pub fn may_approve(&self, req: &PendingDevice, granted: &[String]) -> Result<(), Beyond> {
        if self.device_id.as_deref() == Some(req.device_id.as_str()) {
            return Err(Beyond::OwnRequest);
        }
        if self.is_admin() {
            return Ok(());
        }
        if self.role != req.role {
            return Err(Beyond::Role(req.role.clone()));
        }
        match first_missing(&self.scopes, granted) {
            Some(s) => Err(Beyond::Scope(s.to_string())),
            None => Ok(()),
        }
    }

    /// May this caller act on paired device `d` (its token for `role`, or the whole device
    /// when `role` is `None`): rotate a token (which hands the caller that token), revoke it,
    /// remove or rename the device? Its own device, or one holding nothing the caller lacks.
    pub fn may_manage(&self, d: &PairedDevice, role: Option<&str>) -> Result<(), Beyond> {
        if self.is_admin() || self.device_id.as_deref() == Some(d.device_id.as_str()) {
            return Ok(());
        }
        let beyond = |what: &str| Beyond::Device {
            device: d.shown_name(),
            what: what.to_string(),
        };
        let roles: Vec<&str> = match role {
            Some(r) => vec![r],
            None => d.roles.iter().map(String::as_str).collect(),
        };
        if let Some(r) = roles.iter().find(|r| self.role != **r) {
            return Err(beyond(&format!("the {r} role")));
        }
        match roles
            .iter()
            .flat_map(|r| d.scopes_for_role(r))
            .find(|s| !scope_granted(&self.scopes, s))
        {
            Some(missing) => Err(beyond(&missing)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pairing::device::{approve_into, PairedMap};
    use crate::pairing::scope::{SCOPE_PAIRING, SCOPE_READ};

    fn device(id: &str) -> Option<String> {
        Some(id.to_string())
    }

    fn caller(scopes: &[&str], device_id: Option<String>) -> Authority {
        Authority {
            role: Role::Operator,
            scopes: scopes.iter().map(|s| Scope::parse(s).unwrap()).collect(),
            device_id,
        }
    }

    fn request(device_id: &str, role: &str, scopes: &[&str]) -> PendingDevice {
        serde_json::from_value(serde_json::json!({
            "requestId": "r1", "deviceId": device_id, "publicKey": "k", "role": role,
            "scopes": scopes, "fingerprint": "AAAA-BBBB", "ts": 1,
        }))
        .unwrap()
    }

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn a_caller_grants_only_scopes_it_holds_and_admin_grants_anything() {
        let pairing = caller(&[SCOPE_PAIRING], device("d-pairing"));
        let admin_req = request("d2", "operator", &[SCOPE_ADMIN]);
        assert_eq!(
            pairing.may_approve(&admin_req, &strings(&[SCOPE_ADMIN])),
            Err(Beyond::Scope(SCOPE_ADMIN.into()))
        );
        let read_req = request("d2", "operator", &[SCOPE_READ]);
        assert_eq!(
            pairing.may_approve(&read_req, &strings(&[SCOPE_READ])),
            Err(Beyond::Scope(SCOPE_READ.into()))
        );
        let same = request("d2", "operator", &[SCOPE_PAIRING]);
        assert_eq!(
            pairing.may_approve(&same, &strings(&[SCOPE_PAIRING])),
            Ok(())
        );
        // Approving without admin grants what the caller holds: allowed.
        assert_eq!(
            pairing.may_approve(&admin_req, &strings(&[])),
            Ok(()),
            "nothing granted beyond the caller"
        );
        let admin = caller(&[SCOPE_ADMIN], device("d-admin"));
        assert_eq!(
            admin.may_approve(&admin_req, &strings(&[SCOPE_ADMIN])),
            Ok(())
        );
        assert_eq!(
            Authority::owner().may_approve(&admin_req, &strings(&[SCOPE_ADMIN])),
            Ok(())
        );
    }

    #[test]
    fn no_device_approves_its_own_request_not_even_an_admin_device() {
        let own = request("d1", "operator", &[SCOPE_PAIRING]);
        for scopes in [&[SCOPE_PAIRING][..], &[SCOPE_ADMIN][..]] {
            assert_eq!(
                caller(scopes, device("d1")).may_approve(&own, &strings(&[SCOPE_PAIRING])),
                Err(Beyond::OwnRequest)
            );
        }
        // The admin token (no device behind it) is the owner's.
        assert_eq!(
            caller(&[SCOPE_ADMIN], None).may_approve(&own, &strings(&[SCOPE_PAIRING])),
            Ok(())
        );
    }

    #[test]
    fn a_role_the_caller_does_not_hold_needs_admin() {
        let node = request("d2", "node", &[]);
        assert_eq!(
            caller(&[SCOPE_PAIRING], device("d1")).may_approve(&node, &[]),
            Err(Beyond::Role("node".into()))
        );
        assert_eq!(caller(&[SCOPE_ADMIN], None).may_approve(&node, &[]), Ok(()));
    }

    #[test]
    fn managing_a_device_needs_everything_it_holds_unless_it_is_ones_own() {
        let mut m = PairedMap::new();
        let admin_dev = approve_into(&mut m, &request("d-admin", "operator", &[SCOPE_ADMIN]), 1);
        let peer = approve_into(&mut m, &request("d-peer", "operator", &[SCOPE_PAIRING]), 1);
        let node = approve_into(&mut m, &request("d-node", "node", &[]), 1);
        let me = caller(&[SCOPE_PAIRING], device("d-me"));
        let e = me.may_manage(&admin_dev, Some("operator")).unwrap_err();
        assert_eq!(e.reason(), "device-beyond-caller");
        assert_eq!(e.missing(), Some(SCOPE_ADMIN));
        assert!(me.may_manage(&admin_dev, None).is_err());
        assert_eq!(me.may_manage(&peer, Some("operator")), Ok(()));
        assert!(me.may_manage(&node, None).is_err(), "a node role");
        let mine = caller(&[SCOPE_PAIRING], device("d-admin"));
        assert_eq!(mine.may_manage(&admin_dev, None), Ok(()), "its own device");
        assert_eq!(Authority::owner().may_manage(&node, None), Ok(()));
    }
}
