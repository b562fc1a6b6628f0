//! The identity file a device keeps (`clawpair node`, `0600`): its key, the gateway it paired
//! with, its tokens. The format lives with the other files, so the store can recognise one (the
//! move out of OpenClaw's directory does); what a client does with it is in `crate::client`.

use serde::{Deserialize, Serialize};

/// A stored role token. Its `Debug` hides the token.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredToken {
    pub token: String,
    #[serde(default)]
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for StoredToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredToken")
            .field("token", &HIDDEN)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// What `Debug` shows in place of a secret.
pub(crate) const HIDDEN: &str = "<hidden>";

/// What a device keeps on disk (`0600`): its key, the gateway it paired with, its tokens.
/// Its `Debug` hides the private key and the tokens.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityFile {
    pub version: u32,
    pub device_id: String,
    pub public_key: String,
    pub private_key: String,
    pub created_at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_url: Option<String>,
    /// The gateway's certificate pin from the setup code (`tlsFingerprint`): reconnects accept
    /// that certificate and no other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_tls_fingerprint: Option<String>,
    #[serde(default)]
    pub tokens: std::collections::BTreeMap<String, StoredToken>,
}

impl std::fmt::Debug for IdentityFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityFile")
            .field("version", &self.version)
            .field("device_id", &self.device_id)
            .field("public_key", &self.public_key)
            .field("private_key", &HIDDEN)
            .field("created_at_ms", &self.created_at_ms)
            .field("gateway_url", &self.gateway_url)
            .field("gateway_tls_fingerprint", &self.gateway_tls_fingerprint)
            .field("tokens", &self.tokens)
            .finish()
    }
}
