//! TLS for the outgoing connections (the Telegram Bot API, `wss://` gateways): rustls with ring,
//! the one crypto provider linked in, so no OpenSSL and no C toolchain beyond cc. Also the
//! certificate pin a setup code carries (`tlsFingerprint`): SHA-256 of the gateway's leaf
//! certificate, and a verifier that accepts exactly that certificate.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

/// Installs ring as rustls's process-wide provider unless one is installed already.
pub fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another thread installing one is fine: there is one then.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// The ring provider, for configurations built here (never the process default, which a
/// dependency might have set otherwise).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate's fingerprint as setup codes carry it: lowercase hex SHA-256 of its DER,
/// 64 characters, no separators (what OpenClaw's `tlsFingerprint` holds).
pub fn fingerprint(der: &[u8]) -> String {
    crate::pairing::token::hex(&Sha256::digest(der))
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

/// Accepts exactly one certificate, by its SHA-256, whatever its name, issuer or dates (a
/// self-signed gateway certificate has no chain to check); the handshake signatures are still
/// verified, so the server must hold that certificate's key.
#[derive(Debug)]
pub struct PinnedCert {
    fingerprint: String,
    provider: Arc<CryptoProvider>,
    /// Set when the server presented another certificate, so the error can say so.
    mismatch: AtomicBool,
}

impl PinnedCert {
    /// `None` when `fingerprint` is not a SHA-256 fingerprint.
    pub fn new(fingerprint: &str) -> Option<Arc<PinnedCert>> {
        Some(Arc::new(PinnedCert {
            fingerprint: normalize_fingerprint(fingerprint)?,
            provider: provider(),
            mismatch: AtomicBool::new(false),
        }))
    }

    /// Whether a handshake was refused because the certificate was not the pinned one.
    pub fn saw_another_certificate(&self) -> bool {
        self.mismatch.load(Ordering::SeqCst)
    }

    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// A client configuration that trusts only this certificate.
    pub fn client_config(self: &Arc<Self>) -> Result<rustls::ClientConfig, rustls::Error> {
        Ok(
            rustls::ClientConfig::builder_with_provider(self.provider.clone())
                .with_safe_default_protocol_versions()?
                .dangerous()
                .with_custom_certificate_verifier(self.clone())
                .with_no_client_auth(),
        )
    }
}

impl ServerCertVerifier for PinnedCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // Both sides are public hex of equal length; no secret to time.
        if fingerprint(end_entity.as_ref()) == self.fingerprint {
            Ok(ServerCertVerified::assertion())
        } else {
            self.mismatch.store(true, Ordering::SeqCst);
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
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
