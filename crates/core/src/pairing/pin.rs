//! The certificate pin a setup code carries (`tlsFingerprint`): the SHA-256 of the gateway's
//! leaf certificate, and the forms people and tools write it in. Pure; `crate::tls` checks a
//! server against it.

use sha2::{Digest, Sha256};

/// A certificate's fingerprint as setup codes carry it: lowercase hex SHA-256 of its DER,
/// 64 characters, no separators (what OpenClaw's `tlsFingerprint` holds).
pub fn fingerprint(der: &[u8]) -> String {
    super::token::hex(&Sha256::digest(der))
}

/// A fingerprint as people and tools write it (hex, `AB:CD:…` with colons, optionally after
/// `sha256:`) in the canonical form of [`fingerprint`]; `None` when it is not a SHA-256.
pub fn normalize_fingerprint(s: &str) -> Option<String> {
    let t = s.trim();
    let t = match t.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("sha256:") => &t[7..],
        _ => t,
    };
    let hex: String = if t.contains(':') {
        let parts: Vec<&str> = t.split(':').collect();
        if parts.len() != 32 || parts.iter().any(|p| p.len() != 2) {
            return None;
        }
        parts.concat()
    } else {
        t.to_string()
    };
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_read_in_every_form_openclaw_accepts() {
        let hex = "ab".repeat(32);
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(normalize_fingerprint(&hex).as_deref(), Some(hex.as_str()));
        assert_eq!(
            normalize_fingerprint(&colons).as_deref(),
            Some(hex.as_str())
        );
        assert_eq!(
            normalize_fingerprint(&format!("SHA256:{}", hex.to_uppercase())).as_deref(),
            Some(hex.as_str())
        );
        for bad in [
            "",
            "ab",
            &"ab".repeat(31),
            &"zz".repeat(32),
            "sha1:abcd",
            &vec!["ABC"; 32].join(":"),
        ] {
            assert_eq!(normalize_fingerprint(bad), None, "{bad}");
        }
        assert_eq!(fingerprint(b"").len(), 64);
        assert_eq!(
            fingerprint(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
