//! What a `connect` comes to: a verified device, the credential it was granted by, the grant
//! itself, or a request the owner must decide first.

use super::Refusal;
use crate::clock::Millis;
use crate::pairing::scope::{Role, Scope};

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
    pub role: Role,
    pub scopes: Vec<Scope>,
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
