//! Device keys that have signed a `connect` before, remembered per process: what a key's text
//! comes to (its raw bytes, the curve point Ed25519 verification needs, the device id and the
//! fingerprint) is the same on every reconnect, and working it out again is the costliest part
//! of a handshake after the signature check itself. Only the derivation is remembered: every
//! `connect` is still verified against its own signature, nonce and time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ed25519_dalek::VerifyingKey;

use super::device::{device_id_for, fingerprint_for};

/// One device key, as its text was decoded and checked.
#[derive(Debug)]
pub struct KnownKey {
    pub raw: [u8; 32],
    /// The decompressed point (`VerifyingKey::from_bytes`).
    pub(crate) key: VerifyingKey,
    pub device_id: String,
    pub fingerprint: String,
}

impl KnownKey {
    pub(crate) fn new(raw: [u8; 32], key: VerifyingKey, device_id: String) -> KnownKey {
        KnownKey {
            raw,
            key,
            device_id,
            fingerprint: fingerprint_for(&raw),
        }
    }
}

/// Keys that produced a valid signature, by the text the device sends (`device.publicKey`).
/// At most `max` are kept; once full, it starts again empty, so a client that signs with ever
/// new keys costs memory no more than that, and time no more than no memory at all.
pub struct KnownKeys {
    keys: Mutex<HashMap<String, Arc<KnownKey>>>,
    max: usize,
}

impl KnownKeys {
    /// A memory of at most `max` keys (`0`: none is kept).
    pub fn new(max: usize) -> KnownKeys {
        KnownKeys {
            keys: Mutex::new(HashMap::new()),
            max,
        }
    }

    /// The key `text` stands for, when it signed before.
    pub fn get(&self, text: &str) -> Option<Arc<KnownKey>> {
        self.keys.lock().ok()?.get(text).cloned()
    }

    /// Remembers a key that has just produced a valid signature; returns it.
    pub(crate) fn remember(&self, text: &str, key: KnownKey) -> Arc<KnownKey> {
        let key = Arc::new(key);
        if self.max == 0 {
            return key;
        }
        if let Ok(mut keys) = self.keys.lock() {
            if keys.len() >= self.max {
                keys.clear();
            }
            keys.insert(text.to_string(), key.clone());
        }
        key
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.keys.lock().map(|k| k.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a key's text decodes to, worked out from scratch (no memory): `None` when it is not a
/// 32-byte key in base64url. The point is not decompressed here (that can fail separately).
pub(crate) fn decode_with_id(text: &str) -> Option<([u8; 32], String)> {
    let raw = super::device::decode_public_key(text).ok()?;
    Some((raw, device_id_for(&raw)))
}
