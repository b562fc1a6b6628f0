//! Device pairing rules, pure: Ed25519 device identity and the signed connect string,
//! fingerprints, roles and scopes, pending-request reconciliation, approval, and the records
//! kept in `devices/pending.json` and `devices/paired.json`.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::clock::Millis;
use crate::pairing::keys::{decode_with_id, KnownKey, KnownKeys};
use crate::pairing::token::hex;

pub use super::scope::{
    holder_of, scope_granted, scopes_within, Role, Scope, ROLE_NODE, ROLE_OPERATOR, SCOPE_ADMIN,
    SCOPE_CHANNEL_INGEST, SCOPE_PAIRING, SCOPE_READ, SCOPE_WRITE,
};
/// How far `signedAt` may be from the server's clock.
pub const SIGNATURE_SKEW_MS: Millis = 2 * 60_000;
pub fn is_known_role(role: &str) -> bool {
    Role::parse(role).is_ok()
}

/// Whether a device of `role` may ever hold `scope` (see [`Scope::holder`]). A request for a
/// scope its role can never hold is refused at connect instead of waiting for an owner who
/// cannot grant it.
pub fn role_can_hold(role: &str, scope: &str) -> bool {
    holder_of(scope) == role
}

fn union(a: &[String], b: &[String]) -> Vec<String> {
    a.iter()
        .chain(b)
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

fn same_set(a: &[String], b: &[String]) -> bool {
    a.iter().collect::<BTreeSet<_>>() == b.iter().collect::<BTreeSet<_>>()
}

/// Why a device's identity proof was refused (the `details.code` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("device id does not match its public key")]
    IdMismatch,
    #[error("signedAt is more than two minutes from the gateway's clock")]
    Stale,
    #[error("the signed nonce is not this connection's challenge")]
    NonceMismatch,
    #[error("the device signature does not verify")]
    BadSignature,
    #[error("the device public key is not a 32-byte Ed25519 key in base64url")]
    BadPublicKey,
}

impl IdentityError {
    pub fn code(self) -> &'static str {
        match self {
            IdentityError::IdMismatch => "DEVICE_AUTH_ID_MISMATCH",
            IdentityError::Stale => "DEVICE_AUTH_STALE",
            IdentityError::NonceMismatch => "DEVICE_AUTH_NONCE_MISMATCH",
            IdentityError::BadSignature => "DEVICE_AUTH_SIGNATURE",
            IdentityError::BadPublicKey => "DEVICE_AUTH_PUBLIC_KEY",
        }
    }
}

/// Raw 32-byte key from base64url (padding tolerated).
pub fn decode_public_key(b64: &str) -> Result<[u8; 32], IdentityError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(b64.trim().trim_end_matches('='))
        .map_err(|_| IdentityError::BadPublicKey)?;
    bytes.try_into().map_err(|_| IdentityError::BadPublicKey)
}

/// Lowercase hex SHA-256 of the raw key: the device id.
pub fn device_id_for(key: &[u8; 32]) -> String {
    hex(&Sha256::digest(key))
}

/// First 8 characters of the base32 (RFC 4648) of SHA-256(key), shown as `XXXX-XXXX`.
pub fn fingerprint_for(key: &[u8; 32]) -> String {
    const B32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let d = Sha256::digest(key);
    // 8 base32 characters = the first 40 bits.
    let bits = d[..5].iter().fold(0u64, |acc, b| (acc << 8) | *b as u64);
    let chars: String = (0..8)
        .map(|i| B32[((bits >> (35 - 5 * i)) & 31) as usize] as char)
        .collect();
    format!("{}-{}", &chars[..4], &chars[4..])
}

/// The fields a device signs, as sent in `connect`.
#[derive(Debug, Clone, Default)]
pub struct SignedFields<'a> {
    pub device_id: &'a str,
    pub client_id: &'a str,
    pub client_mode: &'a str,
    pub role: &'a str,
    /// The scopes as signed: joined by `,`.
    pub scopes: &'a str,
    pub signed_at: i64,
    /// The first present of auth.token, auth.deviceToken, auth.bootstrapToken; else empty.
    pub token: &'a str,
    pub nonce: &'a str,
    pub platform: &'a str,
    pub device_family: &'a str,
}

fn norm(s: &str) -> String {
    s.trim().to_ascii_lowercase()
}

/// `v3|deviceId|clientId|clientMode|role|scopes|signedAt|token|nonce|platform|deviceFamily`.
pub fn signed_string_v3(f: &SignedFields) -> String {
    format!(
        "{}|{}|{}",
        signed_fields("v3", f),
        norm(f.platform),
        norm(f.device_family)
    )
}

/// `v2|deviceId|clientId|clientMode|role|scopes|signedAt|token|nonce`.
pub fn signed_string_v2(f: &SignedFields) -> String {
    signed_fields("v2", f)
}

/// The fields both versions sign, after the version's name.
fn signed_fields(version: &str, f: &SignedFields) -> String {
    format!(
        "{version}|{}|{}|{}|{}|{}|{}|{}|{}",
        f.device_id, f.client_id, f.client_mode, f.role, f.scopes, f.signed_at, f.token, f.nonce
    )
}

/// Runs the identity checks in the protocol's order: id matches key, `signedAt` fresh, nonce
/// is this connection's, signature valid (v3, then v2). Returns the raw key.
pub fn verify_identity(
    f: &SignedFields,
    public_key_b64: &str,
    signature_b64: &str,
    expected_nonce: &str,
    now: Millis,
) -> Result<[u8; 32], IdentityError> {
    verify_identity_known(
        f,
        public_key_b64,
        signature_b64,
        expected_nonce,
        now,
        &KnownKeys::new(0),
    )
    .map(|k| k.raw)
}

/// [`verify_identity`], taking what `public_key_b64` decodes to from `known` when it signed
/// before, and remembering it there once its signature verifies. The checks, their order and
/// their answers are the same either way; only the key's decoding is skipped.
pub fn verify_identity_known(
    f: &SignedFields,
    public_key_b64: &str,
    signature_b64: &str,
    expected_nonce: &str,
    now: Millis,
    known: &KnownKeys,
) -> Result<Arc<KnownKey>, IdentityError> {
    let remembered = known.get(public_key_b64);
    let (raw, device_id) = match &remembered {
        Some(k) => (k.raw, Cow::Borrowed(k.device_id.as_str())),
        None => {
            let (raw, id) = decode_with_id(public_key_b64).ok_or(IdentityError::IdMismatch)?;
            (raw, Cow::Owned(id))
        }
    };
    if device_id != f.device_id {
        return Err(IdentityError::IdMismatch);
    }
    // `abs_diff`: a client's `signedAt` may be any i64, and `now - i64::MIN` overflows.
    if now.abs_diff(f.signed_at) > SIGNATURE_SKEW_MS.unsigned_abs() {
        return Err(IdentityError::Stale);
    }
    if f.nonce != expected_nonce {
        return Err(IdentityError::NonceMismatch);
    }
    let sig_bytes = URL_SAFE_NO_PAD
        .decode(signature_b64.trim().trim_end_matches('='))
        .map_err(|_| IdentityError::BadSignature)?;
    let sig = Signature::from_slice(&sig_bytes).map_err(|_| IdentityError::BadSignature)?;
    let vk = match &remembered {
        Some(k) => k.key,
        None => VerifyingKey::from_bytes(&raw).map_err(|_| IdentityError::BadPublicKey)?,
    };
    let ok = vk.verify(signed_string_v3(f).as_bytes(), &sig).is_ok()
        || vk.verify(signed_string_v2(f).as_bytes(), &sig).is_ok();
    if !ok {
        return Err(IdentityError::BadSignature);
    }
    if let Some(k) = &remembered {
        return Ok(k.clone());
    }
    let key = KnownKey::new(raw, vk, device_id.into_owned());
    Ok(known.remember(public_key_b64, key))
}

/// A device waiting for the owner, as kept in `devices/pending.json` (requestId → request).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingDevice {
    pub request_id: String,
    pub device_id: String,
    pub public_key: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub platform: String,
    #[serde(default)]
    pub device_family: String,
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub client_mode: String,
    pub role: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub remote_ip: String,
    pub fingerprint: String,
    #[serde(default)]
    pub is_repair: bool,
    /// Why it is needed: `not-paired`, `role-upgrade` or `scope-upgrade`.
    #[serde(default)]
    pub reason: String,
    /// The role's token was revoked: approving gives back access the device lost.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub regains: bool,
    pub ts: Millis,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl PendingDevice {
    pub fn expires_ms(&self, ttl_ms: Millis) -> Millis {
        self.ts.saturating_add(ttl_ms)
    }
    pub fn is_expired(&self, now: Millis, ttl_ms: Millis) -> bool {
        now >= self.expires_ms(ttl_ms)
    }
    /// A name to show: the display name, else the client id, else the short device id.
    pub fn shown_name(&self) -> String {
        name_to_show(&self.display_name, &self.client_id, &self.device_id)
    }
    /// What approving it means, in words, for the owner.
    pub fn kind_in_words(&self) -> &'static str {
        match (self.reason.as_str(), self.is_repair, self.regains) {
            (_, _, true) => "asks to get back access it lost",
            ("role-upgrade", _, _) => "asks for a new role",
            ("scope-upgrade", _, _) => "asks for more scopes",
            (_, true, _) => "asks to pair again (its old token stops working)",
            _ => "new device",
        }
    }
}

/// The device name shown everywhere (window, notifications, Telegram): the display name, else
/// the client id, else the first 12 characters of the device id; sanitised.
pub fn name_to_show(display: &str, client: &str, device_id: &str) -> String {
    let d = crate::sanitize::sanitize(display);
    if !d.is_empty() {
        return d;
    }
    let c = crate::sanitize::sanitize(client);
    if !c.is_empty() {
        return c;
    }
    device_id.chars().take(12).collect()
}

pub type PendingMap = BTreeMap<String, PendingDevice>;
pub type PairedMap = BTreeMap<String, PairedDevice>;

/// One role's device token, stored only as its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenRecord {
    pub token_hash: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub created_at_ms: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_at_ms: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at_ms: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at_ms: Option<Millis>,
}

impl TokenRecord {
    pub fn is_live(&self) -> bool {
        self.revoked_at_ms.is_none()
    }
}

/// An approved device, as kept in `devices/paired.json` (deviceId → device).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PairedDevice {
    pub device_id: String,
    pub public_key: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub platform: String,
    #[serde(default)]
    pub device_family: String,
    #[serde(default)]
    pub client_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub client_mode: String,
    /// The owner's name for the device (`device.pair.rename`), shown before its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_label: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub approved_scopes: Vec<String>,
    /// Scopes the device asked for and the owner declined ("approve without admin"): a
    /// connect that asks for them again gets the rest, not a new request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub withheld_scopes: Vec<String>,
    #[serde(default)]
    pub remote_ip: String,
    #[serde(default)]
    pub fingerprint: String,
    pub created_at_ms: Millis,
    pub approved_at_ms: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at_ms: Option<Millis>,
    /// Role → token. A role approved but not yet connected has no entry: its token is minted
    /// on the device's next connect and shown only then.
    #[serde(default)]
    pub tokens: BTreeMap<String, TokenRecord>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl PairedDevice {
    pub fn shown_name(&self) -> String {
        let label = self.operator_label.as_deref().unwrap_or_default();
        let label = crate::sanitize::sanitize(label);
        if !label.is_empty() {
            return label;
        }
        name_to_show(&self.display_name, &self.client_id, &self.device_id)
    }
    /// When the device was last seen, or paired when it never connected since.
    pub fn last_active_ms(&self) -> Millis {
        self.last_seen_at_ms
            .unwrap_or(self.approved_at_ms)
            .max(self.approved_at_ms)
    }
    /// Not seen for longer than `after_ms`.
    pub fn is_stale(&self, now: Millis, after_ms: Millis) -> bool {
        now.saturating_sub(self.last_active_ms()) > after_ms
    }
    /// What a connect asking for `wanted` may get: the asked scopes less those the owner
    /// declined.
    pub fn grantable<S: AsRef<str> + Clone>(&self, wanted: &[S]) -> Vec<S> {
        wanted
            .iter()
            .filter(|s| !self.withheld_scopes.iter().any(|w| w == s.as_ref()))
            .cloned()
            .collect()
    }
    /// Scopes of `role` out of the approved set: `operator.*` and `channel.ingest` for
    /// operators, the rest for nodes.
    pub fn scopes_for_role(&self, role: &str) -> Vec<String> {
        role_scopes(role, &self.approved_scopes)
    }
}

/// The scopes of `role` out of a set: those [`role_can_hold`] (so an operator device's
/// `channel.ingest` goes into its token with its `operator.*` scopes).
fn role_scopes(role: &str, scopes: &[String]) -> Vec<String> {
    scopes
        .iter()
        .filter(|s| role_can_hold(role, s))
        .cloned()
        .collect()
}

/// Why a device must be (re)approved before it may connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairingNeed {
    NotPaired,
    RoleUpgrade,
    ScopeUpgrade,
}

impl PairingNeed {
    pub fn as_str(self) -> &'static str {
        match self {
            PairingNeed::NotPaired => "not-paired",
            PairingNeed::RoleUpgrade => "role-upgrade",
            PairingNeed::ScopeUpgrade => "scope-upgrade",
        }
    }
}

/// Whether a device may connect with this role and scopes, or needs the owner first.
pub fn pairing_need<S: AsRef<str> + Clone>(
    paired: Option<&PairedDevice>,
    public_key: &str,
    role: &str,
    scopes: &[S],
) -> Option<PairingNeed> {
    let Some(d) = paired else {
        return Some(PairingNeed::NotPaired);
    };
    if d.public_key != public_key {
        return Some(PairingNeed::NotPaired);
    }
    if !d.roles.iter().any(|r| r == role) {
        return Some(PairingNeed::RoleUpgrade);
    }
    // A revoked role stays refused, whatever else the device presents, until the owner
    // approves it again.
    if d.tokens.get(role).is_some_and(|t| !t.is_live()) {
        return Some(PairingNeed::RoleUpgrade);
    }
    if !scopes_within(&d.approved_scopes, &d.grantable(scopes)) {
        return Some(PairingNeed::ScopeUpgrade);
    }
    None
}

/// Result of recording a pending request.
#[derive(Debug, Clone, PartialEq)]
pub struct Reconciled {
    pub request: PendingDevice,
    /// False when an identical request was refreshed in place (same requestId, `ts` kept).
    pub created: bool,
    /// Requests of the same device replaced by this one.
    pub superseded: Vec<PendingDevice>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many devices are waiting for approval ({0}); try again when the owner has decided")]
pub struct QueueFull(pub usize);

/// Removes expired requests and returns them.
pub fn prune_pending(pending: &mut PendingMap, now: Millis, ttl_ms: Millis) -> Vec<PendingDevice> {
    let expired: Vec<String> = pending
        .iter()
        .filter(|(_, r)| r.is_expired(now, ttl_ms))
        .map(|(k, _)| k.clone())
        .collect();
    expired
        .into_iter()
        .filter_map(|k| pending.remove(&k))
        .collect()
}

/// Records `candidate`: a retry with the same key, role and scopes refreshes the existing
/// request in place (metadata updated, requestId and `ts` kept, so retrying never moves a
/// request up the queue); anything different replaces every request of that device.
pub fn reconcile_pending(
    pending: &mut PendingMap,
    candidate: PendingDevice,
    max_pending: usize,
) -> Result<Reconciled, QueueFull> {
    let same_device: Vec<String> = pending
        .iter()
        .filter(|(_, r)| r.device_id == candidate.device_id)
        .map(|(k, _)| k.clone())
        .collect();
    if let [only] = same_device.as_slice() {
        if let Some(existing) = pending.get_mut(only) {
            if existing.public_key == candidate.public_key
                && existing.role == candidate.role
                && same_set(&existing.scopes, &candidate.scopes)
            {
                existing.display_name = candidate.display_name;
                existing.platform = candidate.platform;
                existing.device_family = candidate.device_family;
                existing.client_id = candidate.client_id;
                existing.client_mode = candidate.client_mode;
                existing.remote_ip = candidate.remote_ip;
                return Ok(Reconciled {
                    request: existing.clone(),
                    created: false,
                    superseded: vec![],
                });
            }
        }
    }
    if pending.len() - same_device.len() >= max_pending {
        return Err(QueueFull(max_pending));
    }
    let superseded: Vec<PendingDevice> = same_device
        .iter()
        .filter_map(|k| pending.remove(k))
        .collect();
    pending.insert(candidate.request_id.clone(), candidate.clone());
    Ok(Reconciled {
        request: candidate,
        created: true,
        superseded,
    })
}

/// Applies an approval: roles and scopes are the union of what was approved before and what the
/// request asks; `createdAtMs` kept; platform and family pinned; an existing token's scopes are
/// widened to the approved set for its role.
pub fn approve_into(paired: &mut PairedMap, req: &PendingDevice, now: Millis) -> PairedDevice {
    let entry = paired
        .entry(req.device_id.clone())
        .or_insert_with(|| PairedDevice {
            device_id: req.device_id.clone(),
            public_key: req.public_key.clone(),
            display_name: String::new(),
            platform: String::new(),
            device_family: String::new(),
            client_id: String::new(),
            client_mode: String::new(),
            operator_label: None,
            roles: vec![],
            approved_scopes: vec![],
            withheld_scopes: vec![],
            remote_ip: String::new(),
            fingerprint: req.fingerprint.clone(),
            created_at_ms: now,
            approved_at_ms: now,
            last_seen_at_ms: None,
            tokens: BTreeMap::new(),
            extra: Map::new(),
        });
    entry.public_key = req.public_key.clone();
    entry.fingerprint = req.fingerprint.clone();
    entry.display_name = req.display_name.clone();
    entry.platform = req.platform.clone();
    entry.device_family = req.device_family.clone();
    entry.client_id = req.client_id.clone();
    entry.client_mode = req.client_mode.clone();
    entry.remote_ip = req.remote_ip.clone();
    entry.roles = union(&entry.roles, std::slice::from_ref(&req.role));
    // Access given back, or a device pairing again: its old token for the role goes, and the
    // device gets a new one on its next connect.
    if entry
        .tokens
        .get(&req.role)
        .is_some_and(|t| !t.is_live() || (req.is_repair && req.reason == "not-paired"))
    {
        entry.tokens.remove(&req.role);
    }
    entry.approved_scopes = union(&entry.approved_scopes, &req.scopes);
    entry
        .withheld_scopes
        .retain(|s| !entry.approved_scopes.contains(s));
    entry.approved_at_ms = now;
    let approved = entry.approved_scopes.clone();
    for (role, tok) in entry.tokens.iter_mut() {
        tok.scopes = union(&tok.scopes, &role_scopes(role, &approved));
    }
    entry.clone()
}

/// Applies an approval of `req` without the scopes in `withhold`: the device gets the rest,
/// and a later connect asking for the withheld ones again is answered with what was granted.
pub fn approve_withholding(
    paired: &mut PairedMap,
    req: &PendingDevice,
    withhold: &[String],
    now: Millis,
) -> PairedDevice {
    let mut granted = req.clone();
    granted.scopes.retain(|s| !withhold.contains(s));
    let mut dev = approve_into(paired, &granted, now);
    let declined: Vec<String> = req
        .scopes
        .iter()
        .filter(|s| withhold.contains(s))
        .cloned()
        .collect();
    if let Some(entry) = paired.get_mut(&req.device_id) {
        entry.withheld_scopes = union(&entry.withheld_scopes, &declined);
        dev = entry.clone();
    }
    dev
}

/// Stores a new token for `role` (minted by the caller) and returns its record.
pub fn install_token(
    device: &mut PairedDevice,
    role: &str,
    token_hash: String,
    now: Millis,
) -> TokenRecord {
    let scopes = device.scopes_for_role(role);
    let rec = match device.tokens.get(role) {
        Some(old) => TokenRecord {
            token_hash,
            scopes,
            created_at_ms: old.created_at_ms,
            rotated_at_ms: Some(now),
            revoked_at_ms: None,
            last_used_at_ms: old.last_used_at_ms,
        },
        None => TokenRecord {
            token_hash,
            scopes,
            created_at_ms: now,
            rotated_at_ms: None,
            revoked_at_ms: None,
            last_used_at_ms: None,
        },
    };
    device.tokens.insert(role.to_string(), rec.clone());
    rec
}

/// What a device token proves, checked against the paired record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenCheck {
    /// The live token of the requested role.
    RoleToken,
    /// A live token of another role of this device: the device is known; the role needs a
    /// token minted (if approved) or an upgrade request.
    OtherRoleToken,
    /// Revoked, unknown or not this device's.
    Refused,
}

/// Checks a presented device token in constant time against every live token of the device.
pub fn check_device_token(device: &PairedDevice, role: &str, presented: &str) -> TokenCheck {
    let mut result = TokenCheck::Refused;
    for (r, tok) in &device.tokens {
        let matches = crate::pairing::token::token_matches(presented, &tok.token_hash);
        if matches && tok.is_live() {
            if r == role {
                return TokenCheck::RoleToken;
            }
            result = TokenCheck::OtherRoleToken;
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    fn fields<'a>(id: &'a str, scopes: &'a str, nonce: &'a str, at: i64) -> SignedFields<'a> {
        SignedFields {
            device_id: id,
            client_id: "ios-node",
            client_mode: "node",
            role: "node",
            scopes,
            signed_at: at,
            token: "tok",
            nonce,
            platform: " iOS ",
            device_family: "iPhone",
        }
    }

    #[test]
    fn v3_string_lowercases_platform_and_family() {
        let f = fields("id", "", "n", 5);
        assert_eq!(
            signed_string_v3(&f),
            "v3|id|ios-node|node|node||5|tok|n|ios|iphone"
        );
        assert_eq!(signed_string_v2(&f), "v2|id|ios-node|node|node||5|tok|n");
    }

    #[test]
    fn identity_checks_run_in_order_with_their_codes() {
        let sk = key();
        let pk = URL_SAFE_NO_PAD.encode(sk.verifying_key().as_bytes());
        let id = device_id_for(sk.verifying_key().as_bytes());
        let s = "operator.read";
        let f = fields(&id, s, "nonce-1", 1_000_000);
        let sig = URL_SAFE_NO_PAD.encode(sk.sign(signed_string_v3(&f).as_bytes()).to_bytes());
        assert!(verify_identity(&f, &pk, &sig, "nonce-1", 1_000_000).is_ok());
        // v2 signatures are still accepted.
        let sig2 = URL_SAFE_NO_PAD.encode(sk.sign(signed_string_v2(&f).as_bytes()).to_bytes());
        assert!(verify_identity(&f, &pk, &sig2, "nonce-1", 1_000_000).is_ok());
        let wrong_id = fields("00", s, "nonce-1", 1_000_000);
        assert_eq!(
            verify_identity(&wrong_id, &pk, &sig, "nonce-1", 1_000_000),
            Err(IdentityError::IdMismatch)
        );
        assert_eq!(
            verify_identity(&f, &pk, &sig, "nonce-1", 1_000_000 + SIGNATURE_SKEW_MS + 1),
            Err(IdentityError::Stale)
        );
        assert_eq!(
            verify_identity(&f, &pk, &sig, "nonce-2", 1_000_000),
            Err(IdentityError::NonceMismatch)
        );
        let other = fields(&id, s, "nonce-1", 1_000_001);
        assert_eq!(
            verify_identity(&other, &pk, &sig, "nonce-1", 1_000_000),
            Err(IdentityError::BadSignature)
        );
        assert_eq!(
            verify_identity(&f, &pk, "!!", "nonce-1", 1_000_000),
            Err(IdentityError::BadSignature)
        );
    }

    #[test]
    fn a_key_that_signed_before_is_checked_the_same_way_and_only_a_valid_one_is_kept() {
        let sk = key();
        let pk = URL_SAFE_NO_PAD.encode(sk.verifying_key().as_bytes());
        let id = device_id_for(sk.verifying_key().as_bytes());
        let f = fields(&id, "", "nonce-1", 1_000_000);
        let sig = URL_SAFE_NO_PAD.encode(sk.sign(signed_string_v3(&f).as_bytes()).to_bytes());
        let known = KnownKeys::new(8);
        let bad = verify_identity_known(&f, &pk, "!!", "nonce-1", 1_000_000, &known);
        assert_eq!(bad.err(), Some(IdentityError::BadSignature));
        assert!(known.is_empty(), "a key that did not sign is not kept");
        let first = verify_identity_known(&f, &pk, &sig, "nonce-1", 1_000_000, &known).unwrap();
        assert_eq!(known.len(), 1);
        assert_eq!(first.device_id, id);
        assert_eq!(
            first.fingerprint,
            fingerprint_for(sk.verifying_key().as_bytes())
        );
        // Remembered now: every check still runs, in the same order, with the same answers.
        let again = |f: &SignedFields, sig: &str, nonce: &str, now: Millis| {
            let memo = verify_identity_known(f, &pk, sig, nonce, now, &known).map(|k| k.raw);
            assert_eq!(memo, verify_identity(f, &pk, sig, nonce, now));
            memo
        };
        assert_eq!(again(&f, &sig, "nonce-1", 1_000_000), Ok(first.raw));
        let wrong_id = fields("00", "", "nonce-1", 1_000_000);
        assert_eq!(
            again(&wrong_id, &sig, "nonce-1", 1_000_000),
            Err(IdentityError::IdMismatch)
        );
        let late = 1_000_000 + SIGNATURE_SKEW_MS + 1;
        assert_eq!(again(&f, &sig, "nonce-1", late), Err(IdentityError::Stale));
        assert_eq!(
            again(&f, &sig, "nonce-2", 1_000_000),
            Err(IdentityError::NonceMismatch)
        );
        let other = fields(&id, "", "nonce-1", 1_000_001);
        assert_eq!(
            again(&other, &sig, "nonce-1", 1_000_000),
            Err(IdentityError::BadSignature)
        );
        assert_eq!(
            again(&f, "!!", "nonce-1", 1_000_000),
            Err(IdentityError::BadSignature)
        );
    }

    #[test]
    fn the_memory_of_keys_never_holds_more_than_its_bound() {
        let known = KnownKeys::new(2);
        for seed in 1..=5u8 {
            let sk = SigningKey::from_bytes(&[seed; 32]);
            let pk = URL_SAFE_NO_PAD.encode(sk.verifying_key().as_bytes());
            let id = device_id_for(sk.verifying_key().as_bytes());
            let f = fields(&id, "", "n", 5);
            let sig = URL_SAFE_NO_PAD.encode(sk.sign(signed_string_v3(&f).as_bytes()).to_bytes());
            assert!(verify_identity_known(&f, &pk, &sig, "n", 5, &known).is_ok());
            assert!(known.len() <= 2);
        }
        let none = KnownKeys::new(0);
        let sk = key();
        let pk = URL_SAFE_NO_PAD.encode(sk.verifying_key().as_bytes());
        let id = device_id_for(sk.verifying_key().as_bytes());
        let f = fields(&id, "", "n", 5);
        let sig = URL_SAFE_NO_PAD.encode(sk.sign(signed_string_v3(&f).as_bytes()).to_bytes());
        assert!(verify_identity_known(&f, &pk, &sig, "n", 5, &none).is_ok());
        assert!(none.is_empty());
    }

    #[test]
    fn signed_at_at_the_ends_of_i64_is_stale_not_an_overflow() {
        let sk = key();
        let pk = URL_SAFE_NO_PAD.encode(sk.verifying_key().as_bytes());
        let id = device_id_for(sk.verifying_key().as_bytes());
        let s = "";
        for (at, now) in [
            (i64::MIN, 1_000_000),
            (i64::MAX, -1_000_000),
            (i64::MIN, i64::MAX),
            (i64::MAX, i64::MIN),
        ] {
            let f = fields(&id, s, "n", at);
            let sig = URL_SAFE_NO_PAD.encode(sk.sign(signed_string_v3(&f).as_bytes()).to_bytes());
            assert_eq!(
                verify_identity(&f, &pk, &sig, "n", now),
                Err(IdentityError::Stale),
                "signedAt {at} at {now}"
            );
        }
    }

    #[test]
    fn fingerprint_is_two_groups_of_four_base32() {
        let fp = fingerprint_for(key().verifying_key().as_bytes());
        assert_eq!(fp.len(), 9);
        assert_eq!(&fp[4..5], "-");
        assert!(fp
            .chars()
            .filter(|c| *c != '-')
            .all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c)));
        assert_ne!(fp, fingerprint_for(&[1u8; 32]));
    }

    fn pending(id: &str, device: &str, role: &str, scopes: &[&str], ts: Millis) -> PendingDevice {
        PendingDevice {
            request_id: id.into(),
            device_id: device.into(),
            public_key: format!("pk-{device}"),
            display_name: "Phone".into(),
            platform: "ios".into(),
            device_family: String::new(),
            client_id: "c".into(),
            client_mode: "node".into(),
            role: role.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            remote_ip: "10.0.0.2".into(),
            fingerprint: "AAAA-BBBB".into(),
            is_repair: false,
            reason: "not-paired".into(),
            regains: false,
            ts,
            extra: Map::new(),
        }
    }

    #[test]
    fn identical_retry_refreshes_in_place_and_different_retry_replaces() {
        let mut p = PendingMap::new();
        let a = reconcile_pending(&mut p, pending("r1", "d1", "node", &[], 100), 10).unwrap();
        assert!(a.created);
        let mut retry = pending("r2", "d1", "node", &[], 900);
        retry.remote_ip = "10.0.0.9".into();
        let b = reconcile_pending(&mut p, retry, 10).unwrap();
        assert!(!b.created);
        assert_eq!(b.request.request_id, "r1");
        assert_eq!(b.request.ts, 100, "ts not moved by a retry");
        assert_eq!(b.request.remote_ip, "10.0.0.9");
        let c = reconcile_pending(
            &mut p,
            pending("r3", "d1", "operator", &["operator.read"], 1000),
            10,
        )
        .unwrap();
        assert!(c.created);
        assert_eq!(c.superseded.len(), 1);
        assert_eq!(p.keys().collect::<Vec<_>>(), vec!["r3"]);
    }

    #[test]
    fn queue_holds_at_most_max_pending() {
        let mut p = PendingMap::new();
        for i in 0..3 {
            reconcile_pending(
                &mut p,
                pending(&format!("r{i}"), &format!("d{i}"), "node", &[], 0),
                3,
            )
            .unwrap();
        }
        assert_eq!(
            reconcile_pending(&mut p, pending("r9", "d9", "node", &[], 0), 3),
            Err(QueueFull(3))
        );
        // A device already waiting may still replace its own request.
        assert!(reconcile_pending(&mut p, pending("r8", "d1", "operator", &[], 0), 3).is_ok());
    }

    #[test]
    fn pending_expires_five_minutes_after_ts() {
        let mut p = PendingMap::new();
        reconcile_pending(&mut p, pending("r1", "d1", "node", &[], 0), 10).unwrap();
        assert!(prune_pending(&mut p, 299_999, 300_000).is_empty());
        assert_eq!(prune_pending(&mut p, 300_000, 300_000).len(), 1);
    }

    #[test]
    fn approving_one_roles_scopes_never_widens_another_roles_token() {
        let mut paired = PairedMap::new();
        approve_into(&mut paired, &pending("r1", "d1", "node", &[], 0), 0);
        let d = paired.get_mut("d1").unwrap();
        install_token(d, "node", "h-node".into(), 1);
        approve_into(
            &mut paired,
            &pending("r2", "d1", "operator", &["operator.read"], 2),
            2,
        );
        let d = paired.get_mut("d1").unwrap();
        install_token(d, "operator", "h-op".into(), 3);
        approve_into(
            &mut paired,
            &pending("r3", "d1", "node", &["camera.snap"], 4),
            4,
        );
        approve_into(
            &mut paired,
            &pending("r4", "d1", "operator", &["operator.write"], 5),
            5,
        );
        let d = &paired["d1"];
        assert_eq!(d.tokens["node"].scopes, vec!["camera.snap".to_string()]);
        assert_eq!(
            d.tokens["operator"].scopes,
            vec!["operator.read".to_string(), "operator.write".into()]
        );
        assert!(
            !role_can_hold("node", "operator.read") && !role_can_hold("operator", "camera.snap")
        );
    }

    #[test]
    fn approval_unions_roles_and_scopes_and_upgrades_are_detected() {
        let mut paired = PairedMap::new();
        let d = approve_into(&mut paired, &pending("r1", "d1", "node", &[], 5), 10);
        assert_eq!(d.roles, vec!["node"]);
        assert_eq!(
            pairing_need(Some(&d), "pk-d1", "node", &[] as &[String]),
            None
        );
        assert_eq!(
            pairing_need(None, "pk-d1", "node", &[] as &[String]),
            Some(PairingNeed::NotPaired)
        );
        assert_eq!(
            pairing_need(Some(&d), "pk-other", "node", &[] as &[String]),
            Some(PairingNeed::NotPaired)
        );
        assert_eq!(
            pairing_need(Some(&d), "pk-d1", "operator", &[] as &[String]),
            Some(PairingNeed::RoleUpgrade)
        );
        let read = vec!["operator.read".to_string()];
        let d = approve_into(
            &mut paired,
            &pending("r2", "d1", "operator", &["operator.read"], 20),
            30,
        );
        assert_eq!(d.roles, vec!["node", "operator"]);
        assert_eq!(d.created_at_ms, 10);
        assert_eq!(pairing_need(Some(&d), "pk-d1", "operator", &read), None);
        let write = vec!["operator.write".to_string()];
        assert_eq!(
            pairing_need(Some(&d), "pk-d1", "operator", &write),
            Some(PairingNeed::ScopeUpgrade)
        );
    }

    #[test]
    fn device_token_checks_role_and_revocation() {
        let mut paired = PairedMap::new();
        let mut d = approve_into(&mut paired, &pending("r1", "d1", "node", &[], 0), 0);
        install_token(
            &mut d,
            "node",
            crate::pairing::token::hash_token("t-node"),
            1,
        );
        assert_eq!(
            check_device_token(&d, "node", "t-node"),
            TokenCheck::RoleToken
        );
        assert_eq!(
            check_device_token(&d, "operator", "t-node"),
            TokenCheck::OtherRoleToken
        );
        assert_eq!(
            check_device_token(&d, "node", "t-wrong"),
            TokenCheck::Refused
        );
        if let Some(t) = d.tokens.get_mut("node") {
            t.revoked_at_ms = Some(2);
        }
        assert_eq!(
            check_device_token(&d, "node", "t-node"),
            TokenCheck::Refused
        );
        let rotated = install_token(&mut d, "node", crate::pairing::token::hash_token("t2"), 3);
        assert_eq!(rotated.created_at_ms, 1);
        assert_eq!(rotated.rotated_at_ms, Some(3));
        assert_eq!(check_device_token(&d, "node", "t2"), TokenCheck::RoleToken);
    }

    #[test]
    fn scope_implication() {
        let admin = vec![SCOPE_ADMIN.to_string()];
        let write = vec![SCOPE_WRITE.to_string()];
        assert!(scope_granted(&admin, SCOPE_PAIRING));
        assert!(scope_granted(&write, SCOPE_READ));
        assert!(!scope_granted(&write, SCOPE_PAIRING));
    }
}
