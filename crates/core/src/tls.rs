//! TLS for the outgoing connections (the Telegram Bot API, `wss://` gateways): rustls with ring,
//! the one crypto provider linked in, so no OpenSSL and no C toolchain beyond cc. Also the
//! verifier that accepts exactly the certificate a setup code pins (`tlsFingerprint`, whose
//! format is [`crate::pairing::pin`]). The gateway's own certificate, the one it serves
//! `wss://` with and setup codes pin, is [`server`].

pub mod server;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

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

pub use crate::pairing::pin::{fingerprint, normalize_fingerprint};

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
