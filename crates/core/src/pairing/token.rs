//! Secrets: 256-bit tokens (base64url), their SHA-256 hashes (the only form stored on disk),
//! and constant-time checks.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Length of an encoded token: 32 bytes in base64url without padding.
pub const TOKEN_CHARS: usize = 43;

/// A fresh 32-byte token from `rng` (the OS CSPRNG outside tests), base64url without padding.
pub fn new_token(rng: &mut impl RngCore) -> String {
    let mut b = [0u8; 32];
    rng.fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// Lowercase hex SHA-256 of the token text: what the store keeps instead of the token.
pub fn hash_token(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

pub fn hex(bytes: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(H[(b >> 4) as usize] as char);
        s.push(H[(b & 15) as usize] as char);
    }
    s
}

/// Whether `presented` hashes to `stored_hash`. Both sides are fixed-length digests, so the
/// comparison takes the same time wherever they differ and reveals no length.
pub fn token_matches(presented: &str, stored_hash: &str) -> bool {
    if presented.is_empty() {
        return false;
    }
    let p = Sha256::digest(presented.as_bytes());
    let p_hex = hex(&p);
    p_hex.as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

/// Constant-time equality of two secrets of any length (both hashed first).
pub fn secrets_equal(a: &str, b: &str) -> bool {
    matches_secret(a, secret_digest(b).as_ref())
}

/// A secret's SHA-256, to check presented secrets against ([`matches_secret`]) without hashing
/// the same one again for each; `None` for an empty secret, which nothing matches.
pub fn secret_digest(secret: &str) -> Option<[u8; 32]> {
    (!secret.is_empty()).then(|| Sha256::digest(secret.as_bytes()).into())
}

/// [`secrets_equal`] against a secret known by its [`secret_digest`]: the same answer, in
/// constant time over the digests.
pub fn matches_secret(presented: &str, digest: Option<&[u8; 32]>) -> bool {
    let Some(digest) = digest else { return false };
    if presented.is_empty() {
        return false;
    }
    let p = Sha256::digest(presented.as_bytes());
    p.as_slice().ct_eq(digest.as_slice()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_43_chars_of_base64url_and_distinct() {
        let mut r = rand::rngs::OsRng;
        let a = new_token(&mut r);
        let b = new_token(&mut r);
        assert_eq!(a.len(), TOKEN_CHARS);
        assert_ne!(a, b);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }

    #[test]
    fn stored_hash_matches_only_its_token() {
        let h = hash_token("secret-token");
        assert_eq!(h.len(), 64);
        assert!(token_matches("secret-token", &h));
        assert!(!token_matches("secret-tokem", &h));
        assert!(!token_matches("", &hash_token("")));
        assert!(secrets_equal("x", "x"));
        assert!(!secrets_equal("x", "xy"));
        assert!(!secrets_equal("", ""));
    }

    #[test]
    fn a_secret_known_by_its_digest_matches_as_the_secret_itself_does() {
        for (a, b) in [
            ("x", "x"),
            ("x", "xy"),
            ("", ""),
            ("x", ""),
            ("", "x"),
            ("tok", "tok"),
        ] {
            assert_eq!(
                matches_secret(a, secret_digest(b).as_ref()),
                secrets_equal(a, b),
                "{a:?} against {b:?}"
            );
        }
    }
}
