//! Refusals of `connect`: the error answer, its details as OpenClaw's clients read them (which
//! credential failed, what to do next, the pending request), and the close that follows.

use serde_json::{json, Value};

use super::{
    ConnectParams, PendingAccess, CLOSE_POLICY, CLOSE_PROTOCOL, MAX_PROTOCOL, MIN_PROTOCOL,
};
use crate::protocol::Code;

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
    pub(super) fn new(code: Code, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
            details: None,
            counts: false,
            close: CLOSE_POLICY,
            close_reason: None,
        }
    }
    pub(super) fn detail(mut self, code: &str) -> Self {
        self.details = Some(json!({ "code": code }));
        self
    }
    pub(super) fn counted(mut self) -> Self {
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
    /// `who` (this device, this address) holds as many sessions as it may already.
    pub fn too_many_sessions(who: &str, max: usize) -> Self {
        let mut r = Refusal::new(
            Code::RateLimited,
            format!("{who} already holds {max} sessions with this gateway; close one first"),
        );
        r.details = Some(json!({ "code": "TOO_MANY_SESSIONS", "limit": max }));
        r
    }
    /// The gateway could not decide (a failed thread): try again, not counted.
    pub fn internal() -> Self {
        Refusal::new(Code::Unavailable, "the gateway could not decide; try again")
    }
    /// No protocol version in common: OpenClaw's answer, so its node host falls back.
    pub(super) fn protocol_mismatch(p: &ConnectParams) -> Self {
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
