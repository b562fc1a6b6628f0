//! TLS for the outgoing connections (the Telegram Bot API, `wss://` gateways): rustls with ring,
//! the one crypto provider linked in, so no OpenSSL and no C toolchain beyond cc.

/// Installs ring as rustls's process-wide provider unless one is installed already.
pub fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race with another thread installing one is fine: there is one then.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
