//! The `connect` request: its parameters, the identity proof, and the access decision
//! (admin token, device token, or setup-code token; hello, pending, or refused).
//! `params` holds the request and its checks, `refusal` the refusals and their details,
//! `access` what a connect is granted, and `decide` the decision itself.

mod access;
mod decide;
mod params;
mod refusal;

use crate::pairing::device::decode_public_key;

pub use access::{Access, AuthMethod, Grant, PendingAccess, VerifiedDevice};
pub use decide::{decide, decide_cached};
pub use params::{
    parse, validate, verify_device, verify_device_known, AuthParams, ClientInfo, ConnectParams,
    DeviceProof,
};
pub use refusal::{AuthFailure, Refusal};

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

/// Checks a public key parses before anything is stored for it.
pub fn key_is_valid(b64: &str) -> bool {
    decode_public_key(b64).is_ok()
}
